/* err: program name, diagnostics and exit codes shared by every tool. */
#ifndef SP_ERR_H
#define SP_ERR_H

#include <stdarg.h>

#define EXIT_RUNTIME 1 /* a runtime failure: refused, in use, unknown host */
#define EXIT_USAGE 2   /* the command line is wrong */
#define EXIT_SIGNAL(s) (128 + (s))

#define SP_VERSION "1.0.0"

/* Set the name used in every message; call first thing in main. */
void err_init(const char *argv0);
const char *err_progname(void);

/*
 * Where diagnostics go after the caller's stderr is gone (daemons):
 * ERR_TO_STDERR (default), ERR_TO_SYSLOG, or a file opened for append.
 * err_to_file() returns -1 with errno set when the file cannot be opened.
 */
enum err_sink { ERR_TO_STDERR, ERR_TO_SYSLOG, ERR_TO_FILE };
void err_to_syslog(void);
int err_to_file(const char *path);
int err_file_fd(void);

/*
 * warnx("fmt", ...) prints "prog: message"; when fmt ends in ':' the
 * current errno's text is appended, as in sbase's eprintf.
 */
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vwarnx(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* warnx then exit(code). */
_Noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "prog: message" plus the usage hint line, then exit(EXIT_USAGE). */
_Noreturn void usage_error(const char *synopsis, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
