#include "poly1305_simd.h"

#include <string.h>

#include "cpu.h"
#include "mem.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/*
 * Eight blocks at once on AVX2, sixteen on AVX-512 (Goll and Gueron's
 * way): lane j sums every eighth (sixteenth) block, times r^8 (r^16) per
 * step, and the lanes are joined at the end times r^8 (r^16) down to r.
 * Limbs of 26 bits, so that vpmuludq's 32 by 32-bit products and their
 * sums fit 64-bit lanes: h under 2^27.2 and 5 r under 2^28.4 make each
 * sum of five under 2^58.
 */
#define M26 0x3ffffffULL

/* The 130-bit value h0 + h1 2^44 + h2 2^88 in five limbs of 26 bits (the top one may be longer). */
static void poly_to26(uint64_t l[5], const uint64_t h[3])
{
	unsigned __int128 acc = h[0] + ((unsigned __int128)h[1] << 44);

	l[0] = (uint64_t)acc & M26, acc >>= 26;
	l[1] = (uint64_t)acc & M26, acc >>= 26;
	acc += (unsigned __int128)h[2] << 36;
	l[2] = (uint64_t)acc & M26, acc >>= 26;
	l[3] = (uint64_t)acc & M26, acc >>= 26;
	l[4] = (uint64_t)acc;
}

/*
 * Back, carried first: the sums of 8 lanes or fewer (under 2^29.1 each) become
 * limbs under 2^26 (the second one under 2^26 + 2^5), so h leaves as
 * poly1305_mul leaves it and the next poly_to26 gives limbs under 2^26.
 */
static void poly_from26(uint64_t h[3], uint64_t l[5])
{
	unsigned __int128 acc;
	uint64_t c;

	for (int i = 0; i < 4; i++)
		c = l[i] >> 26, l[i] &= M26, l[i + 1] += c;
	c = l[4] >> 26, l[4] &= M26, l[0] += c * 5;
	c = l[0] >> 26, l[0] &= M26, l[1] += c;
	acc = l[0] + ((unsigned __int128)l[1] << 26) + ((unsigned __int128)l[2] << 52);
	h[0] = (uint64_t)acc & POLY1305_M44, acc >>= 44;
	acc += ((unsigned __int128)l[3] << 34) + ((unsigned __int128)l[4] << 60);
	h[1] = (uint64_t)acc & POLY1305_M44, acc >>= 44;
	h[2] = (uint64_t)acc;
}

/* r to r^k in limbs of 26 bits: pw[j] is r^(j+1). */
static void poly_powers(const struct poly1305 *p, uint64_t pw[][5], int k)
{
	uint64_t x[3] = {p->r0, p->r1, p->r2};

	poly_to26(pw[0], x);
	for (int j = 1; j < k; j++) {
		poly1305_mul(x, p->r0, p->r1, p->r2, p->s1, p->s2);
		poly_to26(pw[j], x);
	}
	mem_wipe(x, sizeof x);
}

/*
 * The body, made for AVX2 (4 lanes) and AVX-512 (8) by POLYN from the
 * width's operations (VMUL is vpmuludq, of the low 32 bits of each lane).
 * d = h r per lane, s holding 5 r (s[0] unused): what wraps past 2^130
 * comes back times 5.
 */
#define VMULR(d, h, r, s)                                                                          \
	do {                                                                                       \
		d[0] = VADD(VADD(VADD(VMUL(h[0], r[0]), VMUL(h[1], s[4])),                         \
				 VADD(VMUL(h[2], s[3]), VMUL(h[3], s[2]))),                        \
			    VMUL(h[4], s[1]));                                                     \
		d[1] = VADD(VADD(VADD(VMUL(h[0], r[1]), VMUL(h[1], r[0])),                         \
				 VADD(VMUL(h[2], s[4]), VMUL(h[3], s[3]))),                        \
			    VMUL(h[4], s[2]));                                                     \
		d[2] = VADD(VADD(VADD(VMUL(h[0], r[2]), VMUL(h[1], r[1])),                         \
				 VADD(VMUL(h[2], r[0]), VMUL(h[3], s[4]))),                        \
			    VMUL(h[4], s[3]));                                                     \
		d[3] = VADD(VADD(VADD(VMUL(h[0], r[3]), VMUL(h[1], r[2])),                         \
				 VADD(VMUL(h[2], r[1]), VMUL(h[3], r[0]))),                        \
			    VMUL(h[4], s[4]));                                                     \
		d[4] = VADD(VADD(VADD(VMUL(h[0], r[4]), VMUL(h[1], r[3])),                         \
				 VADD(VMUL(h[2], r[2]), VMUL(h[3], r[1]))),                        \
			    VMUL(h[4], r[0]));                                                     \
	} while (0)

/* Each lane's limbs back under 2^26 (limbs 1 and 4 a little over), two chains interleaved. */
#define VCARRY1(d, i, j, c)                                                                        \
	(c = VSRL(d[i], 26), d[i] = VAND(d[i], mask), d[j] = VADD(d[j], c))
#define VCARRY(d)                                                                                  \
	do {                                                                                       \
		VT c;                                                                              \
		VCARRY1(d, 0, 1, c);                                                               \
		VCARRY1(d, 3, 4, c);                                                               \
		VCARRY1(d, 1, 2, c);                                                               \
		c = VSRL(d[4], 26), d[4] = VAND(d[4], mask);                                       \
		d[0] = VADD(d[0], VADD(c, VSLL(c, 2)));                                            \
		VCARRY1(d, 2, 3, c);                                                               \
		VCARRY1(d, 0, 1, c);                                                               \
		VCARRY1(d, 3, 4, c);                                                               \
	} while (0)

/*
 * The limbs of 2 x L / 2 blocks from m, with the 2^128 bit. The 64-bit
 * unpacks of the two halves put block k of the first half in lane 2k and
 * block k of the second in lane 2k + 1: lane i holds block lane_block(i).
 */
#define VLOAD(t, m)                                                                                \
	do {                                                                                       \
		VT a_ = VLOADU(m), b_ = VLOADU((m) + 8 * VL);                                      \
		VT lo = VUNLO(a_, b_), hi = VUNHI(a_, b_);                                         \
		t[0] = VAND(lo, mask);                                                             \
		t[1] = VAND(VSRL(lo, 26), mask);                                                   \
		t[2] = VAND(VOR(VSRL(lo, 52), VSLL(hi, 12)), mask);                                \
		t[3] = VAND(VSRL(hi, 14), mask);                                                   \
		t[4] = VOR(VSRL(hi, 40), VSET1(1 << 24));                                          \
	} while (0)

/* Which block of its L a lane holds (VLOAD's order). */
static int lane_block(int i, int lanes) { return i / 2 + (i % 2) * (lanes / 2); }

/* Limb i of r^(top - lane_block(j)) in lane j, times f: the powers that join the lanes. */
static void join_powers(uint64_t out[], const uint64_t pw[][5], int i, int top, int lanes,
			uint64_t f)
{
	for (int j = 0; j < lanes; j++)
		out[j] = pw[top - lane_block(j, lanes) - 1][i] * f;
}

/*
 * Absorb n bytes, a multiple of 32 VL, as full blocks: two sets of VL
 * lanes, x for the first VL blocks of every 2 VL and y for the other VL,
 * each times r^(2 VL) per step. Two chains, because one step's carries
 * are a long chain of dependent instructions: the other's fill the wait.
 */
#define POLYN(name, ATTR)                                                                          \
	ATTR static void name(struct poly1305 *p, const unsigned char *m, size_t n)                \
	{                                                                                          \
		/* pw zeroed only for the analyzer, which does not follow poly_powers' loop. */    \
		uint64_t pw[2 * VL][5] = {{0}}, h[3] = {p->h0, p->h1, p->h2}, l[5];                \
		uint64_t lane[VL], lr[VL], ls[VL];                                                 \
		const VT mask = VSET1(M26);                                                        \
		VT r[5], s[5], x[5], y[5], t[5], d[5];                                             \
                                                                                                   \
		poly_powers(p, pw, 2 * VL);                                                        \
		for (int i = 0; i < 5; i++) {                                                      \
			r[i] = VSET1(pw[2 * VL - 1][i]);                                           \
			s[i] = VSET1(pw[2 * VL - 1][i] * 5);                                       \
		}                                                                                  \
		/* The first 2 VL blocks, h added to block 0 (lane 0). */                          \
		poly_to26(l, h);                                                                   \
		VLOAD(x, m);                                                                       \
		VLOAD(y, m + 16 * VL);                                                             \
		for (int i = 0; i < 5; i++) {                                                      \
			memset(lane, 0, sizeof lane);                                              \
			lane[0] = l[i];                                                            \
			x[i] = VADD(x[i], VLOADU(lane));                                           \
		}                                                                                  \
		for (m += 32 * VL, n -= 32 * VL; n >= 32 * VL; m += 32 * VL, n -= 32 * VL) {       \
			VMULR(d, x, r, s);                                                         \
			VMULR(t, y, r, s);                                                         \
			VCARRY(d);                                                                 \
			VCARRY(t);                                                                 \
			VLOAD(x, m);                                                               \
			VLOAD(y, m + 16 * VL);                                                     \
			for (int i = 0; i < 5; i++) {                                              \
				x[i] = VADD(d[i], x[i]);                                           \
				y[i] = VADD(t[i], y[i]);                                           \
			}                                                                          \
		}                                                                                  \
		/* x's lanes times r^(2 VL) down to r^(VL + 1), y's r^VL down to r. */             \
		for (int i = 0; i < 5; i++) {                                                      \
			join_powers(lr, pw, i, 2 * VL, VL, 1);                                     \
			join_powers(ls, pw, i, 2 * VL, VL, 5);                                     \
			r[i] = VLOADU(lr), s[i] = VLOADU(ls);                                      \
		}                                                                                  \
		VMULR(d, x, r, s);                                                                 \
		for (int i = 0; i < 5; i++) {                                                      \
			join_powers(lr, pw, i, VL, VL, 1);                                         \
			join_powers(ls, pw, i, VL, VL, 5);                                         \
			r[i] = VLOADU(lr), s[i] = VLOADU(ls);                                      \
		}                                                                                  \
		VMULR(t, y, r, s);                                                                 \
		for (int i = 0; i < 5; i++)                                                        \
			d[i] = VADD(d[i], t[i]);                                                   \
		VCARRY(d);                                                                         \
		for (int i = 0; i < 5; i++) {                                                      \
			VSTOREU(lane, d[i]);                                                       \
			l[i] = 0;                                                                  \
			for (int j = 0; j < VL; j++)                                               \
				l[i] += lane[j];                                                   \
		}                                                                                  \
		poly_from26(h, l);                                                                 \
		p->h0 = h[0], p->h1 = h[1], p->h2 = h[2];                                          \
		mem_wipe(pw, sizeof pw);                                                           \
		mem_wipe(l, sizeof l);                                                             \
		mem_wipe(lane, sizeof lane);                                                       \
		mem_wipe(h, sizeof h);                                                             \
	}

#define VT __m256i
#define VL 4
#define VMUL _mm256_mul_epu32
#define VADD _mm256_add_epi64
#define VSRL _mm256_srli_epi64
#define VSLL _mm256_slli_epi64
#define VAND _mm256_and_si256
#define VOR _mm256_or_si256
#define VSET1(v) _mm256_set1_epi64x((long long)(v))
#define VLOADU(p) _mm256_loadu_si256((const void *)(p))
#define VSTOREU(p, v) _mm256_storeu_si256((void *)(p), v)
#define VUNLO _mm256_unpacklo_epi64
#define VUNHI _mm256_unpackhi_epi64
POLYN(poly_blocks8, __attribute__((target("avx2"))))
#undef VT
#undef VL
#undef VMUL
#undef VADD
#undef VSRL
#undef VSLL
#undef VAND
#undef VOR
#undef VSET1
#undef VLOADU
#undef VSTOREU
#undef VUNLO
#undef VUNHI

#define VT __m512i
#define VL 8
#define VMUL _mm512_mul_epu32
#define VADD _mm512_add_epi64
#define VSRL _mm512_srli_epi64
#define VSLL _mm512_slli_epi64
#define VAND _mm512_and_si512
#define VOR _mm512_or_si512
#define VSET1(v) _mm512_set1_epi64((long long)(v))
#define VLOADU(p) _mm512_loadu_si512((const void *)(p))
#define VSTOREU(p, v) _mm512_storeu_si512((void *)(p), v)
#define VUNLO _mm512_unpacklo_epi64
#define VUNHI _mm512_unpackhi_epi64
/* The AVX-512 instance keeps its width's names: nothing after it uses them. */
POLYN(poly_blocks16, __attribute__((target("avx512f"))))

size_t poly1305_simd_blocks(struct poly1305 *p, const unsigned char *m, size_t n)
{
	size_t done = 0;

	/*
	 * Worth the powers of r from 1024 (AVX-512) or 512 bytes (AVX2) on; in
	 * whole steps of 2 VL blocks (256 and 128 bytes), the rest to the caller.
	 */
	if (n >= 1024 && cpu_vectors() == CPU_AVX512) {
		size_t v = n & ~(size_t)255;
		poly_blocks16(p, m, v);
		m += v, n -= v, done += v;
	}
	if (n >= 512 && cpu_vectors() >= CPU_AVX2) {
		size_t v = n & ~(size_t)127;
		poly_blocks8(p, m, v);
		done += v;
	}
	return done;
}
#else /* no x86-64 vectors: poly1305.c does every block */
size_t poly1305_simd_blocks(struct poly1305 *p, const unsigned char *m, size_t n)
{
	(void)p, (void)m, (void)n;
	return 0;
}
#endif
