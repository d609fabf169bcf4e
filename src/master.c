/*
 * master: push a directory of daemons to a remote pool. Proves it knows
 * KEY without sending it, has the pool prove it too, asks for one guarded
 * port per daemon, and starts each daemon with its output going to that
 * port: straight, or through the master, which keeps what the pool has
 * not taken and (-r), when the pool goes away and comes back, resumes
 * every stream exactly where the pool's side stopped. The control
 * connection is client.c's, the daemons and their streams jobs.c's; this
 * file holds the options, the loop and what the run makes of their news.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/client.h"
#include "lib/daemon.h"
#include "lib/ddir.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/io.h"
#include "lib/jobs.h"
#include "lib/keeper.h"
#include "lib/linger.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/pidfile.h"
#include "lib/proc.h"
#include "lib/proto.h"
#include "lib/pump.h"
#include "lib/sig.h"

/* Daemons started between two looks at the sockets (jobs_start_due). */
#define STARTS_A_ROUND 8
#define EXIT_BUSY 75 /* another master runs these daemons (sysexits EX_TEMPFAIL) */

static const char usage_text[] =
	"usage: master [-borU] [-g SECONDS] [-i FILE] [-L FILE] [-N PREFIX] [-t SECONDS]\n"
	"              [-T SECONDS] [-w SECONDS] KEY HOST PORT DDIR\n"
	"       master -x [-boU] [-g SECONDS] [-i FILE] [-L FILE] [-N PREFIX] [-t SECONDS]\n"
	"              [-T SECONDS] [-w SECONDS] KEY HOST PORT DDIR\n"
	"       master -c [-U] [-i FILE] [-t SECONDS] [-T SECONDS] [-w SECONDS]\n"
	"              KEY HOST PORT SERVICE\n"
	"       master -version | -help\n"
	"\n"
	"  KEY        the pool's key, or @FILE to read it from FILE\n"
	"  HOST PORT  where the pool listens (PORT 1024-49151)\n"
	"  DDIR       directory of the daemons: its executable files\n"
	"  -b         background once every daemon has its answer; print the PID\n"
	"  -c         call one SERVICE of the pool, with our stdin as its input and its\n"
	"             output on our stdout\n"
	"  -g SECONDS at teardown, SIGKILL daemons still alive after SECONDS (default 5)\n"
	"  -i FILE    write the PID to FILE once every daemon has its answer, locked: a\n"
	"             second master given FILE refuses to start; removed at exit\n"
	"  -L FILE    diagnostics to FILE once ready, not to stderr or syslog\n"
	"  -N PREFIX  ask for PREFIX.NAME instead of NAME (many hosts, one pool)\n"
	"  -o         when another master runs DDIR, wait for it instead of refusing\n"
	"  -r         resume: when the pool goes away, keep the daemons running, reconnect\n"
	"             and go on where the pool's side stopped\n"
	"  -t SECONDS give the pool SECONDS for each answer (default 30)\n"
	"  -T SECONDS end the daemons after SECONDS (default: no limit)\n"
	"  -U         unencrypted: speak protocol version 2, in plain text, to a pool\n"
	"             given -U too\n"
	"  -w SECONDS wait up to SECONDS for the pool to come up (default: no wait)\n"
	"  -x         DDIR's executables are client portions of the pool's services of\n"
	"             the same names: each talks to its service over its connection\n";

static const char synopsis[] =
	"master [-bcorUx] [-g SECONDS] [-i FILE] [-L FILE] [-N PREFIX] [-t SECONDS] [-T SECONDS] "
	"[-w SECONDS] KEY HOST PORT DDIR|SERVICE";

struct opts {
	int background, overlap_wait, resume;
	int plain; /* -U: version 2, in plain text */
	int call, clients;   /* -c, -x given (they exclude each other) */
	enum jobs_kind kind; /* from them: daemons, client portions of services (-x), a call (-c) */
	long grace_ms, reply_ms, run_ms, wait_ms;
	const char *logfile, *host, *port, *ddir, *prefix, *pidfile; /* pidfile: -i */
	char *key;
	size_t keylen;
};

struct master {
	const struct opts *o;
	struct daemon dm;
	struct client c;
	struct client_config ccfg;
	struct jobs js;
	struct jobs_config jcfg;
	int sigfd, ddirfd, cwdfd;
	int errfd;   /* -L: the daemons' stderr, open from the start; else -1 */
	int ready;   /* readiness reported (-b): every daemon had its first answer */
	int failed;  /* something to exit 1 for */
	int sent_end;
	int bye;	    /* the pool said every grant of ours has ended */
	long long run_by;   /* -T */
	struct linger_set linger;
	unsigned char psk[NOISE_PSK]; /* version 3: the channels' key, from KEY */
	struct pollfd *pfd;	      /* the poll set, room for every job's */
	size_t pcap;
	int usr2_said;		      /* SIGUSR2 means nothing here: said once */
};

/* ---- options ---- */

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = ":bcg:hi:L:N:ort:T:UVw:x";
	int c;

	o->grace_ms = 5000;
	o->reply_ms = 30000;
	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'b': o->background = 1; break;
		case 'c': o->call = 1; break;
		case 'g': o->grace_ms = opt_duration(optarg, 1, 3600000L, "-g", &p); break;
		case 'i': o->pidfile = optarg; break;
		case 'L': o->logfile = optarg; break;
		case 'N': o->prefix = optarg; break;
		case 'o': o->overlap_wait = 1; break;
		case 'r': o->resume = 1; break;
		case 't': o->reply_ms = opt_duration(optarg, 1, 86400000L, "-t", &p); break;
		case 'U': o->plain = 1; break;
		case 'T': o->run_ms = opt_duration(optarg, 1, 31L * 86400000L, "-T", &p); break;
		case 'w': o->wait_ms = opt_duration(optarg, 1, 86400000L, "-w", &p); break;
		case 'x': o->clients = 1; break;
		default: err_cmdline(&p);
		}
	}
	argv += optind;
	argc -= optind;
	o->kind = o->call ? JOBS_CALL : o->clients ? JOBS_CLIENTS : JOBS_DAEMONS;
	if (argc != 4)
		err_usage(synopsis, argc < 4 ? "missing operand" : "too many operands");
	if (!*argv[1])
		err_usage(synopsis, "empty host");
	if (opt_port(argv[2], &p) < 0)
		err_cmdline(&p);
	if (!*argv[3])
		err_usage(synopsis, o->kind == JOBS_CALL ? "empty service name" : "empty daemon directory");
	if (o->kind == JOBS_CALL && !name_ok(argv[3]))
		err_usage(synopsis, "%s: not a service name", argv[3]);
	if (o->call && o->clients)
		err_usage(synopsis, "-c does not go with -x: one service, or a directory of client portions");
	if (o->kind != JOBS_DAEMONS && o->resume)
		err_usage(synopsis, "-r does not go with %s: a service call is not resumed",
			  o->kind == JOBS_CALL ? "-c" : "-x");
	if (o->kind == JOBS_CALL && o->background)
		err_usage(synopsis, "-b does not go with -c: the call is our stdin and stdout");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->pidfile && !*o->pidfile)
		err_usage(synopsis, "-i: empty file name");
	if (o->prefix && (!name_ok(o->prefix) || strlen(o->prefix) >= NAME_MAX_LEN - 1))
		err_usage(synopsis, "-N: '%s' is not a name prefix (%s, up to %d characters)",
			  o->prefix, "A-Za-z0-9._-, not starting with '.' or '-'", NAME_MAX_LEN - 2);
	o->host = argv[1];
	o->port = argv[2];
	o->ddir = argv[3];
	if (opt_key(argv[0], &o->key, &o->keylen, &p) < 0)
		err_cmdline(&p);
	err_cmdline_warn(&p);
}

static _Noreturn void finish(struct master *m, int code);

/* ---- the daemons ---- */

/* An executable that cannot run as a daemon: it was meant to run, so the run fails. */
static void skipped(void *arg, const char *name, const char *why)
{
	struct master *m = arg;

	err_warn("%s/%s: not run: %s", m->o->ddir, name, why);
	m->failed = 1;
}

/*
 * DDIR, open and locked: checked before connecting (a typo should not
 * cost the pool a session); one master per DDIR, the first holding the
 * lock for as long as it runs.
 */
static int open_ddir(const struct opts *o)
{
	int fd = open(o->ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err;
	char why[128];
	pid_t who;

	if (fd < 0)
		err_die(EXIT_RUNTIME, "%s:", o->ddir);
	if (ddir_lock(fd, o->overlap_wait, &who) < 0) {
		err = errno;
		err_die(err == EWOULDBLOCK ? EXIT_BUSY : EXIT_RUNTIME, "%s: %s", o->ddir,
			ddir_lock_why(err, who, why, sizeof why));
	}
	return fd;
}

/* DDIR's daemons (or client portions), or -c's one service call. */
static void list_jobs(struct master *m)
{
	const struct opts *o = m->o;
	char **names = NULL;
	size_t n = 0;

	if (o->kind == JOBS_CALL) {
		if (!jobs_add(&m->js, o->ddir, o->prefix)) {
			if (errno == ENAMETOOLONG)
				err_usage(synopsis, "-N: the prefix makes '%s' too long a name", o->ddir);
			err_die(EXIT_RUNTIME, "memory:");
		}
	} else {
		if (ddir_list(m->ddirfd, o->prefix ? strlen(o->prefix) : 0, &names, &n, skipped, m) < 0)
			err_die(EXIT_RUNTIME, "%s:", o->ddir);
		for (size_t i = 0; i < n; i++)
			if (!jobs_add(&m->js, names[i], o->prefix))
				err_die(EXIT_RUNTIME, errno == ENOMEM ? "daemon list:" : "random stream names:");
		ddir_free(names, n);
	}
}

/* A job's news, in the engine's words: what fails the run is ours to say. */
static void on_job(const struct job_event *ev, void *arg)
{
	struct master *m = arg;
	static const char kinds[JOB_EV_KINDS]; /* each kind its own share of the log */
	char text[JOB_TEXT_MAX];

	err_warn_as(&kinds[ev->type], "%s", job_event_text(ev, text, sizeof text));
	switch (ev->type) {
	case JOB_EV_CANNOT_START:
	case JOB_EV_ENDED:
	case JOB_EV_CALL_REFUSED:
	case JOB_EV_REMOTE_FAILED:
	case JOB_EV_UNREPORTED: m->failed = 1; break;
	/* -r: a stream that goes on is no failure yet. */
	case JOB_EV_CONNECT_FAILED:
	case JOB_EV_LOST:
	case JOB_EV_REFUSED: m->failed |= !ev->resend; break;
	case JOB_EV_RESUMED:
	case JOB_EV_LACKS: break;
	}
}

/* A relay child's fault, on stderr or in -L. */
static void say_fault(const struct pump_fault *f, void *arg)
{
	char why[512];

	(void)arg;
	err_warn("%s", pump_fault_text(f, why, sizeof why));
}

/* In a relay child (-x, -c): nothing of the master's but its own connection. */
static void in_child(void *arg)
{
	struct master *m = arg;

	client_abandon(&m->c);
	linger_free(&m->linger);
}

/* ---- the pool's news ---- */

static void ready(struct master *m)
{
	if (m->ready)
		return;
	m->ready = 1;
	client_set_ready(&m->c);
	/* -b: the caller learns nothing went well only if something did. */
	if (m->o->background && m->js.started == 0) {
		err_warn("no daemon could be started");
		finish(m, EXIT_RUNTIME);
	}
	if (daemon_ready(&m->dm, m->o->logfile) < 0) {
		err_warn("%s: %s", m->dm.failed, err_file_why(errno));
		finish(m, EXIT_RUNTIME);
	}
}

/* Ask for every port wanted now (jobs_ask); END once every stream has what it needs. */
static void ask(struct master *m, long long now)
{
	struct job *failed;
	int answered;

	if (m->c.state != CLIENT_RUN)
		return;
	if ((answered = jobs_ask(&m->js, &m->c, now, &failed)) < 0) {
		err_warn("%s: asking the pool:", failed->name);
		finish(m, EXIT_RUNTIME);
	}
	if (!answered)
		return;
	if (m->js.n == 0) {
		err_warn("%s: no daemons", m->o->ddir);
		m->failed = 1;
	}
	ready(m);
	/* -r: END waits until no stream needs a port any more. */
	if (m->o->resume && !jobs_streams_over(&m->js))
		return;
	if (!m->sent_end) {
		if (client_end(&m->c) < 0)
			err_warn("END:");
		m->sent_end = 1;
	}
}

/*
 * The control connection is gone. Without -r that ends the run (once the
 * daemons' work is done, it is only the pool saying goodbye); with -r the
 * daemons go on and the client connects again.
 */
static void ctl_lost(struct master *m, const char *why)
{
	/*
	 * After BYE the pool has every stream whole (each grant ended with its
	 * sender's close): a count still on its way on a data connection (a
	 * lost segment, sent again after the control connection's close) is
	 * waited for by the job, not taken for a loss.
	 */
	if (m->sent_end && (m->bye || (m->js.running == 0 && jobs_over(&m->js)))) {
		client_stop(&m->c); /* the session was over anyway */
		return;
	}
	jobs_unreported(&m->js);
	if (!m->o->resume) {
		err_warn("the pool closed the connection%s%s%s", *why ? ": " : "", why,
			 m->js.running ? "; ending the daemons" : "");
		finish(m, EXIT_RUNTIME);
	}
	err_warn("lost the pool (%s); the daemons go on, connecting again", *why ? why : "closed");
	jobs_unask(&m->js);
	m->sent_end = 0;
}

static void on_client(const struct client_event *ev, void *arg)
{
	struct master *m = arg;
	long long now = io_now_ms();

	switch (ev->type) {
	case CLIENT_EV_SESSION: ask(m, now); break;
	case CLIENT_EV_ANSWER: jobs_answer(&m->js, &m->c, ev->tag, ev->msg, now); break;
	case CLIENT_EV_EXIT: jobs_remote_exit(&m->js, ev->msg); break;
	case CLIENT_EV_BYE: m->bye = 1; break;
	case CLIENT_EV_NOTE: err_warn("%s", ev->why); break;
	case CLIENT_EV_LOST: ctl_lost(m, ev->why); break;
	case CLIENT_EV_FATAL:
		err_warn("%s%s", ev->why,
			 ev->session_ended && m->js.running ? "; ending the daemons" : "");
		finish(m, EXIT_RUNTIME);
	}
}

/* ---- the run ---- */

static _Noreturn void finish(struct master *m, int code)
{
	jobs_end(&m->js, m->o->grace_ms, m->sigfd);
	/* Without -r each relayed stream is sent to its end: the daemons' last words too. */
	if (!m->o->resume)
		jobs_drain(&m->js, io_now_ms() + m->o->grace_ms);
	jobs_free(&m->js);
	free(m->pfd);
	linger_free(&m->linger);
	/* Our END record: the pool tells a finished session from a cut one. */
	client_free(&m->c);
	mem_wipe(m->psk, sizeof m->psk);
	mem_wipe(m->o->key, m->o->keylen);
	free(m->o->key);
	exit(code);
}

/* Done: every stream delivered, the pool told (END), or (-r) no pool to tell now. */
static int done(const struct master *m)
{
	return m->js.running == 0 && jobs_over(&m->js) && m->linger.n == 0 &&
	       (m->sent_end || (m->o->resume && m->c.state == CLIENT_DOWN));
}

/* The poll set: the self-pipe, the pool, every job's slice, the lingering ends. */
static size_t poll_set(struct master *m, long long now, long long *at, int *ctl_at, size_t *nlin)
{
	size_t n = 0;

	if (mem_reserve(&m->pfd, &m->pcap, 2 + 3 * m->js.n + m->linger.n, sizeof *m->pfd, 64) < 0)
		err_die(EXIT_RUNTIME, "poll set:");
	m->pfd[n++] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
	*ctl_at = client_pollfd(&m->c, &m->pfd[n]) ? (int)n++ : -1;
	*at = deadline_earlier(client_due(&m->c, now), m->run_by ? m->run_by : -1);
	n += jobs_pollfds(&m->js, m->pfd + n, now, at);
	*nlin = linger_pollfds(&m->linger, m->pfd + n);
	*at = deadline_earlier(*at, deadline_in(linger_timeout(&m->linger, now), now));
	return n + *nlin;
}

/* SIGUSR1: the -L file opened again (logrotate moved it), then what we hold now. */
static void say_status(struct master *m)
{
	/* The daemons' standard error too, on the same descriptor number. */
	if (m->o->logfile && err_reopen_also(m->o->logfile, m->errfd) < 0)
		err_warn("SIGUSR1: reopening %s:", m->o->logfile);
	err_warn("status: daemons=%zu started=%zu running=%zu failed=%s", m->js.n, m->js.started,
		 m->js.running, m->failed ? "yes" : "no");
}

static void loop(struct master *m)
{
	for (;;) {
		long long now = io_now_ms(), at;
		int sig, status, ctl_at;
		unsigned got = 0;
		size_t n, nlin;
		pid_t pid;

		if (done(m))
			finish(m, m->failed ? EXIT_RUNTIME : 0);
		n = poll_set(m, now, &at, &ctl_at, &nlin);
		if (poll(m->pfd, n, deadline_timeout(at, now)) < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "poll:");
		now = io_now_ms();
		if (m->pfd[0].revents && (sig = sig_pending(&got)) != 0) {
			err_warn("signal %d: ending %zu daemon%s", sig, m->js.running,
				 err_plural(m->js.running));
			finish(m, EXIT_SIGNAL(sig));
		}
		if (got & SIG_BIT(SIGUSR1))
			say_status(m);
		if ((got & SIG_BIT(SIGUSR2)) && !m->usr2_said++)
			err_warn("SIGUSR2: nothing to reload; ignored");
		if (m->run_by && now >= m->run_by) {
			char secs[OPT_SECS_MAX];

			err_warn("deadline: %s s are up; ending %zu daemon%s",
				 opt_secs(m->o->run_ms, secs), m->js.running, err_plural(m->js.running));
			finish(m, EXIT_RUNTIME);
		}
		jobs_handle(&m->js, m->pfd + 1 + (ctl_at >= 0), now); /* after the pipe, the pool */
		jobs_start_due(&m->js, STARTS_A_ROUND);
		while ((pid = proc_reap(&status)) > 0)
			jobs_reaped(&m->js, pid, status);
		linger_handle(&m->linger, m->pfd + n - nlin, nlin, now);
		client_handle(&m->c, ctl_at >= 0 ? m->pfd[ctl_at].revents : 0, now);
		ask(m, now);
	}
}

/* What the engines are given: the options, our descriptors, where news goes. */
static void configure(struct master *m, const struct opts *o)
{
	m->ccfg = (struct client_config){
		.host = o->host, .port = o->port, .key = o->key, .keylen = o->keylen,
		.psk = m->psk, .plain = o->plain, .resume = o->resume,
		.calls = o->kind != JOBS_DAEMONS, .reply_ms = o->reply_ms, .wait_ms = o->wait_ms,
		.on_event = on_client, .arg = m};
	/*
	 * Every daemon's output comes through us: with -r, to keep what the
	 * pool has not taken; in version 3, to seal it (the channel is ours,
	 * not the daemon's).
	 */
	m->jcfg = (struct jobs_config){
		.kind = o->kind, .relayed = o->kind == JOBS_DAEMONS && (o->resume || !o->plain),
		.resume = o->resume, .psk = o->plain ? NULL : m->psk, .dirfd = m->ddirfd,
		.cwdfd = m->cwdfd, .errfd = m->errfd, .ddir = o->ddir, .host = o->host,
		.port = o->port, .reply_ms = o->reply_ms, .linger = &m->linger,
		.in_child = in_child, .on_fault = say_fault, .on_event = on_job,
		.arg = m};
	jobs_init(&m->js, &m->jcfg);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct master m = {.o = &o, .ddirfd = -1, .errfd = -1};
	int gai = 0, kept;
	pid_t holder;
	char why[64];

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (o.pidfile && pidfile_open(o.pidfile, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.pidfile, pidfile_why(errno, holder, why, sizeof why));
	m.cwdfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.cwdfd < 0)
		err_die(EXIT_RUNTIME, "current directory:");
	if (noise_psk_from_key(o.key, o.keylen, m.psk) < 0)
		err_die(EXIT_RUNTIME, "the key:");
	if (o.kind != JOBS_CALL)
		m.ddirfd = open_ddir(&o);
	/* The daemons write to -L from their start: not to a caller (cron's mail) we leave. */
	if (o.logfile && (m.errfd = err_open_file(o.logfile)) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.logfile, err_file_why(errno));
	configure(&m, &o);
	list_jobs(&m);
	if (client_init(&m.c, &m.ccfg, &gai) < 0)
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, net_strerror(gai));
	switch (daemon_start(&m.dm, o.background, 0)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(m.dm.status); /* the caller's process: the daemon is ready, or gone */
	}
	/* The PID the caller sees is the keeper's: whatever ends it, no daemon outlives us. */
	m.dm.pid = getpid();
	switch (keeper_start(o.grace_ms, o.background, m.dm.notify_fd, &kept)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: /* the keeper, once all is over; its PID is the one in -i's file */
		pidfile_remove();
		_exit(kept);
	}
	m.sigfd = sig_init(SIG_OPS);
	if (m.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	m.run_by = o.run_ms ? io_now_ms() + o.run_ms : 0;
	loop(&m);
}
