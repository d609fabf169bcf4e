#include "chacha.h"

#include <errno.h>
#include <string.h>

#include "cpu.h"
#include "mem.h"

/* Byte order is spelled out: the formats are little-endian whatever the machine is. */
static uint32_t load32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint64_t load64(const unsigned char *p)
{
	return (uint64_t)load32(p) | (uint64_t)load32(p + 4) << 32;
}

static void store64(unsigned char *p, uint64_t v)
{
	store32(p, (uint32_t)v);
	store32(p + 4, (uint32_t)(v >> 32));
}

#define ROTL(v, n) ((v) << (n) | (v) >> (32 - (n)))
#define QR(a, b, c, d)                                                                             \
	do {                                                                                       \
		a += b, d ^= a, d = ROTL(d, 16);                                                   \
		c += d, b ^= c, b = ROTL(b, 12);                                                   \
		a += b, d ^= a, d = ROTL(d, 8);                                                    \
		c += d, b ^= c, b = ROTL(b, 7);                                                    \
	} while (0)

void chacha_qround(uint32_t s[16], int a, int b, int c, int d) { QR(s[a], s[b], s[c], s[d]); }

/* The 20 rounds and the final addition, on words: the one hot loop of the cipher. */
static void core(uint32_t out[16], const uint32_t in[16])
{
	uint32_t x0 = in[0], x1 = in[1], x2 = in[2], x3 = in[3], x4 = in[4], x5 = in[5], x6 = in[6],
		 x7 = in[7], x8 = in[8], x9 = in[9], x10 = in[10], x11 = in[11], x12 = in[12],
		 x13 = in[13], x14 = in[14], x15 = in[15];

	for (int i = 0; i < 10; i++) {
		QR(x0, x4, x8, x12);
		QR(x1, x5, x9, x13);
		QR(x2, x6, x10, x14);
		QR(x3, x7, x11, x15);
		QR(x0, x5, x10, x15);
		QR(x1, x6, x11, x12);
		QR(x2, x7, x8, x13);
		QR(x3, x4, x9, x14);
	}
	out[0] = x0 + in[0], out[1] = x1 + in[1], out[2] = x2 + in[2], out[3] = x3 + in[3];
	out[4] = x4 + in[4], out[5] = x5 + in[5], out[6] = x6 + in[6], out[7] = x7 + in[7];
	out[8] = x8 + in[8], out[9] = x9 + in[9], out[10] = x10 + in[10];
	out[11] = x11 + in[11], out[12] = x12 + in[12], out[13] = x13 + in[13];
	out[14] = x14 + in[14], out[15] = x15 + in[15];
}

#if defined(__GNUC__)
/*
 * Several blocks at once, word i of block j in lane j of vector i: the
 * rounds then run on SSE2 (4 lanes), or AVX2 (8) or AVX-512 (16) where
 * the CPU has them (AVX-512 rotates in one instruction: 3.5 times SSE2).
 * gcc and clang both take this vector extension, and lower it to scalar
 * code on a target without vectors. One body, made twice by XORN.
 */
typedef uint32_t v4 __attribute__((vector_size(16)));
typedef uint32_t v8 __attribute__((vector_size(32)));
typedef uint32_t v16 __attribute__((vector_size(64)));

#define VROTL(v, n) ((v) << (n) | (v) >> (32 - (n)))
#define VQR(a, b, c, d)                                                                            \
	do {                                                                                       \
		a += b, d ^= a, d = VROTL(d, 16);                                                  \
		c += d, b ^= c, b = VROTL(b, 12);                                                  \
		a += b, d ^= a, d = VROTL(d, 8);                                                   \
		c += d, b ^= c, b = VROTL(b, 7);                                                   \
	} while (0)

/*
 * XOR 64 * L bytes of in with the keystream of blocks st[12] to
 * st[12] + L - 1, into out. ks is the caller's, to be wiped once at the
 * end of a message rather than here, at every step: STORE_WORDS goes
 * through it; the wide paths keep the keystream in registers, and take
 * NULL.
 */
#define XORN(name, V, L, CTR, STORE, ...)                                                          \
	__VA_ARGS__ static void name(unsigned char *out, const unsigned char *in,                  \
				     const uint32_t st[16], uint32_t ks[16][L])                    \
	{                                                                                          \
		const V ctr = CTR;                                                                 \
		V x[16];                                                                           \
		for (int i = 0; i < 16; i++)                                                       \
			x[i] = (V){0} + st[i];                                                     \
		x[12] += ctr;                                                                      \
		for (int r = 0; r < 10; r++) {                                                     \
			VQR(x[0], x[4], x[8], x[12]);                                              \
			VQR(x[1], x[5], x[9], x[13]);                                              \
			VQR(x[2], x[6], x[10], x[14]);                                             \
			VQR(x[3], x[7], x[11], x[15]);                                             \
			VQR(x[0], x[5], x[10], x[15]);                                             \
			VQR(x[1], x[6], x[11], x[12]);                                             \
			VQR(x[2], x[7], x[8], x[13]);                                              \
			VQR(x[3], x[4], x[9], x[14]);                                              \
		}                                                                                  \
		for (int i = 0; i < 16; i++)                                                       \
			x[i] += st[i];                                                             \
		x[12] += ctr;                                                                      \
		STORE(out, in, x, ks);                                                             \
	}

/* Block j is lane j of the 16 words: through memory, word by word, on any machine. */
#define STORE_WORDS(out, in, x, ks)                                                                \
	do {                                                                                       \
		memcpy(ks, x, sizeof x); /* lanes in memory order, whatever the byte order */      \
		for (size_t j = 0; j < sizeof ks[0] / sizeof ks[0][0]; j++)                        \
			for (int i = 0; i < 16; i++)                                               \
				store32(out + 64 * j + 4 * i, load32(in + 64 * j + 4 * i) ^ ks[i][j]); \
	} while (0)

#define CTR4 {0, 1, 2, 3}
#define CTR8 {0, 1, 2, 3, 4, 5, 6, 7}
#define CTR16 {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
XORN(xor4, v4, 4, CTR4, STORE_WORDS, )
#if defined(__x86_64__)
#include <immintrin.h>

/*
 * The wide paths turn the 16 vectors of word i around in registers into
 * whole blocks, x86 being little-endian: 32-bit, then 64-bit interleaves
 * make each 128-bit lane k of b[4g + m] words 4g..4g+3 of block 4k + m;
 * the 128-bit lanes then go to their blocks. Ten times fewer instructions
 * than word by word, which took a third of the time.
 */
#define INTERLEAVE(T, b, x)                                                                        \
	do {                                                                                       \
		for (int g = 0; g < 16; g += 4) {                                                  \
			T a0 = UNPACKLO32((T)x[g], (T)x[g + 1]);                                   \
			T a1 = UNPACKHI32((T)x[g], (T)x[g + 1]);                                   \
			T a2 = UNPACKLO32((T)x[g + 2], (T)x[g + 3]);                               \
			T a3 = UNPACKHI32((T)x[g + 2], (T)x[g + 3]);                               \
			b[g] = UNPACKLO64(a0, a2);                                                 \
			b[g + 1] = UNPACKHI64(a0, a2);                                             \
			b[g + 2] = UNPACKLO64(a1, a3);                                             \
			b[g + 3] = UNPACKHI64(a1, a3);                                             \
		}                                                                                  \
	} while (0)

__attribute__((target("avx2"))) static inline void store8(unsigned char *out,
							   const unsigned char *in, const v8 x[16])
{
	__m256i b[16];

#define UNPACKLO32 _mm256_unpacklo_epi32
#define UNPACKHI32 _mm256_unpackhi_epi32
#define UNPACKLO64 _mm256_unpacklo_epi64
#define UNPACKHI64 _mm256_unpackhi_epi64
	INTERLEAVE(__m256i, b, x);
	/* Block 4k + m: lane k of b[m], b[4 + m], then of b[8 + m], b[12 + m]. */
	for (int k = 0; k < 2; k++)
		for (int m = 0; m < 4; m++) {
			unsigned char *o = out + 64 * (4 * k + m);
			const unsigned char *p = in + 64 * (4 * k + m);
			__m256i lo = k ? _mm256_permute2x128_si256(b[m], b[4 + m], 0x31)
				       : _mm256_permute2x128_si256(b[m], b[4 + m], 0x20);
			__m256i hi = k ? _mm256_permute2x128_si256(b[8 + m], b[12 + m], 0x31)
				       : _mm256_permute2x128_si256(b[8 + m], b[12 + m], 0x20);
			lo = _mm256_xor_si256(lo, _mm256_loadu_si256((const void *)p));
			hi = _mm256_xor_si256(hi, _mm256_loadu_si256((const void *)(p + 32)));
			_mm256_storeu_si256((void *)o, lo);
			_mm256_storeu_si256((void *)(o + 32), hi);
		}
#undef UNPACKLO32
#undef UNPACKHI32
#undef UNPACKLO64
#undef UNPACKHI64
}

__attribute__((target("avx512f"))) static inline void store16(unsigned char *out,
							      const unsigned char *in, const v16 x[16])
{
	__m512i b[16];

#define UNPACKLO32 _mm512_unpacklo_epi32
#define UNPACKHI32 _mm512_unpackhi_epi32
#define UNPACKLO64 _mm512_unpacklo_epi64
#define UNPACKHI64 _mm512_unpackhi_epi64
	INTERLEAVE(__m512i, b, x);
	/* Block 4k + m: lane k of b[m], b[4 + m], b[8 + m], b[12 + m], a 4 by 4 turn of lanes. */
	for (int m = 0; m < 4; m++) {
		__m512i e0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44);
		__m512i e1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xee);
		__m512i e2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44);
		__m512i e3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xee);
		__m512i y[4] = {_mm512_shuffle_i32x4(e0, e2, 0x88), _mm512_shuffle_i32x4(e0, e2, 0xdd),
				_mm512_shuffle_i32x4(e1, e3, 0x88), _mm512_shuffle_i32x4(e1, e3, 0xdd)};
		for (int k = 0; k < 4; k++) {
			const unsigned char *p = in + 64 * (4 * k + m);
			__m512i v = _mm512_xor_si512(y[k], _mm512_loadu_si512((const void *)p));
			_mm512_storeu_si512((void *)(out + 64 * (4 * k + m)), v);
		}
	}
#undef UNPACKLO32
#undef UNPACKHI32
#undef UNPACKLO64
#undef UNPACKHI64
}
#undef INTERLEAVE

#define STORE8(out, in, x, ks) ((void)ks, store8(out, in, x))
#define STORE16(out, in, x, ks) ((void)ks, store16(out, in, x))
XORN(xor8, v8, 8, CTR8, STORE8, __attribute__((target("avx2"))))
XORN(xor16, v16, 16, CTR16, STORE16, __attribute__((target("avx512f"))))
#endif
#endif

static void setup(uint32_t st[16], const unsigned char key[CHACHA_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA_NONCE])
{
	/* "expand 32-byte k" */
	st[0] = 0x61707865, st[1] = 0x3320646e, st[2] = 0x79622d32, st[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		st[4 + i] = load32(key + 4 * i);
	st[12] = counter;
	for (int i = 0; i < 3; i++)
		st[13 + i] = load32(nonce + 4 * i);
}

void chacha_block(const unsigned char key[CHACHA_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA_NONCE], unsigned char out[CHACHA_BLOCK])
{
	uint32_t st[16], ks[16];

	setup(st, key, counter, nonce);
	core(ks, st);
	for (int i = 0; i < 16; i++)
		store32(out + 4 * i, ks[i]);
	mem_wipe(st, sizeof st);
	mem_wipe(ks, sizeof ks);
}

void chacha_xor(const unsigned char key[CHACHA_KEY], uint32_t counter,
		const unsigned char nonce[CHACHA_NONCE], const void *in, size_t n, void *out)
{
	const unsigned char *p = in;
	unsigned char *o = out;
	uint32_t st[16], ks[16];

	setup(st, key, counter, nonce);
#if defined(__GNUC__)
/* As many runs of L blocks as there are, by fn, through ks (see XORN). */
#define WIDE(L, fn, ks)                                                                            \
	do {                                                                                       \
		for (; n >= L * CHACHA_BLOCK;                                                      \
		     n -= L * CHACHA_BLOCK, p += L * CHACHA_BLOCK, o += L * CHACHA_BLOCK) {        \
			fn(o, p, st, ks);                                                          \
			st[12] += L;                                                               \
		}                                                                                  \
	} while (0)
#if defined(__x86_64__)
	if (n >= 16 * CHACHA_BLOCK && cpu_vectors() == CPU_AVX512)
		WIDE(16, xor16, NULL);
	if (n >= 8 * CHACHA_BLOCK && cpu_vectors() >= CPU_AVX2)
		WIDE(8, xor8, NULL);
#endif
	if (n >= 4 * CHACHA_BLOCK) {
		uint32_t ks4[16][4];
		WIDE(4, xor4, ks4);
		mem_wipe(ks4, sizeof ks4);
	}
#undef WIDE
#endif
	/* Whole blocks word by word: the loads and stores compile to plain moves. */
	for (; n >= CHACHA_BLOCK; n -= CHACHA_BLOCK, p += CHACHA_BLOCK, o += CHACHA_BLOCK) {
		core(ks, st);
		st[12]++;
		for (int i = 0; i < 16; i++)
			store32(o + 4 * i, load32(p + 4 * i) ^ ks[i]);
	}
	if (n) {
		unsigned char last[CHACHA_BLOCK];
		core(ks, st);
		for (int i = 0; i < 16; i++)
			store32(last + 4 * i, ks[i]);
		for (size_t i = 0; i < n; i++)
			o[i] = p[i] ^ last[i];
		mem_wipe(last, sizeof last);
	}
	mem_wipe(st, sizeof st);
	mem_wipe(ks, sizeof ks);
}

/*
 * Poly1305 with the accumulator and r in three limbs of 44, 44 and 42
 * bits: each product fits an unsigned __int128, no branch or table
 * depends on the key or the message.
 */
struct poly {
	uint64_t r0, r1, r2, s1, s2; /* s1, s2: r1, r2 times 20, for the wrap at 2^130 */
	uint64_t h0, h1, h2;
	uint64_t pad0, pad1; /* s of the key, added at the end */
};

#define M44 0xfffffffffffULL
#define M42 0x3ffffffffffULL
#define HIBIT (1ULL << 40) /* 2^128, the bit a full block gets, in the top limb */

static void poly_init(struct poly *p, const unsigned char key[32])
{
	uint64_t t0 = load64(key), t1 = load64(key + 8);

	/* The clamp of r (RFC 8439 §2.5) folded into the limb masks. */
	p->r0 = t0 & 0xffc0fffffffULL;
	p->r1 = ((t0 >> 44) | (t1 << 20)) & 0xfffffc0ffffULL;
	p->r2 = (t1 >> 24) & 0x00ffffffc0fULL;
	p->s1 = p->r1 * (5 << 2);
	p->s2 = p->r2 * (5 << 2);
	p->h0 = p->h1 = p->h2 = 0;
	p->pad0 = load64(key + 16);
	p->pad1 = load64(key + 24);
}

/* h = h * r modulo 2^130 - 5, partly reduced: the limbs stay under 2^44, 2^44 + 2^12, 2^42. */
static inline void poly_mul(uint64_t h[3], uint64_t r0, uint64_t r1, uint64_t r2, uint64_t s1,
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
	h[0] = (uint64_t)d0 & M44;
	d1 += c;
	c = (uint64_t)(d1 >> 44);
	h[1] = (uint64_t)d1 & M44;
	d2 += c;
	c = (uint64_t)(d2 >> 42);
	h[2] = (uint64_t)d2 & M42;
	h[0] += c * 5;
	c = h[0] >> 44;
	h[0] &= M44;
	h[1] += c;
}

/* Absorb n bytes (a multiple of 16) as blocks, each with hibit added, one at a time. */
static void poly_blocks1(struct poly *p, const unsigned char *m, size_t n, uint64_t hibit)
{
	uint64_t h[3] = {p->h0, p->h1, p->h2};

	for (; n >= 16; n -= 16, m += 16) {
		uint64_t t0 = load64(m), t1 = load64(m + 8);

		h[0] += t0 & M44;
		h[1] += ((t0 >> 44) | (t1 << 20)) & M44;
		h[2] += ((t1 >> 24) & M42) | hibit;
		poly_mul(h, p->r0, p->r1, p->r2, p->s1, p->s2);
	}
	p->h0 = h[0], p->h1 = h[1], p->h2 = h[2];
}

#if defined(__GNUC__) && defined(__x86_64__)
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
 * poly_mul leaves it and the next poly_to26 gives limbs under 2^26.
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
	h[0] = (uint64_t)acc & M44, acc >>= 44;
	acc += ((unsigned __int128)l[3] << 34) + ((unsigned __int128)l[4] << 60);
	h[1] = (uint64_t)acc & M44, acc >>= 44;
	h[2] = (uint64_t)acc;
}

/* r to r^k in limbs of 26 bits: pw[j] is r^(j+1). */
static void poly_powers(const struct poly *p, uint64_t pw[][5], int k)
{
	uint64_t x[3] = {p->r0, p->r1, p->r2};

	poly_to26(pw[0], x);
	for (int j = 1; j < k; j++) {
		poly_mul(x, p->r0, p->r1, p->r2, p->s1, p->s2);
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
	ATTR static void name(struct poly *p, const unsigned char *m, size_t n)                    \
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
POLYN(poly_blocks16, __attribute__((target("avx512f")))) /* its names stay: nothing after uses them */
#endif

/* Absorb n bytes (a multiple of 16) as blocks, each with hibit added. */
static void poly_blocks(struct poly *p, const unsigned char *m, size_t n, uint64_t hibit)
{
#if defined(__GNUC__) && defined(__x86_64__)
	/* Worth the powers of r from 512 (AVX2) or 1024 bytes (AVX-512) on. */
	if (hibit && n >= 1024 && cpu_vectors() == CPU_AVX512) {
		size_t v = n & ~(size_t)255;
		poly_blocks16(p, m, v);
		m += v;
		n -= v;
	}
	if (hibit && n >= 512 && cpu_vectors() >= CPU_AVX2) {
		size_t v = n & ~(size_t)127;
		poly_blocks8(p, m, v);
		m += v;
		n -= v;
	}
#endif
	poly_blocks1(p, m, n, hibit);
}

/* Absorb a last partial block of n < 16 bytes, zero-padded as the AEAD wants it. */
static void poly_pad(struct poly *p, const unsigned char *m, size_t n)
{
	unsigned char b[16] = {0};

	if (!n)
		return;
	memcpy(b, m, n);
	poly_blocks(p, b, 16, HIBIT);
	mem_wipe(b, sizeof b);
}

static void poly_final(struct poly *p, unsigned char tag[CHACHA_TAG])
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
	store64(tag, h0 | h1 << 44);
	store64(tag + 8, h1 >> 20 | h2 << 24);
	mem_wipe(p, sizeof *p);
}

void chacha_poly1305(const unsigned char key[32], const void *msg, size_t n,
		     unsigned char tag[CHACHA_TAG])
{
	const unsigned char *m = msg;
	size_t whole = n & ~(size_t)15;
	struct poly p;

	poly_init(&p, key);
	poly_blocks(&p, m, whole, HIBIT);
	if (n > whole) {
		/* A short last block ends in a 1 byte instead of the 2^128 bit. */
		unsigned char b[16] = {0};
		memcpy(b, m + whole, n - whole);
		b[n - whole] = 1;
		poly_blocks(&p, b, 16, 0);
		mem_wipe(b, sizeof b);
	}
	poly_final(&p, tag);
}

/* The tag over ad, pad, ciphertext, pad and the two lengths (§2.8). */
static void aead_tag(const unsigned char otk[32], const unsigned char *ad, size_t adlen,
		     const unsigned char *ct, size_t n, unsigned char tag[CHACHA_TAG])
{
	unsigned char lens[16];
	struct poly p;

	poly_init(&p, otk);
	/* Guarded: ad or ct may be NULL when empty, and NULL + 0 is undefined. */
	if (adlen) {
		poly_blocks(&p, ad, adlen & ~(size_t)15, HIBIT);
		poly_pad(&p, ad + (adlen & ~(size_t)15), adlen & 15);
	}
	if (n) {
		poly_blocks(&p, ct, n & ~(size_t)15, HIBIT);
		poly_pad(&p, ct + (n & ~(size_t)15), n & 15);
	}
	store64(lens, (uint64_t)adlen);
	store64(lens + 8, (uint64_t)n);
	poly_blocks(&p, lens, 16, HIBIT);
	poly_final(&p, tag);
}

/* XOR head (hn <= CHACHA_BLOCK bytes) then pt as one message from block 1, into out. */
static void xor_joined(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		       const unsigned char *head, size_t hn, const unsigned char *pt, size_t n,
		       unsigned char *out)
{
	unsigned char b[CHACHA_BLOCK];
	size_t k = n < CHACHA_BLOCK - hn ? n : CHACHA_BLOCK - hn;

	if (!hn) {
		chacha_xor(key, 1, nonce, pt, n, out);
		return;
	}
	/* The first block put together; from the second on, pt lines up with the keystream. */
	memcpy(b, head, hn);
	if (k)
		memcpy(b + hn, pt, k);
	chacha_xor(key, 1, nonce, b, hn + k, out);
	if (n > k)
		chacha_xor(key, 2, nonce, pt + k, n - k, out + CHACHA_BLOCK);
	mem_wipe(b, sizeof b);
}

/* XOR the n bytes of ct (n >= hn) from block 1: the first hn to head, the rest to out. */
static void xor_split(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		      const unsigned char *ct, size_t n, unsigned char *head, size_t hn,
		      unsigned char *out)
{
	unsigned char b[CHACHA_BLOCK];
	size_t t = n < CHACHA_BLOCK ? n : CHACHA_BLOCK;

	if (!hn) {
		chacha_xor(key, 1, nonce, ct, n, out);
		return;
	}
	chacha_xor(key, 1, nonce, ct, t, b);
	memcpy(head, b, hn);
	if (t > hn)
		memcpy(out, b + hn, t - hn);
	if (n > t)
		chacha_xor(key, 2, nonce, ct + t, n - t, out + (t - hn));
	mem_wipe(b, sizeof b);
}

int chacha_aead_seal_parts(const unsigned char key[CHACHA_KEY],
			   const unsigned char nonce[CHACHA_NONCE], const void *ad, size_t adlen,
			   const void *head, size_t hn, const void *pt, size_t n, void *out)
{
	unsigned char block[CHACHA_BLOCK];
	unsigned char *o = out;

	if (hn > CHACHA_BLOCK) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)n > CHACHA_AEAD_MAX - hn) {
		errno = EMSGSIZE;
		return -1;
	}
	/* Block 0 gives the one-time Poly1305 key; the message starts at block 1. */
	chacha_block(key, 0, nonce, block);
	xor_joined(key, nonce, head, hn, pt, n, o);
	aead_tag(block, ad, adlen, o, hn + n, o + hn + n);
	mem_wipe(block, sizeof block);
	return 0;
}

int chacha_aead_seal(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *pt, size_t n, void *out)
{
	return chacha_aead_seal_parts(key, nonce, ad, adlen, NULL, 0, pt, n, out);
}

int chacha_aead_open_parts(const unsigned char key[CHACHA_KEY],
			   const unsigned char nonce[CHACHA_NONCE], const void *ad, size_t adlen,
			   const void *ct, size_t n, void *head, size_t hn, void *out)
{
	const unsigned char *c = ct;
	unsigned char block[CHACHA_BLOCK], tag[CHACHA_TAG];
	int ok;

	if (hn > CHACHA_BLOCK) {
		errno = EINVAL;
		return -1;
	}
	if (n < CHACHA_TAG) {
		errno = EBADMSG;
		return -1;
	}
	n -= CHACHA_TAG;
	if ((uint64_t)n > CHACHA_AEAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	chacha_block(key, 0, nonce, block);
	aead_tag(block, ad, adlen, c, n, tag);
	ok = mem_equal_ct(tag, c + n, CHACHA_TAG) && n >= hn;
	mem_wipe(block, sizeof block);
	mem_wipe(tag, sizeof tag);
	if (!ok) {
		errno = EBADMSG;
		return -1;
	}
	xor_split(key, nonce, c, n, head, hn, out);
	return 0;
}

int chacha_aead_open(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *ct, size_t n, void *out)
{
	return chacha_aead_open_parts(key, nonce, ad, adlen, ct, n, NULL, 0, out);
}
