/*
 * listener: the listening sockets of one service address, and the one
 * accept rule every tool follows.
 *
 * A name may resolve to several addresses (localhost: 127.0.0.1 and ::1):
 * the listener holds a socket for each, in one poll set. Accepting never
 * spins: when the process or system is out of descriptors or memory
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection stays in the kernel's
 * backlog, the listener is paused for LISTENER_PAUSE_MS (as nginx
 * disables accept events), and the failures are counted for a report at
 * most once a second. Errors the kernel passes on from a connection that
 * died in the backlog are skipped.
 */
#ifndef SP_LISTENER_H
#define SP_LISTENER_H

#include <poll.h>
#include <stddef.h>

#define LISTENER_MAX 8	       /* addresses of one name we listen on */
#define LISTENER_PAUSE_MS 100  /* out of descriptors: leave the backlog alone this long */
#define LISTENER_REPORT_MS 1000

struct listener {
	int fd[LISTENER_MAX];
	size_t n;
	size_t next;		    /* the socket to try first, so none starves */
	long long paused_until;
	unsigned long failures;	    /* resource failures not reported yet */
	long long reported_at;
};

/*
 * Listen on every address host resolves to (NULL: every address of the
 * machine, one dual-stack IPv6 socket where IPv6 works, else IPv4) and
 * port ("0": the kernel's choice, the same port on every address). An
 * address the machine does not have (EADDRNOTAVAIL, EAFNOSUPPORT) is
 * skipped while another one works. The sockets are non-blocking and
 * close-on-exec. Returns 0, or -1 with errno / *gai (a getaddrinfo code,
 * 0 when errno tells) and nothing left open.
 */
int listener_open(struct listener *l, const char *host, const char *port, int backlog, int *gai);

/*
 * Take over a descriptor the caller was given (socket activation): it
 * must be a listening stream socket. Returns 0, or -1 with errno ENOTSOCK
 * (not a socket), ESOCKTNOSUPPORT (not a stream socket), EINVAL (not
 * listening), EBADF (not open); fd is left alone then.
 */
int listener_adopt(struct listener *l, int fd);

/* Append a pollfd per socket unless paused (room for LISTENER_MAX); returns how many. */
size_t listener_pollfds(const struct listener *l, struct pollfd *pfd, long long now);

/*
 * Accept one connection from any socket, without blocking: a close-on-exec
 * descriptor, or -1 with errno EAGAIN when nothing is waiting (or paused).
 * On a resource failure, -1 with that errno; then *report is the number
 * of such failures to tell now (0: already told within the last second).
 */
int listener_accept(struct listener *l, long long now, unsigned long *report);

/* Milliseconds until a pause ends, or -1 when not paused. */
int listener_timeout(const struct listener *l, long long now);

/* The local port (of the first socket), or -1. */
int listener_port(const struct listener *l);

/* Close every socket; the listener is empty afterwards. */
void listener_close(struct listener *l);

#endif
