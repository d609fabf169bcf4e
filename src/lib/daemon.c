#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "io.h"
#include "pidfile.h"
#include "proc.h"

/*
 * In the caller's process: the daemon's PID line, passed on to stdout, and
 * 0; or, when the daemon ended without one, its exit status.
 */
static int wait_for_child(int fd, pid_t child)
{
	char buf[32];
	ssize_t n, got = 0;
	int status;

	while (got < (ssize_t)sizeof buf - 1 &&
	       (n = io_read(fd, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (got > 0)
		return io_write_all(STDOUT_FILENO, buf, (size_t)got) == 0 ? 0 : EXIT_RUNTIME;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return EXIT_RUNTIME;
	return proc_status_code(status) ? proc_status_code(status) : EXIT_RUNTIME;
}

int daemon_start(struct daemon *d, int background, int print_pid)
{
	int p[2];
	pid_t pid;

	d->notify_fd = -1;
	d->pid = 0;
	d->print_pid = print_pid;
	d->background = background;
	d->status = 0;
	d->failed = NULL;
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
	/* The PID file is the daemon's to write and remove, not the caller's. */
	pidfile_owner(pid > 0 ? pid : getpid());
	if (pid > 0) {
		close(p[1]);
		d->status = wait_for_child(p[0], pid);
		return 1;
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
	pid_t pid = d->pid > 0 ? d->pid : getpid();
	char line[32];
	int len;

	if (logfile && err_to_file(logfile) < 0) {
		d->failed = logfile;
		return -1;
	}
	/* Written before anyone is told: whoever got the PID may read the file at once. */
	if (pidfile_write(pid) < 0) {
		d->failed = pidfile_path();
		return -1;
	}
	len = snprintf(line, sizeof line, "%ld\n", (long)pid);
	if (!d->background) {
		if (d->print_pid && io_write_all(STDOUT_FILENO, line, (size_t)len) < 0) {
			/* nobody reads it: serve anyway */
		}
		return 0;
	}
	if (!logfile)
		err_to_syslog();
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
