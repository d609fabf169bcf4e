/*
 * bind-output: connect to HOST PORT and send, in order, whatever any
 * writer writes into a FIFO the shell can `echo` into. With -r, survive
 * the peer going away: queue, reconnect with backoff, send the queue
 * first.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/channel.h"
#include "lib/connector.h"
#include "lib/daemon.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/io.h"
#include "lib/linger.h"
#include "lib/net.h"
#include "lib/noise.h"
#include "lib/opt.h"
#include "lib/pidfile.h"
#include "lib/queue.h"
#include "lib/sig.h"
#include "lib/status.h"
#include "lib/stream.h"

/*
 * Bytes moved per read from the FIFO. The data crosses user space: on
 * loopback, read + send with a 256 KiB buffer measured 1.2-1.3x nc, while
 * splice() from the pipe to the socket measured 0.8-1.0x nc, because the
 * receiver then spent about twice the CPU taking the spliced pages
 * (scripts/bench-bind.sh; commit message of this change).
 */
#define CHUNK (256u << 10)
#define IDLE_MS 1000 /* give the buffer back after this long with nothing to send */
#define TEARDOWN_MS 5000      /* the whole teardown: bind-output(1), SIGNALS */
#define CONFIRM_MS 1500	      /* its last part: the receiver takes what was sent, after the cut */
#define FLIGHT_MS 500	      /* its very end: what is in flight lands before a reset */
#define TEARDOWN_DRAIN_MS 500 /* the receiver's close, after it confirmed everything */
#define SPILL_TAKE (16u << 20) /* a lost connection: what is read from the FIFO before the cut */
#define SEAL_MS 1000	      /* a connection lost: how long writers may finish before the spill */
#define ACK_POLL_MS 10	      /* teardown: how often to look for the last acknowledgements */
#define MEM_DEFAULT (1L << 20)
#define PIPE_SIZE (1u << 20) /* fewer wake-ups for bulk writers; best effort */

static const char usage_text[] =
	"usage: bind-output [-rF] [-i FILE] [-k KEY|@FILE] [-m BYTES] [-L FILE] [-M FILE]\n"
	"                   ID HOST PORT\n"
	"       bind-output -version | -help\n"
	"\n"
	"  -F       stay in the foreground; still print the PID once connected\n"
	"  -i FILE  write the PID to FILE once connected, locked: a second bind-output\n"
	"           given FILE refuses to start; removed at exit\n"
	"  -k KEY   speak the encrypted channel under KEY, or the key in @FILE (make\n"
	"           one: head -c 32 /dev/urandom > FILE); see SECURITY\n"
	"  -L FILE  diagnostics to FILE instead of syslog\n"
	"  -M FILE  keep the status in FILE too, in node_exporter's textfile format\n"
	"  -m BYTES with -r, queue at most BYTES while disconnected (default 1M;\n"
	"           suffixes K, M, G); then writers block\n"
	"  -r       reconnect when the connection ends (backoff 100 ms to 30 s)\n"
	"\n"
	"  ID names a FIFO in $BIND_DIR (default: the current directory); an ID\n"
	"  containing '/' is the FIFO's path. PORT is 1024-49151.\n";

static const char synopsis[] =
	"bind-output [-rF] [-i FILE] [-k KEY|@FILE] [-m BYTES] [-L FILE] [-M FILE] ID HOST PORT";

struct opts {
	int reconnect, foreground;
	long membytes;
	const char *logfile, *metrics, *id, *host, *port;
	const char *pidfile; /* -i */
	char *path;
	int chan; /* -k */
	unsigned char psk[NOISE_PSK];
};

/*
 * The daemon: one FIFO, one connection (or none, between tries), and the
 * stream between them (stream.h), which keeps every byte sent until the
 * receiver confirmed it, so a broken connection loses nothing we could
 * know of.
 */
struct sender {
	const struct opts *o;
	struct fifo fifo;
	int sigfd;
	struct connector conn;
	struct stream st;
	char *rest; /* teardown: what the FIFO's writers wrote after the cut-off (fifo_cut) */
	size_t nrest;
	int ending; /* tearing down: the receiver's close after our end is no news */
	int usr2_said; /* SIGUSR2 means nothing here: said once */
	struct status_file status; /* .ID.status beside the FIFO, and -M's */
};

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = "Fhi:k:L:M:m:rV";
	int c;

	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'F': o->foreground = 1; break;
		case 'i': o->pidfile = optarg; break;
		case 'k':
			opt_psk(optarg, o->psk, &p);
			o->chan = 1;
			break;
		case 'L': o->logfile = optarg; break;
		case 'M': o->metrics = optarg; break;
		case 'm': o->membytes = opt_size(optarg, 1024, 1L << 30, "-m", &p); break;
		case 'r': o->reconnect = 1; break;
		default: err_cmdline(&p);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc < 3)
		err_usage(synopsis, "missing operand (id host port)");
	if (argc > 3)
		err_usage(synopsis, "too many operands");
	o->id = argv[0];
	o->host = argv[1];
	o->port = argv[2];
	if (!o->membytes)
		o->membytes = MEM_DEFAULT;
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->pidfile && !*o->pidfile)
		err_usage(synopsis, "-i: empty file name");
	if (fifo_check_id(o->id) < 0)
		err_usage(synopsis, "bad id: %s", FIFO_ID_RULE);
	if (!*o->host)
		err_usage(synopsis, "empty host");
	if (opt_port(o->port, &p) < 0)
		err_cmdline(&p);
	o->path = fifo_resolve(o->id, getenv("BIND_DIR"));
	if (!o->path)
		err_die(EXIT_RUNTIME, "%s:", o->id);
	err_cmdline_warn(&p);
}

static int connected(const struct sender *s)
{
	return s->st.fd >= 0;
}

/*
 * Move up to max bytes (at most CHUNK) from the FIFO to the stream's tail.
 * Returns the bytes, 0 at end of file (sealed: every writer has closed),
 * or -1 with errno (EAGAIN: nothing there now).
 */
static ssize_t fifo_to_stream(struct sender *s, size_t max, long long deadline)
{
	char *t;
	ssize_t r;

	if (max > CHUNK)
		max = CHUNK;
	if (!max) {
		errno = EAGAIN;
		return -1;
	}
	if (!(t = stream_tail(&s->st, max)))
		return -1;
	r = s->fifo.sealed ? fifo_drain(&s->fifo, t, max, deadline) : io_read(s->fifo.fd, t, max);
	if (r > 0)
		stream_commit(&s->st, (size_t)r);
	return r;
}

/*
 * The FIFO ends: sealed (no new writer), read into the stream until its
 * writers are done or by passes (at most SPILL_TAKE), then, if one still
 * writes, cut exactly (fifo_cut): what it wrote and we did not read comes
 * back in s->rest, and its next write fails.
 */
static void fifo_take(struct sender *s, long long by)
{
	size_t took = 0;
	ssize_t r = -1;

	if (fifo_seal(&s->fifo) < 0 || s->fifo.fd < 0)
		return;
	while (took < SPILL_TAKE && (r = fifo_to_stream(s, CHUNK, by)) > 0)
		took += (size_t)r;
	if (r == 0)
		return; /* every writer closed, nothing left */
	if (fifo_cut(&s->fifo, &s->rest, &s->nrest) < 0)
		err_warn("%s: cutting %s off its writers:", s->o->id, s->o->path);
}

/*
 * Save what was not delivered, remove the FIFO, exit. In order: what the
 * receiver never confirmed, what was never sent, what the FIFO's writers
 * wrote after that (read until they are done, within the deadline, and
 * then cut off exactly).
 */
/* The binding's line: where it sends, and how far. */
static void fill_status(struct status_text *t, void *arg)
{
	const struct sender *s = arg;
	char to[300];

	snprintf(to, sizeof to, "%s:%s", s->o->host, s->o->port);
	status_line(t, "output", s->o->id);
	status_label(t, "to", to);
	status_label(t, "connected", s->st.fd >= 0 ? "yes" : "no");
	status_num(t, "sent", s->st.cbase + s->st.csent);
	status_num(t, "confirmed", s->st.base);
	status_num(t, "held", stream_held(&s->st));
}

/* The status file: kept current, at most once a second; a failure said once (status_tick). */
static long long keep_status(struct sender *s, long long now)
{
	int err;
	long long at = status_tick(&s->status, now, fill_status, s, &err);

	if (err) {
		errno = err;
		err_warn("%s: status file %s:", s->o->id, s->status.path);
	}
	return at;
}

static _Noreturn void finish(struct sender *s, int code, long long deadline)
{
	struct iovec iov[2];
	size_t n = 0, len;
	const char *p;
	long long saved;
	int keep;

	/* What the kernel has it delivers after us: only what it never had is saved. */
	stream_hand_over(&s->st, &keep);
	fifo_take(s, deadline);
	p = queue_unsent(&s->st.q, &len);
	if (len)
		iov[n++] = (struct iovec){(void *)p, len};
	if (s->nrest)
		iov[n++] = (struct iovec){s->rest, s->nrest};
	saved = fifo_spill(&s->fifo, iov, n, n, deadline);
	if (saved < 0)
		err_warn("%s: saving unsent bytes to %s%s:", s->o->id, s->o->path, FIFO_UNREAD);
	else if (saved > 0 && s->fifo.unread_why)
		err_warn("%s: %s%s %s, not touched; %lld unsent bytes saved to %s instead", s->o->id,
			 s->o->path, FIFO_UNREAD, s->fifo.unread_why, saved, s->fifo.unread);
	else if (saved > 0)
		err_warn("%s: %lld unsent bytes saved to %s", s->o->id, saved, s->fifo.unread);
	fifo_close(&s->fifo);
	if (keep >= 0 && linger_behind(&keep, 1, LINGER_BEHIND_MS) < 0) {
		err_warn("%s: keeping the connection open for the receiver:", s->o->id);
		close(keep);
	}
	connector_free(&s->conn);
	stream_free(&s->st);
	status_close(&s->status);
	free(s->rest);
	exit(saved < 0 && code == 0 ? EXIT_RUNTIME : code);
}

/* The connection broke: say so once, with the counts; save or keep what it did not deliver. */
static void lost(struct sender *s, int err)
{
	unsigned long long unacked, sent = s->st.csent;
	int channel = s->st.ch != NULL;

	stream_confirm(&s->st);
	unacked = s->st.q.sent;
	errno = err ? err : EPIPE;
	err_warn("%s: connection to %s %s lost: %s; %llu bytes sent on it, %llu acknowledged, "
		 "%llu not: %s",
		 s->o->id, s->o->host, s->o->port,
		 channel ? channel_strerror(errno, 0) : strerror(errno), sent, sent - unacked, unacked,
		 s->o->reconnect ? "they go first once reconnected" : "saved");
	stream_lost(&s->st); /* the unacknowledged tail is sent again, first */
	if (!s->o->reconnect)
		finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
	connector_lost(&s->conn, io_now_ms());
}

/* A connection is made: the stream takes it over (-k: after the handshake). 0, or -1 with errno. */
static int conn_open(struct sender *s, int fd)
{
	return stream_open(&s->st, fd, s->o->chan ? s->o->psk : NULL, CHANNEL_BIND);
}

/* A connect under way, or due: once it is made, what was not confirmed goes first. */
static void reconnect(struct sender *s, short revents)
{
	int r = connector_step(&s->conn, revents, io_now_ms());
	size_t held = stream_held(&s->st);

	if (r != 1)
		return; /* a failed round waits for the backoff by itself */
	if (conn_open(s, connector_take(&s->conn)) < 0) {
		err_warn("%s: %s %s: %s; retrying with backoff", s->o->id, s->o->host, s->o->port,
			 channel_strerror(errno, 1));
		connector_lost(&s->conn, io_now_ms());
		return;
	}
	err_warn("%s: reconnected to %s %s; %zu bytes to send first", s->o->id, s->o->host,
		 s->o->port, held);
}

/*
 * The receiver's end came. Its FIN says it will send no more, not that it
 * stops reading (a `socket -s` or `nc -N` receiver half-closes at once):
 * sending goes on. But bind-input, which counts what it takes, ends its
 * stream only after ours, or when it stops taking it.
 */
static void peer_ended(struct sender *s)
{
	if (s->st.peer_took)
		return; /* after taking all of ours: the end a teardown waits for */
	if (s->st.confirm == STREAM_BY_COUNTS) {
		lost(s, ECONNABORTED);
		return;
	}
	if (s->ending)
		return;
	if (s->st.ch)
		err_warn("%s: %s %s ended its stream; sending goes on", s->o->id, s->o->host,
			 s->o->port);
	else
		err_warn("%s: %s %s closed the connection on its side; sending goes on", s->o->id,
			 s->o->host, s->o->port);
}

/* The connection's events: counts, the receiver's end, sending. 0, or -1 when it was lost. */
static int conn_step(struct sender *s, short revents)
{
	int r = stream_step(&s->st, revents, io_now_ms());

	if (r < 0) {
		lost(s, errno);
		return -1;
	}
	if (r == 1)
		peer_ended(s);
	return connected(s) ? 0 : -1;
}

/* FIFO to socket while nothing waits unsent, through the stream. */
static int pump(struct sender *s)
{
	for (int rounds = 0; rounds < 16 && !stream_pending(&s->st) && !s->st.full; rounds++) {
		ssize_t r = fifo_to_stream(s, CHUNK, 0);

		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			/* our own write end keeps EOF away: anything else is an error */
			lost(s, r < 0 ? errno : EPIPE);
			return -1;
		}
		if (conn_step(s, 0) < 0)
			return -1;
	}
	return 0;
}

/*
 * Teardown, the first part: from the sealed FIFO into the connection,
 * until every writer has closed and all is sent, or by. Returns 1 when
 * the writers are done, 0 otherwise.
 */
static int teardown_send(struct sender *s, long long by)
{
	int fifo_done = 0;

	while (connected(s)) {
		long long now = io_now_ms();
		/* What waits unsent bounds the reading; what waits for its confirmation does not. */
		int more = !fifo_done && stream_pending(&s->st) < CHUNK;
		struct pollfd pfd[3] = {{.fd = s->sigfd, .events = POLLIN},
					{.fd = s->st.fd, .events = POLLOUT},
					{.fd = -1, .events = POLLIN}};
		ssize_t r;

		if (now >= by)
			break;
		/* Nothing read yet means end of file: every writer has closed. */
		if (more && (r = fifo_to_stream(s, CHUNK, now)) <= 0)
			fifo_done = r == 0 || errno != EAGAIN;
		if (conn_step(s, 0) < 0 || (fifo_done && !stream_pending(&s->st)))
			break;
		if (!(stream_events(&s->st) & POLLOUT))
			pfd[1].fd = -1;
		pfd[2].fd = !fifo_done && stream_pending(&s->st) < CHUNK ? s->fifo.fd : -1;
		if (poll(pfd, 3, deadline_timeout(by, now)) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents && sig_drain(NULL))
			break; /* asked twice: stop waiting */
		if (pfd[1].revents && conn_step(s, pfd[1].revents) < 0)
			break;
	}
	return fifo_done;
}

/*
 * Teardown, the last part: what was taken goes out, then our end, and
 * the receiver's confirmation of it all is awaited until by (or an error
 * says it never comes).
 */
static void teardown_confirm(struct sender *s, long long by)
{
	while (connected(s) && !stream_done(&s->st)) {
		long long now = io_now_ms();
		struct pollfd pfd[2] = {{.fd = s->sigfd, .events = POLLIN},
					{.fd = s->st.fd, .events = stream_events(&s->st)}};

		if (now >= by || (!stream_pending(&s->st) && stream_end(&s->st) < 0))
			return;
		/* Acknowledgements wake nobody: look again every ACK_POLL_MS. */
		if (poll(pfd, 2, deadline_timeout(deadline_earlier(by, now + ACK_POLL_MS), now)) < 0 &&
		    errno != EINTR)
			return;
		if (pfd[0].revents && sig_drain(NULL))
			return; /* asked twice: stop waiting */
		if (conn_step(s, pfd[1].revents) < 0)
			return;
	}
	if (stream_done(&s->st))
		linger_drain(s->st.fd, TEARDOWN_DRAIN_MS); /* its close, without resetting it */
}

/*
 * Teardown: seal the FIFO (no new writer) and send what its writers wrote
 * until they are done, then (a writer that goes on writing is cut off
 * exactly: fifo_take) end our stream and wait for the receiver to confirm
 * it all; what it did not confirm, and what came after the cut, is saved.
 * All within TEARDOWN_MS; a second signal stops the waiting.
 */
static _Noreturn void teardown(struct sender *s, int sig)
{
	long long end = io_now_ms() + TEARDOWN_MS;

	err_warn("%s: signal %d: tearing down", s->o->id, sig);
	s->ending = 1;
	if (fifo_seal(&s->fifo) == 0 && connected(s) &&
	    !teardown_send(s, end - CONFIRM_MS - FLIGHT_MS))
		fifo_take(s, io_now_ms());
	if (connected(s))
		teardown_confirm(s, end - FLIGHT_MS);
	finish(s, EXIT_SIGNAL(sig), end);
}

/* SIGUSR1: the -L file opened again (logrotate moved it), then what we hold now. */
static void say_status(struct sender *s)
{
	size_t held = stream_held(&s->st), unsent = stream_pending(&s->st);

	if (err_reopen() < 0)
		err_warn("%s: SIGUSR1: reopening %s:", s->o->id, err_file_path());
	err_warn("%s: status: connected=%s taken=%llu unsent=%zu unconfirmed=%zu waiting=%zu "
		 "to=%s:%s buffer=%s",
		 s->o->id, connected(s) ? "yes" : "no", s->st.base + held, unsent, held - unsent,
		 fifo_pending(&s->fifo), s->o->host, s->o->port, s->o->path);
}

/* Disconnected (-r): keep the writers going until the queue is full; connect again. */
static void offline(struct sender *s, short fifo_rev, short conn_rev)
{
	size_t cap = (size_t)s->o->membytes, held = stream_held(&s->st);

	if (fifo_rev && fifo_to_stream(s, cap > held ? cap - held : 0, 0) < 0 && errno != EAGAIN) {
		err_warn("%s: reading %s:", s->o->id, s->o->path);
		finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
	}
	reconnect(s, conn_rev);
}

static void loop(struct sender *s)
{
	for (;;) {
		struct pollfd pfd[3];
		int fifo_at = -1, sock_at = -1, conn_at = -1, n = 0, sig, ready;
		unsigned got = 0;
		long long now = io_now_ms(), at = -1;

		pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (connected(s)) {
			sock_at = n;
			/* errors and hangups come anyway */
			pfd[n++] = (struct pollfd){.fd = s->st.fd, .events = stream_events(&s->st)};
			at = deadline_in(stream_timeout(&s->st, now), now);
			if (!stream_pending(&s->st) && !s->st.full) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		} else {
			if (connector_pollfd(&s->conn, &pfd[n]))
				conn_at = n++;
			at = deadline_in(connector_timeout(&s->conn, now), now);
			if (stream_held(&s->st) < (size_t)s->o->membytes) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		}
		if (s->st.q.cap && !stream_pending(&s->st))
			at = deadline_earlier(at, now + IDLE_MS);
		at = deadline_earlier(at, keep_status(s, now));
		if ((ready = poll(pfd, (nfds_t)n, deadline_timeout(at, now))) < 0) {
			if (errno == EINTR)
				continue;
			err_warn("poll:");
			finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
		}
		if (!ready && !stream_pending(&s->st)) {
			stream_confirm(&s->st);
			queue_release(&s->st.q, 0); /* idle: the buffer goes back (see mallopt in main) */
		}
		if (pfd[0].revents && (sig = sig_pending(&got)))
			teardown(s, sig);
		if (got & SIG_BIT(SIGUSR1))
			say_status(s);
		if ((got & SIG_BIT(SIGUSR2)) && !s->usr2_said++)
			err_warn("%s: SIGUSR2: nothing to reload; ignored", s->o->id);
		if (!connected(s)) {
			offline(s, fifo_at >= 0 ? pfd[fifo_at].revents : 0,
				conn_at >= 0 ? pfd[conn_at].revents : 0);
			continue;
		}
		if (conn_step(s, pfd[sock_at].revents) < 0)
			continue;
		pump(s);
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct sender s = {.o = &o};
	struct daemon d;
	pid_t holder = 0;
	char why[64];
	int gai = 0, err, fd;

	err_init(argv[0]);
	/*
	 * A fixed threshold keeps the CHUNK buffer mmapped, so freeing it when
	 * idle really returns it (the default threshold moves up after the
	 * first free and the buffer would stay in the heap for good).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	parse(argc, argv, &o);
	if (o.pidfile && pidfile_open(o.pidfile, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.pidfile, pidfile_why(errno, holder, why, sizeof why));
	stream_init(&s.st, STREAM_COUNTS, STREAM_WINDOW);
	switch (daemon_start(&d, !o.foreground, 1)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(d.status); /* the caller's process: the daemon is ready, or gone */
	}
	s.sigfd = sig_init(SIG_OPS);
	if (s.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	/* The FIFO first: a binding already live must not cost the receiver a connection. */
	if (fifo_create(&s.fifo, o.path, 0, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.path, fifo_why(errno, 0, holder, why, sizeof why));
	fifo_set_size(&s.fifo, PIPE_SIZE);
	fd = connector_first(&s.conn, o.host, o.port, &gai);
	err = errno;
	if (fd >= 0 && conn_open(&s, fd) < 0) {
		/* A wrong key is no boot-order race: -r would only fail again. */
		const char *hs_why = channel_strerror(errno, 1);

		fifo_close(&s.fifo);
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, hs_why);
	}
	/* With -r an absent receiver is not fatal (a boot-order race); a name that does not resolve is. */
	if (fd < 0 && (gai || !o.reconnect)) {
		const char *reason = net_strerror(gai);

		fifo_close(&s.fifo);
		errno = err;
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, reason);
	}
	/* The status is there once the PID is out: a script may read it at once. */
	if (status_open_beside(&s.status, o.path, o.metrics, "bind-output") < 0)
		err_warn("%s: no status file: memory", o.id);
	keep_status(&s, io_now_ms());
	if (daemon_ready(&d, o.logfile) < 0) {
		int saved = errno;
		status_close(&s.status);
		fifo_close(&s.fifo);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s: %s", d.failed, err_file_why(errno));
	}
	if (connected(&s)) {
		err_warn("%s: connected to %s %s, buffer %s", o.id, o.host, o.port, o.path);
	} else {
		errno = err;
		err_warn("%s: connect to %s %s: %s; buffer %s ready, retrying with backoff", o.id,
			 o.host, o.port, strerror(err), o.path);
	}
	loop(&s);
	return 0;
}
