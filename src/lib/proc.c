#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "sig.h"

pid_t proc_reap(int *status)
{
	pid_t pid;

	do
		pid = waitpid(-1, status, WNOHANG);
	while (pid < 0 && errno == EINTR);
	return pid;
}

int proc_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* Reap every child that has ended, telling on_reap. */
static void reap_all(void (*on_reap)(pid_t, int, void *), void *arg)
{
	int status;
	pid_t pid;

	while ((pid = proc_reap(&status)) > 0)
		if (on_reap)
			on_reap(pid, status, arg);
}

/* Listed leaders still running; every ended child was reaped just before. */
static size_t still_running(const pid_t *pids, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += pids[i] > 0 && kill(pids[i], 0) == 0;
	return c;
}

/*
 * No memory is needed here, so teardown works when allocation no longer
 * does: a leader's state is asked of the kernel (reaped children vanish,
 * so kill(pid, 0) tells who still runs).
 */
void proc_end_groups(const pid_t *pids, size_t n, long grace_ms, int sigfd,
		     void (*on_reap)(pid_t pid, int status, void *arg), void *arg)
{
	long long deadline = io_now_ms() + grace_ms;
	int status;

	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(-pids[i], SIGTERM);
	for (;;) {
		long long left;
		struct pollfd pfd = {.fd = sigfd, .events = POLLIN};

		reap_all(on_reap, arg);
		left = deadline - io_now_ms();
		if (still_running(pids, n) == 0 || left <= 0)
			break;
		/* Wake on SIGCHLD; a short cap also covers a missing self-pipe. */
		if (poll(&pfd, sigfd >= 0 ? 1 : 0, left > 50 ? 50 : (int)left) > 0)
			sig_drain(NULL);
	}
	/* Whatever is left of any group, leader gone or not, ends now. */
	for (size_t i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(-pids[i], SIGKILL);
	for (size_t i = 0; i < n; i++) {
		pid_t pid;

		if (pids[i] <= 0)
			continue;
		while ((pid = waitpid(pids[i], &status, 0)) < 0 && errno == EINTR)
			;
		if (pid > 0 && on_reap)
			on_reap(pid, status, arg);
	}
}

/* Our children now, from /proc (at most n): their pids into out. */
static size_t children(pid_t *out, size_t n)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t self = getpid();
	size_t k = 0;

	if (!d)
		return 0;
	while (k < n && (e = readdir(d)) != NULL) {
		char path[300], buf[512], *rp;
		long ppid;
		int fd;
		ssize_t r;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		r = io_read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* pid (comm) state ppid ...: comm may hold anything, so from its last ')'. */
		if (!(rp = strrchr(buf, ')')) || sscanf(rp + 1, " %*c %ld", &ppid) != 1)
			continue;
		if (ppid == self)
			out[k++] = (pid_t)atol(e->d_name);
	}
	closedir(d);
	return k;
}

static void signal_child(pid_t pid, int sig)
{
	pid_t g = getpgid(pid);

	if (g == pid && g != getpgrp())
		kill(-g, sig);
	kill(pid, sig);
}

void proc_end_children(long grace_ms, void (*on_reap)(pid_t pid, int status, void *arg),
		       void *arg)
{
	pid_t kids[256];

	/* Bounded: each round ends what it found; new ones can only come from those. */
	for (int round = 0; round < 16; round++) {
		long long deadline = io_now_ms() + grace_ms;
		size_t n;

		reap_all(on_reap, arg);
		if ((n = children(kids, sizeof kids / sizeof kids[0])) == 0)
			return;
		for (size_t i = 0; i < n; i++)
			signal_child(kids[i], SIGTERM);
		while (io_now_ms() < deadline && still_running(kids, n) > 0) {
			poll(NULL, 0, 20);
			reap_all(on_reap, arg);
		}
		for (size_t i = 0; i < n; i++)
			signal_child(kids[i], SIGKILL);
		poll(NULL, 0, 10);
	}
	reap_all(on_reap, arg);
}

size_t proc_kill_strays(const pid_t *keep, size_t n)
{
	pid_t kids[256];
	size_t found = children(kids, sizeof kids / sizeof kids[0]), killed = 0;

	for (size_t i = 0; i < found; i++) {
		size_t k = 0;

		while (k < n && keep[k] != kids[i])
			k++;
		if (k < n)
			continue;
		signal_child(kids[i], SIGKILL);
		killed++;
	}
	return killed;
}
