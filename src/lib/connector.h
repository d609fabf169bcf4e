/*
 * connector: connecting without blocking, to every address of a name in
 * turn, with the one backoff rule of every tool. A round tries each
 * address the name resolves to, in the resolver's order; when all of them
 * fail, the next round waits CONNECTOR_BACKOFF_MIN_MS, doubling up to
 * CONNECTOR_BACKOFF_MAX_MS. A connection that lasted CONNECTOR_STABLE_MS
 * resets the backoff, so a peer that accepts and drops at once is retried
 * ever more slowly, not in a loop.
 *
 *	connector_init(&c, host, port, NULL, &gai);
 *	while ((r = connector_step(&c, revents, now)) == 0)
 *		poll on connector_pollfd(&c, &pfd) for connector_timeout(&c, now)
 *	r == 1: fd = connector_take(&c); r == -1: a round failed (errno)
 */
#ifndef SP_CONNECTOR_H
#define SP_CONNECTOR_H

#include <poll.h>

#define CONNECTOR_BACKOFF_MIN_MS 100
#define CONNECTOR_BACKOFF_MAX_MS 30000
#define CONNECTOR_STABLE_MS 1000

struct addrinfo;

struct connector {
	struct addrinfo *res, *cur; /* the name's addresses; the one being tried */
	struct addrinfo *bind;	    /* local addresses to bind first (-B), or NULL */
	int fd;			    /* the socket being connected, or -1 */
	int err;		    /* the last address's error */
	long backoff_ms;	    /* the wait after the next failed round */
	long long retry_at;	    /* idle: the next round starts then */
	long long up_at;	    /* when the last connection was made */
};

/*
 * Resolve host and port (and bindhost, when not NULL, to bind each socket
 * to first). Returns 0, or -1 with *gai (getaddrinfo's code, 0 when errno
 * tells). Nothing is connected yet: the first step starts a round at once.
 */
int connector_init(struct connector *c, const char *host, const char *port, const char *bindhost,
		   int *gai);

/*
 * Make progress: revents is what poll said of connector_pollfd's
 * descriptor (0 when it was not polled). Returns 1 when connected (take
 * the descriptor), 0 while under way (poll and call again), or -1 with
 * errno when a whole round failed; the next round then starts at
 * retry_at by itself, on a later step.
 */
int connector_step(struct connector *c, short revents, long long now);

/* The descriptor to poll (POLLOUT) while connecting; 0 when only time is awaited. */
int connector_pollfd(const struct connector *c, struct pollfd *pfd);

/* Milliseconds until the next round may start, or -1 while a connect is under way. */
int connector_timeout(const struct connector *c, long long now);

/* The connected descriptor (non-blocking, close-on-exec); the connector lets go of it. */
int connector_take(struct connector *c);

/*
 * The first connection: connector_init, then one round, blocking, over
 * every address of the host in turn. Returns the connected descriptor
 * (connector_take's), or -1 with errno, or with *gai when resolving
 * failed (connector_init); the connector is kept for the rounds that
 * follow (connector_step).
 */
int connector_first(struct connector *c, const char *host, const char *port, int *gai);

/* The connection taken last has ended (at now): the backoff rule decides the next wait. */
void connector_lost(struct connector *c, long long now);

void connector_free(struct connector *c);

/*
 * Connect to host and port (optionally from bindhost) now: one round
 * over every address, waiting at most timeout_ms for each (-1: the
 * kernel's own limit). Returns a blocking, close-on-exec descriptor, or
 * -1 with errno / *gai set.
 */
int connector_connect(const char *host, const char *port, const char *bindhost, long timeout_ms,
		      int *gai);

#endif
