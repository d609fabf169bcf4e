#define _GNU_SOURCE /* clone */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "err.h"
#include "io.h"
#include "sig.h"

extern char **environ;

static int place_fd(int fd, int target)
{
	if (fd < 0)
		return io_devnull(target, target == 0 ? O_RDONLY : O_WRONLY);
	if (fd == target)
		return io_set_cloexec(fd, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

int spawn_place_fds(int fd0, int fd1, int fd2)
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

/* NAME=VALUE or NAME names name. */
static int same_name(const char *var, const char *name)
{
	size_t n = strcspn(name, "=");

	return strncmp(var, name, n) == 0 && var[n] == '=';
}

char **spawn_envp(const struct spawn_env *env, size_t extra, size_t *n_out)
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

/* What a spawned child needs; it may share our memory until its exec. */
struct child {
	const struct cmd *cmd;
	char **envp;
	const int *fd;
	unsigned flags;
	pid_t parent; /* SPAWN_PDEATHSIG: the caller, whose end is ours */
	int errw;     /* the write end of the error pipe */
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
 * The child, on a stack of the caller's, every signal blocked: sig.c's
 * dispositions back to default and the mask emptied, then its group, its
 * descriptors, the exec. Writes no memory of ours but its stack.
 */
static int child(void *arg)
{
	const struct child *a = arg;
	int err;

	sig_exec_reset();
	if (a->flags & SPAWN_NEWPGRP)
		setpgid(0, 0);
	if (a->flags & SPAWN_PDEATHSIG) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		/* The caller died before the request (fork's economy: it is not waiting): due now. */
		if (getppid() != a->parent) {
			raise(SIGTERM);
			_exit(EXIT_SIGNAL(SIGTERM));
		}
	}
	if (spawn_place_fds(a->fd[0], a->fd[1], a->fd[2]) == 0)
		cmd_exec(a->cmd, a->envp);
	err = errno;
	if (write(a->errw, &err, sizeof err) < 0) {
		/* the parent sees EOF and a child that exited 127 */
	}
	_exit(EXIT_EXEC);
}

/* clone(2) a child that runs a; shared memory and a wait for its exec unless async. */
static pid_t clone_child(struct child *a, int async)
{
	/* 16-byte aligned, as the ABI wants a stack; the child grows it downwards. */
	_Alignas(16) char stack[SPAWN_STACK];
	sigset_t all, old;
	pid_t pid;
	int err;

	/* No handler of ours may run in the child before it has reset them. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = clone(child, stack + sizeof stack, (async ? 0 : CLONE_VM | CLONE_VFORK) | SIGCHLD, a);
	err = errno;
	CHILD_STACK_DONE(stack, sizeof stack);
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

pid_t spawn_start(const struct spawn *sp, int *errfd)
{
	struct child a = {.cmd = sp->cmd, .fd = sp->fd, .flags = sp->flags, .parent = getpid(),
			  .errw = -1};
	struct cmd own;
	int ep[2] = {-1, -1}, err;
	pid_t pid = -1;

	if (!a.cmd) {
		if (cmd_init(&own, sp->command, NULL) < 0)
			return -1;
		a.cmd = &own;
	}
	if ((a.envp = spawn_envp(sp->env, 0, NULL)) && io_pipe(ep) == 0) {
		a.errw = ep[1];
		pid = clone_child(&a, errfd != NULL);
		close(ep[1]);
	}
	err = errno;
	free(a.envp);
	if (a.cmd == &own)
		cmd_free(&own);
	if (pid < 0) {
		if (ep[0] >= 0)
			close(ep[0]);
		errno = err;
		return -1;
	}
	if (errfd) {
		/* So that a signal to its group cannot come before the group exists. */
		if (sp->flags & SPAWN_NEWPGRP)
			setpgid(pid, pid);
		*errfd = ep[0];
		return pid;
	}
	/* End of file once the exec has happened (the pipe is close-on-exec), else its errno. */
	if ((err = spawn_result(ep[0])) != 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = err;
		return -1;
	}
	return pid;
}

int spawn_result(int errfd)
{
	int err = 0;
	ssize_t n = io_read(errfd, &err, sizeof err);

	close(errfd);
	return n == (ssize_t)sizeof err ? err : 0;
}

pid_t spawn_fork(unsigned flags)
{
	pid_t parent = getpid(), pid;
	sigset_t all, old;
	int err;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	err = errno;
	if (pid == 0) {
		sig_child_reset(); /* the mask too */
		if (flags & SPAWN_NEWPGRP)
			setpgid(0, 0);
		if (flags & SPAWN_PDEATHSIG) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			/* The parent died before the request: then it is due at once. */
			if (getppid() != parent)
				raise(SIGTERM);
		}
		return 0;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid > 0 && (flags & SPAWN_NEWPGRP))
		setpgid(pid, pid);
	errno = err;
	return pid;
}
