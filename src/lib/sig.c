#define _GNU_SOURCE /* pipe2 */
#include "sig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* The one mutable global the library keeps: a handler can reach nothing else. */
static int self_pipe[2] = {-1, -1};

static const int caught[] = {SIGINT, SIGHUP, SIGTERM, SIGCHLD, SIGUSR1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (write(self_pipe[1], &b, 1) < 0) {
		/* pipe full: a byte is already pending, poll will wake */
	}
	errno = saved;
}

int sig_init(int want_usr1)
{
	struct sigaction sa;

	if (self_pipe[0] < 0 && pipe2(self_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) {
		if (caught[i] == SIGUSR1 && !want_usr1)
			continue;
		if (sigaction(caught[i], &sa, NULL) < 0)
			return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return self_pipe[0];
}

int sig_is_term(int sig)
{
	return sig == SIGINT || sig == SIGHUP || sig == SIGTERM;
}

int sig_drain(int *chld, int *usr1)
{
	unsigned char buf[64];
	ssize_t n;
	int term = 0;

	while ((n = read(self_pipe[0], buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (sig_is_term(buf[i]) && !term)
				term = buf[i];
			else if (buf[i] == SIGCHLD && chld)
				*chld = 1;
			else if (buf[i] == SIGUSR1 && usr1)
				*usr1 = 1;
		}
	}
	return term;
}

void sig_child_reset(void)
{
	sigset_t none;

	for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++)
		signal(caught[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (self_pipe[0] >= 0) {
		close(self_pipe[0]);
		close(self_pipe[1]);
		self_pipe[0] = self_pipe[1] = -1;
	}
}
