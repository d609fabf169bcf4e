#include "x25519.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "mem.h"

/*
 * Field elements mod p = 2^255 - 19 in five limbs of 51 bits: a product
 * of two limbs fits an unsigned __int128 with room for the sums, which
 * makes a multiplication 25 machine multiplies (the 16-limb form of
 * TweetNaCl needs 256 and is several times slower).
 *
 * Bounds: fe_mul, fe_sq and fe_mul_small return limbs below 2^51 + 2^13;
 * fe_add of two of those stays below 2^53, fe_sub (which adds 2p first)
 * too, and fe_mul and fe_sq accept inputs below 2^54.
 */
typedef uint64_t fe[5];
typedef unsigned __int128 u128;

#define MASK51 ((1ULL << 51) - 1)

static void fe_copy(fe h, const fe f) { memcpy(h, f, sizeof(fe)); }

static void fe_set(fe h, uint64_t v) { h[0] = v, h[1] = h[2] = h[3] = h[4] = 0; }

static void fe_add(fe h, const fe f, const fe g)
{
	for (int i = 0; i < 5; i++)
		h[i] = f[i] + g[i];
}

/* f - g + 2p, limb by limb, so that no limb goes below zero. */
static void fe_sub(fe h, const fe f, const fe g)
{
	h[0] = f[0] + 0xfffffffffffdaULL - g[0];
	h[1] = f[1] + 0xffffffffffffeULL - g[1];
	h[2] = f[2] + 0xffffffffffffeULL - g[2];
	h[3] = f[3] + 0xffffffffffffeULL - g[3];
	h[4] = f[4] + 0xffffffffffffeULL - g[4];
}

/* Carry the five 128-bit column sums into limbs; 2^255 wraps around as 19. */
static void fe_carry(fe h, u128 t0, u128 t1, u128 t2, u128 t3, u128 t4)
{
	uint64_t c;

	c = (uint64_t)(t0 >> 51), h[0] = (uint64_t)t0 & MASK51, t1 += c;
	c = (uint64_t)(t1 >> 51), h[1] = (uint64_t)t1 & MASK51, t2 += c;
	c = (uint64_t)(t2 >> 51), h[2] = (uint64_t)t2 & MASK51, t3 += c;
	c = (uint64_t)(t3 >> 51), h[3] = (uint64_t)t3 & MASK51, t4 += c;
	c = (uint64_t)(t4 >> 51), h[4] = (uint64_t)t4 & MASK51;
	h[0] += c * 19;
	c = h[0] >> 51, h[0] &= MASK51, h[1] += c;
}

static void fe_mul(fe h, const fe f, const fe g)
{
	const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
	const uint64_t g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4];
	const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
	u128 t0, t1, t2, t3, t4;

	t0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 +
	     (u128)f4 * g1_19;
	t1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
	t2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
	t3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
	t4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
	fe_carry(h, t0, t1, t2, t3, t4);
}

static void fe_sq(fe h, const fe f)
{
	const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
	const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1, f3_38 = 38 * f3, f4_19 = 19 * f4,
		       f4_38 = 38 * f4;
	u128 t0, t1, t2, t3, t4;

	t0 = (u128)f0 * f0 + (u128)f1 * f4_38 + (u128)f2 * f3_38;
	t1 = (u128)f0_2 * f1 + (u128)f2 * f4_38 + (u128)f3 * (19 * f3);
	t2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3 * f4_38;
	t3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4 * f4_19;
	t4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
	fe_carry(h, t0, t1, t2, t3, t4);
}

/* h = f * 2^k squarings */
static void fe_sqn(fe h, const fe f, int k)
{
	fe_sq(h, f);
	while (--k > 0)
		fe_sq(h, h);
}

static void fe_mul_small(fe h, const fe f, uint64_t s)
{
	fe_carry(h, (u128)f[0] * s, (u128)f[1] * s, (u128)f[2] * s, (u128)f[3] * s, (u128)f[4] * s);
}

/* Swap f and g when swap is 1, leave them when 0, with the same instructions either way. */
static void fe_cswap(fe f, fe g, uint64_t swap)
{
	uint64_t mask = 0 - swap;

	for (int i = 0; i < 5; i++) {
		uint64_t x = mask & (f[i] ^ g[i]);
		f[i] ^= x;
		g[i] ^= x;
	}
}

/* z^(p-2) = 1/z (0 for 0), by the usual chain of 254 squarings and 11 multiplications. */
static void fe_invert(fe out, const fe z)
{
	fe z2, z9, z11, z2_5_0, z2_10_0, z2_20_0, z2_50_0, z2_100_0, t;

	fe_sq(z2, z);		    /* 2 */
	fe_sqn(t, z2, 2);	    /* 8 */
	fe_mul(z9, t, z);	    /* 9 */
	fe_mul(z11, z9, z2);	    /* 11 */
	fe_sq(t, z11);		    /* 22 */
	fe_mul(z2_5_0, t, z9);	    /* 2^5 - 1 */
	fe_sqn(t, z2_5_0, 5);	    /* 2^10 - 2^5 */
	fe_mul(z2_10_0, t, z2_5_0); /* 2^10 - 1 */
	fe_sqn(t, z2_10_0, 10);
	fe_mul(z2_20_0, t, z2_10_0); /* 2^20 - 1 */
	fe_sqn(t, z2_20_0, 20);
	fe_mul(t, t, z2_20_0); /* 2^40 - 1 */
	fe_sqn(t, t, 10);
	fe_mul(z2_50_0, t, z2_10_0); /* 2^50 - 1 */
	fe_sqn(t, z2_50_0, 50);
	fe_mul(z2_100_0, t, z2_50_0); /* 2^100 - 1 */
	fe_sqn(t, z2_100_0, 100);
	fe_mul(t, t, z2_100_0); /* 2^200 - 1 */
	fe_sqn(t, t, 50);
	fe_mul(t, t, z2_50_0); /* 2^250 - 1 */
	fe_sqn(t, t, 5);       /* 2^255 - 2^5 */
	fe_mul(out, t, z11);   /* 2^255 - 21 = p - 2 */
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void fe_frombytes(fe h, const unsigned char s[32])
{
	h[0] = load64(s) & MASK51;
	h[1] = (load64(s + 6) >> 3) & MASK51;
	h[2] = (load64(s + 12) >> 6) & MASK51;
	h[3] = (load64(s + 19) >> 1) & MASK51;
	h[4] = (load64(s + 24) >> 12) & MASK51; /* drops bit 255, as RFC 7748 §5 requires */
}

/* The canonical encoding: fully reduced below p, little-endian. */
static void fe_tobytes(unsigned char s[32], const fe f)
{
	uint64_t h0 = f[0], h1 = f[1], h2 = f[2], h3 = f[3], h4 = f[4], c, q;

	/* Two carry rounds leave h below 2^255 + small; then subtract p once if h >= p. */
	for (int round = 0; round < 2; round++) {
		c = h0 >> 51, h0 &= MASK51, h1 += c;
		c = h1 >> 51, h1 &= MASK51, h2 += c;
		c = h2 >> 51, h2 &= MASK51, h3 += c;
		c = h3 >> 51, h3 &= MASK51, h4 += c;
		c = h4 >> 51, h4 &= MASK51, h0 += c * 19;
	}
	q = (h0 + 19) >> 51;
	q = (h1 + q) >> 51;
	q = (h2 + q) >> 51;
	q = (h3 + q) >> 51;
	q = (h4 + q) >> 51; /* 1 exactly when h >= p */
	h0 += 19 * q;
	c = h0 >> 51, h0 &= MASK51, h1 += c;
	c = h1 >> 51, h1 &= MASK51, h2 += c;
	c = h2 >> 51, h2 &= MASK51, h3 += c;
	c = h3 >> 51, h3 &= MASK51, h4 += c;
	h4 &= MASK51; /* the 2^255 that subtracting p leaves */

	uint64_t w[4] = {h0 | h1 << 51, h1 >> 13 | h2 << 38, h2 >> 26 | h3 << 25,
			 h3 >> 39 | h4 << 12};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			s[8 * i + j] = (unsigned char)(w[i] >> 8 * j);
}

int x25519(unsigned char out[X25519_LEN], const unsigned char scalar[X25519_LEN],
	   const unsigned char point[X25519_LEN])
{
	unsigned char k[32];
	fe x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb;
	uint64_t swap = 0;
	unsigned char zero = 0;

	memcpy(k, scalar, sizeof k);
	k[0] &= 248;
	k[31] &= 127;
	k[31] |= 64;
	fe_frombytes(x1, point);
	fe_set(x2, 1);
	fe_set(z2, 0);
	fe_copy(x3, x1);
	fe_set(z3, 1);
	/* RFC 7748 §5, step for step; a24 = (486662 - 2) / 4 = 121665. */
	for (int t = 254; t >= 0; t--) {
		uint64_t kt = (k[t >> 3] >> (t & 7)) & 1;
		swap ^= kt;
		fe_cswap(x2, x3, swap);
		fe_cswap(z2, z3, swap);
		swap = kt;
		fe_add(a, x2, z2);
		fe_sq(aa, a);
		fe_sub(b, x2, z2);
		fe_sq(bb, b);
		fe_sub(e, aa, bb);
		fe_add(c, x3, z3);
		fe_sub(d, x3, z3);
		fe_mul(da, d, a);
		fe_mul(cb, c, b);
		fe_add(x3, da, cb);
		fe_sq(x3, x3);
		fe_sub(z3, da, cb);
		fe_sq(z3, z3);
		fe_mul(z3, z3, x1);
		fe_mul(x2, aa, bb);
		fe_mul_small(z2, e, 121665);
		fe_add(z2, z2, aa);
		fe_mul(z2, z2, e);
	}
	fe_cswap(x2, x3, swap);
	fe_cswap(z2, z3, swap);
	fe_invert(z2, z2);
	fe_mul(x2, x2, z2);
	fe_tobytes(out, x2);

	mem_wipe(k, sizeof k);
	mem_wipe(x2, sizeof x2), mem_wipe(z2, sizeof z2);
	mem_wipe(x3, sizeof x3), mem_wipe(z3, sizeof z3);
	mem_wipe(a, sizeof a), mem_wipe(aa, sizeof aa), mem_wipe(b, sizeof b);
	mem_wipe(bb, sizeof bb), mem_wipe(e, sizeof e), mem_wipe(c, sizeof c);
	mem_wipe(d, sizeof d), mem_wipe(da, sizeof da), mem_wipe(cb, sizeof cb);
	for (int i = 0; i < X25519_LEN; i++)
		zero |= out[i];
	if (!zero) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int x25519_base(unsigned char out[X25519_LEN], const unsigned char scalar[X25519_LEN])
{
	static const unsigned char nine[X25519_LEN] = {9};

	return x25519(out, scalar, nine);
}
