/*
 * prefork: the bookkeeping of a pool of preforked workers (how many to
 * fork, which to retire, when to back off), and the note a worker sends
 * its master the moment it has accepted. The caller forks, signals and
 * logs; nothing here prints, forks or exits.
 */
#ifndef SP_PREFORK_H
#define SP_PREFORK_H

#include <stddef.h>
#include <sys/types.h>

#define PREFORK_UNLIMITED ((size_t)-1)
#define PREFORK_DEATHS 10	     /* unserved deaths per second that start a back-off */
#define PREFORK_BACKOFF_MS 1000	     /* first pause; it doubles while deaths go on */
#define PREFORK_BACKOFF_MAX_MS 32000
#define PREFORK_ERRS 16		     /* distinct exec errors remembered */

enum prefork_state { PREFORK_READY, PREFORK_BUSY, PREFORK_RETIRING };

struct prefork_worker {
	pid_t pid;
	enum prefork_state state;
	long long since; /* when it became ready */
	int failed;	 /* it reported an exec failure */
};

struct prefork {
	size_t min, max;  /* ready floor; ceiling on ready + busy */
	int elastic;	  /* MIN:MAX: ramp up and retire; else a fixed ready count */
	long idle_ms;	  /* a ready worker beyond min waiting this long retires */
	size_t target;	  /* ready workers wanted now, min <= target */
	struct prefork_worker *w;
	size_t n, cap;
	size_t ready, busy;
	unsigned long long served, errors;
	/* fork-bomb guard: deaths without serving in the current second */
	long long window_start, backoff_until;
	unsigned deaths;
	long backoff_ms;
	int seen[PREFORK_ERRS];
	size_t nseen;
};

/*
 * Set up an empty pool: min ready workers at all times, at most max alive
 * (PREFORK_UNLIMITED: no ceiling). elastic enables ramp-up and idle
 * retirement. Returns 0.
 */
int prefork_init(struct prefork *p, size_t min, size_t max, int elastic, long idle_ms);
void prefork_free(struct prefork *p);

/* Record a freshly forked worker as ready. Returns 0, or -1 with ENOMEM. */
int prefork_add(struct prefork *p, pid_t pid, long long now);

/*
 * Worker pid has accepted a connection. In an elastic pool an accept that
 * leaves no worker ready raises the target by one: two new workers for
 * this accept. Returns 0, or -1 with ESRCH for a pid not in the pool.
 */
int prefork_accepted(struct prefork *p, pid_t pid);

/*
 * Worker pid reported that its program could not be started with error
 * err. Returns 1 when err was not seen before (the caller reports it),
 * 0 when it was, -1 with ESRCH for a pid not in the pool.
 */
int prefork_failed(struct prefork *p, pid_t pid, int err);

/* How a reaped worker went; from PREFORK_GONE_UNSERVED on, it never had a connection. */
enum prefork_gone {
	PREFORK_GONE_NOT_OURS = -1, /* not a worker of this pool (errno ESRCH) */
	PREFORK_GONE_ENDED,	    /* an ordinary end */
	PREFORK_GONE_UNSERVED,	    /* it died without serving */
	PREFORK_GONE_BACKOFF,	    /* so, and that death starts a back-off (PREFORK_DEATHS within
				       a second): the caller says so */
	PREFORK_GONE_RETIRED,	    /* it retired as asked */
};

/* Worker pid has been reaped. */
enum prefork_gone prefork_gone(struct prefork *p, pid_t pid, long long now);

/*
 * How many workers to fork now: up to target ready, within max, none while
 * backing off, and none while connections are live and at least as many
 * workers are ready (so no fork competes with them): the pool refills when
 * it is idle, or as soon as fewer are ready than connections live. So
 * target workers are ready when idle, never fewer than one for longer than
 * a fork takes.
 */
size_t prefork_wanted(const struct prefork *p, long long now);

/*
 * A ready worker to retire now, marked retiring, or 0. Elastic pools only:
 * the longest-waiting ready worker once it has waited idle_ms and more
 * than min are ready.
 */
pid_t prefork_retire(struct prefork *p, long long now);

/*
 * Mark every ready worker retiring (a reload or a graceful stop) and put
 * their pids into out (room for p->n); returns how many. The target stays:
 * prefork_wanted asks for a whole new set.
 */
size_t prefork_retire_ready(struct prefork *p, pid_t *out);

/* Milliseconds until a retirement or the end of a back-off is due, or -1. */
int prefork_timeout(const struct prefork *p, long long now);

/* Every live worker's pid into out (room for p->n); returns the count. */
size_t prefork_pids(const struct prefork *p, pid_t *out);

/* What a worker tells its master. */
enum prefork_kind { PREFORK_NOTE_ACCEPTED = 1, PREFORK_NOTE_EXECFAIL = 2 };
struct prefork_note {
	pid_t pid;
	enum prefork_kind kind;
	int err; /* EXECFAIL: errno */
};

/* A datagram socketpair, close-on-exec: [0] the master reads, [1] workers write. */
int prefork_channel(int sv[2]);

/* Send a note, passing descriptor fd along unless it is -1. Returns 0 or -1. */
int prefork_send(int chan, const struct prefork_note *note, int fd);

/*
 * Receive one note without blocking; *fd gets a passed descriptor
 * (close-on-exec) or -1. Returns 1, 0 when none is waiting, or -1.
 */
int prefork_recv(int chan, struct prefork_note *note, int *fd);

#endif
