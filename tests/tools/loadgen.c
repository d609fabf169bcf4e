/*
 * loadgen [-c CLIENTS] [-n TOTAL] [-g MS] HOST PORT | PATH: TOTAL connections
 * from CLIENTS threads, each connecting, sending one line, reading the reply
 * to EOF and closing, then pausing MS milliseconds (default 0: back to back;
 * a pause measures a server that is idle when the connection comes).
 * Prints one line of key=value results:
 *   conns ok errors secs rate p50_us p99_us max_us
 * A reply that is not the line sent counts as an error. Used by the tests
 * (many connections, quickly) and by scripts/bench-socket-W.sh.
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
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct job {
	struct addrinfo *ai;
	const char *path;
	long total;
	long gap_ms;
	atomic_long next, ok, errors;
	long long *lat_us;
};

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dial(const struct job *j)
{
	int fd;

	if (j->path) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", j->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
			return fd;
	} else {
		fd = socket(j->ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, j->ai->ai_addr, j->ai->ai_addrlen) == 0)
			return fd;
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/* One connection: 0 when the reply was the line sent. */
static int one(const struct job *j, long i)
{
	char line[64], buf[256];
	size_t got = 0;
	int len, fd = dial(j);
	ssize_t r;

	if (fd < 0)
		return -1;
	len = snprintf(line, sizeof line, "hello %ld\n", i);
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		return -1;
	}
	while ((r = read(fd, buf + got, sizeof buf - got)) > 0 && got < sizeof buf)
		got += (size_t)r;
	close(fd);
	return r == 0 && got == (size_t)len && memcmp(buf, line, got) == 0 ? 0 : -1;
}

static void *client(void *arg)
{
	struct job *j = arg;
	long i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->total) {
		long long t0 = now_us();
		if (one(j, i) == 0)
			atomic_fetch_add(&j->ok, 1);
		else
			atomic_fetch_add(&j->errors, 1);
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
	pthread_t *th;
	long long t0, t1;
	int c;

	j.total = 100;
	while ((c = getopt(argc, argv, "c:n:g:")) != -1) {
		if (c == 'c')
			clients = atol(optarg);
		else if (c == 'g')
			j.gap_ms = atol(optarg);
		else if (c == 'n')
			j.total = atol(optarg);
		else
			return 2;
	}
	argv += optind;
	argc -= optind;
	if (clients < 1 || j.total < 1 || j.gap_ms < 0 || argc < 1 || argc > 2) {
		fprintf(stderr, "usage: loadgen [-c clients] [-n total] [-g ms] host port | path\n");
		return 2;
	}
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
	       "max_us=%lld\n",
	       j.total, atomic_load(&j.ok), atomic_load(&j.errors), (t1 - t0) / 1e6,
	       j.total / ((t1 - t0) / 1e6), j.lat_us[j.total / 2],
	       j.lat_us[(j.total * 99) / 100 < j.total ? (j.total * 99) / 100 : j.total - 1],
	       j.lat_us[j.total - 1]);
	if (j.ai)
		freeaddrinfo(j.ai);
	return atomic_load(&j.errors) ? 1 : 0;
}
