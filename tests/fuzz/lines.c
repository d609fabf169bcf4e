/*
 * libFuzzer target for line assembly (src/lib/lines.c): the input's first
 * byte picks the line limit, the next ones how the rest is cut into the
 * chunks a socket would deliver. What comes out must be exactly what went
 * in, in order, in units that each end a line or are a whole piece of the
 * limit (the last, at the sender's end, excepted).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lines.h"

struct out {
	char *buf;
	size_t len, max;
	int tail; /* a unit that neither ends a line nor is a whole piece came already */
};

static int emit(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (n == 0 || o->tail)
		abort(); /* no empty units, and nothing after an unfinished one */
	if (p[n - 1] != '\n' && n != o->max)
		abort(); /* only whole lines or whole pieces before the end */
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lines l = {0};
	struct out o;
	size_t cuts, off;

	if (size < 3)
		return 0;
	o.max = (size_t)data[0] % 64 + 1;
	cuts = (size_t)data[1] % 16 + 1;
	data += 2;
	size -= 2;
	o.buf = malloc(size + 1);
	o.len = 0;
	o.tail = 0;
	if (!o.buf)
		return 0;
	for (off = 0; off < size;) {
		size_t n = (size_t)data[off] % (cuts * 8) + 1;

		if (n > size - off)
			n = size - off;
		if (lines_feed(&l, (const char *)data + off, n, o.max, emit, &o) < 0)
			abort();
		if (l.len >= o.max)
			abort(); /* a part of the limit or more must have gone out */
		off += n;
	}
	/* The sender's end: what is left goes as it is. */
	o.max = 0;
	if (l.len) {
		memcpy(o.buf + o.len, l.part, l.len);
		o.len += l.len;
	}
	lines_clear(&l);
	if (o.len != size || memcmp(o.buf, data, size) != 0)
		abort();
	free(o.buf);
	return 0;
}
