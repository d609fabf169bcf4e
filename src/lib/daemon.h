/*
 * daemon: backgrounding with a readiness report, once for every tool. The
 * report is the daemon's PID as the only line on the caller's stdout,
 * once the daemon is ready (s6's notification idea): what daemon.c writes
 * there is that protocol's line, never a message; diagnostics are err.c's.
 */
#ifndef SP_DAEMON_H
#define SP_DAEMON_H

#include <sys/types.h>

struct daemon {
	int notify_fd;	 /* write end of the readiness pipe in the child, or -1 */
	int print_pid;	 /* report the PID when ready even in the foreground */
	int background;
	pid_t pid;	 /* the PID to report, when not the caller's own (a keeper's) */
	int status;	 /* the caller's process, daemon_start having returned 1: its exit status */
	const char *failed; /* daemon_ready returned -1: the file it could not take (log, PID) */
};

/*
 * background: fork; the daemon is then the owner of the PID file, if any
 * (pidfile_owner). The caller's process waits until the daemon reports
 * readiness, passes its PID line on to stdout, and daemon_start returns 1
 * there with d->status 0 (EXIT_RUNTIME when stdout did not take the line);
 * if the daemon exits first, d->status is its status (its error message
 * went straight to the caller's stderr). The caller then ends with
 * d->status. Only the daemon gets 0. It closes every descriptor from 3 up
 * that is not close-on-exec: those are the caller's (a descriptor the tool
 * must keep, such as a socket-activation fd, is made close-on-exec first).
 * In the foreground nothing happens yet: 0. Returns -1 with errno when the
 * pipe or the fork fails.
 */
int daemon_start(struct daemon *d, int background, int print_pid);

/*
 * Setup is done: switch diagnostics to logfile (or syslog in the
 * background when logfile is NULL: err_to_syslog), write the PID file
 * (pidfile.c, -i) and report the PID (in the foreground, on stdout if
 * print_pid), and in the background let go of the caller's descriptors
 * and terminal. Returns 0, or -1 with errno and d->failed the path when
 * logfile cannot be opened or the PID file written (the caller still has
 * its stderr to say so).
 */
int daemon_ready(struct daemon *d, const char *logfile);

#endif
