/*
 * flakyrecv: receivers that break, for counting lost bytes exactly. Runs
 * inside a network namespace of the test's own, where it may take the
 * loopback device down.
 *
 * usage: flakyrecv [-b rcvbuf] [-h hold_ms] [-n resets] [-k donefile] PORT OUT
 *
 * Listens on 127.0.0.1 PORT with a small receive buffer. n times: accept
 * a connection, let it stall (nothing arrives for a while, some bytes
 * wait in our buffer), freeze the network (ip link set lo down), read
 * everything our kernel acknowledged into OUT, close with a reset, thaw
 * the network (a connection is held hold_ms at least, so the sender's
 * backoff sees it live). Freezing first is what makes the count exact: with no
 * segment in flight, what we read is all that the sender's TCP ever saw
 * acknowledged by us.
 *
 * With -k, the first connection is not reset: once drained under the
 * freeze, DONEFILE is written and we wait to be killed (kill -9); the
 * test thaws the network. Otherwise, after n resets, one connection is
 * read to its end of file, into OUT, and we exit 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STABLE_MS 500	/* nothing new for this long: no segment in flight */
#define STALL_MAX_MS 30000

static void msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int inq(int fd)
{
	int n = 0;
	return ioctl(fd, SIOCINQ, &n) < 0 ? -1 : n;
}

static void net(const char *state)
{
	char cmd[64];

	snprintf(cmd, sizeof cmd, "ip link set lo %s", state);
	if (system(cmd) != 0) {
		fprintf(stderr, "flakyrecv: %s failed\n", cmd);
		exit(1);
	}
}

/* Until bytes wait in our buffer and nothing new has come for STABLE_MS. */
static int stall(int fd)
{
	int last = -1, same = 0;

	for (long waited = 0; waited < STALL_MAX_MS; waited += 50) {
		int n = inq(fd);

		if (n < 0)
			return -1;
		same = n > 0 && n == last ? same + 50 : 0;
		if (same >= STABLE_MS)
			return 0;
		last = n;
		msleep(50);
	}
	return -1;
}

/* Read everything there is now (non-blocking) into out. */
static long drain(int fd, int out, int to_eof)
{
	char buf[65536];
	long total = 0;

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, to_eof ? 0 : MSG_DONTWAIT);

		if (r <= 0)
			return r < 0 && errno != EAGAIN ? -1 : total;
		if (write(out, buf, (size_t)r) != r)
			return -1;
		total += r;
	}
}

int main(int argc, char **argv)
{
	int c, rcvbuf = 4096, resets = 0, one = 1, l, out;
	long hold = 0;
	const char *donefile = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET};

	while ((c = getopt(argc, argv, "b:h:k:n:")) != -1) {
		switch (c) {
		case 'b': rcvbuf = atoi(optarg); break;
		case 'h': hold = atol(optarg); break;
		case 'k': donefile = optarg; break;
		case 'n': resets = atoi(optarg); break;
		default: return 2;
		}
	}
	if (argc - optind != 2)
		return 2;
	a.sin_port = htons((unsigned short)atoi(argv[optind]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	out = open(argv[optind + 1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Set before listen, so accepted sockets start with it (and a small window). */
	setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (out < 0 || l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0) {
		perror("flakyrecv");
		return 1;
	}
	for (int i = 0; i < resets || donefile; i++) {
		struct linger lg = {1, 0};
		int fd = accept(l, NULL, NULL);
		long long t0 = now_ms();
		long got;

		if (fd < 0 || stall(fd) < 0) {
			fprintf(stderr, "flakyrecv: connection %d never stalled\n", i + 1);
			return 1;
		}
		if (now_ms() - t0 < hold)
			msleep(hold - (long)(now_ms() - t0)); /* stalled it stays: nothing can arrive */
		net("down");
		got = drain(fd, out, 0);
		fprintf(stderr, "flakyrecv: connection %d: %ld bytes, then %s\n", i + 1, got,
			donefile ? "killed" : "reset");
		if (donefile) {
			int d = open(donefile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (d >= 0)
				close(d);
			for (;;)
				pause(); /* the test kills us, and thaws the network */
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(fd);
		net("up");
	}
	c = accept(l, NULL, NULL);
	if (c < 0 || drain(c, out, 1) < 0) {
		perror("flakyrecv: last connection");
		return 1;
	}
	close(c);
	return 0;
}
