/*
 * The input-binding engine's interface (binding.h): open, the poll set,
 * the timer, handling poll's answer, put, and once mode's end, when its
 * sender has gone and a reader has taken everything. The rest lives in
 * its parts (binding_int.h): the table of senders, the -k channel,
 * delivery into the buffer, and the teardown.
 */
#include "binding.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include "binding_int.h"
#include "channel.h"
#include "deadline.h"
#include "err.h"
#include "io.h"
#include "status.h"

#define DRAIN_MIN_MS 10	 /* once mode: first look at the pipe after the sender left */
#define DRAIN_MAX_MS 250 /* ... backing off to this while nobody reads */

/* The binding's events, to the caller's hook when it has one. */
void binding_report(struct binding *b, enum binding_ev type, const char *peer, const char *why,
		    unsigned long long bytes, int err)
{
	struct binding_event ev = {type, peer ? peer : "", why, bytes, err, NULL, 0};

	if (b->on_event)
		b->on_event(&ev, b->arg);
}

/* A sender's ACCEPT or CLOSE, with its tag and what was taken of it. */
void conn_report(struct binding *b, enum binding_ev type, const struct conn *c, int err,
		 unsigned long long taken)
{
	struct binding_event ev = {type, c->peer, NULL, c->bytes, err, c->adm.tag, taken};

	if (b->on_event)
		b->on_event(&ev, b->arg);
}

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

/* What the binding took that no reader has: in the pipe, queued for it, parts of lines. */
static size_t unread(const struct binding *b)
{
	return fifo_pending(&b->fifo) + pipew_queued(&b->w) + b->parts;
}

void binding_status(const struct binding *b, struct status_text *t, const char *name)
{
	char port[16], peer[PEER_LEN];
	unsigned long long held = unread(b);

	snprintf(port, sizeof port, "%d", binding_port(b));
	status_line(t, "buffer", name);
	status_label(t, "port", b->done || b->passed ? "-" : port);
	status_num(t, "senders", b->ndata);
	status_num(t, "unread", held);
	if (held)
		t->moving = 1; /* a reader takes them without a word to us */
	for (size_t i = 0; i < b->nconns; i++) {
		const struct conn *c = &b->conns[i];

		if (c->state != CONN_DATA)
			continue;
		/* "ip port" in the log; one word here */
		snprintf(peer, sizeof peer, "%s", c->peer);
		peer[strcspn(peer, " ")] = ':';
		status_line(t, "stream", name);
		status_label(t, "peer", peer);
		status_num(t, "bytes", c->bytes);
		status_time(t, "since", c->connected_at);
		status_time(t, "last", c->data_at);
	}
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
		short ev = conn_wants_read(b, &b->conns[i]) ? POLLIN : 0;

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

		if (c->state != CONN_HS && stream_conn_buffered(c->ch) &&
		    conn_wants_read(b, c))
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
	binding_report(b, BINDING_EV_DONE, "", NULL, 0, 0);
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

/*
 * Poll's word on a sender's connection: its handshake goes on, or its
 * first line or its data is read (or spliced). Returns 0, or -1 with errno
 * when the buffer failed.
 */
static int conn_event(struct binding *b, int fd, short revents, long long now)
{
	size_t i;
	struct conn *c = conn_by_fd(b, fd, &i);
	int owner;

	if (!c)
		return 0;
	/* An earlier conn in this round may have just spliced a line's start. */
	owner = pipew_owner(&b->w);
	if (c->state == CONN_DATA && owner >= 0 && owner != c->fd)
		return 0;
	if ((revents & POLLOUT) && stream_conn_flush(c->ch) < 0 && errno != EAGAIN &&
	    c->state != CONN_HS)
		return conn_end(b, i, errno);
	if (c->state == CONN_HS) {
		chan_step(b, i, now);
		return 0;
	}
	if (!(revents & ~POLLOUT))
		return 0;
	if (c->state == CONN_FIRST)
		return conn_first_read(b, i);
	if (conn_can_splice(b, c))
		return conn_splice(b, i);
	return conn_read(b, i);
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
		if (!pfd[k].revents || pfd[k].fd == b->w.fd || pfd[k].fd == b->ino)
			continue;
		if (is_listener(b, pfd[k].fd))
			listener_ready = 1;
		else if (conn_event(b, pfd[k].fd, pfd[k].revents, now) < 0)
			return -1;
	}
	if (b->chan && chan_pending(b, now) < 0)
		return -1;
	/* A pipe with room again (after the reads above) lets the single sender go on. */
	if (pipew_flush(&b->w) < 0)
		return -1;
	for (size_t i = b->nconns; i-- > 0;)
		if (b->conns[i].state == CONN_FIRST && b->conns[i].first_by <= now)
			conn_reject(b, i, b->guard.late);
	/* A spliced line that stalls does not hold the others forever. */
	if (b->ndata > 1)
		pipew_owner_expire(&b->w, now);
	if (listener_ready)
		conns_accept(b, now);
	check_drained(b);
	return 0;
}

int binding_put(struct binding *b, const void *p, size_t n)
{
	return pipew_emit(&b->w, p, n);
}

void binding_stats(const struct binding *b, struct binding_stats *st)
{
	st->senders = b->nconns;
	st->bytes = 0;
	for (size_t i = 0; i < b->nconns; i++)
		st->bytes += b->conns[i].bytes;
	st->unread = unread(b);
}

int binding_done(const struct binding *b)
{
	return b->done;
}

/* A sender's connection or our accept() failed. */
static void error_text(const struct binding_event *ev, int chan, char *buf, size_t n)
{
	/* The channel's own failures end the connection after what came before them. */
	if (*ev->peer && chan && (ev->err == EBADMSG || ev->err == EPIPE))
		snprintf(buf, n, "sender %s: %s; connection ended after %llu bytes", ev->peer,
			 channel_strerror(ev->err, 0), ev->bytes);
	else if (*ev->peer)
		snprintf(buf, n, "sender %s: %s", ev->peer, strerror(ev->err));
	else
		snprintf(buf, n, "sender (accept): %s (%llu in the last second; pausing)",
			 strerror(ev->err), ev->bytes);
}

/* What a teardown saved, and where. */
static void saved_text(const struct binding_event *ev, const char *path, char *buf, size_t n)
{
	if (ev->err)
		snprintf(buf, n, "saving unread bytes to %s: %s",
			 ev->why && *ev->why ? ev->why : "a file",
			 strerror(ev->err));
	else if (*ev->peer)
		snprintf(buf, n, "%s%s %s, not touched; %llu unread byte%s saved to %s instead", path,
			 FIFO_UNREAD, ev->peer, ev->bytes, err_plural(ev->bytes), ev->why);
	else
		snprintf(buf, n, "%llu unread byte%s saved to %s", ev->bytes, err_plural(ev->bytes),
			 ev->why);
}

const char *binding_event_text(const struct binding_event *ev, const char *path, int chan,
			       char *buf, size_t n)
{
	switch (ev->type) {
	case BINDING_EV_ACCEPT: snprintf(buf, n, "sender %s connected", ev->peer); break;
	case BINDING_EV_CLOSE:
		/* A broken stream's sender may connect again and go on (bind-output -r, master -r). */
		snprintf(buf, n, "sender %s closed after %llu bytes%s", ev->peer, ev->bytes,
			 ev->err ? " (broken: its stream may resume)" : "");
		break;
	case BINDING_EV_REJECT: snprintf(buf, n, "refused %s: %s", ev->peer, ev->why); break;
	case BINDING_EV_ERROR: error_text(ev, chan, buf, n); break;
	case BINDING_EV_DONE: snprintf(buf, n, "drained; closing"); break;
	case BINDING_EV_SAVED: saved_text(ev, path, buf, n); break;
	}
	return buf;
}
