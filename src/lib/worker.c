#define _GNU_SOURCE /* EPOLLEXCLUSIVE */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "err.h"
#include "sig.h"
#include "spawn.h"
#include "ucspi.h"

/* What wait_accept returns without a connection. */
enum { WAIT_FAILED = -1, WAIT_RETIRE = -2 };

/* Asked to go before a connection came: a prestarted program goes too. Returns the exit status. */
static int retire(pid_t prog, int in, int out)
{
	if (prog > 0) {
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
		kill(prog, SIGTERM); /* the master ends what is left of our group */
	}
	return 0;
}

/*
 * Wait for a connection on the shared listening sockets. Each worker has an
 * epoll set of its own with every socket in it as EPOLLEXCLUSIVE, so a
 * connection wakes one waiting worker, not all of them, however many
 * sockets and workers there are. The worker's own self-pipe is in the set
 * too: a retire signal that comes between a check and the wait leaves a
 * byte there and ends the wait. A worker always tries to accept before it
 * retires, so a wake-up meant for it is never dropped with the connection
 * left waiting. Returns the connection, WAIT_RETIRE, or WAIT_FAILED (errno).
 */
static int wait_accept(struct listener *l, int ep, pid_t *prog)
{
	for (;;) {
		struct epoll_event ev[LISTENER_MAX + 1];
		unsigned long report;
		/* Never paused here (a resource failure ends the worker): no clock needed. */
		int fd = listener_accept(l, 0, &report), sig, st;

		if (fd >= 0)
			return fd;
		if (errno != EAGAIN)
			return WAIT_FAILED;
		while ((sig = sig_read()) > 0) {
			if (sig == SIGWINCH)
				return WAIT_RETIRE;
			/* SIGCHLD: a -P program ended; its output, if any, waits in the pipe. */
			if (*prog > 0 && waitpid(*prog, &st, WNOHANG) == *prog)
				*prog = 0;
		}
		if (epoll_wait(ep, ev, LISTENER_MAX + 1, -1) < 0 && errno != EINTR)
			return WAIT_FAILED;
	}
}

/* The listening sockets, each EPOLLEXCLUSIVE, and the self-pipe sigfd. */
static int epoll_of(const struct listener *l, int sigfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event pipe_in = {.events = EPOLLIN, .data.u32 = (unsigned)l->n};

	if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, sigfd, &pipe_in) < 0) {
		close(ep);
		return -1;
	}
	for (size_t i = 0; ep >= 0 && i < l->n; i++) {
		struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (unsigned)i};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd[i], &e) < 0) {
			close(ep);
			ep = -1;
		}
	}
	return ep;
}

static void notify(int chan, pid_t pid, enum prefork_kind kind, int err, int fd)
{
	struct prefork_note note = {.pid = pid, .kind = kind, .err = err};

	prefork_send(chan, &note, fd);
}

/* What the master holds that a worker must not: its ends of things. */
static void close_masters(struct server *s)
{
	close(s->chan[0]);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	/* Closed, not freed: freeing writes to pages this fresh process shares. */
	for (size_t i = 0; i < s->linger.n; i++)
		close(s->linger.v[i].fd);
	s->linger.n = 0;
}

int worker_run(struct server *s)
{
	const struct server_opts *o = s->o;
	const struct relay *r = &s->relay;
	int chan = s->chan[1], fd, in = -1, out = -1, fds[3], failed = 0, ep, sigfd;
	struct pump *pump = NULL;
	pid_t prog = 0, self = getpid();

	close_masters(s);
	/*
	 * SIGWINCH asks a ready worker to retire (a program ignores it by
	 * default, should one come after the exec); SIGCHLD tells a -P worker
	 * its program ended. SIGPIPE stays at its default, for the program.
	 */
	sigfd = sig_catch(SIG_BIT(SIGWINCH) | (o->prestart ? SIG_BIT(SIGCHLD) : 0));
	if (sigfd < 0 || (ep = epoll_of(&s->l, sigfd)) < 0)
		return EXIT_RUNTIME;
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
	fd = wait_accept(&s->l, ep, &prog);
	close(ep);
	if (fd == WAIT_RETIRE)
		return retire(prog, in, out);
	if (fd < 0)
		return EXIT_RUNTIME; /* EMFILE and the like: the master sees a worker die */
	listener_close(&s->l);
	if (failed) {
		notify(chan, self, PREFORK_NOTE_ACCEPTED, 0, fd);
		close(fd);
		return EXIT_RUNTIME;
	}
	/* Tell the master at once, so it knows we are busy. The master wants a copy of
	 * the connection for -v and for the graceful close; a relay closes gracefully
	 * itself, so without -v the copy would only cost. */
	notify(chan, self, PREFORK_NOTE_ACCEPTED, 0,
	       o->verbose || (!o->prestart && pump_direct(r)) ? fd : -1);
	if (o->prestart)
		return pump_relay(r, pump, fd, in, out, prog);
	ucspi_conn(&s->env, fd);
	if (!pump_direct(r))
		return pump_child(r, fd, &s->env.env);
	/* As the server's direct mode: the program's descriptors are the connection itself.
	 * Its command and environment were made ready before the accept. */
	if (r->ronly)
		shutdown(fd, SHUT_WR);
	ucspi_fds(fd, r->ronly, r->wonly, fds);
	if (spawn_place_fds(fds[0], fds[1], fds[2]) == 0)
		cmd_exec(&s->cmd, s->env.envp);
	notify(chan, self, PREFORK_NOTE_EXECFAIL, errno, -1);
	return EXIT_EXEC;
}
