/*
 * chacha: ChaCha20, Poly1305 and the AEAD that combines them, as RFC 8439
 * defines them (96-bit nonce, 32-bit block counter). The cipher of the
 * encrypted channel (noise.h); constant time in the key and the data.
 */
#ifndef SP_CHACHA_H
#define SP_CHACHA_H

#include <stddef.h>
#include <stdint.h>

#define CHACHA_KEY 32
#define CHACHA_NONCE 12
#define CHACHA_BLOCK 64
#define CHACHA_TAG 16 /* Poly1305 tag, appended by the AEAD */
/* The most one AEAD call may encrypt: 2^32-1 blocks of the 32-bit counter (RFC 8439 §2.8). */
#define CHACHA_AEAD_MAX ((uint64_t)0xffffffffu * CHACHA_BLOCK)

/*
 * One ChaCha quarter round on words a, b, c and d of the 16-word state s
 * (RFC 8439 §2.2). Exported for the RFC's own test vectors of it.
 */
void chacha_qround(uint32_t s[16], int a, int b, int c, int d);

/* The 64-byte keystream block for key, block counter and nonce (§2.3). */
void chacha_block(const unsigned char key[CHACHA_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA_NONCE], unsigned char out[CHACHA_BLOCK]);

/*
 * XOR n bytes of in with the keystream starting at block counter, into out
 * (§2.4: encryption and decryption alike). out may be in, but must not
 * otherwise overlap it. The counter wraps after 2^32 blocks, so the caller
 * keeps n within 64 * (2^32 - counter) bytes (the AEAD does).
 */
void chacha_xor(const unsigned char key[CHACHA_KEY], uint32_t counter,
		const unsigned char nonce[CHACHA_NONCE], const void *in, size_t n, void *out);

/* The Poly1305 tag of msg under the one-time key (§2.5): r, then s, 16 bytes each. */
void chacha_poly1305(const unsigned char key[32], const void *msg, size_t n,
		     unsigned char tag[CHACHA_TAG]);

/*
 * AEAD_CHACHA20_POLY1305 encryption (§2.8): writes n bytes of ciphertext
 * and then the 16-byte tag to out (n + CHACHA_TAG bytes), authenticating
 * ad too. out may be pt. Returns 0, or -1 with errno EMSGSIZE when n is
 * over CHACHA_AEAD_MAX. A nonce must never repeat under one key.
 */
int chacha_aead_seal(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *pt, size_t n, void *out);

/*
 * The same, of the hn bytes of head (at most CHACHA_BLOCK) followed by
 * the n of pt, as if they were one plaintext: a record's type byte and
 * its payload sealed without first copying them together. out (hn + n +
 * CHACHA_TAG bytes) must not overlap pt, except as pt == out + hn (in
 * place). EINVAL when hn is over CHACHA_BLOCK.
 */
int chacha_aead_seal_parts(const unsigned char key[CHACHA_KEY],
			   const unsigned char nonce[CHACHA_NONCE], const void *ad, size_t adlen,
			   const void *head, size_t hn, const void *pt, size_t n, void *out);

/*
 * AEAD decryption: ct holds n bytes, the ciphertext and its 16-byte tag;
 * the n - CHACHA_TAG bytes of plaintext go to out (which may be ct).
 * The tag is checked, in constant time, before anything is decrypted, so
 * on failure out is untouched. Returns 0, or -1 with errno EBADMSG when
 * the tag does not match (or n is under CHACHA_TAG), EMSGSIZE when the
 * ciphertext is over CHACHA_AEAD_MAX.
 */
int chacha_aead_open(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *ct, size_t n, void *out);

/*
 * The same, the plaintext's first hn bytes (at most CHACHA_BLOCK) to
 * head and the rest to out, which must not overlap ct except as out ==
 * ct + hn (in place): a record opened straight into the reader's buffer.
 * EBADMSG also when the plaintext is
 * shorter than hn; EINVAL when hn is over CHACHA_BLOCK.
 */
int chacha_aead_open_parts(const unsigned char key[CHACHA_KEY],
			   const unsigned char nonce[CHACHA_NONCE], const void *ad, size_t adlen,
			   const void *ct, size_t n, void *head, size_t hn, void *out);

#endif
