/* sig: the self-pipe that turns signals into poll(2) events. */
#ifndef SP_SIG_H
#define SP_SIG_H

/*
 * Catch SIGINT, SIGHUP, SIGTERM, SIGCHLD (and SIGUSR1 when want_usr1) by
 * writing the signal number to a non-blocking self-pipe; ignore SIGPIPE.
 * Returns the pipe's read end for poll(2), or -1 with errno set.
 */
int sig_init(int want_usr1);

/*
 * Drain the self-pipe. Returns the first terminating signal seen
 * (SIGINT, SIGHUP, SIGTERM) or 0; sets *chld when SIGCHLD arrived and
 * *usr1 when SIGUSR1 did (either pointer may be NULL).
 */
int sig_drain(int *chld, int *usr1);

/*
 * In a child about to exec: restore default dispositions and an empty
 * signal mask, and close the self-pipe.
 */
void sig_child_reset(void);

/* True for the three signals that mean "tear down". */
int sig_is_term(int sig);

#endif
