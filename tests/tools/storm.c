/*
 * storm: a writer that keeps writing into a FIFO, and says exactly what
 * it was told was written.
 *
 * usage: storm FIFO TAG [MARK]
 *
 * Opens FIFO (never creating it) and writes lines "TAG-00000001\n", ...,
 * one write(2) each (so each is atomic), until a write fails or SIGTERM
 * comes; then prints how many lines write(2) accepted, and exits 0. MARK,
 * when given, is created once the FIFO is open (tests wait for it).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	unsigned long n = 0;
	char line[64];
	int fd;

	if (argc != 3 && argc != 4)
		return 2;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a blocked write ends */
	signal(SIGPIPE, SIG_IGN);
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		perror("storm: open");
		printf("0\n");
		return 0;
	}
	if (argc == 4)
		close(open(argv[3], O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	while (!stop) {
		int len = snprintf(line, sizeof line, "%s-%08lu\n", argv[2], n + 1);
		ssize_t w = write(fd, line, (size_t)len);

		if (w != len)
			break; /* EPIPE, or EINTR from our SIGTERM: nothing of it was written */
		n++;
	}
	printf("%lu\n", n);
	return 0;
}
