#include "pipew.h"

#include <errno.h>
#include <unistd.h>

#include "fifo.h"
#include "io.h"

#define LINE_CAP 65536 /* a continuation beyond this ends the tail ownership */

void pipew_init(struct pipew *w, const struct fifo *f, int splice)
{
	*w = (struct pipew){
		.fifo = f, .fd = f->fd, .spool = f->spool, .splice_ok = splice && !f->spool, .owner = -1};
	/*
	 * The kernel bounds a pipe by slots, and a spliced slot holds up to a
	 * 64 KiB fragment rather than a page: splicing stops at the pipe's
	 * size in bytes, and plain writes (which fill slots page by page)
	 * take over from there, so the kernel says "full" and POLLOUT "room"
	 * as for any writer.
	 */
	w->pipe_cap = w->spool ? 0 : fifo_capacity(f);
}

/* Write into the buffer without blocking; returns bytes taken or -1. */
static ssize_t raw_write(struct pipew *w, const char *p, size_t n)
{
	ssize_t r;

	if (w->spool)
		return io_write_all(w->fd, p, n) < 0 ? -1 : (ssize_t)n;
	do
		r = write(w->fd, p, n);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN) {
		w->full = 1;
		return 0;
	}
	if (r >= 0 && (size_t)r < n)
		w->full = 1;
	return r;
}

int pipew_flush(struct pipew *w)
{
	while (queue_pending(&w->q) && !w->full) {
		size_t n;
		const char *p = queue_unsent(&w->q, &n);
		ssize_t r = raw_write(w, p, n);

		if (r < 0)
			return -1;
		queue_consume(&w->q, (size_t)r);
	}
	/* An idle binding keeps little: give back a queue that grew. */
	queue_release(&w->q, 65536);
	return 0;
}

int pipew_emit(struct pipew *w, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (!queue_pending(&w->q) && !w->full) {
		ssize_t r = raw_write(w, p, n);

		if (r < 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return queue_append(&w->q, p, n);
}

size_t pipew_queued(const struct pipew *w)
{
	return queue_pending(&w->q);
}

size_t pipew_pending(const struct pipew *w)
{
	return fifo_pending(w->fifo);
}

size_t pipew_splice_room(const struct pipew *w)
{
	size_t pending = pipew_pending(w);

	return pending < w->pipe_cap ? w->pipe_cap - pending : 0;
}

ssize_t pipew_splice(struct pipew *w, int from, size_t n)
{
	ssize_t r = io_splice(from, w->fd, n, 1);

	if (r < 0 && (errno == EINVAL || errno == ENOSYS))
		w->splice_ok = 0;
	return r;
}

size_t pipew_pollfd(const struct pipew *w, struct pollfd *pfd)
{
	if (!w->full)
		return 0;
	*pfd = (struct pollfd){.fd = w->fd, .events = POLLOUT};
	return 1;
}

int pipew_ready(struct pipew *w, short revents)
{
	if (revents & POLLERR) {
		errno = EPIPE;
		return -1;
	}
	if (revents & POLLOUT)
		w->full = 0;
	return 0;
}

int pipew_owner(const struct pipew *w)
{
	return w->owner;
}

void pipew_own(struct pipew *w, int who, long long now)
{
	w->owner = who;
	w->owner_bytes = 0;
	w->owner_at = now;
}

void pipew_owner_wrote(struct pipew *w, size_t k, int ended, long long now)
{
	w->owner_bytes += k;
	w->owner_at = now;
	if (ended || w->owner_bytes >= LINE_CAP)
		w->owner = -1;
}

void pipew_disown(struct pipew *w, int who)
{
	if (w->owner == who)
		w->owner = -1;
}

long long pipew_owner_due(const struct pipew *w)
{
	return w->owner >= 0 ? w->owner_at + PIPEW_TAIL_WAIT_MS : -1;
}

void pipew_owner_expire(struct pipew *w, long long now)
{
	if (w->owner >= 0 && w->owner_at + PIPEW_TAIL_WAIT_MS <= now)
		w->owner = -1;
}

void pipew_free(struct pipew *w)
{
	queue_free(&w->q);
}
