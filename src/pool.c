/*
 * pool: receive daemons pushed by master(1). Masters that prove they know
 * KEY (and to whom the pool proves it too) get, for each daemon, a port
 * guarded by a one-time token, where its output pours into a buffer
 * DIR/NAME: a once binding per grant, or with -l a buffer of the pool's
 * own that every master's stream for that name follows. One process, one
 * poll loop for every master and every buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/binding.h"
#include "lib/channel.h"
#include "lib/daemon.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/fifo.h"
#include "lib/guard.h"
#include "lib/io.h"
#include "lib/linger.h"
#include "lib/listener.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/penalty.h"
#include "lib/proc.h"
#include "lib/proto.h"
#include "lib/queue.h"
#include "lib/service.h"
#include "lib/sig.h"
#include "lib/streams.h"
#include "lib/wire.h"

#define OUT_HOLD 4096	    /* stop reading a master that leaves this much unread */
#define OUT_MAX 65536	    /* a master that leaves this much unread is dropped */
#define POOL_LINGER_MS 1000 /* after our last line: read and drop the peer's bytes this long */
#define GRANT_CONNS 4	    /* senders a once grant's binding holds while checking tokens */
#define BUFFER_CONNS 64	    /* senders a lasting buffer (-l) serves at once */
#define ACCEPT_BURST 64	    /* connections taken per wakeup, so bindings are not starved */
#define RESUME_MS 60000	    /* a broken stream's unfinished line waits this long for it */
#define KEY_WEAK 16	    /* a shorter key is warned about */

static const char usage_text[] =
	"usage: pool [-ablU] [-c MAX] [-d DIR] [-n MAX] [-N MAX] [-r LO-HI] [-A ADDR] [-t SECONDS]\n"
	"            [-x SDIR [-R SECONDS] [-S MAX]] [-L FILE] KEY PORT\n"
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
	"  -l         keep serving masters until signalled; a name's buffer lasts, and every\n"
	"             master's stream for it follows the one before\n"
	"  -L FILE    diagnostics to FILE once ready, not to stderr or syslog\n"
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
	"pool [-ablU] [-c MAX] [-d DIR] [-n MAX] [-N MAX] [-r LO-HI] [-A ADDR] [-t SECONDS] "
	"[-x SDIR [-R SECONDS] [-S MAX]] [-L FILE] KEY PORT";

struct opts {
	int background, loop, spool;
	int plain; /* -U: version 2, in plain text */
	const char *dir, *addr, *logfile, *port;
	long lo, hi; /* -r; 0: kernel's choice */
	long idle_ms;
	long max_unauth, max_session, max_grants; /* -c, -n, -N */
	const char *sdir;			  /* -x */
	long run_ms, max_services;		  /* -R, -S */
	int capped;				  /* -R or -S given */
	char *key;
	size_t keylen;
};

enum sstate {
	S_NEW,	  /* greeted, waiting for AUTH (2) or the handshake (3) */
	S_AUTHED, /* serving PORT requests */
	S_ENDED	  /* END received: waiting for its grants to end, then BYE */
};

struct session {
	int fd;
	enum sstate state;
	size_t live;	    /* grants of this session not yet ended */
	size_t grants;	    /* grants this session got */
	long long deadline; /* S_NEW: the handshake's end (absolute); then the idle limit */
	int judging;	    /* an AUTH waits for the penalty to allow judging it */
	long long judge_at;
	int closing; /* say nothing more; close gracefully once out is flushed */
	int done;    /* flushed and closing: hand the connection to the linger set */
	struct channel *ch; /* version 3: the control channel, once the handshake began */
	int open;	    /* version 3: the handshake is done; every line goes through ch */
	int quiet;	    /* version 3 before the handshake: no plain line after the greeting */
	char nonce[PROTO_NONCE_HEX + 1];
	char mac[PROTO_MAC_HEX + 1], nonce_m[PROTO_NONCE_HEX + 1];
	char ip[NET_IPLEN], peer[NET_IPLEN + NET_PORTLEN + 2];
	struct queue out;
	struct proto_in in;
	size_t pfd; /* its slot in the poll set, or (size_t)-1 */
};

struct pool;

/* What the pool knows of a name across grants: its streams, its lasting buffer (-l). */
struct nstate {
	char name[PROTO_NAME_MAX + 1];
	struct streams *st;
	struct buffer *lasting;
};

/*
 * A buffer the pool serves: a once binding for one grant, or with -l the
 * lasting binding of a name, which takes a ticket for each grant.
 */
struct buffer {
	struct pool *p;
	struct nstate *ns;
	char name[PROTO_NAME_MAX + 1];
	struct binding *b;
	struct guard guard;
	size_t grants;	  /* grants waiting for or using it */
	size_t pfd, npfd; /* its slice of the poll set */
};

/* A grant: one master's stream into one buffer. */
struct grant {
	struct buffer *buf;
	struct session *s; /* NULL once its master's connection is gone */
	int connected;	   /* its sender passed the guard */
	char stream[PROTO_STREAM_HEX + 1];
	unsigned long long base; /* the stream's offset where this grant's sender starts */
};

/* A service call: the program run for one master's CALL (service.c). */
struct call {
	struct service *sv;
	struct session *s; /* NULL once its master's connection is gone */
	char name[PROTO_NAME_MAX + 1];
	char stream[PROTO_STREAM_HEX + 1];
	size_t pfd, npfd;
};

struct pool {
	const struct opts *o;
	struct daemon dm;
	struct listener l; /* masters connect here; empty once no new ones are taken */
	int sigfd;
	int ended; /* without -l: a master said END, so no new masters */
	struct linger_set linger; /* control connections we are done with */
	struct penalty pen;	  /* wrong keys slow the guessing down */
	size_t unauth;		  /* sessions still proving the key */
	long next_port;
	struct session **s;
	size_t ns, scap;
	struct buffer **bufs;
	size_t nb, bcap;
	struct nstate **names;
	size_t nn, ncap;
	struct call **calls;
	size_t ncalls, callcap;
	struct grant **g;
	size_t ng, gcap;
	struct pollfd *pfd;
	size_t pcap;
	unsigned char psk[NOISE_PSK]; /* version 3: the channels' key, from KEY */
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
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = ":aA:bc:d:hL:ln:N:r:R:S:t:UVx:";
	int c;

	o->idle_ms = 30000;
	o->max_unauth = 32;
	o->max_session = 1000;
	o->max_grants = 4000;
	o->run_ms = 600000;
	o->max_services = 16;
	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'a': o->spool = 1; break;
		case 'A': o->addr = optarg; break;
		case 'b': o->background = 1; break;
		case 'c': o->max_unauth = opt_number(optarg, 1, 100000, "-c", &p); break;
		case 'd': o->dir = optarg; break;
		case 'L': o->logfile = optarg; break;
		case 'l': o->loop = 1; break;
		case 'n': o->max_session = opt_number(optarg, 1, 1000000, "-n", &p); break;
		case 'N': o->max_grants = opt_number(optarg, 1, 1000000, "-N", &p); break;
		case 'r': parse_range(o, optarg); break;
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
	if (o->dir && !*o->dir)
		err_usage(synopsis, "-d: empty directory");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->sdir && !*o->sdir)
		err_usage(synopsis, "-x: empty directory");
	if (!o->sdir && o->capped)
		err_usage(synopsis, "-R and -S go with -x: they cap the services");
	o->port = argv[1];
	if (opt_key(argv[0], &o->key, &o->keylen, &p) < 0)
		err_cmdline(&p);
}

/* ---- control connections ---- */

static void flush(struct session *s)
{
	struct channel *ch = s->open ? s->ch : NULL;
	int full;

	if (wire_write(&s->out, s->fd, ch, QUEUE_SOCKET, &full) < 0) {
		queue_consume(&s->out, s->out.len); /* the peer is gone; the read side will tell */
		s->closing = 1;
		ch = NULL;
	}
	queue_release(&s->out, 4096);
	/*
	 * FIN after our last line (in version 3 the END record before it),
	 * then drain (linger.c), so closing sends no reset over it.
	 */
	if (s->closing && !queue_pending(&s->out)) {
		if (ch && channel_shutdown(ch) < 0 && errno == EAGAIN)
			return; /* the rest goes on POLLOUT */
		s->done = 1;
	}
}

static void say(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct session *s, const char *fmt, ...)
{
	char line[PROTO_LINE_MAX];
	va_list ap;
	ssize_t n;

	if (s->closing || (s->quiet && !s->open))
		return;
	va_start(ap, fmt);
	n = proto_vline(line, fmt, ap);
	va_end(ap);
	if (n < 0) {
		err_warn("%s: a line too long to say; dropped", s->peer);
		s->closing = 1;
		return;
	}
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

/* Sessions still proving the key, from ip. */
static size_t unauth_from(const struct pool *p, const char *ip)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ns; i++)
		n += p->s[i]->state == S_NEW && !p->s[i]->closing && strcmp(p->s[i]->ip, ip) == 0;
	return n;
}

/*
 * Too many connections still proving the key (MaxStartups): the newcomer
 * is told and closed at once, so guessers cannot hold every slot.
 */
static int over_cap(struct pool *p, int fd, const char *ip)
{
	size_t per_source = p->o->max_unauth / 4 ? (size_t)p->o->max_unauth / 4 : 1;
	static const char busy[] = "ERR busy: too many connections proving the key\n";

	if (p->unauth < (size_t)p->o->max_unauth && unauth_from(p, ip) < per_source)
		return 0;
	err_warn("%s: refused: %zu connections are proving the key", ip, p->unauth);
	if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the line is a courtesy; the close says the same */
	}
	linger_add(&p->linger, fd, POOL_LINGER_MS);
	return 1;
}

static void session_new(struct pool *p, int fd)
{
	struct session *s;
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (net_name(fd, 1, ip, port) < 0)
		snprintf(ip, sizeof ip, "?");
	if (over_cap(p, fd, ip))
		return;
	if (mem_reserve(&p->s, &p->scap, p->ns + 1, sizeof *p->s, 16) < 0 ||
	    !(s = calloc(1, sizeof *s))) {
		err_warn("connection dropped:");
		close(fd);
		return;
	}
	s->fd = fd;
	io_set_nonblock(fd, 1);
	memcpy(s->ip, ip, sizeof ip);
	snprintf(s->peer, sizeof s->peer, "%s %s", s->ip, port);
	/* Absolute: bytes dribbled in one at a time do not buy a guesser more time. */
	s->deadline = io_now_ms() + p->o->idle_ms;
	if (!p->o->plain) {
		say(s, "SOCKETPOOL %d %s", PROTO_VERSION, WIRE_NOISE);
		s->quiet = 1;
	} else if (proto_random_hex(s->nonce, PROTO_NONCE_HEX / 2) < 0) {
		err_warn("%s: no random nonce:", s->peer);
		refuse(s, "no randomness");
	} else {
		say(s, "SOCKETPOOL %d %s", PROTO_VERSION_PLAIN, s->nonce);
	}
	p->s[p->ns++] = s;
	p->unauth++;
	flush(s);
}

static void grant_end(struct pool *p, size_t i);
static void grant_cancel(struct pool *p, size_t i);

/* Cancel the grants no sender took yet: their master is gone. */
static void orphan(struct pool *p, struct session *s)
{
	for (size_t i = p->ng; i-- > 0;) {
		if (p->g[i]->s != s || p->g[i]->connected)
			continue;
		p->g[i]->s = NULL;
		grant_cancel(p, i);
	}
}

/* Close a control connection; the grants it got and did not use go with it. */
static void session_free(struct pool *p, size_t i)
{
	struct session *s = p->s[i];

	if (s->state == S_NEW)
		p->unauth--;
	else
		err_warn("%s: session ends: %zu grant(s), %zu not finished yet", s->peer, s->grants,
			 s->live);
	orphan(p, s);
	for (size_t k = 0; k < p->ng; k++)
		if (p->g[k]->s == s)
			p->g[k]->s = NULL;
	/* A call waiting for its caller goes; one running ends as it will, reported to nobody. */
	for (size_t k = 0; k < p->ncalls; k++)
		if (p->calls[k]->s == s) {
			p->calls[k]->s = NULL;
			if (p->calls[k]->sv->state == SERVICE_WAITING)
				service_stop(p->calls[k]->sv);
		}
	channel_free(s->ch);
	if (s->done)
		linger_add(&p->linger, s->fd, POOL_LINGER_MS);
	else
		close(s->fd);
	queue_free(&s->out);
	free(s);
	p->s[i] = p->s[--p->ns];
}

/* ---- buffers and grants ---- */

static struct grant *grant_of(struct pool *p, const void *tag)
{
	for (size_t i = 0; i < p->ng; i++)
		if (p->g[i] == tag)
			return p->g[i];
	return NULL;
}

static size_t grant_index(const struct pool *p, const struct grant *g)
{
	for (size_t i = 0; i < p->ng; i++)
		if (p->g[i] == g)
			return i;
	return (size_t)-1;
}

/* The buffer path of a name, with suffix ("" or the stream file's). */
static char *path_of(const struct pool *p, const char *name, const char *suffix)
{
	char *base = fifo_resolve(name, p->o->dir), *path;
	size_t len;

	if (!base)
		return NULL;
	len = strlen(base) + strlen(suffix) + 1;
	if ((path = malloc(len)))
		snprintf(path, len, "%s%s", base, suffix);
	free(base);
	return path;
}

/* What the pool knows of name, made on first use: a previous pool's stream counts come back. */
static struct nstate *nstate_of(struct pool *p, const char *name)
{
	struct nstate *n;
	char *path;

	for (size_t i = 0; i < p->nn; i++)
		if (strcmp(p->names[i]->name, name) == 0)
			return p->names[i];
	if (mem_reserve(&p->names, &p->ncap, p->nn + 1, sizeof *p->names, 16) < 0 ||
	    !(n = calloc(1, sizeof *n)))
		return NULL;
	if (!(n->st = streams_new())) {
		free(n);
		return NULL;
	}
	snprintf(n->name, sizeof n->name, "%s", name);
	if ((path = path_of(p, name, STREAMS_SUFFIX)) != NULL) {
		int r = streams_load(n->st, path, io_now_ms());
		if (r > 0)
			err_warn("%s: %d stream(s) to resume, from %s", name, r, path);
		else if (r < 0)
			err_warn("%s: %s not taken back:", name, path);
		free(path);
	}
	p->names[p->nn++] = n;
	return n;
}

/* At the end: what may still resume is written next to each buffer. */
static void save_streams(struct pool *p)
{
	for (size_t i = 0; i < p->nn; i++) {
		char *path = path_of(p, p->names[i]->name, STREAMS_SUFFIX);

		if (path && streams_save(p->names[i]->st, path) < 0)
			err_warn("%s: saving its streams to %s:", p->names[i]->name, path);
		else if (path && streams_open(p->names[i]->st))
			err_warn("%s: %u stream(s) may resume; counts saved to %s", p->names[i]->name,
				 streams_open(p->names[i]->st), path);
		free(path);
		streams_free(p->names[i]->st);
		free(p->names[i]);
	}
	free(p->names);
	p->names = NULL;
	p->nn = 0;
}

/* What the sender's close means for its stream (where it resumes), and for its grant. */
static void sender_closed(struct pool *p, struct buffer *buf, const struct binding_event *ev)
{
	struct grant *g = grant_of(p, ev->tag);
	size_t i;

	if (!g)
		return;
	streams_set(buf->ns->st, g->stream, g->base + ev->taken, !ev->err, io_now_ms());
	err_warn("%s: sender %s closed after %llu bytes%s", buf->name, ev->peer, ev->bytes,
		 ev->err ? " (broken: its stream may resume)" : "");
	/* A lasting buffer goes on and the grant is over; a once binding ends by itself. */
	if (buf == buf->ns->lasting && (i = grant_index(p, g)) != (size_t)-1)
		grant_end(p, i);
}

static void on_event(const struct binding_event *ev, void *arg)
{
	struct buffer *buf = arg;
	struct grant *g;

	switch (ev->type) {
	case BINDING_EV_ACCEPT:
		if ((g = grant_of(buf->p, ev->tag)) != NULL)
			g->connected = 1;
		break;
	case BINDING_EV_CLOSE: sender_closed(buf->p, buf, ev); break;
	case BINDING_EV_REJECT:
		err_warn("%s: refused a connection from %s: %s", buf->name, ev->peer, ev->why);
		break;
	case BINDING_EV_ERROR:
		errno = ev->err;
		if (*ev->peer)
			err_warn("%s: connection from %s:", buf->name, ev->peer);
		else
			err_warn("%s: accept: %s (%llu in the last second; pausing)", buf->name,
				 strerror(ev->err), ev->bytes);
		break;
	case BINDING_EV_SAVED:
		if (ev->err) {
			errno = ev->err;
			err_warn("%s: saving unread bytes:", buf->name);
		} else if (*ev->peer) {
			err_warn("%s: %s%s %s, not touched; %llu unread byte(s) saved to %s instead",
				 buf->name, buf->name, FIFO_UNREAD, ev->peer, ev->bytes, ev->why);
		} else {
			err_warn("%s: %llu unread byte(s) saved to %s", buf->name, ev->bytes, ev->why);
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

/*
 * What a previous binding of this name saved unread goes first into the
 * new one (a private regular file of ours only), and is then removed.
 */
static void preload(struct buffer *buf)
{
	char *path = path_of(buf->p, buf->name, FIFO_UNREAD), chunk[65536];
	unsigned long long total = 0;
	struct stat st;
	ssize_t r;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		free(path);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		err_warn("%s: %s is not a private file of ours; left alone", buf->name, path);
		goto out;
	}
	while ((r = io_read(fd, chunk, sizeof chunk)) > 0) {
		if (binding_put(buf->b, chunk, (size_t)r) < 0)
			break;
		total += (unsigned long long)r;
	}
	if (r == 0) {
		unlink(path);
		err_warn("%s: %llu byte(s) a previous pool left unread go first, from %s", buf->name,
			 total, path);
	} else {
		err_warn("%s: reading %s:", buf->name, path);
	}
out:
	close(fd);
	free(path);
}

/* A buffer for name: a once binding, or the lasting one of the name (-l). */
static struct buffer *buffer_open(struct pool *p, struct nstate *ns, struct session *s,
				  const char *name)
{
	struct binding_config cfg = {0};
	struct buffer *buf;
	struct listener l;
	char *path = NULL, why[64];
	pid_t holder = 0;
	int gai = 0;

	if (mem_reserve(&p->bufs, &p->bcap, p->nb + 1, sizeof *p->bufs, 16) < 0 ||
	    !(buf = calloc(1, sizeof *buf))) {
		say(s, "FAIL %s out of memory", name);
		return NULL;
	}
	buf->p = p;
	buf->ns = ns;
	snprintf(buf->name, sizeof buf->name, "%s", name);
	guard_init(&buf->guard, !p->o->loop, 0);
	if (!(path = fifo_resolve(name, p->o->dir))) {
		say(s, "FAIL %s %s", name, strerror(errno));
		goto fail;
	}
	if (grant_listener(p, &l, &gai) < 0) {
		if (errno == EADDRNOTAVAIL && p->o->lo)
			say(s, "FAIL %s no free port in %ld-%ld", name, p->o->lo, p->o->hi);
		else
			say(s, "FAIL %s cannot listen: %s", name, net_strerror(gai));
		goto fail;
	}
	cfg.path = path;
	cfg.listener = &l;
	cfg.flags = (p->o->loop ? 0 : BINDING_ONCE) | (p->o->spool ? BINDING_SPOOL : 0);
	cfg.max_conns = p->o->loop ? BUFFER_CONNS : GRANT_CONNS;
	cfg.guard = &buf->guard.hook;
	/* Version 3: every sender is a channel; its token is the first line of its plaintext. */
	cfg.psk = p->o->plain ? NULL : p->psk;
	cfg.prologue = WIRE_DATA;
	cfg.on_event = on_event;
	cfg.arg = buf;
	buf->b = binding_open(&cfg, &holder, &gai);
	if (!buf->b) {
		say(s, "FAIL %s buffer %s", name, fifo_why(errno, p->o->spool, holder, why, sizeof why));
		goto fail;
	}
	if (!p->o->spool)
		preload(buf);
	if (p->o->loop)
		ns->lasting = buf;
	p->bufs[p->nb++] = buf;
	free(path);
	return buf;
fail:
	free(path);
	guard_free(&buf->guard);
	free(buf);
	return NULL;
}

static void buffer_close(struct pool *p, struct buffer *buf, int save)
{
	binding_close(buf->b, save); /* it tells what it saved, and where (on_event) */
	buf->b = NULL;
	if (buf->ns->lasting == buf)
		buf->ns->lasting = NULL;
	guard_free(&buf->guard);
	for (size_t i = 0; i < p->nb; i++)
		if (p->bufs[i] == buf) {
			p->bufs[i] = p->bufs[--p->nb];
			break;
		}
	free(buf);
}

/* A live once binding of this name (its FIFO would be "in use"). */
static int once_busy(const struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->nb; i++)
		if (p->bufs[i] != p->bufs[i]->ns->lasting && strcmp(p->bufs[i]->name, name) == 0)
			return 1;
	return 0;
}

/* The lasting buffer of name (-l), or NULL when it has none yet. */
static struct buffer *lasting_of(const struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->nn; i++)
		if (strcmp(p->names[i]->name, name) == 0)
			return p->names[i]->lasting;
	return NULL;
}

static void grant(struct pool *p, struct session *s, const struct proto_msg *m)
{
	const char *name = m->arg[0], *stream = m->arg[1];
	char token[PROTO_TOKEN_HEX + 1], taken[24];
	struct nstate *ns;
	struct buffer *buf;
	struct grant *g = NULL;
	long long r;

	if (!p->o->loop && once_busy(p, name)) {
		say(s, "FAIL %s already bound", name);
		return;
	}
	if (s->grants >= (size_t)p->o->max_session) {
		say(s, "FAIL %s too many grants for one session (%ld)", name, p->o->max_session);
		return;
	}
	if (p->ng >= (size_t)p->o->max_grants) {
		say(s, "FAIL %s the pool holds all the grants it may (%ld)", name, p->o->max_grants);
		return;
	}
	/*
	 * -l: a name's buffer lasts until the pool ends (a reader that keeps
	 * reading never sees its end), with a FIFO and a listener: -N bounds
	 * those too, so a new name past it is refused, and names are retired
	 * by restarting the pool.
	 */
	if (p->o->loop && !lasting_of(p, name) && p->nb >= (size_t)p->o->max_grants) {
		say(s, "FAIL %s the pool holds all the buffers it may (%ld): no new name until it "
		       "restarts", name, p->o->max_grants);
		return;
	}
	if (mem_reserve(&p->g, &p->gcap, p->ng + 1, sizeof *p->g, 16) < 0 || !(ns = nstate_of(p, name)) ||
	    !(g = calloc(1, sizeof *g)) || proto_random_hex(token, PROTO_TOKEN_HEX / 2) < 0) {
		say(s, "FAIL %s %s", name, strerror(errno));
		free(g);
		return;
	}
	buf = ns->lasting ? ns->lasting : buffer_open(p, ns, s, name);
	if (!buf) {
		free(g);
		mem_wipe(token, sizeof token);
		return;
	}
	/* Where this stream stands here: known, new (its master starts at 0), or unknown. */
	r = streams_get(ns->st, stream);
	if (r < 0 && m->offset == 0)
		r = 0;
	g->buf = buf;
	g->s = s;
	snprintf(g->stream, sizeof g->stream, "%s", stream);
	g->base = r >= 0 ? (unsigned long long)r : m->offset > 0 ? (unsigned long long)m->offset : 0;
	if (guard_add(&buf->guard, token, s->ip, g, m->offset >= 0) < 0) {
		say(s, "FAIL %s %s", name, strerror(errno));
		if (buf->grants == 0 && buf != ns->lasting)
			buffer_close(p, buf, 0);
		free(g);
		mem_wipe(token, sizeof token);
		return;
	}
	buf->grants++;
	s->live++;
	s->grants++;
	p->g[p->ng++] = g;
	if (r >= 0)
		snprintf(taken, sizeof taken, "%lld", r);
	else
		snprintf(taken, sizeof taken, "-");
	say(s, "GRANT %s %d %s %s", name, binding_port(buf->b), token, taken);
	err_warn("%s: granted to %s (port %d, stream %.8s, from byte %s)", name, s->peer,
		 binding_port(buf->b), stream, taken);
	mem_wipe(token, sizeof token);
}

/* A grant is over: its sender closed (-l), its binding ended, or it was cancelled. */
static void grant_end(struct pool *p, size_t i)
{
	struct grant *g = p->g[i];
	struct buffer *buf = g->buf;

	guard_drop(&buf->guard, g);
	buf->grants--;
	if (g->s && --g->s->live == 0 && g->s->state == S_ENDED) {
		say(g->s, "BYE");
		g->s->closing = 1;
		flush(g->s);
	}
	p->g[i] = p->g[--p->ng];
	free(g);
}

/* Its master left before its sender came: a once binding nobody will use goes too. */
static void grant_cancel(struct pool *p, size_t i)
{
	struct buffer *buf = p->g[i]->buf;

	err_warn("%s: its master left before connecting; cancelled", buf->name);
	grant_end(p, i);
	if (buf != buf->ns->lasting && buf->grants == 0)
		buffer_close(p, buf, 0);
}

/* A buffer has ended (a once binding is drained, or its FIFO failed): its grants with it. */
static void buffer_end(struct pool *p, struct buffer *buf, int save)
{
	for (size_t i = p->ng; i-- > 0;)
		if (p->g[i]->buf == buf)
			grant_end(p, i);
	buffer_close(p, buf, save);
}

/* ---- service calls (-x) ---- */

/* The service of this name: SDIR/NAME, an executable regular file. Returns its path (malloc'd). */
static char *service_path(const struct pool *p, const char *name)
{
	char *path;
	struct stat st;
	size_t len;

	if (!p->o->sdir)
		return NULL;
	len = strlen(p->o->sdir) + strlen(name) + 2;
	if (!(path = malloc(len)))
		return NULL;
	snprintf(path, len, "%s/%s", p->o->sdir, name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static size_t calls_running(const struct pool *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ncalls; i++)
		n += p->calls[i]->sv->state != SERVICE_ENDED;
	return n;
}

static void call(struct pool *p, struct session *s, const struct proto_msg *m)
{
	const char *name = m->arg[0];
	char token[PROTO_TOKEN_HEX + 1], *path;
	struct listener l;
	struct call *c;
	int gai = 0;

	if (!(path = service_path(p, name))) {
		say(s, "FAIL %s no such service", name);
		return;
	}
	if (calls_running(p) >= (size_t)p->o->max_services) {
		say(s, "FAIL %s too many services running (%ld)", name, p->o->max_services);
		goto out;
	}
	if (s->grants >= (size_t)p->o->max_session) {
		say(s, "FAIL %s too many grants for one session (%ld)", name, p->o->max_session);
		goto out;
	}
	if (mem_reserve(&p->calls, &p->callcap, p->ncalls + 1, sizeof *p->calls, 8) < 0 ||
	    !(c = calloc(1, sizeof *c))) {
		say(s, "FAIL %s out of memory", name);
		goto out;
	}
	if (proto_random_hex(token, PROTO_TOKEN_HEX / 2) < 0 || grant_listener(p, &l, &gai) < 0) {
		say(s, "FAIL %s cannot listen: %s", name, net_strerror(gai));
		free(c);
		goto out;
	}
	if (!(c->sv = service_open(name, path, token, s->ip, &l, p->o->run_ms, 2000,
				   p->o->plain ? NULL : p->psk))) {
		say(s, "FAIL %s %s", name, strerror(errno));
		free(c);
		goto out;
	}
	c->s = s;
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(c->stream, sizeof c->stream, "%s", m->arg[1]);
	p->calls[p->ncalls++] = c;
	s->live++;
	s->grants++;
	say(s, "GRANT %s %d %s -", name, service_port(c->sv), token);
	err_warn("%s: service called by %s (port %d)", name, s->peer, service_port(c->sv));
out:
	mem_wipe(token, sizeof token);
	free(path);
}

/* A call has ended: its master hears how (EXIT), its connection closes gracefully. */
static void call_end(struct pool *p, size_t i)
{
	struct call *c = p->calls[i];
	struct service *sv = c->sv;

	if (sv->status >= 0)
		err_warn("%s: service exited %d%s%s", c->name, sv->status, sv->why ? ": " : "",
			 sv->why ? sv->why : "");
	else
		err_warn("%s: service did not run: %s", c->name, sv->why ? sv->why : "?");
	if (c->s) {
		if (sv->status >= 0)
			say(c->s, "EXIT %s %s %d%s%s", c->name, c->stream, sv->status, sv->why ? " " : "",
			    sv->why ? sv->why : "");
		else
			say(c->s, "EXIT %s %s - %s", c->name, c->stream, sv->why ? sv->why : "did not run");
		if (--c->s->live == 0 && c->s->state == S_ENDED) {
			say(c->s, "BYE");
			c->s->closing = 1;
		}
		flush(c->s);
	}
	/* Our FIN follows everything the program wrote; then the peer is drained. */
	if (sv->fd >= 0) {
		linger_add(&p->linger, sv->fd, POOL_LINGER_MS);
		sv->fd = -1;
	}
	service_free(sv);
	free(c);
	p->calls[i] = p->calls[--p->ncalls];
}

/*
 * A service's leader ends what its program left behind; but one killed at
 * the end of -R's grace cannot, and its orphans come back to us (we are
 * their subreaper): every child that is no running service's leader is
 * such a stray, and ends now.
 */
static void strays_end(struct pool *p)
{
	pid_t *live = calloc(p->ncalls + 1, sizeof *live);
	size_t n = 0;

	if (!live)
		return; /* at the next service's end, or ours */
	for (size_t i = 0; i < p->ncalls; i++)
		if (p->calls[i]->sv->state == SERVICE_RUNNING)
			live[n++] = p->calls[i]->sv->pid;
	proc_kill_strays(live, n);
	free(live);
}

static void calls_reaped(struct pool *p)
{
	int status;
	pid_t pid;

	while ((pid = proc_reap(&status)) > 0)
		for (size_t i = 0; i < p->ncalls; i++)
			if (service_reaped(p->calls[i]->sv, pid, status))
				break;
	if (p->o->sdir)
		strays_end(p);
}

/* ---- the protocol, pool side ---- */

/* The master proved the key, and (version 2: by the OK line about to go) the pool too. */
static void session_begins(struct pool *p, struct session *s, long long now)
{
	s->state = S_AUTHED;
	p->unauth--;
	s->deadline = now + p->o->idle_ms;
	err_warn("%s: master session begins", s->peer);
}

/* Judge a proof the penalty now allows: the session goes on with the pool's own proof, or ends. */
static void judge(struct pool *p, struct session *s, long long now)
{
	int ok = proto_mac_ok(p->o->key, p->o->keylen, PROTO_MASTER, s->nonce, s->nonce_m, s->mac);
	unsigned fails = penalty_judged(&p->pen, s->ip, ok, now);
	char mac[PROTO_MAC_HEX + 1];

	s->judging = 0;
	if (!ok) {
		err_warn("%s: wrong key (%u in a row from %s); dropped", s->peer, fails, s->ip);
		refuse(s, "key rejected");
		return;
	}
	proto_mac(p->o->key, p->o->keylen, PROTO_POOL, s->nonce, s->nonce_m, mac);
	say(s, "OK %s", mac);
	mem_wipe(mac, sizeof mac);
	session_begins(p, s, now);
}

/*
 * Version 3: the handshake is the proof, both ways. The master's first
 * message is taken, like an AUTH line, only when the penalty allows; a
 * failed one (a wrong key) counts as a wrong proof. A failed handshake
 * gets no answer: nothing goes in plain text after the greeting.
 */
static void handshake(struct pool *p, struct session *s, short revents, long long now)
{
	char greeting[32];
	unsigned fails;
	int r, err;

	if (!s->ch) {
		if (revents & (POLLERR | POLLHUP)) {
			s->closing = 1; /* gone before it was judged */
			return;
		}
		if (!s->judging && !(revents & POLLIN))
			return;
		if (!s->judging) {
			s->judging = 1;
			s->judge_at = penalty_when(&p->pen, s->ip, now);
		}
		if (now < s->judge_at)
			return;
		s->judging = 0;
		snprintf(greeting, sizeof greeting, "SOCKETPOOL %d %s", PROTO_VERSION, WIRE_NOISE);
		if (!(s->ch = wire_control(s->fd, 0, p->psk, greeting, now))) {
			err_warn("%s: no channel:", s->peer);
			s->closing = 1;
			return;
		}
		channel_set_deadline(s->ch, s->deadline); /* -t, from the connect, not 10 s from now */
	}
	r = channel_handshake(s->ch, now);
	if (r == 0)
		return;
	err = errno;
	s->closing = r < 0;
	if (r == 1) {
		penalty_judged(&p->pen, s->ip, 1, now);
		s->open = 1;
		session_begins(p, s, now);
	} else if (err == EBADMSG || err == EPROTO) {
		fails = penalty_judged(&p->pen, s->ip, 0, now);
		err_warn("%s: %s (%u in a row from %s); dropped", s->peer,
			 err == EBADMSG ? "wrong key" : "not a version 3 handshake", fails, s->ip);
	} else if (err == ETIMEDOUT) {
		err_warn("%s: no proof of the key in time; dropped", s->peer);
	} else if (err == ECONNRESET) {
		err_warn("%s: closed the connection during the handshake", s->peer);
	} else {
		err_warn("%s: the handshake failed: %s", s->peer, strerror(err));
	}
}

static void line_in(struct pool *p, struct session *s, char *line)
{
	struct proto_msg m;

	if (proto_parse(line, &m) < 0) {
		int old = errno == EINVAL && s->state == S_NEW && m.cmd == PROTO_AUTH;
		int badname = m.cmd == PROTO_PORT && m.arg[0] && !name_ok(m.arg[0]);
		const char *why = errno == ENOMSG ? "unknown command"
				  : old		  ? "protocol version 2 needed: the master is older"
				  : badname	  ? "bad daemon name"
						  : "malformed line";

		err_warn("%s: %s; dropped", s->peer, why);
		refuse(s, why);
		return;
	}
	switch (s->state) {
	case S_NEW:
		if (m.cmd != PROTO_AUTH || s->judging)
			break;
		memcpy(s->mac, m.arg[0], sizeof s->mac);
		memcpy(s->nonce_m, m.arg[1], sizeof s->nonce_m);
		s->judging = 1;
		s->judge_at = penalty_when(&p->pen, s->ip, io_now_ms());
		if (s->judge_at <= io_now_ms())
			judge(p, s, io_now_ms());
		return;
	case S_AUTHED:
		if (m.cmd == PROTO_PORT) {
			grant(p, s, &m);
			return;
		}
		if (m.cmd == PROTO_CALL) {
			call(p, s, &m);
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
	if (!p->o->plain && s->state == S_NEW) {
		if (!s->closing)
			handshake(p, s, revents, now);
		revents = 0;
		flush(s);
	}
	if (s->open && channel_readable(s->ch))
		revents |= POLLIN; /* a record's plaintext waits, unseen by poll */
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r;
		int got;

		r = wire_fill(&s->in, s->fd, s->open ? s->ch : NULL);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			if (r < 0 && s->open && errno != ECONNRESET)
				err_warn("%s: control connection: %s", s->peer,
					 channel_strerror(errno, 0));
			else if (s->state == S_AUTHED)
				err_warn("%s: closed the connection before END", s->peer);
			return -1;
		}
		/* A proof waiting to be judged: nothing more is taken meanwhile. */
		while (!s->closing && !s->judging && (got = proto_next(&s->in, line)) != 0) {
			if (got < 0) {
				const char *why = errno == EMSGSIZE ? "line too long" : "control character";
				err_warn("%s: %s; dropped", s->peer, why);
				refuse(s, why);
				break;
			}
			/* A whole line, not a byte, is what shows a session is alive. */
			if (s->state == S_AUTHED)
				s->deadline = now + p->o->idle_ms;
			line_in(p, s, line);
		}
		flush(s);
	}
	if (p->o->plain && s->judging && !s->closing && now >= s->judge_at && now < s->deadline) {
		judge(p, s, now);
		flush(s);
	}
	if (s->state != S_ENDED && now >= s->deadline && !s->closing && !s->done) {
		if (s->state == S_NEW) {
			err_warn("%s: no proof of the key within %ld ms; dropped", s->peer,
				 p->o->idle_ms);
			refuse(s, "handshake timeout");
		} else {
			err_warn("%s: idle for %ld ms; dropped", s->peer, p->o->idle_ms);
			refuse(s, "idle timeout");
		}
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

static void release(struct pool *p)
{
	linger_free(&p->linger);
	free(p->s);
	free(p->g);
	free(p->bufs);
	free(p->calls);
	free(p->pfd);
	mem_wipe(p->o->key, p->o->keylen);
	free(p->o->key);
	mem_wipe(p->psk, sizeof p->psk);
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
	/* Every service ends with the pool, its whole process group. */
	if (p->ncalls) {
		pid_t *pids = calloc(p->ncalls, sizeof *pids);
		size_t n = 0;

		for (size_t i = 0; pids && i < p->ncalls; i++)
			if (p->calls[i]->sv->state == SERVICE_RUNNING)
				pids[n++] = p->calls[i]->sv->pid;
		for (size_t i = 0; !pids && i < p->ncalls; i++)
			service_stop(p->calls[i]->sv); /* no memory: TERM at least */
		if (pids)
			proc_end_groups(pids, n, 2000, p->sigfd, NULL, NULL);
		free(pids);
		while (p->ncalls) {
			service_free(p->calls[p->ncalls - 1]->sv);
			free(p->calls[--p->ncalls]);
		}
	}
	if (p->o->sdir)
		proc_end_children(2000, NULL, NULL); /* strays (strays_end), if any are left */
	/* Every buffer saves what nobody read; its senders' streams record where they stopped. */
	while (p->nb)
		buffer_close(p, p->bufs[0], 1);
	while (p->ng) {
		free(p->g[p->ng - 1]);
		p->ng--;
	}
	save_streams(p);
	err_warn("signal %d: ended", sig);
	release(p);
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

static void loop(struct pool *p)
{
	for (;;) {
		size_t n = 0, nl, nlin, need = 1 + LISTENER_MAX + p->ns + p->linger.n;
		long long now = io_now_ms(), at;
		int chld, sig;

		if (p->ended && p->nb == 0 && p->ns == 0 && p->linger.n == 0 && p->ncalls == 0)
			return;
		for (size_t i = 0; i < p->nb; i++)
			need += binding_nfds(p->bufs[i]->b);
		need += p->ncalls * (LISTENER_MAX + 1);
		pfd_room(p, need);
		p->pfd[n++] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
		nl = listener_pollfds(&p->l, p->pfd + n, now);
		n += nl;
		at = deadline_in(listener_timeout(&p->l, now), now);
		nlin = linger_pollfds(&p->linger, p->pfd + n);
		n += nlin;
		at = deadline_earlier(at, deadline_in(linger_timeout(&p->linger, now), now));
		for (size_t i = 0; i < p->ns; i++) {
			struct session *s = p->s[i];
			size_t pending = queue_pending(&s->out);
			short ev = 0;

			if (pending)
				ev |= POLLOUT;
			if (s->ch)
				ev |= channel_events(s->ch);
			/* Version 3: a handshake waiting for its judgement stays in the kernel. */
			if (pending < OUT_HOLD && !(s->judging && !p->o->plain))
				ev |= POLLIN;
			if (s->open && channel_readable(s->ch) && pending < OUT_HOLD)
				at = now;
			s->pfd = n;
			p->pfd[n++] = (struct pollfd){.fd = s->fd, .events = ev};
			if (s->state != S_ENDED)
				at = deadline_earlier(at, s->deadline);
			if (s->judging)
				at = deadline_earlier(at, s->judge_at);
		}
		for (size_t i = 0; i < p->nb; i++) {
			struct buffer *buf = p->bufs[i];
			buf->pfd = n;
			buf->npfd = binding_pollfds(buf->b, p->pfd + n);
			n += buf->npfd;
			at = deadline_earlier(at, deadline_in(binding_timeout(buf->b), now));
		}
		for (size_t i = 0; i < p->ncalls; i++) {
			struct call *c = p->calls[i];
			c->pfd = n;
			c->npfd = service_pollfds(c->sv, p->pfd + n, now);
			n += c->npfd;
			at = deadline_earlier(at, deadline_in(service_timeout(c->sv, now), now));
		}
		if (poll(p->pfd, (nfds_t)n, deadline_timeout(at, now)) < 0) {
			if (errno != EINTR)
				err_die(EXIT_RUNTIME, "poll:");
			continue;
		}
		chld = 0;
		if (p->pfd[0].revents && (sig = sig_drain(&chld)) != 0)
			teardown(p, sig);
		if (chld)
			calls_reaped(p);
		for (size_t i = 0; i < p->ncalls; i++) {
			struct call *c = p->calls[i];

			service_handle(c->sv, p->pfd + c->pfd, c->npfd, io_now_ms());
			if (c->sv->state == SERVICE_ENDED)
				call_end(p, i--);
		}
		/* Buffers first: their slices index the poll set as it was built. */
		for (size_t i = 0; i < p->nb; i++) {
			struct buffer *buf = p->bufs[i];
			size_t before = p->nb;

			if (binding_handle(buf->b, p->pfd + buf->pfd, buf->npfd) < 0) {
				err_warn("%s: buffer:", buf->name);
				buffer_end(p, buf, 1);
			} else if (binding_done(buf->b)) {
				buffer_end(p, buf, 0);
			}
			if (p->nb < before)
				i--;
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

/* dir must be a directory (what: the option, for the message, or ""). */
static void need_dir(const char *what, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		err_die(EXIT_RUNTIME, "%s%s:", what, dir);
	if (!S_ISDIR(st.st_mode))
		err_die(EXIT_RUNTIME, "%s%s: not a directory", what, dir);
}

/* DIR must take FIFOs from us: try one, before any master is told it may come. */
static void check_dir(const struct opts *o)
{
	char probe[4096];

	if (!o->dir)
		return;
	need_dir("", o->dir);
	/* A dot name: no buffer can be called that. */
	snprintf(probe, sizeof probe, "%s/.pool-probe-%ld", o->dir, (long)getpid());
	if (mkfifo(probe, 0600) < 0)
		err_die(EXIT_RUNTIME, "%s: cannot make buffers there:", o->dir);
	unlink(probe);
}

/* -x SDIR must be a directory we can look up services in, before any master may call one. */
static void check_sdir(const struct opts *o)
{
	if (!o->sdir)
		return;
	need_dir("-x: ", o->sdir);
	if (access(o->sdir, X_OK) < 0)
		err_die(EXIT_RUNTIME, "-x: %s:", o->sdir);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct pool p = {.o = &o};
	struct rlimit rl;
	int gai = 0;

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	check_dir(&o);
	check_sdir(&o);
	if (noise_psk_from_key(o.key, o.keylen, p.psk) < 0)
		err_die(EXIT_RUNTIME, "the key:");
	if (o.keylen < KEY_WEAK)
		err_warn("warning: the key is %zu bytes: whoever records one session can test "
			 "guesses of it offline; make a strong one with head -c 32 /dev/urandom > "
			 "key and give @key",
			 o.keylen);
	/* Each grant holds a listener, a FIFO and a connection: take every descriptor allowed. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	switch (daemon_start(&p.dm, o.background, 0)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(p.dm.status); /* the caller's process: the daemon is ready, or gone */
	}
	p.sigfd = sig_init(0);
	if (p.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	/* What a service leaves behind comes back to us, not to init: see strays_end. */
	if (o.sdir && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		err_die(EXIT_RUNTIME, "prctl:");
	if (listener_open(&p.l, o.addr, o.port, SOMAXCONN, &gai) < 0)
		err_die(EXIT_RUNTIME, "listen on %s %s: %s", o.addr ? o.addr : "*", o.port,
			net_strerror(gai));
	p.next_port = o.lo;
	if (daemon_ready(&p.dm, o.logfile) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.logfile, err_file_why(errno));
	loop(&p);
	save_streams(&p);
	release(&p);
	return 0;
}
