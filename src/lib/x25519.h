/*
 * x25519: the Diffie-Hellman function of RFC 7748 on Curve25519, a
 * Montgomery ladder whose time and memory accesses do not depend on the
 * scalar. The key agreement of the encrypted channel (noise.h).
 */
#ifndef SP_X25519_H
#define SP_X25519_H

#define X25519_LEN 32 /* scalars, u-coordinates and shared secrets */

/*
 * out = X25519(scalar, point): the scalar is clamped as RFC 7748 §5 says
 * (a private key is any 32 random bytes) and the top bit of the point is
 * ignored. Returns 0, or -1 with errno EINVAL when the result is all
 * zeros, which a point of small order gives whatever the scalar (§6.1):
 * the shared secret would be known to anyone. out is written either way,
 * and may be scalar or point.
 */
int x25519(unsigned char out[X25519_LEN], const unsigned char scalar[X25519_LEN],
	   const unsigned char point[X25519_LEN]);

/* The public key of a private one: X25519(scalar, 9). Returns 0 (or -1 as x25519 does). */
int x25519_base(unsigned char out[X25519_LEN], const unsigned char scalar[X25519_LEN]);

#endif
