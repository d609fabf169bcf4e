#define _GNU_SOURCE /* accept4 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#define SKIP_MAX 64 /* dead connections skipped in one call */

/* One socket on one address; dual: the IPv6 wildcard serving IPv4 too. */
static int listen_addr(const struct sockaddr *sa, socklen_t len, int dual, int backlog)
{
	int one = 1, v6only = !dual, fd, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/*
	 * The unspecified IPv6 address serves IPv4 too, whatever the sysctl
	 * says; a specific one only itself, so ::1 and 127.0.0.1 can both be ours.
	 */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
	if (bind(fd, sa, len) == 0 && listen(fd, backlog) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
}

static int is_any6(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static int is_any4(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET &&
	       ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* The same address twice in getaddrinfo's answer (it lists one per protocol at times). */
static int seen(const struct addrinfo *res, const struct addrinfo *ai)
{
	for (const struct addrinfo *p = res; p != ai; p = p->ai_next)
		if (p->ai_addrlen == ai->ai_addrlen && memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return 1;
	return 0;
}

static int skippable(int err)
{
	return err == EADDRNOTAVAIL || err == EAFNOSUPPORT;
}

int listener_open(struct listener *l, const char *host, const char *port, int backlog, int *gai)
{
	struct addrinfo hints = {0}, *res, *ai;
	int rc, chosen = 0, dual = 0, err = EADDRNOTAVAIL;

	memset(l, 0, sizeof *l);
	*gai = 0;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (!host)
		hints.ai_family = AF_INET6; /* dual-stack first; IPv4 where IPv6 is off */
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc && !host) {
		hints.ai_family = AF_INET;
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc) {
		*gai = rc;
		return -1;
	}
	for (ai = res; ai && l->n < LISTENER_MAX; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		int fd;

		if (seen(res, ai) || (dual && is_any4(ai->ai_addr)))
			continue;
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		if (chosen)
			set_port(&ss, chosen);
		fd = listen_addr((struct sockaddr *)&ss, ai->ai_addrlen, is_any6(ai->ai_addr), backlog);
		if (fd < 0 && !host && !l->n && skippable(errno) && hints.ai_family == AF_INET6) {
			/* IPv6 is off: the wildcard is IPv4's. */
			freeaddrinfo(res);
			hints.ai_family = AF_INET;
			if ((rc = getaddrinfo(NULL, port, &hints, &res)) != 0) {
				*gai = rc;
				return -1;
			}
			ai = res;
			fd = listen_addr(ai->ai_addr, ai->ai_addrlen, 0, backlog);
		}
		if (fd < 0) {
			err = errno;
			if (skippable(err))
				continue;
			break;
		}
		dual |= is_any6(ai->ai_addr);
		l->fd[l->n++] = fd;
		if (!chosen && (chosen = net_local_port(fd)) < 0)
			chosen = 0;
	}
	freeaddrinfo(res);
	if (l->n && (ai == NULL || l->n == LISTENER_MAX || skippable(err)))
		return 0;
	listener_close(l);
	errno = err;
	return -1;
}

int listener_adopt(struct listener *l, int fd)
{
	int type = 0, acc = 0;
	socklen_t len = sizeof type;

	memset(l, 0, sizeof *l);
	if (fcntl(fd, F_GETFD) < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -1; /* ENOTSOCK */
	if (type != SOCK_STREAM) {
		errno = ESOCKTNOSUPPORT;
		return -1;
	}
	len = sizeof acc;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc) {
		errno = EINVAL;
		return -1;
	}
	l->fd[l->n++] = fd;
	return 0;
}

size_t listener_pollfds(const struct listener *l, struct pollfd *pfd, long long now)
{
	if (now < l->paused_until)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		pfd[i] = (struct pollfd){.fd = l->fd[i], .events = POLLIN};
	return l->n;
}

/* Linux hands over errors of connections that died waiting; they are not ours. */
static int dead_conn_error(int err)
{
	return err == ECONNABORTED || err == EPROTO || err == ENETDOWN || err == ENOPROTOOPT ||
	       err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH || err == EOPNOTSUPP ||
	       err == ENETUNREACH || err == EPERM || err == EINTR;
}

int listener_accept(struct listener *l, long long now, unsigned long *report)
{
	int skipped = 0;

	*report = 0;
	if (now < l->paused_until || !l->n) {
		errno = EAGAIN;
		return -1;
	}
	for (size_t k = 0; k < l->n;) {
		size_t i = (l->next + k) % l->n;
		int fd = accept4(l->fd[i], NULL, NULL, SOCK_CLOEXEC), err = errno;

		if (fd >= 0) {
			l->next = (i + 1) % l->n;
			return fd;
		}
		if (dead_conn_error(err) && ++skipped < SKIP_MAX)
			continue;
		if (err == EAGAIN || err == EWOULDBLOCK || dead_conn_error(err)) {
			k++;
			continue;
		}
		/* Out of resources, or a socket gone bad: the backlog waits, we do not spin. */
		l->paused_until = now + LISTENER_PAUSE_MS;
		l->failures++;
		if (now - l->reported_at >= LISTENER_REPORT_MS) {
			*report = l->failures;
			l->failures = 0;
			l->reported_at = now;
		}
		errno = err;
		return -1;
	}
	errno = EAGAIN;
	return -1;
}

int listener_timeout(const struct listener *l, long long now)
{
	if (now >= l->paused_until)
		return -1;
	return (int)(l->paused_until - now);
}

int listener_port(const struct listener *l)
{
	return l->n ? net_local_port(l->fd[0]) : -1;
}

void listener_close(struct listener *l)
{
	for (size_t i = 0; i < l->n; i++)
		close(l->fd[i]);
	l->n = 0;
}
