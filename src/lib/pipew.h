/*
 * pipew: the writer of a buffer, and the only code that knows pipe
 * semantics. Units (whole lines, or a single sender's bytes) go into the
 * pipe without blocking, the rest waits in a queue behind them; being the
 * pipe's only writer and queueing in order is what keeps a unit whole.
 *
 * A lone bulk sender's bytes may be spliced from its socket unseen, so the
 * pipe may then end mid-line: until that sender's next newline has gone
 * in, it owns the pipe's tail and nobody else writes (pipew_owner). A
 * tail owner that stalls while others wait loses it after
 * PIPEW_TAIL_WAIT_MS.
 *
 * A spool (a regular file) is written with blocking writes instead.
 */
#ifndef SP_PIPEW_H
#define SP_PIPEW_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "queue.h"

#define PIPEW_TAIL_WAIT_MS 1000
#define PIPEW_SPLICE_MIN 16384 /* pipe room worth a splice */

struct fifo;

struct pipew {
	const struct fifo *fifo; /* the buffer (not owned) */
	int fd;		 /* its descriptor: the FIFO (O_RDWR, non-blocking), or the spool file */
	int spool;
	struct queue q;	 /* units waiting for room in the pipe */
	int full;	 /* the pipe refused bytes: wait for POLLOUT */
	int splice_ok;	 /* a FIFO, and splice has not failed */
	size_t pipe_cap; /* the pipe's size in bytes: splicing keeps within it */
	int owner;	 /* who owns the pipe's tail (a sender's fd), or -1 */
	size_t owner_bytes;
	long long owner_at;
};

/* A writer for the buffer f, once its pipe has its size. splice: allow pipew_splice. */
void pipew_init(struct pipew *w, const struct fifo *f, int splice);

/* Write one unit, or queue what the pipe cannot take now. Returns 0 or -1 with errno. */
int pipew_emit(struct pipew *w, const char *p, size_t n);

/* Write queued units while the pipe takes them. Returns 0 or -1 with errno. */
int pipew_flush(struct pipew *w);

/* Bytes waiting in the queue. */
size_t pipew_queued(const struct pipew *w);

/* Bytes in the pipe that no reader took yet. */
size_t pipew_pending(const struct pipew *w);

/* Room for spliced bytes (see pipew_init's pipe_cap). */
size_t pipew_splice_room(const struct pipew *w);

/*
 * Splice up to n bytes from the socket from into the pipe, without
 * blocking. Returns bytes moved, 0 at the sender's EOF, or -1 with errno
 * (EAGAIN: nothing now; EINVAL or ENOSYS: splicing is off from now on).
 */
ssize_t pipew_splice(struct pipew *w, int from, size_t n);

/* Append a POLLOUT pollfd when the pipe is full; returns 0 or 1. */
size_t pipew_pollfd(const struct pipew *w, struct pollfd *pfd);

/* poll said the pipe has room (or failed): returns 0, or -1 with EPIPE. */
int pipew_ready(struct pipew *w, short revents);

/* Tail ownership: the owner, taking it, its progress, giving it up. */
int pipew_owner(const struct pipew *w);
void pipew_own(struct pipew *w, int who, long long now);
/* The owner wrote k more bytes of its line; ended: the line is finished. */
void pipew_owner_wrote(struct pipew *w, size_t k, int ended, long long now);
void pipew_disown(struct pipew *w, int who);
/* With others waiting: give a stalled tail up (returns the time it is due, or -1). */
long long pipew_owner_due(const struct pipew *w);
void pipew_owner_expire(struct pipew *w, long long now);

void pipew_free(struct pipew *w);

#endif
