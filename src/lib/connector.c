#include "connector.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

static int resolve(const char *host, const char *port, int passive, struct addrinfo **res)
{
	struct addrinfo hints = {0};
	int rc;

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG;
	rc = getaddrinfo(host, port, &hints, res);
	if (!passive && (rc == EAI_BADFLAGS || rc == EAI_NONAME)) {
		hints.ai_flags = 0; /* loopback-only hosts have no "configured" address */
		rc = getaddrinfo(host, port, &hints, res);
	}
	return rc;
}

int connector_init(struct connector *c, const char *host, const char *port, const char *bindhost,
		   int *gai)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->backoff_ms = CONNECTOR_BACKOFF_MIN_MS;
	c->up_at = -1;
	*gai = resolve(host, port, 0, &c->res);
	if (*gai)
		return -1;
	if (bindhost && (*gai = resolve(bindhost, NULL, 1, &c->bind)) != 0) {
		freeaddrinfo(c->res);
		c->res = NULL;
		return -1;
	}
	return 0;
}

/* Bind to the first local address of the socket's family. */
static int bind_local(const struct connector *c, int fd, int family)
{
	for (const struct addrinfo *b = c->bind; b; b = b->ai_next)
		if (b->ai_family == family)
			return bind(fd, b->ai_addr, b->ai_addrlen);
	errno = EAFNOSUPPORT;
	return -1;
}

/* Start connecting to c->cur: 1 connected, 0 under way, -1 this address failed. */
static int start(struct connector *c)
{
	const struct addrinfo *ai = c->cur;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (c->bind && bind_local(c, fd, ai->ai_family) < 0)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		c->fd = fd;
		return 1;
	}
	if (errno == EINPROGRESS || errno == EINTR) {
		c->fd = fd;
		return 0;
	}
fail:
	c->err = errno;
	close(fd);
	errno = c->err;
	return -1;
}

/* The connect under way finished: 1 connected, -1 failed. */
static int finish(struct connector *c)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err)
		return 1;
	close(c->fd);
	c->fd = -1;
	c->err = err;
	errno = err;
	return -1;
}

static int connected(struct connector *c, long long now)
{
	c->cur = NULL;
	c->up_at = now;
	return 1;
}

int connector_step(struct connector *c, short revents, long long now)
{
	int r;

	if (c->fd >= 0) {
		if (!revents)
			return 0;
		if (finish(c) == 1)
			return connected(c, now);
		c->cur = c->cur->ai_next;
	} else if (!c->cur) {
		if (now < c->retry_at)
			return 0;
		c->cur = c->res;
	}
	for (; c->cur; c->cur = c->cur->ai_next) {
		r = start(c);
		if (r == 1)
			return connected(c, now);
		if (r == 0)
			return 0;
	}
	/* Every address failed: the round is over, the next one waits. */
	c->retry_at = now + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > CONNECTOR_BACKOFF_MAX_MS ? CONNECTOR_BACKOFF_MAX_MS
								    : c->backoff_ms * 2;
	errno = c->err ? c->err : ECONNREFUSED;
	return -1;
}

int connector_pollfd(const struct connector *c, struct pollfd *pfd)
{
	if (c->fd < 0)
		return 0;
	*pfd = (struct pollfd){.fd = c->fd, .events = POLLOUT};
	return 1;
}

int connector_timeout(const struct connector *c, long long now)
{
	if (c->fd >= 0)
		return -1;
	return c->retry_at > now ? (int)(c->retry_at - now) : 0;
}

int connector_take(struct connector *c)
{
	int fd = c->fd;

	c->fd = -1;
	return fd;
}

void connector_lost(struct connector *c, long long now)
{
	/* A connection that lived resets the rule; one that died at once counts as a failure. */
	if (c->up_at >= 0 && now - c->up_at >= CONNECTOR_STABLE_MS)
		c->backoff_ms = CONNECTOR_BACKOFF_MIN_MS;
	c->retry_at = now + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > CONNECTOR_BACKOFF_MAX_MS ? CONNECTOR_BACKOFF_MAX_MS
								    : c->backoff_ms * 2;
	c->up_at = -1;
}

void connector_free(struct connector *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->res)
		freeaddrinfo(c->res);
	if (c->bind)
		freeaddrinfo(c->bind);
	c->res = c->bind = c->cur = NULL;
}

int connector_connect(const char *host, const char *port, const char *bindhost, long timeout_ms,
		      int *gai)
{
	struct connector c;
	int fd = -1, saved;

	if (connector_init(&c, host, port, bindhost, gai) < 0)
		return -1;
	for (;;) {
		struct pollfd pfd;
		short rev = 0;
		int r;

		if (connector_pollfd(&c, &pfd)) {
			r = poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)timeout_ms);
			if (r < 0 && errno != EINTR)
				break;
			rev = r > 0 ? pfd.revents : 0;
			if (r == 0) {
				/* Out of time: this address counts as failed, the next one is tried. */
				c.err = ETIMEDOUT;
				close(c.fd);
				c.fd = -1;
				if (!(c.cur = c.cur->ai_next)) {
					errno = ETIMEDOUT;
					break;
				}
			}
		}
		r = connector_step(&c, rev, io_now_ms());
		if (r == 1) {
			fd = connector_take(&c);
			io_set_nonblock(fd, 0);
			break;
		}
		if (r < 0)
			break;
	}
	saved = errno;
	connector_free(&c);
	errno = saved;
	return fd;
}

int connector_first(struct connector *c, const char *host, const char *port, int *gai)
{
	if (connector_init(c, host, port, NULL, gai) < 0)
		return -1;
	for (;;) {
		struct pollfd pfd;
		int r = connector_step(c, connector_pollfd(c, &pfd) ? POLLOUT : 0, io_now_ms());

		if (r == 1)
			return connector_take(c);
		if (r < 0)
			return -1;
		if (connector_pollfd(c, &pfd) && poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}
