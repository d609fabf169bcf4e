/*
 * sig: the self-pipe that turns signals into poll(2) events, each keeping
 * its identity (as skalibs' selfpipe_read), and the one list of what a
 * child resets: the dispositions sig.c changed, and the signal mask.
 *
 *	fd = sig_init(SIG_BIT(SIGUSR1));	(the base set and SIGUSR1; SIGPIPE ignored)
 *	poll fd for POLLIN, then
 *	while ((sig = sig_read()) > 0)
 *		act on sig;
 *
 * Every program catches SIG_BASE (SIGINT, SIGHUP, SIGTERM: the teardown;
 * SIGCHLD: reap) and ignores SIGPIPE (EPIPE is handled where it happens).
 * A program passes the further signals it gives a meaning to; any other
 * keeps its default disposition. No handler runs anything but one
 * write(2): the loop acts on what it reads.
 */
#ifndef SP_SIG_H
#define SP_SIG_H

#include <signal.h>

#define SIG_BIT(s) (1u << (s))
#define SIG_TEARDOWN (SIG_BIT(SIGINT) | SIG_BIT(SIGHUP) | SIG_BIT(SIGTERM))
#define SIG_BASE (SIG_TEARDOWN | SIG_BIT(SIGCHLD))
/*
 * The signals sig.c catches when asked: the base, SIGQUIT (socket's
 * graceful stop), SIGUSR1 (socket -W's status), SIGUSR2 (socket -W's
 * reload) and SIGWINCH (a preforked worker's retirement).
 */
#define SIG_CATCHABLE                                                                         \
	(SIG_BASE | SIG_BIT(SIGQUIT) | SIG_BIT(SIGUSR1) | SIG_BIT(SIGUSR2) | SIG_BIT(SIGWINCH))

/*
 * Catch the signals in set (SIG_BIT of each, within SIG_CATCHABLE) by
 * writing each one's number to the self-pipe, made non-blocking and
 * close-on-exec on the first call. Returns the pipe's read end for
 * poll(2), or -1 with errno (EINVAL: a signal outside SIG_CATCHABLE).
 */
int sig_catch(unsigned set);

/*
 * What a program's loop wants: sig_catch(SIG_BASE | extra), and SIGPIPE
 * ignored. Returns the read end, or -1 with errno.
 */
int sig_init(unsigned extra);

/* Ignore sig (no longer caught, if it was); a child gets it back at default. Returns 0 or -1. */
int sig_ignore(int sig);

/*
 * The next signal caught, in the order they came: its number, 0 when none
 * is pending, or -1 with errno (EBADF: no self-pipe). Each delivery is
 * read once (a signal sent twice before its delivery is delivered once:
 * the kernel merges a pending one); 65536 unread ones fill the pipe, and
 * any more are lost.
 */
int sig_read(void);

/*
 * Read every pending signal, for a loop that catches no more than
 * SIG_BASE: returns the first teardown signal (SIGINT, SIGHUP, SIGTERM)
 * or 0, and sets *chld when SIGCHLD came (chld may be NULL). Any other
 * signal read is dropped.
 */
int sig_drain(int *chld);

/* True for the three signals that mean "tear down". */
int sig_is_term(int sig);

/*
 * In a child that shares our memory until its exec (vfork, clone with
 * CLONE_VM), every signal blocked: restore the default disposition of
 * each signal sig.c catches or ignores, and empty the signal mask. Writes
 * no memory (the self-pipe is close-on-exec).
 */
void sig_exec_reset(void);

/*
 * In a forked child: sig_exec_reset, then close the self-pipe and forget
 * it, so that a child with a loop of its own makes its own (sig_init).
 */
void sig_child_reset(void);

#endif
