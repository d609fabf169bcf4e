/*
 * pool: receive daemons pushed by master(1). Masters that prove they know
 * KEY (and to whom the pool proves it too) get, for each daemon, a port
 * guarded by a one-time token, where its output pours into a buffer
 * DIR/NAME: a once binding per grant, or with -l a buffer of the pool's
 * own that every master's stream for that name follows. One process, one
 * poll loop for every master and every buffer.
 *
 * This file holds the options, main, the loop and its wiring: sessions
 * (session.c) ask for grants (grant.c) and service calls (call.c), whose
 * ends go back to them; what the modules report becomes the log's lines
 * here.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/binding.h"
#include "lib/call.h"
#include "lib/channel.h"
#include "lib/daemon.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/grant.h"
#include "lib/io.h"
#include "lib/linger.h"
#include "lib/linelog.h"
#include "lib/listener.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/pidfile.h"
#include "lib/proto.h"
#include "lib/session.h"
#include "lib/sig.h"
#include "lib/status.h"

#define POOL_LINGER_MS 1000 /* after our last bytes: read and drop the peer's this long */
#define END_GRACE_MS 2000   /* services' groups: KILL this long after TERM */
#define KEY_WEAK 16	    /* a shorter key is warned about */
#define STOP_MS 30000	    /* a graceful stop (SIGQUIT) waits this long for sessions, unless -G */

static const char usage_text[] =
	"usage: pool [-ablU] [-A ADDR] [-c MAX] [-d DIR] [-G SECONDS] [-i FILE] [-L FILE]\n"
	"            [-M FILE] [-n MAX] [-N MAX] [-r LO-HI] [-t SECONDS]\n"
	"            [-x SDIR [-R SECONDS] [-S MAX]] KEY PORT\n"
	"       pool -version | -help\n"
	"\n"
	"  KEY        the key masters must prove they know, or @FILE to read it from FILE\n"
	"  PORT       control port masters connect to (1024-49151)\n"
	"  -a         spool: buffers are regular files, appended; the pool ends as soon as\n"
	"             its senders are done, for readers that come later\n"
	"  -A ADDR    listen on ADDR only (every address it names), for masters and buffers\n"
	"  -b         background once listening; print the PID\n"
	"  -c MAX     at most MAX connections still proving the key (default 32; a quarter\n"
	"             of them from one address)\n"
	"  -d DIR     create the buffers in DIR (default: the current directory)\n"
	"  -G SECONDS on SIGQUIT (graceful stop), let masters' sessions finish for SECONDS\n"
	"             (default 30)\n"
	"  -i FILE    write the PID to FILE once listening, locked: a second pool given\n"
	"             FILE refuses to start; removed at exit\n"
	"  -l         keep serving masters until signalled; a name's buffer lasts, and every\n"
	"             master's stream for it follows the one before\n"
	"  -L FILE    diagnostics to FILE once ready, not to stderr or syslog\n"
	"  -M FILE    keep the status in FILE too, in node_exporter's textfile format\n"
	"  -n MAX     at most MAX grants for one master's session (default 1000)\n"
	"  -N MAX     at most MAX grants at once in all (default 4000)\n"
	"  -r LO-HI   take buffer ports from LO-HI (default: the kernel chooses)\n"
	"  -R SECONDS a service runs at most SECONDS (default 600)\n"
	"  -S MAX     at most MAX services at once (default 16)\n"
	"  -t SECONDS a master must prove the key within SECONDS of connecting, and a\n"
	"             session silent that long is dropped (default 30)\n"
	"  -U         unencrypted: speak protocol version 2, in plain text, to masters\n"
	"             given -U too\n"
	"  -x SDIR    the executables in SDIR are services masters may call\n";

static const char synopsis[] =
	"pool [-ablU] [-A ADDR] [-c MAX] [-d DIR] [-G SECONDS] [-i FILE] [-L FILE] [-M FILE] [-n MAX] "
	"[-N MAX] [-r LO-HI] [-t SECONDS] [-x SDIR [-R SECONDS] [-S MAX]] KEY PORT";

struct opts {
	int background, lasting, spool; /* -b, -l, -a */
	int plain; /* -U: version 2, in plain text */
	const char *dir, *addr, *logfile, *metrics, *port, *pidfile; /* pidfile: -i */
	long lo, hi; /* -r; 0: kernel's choice */
	long idle_ms;
	long stop_ms; /* -G */
	long max_proving, max_session, max_grants; /* -c, -n, -N */
	const char *sdir;			   /* -x */
	long run_ms, max_services;		   /* -R, -S */
	int capped;				   /* -R or -S given */
	char *key;
	size_t keylen;
};

struct pool {
	const struct opts *o;
	struct daemon dm;
	struct listener masters; /* masters connect here; empty once no new ones are taken */
	int sigfd;
	int ended; /* without -l: a master said END, so no new masters */
	long long stop_by; /* SIGQUIT: the sessions there are have until then; 0: none came */
	struct linger_set linger; /* connections we are done with */
	struct grant_policy policy;
	struct sessions sessions;
	struct grants grants;
	struct calls calls;
	struct pollfd *pfd;
	size_t pcap;
	unsigned char psk[NOISE_PSK]; /* version 3: the channels' key, from KEY */
	int usr2_said;		      /* SIGUSR2 means nothing here: said once */
	struct status_file status;    /* DIR/.pool-PORT.status, and -M's */
};

/* ---- options ---- */

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = ":aA:bc:d:G:hi:L:lM:n:N:r:R:S:t:UVx:";
	int c, gai;

	o->idle_ms = 30000;
	o->stop_ms = STOP_MS;
	o->max_proving = 32;
	o->max_session = 1000;
	o->max_grants = 4000;
	o->run_ms = 600000;
	o->max_services = 16;
	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'a': o->spool = 1; break;
		case 'A': o->addr = optarg; break;
		case 'b': o->background = 1; break;
		case 'c': o->max_proving = opt_number(optarg, 1, 100000, "-c", &p); break;
		case 'd': o->dir = optarg; break;
		case 'G': o->stop_ms = opt_duration(optarg, 1, 86400000L, "-G", &p); break;
		case 'i': o->pidfile = optarg; break;
		case 'L': o->logfile = optarg; break;
		case 'M': o->metrics = optarg; break;
		case 'l': o->lasting = 1; break;
		case 'n': o->max_session = opt_number(optarg, 1, 1000000, "-n", &p); break;
		case 'N': o->max_grants = opt_number(optarg, 1, 1000000, "-N", &p); break;
		case 'r': opt_port_range(optarg, &o->lo, &o->hi, "-r", &p); break;
		case 'R':
			o->run_ms = opt_duration(optarg, 1, 86400000L, "-R", &p);
			o->capped = 1;
			break;
		case 'S':
			o->max_services = opt_number(optarg, 1, 10000, "-S", &p);
			o->capped = 1;
			break;
		case 'x': o->sdir = optarg; break;
		case 't': o->idle_ms = opt_duration(optarg, 1, 86400000L, "-t", &p); break;
		case 'U': o->plain = 1; break;
		default: err_cmdline(&p);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc != 2)
		err_usage(synopsis, argc < 2 ? "missing operand" : "too many operands");
	if (opt_port(argv[1], &p) < 0)
		err_cmdline(&p);
	if (o->addr && !*o->addr)
		err_usage(synopsis, "-A: empty address");
	if (o->addr && net_check_host(o->addr, &gai) < 0 && !gai)
		err_usage(synopsis, "-A: %s: no such host or address", o->addr);
	if (o->dir && !*o->dir)
		err_usage(synopsis, "-d: empty directory");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->pidfile && !*o->pidfile)
		err_usage(synopsis, "-i: empty file name");
	if (o->sdir && !*o->sdir)
		err_usage(synopsis, "-x: empty directory");
	if (!o->sdir && o->capped)
		err_usage(synopsis, "-R and -S go with -x: they cap the services");
	o->port = argv[1];
	if (opt_key(argv[0], &o->key, &o->keylen, &p) < 0)
		err_cmdline(&p);
	err_cmdline_warn(&p);
}

/* ---- what the modules report: the log's lines ---- */

/* Sessions report to the log, and their ends to what they got. */
static void on_session_event(const struct session_event *ev, void *arg)
{
	struct pool *p = arg;
	static const char kinds[SESSION_EV_KINDS]; /* each kind its own share of the log */
	char text[SESSION_TEXT_MAX];

	if (session_event_text(ev, text, sizeof text))
		err_warn_as(&kinds[ev->type], "%s", text);
	if (ev->type == SESSION_EV_END && !p->o->lasting && !p->ended) {
		/* One master's session is the whole job: no new masters. */
		listener_close(&p->masters);
		p->ended = 1;
	}
	if (ev->type == SESSION_EV_GONE) {
		/* The grants it got and did not use go with it; a call waiting for it too. */
		grants_forget(&p->grants, ev->session);
		calls_forget(&p->calls, ev->session);
	}
}

static int on_request(struct grant_request *rq, void *arg)
{
	struct pool *p = arg;

	return rq->cmd == PROTO_CALL ? calls_start(&p->calls, rq) : grants_port(&p->grants, rq);
}

/* A buffer's binding event, with the buffer's name (its senders' connects are not news). */
static void binding_logged(const struct pool *p, const char *name, const struct binding_event *ev)
{
	static const char kinds[BINDING_EV_KINDS]; /* each kind its own share of the log */
	char text[BINDING_TEXT_MAX];

	if (ev->type != BINDING_EV_ACCEPT && ev->type != BINDING_EV_DONE)
		err_warn_as(&kinds[ev->type], "%s: %s", name,
			    binding_event_text(ev, name, !p->o->plain, text, sizeof text));
}

/* Grants report to the log, and their ends to their sessions. */
static void on_grant_event(const struct grant_event *ev, void *arg)
{
	int saved = errno;

	errno = ev->err;
	if (ev->type == GRANT_EV_ENDED)
		session_grant_ended(ev->owner);
	else if (ev->type == GRANT_EV_BINDING)
		binding_logged(arg, ev->name, ev->binding);
	else if (ev->err)
		err_warn("%s: %s:", ev->name, ev->what);
	else
		err_warn("%s: %s", ev->name, ev->what);
	errno = saved;
}

/* A call's end: the log says how, and its caller hears it. */
static void on_call_event(const struct call_event *ev, void *arg)
{
	int saved = errno;

	(void)arg;
	if (ev->type == CALL_EV_SAID) {
		/* The service's own words, with its name: a log many services share. */
		if (ev->text)
			err_warn("svc %s: %s", ev->name, ev->text);
		else
			err_warn("%s: %llu more line%s of the service's stderr not logged (over %d a "
				 "second)", ev->name, ev->held, err_plural(ev->held), LINELOG_BURST);
		return;
	}
	errno = ev->exec_err;
	if (ev->exec_err)
		err_warn("exec %s:", ev->program);
	if (ev->status >= 0)
		err_warn("%s: service exited %d%s%s", ev->name, ev->status, ev->why ? ": " : "",
			 ev->why ? ev->why : "");
	else
		err_warn("%s: service did not run: %s", ev->name, ev->why ? ev->why : "?");
	if (ev->owner)
		session_call_ended(ev->owner, ev->name, ev->stream, ev->status, ev->why);
	errno = saved;
}

/* ---- the loop ---- */

static void release(struct pool *p)
{
	sessions_free(&p->sessions);
	calls_free(&p->calls);
	linger_free(&p->linger);
	free(p->pfd);
	mem_wipe(p->o->key, p->o->keylen);
	free(p->o->key);
	mem_wipe(p->psk, sizeof p->psk);
}

/* The pool's line, then every buffer's and stream's (grants_status). */
static void fill_status(struct status_text *t, void *arg)
{
	const struct pool *p = arg;

	status_line(t, "pool", p->o->port);
	status_num(t, "sessions", p->sessions.n);
	status_num(t, "buffers", grants_buffers(&p->grants));
	status_num(t, "calls", p->calls.ncalls);
	grants_status(&p->grants, t);
}

/* The status file: kept current, at most once a second; a failure said once (status_tick). */
static long long keep_status(struct pool *p, long long now)
{
	int err;
	long long at = status_tick(&p->status, now, fill_status, p, &err);

	if (err) {
		errno = err;
		err_warn("status file %s:", p->status.path);
	}
	return at;
}

static _Noreturn void teardown(struct pool *p, int sig)
{
	listener_close(&p->masters);
	sessions_close(&p->sessions);
	/* Every service ends with the pool, its whole process group; strays too. */
	calls_end(&p->calls, p->sigfd);
	/* Every buffer saves what nobody read; its senders' streams record where they stopped. */
	grants_free(&p->grants);
	status_close(&p->status);
	err_warn("signal %d: ended", sig);
	release(p);
	exit(EXIT_SIGNAL(sig));
}

/* SIGUSR1: the -L file opened again (logrotate moved it), then what we hold now. */
static void say_status(struct pool *p)
{
	if (err_reopen() < 0)
		err_warn("SIGUSR1: reopening %s:", err_file_path());
	err_warn("status: sessions=%zu proving=%zu grants=%zu buffers=%zu services=%zu "
		 "accepting=%s",
		 p->sessions.n, p->sessions.proving, p->grants.ngrants, grants_buffers(&p->grants),
		 p->calls.ncalls, p->masters.n ? "yes" : "no");
}

/*
 * SIGQUIT: no new master (the listener closes); the sessions there are
 * finish, each to its master's END and its grants' ends, within -G; then
 * the teardown (quit_due). A second one changes nothing.
 */
static void graceful(struct pool *p, long long now)
{
	char secs[OPT_SECS_MAX];

	if (p->stop_by)
		return;
	listener_close(&p->masters);
	p->stop_by = now + p->o->stop_ms;
	err_warn("SIGQUIT: graceful stop: %zu session%s and %zu service%s have %s s to finish",
		 p->sessions.n, err_plural(p->sessions.n), p->calls.ncalls,
		 err_plural(p->calls.ncalls), opt_secs(p->o->stop_ms, secs));
}

/* A graceful stop is over: every session and service finished, or -G ran out. */
static int quit_due(const struct pool *p, long long now)
{
	return p->stop_by && ((!p->sessions.n && !p->calls.ncalls) || now >= p->stop_by);
}

/* Where each part's pollfds are in the poll set. */
struct slices {
	size_t masters, nmasters, linger, nlinger, sessions, nsessions, grants, calls;
};

/* Build the poll set; returns its size, and in *at when the loop must wake. */
static size_t poll_set(struct pool *p, struct slices *sl, long long now, long long *at)
{
	size_t n = 1, need = 1 + LISTENER_MAX + p->linger.n + p->sessions.n +
			     grants_nfds(&p->grants) + calls_nfds(&p->calls);

	if (mem_reserve(&p->pfd, &p->pcap, need, sizeof *p->pfd, 64) < 0)
		err_die(EXIT_RUNTIME, "poll set:");
	p->pfd[0] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
	sl->masters = n;
	n += sl->nmasters = listener_pollfds(&p->masters, p->pfd + n, now);
	*at = deadline_in(listener_timeout(&p->masters, now), now);
	sl->linger = n;
	n += sl->nlinger = linger_pollfds(&p->linger, p->pfd + n);
	*at = deadline_earlier(*at, deadline_in(linger_timeout(&p->linger, now), now));
	sl->sessions = n;
	n += sl->nsessions = sessions_pollfds(&p->sessions, p->pfd + n, now, at);
	sl->grants = n;
	n += grants_pollfds(&p->grants, p->pfd + n, now, at);
	sl->calls = n;
	return n + calls_pollfds(&p->calls, p->pfd + n, now, at);
}

static void loop(struct pool *p)
{
	struct slices sl;

	for (;;) {
		long long now = io_now_ms(), at;
		size_t n;
		unsigned got = 0;
		int sig;

		if (p->ended && !grants_buffers(&p->grants) && !p->sessions.n && !p->linger.n &&
		    !p->calls.ncalls)
			return;
		if (quit_due(p, now))
			teardown(p, SIGQUIT); /* what readers did not take is saved, as at SIGTERM */
		n = poll_set(p, &sl, now, &at);
		at = deadline_earlier(at, keep_status(p, now));
		if (p->stop_by)
			at = deadline_earlier(at, p->stop_by);
		if (poll(p->pfd, (nfds_t)n, deadline_timeout(at, now)) < 0) {
			if (errno != EINTR)
				err_die(EXIT_RUNTIME, "poll:");
			continue;
		}
		if (p->pfd[0].revents && (sig = sig_pending(&got)) != 0) {
			if (sig_teardown_in(got))
				teardown(p, sig_teardown_in(got));
			graceful(p, io_now_ms());
		}
		if (got & SIG_BIT(SIGCHLD))
			calls_reap(&p->calls);
		if (got & SIG_BIT(SIGUSR1))
			say_status(p);
		if ((got & SIG_BIT(SIGUSR2)) && !p->usr2_said++)
			err_warn("SIGUSR2: nothing to reload; ignored");
		calls_handle(&p->calls, p->pfd + sl.calls);
		/* Buffers before sessions: their slices index the poll set as it was built. */
		grants_handle(&p->grants, p->pfd + sl.grants);
		sessions_handle(&p->sessions, p->pfd + sl.sessions, sl.nsessions);
		linger_handle(&p->linger, p->pfd + sl.linger, sl.nlinger, io_now_ms());
		for (size_t k = 0; k < sl.nmasters; k++)
			if (p->pfd[sl.masters + k].revents) {
				sessions_accept(&p->sessions, &p->masters);
				break;
			}
	}
}

/* The modules, wired to each other through the pool. */
static void wire_up(struct pool *p)
{
	const struct opts *o = p->o;
	const unsigned char *psk = o->plain ? NULL : p->psk;

	p->policy = (struct grant_policy){.addr = o->addr, .port_lo = o->lo, .port_hi = o->hi,
					  .next_port = o->lo, .max_session = o->max_session,
					  .psk = psk};
	sessions_init(&p->sessions,
		      &(struct session_config){
			      .key = o->key, .keylen = o->keylen, .psk = psk, .idle_ms = o->idle_ms,
			      .max_proving = (size_t)o->max_proving, .linger = &p->linger,
			      .linger_ms = POOL_LINGER_MS, .on_event = on_session_event,
			      .on_request = on_request, .arg = p});
	grants_init(&p->grants, &(struct grant_config){
					.policy = &p->policy, .dir = o->dir, .lasting = o->lasting,
					.spool = o->spool, .max_grants = o->max_grants,
					.on_event = on_grant_event, .arg = p});
	calls_init(&p->calls, &(struct call_config){
				      .policy = &p->policy, .dir = o->sdir, .run_ms = o->run_ms,
				      .grace_ms = END_GRACE_MS, .max_running = o->max_services,
				      .linger = &p->linger, .linger_ms = POOL_LINGER_MS,
				      .on_event = on_call_event, .arg = p});
}

/* DIR must take FIFOs from us, and -x SDIR be searchable, before any master is told it may come. */
static void check_dirs(const struct opts *o)
{
	int not_dir;

	if (o->dir && io_check_dir(o->dir, 0, &not_dir) < 0)
		err_die(EXIT_RUNTIME, not_dir ? "%s: not a directory" : "%s:", o->dir);
	if (o->dir && fifo_probe_dir(o->dir) < 0)
		err_die(EXIT_RUNTIME, "%s: cannot make buffers there:", o->dir);
	if (o->sdir && io_check_dir(o->sdir, X_OK, &not_dir) < 0)
		err_die(EXIT_RUNTIME, not_dir ? "-x: %s: not a directory" : "-x: %s:", o->sdir);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct pool p = {.o = &o};
	int gai = 0;
	pid_t holder;
	char why[64];

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (o.pidfile && pidfile_open(o.pidfile, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.pidfile, pidfile_why(errno, holder, why, sizeof why));
	check_dirs(&o);
	if (noise_psk_from_key(o.key, o.keylen, p.psk) < 0)
		err_die(EXIT_RUNTIME, "the key:");
	if (o.keylen < KEY_WEAK)
		err_warn("warning: the key is %zu byte%s: whoever records one session can test "
			 "guesses of it offline; make a strong one with head -c 32 /dev/urandom > "
			 "key and give @key",
			 o.keylen, err_plural(o.keylen));
	/* Each grant holds a listener, a FIFO and a connection: take every descriptor allowed. */
	io_raise_nofile();
	switch (daemon_start(&p.dm, o.background, 0)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(p.dm.status); /* the caller's process: the daemon is ready, or gone */
	}
	p.sigfd = sig_init(SIG_OPS);
	if (p.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	/* What a service leaves behind comes back to us, not to init: see calls_reap. */
	if (o.sdir && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		err_die(EXIT_RUNTIME, "prctl:");
	if (listener_open(&p.masters, o.addr, o.port, SOMAXCONN, &gai) < 0)
		err_die(EXIT_RUNTIME, "listen on %s %s: %s", o.addr ? o.addr : "*", o.port,
			net_strerror(gai));
	if (daemon_ready(&p.dm, o.logfile) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", p.dm.failed, err_file_why(errno));
	/* As sshd says it: who watches the foreground (a supervisor's log) knows we serve. */
	err_warn("listening on %s%sport %s", o.addr ? o.addr : "", o.addr ? " " : "", o.port);
	wire_up(&p); /* once ready: what services write to stderr goes to the log */
	grants_recover(&p.grants);
	if (status_open_in(&p.status, o.dir, o.port, o.metrics, "pool") < 0)
		err_warn("no status file: memory");
	loop(&p);
	grants_free(&p.grants);
	status_close(&p.status);
	release(&p);
	return 0;
}
