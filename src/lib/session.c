#include "session.h"

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
#include "net.h"
#include "opt.h"
#include "queue.h"
#include "wire.h"

#define OUT_HOLD 4096 /* stop reading a master that leaves this much unread */
#define OUT_MAX 65536 /* a master that leaves this much unread is dropped */
#define OUT_KEEP 4096 /* memory an idle queue of lines out keeps */
#define NO_SLOT ((size_t)-1)
#define ACCEPT_BURST 64 /* connections taken per wakeup, so bindings are not starved */

struct session {
	struct sessions *set;
	int fd;
	enum session_state state;
	int version;		 /* PROTO_VERSION, or PROTO_VERSION_PLAIN (-U) */
	size_t granted;		 /* grants it got */
	size_t unfinished;	 /* of those, not ended yet */
	long long deadline;	 /* PROVING: the handshake's end (absolute); then the idle limit */
	int proof_waits;	 /* a proof waits for the penalty to allow judging it */
	long long proof_at;	 /* when it may be judged */
	int closing;		 /* say nothing more; close gracefully once out is flushed */
	int finished;		 /* flushed and closing: hand the connection to the linger set */
	struct channel *channel; /* version 3: the control channel, once the handshake began */
	int secured;		 /* version 3: the handshake is done; every line goes through it */
	char pool_nonce[PROTO_NONCE_HEX + 1]; /* version 2: the greeting's */
	char master_mac[PROTO_MAC_HEX + 1], master_nonce[PROTO_NONCE_HEX + 1]; /* its AUTH */
	char ip[NET_IPLEN], peer[NET_IPLEN + NET_PORTLEN + 2];
	struct queue out;
	struct proto_in in;
	size_t slot; /* its entry in the poll set, or NO_SLOT */
};

/* An event of the set's, about no session but a newcomer from ip. */
static void tell_set(struct sessions *set, enum session_ev type, const char *ip,
		     unsigned long long count, int err)
{
	struct session_event ev = {.type = type, .ip = ip, .count = count, .err = err};

	if (set->cfg.on_event)
		set->cfg.on_event(&ev, set->cfg.arg);
}

/* Report ev of s, with its peer and state. */
static void report(struct session *s, struct session_event ev)
{
	const struct session_config *cfg = &s->set->cfg;

	ev.session = s;
	ev.state = s->state;
	ev.peer = s->peer;
	ev.ip = s->ip;
	if (cfg->on_event)
		cfg->on_event(&ev, cfg->arg);
}

static void tell(struct session *s, enum session_ev type, const char *what, int err)
{
	report(s, (struct session_event){.type = type, .what = what, .err = err});
}

static void dropped(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s is dropped: why, for the log. */
static void dropped(struct session *s, const char *fmt, ...)
{
	char why[PROTO_LINE_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	tell(s, SESSION_EV_DROPPED, why, 0);
}

/* ---- lines out ---- */

static void flush(struct session *s)
{
	struct channel *ch = s->secured ? s->channel : NULL;
	int full;

	if (wire_write(&s->out, s->fd, ch, QUEUE_SOCKET, &full) < 0) {
		queue_consume(&s->out, s->out.len); /* the peer is gone; the read side will tell */
		s->closing = 1;
		ch = NULL;
	}
	queue_release(&s->out, OUT_KEEP);
	/*
	 * FIN after our last line (in version 3 the END record before it),
	 * then drain (linger.c), so closing sends no reset over it.
	 */
	if (s->closing && !queue_pending(&s->out)) {
		if (ch && channel_shutdown(ch) < 0 && errno == EAGAIN)
			return; /* the rest goes on POLLOUT */
		s->finished = 1;
	}
}

static void line_out(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Queue one line for s (proto_vline), unless it is closing; version 3: only through the channel. */
static void line_out(struct session *s, const char *fmt, ...)
{
	char line[PROTO_LINE_MAX];
	va_list ap;
	ssize_t n;

	if (s->closing || (s->version == PROTO_VERSION && !s->secured))
		return;
	va_start(ap, fmt);
	n = proto_vline(line, fmt, ap);
	va_end(ap);
	if (n < 0) {
		dropped(s, "a line too long to say");
		s->closing = 1;
		return;
	}
	if (queue_pending(&s->out) + (size_t)n > OUT_MAX) {
		dropped(s, "not reading its replies");
		queue_consume(&s->out, s->out.len);
		s->closing = 1;
		return;
	}
	if (queue_append(&s->out, line, (size_t)n) < 0)
		s->closing = 1;
}

/* An error line, then the connection is closed. */
static void refuse(struct session *s, const char *why)
{
	line_out(s, "ERR %s", why);
	s->closing = 1;
}

/* One grant of s less. After END the last one's end is the session's: BYE. Returns 1 then. */
static int grant_over(struct session *s)
{
	if (--s->unfinished > 0 || s->state != SESSION_ENDING)
		return 0;
	line_out(s, "BYE");
	s->closing = 1;
	return 1;
}

void session_grant_ended(struct session *s)
{
	if (grant_over(s))
		flush(s);
}

void session_call_ended(struct session *s, const char *name, const char *stream, int status,
			const char *why)
{
	if (status >= 0)
		line_out(s, "EXIT %s %s %d%s%s", name, stream, status, why ? " " : "",
			 why ? why : "");
	else
		line_out(s, "EXIT %s %s - %s", name, stream, why ? why : "did not run");
	grant_over(s);
	flush(s);
}

/* ---- coming and going ---- */

void sessions_init(struct sessions *set, const struct session_config *cfg)
{
	memset(set, 0, sizeof *set);
	set->cfg = *cfg;
}

/* Sessions still proving the key, from ip. */
static size_t proving_from(const struct sessions *set, const char *ip)
{
	size_t n = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct session *s = set->all[i];

		n += s->state == SESSION_PROVING && !s->closing && strcmp(s->ip, ip) == 0;
	}
	return n;
}

/*
 * Too many connections still proving the key (MaxStartups): the newcomer
 * is told and closed at once, so guessers cannot hold every slot.
 */
static int over_cap(struct sessions *set, int fd, const char *ip)
{
	const struct session_config *cfg = &set->cfg;
	size_t per_source = cfg->max_proving / 4 ? cfg->max_proving / 4 : 1;
	static const char busy[] = "ERR busy: too many connections proving the key\n";

	if (set->proving < cfg->max_proving && proving_from(set, ip) < per_source)
		return 0;
	tell_set(set, SESSION_EV_BUSY, ip, set->proving, 0);
	if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the line is a courtesy; the close says the same */
	}
	linger_add(cfg->linger, fd, cfg->linger_ms);
	return 1;
}

static void greet(struct session *s)
{
	if (s->set->cfg.psk) {
		line_out(s, "%s", WIRE_GREETING);
		s->version = PROTO_VERSION; /* from now on, no line but through the channel */
		return;
	}
	s->version = PROTO_VERSION_PLAIN;
	if (proto_random_hex(s->pool_nonce, PROTO_NONCE_HEX / 2) < 0) {
		tell(s, SESSION_EV_FAILED, "no random nonce", errno);
		refuse(s, "no randomness");
	} else {
		line_out(s, "SOCKETPOOL %d %s", PROTO_VERSION_PLAIN, s->pool_nonce);
	}
}

/* A master connected on fd (taken over): greet it, or turn it away at the cap. */
static void session_new(struct sessions *set, int fd, long long now)
{
	struct session *s;
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (net_name(fd, 1, ip, port) < 0) {
		snprintf(ip, sizeof ip, "?");
		snprintf(port, sizeof port, "?");
	}
	if (over_cap(set, fd, ip))
		return;
	if (mem_reserve(&set->all, &set->cap, set->n + 1, sizeof *set->all, 16) < 0 ||
	    !(s = calloc(1, sizeof *s))) {
		tell_set(set, SESSION_EV_NO_ROOM, ip, 0, errno);
		close(fd);
		return;
	}
	s->set = set;
	s->fd = fd;
	s->slot = NO_SLOT;
	io_set_nonblock(fd, 1);
	net_nodelay(fd); /* answers go at once: best effort, a slower start at worst */
	memcpy(s->ip, ip, sizeof ip);
	snprintf(s->peer, sizeof s->peer, "%s %s", s->ip, port);
	/* Absolute: bytes dribbled in one at a time do not buy a guesser more time. */
	s->deadline = now + set->cfg.idle_ms;
	greet(s);
	set->all[set->n++] = s;
	set->proving++;
	flush(s);
}

void sessions_accept(struct sessions *set, struct listener *l)
{
	for (int k = 0; k < ACCEPT_BURST; k++) {
		unsigned long failures;
		int fd = listener_accept(l, io_now_ms(), &failures);

		if (fd < 0) {
			if (failures)
				tell_set(set, SESSION_EV_ACCEPT_FAILED, NULL, failures, errno);
			return;
		}
		session_new(set, fd, io_now_ms());
	}
}

/* Close a session (gracefully once finished); whoever knew it is told first. */
static void session_free(struct sessions *set, size_t i)
{
	struct session *s = set->all[i];

	if (s->state == SESSION_PROVING)
		set->proving--;
	report(s, (struct session_event){
		      .type = SESSION_EV_GONE, .count = s->granted, .unfinished = s->unfinished});
	channel_free(s->channel);
	if (s->finished)
		linger_add(set->cfg.linger, s->fd, set->cfg.linger_ms);
	else
		close(s->fd);
	queue_free(&s->out);
	free(s);
	set->all[i] = set->all[--set->n];
}

void sessions_close(struct sessions *set)
{
	while (set->n) {
		struct session *s = set->all[0];

		if (!s->closing) {
			line_out(s, "ERR pool shutting down");
			flush(s);
		}
		s->finished = 0; /* no lingering now: close at once */
		session_free(set, 0);
	}
}

void sessions_free(struct sessions *set)
{
	sessions_close(set);
	free(set->all);
	set->all = NULL;
	set->cap = 0;
}

/* ---- proving the key ---- */

/* The master proved the key, and (version 2: by the OK line about to go) the pool too. */
static void session_begins(struct session *s, long long now)
{
	s->state = SESSION_SERVING;
	s->set->proving--;
	s->deadline = now + s->set->cfg.idle_ms;
	tell(s, SESSION_EV_BEGIN, NULL, 0);
}

/* Version 2: judge an AUTH the penalty now allows: the pool's own proof follows, or the end. */
static void judge_proof(struct session *s, long long now)
{
	const struct session_config *cfg = &s->set->cfg;
	int ok = proto_mac_ok(cfg->key, cfg->keylen, PROTO_MASTER, s->pool_nonce, s->master_nonce,
			      s->master_mac);
	unsigned fails = penalty_judged(&s->set->penalty, s->ip, ok, now);
	char mac[PROTO_MAC_HEX + 1];

	s->proof_waits = 0;
	if (!ok) {
		dropped(s, "wrong key (%u in a row from %s)", fails, s->ip);
		refuse(s, "key rejected");
		return;
	}
	proto_mac(cfg->key, cfg->keylen, PROTO_POOL, s->pool_nonce, s->master_nonce, mac);
	line_out(s, "OK %s", mac);
	mem_wipe(mac, sizeof mac);
	session_begins(s, now);
}

/* Version 2: an AUTH, judged now or once the penalty allows. */
static void proof_taken(struct session *s, const struct proto_msg *m)
{
	long long now = io_now_ms();

	memcpy(s->master_mac, m->arg[0], sizeof s->master_mac);
	memcpy(s->master_nonce, m->arg[1], sizeof s->master_nonce);
	s->proof_waits = 1;
	s->proof_at = penalty_when(&s->set->penalty, s->ip, now);
	if (s->proof_at <= now)
		judge_proof(s, now);
}

/*
 * Version 3: the master's first message is taken, like an AUTH line, only
 * when the penalty allows; then the channel is made. Returns 1 once it is.
 */
static int handshake_begun(struct session *s, short revents, long long now)
{
	if (s->channel)
		return 1;
	if (revents & (POLLERR | POLLHUP)) {
		s->closing = 1; /* gone before it was judged */
		return 0;
	}
	if (!s->proof_waits && !(revents & POLLIN))
		return 0;
	if (!s->proof_waits) {
		s->proof_waits = 1;
		s->proof_at = penalty_when(&s->set->penalty, s->ip, now);
	}
	if (now < s->proof_at)
		return 0;
	s->proof_waits = 0;
	if (!(s->channel = wire_control(s->fd, 0, s->set->cfg.psk, now))) {
		tell(s, SESSION_EV_FAILED, "no channel", errno);
		s->closing = 1;
		return 0;
	}
	channel_set_deadline(s->channel, s->deadline); /* -t, from the connect, not 10 s from now */
	return 1;
}

/*
 * Version 3: the handshake is the proof, both ways; a failed one (a wrong
 * key) counts as a wrong proof. A failed handshake gets no answer:
 * nothing goes in plain text after the greeting.
 */
static void handshake(struct session *s, short revents, long long now)
{
	int r, err;

	if (!handshake_begun(s, revents, now) || (r = channel_handshake(s->channel, now)) == 0)
		return;
	err = errno;
	s->closing = r < 0;
	if (r == 1) {
		penalty_judged(&s->set->penalty, s->ip, 1, now);
		s->secured = 1;
		session_begins(s, now);
	} else if (err == EBADMSG || err == EPROTO) {
		unsigned fails = penalty_judged(&s->set->penalty, s->ip, 0, now);

		dropped(s, "%s (%u in a row from %s)",
			err == EBADMSG ? "wrong key" : "not a version 3 handshake", fails, s->ip);
	} else if (err == ETIMEDOUT) {
		dropped(s, "no proof of the key in time");
	} else if (err == ECONNRESET) {
		tell(s, SESSION_EV_CLOSED, "closed the connection during the handshake", 0);
	} else {
		tell(s, SESSION_EV_FAILED, "the handshake failed", err);
	}
}

/* ---- lines in ---- */

/* A PORT or CALL: the caller grants it, or says why not; the master hears which. */
static void request(struct session *s, const struct proto_msg *m)
{
	const struct session_config *cfg = &s->set->cfg;
	struct grant_request rq = {.cmd = m->cmd,
				   .name = m->arg[0],
				   .stream = m->arg[1],
				   .offset = m->offset,
				   .owner = s,
				   .ip = s->ip,
				   .granted = s->granted,
				   .taken = -1};
	char taken[24] = "-";

	if (cfg->on_request(&rq, cfg->arg) < 0) {
		line_out(s, "FAIL %s %s", rq.name, rq.why);
	} else {
		s->unfinished++;
		s->granted++;
		if (rq.taken >= 0)
			snprintf(taken, sizeof taken, "%lld", rq.taken);
		line_out(s, "GRANT %s %d %s %s", rq.name, rq.port, rq.token, taken);
		report(s, (struct session_event){
			      .type = SESSION_EV_GRANTED, .request = &rq, .what = taken});
	}
	mem_wipe(rq.token, sizeof rq.token);
}

/* What is wrong with a line proto_parse refused (errno), as the master is told. */
static const char *parse_error(const struct session *s, const struct proto_msg *m)
{
	if (errno == ENOMSG)
		return "unknown command";
	if (errno == EINVAL && s->state == SESSION_PROVING && m->cmd == PROTO_AUTH)
		return "protocol version 2 needed: the master is older";
	if (m->cmd == PROTO_PORT && m->arg[0] && !name_ok(m->arg[0]))
		return "bad daemon name";
	return "malformed line";
}

static void line_in(struct session *s, char *line)
{
	struct proto_msg m;

	if (proto_parse(line, &m) < 0) {
		const char *why = parse_error(s, &m);

		dropped(s, "%s", why);
		refuse(s, why);
		return;
	}
	if (s->state == SESSION_PROVING && m.cmd == PROTO_AUTH && !s->proof_waits) {
		proof_taken(s, &m);
		return;
	}
	if (s->state == SESSION_SERVING && (m.cmd == PROTO_PORT || m.cmd == PROTO_CALL)) {
		request(s, &m);
		return;
	}
	if (s->state == SESSION_SERVING && m.cmd == PROTO_END) {
		s->state = SESSION_ENDING;
		tell(s, SESSION_EV_END, NULL, 0);
		if (s->unfinished == 0) {
			line_out(s, "BYE");
			s->closing = 1;
		}
		return;
	}
	dropped(s, "%s out of turn", line); /* the command word only, now that it is parsed */
	refuse(s, "command out of turn");
}

/* Read what came and act on each whole line. Returns 0, or -1 when the master has gone. */
static int lines_in(struct session *s, long long now)
{
	char line[PROTO_LINE_MAX];
	ssize_t r = wire_fill(&s->in, s->fd, s->secured ? s->channel : NULL);
	int got;

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		if (r < 0 && s->secured && errno != ECONNRESET)
			tell(s, SESSION_EV_BROKEN, NULL, errno);
		else if (s->state == SESSION_SERVING)
			tell(s, SESSION_EV_CLOSED, "closed the connection before END", 0);
		return -1;
	}
	/* A proof waiting to be judged: nothing more is taken meanwhile. */
	while (!s->closing && !s->proof_waits && (got = proto_next(&s->in, line)) != 0) {
		if (got < 0) {
			const char *why = errno == EMSGSIZE ? "line too long" : "control character";

			dropped(s, "%s", why);
			refuse(s, why);
			break;
		}
		/* A whole line, not a byte, is what shows a session is alive. */
		if (s->state == SESSION_SERVING)
			s->deadline = now + s->set->cfg.idle_ms;
		line_in(s, line);
	}
	flush(s);
	return 0;
}

/* Past its deadline: no proof of the key in time, or silent too long. */
static void deadline_passed(struct session *s, long long now)
{
	char secs[OPT_SECS_MAX];

	if (s->state == SESSION_ENDING || now < s->deadline || s->closing || s->finished)
		return;
	opt_secs(s->set->cfg.idle_ms, secs);
	if (s->state == SESSION_PROVING) {
		dropped(s, "no proof of the key within %s s", secs);
		refuse(s, "handshake timeout");
	} else {
		dropped(s, "idle for %s s", secs);
		refuse(s, "idle timeout");
	}
	flush(s);
}

/* Returns 0, or -1 when the session is over and must be freed (finished: gracefully). */
static int session_io(struct session *s, short revents)
{
	long long now = io_now_ms();

	if (revents & POLLOUT)
		flush(s);
	if (s->version == PROTO_VERSION && s->state == SESSION_PROVING) {
		if (!s->closing)
			handshake(s, revents, now);
		revents = 0;
		flush(s);
	}
	if (s->secured && channel_readable(s->channel))
		revents |= POLLIN; /* a record's plaintext waits, unseen by poll */
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && lines_in(s, now) < 0)
		return -1;
	if (s->version == PROTO_VERSION_PLAIN && s->proof_waits && !s->closing &&
	    now >= s->proof_at && now < s->deadline) {
		judge_proof(s, now);
		flush(s);
	}
	deadline_passed(s, now);
	return s->finished ? -1 : 0;
}

size_t sessions_pollfds(struct sessions *set, struct pollfd *pfd, long long now, long long *at)
{
	for (size_t i = 0; i < set->n; i++) {
		struct session *s = set->all[i];
		size_t pending = queue_pending(&s->out);
		short ev = 0;

		if (pending)
			ev |= POLLOUT;
		if (s->channel)
			ev |= channel_events(s->channel);
		/* Version 3: a handshake waiting for its judgement stays in the kernel. */
		if (pending < OUT_HOLD && !(s->proof_waits && s->version == PROTO_VERSION))
			ev |= POLLIN;
		if (s->secured && channel_readable(s->channel) && pending < OUT_HOLD)
			*at = deadline_earlier(*at, now);
		s->slot = i;
		pfd[i] = (struct pollfd){.fd = s->fd, .events = ev};
		if (s->state != SESSION_ENDING)
			*at = deadline_earlier(*at, s->deadline);
		if (s->proof_waits)
			*at = deadline_earlier(*at, s->proof_at);
	}
	return set->n;
}

void sessions_handle(struct sessions *set, const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < set->n; i++) {
		struct session *s = set->all[i];
		short revents = s->slot < n ? pfd[s->slot].revents : 0;

		s->slot = NO_SLOT;
		if (session_io(s, revents) < 0)
			session_free(set, i--);
	}
}
