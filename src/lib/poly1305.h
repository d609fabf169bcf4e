/*
 * poly1305: the Poly1305 one-time authenticator as RFC 8439 defines it,
 * constant time in the key and the message. The authenticator half of the
 * channel's AEAD (aead.h); long runs of blocks go to the vector paths
 * (poly1305_simd.h).
 */
#ifndef SP_POLY1305_H
#define SP_POLY1305_H

#include <stddef.h>
#include <stdint.h>

#define POLY1305_KEY 32 /* r, then s, 16 bytes each; never used for two messages */
#define POLY1305_TAG 16

/*
 * A Poly1305 computation under way, the accumulator h and r in three
 * limbs of 44, 44 and 42 bits: each product fits an unsigned __int128,
 * no branch or table depends on the key or the message. Public so that
 * a caller (aead.c) can hold one on its stack; poly1305_simd.c reads and
 * updates r and h; no one else touches the fields.
 */
struct poly1305 {
	uint64_t r0, r1, r2, s1, s2; /* s1, s2: r1, r2 times 20, for the wrap at 2^130 */
	uint64_t h0, h1, h2;
	uint64_t pad0, pad1; /* s of the key, added at the end */
};

#define POLY1305_M44 0xfffffffffffULL /* the masks of the limbs */
#define POLY1305_M42 0x3ffffffffffULL

/* The tag of the n bytes of msg under the one-time key (§2.5). */
void poly1305_mac(const unsigned char key[POLY1305_KEY], const void *msg, size_t n,
		  unsigned char tag[POLY1305_TAG]);

/*
 * The same in steps, as the AEAD (§2.8) takes it: start, then absorb each
 * piece zero-padded to a multiple of 16 bytes (m may be NULL when n is 0:
 * nothing is absorbed), then the tag, which wipes *p.
 */
void poly1305_init(struct poly1305 *p, const unsigned char key[POLY1305_KEY]);
void poly1305_update_padded(struct poly1305 *p, const void *m, size_t n);
void poly1305_final(struct poly1305 *p, unsigned char tag[POLY1305_TAG]);

/*
 * h = h r modulo 2^130 - 5, partly reduced: the limbs stay under 2^44,
 * 2^44 + 2^12, 2^42; s1, s2 as in struct poly1305. Inline here because
 * both poly1305.c's block loop and poly1305_simd.c's powers of r run it
 * in their loops, with r in registers: out of line, a call per
 * multiplication made a 600-byte MAC (the AVX2 path) 6% slower.
 */
static inline void poly1305_mul(uint64_t h[3], uint64_t r0, uint64_t r1, uint64_t r2, uint64_t s1,
				uint64_t s2)
{
	unsigned __int128 d0, d1, d2;
	uint64_t c;

	d0 = (unsigned __int128)h[0] * r0 + (unsigned __int128)h[1] * s2 +
	     (unsigned __int128)h[2] * s1;
	d1 = (unsigned __int128)h[0] * r1 + (unsigned __int128)h[1] * r0 +
	     (unsigned __int128)h[2] * s2;
	d2 = (unsigned __int128)h[0] * r2 + (unsigned __int128)h[1] * r1 +
	     (unsigned __int128)h[2] * r0;
	c = (uint64_t)(d0 >> 44);
	h[0] = (uint64_t)d0 & POLY1305_M44;
	d1 += c;
	c = (uint64_t)(d1 >> 44);
	h[1] = (uint64_t)d1 & POLY1305_M44;
	d2 += c;
	c = (uint64_t)(d2 >> 42);
	h[2] = (uint64_t)d2 & POLY1305_M42;
	h[0] += c * 5;
	c = h[0] >> 44;
	h[0] &= POLY1305_M44;
	h[1] += c;
}

#endif
