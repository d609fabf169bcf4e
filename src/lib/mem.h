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

#endif
