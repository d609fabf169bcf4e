/*
 * binding: an input binding as an embeddable, poll-driven engine. It
 * accepts TCP senders on a listening socket and writes what they send
 * into a buffer (see fifo.h), whole lines at a time, holding at most
 * mem_cap bytes beyond the pipe before it stops reading its sockets.
 *
 * bind-input runs one of these; pool runs many in one poll loop:
 *
 *	b = binding_open(&cfg, &holder, &gai);
 *	for (;;) {
 *		n = binding_pollfds(b, pfd);	(append; at most binding_nfds(b))
 *		poll(pfd, n, binding_timeout(b));
 *		binding_handle(b, pfd, n);	(the same slice, revents filled)
 *		if (binding_done(b))
 *			break;
 *	}
 *	saved = binding_close(b, 1);
 *
 * The engine never prints, exits or blocks (a spool file's writes
 * aside), keeps no global state, and ignores signals: they are the
 * caller's. It reports what happens through cfg.on_event.
 */
#ifndef SP_BINDING_H
#define SP_BINDING_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#define BINDING_ONCE 1u	 /* -1: one sender, then end once a reader took everything */
#define BINDING_SPOOL 2u /* -a: append to a regular file, kept afterwards */
/*
 * -R: senders' bytes pass unchanged. Otherwise, where a binding can have
 * more than one sender over its life (all but BINDING_ONCE), a sender's
 * unterminated last line is ended with a newline when it closes, so that
 * the next sender's bytes never continue it.
 */
#define BINDING_RAW 4u

#define BINDING_MAX_CONNS 64	     /* default senders served at once */
#define BINDING_MEM_CAP (1u << 20) /* default bytes held beyond the pipe */
#define BINDING_LINE_MAX 65536	     /* longer lines may be split at this size */
#define BINDING_FIRST_MS 10000	     /* default time a guarded sender has for its first line */
#define BINDING_SEAL_MS 1000	     /* teardown: how long other writers of the FIFO may finish */

enum binding_ev {
	BINDING_EV_ACCEPT, /* a sender connected (and passed the guard, if any) */
	BINDING_EV_CLOSE,  /* a sender closed; bytes: what it sent */
	BINDING_EV_REJECT, /* a connection failed the guard and was closed; why says how */
	BINDING_EV_ERROR,  /* a sender's connection or accept() failed; err is errno */
	BINDING_EV_DONE,   /* once mode: finished, the buffer was drained */
	BINDING_EV_SAVED   /* binding_close saved bytes: why is the file, peer why it is
			      not PATH.unread ("" when it is), bytes how many; err when it failed */
};
/* How many kinds of binding_ev there are (a table by kind): keep it after the last. */
#define BINDING_EV_KINDS (BINDING_EV_SAVED + 1)

struct binding_event {
	enum binding_ev type;
	const char *peer;	  /* "ADDRESS PORT" of the sender, or "" */
	const char *why;	  /* BINDING_EV_REJECT: a short reason; else NULL */
	unsigned long long bytes; /* BINDING_EV_CLOSE: what it sent; accept ERROR: failures */
	int err;		  /* BINDING_EV_ERROR; BINDING_EV_CLOSE: its connection failed */
	void *tag;		  /* ACCEPT, CLOSE: what the guard tagged the sender with */
	unsigned long long taken; /* CLOSE: of bytes, what went into the buffer or the spill */
};

/*
 * An event's log line, without the binding's name (the caller's prefix):
 * one wording for bind-input and a pool's buffers alike. path names the
 * buffer in BINDING_EV_SAVED's "not touched" line; chan: the senders speak
 * the encrypted channel (its errors say what the channel found). Returns
 * buf (n bytes at most, cut if need be).
 */
#define BINDING_TEXT_MAX 512 /* room for binding_event_text's longest line */
const char *binding_event_text(const struct binding_event *ev, const char *path, int chan,
			       char *buf, size_t n);

/* What the guard says of a sender it admits. */
struct binding_admit {
	void *tag;  /* reported with the sender's events */
	int resume; /* its stream may resume elsewhere: see BINDING_EV_CLOSE */
};

/*
 * Admission: hooks a caller installs to decide which senders may write
 * (the pool's grants install guard.c). The engine knows no policy.
 */
struct binding_guard {
	/*
	 * A sender connected from ip (numeric, IPv4 as a.b.c.d even on a
	 * dual-stack socket): NULL lets it on, else the reason it is refused.
	 */
	const char *(*on_connect)(void *arg, const char *ip);
	/*
	 * When set, every sender must first send a line, which never reaches
	 * the buffer: on_line gets the sender's ip and the line without its LF
	 * (and a CR before it), complete = 1, or its first line_max + 1 bytes
	 * when no LF came by then, complete = 0. NULL admits the sender (and
	 * *adm, zeroed, may be filled in), else the reason it is refused. A
	 * sender gets wait_ms (0: BINDING_FIRST_MS) for its line; then it is
	 * refused with the reason late (NULL: a plain one).
	 *
	 * A sender admitted with adm->resume belongs to a stream that may go
	 * on over another connection: in line mode, when its connection fails
	 * (or the binding is torn down) its unfinished line is dropped rather
	 * than delivered (its sender still has it), and BINDING_EV_CLOSE's
	 * taken counts only what went in.
	 */
	const char *(*on_line)(void *arg, const char *ip, const char *line, size_t len,
			       int complete, struct binding_admit *adm);
	size_t line_max;
	long wait_ms;
	const char *late;
	void *arg;
};

struct listener;

struct binding_config {
	const char *path;	    /* the buffer path (fifo_resolve) */
	struct listener *listener;  /* sockets to take over (the binding owns them), or NULL */
	const char *host;	    /* no listener: address to listen on (NULL: every address) */
	const char *port;	    /* no listener: port to listen on ("0": kernel's choice) */
	unsigned flags;		    /* BINDING_ONCE, BINDING_SPOOL */
	size_t max_conns;	    /* senders served at once; 0: BINDING_MAX_CONNS */
	size_t mem_cap;		    /* bytes held beyond the pipe; 0: BINDING_MEM_CAP */
	/*
	 * Admission (copied), or NULL: every sender writes. In once mode the
	 * binding keeps listening until a sender is admitted; then it stops,
	 * and senders still sending their first line are refused.
	 */
	const struct binding_guard *guard;
	void (*on_event)(const struct binding_event *ev, void *arg); /* may be NULL */
	void *arg;
	/*
	 * Pipe capacity to ask for (F_SETPIPE_SZ), best effort; 0 keeps the
	 * kernel's default (64 KiB). A bigger pipe means fewer wake-ups for
	 * bulk data (bind-input asks for 1 MiB), but counts against the
	 * user's pipe-user-pages limits: leave it 0 when running many
	 * bindings.
	 */
	size_t pipe_size;
	/*
	 * -k: every sender speaks the encrypted channel (channel.h) under
	 * this 32-byte PSK (copied), as its responder: it has CHANNEL_HS_MS
	 * for the handshake, a failed one is a BINDING_EV_REJECT, and only
	 * authenticated plaintext reaches the buffer. A bad record or a cut
	 * stream ends the sender's connection (BINDING_EV_ERROR, err EBADMSG
	 * or EPIPE; channel_strerror says it) after what came before it. A
	 * sender that asks in its handshake (bind-output) is told how many of
	 * its bytes were taken. NULL: plain TCP.
	 */
	const unsigned char *psk;
	/*
	 * -k: the prologue its handshakes hash in (static text); NULL:
	 * bind-input's, CHANNEL_BIND, or CHANNEL_SOCKET (a socket -k sender).
	 */
	const char *prologue;
};

/*
 * Create the buffer (fifo_create) and start listening. Returns the
 * binding, or NULL with errno: EBUSY (the buffer belongs to a live
 * binding; *holder gets its PID when holder is not NULL), EEXIST (the
 * path is not a FIFO; untouched), a listen error (*gai, when not NULL,
 * gets a getaddrinfo code, or 0 when errno tells), ENOMEM. On failure
 * nothing is left behind, and cfg->listener is closed.
 */
struct binding *binding_open(const struct binding_config *cfg, pid_t *holder, int *gai);

/* The local port the binding listens on, or -1 once it stopped listening. */
int binding_port(const struct binding *b);

struct status_text;

/*
 * The binding's figures for a status round (status.h), under name: a
 * buffer line (its port, senders, bytes accepted and not read yet), then
 * a stream line a sender (its peer, bytes taken, since when, last data).
 */
void binding_status(const struct binding *b, struct status_text *t, const char *name);

/* The most pollfds binding_pollfds() can append. */
size_t binding_nfds(const struct binding *b);

/*
 * Append the descriptors the binding wants watched to pfd (room for
 * binding_nfds(b) entries) and return how many. Zero is fine: it may be
 * waiting only for time (see binding_timeout).
 */
size_t binding_pollfds(struct binding *b, struct pollfd *pfd);

/*
 * Milliseconds until the binding must be handled even with no event
 * (once mode polls the pipe for a reader's progress; first lines time out),
 * or -1 when it needs no timer. Use the smallest over all bindings.
 */
int binding_timeout(const struct binding *b);

/*
 * Act on poll's answer: pfd and n are exactly the slice the last
 * binding_pollfds() appended, with revents set (n == 0 after a timeout is
 * fine). Accepts, reads, writes the buffer, runs timers. Returns 0, or -1
 * with errno when the buffer itself failed (write error on a spool, the
 * FIFO gone bad): then close the binding.
 */
int binding_handle(struct binding *b, const struct pollfd *pfd, size_t n);

/*
 * Put n bytes into the buffer now, as one unit, ahead of every sender's
 * next bytes (what a previous binding left unread goes first). Returns 0,
 * or -1 with errno.
 */
int binding_put(struct binding *b, const void *p, size_t n);

/* What a binding holds now, for a status line (SIGUSR1). */
struct binding_stats {
	size_t senders;		  /* connected, admitted or not yet */
	unsigned long long bytes; /* what the connected ones sent so far */
	size_t unread;		  /* in the pipe and queued for it: what no reader took yet */
};
void binding_stats(const struct binding *b, struct binding_stats *st);

/* True once a once-mode binding has finished (after BINDING_EV_DONE). */
int binding_done(const struct binding *b);

/*
 * Tear down: stop listening, close every connection, and with save write
 * every byte accepted but not yet read (what sits in the pipe, the queue,
 * senders' unfinished lines, and what their sockets still hold) to
 * PATH.unread; remove the FIFO (a spool file is flushed and kept); free b.
 * Returns the number of bytes saved (0: no file created), or -1 with
 * errno when saving failed (the rest is lost, the FIFO still removed).
 * b may be NULL (returns 0).
 */
long long binding_close(struct binding *b, int save);

#endif
