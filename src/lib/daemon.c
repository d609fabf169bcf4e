#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "io.h"
#include "proc.h"

#define SYSLOG_PATH "/dev/log"

/* Something takes datagrams on /dev/log, as syslog(3) will send them. */
static int syslog_listens(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = SYSLOG_PATH};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 1; /* cannot tell: do not cry wolf */
	ok = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
	close(fd);
	return ok;
}

static _Noreturn void wait_for_child(int fd, pid_t child)
{
	char buf[32];
	ssize_t n, got = 0;
	int status;

	while (got < (ssize_t)sizeof buf - 1 &&
	       (n = io_read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (got > 0) {
		buf[got] = '\0';
		fputs(buf, stdout);
		exit(fflush(stdout) == 0 ? 0 : EXIT_RUNTIME);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			exit(EXIT_RUNTIME);
	exit(proc_status_code(status) ? proc_status_code(status) : EXIT_RUNTIME);
}

int daemon_start(struct daemon *d, int background, int print_pid)
{
	int p[2];
	pid_t pid;

	d->notify_fd = -1;
	d->pid = 0;
	d->print_pid = print_pid;
	d->background = background;
	if (!background)
		return 0;
	fflush(stdout);
	if (io_pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		int saved = errno;
		close(p[0]);
		close(p[1]);
		errno = saved;
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_child(p[0], pid);
	}
	close(p[0]);
	d->notify_fd = p[1];
	/* What the caller left open without close-on-exec is the caller's; ours all are. */
	io_close_inherited(3);
	/* Out of the caller's session: no terminal signals reach the daemon. */
	setsid();
	return 0;
}

int daemon_ready(struct daemon *d, const char *logfile)
{
	char line[32];
	int len;

	if (logfile && err_to_file(logfile) < 0)
		return -1;
	len = snprintf(line, sizeof line, "%ld\n", (long)(d->pid > 0 ? d->pid : getpid()));
	if (!d->background) {
		if (d->print_pid) {
			fputs(line, stdout);
			fflush(stdout);
		}
		return 0;
	}
	if (!logfile) {
		if (!syslog_listens())
			err_warn("no syslog daemon listens on %s: messages from now on are lost "
				 "(use -L FILE)", SYSLOG_PATH);
		err_to_syslog();
	}
	io_devnull(0, O_RDONLY);
	io_devnull(1, O_WRONLY);
	io_devnull(2, O_WRONLY);
	if (io_write_all(d->notify_fd, line, (size_t)len) < 0) {
		/* the caller is gone; serve anyway */
	}
	close(d->notify_fd);
	d->notify_fd = -1;
	return 0;
}
