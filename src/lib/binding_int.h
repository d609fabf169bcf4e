/*
 * binding_int: the input-binding engine's private header, shared by its
 * parts and by nothing else (the public interface is binding.h):
 *
 *	binding.c		the engine's interface: open, pollfds, timeout,
 *				handle, put, done; once mode's end
 *	binding_conns.c		the table of senders: accepting, the first line,
 *				admission, dropping
 *	binding_chan.c		-k: the encrypted channel's side of a connection
 *	binding_deliver.c	a sender's bytes into the buffer, whole lines at a
 *				time (read or spliced), and a sender's end
 *	binding_teardown.c	binding_close: the senders quiesced, what nobody
 *				read saved
 *
 * The functions below are the few each part needs of another; everything
 * else stays static in its file. Their names are prefixed (binding_, conn_,
 * conns_, chan_) because libsp.a is one namespace.
 */
#ifndef SP_BINDING_INT_H
#define SP_BINDING_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "binding.h"
#include "channel.h"
#include "fifo.h"
#include "lines.h"
#include "listener.h"
#include "net.h"
#include "pipew.h"
#include "stream.h"

#define PEER_LEN (NET_IPLEN + NET_PORTLEN + 2)

struct penalty;

enum conn_state { CONN_HS, CONN_FIRST, CONN_DATA };

struct conn {
	int fd;
	enum conn_state state;
	long long first_by;	  /* CONN_FIRST: deadline for the first line */
	unsigned long long bytes; /* data bytes received (a first line excluded) */
	char last;		  /* the last of them that went in (spliced bytes excepted) */
	struct binding_admit adm; /* what the guard said of it */
	struct channel *ch;	  /* -k: the encrypted channel, or NULL */
	long long judge_at;	  /* -k: its handshake is not read before this (penalty.h); -1: ask */
	int acks;		  /* -k: the sender asked for acknowledgements */
	unsigned long long acked; /* ... and the count we last sent */
	int closing;		  /* teardown: acknowledged and ended: what comes is held back */
	struct lines after;	  /* ... here: kept if the sender's END follows it, else dropped */
	struct lines lines;	  /* an unfinished line (line mode), or the first line */
	char ip[NET_IPLEN];
	char peer[PEER_LEN];
	long long connected_at, data_at; /* for the status (seconds): connected, last data */
};

struct binding {
	struct fifo fifo;
	struct pipew w;
	struct listener l;
	unsigned flags;
	size_t max_conns, mem_cap;
	struct binding_guard guard; /* hooks all NULL: no guard */
	int chan;		    /* -k: every sender over an encrypted channel */
	unsigned char psk[NOISE_PSK];
	const char *prologue; /* -k: what its handshakes hash in (binding_config) */
	const char *also;     /* -k: what they may hash in instead (bind-input: socket's), or NULL */
	struct penalty *pen;  /* -k: key guessers slowed down, from the first wrong key on */
	void (*on_event)(const struct binding_event *, void *);
	void *arg;

	struct conn *conns;
	size_t nconns;
	size_t ndata;	  /* conns in CONN_DATA */
	size_t parts;	  /* bytes of CONN_DATA conns' unfinished lines */
	int single;	  /* one sender at a time: pass bytes through, no line assembly */
	int passed;	  /* once mode: the sender was admitted */
	int had_data;	  /* once mode: its sender sent something */
	int ino;	  /* once mode: inotify on the FIFO, to see a reader come; or -1 */
	int opened;	  /* once mode: a reader opened the FIFO */
	int done;
	long long drain_at; /* once mode, sender gone: when to look at the pipe again */
	int drain_step;
	size_t drain_last;
};

/* ---- binding.c ---- */

/* Every part reports (accepts, rejects, ends, the spill): one place calls on_event. */
void binding_report(struct binding *b, enum binding_ev type, const char *peer, const char *why,
		    unsigned long long bytes, int err);

/*
 * A sender's ACCEPT (admission) or CLOSE (its end, or teardown), with its
 * tag and what was taken of it.
 */
void conn_report(struct binding *b, enum binding_ev type, const struct conn *c, int err,
		 unsigned long long taken);

/* ---- binding_conns.c ---- */

/* For binding_handle: accept senders while the listener has them and there is room. */
void conns_accept(struct binding *b, long long now);

/*
 * A sender passed the guard (or there is none): it is a sender now, and
 * rest (n bytes that came after its first line) is its first data. Here
 * for chan_step: a handshake with no first line to follow admits. Returns
 * 0, or -1 with errno when the buffer failed.
 */
int conn_admit(struct binding *b, size_t i, const char *rest, size_t n);

/*
 * A guarded sender's first line, read a little at a time: on poll's word
 * (binding.c), or when a channel opened it already (chan_pending). Returns
 * 0, or -1 with errno when the buffer failed.
 */
int conn_first_read(struct binding *b, size_t i);

/* Close and forget conns[i] (the last moves into its place): its end, a reject, teardown. */
void conn_drop(struct binding *b, size_t i);

/* Refuse conns[i] with why: the guard, a failed handshake, a late or missing first line. */
void conn_reject(struct binding *b, size_t i, const char *why);

/* The conn on fd (its index in *idx), or NULL: for poll's answer, and after rejects moved it. */
struct conn *conn_by_fd(struct binding *b, int fd, size_t *idx);

/* ---- binding_chan.c ---- */

/*
 * A sender's bytes: through its channel when it has one. 0: its end; -1:
 * errno (EAGAIN). For the first line and for data alike.
 */
ssize_t conn_recv(struct conn *c, char *buf, size_t n);

/* -k: tell a sender that asked how much we took, after data was read (now: at its end). */
void chan_ack(struct conn *c, int now);

/*
 * -k: read and drop what the socket holds now; 1 once the peer has closed.
 * A sender's failed stream, and teardown after our END.
 */
int chan_drain(const struct conn *c);

/* -k: the sender's stream ended (err: it failed), at its end or at teardown. */
void chan_close(struct conn *c, int err);

/* -k: a handshake held back by the penalty until judge_at; the poll set and the timer ask. */
int chan_waits(const struct conn *c, long long now);

/* -k: the handshake went on (binding_handle on poll's word, chan_pending on time). */
void chan_step(struct binding *b, size_t i, long long now);

/*
 * -k: plaintext a channel opened already, unseen by poll, and handshakes
 * past their deadline; once per binding_handle. Returns 0, or -1 with
 * errno when the buffer failed.
 */
int chan_pending(struct binding *b, long long now);

/* ---- binding_deliver.c ---- */

/* Bytes the sender's socket holds now: whether more is on its way (acks, splice, teardown). */
int conn_pending(const struct conn *c);

/*
 * Bytes from a data conn into the buffer; conn_admit's too, the first data
 * that came with a first line. Returns 0, or -1 with errno when the buffer
 * failed.
 */
int conn_take(struct binding *b, struct conn *c, const char *p, size_t n);

/*
 * The sender left (EOF, or err): deliver its last bytes, report, forget
 * it. Wherever a read or a channel finds its end. Returns 0, or -1 with
 * errno when the buffer failed.
 */
int conn_end(struct binding *b, size_t i, int err);

/* Whether c is to be read (or spliced) now: the poll set, the timer, chan_pending ask. */
int conn_wants_read(const struct binding *b, const struct conn *c);

/* Whether a data conn's bytes are spliced rather than read: binding.c chooses on poll's word. */
int conn_can_splice(const struct binding *b, const struct conn *c);

/* Read a data conn, or splice it: returns 0, or -1 with errno when the buffer failed. */
int conn_read(struct binding *b, size_t i);
int conn_splice(struct binding *b, size_t i);

#endif
