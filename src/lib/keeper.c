#define _GNU_SOURCE /* prctl */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "io.h"
#include "proc.h"
#include "sig.h"

/*
 * The keeper's loop: pass the teardown and operator's signals on to the worker, reap
 * until the worker has ended, then end whatever is left. Returns the exit
 * status (the worker's, or 128+signal).
 */
static int keep(pid_t worker, long grace_ms, int quiet, int close_fd)
{
	struct pollfd pfd = {.fd = sig_init(SIG_OPS), .events = POLLIN};
	int status = 0, sig;
	pid_t r;

	if (close_fd >= 0)
		close(close_fd);
	if (quiet)
		for (int fd = 0; fd < 3; fd++)
			io_devnull(fd, fd == 0 ? O_RDONLY : O_WRONLY);
	for (;;) {
		while ((r = proc_reap(&status)) > 0 && r != worker)
			;
		if (r != 0)
			break; /* the worker ended, or (-1) there is no child at all */
		/* Without a self-pipe, signals keep their defaults: poll a while, then reap. */
		poll(&pfd, pfd.fd >= 0, pfd.fd >= 0 ? -1 : 50);
		/* The operator's signals too (SIGQUIT, SIGUSR1, SIGUSR2): the worker's to act on. */
		while ((sig = sig_read()) > 0)
			if (sig != SIGCHLD)
				kill(worker, sig);
	}
	proc_end_children(grace_ms, NULL, NULL);
	return proc_status_code(r == worker ? status : 0);
}

int keeper_start(long grace_ms, int quiet, int close_fd, int *status)
{
	pid_t keeper = getpid(), pid;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* The keeper's end, even by SIGKILL, is a teardown request for us. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != keeper)
			raise(SIGTERM);
		/* Not inherited: orphans of our daemons must come back to us, not to the keeper. */
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		return 0;
	}
	*status = keep(pid, grace_ms, quiet, close_fd);
	return 1;
}
