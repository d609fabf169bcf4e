#include "net.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

int net_check_host(const char *host, int *gai)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int rc = getaddrinfo(host, NULL, &hints, &res);

	*gai = 0;
	if (rc == 0) {
		freeaddrinfo(res);
		return 0;
	}
	*gai = rc;
	if (rc == EAI_NONAME)
		*gai = 0;
#ifdef EAI_NODATA /* glibc's: the name is known, with no address */
	if (rc == EAI_NODATA || rc == EAI_ADDRFAMILY)
		*gai = 0;
#endif
	if (*gai == 0)
		errno = ENOENT;
	return -1;
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

/* A TCP option set to v; a socket that is not TCP (or a kernel without it) has none: 0. */
static int tcp_option(int fd, int opt, int v)
{
	if (setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof v) == 0)
		return 0;
	return errno == EOPNOTSUPP || errno == ENOPROTOOPT ? 0 : -1;
}

int net_nodelay(int fd)
{
	return tcp_option(fd, TCP_NODELAY, 1);
}

int net_unsent_lowat(int fd, int bytes)
{
	return tcp_option(fd, TCP_NOTSENT_LOWAT, bytes);
}
