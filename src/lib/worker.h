/*
 * worker: a preforked worker of socket -W, the side of the pool that
 * prefork.c keeps the books of. Forked by the server (spawn_fork: a
 * process group of its own, sig.c's signals reset), a worker makes the
 * program's command and environment ready (or, with -P, starts it), waits
 * on the shared listening sockets (epoll, EPOLLEXCLUSIVE: one waiter woken
 * per connection), tells the master the moment it has a connection, and
 * becomes the program (or, with -P or -c, relays to it). SIGWINCH asks a
 * ready worker to retire.
 */
#ifndef SP_WORKER_H
#define SP_WORKER_H

#include "server.h"

/*
 * In the forked worker: returns only when it did not become the program,
 * with the status the worker is to _exit with (0 retired, 1 a failure,
 * EXIT_EXEC a failed exec, or its relay's).
 */
int worker_run(struct server *s);

#endif
