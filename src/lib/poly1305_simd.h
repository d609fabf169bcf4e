/*
 * poly1305_simd: Poly1305 over many blocks at once, for poly1305.c: 8
 * blocks a step on AVX2 and 16 on AVX-512 (two chains of 4 or 8 lanes),
 * where the CPU has them (cpu.h).
 */
#ifndef SP_POLY1305_SIMD_H
#define SP_POLY1305_SIMD_H

#include <stddef.h>

#include "poly1305.h"

/*
 * Absorb the first blocks of the n bytes of m (full 16-byte blocks, each
 * with the 2^128 bit) into p, as many as the widest path the CPU has
 * takes in whole steps: from 1024 bytes on AVX-512 and 512 on AVX2,
 * where the powers of r they need are worth making. Returns the bytes
 * absorbed (0 when n is shorter, or without the CPU or compiler for it);
 * the caller absorbs the rest.
 */
size_t poly1305_simd_blocks(struct poly1305 *p, const unsigned char *m, size_t n);

#endif
