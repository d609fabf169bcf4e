/*
 * worker: a preforked worker of socket -W, the side of the pool that
 * prefork.c keeps the books of. Forked by the server, a worker waits in
 * accept(2) on the shared listener, tells the master the moment it has a
 * connection (so the replacement forks while it serves), and becomes the
 * program (or, with -P or -c, relays to it). Runs in the child; never
 * returns.
 */
#ifndef SP_WORKER_H
#define SP_WORKER_H

#include "server.h"

_Noreturn void worker_run(struct server *s);

#endif
