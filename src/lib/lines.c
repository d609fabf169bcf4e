#define _GNU_SOURCE /* memrchr */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

int lines_hold(struct lines *l, const char *p, size_t n)
{
	if (!n)
		return 0; /* p may be an empty holder's NULL: memcpy must not see it */
	if (mem_reserve(&l->part, &l->cap, l->len + n, 1, 1024) < 0)
		return -1;
	memcpy(l->part + l->len, p, n);
	l->len += n;
	return 0;
}

void lines_clear(struct lines *l)
{
	free(l->part);
	l->part = NULL;
	l->len = l->cap = 0;
}

int lines_flush(struct lines *l, int newline, lines_emit_fn emit, void *arg)
{
	int r;

	if (!l->len)
		return 0;
	if (newline && l->part[l->len - 1] != '\n' && lines_hold(l, "\n", 1) < 0)
		return -1;
	r = emit(arg, l->part, l->len);
	lines_clear(l);
	return r;
}

int lines_feed(struct lines *l, const char *p, size_t n, size_t max, lines_emit_fn emit,
	       void *arg)
{
	const char *nl;

	if (l->len) {
		nl = memchr(p, '\n', n);
		if (!nl) {
			if (lines_hold(l, p, n) < 0)
				return -1;
			n = 0;
		} else {
			size_t k = (size_t)(nl + 1 - p);

			if (lines_hold(l, p, k) < 0 || lines_flush(l, 0, emit, arg) < 0)
				return -1;
			p += k;
			n -= k;
		}
	}
	/* Whole lines straight from the caller's buffer, with no copy. */
	nl = n ? memrchr(p, '\n', n) : NULL;
	if (nl) {
		size_t k = (size_t)(nl + 1 - p);

		if (emit(arg, p, k) < 0)
			return -1;
		p += k;
		n -= k;
	}
	if (n && lines_hold(l, p, n) < 0)
		return -1;
	while (l->len >= max) {
		if (emit(arg, l->part, max) < 0)
			return -1;
		memmove(l->part, l->part + max, l->len - max);
		l->len -= max;
	}
	return 0;
}
