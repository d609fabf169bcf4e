#define _GNU_SOURCE /* MSG_NOSIGNAL */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem.h"

#define FIRST 16384 /* the first allocation: most queues never need more */

char *queue_tail(struct queue *q, size_t n)
{
	if (q->off + q->len + n <= q->cap)
		return q->buf + q->off + q->len;
	/*
	 * Move the bytes down rather than grow, but only once what was
	 * consumed before them is at least as much: each move then costs no
	 * more than the bytes consumed since the last, where moving at every
	 * lack of room moved a long retained tail (bind-output -k keeps
	 * megabytes until acknowledged) for each read.
	 */
	if (q->off && q->off >= q->len) {
		memmove(q->buf, q->buf + q->off, q->len);
		q->off = 0;
	}
	if (mem_reserve(&q->buf, &q->cap, q->off + q->len + n, 1, FIRST) < 0)
		return NULL;
	return q->buf + q->off + q->len;
}

void queue_commit(struct queue *q, size_t n)
{
	q->len += n;
}

int queue_append(struct queue *q, const void *p, size_t n)
{
	char *t;

	if (n == 0)
		return 0;
	if (!(t = queue_tail(q, n)))
		return -1;
	memcpy(t, p, n);
	q->len += n;
	return 0;
}

const char *queue_unsent(const struct queue *q, size_t *n)
{
	*n = q->len - q->sent;
	return q->buf ? q->buf + q->off + q->sent : NULL;
}

size_t queue_pending(const struct queue *q)
{
	return q->len - q->sent;
}

void queue_mark_sent(struct queue *q, size_t n)
{
	if (n > q->len - q->sent)
		n = q->len - q->sent;
	q->sent += n;
}

void queue_consume(struct queue *q, size_t n)
{
	if (n > q->len)
		n = q->len;
	q->off += n;
	q->len -= n;
	q->sent = q->sent > n ? q->sent - n : 0;
	if (q->len == 0)
		q->off = 0;
}

void queue_ack(struct queue *q, size_t n)
{
	queue_consume(q, n < q->sent ? n : q->sent);
}

void queue_rewind(struct queue *q)
{
	q->sent = 0;
}

long long queue_write(struct queue *q, int fd, unsigned flags, int *full)
{
	long long total = 0;

	*full = 0;
	while (q->len > q->sent) {
		const char *p = q->buf + q->off + q->sent;
		size_t n = q->len - q->sent;
		ssize_t w = flags & QUEUE_SOCKET ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
						 : write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				*full = 1;
				return total;
			}
			return -1;
		}
		total += w;
		if (flags & QUEUE_RETAIN)
			q->sent += (size_t)w;
		else
			queue_consume(q, (size_t)w);
		if ((size_t)w < n) {
			*full = 1; /* a short write: the next one would say EAGAIN */
			return total;
		}
	}
	return total;
}

long long queue_tcp_acked(int fd, unsigned long long sent)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	int outq = 0;

	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    len >= offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked) {
		unsigned long long a = ti.tcpi_bytes_acked ? ti.tcpi_bytes_acked - 1 : 0; /* the SYN */

		return (long long)(a < sent ? a : sent);
	}
	/* Before Linux 4.2: SIOCOUTQ is what is not acknowledged yet (a FIN counts one). */
	if (ioctl(fd, SIOCOUTQ, &outq) < 0)
		return -1;
	return outq <= 0 ? (long long)sent : (unsigned long long)outq >= sent ? 0 : (long long)(sent - (unsigned long long)outq);
}

long long queue_ack_tcp(struct queue *q, int fd, unsigned long long sent)
{
	long long acked = queue_tcp_acked(fd, sent);
	unsigned long long dropped = sent - q->sent; /* acknowledged and gone already */

	if (acked < 0)
		return -1;
	if ((unsigned long long)acked > dropped)
		queue_ack(q, (size_t)((unsigned long long)acked - dropped));
	return (long long)(sent - (unsigned long long)acked);
}

void queue_release(struct queue *q, size_t keep)
{
	if (q->len == 0 && q->cap > keep) {
		free(q->buf);
		q->buf = NULL;
		q->cap = q->off = q->sent = 0;
	}
}

void queue_free(struct queue *q)
{
	free(q->buf);
	memset(q, 0, sizeof *q);
}
