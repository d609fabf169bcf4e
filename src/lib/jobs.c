/*
 * jobs: starting the daemons (or service calls), making their data
 * connections without blocking, relaying their output through a stream,
 * and what a break, a grant for a resumption, or a death means for each.
 */
#define _GNU_SOURCE /* memrchr in stream.h's neighbours */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "deadline.h"
#include "err.h"
#include "io.h"
#include "linger.h"
#include "mem.h"
#include "net.h"
#include "proc.h"
#include "pump.h"
#include "spawn.h"
#include "wire.h"

#define JOB_QUEUE (256u << 10) /* relayed: what a stream may hold unsent before its pipe waits */
#define PIPE_READ 65536	       /* one read of a daemon's output */
#define PIPE_ROUNDS 16	       /* reads of one pipe per round */
#define DATA_LINGER_MS 2000    /* a finished stream: how long the pool may take to close */
#define RETRY_MS (CONNECTOR_BACKOFF_MIN_MS * 10) /* resuming: a failed connect asks again then */
#define REFUSED_RETRY_MS 1000  /* resuming: a refused grant is asked for again then */

static void emit(struct jobs *js, struct job_event ev)
{
	if (js->cfg->on_event)
		js->cfg->on_event(&ev, js->cfg->arg);
}

/* An event with words: why formatted into buf. */
static void emit_why(struct jobs *js, enum job_ev type, const struct job *j, int resend,
		     unsigned long long n, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void emit_why(struct jobs *js, enum job_ev type, const struct job *j, int resend,
		     unsigned long long n, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	emit(js, (struct job_event){.type = type, .job = j, .why = why, .n = n, .resend = resend});
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

	if (mem_reserve(&js->v, &js->cap, js->n + 1, sizeof *js->v, 16) < 0)
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

/* The job has failed for good: no stream, nothing more to do. */
static void job_failed(struct job *j)
{
	j->state = JOB_DONE;
	j->ended = 1;
}

/* ---- starting ---- */

/*
 * "No such file" from an exec of a file that is there means its #! line
 * names what is not: say which (a CR from CR LF line ends included).
 */
static const char *start_error(const struct jobs *js, const struct job *j, int err, char *buf,
			       size_t len)
{
	char line[256], *interp;
	ssize_t r;
	size_t n;
	int fd, cr;

	if (err != ENOENT || (fd = openat(js->cfg->dirfd, j->file, O_RDONLY | O_CLOEXEC)) < 0)
		return strerror(err);
	r = io_read(fd, line, sizeof line - 1);
	close(fd);
	if (r < 3 || line[0] != '#' || line[1] != '!')
		return strerror(err);
	line[r] = '\0';
	line[strcspn(line, "\n")] = '\0';
	interp = line + 2 + strspn(line + 2, " \t");
	n = strcspn(interp, " \t");
	cr = n && interp[n - 1] == '\r';
	interp[n - (size_t)cr] = '\0';
	snprintf(buf, len, "bad interpreter %s%s", interp,
		 cr ? "^M (the script has CR LF line ends)" : ": No such file or directory");
	return buf;
}

/* Read whether j's exec happened; a failure is reported here, once. */
static void exec_outcome(struct jobs *js, struct job *j)
{
	int err = spawn_result(j->execfd);
	char why[400];

	j->execfd = -1;
	j->state = JOB_RUNNING;
	if (err) {
		j->unstarted = 1;
		emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: %s",
			 start_error(js, j, err, why, sizeof why));
	}
}

/* The environment a daemon or client portion gets: where the pool is, and its name. */
struct job_env {
	char host[300], port[32], name[80];
	char *set[4];
	struct spawn_env env;
};

static void job_env(const struct jobs *js, const struct job *j, struct job_env *e)
{
	snprintf(e->host, sizeof e->host, "POOL_HOST=%s", js->cfg->host);
	snprintf(e->port, sizeof e->port, "POOL_PORT=%s", js->cfg->port);
	snprintf(e->name, sizeof e->name, "%s=%s",
		 js->cfg->kind == JOBS_DAEMONS ? "DAEMON_NAME" : "SERVICE_NAME", j->name);
	e->set[0] = e->host;
	e->set[1] = e->port;
	e->set[2] = e->name;
	e->set[3] = NULL;
	e->env = (struct spawn_env){e->set, NULL, 0};
}

/* Start the daemon: its stdout is the connection (fd), or (relayed, fd -1) a pipe to us. */
static void start_daemon(struct jobs *js, struct job *j, int fd)
{
	const struct jobs_config *cfg = js->cfg;
	int pipefd[2] = {-1, -1}, out = fd;
	char cmd[NAME_MAX_LEN + 3];
	struct job_env e;
	pid_t pid;

	if (fd < 0) {
		if (io_pipe(pipefd) < 0) {
			emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: pipe: %s",
				 strerror(errno));
			goto fail;
		}
		out = pipefd[1];
	}
	job_env(js, j, &e);
	snprintf(cmd, sizeof cmd, "./%s", j->file);
	/* cwd DDIR for the child only; we are single-threaded, so switch and come back. */
	if (fchdir(cfg->dirfd) < 0) {
		emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cd %s: %s", cfg->ddir, strerror(errno));
		goto fail;
	}
	/* Not waiting for the exec here lets many daemons start at once. */
	pid = spawn_start(&(struct spawn){.command = cmd,
					  .fd = {-1, out, cfg->errfd >= 0 ? cfg->errfd : STDERR_FILENO},
					  .env = &e.env,
					  .flags = SPAWN_NEWPGRP | SPAWN_PDEATHSIG},
			  &j->execfd);
	if (fchdir(cfg->cwdfd) < 0) {
		/* Nothing of ours is relative to it; the next start tries again. */
	}
	if (pid < 0) {
		emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: %s", strerror(errno));
		goto fail;
	}
	if (fd < 0) {
		close(pipefd[1]);
		j->out = pipefd[0];
		io_set_nonblock(j->out, 1);
	} else {
		close(fd);
	}
	j->pid = pid;
	j->state = JOB_STARTING;
	js->running++;
	js->started++;
	return;
fail:
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	if (fd >= 0)
		close(fd);
	stream_lost(&j->st);
	job_failed(j);
}

/*
 * -x, -c: a relay child talks to the service over fd: -x runs the client
 * portion with pipes (so it can end its upload while it reads the result:
 * our FIN follows its output's end), -c relays our own stdin and stdout.
 * The child ends as the client portion did.
 */
static void start_call(struct jobs *js, struct job *j, int fd, struct channel *ch)
{
	const struct jobs_config *cfg = js->cfg;
	char cmd[NAME_MAX_LEN + 3];
	struct relay r = {.ch = ch, .psk = ch ? cfg->psk : NULL, .initiator = 1,
			  .on_fault = cfg->on_fault, .fault_arg = cfg->arg};
	struct job_env e;
	/* our code in the child: its own group; it ends with us, however we end */
	pid_t pid = spawn_fork(SPAWN_NEWPGRP | SPAWN_PDEATHSIG);

	if (pid < 0) {
		emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: fork: %s", strerror(errno));
		channel_free(ch);
		close(fd);
		job_failed(j);
		j->remote = JOB_REMOTE_NONE;
		return;
	}
	if (pid == 0) {
		/* Nothing of the master's but this connection: not the pool's, not the others'. */
		if (cfg->in_child)
			cfg->in_child(cfg->arg);
		/* The client portion's diagnostics go where ours do (-L). */
		if (cfg->errfd >= 0 && dup2(cfg->errfd, STDERR_FILENO) < 0)
			_exit(EXIT_RUNTIME);
		job_env(js, j, &e);
		if (cfg->kind == JOBS_CLIENTS) {
			snprintf(cmd, sizeof cmd, "./%s", j->file);
			r.program = cmd;
			r.halfclose = 1;
			if (fchdir(cfg->dirfd) < 0)
				_exit(EXIT_RUNTIME);
		}
		_exit(pump_child(&r, fd, &e.env));
	}
	channel_free(ch); /* our copy: the relay's is the one in use */
	close(fd);
	j->pid = pid;
	j->state = JOB_RUNNING;
	js->running++;
	js->started++;
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
			  : j->st.ch	     ? channel_strerror(err, 0)
					     : strerror(err);
	char words[256];
	size_t held;

	snprintf(words, sizeof words, "%s", why);
	held = stream_lost(&j->st);
	if (js->cfg->resume) {
		emit(js, (struct job_event){.type = JOB_EV_LOST, .job = j, .why = words, .n = held,
					    .resend = 1});
		return; /* job_wants_port asks for a new port */
	}
	emit(js, (struct job_event){.type = JOB_EV_LOST, .job = j, .why = words, .n = held});
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
	emit_why(js, JOB_EV_CONNECT_FAILED, j, j->resuming, 0, "%s", why);
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
		emit(js, (struct job_event){.type = JOB_EV_RESUMED, .job = j, .n = j->st.base});
		return;
	}
	if (!j->start_due) { /* by jobs_start_due, between the loop's rounds */
		j->start_due = 1;
		js->starts_due++;
	}
}

size_t jobs_start_due(struct jobs *js, size_t max)
{
	for (size_t i = 0; i < js->n && max && js->starts_due; i++) {
		struct job *j = &js->v[i];

		if (!j->start_due)
			continue;
		j->start_due = 0;
		js->starts_due--;
		max--;
		/* A connection that broke first said so (lost); with -r a new one starts it. */
		if (j->st.fd >= 0)
			start_daemon(js, j, -1);
	}
	return js->starts_due;
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

int job_granted(struct jobs *js, struct job *j, const struct proto_msg *msg, const char *peer_ip,
		const char *local_ip, long long now)
{
	unsigned long long lacks;
	int gai = 0;

	j->retry_at = 0;
	j->inflight = 0;
	j->resuming = j->pid > 0 || j->state == JOB_RUNNING || j->state == JOB_STARTING;
	if (msg->cmd == PROTO_FAIL) {
		if (j->resuming) {
			j->retry_at = now + REFUSED_RETRY_MS; /* a once buffer still being read */
			return 0;
		}
		job_failed(j);
		j->remote = JOB_REMOTE_NONE;
		return -1;
	}
	if (j->resuming && msg->offset >= 0 &&
	    (lacks = stream_resume_at(&j->st, (unsigned long long)msg->offset)) > 0)
		emit(js, (struct job_event){.type = JOB_EV_LACKS, .job = j, .n = lacks});
	snprintf(j->port, sizeof j->port, "%d", msg->port);
	snprintf(j->token, sizeof j->token, "%s\n", msg->arg[2]);
	if (!j->resuming)
		j->state = JOB_CONNECTING;
	/* The pool's guard accepts our control connection's address only: use the same pair. */
	if (connector_init(&j->conn, peer_ip, j->port, local_ip, &gai) < 0) {
		char why[300];

		snprintf(why, sizeof why, "connect to %s port %s: %s", js->cfg->host, j->port,
			 net_strerror(gai));
		connect_failed(js, j, why, now);
		return j->resuming ? 0 : -1;
	}
	j->connecting = 1;
	j->connect_by = now + js->cfg->reply_ms;
	connect_step(js, j, 0, now);
	return j->ended ? -1 : 0;
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
		emit_why(js, JOB_EV_CONNECT_FAILED, j, 0, 0, "data connection: %s",
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
		start_daemon(js, j, fd);
	} else {
		start_call(js, j, fd, ch);
	}
}

/* Not relayed, and the connection is still ours: only what the handshake and the token need. */
static short settle_events(const struct job *j)
{
	short ev = stream_events(&j->st);

	return j->st.handshaking ? ev : (short)(ev & ~POLLIN);
}

size_t job_pollfds(const struct jobs *js, const struct job *j, struct pollfd *pfd)
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

long long job_due(const struct job *j, long long now)
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

void job_handle(struct jobs *js, struct job *j, const struct pollfd *pfd, size_t n, long long now)
{
	if (j->state == JOB_STARTING && j->execfd >= 0) {
		if (revents_of(pfd, n, j->execfd))
			exec_outcome(js, j);
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

void jobs_reaped(struct jobs *js, pid_t pid, int status)
{
	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];
		int code = proc_status_code(status);

		if (j->pid != pid)
			continue;
		if (j->state == JOB_STARTING) /* dead, so its pipe has said all it will */
			exec_outcome(js, j);
		j->pid = 0;
		js->running--;
		if (job_stream_over(js, j))
			j->state = JOB_DONE;
		if (code != 0 && !js->ending && !j->unstarted)
			emit(js, (struct job_event){.type = JOB_EV_ENDED, .job = j, .code = code});
		return;
	}
}

/*
 * A relayed stream still to be sent to its end at teardown, and confirmed:
 * until then its connection must stay open (relay() lets it go once the
 * pool took it all), for a close under the pool's counts resets it, and a
 * reset makes the pool's kernel drop what the pool has not read yet.
 */
static int draining(const struct job *j)
{
	return j->st.fd >= 0 && j->state != JOB_STARTING;
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

		if (!js->cfg->relayed || !draining(j))
			continue;
		held = stream_hand_over(&j->st, &fd);
		if (held)
			emit(js, (struct job_event){.type = JOB_EV_LOST, .job = j,
						    .why = "the teardown's time ran out", .n = held});
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
	size_t *at = calloc(js->n + 1, sizeof *at), *cnt = calloc(js->n + 1, sizeof *cnt);

	while (pfd && at && cnt && io_now_ms() < by) {
		size_t n = 0, live = 0;

		for (size_t i = 0; i < js->n; i++) {
			at[i] = n;
			cnt[i] = 0;
			if (!js->cfg->relayed || !draining(&js->v[i]))
				continue;
			live++;
			cnt[i] = job_pollfds(js, &js->v[i], pfd + n);
			n += cnt[i];
		}
		if (!live)
			break;
		if (poll(pfd, n, deadline_timeout(by, io_now_ms())) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < js->n; i++)
			if (cnt[i] && draining(&js->v[i]))
				job_handle(js, &js->v[i], pfd + at[i], cnt[i], io_now_ms());
	}
	hand_over(js);
	free(pfd);
	free(at);
	free(cnt);
}

size_t jobs_pids(struct jobs *js, pid_t *pids)
{
	size_t n = 0;

	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		if (j->start_due) { /* never started: its stream ends empty */
			j->start_due = 0;
			js->starts_due--;
		}
		if (j->state == JOB_STARTING) {
			close(j->execfd);
			j->execfd = -1;
			j->state = JOB_RUNNING;
		}
		if (j->pid > 0)
			pids[n++] = j->pid;
	}
	return n;
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
	js->v = NULL;
	js->n = 0;
}
