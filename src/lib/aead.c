#include "aead.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

/* The tag over ad, pad, ciphertext, pad and the two lengths (§2.8). */
static void aead_tag(const unsigned char otk[POLY1305_KEY], const unsigned char *ad, size_t adlen,
		     const unsigned char *ct, size_t n, unsigned char tag[AEAD_TAG])
{
	unsigned char lens[16];
	struct poly1305 p;

	poly1305_init(&p, otk);
	poly1305_update_padded(&p, ad, adlen);
	poly1305_update_padded(&p, ct, n);
	mem_store64le(lens, (uint64_t)adlen);
	mem_store64le(lens + 8, (uint64_t)n);
	poly1305_update_padded(&p, lens, sizeof lens);
	poly1305_final(&p, tag);
}

/* XOR head (hn <= CHACHA20_BLOCK bytes) then pt as one message from block 1, into out. */
static void xor_joined(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		       const unsigned char *head, size_t hn, const unsigned char *pt, size_t n,
		       unsigned char *out)
{
	unsigned char b[CHACHA20_BLOCK];
	size_t k = n < CHACHA20_BLOCK - hn ? n : CHACHA20_BLOCK - hn;

	if (!hn) {
		chacha20_xor(key, 1, nonce, pt, n, out);
		return;
	}
	/* The first block put together; from the second on, pt lines up with the keystream. */
	memcpy(b, head, hn);
	if (k)
		memcpy(b + hn, pt, k);
	chacha20_xor(key, 1, nonce, b, hn + k, out);
	if (n > k)
		chacha20_xor(key, 2, nonce, pt + k, n - k, out + CHACHA20_BLOCK);
	mem_wipe(b, sizeof b);
}

/* XOR the n bytes of ct (n >= hn) from block 1: the first hn to head, the rest to out. */
static void xor_split(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		      const unsigned char *ct, size_t n, unsigned char *head, size_t hn,
		      unsigned char *out)
{
	unsigned char b[CHACHA20_BLOCK];
	size_t t = n < CHACHA20_BLOCK ? n : CHACHA20_BLOCK;

	if (!hn) {
		chacha20_xor(key, 1, nonce, ct, n, out);
		return;
	}
	chacha20_xor(key, 1, nonce, ct, t, b);
	memcpy(head, b, hn);
	if (t > hn)
		memcpy(out, b + hn, t - hn);
	if (n > t)
		chacha20_xor(key, 2, nonce, ct + t, n - t, out + (t - hn));
	mem_wipe(b, sizeof b);
}

int aead_seal_parts(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		    const void *ad, size_t adlen, const void *head, size_t hn, const void *pt,
		    size_t n, void *out)
{
	unsigned char block[CHACHA20_BLOCK];
	unsigned char *o = out;

	if (hn > CHACHA20_BLOCK) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)n > AEAD_MAX - hn) {
		errno = EMSGSIZE;
		return -1;
	}
	/* Block 0 gives the one-time Poly1305 key; the message starts at block 1. */
	chacha20_block(key, 0, nonce, block);
	xor_joined(key, nonce, head, hn, pt, n, o);
	aead_tag(block, ad, adlen, o, hn + n, o + hn + n);
	mem_wipe(block, sizeof block);
	return 0;
}

int aead_seal(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
	      const void *ad, size_t adlen, const void *pt, size_t n, void *out)
{
	return aead_seal_parts(key, nonce, ad, adlen, NULL, 0, pt, n, out);
}

int aead_open_parts(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
		    const void *ad, size_t adlen, const void *ct, size_t n, void *head, size_t hn,
		    void *out)
{
	const unsigned char *c = ct;
	unsigned char block[CHACHA20_BLOCK], tag[AEAD_TAG];
	int ok;

	if (hn > CHACHA20_BLOCK) {
		errno = EINVAL;
		return -1;
	}
	if (n < AEAD_TAG) {
		errno = EBADMSG;
		return -1;
	}
	n -= AEAD_TAG;
	if ((uint64_t)n > AEAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	chacha20_block(key, 0, nonce, block);
	aead_tag(block, ad, adlen, c, n, tag);
	ok = mem_equal_ct(tag, c + n, AEAD_TAG) && n >= hn;
	mem_wipe(block, sizeof block);
	mem_wipe(tag, sizeof tag);
	if (!ok) {
		errno = EBADMSG;
		return -1;
	}
	xor_split(key, nonce, c, n, head, hn, out);
	return 0;
}

int aead_open(const unsigned char key[AEAD_KEY], const unsigned char nonce[AEAD_NONCE],
	      const void *ad, size_t adlen, const void *ct, size_t n, void *out)
{
	return aead_open_parts(key, nonce, ad, adlen, ct, n, NULL, 0, out);
}
