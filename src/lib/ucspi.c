#include "ucspi.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const ucspi_unset[] = {"LISTEN_PID",   "LISTEN_FDS",  "LISTEN_FDNAMES", "TCPLOCALIP",
				   "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT",  NULL};

/* A variable with a value ("NAME=" holds a place for one to come). */
static int known(const char *var)
{
	const char *eq = strchr(var, '=');

	return eq && eq[1];
}

/* Point the set at the variables known so far. */
static void link_set(struct ucspi *u)
{
	int n = 0;

	u->set[n++] = u->proto;
	if (!u->unix_) {
		if (known(u->lip))
			u->set[n++] = u->lip;
		u->set[n++] = u->lport;
		if (known(u->rip))
			u->set[n++] = u->rip;
		if (known(u->rport))
			u->set[n++] = u->rport;
	}
	u->set[n] = NULL;
	u->env = (struct spawn_env){u->set, ucspi_unset, 0};
}

/* v in decimal at dst; returns the end. */
static char *put_u(char *dst, unsigned v)
{
	char tmp[12];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*dst++ = tmp[--n];
	return dst;
}

/* An IPv4 address, dotted, at dst (room for 16). */
static void put_ip4(char *dst, const unsigned char *a)
{
	for (int i = 0; i < 4; i++) {
		dst = put_u(dst, a[i]);
		*dst++ = i < 3 ? '.' : '\0';
	}
}

/*
 * The numeric address of fd's local or peer end, as net_name gives it
 * (an IPv4-mapped IPv6 address as plain IPv4), with less code: a -W
 * worker formats it between accept and exec, and every page of code
 * touched there (printf's, which inet_ntop uses for IPv4) is a page fault
 * of a fresh process.
 */
static int sock_name(int fd, int peer, char ip[NET_IPLEN], char port[NET_PORTLEN])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		      : getsockname(fd, (struct sockaddr *)&ss, &len);
	unsigned short p;

	ip[0] = port[0] = '\0';
	if (rc < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		put_ip4(ip, (const unsigned char *)&in->sin_addr);
		p = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			put_ip4(ip, in6->sin6_addr.s6_addr + 12);
		else if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, NET_IPLEN))
			return -1;
		p = ntohs(in6->sin6_port);
	} else {
		return ss.ss_family;
	}
	*put_u(port, p) = '\0';
	return ss.ss_family;
}

/* buf = "NAME=VALUE" (buf has room: struct ucspi's sizes). */
static void put_var(char *buf, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);

	memcpy(buf, name, n);
	buf[n] = '=';
	memcpy(buf + n + 1, value, v + 1);
}

void ucspi_listener(struct ucspi *u, int lfd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	memset(u, 0, sizeof *u);
	if (sock_name(lfd, 0, ip, port) == AF_UNIX) {
		u->unix_ = 1;
		snprintf(u->proto, sizeof u->proto, "PROTO=UNIX");
	} else {
		snprintf(u->proto, sizeof u->proto, "PROTO=TCP");
		u->wildcard = strcmp(ip, "::") == 0 || strcmp(ip, "0.0.0.0") == 0 || !ip[0];
		if (!u->wildcard)
			snprintf(u->lip, sizeof u->lip, "TCPLOCALIP=%s", ip);
		snprintf(u->lport, sizeof u->lport, "TCPLOCALPORT=%s", port);
	}
	link_set(u);
}

void ucspi_several(struct ucspi *u)
{
	if (u->unix_)
		return;
	u->wildcard = 1;
	u->lip[0] = '\0';
	link_set(u);
}

void ucspi_conn(struct ucspi *u, int fd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (u->unix_)
		return;
	if (u->wildcard) {
		sock_name(fd, 0, ip, port);
		put_var(u->lip, "TCPLOCALIP", ip);
	}
	sock_name(fd, 1, ip, port);
	put_var(u->rip, "TCPREMOTEIP", ip);
	put_var(u->rport, "TCPREMOTEPORT", port);
	link_set(u);
	if (u->envp) { /* the places at its end, as far as they are known */
		size_t k = u->envn;

		for (char *const *v = u->set; *v; v++)
			u->envp[k++] = *v;
		u->envp[k] = NULL;
	}
}

int ucspi_envp(struct ucspi *u)
{
	size_t n, nset = 0;

	while (u->set[nset])
		nset++;
	/* Ours, without the unset names or any we set; then the places of ours. */
	if (!(u->envp = spawn_envp(&u->env, UCSPI_VARS, &n)))
		return -1;
	u->envn = n - nset;
	return 0;
}

void ucspi_free(struct ucspi *u)
{
	free(u->envp);
	u->envp = NULL;
}

void ucspi_fds(int conn, int ronly, int wonly, int fds[3])
{
	fds[0] = wonly ? STDIN_FILENO : conn;
	fds[1] = ronly ? STDOUT_FILENO : conn;
	fds[2] = ronly ? STDERR_FILENO : conn;
}
