/*
 * socket: connect a TCP or UNIX stream socket to stdin/stdout, or serve a
 * program per connection. A fixed successor of Juergen Nickelsen's
 * socket-1.1: same options, no lost bytes around half-close.
 */
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
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/proc.h"
#include "lib/pump.h"
#include "lib/sig.h"

#define LINGER_MS 2000 /* how long a finished connection may drain the peer's bytes */
#define GRACE_MS 5000  /* SIGTERM to SIGKILL at teardown */

static const char usage_text[] =
	"usage: socket [-bcfqrvw] [-p command] [-B local address] [-L file] host port\n"
	"       socket [-bcfqrvw] [-p command] [-L file] /path\n"
	"       socket [-bcfqrvw] [-p command] [-B local address] [-C max] [-L file] -s [-l] port\n"
	"       socket [-bcfqrvw] [-p command] [-C max] [-L file] -s [-l] /path\n"
	"       socket -version | -help\n"
	"\n"
	"  -b      background once ready; print the daemon's PID\n"
	"  -B ADDR bind to this local address\n"
	"  -c      convert LF to CRLF towards the socket and CRLF to LF from it\n"
	"  -C MAX  with -f, serve at most MAX connections at once\n"
	"  -f      fork: serve each connection in a child process\n"
	"  -l      loop: keep accepting connections (needs -s)\n"
	"  -L FILE diagnostics to FILE instead of syslog once backgrounded\n"
	"  -p CMD  run CMD with the connection as its stdin, stdout and stderr\n"
	"  -q      close the connection at once when stdin ends\n"
	"  -r      read only: nothing is sent to the socket\n"
	"  -s      server: listen on port or path\n"
	"  -v      report events on stderr\n"
	"  -w      write only: nothing received is passed on\n";

static const char synopsis[] = "socket [-bcfqrvw] [-p command] [-B address] [-s [-l]] host port | /path";

struct opts {
	int background, crlf, fork, loop, quit, ronly, wonly, server, verbose;
	long maxconn; /* -C; 0: unlimited */
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
};

static int has_env_activation(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long v;

	return pid && fds && opt_long(pid, 1, 0x7fffffff, &v) == 0 && v == (long)getpid() &&
	       strcmp(fds, "1") == 0;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const char optstring[] = "B:bC:cfhL:lp:qrsVvw";
	int c, nops;

	opt_common(argc, argv, optstring, usage_text);
	opterr = 0; /* our messages, in our format */
	while ((c = getopt(argc, argv, optstring)) != -1) {
		switch (c) {
		case 'B': o->bindaddr = optarg; break;
		case 'b': o->background = 1; break;
		case 'C': o->maxconn = opt_long_or_die(optarg, 1, 1000000, "-C", synopsis); break;
		case 'c': o->crlf = 1; break;
		case 'f': o->fork = 1; break;
		case 'L': o->logfile = optarg; break;
		case 'l': o->loop = 1; break;
		case 'p': o->program = optarg; break;
		case 'q': o->quit = 1; break;
		case 'r': o->ronly = 1; break;
		case 's': o->server = 1; break;
		case 'v': o->verbose = 1; break;
		case 'w': o->wonly = 1; break;
		default:
			if (strchr(optstring, optopt) && optopt != ':')
				usage_error(synopsis, "-%c needs an argument", optopt);
			usage_error(synopsis, "unknown option -%c", optopt);
		}
	}
	argv += optind;
	nops = argc - optind;

	if (o->loop && !o->server)
		usage_error(synopsis, "-l needs -s");
	if (o->ronly && o->wonly)
		usage_error(synopsis, "-r and -w exclude each other");
	if (o->fork && !o->server)
		usage_error(synopsis, "-f needs -s");
	if (o->maxconn && !o->fork)
		usage_error(synopsis, "-C needs -f");
	if (o->program && !*o->program)
		usage_error(synopsis, "-p: empty command");

	o->activated = o->server && has_env_activation();
	if (o->activated) /* ours now: kept through backgrounding, not passed to programs */
		io_set_cloexec(3, 1);
	if (o->server) {
		if (nops > 1)
			usage_error(synopsis, "too many operands");
		if (nops == 0 && !o->activated)
			usage_error(synopsis, "missing port or path");
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
		usage_error(synopsis, nops < 2 ? "missing operand" : "too many operands");
	}

	if (o->path && o->bindaddr)
		usage_error(synopsis, "-B does not apply to a UNIX socket");
	if (o->path && net_check_path(o->path) < 0)
		usage_error(synopsis, "%s: path longer than a UNIX socket allows (%zu bytes)",
			    o->path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (o->port && net_check_port(o->port) < 0) {
		if (errno == ENOENT)
			usage_error(synopsis, "%s: unknown service", o->port);
		usage_error(synopsis, "%s: bad port (0-65535 or a service name)", o->port);
	}
	if (o->host && !*o->host)
		usage_error(synopsis, "empty host");
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

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0 && errno != EAGAIN)
			return;
	}
}

/*
 * The relay for -c (and for the plain stdin/stdout server): runs in the
 * connection's child, which leads the process group.
 */
static _Noreturn void relay_child(const struct opts *o, int conn, const struct proc_env *env)
{
	struct pump *p = calloc(1, sizeof *p);
	int to_prog[2] = {-1, -1}, from_prog[2] = {-1, -1};
	int in = STDIN_FILENO, out = STDOUT_FILENO, sig;
	pid_t prog = 0;

	if (!p)
		die(EXIT_RUNTIME, "relay:");
	/* A self-pipe of our own: the server's would mix our SIGCHLD into its own. */
	sig_child_reset();
	p->sigfd = sig_init(0);
	if (o->program) {
		if ((!o->wonly && io_pipe(to_prog) < 0) || (!o->ronly && io_pipe(from_prog) < 0))
			die(EXIT_RUNTIME, "pipe:");
		prog = proc_spawn(o->program, o->wonly ? STDIN_FILENO : to_prog[0],
				  o->ronly ? STDOUT_FILENO : from_prog[1],
				  o->ronly ? STDERR_FILENO : from_prog[1], env, 0);
		if (prog < 0)
			die(EXIT_RUNTIME, "exec %s:", o->program);
		if (to_prog[0] >= 0)
			close(to_prog[0]);
		if (from_prog[1] >= 0)
			close(from_prog[1]);
		in = from_prog[0];
		out = to_prog[1];
	}
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

/* ---- the server's bookkeeping ---- */

static struct conn *conn_add(struct server *s)
{
	if (s->nconns == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct conn *n = realloc(s->conns, ncap * sizeof *n);
		if (!n)
			return NULL;
		s->conns = n;
		s->cap = ncap;
	}
	return memset(&s->conns[s->nconns++], 0, sizeof(struct conn));
}

static void conn_drop(struct server *s, size_t i)
{
	if (s->conns[i].fd >= 0)
		close(s->conns[i].fd);
	s->conns[i] = s->conns[--s->nconns];
}

/* Start serving fd: the program itself, or a relay child. The conn keeps fd when the
 * program holds it directly, for the lingering close. */
static void serve(struct server *s, int fd)
{
	const struct opts *o = s->o;
	char lip[NET_IPLEN], lport[NET_PORTLEN];
	char bufs[5][96], *set[6];
	struct proc_env env = {set, unset_vars};
	struct conn *c = conn_add(s);
	int family = net_name(fd, 0, lip, lport);
	pid_t pid;

	if (!c) {
		warnx("connection dropped:");
		close(fd);
		return;
	}
	c->fd = -1;
	if (family == AF_UNIX) {
		snprintf(c->peer, sizeof c->peer, "UNIX");
	} else {
		char rip[NET_IPLEN], rport[NET_PORTLEN];
		net_name(fd, 1, rip, rport);
		snprintf(c->peer, sizeof c->peer, "%s %s", rip, rport);
	}
	if (o->verbose)
		warnx("connection from %s", c->peer);
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
			warnx("exec %s:", o->program);
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
			warnx("fork:");
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
	for (size_t i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (c->pid != pid)
			continue;
		c->pid = 0;
		s->running--;
		if (s->o->verbose)
			warnx("connection from %s closed, status %d", c->peer,
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

static void reap_all(struct server *s)
{
	int status;
	pid_t pid;

	while ((pid = proc_reap(&status)) > 0)
		on_reaped(s, pid, status);
}

static void reaped_cb(pid_t pid, int status, void *arg)
{
	on_reaped(arg, pid, status);
}

static _Noreturn void teardown(struct server *s, int sig)
{
	pid_t *pids = calloc(s->nconns + 1, sizeof *pids);
	size_t n = 0;

	if (s->lfd >= 0)
		close(s->lfd);
	if (s->unlink_path)
		unlink(s->o->path);
	if (s->o->verbose)
		warnx("signal %d: ending %zu connection(s)", sig, s->running);
	for (size_t i = 0; pids && i < s->nconns; i++)
		if (s->conns[i].pid > 0)
			pids[n++] = s->conns[i].pid;
	proc_end_groups(pids, n, GRACE_MS, s->sigfd, reaped_cb, s);
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

static void loop(struct server *s)
{
	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	int timeout = -1;

	while (s->lfd >= 0 || s->nconns > 0) {
		size_t n = 0, nl;
		int chld = 0, sig;

		if (pcap < s->nconns + 2) {
			pcap = s->nconns + 16;
			free(pfd);
			pfd = calloc(pcap, sizeof *pfd);
			if (!pfd)
				die(EXIT_RUNTIME, "poll set:");
		}
		for (size_t i = 0; i < s->nconns; i++)
			if (s->conns[i].linger_by)
				pfd[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
		nl = n;
		pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (accepting(s))
			pfd[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			die(EXIT_RUNTIME, "poll:");
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
				warnx("accept:");
			}
		}
		timeout = linger_step(s, pfd, nl);
	}
	free(pfd);
	free(s->conns);
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
				die(EXIT_RUNTIME, "%s: in use by a live listener", o->path);
			if (errno == EEXIST)
				die(EXIT_RUNTIME, "%s: exists and is not a socket; not touching it",
				    o->path);
			die(EXIT_RUNTIME, "%s:", o->path);
		}
		*created = 1;
		return fd;
	}
	fd = net_listen(o->bindaddr, o->port, SOMAXCONN, &gai);
	if (fd < 0)
		die(EXIT_RUNTIME, "listen on %s %s: %s", o->bindaddr ? o->bindaddr : "*", o->port,
		    net_strerror(gai));
	return fd;
}

static int run_server(const struct opts *o, struct daemon *d)
{
	struct server s = {.o = o};
	char ip[NET_IPLEN], port[NET_PORTLEN];

	s.sigfd = sig_init(0);
	if (s.sigfd < 0)
		die(EXIT_RUNTIME, "signals:");
	s.lfd = open_listener(o, &s.unlink_path);
	io_set_nonblock(s.lfd, 1);
	if (o->verbose) {
		if (net_name(s.lfd, 0, ip, port) == AF_UNIX)
			warnx("listening on %s", o->path ? o->path : "UNIX socket");
		else
			warnx("listening on %s %s", ip, port);
	}
	if (daemon_ready(d, o->logfile) < 0) {
		int saved = errno;
		if (s.unlink_path)
			unlink(o->path);
		errno = saved;
		die(EXIT_RUNTIME, "%s:", o->logfile);
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
		die(EXIT_RUNTIME, "connect to %s%s%s: %s", o->path ? o->path : o->host,
		    o->path ? "" : " ", o->path ? "" : o->port, net_strerror(gai));
	if (o->verbose)
		warnx("connected to %s%s%s", o->path ? o->path : o->host, o->path ? "" : " ",
		      o->path ? "" : o->port);
	if (daemon_ready(d, o->logfile) < 0)
		die(EXIT_RUNTIME, "%s:", o->logfile);

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
		die(EXIT_RUNTIME, "relay:");
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
		die(EXIT_RUNTIME, "connection:");
	}
	close(fd);
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct daemon d;

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (daemon_start(&d, o.background, 0) < 0)
		die(EXIT_RUNTIME, "fork:");
	return o.server ? run_server(&o, &d) : run_client(&o, &d);
}
