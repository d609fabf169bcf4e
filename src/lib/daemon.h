/* daemon: backgrounding with a readiness report, once for every tool. */
#ifndef SP_DAEMON_H
#define SP_DAEMON_H

#include <sys/types.h>

struct daemon {
	int notify_fd;	 /* write end of the readiness pipe in the child, or -1 */
	int print_pid;	 /* print the PID when ready even in the foreground */
	int background;
	pid_t pid;	 /* the PID to report, when not the caller's own (a keeper's) */
};

/*
 * background: fork. The parent waits until the child reports readiness,
 * prints the child's PID as the only line on stdout and exits 0; if the
 * child exits first, the parent exits with the child's status (its error
 * message went straight to the caller's stderr). Only the child returns.
 * The child closes every descriptor from 3 up that is not close-on-exec:
 * those are the caller's (a descriptor the tool must keep, such as a
 * socket-activation fd, is made close-on-exec first).
 * In the foreground nothing happens yet. Returns 0, or -1 with errno.
 */
int daemon_start(struct daemon *d, int background, int print_pid);

/*
 * Setup is done: switch diagnostics to logfile (or syslog in the
 * background when logfile is NULL), print or report the PID, and in the
 * background let go of the caller's descriptors and terminal. Going to
 * syslog where no syslog daemon listens (no /dev/log, as in many
 * containers) would lose every later message without a word: that is said
 * once on stderr first. Returns 0, or -1 with errno when logfile cannot
 * be opened (the caller still has its stderr to say so).
 */
int daemon_ready(struct daemon *d, const char *logfile);

#endif
