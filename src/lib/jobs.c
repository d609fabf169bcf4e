/*
 * jobs: the list of daemons (or service calls), their requests and
 * grants, making their data connections without blocking, relaying their
 * output through a stream, and what a break or a grant for a resumption
 * means for each. Starting them and their deaths: jobs_start.c.
 */
#define _GNU_SOURCE /* memrchr in stream.h's neighbours */
#include "jobs_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "client.h"
#include "deadline.h"
#include "err.h"
#include "io.h"
#include "linger.h"
#include "mem.h"
#include "net.h"
#include "wire.h"

#define JOB_QUEUE (256u << 10) /* relayed: what a stream may hold unsent before its pipe waits */
#define PIPE_READ 65536	       /* one read of a daemon's output */
#define PIPE_ROUNDS 16	       /* reads of one pipe per round */
#define DATA_LINGER_MS 2000    /* a finished stream: how long the pool may take to close */
#define RETRY_MS (CONNECTOR_BACKOFF_MIN_MS * 10) /* resuming: a failed connect asks again then */
#define REFUSED_RETRY_MS 1000  /* resuming: a refused grant is asked for again then */

void jobs_emit(struct jobs *js, struct job_event ev)
{
	if (js->cfg->on_event)
		js->cfg->on_event(&ev, js->cfg->arg);
}

void jobs_emit_why(struct jobs *js, enum job_ev type, const struct job *j, int resend,
		   unsigned long long n, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	jobs_emit(js, (struct job_event){.type = type, .job = j, .why = why, .n = n,
					 .resend = resend});
}

void jobs_init(struct jobs *js, const struct jobs_config *cfg)
{
	memset(js, 0, sizeof *js);
	js->cfg = cfg;
}

struct job *jobs_add(struct jobs *js, const char *file, const char *prefix)
{
	struct job *j;
	int n;

	if (mem_reserve(&js->v, &js->cap, js->n + 1, sizeof *js->v, 16) < 0 ||
	    mem_reserve(&js->pids, &js->pids_cap, js->n + 1, sizeof *js->pids, 16) < 0)
		return NULL;
	j = memset(&js->v[js->n], 0, sizeof *j);
	n = snprintf(j->name, sizeof j->name, "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
		     file);
	if (strlen(file) >= sizeof j->file || n < 0 || (size_t)n >= sizeof j->name) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	snprintf(j->file, sizeof j->file, "%s", file);
	if (proto_random_hex(j->stream, PROTO_STREAM_HEX / 2) < 0)
		return NULL;
	j->out = j->execfd = -1;
	j->remote = JOB_REMOTE_UNKNOWN;
	/* The pool drops a broken connection's unfinished line: keep lines whole; ask it to count. */
	stream_init(&j->st, STREAM_LINES | STREAM_COUNTS, STREAM_WINDOW);
	js->n++;
	return j;
}

int job_request(const struct jobs *js, const struct job *j, char *line, size_t len)
{
	if (js->cfg->kind != JOBS_DAEMONS)
		return snprintf(line, len, "CALL %s %s", j->name, j->stream);
	if (j->pid > 0 || stream_held(&j->st) || j->st.base)
		return snprintf(line, len, "PORT %s %s %llu", j->name, j->stream, j->st.base);
	return snprintf(line, len, "PORT %s %s %s", j->name, j->stream, js->cfg->resume ? "0" : "-");
}

int job_wants_port(const struct jobs *js, const struct job *j, long long now)
{
	if (j->inflight)
		return 0;
	if (j->state == JOB_WAITING)
		return 1;
	return js->cfg->resume && !j->ended && !j->unstarted && j->st.fd < 0 && !j->connecting &&
	       j->state != JOB_ASKED && j->state != JOB_STARTING && now >= j->retry_at;
}

int job_stream_over(const struct jobs *js, const struct job *j)
{
	return !js->cfg->relayed || j->ended || j->unstarted;
}

int job_resuming(const struct job *j)
{
	return j->pid > 0 || j->state == JOB_RUNNING || j->state == JOB_STARTING;
}

int job_unsettled(const struct job *j)
{
	return j->state == JOB_WAITING || j->state == JOB_ASKED || j->state == JOB_CONNECTING;
}

int jobs_ask(struct jobs *js, struct client *c, long long now, struct job **failed)
{
	char line[PROTO_LINE_MAX];
	int all_answered = 1;

	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		if (job_unsettled(j))
			all_answered = 0; /* or started: what -b reports waits for it */
		if (!job_wants_port(js, j, now))
			continue;
		job_request(js, j, line, sizeof line);
		if (client_ask(c, i, j->name, "%s", line) < 0) {
			*failed = j;
			return -1;
		}
		if (j->state == JOB_WAITING)
			j->state = JOB_ASKED;
		j->inflight = 1;
	}
	return all_answered && !client_inflight(c);
}

int jobs_streams_over(const struct jobs *js)
{
	for (size_t i = 0; i < js->n; i++)
		if (!job_stream_over(js, &js->v[i]))
			return 0;
	return 1;
}

int jobs_over(const struct jobs *js)
{
	for (size_t i = 0; i < js->n; i++) {
		const struct job *j = &js->v[i];

		if (!job_stream_over(js, j) || job_unsettled(j) ||
		    (js->cfg->kind != JOBS_DAEMONS && j->remote == JOB_REMOTE_UNKNOWN))
			return 0;
	}
	return 1;
}

struct job *jobs_find(struct jobs *js, const char *name, const char *stream)
{
	for (size_t i = 0; i < js->n; i++)
		if (strcmp(js->v[i].name, name) == 0 && strcmp(js->v[i].stream, stream) == 0)
			return &js->v[i];
	return NULL;
}

void jobs_unask(struct jobs *js)
{
	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		if (!j->inflight)
			continue;
		j->retry_at = 0;
		j->inflight = 0;
		if (j->state == JOB_ASKED && j->pid == 0)
			j->state = JOB_WAITING;
	}
}

void jobs_remote_exit(struct jobs *js, const struct proto_msg *msg)
{
	struct job *j = jobs_find(js, msg->arg[0], msg->arg[1]);

	if (!j)
		return;
	j->remote = msg->status;
	if (msg->status != 0)
		jobs_emit(js, (struct job_event){.type = JOB_EV_REMOTE_FAILED, .job = j,
						 .why = msg->text, .code = msg->status});
}

void jobs_unreported(struct jobs *js)
{
	for (size_t i = 0; js->cfg->kind != JOBS_DAEMONS && i < js->n; i++) {
		struct job *j = &js->v[i];

		if (j->remote == JOB_REMOTE_UNKNOWN && j->state != JOB_WAITING) {
			j->remote = JOB_REMOTE_NONE;
			jobs_emit(js, (struct job_event){.type = JOB_EV_UNREPORTED, .job = j});
		}
	}
}

void job_failed(struct job *j)
{
	j->state = JOB_DONE;
	j->ended = 1;
}

/* ---- the data connection ---- */

/*
 * The data connection broke: with -r, what the pool did not confirm is
 * sent again, after a new grant; without, the stream has failed, and its
 * daemon's next write fails too.
 */
static void lost(struct jobs *js, struct job *j, int err)
{
	const char *why = j->st.handshaking ? channel_strerror(err, 1)
			  : err == EPIPE     ? "the pool closed it"
					     : stream_conn_strerror(j->st.ch, err);
	char words[256];
	size_t held;

	snprintf(words, sizeof words, "%s", why);
	held = stream_lost(&j->st);
	if (js->cfg->resume) {
		jobs_emit(js, (struct job_event){.type = JOB_EV_LOST, .job = j, .why = words,
						 .n = held, .resend = 1});
		return; /* job_wants_port asks for a new port */
	}
	jobs_emit(js,
		  (struct job_event){.type = JOB_EV_LOST, .job = j, .why = words, .n = held});
	j->ended = 1;
	queue_free(&j->st.q);
	if (j->out >= 0)
		close(j->out);
	j->out = -1;
	if (j->pid == 0 && j->state != JOB_STARTING)
		j->state = JOB_DONE;
}

/* The data connection could not be made: why. */
static void connect_failed(struct jobs *js, struct job *j, const char *why, long long now)
{
	connector_free(&j->conn);
	j->connecting = 0;
	mem_wipe(j->token, sizeof j->token);
	jobs_emit_why(js, JOB_EV_CONNECT_FAILED, j, j->resuming, 0, "%s", why);
	if (j->resuming) {
		j->retry_at = now + RETRY_MS;
		return;
	}
	job_failed(j);
}

/* The data connection is made: the channel's handshake and the token go on in the stream. */
static void opened(struct jobs *js, struct job *j, int fd, long long now)
{
	const struct jobs_config *cfg = js->cfg;
	struct channel *ch = NULL;

	/* A relayed stream asks the pool to count what it takes (its TCP's word is no proof). */
	if (cfg->psk && !(ch = channel_new(fd, 1, cfg->psk, WIRE_DATA,
					   cfg->relayed ? CHANNEL_ACKS : NULL,
					   cfg->relayed ? strlen(CHANNEL_ACKS) : 0, now))) {
		close(fd);
		connect_failed(js, j, "no channel", now);
		return;
	}
	io_set_nonblock(fd, 1);
	stream_attach(&j->st, fd, ch, j->token, strlen(j->token));
	mem_wipe(j->token, sizeof j->token);
	stream_step(&j->st, 0, now); /* our first message goes; the answer comes to the loop */
	if (!cfg->relayed)
		return; /* started once the token is out: job_handle */
	if (j->resuming) {
		jobs_emit(js,
			  (struct job_event){.type = JOB_EV_RESUMED, .job = j, .n = j->st.base});
		return;
	}
	if (!j->start_due) { /* by jobs_start_due, between the loop's rounds */
		j->start_due = 1;
		js->starts_due++;
	}
}

static void connect_step(struct jobs *js, struct job *j, short revents, long long now)
{
	char why[300];
	int r = connector_step(&j->conn, revents, now), fd;

	if (r == 0 && now < j->connect_by)
		return;
	if (r <= 0) {
		snprintf(why, sizeof why, "connect to %s port %s: %s", js->cfg->host, j->port,
			 strerror(r == 0 ? ETIMEDOUT : errno));
		connect_failed(js, j, why, now);
		return;
	}
	fd = connector_take(&j->conn);
	connector_free(&j->conn);
	j->connecting = 0;
	opened(js, j, fd, now);
}

/* The pool refused j's request (FAIL, why): a resumption asks again in a while. */
static void refused(struct jobs *js, struct job *j, const char *why, long long now)
{
	enum job_ev type = js->cfg->kind == JOBS_DAEMONS ? JOB_EV_REFUSED : JOB_EV_CALL_REFUSED;

	jobs_emit(js, (struct job_event){.type = type, .job = j, .why = why, .resend = j->resuming});
	if (j->resuming) {
		j->retry_at = now + REFUSED_RETRY_MS; /* a once buffer still being read */
		return;
	}
	job_failed(j);
	j->remote = JOB_REMOTE_NONE;
}

void jobs_answer(struct jobs *js, const struct client *c, size_t tag, const struct proto_msg *msg,
		 long long now)
{
	struct job *j = &js->v[tag]; /* jobs_ask's tag: the job's index */
	unsigned long long lacks;
	int gai = 0;

	j->retry_at = 0;
	j->inflight = 0;
	j->resuming = job_resuming(j);
	if (msg->cmd == PROTO_FAIL) {
		refused(js, j, msg->text, now);
		return;
	}
	if (j->resuming && msg->offset >= 0 &&
	    (lacks = stream_resume_at(&j->st, (unsigned long long)msg->offset)) > 0)
		jobs_emit(js, (struct job_event){.type = JOB_EV_LACKS, .job = j, .n = lacks});
	snprintf(j->port, sizeof j->port, "%d", msg->port);
	snprintf(j->token, sizeof j->token, "%s\n", msg->arg[2]);
	if (!j->resuming)
		j->state = JOB_CONNECTING;
	/* The pool's guard accepts our control connection's address only: use the same pair. */
	if (connector_init(&j->conn, client_peer_ip(c), j->port, client_local_ip(c), &gai) < 0) {
		char why[300];

		snprintf(why, sizeof why, "connect to %s port %s: %s", js->cfg->host, j->port,
			 net_strerror(gai));
		connect_failed(js, j, why, now);
		return;
	}
	j->connecting = 1;
	j->connect_by = now + js->cfg->reply_ms;
	connect_step(js, j, 0, now);
}

/* ---- the loop's side ---- */

/* The daemon's output into its stream, as far as the stream may hold it unsent. */
static void pipe_in(struct job *j)
{
	for (int rounds = 0; rounds < PIPE_ROUNDS && stream_pending(&j->st) < JOB_QUEUE; rounds++) {
		char *t = stream_tail(&j->st, PIPE_READ);
		ssize_t r = t ? io_read(j->out, t, PIPE_READ) : -1;

		if (r > 0) {
			stream_commit(&j->st, (size_t)r);
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			close(j->out); /* the daemon's output ended: the stream is complete */
			j->out = -1;
		}
		break;
	}
}

/* A relayed stream's connection: the pool's counts and end, sending, our end once all is out. */
static void relay(struct jobs *js, struct job *j, short revents, long long now)
{
	int r = stream_step(&j->st, revents, now);

	if (r < 0) {
		lost(js, j, errno);
		return;
	}
	/* Its end before ours (or, plain, with ours not all taken): it takes no more. */
	if (r == 1 && !j->st.peer_took && !stream_done(&j->st)) {
		lost(js, j, EPIPE);
		return;
	}
	if (j->out < 0 && !j->start_due && !stream_pending(&j->st) && !j->st.shut &&
	    stream_end(&j->st) < 0) {
		lost(js, j, errno);
		return;
	}
	if (stream_done(&j->st)) {
		linger_add(js->cfg->linger, stream_detach(&j->st), DATA_LINGER_MS);
		j->ended = 1;
		if (j->pid == 0 && j->state != JOB_STARTING)
			j->state = JOB_DONE;
	}
}

/* Not relayed: once the token is out, the connection is the daemon's or the call's own. */
static void settle(struct jobs *js, struct job *j, short revents, long long now)
{
	struct channel *ch;
	int fd;

	/* Nothing is read here: what the other side says first is the program's. */
	if (stream_step(&j->st, j->st.handshaking ? revents : (short)(revents & ~POLLIN), now) < 0) {
		jobs_emit_why(js, JOB_EV_CONNECT_FAILED, j, 0, 0, "data connection: %s",
			 channel_strerror(errno, 1));
		stream_lost(&j->st);
		job_failed(j);
		return;
	}
	if (!stream_settled(&j->st))
		return;
	stream_release(&j->st, &fd, &ch);
	io_set_nonblock(fd, 0); /* the program gets it as any program gets its stdout: blocking */
	if (js->cfg->kind == JOBS_DAEMONS) {
		channel_free(ch); /* none: version 2 */
		job_start_daemon(js, j, fd);
	} else {
		job_start_call(js, j, fd, ch);
	}
}

/* Not relayed, and the connection is still ours: only what the handshake and the token need. */
static short settle_events(const struct job *j)
{
	short ev = stream_events(&j->st);

	return j->st.handshaking ? ev : (short)(ev & ~POLLIN);
}

/* Append j's descriptors to pfd (room for 3); returns how many. */
static size_t job_pollfds(const struct jobs *js, const struct job *j, struct pollfd *pfd)
{
	size_t n = 0;

	if (j->state == JOB_STARTING && j->execfd >= 0) {
		pfd[n++] = (struct pollfd){.fd = j->execfd, .events = POLLIN};
		return n;
	}
	if (j->out >= 0 && stream_pending(&j->st) < JOB_QUEUE)
		pfd[n++] = (struct pollfd){.fd = j->out, .events = POLLIN};
	if (j->connecting && connector_pollfd(&j->conn, &pfd[n]))
		n++;
	if (j->st.fd >= 0)
		pfd[n++] = (struct pollfd){.fd = j->st.fd,
					   .events = js->cfg->relayed ? stream_events(&j->st)
								      : settle_events(j)};
	return n;
}

/* When j must be handled without an event: an io_now_ms time, or -1. */
static long long job_due(const struct job *j, long long now)
{
	long long at = j->retry_at > 0 ? j->retry_at : -1;

	if (j->connecting)
		at = deadline_earlier(at, j->connect_by);
	return deadline_earlier(at, deadline_in(stream_timeout(&j->st, now), now));
}

/* What poll said of fd in the slice. */
static short revents_of(const struct pollfd *pfd, size_t n, int fd)
{
	for (size_t k = 0; fd >= 0 && k < n; k++)
		if (pfd[k].fd == fd)
			return pfd[k].revents;
	return 0;
}

/* Act on poll's answer for the slice job_pollfds appended (n entries, revents set). */
static void job_handle(struct jobs *js, struct job *j, const struct pollfd *pfd, size_t n,
		       long long now)
{
	if (j->state == JOB_STARTING && j->execfd >= 0) {
		if (revents_of(pfd, n, j->execfd))
			job_exec_outcome(js, j);
		return;
	}
	if (j->out >= 0 && revents_of(pfd, n, j->out))
		pipe_in(j);
	if (j->connecting) {
		struct pollfd cp;

		connect_step(js, j,
			     connector_pollfd(&j->conn, &cp) ? revents_of(pfd, n, cp.fd) : 0, now);
	}
	if (j->st.fd < 0)
		return;
	if (js->cfg->relayed)
		relay(js, j, revents_of(pfd, n, j->st.fd), now);
	else
		settle(js, j, revents_of(pfd, n, j->st.fd), now);
}

/*
 * A relayed stream still to be sent to its end at teardown, and confirmed:
 * until then its connection must stay open (relay() lets it go once the
 * pool took it all), for a close under the pool's counts resets it, and a
 * reset makes the pool's kernel drop what the pool has not read yet.
 */
static int draining(const struct jobs *js, const struct job *j)
{
	return js->cfg->relayed && j->st.fd >= 0 && j->state != JOB_STARTING;
}

/* Every job's slice of the poll set (drain: only those draining); *live: how many have one. */
static size_t slices(struct jobs *js, struct pollfd *pfd, int drain, size_t *live)
{
	size_t n = 0;

	*live = 0;
	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		j->poll_at = n;
		j->poll_n = 0;
		if (drain && !draining(js, j))
			continue;
		++*live;
		j->poll_n = job_pollfds(js, j, pfd + n);
		n += j->poll_n;
	}
	return n;
}

size_t jobs_pollfds(struct jobs *js, struct pollfd *pfd, long long now, long long *at)
{
	size_t live, n = slices(js, pfd, 0, &live);

	for (size_t i = 0; i < js->n; i++)
		*at = deadline_earlier(*at, job_due(&js->v[i], now));
	if (js->starts_due)
		*at = now; /* daemons to start: poll only looks */
	return n;
}

void jobs_handle(struct jobs *js, const struct pollfd *pfd, long long now)
{
	for (size_t i = 0; i < js->n; i++)
		job_handle(js, &js->v[i], pfd + js->v[i].poll_at, js->v[i].poll_n, now);
}

/*
 * Teardown's time is up: what each unconfirmed stream's socket holds is
 * the kernel's to deliver after us, its connection kept open by a child
 * (linger_behind); what it never took is lost, and said.
 */
static void hand_over(struct jobs *js)
{
	int *keep = calloc(js->n + 1, sizeof *keep);
	size_t nkeep = 0;

	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];
		size_t held;
		int fd;

		if (!draining(js, j))
			continue;
		held = stream_hand_over(&j->st, &fd);
		if (held)
			jobs_emit(js, (struct job_event){.type = JOB_EV_LOST, .job = j,
							 .why = "the teardown's time ran out",
							 .n = held});
		if (fd >= 0 && keep)
			keep[nkeep++] = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (nkeep && linger_behind(keep, nkeep, LINGER_BEHIND_MS) < 0)
		for (size_t i = 0; i < nkeep; i++)
			close(keep[i]);
	free(keep);
}

void jobs_drain(struct jobs *js, long long by)
{
	struct pollfd *pfd = calloc(3 * js->n + 1, sizeof *pfd);

	while (pfd && io_now_ms() < by) {
		size_t live, n = slices(js, pfd, 1, &live);

		if (!live)
			break;
		if (poll(pfd, n, deadline_timeout(by, io_now_ms())) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < js->n; i++) {
			struct job *j = &js->v[i];

			if (j->poll_n && draining(js, j))
				job_handle(js, j, pfd + j->poll_at, j->poll_n, io_now_ms());
		}
	}
	hand_over(js);
	free(pfd);
}

void jobs_free(struct jobs *js)
{
	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		stream_free(&j->st);
		if (j->connecting)
			connector_free(&j->conn);
		if (j->out >= 0)
			close(j->out);
		if (j->execfd >= 0)
			close(j->execfd);
		mem_wipe(j->token, sizeof j->token);
	}
	free(js->v);
	free(js->pids);
	js->v = NULL;
	js->pids = NULL;
	js->n = 0;
}
