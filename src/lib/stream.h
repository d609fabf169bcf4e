/*
 * stream: one sender's connection, the one object every tool that sends a
 * stream over TCP keeps (bind-output, master's relayed daemons): the
 * socket, its encrypted channel or none, and the bytes the receiver has
 * not confirmed yet, so that a connection that breaks loses nothing we
 * could know of. What it holds, from the stream's offset base on:
 *
 *	base                                                  base + len
 *	|-- sent on this connection, not confirmed --|-- not sent yet --|
 *
 * The receiver confirms in one of two ways: its TCP's acknowledgements
 * (TCP_INFO), or, where it counts in its own stream what it took
 * (CHANNEL_ACKS: bind-input -k, a pool's data port), those counts: a TCP
 * acknowledgement only says a kernel has the bytes, not that the receiver
 * kept them. STREAM_LINES keeps a line whole: what is forgotten ends at a
 * line's end (or a piece of STREAM_PIECE bytes of a longer line), for a
 * receiver that drops a broken connection's unfinished line (the pool).
 *
 *	stream_init(&s, flags, window);
 *	stream_attach(&s, fd, ch, prefix, n);	a connection (again: what was
 *						not confirmed goes first)
 *	t = stream_tail(&s, n); read into t; stream_commit(&s, got);
 *	poll fd for stream_events(&s), at most stream_timeout(&s, now)
 *	r = stream_step(&s, revents, now);	-1: stream_lost(&s)
 *	stream_end(&s) once the source has ended: our END and FIN
 *
 * Never blocks, never prints; errors are -1 with errno, as channel.h says
 * them (channel_strerror).
 */
#ifndef SP_STREAM_H
#define SP_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "queue.h"

struct channel;

#define STREAM_LINES 1u	 /* forget only up to a line's end (see above) */
#define STREAM_COUNTS 2u /* the channel asked the receiver for counts (CHANNEL_ACKS) */

#define STREAM_PIECE 65536    /* STREAM_LINES: a longer line is taken in pieces this long */
#define STREAM_PREFIX_MAX 128 /* a prefix (a token line) is at most this long */

/*
 * The retention cap that bind-output and master's relay give their
 * streams. Below it, what is retained follows the path: the kernel
 * autotunes the send buffer to the bandwidth-delay product (up to
 * net.ipv4.tcp_wmem's maximum), and a counting receiver's buffers add
 * theirs. 32 MiB keeps a 100 ms path full at 320 MiB/s (2.6 Gbit/s).
 */
#define STREAM_WINDOW (32u << 20)

/*
 * What the kernel may hold not yet sent (net_unsent_lowat). Unbounded, the
 * send buffer fills with megabytes the path cannot take yet (4 MiB on
 * loopback to a receiver that stops reading), a second copy of what the
 * queue keeps anyway, gone cold in the cache by the time it is sent. A
 * small backlog made bind-output into nc on loopback 1.15-1.2x faster and
 * changed nothing at a 100 ms round trip (bench-bind.sh, bench-net.sh).
 */
#define STREAM_UNSENT_LOWAT (64 << 10)

/* How the receiver on this connection confirms what it took. */
enum stream_confirm {
	STREAM_BY_TCP,	  /* its TCP's acknowledgements (on plain TCP, or a channel whose
			     receiver does not count) */
	STREAM_BY_COUNTS, /* its counts, 8 bytes big-endian each, in its stream */
};

struct stream {
	unsigned flags;
	size_t window; /* at most this many sent and not confirmed; 0: no bound of ours */
	struct queue q;
	unsigned long long base; /* the stream's offset of q's first byte */
	unsigned long long line; /* STREAM_LINES: where the line at base begins */
	/* the connection, or fd -1 */
	int fd;
	struct channel *ch; /* its channel (owned), or NULL */
	int handshaking;    /* ch's handshake goes on: nothing of ours goes out yet */
	enum stream_confirm confirm;
	unsigned long long cbase; /* the stream's offset where this connection started */
	unsigned long long csent; /* stream bytes written on it */
	unsigned long long count; /* STREAM_BY_COUNTS: the receiver's last count */
	unsigned char cnt[8];	  /* a count being read */
	size_t cnt_have;
	char prefix[STREAM_PREFIX_MAX]; /* plaintext before the stream on it (a token) */
	size_t prefix_len, prefix_off;
	int full;      /* the socket took less than offered: wait for POLLOUT */
	int shut;      /* our END (and FIN) went out: the stream is complete on it */
	int peer_end;  /* the receiver ended its stream (its END, or its FIN) */
	int peer_took; /* ... after ours, and its count (or, without counts, its END) says it
			  took all of ours */
};

/* A stream with nothing in it and no connection. flags: STREAM_LINES, STREAM_COUNTS. */
void stream_init(struct stream *s, unsigned flags, size_t window);

/*
 * A new connection for the stream: fd (non-blocking; the stream owns it
 * now), its channel ch (owned; its handshake done or under way) or NULL,
 * and n bytes of prefix (a token line; at most STREAM_PREFIX_MAX) to send
 * before the stream, which the receiver does not count as the stream's.
 * Whatever was not confirmed goes first, from base. Returns 0, or -1 with
 * errno EINVAL (a prefix too long; fd and ch are then the caller's still).
 */
int stream_attach(struct stream *s, int fd, struct channel *ch, const void *prefix, size_t n);

/*
 * A connection the sender made, for the stream: with psk (NULL: plain
 * text) the channel's handshake on fd first, as its initiator with
 * prologue, asking for counts of what the receiver takes (CHANNEL_ACKS),
 * waited for (CHANNEL_HS_MS at most); then stream_attach with no prefix,
 * and a first step, whose outcome says how the receiver confirms.
 * Returns 0, or -1 with errno (channel_strerror; fd is closed).
 */
int stream_open(struct stream *s, int fd, const unsigned char *psk, const char *prologue);

/* Room for n more bytes at the tail (queue_tail); NULL with errno ENOMEM. */
char *stream_tail(struct stream *s, size_t n);
void stream_commit(struct stream *s, size_t n);

/* Bytes not sent yet on the connection (all of them without one). */
size_t stream_pending(const struct stream *s);

/* Bytes held: not confirmed, sent or not. */
size_t stream_held(const struct stream *s);

/* The poll events the connection needs (0 without one). */
short stream_events(const struct stream *s);

/* Milliseconds to the handshake's deadline, or -1 (none, or no handshake under way). */
int stream_timeout(const struct stream *s, long long now);

/*
 * Act on poll's revents for the connection (0: none, after a timeout):
 * the handshake, the receiver's counts and its end, sending what waits,
 * and forgetting what is confirmed. Returns 1 when the receiver's end has
 * just come (stream_peer_end tells whether it took everything), 0 when
 * nothing needs the caller, or -1 with errno when the connection failed:
 * then call stream_lost.
 */
int stream_step(struct stream *s, short revents, long long now);

/* Forget what the receiver has confirmed by now (stream_step does it too). */
void stream_confirm(struct stream *s);

/*
 * Our end of the stream once everything is sent: the END record (with a
 * channel) and the FIN. Returns 1 once out, 0 while bytes still wait
 * (call again on POLLOUT), or -1 with errno.
 */
int stream_end(struct stream *s);

/* Every byte of the stream is confirmed, and our end is out. */
int stream_done(const struct stream *s);

/*
 * The connection is gone: what it confirmed last is taken, the socket
 * closed (and its channel freed), and everything not confirmed becomes
 * unsent again, for the next connection. Returns the bytes held.
 */
size_t stream_lost(struct stream *s);

/*
 * The receiver says (a resumption's GRANT) it has the stream up to at:
 * what lies before it is dropped; returns how many bytes before base it
 * says it lacks (0 normally: those are lost, we forgot them).
 */
unsigned long long stream_resume_at(struct stream *s, unsigned long long at);

/*
 * End a connection that still works without waiting any longer: what was
 * sent is left to the kernel, which goes on delivering it after we are
 * gone (a reset would make the receiver's kernel drop what it holds and
 * its reader has not read yet), and the connection is closed without a
 * reset. What was never sent stays held, unsent. Returns the bytes held.
 * *keep is -1, or the connection's descriptor when the receiver may still
 * send to us (closing it then would reset it): the caller's to keep open
 * until the receiver closes (linger_behind).
 */
size_t stream_hand_over(struct stream *s, int *keep);

/* Let go of the connection without closing it: its descriptor, or -1 (its channel is freed). */
int stream_detach(struct stream *s);

/*
 * The handshake is done and the prefix all out, nothing sealed waits: the
 * connection may be handed over as it is (to a program that speaks it).
 */
int stream_settled(const struct stream *s);

/* Hand the connection over: its descriptor into *fd and its channel (or NULL) into *ch. */
void stream_release(struct stream *s, int *fd, struct channel **ch);

/* Everything goes: the connection closed, the bytes freed. */
void stream_free(struct stream *s);

/*
 * Either side of any other connection (a binding's senders, a service's
 * caller, master's control connection): a socket fd and its channel ch,
 * or NULL on plain TCP, read, polled and ended the same way either way,
 * so that no caller branches on the channel.
 */

/* What is there, without waiting: 0 at the peer's end, -1 with errno (EAGAIN: nothing yet). */
ssize_t stream_conn_recv(int fd, struct channel *ch, void *buf, size_t n);

/* Our end: the channel's END and our FIN, or the FIN. 0, or -1 with errno. */
int stream_conn_shutdown(int fd, struct channel *ch);

/* The poll events the channel needs beside the caller's own (none on plain TCP). */
short stream_conn_events(const struct channel *ch);

/* 1 when a read has plaintext without the socket (a record opened already); never on plain TCP. */
int stream_conn_buffered(const struct channel *ch);

/* Send sealed bytes waiting: 0 when none waits (always on plain TCP), -1 with errno (EAGAIN). */
int stream_conn_flush(struct channel *ch);

/* Sealed bytes not sent yet (none on plain TCP). */
size_t stream_conn_unsent(const struct channel *ch);

/* A working connection's error err in words (channel_strerror's with a channel). */
const char *stream_conn_strerror(const struct channel *ch, int err);

#endif
