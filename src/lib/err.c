#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* The sink is process-wide by nature: one program, one place for its log. */
static const char *progname = "socketpool";
static enum err_sink sink = ERR_TO_STDERR;
static int file_fd = -1;

void err_init(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	progname = slash ? slash + 1 : argv0;
}

const char *err_progname(void)
{
	return progname;
}

void err_to_syslog(void)
{
	openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	sink = ERR_TO_SYSLOG;
}

int err_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (file_fd >= 0)
		close(file_fd);
	file_fd = fd;
	sink = ERR_TO_FILE;
	return 0;
}

int err_file_fd(void)
{
	return file_fd;
}

void vwarnx(const char *fmt, va_list ap)
{
	int saved = errno;
	char msg[1024];
	size_t n, flen = strlen(fmt);

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	if (flen && fmt[flen - 1] == ':')
		snprintf(msg + n, sizeof msg - n, " %s", strerror(saved));

	if (sink == ERR_TO_SYSLOG) {
		syslog(LOG_ERR, "%s", msg);
	} else {
		char line[1200];
		int len = snprintf(line, sizeof line, "%s: %s\n", progname, msg);
		int fd = sink == ERR_TO_FILE ? file_fd : STDERR_FILENO;

		if (len > (int)sizeof line - 1)
			len = sizeof line - 1;
		/* One write per line, so lines from many processes don't interleave. */
		if (write(fd, line, (size_t)len) < 0) {
			/* nowhere left to report it */
		}
	}
	errno = saved;
}

void warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
}

void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
	exit(code);
}

void usage_error(const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s (try '%s --help')\n", synopsis, progname);
	exit(EXIT_USAGE);
}
