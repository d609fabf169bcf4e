#include "wire.h"

#include <errno.h>
#include <poll.h>

#include "channel.h"
#include "io.h"
#include "queue.h"

_Static_assert(PROTO_VERSION == 3, "WIRE_GREETING names version 3");

struct channel *wire_control(int fd, int initiator, const unsigned char psk[NOISE_PSK],
			     long long now)
{
	/* The greeting is hashed in: whoever rewrites it in flight breaks the handshake. */
	return channel_new(fd, initiator, psk, WIRE_CONTROL WIRE_GREETING, NULL, 0, now);
}

ssize_t wire_fill(struct proto_in *in, int fd, struct channel *ch)
{
	char buf[PROTO_LINE_MAX];
	size_t room = sizeof in->buf - in->len;
	ssize_t r;

	if (!ch)
		return proto_fill(in, fd);
	if (room == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	r = channel_read(ch, buf, room);
	if (r > 0)
		proto_push(in, buf, (size_t)r);
	return r;
}

long long wire_write(struct queue *q, int fd, struct channel *ch, unsigned flags, int *full)
{
	long long total = 0;

	if (!ch)
		return queue_write(q, fd, flags, full);
	*full = 0;
	while (queue_pending(q)) {
		size_t n;
		const char *p = queue_unsent(q, &n);
		ssize_t w = channel_write(ch, p, n);

		if (w < 0 && errno == EAGAIN) {
			*full = 1;
			break;
		}
		if (w < 0)
			return -1;
		if (flags & QUEUE_RETAIN)
			queue_mark_sent(q, (size_t)w);
		else
			queue_consume(q, (size_t)w);
		total += w;
	}
	if (channel_flush(ch) < 0) {
		if (errno != EAGAIN)
			return -1;
		*full = 1;
	}
	return total;
}

/* Wait for ch's socket to take more, at most IO_STALL_MS. */
static int wait_out(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int r;

	do
		r = poll(&pfd, 1, IO_STALL_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

int wire_write_all(int fd, struct channel *ch, const void *buf, size_t n)
{
	const char *p = buf;

	if (!ch)
		return io_write_all(fd, buf, n);
	while (n > 0) {
		ssize_t w = channel_write(ch, p, n);

		if (w < 0 && (errno != EAGAIN || wait_out(fd) < 0))
			return -1;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		}
	}
	while (channel_flush(ch) < 0)
		if (errno != EAGAIN || wait_out(fd) < 0)
			return -1;
	return 0;
}
