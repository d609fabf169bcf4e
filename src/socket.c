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

#include "lib/channel.h"
#include "lib/cmd.h"
#include "lib/connector.h"
#include "lib/daemon.h"
#include "lib/err.h"
#include "lib/io.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/pidfile.h"
#include "lib/listener.h"
#include "lib/noise.h"
#include "lib/pump.h"
#include "lib/server.h"
#include "lib/sig.h"

#define GRACE_MS 5000  /* SIGTERM to SIGKILL at teardown, unless -g */
#define STOP_MS 30000  /* a graceful stop (SIGQUIT) waits this long for connections, unless -G */
#define IDLE_MS 10000  /* -I: an idle worker beyond the -W minimum retires */
#define WORKERS_MAX 4096

static const char usage_text[] =
	"usage: socket [-bcqrvw] [-k KEY|@FILE] [-p COMMAND] [-B ADDR] [-i FILE]\n"
	"              [-L FILE] HOST PORT\n"
	"       socket [-bcqrvw] [-k KEY|@FILE] [-p COMMAND] [-i FILE] [-L FILE] /PATH\n"
	"       socket [-bcfqrvw] [-k KEY|@FILE] [-p COMMAND] [-B ADDR] [-C MAX]\n"
	"              [-G SECONDS] [-g SECONDS] [-i FILE] [-L FILE] -s [-l] PORT\n"
	"       socket [-bcfqrvw] [-k KEY|@FILE] [-p COMMAND] [-C MAX] [-G SECONDS]\n"
	"              [-g SECONDS] [-i FILE] [-L FILE] -s [-l] /PATH\n"
	"       socket [-bcfqrvw] [-k KEY|@FILE] [-P] [-I SECONDS] [-G SECONDS]\n"
	"              [-g SECONDS] [-B ADDR] [-C MAX] [-i FILE] [-L FILE]\n"
	"              -W N|MIN:MAX -p COMMAND -s [-l] PORT|/PATH\n"
	"       socket -version | -help\n"
	"\n"
	"  -b         background once ready; print the daemon's PID\n"
	"  -B ADDR    bind to ADDR: a server listens on it only (every address it\n"
	"             names), a client connects from it; not for a UNIX socket\n"
	"  -c         convert LF to CRLF towards the socket and CRLF to LF from it\n"
	"  -C MAX     with -f or -W, serve at most MAX connections at once\n"
	"  -f         fork: serve each connection in a child process (needs -s)\n"
	"  -g SECONDS at teardown, SIGKILL what SIGTERM left after SECONDS (default 5)\n"
	"  -G SECONDS on SIGQUIT (graceful stop), let connections finish for SECONDS\n"
	"             (default 30)\n"
	"  -i FILE    write the PID to FILE once ready, locked: a second socket given\n"
	"             FILE refuses to start; removed at exit\n"
	"  -I SECONDS with -W MIN:MAX, a ready worker beyond MIN idle SECONDS retires\n"
	"             (default 10)\n"
	"  -k KEY     the connection is an encrypted channel under KEY, or the key in\n"
	"             @FILE (make one: head -c 32 /dev/urandom > FILE); see SECURITY\n"
	"  -l         loop: keep accepting connections (needs -s)\n"
	"  -L FILE    diagnostics to FILE once ready, not to stderr or syslog\n"
	"  -p COMMAND run COMMAND with the connection as its stdin, stdout and stderr\n"
	"  -P         with -W, each ready worker has COMMAND already started (prestart)\n"
	"  -q         close the connection at once when stdin ends\n"
	"  -r         read only: nothing is sent to the socket\n"
	"  -s         server: listen on PORT or /PATH\n"
	"  -v         report events on stderr\n"
	"  -w         write only: nothing received is passed on\n"
	"  -W N       keep N preforked workers ready when idle, never fewer than one\n"
	"             (implies -l, needs -p; -f adds nothing); SIGUSR2 reloads them\n"
	"  -W MIN:MAX at least MIN ready, at most MAX alive; ramp up under load, retire\n"
	"             idle ones\n";

static const char synopsis[] =
	"socket [-bcfqrvw] [-k KEY|@FILE] [-p COMMAND] [-B ADDR] [-W N|MIN:MAX] [-s [-l]] "
	"HOST PORT | /PATH";

struct opts {
	int background, crlf, fork, loop, quit, ronly, wonly, server, verbose;
	long maxconn; /* -C; 0: unlimited */
	long grace_ms;			/* -g */
	long stop_ms;			/* -G */
	long wmin, wmax;		/* -W: 0 without; wmax 0 for a fixed N */
	long idle_ms;			/* -I */
	int prestart, idle_set;		/* -P; -I given */
	int stop_set;			/* -G given */
	const char *program, *bindaddr, *logfile, *pidfile; /* pidfile: -i */
	const char *host, *port, *path; /* path set: UNIX socket */
	int activated;			/* serving systemd's fd 3 */
	struct listener adopted;	/* fd 3, checked before anything else could take it */
	int chan;			/* -k */
	unsigned char psk[NOISE_PSK];
};


static int has_env_activation(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long v;

	return pid && fds && opt_long(pid, 1, 0x7fffffff, &v) == 0 && v == (long)getpid() &&
	       strcmp(fds, "1") == 0;
}

/* -W N or -W MIN:MAX */
static void parse_workers(const char *arg, struct opts *o, struct opt_parse *p)
{
	const char *colon = strchr(arg, ':');
	char min[24];
	size_t len;

	if (!colon) {
		o->wmin = opt_number(arg, 1, WORKERS_MAX, "-W", p);
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

/* The options, into o; the operands are left from argv[optind]. */
static void parse_options(int argc, char **argv, struct opts *o, struct opt_parse *p)
{
	static const char optstring[] = "B:bC:cfG:g:hI:i:k:L:lPp:qrsVvW:w";
	int c;

	while ((c = opt_next(argc, argv, optstring, p)) != -1) {
		switch (c) {
		case 'B': o->bindaddr = optarg; break;
		case 'b': o->background = 1; break;
		case 'C': o->maxconn = opt_number(optarg, 1, 1000000, "-C", p); break;
		case 'c': o->crlf = 1; break;
		case 'f': o->fork = 1; break;
		case 'G':
			o->stop_ms = opt_duration(optarg, 1, 86400000L, "-G", p);
			o->stop_set = 1;
			break;
		case 'g': o->grace_ms = opt_duration(optarg, 1, 3600000L, "-g", p); break;
		case 'I':
			o->idle_ms = opt_duration(optarg, 1, 86400000L, "-I", p);
			o->idle_set = 1;
			break;
		case 'i': o->pidfile = optarg; break;
		case 'k':
			opt_psk(optarg, o->psk, p);
			o->chan = 1;
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
		case 'W': parse_workers(optarg, o, p); break;
		default: err_cmdline(p);
		}
	}
}

/* Options that need, or exclude, one another. */
static void check_options(struct opts *o)
{
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
	if (o->stop_set && !o->server)
		err_usage(synopsis, "-G needs -s");
	if (o->idle_set && !o->wmax)
		err_usage(synopsis, "-I needs -W MIN:MAX");
	if (o->maxconn && !o->fork && !o->wmin)
		err_usage(synopsis, "-C needs -f"); /* or -W */
	if (o->program && !*o->program)
		err_usage(synopsis, "-p: empty command");
	if (o->pidfile && !*o->pidfile)
		err_usage(synopsis, "-i: empty file name");
}

/* The operands: a server's port or path (none if activated); a client's host and port, or path. */
static void parse_operands(int nops, char **ops, struct opts *o)
{
	o->activated = o->server && has_env_activation();
	if (o->server) {
		if (nops > 1)
			err_usage(synopsis, "too many operands");
		if (nops == 0 && !o->activated)
			err_usage(synopsis, "missing port or path");
		if (nops == 1) {
			if (net_is_path(ops[0]))
				o->path = ops[0];
			else
				o->port = ops[0];
		}
	} else if (nops == 1 && net_is_path(ops[0])) {
		o->path = ops[0];
	} else if (nops == 1) {
		/* "socket app.sock" is a UNIX path missing its '/', as often as a host missing a port. */
		err_usage(synopsis, "%s: missing port; a UNIX socket path needs a '/' (./%s)",
			  ops[0], ops[0]);
	} else if (nops == 2) {
		o->host = ops[0];
		o->port = ops[1];
	} else {
		err_usage(synopsis, nops < 2 ? "missing operand" : "too many operands");
	}
}

/* The address operands, and what depends on them. */
static void check_address(const struct opts *o)
{
	/* In the background stdin and stdout are /dev/null: only a program has a use for them. */
	if (o->background && !o->program)
		err_usage(synopsis, "-b needs -p: in the background there is no stdin or stdout to relay");
	if (o->path && o->bindaddr)
		err_usage(synopsis, "-B does not apply to a UNIX socket");
	if (o->path && net_check_path(o->path) < 0)
		err_usage(synopsis, "%s: path longer than a UNIX socket allows (%zu bytes)",
			  o->path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (o->port && net_check_port(o->port) < 0) {
		if (errno == ENOENT && o->server)
			err_usage(synopsis, "%s: unknown service; a UNIX socket path needs a '/' (./%s)",
				  o->port, o->port);
		if (errno == ENOENT)
			err_usage(synopsis, "%s: unknown service", o->port);
		err_usage(synopsis, "%s: bad port (0-65535 or a service name)", o->port);
	}
	if (o->host && !*o->host)
		err_usage(synopsis, "empty host");
}

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};

	parse_options(argc, argv, o, &p);
	check_options(o);
	parse_operands(argc - optind, argv + optind, o);
	check_address(o);
	err_cmdline_warn(&p); /* the command line is taken: what -k's key made us doubt */
}

/* Our listener: systemd's fd 3 (checked), a UNIX path, or every address of -B. */
static void open_listener(const struct opts *o, struct listener *l)
{
	int gai = 0;

	if (o->activated) {
		*l = o->adopted;
		return;
	}
	if (o->path) {
		int fd = net_listen_unix(o->path, SOMAXCONN);

		if (fd < 0) {
			if (errno == EADDRINUSE)
				err_die(EXIT_RUNTIME, "%s: in use by a live listener", o->path);
			if (errno == EEXIST)
				err_die(EXIT_RUNTIME, "%s: exists and is not a socket; not touching it",
					o->path);
			err_die(EXIT_RUNTIME, "%s:", o->path);
		}
		listener_adopt(l, fd);
		return;
	}
	if (listener_open(l, o->bindaddr, o->port, SOMAXCONN, &gai) < 0)
		err_die(EXIT_RUNTIME, "listen on %s %s: %s", o->bindaddr ? o->bindaddr : "*", o->port,
			net_strerror(gai));
}

/*
 * Socket activation: nothing about fd 3 is taken on trust. Checked first thing,
 * before the self-pipe, the readiness pipe or a log could be given fd 3
 * when it is closed; a wrong descriptor would make accept(2) fail forever.
 */
static void adopt_fd3(struct opts *o)
{
	const char *why;

	if (listener_adopt(&o->adopted, 3) == 0) {
		/* Ours now: kept through backgrounding, not passed to programs. */
		io_set_cloexec(3, 1);
		return;
	}
	switch (errno) {
	case EBADF: why = "not open"; break;
	case ENOTSOCK: why = "not a socket"; break;
	case ESOCKTNOSUPPORT: why = "not a stream socket (UDP?)"; break;
	case EINVAL: why = "a socket that is not listening"; break;
	default: why = strerror(errno);
	}
	err_die(EXIT_RUNTIME, "LISTEN_FDS=1 but fd 3 is %s: no listening socket to serve", why);
}

/*
 * -p: a program that cannot be found now would only fail for every
 * connection (in every worker, every -f child) or after connecting, so
 * say it once, as a shell would, and stop. -W's workers keep the file
 * found (man page, PATH); the others look it up afresh each time. A
 * command for /bin/sh -c is the shell's to look up.
 */
static void check_program(const struct opts *o, char *path, size_t len, const char **found)
{
	*found = NULL;
	if (!o->program)
		return;
	switch (cmd_lookup(o->program, path, len)) {
	case 0:
		*found = o->wmin ? path : NULL;
		return;
	case 1:
		return;
	}
	if (errno == ENOENT)
		err_die(EXIT_RUNTIME, "%s: not found", cmd_name(o->program, path, len));
	err_die(EXIT_RUNTIME, "%s:", cmd_name(o->program, path, len));
}

/* What the server tells, in socket's words. */
static void say_event(const struct server_event *ev, void *arg)
{
	char why[512], secs[OPT_SECS_MAX];

	(void)arg;
	switch (ev->type) {
	case SERVER_EV_CONN: err_warn("connection from %s", ev->name); break;
	case SERVER_EV_CONN_END:
		err_warn("connection from %s closed, status %d", ev->name, ev->code);
		break;
	case SERVER_EV_FAILED:
		errno = ev->err;
		err_warn("%s:", ev->name);
		break;
	case SERVER_EV_EXEC: err_warn("exec %s: %s", ev->name, strerror(ev->err)); break;
	case SERVER_EV_ACCEPT:
		err_warn("accept: %s (%lu in the last second; pausing)", strerror(ev->err),
			 ev->count);
		break;
	case SERVER_EV_RELAY: err_warn("%s", pump_fault_text(ev->fault, why, sizeof why)); break;
	case SERVER_EV_STATUS:
		/* SIGUSR1: the -L file opened again (logrotate moved it), then the counts. */
		if (err_reopen() < 0)
			err_warn("SIGUSR1: reopening %s:", err_file_path());
		if (ev->pool)
			err_warn("status: ready %zu busy %zu served %llu errors %llu connections %zu",
				 ev->pool->ready, ev->pool->busy, ev->pool->served,
				 ev->pool->errors, ev->conns);
		else
			err_warn("status: connections %zu", ev->conns);
		break;
	case SERVER_EV_BACKOFF:
		err_warn("workers end faster than %d a second without serving; "
			 "pausing forks for %s s",
			 PREFORK_DEATHS, opt_secs(ev->ms, secs));
		break;
	case SERVER_EV_RELOAD_FAILED:
		err_warn("reload: %s: %s; the running workers go on", ev->name,
			 ev->err == ENOENT ? "not found" : strerror(ev->err));
		break;
	case SERVER_EV_STOP:
		err_warn("SIGQUIT: graceful stop: %zu connection%s %s %s s to finish", ev->conns,
			 err_plural(ev->conns), ev->conns == 1 ? "has" : "have", opt_secs(ev->ms, secs));
		break;
	case SERVER_EV_RELOAD:
		err_warn("SIGUSR2: reload: generation %u, %lu ready worker%s retired, "
			 "%zu busy finish%s",
			 ev->generation, ev->count, err_plural(ev->count), ev->conns,
			 ev->conns == 1 ? "es" : "");
		break;
	case SERVER_EV_RELOAD_NONE:
		err_warn("SIGUSR2: without -W every connection starts its program afresh; "
			 "nothing to reload; ignored");
		break;
	case SERVER_EV_TEARDOWN:
		err_warn("signal %d: ending %zu connection%s", ev->code, ev->conns,
			 err_plural(ev->conns));
		break;
	}
}

static void server_opts_of(const struct opts *o, struct server_opts *so)
{
	*so = (struct server_opts){
		.relay = {.program = o->program, .crlf = o->crlf, .quit = o->quit, .ronly = o->ronly,
			  .wonly = o->wonly, .psk = o->chan ? o->psk : NULL, .initiator = !o->server},
		.fork = o->fork,
		.loop = o->loop,
		.verbose = o->verbose,
		.maxconn = o->maxconn,
		.grace_ms = o->grace_ms,
		.stop_ms = o->stop_ms,
		.wmin = o->wmin,
		.wmax = o->wmax,
		.idle_ms = o->idle_ms,
		.prestart = o->prestart,
		.on_event = say_event,
	};
}

static int run_server(const struct opts *o, struct daemon *d, const char *found)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];
	struct server_opts so;
	struct listener l;
	struct server s;
	/* SIGQUIT: a graceful stop; SIGUSR2: a reload (-W); SIGUSR1: the status line. */
	int sigfd = sig_init(SIG_OPS);

	if (sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	open_listener(o, &l);
	server_opts_of(o, &so);
	if (o->path && !o->activated)
		so.path = o->path;
	/* Workers and the loop never block in accept(2): an adopted fd 3 may. */
	for (size_t i = 0; i < l.n; i++)
		io_set_nonblock(l.fd[i], 1);
	if (o->verbose) {
		if (net_name(l.fd[0], 0, ip, port) == AF_UNIX)
			err_warn("listening on %s", o->path ? o->path : "UNIX socket");
		else
			for (size_t i = 0; i < l.n; i++)
				if (net_name(l.fd[i], 0, ip, port) >= 0)
					err_warn("listening on %s %s", ip, port);
	}
	if (daemon_ready(d, o->logfile) < 0) {
		int saved = errno;
		if (so.path)
			unlink(so.path);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s: %s", d->failed, err_file_why(errno));
	}
	/* Found once here, not by failing an execve per PATH entry per connection. */
	so.exec_path = found;
	if (server_init(&s, &so, &l, sigfd) < 0)
		err_die(EXIT_RUNTIME, "server:");
	return server_run(&s);
}

/*
 * -k, relaying our stdin and stdout: the handshake first (a wrong key is
 * the connection's error), then the flows go through the channel.
 */
static struct channel *client_handshake(const struct opts *o, int fd)
{
	struct relay r = {.psk = o->psk, .initiator = 1};
	struct channel *ch = pump_channel(&r, fd);

	if (!ch)
		err_die(EXIT_RUNTIME, "connect to %s%s%s: %s", o->path ? o->path : o->host,
			o->path ? "" : " ", o->path ? "" : o->port, channel_strerror(errno, 1));
	return ch;
}

static void client_channel(const struct opts *o, struct pump *p, int fd, struct channel *ch)
{
	p->ch = ch;
	p->flow[0].chout = p->ch;
	p->flow[1].chin = p->ch;
	/* -r: nothing will be sent: the END at once (the relay's rule). */
	if (o->ronly)
		while (channel_shutdown(p->ch) < 0 && errno == EAGAIN)
			poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, -1);
}

/* The client: connect, then relay stdin/stdout, or run the program on the connection. */
static int run_client(const struct opts *o, struct daemon *d)
{
	int fd, gai = 0, sig;
	struct channel *ch;
	struct pump *p;

	if (o->path)
		fd = net_connect_unix(o->path);
	else
		fd = connector_connect(o->host, o->port, o->bindaddr, -1, &gai);
	if (fd < 0)
		err_die(EXIT_RUNTIME, "connect to %s%s%s: %s", o->path ? o->path : o->host,
			o->path ? "" : " ", o->path ? "" : o->port, net_strerror(gai));
	if (o->verbose)
		err_warn("connected to %s%s%s", o->path ? o->path : o->host, o->path ? "" : " ",
			 o->path ? "" : o->port);
	if (daemon_ready(d, o->logfile) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", d->failed, err_file_why(errno));

	if (o->program) {
		/* Same machinery as one server connection, without a listener. */
		struct server_opts so;
		struct listener none = {.n = 0};
		struct server s;

		server_opts_of(o, &so);
		if (server_init(&s, &so, &none, sig_init(SIG_OPS)) < 0)
			err_die(EXIT_RUNTIME, "server:");
		server_serve(&s, fd);
		return server_run(&s);
	}
	ch = o->chan ? client_handshake(o, fd) : NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		err_die(EXIT_RUNTIME, "relay:");
	p->sigfd = sig_init(SIG_OPS);
	pump_flow_init(&p->flow[0], o->ronly ? -1 : STDIN_FILENO, fd,
		       o->crlf ? PUMP_LF_TO_CRLF : PUMP_RAW);
	pump_flow_init(&p->flow[1], fd, o->wonly ? -1 : STDOUT_FILENO,
		       o->crlf ? PUMP_CRLF_TO_LF : PUMP_RAW);
	if (ch)
		client_channel(o, p, fd, ch);
	else if (o->ronly)
		shutdown(fd, SHUT_WR);
	p->stop_mask = o->quit ? 1u : 0u;
	sig = pump_run(p);
	if (sig)
		exit(EXIT_SIGNAL(sig));
	if (p->error && o->chan)
		err_die(EXIT_RUNTIME, "connection: %s", channel_strerror(p->error, 0));
	if (p->error) {
		errno = p->error;
		err_die(EXIT_RUNTIME, "connection:");
	}
	channel_free(p->ch);
	close(fd);
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.grace_ms = GRACE_MS, .stop_ms = STOP_MS, .idle_ms = IDLE_MS};
	char exec_path[4096];
	const char *found;
	struct daemon d;
	pid_t holder;
	char why[64];

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (o.activated)
		adopt_fd3(&o); /* first: fd 3 may be closed, and nothing else may take it */
	check_program(&o, exec_path, sizeof exec_path, &found);
	if (o.pidfile && pidfile_open(o.pidfile, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.pidfile, pidfile_why(errno, holder, why, sizeof why));
	switch (daemon_start(&d, o.background, 0)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(d.status); /* the caller's process: the daemon is ready, or gone */
	}
	return o.server ? run_server(&o, &d, found) : run_client(&o, &d);
}
