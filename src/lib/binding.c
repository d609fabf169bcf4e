#define _GNU_SOURCE /* memrchr, SIOCINQ */
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fifo.h"
#include "io.h"
#include "mem.h"
#include "net.h"

#define SCRATCH 65536		/* one read from a sender */
#define SPLICE_MAX (1u << 20)	/* one splice from the single sender */
#define DRAIN_MIN_MS 10		/* once mode: first look at the pipe after the sender left */
#define DRAIN_MAX_MS 250	/* ... backing off to this while nobody reads */
#define PEER_LEN (NET_IPLEN + NET_PORTLEN + 2)
#define BULK_MIN 65536		/* a lone sender with this much waiting is spliced */
#define TAIL_WAIT_MS 1000	/* others wait this long for a stalled spliced line */
#define SPLICE_MIN 16384	/* pipe room worth a splice */
#define ACCEPT_PAUSE_MS 100	/* out of descriptors: leave the backlog alone this long */

enum conn_state { CONN_AUTH, CONN_DATA };

struct conn {
	int fd;
	enum conn_state state;
	long long auth_by;	  /* CONN_AUTH: deadline for the token line */
	unsigned long long bytes; /* data bytes received (token line excluded) */
	char *part;		  /* an unfinished line (line mode), or the token line */
	size_t plen, pcap;
	char peer[PEER_LEN];
};

struct binding {
	struct fifo fifo;
	int lfd;
	unsigned flags;
	size_t max_conns, mem_cap;
	char *token, *peer_addr; /* guard; token NULL once spent */
	int guarded;		  /* a guard was configured */
	long auth_ms;
	void (*on_event)(const struct binding_event *, void *);
	void *arg;

	struct conn *conns;
	size_t nconns;

	char *q; /* bytes waiting for room in the pipe, whole lines only */
	size_t qoff, qlen, qcap;
	size_t held; /* qlen + every conn's plen: what -m limits */

	int single;	  /* one sender at a time: pass bytes through, no line assembly */
	int splice_ok;	  /* a FIFO, and splice has not failed */
	size_t pipe_cap;  /* the pipe's nominal size: splicing keeps within it */
	size_t ndata;	  /* conns in CONN_DATA */
	/*
	 * Splicing moves a lone bulk sender's bytes without looking at them,
	 * so the pipe may end mid-line. Until that sender's next newline has
	 * gone in, it owns the pipe's tail and nobody else writes.
	 */
	int tail_owner;	    /* fd, or -1 */
	size_t tail_bytes;  /* continuation written since splicing stopped */
	long long tail_at;  /* last progress of the owner */
	int fifo_full;	  /* the pipe refused bytes: wait for POLLOUT */
	int passed;	  /* once mode: the sender was accepted */
	int done;
	long long accept_at; /* accept() ran out of descriptors: not before this */
	long long drain_at;  /* once mode, sender gone: when to look at the pipe again */
	int drain_step;
	size_t drain_last;
};

static void report(struct binding *b, enum binding_ev type, const char *peer, const char *why,
		   unsigned long long bytes, int err)
{
	struct binding_event ev = {type, peer ? peer : "", why, bytes, err};

	if (b->on_event)
		b->on_event(&ev, b->arg);
}

/* "::ffff:1.2.3.4" and "1.2.3.4" are the same sender. */
static const char *plain_ip(const char *ip)
{
	if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.'))
		return ip + 7;
	return ip;
}

/* ---- the queue: whole lines waiting for room in the pipe ---- */

static int queue_add(struct binding *b, const char *p, size_t n)
{
	if (b->qoff + b->qlen + n > b->qcap) {
		if (b->qoff) {
			memmove(b->q, b->q + b->qoff, b->qlen);
			b->qoff = 0;
		}
		if (mem_reserve(&b->q, &b->qcap, b->qlen + n, 1, 16384) < 0)
			return -1;
	}
	memcpy(b->q + b->qoff + b->qlen, p, n);
	b->qlen += n;
	b->held += n;
	return 0;
}

static void queue_took(struct binding *b, size_t n)
{
	b->qoff += n;
	b->qlen -= n;
	b->held -= n;
	if (b->qlen == 0) {
		b->qoff = 0;
		/* An idle binding keeps little: give back a queue that grew. */
		if (b->qcap > 65536) {
			free(b->q);
			b->q = NULL;
			b->qcap = 0;
		}
	}
}

/* Write into the buffer without blocking; returns bytes taken or -1. */
static ssize_t buffer_write(struct binding *b, const char *p, size_t n)
{
	ssize_t w;

	if (b->fifo.spool)
		return io_write_all(b->fifo.fd, p, n) < 0 ? -1 : (ssize_t)n;
	do
		w = write(b->fifo.fd, p, n);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN) {
		b->fifo_full = 1;
		return 0;
	}
	if (w >= 0 && (size_t)w < n)
		b->fifo_full = 1;
	return w;
}

static int queue_flush(struct binding *b)
{
	while (b->qlen && !b->fifo_full) {
		ssize_t w = buffer_write(b, b->q + b->qoff, b->qlen);

		if (w < 0)
			return -1;
		queue_took(b, (size_t)w);
	}
	return 0;
}

/*
 * Hand bytes that may enter the buffer now, as one unit: straight into
 * the pipe while nothing waits before them, the rest queued behind.
 * Being the pipe's only writer and queueing in order is what keeps a
 * unit whole.
 */
static int emit(struct binding *b, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->qlen == 0 && !b->fifo_full) {
		ssize_t w = buffer_write(b, p, n);

		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return n ? queue_add(b, p, n) : 0;
}

/* ---- connections ---- */

static int part_add(struct binding *b, struct conn *c, const char *p, size_t n)
{
	if (mem_reserve(&c->part, &c->pcap, c->plen + n, 1, 1024) < 0)
		return -1;
	memcpy(c->part + c->plen, p, n);
	c->plen += n;
	if (c->state == CONN_DATA)
		b->held += n;
	return 0;
}

static void part_clear(struct binding *b, struct conn *c)
{
	if (c->state == CONN_DATA)
		b->held -= c->plen;
	c->plen = 0;
	free(c->part);
	c->part = NULL;
	c->pcap = 0;
}

/* Emit the unfinished line: at the sender's end or once it reached the line limit. */
static int part_flush(struct binding *b, struct conn *c)
{
	int r;

	if (!c->plen)
		return 0;
	/* Leave held counting these bytes until emit() queued what it could not write. */
	r = emit(b, c->part, c->plen);
	part_clear(b, c);
	return r;
}

/*
 * Data from a sender in line mode: the unfinished line plus everything up
 * to the last newline goes in as one unit; the tail waits for its newline.
 */
static int take_lines(struct binding *b, struct conn *c, const char *p, size_t n)
{
	const char *nl;

	if (b->single)
		return emit(b, p, n);
	if (b->tail_owner == c->fd) {
		/* The rest of the line we spliced goes first, straight after it. */
		nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl + 1 - p) : n;

		if (emit(b, p, k) < 0)
			return -1;
		b->tail_bytes += k;
		b->tail_at = io_now_ms();
		if (nl || b->tail_bytes >= BINDING_LINE_MAX)
			b->tail_owner = -1;
		p += k;
		n -= k;
		if (!n)
			return 0;
	}
	if (c->plen) {
		nl = memchr(p, '\n', n);
		if (!nl) {
			if (part_add(b, c, p, n) < 0)
				return -1;
			goto split;
		}
		if (part_add(b, c, p, (size_t)(nl + 1 - p)) < 0 || part_flush(b, c) < 0)
			return -1;
		n -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	nl = n ? memrchr(p, '\n', n) : NULL;
	if (nl) {
		if (emit(b, p, (size_t)(nl + 1 - p)) < 0)
			return -1;
		n -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	if (n && part_add(b, c, p, n) < 0)
		return -1;
split:
	/* A line over the limit goes in by whole BINDING_LINE_MAX pieces. */
	while (c->plen >= BINDING_LINE_MAX) {
		size_t rest = c->plen - BINDING_LINE_MAX;

		if (emit(b, c->part, BINDING_LINE_MAX) < 0)
			return -1;
		memmove(c->part, c->part + BINDING_LINE_MAX, rest);
		b->held -= BINDING_LINE_MAX;
		c->plen = rest;
	}
	return 0;
}

static void conn_drop(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];

	part_clear(b, c);
	if (c->state == CONN_DATA)
		b->ndata--;
	if (c->fd == b->tail_owner)
		b->tail_owner = -1;
	if (c->fd >= 0)
		close(c->fd);
	b->conns[i] = b->conns[--b->nconns];
}

static void stop_listening(struct binding *b)
{
	if (b->lfd >= 0)
		close(b->lfd);
	b->lfd = -1;
}

static void reject(struct binding *b, size_t i, const char *why)
{
	report(b, BINDING_EV_REJECT, b->conns[i].peer, why, 0, 0);
	/* The token line was never data: drop it without touching held. */
	conn_drop(b, i);
}

/* The sender left (EOF or error): deliver its last bytes, report, forget it. */
static int conn_end(struct binding *b, size_t i, int err)
{
	struct conn *c = &b->conns[i];
	int r = 0;

	if (c->state == CONN_DATA) {
		r = part_flush(b, c);
		if (err)
			report(b, BINDING_EV_ERROR, c->peer, NULL, c->bytes, err);
		report(b, BINDING_EV_CLOSE, c->peer, NULL, c->bytes, 0);
	} else {
		reject(b, i, err ? "connection failed before the token" : "closed before the token");
		return 0;
	}
	conn_drop(b, i);
	return r;
}

/* A guarded sender's first line. Returns 1 when it passed, 0 when still
 * waiting, -1 when rejected (the conn is gone). */
static int check_token(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];
	char *nl = memchr(c->part, '\n', c->plen);
	size_t len, tlen = b->token ? strlen(b->token) : 0;
	unsigned char diff = 0;

	if (!nl) {
		if (c->plen > tlen + 1) {
			reject(b, i, "first line is not the token");
			return -1;
		}
		return 0;
	}
	len = (size_t)(nl - c->part);
	if (len && c->part[len - 1] == '\r')
		len--;
	if (!b->token) {
		reject(b, i, "token already used");
		return -1;
	}
	if (len != tlen) {
		reject(b, i, "wrong token");
		return -1;
	}
	for (size_t k = 0; k < len; k++)
		diff |= (unsigned char)(c->part[k] ^ b->token[k]);
	if (diff) {
		reject(b, i, "wrong token");
		return -1;
	}
	return 1;
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

/* The sender passed the guard (or there is none): it is a sender now. */
static int conn_admit(struct binding *b, size_t i, const char *rest, size_t n)
{
	int fd = b->conns[i].fd;
	struct conn *c;

	b->conns[i].state = CONN_DATA;
	b->ndata++;
	report(b, BINDING_EV_ACCEPT, b->conns[i].peer, NULL, 0, 0);
	if (b->flags & BINDING_ONCE) {
		b->passed = 1;
		stop_listening(b);
		/* The grant is taken: whoever else waits with a token goes. */
		for (size_t k = b->nconns; k-- > 0;)
			if (b->conns[k].fd != fd && b->conns[k].state == CONN_AUTH)
				reject(b, k, "binding already taken");
	}
	if (!n)
		return 0;
	c = conn_by_fd(b, fd, &i); /* rejects may have moved it */
	c->bytes += n;
	return take_lines(b, c, rest, n);
}

static int auth_read(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];
	char buf[512], *nl, *rest = NULL;
	ssize_t r = io_read(c->fd, buf, sizeof buf);
	size_t head, n;
	int rc;

	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return conn_end(b, i, r < 0 ? errno : 0);
	if (part_add(b, c, buf, (size_t)r) < 0)
		return -1;
	if (check_token(b, i) <= 0)
		return 0;
	/* Bytes after the token line are the sender's first data. */
	nl = memchr(c->part, '\n', c->plen);
	head = (size_t)(nl + 1 - c->part);
	n = c->plen - head;
	if (n) {
		if (!(rest = malloc(n)))
			return -1;
		memcpy(rest, c->part + head, n);
	}
	part_clear(b, c);
	free(b->token);
	b->token = NULL;
	rc = conn_admit(b, i, rest, n);
	free(rest);
	return rc;
}

/* How many bytes the sender may be read for now (0: hold it back). */
static size_t read_room(const struct binding *b, const struct conn *c)
{
	size_t room = b->held < b->mem_cap ? b->mem_cap - b->held : 0;

	/*
	 * When unfinished lines alone fill the cap, nothing could ever be
	 * written and they would wait for each other forever: then a sender
	 * may read on to finish its line. Once whole lines are queued, the
	 * reader's progress frees room instead.
	 */
	if (c->plen && b->qlen == 0 && room < BINDING_LINE_MAX - c->plen)
		room = BINDING_LINE_MAX - c->plen;
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
	r = io_read(c->fd, buf, room);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return conn_end(b, i, r < 0 ? errno : 0);
	c->bytes += (size_t)r;
	return take_lines(b, c, buf, (size_t)r);
}

/* Bytes the socket holds now, for telling which side of a splice blocked. */
static int sock_pending(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCINQ, &n) < 0 ? 0 : n;
}

/*
 * Room for spliced bytes. A spliced pipe slot holds a socket buffer's
 * whole fragment, up to 64 KiB rather than a page, so a pipe fed by
 * splice holds many times its nominal size: we count the bytes, up to
 * pipe_cap (see binding_open).
 */
static size_t splice_room(const struct binding *b)
{
	size_t pending = fifo_pending(&b->fifo);

	return pending < b->pipe_cap ? b->pipe_cap - pending : 0;
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
	if (c->plen) {
		if (part_flush(b, c) < 0)
			return -1;
		b->tail_owner = c->fd;
		b->tail_bytes = 0;
		b->tail_at = io_now_ms();
		if (b->qlen)
			return 0; /* the pipe took only part of it: the rest follows by reading */
	}
	for (int rounds = 0; rounds < 16; rounds++) {
		size_t room = splice_room(b);
		ssize_t r;

		if (room < SPLICE_MIN)
			return 0;
		r = io_splice(c->fd, b->fifo.fd, room < SPLICE_MAX ? room : SPLICE_MAX, 1);

		if (r > 0) {
			c->bytes += (size_t)r;
			if (!b->single) {
				b->tail_owner = c->fd;
				b->tail_bytes = 0;
				b->tail_at = io_now_ms();
			}
			if (b->ndata > 1)
				return 0; /* someone else arrived: finish this line by reading */
			continue;
		}
		if (r == 0)
			return conn_end(b, i, 0);
		if (errno == EAGAIN) {
			if (sock_pending(c->fd) > 0)
				b->fifo_full = 1;
			return 0;
		}
		if (errno == EINVAL || errno == ENOSYS) {
			b->splice_ok = 0;
			return data_read(b, i);
		}
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
	if (!b->splice_ok || b->qlen || b->ndata != 1 || c->state != CONN_DATA)
		return 0;
	if (splice_room(b) < SPLICE_MIN + c->plen)
		return 0; /* plain writes fill the rest, and block as pipes should */
	if (b->single)
		return 1;
	return (b->tail_owner < 0 || b->tail_owner == c->fd) && sock_pending(c->fd) >= BULK_MIN;
}

static int wants_read(const struct binding *b, const struct conn *c)
{
	if (c->state == CONN_AUTH)
		return 1;
	if (b->tail_owner >= 0 && b->tail_owner != c->fd)
		return 0; /* the owner's line must end first */
	if (can_splice(b, c))
		return !b->fifo_full;
	return read_room(b, c) > 0;
}

static void accept_new(struct binding *b)
{
	while (b->lfd >= 0 && b->nconns < b->max_conns) {
		char ip[NET_IPLEN], port[NET_PORTLEN];
		struct conn *c;
		int fd = net_accept(b->lfd);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				/* The listener stays readable: polling it now would spin. */
				b->accept_at = io_now_ms() + ACCEPT_PAUSE_MS;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
				report(b, BINDING_EV_ERROR, "", NULL, 0, errno);
			return;
		}
		io_set_nonblock(fd, 1);
		c = &b->conns[b->nconns++];
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->state = CONN_AUTH;
		if (net_name(fd, 1, ip, port) < 0) {
			strcpy(ip, "?");
			strcpy(port, "?");
		}
		snprintf(c->peer, sizeof c->peer, "%s %s", plain_ip(ip), port);
		if (b->peer_addr && strcmp(plain_ip(ip), plain_ip(b->peer_addr)) != 0) {
			reject(b, b->nconns - 1, "address not allowed");
			continue;
		}
		if (b->guarded && !b->token) {
			reject(b, b->nconns - 1, "token already used");
			continue;
		}
		if (b->token) {
			c->auth_by = io_now_ms() + b->auth_ms;
			continue;
		}
		conn_admit(b, b->nconns - 1, NULL, 0);
	}
}

/* ---- the engine's interface ---- */

struct binding *binding_open(const struct binding_config *cfg, pid_t *holder, int *gai)
{
	struct binding *b = calloc(1, sizeof *b);
	int saved, g = 0;

	if (gai)
		*gai = 0;
	if (!b)
		goto fail_fd;
	b->lfd = cfg->listen_fd;
	b->fifo.fd = -1;
	b->flags = cfg->flags;
	b->max_conns = cfg->max_conns ? cfg->max_conns : BINDING_MAX_CONNS;
	b->mem_cap = cfg->mem_cap ? cfg->mem_cap : BINDING_MEM_CAP;
	b->auth_ms = cfg->auth_ms > 0 ? cfg->auth_ms : BINDING_AUTH_MS;
	b->on_event = cfg->on_event;
	b->arg = cfg->arg;
	b->single = (cfg->flags & BINDING_ONCE) || b->max_conns == 1;
	/*
	 * A guarded sender's first data comes with its token line, possibly
	 * while another sender owns the pipe's tail: with several senders and
	 * a token, keep to reading.
	 */
	b->splice_ok = !(cfg->flags & BINDING_SPOOL) && (b->single || !cfg->token);
	b->tail_owner = -1;
	b->guarded = cfg->token || cfg->peer_addr;
	if ((cfg->token && !(b->token = strdup(cfg->token))) ||
	    (cfg->peer_addr && !(b->peer_addr = strdup(cfg->peer_addr))))
		goto fail;
	/* A guard with only an address still needs no token line. */
	if (!cfg->token)
		b->guarded = 0;
	b->conns = calloc(b->max_conns, sizeof *b->conns);
	if (!b->conns)
		goto fail;
	if (b->lfd < 0) {
		b->lfd = net_listen(cfg->host, cfg->port ? cfg->port : "0", SOMAXCONN, &g);
		if (b->lfd < 0)
			goto fail;
	}
	if (io_set_nonblock(b->lfd, 1) < 0)
		goto fail;
	if (fifo_create(&b->fifo, cfg->path, !!(cfg->flags & BINDING_SPOOL), holder) < 0)
		goto fail;
	if (cfg->pipe_size && !b->fifo.spool)
		fifo_set_size(&b->fifo, cfg->pipe_size); /* a hint: the default pipe works too */
	/*
	 * The kernel bounds a pipe by slots, and a spliced slot holds up to a
	 * 64 KiB fragment: splicing stops at the pipe's size in bytes, and
	 * plain writes (which fill slots page by page) take over from there,
	 * so the kernel says "full" and POLLOUT "room" as for any writer.
	 */
	b->pipe_cap = fifo_capacity(&b->fifo);
	return b;
fail:
	saved = errno;
	if (gai)
		*gai = g;
	if (b->lfd >= 0)
		close(b->lfd);
	free(b->conns);
	free(b->token);
	free(b->peer_addr);
	free(b);
	errno = saved;
	return NULL;
fail_fd:
	saved = errno;
	if (cfg->listen_fd >= 0)
		close(cfg->listen_fd);
	errno = saved;
	return NULL;
}

int binding_port(const struct binding *b)
{
	return b->lfd >= 0 ? net_local_port(b->lfd) : -1;
}

size_t binding_nfds(const struct binding *b)
{
	return b->max_conns + 2;
}

size_t binding_pollfds(struct binding *b, struct pollfd *pfd)
{
	size_t n = 0;

	if (b->done)
		return 0;
	if (b->fifo_full)
		pfd[n++] = (struct pollfd){.fd = b->fifo.fd, .events = POLLOUT};
	if (b->lfd >= 0 && b->nconns < b->max_conns && io_now_ms() >= b->accept_at)
		pfd[n++] = (struct pollfd){.fd = b->lfd, .events = POLLIN};
	for (size_t i = 0; i < b->nconns; i++)
		if (wants_read(b, &b->conns[i]))
			pfd[n++] = (struct pollfd){.fd = b->conns[i].fd, .events = POLLIN};
	return n;
}

/* Once mode: the sender has gone and nothing waits but the pipe. */
static int draining(const struct binding *b)
{
	return (b->flags & BINDING_ONCE) && b->passed && b->nconns == 0 && b->qlen == 0 &&
	       !b->done;
}

int binding_timeout(const struct binding *b)
{
	long long now = io_now_ms(), at = -1;

	for (size_t i = 0; i < b->nconns; i++)
		if (b->conns[i].state == CONN_AUTH && (at < 0 || b->conns[i].auth_by < at))
			at = b->conns[i].auth_by;
	if (draining(b) && (at < 0 || b->drain_at < at))
		at = b->drain_at;
	if (b->lfd >= 0 && b->accept_at > now && (at < 0 || b->accept_at < at))
		at = b->accept_at;
	if (b->tail_owner >= 0 && b->ndata > 1 && (at < 0 || b->tail_at + TAIL_WAIT_MS < at))
		at = b->tail_at + TAIL_WAIT_MS;
	if (at < 0)
		return -1;
	return at <= now ? 0 : (int)(at - now > 0x7fffffff ? 0x7fffffff : at - now);
}

static void finish(struct binding *b)
{
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
	pending = fifo_pending(&b->fifo);
	if (pending == 0) {
		finish(b);
		return;
	}
	if (b->drain_step == 0 || pending != b->drain_last) {
		b->drain_step = DRAIN_MIN_MS;
		b->drain_at = now + b->drain_step;
	} else if (now >= b->drain_at) {
		b->drain_step = b->drain_step * 2 > DRAIN_MAX_MS ? DRAIN_MAX_MS : b->drain_step * 2;
		b->drain_at = now + b->drain_step;
	}
	b->drain_last = pending;
}

int binding_handle(struct binding *b, const struct pollfd *pfd, size_t n)
{
	long long now = io_now_ms();
	int listener_ready = 0;

	if (b->done)
		return 0;
	for (size_t k = 0; k < n; k++) {
		if (pfd[k].fd == b->fifo.fd && (pfd[k].revents & (POLLOUT | POLLERR))) {
			if (pfd[k].revents & POLLERR) {
				errno = EPIPE;
				return -1;
			}
			b->fifo_full = 0;
		}
	}
	if (queue_flush(b) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		struct conn *c;
		size_t i;
		int r;

		if (!pfd[k].revents)
			continue;
		if (pfd[k].fd == b->lfd) {
			listener_ready = 1;
			continue;
		}
		c = conn_by_fd(b, pfd[k].fd, &i);
		if (!c)
			continue;
		/* An earlier conn in this round may have just spliced a line's start. */
		if (c->state == CONN_DATA && b->tail_owner >= 0 && b->tail_owner != c->fd)
			continue;
		if (c->state == CONN_AUTH)
			r = auth_read(b, i);
		else if (can_splice(b, c))
			r = data_splice(b, i);
		else
			r = data_read(b, i);
		if (r < 0)
			return -1;
	}
	/* A pipe with room again (after the reads above) lets the single sender go on. */
	if (queue_flush(b) < 0)
		return -1;
	for (size_t i = b->nconns; i-- > 0;)
		if (b->conns[i].state == CONN_AUTH && b->conns[i].auth_by <= now)
			reject(b, i, "no token in time");
	/* A spliced line that stalls does not hold the others forever. */
	if (b->tail_owner >= 0 && b->ndata > 1 && b->tail_at + TAIL_WAIT_MS <= now)
		b->tail_owner = -1;
	if (listener_ready)
		accept_new(b);
	check_drained(b);
	return 0;
}

int binding_done(const struct binding *b)
{
	return b->done;
}

/* Take what a sender's socket holds right now, at teardown. */
static void conn_snatch(struct binding *b, struct conn *c)
{
	char buf[16384];
	int left = sock_pending(c->fd);

	while (left > 0) {
		ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (r <= 0 || part_add(b, c, buf, (size_t)r) < 0)
			break;
		left -= (int)r;
	}
}

long long binding_close(struct binding *b, int save)
{
	struct iovec *iov;
	size_t n = 0;
	long long saved = 0;
	int err = 0;

	if (!b)
		return 0;
	stop_listening(b);
	iov = calloc(b->nconns + 1, sizeof *iov);
	if (iov && b->qlen)
		iov[n++] = (struct iovec){b->q + b->qoff, b->qlen};
	for (size_t i = 0; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];

		if (c->state != CONN_DATA)
			continue;
		if (save)
			conn_snatch(b, c);
		if (iov && c->plen)
			iov[n++] = (struct iovec){c->part, c->plen};
	}
	if (b->fifo.path && b->fifo.spool) {
		/* Accepted bytes belong in the spool file, which is kept. */
		for (size_t i = 0; i < n; i++)
			if (io_write_all(b->fifo.fd, iov[i].iov_base, iov[i].iov_len) < 0 && !err)
				err = errno;
	} else if (b->fifo.path && save) {
		saved = iov ? fifo_spill(&b->fifo, iov, n, 0) : -1;
		if (saved < 0)
			err = errno ? errno : ENOMEM;
	}
	free(iov);
	while (b->nconns)
		conn_drop(b, 0);
	fifo_close(&b->fifo);
	free(b->conns);
	free(b->q);
	free(b->token);
	free(b->peer_addr);
	free(b);
	if (err) {
		errno = err;
		return -1;
	}
	return saved;
}
