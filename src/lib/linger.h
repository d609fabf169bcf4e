/*
 * linger: the graceful close. A connection we are done with is shut down
 * for writing (our FIN follows everything we sent), then the peer's
 * remaining bytes are read and dropped until it closes too, for a bounded
 * time. Closing with unread bytes would send a reset instead, and a reset
 * can destroy our last bytes in flight before the peer's program read
 * them: the top complaint against socat, ncat and nc.
 */
#ifndef SP_LINGER_H
#define SP_LINGER_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#define LINGER_MS 2000 /* default bound on draining a peer */
/*
 * After a teardown, how long connections handed over stay open for a
 * receiver that has not yet read what the kernel holds for it
 * (bind-output(1) and master(1), SIGNALS).
 */
#define LINGER_BEHIND_MS 60000

/* Blocking: shut down, drain for at most ms, close. Keeps errno. */
void linger_close(int fd, long ms);

/*
 * Leave connections open behind us: a child process that holds only
 * fd[0..n) drains each for at most ms or until its peer closes, while the
 * caller goes on (and exits). For a peer that still sends after our last byte: were we
 * to close, its next bytes would make our kernel reset the connection, and
 * the reset makes the peer's kernel drop what its program has not read
 * yet. Returns the child's PID (the descriptors are closed here; fd is
 * reordered), or -1 with errno (they are still the caller's).
 */
pid_t linger_behind(int *fd, size_t n, long ms);

/* Read and drop what the peer sends, for at most ms or until it closes. */
void linger_drain(int fd, long ms);

/* Many connections draining at once, for an event loop. */
struct linger_set {
	struct linger_fd {
		int fd;
		long long by; /* close at this time even if the peer goes on */
	} *v;
	size_t n, cap;
};

/*
 * Shut fd down for writing and drain it from now on, for at most ms; the
 * set owns fd. Without memory for it, fd is closed at once. Returns 0, or
 * -1 with errno ENOMEM then.
 */
int linger_add(struct linger_set *s, int fd, long ms);

/* Append a pollfd per draining connection (room for s->n); returns how many. */
size_t linger_pollfds(const struct linger_set *s, struct pollfd *pfd);

/*
 * Act on poll's answer for the slice linger_pollfds appended (n entries,
 * 0 after a timeout), and close what is finished or out of time.
 */
void linger_handle(struct linger_set *s, const struct pollfd *pfd, size_t n, long long now);

/* Milliseconds until the next draining connection is due, or -1 for none. */
int linger_timeout(const struct linger_set *s, long long now);

/* Close everything at once (teardown). */
void linger_free(struct linger_set *s);

#endif
