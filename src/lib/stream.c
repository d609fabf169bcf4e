/*
 * stream: a sender's connection and what its receiver has not confirmed.
 * One implementation of "keep what the peer has not acknowledged, resend
 * or save it", over plain TCP or the channel alike.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL, memrchr */
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "io.h"
#include "mem.h"
#include "net.h"

/* Confirmed by TCP only: how often to look for acknowledgements while bytes are held. */
#define ACK_POLL_MS 50
#define READ_ROUNDS 16 /* reads of the receiver's stream per step; the rest on the next */

void stream_init(struct stream *s, unsigned flags, size_t window)
{
	memset(s, 0, sizeof *s);
	s->flags = flags;
	s->window = window;
	s->fd = -1;
}

int stream_attach(struct stream *s, int fd, struct channel *ch, const void *prefix, size_t n)
{
	if (n > sizeof s->prefix) {
		errno = EINVAL;
		return -1;
	}
	/* A hint: without it only speed and the kernel's memory differ. */
	(void)net_unsent_lowat(fd, STREAM_UNSENT_LOWAT);
	s->fd = fd;
	s->ch = ch;
	s->handshaking = ch != NULL;
	if (ch)
		channel_track_acks(ch); /* before the first write: STREAM_BY_TCP may need it */
	if (n)
		memcpy(s->prefix, prefix, n);
	s->prefix_len = n;
	s->prefix_off = 0;
	s->confirm = STREAM_BY_TCP;
	s->count = 0;
	s->cnt_have = 0;
	s->cbase = s->base;
	s->csent = 0;
	s->full = s->shut = s->peer_end = s->peer_took = 0;
	queue_rewind(&s->q);
	return 0;
}

int stream_open(struct stream *s, int fd, const unsigned char *psk, const char *prologue)
{
	struct channel *ch = NULL;
	int saved;

	if (psk) {
		ch = channel_new(fd, 1, psk, prologue, CHANNEL_ACKS, strlen(CHANNEL_ACKS), io_now_ms());
		if (!ch || channel_handshake_wait(ch) < 0)
			goto fail;
	}
	stream_attach(s, fd, ch, NULL, 0);
	stream_step(s, 0, io_now_ms()); /* the handshake's outcome: how the receiver confirms */
	return 0;
fail:
	saved = errno;
	channel_free(ch);
	close(fd);
	errno = saved;
	return -1;
}

char *stream_tail(struct stream *s, size_t n)
{
	return queue_tail(&s->q, n);
}

void stream_commit(struct stream *s, size_t n)
{
	queue_commit(&s->q, n);
}

size_t stream_pending(const struct stream *s)
{
	return queue_pending(&s->q);
}

size_t stream_held(const struct stream *s)
{
	return s->q.len;
}

/* Unsent bytes the window lets go now. */
static size_t sendable(const struct stream *s)
{
	size_t n = queue_pending(&s->q);

	if (s->window && n > (s->window > s->q.sent ? s->window - s->q.sent : 0))
		n = s->window > s->q.sent ? s->window - s->q.sent : 0;
	return n;
}

short stream_events(const struct stream *s)
{
	short ev;

	if (s->fd < 0)
		return 0;
	if (s->handshaking)
		return (short)(POLLIN | channel_events(s->ch));
	/* The receiver's FIN or END stays readable: after it only errors are news. */
	ev = s->peer_end ? 0 : POLLIN;
	if (s->full || (s->ch && channel_unsent(s->ch)) || s->prefix_off < s->prefix_len ||
	    sendable(s))
		ev |= POLLOUT;
	return ev;
}

int stream_timeout(const struct stream *s, long long now)
{
	if (s->fd < 0)
		return -1;
	if (s->handshaking)
		return channel_timeout(s->ch, now);
	if (s->ch && !s->peer_end && channel_readable(s->ch))
		return 0; /* a record already read waits, unseen by poll */
	/* Acknowledgements wake nobody: look for them while bytes are held. */
	if (s->confirm == STREAM_BY_TCP && s->q.sent)
		return ACK_POLL_MS;
	return -1;
}

/* ---- confirming ---- */

/*
 * STREAM_LINES: where the stream may be forgotten up to, once the
 * receiver has confirmed up to pos: the end of the last line there, or a
 * piece boundary of a longer line.
 */
static unsigned long long line_end(const struct stream *s, unsigned long long pos)
{
	size_t n, k = (size_t)(pos - s->base);
	const char *p = queue_unsent(&s->q, &n) - s->q.sent, *nl;
	unsigned long long piece;

	nl = k ? memrchr(p, '\n', k) : NULL;
	if (nl)
		return s->base + (unsigned long long)(nl + 1 - p);
	piece = s->line + (pos - s->line) / STREAM_PIECE * STREAM_PIECE;
	return piece > s->base ? piece : s->base;
}

/* Forget the stream before to: the receiver has it. */
static void forget(struct stream *s, unsigned long long to)
{
	size_t n;
	const char *p = queue_unsent(&s->q, &n) - s->q.sent;

	if (to <= s->base)
		return;
	if ((s->flags & STREAM_LINES) && memrchr(p, '\n', (size_t)(to - s->base)))
		s->line = to;
	queue_ack(&s->q, (size_t)(to - s->base));
	s->base = to;
}

/* Of this connection's stream bytes, how many the receiver's TCP acknowledged; -1 with errno. */
static long long tcp_took(struct stream *s)
{
	/* The prefix came first on this connection: it is no part of the stream. */
	long long a = s->ch ? channel_tcp_acked(s->ch)
			    : queue_tcp_acked(s->fd, s->prefix_off + s->csent);

	if (a < 0)
		return -1;
	return a > (long long)s->prefix_len ? a - (long long)s->prefix_len : 0;
}

/* Of this connection's stream bytes, how many the receiver confirmed; -1 when it cannot be told. */
static long long took(struct stream *s)
{
	if (s->peer_took)
		return (long long)s->csent;
	if (s->confirm == STREAM_BY_COUNTS)
		return (long long)s->count;
	return tcp_took(s);
}

static int peer_read(struct stream *s);

/* The receiver has t bytes of this connection's stream: forget them, by the line rule. */
static void forget_took(struct stream *s, unsigned long long t)
{
	unsigned long long pos;

	if (t > s->csent)
		t = s->csent; /* more than was sent is not the receiver's to say */
	pos = s->cbase + t;
	/* All of it, our end included: the receiver took the last line whole. */
	if (!(s->flags & STREAM_LINES) || (s->shut && t == s->csent))
		forget(s, pos);
	else
		forget(s, line_end(s, pos));
}

void stream_confirm(struct stream *s)
{
	long long t;

	if (s->fd < 0 || s->handshaking)
		return;
	if (s->confirm == STREAM_BY_COUNTS && !s->peer_end)
		peer_read(s); /* the counts that came; a failure is the caller's to meet */
	if ((t = took(s)) >= 0)
		forget_took(s, (unsigned long long)t);
}

/* Counts of what the receiver took, 8 bytes big-endian each, as far as they came. */
static void take_counts(struct stream *s, const unsigned char *p, size_t n)
{
	while (n) {
		size_t k = sizeof s->cnt - s->cnt_have;
		unsigned long long v = 0;

		if (k > n)
			k = n;
		memcpy(s->cnt + s->cnt_have, p, k);
		s->cnt_have += k;
		p += k;
		n -= k;
		if (s->cnt_have < sizeof s->cnt)
			return;
		for (size_t i = 0; i < sizeof s->cnt; i++)
			v = v << 8 | s->cnt[i];
		s->cnt_have = 0;
		if (v > s->count)
			s->count = v;
	}
}

/* ---- the connection ---- */

/*
 * The receiver's stream: counts (the rest of what it sends is not ours
 * to take), and its end. Returns 1 when its end came now, 0, or -1 with
 * errno.
 */
static int peer_read(struct stream *s)
{
	unsigned char buf[4096];

	for (int rounds = 0; rounds < READ_ROUNDS; rounds++) {
		ssize_t r = s->ch ? channel_read(s->ch, buf, sizeof buf)
				  : recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (r > 0) {
			if (s->confirm == STREAM_BY_COUNTS)
				take_counts(s, buf, (size_t)r);
			continue;
		}
		if (r == 0) {
			s->peer_end = 1;
			/*
			 * Its END after ours took our stream to its end, if its last
			 * count says so: a receiver ending (a pool's teardown) sends
			 * its END too, and ours may have crossed it on the way.
			 * Without counts, its END after ours is all there is to go by.
			 */
			s->peer_took = s->shut && (s->confirm == STREAM_BY_COUNTS
							   ? s->count >= s->csent
							   : s->ch != NULL);
			return 1;
		}
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	}
	return 0;
}

static ssize_t put(struct stream *s, const void *p, size_t n)
{
	ssize_t w;

	if (s->ch)
		return channel_write(s->ch, p, n);
	do
		w = send(s->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w;
}

/* Send what waits, without blocking: the prefix, then the stream within the window. */
static int send_all(struct stream *s)
{
	while (s->prefix_off < s->prefix_len) {
		ssize_t w = put(s, s->prefix + s->prefix_off, s->prefix_len - s->prefix_off);

		if (w < 0 && errno == EAGAIN)
			goto full;
		if (w < 0)
			return -1;
		s->prefix_off += (size_t)w;
	}
	if (s->prefix_len && s->prefix_off == s->prefix_len)
		mem_wipe(s->prefix, sizeof s->prefix); /* a token: needed no longer */
	for (size_t n; (n = sendable(s)) > 0;) {
		size_t avail;
		const char *p = queue_unsent(&s->q, &avail);
		ssize_t w = put(s, p, n);

		if (w < 0 && errno == EAGAIN)
			goto full;
		if (w < 0)
			return -1;
		queue_mark_sent(&s->q, (size_t)w);
		s->csent += (unsigned long long)w;
		if ((size_t)w < n)
			goto full; /* a short write: the next one would say EAGAIN */
	}
	if (s->ch && channel_flush(s->ch) < 0) {
		if (errno != EAGAIN)
			return -1;
		goto full;
	}
	s->full = 0;
	return 0;
full:
	if (s->ch && channel_flush(s->ch) < 0 && errno != EAGAIN)
		return -1;
	s->full = 1;
	return 0;
}

/* An error or hangup on the socket: what it was. */
static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	return err ? err : EPIPE;
}

int stream_step(struct stream *s, short revents, long long now)
{
	int ended = 0, r, was_ended = s->peer_end;

	if (s->fd < 0)
		return 0;
	if (s->handshaking) {
		if ((r = channel_handshake(s->ch, now)) <= 0)
			return r;
		s->handshaking = 0;
		if ((s->flags & STREAM_COUNTS) && channel_peer_said(s->ch, CHANNEL_ACKS))
			s->confirm = STREAM_BY_COUNTS;
		revents &= (short)~POLLIN; /* what woke us was the handshake's */
	}
	/* Counts are looked for at every step: a teardown steps without polling. */
	if (!s->peer_end && ((revents & POLLIN) || s->confirm == STREAM_BY_COUNTS ||
			     (s->ch && channel_readable(s->ch)))) {
		if ((ended = peer_read(s)) < 0)
			return -1;
	}
	/*
	 * A hangup once both ends are out is the normal close, and after the
	 * receiver's END to ours, even a reset is: it has everything.
	 */
	if (!s->peer_took &&
	    ((revents & POLLERR) || ((revents & POLLHUP) && !(s->peer_end && s->shut)))) {
		errno = sock_error(s->fd);
		return -1;
	}
	if (send_all(s) < 0)
		return -1;
	stream_confirm(s);
	return !was_ended && s->peer_end;
}

int stream_end(struct stream *s)
{
	if (s->shut)
		return 1;
	if (s->fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	if (s->handshaking || queue_pending(&s->q) || s->prefix_off < s->prefix_len)
		return 0;
	if (s->ch && channel_shutdown(s->ch) < 0) {
		if (errno != EAGAIN)
			return -1;
		s->full = 1;
		return 0;
	}
	if (!s->ch && shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return -1;
	s->shut = 1;
	stream_confirm(s);
	return 1;
}

int stream_done(const struct stream *s)
{
	return s->shut && s->q.len == 0;
}

static void disconnect(struct stream *s)
{
	channel_free(s->ch);
	s->ch = NULL;
	s->fd = -1;
	mem_wipe(s->prefix, sizeof s->prefix);
	s->prefix_len = s->prefix_off = 0;
	s->handshaking = s->full = s->shut = s->peer_end = s->peer_took = 0;
	queue_rewind(&s->q);
}

size_t stream_lost(struct stream *s)
{
	int fd = s->fd;

	stream_confirm(s);
	disconnect(s);
	if (fd >= 0)
		close(fd);
	return s->q.len;
}

size_t stream_hand_over(struct stream *s, int *keep)
{
	int fd = s->fd;
	unsigned long long handed = s->csent;

	*keep = -1;
	stream_confirm(s);
	/*
	 * Our END right after what was sealed, even with bytes unsent behind
	 * it: the receiver owns what comes before it (it does not hold it back
	 * for us). Records sealed and not in the socket yet are not the
	 * kernel's: they stay ours.
	 */
	if (s->ch && !s->handshaking && channel_shutdown(s->ch) < 0 && errno == EAGAIN) {
		unsigned long long h = channel_handed(s->ch);

		handed = h > s->prefix_len ? h - s->prefix_len : 0;
	}
	if (fd >= 0 && !s->handshaking && s->cbase + handed > s->base)
		forget(s, s->cbase + handed); /* the kernel's now */
	/*
	 * A receiver that talks back (counts, its END) would make our close a
	 * reset once it speaks again, and a reset makes its kernel drop what its
	 * reader has not read yet: the caller keeps the connection open.
	 */
	if (fd >= 0 && !s->handshaking && !s->peer_end &&
	    (s->ch || s->confirm == STREAM_BY_COUNTS))
		*keep = fd;
	disconnect(s);
	if (fd >= 0 && *keep < 0)
		close(fd);
	return s->q.len;
}

int stream_detach(struct stream *s)
{
	int fd = s->fd;

	stream_confirm(s);
	disconnect(s);
	return fd;
}

int stream_settled(const struct stream *s)
{
	return s->fd >= 0 && !s->handshaking && s->prefix_off == s->prefix_len &&
	       !(s->ch && channel_unsent(s->ch));
}

void stream_release(struct stream *s, int *fd, struct channel **ch)
{
	*fd = s->fd;
	*ch = s->ch;
	s->ch = NULL;
	disconnect(s);
}

unsigned long long stream_resume_at(struct stream *s, unsigned long long at)
{
	if (at < s->base)
		return s->base - at;
	if (at > s->base) {
		size_t drop = (size_t)(at - s->base);

		queue_consume(&s->q, drop < s->q.len ? drop : s->q.len);
		s->base = at;
		s->line = at; /* the receiver's count ends at a line or a piece */
	}
	return 0;
}

void stream_free(struct stream *s)
{
	stream_lost(s);
	queue_free(&s->q);
}

ssize_t stream_conn_recv(int fd, struct channel *ch, void *buf, size_t n)
{
	ssize_t r;

	if (ch)
		return channel_read(ch, buf, n);
	do
		r = recv(fd, buf, n, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r;
}

int stream_conn_shutdown(int fd, struct channel *ch)
{
	return ch ? channel_shutdown(ch) : shutdown(fd, SHUT_WR);
}

short stream_conn_events(const struct channel *ch)
{
	return ch ? channel_events(ch) : 0;
}

int stream_conn_buffered(const struct channel *ch)
{
	return ch && channel_readable(ch);
}

int stream_conn_flush(struct channel *ch)
{
	return ch ? channel_flush(ch) : 0;
}

size_t stream_conn_unsent(const struct channel *ch)
{
	return ch ? channel_unsent(ch) : 0;
}

const char *stream_conn_strerror(const struct channel *ch, int err)
{
	return ch ? channel_strerror(err, 0) : strerror(err);
}
