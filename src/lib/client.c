/*
 * client: master's side of the control connection. One state machine,
 * one queue of lines out, one list of requests in flight; what happens is
 * said through cfg->on_event, in words where it is a failure.
 */
#include "client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "deadline.h"
#include "io.h"
#include "mem.h"
#include "stream.h"
#include "opt.h"
#include "wire.h"

#define READ_ROUNDS 64 /* reads of the control connection per round; the rest on the next */

static void emit(struct client *c, struct client_event ev)
{
	if (c->cfg->on_event)
		c->cfg->on_event(&ev, c->cfg->arg);
}

/* c->why, formatted: the words of a NOTE, LOST or FATAL. */
static const char *say(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *say(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	return c->why;
}

/* Close the connection; what was in flight is void. */
static void drop(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	channel_free(c->ch);
	c->ch = NULL;
	c->in.len = 0;
	queue_free(&c->out);
	c->full = 0;
	c->req_head = c->nreq = 0;
	c->reply_by = 0;
}

static void fatal(struct client *c, const char *why)
{
	drop(c);
	c->state = CLIENT_DOWN;
	c->stopped = 1;
	emit(c, (struct client_event){.type = CLIENT_EV_FATAL, .why = why});
}

static void note(struct client *c, const char *why)
{
	emit(c, (struct client_event){.type = CLIENT_EV_NOTE, .why = why});
}

/* The connection is gone: connect again (after the backoff), unless the caller ends the run. */
static void lost(struct client *c, const char *why, long long now)
{
	drop(c);
	c->state = CLIENT_DOWN;
	connector_lost(&c->conn, now);
	emit(c, (struct client_event){.type = CLIENT_EV_LOST, .why = why});
}

int client_init(struct client *c, const struct client_config *cfg, int *gai)
{
	memset(c, 0, sizeof *c);
	c->cfg = cfg;
	c->fd = -1;
	c->state = CLIENT_CONNECTING;
	return connector_init(&c->conn, cfg->host, cfg->port, NULL, gai);
}

/* Version 3 lines go through the channel once its handshake is done. */
static struct channel *line_channel(const struct client *c)
{
	return c->state == CLIENT_RUN || c->state == CLIENT_ENDED ? c->ch : NULL;
}

int client_pollfd(const struct client *c, struct pollfd *pfd)
{
	short ev = POLLIN;

	if (c->fd < 0)
		return c->state == CLIENT_CONNECTING && connector_pollfd(&c->conn, pfd);
	ev |= stream_conn_events(c->ch);
	if (c->full || queue_pending(&c->out))
		ev |= POLLOUT;
	*pfd = (struct pollfd){.fd = c->fd, .events = ev};
	return 1;
}

long long client_due(const struct client *c, long long now)
{
	long long at = c->reply_by ? c->reply_by : -1;

	if (c->stopped)
		return -1;
	if (c->state == CLIENT_DOWN)
		at = deadline_earlier(at, c->conn.retry_at);
	else if (c->state == CLIENT_CONNECTING && c->conn.fd < 0)
		at = deadline_earlier(at, now + connector_timeout(&c->conn, now) + 1);
	if (c->state == CLIENT_HANDSHAKE && c->ch)
		at = deadline_earlier(at, deadline_in(channel_timeout(c->ch, now), now));
	if (stream_conn_buffered(line_channel(c)))
		at = now; /* a record's plaintext waits, unseen by poll */
	return at;
}

/* Send what the socket takes of the queued lines. 0, or -1 (the connection was lost). */
static int flush(struct client *c, long long now)
{
	struct channel *ch = line_channel(c);

	if (!queue_pending(&c->out) && !stream_conn_unsent(ch))
		return 0;
	if (wire_write(&c->out, c->fd, ch, QUEUE_SOCKET, &c->full) < 0) {
		lost(c, stream_conn_strerror(ch, errno), now);
		return -1;
	}
	queue_release(&c->out, 4096);
	return 0;
}

static int put_line(struct client *c, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static int put_line(struct client *c, const char *fmt, va_list ap)
{
	char line[PROTO_LINE_MAX];
	ssize_t n = proto_vline(line, fmt, ap);

	if (n < 0)
		return -1;
	return queue_append(&c->out, line, (size_t)n);
}

static int put(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(struct client *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = put_line(c, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- the session's start ---- */

static void session_begins(struct client *c)
{
	c->state = CLIENT_RUN;
	c->reply_by = 0;
	c->req_head = c->nreq = 0;
	emit(c, (struct client_event){.type = CLIENT_EV_SESSION});
}

/* The pool's version must be ours: plain text (version 2) only where both sides say -U. */
static const char *version_wrong(struct client *c, const struct proto_msg *msg)
{
	const char *h = c->cfg->host, *pt = c->cfg->port;
	int plain = c->cfg->plain;

	if (msg->version == PROTO_VERSION_PLAIN && !plain)
		return say(c, "the pool at %s %s speaks protocol version 2, in plain text (pool -U): "
			      "this master encrypts; give -U to both sides to allow plain text",
			   h, pt);
	if (msg->version == PROTO_VERSION && plain)
		return say(c, "the pool at %s %s speaks protocol version 3, encrypted: this master "
			      "was given -U (plain text); give -U to both sides or to neither",
			   h, pt);
	if (msg->version != (plain ? PROTO_VERSION_PLAIN : PROTO_VERSION))
		return say(c, "the pool speaks protocol version %ld, this master version %d",
			   msg->version, plain ? PROTO_VERSION_PLAIN : PROTO_VERSION);
	if (!plain && strcmp(msg->arg[1], WIRE_NOISE) != 0)
		return say(c, "the pool at %s %s greets with an unknown channel: %s", h, pt,
			   msg->arg[1]);
	return NULL;
}

/*
 * Version 3: our first message goes as soon as we are connected, not after
 * the greeting: the greeting's words are known (they are ours, and the
 * pool's must be the same or the handshake breaks), and waiting for them
 * cost a round trip. The pool reads it after its greeting.
 */
static int channel_early(struct client *c, long long now)
{
	if (!(c->ch = wire_control(c->fd, 1, c->cfg->psk, now)))
		return -1;
	/* A pool slowing guessers may judge us late: -t is how long we wait, as in version 2. */
	channel_set_deadline(c->ch, c->reply_by);
	if (channel_flush(c->ch) < 0 && errno != EAGAIN)
		return -1;
	return 0;
}

/* Version 3: greeted as we expected; the handshake goes on under the greeting's words. */
static void greeted(struct client *c, long long now)
{
	c->state = CLIENT_HANDSHAKE;
	c->reply_by = now + c->cfg->reply_ms;
	channel_set_deadline(c->ch, c->reply_by);
}

/* Version 2: greeted with the pool's nonce; our proof goes out with ours. */
static void authenticate(struct client *c, const struct proto_msg *msg, long long now)
{
	char mac[PROTO_MAC_HEX + 1];

	snprintf(c->nonce_p, sizeof c->nonce_p, "%s", msg->arg[1]);
	if (proto_random_hex(c->nonce_m, PROTO_NONCE_HEX / 2) < 0) {
		fatal(c, say(c, "no random nonce: %s", strerror(errno)));
		return;
	}
	proto_mac(c->cfg->key, c->cfg->keylen, PROTO_MASTER, c->nonce_p, c->nonce_m, mac);
	put(c, "AUTH %s %s", mac, c->nonce_m);
	mem_wipe(mac, sizeof mac);
	c->state = CLIENT_AUTH;
	c->reply_by = now + c->cfg->reply_ms;
}

/*
 * Version 3: the handshake went on. Returns 1 once it is done (the
 * session begins), 0 while it waits or after a failure (said).
 */
static int handshake(struct client *c, long long now)
{
	int r = channel_handshake(c->ch, now), err = errno;
	const char *why;

	if (r == 0)
		return 0;
	if (r == 1) {
		session_begins(c);
		return 1;
	}
	/* A pool that cannot open our first message closes: the only answer it gives. */
	why = err == ECONNRESET ? say(c, "the pool at %s %s rejected the key (it closed the handshake)",
				      c->cfg->host, c->cfg->port)
				: say(c, "the pool at %s %s: %s", c->cfg->host, c->cfg->port,
				      channel_strerror(err, 1));
	if (err == EBADMSG || err == EPROTO || !c->cfg->resume || !c->ready) {
		fatal(c, why);
		return 0;
	}
	note(c, why);
	lost(c, channel_strerror(err, 1), now);
	return 0;
}

/* ---- lines ---- */

static void error_line(struct client *c, const struct proto_msg *msg, long long now)
{
	char text[PROTO_LINE_MAX];

	if (c->state == CLIENT_AUTH) {
		fatal(c, say(c, "the pool at %s %s rejected the key", c->cfg->host, c->cfg->port));
		return;
	}
	snprintf(text, sizeof text, "%s", msg->text);
	if (!c->cfg->resume) {
		drop(c);
		c->state = CLIENT_DOWN;
		c->stopped = 1;
		emit(c, (struct client_event){.type = CLIENT_EV_FATAL, .session_ended = 1,
					      .why = say(c, "the pool ended the session: %s", text)});
		return;
	}
	note(c, say(c, "the pool ended the session: %s", text));
	lost(c, say(c, "%s", text), now);
}

static void greeting(struct client *c, const struct proto_msg *msg, long long now)
{
	const char *wrong = version_wrong(c, msg);

	if (wrong)
		fatal(c, wrong);
	else if (!c->cfg->plain)
		greeted(c, now);
	else
		authenticate(c, msg, now);
}

/* Version 2: the pool's proof. Nothing goes to a pool that has not shown it knows the key too. */
static void proven(struct client *c, const struct proto_msg *msg)
{
	if (!proto_mac_ok(c->cfg->key, c->cfg->keylen, PROTO_POOL, c->nonce_p, c->nonce_m,
			  msg->arg[0])) {
		fatal(c, say(c, "the pool at %s %s does not prove the key; not trusting it",
			     c->cfg->host, c->cfg->port));
		return;
	}
	session_begins(c);
}

/* The answer for the oldest request in flight. */
static void answered(struct client *c, const struct proto_msg *msg, long long now)
{
	size_t tag = c->req[c->req_head].tag;

	c->req_head++;
	c->nreq--;
	if (!c->nreq)
		c->req_head = 0;
	/* The pool answers in order: the next answer is due -t after this one. */
	c->reply_by = c->nreq ? now + c->cfg->reply_ms : 0;
	emit(c, (struct client_event){.type = CLIENT_EV_ANSWER, .tag = tag, .msg = msg});
}

/* A line in a session: an answer, an EXIT, the BYE. 0, or -1 when it fit no turn. */
static int session_line(struct client *c, const struct proto_msg *msg, long long now)
{
	if (msg->cmd == PROTO_BYE && c->state == CLIENT_ENDED) {
		emit(c, (struct client_event){.type = CLIENT_EV_BYE});
		return 0;
	}
	if (msg->cmd == PROTO_EXIT && c->cfg->calls) {
		emit(c, (struct client_event){.type = CLIENT_EV_EXIT, .msg = msg});
		return 0;
	}
	if ((msg->cmd != PROTO_GRANT && msg->cmd != PROTO_FAIL) || !c->nreq ||
	    strcmp(msg->arg[0], c->req[c->req_head].name) != 0)
		return -1;
	answered(c, msg, now);
	return 0;
}

static void line_in(struct client *c, char *line, long long now)
{
	char copy[PROTO_LINE_MAX];
	struct proto_msg msg;
	int ok;

	snprintf(copy, sizeof copy, "%s", line); /* proto_parse cuts it up */
	/*
	 * The greeting is matched exactly (its words go into the channel's
	 * prologue): no CR, no other spelling. A busy pool says ERR instead.
	 */
	ok = proto_parse(line, &msg) == 0;
	if (c->state == CLIENT_HELLO &&
	    (c->in.cr || !ok || (msg.cmd != PROTO_HELLO && msg.cmd != PROTO_ERR))) {
		fatal(c, say(c, "the pool at %s %s sent a malformed greeting (not a socketpool pool?)",
			     c->cfg->host, c->cfg->port));
		return;
	}
	if (!ok) {
		fatal(c, "the pool sent a line this master cannot read");
		return;
	}
	if (msg.cmd == PROTO_ERR) {
		error_line(c, &msg, now);
		return;
	}
	if (c->state == CLIENT_HELLO && msg.cmd == PROTO_HELLO)
		greeting(c, &msg, now);
	else if (c->state == CLIENT_AUTH && msg.cmd == PROTO_OK)
		proven(c, &msg);
	else if ((c->state != CLIENT_RUN && c->state != CLIENT_ENDED) ||
		 session_line(c, &msg, now) < 0)
		fatal(c, say(c, "the pool sent an unexpected %s", copy));
}

/*
 * The greeting and not a byte past it: what follows it is the channel's
 * (the pool's answer to our first message may be in the socket already).
 */
static ssize_t fill_greeting(struct proto_in *in, int fd)
{
	char peek[PROTO_LINE_MAX];
	size_t room = sizeof in->buf - in->len;
	ssize_t r;
	char *nl;

	if (room > sizeof peek)
		room = sizeof peek;
	if (room == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	r = recv(fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	if (r <= 0)
		return r;
	if ((nl = memchr(peek, '\n', (size_t)r)))
		r = nl - peek + 1;
	if ((r = io_read(fd, peek, (size_t)r)) > 0)
		proto_push(in, peek, (size_t)r);
	return r;
}

/* The control connection has something: lines, or its end. */
static void read_lines(struct client *c, long long now)
{
	char line[PROTO_LINE_MAX];

	/* Until the socket is empty (bounded): a record's plaintext may wait unseen by poll. */
	for (int rounds = 0; rounds < READ_ROUNDS; rounds++) {
		struct channel *ch = c->state == CLIENT_HELLO ? NULL : c->ch;
		ssize_t r = c->state == CLIENT_HELLO ? fill_greeting(&c->in, c->fd)
						     : wire_fill(&c->in, c->fd, ch);
		int got;

		if (r < 0 && errno == EAGAIN)
			return;
		while ((got = proto_next(&c->in, line)) == 1) {
			line_in(c, line, now);
			/* Lost, ended; or greeted: what follows is the handshake's. */
			if (c->fd < 0 || c->state == CLIENT_HANDSHAKE)
				return;
		}
		if (got < 0) {
			fatal(c, "the pool sent a malformed line");
			return;
		}
		if (r > 0)
			continue;
		/* A pool that dies closes without its END: that is only its going away. */
		lost(c,
		     r == 0 || (ch && errno == EPIPE) ? ""
		     : ch			      ? channel_strerror(errno, 0)
						      : strerror(errno),
		     now);
		return;
	}
}

/* ---- connecting ---- */

/* The control connection is made: greet and be greeted. */
static void connected(struct client *c, int fd, long long now)
{
	char port[NET_PORTLEN];

	c->fd = fd;
	io_set_nonblock(fd, 1);
	net_nodelay(fd); /* requests and answers: best effort, a slower start at worst */
	if (net_name(fd, 1, c->peer_ip, port) < 0 || net_name(fd, 0, c->local_ip, port) < 0) {
		lost(c, strerror(errno), now);
		return;
	}
	c->state = CLIENT_HELLO;
	c->reply_by = now + c->cfg->reply_ms;
	if (!c->cfg->plain && channel_early(c, now) < 0)
		fatal(c, say(c, "no channel: %s", strerror(errno)));
}

/*
 * A round of connecting failed with err: the next comes by itself while
 * the pool may still come up (-w), or (-r) once it was reached, for it
 * may come back; else the run cannot go on.
 */
static void unreachable(struct client *c, int err, long long now)
{
	const struct client_config *cfg = c->cfg;
	char secs[OPT_SECS_MAX];

	if (now < c->wait_by || (cfg->resume && c->ready))
		return;
	if (cfg->wait_ms)
		fatal(c, say(c, "the pool at %s %s did not listen within %s s (-w): %s", cfg->host,
			     cfg->port, opt_secs(cfg->wait_ms, secs), strerror(err)));
	else
		fatal(c, say(c, "connect to %s %s: %s", cfg->host, cfg->port, strerror(err)));
}

static void connect_step(struct client *c, short revents, long long now)
{
	int r;

	if (!c->wait_by) /* the first round: -w counts from here */
		c->wait_by = now + c->cfg->wait_ms;
	r = connector_step(&c->conn, revents, now);
	if (r == 1)
		connected(c, connector_take(&c->conn), now);
	else if (r < 0)
		unreachable(c, errno, now);
}

/* -t ran out while something was awaited. */
static void silent(struct client *c, long long now)
{
	char secs[OPT_SECS_MAX];
	const char *why = say(c, "the pool at %s %s did not answer within %s s", c->cfg->host,
			      c->cfg->port, opt_secs(c->cfg->reply_ms, secs));

	if (!c->cfg->resume) {
		fatal(c, why);
		return;
	}
	note(c, why);
	lost(c, "no answer in time", now);
}

void client_handle(struct client *c, short revents, long long now)
{
	if (c->stopped)
		return;
	if (c->state == CLIENT_DOWN && c->fd < 0 && c->conn.retry_at <= now)
		c->state = CLIENT_CONNECTING;
	if (c->state == CLIENT_CONNECTING) {
		connect_step(c, revents, now);
		return;
	}
	if (c->fd < 0)
		return;
	if (c->reply_by && now >= c->reply_by) {
		silent(c, now);
		return;
	}
	if (flush(c, now) < 0)
		return;
	if (c->state == CLIENT_HELLO && c->ch && channel_unsent(c->ch) &&
	    channel_flush(c->ch) < 0 && errno != EAGAIN) {
		lost(c, channel_strerror(errno, 0), now);
		return;
	}
	if (c->state == CLIENT_HANDSHAKE && !handshake(c, now))
		return;
	if ((revents & (POLLIN | POLLHUP | POLLERR)) || stream_conn_buffered(line_channel(c)))
		read_lines(c, now);
	if (c->fd >= 0)
		flush(c, now);
}

/* ---- asking ---- */

int client_ask(struct client *c, size_t tag, const char *name, const char *fmt, ...)
{
	struct client_request *r;
	va_list ap;
	int rc;

	if (c->state != CLIENT_RUN || strlen(name) > PROTO_NAME_MAX) {
		errno = EINVAL;
		return -1;
	}
	/* Answered requests go once they are half the array: a steady run never catches up. */
	if (c->req_head && c->req_head * 2 >= c->nreq + c->req_head) {
		memmove(c->req, c->req + c->req_head, c->nreq * sizeof *c->req);
		c->req_head = 0;
	}
	if (mem_reserve(&c->req, &c->req_cap, c->req_head + c->nreq + 1, sizeof *c->req, 64) < 0)
		return -1;
	va_start(ap, fmt);
	rc = put_line(c, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	r = &c->req[c->req_head + c->nreq++];
	r->tag = tag;
	snprintf(r->name, sizeof r->name, "%s", name);
	if (!c->reply_by)
		c->reply_by = io_now_ms() + c->cfg->reply_ms;
	return 0;
}

size_t client_inflight(const struct client *c)
{
	return c->nreq;
}

int client_end(struct client *c)
{
	if (c->state != CLIENT_RUN) {
		errno = EINVAL;
		return -1;
	}
	if (put(c, "END") < 0)
		return -1;
	c->state = CLIENT_ENDED;
	return 0;
}

void client_stop(struct client *c)
{
	drop(c);
	c->state = CLIENT_DOWN;
	c->stopped = 1;
}

void client_abandon(struct client *c)
{
	channel_free(c->ch); /* its keys: the pool's session is not the child's */
	c->ch = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void client_set_ready(struct client *c)
{
	c->ready = 1;
}

const char *client_peer_ip(const struct client *c)
{
	return c->peer_ip;
}

const char *client_local_ip(const struct client *c)
{
	return c->local_ip;
}

void client_free(struct client *c)
{
	struct channel *ch = line_channel(c);

	if (c->fd >= 0) {
		/* What is queued goes first (bounded), then our END record. */
		size_t n;
		const char *p = queue_unsent(&c->out, &n);

		if (n && wire_write_all(c->fd, ch, p, n) < 0)
			ch = NULL;
		if (ch)
			channel_shutdown(ch);
	}
	drop(c);
	connector_free(&c->conn);
	free(c->req);
	c->req = NULL;
}
