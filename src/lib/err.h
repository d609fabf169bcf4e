/*
 * err: program name, diagnostics, their sink and their rate, and the exit
 * codes every tool shares.
 */
#ifndef SP_ERR_H
#define SP_ERR_H

#include <stdarg.h>

#define EXIT_RUNTIME 1 /* a runtime failure: refused, in use, unknown host */
#define EXIT_USAGE 2   /* the command line is wrong */
#define EXIT_SIGNAL(s) (128 + (s))
#define EXIT_EXEC 127  /* a child whose exec failed (the shell's "command not found") */

#define SP_VERSION "1.0.0"

/*
 * The log limiter. A line identical to the one written just before,
 * within ERR_WINDOW_MS of it, is not written again: it is counted, and
 * "last message repeated N times" follows before the next different line
 * (or at exit). Apart from that, one call site (one format string) writes
 * at most ERR_SITE_BURST lines per window; the rest are counted and
 * reported as one line when the site speaks again after the window.
 */
#define ERR_WINDOW_MS 1000
#define ERR_SITE_BURST 10

/* Set the name used in every message; call first thing in main. */
void err_init(const char *argv0);
const char *err_progname(void);

/*
 * Where diagnostics go after the caller's stderr is gone (daemons):
 * stderr (default), syslog, or a file opened for append.
 * err_to_file() returns -1 with errno set when the file cannot be opened.
 * Where no syslog daemon listens (no /dev/log, as in many containers)
 * err_to_syslog says so once to syslog itself: the caller of a daemon
 * (cron's mail) is not where its log goes.
 */
void err_to_syslog(void);
int err_to_file(const char *path);
/*
 * The same file opened the same way, for another writer (the stderr of
 * programs we start): its descriptor (close-on-exec), or -1 with errno.
 */
int err_open_file(const char *path);
/*
 * Why err_to_file failed with err, as the tools say it after the name: a
 * log file is opened with O_NOFOLLOW and O_NONBLOCK (a planted link or
 * FIFO never takes our messages nor holds us), created 0600, and must be
 * a regular file or a character device such as a terminal or /dev/stderr.
 */
const char *err_file_why(int err);

/* The log file's descriptor, or -1 when diagnostics do not go to a file. */
int err_file_fd(void);

/*
 * Open the log file's path again (SIGUSR1, after logrotate moved it) onto
 * the same descriptor number, so that what was handed that descriptor
 * later writes to the new file too. Returns 0 (also when diagnostics do
 * not go to a file), or -1 with errno: the old file stays the sink.
 */
int err_reopen(void);
/*
 * err_reopen, then path (the log file, -L) opened again for another
 * writer as err_open_file does, onto the descriptor number also (the
 * stderr our children were given; -1: none), close-on-exec. Returns 0,
 * or -1 with errno.
 */
int err_reopen_also(const char *path, int also);
/* The log file's path, or NULL when diagnostics do not go to a file. */
const char *err_file_path(void);

/*
 * err_warn("fmt", ...) writes "prog: message" to the sink (to a log file
 * "2026-12-06T13:45:02Z prog[PID]: message", RFC 3339 UTC; syslog has
 * its own); when fmt ends
 * in ':' the current errno's text is appended, as in sbase's eprintf.
 * errno is preserved.
 */
void err_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void err_vwarn(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/*
 * err_warn limited as the call site kind (any stable address, such as an
 * element of a table indexed by event type): for one call that logs the
 * texts of many kinds of event (binding_event_text, job_event_text), so
 * that a flood of one kind does not hold back the others' lines.
 */
void err_warn_as(const void *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* err_warn, then exit(code). */
_Noreturn void err_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "prog: message" plus the usage hint line on stderr, then exit(EXIT_USAGE). */
_Noreturn void err_usage(const char *synopsis, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Say what ended the command line p (opt.c) and exit: the usage text on
 * stdout (-h), "NAME VERSION" (-V), both with 0; a usage error as
 * err_usage; a runtime failure (an unreadable key file) as err_die with
 * EXIT_RUNTIME. For the tool's default case after opt_next, and after an
 * opt_ parser refused an operand.
 */
struct opt_parse;
_Noreturn void err_cmdline(const struct opt_parse *p);

/* The warning p holds (opt_key's doubts about a key), if any, as err_warn says it. */
void err_cmdline_warn(const struct opt_parse *p);

/* "s" unless n is 1, for a count in a message: "1 daemon", "3 daemons". */
const char *err_plural(unsigned long long n);

/* Write what the limiter still holds back (counts of suppressed lines). */
void err_flush(void);

#endif
