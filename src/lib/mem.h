/* mem: growing arrays and buffers, the one doubling rule every module uses. */
#ifndef SP_MEM_H
#define SP_MEM_H

#include <stddef.h>

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

#endif
