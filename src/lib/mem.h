/* mem: growing arrays and buffers, the one doubling rule every module uses. */
#ifndef SP_MEM_H
#define SP_MEM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Make room for need elements of elem bytes in the array *pp points to,
 * whose capacity is *cap: the capacity doubles from first (at least need).
 * pp is the address of the array pointer (e.g. &s->conns). Returns 0, or
 * -1 with errno ENOMEM leaving the array and *cap as they were.
 */
int mem_reserve(void *pp, size_t *cap, size_t need, size_t elem, size_t first);

/*
 * Overwrite n bytes with zeros in a way the compiler cannot drop as a dead
 * store: for secrets (keys, MACs, nonces) before their memory is reused.
 */
void mem_wipe(void *p, size_t n);

/*
 * Compare n bytes in time that depends only on n, so a peer cannot learn
 * how much of a guess was right. Returns 1 when equal, 0 otherwise.
 */
int mem_equal_ct(const void *a, const void *b, size_t n);

/* Write n bytes as 2n lowercase hex digits and a NUL into out (room 2n+1). */
void mem_hex(const void *bytes, size_t n, char *out);

/*
 * Little-endian words to and from bytes, whatever the machine's order: the
 * cryptography's formats (chacha20.c, poly1305.c, aead.c) spell it out.
 * Inline, because they sit in the ciphers' inner loops, where a call per
 * word would cost more than the word's work; compilers turn them into
 * plain moves.
 */
static inline uint32_t mem_load32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void mem_store32le(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static inline uint64_t mem_load64le(const unsigned char *p)
{
	return (uint64_t)mem_load32le(p) | (uint64_t)mem_load32le(p + 4) << 32;
}

static inline void mem_store64le(unsigned char *p, uint64_t v)
{
	mem_store32le(p, (uint32_t)v);
	mem_store32le(p + 4, (uint32_t)(v >> 32));
}

#endif
