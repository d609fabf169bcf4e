/*
 * client: master's side of the control connection (socketpool(7)), as a
 * poll-driven engine that never blocks, prints or exits: connecting (with
 * connector.h's backoff), the greeting matched exactly, the proof of the
 * key (version 3's handshake, or version 2's AUTH and OK), then requests
 * (PORT, CALL) sent as they are asked for, any number in flight, and
 * their answers in order, EXIT lines, END and BYE. Lines go out through a
 * queue, so that a slow path holds the loop up nowhere.
 *
 *	client_init(&c, &cfg, &gai);
 *	each round: n = client_pollfd(&c, &pfd); at = client_due(&c, now);
 *	client_handle(&c, revents, now);	events reach cfg.on_event
 *	on CLIENT_EV_SESSION: client_ask(&c, tag, name, "PORT %s ...", ...)
 *	client_end(&c) when nothing more will be asked
 *
 * What the events mean for the run is the caller's to decide, but for the
 * losses that no resumption can mend (a wrong key, another protocol, a
 * pool that did not come up in time), which are CLIENT_EV_FATAL.
 */
#ifndef SP_CLIENT_H
#define SP_CLIENT_H

#include <poll.h>
#include <stddef.h>

#include "connector.h"
#include "net.h"
#include "noise.h"
#include "proto.h"
#include "queue.h"

struct channel;

enum client_state {
	CLIENT_DOWN,	   /* no connection; the next round of connecting is due at its time */
	CLIENT_CONNECTING, /* a connect under way */
	CLIENT_HELLO,	   /* connected, waiting for the greeting */
	CLIENT_HANDSHAKE,  /* version 3: the channel's handshake */
	CLIENT_AUTH,	   /* version 2: our AUTH is out, the pool's OK awaited */
	CLIENT_RUN,	   /* the session: requests and answers */
	CLIENT_ENDED	   /* our END is out: BYE awaited */
};

enum client_ev {
	CLIENT_EV_SESSION,     /* the session began: requests may be asked */
	CLIENT_EV_ANSWER,      /* msg is the answer (GRANT, FAIL) to the request tag */
	CLIENT_EV_EXIT,	       /* msg is an EXIT line (how a service ended) */
	CLIENT_EV_BYE,	       /* every grant of ours has ended */
	CLIENT_EV_NOTE,	       /* why is a line for the log; nothing else happened yet */
	CLIENT_EV_LOST,	       /* the connection is gone (why: "" for a plain close); requests in
				  flight are void; the client connects again when asked to */
	CLIENT_EV_FATAL	       /* why: the run cannot go on with this pool (the connection is closed) */
};

struct client_event {
	enum client_ev type;
	size_t tag;		    /* ANSWER: the request's */
	const struct proto_msg *msg; /* ANSWER, EXIT */
	const char *why;	    /* NOTE, LOST, FATAL */
	int session_ended;	    /* FATAL: the pool ended the session (its ERR line) */
};

struct client_config {
	const char *host, *port;
	const char *key;	  /* version 2's key (the proofs), keylen bytes */
	size_t keylen;
	const unsigned char *psk; /* version 3's, from the key */
	int plain;		  /* -U: version 2 */
	int resume;		  /* -r: a session that is lost is not the end of the run */
	int calls;		  /* -x, -c: EXIT lines are news, not a protocol error */
	long reply_ms;		  /* -t: how long the pool may stay silent on what we wait for */
	long wait_ms;		  /* -w: how long the pool may take to come up (0: it must be up) */
	void (*on_event)(const struct client_event *ev, void *arg);
	void *arg;
};

/* A request in flight: its tag and the name its answer must carry. */
struct client_request {
	size_t tag;
	char name[PROTO_NAME_MAX + 1];
};

struct client {
	const struct client_config *cfg;
	enum client_state state;
	struct connector conn;
	int fd;
	struct channel *ch; /* version 3: from the greeting on */
	struct proto_in in;
	struct queue out; /* lines not sent yet */
	int full;	  /* the socket took less than offered */
	char nonce_p[PROTO_NONCE_HEX + 1], nonce_m[PROTO_NONCE_HEX + 1];
	char peer_ip[NET_IPLEN], local_ip[NET_IPLEN];
	struct client_request *req; /* in flight, oldest at req_head */
	size_t req_head, nreq, req_cap;
	long long reply_by; /* something is awaited from the pool by then, or 0 */
	long long wait_by;  /* -w: failed connects are retried until then (0: not tried yet) */
	int ready;	    /* the run is under way (a lost session may be resumed) */
	int stopped;	    /* client_stop: no connecting again */
	char why[PROTO_LINE_MAX + 128];
};

/*
 * Resolve the pool's address; nothing is connected yet (the first
 * client_handle starts). Returns 0, or -1 with errno and *gai.
 */
int client_init(struct client *c, const struct client_config *cfg, int *gai);

/* Connect again (after CLIENT_EV_LOST): now, or when the backoff allows. */
void client_reconnect(struct client *c, long long now);

/* The descriptor to poll and its events into pfd; returns 1, or 0 when there is none. */
int client_pollfd(const struct client *c, struct pollfd *pfd);

/* When client_handle must run even without an event: an io_now_ms time, or -1. */
long long client_due(const struct client *c, long long now);

/* Act on poll's revents for client_pollfd's descriptor (0: none). Events go to cfg->on_event. */
void client_handle(struct client *c, short revents, long long now);

/*
 * Ask: the line (PORT or CALL, for name) goes out as soon as the socket
 * takes it; its answer comes as CLIENT_EV_ANSWER with tag. Only in
 * CLIENT_RUN. Returns 0, or -1 with errno (EINVAL: not in a session;
 * ENOMEM; EMSGSIZE).
 */
int client_ask(struct client *c, size_t tag, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Requests in flight. */
size_t client_inflight(const struct client *c);

/* Nothing more will be asked: END goes out; BYE is awaited. Returns 0, or -1 with errno. */
int client_end(struct client *c);

/* No connecting again: a session lost from now on stays lost. */
void client_stop(struct client *c);

/*
 * In a child of ours: let go of the connection without a word (its keys
 * wiped), so that the child holds nothing of the master's session.
 */
void client_abandon(struct client *c);

/* The run is under way: a session lost from now on may be resumed (-r). */
void client_set_ready(struct client *c);

/* The pool's address and ours on the control connection (data connections use the same pair). */
const char *client_peer_ip(const struct client *c);
const char *client_local_ip(const struct client *c);

/*
 * Close, with version 3's END record when the session got that far (the
 * pool tells a finished session from a cut one), and free.
 */
void client_free(struct client *c);

#endif
