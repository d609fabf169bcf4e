/*
 * chacha20_simd: ChaCha20 several blocks at once, for chacha20.c. With
 * gcc or clang, 4 blocks on the vectors every x86-64 has (SSE2; plain
 * code elsewhere), and where the CPU has them (cpu.h) 8 on AVX2 and 16
 * on AVX-512.
 */
#ifndef SP_CHACHA20_SIMD_H
#define SP_CHACHA20_SIMD_H

#include <stddef.h>
#include <stdint.h>

/*
 * XOR in with the keystream of the state st (chacha20.c's setup), into
 * out, in runs of 16, 8 and 4 blocks while n holds one, widest first;
 * st[12], the block counter, moves past the blocks done. Returns the
 * bytes done, a multiple of 256: 0 when n is under 256 (or the compiler
 * has no vector extension), and leaves the rest, under 4 blocks, to the
 * caller. in and out as chacha20_xor.
 */
size_t chacha20_simd_xor(uint32_t st[16], const unsigned char *in, size_t n, unsigned char *out);

#endif
