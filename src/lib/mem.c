#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int mem_reserve(void *pp, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	void *p, *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem) {
			errno = ENOMEM;
			return -1;
		}
		ncap *= 2;
	}
	/* The caller's pointer is typed; move it through memcpy, not a cast. */
	memcpy(&p, pp, sizeof p);
	np = realloc(p, ncap * elem);
	if (!np)
		return -1;
	memcpy(pp, &np, sizeof np);
	*cap = ncap;
	return 0;
}

void mem_wipe(void *p, size_t n)
{
#if defined(__GNUC__)
	/*
	 * memset at its speed, then a barrier that tells the compiler the
	 * bytes are read: the store cannot be dropped as dead. A volatile byte
	 * loop took 2% of an encrypted stream wiping keystream blocks.
	 */
	if (n)
		memset(p, 0, n);
	__asm__ __volatile__("" : : "r"(p) : "memory");
#else
	volatile unsigned char *v = p;

	while (n--)
		*v++ = 0;
#endif
}

int mem_equal_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void mem_hex(const void *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = bytes;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}
