/*
 * service: the pool's other kind of grant (pool -x): a program run for one
 * master's call. Its port takes one connection, from the master's address,
 * whose first line is the grant's token; the program then runs with that
 * connection as its standard input and output (as socket -p runs one: no
 * relay), in a clean environment with the UCSPI variables and
 * SERVICE_NAME, in a process group of its own, for at most run_ms. When it
 * ends, our FIN follows everything it wrote and the peer is drained
 * (linger.c). Version 3: the connection is an encrypted channel (its
 * responder), the token the first line of its plaintext, and the program
 * cannot hold the connection itself: a relay child (pump.c), the leader of
 * the group, carries its input and output through the channel and ends as
 * it did. Poll-driven like the binding engine; never prints or exits: a
 * program that could not be started is told by exec_err once its leader
 * is reaped (the leader passes its errno back on a pipe), and what the
 * program writes to its standard error comes to cfg.said a line at a
 * time (linelog.c: whole, cut, rate-limited), for the log to name it.
 */
#ifndef SP_SERVICE_H
#define SP_SERVICE_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "linelog.h"
#include "listener.h"
#include "noise.h"

struct channel;

#define SERVICE_TOKEN_MS 10000 /* the caller's time to connect and present the token */

enum service_state {
	SERVICE_WAITING, /* for its caller's connection and token */
	SERVICE_RUNNING,
	SERVICE_ENDED /* the program ended (or never started); see status */
};

struct service {
	enum service_state state;
	struct listener l;
	int fd;			/* the caller's connection, or -1 */
	char token[129];
	char addr[64];		/* the only address the caller may come from */
	char first[160];	/* the token line, read a byte at a time */
	size_t flen;
	long long token_by, run_by;
	pid_t pid;
	int status;		/* SERVICE_ENDED: what a shell would say of it (0, n, 128+sig) */
	const char *why;	/* SERVICE_ENDED without a status: why it did not run; or the cap */
	int exec_err;		/* SERVICE_ENDED: the program could not be started (errno) */
	char *program;		/* the service's path */
	char *name;
	long run_ms;
	long grace_ms;
	int term_sent;
	struct linelog err;	/* RUNNING: the program's standard error, read here */
	linelog_fn said;	/* where its lines go */
	void *said_arg;
	int report_fd;		/* RUNNING: where the leader tells why the program did not start */
	int chan;		/* version 3: the caller speaks the channel under psk */
	unsigned char psk[NOISE_PSK];
	struct channel *ch;	/* version 3: the caller's channel, while it is checked */
};

struct service_config {
	const char *name;
	const char *program; /* its path */
	const char *token;   /* what the caller presents first */
	const char *addr;    /* the only address the caller may come from */
	struct listener *listener; /* where the caller comes: taken over */
	long run_ms;	     /* the run cap */
	long grace_ms;	     /* after TERM at the cap, KILL this much later */
	const unsigned char *psk; /* the channel's key (copied); NULL: plain TCP */
	linelog_fn said;     /* each line of the program's standard error (see linelog.h) */
	void *said_arg;
};

/*
 * A service waiting for its caller on cfg->listener: cfg->program is run
 * for the caller from cfg->addr that presents cfg->token. Returns it, or
 * NULL with errno (the listener is closed then too).
 */
struct service *service_open(const struct service_config *cfg);

int service_port(const struct service *s);

/*
 * Append what the service wants polled (room for LISTENER_MAX + 1): its
 * listener or caller while waiting, the program's standard error while
 * running. Returns how many.
 */
size_t service_pollfds(struct service *s, struct pollfd *pfd, long long now);

/* Milliseconds until something is due (token deadline, run cap), or -1. */
int service_timeout(const struct service *s, long long now);

/*
 * Act on poll's answer (the slice service_pollfds appended): accept the
 * caller, read its token, start the program, pass on what it wrote to its
 * standard error; enforce the deadlines.
 */
void service_handle(struct service *s, const struct pollfd *pfd, size_t n, long long now);

/*
 * pid was reaped with status: 1 when it was this service's leader (the
 * service has ended; what its standard error still held is passed on).
 */
int service_reaped(struct service *s, pid_t pid, int status);

/* End it now: the program's group gets SIGTERM (and SIGKILL after grace_ms, by the caller). */
void service_stop(struct service *s);

/* Free it; the connection, if any, is closed. */
void service_free(struct service *s);

#endif
