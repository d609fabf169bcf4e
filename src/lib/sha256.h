/* sha256: SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the pool's key proof. */
#ifndef SP_SHA256_H
#define SP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_BLOCK 64

struct sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	size_t fill;	/* bytes waiting in buf */
	unsigned char buf[SHA256_BLOCK];
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Write the digest to out and wipe the state. */
void sha256_final(struct sha256 *s, unsigned char out[SHA256_LEN]);
/* The digest of one buffer. */
void sha256(const void *data, size_t n, unsigned char out[SHA256_LEN]);

/* HMAC-SHA-256 of msg under key (any length; longer than a block is hashed first). */
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t n,
		 unsigned char out[SHA256_LEN]);

#endif
