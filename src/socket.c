/*
 * socket: connect a TCP or UNIX stream socket to stdin/stdout, or serve a
 * program per connection. A fixed successor of Juergen Nickelsen's
 * socket-1.1: same options, no lost bytes around half-close.
 */
#define _GNU_SOURCE /* accept4 in the workers */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/err.h"
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/prefork.h"
#include "lib/proc.h"
#include "lib/pump.h"
#include "lib/sig.h"

#define LINGER_MS 2000 /* how long a finished connection may drain the peer's bytes */
#define GRACE_MS 5000  /* SIGTERM to SIGKILL at teardown, unless -g */
#define IDLE_MS 10000  /* -I: an idle worker beyond the -W minimum retires */
#define WORKERS_MAX 4096

static const char usage_text[] =
	"usage: socket [-bcfqrvw] [-p command] [-B local address] [-L file] host port\n"
	"       socket [-bcfqrvw] [-p command] [-L file] /path\n"
	"       socket [-bcfqrvw] [-p command] [-B local address] [-C max] [-g secs] [-L file]\n"
	"              -s [-l] port\n"
	"       socket [-bcfqrvw] [-p command] [-C max] [-g secs] [-L file] -s [-l] /path\n"
	"       socket [-bcfqrvw] [-P] [-I secs] [-g secs] [-B local address] [-C max] [-L file]\n"
	"              -W n | -W min:max -p command -s port | /path\n"
	"       socket -version | -help\n"
	"\n"
	"  -b      background once ready; print the daemon's PID\n"
	"  -B ADDR bind to this local address\n"
	"  -c      convert LF to CRLF towards the socket and CRLF to LF from it\n"
	"  -C MAX  with -f or -W, serve at most MAX connections at once\n"
	"  -f      fork: serve each connection in a child process\n"
	"  -g SECS at teardown, SIGKILL what SIGTERM left after SECS (default 5)\n"
	"  -I SECS with -W MIN:MAX, a ready worker beyond MIN idle SECS retires (default 10)\n"
	"  -l      loop: keep accepting connections (needs -s)\n"
	"  -L FILE diagnostics to FILE instead of syslog once backgrounded\n"
	"  -p CMD  run CMD with the connection as its stdin, stdout and stderr\n"
	"  -P      with -W, each ready worker has CMD already started (prestart)\n"
	"  -q      close the connection at once when stdin ends\n"
	"  -r      read only: nothing is sent to the socket\n"
	"  -s      server: listen on port or path\n"
	"  -v      report events on stderr\n"
	"  -w      write only: nothing received is passed on\n"
	"  -W N    keep N preforked workers ready to accept (implies -l; needs -p)\n"
	"  -W MIN:MAX\n"
	"          at least MIN ready, at most MAX alive; ramp up under load, retire idle ones\n";

static const char synopsis[] =
	"socket [-bcfqrvw] [-p command] [-B address] [-W n|min:max] [-s [-l]] host port | /path";

struct opts {
	int background, crlf, fork, loop, quit, ronly, wonly, server, verbose;
	long maxconn; /* -C; 0: unlimited */
	long grace_ms;			/* -g */
	long wmin, wmax;		/* -W: 0 without; wmax 0 for a fixed N */
	long idle_ms;			/* -I */
	int prestart, idle_set;		/* -P; -I given */
	const char *program, *bindaddr, *logfile;
	const char *host, *port, *path; /* path set: UNIX socket */
	int activated;			/* serving systemd's fd 3 */
};

/* A connection being served, or a finished one draining the peer. */
struct conn {
	pid_t pid;	     /* handler or program; 0 once reaped */
	int fd;		     /* kept for the lingering close, or -1 */
	long long linger_by; /* draining until this time; 0 while the child runs */
	char peer[NET_IPLEN + NET_PORTLEN + 2];
};

struct server {
	const struct opts *o;
	int lfd, sigfd;
	int unlink_path; /* we created the UNIX socket file */
	struct conn *conns;
	size_t nconns, cap;
	size_t running; /* conns with a live child */
	int status;	/* exit status when not looping */
	/* -W: the preforked workers and the channel they report on */
	int pooled;
	struct prefork pool;
	int chan[2];
	long long fork_pause_until; /* fork(2) failed: try again later */
	const char *exec_path;	    /* the program as found in PATH at start, or NULL */
};

static int has_env_activation(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long v;

	return pid && fds && opt_long(pid, 1, 0x7fffffff, &v) == 0 && v == (long)getpid() &&
	       strcmp(fds, "1") == 0;
}

/* -W N or -W MIN:MAX */
static void parse_workers(const char *arg, struct opts *o)
{
	const char *colon = strchr(arg, ':');
	char min[24];
	size_t len;

	if (!colon) {
		o->wmin = opt_long_or_die(arg, 1, WORKERS_MAX, "-W", synopsis);
		o->wmax = 0;
		return;
	}
	len = (size_t)(colon - arg);
	if (len >= sizeof min)
		len = sizeof min - 1;
	memcpy(min, arg, len);
	min[len] = '\0';
	if (opt_long(min, 1, WORKERS_MAX, &o->wmin) < 0 ||
	    opt_long(colon + 1, 1, WORKERS_MAX, &o->wmax) < 0)
		err_usage(synopsis, "-W: '%s' is not N or MIN:MAX (each 1-%d)", arg, WORKERS_MAX);
	if (o->wmax < o->wmin)
		err_usage(synopsis, "-W: MIN %ld is above MAX %ld", o->wmin, o->wmax);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const char optstring[] = "B:bC:cfg:hI:L:lPp:qrsVvW:w";
	int c, nops;

	while ((c = opt_next(argc, argv, optstring, usage_text)) != -1) {
		switch (c) {
		case 'B': o->bindaddr = optarg; break;
		case 'b': o->background = 1; break;
		case 'C': o->maxconn = opt_long_or_die(optarg, 1, 1000000, "-C", synopsis); break;
		case 'c': o->crlf = 1; break;
		case 'f': o->fork = 1; break;
		case 'g':
			o->grace_ms = opt_ms_or_die(optarg, 1, 3600000L, "-g", synopsis);
			break;
		case 'I':
			o->idle_ms = opt_ms_or_die(optarg, 1, 86400000L, "-I", synopsis);
			o->idle_set = 1;
			break;
		case 'L': o->logfile = optarg; break;
		case 'l': o->loop = 1; break;
		case 'p': o->program = optarg; break;
		case 'P': o->prestart = 1; break;
		case 'q': o->quit = 1; break;
		case 'r': o->ronly = 1; break;
		case 's': o->server = 1; break;
		case 'v': o->verbose = 1; break;
		case 'w': o->wonly = 1; break;
		case 'W': parse_workers(optarg, o); break;
		default: opt_bad(argv, optstring, synopsis);
		}
	}
	argv += optind;
	nops = argc - optind;

	if (o->loop && !o->server)
		err_usage(synopsis, "-l needs -s");
	if (o->ronly && o->wonly)
		err_usage(synopsis, "-r and -w exclude each other");
	if (o->fork && !o->server)
		err_usage(synopsis, "-f needs -s");
	if (o->wmin) {
		if (!o->server)
			err_usage(synopsis, "-W needs -s");
		if (!o->program)
			err_usage(synopsis, "-W needs -p: workers run a program");
		if (o->maxconn && o->maxconn < o->wmin)
			err_usage(synopsis, "-C %ld is below the -W minimum %ld", o->maxconn,
				    o->wmin);
		o->loop = 1;
	}
	if (o->prestart && !o->wmin)
		err_usage(synopsis, "-P needs -W");
	if (o->idle_set && !o->wmax)
		err_usage(synopsis, "-I needs -W MIN:MAX");
	if (o->maxconn && !o->fork && !o->wmin)
		err_usage(synopsis, "-C needs -f"); /* or -W */
	if (o->program && !*o->program)
		err_usage(synopsis, "-p: empty command");

	o->activated = o->server && has_env_activation();
	if (o->activated) /* ours now: kept through backgrounding, not passed to programs */
		io_set_cloexec(3, 1);
	if (o->server) {
		if (nops > 1)
			err_usage(synopsis, "too many operands");
		if (nops == 0 && !o->activated)
			err_usage(synopsis, "missing port or path");
		if (nops == 1) {
			if (net_is_path(argv[0]))
				o->path = argv[0];
			else
				o->port = argv[0];
		}
	} else if (nops == 1 && net_is_path(argv[0])) {
		o->path = argv[0];
	} else if (nops == 2) {
		o->host = argv[0];
		o->port = argv[1];
	} else {
		err_usage(synopsis, nops < 2 ? "missing operand" : "too many operands");
	}

	if (o->path && o->bindaddr)
		err_usage(synopsis, "-B does not apply to a UNIX socket");
	if (o->path && net_check_path(o->path) < 0)
		err_usage(synopsis, "%s: path longer than a UNIX socket allows (%zu bytes)",
			    o->path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (o->port && net_check_port(o->port) < 0) {
		if (errno == ENOENT)
			err_usage(synopsis, "%s: unknown service", o->port);
		err_usage(synopsis, "%s: bad port (0-65535 or a service name)", o->port);
	}
	if (o->host && !*o->host)
		err_usage(synopsis, "empty host");
}

/* ---- what a connection's child becomes ---- */

static void env_for(int fd, int family, char bufs[5][96], char *set[6])
{
	char lip[NET_IPLEN], lport[NET_PORTLEN], rip[NET_IPLEN], rport[NET_PORTLEN];
	int n = 0;

	if (family == AF_UNIX) {
		snprintf(bufs[0], 96, "PROTO=UNIX");
		set[n++] = bufs[0];
		set[n] = NULL;
		return;
	}
	net_name(fd, 0, lip, lport);
	net_name(fd, 1, rip, rport);
	snprintf(bufs[0], 96, "PROTO=TCP");
	snprintf(bufs[1], 96, "TCPLOCALIP=%s", lip);
	snprintf(bufs[2], 96, "TCPLOCALPORT=%s", lport);
	snprintf(bufs[3], 96, "TCPREMOTEIP=%s", rip);
	snprintf(bufs[4], 96, "TCPREMOTEPORT=%s", rport);
	for (n = 0; n < 5; n++)
		set[n] = bufs[n];
	set[n] = NULL;
}

static const char *const unset_vars[] = {"LISTEN_PID",	 "LISTEN_FDS",	 "LISTEN_FDNAMES",
					  "TCPLOCALIP",	 "TCPLOCALPORT", "TCPREMOTEIP",
					  "TCPREMOTEPORT", NULL};

/* Read and drop what the peer still sends, for at most ms, so close() sends no reset. */
static void drain_peer(int fd, long ms)
{
	long long by = io_now_ms() + ms;
	char buf[4096];

	for (;;) {
		long long left = by - io_now_ms();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};

		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		/* EOF must end it too: errno is stale then, and the loop would spin. */
		r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			return;
	}
}

/*
 * Start the program a relay talks to: *in gets the pipe carrying its output,
 * *out the one to its input (-1 where -r or -w leaves a direction out).
 * Returns its pid, or -1 with errno set (nothing left open).
 */
static pid_t relay_spawn(const struct opts *o, const struct proc_env *env, int *in, int *out)
{
	int to_prog[2] = {-1, -1}, from_prog[2] = {-1, -1}, saved;
	pid_t prog;

	if ((!o->wonly && io_pipe(to_prog) < 0) || (!o->ronly && io_pipe(from_prog) < 0))
		goto out_close;
	prog = proc_spawn(o->program, o->wonly ? STDIN_FILENO : to_prog[0],
			  o->ronly ? STDOUT_FILENO : from_prog[1],
			  o->ronly ? STDERR_FILENO : from_prog[1], env, 0);
	if (prog < 0)
		goto out_close;
	if (to_prog[0] >= 0)
		close(to_prog[0]);
	if (from_prog[1] >= 0)
		close(from_prog[1]);
	/* Our ends only: a blocking write of a full chunk into a pipe whose reader is
	 * itself blocked writing to us would deadlock the pump. */
	if (to_prog[1] >= 0)
		io_set_nonblock(to_prog[1], 1);
	if (from_prog[0] >= 0)
		io_set_nonblock(from_prog[0], 1);
	*in = from_prog[0];
	*out = to_prog[1];
	return prog;
out_close:
	saved = errno;
	for (int i = 0; i < 2; i++) {
		if (to_prog[i] >= 0)
			close(to_prog[i]);
		if (from_prog[i] >= 0)
			close(from_prog[i]);
	}
	errno = saved;
	return -1;
}

/*
 * Relay between the connection and in/out (the program's pipes, or our own
 * stdin/stdout) until the program's output ends, then close the connection
 * gracefully and wait for the program (prog 0: none, or already reaped).
 */
static _Noreturn void relay_run(const struct opts *o, struct pump *p, int conn, int in, int out,
				pid_t prog)
{
	int sig;

	if (!p)
		err_die(EXIT_RUNTIME, "relay:");
	/* A self-pipe of our own: the server's would mix our SIGCHLD into its own. */
	sig_child_reset();
	p->sigfd = sig_init(0);
	pump_flow_init(&p->flow[0], o->wonly ? -1 : conn, o->wonly ? -1 : out,
		       o->crlf ? PUMP_CRLF_TO_LF : PUMP_RAW);
	pump_flow_init(&p->flow[1], o->ronly ? -1 : in, o->ronly ? -1 : conn,
		       o->crlf ? PUMP_LF_TO_CRLF : PUMP_RAW);
	if (o->wonly) /* still read the peer, so closing never resets it */
		pump_flow_init(&p->flow[0], conn, -1, PUMP_RAW);
	if (o->ronly) /* nothing will ever be sent: say so at once */
		shutdown(conn, SHUT_WR);
	/* With a program, its output ending ends the connection; else -q's rule. */
	p->stop_mask = o->program && !o->ronly ? 2u : o->quit ? 2u : 0u;
	sig = pump_run(p);
	if (sig)
		_exit(EXIT_SIGNAL(sig));
	if (p->flow[1].out >= 0)
		shutdown(conn, SHUT_WR);
	drain_peer(conn, LINGER_MS);
	close(conn);
	if (prog > 0) {
		int st;
		if (p->flow[0].out >= 0)
			close(p->flow[0].out);
		while (waitpid(prog, &st, 0) < 0 && errno == EINTR)
			;
	}
	_exit(0);
}

/*
 * The relay for -c (and for the plain stdin/stdout server): runs in the
 * connection's child, which leads the process group.
 */
static _Noreturn void relay_child(const struct opts *o, int conn, const struct proc_env *env)
{
	int in = STDIN_FILENO, out = STDOUT_FILENO;
	pid_t prog = 0;

	/* The server's handlers must not run in here while the program starts. */
	sig_child_reset();
	if (o->program) {
		prog = relay_spawn(o, env, &in, &out);
		if (prog < 0)
			err_die(EXIT_RUNTIME, "exec %s:", o->program);
	}
	relay_run(o, calloc(1, sizeof(struct pump)), conn, in, out, prog);
}

/* ---- the server's bookkeeping ---- */

static struct conn *conn_add(struct server *s)
{
	if (mem_reserve(&s->conns, &s->cap, s->nconns + 1, sizeof *s->conns, 16) < 0)
		return NULL;
	return memset(&s->conns[s->nconns++], 0, sizeof(struct conn));
}

static void conn_drop(struct server *s, size_t i)
{
	if (s->conns[i].fd >= 0)
		close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->nconns];
}

/* Name the peer of fd in c for -v, and say it; returns the address family. */
static int conn_name(const struct server *s, struct conn *c, int fd)
{
	char lip[NET_IPLEN], lport[NET_PORTLEN];
	int family = net_name(fd, 0, lip, lport);

	if (family == AF_UNIX) {
		snprintf(c->peer, sizeof c->peer, "UNIX");
	} else {
		char rip[NET_IPLEN], rport[NET_PORTLEN];
		net_name(fd, 1, rip, rport);
		snprintf(c->peer, sizeof c->peer, "%s %s", rip, rport);
	}
	if (s->o->verbose)
		err_warn("connection from %s", c->peer);
	return family;
}

/* Start serving fd: the program itself, or a relay child. The conn keeps fd when the
 * program holds it directly, for the lingering close. */
static void serve(struct server *s, int fd)
{
	const struct opts *o = s->o;
	char bufs[5][96], *set[6];
	struct proc_env env = {set, unset_vars};
	struct conn *c = conn_add(s);
	int family;
	pid_t pid;

	if (!c) {
		err_warn("connection dropped:");
		close(fd);
		return;
	}
	c->fd = -1;
	family = conn_name(s, c, fd);
	env_for(fd, family, bufs, set);

	if (o->program && !o->crlf) {
		/* No relay: the program's descriptors are the connection itself. */
		int in = o->wonly ? STDIN_FILENO : fd;
		int out = o->ronly ? STDOUT_FILENO : fd;
		int errfd = o->ronly ? STDERR_FILENO : fd;

		if (o->ronly)
			shutdown(fd, SHUT_WR);
		pid = proc_spawn(o->program, in, out, errfd, &env, PROC_NEWPGRP);
		if (pid < 0) {
			err_warn("exec %s:", o->program);
			s->status = EXIT_RUNTIME;
			conn_drop(s, s->nconns - 1);
			close(fd);
			return;
		}
		c->pid = pid;
		c->fd = fd;
	} else {
		pid = fork();
		if (pid < 0) {
			err_warn("fork:");
			conn_drop(s, s->nconns - 1);
			close(fd);
			return;
		}
		if (pid == 0) {
			setpgid(0, 0);
			if (s->lfd >= 0)
				close(s->lfd);
			/* Other connections' lingering copies are not ours to hold. */
			for (size_t i = 0; i + 1 < s->nconns; i++)
				if (s->conns[i].fd >= 0)
					close(s->conns[i].fd);
			relay_child(o, fd, &env);
		}
		setpgid(pid, pid);
		close(fd);
		c->pid = pid;
	}
	s->running++;
}

static void on_reaped(struct server *s, pid_t pid, int status)
{
	if (s->pooled && prefork_gone(&s->pool, pid, io_now_ms()) == 2)
		err_warn("workers end faster than %d a second without serving; "
		      "pausing forks for %lld ms", PREFORK_DEATHS,
		      s->pool.backoff_until - io_now_ms());
	for (size_t i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (c->pid != pid)
			continue;
		c->pid = 0;
		s->running--;
		if (s->o->verbose)
			err_warn("connection from %s closed, status %d", c->peer,
			      proc_status_code(status));
		if (c->fd < 0) {
			conn_drop(s, i);
		} else {
			/* FIN after everything the program wrote; then drain the peer. */
			shutdown(c->fd, SHUT_WR);
			c->linger_by = io_now_ms() + LINGER_MS;
		}
		return;
	}
}

static void pool_notes(struct server *s);

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

static void reaped_cb(pid_t pid, int status, void *arg)
{
	on_reaped(arg, pid, status);
}

static _Noreturn void teardown(struct server *s, int sig)
{
	size_t room = s->nconns + (s->pooled ? s->pool.n : 0) + 1;
	pid_t *pids = calloc(room, sizeof *pids);
	size_t n = 0;

	if (s->lfd >= 0)
		close(s->lfd);
	if (s->unlink_path)
		unlink(s->o->path);
	if (s->o->verbose)
		err_warn("signal %d: ending %zu connection(s)", sig, s->running);
	if (s->pooled) {
		/* Every worker, busy or ready, leads a group: the busy ones are in conns too. */
		if (pids)
			n = prefork_pids(&s->pool, pids);
		prefork_free(&s->pool);
		s->pooled = 0;
		close(s->chan[0]);
		close(s->chan[1]);
	}
	for (size_t i = 0; pids && i < s->nconns; i++) {
		int dup = 0;
		for (size_t k = 0; k < n; k++)
			dup |= pids[k] == s->conns[i].pid;
		if (s->conns[i].pid > 0 && !dup)
			pids[n++] = s->conns[i].pid;
	}
	proc_end_groups(pids, n, s->o->grace_ms, s->sigfd, reaped_cb, s);
	free(pids);
	while (s->nconns)
		conn_drop(s, 0);
	free(s->conns);
	exit(EXIT_SIGNAL(sig));
}

/* Drain finished connections that poll found readable; drop the expired. */
static int linger_step(struct server *s, const struct pollfd *pfd, size_t n)
{
	long long now = io_now_ms();
	int timeout = -1;

	for (size_t k = 0; k < n; k++) {
		if (!pfd[k].revents)
			continue;
		for (size_t i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];
			char buf[4096];
			ssize_t r;

			if (!c->linger_by || c->fd != pfd[k].fd)
				continue;
			r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				c->linger_by = now; /* the peer closed: done */
			break;
		}
	}
	for (size_t i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (!c->linger_by)
			continue;
		if (c->linger_by <= now) {
			conn_drop(s, i--);
			continue;
		}
		if (timeout < 0 || c->linger_by - now < timeout)
			timeout = (int)(c->linger_by - now);
	}
	return timeout;
}

static int accepting(const struct server *s)
{
	const struct opts *o = s->o;
	size_t cap = o->fork ? (o->maxconn ? (size_t)o->maxconn : (size_t)-1) : 1;

	return s->lfd >= 0 && s->running < cap;
}

/*
 * Start a poll set: the draining connections, then the self-pipe, with room
 * for two more. Returns the self-pipe's index; the set grows with *pcap.
 */
static size_t poll_begin(struct server *s, struct pollfd **pfd, size_t *pcap)
{
	size_t n = 0;

	if (*pcap < s->nconns + 3) {
		*pcap = s->nconns + 16;
		free(*pfd);
		*pfd = calloc(*pcap, sizeof **pfd);
		if (!*pfd)
			err_die(EXIT_RUNTIME, "poll set:");
	}
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].linger_by)
			(*pfd)[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
	(*pfd)[n] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
	return n;
}

static void loop(struct server *s)
{
	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	int timeout = -1;

	while (s->lfd >= 0 || s->nconns > 0) {
		size_t n, nl;
		int chld = 0, sig;

		nl = poll_begin(s, &pfd, &pcap);
		n = nl + 1;
		if (accepting(s))
			pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "poll:");
		if (pfd[nl].revents) {
			sig = sig_drain(&chld, NULL);
			if (sig) {
				free(pfd);
				teardown(s, sig);
			}
		}
		reap_all(s);
		if (n > nl + 1 && pfd[nl + 1].revents) {
			int fd = net_accept(s->lfd);
			if (fd >= 0) {
				if (!s->o->loop) { /* one connection only */
					close(s->lfd);
					s->lfd = -1;
					if (s->unlink_path)
						unlink(s->o->path);
					s->unlink_path = 0;
				}
				serve(s, fd);
			} else if (errno != EAGAIN && errno != ECONNABORTED) {
				err_warn("accept:");
			}
		}
		timeout = linger_step(s, pfd, nl);
	}
	free(pfd);
	free(s->conns);
}

/* ---- -W: preforked workers ---- */

/* A worker's flags: SIGWINCH asks a ready worker to retire (a program ignores it by
 * default, should one arrive after the exec); SIGCHLD tells a -P worker its program ended. */
static volatile sig_atomic_t worker_retire, worker_chld;

static void worker_on_signal(int sig)
{
	if (sig == SIGWINCH)
		worker_retire = 1;
	else
		worker_chld = 1;
}

/* The environment a -P program gets: no peer yet, only what the listener tells. */
static void prestart_env(int lfd, char bufs[5][96], char *set[6])
{
	char ip[NET_IPLEN], port[NET_PORTLEN];
	int n = 0;

	if (net_name(lfd, 0, ip, port) == AF_UNIX) {
		snprintf(bufs[n], 96, "PROTO=UNIX");
		set[n] = bufs[n];
		n++;
	} else {
		snprintf(bufs[n], 96, "PROTO=TCP");
		set[n] = bufs[n];
		n++;
		/* A wildcard listener's local address is only known per connection. */
		if (strcmp(ip, "::") != 0 && strcmp(ip, "0.0.0.0") != 0) {
			snprintf(bufs[n], 96, "TCPLOCALIP=%s", ip);
			set[n] = bufs[n];
			n++;
		}
		snprintf(bufs[n], 96, "TCPLOCALPORT=%s", port);
		set[n] = bufs[n];
		n++;
	}
	set[n] = NULL;
}

/*
 * Wait in accept(2) on the shared listener. A blocking accept wakes one
 * waiter per connection (the kernel queues accepting processes exclusively),
 * so N workers cause no thundering herd. Returns the connection, or exits.
 */
static int worker_accept(int lfd, pid_t *prog)
{
	for (;;) {
		int fd;

		if (worker_retire)
			_exit(0);
		if (worker_chld && *prog > 0) {
			int st;
			worker_chld = 0;
			if (waitpid(*prog, &st, WNOHANG) == *prog)
				*prog = 0; /* its output, if any, waits in the pipe */
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) { /* someone set O_NONBLOCK */
			struct pollfd pfd = {.fd = lfd, .events = POLLIN};
			poll(&pfd, 1, -1);
			continue;
		}
		_exit(EXIT_RUNTIME); /* EMFILE and the like: the master sees a worker die */
	}
}

static _Noreturn void worker(struct server *s)
{
	const struct opts *o = s->o;
	struct prefork_note note = {.pid = getpid()};
	char bufs[5][96], *set[6];
	struct proc_env env = {set, unset_vars};
	struct sigaction sa;
	int chan = s->chan[1], fd, in = -1, out = -1, family;
	struct pump *pump = NULL;
	pid_t prog = 0;

	setpgid(0, 0);
	sig_child_reset();
	close(s->chan[0]);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = worker_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the signal must interrupt accept */
	sigaction(SIGWINCH, &sa, NULL);
	if (o->prestart) {
		/* Allocated and touched now: page faults off the connection's path. */
		pump = malloc(sizeof *pump);
		if (pump)
			memset(pump, 0, sizeof *pump);
		sigaction(SIGCHLD, &sa, NULL);
		prestart_env(s->lfd, bufs, set);
		prog = relay_spawn(o, &env, &in, &out);
		if (prog < 0) {
			note.kind = PREFORK_NOTE_EXECFAIL;
			note.err = errno;
			prefork_send(chan, &note, -1);
			prog = 0;
		}
	}
	fd = worker_accept(s->lfd, &prog);
	close(s->lfd);
	if (o->prestart && note.kind == PREFORK_NOTE_EXECFAIL) {
		prefork_send(chan, &(struct prefork_note){.pid = note.pid,
							  .kind = PREFORK_NOTE_ACCEPTED}, fd);
		close(fd);
		_exit(EXIT_RUNTIME);
	}
	/* Tell the master at once, so the replacement forks while we serve. The master
	 * wants a copy of the connection for -v and for the lingering close; a relay
	 * closes gracefully itself, so without -v the copy would only cost. */
	note.kind = PREFORK_NOTE_ACCEPTED;
	prefork_send(chan, &note, o->verbose || !(o->prestart || o->crlf) ? fd : -1);
	if (o->prestart) {
		relay_run(o, pump, fd, in, out, prog);
	}
	family = net_name(fd, 0, bufs[0], bufs[1]);
	env_for(fd, family, bufs, set);
	if (o->crlf)
		relay_child(o, fd, &env);
	/* As serve(): the program's descriptors are the connection itself. */
	if (o->ronly)
		shutdown(fd, SHUT_WR);
	if (proc_child_setup(o->wonly ? STDIN_FILENO : fd, o->ronly ? STDOUT_FILENO : fd,
			     o->ronly ? STDERR_FILENO : fd, &env, 0) == 0)
		proc_exec_cmd_at(o->program, s->exec_path);
	note.kind = PREFORK_NOTE_EXECFAIL;
	note.err = errno;
	prefork_send(chan, &note, -1);
	_exit(127);
}

/* Fork workers up to what the pool wants now. */
static void pool_fill(struct server *s)
{
	long long now = io_now_ms();
	size_t k;

	if (now < s->fork_pause_until)
		return;
	for (k = prefork_wanted(&s->pool, now); k > 0; k--) {
		pid_t pid = fork();

		if (pid < 0) {
			err_warn("fork:");
			s->fork_pause_until = now + 1000;
			return;
		}
		if (pid == 0)
			worker(s);
		setpgid(pid, pid); /* so a TERM to its group cannot miss */
		if (prefork_add(&s->pool, pid, now) < 0) {
			err_warn("worker pool:");
			kill(pid, SIGKILL);
			s->fork_pause_until = now + 1000;
			return;
		}
	}
}

/* Take every note the workers sent. */
static void pool_notes(struct server *s)
{
	struct prefork_note note;
	int fd, r;

	while ((r = prefork_recv(s->chan[0], &note, &fd)) > 0) {
		if (note.kind == PREFORK_NOTE_EXECFAIL) {
			if (prefork_failed(&s->pool, note.pid, note.err) == 1)
				err_warn("exec %s: %s", s->o->program, strerror(note.err));
		} else if (note.kind == PREFORK_NOTE_ACCEPTED &&
			   prefork_accepted(&s->pool, note.pid) == 0) {
			struct conn *c = conn_add(s);
			if (c) {
				c->pid = note.pid;
				c->fd = -1;
				/* The peer's name is only ever said with -v: two syscalls saved. */
				if (s->o->verbose && fd >= 0)
					conn_name(s, c, fd);
				/* Only a program holding the connection itself needs our FIN. */
				c->fd = s->o->prestart || s->o->crlf ? -1 : fd;
				if (c->fd >= 0)
					fd = -1;
				s->running++;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	if (r < 0)
		err_warn("worker notes:");
}

static void pool_status(const struct server *s)
{
	err_warn("status: ready %zu busy %zu served %llu errors %llu", s->pool.ready, s->pool.busy,
	      s->pool.served, s->pool.errors);
}

/* The master of -W: keep the pool, take notes, reap, linger; it never accepts. */
static void pool_loop(struct server *s)
{
	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	int timeout = -1;

	for (;;) {
		size_t n, nl;
		int usr1 = 0, sig, t;
		long long now;
		pid_t pid;

		pool_fill(s);
		nl = poll_begin(s, &pfd, &pcap);
		n = nl + 1;
		pfd[n++] = (struct pollfd){.fd = s->chan[0], .events = POLLIN};
		now = io_now_ms();
		t = prefork_timeout(&s->pool, now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		if (s->fork_pause_until > now &&
		    (timeout < 0 || s->fork_pause_until - now < timeout))
			timeout = (int)(s->fork_pause_until - now);
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "poll:");
		if (pfd[nl].revents) {
			sig = sig_drain(NULL, &usr1);
			if (sig) {
				free(pfd);
				teardown(s, sig);
			}
		}
		pool_notes(s);
		reap_all(s);
		if (usr1)
			pool_status(s);
		now = io_now_ms();
		while ((pid = prefork_retire(&s->pool, now)) > 0)
			kill(pid, SIGWINCH);
		timeout = linger_step(s, pfd, nl);
	}
}

static int open_listener(const struct opts *o, int *created)
{
	int fd, gai = 0;

	*created = 0;
	if (o->activated)
		return 3;
	if (o->path) {
		fd = net_listen_unix(o->path, SOMAXCONN);
		if (fd < 0) {
			if (errno == EADDRINUSE)
				err_die(EXIT_RUNTIME, "%s: in use by a live listener", o->path);
			if (errno == EEXIST)
				err_die(EXIT_RUNTIME, "%s: exists and is not a socket; not touching it",
				    o->path);
			err_die(EXIT_RUNTIME, "%s:", o->path);
		}
		*created = 1;
		return fd;
	}
	fd = net_listen(o->bindaddr, o->port, SOMAXCONN, &gai);
	if (fd < 0)
		err_die(EXIT_RUNTIME, "listen on %s %s: %s", o->bindaddr ? o->bindaddr : "*", o->port,
		    net_strerror(gai));
	return fd;
}

static int run_server(const struct opts *o, struct daemon *d)
{
	struct server s = {.o = o};
	char ip[NET_IPLEN], port[NET_PORTLEN], exec_path[4096];

	s.sigfd = sig_init(o->wmin > 0);
	if (s.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	s.lfd = open_listener(o, &s.unlink_path);
	/* Workers block in accept(2): that is what keeps a herd from waking. */
	io_set_nonblock(s.lfd, !o->wmin);
	if (o->verbose) {
		if (net_name(s.lfd, 0, ip, port) == AF_UNIX)
			err_warn("listening on %s", o->path ? o->path : "UNIX socket");
		else
			err_warn("listening on %s %s", ip, port);
	}
	if (daemon_ready(d, o->logfile) < 0) {
		int saved = errno;
		if (s.unlink_path)
			unlink(o->path);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s:", o->logfile);
	}
	if (o->wmin) {
		size_t max = o->wmax ? (size_t)o->wmax : PREFORK_UNLIMITED;
		if (o->maxconn && (size_t)o->maxconn < max)
			max = (size_t)o->maxconn;
		if (prefork_channel(s.chan) < 0)
			err_die(EXIT_RUNTIME, "worker channel:");
		prefork_init(&s.pool, (size_t)o->wmin, max, o->wmax > 0, o->idle_ms);
		/* Found once here, not by failing an execve per PATH entry per connection. */
		if (!o->prestart && !o->crlf && proc_which(o->program, exec_path, sizeof exec_path) == 0)
			s.exec_path = exec_path;
		s.pooled = 1;
		pool_loop(&s);
	}
	loop(&s);
	return s.status;
}

static int run_client(const struct opts *o, struct daemon *d)
{
	int fd, gai = 0, sig;
	struct pump *p;

	if (o->path)
		fd = net_connect_unix(o->path);
	else
		fd = net_connect(o->host, o->port, o->bindaddr, &gai);
	if (fd < 0)
		err_die(EXIT_RUNTIME, "connect to %s%s%s: %s", o->path ? o->path : o->host,
		    o->path ? "" : " ", o->path ? "" : o->port, net_strerror(gai));
	if (o->verbose)
		err_warn("connected to %s%s%s", o->path ? o->path : o->host, o->path ? "" : " ",
		      o->path ? "" : o->port);
	if (daemon_ready(d, o->logfile) < 0)
		err_die(EXIT_RUNTIME, "%s:", o->logfile);

	if (o->program) {
		/* Same machinery as one server connection, without a listener. */
		struct server s = {.o = o, .lfd = -1};
		s.sigfd = sig_init(0);
		serve(&s, fd);
		loop(&s);
		return s.status;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		err_die(EXIT_RUNTIME, "relay:");
	p->sigfd = sig_init(0);
	pump_flow_init(&p->flow[0], o->ronly ? -1 : STDIN_FILENO, fd,
		       o->crlf ? PUMP_LF_TO_CRLF : PUMP_RAW);
	pump_flow_init(&p->flow[1], fd, o->wonly ? -1 : STDOUT_FILENO,
		       o->crlf ? PUMP_CRLF_TO_LF : PUMP_RAW);
	if (o->ronly)
		shutdown(fd, SHUT_WR);
	p->stop_mask = o->quit ? 1u : 0u;
	sig = pump_run(p);
	if (sig)
		exit(EXIT_SIGNAL(sig));
	if (p->error) {
		errno = p->error;
		err_die(EXIT_RUNTIME, "connection:");
	}
	close(fd);
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.grace_ms = GRACE_MS, .idle_ms = IDLE_MS};
	struct daemon d;

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (daemon_start(&d, o.background, 0) < 0)
		err_die(EXIT_RUNTIME, "fork:");
	return o.server ? run_server(&o, &d) : run_client(&o, &d);
}
