/*
 * The -k side of a binding's connection: the encrypted channel (channel.h)
 * every sender speaks under the binding's key. Its handshake, slowed for
 * sources that guessed the key wrong before (penalty.h); the counts told
 * to a sender that asked for them; its END; and plaintext a channel opened
 * already, which poll cannot see.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "binding_int.h"
#include "io.h"
#include "penalty.h"

/* -k: bytes taken between two acknowledgements (CHANNEL_ACKS) while more are on their way */
#define ACK_EVERY (256u << 10)

/* A sender's bytes: through its channel when it has one. 0: its end; -1: errno (EAGAIN). */
ssize_t conn_recv(struct conn *c, char *buf, size_t n)
{
	return stream_conn_recv(c->fd, c->ch, buf, n);
}

/*
 * Tell a sender that asked how much of its stream we took, when that grew:
 * at once when it has nothing more on its way (it may be waiting for
 * this), else every ACK_EVERY bytes, so that a bulk stream is not slowed
 * by a wake-up per record on both sides.
 */
void chan_ack(struct conn *c, int now)
{
	unsigned char v[8];

	if (!c->ch || !c->acks || c->acked == c->bytes)
		return;
	if (!now && c->bytes - c->acked < ACK_EVERY &&
	    (channel_readable(c->ch) || conn_pending(c) > 0))
		return;
	for (int k = 0; k < 8; k++)
		v[k] = (unsigned char)(c->bytes >> (56 - 8 * k));
	/* A full channel skips this one: the next count covers it. */
	if (channel_write(c->ch, v, sizeof v) == (ssize_t)sizeof v)
		c->acked = c->bytes;
}

/*
 * Read and drop what the socket holds now; 1 once the peer has closed.
 * Closing with unread bytes would reset the connection, and a reset
 * drops what we sent last and the kernel still holds: the count.
 */
int chan_drain(const struct conn *c)
{
	char buf[16384];

	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (r < 0)
			return 0;
	}
	return 0;
}

/*
 * The sender's stream ended: the last count, best effort, for a sender
 * that waits to hear it, and after its END our own. A failed stream gets
 * no END: ours says we took the sender's to its end.
 */
void chan_close(struct conn *c, int err)
{
	chan_ack(c, 1);
	if (!err)
		channel_shutdown(c->ch);
	else
		channel_flush(c->ch);
	if (err)
		chan_drain(c); /* what it sent after the failure is refused anyway */
}

/*
 * A handshake is a guess at the key, as the pool's AUTH is: one from a
 * source that guessed wrong before is read only when the penalty allows
 * (penalty.h), and what its first message proves is recorded. The table
 * is made at the first wrong key: most bindings never need it.
 */
static void chan_judged(struct binding *b, const struct conn *c, int ok, long long now)
{
	if (!b->pen && !ok)
		b->pen = calloc(1, sizeof *b->pen); /* no memory: no penalty, as before */
	if (b->pen)
		penalty_judged(b->pen, c->ip, ok, now);
}

/* Held back by the penalty: neither read nor polled for before judge_at, unless its time is up. */
int chan_waits(const struct conn *c, long long now)
{
	return c->state == CONN_HS && now < c->judge_at && channel_timeout(c->ch, now) > 0;
}

/* The handshake went on: done, the sender is on to its first line or its data. */
void chan_step(struct binding *b, size_t i, long long now)
{
	struct conn *c = &b->conns[i];
	int r, err;

	if (c->judge_at) {
		/*
		 * Asked when its message comes, and again when its wait is over:
		 * the judgements before it, in this round too, may have moved it.
		 */
		long long at = b->pen ? penalty_when(b->pen, c->ip, now) : now;
		c->judge_at = at > now ? at : 0;
		if (chan_waits(c, now))
			return;
		c->judge_at = 0;
	}
	if ((r = channel_handshake(c->ch, now)) == 0)
		return;
	err = errno;
	if (r < 0 && (err == EBADMSG || err == EPROTO))
		chan_judged(b, c, 0, now);
	if (r < 0) {
		conn_reject(b, i, channel_strerror(err, 2));
		return;
	}
	chan_judged(b, c, 1, now);
	c->acks = channel_peer_said(c->ch, CHANNEL_ACKS);
	if (b->guard.on_line) {
		c->state = CONN_FIRST;
		c->first_by = now + b->guard.wait_ms;
		return;
	}
	conn_admit(b, i, NULL, 0);
}

/*
 * The next record's plaintext may wait in a channel, unseen by poll: read
 * it now. Also handshakes past their deadline.
 */
int chan_pending(struct binding *b, long long now)
{
	for (size_t i = b->nconns; i-- > 0;) {
		struct conn *c = &b->conns[i];

		if (c->state == CONN_HS && (channel_timeout(c->ch, now) == 0 ||
					    (c->judge_at > 0 && !chan_waits(c, now))))
			chan_step(b, i, now);
		else if (c->state == CONN_FIRST && stream_conn_buffered(c->ch) &&
			 conn_first_read(b, i) < 0)
			return -1;
		else if (c->state == CONN_DATA && stream_conn_buffered(c->ch) &&
			 conn_wants_read(b, c) && conn_read(b, i) < 0)
			return -1;
	}
	return 0;
}
