#define _GNU_SOURCE /* dup3 */
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "opt.h"

#define MSG_MAX 1024
#define SYSLOG_PATH "/dev/log"
#define SITES 32 /* call sites the limiter tells apart at once */

enum sink { TO_STDERR, TO_SYSLOG, TO_FILE };

/* One call site's share of the current window. */
struct site {
	const void *fmt; /* its format, or the kind it was given (err_warn_as) */
	long long start;
	unsigned written;
	unsigned long suppressed;
	char sample[MSG_MAX]; /* the last line it held back */
};

/*
 * The process's diagnostics state: its name, the sink, the limiter. The
 * library's one mutable global besides sig.c's self-pipe, by the same
 * right: process-wide by nature (one program, one log), and every message
 * of every module passes through it.
 */
static struct {
	const char *progname;
	enum sink sink;
	int file_fd;		  /* TO_FILE: the -L file */
	char file_path[4096];	  /* ... its path, for err_reopen */
	char last[MSG_MAX];	  /* the last line written, and when */
	long long last_at;
	unsigned long repeats;	  /* lines equal to it held back since */
	struct site sites[SITES]; /* each call site's share of the window */
} diag = {.progname = "socketpool", .sink = TO_STDERR, .file_fd = -1, .last_at = -1};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void err_init(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	diag.progname = slash ? slash + 1 : argv0;
	atexit(err_flush);
}

const char *err_progname(void)
{
	return diag.progname;
}

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

void err_to_syslog(void)
{
	int listens = syslog_listens();

	openlog(diag.progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	diag.sink = TO_SYSLOG;
	/* To the log it concerns, not to the caller: where nobody listens, nowhere. */
	if (!listens)
		err_warn("no syslog daemon listens on %s: messages from now on are lost "
			 "(use -L FILE)", SYSLOG_PATH);
}

int err_open_file(const char *path)
{
	/* Never through a link, never blocked by a FIFO planted there; created 0600. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* a terminal's writes may wait */
	return fd;
}

int err_to_file(const char *path)
{
	int fd = err_open_file(path);

	if (fd < 0)
		return -1;
	if (diag.file_fd >= 0)
		close(diag.file_fd);
	diag.file_fd = fd;
	diag.sink = TO_FILE;
	snprintf(diag.file_path, sizeof diag.file_path, "%s", path);
	return 0;
}

int err_reopen(void)
{
	int fd;

	if (diag.sink != TO_FILE || !diag.file_path[0])
		return 0;
	fd = err_open_file(diag.file_path);
	if (fd < 0)
		return -1;
	/* The same number: whoever was given it (a pool's services) writes there next. */
	if (fd != diag.file_fd) {
		if (dup3(fd, diag.file_fd, O_CLOEXEC) < 0) {
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		close(fd);
	}
	return 0;
}

int err_reopen_also(const char *path, int also)
{
	int fd = err_reopen() < 0 ? -1 : err_open_file(path), r = 0, saved;

	if (fd < 0)
		return -1;
	if (also >= 0 && (dup2(fd, also) < 0 || fcntl(also, F_SETFD, FD_CLOEXEC) < 0))
		r = -1;
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

const char *err_file_path(void)
{
	return diag.sink == TO_FILE ? diag.file_path : NULL;
}

const char *err_file_why(int err)
{
	if (err == ELOOP)
		return "a symbolic link; not following it";
	if (err == EINVAL || err == ENXIO)
		return "not a regular file or a terminal";
	return strerror(err);
}

int err_file_fd(void)
{
	return diag.sink == TO_FILE ? diag.file_fd : -1;
}

/* One line to the sink, as one write so lines from many processes don't interleave. */
static void put(const char *msg)
{
	char line[MSG_MAX + 128];
	int len;

	if (diag.sink == TO_SYSLOG) {
		syslog(LOG_ERR, "%s", msg);
		return;
	}
	if (diag.sink == TO_FILE) {
		/* RFC 3339, UTC, and the PID: a log file many processes share over days. */
		char stamp[32] = "";
		time_t t = time(NULL);
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
		len = snprintf(line, sizeof line, "%s %s[%ld]: %s\n", stamp, diag.progname,
			       (long)getpid(), msg);
	} else {
		len = snprintf(line, sizeof line, "%s: %s\n", diag.progname, msg);
	}
	if (len > (int)sizeof line - 1)
		len = sizeof line - 1;
	if (write(diag.sink == TO_FILE ? diag.file_fd : STDERR_FILENO, line, (size_t)len) < 0) {
		/* nowhere left to report it */
	}
}

const char *err_plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

static void put_repeats(void)
{
	char msg[64];

	if (!diag.repeats)
		return;
	snprintf(msg, sizeof msg, "last message repeated %lu time%s", diag.repeats,
		 err_plural(diag.repeats));
	diag.repeats = 0;
	put(msg);
}

static void put_suppressed(struct site *s)
{
	char msg[MSG_MAX + 64];

	if (!s->suppressed)
		return;
	snprintf(msg, sizeof msg, "%lu more like this within a second, the last: %s",
		 s->suppressed, s->sample);
	s->suppressed = 0;
	put(msg);
}

/* The call site's slot: its own, a free one, or the one idle longest. */
static struct site *site_of(const void *fmt)
{
	struct site *old = &diag.sites[0];

	for (size_t i = 0; i < SITES; i++) {
		if (diag.sites[i].fmt == fmt)
			return &diag.sites[i];
		if (!diag.sites[i].fmt)
			return &diag.sites[i];
		if (diag.sites[i].start < old->start)
			old = &diag.sites[i];
	}
	put_suppressed(old);
	old->fmt = NULL;
	return old;
}

/* The limiter: write msg, count it, or hold it back (see err.h). */
static void emit(const void *fmt, const char *msg)
{
	long long now = now_ms();
	int same = diag.last_at >= 0 && strcmp(msg, diag.last) == 0;
	struct site *s;

	if (same && now - diag.last_at < ERR_WINDOW_MS) {
		diag.repeats++;
		return;
	}
	put_repeats();
	s = site_of(fmt);
	if (s->fmt != fmt || now - s->start >= ERR_WINDOW_MS) {
		put_suppressed(s);
		s->fmt = fmt;
		s->start = now;
		s->written = 0;
	}
	if (s->written >= ERR_SITE_BURST) {
		s->suppressed++;
		snprintf(s->sample, sizeof s->sample, "%s", msg);
		return;
	}
	s->written++;
	put(msg);
	snprintf(diag.last, sizeof diag.last, "%s", msg);
	diag.last_at = now;
}

void err_flush(void)
{
	int saved = errno;

	put_repeats();
	for (size_t i = 0; i < SITES; i++)
		put_suppressed(&diag.sites[i]);
	errno = saved;
}

/* The line fmt and ap make (and errno's text after a closing ':'), limited as site. */
__attribute__((format(printf, 2, 0))) static void vwarn_as(const void *site, const char *fmt,
							    va_list ap)
{
	int saved = errno;
	char msg[MSG_MAX];
	size_t n, flen = strlen(fmt);

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	if (flen && fmt[flen - 1] == ':')
		snprintf(msg + n, sizeof msg - n, " %s", strerror(saved));
	emit(site, msg);
	errno = saved;
}

void err_vwarn(const char *fmt, va_list ap)
{
	vwarn_as(fmt, fmt, ap);
}

void err_warn_as(const void *kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn_as(kind, fmt, ap);
	va_end(ap);
}

void err_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vwarn(fmt, ap);
	va_end(ap);
}

void err_die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vwarn(fmt, ap);
	va_end(ap);
	exit(code);
}

void err_usage(const char *synopsis, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vwarn(fmt, ap);
	va_end(ap);
	fprintf(stderr, "usage: %s (try '%s --help')\n", synopsis, diag.progname);
	exit(EXIT_USAGE);
}

void err_cmdline_warn(const struct opt_parse *p)
{
	if (p->warn[0])
		err_warn("warning: %s", p->warn);
}

/* text on stdout, then exit 0, or EXIT_RUNTIME when stdout could not take it. */
static _Noreturn void put_out(const char *text)
{
	fputs(text, stdout);
	exit(fflush(stdout) == 0 ? 0 : EXIT_RUNTIME);
}

void err_cmdline(const struct opt_parse *p)
{
	char version[128];

	switch (p->outcome) {
	case OPT_HELP: put_out(p->usage);
	case OPT_VERSION:
		snprintf(version, sizeof version, "%s %s\n", diag.progname, SP_VERSION);
		put_out(version);
	case OPT_FAILED: err_die(EXIT_RUNTIME, "%s", p->why);
	case OPT_USAGE: err_usage(p->synopsis, "%s", p->why);
	case OPT_GOING: break;
	}
	/* An option of optstring that the tool's switch has no case for. */
	err_usage(p->synopsis, "unknown option -%c", p->opt);
}
