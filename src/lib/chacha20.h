/*
 * chacha20: the ChaCha20 stream cipher as RFC 8439 defines it (96-bit
 * nonce, 32-bit block counter), constant time in the key and the data.
 * The cipher half of the channel's AEAD (aead.h); runs of 4 blocks and
 * more go to the vector paths (chacha20_simd.h).
 */
#ifndef SP_CHACHA20_H
#define SP_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#define CHACHA20_KEY 32
#define CHACHA20_NONCE 12
#define CHACHA20_BLOCK 64

/*
 * One ChaCha quarter round on words a, b, c and d of the 16-word state s
 * (RFC 8439 §2.2). Exported for the RFC's own test vectors of it.
 */
void chacha20_qround(uint32_t s[16], int a, int b, int c, int d);

/* The 64-byte keystream block for key, block counter and nonce (§2.3). */
void chacha20_block(const unsigned char key[CHACHA20_KEY], uint32_t counter,
		    const unsigned char nonce[CHACHA20_NONCE], unsigned char out[CHACHA20_BLOCK]);

/*
 * XOR n bytes of in with the keystream starting at block counter, into out
 * (§2.4: encryption and decryption alike). out may be in, but must not
 * otherwise overlap it. The counter wraps after 2^32 blocks, so the caller
 * keeps n within 64 * (2^32 - counter) bytes (the AEAD does).
 */
void chacha20_xor(const unsigned char key[CHACHA20_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA20_NONCE], const void *in, size_t n, void *out);

#endif
