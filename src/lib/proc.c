#define _GNU_SOURCE /* prctl */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

/* An executable regular file, as execve would take it; else -1 with errno. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

int proc_find(const char *cmd, char *path, size_t len)
{
	char *argv[MAX_ARGS + 1], *copy = NULL;
	const char *dirs = getenv("PATH"), *d, *end;
	int found = -1, err = ENOENT;

	if (split_cmd(cmd, &copy, argv) == 0)
		return 1; /* what proc_exec_cmd hands to the shell */
	if (strchr(argv[0], '/')) {
		int n = snprintf(path, len, "%s", argv[0]);

		if (n < 0 || (size_t)n >= len)
			err = ENAMETOOLONG;
		else if (executable(path) == 0)
			found = 0;
		else
			err = errno;
		free(copy);
		errno = err;
		return found;
	}
	if (!dirs)
		dirs = "/bin:/usr/bin"; /* execvp's default */
	for (d = dirs; found < 0; d = end + 1) {
		size_t dl;
		int n;

		end = strchr(d, ':');
		if (!end)
			end = d + strlen(d);
		dl = (size_t)(end - d);
		/* An empty entry is the current directory, as for execvp. */
		n = dl ? snprintf(path, len, "%.*s/%s", (int)dl, d, argv[0])
		       : snprintf(path, len, "./%s", argv[0]);
		if (n > 0 && (size_t)n < len) {
			if (executable(path) == 0)
				found = 0;
			else if (errno == EACCES)
				err = EACCES; /* as execvp: reported only if nothing else is found */
		}
		if (!*end)
			break;
	}
	free(copy);
	errno = err;
	return found;
}

const char *proc_cmd_name(const char *cmd, char *buf, size_t len)
{
	size_t n;

	cmd += strspn(cmd, " \t");
	n = strcspn(cmd, " \t");
	if (len == 0)
		return "";
	if (n >= len)
		n = len - 1;
	memcpy(buf, cmd, n);
	buf[n] = '\0';
	return buf;
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
