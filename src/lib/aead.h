/*
 * aead: AEAD_CHACHA20_POLY1305 as RFC 8439 §2.8 defines it, ChaCha20
 * (chacha20.h) encrypting and Poly1305 (poly1305.h) authenticating:
 * the cipher of the encrypted channel (noise.h); constant time in the
 * key and the data.
 */
#ifndef SP_AEAD_H
#define SP_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "chacha20.h"
#include "poly1305.h"

#define AEAD_KEY CHACHA20_KEY
#define AEAD_NONCE CHACHA20_NONCE
#define AEAD_TAG POLY1305_TAG /* appended to the ciphertext */
/* The most one call may encrypt: 2^32-1 blocks of the 32-bit counter (RFC 8439 §2.8). */
#define AEAD_MAX ((uint64_t)0xffffffffu * CHACHA20_BLOCK)

/*
 * Encryption: writes n bytes of ciphertext and then the 16-byte tag to
 * out (n + AEAD_TAG bytes), authenticating ad too. out may be pt.
 * Returns 0, or -1 with errno EMSGSIZE when n is over AEAD_MAX. A nonce
 * must never repeat under one key.
 */
int aead_seal(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
	      const void *ad, size_t adlen, const void *pt, size_t n, void *out);

/*
 * The same, of the hn bytes of head (at most CHACHA20_BLOCK) followed by
 * the n of pt, as if they were one plaintext: a record's type byte and
 * its payload sealed without first copying them together. out (hn + n +
 * AEAD_TAG bytes) must not overlap pt, except as pt == out + hn (in
 * place). EINVAL when hn is over CHACHA20_BLOCK.
 */
int aead_seal_parts(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		    const void *ad, size_t adlen, const void *head, size_t hn, const void *pt,
		    size_t n, void *out);

/*
 * Decryption: ct holds n bytes, the ciphertext and its 16-byte tag; the
 * n - AEAD_TAG bytes of plaintext go to out (which may be ct). The tag
 * is checked, in constant time, before anything is decrypted, so on
 * failure out is untouched. Returns 0, or -1 with errno EBADMSG when the
 * tag does not match (or n is under AEAD_TAG), EMSGSIZE when the
 * ciphertext is over AEAD_MAX.
 */
int aead_open(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
	      const void *ad, size_t adlen, const void *ct, size_t n, void *out);

/*
 * The same, the plaintext's first hn bytes (at most CHACHA20_BLOCK) to
 * head and the rest to out, which must not overlap ct except as out ==
 * ct + hn (in place): a record opened straight into the reader's buffer.
 * EBADMSG also when the plaintext is shorter than hn; EINVAL when hn is
 * over CHACHA20_BLOCK.
 */
int aead_open_parts(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		    const void *ad, size_t adlen, const void *ct, size_t n, void *head, size_t hn,
		    void *out);

#endif
