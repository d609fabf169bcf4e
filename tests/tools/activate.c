/*
 * activate PORTFILE CMD...: a stand-in for systemd socket activation.
 * Listens on 127.0.0.1 (kernel-chosen port, written to PORTFILE), puts
 * the listener on fd 3, sets LISTEN_PID to its own pid and LISTEN_FDS=1,
 * and execs CMD, which keeps that pid.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof in;
	char buf[32];
	FILE *f;
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: activate PORTFILE CMD...\n");
		return 2;
	}
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&in, &len) < 0) {
		perror("activate");
		return 1;
	}
	if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0)) {
		perror("activate: dup2");
		return 1;
	}
	f = fopen(argv[1], "w");
	if (!f || fprintf(f, "%d\n", ntohs(in.sin_port)) < 0 || fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	snprintf(buf, sizeof buf, "%ld", (long)getpid());
	setenv("LISTEN_PID", buf, 1);
	setenv("LISTEN_FDS", "1", 1);
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
