/*
 * The binding's connection handling: accepting senders, their first line
 * when a guard wants one, reading and splicing their bytes into the
 * buffer's writer (pipew.c) through line assembly (lines.c), once mode's
 * end, and the teardown that saves what nobody read.
 */
#define _GNU_SOURCE /* SIOCINQ, memrchr */
#include "binding.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "channel.h"
#include "deadline.h"
#include "fifo.h"
#include "io.h"
#include "lines.h"
#include "listener.h"
#include "mem.h"
#include "net.h"
#include "penalty.h"
#include "pipew.h"

#define SCRATCH 65536	      /* one read from a sender */
#define SPLICE_MAX (1u << 20) /* one splice from the single sender */
#define DRAIN_MIN_MS 10	      /* once mode: first look at the pipe after the sender left */
#define DRAIN_MAX_MS 250      /* ... backing off to this while nobody reads */
#define PEER_LEN (NET_IPLEN + NET_PORTLEN + 2)
#define BULK_MIN 65536 /* a lone sender with this much waiting is spliced */
#define FIRST_READ 512 /* bytes read at a time while a first line is awaited */
/* -k: bytes taken between two acknowledgements (CHANNEL_ACKS) while more are on their way */
#define ACK_EVERY (256u << 10)

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

static void report(struct binding *b, enum binding_ev type, const char *peer, const char *why,
		   unsigned long long bytes, int err)
{
	struct binding_event ev = {type, peer ? peer : "", why, bytes, err, NULL, 0};

	if (b->on_event)
		b->on_event(&ev, b->arg);
}

/* A sender's ACCEPT or CLOSE, with its tag and what was taken of it. */
static void report_conn(struct binding *b, enum binding_ev type, const struct conn *c, int err,
			unsigned long long taken)
{
	struct binding_event ev = {type, c->peer, NULL, c->bytes, err, c->adm.tag, taken};

	if (b->on_event)
		b->on_event(&ev, b->arg);
}

/* What -m limits: whole lines queued plus every sender's unfinished line. */
static size_t held(const struct binding *b)
{
	return pipew_queued(&b->w) + b->parts;
}

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
static int take(struct binding *b, struct conn *c, const char *p, size_t n)
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

/* ---- -k: the channel's side of a connection ---- */

/* A sender's bytes: through its channel when it has one. 0: its end; -1: errno (EAGAIN). */
static ssize_t conn_recv(struct conn *c, char *buf, size_t n)
{
	return c->ch ? channel_read(c->ch, buf, n) : io_read(c->fd, buf, n);
}

static int sock_pending(int fd);

/*
 * Tell a sender that asked how much of its stream we took, when that grew:
 * at once when it has nothing more on its way (it may be waiting for
 * this), else every ACK_EVERY bytes, so that a bulk stream is not slowed
 * by a wake-up per record on both sides.
 */
static void chan_ack(struct conn *c, int now)
{
	unsigned char v[8];

	if (!c->ch || !c->acks || c->acked == c->bytes)
		return;
	if (!now && c->bytes - c->acked < ACK_EVERY &&
	    (channel_readable(c->ch) || sock_pending(c->fd) > 0))
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
static int chan_drain(const struct conn *c)
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
static void chan_close(struct conn *c, int err)
{
	chan_ack(c, 1);
	if (!err)
		channel_shutdown(c->ch);
	else
		channel_flush(c->ch);
	if (err)
		chan_drain(c); /* what it sent after the failure is refused anyway */
}

static int conn_admit(struct binding *b, size_t i, const char *rest, size_t n);
static void reject(struct binding *b, size_t i, const char *why);

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

static int chan_waits(const struct conn *c, long long now)
{
	return c->state == CONN_HS && now < c->judge_at && channel_timeout(c->ch, now) > 0;
}

/* The handshake went on: done, the sender is on to its first line or its data. */
static void chan_step(struct binding *b, size_t i, long long now)
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
		reject(b, i, channel_strerror(err, 2));
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

/* ---- connections ---- */

/* A sender's unterminated last line must be ended when it closes (see BINDING_RAW). */
static int ends_lines(const struct binding *b)
{
	return !(b->flags & (BINDING_RAW | BINDING_ONCE));
}

static void conn_drop(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];

	if (c->state == CONN_DATA) {
		b->parts -= c->lines.len;
		b->ndata--;
	}
	lines_clear(&c->lines);
	lines_clear(&c->after);
	pipew_disown(&b->w, c->fd);
	channel_free(c->ch);
	c->ch = NULL;
	if (c->fd >= 0)
		close(c->fd);
	b->conns[i] = b->conns[--b->nconns];
}

static void reject(struct binding *b, size_t i, const char *why)
{
	report(b, BINDING_EV_REJECT, b->conns[i].peer, why, 0, 0);
	conn_drop(b, i);
}

/* The sender left (EOF or error): deliver its last bytes, report, forget it. */
static int conn_end(struct binding *b, size_t i, int err)
{
	struct conn *c = &b->conns[i];
	int r;

	unsigned long long taken = c->bytes;

	if (c->state != CONN_DATA) {
		reject(b, i, err ? "connection failed before its first line"
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
		report(b, BINDING_EV_ERROR, c->peer, NULL, c->bytes, err);
	if (c->bytes)
		b->had_data = 1;
	report_conn(b, BINDING_EV_CLOSE, c, err, taken);
	conn_drop(b, i);
	return r;
}

static struct conn *conn_by_fd(struct binding *b, int fd, size_t *idx)
{
	for (size_t i = 0; i < b->nconns; i++)
		if (b->conns[i].fd == fd) {
			*idx = i;
			return &b->conns[i];
		}
	return NULL;
}

static void stop_listening(struct binding *b)
{
	listener_close(&b->l);
}

/* The sender passed the guard (or there is none): it is a sender now. */
static int conn_admit(struct binding *b, size_t i, const char *rest, size_t n)
{
	int fd = b->conns[i].fd;
	struct conn *c;

	b->conns[i].state = CONN_DATA;
	b->ndata++;
	report_conn(b, BINDING_EV_ACCEPT, &b->conns[i], 0, 0);
	if (b->flags & BINDING_ONCE) {
		b->passed = 1;
		stop_listening(b);
		/* The binding is taken: whoever else waits with a first line (or a handshake) goes. */
		for (size_t k = b->nconns; k-- > 0;)
			if (b->conns[k].fd != fd && b->conns[k].state != CONN_DATA)
				reject(b, k, "binding already taken");
	}
	if (!n)
		return 0;
	c = conn_by_fd(b, fd, &i); /* rejects may have moved it */
	if (!c)
		return 0;
	c->bytes += n;
	return take(b, c, rest, n);
}

/* A guarded sender's first line, read a little at a time. */
static int first_read(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];
	char buf[FIRST_READ], *nl, *rest = NULL;
	ssize_t r = conn_recv(c, buf, sizeof buf);
	const char *why;
	size_t len, head, n;
	int rc;
	struct binding_admit adm = {NULL, 0};

	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return conn_end(b, i, r < 0 ? errno : 0);
	if (lines_hold(&c->lines, buf, (size_t)r) < 0)
		return -1;
	nl = memchr(c->lines.part, '\n', c->lines.len);
	if (!nl) {
		if (c->lines.len > b->guard.line_max) {
			why = b->guard.on_line(b->guard.arg, c->ip, c->lines.part, c->lines.len, 0, &adm);
			reject(b, i, why ? why : "first line too long");
		}
		return 0;
	}
	len = (size_t)(nl - c->lines.part);
	head = len + 1;
	if (len && c->lines.part[len - 1] == '\r')
		len--;
	why = b->guard.on_line(b->guard.arg, c->ip, c->lines.part, len, 1, &adm);
	if (why) {
		reject(b, i, why);
		return 0;
	}
	c->adm = adm;
	/* Bytes after the first line are the sender's first data. */
	n = c->lines.len - head;
	if (n) {
		if (!(rest = malloc(n)))
			return -1;
		memcpy(rest, c->lines.part + head, n);
	}
	lines_clear(&c->lines);
	rc = conn_admit(b, i, rest, n);
	free(rest);
	return rc;
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

static int data_read(struct binding *b, size_t i)
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
	if (take(b, c, buf, (size_t)r) < 0)
		return -1;
	chan_ack(c, 0);
	return 0;
}

/* Bytes the socket holds now, for telling which side of a splice blocked. */
static int sock_pending(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCINQ, &n) < 0 ? 0 : n;
}

static int data_splice(struct binding *b, size_t i)
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
			size_t inq = (size_t)sock_pending(c->fd);

			if (inq <= 1)
				return data_read(b, i);
			if (inq - 1 < max)
				max = inq - 1;
		}
		r = pipew_splice(&b->w, c->fd, max);
		if (r > 0) {
			c->bytes += (size_t)r;
			if (!b->single)
				pipew_own(&b->w, c->fd, io_now_ms());
			if (b->ndata > 1)
				return 0; /* someone else arrived: finish this line by reading */
			continue;
		}
		if (r == 0)
			return conn_end(b, i, 0);
		if (errno == EAGAIN) {
			if (sock_pending(c->fd) > 0)
				b->w.full = 1;
			return 0;
		}
		if (!b->w.splice_ok)
			return data_read(b, i);
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
static int can_splice(const struct binding *b, const struct conn *c)
{
	int owner = pipew_owner(&b->w);

	if (!b->w.splice_ok || pipew_queued(&b->w) || b->ndata != 1 || c->state != CONN_DATA ||
	    c->ch)
		return 0; /* a channel's bytes must be opened here */
	if (pipew_splice_room(&b->w) < PIPEW_SPLICE_MIN + c->lines.len)
		return 0; /* plain writes fill the rest, and block as pipes should */
	if (b->single)
		return 1;
	return (owner < 0 || owner == c->fd) && sock_pending(c->fd) >= BULK_MIN;
}

static int wants_read(const struct binding *b, const struct conn *c)
{
	int owner = pipew_owner(&b->w);

	if (c->state != CONN_DATA)
		return 1;
	if (owner >= 0 && owner != c->fd)
		return 0; /* the owner's line must end first */
	if (can_splice(b, c))
		return !b->w.full;
	return read_room(b, c) > 0;
}

/*
 * Connections from ip still in their handshake. A quarter of -c is the
 * most one address may hold (as pool -c), so that guessers waiting out
 * their penalty, or silent ones, cannot take every slot.
 */
static size_t hs_from(const struct binding *b, const char *ip)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nconns; i++)
		n += b->conns[i].state == CONN_HS && strcmp(b->conns[i].ip, ip) == 0;
	return n;
}

static void accept_new(struct binding *b, long long now)
{
	while (b->l.n && b->nconns < b->max_conns) {
		char port[NET_PORTLEN];
		const char *why = NULL;
		unsigned long failures;
		struct conn *c;
		int fd = listener_accept(&b->l, now, &failures);

		if (fd < 0) {
			if (failures)
				report(b, BINDING_EV_ERROR, "", NULL, failures, errno);
			return;
		}
		io_set_nonblock(fd, 1);
		c = &b->conns[b->nconns++];
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->state = CONN_FIRST;
		if (net_name(fd, 1, c->ip, port) < 0) {
			strcpy(c->ip, "?");
			strcpy(port, "?");
		}
		snprintf(c->peer, sizeof c->peer, "%s %s", c->ip, port);
		if (b->guard.on_connect)
			why = b->guard.on_connect(b->guard.arg, c->ip);
		if (why) {
			reject(b, b->nconns - 1, why);
			continue;
		}
		/* Not for a guarded binding (a pool's port): it admits one address, which proved the key. */
		if (b->chan && !b->guard.on_connect &&
		    hs_from(b, c->ip) >= (b->max_conns / 4 ? b->max_conns / 4 : 1)) {
			reject(b, b->nconns - 1, "too many handshakes at once from its address");
			continue;
		}
		if (b->chan) {
			/* We answer that we can acknowledge; the sender's payload says whether it wants it. */
			c->state = CONN_HS;
			c->judge_at = -1;
			c->ch = channel_new(fd, 0, b->psk, b->prologue, CHANNEL_ACKS,
					    strlen(CHANNEL_ACKS), now);
			if (!c->ch)
				reject(b, b->nconns - 1, "no memory for its channel");
			else if (b->also)
				channel_also(c->ch, b->also);
			continue;
		}
		if (b->guard.on_line) {
			c->first_by = now + b->guard.wait_ms;
			continue;
		}
		conn_admit(b, b->nconns - 1, NULL, 0);
	}
}

/*
 * The next record's plaintext may wait in a channel, unseen by poll: read
 * it now. Also handshakes past their deadline.
 */
static int chan_pending(struct binding *b, long long now)
{
	for (size_t i = b->nconns; i-- > 0;) {
		struct conn *c = &b->conns[i];

		if (c->state == CONN_HS && (channel_timeout(c->ch, now) == 0 ||
					    (c->judge_at > 0 && !chan_waits(c, now))))
			chan_step(b, i, now);
		else if (c->state == CONN_FIRST && c->ch && channel_readable(c->ch) &&
			 first_read(b, i) < 0)
			return -1;
		else if (c->state == CONN_DATA && c->ch && channel_readable(c->ch) &&
			 wants_read(b, c) && data_read(b, i) < 0)
			return -1;
	}
	return 0;
}

/* ---- the engine's interface ---- */

static int open_buffer(struct binding *b, const struct binding_config *cfg, pid_t *holder)
{
	if (fifo_create(&b->fifo, cfg->path, !!(cfg->flags & BINDING_SPOOL), holder) < 0)
		return -1;
	if (cfg->pipe_size && !b->fifo.spool)
		fifo_set_size(&b->fifo, cfg->pipe_size); /* a hint: the default pipe works too */
	/*
	 * A guarded sender's first data comes with its first line, possibly
	 * while another sender owns the pipe's tail: with several senders and
	 * a first line, keep to reading.
	 */
	pipew_init(&b->w, &b->fifo, b->single || !b->guard.on_line);
	/*
	 * A once buffer whose sender sends nothing must still give a reader its
	 * end of file, even a reader that comes later: it ends only once a
	 * reader has opened it (inotify tells; we hold the FIFO open ourselves,
	 * so nothing else would).
	 */
	if ((cfg->flags & BINDING_ONCE) && !b->fifo.spool) {
		b->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (b->ino >= 0 && inotify_add_watch(b->ino, b->fifo.path, IN_OPEN) < 0) {
			close(b->ino);
			b->ino = -1;
		}
	}
	return 0;
}

struct binding *binding_open(const struct binding_config *cfg, pid_t *holder, int *gai)
{
	struct binding *b = calloc(1, sizeof *b);
	int saved, g = 0;

	if (gai)
		*gai = 0;
	if (!b) {
		if (cfg->listener)
			listener_close(cfg->listener);
		return NULL;
	}
	b->fifo.fd = -1;
	b->ino = -1;
	b->flags = cfg->flags;
	b->max_conns = cfg->max_conns ? cfg->max_conns : BINDING_MAX_CONNS;
	b->mem_cap = cfg->mem_cap ? cfg->mem_cap : BINDING_MEM_CAP;
	b->on_event = cfg->on_event;
	b->arg = cfg->arg;
	b->single = (cfg->flags & BINDING_ONCE) || b->max_conns == 1;
	if (cfg->psk) {
		b->chan = 1;
		memcpy(b->psk, cfg->psk, NOISE_PSK);
		b->prologue = cfg->prologue ? cfg->prologue : CHANNEL_BIND;
		/* bind-input's senders: bind-output, or socket -k (a shell's tar c | socket). */
		b->also = cfg->prologue ? NULL : CHANNEL_SOCKET;
	}
	if (cfg->guard) {
		b->guard = *cfg->guard;
		if (b->guard.wait_ms <= 0)
			b->guard.wait_ms = BINDING_FIRST_MS;
		if (!b->guard.late)
			b->guard.late = "no first line in time";
	}
	if (cfg->listener) {
		b->l = *cfg->listener;
		cfg->listener->n = 0; /* ours now */
	} else if (listener_open(&b->l, cfg->host, cfg->port ? cfg->port : "0", SOMAXCONN, &g) < 0) {
		goto fail;
	}
	if (!(b->conns = calloc(b->max_conns, sizeof *b->conns)) || open_buffer(b, cfg, holder) < 0)
		goto fail;
	return b;
fail:
	saved = errno;
	if (gai)
		*gai = g;
	listener_close(&b->l);
	free(b->conns);
	free(b);
	errno = saved;
	return NULL;
}

int binding_port(const struct binding *b)
{
	return listener_port(&b->l);
}

size_t binding_nfds(const struct binding *b)
{
	return b->max_conns + 2 + LISTENER_MAX;
}

size_t binding_pollfds(struct binding *b, struct pollfd *pfd)
{
	size_t n = 0;

	if (b->done)
		return 0;
	n += pipew_pollfd(&b->w, pfd + n);
	if (b->ino >= 0 && !b->opened)
		pfd[n++] = (struct pollfd){.fd = b->ino, .events = POLLIN};
	if (b->nconns < b->max_conns)
		n += listener_pollfds(&b->l, pfd + n, io_now_ms());
	for (size_t i = 0; i < b->nconns; i++) {
		short ev = wants_read(b, &b->conns[i]) ? POLLIN : 0;

		if (b->conns[i].ch) {
			ev |= channel_events(b->conns[i].ch);
			if (b->conns[i].judge_at > 0 && chan_waits(&b->conns[i], io_now_ms()))
				ev &= (short)~POLLIN; /* penalized: its message waits in the kernel */
		}
		if (ev)
			pfd[n++] = (struct pollfd){.fd = b->conns[i].fd, .events = ev};
	}
	return n;
}

/* Once mode: the sender has gone and nothing waits but the pipe. */
static int draining(const struct binding *b)
{
	return (b->flags & BINDING_ONCE) && b->passed && b->nconns == 0 &&
	       !pipew_queued(&b->w) && !b->done;
}

int binding_timeout(const struct binding *b)
{
	long long now = io_now_ms(), at = -1;

	for (size_t i = 0; i < b->nconns; i++) {
		const struct conn *c = &b->conns[i];

		if (c->state != CONN_HS && c->ch && channel_readable(c->ch) && wants_read(b, c))
			at = now; /* a first line or data already opened, or an error to act on */
		else if (c->state == CONN_FIRST)
			at = deadline_earlier(at, c->first_by);
		else if (c->state == CONN_HS)
			at = deadline_earlier(at, chan_waits(c, now)
						      ? c->judge_at
						      : deadline_in(channel_timeout(c->ch, now), now));
	}
	/* Waiting for a reader of an empty stream needs no timer: inotify wakes us. */
	if (draining(b) && (b->had_data || b->opened || b->ino < 0))
		at = deadline_earlier(at, b->drain_at);
	at = deadline_earlier(at, deadline_in(listener_timeout(&b->l, now), now));
	if (b->ndata > 1)
		at = deadline_earlier(at, pipew_owner_due(&b->w));
	return deadline_timeout(at, now);
}

static void finish(struct binding *b)
{
	if (b->ino >= 0)
		close(b->ino);
	b->ino = -1;
	/* Closing our end gives a waiting reader its EOF; the path goes first. */
	fifo_close(&b->fifo);
	b->done = 1;
	report(b, BINDING_EV_DONE, "", NULL, 0, 0);
}

static void check_drained(struct binding *b)
{
	long long now = io_now_ms();
	size_t pending;

	if (!draining(b))
		return;
	pending = pipew_pending(&b->w);
	/* Nothing ever came: the end waits for a reader to take it (see open_buffer). */
	if (pending == 0 && (b->had_data || b->opened || b->ino < 0)) {
		finish(b);
		return;
	}
	if (pending == 0)
		return;
	if (b->drain_step == 0 || pending != b->drain_last) {
		b->drain_step = DRAIN_MIN_MS;
		b->drain_at = now + b->drain_step;
	} else if (now >= b->drain_at) {
		b->drain_step = b->drain_step * 2 > DRAIN_MAX_MS ? DRAIN_MAX_MS : b->drain_step * 2;
		b->drain_at = now + b->drain_step;
	}
	b->drain_last = pending;
}

static int is_listener(const struct binding *b, int fd)
{
	for (size_t i = 0; i < b->l.n; i++)
		if (b->l.fd[i] == fd)
			return 1;
	return 0;
}

int binding_handle(struct binding *b, const struct pollfd *pfd, size_t n)
{
	long long now = io_now_ms();
	int listener_ready = 0;

	if (b->done)
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (pfd[k].fd == b->w.fd && pipew_ready(&b->w, pfd[k].revents) < 0)
			return -1;
		if (b->ino >= 0 && pfd[k].fd == b->ino && pfd[k].revents) {
			char ev[4096];

			while (read(b->ino, ev, sizeof ev) > 0)
				b->opened = 1;
		}
	}
	if (pipew_flush(&b->w) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		struct conn *c;
		size_t i;
		int r, owner;

		if (!pfd[k].revents || pfd[k].fd == b->w.fd || pfd[k].fd == b->ino)
			continue;
		if (is_listener(b, pfd[k].fd)) {
			listener_ready = 1;
			continue;
		}
		c = conn_by_fd(b, pfd[k].fd, &i);
		if (!c)
			continue;
		/* An earlier conn in this round may have just spliced a line's start. */
		owner = pipew_owner(&b->w);
		if (c->state == CONN_DATA && owner >= 0 && owner != c->fd)
			continue;
		if (c->ch && (pfd[k].revents & POLLOUT) && channel_flush(c->ch) < 0 &&
		    errno != EAGAIN && c->state != CONN_HS) {
			r = conn_end(b, i, errno);
		} else if (c->state == CONN_HS) {
			chan_step(b, i, now);
			r = 0;
		} else if (!(pfd[k].revents & ~POLLOUT)) {
			r = 0;
		} else if (c->state == CONN_FIRST)
			r = first_read(b, i);
		else if (can_splice(b, c))
			r = data_splice(b, i);
		else
			r = data_read(b, i);
		if (r < 0)
			return -1;
	}
	if (b->chan && chan_pending(b, now) < 0)
		return -1;
	/* A pipe with room again (after the reads above) lets the single sender go on. */
	if (pipew_flush(&b->w) < 0)
		return -1;
	for (size_t i = b->nconns; i-- > 0;)
		if (b->conns[i].state == CONN_FIRST && b->conns[i].first_by <= now)
			reject(b, i, b->guard.late);
	/* A spliced line that stalls does not hold the others forever. */
	if (b->ndata > 1)
		pipew_owner_expire(&b->w, now);
	if (listener_ready)
		accept_new(b, now);
	check_drained(b);
	return 0;
}

int binding_put(struct binding *b, const void *p, size_t n)
{
	return pipew_emit(&b->w, p, n);
}

int binding_done(const struct binding *b)
{
	return b->done;
}

/*
 * Teardown, a sender told our last count and our END: what it sends after
 * is its own (it keeps what we did not count), unless its END follows:
 * then it gave all of it up (its own teardown handed it over), and it is
 * ours to save. Returns 1 at the connection's end.
 */
static int conn_after(struct binding *b, struct conn *c)
{
	char buf[16384];

	channel_shutdown(c->ch); /* what of our END the socket did not take yet */
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r = channel_read(c->ch, buf, sizeof buf);

		if (r > 0 && lines_hold(&c->after, buf, (size_t)r) == 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (r == 0 && lines_hold(&c->lines, c->after.part, c->after.len) == 0) {
			c->bytes += c->after.len;
			b->parts += c->after.len;
		}
		lines_clear(&c->after);
		chan_drain(c);
		return 1;
	}
	return 0;
}

/* Take what a sender's socket holds right now; 1 when it is at its end. */
static int conn_snatch(struct binding *b, struct conn *c)
{
	char buf[16384];

	if (c->closing)
		return conn_after(b, c);
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r = c->ch ? channel_read(c->ch, buf, sizeof buf)
				  : recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (r < 0 || lines_hold(&c->lines, buf, (size_t)r) < 0)
			return 0;
		c->bytes += (unsigned long long)r;
		b->parts += (size_t)r;
	}
	return 0;
}

/*
 * At teardown, what each sender's TCP acknowledged must be read, or it is
 * lost in a reset: our FIN says we take no more (a master stops sending
 * and closes), and we read until every sender has closed, or the time is
 * up. What arrives after that was never acknowledged as read by us.
 */
static void senders_quiesce(struct binding *b, long long deadline)
{
	struct pollfd *pfd = calloc(b->nconns ? b->nconns : 1, sizeof *pfd);
	int *done = calloc(b->nconns ? b->nconns : 1, sizeof *done);
	size_t left = 0;

	if (!done || !pfd) {
		free(pfd);
		free(done);
		return;
	}
	for (size_t i = 0; i < b->nconns; i++) {
		if (b->conns[i].state != CONN_DATA) {
			done[i] = 1;
			continue;
		}
		if (b->conns[i].ch && b->conns[i].acks) {
			/*
			 * It keeps what we never acknowledged: take what its TCP
			 * gave us already (a sender that gave up trusts our TCP
			 * for that much, and is gone), tell it how far we took,
			 * and end; what it sends after that is its own, and
			 * dropped until it closes (see chan_drain).
			 */
			for (int rounds = 0; rounds < 64 && !conn_snatch(b, &b->conns[i]) &&
					     (sock_pending(b->conns[i].fd) > 0 ||
					      channel_readable(b->conns[i].ch));
			     rounds++)
				;
			chan_close(&b->conns[i], 0);
			b->conns[i].closing = 1;
			left++;
			continue;
		}
		if (b->conns[i].ch)
			channel_shutdown(b->conns[i].ch); /* best effort: the END says the same */
		else
			shutdown(b->conns[i].fd, SHUT_WR);
		left++;
	}
	while (left && io_now_ms() < deadline) {
		size_t n = 0;

		for (size_t i = 0; i < b->nconns; i++)
			if (!done[i])
				pfd[n++] = (struct pollfd){.fd = b->conns[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, (int)(deadline - io_now_ms())) <= 0)
			break;
		for (size_t i = 0; i < b->nconns; i++)
			if (!done[i] && conn_snatch(b, &b->conns[i])) {
				done[i] = 1;
				left--;
			}
	}
	for (size_t i = 0; i < b->nconns; i++)
		if (!done[i])
			conn_snatch(b, &b->conns[i]);
	free(pfd);
	free(done);
}

/*
 * At teardown, the part of a sender's unfinished line that goes into the
 * spill: all of it, or, for a resumable stream in line mode, what ends in
 * its last newline (the rest comes again from its sender).
 */
static size_t spill_part(const struct binding *b, const struct conn *c)
{
	const char *nl;

	if (!c->adm.resume || b->single || !c->lines.len)
		return c->lines.len;
	nl = memrchr(c->lines.part, '\n', c->lines.len);
	return nl ? (size_t)(nl + 1 - c->lines.part) : 0;
}

long long binding_close(struct binding *b, int save)
{
	struct iovec *iov;
	size_t n = 0, qn;
	const char *q;
	long long saved = 0;
	int err = 0;

	if (!b)
		return 0;
	stop_listening(b);
	if (save)
		senders_quiesce(b, io_now_ms() + BINDING_SEAL_MS);
	iov = calloc(b->nconns + 1, sizeof *iov);
	q = queue_unsent(&b->w.q, &qn);
	if (iov && qn)
		iov[n++] = (struct iovec){(void *)q, qn};
	for (size_t i = 0; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];
		size_t part;

		if (c->state != CONN_DATA)
			continue;
		part = spill_part(b, c);
		if (iov && part)
			iov[n++] = (struct iovec){c->lines.part, part};
	}
	if (b->fifo.path && b->fifo.spool) {
		/* Accepted bytes belong in the spool file, which is kept. */
		for (size_t i = 0; i < n; i++)
			if (io_write_all(b->fifo.fd, iov[i].iov_base, iov[i].iov_len) < 0 && !err)
				err = errno;
	} else if (b->fifo.path && save) {
		/*
		 * Sealed first: no new writer, and our own write end closed, so the
		 * pipe is read to its end: nothing another writer was told it wrote
		 * is lost. Before it, a reader at work takes what the pipe holds.
		 */
		fifo_let_reader_finish(&b->fifo, io_now_ms() + BINDING_SEAL_MS);
		fifo_seal(&b->fifo);
		saved = iov ? fifo_spill(&b->fifo, iov, n, 0, io_now_ms() + BINDING_SEAL_MS) : -1;
		if (saved < 0)
			err = errno ? errno : ENOMEM;
	}
	free(iov);
	if (saved > 0 || (err && !b->fifo.spool))
		report(b, BINDING_EV_SAVED, b->fifo.unread_why ? b->fifo.unread_why : "",
		       b->fifo.unread ? b->fifo.unread : "", saved > 0 ? (unsigned long long)saved : 0,
		       err);
	/* Senders still connected: what was taken of each (a resumable one resumes from there). */
	for (size_t i = 0; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];

		if (c->state == CONN_DATA)
			report_conn(b, BINDING_EV_CLOSE, c, ECONNABORTED,
				    c->bytes - (c->lines.len - (save ? spill_part(b, c) : c->lines.len)));
	}
	while (b->nconns)
		conn_drop(b, 0);
	if (b->ino >= 0)
		close(b->ino);
	fifo_close(&b->fifo);
	pipew_free(&b->w);
	free(b->conns);
	free(b->pen);
	mem_wipe(b->psk, sizeof b->psk);
	free(b);
	if (err) {
		errno = err;
		return -1;
	}
	return saved;
}
