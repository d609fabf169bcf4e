/*
 * guesser: a key guesser, for showing the pool slows it down. Keeps up to
 * CONNS connections to HOST PORT for SECONDS; on each, reads the greeting,
 * sends a wrong AUTH at once and waits for the answer.
 *
 * usage: guesser [-k] HOST PORT CONNS SECONDS [FROM]
 *
 * FROM: a local address to connect from (another loopback address, say).
 *
 * Prints "tried N judged N busy N other N": connections opened, AUTHs
 * answered "ERR key rejected", connections turned away "ERR busy...",
 * and any other end (a handshake timeout, a close).
 *
 * -k: a guesser at a -k channel (bind-input -k): on each connection the
 * first Noise message under a wrong key, at once; the receiver's close
 * (or reset) after it is a judgement. Nothing is read before it. Its own
 * closes, the last ones at its end included, are resets (SO_LINGER 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/channel.h"
#include "lib/noise.h"

#define MAXC 512

struct c {
	int fd, greeted;
	char buf[256];
	size_t len;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sockaddr_in from = {.sin_family = AF_INET};

static int open_one(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && from.sin_addr.s_addr && bind(fd, (struct sockaddr *)&from, sizeof from) < 0) {
		close(fd);
		return -1;
	}
	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The first handshake message of a -k sender that holds another key, after its length. */
static int noise_guess(int fd)
{
	static const unsigned char wrong[NOISE_PSK] = {0x77};
	unsigned char m[2 + NOISE_HS_OVERHEAD];
	struct noise_hs hs;
	ssize_t n;

	if (noise_hs_init(&hs, 1, wrong, CHANNEL_BIND, strlen(CHANNEL_BIND)) < 0 ||
	    (n = noise_hs_write(&hs, NULL, 0, m + 2, sizeof m - 2)) < 0)
		return -1;
	noise_hs_wipe(&hs);
	m[0] = (unsigned char)(n >> 8);
	m[1] = (unsigned char)n;
	return write(fd, m, (size_t)n + 2) == n + 2 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const char auth[] = "AUTH 00000000000000000000000000000000000000000000000000000000000000"
				   "00 1111111111111111111111111111111111111111111111111111111111111111\n";
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct c cs[MAXC];
	long tried = 0, judged = 0, busy = 0, other = 0;
	int n, secs, noise = 0;
	long long end;

	if (argc > 1 && strcmp(argv[1], "-k") == 0) {
		noise = 1;
		argv++;
		argc--;
	}
	if (argc != 5 && argc != 6)
		return 2;
	if (argc == 6)
		inet_pton(AF_INET, argv[5], &from.sin_addr);
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	a.sin_port = htons((unsigned short)atoi(argv[2]));
	n = atoi(argv[3]);
	secs = atoi(argv[4]);
	if (n < 1 || n > MAXC)
		return 2;
	end = now_ms() + secs * 1000LL;
	for (int i = 0; i < n; i++)
		cs[i].fd = -1;
	while (now_ms() < end) {
		struct pollfd pfd[MAXC];

		for (int i = 0; i < n; i++) {
			if (cs[i].fd < 0) {
				cs[i].fd = open_one(&a);
				cs[i].greeted = 0;
				cs[i].len = 0;
				if (cs[i].fd >= 0)
					tried++;
				if (cs[i].fd >= 0 && noise) {
					struct linger rst = {1, 0};
					setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
				}
				if (cs[i].fd >= 0 && noise && noise_guess(cs[i].fd) < 0) {
					other++;
					close(cs[i].fd);
					cs[i].fd = -1;
				}
			}
			pfd[i] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
		}
		if (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct c *c = &cs[i];
			ssize_t r;
			char *nl;

			if (c->fd < 0 || !pfd[i].revents)
				continue;
			r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
			if (r <= 0 && noise) {
				judged++; /* a wrong key is answered by the close */
				close(c->fd);
				c->fd = -1;
				continue;
			}
			if (r <= 0) {
				other++;
				close(c->fd);
				c->fd = -1;
				continue;
			}
			c->len += (size_t)r;
			c->buf[c->len] = '\0';
			while ((nl = strchr(c->buf, '\n')) != NULL) {
				size_t used = (size_t)(nl + 1 - c->buf);

				*nl = '\0';
				if (!c->greeted && strncmp(c->buf, "SOCKETPOOL ", 11) == 0) {
					c->greeted = 1;
					if (write(c->fd, auth, sizeof auth - 1) < 0) {
						/* counted when the close comes */
					}
				} else {
					if (strcmp(c->buf, "ERR key rejected") == 0)
						judged++;
					else if (strncmp(c->buf, "ERR busy", 8) == 0)
						busy++;
					else
						other++;
					close(c->fd);
					c->fd = -1;
					break;
				}
				memmove(c->buf, nl + 1, c->len - used + 1);
				c->len -= used;
			}
		}
	}
	printf("tried %ld judged %ld busy %ld other %ld\n", tried, judged, busy, other);
	return 0;
}
