#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "prefork.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "deadline.h"
#include "mem.h"

int prefork_init(struct prefork *p, size_t min, size_t max, int elastic, long idle_ms)
{
	memset(p, 0, sizeof *p);
	p->min = p->target = min;
	p->max = max;
	p->elastic = elastic;
	p->idle_ms = idle_ms;
	p->backoff_ms = PREFORK_BACKOFF_MS;
	return 0;
}

void prefork_free(struct prefork *p)
{
	free(p->w);
	p->w = NULL;
	p->n = p->cap = 0;
}

static struct prefork_worker *find(struct prefork *p, pid_t pid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->w[i].pid == pid)
			return &p->w[i];
	errno = ESRCH;
	return NULL;
}

int prefork_add(struct prefork *p, pid_t pid, long long now)
{
	if (mem_reserve(&p->w, &p->cap, p->n + 1, sizeof *p->w, 16) < 0)
		return -1;
	p->w[p->n++] = (struct prefork_worker){.pid = pid, .state = PREFORK_READY, .since = now};
	p->ready++;
	return 0;
}

int prefork_accepted(struct prefork *p, pid_t pid)
{
	struct prefork_worker *w = find(p, pid);

	if (!w)
		return -1;
	if (w->state == PREFORK_BUSY)
		return 0;
	if (w->state == PREFORK_READY)
		p->ready--;
	w->state = PREFORK_BUSY;
	p->busy++;
	/* Ready workers ran out before replacements came: demand outruns the pool. */
	if (p->elastic && p->ready == 0 && p->target < p->max)
		p->target++;
	return 0;
}

int prefork_failed(struct prefork *p, pid_t pid, int err)
{
	struct prefork_worker *w = find(p, pid);

	if (!w)
		return -1;
	w->failed = 1;
	for (size_t i = 0; i < p->nseen; i++)
		if (p->seen[i] == err)
			return 0;
	if (p->nseen < PREFORK_ERRS)
		p->seen[p->nseen++] = err;
	return 1;
}

enum prefork_gone prefork_gone(struct prefork *p, pid_t pid, long long now)
{
	struct prefork_worker *w = find(p, pid), old;

	if (!w)
		return PREFORK_GONE_NOT_OURS;
	old = *w;
	*w = p->w[--p->n];
	if (old.state == PREFORK_READY)
		p->ready--;
	if (old.state == PREFORK_BUSY)
		p->busy--;
	if (old.state == PREFORK_BUSY && !old.failed) {
		p->served++;
		p->backoff_ms = PREFORK_BACKOFF_MS;
		return PREFORK_GONE_ENDED;
	}
	if (old.failed)
		p->errors++;
	if (old.state == PREFORK_RETIRING)
		return PREFORK_GONE_RETIRED;
	if (old.state != PREFORK_READY)
		return PREFORK_GONE_ENDED;
	/* Died without serving: count it toward the fork-bomb guard. */
	p->errors++;
	if (now - p->window_start >= 1000) {
		p->window_start = now;
		p->deaths = 0;
	}
	if (++p->deaths < PREFORK_DEATHS || now < p->backoff_until)
		return PREFORK_GONE_UNSERVED;
	p->backoff_until = now + p->backoff_ms;
	p->deaths = 0;
	p->window_start = p->backoff_until;
	if (p->backoff_ms < PREFORK_BACKOFF_MAX_MS)
		p->backoff_ms *= 2;
	return PREFORK_GONE_BACKOFF;
}

size_t prefork_wanted(const struct prefork *p, long long now)
{
	/* Retiring workers are still alive: they count against max. */
	size_t alive = p->n, want, room;

	if (now < p->backoff_until || p->ready >= p->target)
		return 0;
	/*
	 * As many workers ready as connections live, or more: a fork now would
	 * compete with those connections' programs for the processors, and the
	 * ready ones can take what comes meanwhile. The pool refills once no
	 * connection is live, or at once when fewer are ready than live (load:
	 * a replacement late is a connection kept waiting).
	 */
	if (p->busy > 0 && p->ready >= p->busy)
		return 0;
	want = p->target - p->ready;
	room = p->max == PREFORK_UNLIMITED ? want : (alive < p->max ? p->max - alive : 0);
	return want < room ? want : room;
}

pid_t prefork_retire(struct prefork *p, long long now)
{
	struct prefork_worker *oldest = NULL;

	if (!p->elastic || p->ready <= p->min)
		return 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->w[i].state == PREFORK_READY && (!oldest || p->w[i].since < oldest->since))
			oldest = &p->w[i];
	if (!oldest || now - oldest->since < p->idle_ms)
		return 0;
	oldest->state = PREFORK_RETIRING;
	p->ready--;
	if (p->target > p->min)
		p->target--;
	return oldest->pid;
}

size_t prefork_retire_ready(struct prefork *p, pid_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n; i++)
		if (p->w[i].state == PREFORK_READY) {
			p->w[i].state = PREFORK_RETIRING;
			out[n++] = p->w[i].pid;
		}
	p->ready = 0;
	return n;
}

int prefork_timeout(const struct prefork *p, long long now)
{
	long long due = now < p->backoff_until ? p->backoff_until : -1;

	if (p->elastic && p->ready > p->min)
		for (size_t i = 0; i < p->n; i++)
			if (p->w[i].state == PREFORK_READY)
				due = deadline_earlier(due, p->w[i].since + p->idle_ms);
	return deadline_timeout(due, now);
}

size_t prefork_pids(const struct prefork *p, pid_t *out)
{
	for (size_t i = 0; i < p->n; i++)
		out[i] = p->w[i].pid;
	return p->n;
}

int prefork_channel(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv);
}

int prefork_send(int chan, const struct prefork_note *note, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)note, .iov_len = sizeof *note};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&ctl, 0, sizeof ctl);
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	do
		n = sendmsg(chan, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof *note ? 0 : -1;
}

int prefork_recv(int chan, struct prefork_note *note, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = note, .iov_len = sizeof *note};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof ctl.buf};
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
	if (n != (ssize_t)sizeof *note) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return 1;
}
