/*
 * bind-output: connect to HOST PORT and send, in order, whatever any
 * writer writes into a FIFO the shell can `echo` into. With -r, survive
 * the peer going away: queue, reconnect with backoff, send the queue
 * first.
 */
#define _GNU_SOURCE /* MSG_NOSIGNAL */
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/sig.h"

/*
 * Bytes moved per read from the FIFO. The data crosses user space: on
 * loopback, read + send with a 256 KiB buffer measured 1.2-1.3x nc, while
 * splice() from the pipe to the socket measured 0.8-1.0x nc, because the
 * receiver then spent about twice the CPU taking the spliced pages
 * (scripts/bench-bind.sh; commit message of this change).
 */
#define CHUNK (256u << 10)
#define IDLE_MS 1000 /* give the buffer back after this long with nothing to send */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define TEARDOWN_MS 5000 /* how long teardown keeps sending what was written */
#define MEM_DEFAULT (1L << 20)
#define PIPE_SIZE (1u << 20) /* fewer wake-ups for bulk writers; best effort */

static const char usage_text[] =
	"usage: bind-output [-rF] [-m bytes] [-L file] id host port\n"
	"       bind-output -version | -help\n"
	"\n"
	"  -F       stay in the foreground; still print the PID once connected\n"
	"  -L FILE  diagnostics to FILE instead of syslog\n"
	"  -m BYTES with -r, queue at most BYTES while disconnected (default 1M;\n"
	"           suffixes K, M, G); then writers block\n"
	"  -r       reconnect when the connection ends (backoff 100 ms to 30 s)\n"
	"\n"
	"  ID names a FIFO in $BIND_DIR (default: the current directory); an ID\n"
	"  containing '/' is the FIFO's path. PORT is 1024-49151.\n";

static const char synopsis[] = "bind-output [-rF] [-m bytes] [-L file] id host port";

struct opts {
	int reconnect, foreground;
	long membytes;
	const char *logfile, *id, *host, *port;
	char *path;
};

struct out {
	const struct opts *o;
	struct fifo fifo;
	int sigfd;
	int sock;	  /* -1 while disconnected */
	int connecting;	  /* a non-blocking connect is under way on sock */
	int sock_full;	  /* the socket refused bytes: wait for POLLOUT */
	struct addrinfo *addrs, *next_ai;
	long backoff_ms;
	long long retry_at; /* disconnected: when to try again */
	char *q;	    /* bytes taken from the FIFO and not yet sent */
	size_t qoff, qlen, qcap;
};

static void parse(int argc, char **argv, struct opts *o)
{
	static const char optstring[] = "FhL:m:rV";
	int c;

	while ((c = opt_next(argc, argv, optstring, usage_text)) != -1) {
		switch (c) {
		case 'F': o->foreground = 1; break;
		case 'L': o->logfile = optarg; break;
		case 'm': o->membytes = opt_bytes_or_die(optarg, 1024, 1L << 30, "-m", synopsis); break;
		case 'r': o->reconnect = 1; break;
		default: opt_bad(argv, optstring, synopsis);
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
	if (fifo_check_id(o->id) < 0)
		err_usage(synopsis, "bad id: 1-64 characters of A-Za-z0-9._- not starting "
				      "with '.' or '-', or a path");
	if (!*o->host)
		err_usage(synopsis, "empty host");
	opt_port_or_die(o->port, synopsis);
	o->path = fifo_resolve(o->id, getenv("BIND_DIR"));
	if (!o->path)
		err_die(EXIT_RUNTIME, "%s:", o->id);
}

/* ---- the queue ---- */

static void queue_took(struct out *s, size_t n)
{
	s->qoff += n;
	s->qlen -= n;
	if (!s->qlen) {
		s->qoff = 0;
		if (s->qcap > CHUNK) {
			free(s->q);
			s->q = NULL;
			s->qcap = 0;
		}
	}
}

/* Idle: the buffer goes back to the system (see mallopt in main). */
static void queue_release(struct out *s)
{
	if (!s->qlen) {
		free(s->q);
		s->q = NULL;
		s->qcap = 0;
		s->qoff = 0;
	}
}

/*
 * Move up to max bytes (at most CHUNK) from the FIFO to the end of the
 * queue, read straight into it; returns bytes, 0 if none, -1.
 */
static ssize_t fifo_to_queue(struct out *s, size_t max)
{
	ssize_t r;

	if (max > CHUNK)
		max = CHUNK;
	if (!max)
		return 0;
	if (s->qoff + s->qlen + max > s->qcap) {
		if (s->qoff) {
			memmove(s->q, s->q + s->qoff, s->qlen);
			s->qoff = 0;
		}
		if (mem_reserve(&s->q, &s->qcap, s->qlen + max, 1, CHUNK) < 0)
			return -1;
	}
	r = io_read(s->fifo.fd, s->q + s->qoff + s->qlen, max);
	if (r < 0)
		return errno == EAGAIN ? 0 : -1;
	s->qlen += (size_t)r;
	return r;
}

/* ---- the connection ---- */

static void drop_conn(struct out *s)
{
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	s->connecting = 0;
	s->sock_full = 0;
}

/* Save what was not sent, remove the FIFO, exit. */
static _Noreturn void finish(struct out *s, int code)
{
	struct iovec iov = {s->q + s->qoff, s->qlen};
	long long saved;

	drop_conn(s);
	/* The queue is older than what still sits in the pipe. */
	saved = fifo_spill(&s->fifo, &iov, s->qlen ? 1 : 0, s->qlen ? 1 : 0);
	if (saved < 0)
		err_warn("%s: saving unsent bytes to %s%s:", s->o->id, s->o->path, FIFO_UNREAD);
	else if (saved > 0)
		err_warn("%s: %lld unsent bytes saved to %s%s", s->o->id, saved, s->o->path,
		      FIFO_UNREAD);
	fifo_close(&s->fifo);
	freeaddrinfo(s->addrs);
	free(s->q);
	exit(saved < 0 && code == 0 ? EXIT_RUNTIME : code);
}

/* The connection ended (err 0: the peer closed). */
static void lost(struct out *s, int err)
{
	if (err) {
		errno = err;
		err_warn("%s: connection to %s %s:", s->o->id, s->o->host, s->o->port);
	} else {
		err_warn("%s: %s %s closed the connection", s->o->id, s->o->host, s->o->port);
	}
	drop_conn(s);
	if (!s->o->reconnect)
		finish(s, err ? EXIT_RUNTIME : 0);
	s->retry_at = io_now_ms() + s->backoff_ms;
}

static void try_connect(struct out *s)
{
	struct addrinfo *ai = s->next_ai ? s->next_ai : s->addrs;
	int fd;

	s->next_ai = ai->ai_next;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto failed;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		s->sock = fd;
		goto up;
	}
	if (errno == EINPROGRESS) {
		s->sock = fd;
		s->connecting = 1;
		return;
	}
	close(fd);
failed:
	s->retry_at = io_now_ms() + s->backoff_ms;
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
	return;
up:
	err_warn("%s: reconnected to %s %s", s->o->id, s->o->host, s->o->port);
	s->backoff_ms = BACKOFF_MIN_MS;
	s->next_ai = NULL;
}

static void connect_done(struct out *s)
{
	int err = 0;
	socklen_t len = sizeof err;

	s->connecting = 0;
	if (getsockopt(s->sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		drop_conn(s);
		s->retry_at = io_now_ms() + s->backoff_ms;
		s->backoff_ms =
			s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
		return;
	}
	err_warn("%s: reconnected to %s %s", s->o->id, s->o->host, s->o->port);
	s->backoff_ms = BACKOFF_MIN_MS;
	s->next_ai = NULL;
}

/* The receiver sends nothing we want; its EOF or error means it is gone. */
static void peer_read(struct out *s)
{
	char buf[4096];
	ssize_t r = 0;

	for (int rounds = 0; rounds < 16; rounds++)
		if ((r = recv(s->sock, buf, sizeof buf, MSG_DONTWAIT)) <= 0)
			break;
	if (r > 0)
		return;
	if (r == 0)
		lost(s, 0);
	else if (errno != EAGAIN && errno != EINTR)
		lost(s, errno);
}

static int send_queue(struct out *s)
{
	while (s->qlen) {
		ssize_t w = send(s->sock, s->q + s->qoff, s->qlen, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				s->sock_full = 1;
				return 0;
			}
			return -1;
		}
		queue_took(s, (size_t)w);
	}
	return 0;
}

/* FIFO to socket while the queue is empty, through the queue. */
static int pump(struct out *s)
{
	for (int rounds = 0; rounds < 16 && !s->qlen; rounds++) {
		ssize_t r = fifo_to_queue(s, CHUNK);

		if (r <= 0)
			return (int)r;
		if (send_queue(s) < 0)
			return -1;
	}
	return 0;
}

/*
 * Teardown: send the queue and what the FIFO holds now for up to
 * TEARDOWN_MS, close our side cleanly, save the rest.
 */
static _Noreturn void teardown(struct out *s, int sig)
{
	long long by = io_now_ms() + TEARDOWN_MS;
	size_t left = fifo_pending(&s->fifo);

	err_warn("%s: signal %d: tearing down", s->o->id, sig);
	if (s->sock < 0 || s->connecting)
		finish(s, EXIT_SIGNAL(sig));
	/* Only what was written before the signal: writers may go on forever. */
	while (left) {
		ssize_t r = fifo_to_queue(s, left);
		if (r <= 0)
			break;
		left -= (size_t)r;
	}
	while (s->qlen) {
		long long now = io_now_ms();
		struct pollfd pfd[2] = {{.fd = s->sock, .events = POLLOUT},
					{.fd = s->sigfd, .events = POLLIN}};

		if (now >= by)
			break;
		s->sock_full = 0;
		if (send_queue(s) < 0)
			break;
		if (!s->qlen)
			break;
		if (poll(pfd, 2, (int)(by - now)) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents && sig_drain(NULL, NULL))
			break; /* asked twice: stop waiting */
	}
	if (!s->qlen) {
		char buf[4096];

		shutdown(s->sock, SHUT_WR);
		/* Unread bytes from the peer would turn our close into a reset. */
		while (recv(s->sock, buf, sizeof buf, MSG_DONTWAIT) > 0)
			;
	}
	finish(s, EXIT_SIGNAL(sig));
}

static void loop(struct out *s)
{
	for (;;) {
		struct pollfd pfd[3];
		int fifo_at = -1, sock_at = -1, timeout = -1, n = 0, sig, ready;
		size_t cap = (size_t)s->o->membytes;

		pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (s->sock >= 0) {
			short ev = POLLIN;

			if (s->connecting || s->qlen || s->sock_full)
				ev |= POLLOUT;
			sock_at = n;
			pfd[n++] = (struct pollfd){.fd = s->sock, .events = ev};
			if (!s->connecting && !s->qlen && !s->sock_full) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		} else {
			long long now = io_now_ms();

			timeout = s->retry_at > now ? (int)(s->retry_at - now) : 0;
			if (s->qlen < cap) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		}
		if (s->q && !s->qlen && (timeout < 0 || timeout > IDLE_MS))
			timeout = IDLE_MS;
		if ((ready = poll(pfd, (nfds_t)n, timeout)) < 0) {
			if (errno == EINTR)
				continue;
			err_warn("poll:");
			finish(s, EXIT_RUNTIME);
		}
		if (!ready)
			queue_release(s);
		if (pfd[0].revents && (sig = sig_drain(NULL, NULL)))
			teardown(s, sig);
		if (s->sock < 0) {
			/* Disconnected (-r): keep the writers going until the queue is full. */
			if (fifo_at >= 0 && pfd[fifo_at].revents &&
			    fifo_to_queue(s, cap - s->qlen) < 0) {
				err_warn("%s: reading %s:", s->o->id, s->o->path);
				finish(s, EXIT_RUNTIME);
			}
			if (io_now_ms() >= s->retry_at)
				try_connect(s);
			continue;
		}
		if (s->connecting) {
			if (pfd[sock_at].revents)
				connect_done(s);
			continue;
		}
		if (pfd[sock_at].revents & (POLLIN | POLLHUP | POLLERR)) {
			peer_read(s);
			if (s->sock < 0)
				continue;
		}
		if (pfd[sock_at].revents & POLLOUT)
			s->sock_full = 0;
		if (send_queue(s) < 0 || pump(s) < 0) {
			lost(s, errno);
			continue;
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct out s = {.o = &o, .sock = -1, .backoff_ms = BACKOFF_MIN_MS};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct daemon d;
	pid_t holder = 0;
	int gai;

	err_init(argv[0]);
	/*
	 * A fixed threshold keeps the CHUNK buffer mmapped, so freeing it when
	 * idle really returns it (the default threshold moves up after the
	 * first free and the buffer would stay in the heap for good).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	parse(argc, argv, &o);
	if (daemon_start(&d, !o.foreground, 1) < 0)
		err_die(EXIT_RUNTIME, "fork:");
	s.sigfd = sig_init(0);
	if (s.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	/* The FIFO first: a binding already live must not cost the receiver a connection. */
	if (fifo_create(&s.fifo, o.path, 0, &holder) < 0) {
		if (errno == EBUSY && holder > 0)
			err_die(EXIT_RUNTIME, "%s: in use by PID %ld", o.path, (long)holder);
		if (errno == EBUSY)
			err_die(EXIT_RUNTIME, "%s: in use by another binding", o.path);
		if (errno == EEXIST)
			err_die(EXIT_RUNTIME, "%s: exists and is not a FIFO; not touching it", o.path);
		err_die(EXIT_RUNTIME, "%s:", o.path);
	}
	fifo_set_size(&s.fifo, PIPE_SIZE);
	gai = getaddrinfo(o.host, o.port, &hints, &s.addrs);
	if (gai == 0)
		s.sock = net_connect(o.host, o.port, NULL, &gai);
	if (s.sock < 0) {
		const char *why = net_strerror(gai);

		fifo_close(&s.fifo);
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, why);
	}
	io_set_nonblock(s.sock, 1);
	if (daemon_ready(&d, o.logfile) < 0) {
		int saved = errno;
		fifo_close(&s.fifo);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s:", o.logfile);
	}
	err_warn("%s: connected to %s %s, buffer %s", o.id, o.host, o.port, o.path);
	loop(&s);
	return 0;
}
