/*
 * delaylink: a network path with latency, loss and a bandwidth between two
 * network namespaces, for tests and benchmarks (this kernel has no netem).
 *
 * usage: delaylink [-R] [-a ADDR_A] [-b ADDR_B] [-d MS] [-i NAME] [-j MS]
 *                  [-l PCT] [-m MTU] [-q BYTES] [-Q BYTES] [-r BYTES_PER_S]
 *                  [-s SEED] [-t PACKETS] NS_A NS_B
 *
 * NS_A and NS_B name network namespaces: a name as `ip netns add` made it
 * (/run/netns/NAME), or a path holding one (/proc/PID/ns/net). delaylink
 * creates a tun device NAME in each, gives it a point-to-point address
 * (ADDR_A in NS_A with ADDR_B as its peer, and the reverse), brings it up,
 * goes back to its own namespace and prints "ready" on stdout. From then on
 * every packet one side sends reaches the other after the path's delays;
 * IPv4 only (the kernel's own IPv6 link-local chatter is forwarded too).
 *
 *   -a ADDR     NS_A's address (default 10.77.0.1)
 *   -b ADDR     NS_B's address (default 10.77.0.2)
 *   -d MS       one-way delay in milliseconds, a fraction allowed (default 0)
 *   -j MS       jitter: each packet's delay is d plus a uniform draw in
 *               [-j, +j] (never below 0). Packets of one direction keep
 *               their order (a packet waits for the one before it, as on
 *               one wire) unless -R is given.
 *   -R          let jitter reorder packets
 *   -l PCT      drop this percentage of packets at random, both ways (0-100)
 *   -r RATE     bandwidth in bytes per second (K, M, G: powers of 1024),
 *               each way: a packet takes len/RATE to serialize, after the
 *               ones queued before it. Default: no limit.
 *   -q BYTES    with -r, the router's queue before the serializer; a packet
 *               that does not fit is dropped (default RATE x 100 ms, at
 *               least 4 MTU)
 *   -Q BYTES    the most bytes held in one direction's delay line, counted
 *               as the buffers holding them (a packet takes the next power
 *               of two from 256 up to 64 KiB; default 128M); a packet that
 *               comes to a full line is dropped. A bulk TCP stream keeps
 *               its window in flight here: rate x one-way delay.
 *   -m MTU      the tun devices' MTU, 68-65535 (default 65535: a user space
 *               forwarder's cost is per packet, and TCP then sends 64 KiB
 *               segments; give 1500 for an Ethernet-like packet count)
 *   -t PACKETS  the tun devices' transmit queue length (default 1000)
 *   -i NAME     the tun devices' name in both namespaces (default dl0)
 *   -s SEED     the random generator's seed (default from the clock)
 *
 * The devices are not persistent: they go with delaylink's descriptors,
 * whatever ends it. It ends on SIGTERM, SIGINT or SIGHUP, and when its
 * parent ends (so that a test run killed whole leaves no forwarder behind;
 * start it from the shell that owns it, not from a subshell that exits).
 * At the end, and on SIGUSR1, it writes one line per direction to stderr:
 *
 *   delaylink: a>b in=N out=N bytes=N lost=N full=N over=N err=N held=N
 *
 * in: packets read from the sending side; out, bytes: written to the
 * other; lost: dropped by -l; full: dropped at the -r queue; over: dropped
 * at a full delay line (-Q); err: the receiving device refused them;
 * held: in the delay line now.
 *
 * Exit status: 0 after SIGTERM, SIGINT or SIGHUP (or the end of the parent);
 * 1 on a runtime error (a namespace that cannot be entered, an address the
 * kernel refuses, a device that fails); 2 on a usage error; 3 when this
 * machine cannot do it at all (no /dev/net/tun, no tun driver, or no
 * permission to create devices or enter namespaces), so that tests can
 * skip with the message instead of failing.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/opt.h"

#define EXIT_UNAVAILABLE 3
#define READ_BATCH 64	  /* packets read from one device per wakeup */
#define WRITE_BATCH 1024  /* due packets written per pass before polling again */
#define NS_PER_MS 1000000.0
#define MAX_MS 600000.0	  /* ten minutes: longer is a typo */
/* Packet buffers come in classes of 2^8 to 2^16 bytes of data. */
#define CLASS_SHIFT 8
#define CLASSES 9
#define PKT_MAX ((size_t)1 << (CLASS_SHIFT + CLASSES - 1))

static const char synopsis[] =
	"delaylink [-R] [-a ADDR_A] [-b ADDR_B] [-d MS] [-i NAME] [-j MS] [-l PCT] [-m MTU]\n"
	"       [-q BYTES] [-Q BYTES] [-r BYTES_PER_S] [-s SEED] [-t PACKETS] NS_A NS_B";
static const char usage_text[] =
	"usage: delaylink [-R] [-a ADDR_A] [-b ADDR_B] [-d MS] [-i NAME] [-j MS] [-l PCT]\n"
	"                 [-m MTU] [-q BYTES] [-Q BYTES] [-r BYTES_PER_S] [-s SEED]\n"
	"                 [-t PACKETS] NS_A NS_B\n"
	"Join two network namespaces with tun devices and forward every packet\n"
	"after a one-way delay, with jitter, loss and a bandwidth. Prints \"ready\".\n"
	"  -a ADDR   NS_A's address (10.77.0.1)   -b ADDR   NS_B's address (10.77.0.2)\n"
	"  -d MS     one-way delay (0)            -j MS     jitter, +-MS uniform (0)\n"
	"  -R        let jitter reorder packets   -l PCT    random loss, percent (0)\n"
	"  -r RATE   bytes/s each way (no limit)  -q BYTES  queue for -r (RATE x 0.1 s)\n"
	"  -Q BYTES  delay line each way (128M)   -m MTU    device MTU (65535)\n"
	"  -t N      device txqueuelen (1000)     -i NAME   device name (dl0)\n"
	"  -s SEED   random seed (the clock)\n"
	"Exit: 0 on TERM, INT or HUP; 1 runtime error; 2 usage; 3 no tun or netns here.\n";

struct opts {
	struct in_addr addr_a, addr_b;
	double delay_ns, jitter_ns, loss; /* loss as a probability */
	int reorder;
	long rate;			  /* bytes/s, 0: no limit */
	long queue;			  /* bytes before the serializer */
	long line;			  /* bytes in a delay line */
	long mtu, txqlen;
	const char *ifname;
	unsigned long long seed;
	const char *ns_a, *ns_b;
};

/* A packet in a delay line, due at `due` (CLOCK_MONOTONIC ns). */
struct pkt {
	struct pkt *next;  /* in a free list */
	uint64_t due, seq; /* seq: equal dues leave in arrival order */
	size_t len;
	int cls;	   /* its buffer holds 2^(cls + CLASS_SHIFT) bytes */
	unsigned char data[];
};

/* One direction: what it reads, where it writes, what it holds. */
struct dir {
	const char *name;
	int in, out;
	struct pkt **heap; /* a min-heap on (due, seq) */
	size_t n, cap;
	size_t held_bytes;
	uint64_t last_due;   /* without -R, no packet leaves before this */
	uint64_t busy_until; /* -r: when the serializer is free */
	uint64_t seq;
	unsigned long long in_n, out_n, bytes, lost, full, over, err;
};

static volatile sig_atomic_t stop_sig, report;

static void on_stop(int sig) { stop_sig = sig; }
static void on_report(int sig) { (void)sig; report = 1; }

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, good enough for loss and jitter draws, seedable. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double rnd01(void) { return (double)(rnd() >> 11) * 0x1.0p-53; }

/* A decimal number with an optional fraction in [min, max], or a usage error. */
static double number_or_die(const char *s, double min, double max, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < min || v > max)
		err_usage(synopsis, "%s: '%s' is not a number from %g to %g", what, s, min, max);
	return v;
}

static struct in_addr addr_or_die(const char *s, const char *what)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		err_usage(synopsis, "%s: '%s' is not an IPv4 address", what, s);
	return a;
}

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = "a:b:d:hi:j:l:m:q:Q:r:Rs:t:V";
	struct timespec ts;
	int c, have_seed = 0, have_queue = 0;

	memset(o, 0, sizeof *o);
	o->addr_a = addr_or_die("10.77.0.1", "-a");
	o->addr_b = addr_or_die("10.77.0.2", "-b");
	o->line = 128L << 20;
	o->mtu = 65535;
	o->txqlen = 1000;
	o->ifname = "dl0";
	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'a': o->addr_a = addr_or_die(optarg, "-a"); break;
		case 'b': o->addr_b = addr_or_die(optarg, "-b"); break;
		case 'd': o->delay_ns = number_or_die(optarg, 0, MAX_MS, "-d") * NS_PER_MS; break;
		case 'i':
			if (optarg[0] == '\0' || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/') ||
			    strchr(optarg, '%'))
				err_usage(synopsis, "-i: '%s' is not a device name (1-%d characters)",
					  optarg, IFNAMSIZ - 1);
			o->ifname = optarg;
			break;
		case 'j': o->jitter_ns = number_or_die(optarg, 0, MAX_MS, "-j") * NS_PER_MS; break;
		case 'l': o->loss = number_or_die(optarg, 0, 100, "-l") / 100; break;
		case 'm': o->mtu = opt_number(optarg, 68, 65535, "-m", &p); break;
		case 'q':
			o->queue = opt_size(optarg, 1, 1L << 40, "-q", &p);
			have_queue = 1;
			break;
		case 'Q': o->line = opt_size(optarg, 1, 1L << 40, "-Q", &p); break;
		case 'r': o->rate = opt_size(optarg, 1, 1L << 40, "-r", &p); break;
		case 'R': o->reorder = 1; break;
		case 's':
			o->seed = (unsigned long long)opt_number(optarg, 0, 0x7fffffffffffffffL,
								 "-s", &p);
			have_seed = 1;
			break;
		case 't': o->txqlen = opt_number(optarg, 1, 1L << 20, "-t", &p); break;
		default: err_cmdline(&p);
		}
	}
	if (argc - optind < 2)
		err_usage(synopsis, "missing operand (ns_a ns_b)");
	if (argc - optind > 2)
		err_usage(synopsis, "too many operands");
	o->ns_a = argv[optind];
	o->ns_b = argv[optind + 1];
	if (o->addr_a.s_addr == o->addr_b.s_addr)
		err_usage(synopsis, "-a and -b: the two ends need different addresses");
	if (have_queue && o->rate == 0)
		err_usage(synopsis, "-q: a queue without a rate (-r) never fills");
	if (o->rate != 0 && !have_queue) {
		/* a router's classic buffer: 100 ms at the link's rate */
		o->queue = o->rate / 10;
		if (o->queue < 4 * o->mtu)
			o->queue = 4 * o->mtu;
	}
	if (!have_seed) {
		clock_gettime(CLOCK_REALTIME, &ts);
		o->seed = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
			  (unsigned long long)getpid();
	}
	/* xorshift must not start at 0; splitmix's constant spreads small seeds */
	rng_state = (o->seed + 1) * 0x9E3779B97F4A7C15ULL;
	if (rng_state == 0)
		rng_state = 1;
}

/*
 * ---- packet buffers ----
 * A bulk stream takes and gives back thousands of buffers a second, and
 * malloc would hand its heap's top back to the kernel and fault the same
 * pages in again each time (it trims above 128 KiB): each size class keeps
 * a free list instead, of at most -Q bytes in all. A packet is read into a
 * 64 KiB buffer; a large one keeps it (no copy), a small one is copied
 * into a buffer of its class and the large one takes the next read.
 */
static struct pkt *free_list[CLASSES];
static size_t free_bytes, free_max;

static size_t pkt_cost(int cls) { return sizeof(struct pkt) + ((size_t)1 << (cls + CLASS_SHIFT)); }

static int class_of(size_t len)
{
	int c = 0;

	while (((size_t)1 << (c + CLASS_SHIFT)) < len)
		c++;
	return c;
}

static struct pkt *pkt_get(int cls)
{
	struct pkt *p = free_list[cls];

	if (p != NULL) {
		free_list[cls] = p->next;
		free_bytes -= pkt_cost(cls);
		return p;
	}
	p = malloc(pkt_cost(cls));
	if (p != NULL)
		p->cls = cls;
	return p;
}

static void pkt_put(struct pkt *p)
{
	if (free_bytes + pkt_cost(p->cls) > free_max) {
		free(p);
		return;
	}
	free_bytes += pkt_cost(p->cls);
	p->next = free_list[p->cls];
	free_list[p->cls] = p;
}

/* ---- the delay line: a min-heap of packets on (due, seq) ---- */

static int before(const struct pkt *x, const struct pkt *y)
{
	return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static int heap_push(struct dir *d, struct pkt *p)
{
	size_t i;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1024;
		struct pkt **h = realloc(d->heap, cap * sizeof *h);
		if (h == NULL)
			return -1;
		d->heap = h;
		d->cap = cap;
	}
	for (i = d->n++; i > 0; i = (i - 1) / 2) {
		struct pkt *parent = d->heap[(i - 1) / 2];
		if (!before(p, parent))
			break;
		d->heap[i] = parent;
	}
	d->heap[i] = p;
	return 0;
}

static struct pkt *heap_pop(struct dir *d)
{
	struct pkt *top = d->heap[0], *last = d->heap[--d->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= d->n)
			break;
		if (c + 1 < d->n && before(d->heap[c + 1], d->heap[c]))
			c++;
		if (!before(d->heap[c], last))
			break;
		d->heap[i] = d->heap[c];
		i = c;
	}
	if (d->n > 0)
		d->heap[i] = last;
	return top;
}

/*
 * A packet read from d->in into *spare at `now`: lost, dropped, or held
 * until due (then *spare is the packet, and a new one is taken).
 * The -r queue is virtual: packets leave a FIFO serializer in arrival
 * order, so each one's end of serialization is known when it comes, and
 * the bytes still ahead of it are (busy_until - now) x rate.
 */
static void admit(struct dir *d, const struct opts *o, struct pkt **spare, size_t len, uint64_t now)
{
	uint64_t t = now;
	double delay;
	struct pkt *p;
	int cls = class_of(len);

	d->in_n++;
	if (o->loss > 0 && rnd01() < o->loss) {
		d->lost++;
		return;
	}
	if (o->rate > 0) {
		uint64_t start = d->busy_until > now ? d->busy_until : now;
		double ahead = (double)(start - now) * (double)o->rate / 1e9;
		if (ahead + (double)len > (double)o->queue) {
			d->full++;
			return;
		}
		d->busy_until = start + (uint64_t)((double)len * 1e9 / (double)o->rate);
		t = d->busy_until;
	}
	if (d->held_bytes + pkt_cost(cls) > (size_t)o->line) {
		d->over++;
		return;
	}
	delay = o->delay_ns;
	if (o->jitter_ns > 0) {
		delay += (2 * rnd01() - 1) * o->jitter_ns;
		if (delay < 0)
			delay = 0;
	}
	t += (uint64_t)delay;
	if (!o->reorder) {
		if (t < d->last_due)
			t = d->last_due;
		d->last_due = t;
	}
	if (cls == (*spare)->cls) {
		struct pkt *next = pkt_get(cls);
		if (next == NULL) {
			d->over++;
			return;
		}
		p = *spare;
		*spare = next;
	} else {
		p = pkt_get(cls);
		if (p == NULL) {
			d->over++;
			return;
		}
		memcpy(p->data, (*spare)->data, len);
	}
	p->due = t;
	p->seq = d->seq++;
	p->len = len;
	if (heap_push(d, p) < 0) {
		pkt_put(p);
		d->over++;
		return;
	}
	d->held_bytes += pkt_cost(cls);
}

/* Read what d->in has (at most READ_BATCH packets). 0, or -1 on a dead device. */
static int drain_in(struct dir *d, const struct opts *o, struct pkt **spare)
{
	for (int i = 0; i < READ_BATCH; i++) {
		ssize_t n = read(d->in, (*spare)->data, PKT_MAX);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			err_warn("%s: read:", d->name);
			return -1;
		}
		if (n == 0)
			return 0;
		admit(d, o, spare, (size_t)n, now_ns());
	}
	return 0;
}

/* Write the packets due by `now` (at most WRITE_BATCH). */
static void send_due(struct dir *d, uint64_t now)
{
	for (int i = 0; i < WRITE_BATCH && d->n > 0 && d->heap[0]->due <= now; i++) {
		struct pkt *p = heap_pop(d);
		ssize_t w = write(d->out, p->data, p->len);
		if (w == (ssize_t)p->len) {
			d->out_n++;
			d->bytes += p->len;
		} else {
			/* The device is down or refused it: as a wire would, drop it. */
			d->err++;
			if (w < 0)
				err_warn("%s: write:", d->name);
		}
		d->held_bytes -= pkt_cost(p->cls);
		pkt_put(p);
	}
}

static void print_stats(const struct dir *d)
{
	fprintf(stderr,
		"delaylink: %s in=%llu out=%llu bytes=%llu lost=%llu full=%llu over=%llu err=%llu "
		"held=%zu\n",
		d->name, d->in_n, d->out_n, d->bytes, d->lost, d->full, d->over, d->err, d->n);
	fflush(stderr);
}

/* ---- the devices ---- */

static _Noreturn void die_unavailable_or(int err, const char *what, const char *ns)
{
	errno = err;
	if (err == ENOENT || err == ENODEV || err == ENXIO || err == EPERM || err == EACCES)
		err_die(EXIT_UNAVAILABLE, "%s in %s:", what, ns);
	err_die(EXIT_RUNTIME, "%s in %s:", what, ns);
}

static void ifreq_named(struct ifreq *ifr, const char *name)
{
	memset(ifr, 0, sizeof *ifr);
	memcpy(ifr->ifr_name, name, strlen(name) + 1); /* checked < IFNAMSIZ */
}

static void set_addr(int s, unsigned long req, const char *name, struct in_addr a, const char *what,
		     const char *ns)
{
	struct ifreq ifr;
	struct sockaddr_in sin;

	ifreq_named(&ifr, name);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr = a;
	memcpy(&ifr.ifr_addr, &sin, sizeof sin);
	if (ioctl(s, req, &ifr) < 0)
		err_die(EXIT_RUNTIME, "%s %s in %s:", what, inet_ntoa(a), ns);
}

/*
 * In namespace `ns` (a name under /run/netns or a path), a tun device
 * with local address `self` and peer `peer`, up; its descriptor, opened
 * non-blocking. The thread is left in `ns`: the caller goes home.
 */
static int tun_in(const char *ns, const struct opts *o, struct in_addr self, struct in_addr peer)
{
	char path[4096], what[IFNAMSIZ + 16];
	struct ifreq ifr;
	int nsfd, fd, s;

	if (strchr(ns, '/') != NULL)
		snprintf(path, sizeof path, "%s", ns);
	else
		snprintf(path, sizeof path, "/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		err_die(errno == EACCES || errno == EPERM ? EXIT_UNAVAILABLE : EXIT_RUNTIME,
			"namespace %s: %s:", ns, path);
	if (setns(nsfd, CLONE_NEWNET) < 0)
		die_unavailable_or(errno, "setns", ns);
	close(nsfd);

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die_unavailable_or(errno, "/dev/net/tun", ns);
	ifreq_named(&ifr, o->ifname);
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		snprintf(what, sizeof what, "tun device %s", o->ifname);
		die_unavailable_or(e, what, ns);
	}

	/* The classic ioctls: a socket acts in the namespace it was made in. */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		err_die(EXIT_RUNTIME, "socket in %s:", ns);
	ifreq_named(&ifr, o->ifname);
	ifr.ifr_mtu = (int)o->mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
		err_die(EXIT_RUNTIME, "%s: mtu %ld in %s:", o->ifname, o->mtu, ns);
	ifreq_named(&ifr, o->ifname);
	ifr.ifr_qlen = (int)o->txqlen;
	if (ioctl(s, SIOCSIFTXQLEN, &ifr) < 0)
		err_die(EXIT_RUNTIME, "%s: txqueuelen %ld in %s:", o->ifname, o->txqlen, ns);
	/* local first, then the peer: that makes it "inet SELF peer PEER/32" */
	set_addr(s, SIOCSIFADDR, o->ifname, self, "address", ns);
	set_addr(s, SIOCSIFDSTADDR, o->ifname, peer, "peer address", ns);
	ifreq_named(&ifr, o->ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		err_die(EXIT_RUNTIME, "%s: flags in %s:", o->ifname, ns);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		err_die(EXIT_RUNTIME, "%s: up in %s:", o->ifname, ns);
	close(s);
	return fd;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct dir ab = {.name = "a>b"}, ba = {.name = "b>a"};
	struct dir *dirs[2] = {&ab, &ba};
	struct sigaction sa;
	sigset_t block, waitmask;
	struct pkt *spare;
	pid_t parent;
	int home, fa, fb;

	err_init(argv[0]);
	parse(argc, argv, &o);
	free_max = (size_t)o.line;
	spare = pkt_get(CLASSES - 1); /* a packet never exceeds 65535 bytes */
	if (spare == NULL)
		err_die(EXIT_RUNTIME, "malloc:");

	/* Signals arrive only inside ppoll: no race between a flag and the wait. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);
	sigdelset(&waitmask, SIGUSR1);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_report;
	sigaction(SIGUSR1, &sa, NULL);
	/* The test run that started us may die without a teardown. */
	parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		err_die(EXIT_RUNTIME, "prctl:");
	if (getppid() != parent)
		return 0;
	/* Timers as exact as the kernel gives them: the default slack is 50 us. */
	prctl(PR_SET_TIMERSLACK, 1UL);

	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		err_die(EXIT_RUNTIME, "/proc/self/ns/net:");
	fa = tun_in(o.ns_a, &o, o.addr_a, o.addr_b);
	fb = tun_in(o.ns_b, &o, o.addr_b, o.addr_a);
	/* Back home: `ip netns pids` of either namespace does not list us. */
	if (setns(home, CLONE_NEWNET) < 0)
		err_die(EXIT_RUNTIME, "setns back:");
	close(home);
	ab.in = ba.out = fa;
	ba.in = ab.out = fb;
	printf("ready\n");
	fflush(stdout);

	while (stop_sig == 0) {
		struct pollfd pfd[2] = {{.fd = fa, .events = POLLIN}, {.fd = fb, .events = POLLIN}};
		struct timespec ts, *tp = NULL;
		uint64_t now = now_ns(), next = UINT64_MAX;
		int r;

		for (int i = 0; i < 2; i++) {
			send_due(dirs[i], now);
			if (dirs[i]->n > 0 && dirs[i]->heap[0]->due < next)
				next = dirs[i]->heap[0]->due;
		}
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tp = &ts;
		}
		r = ppoll(pfd, 2, tp, &waitmask);
		if (r < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "ppoll:");
		if (report) {
			report = 0;
			print_stats(&ab);
			print_stats(&ba);
		}
		if (r <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				err_die(EXIT_RUNTIME, "%s: the device in %s failed", o.ifname,
					i == 0 ? o.ns_a : o.ns_b);
			if ((pfd[i].revents & POLLIN) && drain_in(dirs[i], &o, &spare) < 0)
				exit(EXIT_RUNTIME);
		}
	}
	print_stats(&ab);
	print_stats(&ba);
	return 0;
}
