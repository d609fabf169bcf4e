/*
 * loadgen [-c CLIENTS] [-n TOTAL] [-g MS] [-t SECS] HOST PORT | PATH: TOTAL
 * connections from CLIENTS threads, each connecting, sending one line, reading
 * the reply to EOF and closing, then pausing MS milliseconds (default 0: back
 * to back; a pause measures a server that is idle when the connection comes).
 * With -t, a connection that cannot connect, send or get its reply to EOF
 * within SECS seconds (a fraction is allowed) is given up as an error rather
 * than waited for; without it loadgen waits as long as it takes.
 * Prints one line of key=value results:
 *   conns ok errors secs rate p50_us p99_us max_us
 *   sent got failed short wrong timeouts
 * A reply that is not the line sent, followed by the end of the stream,
 * counts as an error. The second group tells the errors apart and counts the
 * bytes: sent (the lines written), got (the reply bytes read, in all, so
 * got == sent with errors=0 when every reply was whole); failed: no connection
 * or the line could not be sent; short: the stream ended before the whole
 * line came back; wrong: other bytes, or more; timeouts: -t expired. Exits 1
 * when any connection was an error. Used by the tests (many connections,
 * quickly) and by scripts/bench-socket-W.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct job {
	struct addrinfo *ai;
	const char *path;
	long total;
	long gap_ms;
	struct timeval timeout; /* zero: none */
	atomic_long next, ok, errors;
	atomic_long failed, shorts, wrong, timeouts;
	atomic_llong sent, got;
	long long *lat_us;
};

enum outcome { OK, FAILED, SHORT, WRONG, TIMEOUT };

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A connected socket, or -1; *timed_out tells a -t expiry from a refusal. */
static int dial(const struct job *j, int *timed_out)
{
	int fd, on = j->timeout.tv_sec || j->timeout.tv_usec;

	*timed_out = 0;
	if (j->path) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", j->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && on)
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &j->timeout, sizeof j->timeout);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
			return fd;
	} else {
		fd = socket(j->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		/* Linux bounds connect(2) by the send timeout. */
		if (fd >= 0 && on)
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &j->timeout, sizeof j->timeout);
		if (fd >= 0 && connect(fd, j->ai->ai_addr, j->ai->ai_addrlen) == 0)
			return fd;
	}
	*timed_out = on && (errno == EINPROGRESS || errno == EAGAIN || errno == EWOULDBLOCK);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* One connection: OK when the reply was the line sent, then the end of the stream. */
static enum outcome one(struct job *j, long i)
{
	char line[64], buf[256];
	size_t got = 0;
	int len, timed_out, fd = dial(j, &timed_out);
	ssize_t r;
	enum outcome o;

	if (fd < 0)
		return timed_out ? TIMEOUT : FAILED;
	if (j->timeout.tv_sec || j->timeout.tv_usec)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &j->timeout, sizeof j->timeout);
	len = snprintf(line, sizeof line, "hello %ld\n", i);
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		return FAILED;
	}
	atomic_fetch_add(&j->sent, len);
	while ((r = read(fd, buf + got, sizeof buf - got)) > 0 && got < sizeof buf)
		got += (size_t)r;
	o = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TIMEOUT : OK;
	close(fd);
	atomic_fetch_add(&j->got, (long long)got);
	if (memcmp(buf, line, got < (size_t)len ? got : (size_t)len) != 0 || got > (size_t)len)
		return WRONG;
	if (o == TIMEOUT)
		return TIMEOUT;
	if (r < 0 || got < (size_t)len)
		return SHORT; /* a reset counts as a short reply */
	return r == 0 ? OK : WRONG;
}

static void *client(void *arg)
{
	struct job *j = arg;
	long i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->total) {
		long long t0 = now_us();
		enum outcome o = one(j, i);

		atomic_fetch_add(o == OK ? &j->ok : &j->errors, 1);
		if (o == FAILED)
			atomic_fetch_add(&j->failed, 1);
		else if (o == SHORT)
			atomic_fetch_add(&j->shorts, 1);
		else if (o == WRONG)
			atomic_fetch_add(&j->wrong, 1);
		else if (o == TIMEOUT)
			atomic_fetch_add(&j->timeouts, 1);
		j->lat_us[i] = now_us() - t0;
		if (j->gap_ms > 0) {
			struct timespec gap = {j->gap_ms / 1000, (j->gap_ms % 1000) * 1000000};
			nanosleep(&gap, NULL);
		}
	}
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct job j = {0};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	long clients = 1;
	double timeout_s = 0;
	pthread_t *th;
	long long t0, t1;
	int c;

	j.total = 100;
	while ((c = getopt(argc, argv, "c:n:g:t:")) != -1) {
		if (c == 'c')
			clients = atol(optarg);
		else if (c == 'g')
			j.gap_ms = atol(optarg);
		else if (c == 't')
			timeout_s = atof(optarg);
		else if (c == 'n')
			j.total = atol(optarg);
		else
			return 2;
	}
	argv += optind;
	argc -= optind;
	if (clients < 1 || j.total < 1 || j.gap_ms < 0 || timeout_s < 0 || argc < 1 || argc > 2) {
		fprintf(stderr,
			"usage: loadgen [-c clients] [-n total] [-g ms] [-t secs] host port | path\n");
		return 2;
	}
	j.timeout.tv_sec = (time_t)timeout_s;
	j.timeout.tv_usec = (suseconds_t)((timeout_s - (double)j.timeout.tv_sec) * 1e6);
	if (argc == 1) {
		j.path = argv[0];
	} else if ((c = getaddrinfo(argv[0], argv[1], &hints, &j.ai)) != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", argv[0], gai_strerror(c));
		return 1;
	}
	j.lat_us = calloc((size_t)j.total, sizeof *j.lat_us);
	th = calloc((size_t)clients, sizeof *th);
	if (!j.lat_us || !th)
		return 1;
	t0 = now_us();
	for (long i = 0; i < clients; i++)
		pthread_create(&th[i], NULL, client, &j);
	for (long i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	t1 = now_us();
	qsort(j.lat_us, (size_t)j.total, sizeof *j.lat_us, cmp_ll);
	printf("conns=%ld ok=%ld errors=%ld secs=%.3f rate=%.0f p50_us=%lld p99_us=%lld "
	       "max_us=%lld sent=%lld got=%lld failed=%ld short=%ld wrong=%ld timeouts=%ld\n",
	       j.total, atomic_load(&j.ok), atomic_load(&j.errors), (t1 - t0) / 1e6,
	       j.total / ((t1 - t0) / 1e6), j.lat_us[j.total / 2],
	       j.lat_us[(j.total * 99) / 100 < j.total ? (j.total * 99) / 100 : j.total - 1],
	       j.lat_us[j.total - 1], atomic_load(&j.sent), atomic_load(&j.got),
	       atomic_load(&j.failed), atomic_load(&j.shorts), atomic_load(&j.wrong),
	       atomic_load(&j.timeouts));
	if (j.ai)
		freeaddrinfo(j.ai);
	return atomic_load(&j.errors) ? 1 : 0;
}
