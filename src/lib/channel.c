/*
 * The channel: the handshake's two framed messages, then records, over a
 * non-blocking socket. Bytes to send wait in one buffer (a handshake
 * message, sealed records, the END); the socket is read only as far as
 * the message or record being assembled, so nothing waits here unseen by
 * poll but the plaintext of one record (channel_readable).
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL */
#include "channel.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "mem.h"
#include "queue.h"
#include "record.h"

#define HS_HDR 2
#define HS_MAX (NOISE_HS_OVERHEAD + CHANNEL_PAYLOAD_MAX)
/* Sealed bytes a channel holds: two full records, so one fills while the other goes out. */
#define OUT_CAP (2 * RECORD_WIRE_MAX)

/*
 * CH_PROVING: a responder that has answered the handshake and waits for
 * the initiator's first record. NNpsk0's first message can be replayed by
 * anyone who recorded one, so only an authenticated record from the
 * initiator, under keys that hold our fresh ephemeral, shows that it
 * holds the key (key confirmation): until then nothing counts it as
 * authenticated, and the handshake's deadline still runs.
 */
enum { CH_HS, CH_PROVING, CH_OPEN, CH_FAILED };

#define DEFER_END (-1) /* channel_read's next call returns 0: the END came */

/* One sealed record's end, for channel_tcp_acked: wire and plaintext offsets. */
struct mark {
	unsigned long long wire, plain;
};

struct channel {
	int fd, state, err;
	long long deadline;
	struct noise_hs hs;
	/* The handshake message being read: its length, then its body. */
	unsigned char hsin[HS_HDR + HS_MAX];
	size_t hsin_have;
	unsigned char payload[CHANNEL_PAYLOAD_MAX]; /* the peer's handshake payload */
	size_t payload_len;
	unsigned char *out; /* bytes to send: out[off..len) */
	size_t off, len;
	unsigned long long wire_sealed, wire_sent, plain_sent;
	int ended, shut, eof;
	const char *also; /* responder: another prologue an initiator may hash in (channel_also) */
	int deferred; /* met after bytes channel_read handed out, for its next call: an errno
			 value, or DEFER_END */
	int track; /* channel_track_acks: keep marks */
	struct mark *marks; /* records sent and not known acknowledged, from mark_head */
	size_t nmarks, mark_head, mark_cap;
	unsigned long long plain_acked;
	struct record_writer w;
	struct record_reader r;
};

static int fail(struct channel *c, int err)
{
	if (c->state != CH_FAILED) {
		noise_hs_wipe(&c->hs);
		record_writer_wipe(&c->w);
		c->state = CH_FAILED;
		c->err = err;
	}
	errno = c->err;
	return -1;
}

/* Put a handshake message after its length into the send buffer. */
static int hs_send(struct channel *c, const void *payload, size_t n)
{
	ssize_t m = noise_hs_write(&c->hs, payload, n, c->out + c->len + HS_HDR,
				   OUT_CAP - c->len - HS_HDR);

	if (m < 0)
		return -1;
	c->out[c->len] = (unsigned char)(m >> 8);
	c->out[c->len + 1] = (unsigned char)m;
	c->len += HS_HDR + (size_t)m;
	c->wire_sealed += HS_HDR + (size_t)m;
	return 0;
}

struct channel *channel_new(int fd, int initiator, const unsigned char psk[NOISE_PSK],
			    const char *prologue, const void *payload, size_t n, long long now)
{
	struct channel *c;
	int saved;

	if (n > CHANNEL_PAYLOAD_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (!(c = calloc(1, sizeof *c)))
		return NULL;
	if (!(c->out = malloc(OUT_CAP)))
		goto fail;
	c->fd = fd;
	c->state = CH_HS;
	c->deadline = now + CHANNEL_HS_MS;
	if (noise_hs_init(&c->hs, initiator, psk, prologue, strlen(prologue)) < 0)
		goto fail;
	/* The responder answers with its payload once it has read the first message. */
	if (initiator && hs_send(c, payload, n) < 0)
		goto fail;
	if (!initiator) {
		if (n)
			memcpy(c->payload, payload, n); /* kept until the answer: ours, not the peer's */
		c->payload_len = n;
	}
	return c;
fail:
	saved = errno;
	channel_free(c);
	errno = saved;
	return NULL;
}

int channel_also(struct channel *c, const char *prologue)
{
	if (c->hs.initiator || c->state != CH_HS || c->hsin_have) {
		errno = EINVAL;
		return -1;
	}
	c->also = prologue;
	return 0;
}

int channel_flush(struct channel *c)
{
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->out + c->off, c->len - c->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c->off += (size_t)w;
		c->wire_sent += (size_t)w;
	}
	c->off = c->len = 0;
	return 0;
}

/*
 * Read the rest of the handshake message being assembled: the length,
 * then exactly the body. Returns 1 when it is complete, 0 when more must
 * come, -1 with errno.
 */
static int hs_recv(struct channel *c)
{
	for (;;) {
		size_t want = HS_HDR, have = c->hsin_have;
		ssize_t r;

		if (have >= HS_HDR) {
			size_t len = (size_t)c->hsin[0] << 8 | c->hsin[1];

			if (len < NOISE_HS_OVERHEAD || len > HS_MAX) {
				errno = EPROTO;
				return -1;
			}
			want = HS_HDR + len;
		}
		if (have == want)
			return 1;
		r = recv(c->fd, c->hsin + have, want - have, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (r == 0) {
			errno = ECONNRESET; /* closed before its part of the handshake */
			return -1;
		}
		c->hsin_have += (size_t)r;
	}
}

/*
 * The initiator's first record, sent as soon as the handshake is done (an
 * empty one: whatever the caller writes next follows in the same flight):
 * the responder's proof that we hold the key (see CH_PROVING).
 */
static int confirm(struct channel *c)
{
	size_t taken;
	ssize_t m = record_seal(&c->w, NULL, 0, &taken, c->out + c->len, OUT_CAP - c->len);

	if (m < 0)
		return -1;
	c->len += (size_t)m;
	c->wire_sealed += (size_t)m;
	return 0;
}

/*
 * Read the peer's handshake message into pl (room HS_MAX): under our
 * prologue, or (a responder given channel_also) under the other one.
 * Returns the payload's length, or -1 with errno as noise_hs_read.
 */
static ssize_t hs_read(struct channel *c, unsigned char *pl)
{
	const unsigned char *msg = c->hsin + HS_HDR;
	size_t len = c->hsin_have - HS_HDR;
	unsigned char psk[NOISE_PSK];
	ssize_t n;

	if (!c->also || c->hs.initiator)
		return noise_hs_read(&c->hs, msg, len, pl, HS_MAX);
	memcpy(psk, c->hs.psk, sizeof psk); /* a failed read wipes the state */
	n = noise_hs_read(&c->hs, msg, len, pl, HS_MAX);
	/* The first message reads under one prologue or the other: no DH is spent on it. */
	if (n < 0 && errno == EBADMSG &&
	    noise_hs_init(&c->hs, 0, psk, c->also, strlen(c->also)) == 0)
		n = noise_hs_read(&c->hs, msg, len, pl, HS_MAX);
	mem_wipe(psk, sizeof psk);
	return n;
}

/* The peer's message is in: read it, answer it (responder), split. */
static int hs_take(struct channel *c)
{
	unsigned char pl[HS_MAX];
	int initiator = c->hs.initiator;
	ssize_t n = hs_read(c, pl);
	struct noise_cs send, recv;

	c->hsin_have = 0;
	if (n < 0)
		return -1;
	if ((size_t)n > CHANNEL_PAYLOAD_MAX) {
		mem_wipe(pl, sizeof pl);
		errno = EPROTO;
		return -1;
	}
	if (!initiator) {
		int r = hs_send(c, c->payload, c->payload_len);

		if (r < 0)
			return -1;
	}
	memcpy(c->payload, pl, (size_t)n);
	c->payload_len = (size_t)n;
	mem_wipe(pl, sizeof pl);
	if (!noise_hs_done(&c->hs)) {
		errno = EPROTO;
		return -1;
	}
	noise_hs_split(&c->hs, &send, &recv);
	record_writer_init(&c->w, &send);
	record_reader_init(&c->r, &recv);
	noise_cs_wipe(&send);
	noise_cs_wipe(&recv);
	noise_hs_wipe(&c->hs); /* the handshake hash too: nothing here uses it */
	if (!initiator) {
		c->state = CH_PROVING;
		return 0;
	}
	c->state = CH_OPEN;
	return confirm(c);
}

static int rec_recv(struct channel *c);

/*
 * CH_PROVING: read the initiator's first record and open it (its
 * plaintext, if any, then waits for channel_read). Returns 1 once it
 * authenticated, 0 while it is incomplete, or -1 with errno: EBADMSG
 * (not sealed under the keys of this handshake: a replayed first message
 * cannot make one), ECONNRESET (closed before it), the socket's.
 */
static int prove(struct channel *c)
{
	for (;;) {
		int r = record_open(&c->r);

		if (r != 0)
			return r;
		if ((r = rec_recv(c)) < 0 && c->eof)
			errno = ECONNRESET;
		if (r <= 0)
			return r;
	}
}

int channel_handshake(struct channel *c, long long now)
{
	int r;

	if (c->state == CH_FAILED) {
		errno = c->err;
		return -1;
	}
	if (c->state == CH_OPEN)
		return 1;
	if (channel_flush(c) < 0 && errno != EAGAIN)
		return fail(c, errno);
	if (c->state == CH_HS) {
		if ((r = hs_recv(c)) < 0 || (r == 1 && hs_take(c) < 0))
			return fail(c, errno);
		if (r == 1 && channel_flush(c) < 0 && errno != EAGAIN)
			return fail(c, errno);
	}
	if (c->state == CH_PROVING) {
		if ((r = prove(c)) < 0)
			return fail(c, errno);
		if (r == 1)
			c->state = CH_OPEN;
	}
	if (c->state == CH_OPEN)
		return 1;
	if (now >= c->deadline)
		return fail(c, ETIMEDOUT);
	return 0;
}

int channel_handshake_wait(struct channel *c)
{
	for (;;) {
		long long now = io_now_ms();
		int r = channel_handshake(c, now);
		struct pollfd pfd = {.fd = c->fd, .events = channel_events(c)};

		if (r != 0)
			return r;
		if (poll(&pfd, 1, channel_timeout(c, now)) < 0 && errno != EINTR)
			return fail(c, errno);
	}
}

const unsigned char *channel_peer_payload(const struct channel *c, size_t *n)
{
	*n = c->state == CH_OPEN ? c->payload_len : 0;
	return c->payload;
}

int channel_peer_said(const struct channel *c, const char *s)
{
	size_t n;
	const unsigned char *p = channel_peer_payload(c, &n);

	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* Still in the handshake: its messages, or (responder) the initiator's first record. */
static int handshaking(const struct channel *c)
{
	return c->state == CH_HS || c->state == CH_PROVING;
}

short channel_events(const struct channel *c)
{
	short ev = handshaking(c) ? POLLIN : 0;

	return c->off < c->len ? (short)(ev | POLLOUT) : ev;
}

void channel_set_deadline(struct channel *c, long long at)
{
	c->deadline = at;
}

int channel_timeout(const struct channel *c, long long now)
{
	if (!handshaking(c))
		return -1;
	return c->deadline <= now ? 0 : (int)(c->deadline - now);
}

/* Bytes of the record being assembled, from the socket. 1: some, 0: EAGAIN, -1: error or EOF. */
static int rec_recv(struct channel *c)
{
	size_t want;
	void *room = record_room(&c->r, &want);
	ssize_t r;

	if (!room)
		return -1; /* ENOMEM */
	do
		r = recv(c->fd, room, want, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -1;
	if (r == 0) {
		c->eof = 1;
		if (record_eof(&c->r) == 0)
			return 1; /* cannot be: pull would have said END; harmless */
		return -1;    /* EPIPE: cut short before its END */
	}
	record_fill(&c->r, (size_t)r);
	return 1;
}

ssize_t channel_read(struct channel *c, void *buf, size_t n)
{
	size_t got = 0;
	int err = 0;

	if (c->state != CH_OPEN) {
		errno = c->state == CH_FAILED ? c->err : EAGAIN;
		return -1;
	}
	if (c->deferred) {
		int d = c->deferred;

		c->deferred = 0;
		if (d == DEFER_END)
			return 0;
		errno = d;
		return -1;
	}
	while (got < n && !err) {
		ssize_t p;
		int r;

		/* The next record whole into the caller's next buffer rather than in pieces. */
		if (got && !record_fits(&c->r, n - got))
			break;
		p = record_pull(&c->r, (char *)buf + got, n - got);
		if (p > 0) {
			got += (size_t)p;
			continue;
		}
		if (p == 0)
			err = DEFER_END; /* the END: 0, now or (after bytes) next time */
		else if (errno != EAGAIN)
			err = errno; /* a bad record */
		else if (c->eof)
			err = EPIPE; /* cut short before the END */
		else if ((r = rec_recv(c)) <= 0)
			err = r == 0 ? EAGAIN : errno;
	}
	/*
	 * What came before a failure is handed out first; the failure on the
	 * next call, which channel_readable asks for: the socket may have
	 * nothing more to wake a poll with.
	 */
	if (got) {
		c->deferred = err == EAGAIN ? 0 : err;
		return (ssize_t)got;
	}
	if (err == DEFER_END)
		return 0;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

int channel_readable(const struct channel *c)
{
	return c->state == CH_OPEN && (c->deferred || record_ready(&c->r));
}

/* Room for the next record at the buffer's end, moving what waits to its start. */
static size_t out_room(struct channel *c)
{
	if (c->off && c->off == c->len)
		c->off = c->len = 0;
	if (OUT_CAP - c->len < RECORD_WIRE_MAX && c->off) {
		memmove(c->out, c->out + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	return OUT_CAP - c->len;
}

static int mark(struct channel *c)
{
	if (!c->track)
		return 0;
	/* Acknowledged marks go once they are half the array: a steady stream never catches up. */
	if (c->mark_head && c->mark_head * 2 >= c->nmarks) {
		memmove(c->marks, c->marks + c->mark_head, (c->nmarks - c->mark_head) * sizeof *c->marks);
		c->nmarks -= c->mark_head;
		c->mark_head = 0;
	}
	if (mem_reserve(&c->marks, &c->mark_cap, c->nmarks + 1, sizeof *c->marks, 64) < 0)
		return -1;
	c->marks[c->nmarks++] = (struct mark){c->wire_sealed, c->plain_sent};
	return 0;
}

ssize_t channel_write(struct channel *c, const void *buf, size_t n)
{
	size_t took = 0;

	if (c->state != CH_OPEN) {
		errno = c->state == CH_FAILED ? c->err : EAGAIN;
		return -1;
	}
	if (c->ended) {
		errno = EPIPE;
		return -1;
	}
	while (took < n) {
		size_t room = out_room(c), t = 0;
		ssize_t m;

		if (room <= RECORD_OVERHEAD) {
			if (channel_flush(c) == 0)
				continue;
			if (errno != EAGAIN)
				return fail(c, errno);
			break;
		}
		m = record_seal(&c->w, (const char *)buf + took, n - took, &t, c->out + c->len, room);
		if (m < 0)
			return fail(c, errno);
		c->len += (size_t)m;
		c->wire_sealed += (size_t)m;
		c->plain_sent += t;
		took += t;
		if (mark(c) < 0)
			return -1;
	}
	if (channel_flush(c) < 0 && errno != EAGAIN)
		return fail(c, errno);
	if (!took && n) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)took;
}

size_t channel_unsent(const struct channel *c)
{
	return c->len - c->off;
}

int channel_shutdown(struct channel *c)
{
	if (c->state != CH_OPEN) {
		errno = c->state == CH_FAILED ? c->err : EAGAIN;
		return -1;
	}
	if (!c->ended) {
		ssize_t m;

		if (out_room(c) < RECORD_OVERHEAD && channel_flush(c) < 0)
			return errno == EAGAIN ? -1 : fail(c, errno);
		m = record_seal_end(&c->w, c->out + c->len, OUT_CAP - c->len);
		if (m < 0)
			return fail(c, errno);
		c->len += (size_t)m;
		c->wire_sealed += (size_t)m;
		c->ended = 1;
		record_writer_wipe(&c->w); /* nothing more is sealed */
	}
	if (channel_flush(c) < 0)
		return errno == EAGAIN ? -1 : fail(c, errno);
	if (!c->shut && shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
		return fail(c, errno);
	c->shut = 1;
	return 0;
}

void channel_track_acks(struct channel *c)
{
	c->track = 1;
}

long long channel_tcp_acked(struct channel *c)
{
	long long a = queue_tcp_acked(c->fd, c->wire_sent);

	if (a < 0)
		return -1;
	while (c->mark_head < c->nmarks && c->marks[c->mark_head].wire <= (unsigned long long)a)
		c->plain_acked = c->marks[c->mark_head++].plain;
	return (long long)c->plain_acked;
}

unsigned long long channel_handed(const struct channel *c)
{
	unsigned long long plain = c->plain_acked;

	/* The marks from mark_head on are the records not known acknowledged yet. */
	for (size_t i = c->mark_head; i < c->nmarks && c->marks[i].wire <= c->wire_sent; i++)
		plain = c->marks[i].plain;
	return plain;
}

unsigned long long channel_sent(const struct channel *c)
{
	return c->plain_sent;
}

const char *channel_strerror(int err, int handshake)
{
	switch (err) {
	case EBADMSG:
		return handshake ? "handshake failed: the peer does not hold the key (or is not a "
				   "socketpool channel)"
				 : "a record was altered or is from another key; the rest is refused";
	case EPIPE:
		return handshake ? "handshake failed: the connection broke"
				 : "stream truncated: the connection closed before its authenticated end";
	case ECONNRESET:
		if (handshake == 2)
			return "closed before its handshake";
		return handshake ? "handshake failed: the peer closed the connection (a wrong key?)"
				 : strerror(err);
	case ECONNABORTED:
		return handshake ? strerror(err) : "the peer ended its stream before ours";
	case ETIMEDOUT:
		return handshake ? "handshake failed: no answer in time" : strerror(err);
	case EPROTO: return "handshake failed: a malformed message (not a socketpool channel?)";
	default: return strerror(err);
	}
}

void channel_free(struct channel *c)
{
	if (!c)
		return;
	noise_hs_wipe(&c->hs);
	record_writer_wipe(&c->w);
	record_reader_wipe(&c->r);
	mem_wipe(c->payload, sizeof c->payload);
	free(c->out); /* ciphertext only: nothing there to wipe */
	free(c->marks);
	free(c);
}
