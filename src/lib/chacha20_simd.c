#include "chacha20_simd.h"

#include <string.h>

#include "chacha20.h"
#include "cpu.h"
#include "mem.h"

#if defined(__GNUC__)
/*
 * Several blocks at once, word i of block j in lane j of vector i: the
 * rounds then run on SSE2 (4 lanes), or AVX2 (8) or AVX-512 (16) where
 * the CPU has them (AVX-512 rotates in one instruction: 3.5 times SSE2).
 * gcc and clang both take this vector extension, and lower it to scalar
 * code on a target without vectors. One body, made three times by XORN.
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
				mem_store32le(out + 64 * j + 4 * i,                                \
					      mem_load32le(in + 64 * j + 4 * i) ^ ks[i][j]);       \
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
#endif /* __x86_64__ */

/* As many runs of L blocks as there are, by fn, through ks (see XORN). */
#define WIDE(L, fn, ks)                                                                            \
	do {                                                                                       \
		for (; n >= L * CHACHA20_BLOCK; n -= L * CHACHA20_BLOCK, in += L * CHACHA20_BLOCK, \
						out += L * CHACHA20_BLOCK,                         \
						done += L * CHACHA20_BLOCK) {                      \
			fn(out, in, st, ks);                                                       \
			st[12] += L;                                                               \
		}                                                                                  \
	} while (0)

size_t chacha20_simd_xor(uint32_t st[16], const unsigned char *in, size_t n, unsigned char *out)
{
	size_t done = 0;

#if defined(__x86_64__)
	if (n >= 16 * CHACHA20_BLOCK && cpu_vectors() == CPU_AVX512)
		WIDE(16, xor16, NULL);
	if (n >= 8 * CHACHA20_BLOCK && cpu_vectors() >= CPU_AVX2)
		WIDE(8, xor8, NULL);
#endif
	if (n >= 4 * CHACHA20_BLOCK) {
		uint32_t ks4[16][4];
		WIDE(4, xor4, ks4);
		mem_wipe(ks4, sizeof ks4);
	}
	return done;
}
#else /* no vector extension: chacha20.c does every block */
size_t chacha20_simd_xor(uint32_t st[16], const unsigned char *in, size_t n, unsigned char *out)
{
	(void)st, (void)in, (void)n, (void)out;
	return 0;
}
#endif
