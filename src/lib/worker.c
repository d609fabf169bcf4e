#define _GNU_SOURCE /* accept4 */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * Wait for a connection on the shared listener. On one socket a blocking
 * accept(2) wakes one waiter per connection (the kernel queues accepting
 * processes exclusively), so N workers cause no thundering herd; several
 * sockets are polled. Returns the connection, or exits.
 */
static int wait_accept(const struct listener *l, pid_t *prog)
{
	for (;;) {
		struct pollfd pfd[LISTENER_MAX];

		if (worker_retire)
			_exit(0);
		if (worker_chld && *prog > 0) {
			int st;
			worker_chld = 0;
			if (waitpid(*prog, &st, WNOHANG) == *prog)
				*prog = 0; /* its output, if any, waits in the pipe */
		}
		for (size_t i = 0; i < l->n; i++) {
			int fd = accept4(l->fd[i], NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				return fd;
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				break;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				_exit(EXIT_RUNTIME); /* EMFILE and the like: the master sees a worker die */
		}
		if (worker_retire || worker_chld)
			continue;
		/* Non-blocking sockets (several, or someone set O_NONBLOCK): wait for one. */
		for (size_t i = 0; i < l->n; i++)
			pfd[i] = (struct pollfd){.fd = l->fd[i], .events = POLLIN};
		poll(pfd, l->n, -1);
	}
}

static void notify(int chan, pid_t pid, int kind, int err, int fd)
{
	struct prefork_note note = {.pid = pid, .kind = kind, .err = err};

	prefork_send(chan, &note, fd);
}

void worker_run(struct server *s)
{
	const struct server_opts *o = s->o;
	const struct relay *r = &o->relay;
	struct sigaction sa;
	int chan = s->chan[1], fd, in = -1, out = -1, fds[3], failed = 0;
	struct pump *pump = NULL;
	pid_t prog = 0, self = getpid();

	setpgid(0, 0);
	sig_child_reset();
	close(s->chan[0]);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	linger_free(&s->linger);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the signal must interrupt accept */
	sigaction(SIGWINCH, &sa, NULL);
	if (o->prestart) {
		/* Allocated and touched now: page faults off the connection's path. */
		pump = malloc(sizeof *pump);
		if (pump)
			memset(pump, 0, sizeof *pump);
		sigaction(SIGCHLD, &sa, NULL);
		prog = pump_spawn(r, &s->env.env, &in, &out);
		if (prog < 0) {
			notify(chan, self, PREFORK_NOTE_EXECFAIL, errno, -1);
			prog = 0;
			failed = 1;
		}
	}
	fd = wait_accept(&s->l, &prog);
	listener_close(&s->l);
	if (failed) {
		notify(chan, self, PREFORK_NOTE_ACCEPTED, 0, fd);
		close(fd);
		_exit(EXIT_RUNTIME);
	}
	/* Tell the master at once, so the replacement forks while we serve. The master
	 * wants a copy of the connection for -v and for the graceful close; a relay
	 * closes gracefully itself, so without -v the copy would only cost. */
	notify(chan, self, PREFORK_NOTE_ACCEPTED, 0, o->verbose || !(o->prestart || r->crlf) ? fd : -1);
	if (o->prestart)
		pump_relay(r, pump, fd, in, out, prog);
	proc_ucspi_conn(&s->env, fd);
	if (r->crlf)
		pump_child(r, fd, &s->env.env);
	/* As the server's direct mode: the program's descriptors are the connection itself. */
	if (r->ronly)
		shutdown(fd, SHUT_WR);
	proc_conn_fds(fd, r->ronly, r->wonly, fds);
	if (proc_child_setup(fds[0], fds[1], fds[2], &s->env.env, 0) == 0)
		proc_exec_cmd_at(r->program, o->exec_path);
	notify(chan, self, PREFORK_NOTE_EXECFAIL, errno, -1);
	_exit(127);
}
