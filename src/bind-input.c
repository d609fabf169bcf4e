/*
 * bind-input: listen on a TCP port and pour what senders send into a FIFO
 * that the shell reads with its own `read`. A thin main over the binding
 * engine (src/lib/binding.h, binding*.c), which pool embeds too.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/binding.h"
#include "lib/channel.h"
#include "lib/daemon.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/io.h"
#include "lib/listener.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/noise.h"
#include "lib/opt.h"
#include "lib/pidfile.h"
#include "lib/sig.h"
#include "lib/status.h"

/* One binding per process: a 1 MiB pipe costs little and saves wake-ups. */
#define PIPE_SIZE (1u << 20)

static const char usage_text[] =
	"usage: bind-input [-1aFR] [-A ADDR] [-c MAX] [-i FILE] [-k KEY|@FILE] [-m BYTES]\n"
	"                  [-L FILE] [-M FILE] ID PORT\n"
	"       bind-input -version | -help\n"
	"\n"
	"  -1       once: one sender; end when it closed and a reader took everything\n"
	"  -a       spool: append to a regular file at the buffer path, kept afterwards\n"
	"  -A ADDR  listen on ADDR only (every address it names); default: every address\n"
	"  -c MAX   serve at most MAX senders at once (default 64); more wait\n"
	"  -F       stay in the foreground; still print the PID once listening\n"
	"  -i FILE  write the PID to FILE once listening, locked: a second bind-input\n"
	"           given FILE refuses to start; removed at exit\n"
	"  -k KEY   every sender speaks the encrypted channel under KEY, or the key in\n"
	"           @FILE (make one: head -c 32 /dev/urandom > FILE); see SECURITY\n"
	"  -L FILE  diagnostics to FILE instead of syslog\n"
	"  -M FILE  keep the status in FILE too, in node_exporter's textfile format\n"
	"  -m BYTES hold at most BYTES beyond the pipe while nobody reads (default 1M;\n"
	"           suffixes K, M, G)\n"
	"  -R       raw: pass senders' bytes unchanged (no newline ends a sender's\n"
	"           unterminated last line)\n"
	"\n"
	"  ID names a FIFO in $BIND_DIR (default: the current directory); an ID\n"
	"  containing '/' is the FIFO's path. PORT is 1024-49151.\n";

static const char synopsis[] =
	"bind-input [-1aFR] [-A ADDR] [-c MAX] [-i FILE] [-k KEY|@FILE] [-m BYTES] [-L FILE] "
	"[-M FILE] ID PORT";

struct opts {
	int once, spool, foreground, raw;
	long maxconn, membytes;
	const char *addr, *logfile, *metrics, *id, *port; /* addr: -A, NULL for every address */
	const char *pidfile;				  /* -i */
	char *path; /* the buffer, resolved */
	int chan;   /* -k */
	unsigned char psk[NOISE_PSK];
	unsigned long closed;		 /* senders that closed, for the status line */
	unsigned long long closed_bytes; /* ... and what they sent */
	int usr2_said;			 /* SIGUSR2 means nothing here: said once */
};


static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = "1aA:Fc:hi:k:L:M:m:RV";
	const char *dir = getenv("BIND_DIR");
	int c, gai;

	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case '1': o->once = 1; break;
		case 'a': o->spool = 1; break;
		case 'A': o->addr = optarg; break;
		case 'c': o->maxconn = opt_number(optarg, 1, 4096, "-c", &p); break;
		case 'F': o->foreground = 1; break;
		case 'i': o->pidfile = optarg; break;
		case 'k':
			opt_psk(optarg, o->psk, &p);
			o->chan = 1;
			break;
		case 'L': o->logfile = optarg; break;
		case 'M': o->metrics = optarg; break;
		case 'm': o->membytes = opt_size(optarg, 1024, 1L << 30, "-m", &p); break;
		case 'R': o->raw = 1; break;
		default: err_cmdline(&p);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc < 2)
		err_usage(synopsis, argc ? "missing port" : "missing id and port");
	if (argc > 2)
		err_usage(synopsis, "too many operands");
	o->id = argv[0];
	o->port = argv[1];
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->metrics && !*o->metrics)
		err_usage(synopsis, "-M: empty file name");
	if (o->pidfile && !*o->pidfile)
		err_usage(synopsis, "-i: empty file name");
	if (fifo_check_id(o->id) < 0)
		err_usage(synopsis, "bad id: %s", FIFO_ID_RULE);
	if (opt_port(o->port, &p) < 0)
		err_cmdline(&p);
	if (o->addr && !*o->addr)
		err_usage(synopsis, "-A: empty address");
	/* Before anything is made: a name that is no address is the command line's fault. */
	if (o->addr && net_check_host(o->addr, &gai) < 0 && !gai)
		err_usage(synopsis, "-A: %s: no such host or address", o->addr);
	o->path = fifo_resolve(o->id, dir);
	if (!o->path)
		err_die(EXIT_RUNTIME, "%s:", o->id);
	err_cmdline_warn(&p);
}

static void on_event(const struct binding_event *ev, void *arg)
{
	struct opts *o = arg;
	static const char kinds[BINDING_EV_KINDS]; /* each kind its own share of the log */
	char text[BINDING_TEXT_MAX];

	if (ev->type == BINDING_EV_CLOSE) {
		o->closed++;
		o->closed_bytes += ev->bytes;
	}
	err_warn_as(&kinds[ev->type], "%s: %s", o->id,
		    binding_event_text(ev, o->path, o->chan, text, sizeof text));
}

static struct binding *open_binding(struct opts *o)
{
	struct listener l;
	struct binding_config cfg = {
		.path = o->path,
		.listener = &l,
		.flags = (o->once ? BINDING_ONCE : 0) | (o->spool ? BINDING_SPOOL : 0) |
			 (o->raw ? BINDING_RAW : 0),
		.max_conns = (size_t)o->maxconn,
		.mem_cap = (size_t)o->membytes,
		.on_event = on_event,
		.arg = o,
		.pipe_size = PIPE_SIZE,
		.psk = o->chan ? o->psk : NULL,
	};
	struct binding *b;
	pid_t holder = 0;
	char why[64];
	int gai = 0;

	if (listener_open(&l, o->addr, o->port, SOMAXCONN, &gai) < 0) {
		if (o->addr)
			err_die(EXIT_RUNTIME, "listen on %s %s: %s", o->addr, o->port,
				net_strerror(gai));
		err_die(EXIT_RUNTIME, "listen on port %s: %s", o->port, net_strerror(gai));
	}
	b = binding_open(&cfg, &holder, &gai);
	if (!b)
		err_die(EXIT_RUNTIME, "%s: %s", o->path,
			fifo_why(errno, o->spool, holder, why, sizeof why));
	return b;
}

/* SIGUSR1: the -L file opened again (logrotate moved it), then what we hold now. */
static void say_status(struct opts *o, const struct binding *b)
{
	struct binding_stats st;

	if (err_reopen() < 0)
		err_warn("%s: SIGUSR1: reopening %s:", o->id, err_file_path());
	binding_stats(b, &st);
	err_warn("%s: status: senders=%zu bytes=%llu closed=%lu closed_bytes=%llu unread=%zu "
		 "buffer=%s",
		 o->id, st.senders, st.bytes, o->closed, o->closed_bytes, st.unread, o->path);
}

static struct status_file status;

/* What a status round reads. */
struct status_of {
	const struct opts *o;
	const struct binding *b;
};

static void fill_status(struct status_text *t, void *arg)
{
	const struct status_of *of = arg;

	binding_status(of->b, t, of->o->id);
}

/* The status file: kept current, at most once a second; a failure said once (status_tick). */
static long long keep_status(const struct opts *o, const struct binding *b, long long now)
{
	struct status_of of = {o, b};
	int err;
	long long at = status_tick(&status, now, fill_status, &of, &err);

	if (err) {
		errno = err;
		err_warn("%s: status file %s:", o->id, status.path);
	}
	return at;
}

static _Noreturn void finish(struct opts *o, struct binding *b, int code)
{
	long long saved = binding_close(b, 1); /* it tells what it saved, and where (on_event) */

	status_close(&status);
	mem_wipe(o->psk, sizeof o->psk);
	free(o->path);
	exit(saved < 0 && code == 0 ? EXIT_RUNTIME : code);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct daemon d;
	struct binding *b;
	struct pollfd *pfd;
	int sigfd;
	pid_t holder;
	char why[64];

	err_init(argv[0]);
	parse(argc, argv, &o);
	if (o.pidfile && pidfile_open(o.pidfile, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.pidfile, pidfile_why(errno, holder, why, sizeof why));
	switch (daemon_start(&d, !o.foreground, 1)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(d.status); /* the caller's process: the daemon is ready, or gone */
	}
	sigfd = sig_init(SIG_OPS);
	if (sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	b = open_binding(&o);
	pfd = calloc(binding_nfds(b) + 1, sizeof *pfd);
	if (!pfd) {
		binding_close(b, 0);
		err_die(EXIT_RUNTIME, "memory:");
	}
	/* The status is there once the PID is out: a script may read it at once. */
	if (status_open_beside(&status, o.path, o.metrics, "bind-input") < 0)
		err_warn("%s: no status file: memory", o.id);
	keep_status(&o, b, io_now_ms());
	if (daemon_ready(&d, o.logfile) < 0) {
		int saved = errno;
		free(pfd);
		status_close(&status);
		binding_close(b, 0);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s: %s", d.failed, err_file_why(errno));
	}
	err_warn("%s: listening on %s%sport %s, buffer %s", o.id, o.addr ? o.addr : "",
		 o.addr ? " " : "", o.port, o.path);

	for (;;) {
		size_t n = 1;
		unsigned got = 0;
		int sig;
		long long now = io_now_ms();
		long long at = deadline_earlier(keep_status(&o, b, now),
						deadline_in(binding_timeout(b), now));

		pfd[0] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		n += binding_pollfds(b, pfd + 1);
		if (poll(pfd, (nfds_t)n, deadline_timeout(at, now)) < 0) {
			if (errno == EINTR)
				continue;
			err_warn("poll:");
			free(pfd);
			finish(&o, b, EXIT_RUNTIME);
		}
		if (pfd[0].revents && (sig = sig_pending(&got))) {
			err_warn("%s: signal %d: tearing down", o.id, sig);
			free(pfd);
			finish(&o, b, EXIT_SIGNAL(sig));
		}
		if (got & SIG_BIT(SIGUSR1))
			say_status(&o, b);
		if ((got & SIG_BIT(SIGUSR2)) && !o.usr2_said++)
			err_warn("%s: SIGUSR2: nothing to reload; ignored", o.id);
		if (binding_handle(b, pfd + 1, n - 1) < 0) {
			err_warn("%s: writing %s:", o.id, o.path);
			free(pfd);
			finish(&o, b, EXIT_RUNTIME);
		}
		if (binding_done(b)) {
			free(pfd);
			finish(&o, b, 0);
		}
	}
}
