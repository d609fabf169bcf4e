#define _GNU_SOURCE /* pipe2 */
#include "sig.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define SIG_LAST 31 /* every signal SIG_BIT can name */

/*
 * The one mutable global the library keeps: a handler can reach nothing
 * else, and a child must know what to reset. Process-wide by nature.
 */
static struct {
	int fd[2];	       /* the self-pipe: [0] read by the loop, [1] written by the handler */
	unsigned caught;       /* SIG_BIT of each signal our handler catches */
	unsigned ignored;      /* SIG_BIT of each signal we set to SIG_IGN */
	unsigned char buf[64]; /* read from the pipe, not yet returned by sig_read */
	size_t off, len;
} self = {.fd = {-1, -1}};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (write(self.fd[1], &b, 1) < 0) {
		/* the pipe is full: see sig_read */
	}
	errno = saved;
}

static int set_disposition(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handler;
	sa.sa_flags = handler == on_signal ? SA_RESTART : 0;
	return sigaction(sig, &sa, NULL);
}

int sig_catch(unsigned set)
{
	if (set & ~SIG_CATCHABLE) {
		errno = EINVAL;
		return -1;
	}
	if (self.fd[0] < 0 && pipe2(self.fd, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	for (int sig = 1; sig <= SIG_LAST; sig++) {
		if (!(set & SIG_BIT(sig)))
			continue;
		if (set_disposition(sig, on_signal) < 0)
			return -1;
		self.caught |= SIG_BIT(sig);
		self.ignored &= ~SIG_BIT(sig);
	}
	return self.fd[0];
}

int sig_init(unsigned extra)
{
	if (sig_catch(SIG_BASE | extra) < 0 || sig_ignore(SIGPIPE) < 0)
		return -1;
	return self.fd[0];
}

int sig_ignore(int sig)
{
	if (sig < 1 || sig > SIG_LAST) {
		errno = EINVAL;
		return -1;
	}
	if (set_disposition(sig, SIG_IGN) < 0)
		return -1;
	self.ignored |= SIG_BIT(sig);
	self.caught &= ~SIG_BIT(sig);
	return 0;
}

int sig_read(void)
{
	if (self.off == self.len) {
		ssize_t n;

		do
			n = read(self.fd[0], self.buf, sizeof self.buf);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return n < 0 ? -1 : 0;
		self.off = 0;
		self.len = (size_t)n;
	}
	return self.buf[self.off++];
}

int sig_is_term(int sig)
{
	return sig == SIGINT || sig == SIGHUP || sig == SIGTERM;
}

int sig_pending(unsigned *got)
{
	int sig, term = 0;

	while ((sig = sig_read()) > 0) {
		if ((sig_is_term(sig) || sig == SIGQUIT) && !term)
			term = sig;
		*got |= SIG_BIT(sig);
	}
	return term;
}

int sig_teardown_in(unsigned got)
{
	static const int order[] = {SIGTERM, SIGINT, SIGHUP};

	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		if (got & SIG_BIT(order[i]))
			return order[i];
	return 0;
}

int sig_drain(int *chld)
{
	unsigned got = 0;
	int term = sig_pending(&got);

	if (chld && (got & SIG_BIT(SIGCHLD)))
		*chld = 1;
	return term;
}

void sig_exec_reset(void)
{
	unsigned changed = self.caught | self.ignored;
	sigset_t none;

	for (int sig = 1; sig <= SIG_LAST; sig++)
		if (changed & SIG_BIT(sig))
			set_disposition(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void sig_child_reset(void)
{
	sig_exec_reset();
	if (self.fd[0] >= 0) {
		close(self.fd[0]);
		close(self.fd[1]);
	}
	self.fd[0] = self.fd[1] = -1;
	self.caught = self.ignored = 0;
	self.off = self.len = 0;
}
