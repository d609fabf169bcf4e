#define _GNU_SOURCE /* close_range */
#include "linger.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "io.h"
#include "mem.h"
#include "spawn.h"

/* Read and drop one round; 1 when the peer is done (EOF or an error). */
static int drop_some(int fd)
{
	char buf[4096];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

		/* EOF must end it too: errno is stale then. */
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return 1;
		if (r < 0)
			return 0;
	}
	return 0;
}

/*
 * Read and drop what each connection in pfd[0..n) sends until its peer is
 * done (EOF or an error), or by; with close_done, a done one is closed.
 */
static void drain(struct pollfd *pfd, size_t n, long long by, int close_done)
{
	size_t left = n;

	for (size_t i = 0; i < n; i++)
		pfd[i].events = POLLIN;
	while (left) {
		long long now = io_now_ms();

		if (now >= by || poll(pfd, n, deadline_timeout(by, now)) <= 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].fd >= 0 && pfd[i].revents && drop_some(pfd[i].fd)) {
				if (close_done)
					close(pfd[i].fd);
				pfd[i].fd = -1;
				left--;
			}
	}
}

void linger_drain(int fd, long ms)
{
	struct pollfd pfd = {.fd = fd};
	int saved = errno;

	drain(&pfd, 1, io_now_ms() + ms, 0);
	errno = saved;
}

static int by_value(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* In the child: every descriptor but fd[0..n), sorted, is closed. */
static void keep_only(int *fd, size_t n)
{
	unsigned lo = 0;

	qsort(fd, n, sizeof *fd, by_value);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)fd[i] > lo)
			close_range(lo, (unsigned)fd[i] - 1, 0);
		lo = (unsigned)fd[i] + 1;
	}
	close_range(lo, ~0u, 0);
}

pid_t linger_behind(int *fd, size_t n, long ms)
{
	long long by = io_now_ms() + ms;
	struct pollfd *pfd;
	/* In our process group: whoever ends the group (a supervisor) ends it too. */
	pid_t pid = spawn_fork(0);

	if (pid != 0) {
		for (size_t i = 0; pid > 0 && i < n; i++)
			close(fd[i]);
		return pid;
	}
	/* Nothing of ours but the connections; signals as a new program has them. */
	keep_only(fd, n);
	if ((pfd = calloc(n, sizeof *pfd)) != NULL) {
		for (size_t i = 0; i < n; i++)
			pfd[i].fd = fd[i];
		drain(pfd, n, by, 1);
		free(pfd);
	}
	_exit(0);
}

void linger_close(int fd, long ms)
{
	int saved = errno;

	shutdown(fd, SHUT_WR);
	linger_drain(fd, ms);
	close(fd);
	errno = saved;
}

int linger_add(struct linger_set *s, int fd, long ms)
{
	shutdown(fd, SHUT_WR);
	if (mem_reserve(&s->v, &s->cap, s->n + 1, sizeof *s->v, 16) < 0) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	s->v[s->n++] = (struct linger_fd){.fd = fd, .by = io_now_ms() + ms};
	return 0;
}

size_t linger_pollfds(const struct linger_set *s, struct pollfd *pfd)
{
	for (size_t i = 0; i < s->n; i++)
		pfd[i] = (struct pollfd){.fd = s->v[i].fd, .events = POLLIN};
	return s->n;
}

static void drop(struct linger_set *s, size_t i)
{
	close(s->v[i].fd);
	s->v[i] = s->v[--s->n];
}

void linger_handle(struct linger_set *s, const struct pollfd *pfd, size_t n, long long now)
{
	/* By descriptor: the set may have changed order since the slice was made. */
	for (size_t k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		for (size_t i = 0; i < s->n; i++) {
			if (s->v[i].fd != pfd[k].fd)
				continue;
			if (drop_some(s->v[i].fd))
				s->v[i].by = now;
			break;
		}
	}
	for (size_t i = s->n; i-- > 0;)
		if (s->v[i].by <= now)
			drop(s, i);
}

int linger_timeout(const struct linger_set *s, long long now)
{
	long long due = -1;

	for (size_t i = 0; i < s->n; i++)
		due = deadline_earlier(due, s->v[i].by);
	return deadline_timeout(due, now);
}

void linger_free(struct linger_set *s)
{
	while (s->n)
		drop(s, s->n - 1);
	free(s->v);
	s->v = NULL;
	s->cap = 0;
}
