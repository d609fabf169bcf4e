#define _GNU_SOURCE /* epoll_pwait, EPOLLEXCLUSIVE */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "sig.h"

/*
 * A worker's flags: SIGWINCH asks a ready worker to retire (a program
 * ignores it by default, should one arrive after the exec); SIGCHLD tells
 * a -P worker its program ended. Process-wide by nature: a handler can
 * reach nothing else, and a worker is a process of its own.
 */
static volatile sig_atomic_t worker_retire, worker_chld;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		worker_retire = 1;
	else
		worker_chld = 1;
}

/* Asked to go before a connection came: a prestarted program goes too. */
static _Noreturn void retire(pid_t prog, int in, int out)
{
	if (prog > 0) {
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		kill(prog, SIGTERM); /* the master ends what is left of our group */
	}
	_exit(0);
}

/*
 * Wait for a connection on the shared listening sockets. Each worker has an
 * epoll set of its own with every socket in it as EPOLLEXCLUSIVE, so a
 * connection wakes one waiting worker, not all of them, however many
 * sockets and workers there are. The retire signal is blocked except
 * inside epoll_pwait, so it cannot slip in between a check and the wait;
 * and a worker always tries to accept before it retires, so a wake-up
 * meant for it is never dropped with the connection left waiting.
 * Returns the connection, or exits.
 */
static int wait_accept(struct listener *l, int ep, const sigset_t *waitmask, pid_t *prog, int in,
		       int out)
{
	for (;;) {
		struct epoll_event ev[LISTENER_MAX];
		unsigned long report;
		/* Never paused here (a resource failure ends the worker): no clock needed. */
		int fd = listener_accept(l, 0, &report);

		if (fd >= 0)
			return fd;
		if (errno != EAGAIN)
			_exit(EXIT_RUNTIME); /* EMFILE and the like: the master sees a worker die */
		if (worker_retire)
			retire(*prog, in, out);
		if (worker_chld && *prog > 0) {
			int st;
			worker_chld = 0;
			if (waitpid(*prog, &st, WNOHANG) == *prog)
				*prog = 0; /* its output, if any, waits in the pipe */
		}
		if (epoll_pwait(ep, ev, LISTENER_MAX, -1, waitmask) < 0 && errno != EINTR)
			_exit(EXIT_RUNTIME);
	}
}

static int epoll_of(const struct listener *l)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	for (size_t i = 0; ep >= 0 && i < l->n; i++) {
		struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (unsigned)i};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd[i], &e) < 0) {
			close(ep);
			ep = -1;
		}
	}
	return ep;
}

static void notify(int chan, pid_t pid, int kind, int err, int fd)
{
	struct prefork_note note = {.pid = pid, .kind = kind, .err = err};

	prefork_send(chan, &note, fd);
}

/* What the master holds that a worker must not: its ends of things. */
static void close_masters(struct server *s)
{
	close(s->chan[0]);
	if (s->ctlfd >= 0)
		close(s->ctlfd);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	/* Closed, not freed: freeing writes to pages this fresh process shares. */
	for (size_t i = 0; i < s->linger.n; i++)
		close(s->linger.v[i].fd);
	s->linger.n = 0;
}

void worker_run(struct server *s)
{
	const struct server_opts *o = s->o;
	const struct relay *r = &s->relay;
	struct sigaction sa;
	sigset_t block, waitmask;
	int chan = s->chan[1], fd, in = -1, out = -1, fds[3], failed = 0, ep;
	struct pump *pump = NULL;
	pid_t prog = 0, self = getpid();

	setpgid(0, 0);
	sig_child_reset();
	close_masters(s);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the signal must end the wait */
	sigaction(SIGWINCH, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGWINCH);
	if (o->prestart) {
		sigaction(SIGCHLD, &sa, NULL);
		sigaddset(&block, SIGCHLD);
	}
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	if ((ep = epoll_of(&s->l)) < 0)
		_exit(EXIT_RUNTIME);
	if (o->prestart) {
		/*
		 * Allocated now, not on the connection's path; its buffers' pages are
		 * touched only as far as a connection uses them.
		 */
		pump = malloc(sizeof *pump);
		prog = pump_spawn(r, &s->env.env, &in, &out);
		if (prog < 0) {
			notify(chan, self, PREFORK_NOTE_EXECFAIL, errno, -1);
			prog = 0;
			failed = 1;
		}
	}
	fd = wait_accept(&s->l, ep, &waitmask, &prog, in, out);
	close(ep);
	listener_close(&s->l);
	if (failed) {
		notify(chan, self, PREFORK_NOTE_ACCEPTED, 0, fd);
		close(fd);
		_exit(EXIT_RUNTIME);
	}
	/* Tell the master at once, so it knows we are busy. The master wants a copy of
	 * the connection for -v and for the graceful close; a relay closes gracefully
	 * itself, so without -v the copy would only cost. */
	notify(chan, self, PREFORK_NOTE_ACCEPTED, 0,
	       o->verbose || (!o->prestart && pump_direct(r)) ? fd : -1);
	if (o->prestart)
		pump_relay(r, pump, fd, in, out, prog);
	proc_ucspi_conn(&s->env, fd);
	if (!pump_direct(r))
		pump_child(r, fd, &s->env.env);
	/* As the server's direct mode: the program's descriptors are the connection itself.
	 * Its command and environment were made ready before the accept. */
	if (r->ronly)
		shutdown(fd, SHUT_WR);
	proc_conn_fds(fd, r->ronly, r->wonly, fds);
	sigprocmask(SIG_SETMASK, &waitmask, NULL);
	if (proc_place_fds(fds[0], fds[1], fds[2]) == 0)
		proc_cmd_exec(&s->cmd, s->env.envp);
	notify(chan, self, PREFORK_NOTE_EXECFAIL, errno, -1);
	_exit(127);
}
