/*
 * net: addresses, names and UNIX sockets. Listening on TCP is listener.c,
 * connecting connector.c.
 */
#ifndef SP_NET_H
#define SP_NET_H

#include <stddef.h>
#include <sys/socket.h>

#define NET_IPLEN 64
#define NET_PORTLEN 8

/* An operand containing '/' names a UNIX socket. */
int net_is_path(const char *s);

/*
 * Check a port operand: a decimal number 0-65535 or a known TCP service.
 * Returns 0, or -1 with errno EINVAL (malformed, out of range), ENOENT
 * (unknown service) or ENAMETOOLONG (UNIX path longer than sun_path).
 */
int net_check_port(const char *port);
int net_check_path(const char *path);

/*
 * Check an address operand to listen on (pool -A, bind-input -A): a name
 * or literal that resolves, as listener_open will resolve it. Returns 0,
 * or -1 with errno ENOENT (no such name or address: the command line's
 * fault) or with *gai set (the resolver failed: DNS down, no memory).
 */
int net_check_host(const char *host, int *gai);

/*
 * Resolver failures are not errno values: functions that resolve take
 * int *gai and set it to the getaddrinfo code (0 when the failure is in
 * errno instead). net_strerror() gives the text for either.
 */
const char *net_strerror(int gai);

/*
 * Listen on a UNIX socket path. An existing path is taken over only if it
 * is a socket nobody answers on; a live socket gives EADDRINUSE and any
 * other file EEXIST, and neither is touched.
 */
int net_listen_unix(const char *path, int backlog);

int net_connect_unix(const char *path);

/*
 * Numeric text of a socket's local (peer == 0) or remote address. For a
 * UNIX socket ip is "" and port "". Returns the family, or -1.
 */
int net_name(int fd, int peer, char ip[NET_IPLEN], char port[NET_PORTLEN]);

/* Strip the "::ffff:" of an IPv4-mapped IPv6 address in place: one sender, one name. */
void net_plain_ip(char *ip);

/* The local port of a TCP socket, or -1. */
int net_local_port(int fd);

/*
 * Small messages go at once (TCP_NODELAY): for the request and answer
 * protocols, where Nagle holds a second small write until the first is
 * acknowledged, a round trip (and the peer's delayed ACK) each time. A
 * UNIX socket has nothing to set: 0. Returns 0, or -1 with errno.
 */
int net_nodelay(int fd);

/*
 * The kernel keeps at most about bytes queued and not yet sent
 * (TCP_NOTSENT_LOWAT): a write beyond it comes back short, and poll says
 * writable again once the backlog is below it. What is in flight is not
 * bounded by it: that stays the autotuned send buffer's. A socket that is
 * not TCP, or a kernel without the option, has nothing to set: 0.
 * Returns 0, or -1 with errno.
 */
int net_unsent_lowat(int fd, int bytes);

#endif
