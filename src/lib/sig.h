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
 * A program's main loop passes SIG_OPS too, the operator's signals that
 * every program gives a meaning to (socketpool's SIGNALS sections):
 * SIGQUIT a graceful stop, or the teardown where nothing is left to
 * finish; SIGUSR1 a status line and the -L file reopened; SIGUSR2 a
 * reload, or nothing. No handler runs anything but one write(2): the
 * loop acts on what it reads.
 */
#ifndef SP_SIG_H
#define SP_SIG_H

#include <signal.h>

#define SIG_BIT(s) (1u << (s))
#define SIG_TEARDOWN (SIG_BIT(SIGINT) | SIG_BIT(SIGHUP) | SIG_BIT(SIGTERM))
#define SIG_BASE (SIG_TEARDOWN | SIG_BIT(SIGCHLD))
#define SIG_OPS (SIG_BIT(SIGQUIT) | SIG_BIT(SIGUSR1) | SIG_BIT(SIGUSR2))
/*
 * The signals sig.c catches when asked: the base, SIG_OPS and SIGWINCH
 * (a preforked worker's retirement).
 */
#define SIG_CATCHABLE (SIG_BASE | SIG_OPS | SIG_BIT(SIGWINCH))

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
 * Read every pending signal: returns the first teardown signal (SIGINT,
 * SIGHUP, SIGTERM, and SIGQUIT: a program with a graceful stop reads
 * with sig_read instead) or 0, and adds SIG_BIT of each signal read to
 * *got. The form of every program's main loop:
 *
 *	unsigned got = 0;
 *	if ((sig = sig_pending(&got)) != 0)
 *		tear down;
 *	if (got & SIG_BIT(SIGUSR1))
 *		...
 */
int sig_pending(unsigned *got);

/*
 * sig_pending for a loop that acts on no more than SIG_BASE: the first
 * teardown signal or 0, and *chld set when SIGCHLD came (chld may be
 * NULL). Any other signal read is dropped.
 */
int sig_drain(int *chld);

/*
 * For a program whose SIGQUIT is a graceful stop: the teardown signal
 * among those sig_pending added to got (SIGTERM, SIGINT, SIGHUP: the
 * first there in that order), or 0 when SIGQUIT came alone.
 */
int sig_teardown_in(unsigned got);

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
