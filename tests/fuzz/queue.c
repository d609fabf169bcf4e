/*
 * libFuzzer target for the output queue with retention (src/lib/queue.c):
 * the input's first byte says whether writes retain (a queue is used one
 * way or the other), the rest is a program of operations (append, write
 * to a pipe, acknowledge, rewind, consume, release), run against a
 * model of the stream. What the "receiver" read from the pipe, what was
 * acknowledged and what the queue still holds must always agree with the
 * model: nothing lost, nothing twice, in order.
 */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/queue.h"

#define CAP 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char stream[CAP * 4], got[CAP * 4];
	struct queue q = {0};
	size_t total = 0, base = 0, gotlen = 0, pos = 1; /* base: the stream offset of q's head */
	unsigned flags;
	int p[2];

	if (size < 1 || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return 0;
	flags = data[0] & 1 ? QUEUE_RETAIN : 0;
	while (pos + 2 <= size) {
		unsigned op = data[pos] % 7, arg = data[pos + 1];
		size_t n, un;
		const char *u;
		int full;

		pos += 2;
		switch (op) {
		case 0: /* append arg bytes, taken from the input itself */
			n = arg < size - pos ? arg : size - pos;
			if (total + n > sizeof stream)
				n = sizeof stream - total;
			memcpy(stream + total, data + pos, n);
			if (queue_append(&q, data + pos, n) < 0)
				abort();
			total += n;
			pos += n;
			break;
		case 1: /* write to the pipe */
		case 2: {
			size_t before = base + q.sent;
			long long w = queue_write(&q, p[1], flags, &full);
			ssize_t r;

			if (w < 0)
				abort();
			if (!flags)
				base += (size_t)w; /* written is gone */
			while ((r = read(p[0], got + gotlen, CAP)) > 0) {
				if (memcmp(got + gotlen, stream + before, (size_t)r) != 0)
					abort(); /* what arrives is what comes next in the stream */
				gotlen += (size_t)r;
				before += (size_t)r;
			}
			gotlen = 0; /* compared: forget it, the model knows the offsets */
			break;
		}
		case 3: /* acknowledge */
			n = arg < q.sent ? arg : q.sent;
			queue_ack(&q, arg);
			base += n;
			break;
		case 4: /* rewind: retained bytes become unsent */
			queue_rewind(&q);
			break;
		case 5: /* consume from the head, sent or not */
			n = arg < q.len ? arg : q.len;
			queue_consume(&q, arg);
			base += n;
			break;
		default:
			queue_release(&q, arg);
			break;
		}
		/* The model: the queue holds stream[base, total), its first q.sent retained. */
		if (q.len != total - base || q.sent > q.len)
			abort();
		u = queue_unsent(&q, &un);
		if (un != q.len - q.sent || (un && memcmp(u, stream + base + q.sent, un) != 0))
			abort();
		if (q.sent && memcmp(u - q.sent, stream + base, q.sent) != 0)
			abort();
	}
	queue_free(&q);
	close(p[0]);
	close(p[1]);
	return 0;
}
