/*
 * hkdf: HKDF-SHA256 (RFC 5869) over hmac_sha256, and the HKDF of the
 * Noise Protocol Framework (rev 34 §4.3), which is the same function with
 * the chaining key as salt, an empty info and two or three outputs.
 */
#ifndef SP_HKDF_H
#define SP_HKDF_H

#include <stddef.h>

#include "sha256.h"

#define HKDF_MAX (255 * SHA256_LEN) /* the most output RFC 5869 allows */
#define HKDF_INFO_MAX 256	    /* the longest info hkdf_expand takes */

/* PRK = HMAC-SHA256(salt, ikm); an empty salt means 32 zero bytes, as the RFC says. */
void hkdf_extract(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen,
		  unsigned char prk[SHA256_LEN]);

/*
 * Fill okm with len bytes of T(1) | T(2) | ..., T(i) = HMAC(prk, T(i-1) |
 * info | i). Returns 0, or -1 with errno EINVAL when len is over HKDF_MAX
 * or infolen over HKDF_INFO_MAX (each block is hashed from one buffer).
 */
int hkdf_expand(const unsigned char prk[SHA256_LEN], const void *info, size_t infolen, void *okm,
		size_t len);

/* Extract, then expand: the whole RFC 5869 function. Returns 0 or -1 as hkdf_expand. */
int hkdf_sha256(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen, const void *info,
		size_t infolen, void *okm, size_t len);

/*
 * Noise's HKDF(ck, ikm): out1 = HMAC(HMAC(ck, ikm), 0x01), out2 and, when
 * out3 is not NULL, out3 chained after it. The outputs may alias ck.
 */
void hkdf_noise(const unsigned char ck[SHA256_LEN], const void *ikm, size_t ikmlen,
		unsigned char out1[SHA256_LEN], unsigned char out2[SHA256_LEN],
		unsigned char *out3);

#endif
