/*
 * records: a stream of fixed-width numbered records, for counting a
 * teardown's bytes exactly: what a writer's write()s accepted, against
 * what a receiver got and what was saved to .unread files.
 *
 * The stream: record k (1, 2, ...) is its number in 15 decimal digits,
 * zero-padded, and a newline: 16 bytes, so byte o of the stream belongs to
 * record o / 16 + 1, and a byte seen twice is a record number seen twice.
 *
 * usage:
 *   records write [-b BLOCK] [-m MARK] FIFO
 *	Open FIFO for writing (never creating it) and write the stream into
 *	it, BLOCK bytes a write(2) (default 4096; PIPE_BUF or less is atomic),
 *	until a write fails (EPIPE: the reader closed) or SIGTERM, SIGINT or
 *	SIGHUP comes; then print the number of bytes write(2) accepted, partial
 *	writes counted to the byte, and exit 0. MARK is created once the first
 *	block was accepted. It never stops on its own.
 *   records drain FIFO OUT
 *	Read FIFO into OUT (created or truncated) until SIGTERM, SIGINT or
 *	SIGHUP; every byte read is written to OUT before it exits 0 (a reader
 *	that can be stopped without losing what it took, as cat cannot).
 *	Prints the bytes it read.
 *   records gen BYTES
 *	The first BYTES bytes of the stream, on standard output.
 *   records check ACCEPTED FILE...
 *	Is the concatenation of the FILEs (a missing one is empty) the first
 *	ACCEPTED bytes of the stream, in order, no byte twice? Prints, for
 *	each file, which part of the stream it holds ([from, to) in bytes, one
 *	range per contiguous piece), then what was doubled, lost, out of order
 *	or not of the stream at all, and "exact" or "NOT EXACT". Exit 0 when
 *	exact, 1 when not, 2 on a usage or read error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC 16
#define DIGITS 15

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* no SA_RESTART: a blocked write or read ends with EINTR */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* fill BUF with stream bytes [off, off + len) */
static void fill(char *buf, unsigned long long off, size_t len)
{
	char rec[REC + 1];
	unsigned long long k = off / REC;
	size_t at = (size_t)(off % REC), done = 0;

	while (done < len) {
		size_t n;

		snprintf(rec, sizeof rec, "%0*llu\n", DIGITS, k + 1);
		n = REC - at;
		if (n > len - done)
			n = len - done;
		memcpy(buf + done, rec + at, n);
		done += n;
		at = 0;
		k++;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: records write [-b BLOCK] [-m MARK] FIFO\n"
			"       records drain FIFO OUT\n"
			"       records gen BYTES\n"
			"       records check ACCEPTED FILE...\n");
	return 2;
}

static int cmd_write(int argc, char **argv)
{
	size_t block = 4096;
	const char *mark = NULL;
	unsigned long long total = 0;
	char *buf;
	int fd, i;

	for (i = 1; i < argc - 1 && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "-b") == 0)
			block = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-m") == 0)
			mark = argv[i + 1];
		else
			return usage();
	}
	if (i != argc - 1 || block == 0 || block > (1u << 24))
		return usage();
	catch_signals();
	buf = malloc(block);
	if (!buf)
		return 2;
	fd = open(argv[i], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "records: open %s: %s\n", argv[i], strerror(errno));
		printf("0\n");
		return 0;
	}
	while (!stop) {
		size_t off = 0;

		fill(buf, total, block);
		while (off < block && !stop) {
			ssize_t w = write(fd, buf + off, block - off);

			if (w < 0)
				break; /* EPIPE, or EINTR: nothing of this call was taken */
			off += (size_t)w;
			total += (unsigned long long)w;
		}
		if (off < block)
			break;
		if (mark) {
			close(open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
			mark = NULL;
		}
	}
	printf("%llu\n", total);
	return 0;
}

static int cmd_drain(int argc, char **argv)
{
	static char buf[1 << 16];
	unsigned long long total = 0;
	sigset_t block, none;
	int in, out;

	if (argc != 3)
		return usage();
	catch_signals();
	/* Signals are taken only inside ppoll: never between a read and its write. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &none);
	in = open(argv[1], O_RDONLY | O_NONBLOCK);
	out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0) {
		fprintf(stderr, "records: drain: %s\n", strerror(errno));
		return 2;
	}
	while (!stop) {
		struct pollfd p = { .fd = in, .events = POLLIN };
		ssize_t r;

		if (ppoll(&p, 1, NULL, &none) < 0)
			continue; /* EINTR: stop is set */
		r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r <= 0) {
			/* end of file: no writer now (the binding went); wait for one */
			struct timespec ts = { 0, 20000000 };

			ppoll(NULL, 0, &ts, &none);
			continue;
		}
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(out, buf + off, (size_t)(r - off));

			if (w < 0) {
				fprintf(stderr, "records: drain: write: %s\n", strerror(errno));
				return 2;
			}
			off += w;
		}
		total += (unsigned long long)r;
	}
	printf("%llu\n", total);
	return 0;
}

static int cmd_gen(int argc, char **argv)
{
	static char buf[1 << 16];
	unsigned long long n, off = 0;

	if (argc != 2)
		return usage();
	n = strtoull(argv[1], NULL, 10);
	while (off < n) {
		size_t len = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;

		fill(buf, off, len);
		if (fwrite(buf, 1, len, stdout) != len)
			return 2;
		off += len;
	}
	return fflush(stdout) == 0 ? 0 : 2;
}

/* ---- check ---- */

struct seg {
	unsigned long long from, to; /* stream bytes [from, to) */
	int file;
};

static struct seg *segs;
static size_t nsegs, capsegs;
static unsigned long long junk; /* bytes that are no part of the stream */

static void add_seg(unsigned long long from, unsigned long long to, int file)
{
	if (to == from)
		return;
	if (nsegs && segs[nsegs - 1].file == file && segs[nsegs - 1].to == from) {
		segs[nsegs - 1].to = to;
		return;
	}
	if (nsegs == capsegs) {
		capsegs = capsegs ? 2 * capsegs : 64;
		segs = realloc(segs, capsegs * sizeof *segs);
		if (!segs)
			exit(2);
	}
	segs[nsegs++] = (struct seg){ from, to, file };
}

/* is d[0..REC) a record? its number, or 0 */
static unsigned long long record_at(const unsigned char *d, size_t avail)
{
	unsigned long long k = 0;

	if (avail < REC || d[DIGITS] != '\n')
		return 0;
	for (int i = 0; i < DIGITS; i++) {
		if (d[i] < '0' || d[i] > '9')
			return 0;
		k = k * 10 + (d[i] - '0');
	}
	return k;
}

/* how many bytes of d[0..n) match the stream from offset s */
static size_t match(const unsigned char *d, size_t n, unsigned long long s)
{
	char buf[4096];
	size_t m = 0;

	while (m < n) {
		size_t len = n - m < sizeof buf ? n - m : sizeof buf;

		fill(buf, s + m, len);
		for (size_t i = 0; i < len; i++)
			if (d[m + i] != (unsigned char)buf[i])
				return m + i;
		m += len;
	}
	return m;
}

/*
 * The first record boundary at or after pos: j with j == 0 or d[j-1] a
 * newline, and a record at j; its number in *k. n when there is none.
 */
static size_t next_record(const unsigned char *d, size_t n, size_t pos, unsigned long long *k)
{
	for (size_t j = pos; j + REC <= n; j++) {
		if (j > 0 && d[j - 1] != '\n')
			continue;
		*k = record_at(d + j, n - j);
		if (*k)
			return j;
	}
	return n;
}

/* Cut file FILE's bytes into pieces of the stream; prev: where the last piece ended. */
static void pieces(const unsigned char *d, size_t n, int file, unsigned long long *prev)
{
	size_t pos = 0;

	while (pos < n) {
		unsigned long long k, s;
		size_t j = next_record(d, n, pos, &k), m;

		if (j == n) {
			/* no whole record left: the tail of a piece, as it goes on */
			m = match(d + pos, n - pos, *prev);
			if (m == 0) {
				junk += n - pos;
				return;
			}
			add_seg(*prev, *prev + m, file);
			*prev += m;
			pos += m;
			continue;
		}
		/* the bytes before the record end the record before it */
		s = (k - 1) * REC;
		if (s >= j - pos && match(d + pos, j - pos, s - (j - pos)) == j - pos) {
			s -= j - pos;
		} else {
			junk += j - pos;
			pos = j;
		}
		m = match(d + pos, n - pos, s);
		add_seg(s, s + m, file);
		*prev = s + m;
		pos += m;
	}
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

static void range(const char *what, unsigned long long from, unsigned long long to)
{
	printf("records: %s %llu bytes [%llu, %llu) (records %llu-%llu)\n", what, to - from, from,
	       to, from / REC + 1, (to - 1) / REC + 1);
}

static int cmd_check(int argc, char **argv)
{
	unsigned long long accepted, prev = 0, covered = 0, doubled = 0, lost = 0, beyond = 0;
	int order = 1, nfile = argc - 2;

	if (argc < 3)
		return usage();
	accepted = strtoull(argv[1], NULL, 10);
	printf("records: accepted %llu bytes (%llu records%s)\n", accepted, accepted / REC,
	       accepted % REC ? " and part of one" : "");
	for (int f = 0; f < nfile; f++) {
		const char *path = argv[2 + f];
		unsigned char *d = NULL;
		size_t n = 0, first = nsegs;
		unsigned long long junk0 = junk;
		FILE *fp = fopen(path, "rb");

		if (fp) {
			struct stat st;

			if (fstat(fileno(fp), &st) < 0)
				return 2;
			d = malloc((size_t)st.st_size + 1);
			if (!d)
				return 2;
			n = fread(d, 1, (size_t)st.st_size, fp);
			fclose(fp);
		} else if (errno != ENOENT) {
			fprintf(stderr, "records: %s: %s\n", path, strerror(errno));
			return 2;
		}
		pieces(d, n, f, &prev);
		free(d);
		printf("records: %s: %zu bytes%s", path, n, fp ? "" : " (no such file)");
		for (size_t i = first; i < nsegs; i++)
			printf(" [%llu, %llu)", segs[i].from, segs[i].to);
		if (junk > junk0)
			printf(", %llu bytes no part of the stream", junk - junk0);
		printf("\n");
	}
	for (size_t i = 1; i < nsegs; i++)
		if (segs[i].from < segs[i - 1].to || segs[i].from > segs[i - 1].to)
			order = 0;
	/* coverage: sort by start, sweep */
	qsort(segs, nsegs, sizeof *segs, cmp_seg);
	for (size_t i = 0; i < nsegs; i++) {
		unsigned long long from = segs[i].from, to = segs[i].to;

		if (from > covered) {
			unsigned long long hole_to = from < accepted ? from : accepted;

			if (covered < hole_to) {
				range("LOST", covered, hole_to);
				lost += hole_to - covered;
			}
		}
		if (from < covered) {
			unsigned long long d_to = to < covered ? to : covered;

			range("DOUBLED", from, d_to);
			doubled += d_to - from;
		}
		if (to > covered)
			covered = to;
	}
	if (covered < accepted) {
		range("LOST (the end)", covered, accepted);
		lost += accepted - covered;
	}
	if (covered > accepted) {
		range("MORE THAN ACCEPTED", accepted, covered);
		beyond = covered - accepted;
	}
	if (junk)
		printf("records: %llu bytes are no part of the stream\n", junk);
	if (!order && !doubled && !lost)
		printf("records: OUT OF ORDER: the pieces are all there, in another order\n");
	if (order && !doubled && !lost && !beyond && !junk) {
		printf("records: exact\n");
		return 0;
	}
	printf("records: NOT EXACT: %llu doubled, %llu lost, %llu beyond, %llu junk\n", doubled,
	       lost, beyond, junk);
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "write") == 0)
		return cmd_write(argc - 1, argv + 1);
	if (strcmp(argv[1], "drain") == 0)
		return cmd_drain(argc - 1, argv + 1);
	if (strcmp(argv[1], "gen") == 0)
		return cmd_gen(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	return usage();
}
