#define _GNU_SOURCE /* accept4 */
#include "net.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int net_is_path(const char *s)
{
	return strchr(s, '/') != NULL;
}

int net_check_path(const char *path)
{
	struct sockaddr_un sun;

	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int net_check_port(const char *port)
{
	const char *p = port;
	long v = 0;

	if (!*p) {
		errno = EINVAL;
		return -1;
	}
	if (isdigit((unsigned char)*p)) {
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > 65535) {
				errno = EINVAL;
				return -1;
			}
		}
		return 0;
	}
	if (!getservbyname(port, "tcp")) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

const char *net_strerror(int gai)
{
	if (gai && gai != EAI_SYSTEM)
		return gai_strerror(gai);
	return strerror(errno);
}

static int sock_cloexec(int family)
{
	return socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static int listen_ai(const struct addrinfo *ai, int backlog)
{
	int one = 1, zero = 0, saved;
	int fd = sock_cloexec(ai->ai_family);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* An unspecified IPv6 address serves IPv4 too, whatever the sysctl says. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int net_listen(const char *host, const char *port, int backlog, int *gai)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, rc;

	*gai = 0;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (!host) {
		/* Dual-stack first; fall back to IPv4 where IPv6 is off. */
		hints.ai_family = AF_INET6;
		if (getaddrinfo(NULL, port, &hints, &res) == 0) {
			fd = listen_ai(res, backlog);
			freeaddrinfo(res);
			if (fd >= 0 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
				return fd;
		}
		hints.ai_family = AF_INET;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		*gai = rc;
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = listen_ai(ai, backlog);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	if (net_check_path(path) < 0)
		return -1;
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/* A socket file whose listener is gone may be taken over; nothing else. */
static int reclaim_stale(const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	fd = net_connect_unix(path);
	if (fd >= 0) {
		close(fd);
		errno = EADDRINUSE;
		return -1;
	}
	if (errno != ECONNREFUSED)
		return -1;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int net_listen_unix(const char *path, int backlog)
{
	struct sockaddr_un sun;
	int fd, saved;

	if (unix_addr(path, &sun) < 0 || reclaim_stale(path) < 0)
		return -1;
	fd = sock_cloexec(AF_UNIX);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		goto fail;
	if (listen(fd, backlog) < 0) {
		saved = errno;
		unlink(path);
		errno = saved;
		goto fail;
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int bind_local(int fd, int family, const char *bindhost, int *gai)
{
	struct addrinfo hints = {0}, *res, *ai;
	int rc;

	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(bindhost, NULL, &hints, &res);
	if (rc) {
		*gai = rc;
		return -1;
	}
	rc = -1;
	for (ai = res; ai && rc < 0; ai = ai->ai_next)
		rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(res);
	return rc;
}

int net_connect(const char *host, const char *port, const char *bindhost, int *gai)
{
	struct addrinfo hints = {0}, *res, *ai;
	int fd = -1, rc, saved = ECONNREFUSED;

	*gai = 0;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc == EAI_BADFLAGS || rc == EAI_NONAME) {
		hints.ai_flags = 0; /* loopback-only hosts have no "configured" address */
		rc = getaddrinfo(host, port, &hints, &res);
	}
	if (rc) {
		*gai = rc;
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = sock_cloexec(ai->ai_family);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (bindhost && bind_local(fd, ai->ai_family, bindhost, gai) < 0) {
			saved = errno;
			close(fd);
			fd = -1;
			if (*gai)
				break;
			continue;
		}
		while ((rc = connect(fd, ai->ai_addr, ai->ai_addrlen)) < 0 && errno == EINTR)
			;
		if (rc == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = saved;
	return fd;
}

int net_connect_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd, saved;

	if (unix_addr(path, &sun) < 0)
		return -1;
	fd = sock_cloexec(AF_UNIX);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int net_accept(int lfd)
{
	int fd;

	do
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd;
}

int net_name(int fd, int peer, char ip[NET_IPLEN], char port[NET_PORTLEN])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		      : getsockname(fd, (struct sockaddr *)&ss, &len);

	ip[0] = port[0] = '\0';
	if (rc < 0)
		return -1;
	if (ss.ss_family == AF_UNIX)
		return AF_UNIX;
	if (getnameinfo((struct sockaddr *)&ss, len, ip, NET_IPLEN, port, NET_PORTLEN,
			NI_NUMERICHOST | NI_NUMERICSERV))
		return -1;
	net_plain_ip(ip);
	return ss.ss_family;
}

void net_plain_ip(char *ip)
{
	/* An IPv4 peer of a dual-stack listener reads as ::ffff:a.b.c.d. */
	if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.'))
		memmove(ip, ip + 7, strlen(ip + 7) + 1);
}

int net_local_port(int fd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (net_name(fd, 0, ip, port) < 0 || !port[0])
		return -1;
	return atoi(port);
}
