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
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/io.h"
#include "lib/linger.h"
#include "lib/net.h"
#include "lib/noise.h"
#include "lib/opt.h"
#include "lib/queue.h"
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
#define TEARDOWN_MS 5000      /* how long teardown keeps sending what was written */
#define TEARDOWN_DRAIN_MS 500 /* then how long the receiver may take to close */
#define SEAL_MS 1000	      /* a connection lost: how long writers may finish before the spill */
#define ACK_POLL_MS 10	      /* teardown: how often to look for the last acknowledgements */
/*
 * The socket's send buffer, set explicitly so that what the queue retains
 * until acknowledged is bounded and known: the kernel doubles it, so the
 * queue holds at most 2 x SNDBUF unacknowledged bytes plus one CHUNK.
 */
#define SNDBUF (512u << 10)
#define MEM_DEFAULT (1L << 20)
#define PIPE_SIZE (1u << 20) /* fewer wake-ups for bulk writers; best effort */

static const char usage_text[] =
	"usage: bind-output [-rF] [-k key|@file] [-m bytes] [-L file] id host port\n"
	"       bind-output -version | -help\n"
	"\n"
	"  -F       stay in the foreground; still print the PID once connected\n"
	"  -k KEY   speak the encrypted channel under KEY, or the key in @FILE (make\n"
	"           one: head -c 32 /dev/urandom > FILE); see SECURITY\n"
	"  -L FILE  diagnostics to FILE instead of syslog\n"
	"  -m BYTES with -r, queue at most BYTES while disconnected (default 1M;\n"
	"           suffixes K, M, G); then writers block\n"
	"  -r       reconnect when the connection ends (backoff 100 ms to 30 s)\n"
	"\n"
	"  ID names a FIFO in $BIND_DIR (default: the current directory); an ID\n"
	"  containing '/' is the FIFO's path. PORT is 1024-49151.\n";

static const char synopsis[] =
	"bind-output [-rF] [-k key|@file] [-m bytes] [-L file] id host port";

struct opts {
	int reconnect, foreground;
	long membytes;
	const char *logfile, *id, *host, *port;
	char *path;
	int chan; /* -k */
	unsigned char psk[NOISE_PSK];
};

/*
 * The daemon: one FIFO, one connection (or none, between tries), one
 * queue. The queue keeps every byte sent until the receiver's TCP has
 * acknowledged it, so a broken connection loses nothing we could know of.
 */
struct sender {
	const struct opts *o;
	struct fifo fifo;
	int sigfd;
	int sock;      /* -1 while disconnected or connecting */
	int sock_full; /* the socket refused bytes: wait for POLLOUT */
	int peer_eof;  /* the receiver sent its FIN: it sends no more, but may read on */
	unsigned long long sent; /* bytes written on this connection */
	struct connector conn;
	struct queue q; /* retained (sent, not acknowledged), then not sent yet */
	/* -k: the connection's channel; with it, sent and the queue count plaintext */
	struct channel *ch;
	int app_acks;		  /* the receiver acknowledges in its stream */
	unsigned long long acked_n; /* plaintext acknowledged on this connection */
	unsigned char ack[8];	  /* an acknowledgement being read */
	size_t ack_have;
};


static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = "Fhk:L:m:rV";
	int c;

	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'F': o->foreground = 1; break;
		case 'k':
			opt_psk(optarg, o->psk, &p);
			o->chan = 1;
			break;
		case 'L': o->logfile = optarg; break;
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
	if (fifo_check_id(o->id) < 0)
		err_usage(synopsis, "bad id: %s", FIFO_ID_RULE);
	if (!*o->host)
		err_usage(synopsis, "empty host");
	if (opt_port(o->port, &p) < 0)
		err_cmdline(&p);
	o->path = fifo_resolve(o->id, getenv("BIND_DIR"));
	if (!o->path)
		err_die(EXIT_RUNTIME, "%s:", o->id);
}

static void set_sndbuf(int fd)
{
	int n = SNDBUF;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n); /* best effort: the default is bounded too */
}

/*
 * Move up to max bytes (at most CHUNK) from the FIFO to the queue's tail.
 * Returns the bytes, 0 at end of file (sealed: every writer has closed),
 * or -1 with errno (EAGAIN: nothing there now).
 */
static ssize_t fifo_to_queue(struct sender *s, size_t max, long long deadline)
{
	char *t;
	ssize_t r;

	if (max > CHUNK)
		max = CHUNK;
	if (!max) {
		errno = EAGAIN;
		return -1;
	}
	if (!(t = queue_tail(&s->q, max)))
		return -1;
	r = s->fifo.sealed ? fifo_drain(&s->fifo, t, max, deadline) : io_read(s->fifo.fd, t, max);
	if (r > 0)
		queue_commit(&s->q, (size_t)r);
	return r;
}

/* -k: the receiver's word that it has taken up to n bytes of this connection's. */
static void ack_to(struct sender *s, unsigned long long n)
{
	if (n > s->sent)
		n = s->sent; /* more than was sent: not ours to believe */
	if (n <= s->acked_n)
		return;
	queue_ack(&s->q, (size_t)(n - s->acked_n));
	s->acked_n = n;
}

/* -k: acknowledgements in the receiver's stream, as far as they came. */
static void take_acks(struct sender *s, const unsigned char *p, size_t n)
{
	while (n) {
		size_t k = sizeof s->ack - s->ack_have;
		unsigned long long v = 0;

		if (k > n)
			k = n;
		memcpy(s->ack + s->ack_have, p, k);
		s->ack_have += k;
		p += k;
		n -= k;
		if (s->ack_have < sizeof s->ack)
			return;
		for (size_t i = 0; i < sizeof s->ack; i++)
			v = v << 8 | s->ack[i];
		s->ack_have = 0;
		ack_to(s, v);
	}
}

/*
 * -k: read the receiver's stream now. Returns 1 with data, 0 when nothing
 * waits, or -1 with errno: 0 errno at its END (stored in *end), else its
 * failure.
 */
static int chan_take(struct sender *s, int *end)
{
	unsigned char buf[4096];

	for (;;) {
		ssize_t r = channel_read(s->ch, buf, sizeof buf);

		if (r > 0) {
			if (s->app_acks)
				take_acks(s, buf, (size_t)r);
			continue;
		}
		if (r == 0) {
			*end = 1;
			return 0;
		}
		return errno == EAGAIN ? 0 : -1;
	}
}

/* What the receiver acknowledged is dropped from the queue. */
static void acked(struct sender *s)
{
	int end = 0;
	long long a;

	if (s->sock < 0)
		return;
	if (!s->ch) {
		queue_ack_tcp(&s->q, s->sock, s->sent);
		return;
	}
	if (s->app_acks) {
		if (!s->peer_eof)
			chan_take(s, &end); /* a failure is peer_read's to report */
	} else if ((a = channel_tcp_acked(s->ch)) >= 0) {
		ack_to(s, (unsigned long long)a);
	}
}

static void drop_conn(struct sender *s)
{
	channel_free(s->ch);
	s->ch = NULL;
	s->app_acks = 0;
	s->acked_n = 0;
	s->ack_have = 0;
	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	s->sock_full = s->peer_eof = 0;
	s->sent = 0;
}

/*
 * Save what was not delivered, remove the FIFO, exit. In order: what the
 * receiver never acknowledged, what was never sent, what the pipe holds
 * (read until its writers are done, within the deadline).
 */
static _Noreturn void finish(struct sender *s, int code, long long deadline)
{
	size_t n;
	const char *p;
	struct iovec iov;
	long long saved;

	acked(s);
	drop_conn(s);
	queue_rewind(&s->q);
	p = queue_unsent(&s->q, &n);
	iov = (struct iovec){(void *)p, n};
	fifo_seal(&s->fifo);
	saved = fifo_spill(&s->fifo, &iov, n ? 1 : 0, n ? 1 : 0, deadline);
	if (saved < 0)
		err_warn("%s: saving unsent bytes to %s%s:", s->o->id, s->o->path, FIFO_UNREAD);
	else if (saved > 0 && s->fifo.unread_why)
		err_warn("%s: %s%s %s, not touched; %lld unsent bytes saved to %s instead", s->o->id,
			 s->o->path, FIFO_UNREAD, s->fifo.unread_why, saved, s->fifo.unread);
	else if (saved > 0)
		err_warn("%s: %lld unsent bytes saved to %s", s->o->id, saved, s->fifo.unread);
	fifo_close(&s->fifo);
	connector_free(&s->conn);
	queue_free(&s->q);
	exit(saved < 0 && code == 0 ? EXIT_RUNTIME : code);
}

/* The connection broke: say so once, with the counts; save or keep what it did not deliver. */
static void lost(struct sender *s, int err)
{
	unsigned long long unacked, sent = s->sent;

	acked(s);
	unacked = s->q.sent;
	errno = err ? err : EPIPE;
	err_warn("%s: connection to %s %s lost: %s; %llu bytes sent on it, %llu acknowledged, "
		 "%llu not: %s",
		 s->o->id, s->o->host, s->o->port,
		 s->ch ? channel_strerror(errno, 0) : strerror(errno), sent, sent - unacked, unacked,
		 s->o->reconnect ? "they go first once reconnected" : "saved");
	drop_conn(s);
	if (!s->o->reconnect)
		finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
	queue_rewind(&s->q); /* the unacknowledged tail is sent again, first */
	connector_lost(&s->conn, io_now_ms());
}

/*
 * -k: the handshake on the new connection, waiting for it (CHANNEL_HS_MS at
 * most): ask for acknowledgements, and see whether the receiver gives them.
 * Returns 0, or -1 with errno (channel_strerror).
 */
static int chan_open(struct sender *s)
{
	s->ch = channel_new(s->sock, 1, s->o->psk, CHANNEL_BIND, CHANNEL_ACKS,
			    strlen(CHANNEL_ACKS), io_now_ms());
	if (!s->ch || channel_handshake_wait(s->ch) < 0)
		return -1;
	/* A receiver that does not acknowledge is judged by its TCP, record by record. */
	s->app_acks = channel_peer_said(s->ch, CHANNEL_ACKS);
	if (!s->app_acks)
		channel_track_acks(s->ch);
	return 0;
}

/* A connect under way, or due: once it is made, the queue goes first. */
static void reconnect(struct sender *s, short revents)
{
	int r = connector_step(&s->conn, revents, io_now_ms());

	if (r != 1)
		return; /* a failed round waits for the backoff by itself */
	s->sock = connector_take(&s->conn);
	set_sndbuf(s->sock);
	if (s->o->chan && chan_open(s) < 0) {
		err_warn("%s: %s %s: %s; retrying with backoff", s->o->id, s->o->host, s->o->port,
			 channel_strerror(errno, 1));
		drop_conn(s);
		connector_lost(&s->conn, io_now_ms());
		return;
	}
	err_warn("%s: reconnected to %s %s; %zu bytes to send first", s->o->id, s->o->host,
		 s->o->port, s->q.len);
}

/*
 * The receiver sends nothing we want. Its FIN says it will send no more,
 * not that it stops reading (a `socket -s` or `nc -N` receiver half-closes
 * at once): only a failed send, an error or a hangup ends the connection.
 */
static void peer_read(struct sender *s)
{
	char buf[4096];
	ssize_t r = 0;

	if (s->ch) {
		int end = 0;

		if (chan_take(s, &end) < 0) {
			lost(s, errno);
		} else if (end && s->app_acks) {
			/* bind-input ends its stream only after ours, or when it stops taking it. */
			lost(s, ECONNABORTED);
		} else if (end) {
			s->peer_eof = 1;
			err_warn("%s: %s %s ended its stream; sending goes on", s->o->id, s->o->host,
				 s->o->port);
		}
		return;
	}

	for (int rounds = 0; rounds < 16; rounds++)
		if ((r = recv(s->sock, buf, sizeof buf, MSG_DONTWAIT)) <= 0)
			break;
	if (r > 0)
		return;
	if (r == 0) {
		s->peer_eof = 1;
		err_warn("%s: %s %s closed the connection on its side; sending goes on", s->o->id,
			 s->o->host, s->o->port);
	} else if (errno != EAGAIN && errno != EINTR) {
		lost(s, errno);
	}
}

/* An error or hangup on the socket: what it was. */
static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	return err ? err : EPIPE;
}

/* -k: seal what waits unsent; the channel sends what the socket takes. */
static int chan_send(struct sender *s)
{
	size_t n;
	const char *p = queue_unsent(&s->q, &n);

	while (n) {
		ssize_t w = channel_write(s->ch, p, n);

		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return -1;
		queue_mark_sent(&s->q, (size_t)w);
		s->sent += (unsigned long long)w;
		p += w;
		n -= (size_t)w;
	}
	if (channel_flush(s->ch) < 0 && errno != EAGAIN)
		return -1;
	s->sock_full = channel_unsent(s->ch) > 0;
	acked(s);
	return 0;
}

static int send_queue(struct sender *s)
{
	long long w;

	if (s->ch)
		return chan_send(s);
	w = queue_write(&s->q, s->sock, QUEUE_SOCKET | QUEUE_RETAIN, &s->sock_full);

	if (w < 0)
		return -1;
	s->sent += (unsigned long long)w;
	acked(s);
	return 0;
}

/* FIFO to socket while nothing waits unsent, through the queue. */
static int pump(struct sender *s)
{
	for (int rounds = 0; rounds < 16 && !queue_pending(&s->q) && !s->sock_full; rounds++) {
		ssize_t r = fifo_to_queue(s, CHUNK, 0);

		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return -1; /* our own write end keeps EOF away: anything else is an error */
		if (send_queue(s) < 0)
			return -1;
	}
	return 0;
}

/*
 * Teardown: seal the FIFO (no new writer; read until the writers are
 * done), send everything for up to TEARDOWN_MS, shut down our side and
 * wait for the receiver to acknowledge it all, then save the rest.
 */
static _Noreturn void teardown(struct sender *s, int sig)
{
	long long by = io_now_ms() + TEARDOWN_MS;
	int fifo_done = 0;

	err_warn("%s: signal %d: tearing down", s->o->id, sig);
	if (fifo_seal(&s->fifo) < 0 || s->sock < 0)
		finish(s, EXIT_SIGNAL(sig), by);
	for (;;) {
		long long now = io_now_ms();
		/* What waits unsent bounds the reading; what waits for its acknowledgement does not. */
		int more = !fifo_done && queue_pending(&s->q) < CHUNK;
		struct pollfd pfd[3] = {{.fd = s->sigfd, .events = POLLIN},
					{.fd = s->sock, .events = POLLOUT},
					{.fd = more ? s->fifo.fd : -1, .events = POLLIN}};
		ssize_t r;

		if (now >= by)
			break;
		/* Nothing read yet means end of file: every writer has closed. */
		if (more && (r = fifo_to_queue(s, CHUNK, now)) <= 0)
			fifo_done = r == 0 || errno != EAGAIN;
		if (send_queue(s) < 0) {
			lost(s, errno); /* saves and exits, whatever -r says: we are ending */
			break;
		}
		if (fifo_done && !queue_pending(&s->q))
			break;
		if (!queue_pending(&s->q) && !s->sock_full)
			pfd[1].fd = -1;
		pfd[2].fd = !fifo_done && queue_pending(&s->q) < CHUNK ? s->fifo.fd : -1;
		if (poll(pfd, 3, (int)(by - now)) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents && sig_drain(NULL))
			break; /* asked twice: stop waiting */
		if (pfd[1].revents & (POLLERR | POLLHUP)) {
			lost(s, sock_error(s->sock));
			break;
		}
		if (pfd[1].revents & POLLOUT)
			s->sock_full = 0;
	}
	if (s->sock >= 0 && fifo_done && !queue_pending(&s->q)) {
		if (s->ch)
			channel_shutdown(s->ch); /* the END; what it could not send yet, below */
		else
			shutdown(s->sock, SHUT_WR);
		/*
		 * Until the receiver has acknowledged all of it, an error says it
		 * never will, or the time is up. A receiver that half-closed
		 * leaves the socket hung up both ways now, and poll would not
		 * wait: look every ACK_POLL_MS instead.
		 */
		for (acked(s); s->q.sent && io_now_ms() < by; acked(s)) {
			int err = 0;
			socklen_t len = sizeof err;

			if (getsockopt(s->sock, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
				break;
			if (s->ch && channel_shutdown(s->ch) < 0 && errno != EAGAIN)
				break;
			poll(NULL, 0, ACK_POLL_MS);
		}
		if (!s->q.sent)
			linger_drain(s->sock, TEARDOWN_DRAIN_MS);
	}
	finish(s, EXIT_SIGNAL(sig), by);
}

static void loop(struct sender *s)
{
	for (;;) {
		struct pollfd pfd[3];
		int fifo_at = -1, sock_at = -1, conn_at = -1, timeout = -1, n = 0, sig, ready;
		size_t cap = (size_t)s->o->membytes, pending = queue_pending(&s->q);
		long long now = io_now_ms();

		pfd[n++] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
		if (s->sock >= 0) {
			short ev = s->peer_eof ? 0 : POLLIN; /* errors and hangups come anyway */

			if (pending || s->sock_full)
				ev |= POLLOUT;
			sock_at = n;
			pfd[n++] = (struct pollfd){.fd = s->sock, .events = ev};
			if (!pending && !s->sock_full) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		} else {
			if (connector_pollfd(&s->conn, &pfd[n]))
				conn_at = n++;
			timeout = connector_timeout(&s->conn, now);
			if (s->q.len < cap) {
				fifo_at = n;
				pfd[n++] = (struct pollfd){.fd = s->fifo.fd, .events = POLLIN};
			}
		}
		if (s->q.cap && !pending && (timeout < 0 || timeout > IDLE_MS))
			timeout = IDLE_MS;
		if ((ready = poll(pfd, (nfds_t)n, timeout)) < 0) {
			if (errno == EINTR)
				continue;
			err_warn("poll:");
			finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
		}
		if (!ready) {
			acked(s);
			queue_release(&s->q, 0); /* idle: the buffer goes back (see mallopt in main) */
		}
		if (pfd[0].revents && (sig = sig_drain(NULL)))
			teardown(s, sig);
		if (s->sock < 0) {
			/* Disconnected (-r): keep the writers going until the queue is full. */
			if (fifo_at >= 0 && pfd[fifo_at].revents &&
			    fifo_to_queue(s, cap > s->q.len ? cap - s->q.len : 0, 0) < 0 &&
			    errno != EAGAIN) {
				err_warn("%s: reading %s:", s->o->id, s->o->path);
				finish(s, EXIT_RUNTIME, io_now_ms() + SEAL_MS);
			}
			reconnect(s, conn_at >= 0 ? pfd[conn_at].revents : 0);
			continue;
		}
		if (pfd[sock_at].revents & POLLIN) {
			peer_read(s);
			if (s->sock < 0)
				continue;
		}
		if ((pfd[sock_at].revents & (POLLERR | POLLHUP)) && !(pfd[sock_at].revents & POLLIN)) {
			lost(s, sock_error(s->sock));
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

/*
 * The first connection: every address of the host, one round. Returns the
 * socket, or -1 with errno (*gai: a resolver failure, which -r does not outlive).
 */
static int connect_first(struct sender *s, int *gai)
{
	if (connector_init(&s->conn, s->o->host, s->o->port, NULL, gai) < 0)
		return -1;
	for (;;) {
		struct pollfd pfd;
		int r = connector_step(&s->conn, connector_pollfd(&s->conn, &pfd) ? POLLOUT : 0,
				       io_now_ms());

		if (r == 1) {
			int fd = connector_take(&s->conn);
			set_sndbuf(fd);
			return fd;
		}
		if (r < 0)
			return -1;
		if (connector_pollfd(&s->conn, &pfd) && poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct sender s = {.o = &o, .sock = -1};
	struct daemon d;
	pid_t holder = 0;
	char why[64];
	int gai = 0, err;

	err_init(argv[0]);
	/*
	 * A fixed threshold keeps the CHUNK buffer mmapped, so freeing it when
	 * idle really returns it (the default threshold moves up after the
	 * first free and the buffer would stay in the heap for good).
	 */
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	parse(argc, argv, &o);
	switch (daemon_start(&d, !o.foreground, 1)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(d.status); /* the caller's process: the daemon is ready, or gone */
	}
	s.sigfd = sig_init(0);
	if (s.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	/* The FIFO first: a binding already live must not cost the receiver a connection. */
	if (fifo_create(&s.fifo, o.path, 0, &holder) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.path, fifo_why(errno, 0, holder, why, sizeof why));
	fifo_set_size(&s.fifo, PIPE_SIZE);
	s.sock = connect_first(&s, &gai);
	if (s.sock >= 0 && o.chan && chan_open(&s) < 0) {
		/* A wrong key is no boot-order race: -r would only fail again. */
		const char *hs_why = channel_strerror(errno, 1);

		drop_conn(&s);
		fifo_close(&s.fifo);
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, hs_why);
	}
	/* With -r an absent receiver is not fatal (a boot-order race); a name that does not resolve is. */
	if (s.sock < 0 && (gai || !o.reconnect)) {
		const char *reason = net_strerror(gai);

		fifo_close(&s.fifo);
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, reason);
	}
	err = errno;
	if (daemon_ready(&d, o.logfile) < 0) {
		int saved = errno;
		fifo_close(&s.fifo);
		errno = saved;
		err_die(EXIT_RUNTIME, "%s: %s", o.logfile, err_file_why(errno));
	}
	if (s.sock >= 0) {
		err_warn("%s: connected to %s %s, buffer %s", o.id, o.host, o.port, o.path);
	} else {
		errno = err;
		err_warn("%s: connect to %s %s: %s; buffer %s ready, retrying with backoff", o.id,
			 o.host, o.port, strerror(err), o.path);
	}
	loop(&s);
	return 0;
}
