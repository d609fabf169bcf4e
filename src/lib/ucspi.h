/*
 * ucspi: what a connection's program gets, as ucspi-tcp's tcpserver gives
 * it: the environment (PROTO, TCPLOCALIP, TCPLOCALPORT, TCPREMOTEIP,
 * TCPREMOTEPORT) and the connection as its descriptors.
 */
#ifndef SP_UCSPI_H
#define SP_UCSPI_H

#include <stddef.h>

#include "net.h"
#include "spawn.h"

/*
 * The UCSPI environment of a connection, built in two steps: what the
 * listener tells once, then each connection's part.
 */
#define UCSPI_VARS 5
struct ucspi {
	char proto[16];
	char lip[NET_IPLEN + 16], lport[NET_PORTLEN + 16];
	char rip[NET_IPLEN + 16], rport[NET_PORTLEN + 16];
	int wildcard; /* the listener's address is a wildcard: the local IP is per connection */
	int unix_;    /* a UNIX socket: PROTO=UNIX and nothing else */
	char **envp;  /* ucspi_envp: a whole environment for execve, or NULL */
	size_t envn;  /* its entries before the ones of this struct */
	char *set[UCSPI_VARS + 1];
	struct spawn_env env; /* give &env to spawn_start */
};

/* Variables a connection's program must not inherit from us (activation, stale UCSPI). */
extern const char *const ucspi_unset[];

/*
 * The listener's part, from its socket lfd: PROTO, and the local address
 * unless it is a wildcard. The environment then holds only that (what a
 * -P program, started before any connection, gets).
 */
void ucspi_listener(struct ucspi *u, int lfd);

/*
 * The listener has several sockets (every address of a name): the local
 * IP is each connection's, as for a wildcard.
 */
void ucspi_several(struct ucspi *u);

/*
 * Add connection fd's part: the local address where the listener's was a
 * wildcard, the peer's. After ucspi_envp, envp holds them too.
 */
void ucspi_conn(struct ucspi *u, int fd);

/*
 * Make ready, before any connection, the whole environment a connection's
 * program gets, as an array for execve(2): ours, without the unset names,
 * then u's variables (by reference), which ucspi_conn completes. So a -W
 * worker neither rebuilds an environment nor calls putenv (libc's
 * realloc, bound lazily in every fresh process) between accept and exec.
 * Returns 0, or -1 with errno ENOMEM.
 */
int ucspi_envp(struct ucspi *u);
void ucspi_free(struct ucspi *u);

/*
 * The descriptors a connection's program gets for fds 0, 1 and 2, by -r
 * and -w: the connection itself, except our own stdin under -w (nothing
 * received is passed on) and our own stdout and stderr under -r (nothing
 * is sent). One rule for every server mode.
 */
void ucspi_fds(int conn, int ronly, int wonly, int fds[3]);

#endif
