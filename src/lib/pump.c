#include "pump.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "err.h"
#include "io.h"
#include "linger.h"
#include "net.h"
#include "proc.h"
#include "sig.h"
#include "spawn.h"

static int is_sock(int fd)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

void pump_flow_init(struct pump_flow *f, int in, int out, enum pump_conv conv)
{
	f->in = in;
	f->out = out;
	f->conv = conv;
	f->in_sock = is_sock(in);
	f->out_sock = is_sock(out);
	f->out_nowait = f->out_sock || (out >= 0 && (fcntl(out, F_GETFL) & O_NONBLOCK));
	f->done = in < 0;
	f->eof = f->held_cr = f->last_cr = 0;
	f->off = f->len = 0;
	f->bytes = 0;
	f->chin = f->chout = NULL;
	f->ending = 0;
}

size_t pump_convert(struct pump_flow *f, const char *src, size_t n, char *dst)
{
	size_t o = 0;

	if (f->conv == PUMP_LF_TO_CRLF) {
		for (size_t i = 0; i < n; i++) {
			if (src[i] == '\n' && !f->last_cr)
				dst[o++] = '\r';
			dst[o++] = src[i];
			f->last_cr = src[i] == '\r';
		}
	} else if (f->conv == PUMP_CRLF_TO_LF) {
		if (n == 0 && f->held_cr) /* EOF: a lone CR stays */
			dst[o++] = '\r';
		for (size_t i = 0; i < n; i++) {
			if (f->held_cr && src[i] != '\n')
				dst[o++] = '\r';
			f->held_cr = src[i] == '\r';
			if (!f->held_cr)
				dst[o++] = src[i];
		}
		if (n == 0)
			f->held_cr = 0;
	} else {
		memcpy(dst, src, n);
		o = n;
	}
	return o;
}

static ssize_t flow_read(struct pump_flow *f, char *raw, size_t n)
{
	ssize_t r;

	if (f->chin)
		return channel_read(f->chin, raw, n);
	do
		r = f->in_sock ? recv(f->in, raw, n, MSG_DONTWAIT) : read(f->in, raw, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t flow_write(struct pump_flow *f)
{
	ssize_t w;

	if (f->chout)
		return channel_write(f->chout, f->buf + f->off, f->len - f->off);
	do
		w = f->out_sock ? send(f->out, f->buf + f->off, f->len - f->off,
				       MSG_DONTWAIT | MSG_NOSIGNAL)
				: write(f->out, f->buf + f->off, f->len - f->off);
	while (w < 0 && errno == EINTR);
	return w;
}

static void note_error(struct pump *p, int err)
{
	if (!p->error)
		p->error = err;
}

/* Everything read is written: pass the EOF on (over a channel, its END first). */
static void flow_finish(struct pump *p, struct pump_flow *f)
{
	if (f->chout && f->out >= 0) {
		if (channel_shutdown(f->chout) < 0) {
			if (errno == EAGAIN) {
				f->ending = 1; /* the rest on POLLOUT */
				return;
			}
			note_error(p, errno);
		}
		f->ending = 0;
		f->done = 1;
		f->out = -1; /* the socket is the other flow's, and the relay's to close */
		return;
	}
	f->done = 1;
	if (f->out < 0)
		return;
	if (f->out_sock)
		shutdown(f->out, SHUT_WR);
	else
		close(f->out);
	f->out = -1;
}

static void flow_input(struct pump *p, struct pump_flow *f)
{
	char raw[PUMP_CHUNK];
	ssize_t r = flow_read(f, raw, sizeof raw);

	if (r < 0 && errno == EAGAIN)
		return;
	if (r < 0 && f->chin) {
		note_error(p, errno);
		p->broken = 1;
		f->done = 1;
		return;
	}
	if (r < 0 && f->in_sock)
		note_error(p, errno);
	if (r <= 0) {
		f->eof = 1;
		f->len = pump_convert(f, raw, 0, f->buf);
		f->off = 0;
	} else {
		f->bytes += (unsigned long long)r;
		f->len = pump_convert(f, raw, (size_t)r, f->buf);
		f->off = 0;
	}
	if (f->out < 0) /* discarding */
		f->len = 0;
	if (f->eof && f->len == 0)
		flow_finish(p, f);
}

/* Bytes wait to go out: converted ones, or (-k) sealed ones in the channel. */
static int wants_out(const struct pump_flow *f)
{
	return f->len > f->off || f->ending || (f->chout && f->out >= 0 && channel_unsent(f->chout));
}

static void flow_output(struct pump *p, struct pump_flow *f)
{
	ssize_t w;

	if (f->ending) {
		flow_finish(p, f);
		return;
	}
	if (f->len == f->off) {
		/* Only sealed bytes wait. */
		if (channel_flush(f->chout) < 0 && errno != EAGAIN) {
			note_error(p, errno);
			f->done = 1;
			f->out = -1;
		}
		return;
	}
	w = flow_write(f);
	if (w < 0 && errno == EAGAIN)
		return;
	if (w < 0) {
		/* The reader is gone: nothing more of this flow can arrive. */
		if (f->out_sock)
			note_error(p, errno);
		f->len = f->off = 0;
		f->done = 1;
		if (!f->out_sock)
			close(f->out);
		f->out = -1;
		return;
	}
	f->off += (size_t)w;
	if (f->off == f->len) {
		f->off = f->len = 0;
		if (f->eof)
			flow_finish(p, f);
	}
}

static int finished(const struct pump *p)
{
	int all = 1;

	if (p->broken)
		return 1;
	for (int i = 0; i < 2; i++) {
		if (p->flow[i].done && (p->stop_mask & (1u << i)))
			return 1;
		all &= p->flow[i].done;
	}
	return all;
}

int pump_run(struct pump *p)
{
	while (!finished(p)) {
		struct pollfd pfd[3];
		int slot[2] = {-1, -1}, now[2] = {0, 0}, n = 0, timeout = -1;

		for (int i = 0; i < 2; i++) {
			struct pump_flow *f = &p->flow[i];

			if (f->done)
				continue;
			slot[i] = n;
			if (wants_out(f)) {
				pfd[n++] = (struct pollfd){.fd = f->out, .events = POLLOUT};
			} else {
				pfd[n++] = (struct pollfd){.fd = f->in, .events = POLLIN};
				/* A record's plaintext already read waits unseen by poll. */
				if (f->chin && channel_readable(f->chin))
					now[i] = 1, timeout = 0;
			}
		}
		pfd[n++] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p->sigfd >= 0 && pfd[n - 1].revents) {
			int sig = sig_drain(NULL);
			if (sig)
				return sig;
		}
		for (int i = 0; i < 2; i++) {
			struct pump_flow *f = &p->flow[i];

			if (slot[i] < 0 || (!pfd[slot[i]].revents && !now[i]))
				continue;
			if (wants_out(f)) {
				flow_output(p, f);
				continue;
			}
			flow_input(p, f);
			/* Most writes succeed at once: one poll per chunk instead of two. A
			 * blocking out waits for POLLOUT, so the other flow is never starved. */
			if (f->len > f->off && f->out_nowait)
				flow_output(p, f);
		}
	}
	return 0;
}

/* ---- the relay ---- */

pid_t pump_spawn(const struct relay *r, const struct spawn_env *env, int *in, int *out)
{
	int to_prog[2] = {-1, -1}, from_prog[2] = {-1, -1}, saved;
	pid_t prog;

	if ((!r->wonly && io_pipe(to_prog) < 0) || (!r->ronly && io_pipe(from_prog) < 0))
		goto out_close;
	int err = r->ronly || r->halfclose ? STDERR_FILENO : from_prog[1];

	prog = spawn_start(&(struct spawn){.cmd = r->cmd,
					   .command = r->program,
					   .fd = {r->wonly ? STDIN_FILENO : to_prog[0],
						  r->ronly ? STDOUT_FILENO : from_prog[1], err},
					   .env = env,
					   /* the relay's end, however it comes, is the program's */
					   .flags = SPAWN_PDEATHSIG},
			   NULL);
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

int pump_direct(const struct relay *r)
{
	return r->program && !r->crlf && !r->psk;
}

struct channel *pump_channel(const struct relay *r, int conn)
{
	struct channel *ch = channel_new(conn, r->initiator, r->psk, CHANNEL_SOCKET, NULL, 0, io_now_ms());
	int saved;

	if (!ch)
		return NULL;
	if (channel_handshake_wait(ch) == 1)
		return ch;
	saved = errno;
	channel_free(ch);
	errno = saved;
	return NULL;
}

/* -k: our END, waiting for the socket to take it (LINGER_MS at most). */
static void chan_end(struct channel *ch, int conn)
{
	long long by = io_now_ms() + LINGER_MS;

	while (channel_shutdown(ch) < 0 && errno == EAGAIN && io_now_ms() < by) {
		struct pollfd pfd = {.fd = conn, .events = POLLOUT};

		poll(&pfd, 1, (int)(by - io_now_ms()));
	}
}

/*
 * Wait for the relay's program once the connection is done. Its input was
 * cut short or altered (p->broken): SIGTERM, so that it does not finish as
 * if that input were whole. Returns its exit status, which is the relay's.
 */
static int relay_wait(const struct relay *r, const struct pump *p, pid_t prog)
{
	int st = 0;

	if (p->broken)
		kill(prog, SIGTERM);
	if (p->flow[0].out >= 0)
		close(p->flow[0].out);
	while (waitpid(prog, &st, 0) < 0 && errno == EINTR)
		;
	if (r->end_rest_ms)
		proc_end_children(r->end_rest_ms, NULL, NULL);
	return proc_status_code(st);
}

/* Tell r's caller of a fault, if it listens. */
static void fault(const struct relay *r, enum pump_fault_kind kind, int err, const char *peer)
{
	struct pump_fault f = {.kind = kind, .err = err, .initiator = r->initiator, .peer = peer,
			       .program = r->program};

	if (r->on_fault)
		r->on_fault(&f, r->fault_arg);
}

const char *pump_fault_text(const struct pump_fault *f, char *buf, size_t len)
{
	switch (f->kind) {
	case PUMP_FAULT_MEMORY: snprintf(buf, len, "relay: %s", strerror(f->err)); break;
	case PUMP_FAULT_EXEC:
		snprintf(buf, len, "exec %s: %s", f->program, strerror(f->err));
		break;
	case PUMP_FAULT_STREAM:
		snprintf(buf, len, "connection: %s", channel_strerror(f->err, 0));
		break;
	case PUMP_FAULT_HANDSHAKE:
		/* A server's log names who failed; a client's stderr knows whom it called. */
		snprintf(buf, len, "%s%s%s", f->peer ? f->peer : "", f->peer ? ": " : "",
			 channel_strerror(f->err, f->initiator ? 1 : 2));
		break;
	}
	return buf;
}

/*
 * The relay's channel, made now when the program was started first (-P);
 * with -k, NULL when the handshake failed (a fault).
 */
static struct channel *relay_channel(const struct relay *r, struct pump *p, int conn)
{
	char ip[NET_IPLEN], port[NET_PORTLEN], peer[NET_IPLEN + NET_PORTLEN + 2];
	int err;

	if (!r->psk || p->ch)
		return p->ch;
	if ((p->ch = pump_channel(r, conn)))
		return p->ch;
	err = errno;
	if (!r->initiator && net_name(conn, 1, ip, port) >= 0 && *port) {
		snprintf(peer, sizeof peer, "%s %s", ip, port);
		fault(r, PUMP_FAULT_HANDSHAKE, err, peer);
	} else {
		fault(r, PUMP_FAULT_HANDSHAKE, err, NULL);
	}
	return NULL;
}

int pump_relay(const struct relay *r, struct pump *p, int conn, int in, int out, pid_t prog)
{
	struct channel *ch;
	int sig;

	if (!p) {
		fault(r, PUMP_FAULT_MEMORY, ENOMEM, NULL);
		return EXIT_RUNTIME;
	}
	ch = relay_channel(r, p, conn);
	if (r->psk && !ch)
		return EXIT_RUNTIME;
	/* A self-pipe of our own: the server's would mix our SIGCHLD into its own. */
	sig_child_reset();
	p->sigfd = sig_init(0);
	if (r->term_ign)
		sig_ignore(SIGTERM); /* the program ends, and the relay with its output */
	pump_flow_init(&p->flow[0], r->wonly ? -1 : conn, r->wonly ? -1 : out,
		       r->crlf ? PUMP_CRLF_TO_LF : PUMP_RAW);
	pump_flow_init(&p->flow[1], r->ronly ? -1 : in, r->ronly ? -1 : conn,
		       r->crlf ? PUMP_LF_TO_CRLF : PUMP_RAW);
	if (r->wonly) /* still read the peer, so closing never resets it */
		pump_flow_init(&p->flow[0], conn, -1, PUMP_RAW);
	p->flow[0].chin = ch;
	p->flow[1].chout = ch;
	if (r->ronly && ch) /* nothing will ever be sent: say so at once */
		chan_end(ch, conn);
	else if (r->ronly)
		shutdown(conn, SHUT_WR);
	/* With a program, its output ending ends the connection; else -q's rule. */
	p->stop_mask = r->program && !r->ronly && !r->halfclose ? 2u : r->quit ? 2u : 0u;
	sig = pump_run(p);
	if (sig)
		return EXIT_SIGNAL(sig);
	if (p->flow[1].out >= 0 && ch)
		chan_end(ch, conn);
	else if (p->flow[1].out >= 0)
		shutdown(conn, SHUT_WR);
	if (ch && p->error) /* an altered or cut stream is news; a plain relay says nothing */
		fault(r, PUMP_FAULT_STREAM, p->error, NULL);
	channel_free(ch);
	linger_close(conn, LINGER_MS);
	return prog > 0 ? relay_wait(r, p, prog) : 0;
}

int pump_child(const struct relay *r, int conn, const struct spawn_env *env)
{
	int in = STDIN_FILENO, out = STDOUT_FILENO;
	pid_t prog = 0;

	struct pump *p = calloc(1, sizeof(struct pump));

	/* The server's handlers must not run in here while the program starts. */
	sig_child_reset();
	/* -k: no program runs for a peer that does not hold the key. */
	if (p)
		p->ch = r->ch;
	if (p && r->psk && !relay_channel(r, p, conn))
		return EXIT_RUNTIME;
	if (r->program) {
		prog = pump_spawn(r, env, &in, &out);
		if (prog < 0) {
			fault(r, PUMP_FAULT_EXEC, errno, NULL);
			return EXIT_RUNTIME;
		}
	}
	return pump_relay(r, p, conn, in, out, prog);
}
