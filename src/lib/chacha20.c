#include "chacha20.h"

#include "chacha20_simd.h"
#include "mem.h"

#define ROTL(v, n) ((v) << (n) | (v) >> (32 - (n)))
#define QR(a, b, c, d)                                                                             \
	do {                                                                                       \
		a += b, d ^= a, d = ROTL(d, 16);                                                   \
		c += d, b ^= c, b = ROTL(b, 12);                                                   \
		a += b, d ^= a, d = ROTL(d, 8);                                                    \
		c += d, b ^= c, b = ROTL(b, 7);                                                    \
	} while (0)

void chacha20_qround(uint32_t s[16], int a, int b, int c, int d) { QR(s[a], s[b], s[c], s[d]); }

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

static void setup(uint32_t st[16], const unsigned char key[CHACHA20_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA20_NONCE])
{
	/* "expand 32-byte k" */
	st[0] = 0x61707865, st[1] = 0x3320646e, st[2] = 0x79622d32, st[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		st[4 + i] = mem_load32le(key + 4 * i);
	st[12] = counter;
	for (int i = 0; i < 3; i++)
		st[13 + i] = mem_load32le(nonce + 4 * i);
}

void chacha20_block(const unsigned char key[CHACHA20_KEY], uint32_t counter,
		    const unsigned char nonce[CHACHA20_NONCE], unsigned char out[CHACHA20_BLOCK])
{
	uint32_t st[16], ks[16];

	setup(st, key, counter, nonce);
	core(ks, st);
	for (int i = 0; i < 16; i++)
		mem_store32le(out + 4 * i, ks[i]);
	mem_wipe(st, sizeof st);
	mem_wipe(ks, sizeof ks);
}

void chacha20_xor(const unsigned char key[CHACHA20_KEY], uint32_t counter,
		  const unsigned char nonce[CHACHA20_NONCE], const void *in, size_t n, void *out)
{
	const unsigned char *p = in;
	unsigned char *o = out;
	uint32_t st[16], ks[16];
	size_t done;

	setup(st, key, counter, nonce);
	/* Runs of 4, 8 or 16 blocks on vectors; what is left, under 4 blocks, here. */
	done = chacha20_simd_xor(st, p, n, o);
	if (done) /* in may be NULL when n is 0, and NULL + 0 is undefined */
		p += done, o += done, n -= done;
	/* Whole blocks word by word: the loads and stores compile to plain moves. */
	for (; n >= CHACHA20_BLOCK; n -= CHACHA20_BLOCK, p += CHACHA20_BLOCK, o += CHACHA20_BLOCK) {
		core(ks, st);
		st[12]++;
		for (int i = 0; i < 16; i++)
			mem_store32le(o + 4 * i, mem_load32le(p + 4 * i) ^ ks[i]);
	}
	if (n) {
		unsigned char last[CHACHA20_BLOCK];
		core(ks, st);
		for (int i = 0; i < 16; i++)
			mem_store32le(last + 4 * i, ks[i]);
		for (size_t i = 0; i < n; i++)
			o[i] = p[i] ^ last[i];
		mem_wipe(last, sizeof last);
	}
	mem_wipe(st, sizeof st);
	mem_wipe(ks, sizeof ks);
}
