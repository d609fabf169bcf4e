#include "poly1305.h"

#include <string.h>

#include "mem.h"
#include "poly1305_simd.h"

#define M44 POLY1305_M44
#define M42 POLY1305_M42
#define HIBIT (1ULL << 40) /* 2^128, the bit a full block gets, in the top limb */

void poly1305_init(struct poly1305 *p, const unsigned char key[POLY1305_KEY])
{
	uint64_t t0 = mem_load64le(key), t1 = mem_load64le(key + 8);

	/* The clamp of r (RFC 8439 §2.5) folded into the limb masks. */
	p->r0 = t0 & 0xffc0fffffffULL;
	p->r1 = ((t0 >> 44) | (t1 << 20)) & 0xfffffc0ffffULL;
	p->r2 = (t1 >> 24) & 0x00ffffffc0fULL;
	p->s1 = p->r1 * (5 << 2);
	p->s2 = p->r2 * (5 << 2);
	p->h0 = p->h1 = p->h2 = 0;
	p->pad0 = mem_load64le(key + 16);
	p->pad1 = mem_load64le(key + 24);
}

/* Absorb n bytes (a multiple of 16) as blocks, each with hibit added, one at a time. */
static void poly_blocks1(struct poly1305 *p, const unsigned char *m, size_t n, uint64_t hibit)
{
	uint64_t h[3] = {p->h0, p->h1, p->h2};

	for (; n >= 16; n -= 16, m += 16) {
		uint64_t t0 = mem_load64le(m), t1 = mem_load64le(m + 8);

		h[0] += t0 & M44;
		h[1] += ((t0 >> 44) | (t1 << 20)) & M44;
		h[2] += ((t1 >> 24) & M42) | hibit;
		poly1305_mul(h, p->r0, p->r1, p->r2, p->s1, p->s2);
	}
	p->h0 = h[0], p->h1 = h[1], p->h2 = h[2];
}

/* Absorb n bytes (a multiple of 16) as blocks, each with hibit added. */
static void poly_blocks(struct poly1305 *p, const unsigned char *m, size_t n, uint64_t hibit)
{
	/* The vector paths add the 2^128 bit themselves: full blocks only. */
	if (hibit) {
		size_t v = poly1305_simd_blocks(p, m, n);
		if (v) /* m may be NULL when n is 0 (a MAC of nothing): no NULL + 0 */
			m += v, n -= v;
	}
	poly_blocks1(p, m, n, hibit);
}

/* Absorb a last partial block of n < 16 bytes, zero-padded as the AEAD wants it. */
static void poly_pad(struct poly1305 *p, const unsigned char *m, size_t n)
{
	unsigned char b[16] = {0};

	if (!n)
		return;
	memcpy(b, m, n);
	poly_blocks(p, b, 16, HIBIT);
	mem_wipe(b, sizeof b);
}

void poly1305_final(struct poly1305 *p, unsigned char tag[POLY1305_TAG])
{
	uint64_t h0 = p->h0, h1 = p->h1, h2 = p->h2, g0, g1, g2, c, mask;

	/* Carry fully, then take h - p instead of h when it does not borrow. */
	c = h1 >> 44, h1 &= M44, h2 += c;
	c = h2 >> 42, h2 &= M42, h0 += c * 5;
	c = h0 >> 44, h0 &= M44, h1 += c;
	c = h1 >> 44, h1 &= M44, h2 += c;
	c = h2 >> 42, h2 &= M42, h0 += c * 5;
	c = h0 >> 44, h0 &= M44, h1 += c;
	g0 = h0 + 5, c = g0 >> 44, g0 &= M44;
	g1 = h1 + c, c = g1 >> 44, g1 &= M44;
	g2 = h2 + c - (1ULL << 42);
	mask = (g2 >> 63) - 1; /* all ones when h >= p */
	h0 = (h0 & ~mask) | (g0 & mask);
	h1 = (h1 & ~mask) | (g1 & mask);
	h2 = (h2 & ~mask) | (g2 & mask);
	/* + s, modulo 2^128 */
	h0 += p->pad0 & M44, c = h0 >> 44, h0 &= M44;
	h1 += (((p->pad0 >> 44) | (p->pad1 << 20)) & M44) + c, c = h1 >> 44, h1 &= M44;
	h2 += ((p->pad1 >> 24) & M42) + c, h2 &= M42;
	mem_store64le(tag, h0 | h1 << 44);
	mem_store64le(tag + 8, h1 >> 20 | h2 << 24);
	mem_wipe(p, sizeof *p);
}

void poly1305_mac(const unsigned char key[POLY1305_KEY], const void *msg, size_t n,
		  unsigned char tag[POLY1305_TAG])
{
	const unsigned char *m = msg;
	size_t whole = n & ~(size_t)15;
	struct poly1305 p;

	poly1305_init(&p, key);
	poly_blocks(&p, m, whole, HIBIT);
	if (n > whole) {
		/* A short last block ends in a 1 byte instead of the 2^128 bit. */
		unsigned char b[16] = {0};
		memcpy(b, m + whole, n - whole);
		b[n - whole] = 1;
		poly_blocks(&p, b, 16, 0);
		mem_wipe(b, sizeof b);
	}
	poly1305_final(&p, tag);
}

void poly1305_update_padded(struct poly1305 *p, const void *m, size_t n)
{
	const unsigned char *b = m;
	size_t whole = n & ~(size_t)15;

	/* Guarded: m may be NULL when n is 0, and NULL + 0 is undefined. */
	if (!n)
		return;
	poly_blocks(p, b, whole, HIBIT);
	poly_pad(p, b + whole, n - whole);
}
