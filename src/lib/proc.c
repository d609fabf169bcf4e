#define _GNU_SOURCE /* prctl */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"
#include "sig.h"

#define MAX_ARGS 64

/* Anything the shell would treat specially sends the command through sh -c. */
static const char shell_meta[] = "|&;<>()$`\\\"'*?[]#~=%{}!\n";

/* The blank-separated words of cmd into argv (in copy), or 0 for the shell. */
static int split_cmd(const char *cmd, char **copy, char *argv[MAX_ARGS + 1])
{
	char *tok, *save;
	int argc = 0;

	if (strpbrk(cmd, shell_meta) != NULL || (*copy = strdup(cmd)) == NULL)
		return 0;
	for (tok = strtok_r(*copy, " \t", &save); tok && argc < MAX_ARGS;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc > 0 && !strtok_r(NULL, " \t", &save))
		return argc;
	free(*copy);
	*copy = NULL;
	return 0;
}

void proc_exec_cmd_at(const char *cmd, const char *path)
{
	char *argv[MAX_ARGS + 1], *copy = NULL;

	if (split_cmd(cmd, &copy, argv) > 0) {
		/* A stale cached path (ENOENT, ENOEXEC...) falls back to the full search. */
		if (path)
			execv(path, argv);
		execvp(argv[0], argv);
		int saved = errno;
		free(copy);
		errno = saved;
		return;
	}
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
}

void proc_exec_cmd(const char *cmd)
{
	proc_exec_cmd_at(cmd, NULL);
}

int proc_which(const char *cmd, char *path, size_t len)
{
	char *argv[MAX_ARGS + 1], *copy = NULL;
	const char *dirs = getenv("PATH"), *d, *end;
	int found = -1;

	if (split_cmd(cmd, &copy, argv) == 0)
		return -1;
	/* A name with a slash is not searched; an unset PATH keeps execvp's default. */
	if (strchr(argv[0], '/') || !dirs) {
		free(copy);
		return -1;
	}
	for (d = dirs; found < 0; d = end + 1) {
		size_t dl;
		int n;

		end = strchr(d, ':');
		if (!end)
			end = d + strlen(d);
		dl = (size_t)(end - d);
		if (dl == 0) /* the current directory: leave that search to execvp */
			break;
		n = snprintf(path, len, "%.*s/%s", (int)dl, d, argv[0]);
		if (n > 0 && (size_t)n < len && access(path, X_OK) == 0)
			found = 0;
		if (!*end)
			break;
	}
	free(copy);
	return found;
}

const char *const proc_ucspi_unset[] = {"LISTEN_PID",	 "LISTEN_FDS",	 "LISTEN_FDNAMES",
					 "TCPLOCALIP",	 "TCPLOCALPORT", "TCPREMOTEIP",
					 "TCPREMOTEPORT", NULL};

/* Point the set at the variables known so far. */
static void ucspi_link(struct proc_ucspi *u)
{
	int n = 0;

	u->set[n++] = u->proto;
	if (!u->unix_) {
		if (u->lip[0])
			u->set[n++] = u->lip;
		u->set[n++] = u->lport;
		if (u->rip[0])
			u->set[n++] = u->rip;
		if (u->rport[0])
			u->set[n++] = u->rport;
	}
	u->set[n] = NULL;
	u->env = (struct proc_env){u->set, proc_ucspi_unset};
}

void proc_ucspi_listener(struct proc_ucspi *u, int lfd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	memset(u, 0, sizeof *u);
	if (net_name(lfd, 0, ip, port) == AF_UNIX) {
		u->unix_ = 1;
		snprintf(u->proto, sizeof u->proto, "PROTO=UNIX");
	} else {
		snprintf(u->proto, sizeof u->proto, "PROTO=TCP");
		u->wildcard = strcmp(ip, "::") == 0 || strcmp(ip, "0.0.0.0") == 0 || !ip[0];
		if (!u->wildcard)
			snprintf(u->lip, sizeof u->lip, "TCPLOCALIP=%s", ip);
		snprintf(u->lport, sizeof u->lport, "TCPLOCALPORT=%s", port);
	}
	ucspi_link(u);
}

void proc_ucspi_conn(struct proc_ucspi *u, int fd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (u->unix_)
		return;
	if (u->wildcard && net_name(fd, 0, ip, port) >= 0)
		snprintf(u->lip, sizeof u->lip, "TCPLOCALIP=%s", ip);
	if (net_name(fd, 1, ip, port) >= 0) {
		snprintf(u->rip, sizeof u->rip, "TCPREMOTEIP=%s", ip);
		snprintf(u->rport, sizeof u->rport, "TCPREMOTEPORT=%s", port);
	}
	ucspi_link(u);
}

void proc_conn_fds(int conn, int ronly, int wonly, int fds[3])
{
	fds[0] = wonly ? STDIN_FILENO : conn;
	fds[1] = ronly ? STDOUT_FILENO : conn;
	fds[2] = ronly ? STDERR_FILENO : conn;
}

static int place_fd(int fd, int target)
{
	if (fd < 0)
		return io_devnull(target, target == 0 ? O_RDONLY : O_WRONLY);
	if (fd == target)
		return io_set_cloexec(fd, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

int proc_child_setup(int fd0, int fd1, int fd2, const struct proc_env *env, unsigned flags)
{
	int fds[3] = {fd0, fd1, fd2};

	sig_child_reset();
	if (flags & PROC_NEWPGRP)
		setpgid(0, 0);
	if (flags & PROC_PDEATHSIG)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Move sources out of 0..2 first so one dup2 cannot clobber another. */
	for (int i = 0; i < 3; i++) {
		if (fds[i] >= 0 && fds[i] < 3 && fds[i] != i) {
			int nfd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (nfd < 0)
				return -1;
			for (int j = i + 1; j < 3; j++)
				if (fds[j] == fds[i])
					fds[j] = nfd;
			fds[i] = nfd;
		}
	}
	for (int i = 0; i < 3; i++)
		if (place_fd(fds[i], i) < 0)
			return -1;
	if ((flags & PROC_CLEARENV) && clearenv() != 0)
		return -1;
	if (env) {
		for (const char *const *u = env->unset; u && *u; u++)
			unsetenv(*u);
		for (char *const *s = env->set; s && *s; s++)
			if (putenv(*s) != 0)
				return -1;
	}
	return 0;
}

pid_t proc_spawn_start(const char *cmd, int fd0, int fd1, int fd2, const struct proc_env *env,
		       unsigned flags, int *errfd)
{
	int ep[2], err = 0;
	pid_t pid;

	if (io_pipe(ep) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(ep[0]);
		close(ep[1]);
		errno = err;
		return -1;
	}
	if (pid == 0) {
		close(ep[0]);
		if (proc_child_setup(fd0, fd1, fd2, env, flags) == 0)
			proc_exec_cmd(cmd);
		err = errno;
		if (write(ep[1], &err, sizeof err) < 0) {
			/* the parent sees EOF and a child that exited 127 */
		}
		_exit(127);
	}
	close(ep[1]);
	/* Avoid the race where the child's group does not exist yet when we signal it. */
	if (flags & PROC_NEWPGRP)
		setpgid(pid, pid);
	*errfd = ep[0];
	return pid;
}

int proc_spawn_result(int errfd)
{
	int err = 0;
	ssize_t n = io_read(errfd, &err, sizeof err);

	close(errfd);
	return n == (ssize_t)sizeof err ? err : 0;
}

pid_t proc_spawn(const char *cmd, int fd0, int fd1, int fd2, const struct proc_env *env,
		 unsigned flags)
{
	int errfd, err;
	pid_t pid = proc_spawn_start(cmd, fd0, fd1, fd2, env, flags, &errfd);

	if (pid < 0)
		return -1;
	err = proc_spawn_result(errfd);
	if (err) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = err;
		return -1;
	}
	return pid;
}

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
			sig_drain(NULL, NULL);
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

/* The keeper's state, for its signal handler: process-wide by nature. */
static volatile pid_t keeper_worker;

static void keeper_forward(int sig)
{
	int saved = errno;

	if (keeper_worker > 0)
		kill(keeper_worker, sig);
	errno = saved;
}

int proc_keeper(long grace_ms, int quiet, int close_fd)
{
	static const int forwarded[] = {SIGINT, SIGHUP, SIGTERM};
	struct sigaction sa;
	pid_t keeper = getpid(), pid;
	int status = 0;

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
	keeper_worker = pid;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = keeper_forward;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (close_fd >= 0)
		close(close_fd);
	if (quiet)
		for (int fd = 0; fd < 3; fd++)
			io_devnull(fd, fd == 0 ? O_RDONLY : O_WRONLY);
	for (;;) {
		pid_t r = waitpid(-1, &status, 0);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			break; /* no child at all: nothing left to keep */
	}
	keeper_worker = 0;
	proc_end_children(grace_ms, NULL, NULL);
	_exit(proc_status_code(status));
}
