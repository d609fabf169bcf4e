/*
 * grant: the pool's grants, and the buffers they pour into. A master's
 * PORT gets a grant: a one-time token, and the port of a buffer where only
 * a sender from the master's address that presents the token may write
 * (guard.c): a once binding per grant, or with -l the lasting binding of
 * the name, which takes a ticket for each. Per name the pool keeps its
 * streams (streams.c: where each resumes, saved at the end and taken back
 * by the next pool) and its lasting buffer; a new buffer first takes what
 * a previous one left unread (NAME.unread).
 *
 * What every kind of grant shares, a buffer's and a service call's
 * (call.c), is here once: the request and its answer, the -n cap, the
 * token, the listener on the -r range; and a grant's end is reported with
 * the session that got it (GRANT_EV_ENDED), whose last one ends it
 * (session.c).
 *
 * Poll-driven, like the bindings it runs; never prints or exits: what
 * happens is reported through cfg.on_event.
 */
#ifndef SP_GRANT_H
#define SP_GRANT_H

#include <poll.h>
#include <stddef.h>

#include "proto.h"

struct binding_event;
struct listener;
struct session;

/* A master's request for a grant (PORT or CALL), and the answer to it. */
struct grant_request {
	enum proto_cmd cmd;    /* PROTO_PORT or PROTO_CALL */
	const char *name;      /* the daemon's or the service's */
	const char *stream;    /* the daemon run's stream (PROTO_STREAM_HEX digits) */
	long long offset;      /* PORT: where the master's stream resumes; -1: unknown */
	struct session *owner; /* who asked: the grant's end is reported with it */
	const char *ip;	       /* the master's address, the only one its sender may come from */
	size_t granted;	       /* grants the session got before this one */
	/* Granted: */
	int port;
	char token[PROTO_TOKEN_HEX + 1];
	long long taken; /* what the pool has of the stream; -1: unknown ("-") */
	/* Refused: FAIL's reason. */
	char why[160];
};

/* What every grant obeys, a buffer's and a call's. */
struct grant_policy {
	const char *addr;	  /* -A: listen on it only; NULL: every address */
	long port_lo, port_hi;	  /* -r; 0: the kernel chooses the port */
	long next_port;		  /* where the next search of the range starts */
	long max_session;	  /* -n: grants in one session */
	const unsigned char *psk; /* version 3: every sender is a channel under it; NULL: -U */
};

/* Refuse rq with the reason fmt, ...: fills rq->why. Returns -1. */
int grant_refuse(struct grant_request *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The -n cap: 0 when rq's session may have one more grant, else -1 (refused). */
int grant_within_session(const struct grant_policy *gp, struct grant_request *rq);

/* A fresh one-time token in rq->token. Returns 0, or -1 (refused). */
int grant_token(struct grant_request *rq);

/*
 * Listening sockets for a grant in l, on a free port of the -r range (the
 * search goes round it from where the last one stopped), or on the
 * kernel's choice. Returns 0, or -1 (refused: no free port, or why not).
 */
int grant_listen(struct grant_policy *gp, struct grant_request *rq, struct listener *l);

enum grant_ev {
	GRANT_EV_ENDED,	  /* a grant is over: owner has one grant less (never NULL) */
	GRANT_EV_BINDING, /* name: its binding's CLOSE (a grant's sender), REJECT, ERROR or
			     SAVED event (binding.h) */
	GRANT_EV_NOTE	  /* name: what happened to it ("its master left before connecting;
			     cancelled", "3 stream(s) to resume, from PATH"); with err,
			     what failed ("reading PATH") */
};

struct grant_event {
	enum grant_ev type;
	const char *name;
	const char *what;		     /* NOTE */
	int err;			     /* NOTE: what failed, and why */
	struct session *owner;		     /* ENDED */
	const struct binding_event *binding; /* BINDING */
};

struct grant_config {
	struct grant_policy *policy;
	const char *dir; /* -d: where the buffers are; NULL: here */
	int lasting;	 /* -l: a name's buffer lasts, for every master's stream */
	int spool;	 /* -a: buffers are regular files */
	long max_grants; /* -N: grants at once, and with -l buffers */
	void (*on_event)(const struct grant_event *ev, void *arg);
	void *arg;
};

struct grants {
	struct grant_config cfg;
	struct buffer **buffers;
	size_t nbuffers, buffers_cap;
	struct name_entry **names;
	size_t nnames, names_cap;
	struct grant **all;
	size_t ngrants, grants_cap;
};

void grants_init(struct grants *gs, const struct grant_config *cfg);

/*
 * A PORT: a grant of the buffer of rq->name, opened when it has none.
 * Returns 0 with rq's port, token and taken filled in, or -1 with
 * rq->why.
 */
int grants_port(struct grants *gs, struct grant_request *rq);

/* Buffers open. */
/*
 * -l: every NAME.unread a previous pool left in the buffers' directory is
 * served again at once, from NAME's lasting buffer (its FIFO, and a port
 * for the next grant), first in its buffer, so a reader gets it after a
 * restart without waiting for NAME's next grant. At most -N buffers; what
 * is not recovered is told (GRANT_EV_NOTE) and left where it is. Returns
 * how many buffers were opened.
 */
size_t grants_recover(struct grants *gs);

size_t grants_buffers(const struct grants *gs);

struct status_text;

/* Every open buffer's figures for a status round (binding_status). */
void grants_status(const struct grants *gs, struct status_text *t);

/* The most pollfds grants_pollfds can append. */
size_t grants_nfds(const struct grants *gs);

/*
 * Append what the buffers want polled to pfd (room for grants_nfds);
 * returns how many. *at becomes the earlier of itself and when they must
 * be handled by (deadline.h).
 */
size_t grants_pollfds(struct grants *gs, struct pollfd *pfd, long long now, long long *at);

/* Act on poll's answer, pfd being what grants_pollfds filled; ended buffers go. */
void grants_handle(struct grants *gs, const struct pollfd *pfd);

/*
 * owner's connection is gone: its grants no sender took are cancelled
 * (with a once buffer nobody will use), the others go on without it.
 */
void grants_forget(struct grants *gs, const struct session *owner);

/*
 * At the end: every buffer still open is closed, saving what nobody read
 * (its senders' streams record where they stopped), every grant goes, and
 * the streams that may resume are saved next to their buffer
 * (NAME.unread.streams, for the next pool); then everything is freed.
 */
void grants_free(struct grants *gs);

#endif
