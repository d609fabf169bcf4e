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
