/*
 * freeport [LO HI]: print a TCP port free on 127.0.0.1 and ::1, chosen at
 * random in [LO, HI] (default 20000-32000, below Linux's ephemeral range,
 * so no outgoing connection takes it meanwhile).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int try_bind(int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return family == AF_INET6; /* no IPv6 here: only IPv4 matters */
	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((unsigned short)port);
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)port);
		in6->sin6_addr = in6addr_any;
		len = sizeof *in6;
	}
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	int lo = argc > 2 ? atoi(argv[1]) : 20000, hi = argc > 2 ? atoi(argv[2]) : 32000;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	srand((unsigned)(ts.tv_nsec ^ getpid()));
	for (int i = 0; i < 1000 && hi >= lo; i++) {
		int port = lo + rand() % (hi - lo + 1);
		if (try_bind(AF_INET, port) && try_bind(AF_INET6, port)) {
			printf("%d\n", port);
			return 0;
		}
	}
	fprintf(stderr, "freeport: no free port in %d-%d\n", lo, hi);
	return 1;
}
