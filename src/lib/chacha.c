#include "chacha.h"

#include <errno.h>
#include <string.h>

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
 * end of a message rather than here, at every step.
 */
#define XORN(name, V, L, CTR, ...)                                                                 \
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
		memcpy(ks, x, sizeof x); /* lanes in memory order, whatever the byte order */      \
		for (int j = 0; j < L; j++)                                                        \
			for (int i = 0; i < 16; i++)                                               \
				store32(out + 64 * j + 4 * i, load32(in + 64 * j + 4 * i) ^ ks[i][j]); \
	}

#define CTR4 {0, 1, 2, 3}
#define CTR8 {0, 1, 2, 3, 4, 5, 6, 7}
#define CTR16 {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
XORN(xor4, v4, 4, CTR4, )
#if defined(__x86_64__)
XORN(xor8, v8, 8, CTR8, __attribute__((target("avx2"))))
XORN(xor16, v16, 16, CTR16, __attribute__((target("avx512f"))))

/* The widest vectors the CPU has, asked once: 2 AVX-512, 1 AVX2, 0 neither. */
static int wide_lanes(void)
{
	static int known = -1;

	if (known < 0) {
		__builtin_cpu_init();
		known = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
	}
	return known;
}
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
/* As many runs of L blocks as there are, by fn; its keystream wiped after. */
#define WIDE(L, fn)                                                                                \
	do {                                                                                       \
		uint32_t ksw[16][L];                                                               \
		for (; n >= L * CHACHA_BLOCK;                                                      \
		     n -= L * CHACHA_BLOCK, p += L * CHACHA_BLOCK, o += L * CHACHA_BLOCK) {        \
			fn(o, p, st, ksw);                                                         \
			st[12] += L;                                                               \
		}                                                                                  \
		mem_wipe(ksw, sizeof ksw);                                                         \
	} while (0)
#if defined(__x86_64__)
	if (n >= 16 * CHACHA_BLOCK && wide_lanes() == 2)
		WIDE(16, xor16);
	if (n >= 8 * CHACHA_BLOCK && wide_lanes() >= 1)
		WIDE(8, xor8);
#endif
	if (n >= 4 * CHACHA_BLOCK)
		WIDE(4, xor4);
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

/* Absorb n bytes (a multiple of 16) as blocks, each with hibit added. */
static void poly_blocks(struct poly *p, const unsigned char *m, size_t n, uint64_t hibit)
{
	const uint64_t r0 = p->r0, r1 = p->r1, r2 = p->r2, s1 = p->s1, s2 = p->s2;
	uint64_t h0 = p->h0, h1 = p->h1, h2 = p->h2;

	for (; n >= 16; n -= 16, m += 16) {
		uint64_t t0 = load64(m), t1 = load64(m + 8), c;
		unsigned __int128 d0, d1, d2;

		h0 += t0 & M44;
		h1 += ((t0 >> 44) | (t1 << 20)) & M44;
		h2 += ((t1 >> 24) & M42) | hibit;
		d0 = (unsigned __int128)h0 * r0 + (unsigned __int128)h1 * s2 +
		     (unsigned __int128)h2 * s1;
		d1 = (unsigned __int128)h0 * r1 + (unsigned __int128)h1 * r0 +
		     (unsigned __int128)h2 * s2;
		d2 = (unsigned __int128)h0 * r2 + (unsigned __int128)h1 * r1 +
		     (unsigned __int128)h2 * r0;
		c = (uint64_t)(d0 >> 44);
		h0 = (uint64_t)d0 & M44;
		d1 += c;
		c = (uint64_t)(d1 >> 44);
		h1 = (uint64_t)d1 & M44;
		d2 += c;
		c = (uint64_t)(d2 >> 42);
		h2 = (uint64_t)d2 & M42;
		h0 += c * 5;
		c = h0 >> 44;
		h0 &= M44;
		h1 += c;
	}
	p->h0 = h0, p->h1 = h1, p->h2 = h2;
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

int chacha_aead_seal(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *pt, size_t n, void *out)
{
	unsigned char block[CHACHA_BLOCK];
	unsigned char *o = out;

	if ((uint64_t)n > CHACHA_AEAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	/* Block 0 gives the one-time Poly1305 key; the message starts at block 1. */
	chacha_block(key, 0, nonce, block);
	chacha_xor(key, 1, nonce, pt, n, o);
	aead_tag(block, ad, adlen, o, n, o + n);
	mem_wipe(block, sizeof block);
	return 0;
}

int chacha_aead_open(const unsigned char key[CHACHA_KEY], const unsigned char nonce[CHACHA_NONCE],
		     const void *ad, size_t adlen, const void *ct, size_t n, void *out)
{
	const unsigned char *c = ct;
	unsigned char block[CHACHA_BLOCK], tag[CHACHA_TAG];
	int ok;

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
	ok = mem_equal_ct(tag, c + n, CHACHA_TAG);
	mem_wipe(block, sizeof block);
	mem_wipe(tag, sizeof tag);
	if (!ok) {
		errno = EBADMSG;
		return -1;
	}
	chacha_xor(key, 1, nonce, c, n, out);
	return 0;
}
