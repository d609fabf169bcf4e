#define _GNU_SOURCE /* prctl */
#include "proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
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

#define MAX_ARGS PROC_MAX_ARGS

extern char **environ;

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

int proc_cmd_init(struct proc_cmd *c, const char *cmd, const char *path)
{
	memset(c, 0, sizeof *c);
	if (split_cmd(cmd, &c->copy, c->argv) > 0) {
		if (path && snprintf(c->path, sizeof c->path, "%s", path) >= (int)sizeof c->path)
			c->path[0] = '\0';
		return 0;
	}
	if (!(c->copy = strdup(cmd)))
		return -1;
	c->shell = 1;
	c->argv[0] = "sh";
	c->argv[1] = "-c";
	c->argv[2] = c->copy;
	c->argv[3] = NULL;
	return 0;
}

void proc_cmd_free(struct proc_cmd *c)
{
	free(c->copy);
	c->copy = NULL;
}

void proc_cmd_exec(const struct proc_cmd *c, char *const envp[])
{
	if (!envp)
		envp = environ;
	if (c->shell) {
		execve("/bin/sh", c->argv, envp);
		return;
	}
	/* A stale cached path (ENOENT, ENOEXEC...) falls back to the full search. */
	if (c->path[0])
		execve(c->path, c->argv, envp);
	execvpe(c->argv[0], c->argv, envp);
}

void proc_exec_cmd_at(const char *cmd, const char *path)
{
	struct proc_cmd c;
	int saved;

	if (proc_cmd_init(&c, cmd, path) < 0)
		return;
	proc_cmd_exec(&c, NULL);
	saved = errno;
	proc_cmd_free(&c);
	errno = saved;
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

/* find_prog: proc_find for a program name argv0 (a direct exec's first word). */
static int find_prog(const char *argv0, char *path, size_t len)
{
	const char *dirs = getenv("PATH"), *d, *end;
	int err = ENOENT;

	if (strchr(argv0, '/')) {
		int n = snprintf(path, len, "%s", argv0);

		if (n < 0 || (size_t)n >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return executable(path);
	}
	if (!dirs)
		dirs = "/bin:/usr/bin"; /* execvp's default */
	for (d = dirs;; d = end + 1) {
		size_t dl;
		int n;

		end = strchr(d, ':');
		if (!end)
			end = d + strlen(d);
		dl = (size_t)(end - d);
		/* An empty entry is the current directory, as for execvp. */
		n = dl ? snprintf(path, len, "%.*s/%s", (int)dl, d, argv0)
		       : snprintf(path, len, "./%s", argv0);
		if (n > 0 && (size_t)n < len) {
			if (executable(path) == 0)
				return 0;
			if (errno == EACCES)
				err = EACCES; /* as execvp: reported only if nothing else is found */
		}
		if (!*end)
			break;
	}
	path[0] = '\0';
	errno = err;
	return -1;
}

int proc_find(const char *cmd, char *path, size_t len)
{
	struct proc_cmd c;
	int r, saved;

	if (proc_cmd_init(&c, cmd, NULL) < 0)
		return -1;
	r = c.shell ? 1 : find_prog(c.argv[0], path, len);
	saved = errno;
	proc_cmd_free(&c);
	errno = saved;
	return r;
}

int proc_cmd_find(struct proc_cmd *c)
{
	char path[sizeof c->path];

	if (c->shell)
		return 1;
	if (find_prog(c->argv[0], path, sizeof path) < 0)
		return -1;
	memcpy(c->path, path, sizeof path);
	return 0;
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

/* A variable with a value ("NAME=" holds a place for one to come). */
static int known(const char *var)
{
	const char *eq = strchr(var, '=');

	return eq && eq[1];
}

/* Point the set at the variables known so far. */
static void ucspi_link(struct proc_ucspi *u)
{
	int n = 0;

	u->set[n++] = u->proto;
	if (!u->unix_) {
		if (known(u->lip))
			u->set[n++] = u->lip;
		u->set[n++] = u->lport;
		if (known(u->rip))
			u->set[n++] = u->rip;
		if (known(u->rport))
			u->set[n++] = u->rport;
	}
	u->set[n] = NULL;
	u->env = (struct proc_env){u->set, proc_ucspi_unset, 0};
}

/* v in decimal at dst; returns the end. */
static char *put_u(char *dst, unsigned v)
{
	char tmp[12];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*dst++ = tmp[--n];
	return dst;
}

/* An IPv4 address, dotted, at dst (room for 16). */
static void put_ip4(char *dst, const unsigned char *a)
{
	for (int i = 0; i < 4; i++) {
		dst = put_u(dst, a[i]);
		*dst++ = i < 3 ? '.' : '\0';
	}
}

/*
 * The numeric address of fd's local or peer end, as net_name gives it
 * (an IPv4-mapped IPv6 address as plain IPv4), with less code: a -W
 * worker formats it between accept and exec, and every page of code
 * touched there (printf's, which inet_ntop uses for IPv4) is a page fault
 * of a fresh process.
 */
static int sock_name(int fd, int peer, char ip[NET_IPLEN], char port[NET_PORTLEN])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
		      : getsockname(fd, (struct sockaddr *)&ss, &len);
	unsigned short p;

	ip[0] = port[0] = '\0';
	if (rc < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		put_ip4(ip, (const unsigned char *)&in->sin_addr);
		p = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			put_ip4(ip, in6->sin6_addr.s6_addr + 12);
		else if (!inet_ntop(AF_INET6, &in6->sin6_addr, ip, NET_IPLEN))
			return -1;
		p = ntohs(in6->sin6_port);
	} else {
		return ss.ss_family;
	}
	*put_u(port, p) = '\0';
	return ss.ss_family;
}

/* buf = "NAME=VALUE" (buf has room: the proc_ucspi sizes). */
static void put_var(char *buf, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);

	memcpy(buf, name, n);
	buf[n] = '=';
	memcpy(buf + n + 1, value, v + 1);
}

void proc_ucspi_listener(struct proc_ucspi *u, int lfd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	memset(u, 0, sizeof *u);
	if (sock_name(lfd, 0, ip, port) == AF_UNIX) {
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

void proc_ucspi_several(struct proc_ucspi *u)
{
	if (u->unix_)
		return;
	u->wildcard = 1;
	u->lip[0] = '\0';
	ucspi_link(u);
}

void proc_ucspi_conn(struct proc_ucspi *u, int fd)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];

	if (u->unix_)
		return;
	if (u->wildcard) {
		sock_name(fd, 0, ip, port);
		put_var(u->lip, "TCPLOCALIP", ip);
	}
	sock_name(fd, 1, ip, port);
	put_var(u->rip, "TCPREMOTEIP", ip);
	put_var(u->rport, "TCPREMOTEPORT", port);
	ucspi_link(u);
	if (u->envp) { /* the places at its end, as far as they are known */
		size_t k = u->envn;

		for (char *const *v = u->set; *v; v++)
			u->envp[k++] = *v;
		u->envp[k] = NULL;
	}
}

/* NAME=VALUE or NAME names name. */
static int same_name(const char *var, const char *name)
{
	size_t n = strcspn(name, "=");

	return strncmp(var, name, n) == 0 && var[n] == '=';
}

/*
 * Our environment with env applied, as a new array with room for extra
 * more entries (its strings are borrowed); *n gets the count. NULL when
 * out of memory.
 */
static char **envp_of(const struct proc_env *env, size_t extra, size_t *n_out)
{
	char **envs = environ && !(env && env->clear) ? environ : (char *[]){NULL}, **out;
	size_t n = 0, k = 0, nset = 0;

	while (envs[n])
		n++;
	while (env && env->set && env->set[nset])
		nset++;
	if (!(out = calloc(n + nset + extra + 1, sizeof *out)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int drop = 0;

		for (const char *const *u = env ? env->unset : NULL; u && *u && !drop; u++)
			drop = same_name(envs[i], *u);
		for (size_t j = 0; j < nset && !drop; j++)
			drop = same_name(envs[i], env->set[j]);
		if (!drop)
			out[k++] = envs[i];
	}
	for (size_t j = 0; j < nset; j++)
		out[k++] = env->set[j];
	out[k] = NULL;
	if (n_out)
		*n_out = k;
	return out;
}

int proc_ucspi_envp(struct proc_ucspi *u)
{
	size_t n, nset = 0;

	while (u->set[nset])
		nset++;
	/* Ours, without the unset names or any we set; then the places of ours. */
	if (!(u->envp = envp_of(&u->env, PROC_UCSPI_VARS, &n)))
		return -1;
	u->envn = n - nset;
	return 0;
}

void proc_ucspi_free(struct proc_ucspi *u)
{
	free(u->envp);
	u->envp = NULL;
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

int proc_place_fds(int fd0, int fd1, int fd2)
{
	int fds[3] = {fd0, fd1, fd2};

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
	return 0;
}

int proc_env_apply(const struct proc_env *env)
{
	if (!env)
		return 0;
	if (env->clear && clearenv() != 0)
		return -1;
	for (const char *const *u = env->unset; u && *u; u++)
		unsetenv(*u);
	for (char *const *s = env->set; s && *s; s++)
		if (putenv(*s) != 0)
			return -1;
	return 0;
}

int proc_child_setup(int fd0, int fd1, int fd2, const struct proc_env *env, unsigned flags)
{
	sig_child_reset();
	if (flags & PROC_NEWPGRP)
		setpgid(0, 0);
	if (flags & PROC_PDEATHSIG)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (proc_place_fds(fd0, fd1, fd2) < 0)
		return -1;
	return proc_env_apply(env);
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

/* What a spawned child needs; it shares our memory until its exec. */
struct spawn {
	const struct proc_cmd *c;
	char **envp;
	int fds[3];
	unsigned flags;
	int errw; /* the write end of the error pipe */
};

#define SPAWN_STACK 65536 /* the child's stack, in the caller's frame */

/*
 * AddressSanitizer marks the redzones of the child's frames in the shadow
 * of our memory, which the child shares, and nothing clears them once the
 * child has gone on to its exec: we do, or our own later frames there read
 * as overflows (the false positive its manual warns of for vfork).
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CHILD_STACK_DONE(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define CHILD_STACK_DONE(p, n) ((void)(p), (void)(n))
#endif

/*
 * The child of proc_cmd_spawn, on a stack of the caller's, every signal
 * blocked: only the dispositions sig.c set are reset (posix_spawn asks
 * the kernel about all 64 signals, twice for most), the mask is emptied,
 * and the program executed.
 */
static int spawn_child(void *arg)
{
	const struct spawn *a = arg;
	int err;

	sig_exec_reset();
	if (a->flags & PROC_NEWPGRP)
		setpgid(0, 0);
	if (proc_place_fds(a->fds[0], a->fds[1], a->fds[2]) == 0)
		proc_cmd_exec(a->c, a->envp);
	err = errno;
	if (write(a->errw, &err, sizeof err) < 0) {
		/* the parent sees EOF and a child that exited 127 */
	}
	_exit(127);
}

pid_t proc_cmd_spawn(const struct proc_cmd *c, int fd0, int fd1, int fd2,
		     const struct proc_env *env, unsigned flags)
{
	/* 16-byte aligned, as the ABI wants a stack; the child grows it downwards. */
	_Alignas(16) char stack[SPAWN_STACK];
	struct spawn a = {.c = c, .fds = {fd0, fd1, fd2}, .flags = flags};
	sigset_t all, old;
	int ep[2], err;
	pid_t pid;

	if (!(a.envp = envp_of(env, 0, NULL)))
		return -1;
	if (io_pipe(ep) < 0) {
		err = errno;
		free(a.envp);
		errno = err;
		return -1;
	}
	a.errw = ep[1];
	/* No handler of ours may run in a child that shares our memory. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	/* vfork's economy: nothing of ours is copied, and we wait only until its exec. */
	pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	err = errno;
	CHILD_STACK_DONE(stack, sizeof stack);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	free(a.envp);
	if (pid < 0) {
		close(ep[0]);
		errno = err;
		return -1;
	}
	/* End of file once the exec has happened (the pipe is close-on-exec), else its errno. */
	if ((err = proc_spawn_result(ep[0])) != 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = err;
		return -1;
	}
	return pid;
}

pid_t proc_spawn(const char *cmd, int fd0, int fd1, int fd2, const struct proc_env *env,
		 unsigned flags)
{
	struct proc_cmd c;
	int saved;
	pid_t pid;

	if (flags & PROC_PDEATHSIG) { /* not a spawn attribute: the fork way */
		int errfd, err;

		if ((pid = proc_spawn_start(cmd, fd0, fd1, fd2, env, flags, &errfd)) < 0)
			return -1;
		if ((err = proc_spawn_result(errfd)) != 0) {
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			errno = err;
			return -1;
		}
		return pid;
	}
	if (proc_cmd_init(&c, cmd, NULL) < 0)
		return -1;
	pid = proc_cmd_spawn(&c, fd0, fd1, fd2, env, flags);
	saved = errno;
	proc_cmd_free(&c);
	errno = saved;
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

/*
 * The keeper's loop: pass the teardown signals on to the worker, reap
 * until the worker has ended, then end whatever is left. Returns the exit
 * status (the worker's, or 128+signal).
 */
static int keep(pid_t worker, long grace_ms, int quiet, int close_fd)
{
	struct pollfd pfd = {.fd = sig_init(0), .events = POLLIN};
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
		while ((sig = sig_read()) > 0)
			if (sig_is_term(sig))
				kill(worker, sig);
	}
	proc_end_children(grace_ms, NULL, NULL);
	return proc_status_code(r == worker ? status : 0);
}

int proc_keeper(long grace_ms, int quiet, int close_fd)
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
	_exit(keep(pid, grace_ms, quiet, close_fd));
}
