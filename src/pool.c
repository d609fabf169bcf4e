/*
 * pool: receive daemons pushed by master(1). Masters that prove they know
 * KEY get, for each daemon, a once-mode input binding (buffer DIR/NAME)
 * on a port of its own, guarded by a one-time token. One process, one
 * poll loop for every master and every binding.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/binding.h"
#include "lib/daemon.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/guard.h"
#include "lib/linger.h"
#include "lib/listener.h"
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/proto.h"
#include "lib/queue.h"
#include "lib/sig.h"

#define OUT_HOLD 4096	    /* stop reading a master that leaves this much unread */
#define OUT_MAX 65536	    /* a master that leaves this much unread is dropped */
#define POOL_LINGER_MS 1000 /* after our last line: read and drop the peer's bytes this long */
#define GRANT_CONNS 4	    /* senders a grant's binding holds while checking tokens */
#define ACCEPT_BURST 64	    /* connections taken per wakeup, so bindings are not starved */

static const char usage_text[] =
	"usage: pool [-bl] [-d DIR] [-r LO-HI] [-A ADDR] [-t SECONDS] [-L FILE] KEY PORT\n"
	"       pool -version | -help\n"
	"\n"
	"  KEY        the key masters must prove they know, or @FILE to read it from FILE\n"
	"  PORT       control port masters connect to (1024-49151)\n"
	"  -A ADDR    listen on ADDR only, for masters and bindings (default: every address)\n"
	"  -b         background once listening; print the PID\n"
	"  -d DIR     create the buffers in DIR (default: the current directory)\n"
	"  -l         keep serving masters until signalled (default: stop after the first END)\n"
	"  -L FILE    diagnostics to FILE instead of syslog once backgrounded\n"
	"  -r LO-HI   take binding ports from LO-HI (default: the kernel chooses)\n"
	"  -t SECONDS drop a control connection idle this long (default 30)\n";

static const char synopsis[] =
	"pool [-bl] [-d DIR] [-r LO-HI] [-A ADDR] [-t SECONDS] [-L FILE] KEY PORT";

struct opts {
	int background, loop;
	const char *dir, *addr, *logfile, *port;
	long lo, hi; /* -r; 0: kernel's choice */
	long idle_ms;
	char *key;
	size_t keylen;
};

enum sstate {
	S_NEW,	  /* greeted, waiting for AUTH */
	S_AUTHED, /* serving PORT requests */
	S_ENDED	  /* END received: waiting for its bindings to end, then BYE */
};

struct session {
	int fd;
	enum sstate state;
	size_t live; /* grants of this session not yet ended */
	long long deadline; /* idle limit */
	int closing;	    /* say nothing more; close gracefully once out is flushed */
	int done;	    /* flushed and closing: hand the connection to the linger set */
	char nonce[PROTO_NONCE_HEX + 1];
	char ip[NET_IPLEN], peer[NET_IPLEN + NET_PORTLEN + 2];
	struct queue out;
	struct proto_in in;
	size_t pfd; /* its slot in the poll set, or (size_t)-1 */
};

struct grant {
	struct binding *b;
	struct guard guard; /* the token and address its binding admits */
	struct session *s; /* NULL once its master's connection is gone */
	int connected;	   /* the master's sender passed the guard */
	char name[PROTO_NAME_MAX + 1];
	size_t pfd, npfd; /* its slice of the poll set */
};

struct pool {
	const struct opts *o;
	struct daemon dm;
	struct listener l; /* masters connect here; empty once no new ones are taken */
	int sigfd;
	int ended; /* without -l: a master said END, so no new masters */
	struct linger_set linger; /* control connections we are done with */
	long next_port;
	struct session **s;
	size_t ns, scap;
	struct grant **g;
	size_t ng, gcap;
	struct pollfd *pfd;
	size_t pcap;
};

/* ---- options ---- */

static void parse_range(struct opts *o, const char *arg)
{
	const char *dash = strchr(arg, '-');
	char lo[16];

	if (!dash || (size_t)(dash - arg) >= sizeof lo)
		err_usage(synopsis, "-r: '%s' is not a range LO-HI", arg);
	memcpy(lo, arg, (size_t)(dash - arg));
	lo[dash - arg] = '\0';
	if (opt_long(lo, 1024, 65535, &o->lo) < 0 || opt_long(dash + 1, 1024, 65535, &o->hi) < 0)
		err_usage(synopsis, "-r: '%s' is not a range LO-HI of ports 1024-65535", arg);
	if (o->lo > o->hi)
		err_usage(synopsis, "-r: '%s': LO is above HI", arg);
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const char optstring[] = ":A:bd:hL:lr:t:V";
	int c;

	o->idle_ms = 30000;
	while ((c = opt_next(argc, argv, optstring, usage_text)) != -1) {
		switch (c) {
		case 'A': o->addr = optarg; break;
		case 'b': o->background = 1; break;
		case 'd': o->dir = optarg; break;
		case 'L': o->logfile = optarg; break;
		case 'l': o->loop = 1; break;
		case 'r': parse_range(o, optarg); break;
		case 't': o->idle_ms = opt_ms_or_die(optarg, 1, 86400000L, "-t", synopsis); break;
		default: opt_bad(argv, optstring, synopsis);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc != 2)
		err_usage(synopsis, argc < 2 ? "missing operand" : "too many operands");
	opt_port_or_die(argv[1], synopsis);
	if (o->addr && !*o->addr)
		err_usage(synopsis, "-A: empty address");
	if (o->dir && !*o->dir)
		err_usage(synopsis, "-d: empty directory");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	o->port = argv[1];
	opt_key_or_die(argv[0], &o->key, &o->keylen, synopsis);
}

/* ---- control connections ---- */

static void flush(struct session *s)
{
	int full;

	if (queue_write(&s->out, s->fd, QUEUE_SOCKET, &full) < 0) {
		queue_consume(&s->out, s->out.len); /* the peer is gone; the read side will tell */
		s->closing = 1;
	}
	queue_release(&s->out, 4096);
	/* FIN after our last line, then drain (linger.c), so closing sends no reset over it. */
	if (s->closing && !queue_pending(&s->out))
		s->done = 1;
}

static void say(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct session *s, const char *fmt, ...)
{
	char line[PROTO_LINE_MAX + 1];
	va_list ap;
	int n;

	if (s->closing)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	if (queue_pending(&s->out) + (size_t)n > OUT_MAX) {
		err_warn("%s: not reading its replies; dropped", s->peer);
		queue_consume(&s->out, s->out.len);
		s->closing = 1;
		return;
	}
	if (queue_append(&s->out, line, (size_t)n) < 0)
		s->closing = 1;
}

/* An error line, then the connection is closed. */
static void refuse(struct session *s, const char *why)
{
	say(s, "ERR %s", why);
	s->closing = 1;
}

static void session_new(struct pool *p, int fd)
{
	struct session *s;
	char port[NET_PORTLEN];

	if (mem_reserve(&p->s, &p->scap, p->ns + 1, sizeof *p->s, 16) < 0) {
		err_warn("connection dropped:");
		close(fd);
		return;
	}
	if (!(s = calloc(1, sizeof *s))) {
		err_warn("connection dropped:");
		close(fd);
		return;
	}
	s->fd = fd;
	io_set_nonblock(fd, 1);
	if (net_name(fd, 1, s->ip, port) < 0)
		snprintf(s->ip, sizeof s->ip, "?");
	snprintf(s->peer, sizeof s->peer, "%s %s", s->ip, port);
	s->deadline = io_now_ms() + p->o->idle_ms;
	if (proto_random_hex(s->nonce, PROTO_NONCE_HEX / 2) < 0) {
		err_warn("%s: no random nonce:", s->peer);
		refuse(s, "no randomness");
	} else {
		say(s, "SOCKETPOOL %d %s", PROTO_VERSION, s->nonce);
	}
	p->s[p->ns++] = s;
	flush(s);
}

static void grant_end(struct pool *p, size_t i, int save);

/* Cancel the grants no sender took yet: their master is gone. */
static void orphan(struct pool *p, struct session *s)
{
	for (size_t i = 0; i < p->ng; i++) {
		if (p->g[i]->s != s || p->g[i]->connected)
			continue;
		err_warn("%s: its master left before connecting; cancelled", p->g[i]->name);
		p->g[i]->s = NULL;
		grant_end(p, i--, 0);
	}
}

/* Close a control connection; the grants it got and did not use go with it. */
static void session_free(struct pool *p, size_t i)
{
	struct session *s = p->s[i];

	orphan(p, s);
	for (size_t k = 0; k < p->ng; k++)
		if (p->g[k]->s == s)
			p->g[k]->s = NULL;
	if (s->done)
		linger_add(&p->linger, s->fd, POOL_LINGER_MS);
	else
		close(s->fd);
	queue_free(&s->out);
	free(s);
	p->s[i] = p->s[--p->ns];
}

/* ---- grants ---- */

static void on_event(const struct binding_event *ev, void *arg)
{
	struct grant *g = arg;

	switch (ev->type) {
	case BINDING_EV_ACCEPT: g->connected = 1; break;
	case BINDING_EV_REJECT:
		err_warn("%s: refused a connection from %s: %s", g->name, ev->peer, ev->why);
		break;
	case BINDING_EV_ERROR:
		errno = ev->err;
		if (*ev->peer)
			err_warn("%s: connection from %s:", g->name, ev->peer);
		else
			err_warn("%s: accept: %s (%llu in the last second; pausing)", g->name,
				 strerror(ev->err), ev->bytes);
		break;
	case BINDING_EV_SAVED:
		if (ev->err) {
			errno = ev->err;
			err_warn("%s: saving unread bytes:", g->name);
		} else if (*ev->peer) {
			err_warn("%s: %s%s %s, not touched; %llu unread byte(s) saved to %s instead",
				 g->name, g->name, FIFO_UNREAD, ev->peer, ev->bytes, ev->why);
		} else {
			err_warn("%s: %llu unread byte(s) saved to %s", g->name, ev->bytes, ev->why);
		}
		break;
	default: break;
	}
}

/* Listening sockets on a free port of the range, or on the kernel's choice. */
static int grant_listener(struct pool *p, struct listener *l, int *gai)
{
	const struct opts *o = p->o;
	char port[NET_PORTLEN];
	long span = o->hi - o->lo + 1;

	if (!o->lo)
		return listener_open(l, o->addr, "0", SOMAXCONN, gai);
	for (long k = 0; k < span; k++) {
		long cand = o->lo + (p->next_port - o->lo + k) % span;

		snprintf(port, sizeof port, "%ld", cand);
		if (listener_open(l, o->addr, port, SOMAXCONN, gai) == 0) {
			p->next_port = cand + 1 > o->hi ? o->lo : cand + 1;
			return 0;
		}
		if (errno != EADDRINUSE && errno != EACCES)
			return -1;
	}
	*gai = 0;
	errno = EADDRNOTAVAIL;
	return -1;
}

static void grant(struct pool *p, struct session *s, const char *name)
{
	char token[PROTO_TOKEN_HEX + 1], why[64];
	struct binding_config cfg = {0};
	struct listener l;
	struct grant *g;
	char *path;
	pid_t holder = 0;
	int gai = 0;

	for (size_t i = 0; i < p->ng; i++) {
		if (strcmp(p->g[i]->name, name) == 0) {
			say(s, "FAIL %s already bound", name);
			return;
		}
	}
	if (mem_reserve(&p->g, &p->gcap, p->ng + 1, sizeof *p->g, 16) < 0) {
		say(s, "FAIL %s out of memory", name);
		return;
	}
	g = calloc(1, sizeof *g);
	path = fifo_resolve(name, p->o->dir);
	if (!g || !path || proto_random_hex(token, PROTO_TOKEN_HEX / 2) < 0 ||
	    guard_init(&g->guard, token, s->ip, 0) < 0) {
		say(s, "FAIL %s %s", name, strerror(errno));
		goto out;
	}
	snprintf(g->name, sizeof g->name, "%s", name);
	if (grant_listener(p, &l, &gai) < 0) {
		if (errno == EADDRNOTAVAIL && p->o->lo)
			say(s, "FAIL %s no free port in %ld-%ld", name, p->o->lo, p->o->hi);
		else
			say(s, "FAIL %s cannot listen: %s", name, net_strerror(gai));
		goto out;
	}
	cfg.path = path;
	cfg.listener = &l;
	cfg.flags = BINDING_ONCE;
	cfg.max_conns = GRANT_CONNS;
	cfg.guard = &g->guard.hook;
	cfg.on_event = on_event;
	cfg.arg = g;
	g->b = binding_open(&cfg, &holder, &gai);
	if (!g->b) {
		say(s, "FAIL %s buffer %s", name, fifo_why(errno, 0, holder, why, sizeof why));
		goto out;
	}
	g->s = s;
	s->live++;
	p->g[p->ng++] = g;
	say(s, "GRANT %s %d %s", name, binding_port(g->b), token);
	g = NULL;
out:
	mem_wipe(token, sizeof token);
	free(path);
	if (g)
		guard_wipe(&g->guard);
	free(g);
}

/* The grant's binding has ended: tell its master when it was the last. */
static void grant_end(struct pool *p, size_t i, int save)
{
	struct grant *g = p->g[i];
	binding_close(g->b, save); /* it tells what it saved, and where (on_event) */
	if (g->s && --g->s->live == 0 && g->s->state == S_ENDED) {
		say(g->s, "BYE");
		g->s->closing = 1;
		flush(g->s);
	}
	guard_wipe(&g->guard);
	free(g);
	p->g[i] = p->g[--p->ng];
}

/* ---- the protocol, pool side ---- */

static void line_in(struct pool *p, struct session *s, char *line)
{
	struct proto_msg m;

	if (proto_parse(line, &m) < 0) {
		if (errno == EINVAL && m.cmd == PROTO_PORT) {
			err_warn("%s: bad daemon name; dropped", s->peer);
			refuse(s, "bad daemon name");
		} else {
			err_warn("%s: %s; dropped", s->peer,
			      errno == ENOMSG ? "unknown command" : "malformed line");
			refuse(s, errno == ENOMSG ? "unknown command" : "malformed line");
		}
		return;
	}
	switch (s->state) {
	case S_NEW:
		if (m.cmd != PROTO_AUTH)
			break;
		if (!proto_mac_ok(p->o->key, p->o->keylen, s->nonce, m.arg[0])) {
			err_warn("%s: wrong key; dropped", s->peer);
			refuse(s, "key rejected");
			return;
		}
		s->state = S_AUTHED;
		say(s, "OK");
		return;
	case S_AUTHED:
		if (m.cmd == PROTO_PORT) {
			grant(p, s, m.arg[0]);
			return;
		}
		if (m.cmd != PROTO_END)
			break;
		s->state = S_ENDED;
		if (!p->o->loop && !p->ended) {
			/* One master's session is the whole job: no new masters. */
			listener_close(&p->l);
			p->ended = 1;
		}
		if (s->live == 0) {
			say(s, "BYE");
			s->closing = 1;
		}
		return;
	default:
		break;
	}
	err_warn("%s: %s out of turn; dropped", s->peer, line);
	refuse(s, "command out of turn");
}

/* Returns 0, or -1 when the session is over and must be freed (done: gracefully). */
static int session_io(struct pool *p, struct session *s, short revents)
{
	char line[PROTO_LINE_MAX];
	long long now = io_now_ms();

	if (revents & POLLOUT)
		flush(s);
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r;
		int got;

		r = proto_fill(&s->in, s->fd);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			if (s->state == S_AUTHED)
				err_warn("%s: closed the connection before END", s->peer);
			return -1;
		}
		if (r > 0 && s->state != S_ENDED)
			s->deadline = now + p->o->idle_ms;
		while (!s->closing && (got = proto_next(&s->in, line)) != 0) {
			if (got < 0) {
				const char *why = errno == EMSGSIZE ? "line too long" : "control character";
				err_warn("%s: %s; dropped", s->peer, why);
				refuse(s, why);
				break;
			}
			line_in(p, s, line);
		}
		flush(s);
	}
	if (s->state != S_ENDED && now >= s->deadline && !s->closing) {
		err_warn("%s: idle for %ld ms; dropped", s->peer, p->o->idle_ms);
		refuse(s, "idle timeout");
		flush(s);
	}
	return s->done ? -1 : 0;
}

/* ---- the loop ---- */

static void accept_masters(struct pool *p)
{
	for (int k = 0; k < ACCEPT_BURST; k++) {
		unsigned long failures;
		int fd = listener_accept(&p->l, io_now_ms(), &failures);

		if (fd < 0) {
			if (failures)
				err_warn("accept: %s (%lu in the last second; pausing)", strerror(errno),
					 failures);
			return;
		}
		session_new(p, fd);
	}
}

static _Noreturn void teardown(struct pool *p, int sig)
{
	listener_close(&p->l);
	while (p->ns) {
		struct session *s = p->s[0];

		if (!s->closing) {
			say(s, "ERR pool shutting down");
			flush(s);
		}
		s->done = 0; /* no lingering now: close at once */
		session_free(p, 0);
	}
	while (p->ng)
		grant_end(p, 0, 1);
	linger_free(&p->linger);
	err_warn("signal %d: ended", sig);
	free(p->s);
	free(p->g);
	free(p->pfd);
	mem_wipe(p->o->key, p->o->keylen);
	free(p->o->key);
	exit(EXIT_SIGNAL(sig));
}

static struct pollfd *pfd_room(struct pool *p, size_t need)
{
	if (need > p->pcap) {
		size_t ncap = need + 64;
		struct pollfd *n = realloc(p->pfd, ncap * sizeof *n);
		if (!n)
			err_die(EXIT_RUNTIME, "poll set:");
		p->pfd = n;
		p->pcap = ncap;
	}
	return p->pfd;
}

static int min_timeout(int a, long long b)
{
	if (b < 0)
		return a;
	if (b > 0x7fffffff)
		b = 0x7fffffff;
	return a < 0 || b < a ? (int)b : a;
}

static void loop(struct pool *p)
{
	for (;;) {
		size_t n = 0, nl, nlin, need = 1 + LISTENER_MAX + p->ns + p->linger.n;
		long long now = io_now_ms();
		int timeout, chld, sig;

		if (p->ended && p->ng == 0 && p->ns == 0 && p->linger.n == 0)
			return;
		for (size_t i = 0; i < p->ng; i++)
			need += binding_nfds(p->g[i]->b);
		pfd_room(p, need);
		p->pfd[n++] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
		nl = listener_pollfds(&p->l, p->pfd + n, now);
		n += nl;
		timeout = listener_timeout(&p->l, now);
		nlin = linger_pollfds(&p->linger, p->pfd + n);
		n += nlin;
		timeout = min_timeout(timeout, linger_timeout(&p->linger, now));
		for (size_t i = 0; i < p->ns; i++) {
			struct session *s = p->s[i];
			size_t pending = queue_pending(&s->out);
			short ev = 0;

			if (pending)
				ev |= POLLOUT;
			if (pending < OUT_HOLD)
				ev |= POLLIN;
			s->pfd = n;
			p->pfd[n++] = (struct pollfd){.fd = s->fd, .events = ev};
			if (s->state != S_ENDED)
				timeout = min_timeout(timeout, s->deadline > now ? s->deadline - now : 0);
		}
		for (size_t i = 0; i < p->ng; i++) {
			struct grant *g = p->g[i];
			g->pfd = n;
			g->npfd = binding_pollfds(g->b, p->pfd + n);
			n += g->npfd;
			timeout = min_timeout(timeout, binding_timeout(g->b));
		}
		if (poll(p->pfd, (nfds_t)n, timeout) < 0) {
			if (errno != EINTR)
				err_die(EXIT_RUNTIME, "poll:");
			continue;
		}
		if (p->pfd[0].revents && (sig = sig_drain(&chld, NULL)) != 0)
			teardown(p, sig);
		/* Bindings first: their slices index the poll set as it was built. */
		for (size_t i = 0; i < p->ng; i++) {
			struct grant *g = p->g[i];

			if (binding_handle(g->b, p->pfd + g->pfd, g->npfd) < 0) {
				err_warn("%s: buffer:", g->name);
				grant_end(p, i--, 1);
			} else if (binding_done(g->b)) {
				grant_end(p, i--, 0);
			}
		}
		for (size_t i = 0; i < p->ns; i++) {
			struct session *s = p->s[i];
			short rev = s->pfd < n ? p->pfd[s->pfd].revents : 0;

			s->pfd = (size_t)-1;
			if (session_io(p, s, rev) < 0)
				session_free(p, i--);
		}
		linger_handle(&p->linger, p->pfd + 1 + nl, nlin, io_now_ms());
		for (size_t k = 0; k < nl; k++)
			if (p->pfd[1 + k].revents) {
				accept_masters(p);
				break;
			}
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct pool p = {.o = &o};
	struct rlimit rl;
	struct stat st;
	int gai = 0;

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	if (o.dir && stat(o.dir, &st) < 0)
		err_die(EXIT_RUNTIME, "%s:", o.dir);
	if (o.dir && !S_ISDIR(st.st_mode))
		err_die(EXIT_RUNTIME, "%s: not a directory", o.dir);
	/* Each grant holds a listener, a FIFO and a connection: take every descriptor allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (daemon_start(&p.dm, o.background, 0) < 0)
		err_die(EXIT_RUNTIME, "fork:");
	p.sigfd = sig_init(0);
	if (p.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	if (listener_open(&p.l, o.addr, o.port, SOMAXCONN, &gai) < 0)
		err_die(EXIT_RUNTIME, "listen on %s %s: %s", o.addr ? o.addr : "*", o.port,
			net_strerror(gai));
	p.next_port = o.lo;
	if (daemon_ready(&p.dm, o.logfile) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.logfile, err_file_why(errno));
	loop(&p);
	linger_free(&p.linger);
	free(p.s);
	free(p.g);
	free(p.pfd);
	mem_wipe(o.key, o.keylen);
	free(o.key);
	return 0;
}
