#include "server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "err.h"
#include "io.h"
#include "mem.h"
#include "sig.h"
#include "spawn.h"
#include "worker.h"

#define FORK_PAUSE_MS 1000 /* a worker could not be forked or recorded: try again this later */

/* Tell the caller of ev, if it listens; errno is kept. */
static void tell(const struct server *s, struct server_event ev)
{
	int saved = errno;

	if (s->o->on_event)
		s->o->on_event(&ev, s->o->event_arg);
	errno = saved;
}

/* A step failed with errno. */
static void failed(const struct server *s, const char *step)
{
	tell(s, (struct server_event){.type = SERVER_EV_FAILED, .name = step, .err = errno});
}

/* Keep room for every pid teardown must end, so that it never allocates. */
static int ends_reserve(struct server *s, size_t extra)
{
	size_t need = s->nconns + (s->pooled ? s->pool.n : 0) + extra + 1;

	return mem_reserve(&s->ends, &s->ends_cap, need, sizeof *s->ends, 16);
}

static struct server_conn *conn_add(struct server *s)
{
	if (ends_reserve(s, 1) < 0 ||
	    mem_reserve(&s->conns, &s->cap, s->nconns + 1, sizeof *s->conns, 16) < 0)
		return NULL;
	s->conns[s->nconns] = (struct server_conn){.pid = 0, .fd = -1};
	return &s->conns[s->nconns++];
}

static void conn_drop(struct server *s, size_t i)
{
	if (s->conns[i].fd >= 0)
		close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->nconns];
}

/* Name the peer of fd in c and say it (-v only: two system calls saved otherwise). */
static void conn_name(const struct server *s, struct server_conn *c, int fd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (!s->o->verbose)
		return;
	if (net_name(fd, 1, ip, port) == AF_UNIX || !ip[0])
		strcpy(c->peer, "UNIX");
	else
		snprintf(c->peer, sizeof c->peer, "%s %s", ip, port);
	tell(s, (struct server_event){.type = SERVER_EV_CONN, .name = c->peer});
}

/* A relay child's fault, passed on. */
static void relay_fault(const struct pump_fault *f, void *arg)
{
	tell(arg, (struct server_event){.type = SERVER_EV_RELAY, .fault = f});
}

int server_init(struct server *s, const struct server_opts *o, struct listener *l, int sigfd)
{
	memset(s, 0, sizeof *s);
	s->o = o;
	s->relay = o->relay;
	s->sigfd = sigfd;
	s->chan[0] = s->chan[1] = -1;
	s->l = *l;
	l->n = 0; /* ours now */
	s->relay.on_fault = relay_fault;
	s->relay.fault_arg = s;
	if (o->relay.program) {
		if (cmd_init(&s->cmd, o->relay.program, o->exec_path) < 0)
			return -1;
		s->relay.cmd = &s->cmd;
	}
	if (s->l.n) {
		ucspi_listener(&s->env, s->l.fd[0]);
		if (s->l.n > 1)
			ucspi_several(&s->env);
	}
	if (ends_reserve(s, 0) < 0)
		return -1;
	if (o->wmin) {
		size_t max = o->wmax ? (size_t)o->wmax : PREFORK_UNLIMITED;

		if (o->maxconn && (size_t)o->maxconn < max)
			max = (size_t)o->maxconn;
		if (prefork_channel(s->chan) < 0)
			return -1;
		prefork_init(&s->pool, (size_t)o->wmin, max, o->wmax > 0, o->idle_ms);
		s->pooled = 1;
		/* Workers exec the program themselves: its environment is made once, here. */
		if (!o->prestart && pump_direct(&o->relay) && ucspi_envp(&s->env) < 0)
			return -1;
	}
	return 0;
}

/* The program holds the connection itself: no relay in between. */
static pid_t serve_direct(struct server *s, struct server_conn *c, int fd)
{
	const struct relay *r = &s->relay;
	int fds[3];
	pid_t pid;

	ucspi_fds(fd, r->ronly, r->wonly, fds);
	if (r->ronly)
		shutdown(fd, SHUT_WR);
	pid = spawn_start(&(struct spawn){.cmd = &s->cmd,
					  .fd = {fds[0], fds[1], fds[2]},
					  .env = &s->env.env,
					  .flags = SPAWN_NEWPGRP | SPAWN_PDEATHSIG},
			  NULL);
	if (pid < 0)
		return -1;
	c->fd = fd; /* kept for the graceful close once the program ends */
	return pid;
}

/* A relay child: -c, or our own stdin and stdout. */
static pid_t serve_relay(struct server *s, int fd)
{
	/* It ends with us, however we end: killed, we would not end it. */
	pid_t pid = spawn_fork(SPAWN_NEWPGRP | SPAWN_PDEATHSIG);

	if (pid < 0)
		return -1;
	if (pid == 0) {
		listener_close(&s->l);
		/* Other connections' copies are not ours to hold. */
		for (size_t i = 0; i + 1 < s->nconns; i++)
			if (s->conns[i].fd >= 0)
				close(s->conns[i].fd);
		linger_free(&s->linger);
		_exit(pump_child(&s->relay, fd, &s->env.env));
	}
	close(fd);
	return pid;
}

void server_serve(struct server *s, int fd)
{
	const struct relay *r = &s->relay;
	struct server_conn *c = conn_add(s);
	pid_t pid;

	if (!c) {
		failed(s, "connection dropped");
		close(fd);
		return;
	}
	conn_name(s, c, fd);
	if (!s->l.n && !s->env.proto[0])
		ucspi_listener(&s->env, fd); /* a client's connection: no listener */
	ucspi_conn(&s->env, fd);
	if (pump_direct(r)) {
		pid = serve_direct(s, c, fd);
		if (pid < 0) {
			tell(s, (struct server_event){.type = SERVER_EV_EXEC, .name = r->program,
						      .err = errno});
			s->status = EXIT_RUNTIME;
			c->fd = -1;
			conn_drop(s, s->nconns - 1);
			close(fd);
			return;
		}
	} else {
		pid = serve_relay(s, fd);
		if (pid < 0) {
			failed(s, "fork");
			conn_drop(s, s->nconns - 1);
			close(fd);
			return;
		}
	}
	c->pid = pid;
	s->running++;
}

static void stop_listening(struct server *s);

/* ---- -W: the workers' side of the loop ---- */

/* Fork workers up to what the pool wants now. */
static void pool_fill(struct server *s)
{
	long long now = io_now_ms();

	if (now < s->fork_pause_until || s->stopping)
		return;
	for (size_t k = prefork_wanted(&s->pool, now); k > 0; k--) {
		pid_t pid;

		if (ends_reserve(s, 1) < 0) {
			failed(s, "worker pool");
			s->fork_pause_until = now + FORK_PAUSE_MS;
			return;
		}
		/* A group of its own at once, so a TERM to its group cannot miss; it
		 * ends with us even when we are killed (no worker serves on under init). */
		pid = spawn_fork(SPAWN_NEWPGRP | SPAWN_PDEATHSIG);
		if (pid < 0) {
			failed(s, "fork");
			s->fork_pause_until = now + FORK_PAUSE_MS;
			return;
		}
		if (pid == 0)
			_exit(worker_run(s));
		if (prefork_add(&s->pool, pid, now) < 0) {
			failed(s, "worker pool");
			kill(pid, SIGKILL);
			s->fork_pause_until = now + FORK_PAUSE_MS;
			return;
		}
	}
}

/* A worker accepted: its connection is one of ours now; the pool decides on a replacement. */
static void pool_accepted(struct server *s, pid_t pid, int *fd)
{
	const struct server_opts *o = s->o;
	struct server_conn *c;

	if (prefork_accepted(&s->pool, pid) < 0 || !(c = conn_add(s)))
		return;
	c->pid = pid;
	if (*fd >= 0)
		conn_name(s, c, *fd);
	/* Only a program holding the connection itself needs our FIN. */
	if (!o->prestart && pump_direct(&s->relay)) {
		c->fd = *fd;
		*fd = -1;
	}
	s->running++;
}

/* Take every note the workers sent. */
static void pool_notes(struct server *s)
{
	struct prefork_note note;
	int fd, r;

	while ((r = prefork_recv(s->chan[0], &note, &fd)) > 0) {
		if (note.kind == PREFORK_NOTE_EXECFAIL) {
			if (prefork_failed(&s->pool, note.pid, note.err) == 1)
				tell(s, (struct server_event){.type = SERVER_EV_EXEC,
							      .name = s->o->relay.program,
							      .err = note.err});
		} else if (note.kind == PREFORK_NOTE_ACCEPTED) {
			pool_accepted(s, note.pid, &fd);
		}
		if (fd >= 0)
			close(fd);
	}
	if (r < 0)
		failed(s, "worker notes");
}

/* Ask every ready worker to go; one that accepted meanwhile serves its connection. */
static size_t retire_ready(struct server *s)
{
	size_t n = prefork_retire_ready(&s->pool, s->ends);

	for (size_t i = 0; i < n; i++)
		kill(s->ends[i], SIGWINCH);
	return n;
}

/*
 * SIGUSR2: a new generation. The program is looked up again first: if it
 * is gone the old generation goes on serving. The new workers are forked
 * before the old ready ones are told to go, and the listening sockets are
 * never closed, so a connection meanwhile waits in the backlog at worst.
 */
static void reload(struct server *s)
{
	char name[64];
	size_t old;

	if (!s->pooled) {
		if (!s->told_no_reload++)
			tell(s, (struct server_event){.type = SERVER_EV_RELOAD_NONE});
		return;
	}
	if (s->stopping)
		return;
	if (cmd_find(&s->cmd) < 0) {
		tell(s, (struct server_event){.type = SERVER_EV_RELOAD_FAILED,
					      .name = cmd_name(s->relay.program, name, sizeof name),
					      .err = errno});
		return;
	}
	s->generation++;
	/* Marked first, so the pool forks a whole new generation now... */
	old = prefork_retire_ready(&s->pool, s->ends);
	pool_fill(s);
	/* ...and only then are they told. */
	for (size_t i = 0; i < old; i++)
		kill(s->ends[i], SIGWINCH);
	if (s->o->verbose)
		tell(s, (struct server_event){.type = SERVER_EV_RELOAD,
					      .generation = s->generation,
					      .count = old,
					      .conns = s->pool.busy});
}

/* SIGQUIT: no new connection; the running ones have until stop_by. */
static void graceful_stop(struct server *s, long long now)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	s->stop_by = now + s->o->stop_ms;
	if (s->o->verbose)
		tell(s, (struct server_event){.type = SERVER_EV_STOP, .conns = s->running,
					      .ms = s->o->stop_ms});
	stop_listening(s);
	if (s->pooled)
		retire_ready(s);
}

/* What one wake's signals ask for: the control ones (SIGQUIT, SIGUSR2) in the order they came. */
struct wake {
	int term; /* the first teardown signal, or 0 */
	int chld, usr1;
	int ctl[16];
	size_t nctl;
};

static void read_signals(struct wake *w)
{
	int sig;

	while ((sig = sig_read()) > 0) {
		if (sig_is_term(sig) && !w->term)
			w->term = sig;
		else if (sig == SIGCHLD)
			w->chld = 1;
		else if (sig == SIGUSR1)
			w->usr1 = 1;
		else if ((sig == SIGQUIT || sig == SIGUSR2) &&
			 w->nctl < sizeof w->ctl / sizeof w->ctl[0])
			w->ctl[w->nctl++] = sig;
	}
}

static void control(struct server *s, const struct wake *w, long long now)
{
	for (size_t i = 0; i < w->nctl; i++) {
		if (w->ctl[i] == SIGQUIT)
			graceful_stop(s, now);
		else
			reload(s);
	}
}

/* ---- the loop ---- */

static void on_reaped(struct server *s, pid_t pid, int status)
{
	enum prefork_gone gone =
		s->pooled ? prefork_gone(&s->pool, pid, io_now_ms()) : PREFORK_GONE_NOT_OURS;

	if (gone == PREFORK_GONE_BACKOFF)
		tell(s, (struct server_event){.type = SERVER_EV_BACKOFF,
					      .ms = s->pool.backoff_until - io_now_ms()});
	/* A worker that never served: what is left of its group (a -P program) goes too. */
	if (gone >= PREFORK_GONE_UNSERVED)
		kill(-pid, SIGKILL);
	for (size_t i = 0; i < s->nconns; i++) {
		struct server_conn *c = &s->conns[i];

		if (c->pid != pid)
			continue;
		s->running--;
		if (s->o->verbose)
			tell(s, (struct server_event){.type = SERVER_EV_CONN_END, .name = c->peer,
						      .code = proc_status_code(status)});
		/* FIN after everything the program wrote; then drain the peer. */
		if (c->fd >= 0)
			linger_add(&s->linger, c->fd, LINGER_MS);
		c->fd = -1;
		conn_drop(s, i);
		return;
	}
}

static void reaped_cb(pid_t pid, int status, void *arg)
{
	on_reaped(arg, pid, status);
}

static void reap_all(struct server *s)
{
	int status;
	pid_t pid;

	while ((pid = proc_reap(&status)) > 0) {
		/* A worker's note is queued before it exits: take it first. */
		if (s->pooled)
			pool_notes(s);
		on_reaped(s, pid, status);
	}
}

static void stop_listening(struct server *s)
{
	listener_close(&s->l);
	if (s->o->path)
		unlink(s->o->path);
}

static void release(struct server *s)
{
	cmd_free(&s->cmd);
	ucspi_free(&s->env);
	while (s->nconns)
		conn_drop(s, 0);
	free(s->conns);
	s->conns = NULL;
	linger_free(&s->linger);
	if (s->pooled) {
		prefork_free(&s->pool);
		s->pooled = 0;
		close(s->chan[0]);
		close(s->chan[1]);
	}
	free(s->ends);
	s->ends = NULL;
}

/* End every connection's group and every worker; the room for their pids is kept ahead. */
static int teardown(struct server *s, int sig)
{
	size_t n = 0;

	stop_listening(s);
	if (s->o->verbose)
		tell(s, (struct server_event){.type = SERVER_EV_TEARDOWN, .code = sig,
					      .conns = s->running});
	if (s->pooled)
		n = prefork_pids(&s->pool, s->ends); /* busy ones are in conns too */
	for (size_t i = 0; i < s->nconns; i++) {
		int dup = 0;

		for (size_t k = 0; k < n; k++)
			dup |= s->ends[k] == s->conns[i].pid;
		if (s->conns[i].pid > 0 && !dup)
			s->ends[n++] = s->conns[i].pid;
	}
	proc_end_groups(s->ends, n, s->o->grace_ms, s->sigfd, reaped_cb, s);
	release(s);
	return EXIT_SIGNAL(sig);
}

static int accepting(const struct server *s)
{
	const struct server_opts *o = s->o;
	size_t cap = o->fork ? (o->maxconn ? (size_t)o->maxconn : (size_t)-1) : 1;

	return !s->pooled && s->l.n && s->running < cap;
}

static void accept_one(struct server *s, long long now)
{
	unsigned long failures;
	int fd = listener_accept(&s->l, now, &failures);

	if (fd < 0) {
		if (failures)
			tell(s, (struct server_event){.type = SERVER_EV_ACCEPT, .err = errno,
						      .count = failures});
		return;
	}
	if (!s->o->loop) /* one connection only */
		stop_listening(s);
	server_serve(s, fd);
}

/* Something is left to serve: a listener, a connection, a draining close, a worker. */
static int serving(const struct server *s)
{
	if (s->nconns || s->linger.n)
		return 1;
	if (s->pooled)
		return !s->stopping || s->pool.n > 0;
	return s->l.n > 0;
}

/* One turn's poll set, and where each part of it is. */
struct poll_set {
	struct pollfd *pfd; /* [0] the self-pipe, then linger's, the listeners', the channel */
	size_t cap, n;
	size_t nlin, nl; /* linger's from [1], the listeners' after them */
	int chan_at;	 /* the workers' channel, or -1 */
	long long at;	 /* the deadline of the wait */
};

/*
 * Make ps for this turn: the self-pipe, the closes draining their peers,
 * the listeners while accepting, the workers' channel, and the earliest
 * deadline of them all. Returns 0, or -1 with errno ENOMEM.
 */
static int poll_set(struct server *s, struct poll_set *ps, long long now)
{
	size_t most = 1 + s->linger.n + LISTENER_MAX + 1;

	if (mem_reserve(&ps->pfd, &ps->cap, most, sizeof *ps->pfd, 16) < 0)
		return -1;
	ps->n = ps->nl = 0;
	ps->chan_at = -1;
	ps->pfd[ps->n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
	ps->nlin = linger_pollfds(&s->linger, ps->pfd + ps->n);
	ps->n += ps->nlin;
	ps->at = deadline_in(linger_timeout(&s->linger, now), now);
	if (accepting(s)) {
		ps->nl = listener_pollfds(&s->l, ps->pfd + ps->n, now);
		ps->n += ps->nl;
		ps->at = deadline_earlier(ps->at, deadline_in(listener_timeout(&s->l, now), now));
	}
	if (s->pooled) {
		ps->chan_at = (int)ps->n;
		ps->pfd[ps->n++] = (struct pollfd){.fd = s->chan[0], .events = POLLIN};
		ps->at = deadline_earlier(ps->at, deadline_in(prefork_timeout(&s->pool, now), now));
		if (s->fork_pause_until > now)
			ps->at = deadline_earlier(ps->at, s->fork_pause_until);
	}
	if (s->stopping)
		ps->at = deadline_earlier(ps->at, s->stop_by);
	return 0;
}

/*
 * Act on what the poll found. Returns 0, or the signal to tear down for:
 * a teardown signal, or SIGQUIT when a graceful stop ran out of time.
 */
static int after_poll(struct server *s, const struct poll_set *ps)
{
	struct wake w = {0};
	long long now;
	pid_t pid;

	if (ps->pfd[0].revents)
		read_signals(&w);
	if (w.term)
		return w.term;
	if (ps->chan_at >= 0 && ps->pfd[ps->chan_at].revents)
		pool_notes(s);
	if (w.chld)
		reap_all(s);
	now = io_now_ms();
	control(s, &w, now);
	if (s->stopping && now >= s->stop_by && serving(s))
		return SIGQUIT; /* out of time: the prompt way */
	if (w.usr1)
		tell(s, (struct server_event){.type = SERVER_EV_STATUS, .conns = s->running,
					      .pool = s->pooled ? &s->pool : NULL});
	if (s->pooled) {
		while ((pid = prefork_retire(&s->pool, now)) > 0)
			kill(pid, SIGWINCH);
	}
	linger_handle(&s->linger, ps->pfd + 1, ps->nlin, now);
	for (size_t k = 1 + ps->nlin; k < 1 + ps->nlin + ps->nl; k++)
		if (ps->pfd[k].revents) {
			accept_one(s, now);
			break;
		}
	return 0;
}

int server_run(struct server *s)
{
	struct poll_set ps = {.pfd = NULL};
	int sig = 0;

	while (!sig && serving(s)) {
		long long now;

		if (s->pooled)
			pool_fill(s);
		now = io_now_ms();
		if (poll_set(s, &ps, now) < 0) {
			failed(s, "poll set");
			sig = SIGTERM;
		} else if (poll(ps.pfd, (nfds_t)ps.n, deadline_timeout(ps.at, now)) < 0 &&
			   errno != EINTR) {
			failed(s, "poll");
			sig = SIGTERM;
		} else {
			sig = after_poll(s, &ps);
		}
	}
	free(ps.pfd);
	if (sig)
		return teardown(s, sig);
	release(s);
	return s->stopping ? EXIT_SIGNAL(SIGQUIT) : s->status;
}
