/*
 * session: the pool's side of a master's control session (socketpool(7)).
 * A session greets; the master proves the key, in version 2 with an AUTH
 * line judged when the penalty allows (penalty.c) and answered with OK
 * and the pool's own proof, in version 3 with the channel's handshake
 * (wire.c), taken under the same penalty; then its PORT and CALL requests
 * are answered with GRANT or FAIL (the caller's cfg.on_request decides)
 * until END, and BYE follows once every grant it got has ended. A silent
 * session, or one that does not prove the key in time, is dropped. Lines
 * out wait in a bounded queue; a session ends gracefully (linger.c).
 *
 * The set of sessions is one pool's: it holds the penalty table and caps
 * the connections still proving the key, a quarter of them from one
 * address (MaxStartups). Poll-driven; never prints or exits: what happens
 * is reported through cfg.on_event.
 */
#ifndef SP_SESSION_H
#define SP_SESSION_H

#include <poll.h>
#include <stddef.h>

#include "grant.h"
#include "linger.h"
#include "listener.h"
#include "penalty.h"

struct session;

enum session_state {
	SESSION_PROVING, /* greeted: waiting for AUTH (2) or the handshake (3) */
	SESSION_SERVING, /* the key is proven: serving PORT and CALL */
	SESSION_ENDING	 /* END received: waiting for its grants to end, then BYE */
};

/* What a session reports; each is one line of the pool's log, but END and GONE. */
enum session_ev {
	SESSION_EV_BUSY,	  /* a newcomer from ip was told and closed: count sessions are
				     proving the key (no session) */
	SESSION_EV_NO_ROOM,	  /* a newcomer was closed: no memory for it (err; no session) */
	SESSION_EV_ACCEPT_FAILED, /* accept failed (err), count times in the last second:
				     pausing (no session) */
	SESSION_EV_BEGIN,	  /* the master proved the key */
	SESSION_EV_DROPPED,	  /* the session is dropped; what: why ("idle for 30000 ms") */
	SESSION_EV_FAILED,	  /* what failed ("no channel"), err: why; the session ends */
	SESSION_EV_CLOSED,	  /* the master closed the connection; what: when */
	SESSION_EV_BROKEN,	  /* the control channel failed (err, channel_strerror) */
	SESSION_EV_GRANTED,	  /* request was granted and answered; what: its taken, or "-" */
	SESSION_EV_END,		  /* END received */
	SESSION_EV_GONE		  /* freed now: count grants it got, unfinished of them not
				     ended yet; forget it */
};
/* How many kinds of session_ev there are (a table by kind): keep it after the last. */
#define SESSION_EV_KINDS (SESSION_EV_GONE + 1)

struct session_event {
	enum session_ev type;
	struct session *session;  /* NULL for BUSY, NO_ROOM, ACCEPT_FAILED */
	enum session_state state; /* the session's, when it happened */
	const char *peer;	  /* "ADDRESS PORT" of the master */
	const char *ip;		  /* its address */
	const char *what;
	unsigned long long count, unfinished;
	int err;
	const struct grant_request *request; /* GRANTED */
};

/*
 * The event's log line (session_text.c), or NULL for one that has none
 * (END; GONE of a newcomer that never proved the key). Returns buf.
 */
#define SESSION_TEXT_MAX 512
const char *session_event_text(const struct session_event *ev, char *buf, size_t n);

struct session_config {
	const char *key; /* version 2's proofs */
	size_t keylen;
	const unsigned char *psk;  /* version 3: the channel's key; NULL: version 2 (-U) */
	long idle_ms;		   /* -t: time to prove the key, and to stay silent */
	size_t max_proving;	   /* -c */
	struct linger_set *linger; /* where connections we are done with drain */
	long linger_ms;
	void (*on_event)(const struct session_event *ev, void *arg);
	/*
	 * A PORT or CALL (rq->cmd) from a session in service: grant it (fill
	 * rq's port, token, taken; return 0), or refuse it (rq->why; -1).
	 */
	int (*on_request)(struct grant_request *rq, void *arg);
	void *arg;
};

struct sessions {
	struct session_config cfg;
	struct penalty penalty; /* wrong keys slow the guessing down */
	struct session **all;
	size_t n, cap;
	size_t proving; /* sessions still proving the key */
};

void sessions_init(struct sessions *set, const struct session_config *cfg);

/*
 * Take the masters waiting on l (a burst at most, so bindings are not
 * starved): greet each, or turn it away at the cap.
 */
void sessions_accept(struct sessions *set, struct listener *l);

/*
 * Append a pollfd per session to pfd (room for set->n); returns how
 * many. *at becomes the earlier of itself and when one must be handled.
 */
size_t sessions_pollfds(struct sessions *set, struct pollfd *pfd, long long now, long long *at);

/* Act on poll's answer, pfd and n being what sessions_pollfds filled; ended sessions go. */
void sessions_handle(struct sessions *set, const struct pollfd *pfd, size_t n);

/* At the end: every session is told (ERR) and closed at once. */
void sessions_close(struct sessions *set);

void sessions_free(struct sessions *set);

/* One of s's grants has ended (GRANT_EV_ENDED); after END, the last one's end is BYE. */
void session_grant_ended(struct session *s);

/*
 * One of s's calls has ended: s hears how (EXIT name stream, status or
 * "-" when it never ran, why), and the call's end is its grant's.
 */
void session_call_ended(struct session *s, const char *name, const char *stream, int status,
			const char *why);

#endif
