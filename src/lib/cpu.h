/*
 * cpu: which vector instructions the CPU running us has, for the
 * cryptography's choice of path at run time (chacha20_simd.c,
 * poly1305_simd.c): one binary for every x86-64, the wide paths where
 * the CPU can run them.
 */
#ifndef SP_CPU_H
#define SP_CPU_H

enum {
	CPU_SCALAR, /* neither below, or not x86-64: the portable code */
	CPU_AVX2,   /* 256-bit vectors */
	CPU_AVX512, /* 512-bit ones too (AVX-512F) */
};

/* The widest of the above the CPU has; the same answer on every call. */
int cpu_vectors(void);

#endif
