/*
 * activate [-k KIND] PORTFILE CMD...: a stand-in for systemd socket
 * activation. Puts a descriptor on fd 3, sets LISTEN_PID to its own pid
 * and LISTEN_FDS=1, and execs CMD, which keeps that pid. KIND says what fd
 * 3 is, so the tests can hand socket the wrong things too:
 *   listen  (default) a TCP socket listening on 127.0.0.1, kernel-chosen
 *           port, written to PORTFILE
 *   null    /dev/null
 *   tcp     a TCP socket bound to 127.0.0.1 but not listening (port written)
 *   udp     a UDP socket bound to 127.0.0.1 (port written)
 *   closed  nothing: fd 3 is closed
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int make_fd(const char *kind, int *port)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof in;
	int type = strcmp(kind, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM, fd;

	*port = -1;
	if (strcmp(kind, "null") == 0)
		return open("/dev/null", O_RDWR);
	if (strcmp(kind, "listen") && strcmp(kind, "tcp") && strcmp(kind, "udp")) {
		fprintf(stderr, "activate: unknown kind %s\n", kind);
		exit(2);
	}
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 ||
	    (strcmp(kind, "listen") == 0 && listen(fd, 16) < 0) ||
	    getsockname(fd, (struct sockaddr *)&in, &len) < 0)
		return -1;
	*port = ntohs(in.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	const char *kind = "listen";
	char buf[32];
	int fd, port, c;
	FILE *f;

	while ((c = getopt(argc, argv, "+k:")) != -1) {
		if (c != 'k')
			return 2;
		kind = optarg;
	}
	argv += optind;
	argc -= optind;
	if (argc < 2) {
		fprintf(stderr, "usage: activate [-k listen|null|tcp|udp|closed] PORTFILE CMD...\n");
		return 2;
	}
	close(3);
	if (strcmp(kind, "closed") != 0) {
		fd = make_fd(kind, &port);
		if (fd < 0) {
			perror("activate");
			return 1;
		}
		if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0)) {
			perror("activate: dup2");
			return 1;
		}
		if (port >= 0) {
			f = fopen(argv[0], "w");
			if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
				perror(argv[0]);
				return 1;
			}
		}
	}
	snprintf(buf, sizeof buf, "%ld", (long)getpid());
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDS", "1", 1);
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
