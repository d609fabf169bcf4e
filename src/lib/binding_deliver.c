/*
 * A sender's bytes into the buffer's writer (pipew.c): read through line
 * assembly (lines.c) so that concurrent senders' lines never mix, passed
 * straight through for a single sender, or spliced unseen when line
 * atomicity cannot suffer; the -m cap on what is held; and a sender's end,
 * which delivers or drops its unfinished line.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>

#include "binding_int.h"
#include "io.h"

#define SCRATCH 65536	      /* one read from a sender */
#define SPLICE_MAX (1u << 20) /* one splice from the single sender */
#define BULK_MIN 65536	      /* a lone sender with this much waiting is spliced */

/* What -m limits: whole lines queued plus every sender's unfinished line. */
static size_t held(const struct binding *b)
{
	return pipew_queued(&b->w) + b->parts;
}

/* Line assembly's output: whole units go to the pipe's writer. */
static int emit_cb(void *arg, const char *p, size_t n)
{
	return pipew_emit(&((struct binding *)arg)->w, p, n);
}

/* Feed a data conn's bytes through line assembly, keeping b->parts right. */
static int feed(struct binding *b, struct conn *c, const char *p, size_t n)
{
	size_t before = c->lines.len;
	int r = lines_feed(&c->lines, p, n, BINDING_LINE_MAX, emit_cb, b);

	b->parts = b->parts - before + c->lines.len;
	return r;
}

/* Emit a data conn's unfinished line now (its end, or before splicing). */
static int flush_part(struct binding *b, struct conn *c, int newline)
{
	size_t before = c->lines.len;
	int r = lines_flush(&c->lines, newline, emit_cb, b);

	b->parts -= before;
	return r;
}

/*
 * Bytes from a data conn. A single sender's go straight through. A sender
 * that owns the pipe's tail (after a splice) finishes that line first.
 */
int conn_take(struct binding *b, struct conn *c, const char *p, size_t n)
{
	if (n)
		c->last = p[n - 1];
	if (b->single)
		return pipew_emit(&b->w, p, n);
	if (pipew_owner(&b->w) == c->fd) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl + 1 - p) : n;

		if (pipew_emit(&b->w, p, k) < 0)
			return -1;
		pipew_owner_wrote(&b->w, k, nl != NULL, io_now_ms());
		p += k;
		n -= k;
		if (!n)
			return 0;
	}
	return feed(b, c, p, n);
}

/* A sender's unterminated last line must be ended when it closes (see BINDING_RAW). */
static int ends_lines(const struct binding *b)
{
	return !(b->flags & (BINDING_RAW | BINDING_ONCE));
}

/* The sender left (EOF or error): deliver its last bytes, report, forget it. */
int conn_end(struct binding *b, size_t i, int err)
{
	struct conn *c = &b->conns[i];
	int r;

	unsigned long long taken = c->bytes;

	if (c->state != CONN_DATA) {
		conn_reject(b, i,
			    err ? "connection failed before its first line"
				: "closed before its first line");
		return 0;
	}
	if (err && c->adm.resume && !b->single) {
		/* Its stream goes on elsewhere: the unfinished line comes again from there. */
		taken -= c->lines.len;
		b->parts -= c->lines.len;
		lines_clear(&c->lines);
		r = 0;
	} else {
		r = flush_part(b, c, 0);
		if (r == 0 && ends_lines(b) && c->bytes && c->last != '\n') {
			r = pipew_emit(&b->w, "\n", 1);
			pipew_disown(&b->w, c->fd); /* the line it owned is ended */
		}
	}
	if (c->ch)
		chan_close(c, err);
	if (err)
		binding_report(b, BINDING_EV_ERROR, c->peer, NULL, c->bytes, err);
	if (c->bytes)
		b->had_data = 1;
	conn_report(b, BINDING_EV_CLOSE, c, err, taken);
	conn_drop(b, i);
	return r;
}

/* How many bytes the sender may be read for now (0: hold it back). */
static size_t read_room(const struct binding *b, const struct conn *c)
{
	size_t h = held(b), room = h < b->mem_cap ? b->mem_cap - h : 0;

	/*
	 * When unfinished lines alone fill the cap, nothing could ever be
	 * written and they would wait for each other forever: then a sender
	 * may read on to finish its line. Once whole lines are queued, the
	 * reader's progress frees room instead.
	 */
	if (c->lines.len && !pipew_queued(&b->w) && room < BINDING_LINE_MAX - c->lines.len)
		room = BINDING_LINE_MAX - c->lines.len;
	return room < SCRATCH ? room : SCRATCH;
}

/* A data conn read: as much as the cap allows, through conn_take. */
int conn_read(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];
	char buf[SCRATCH];
	size_t room = read_room(b, c);
	ssize_t r;

	if (!room)
		return 0;
	r = conn_recv(c, buf, room);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return conn_end(b, i, r < 0 ? errno : 0);
	c->bytes += (size_t)r;
	c->data_at = time(NULL);
	if (conn_take(b, c, buf, (size_t)r) < 0)
		return -1;
	chan_ack(c, 0);
	return 0;
}

/* Bytes the socket holds now: whether more is on its way, which side of a splice blocked. */
int conn_pending(const struct conn *c)
{
	int n = 0;

	return ioctl(c->fd, SIOCINQ, &n) < 0 ? 0 : n;
}

/* A data conn's bytes spliced into the pipe unseen (conn_can_splice said they may be). */
int conn_splice(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];

	/*
	 * The start of a line read earlier goes in first, and the sender owns
	 * the pipe's tail from there, as after a splice. Without this a lone
	 * sender whose reads end mid-line (most of them) would never be
	 * spliced again.
	 */
	if (c->lines.len) {
		if (flush_part(b, c, 0) < 0)
			return -1;
		pipew_own(&b->w, c->fd, io_now_ms());
		if (pipew_queued(&b->w))
			return 0; /* the pipe took only part of it: the rest follows by reading */
	}
	for (int rounds = 0; rounds < 16; rounds++) {
		size_t room = pipew_splice_room(&b->w);
		ssize_t r;

		size_t max = room < SPLICE_MAX ? room : SPLICE_MAX;

		if (room < PIPEW_SPLICE_MIN)
			return 0;
		if (ends_lines(b)) {
			/* The last byte is read, never spliced: whether a newline must follow is seen. */
			size_t inq = (size_t)conn_pending(c);

			if (inq <= 1)
				return conn_read(b, i);
			if (inq - 1 < max)
				max = inq - 1;
		}
		r = pipew_splice(&b->w, c->fd, max);
		if (r > 0) {
			c->bytes += (size_t)r;
			c->data_at = time(NULL);
			if (!b->single)
				pipew_own(&b->w, c->fd, io_now_ms());
			if (b->ndata > 1)
				return 0; /* someone else arrived: finish this line by reading */
			continue;
		}
		if (r == 0)
			return conn_end(b, i, 0);
		if (errno == EAGAIN) {
			if (conn_pending(c) > 0)
				b->w.full = 1;
			return 0;
		}
		if (!b->w.splice_ok)
			return conn_read(b, i);
		return conn_end(b, i, errno);
	}
	return 0;
}

/*
 * Splice a sender's bytes unseen when line atomicity cannot suffer: it is
 * the only sender and, unless it is the only one there can be, it has bulk
 * waiting (an interactive sender is read, so that it never holds the
 * pipe's tail while others wait).
 */
int conn_can_splice(const struct binding *b, const struct conn *c)
{
	int owner = pipew_owner(&b->w);

	if (!b->w.splice_ok || pipew_queued(&b->w) || b->ndata != 1 || c->state != CONN_DATA ||
	    c->ch)
		return 0; /* a channel's bytes must be opened here */
	if (pipew_splice_room(&b->w) < PIPEW_SPLICE_MIN + c->lines.len)
		return 0; /* plain writes fill the rest, and block as pipes should */
	if (b->single)
		return 1;
	return (owner < 0 || owner == c->fd) && conn_pending(c) >= BULK_MIN;
}

/* Read it now? Not while another sender owns the pipe's tail, nor with no room. */
int conn_wants_read(const struct binding *b, const struct conn *c)
{
	int owner = pipew_owner(&b->w);

	if (c->state != CONN_DATA)
		return 1;
	if (owner >= 0 && owner != c->fd)
		return 0; /* the owner's line must end first */
	if (conn_can_splice(b, c))
		return !b->w.full;
	return read_room(b, c) > 0;
}
