/* proc: starting programs with their descriptors set, and ending them. */
#ifndef SP_PROC_H
#define SP_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "net.h"

/*
 * The variables to set ("NAME=VALUE") and to remove before exec; either
 * list may be NULL, both are NULL-terminated. clear: start from an empty
 * environment (a service's: nothing of ours leaks into it), then set.
 */
struct proc_env {
	char *const *set;
	const char *const *unset;
	int clear;
};

#define PROC_NEWPGRP 1u   /* the child leads a process group of its own */
#define PROC_PDEATHSIG 2u /* the child gets SIGTERM when its parent dies (Linux) */

#define PROC_MAX_ARGS 64
#define PROC_PATH_MAX 4096

/*
 * A command prepared once for many execs: split at blanks for a direct
 * exec when it has no shell metacharacters, else "sh -c cmd".
 */
struct proc_cmd {
	char *argv[PROC_MAX_ARGS + 4];
	char *copy;		    /* the words' storage */
	int shell;		    /* through /bin/sh -c */
	char path[PROC_PATH_MAX];   /* a direct exec's program as found in PATH, or "" */
};

/*
 * Prepare cmd; path (may be NULL) is where its program was found before
 * (proc_find). Returns 0, or -1 with errno ENOMEM.
 */
int proc_cmd_init(struct proc_cmd *c, const char *cmd, const char *path);
void proc_cmd_free(struct proc_cmd *c);

/*
 * Look the program up again (PATH may have changed, or the file): as
 * proc_find, into c->path. Returns 0, 1 for a shell command, or -1 with
 * errno (c is left as it was).
 */
int proc_cmd_find(struct proc_cmd *c);

/*
 * Exec c in this process with environment envp (NULL: the current one):
 * c->path first, then a PATH search if that fails. Returns only on
 * failure, with errno.
 */
void proc_cmd_exec(const struct proc_cmd *c, char *const envp[]);

/*
 * As proc_spawn, for a prepared command, with vfork's economy: the child
 * shares our memory until its exec (clone with CLONE_VM and CLONE_VFORK),
 * so nothing is copied, and only the signals we handle are reset in it.
 * flags: PROC_NEWPGRP only.
 */
pid_t proc_cmd_spawn(const struct proc_cmd *c, int fd0, int fd1, int fd2,
		     const struct proc_env *env, unsigned flags);

/*
 * Exec cmd in this process: directly (split at blanks, PATH search) when
 * it has no shell metacharacters, else through /bin/sh -c. Returns only
 * on failure, with errno set.
 */
void proc_exec_cmd(const char *cmd);

/*
 * As proc_exec_cmd, but a direct exec tries path first (what proc_find
 * found earlier; NULL: none), keeping argv[0] as written, and searches
 * PATH only if that fails: a server resolves its program once instead of
 * failing an execve per PATH entry before it on every connection.
 */
void proc_exec_cmd_at(const char *cmd, const char *path);

/*
 * Look up the program a direct exec of cmd will run, as execvp(3) does: a
 * name with a '/' as it is, else the first executable DIR/NAME in PATH
 * (unset: /bin:/usr/bin; an empty entry: the current directory). Returns 0
 * with that file in path (len bytes); 1 when cmd goes through /bin/sh -c,
 * whose lookup is the shell's; or -1 with errno ENOENT (no such program),
 * EACCES (found, but not an executable file) or ENAMETOOLONG.
 */
int proc_find(const char *cmd, char *path, size_t len);

/* The program name of cmd, its first word, into buf (len bytes), for messages; returns buf. */
const char *proc_cmd_name(const char *cmd, char *buf, size_t len);

/*
 * The UCSPI environment of a connection (PROTO, TCPLOCALIP, TCPLOCALPORT,
 * TCPREMOTEIP, TCPREMOTEPORT, as ucspi-tcp's tcpserver sets them), built
 * in two steps: what the listener tells once, then each connection's part.
 */
#define PROC_UCSPI_VARS 5
struct proc_ucspi {
	char proto[16];
	char lip[NET_IPLEN + 16], lport[NET_PORTLEN + 16];
	char rip[NET_IPLEN + 16], rport[NET_PORTLEN + 16];
	int wildcard; /* the listener's address is a wildcard: the local IP is per connection */
	int unix_;    /* a UNIX socket: PROTO=UNIX and nothing else */
	char **envp;  /* proc_ucspi_envp: a whole environment for execve, or NULL */
	size_t envn;  /* its entries before the ones of this struct */
	char *set[PROC_UCSPI_VARS + 1];
	struct proc_env env; /* give &env to proc_spawn */
};

/* Variables a connection's program must not inherit from us (activation, stale UCSPI). */
extern const char *const proc_ucspi_unset[];

/*
 * The listener's part, from its socket lfd: PROTO, and the local address
 * unless it is a wildcard. The environment then holds only that (what a
 * -P program, started before any connection, gets).
 */
void proc_ucspi_listener(struct proc_ucspi *u, int lfd);

/*
 * The listener has several sockets (every address of a name): the local
 * IP is each connection's, as for a wildcard.
 */
void proc_ucspi_several(struct proc_ucspi *u);

/*
 * Add connection fd's part: the local address where the listener's was a
 * wildcard, the peer's. After proc_ucspi_envp, envp holds them too.
 */
void proc_ucspi_conn(struct proc_ucspi *u, int fd);

/*
 * Make ready, before any connection, the whole environment a connection's
 * program gets, as an array for execve(2): ours, without the unset names,
 * then u's variables (by reference), which proc_ucspi_conn completes. So a
 * -W worker neither rebuilds an environment nor calls putenv (libc's
 * realloc, bound lazily in every fresh process) between accept and exec.
 * Returns 0, or -1 with errno ENOMEM.
 */
int proc_ucspi_envp(struct proc_ucspi *u);
void proc_ucspi_free(struct proc_ucspi *u);

/*
 * The descriptors a connection's program gets for fds 0, 1 and 2, by -r
 * and -w: the connection itself, except our own stdin under -w (nothing
 * received is passed on) and our own stdout and stderr under -r (nothing
 * is sent). One rule for every server mode.
 */
void proc_conn_fds(int conn, int ronly, int wonly, int fds[3]);

/*
 * Start cmd with fd0, fd1 and fd2 as its standard descriptors (-1:
 * /dev/null). Signal dispositions and mask are reset. Returns the pid
 * once the exec has happened, or -1 with errno set to why the exec failed
 * (the child is reaped then). Without PROC_PDEATHSIG this is
 * proc_cmd_spawn; with it, fork and exec.
 */
pid_t proc_spawn(const char *cmd, int fd0, int fd1, int fd2, const struct proc_env *env,
		 unsigned flags);

/*
 * proc_spawn in two halves, so a caller starting many programs need not
 * wait for each exec in turn. proc_spawn_start forks and returns at once:
 * the pid, and in *errfd the read end of a close-on-exec pipe that reaches
 * end of file once the exec has happened, or carries the errno of a failed
 * one (that child exits 127 and is the caller's to reap). Returns -1 with
 * errno when the pipe or fork fails.
 */
pid_t proc_spawn_start(const char *cmd, int fd0, int fd1, int fd2, const struct proc_env *env,
		       unsigned flags, int *errfd);

/*
 * The outcome in errfd (waits for it; poll errfd for POLLIN to avoid
 * that), which is closed: 0 when the exec happened, else its errno.
 */
int proc_spawn_result(int errfd);

/*
 * Put fds 0, 1, 2 in place in a freshly forked child and apply env and
 * flags; -1 means /dev/null. Returns 0 or -1.
 */
int proc_child_setup(int fd0, int fd1, int fd2, const struct proc_env *env, unsigned flags);

/* The descriptor part of proc_child_setup: dup fd0..fd2 onto 0..2 (-1: /dev/null). Returns 0 or -1. */
int proc_place_fds(int fd0, int fd1, int fd2);

/* The environment part: unset env->unset, put env->set (by reference). Returns 0 or -1. */
int proc_env_apply(const struct proc_env *env);

/* waitpid(-1, WNOHANG) retrying EINTR: a pid, 0 when none is ready, -1. */
pid_t proc_reap(int *status);

/* The exit status a shell would show: code, or 128+signal. */
int proc_status_code(int status);

/*
 * End process groups: SIGTERM to each -pids[i], wait up to grace_ms for
 * the leaders (waking on sigfd, the self-pipe), then SIGKILL whatever is
 * left of every group and reap the leaders. on_reap, if not NULL, is
 * told of every child reaped meanwhile, listed or not. Allocates nothing.
 */
void proc_end_groups(const pid_t *pids, size_t n, long grace_ms, int sigfd,
		     void (*on_reap)(pid_t pid, int status, void *arg), void *arg);

/*
 * End every child of this process that no one else will: descendants of
 * our children that were orphaned and came back to us as their subreaper
 * (double forks, setsid), and any child not yet reaped. Each gets
 * SIGTERM (its process group too, when it leads one other than ours),
 * then SIGKILL after grace_ms; all are reaped. Children are found in
 * /proc. on_reap as for proc_end_groups.
 */
void proc_end_children(long grace_ms, void (*on_reap)(pid_t pid, int status, void *arg),
		       void *arg);

/*
 * SIGKILL (with the group each leads) every child of ours but the n
 * pids in keep: descendants of a process tree that has ended which came
 * back to us as their subreaper, with nobody left to end them gently.
 * They are reaped as any child (proc_reap). Returns how many were
 * signalled (at most 256 a call: call again after reaping).
 */
size_t proc_kill_strays(const pid_t *keep, size_t n);

/*
 * Split this process in two, so that no descendant outlives it, however
 * it ends. The caller's process becomes the keeper: a subreaper (Linux
 * PR_SET_CHILD_SUBREAPER) that forwards SIGINT, SIGHUP and SIGTERM to the
 * worker, and, when the worker has ended, ends whatever is left
 * (proc_end_children, grace_ms) and exits with the worker's status (or
 * 128+signal). With quiet, the keeper lets go of fds 0-2 first (a
 * backgrounded caller's terminal and pipes); close_fd (-1: none) is a
 * descriptor the keeper must not hold. Only the worker returns, with 0:
 * a subreaper too, it gets SIGTERM when the keeper dies, even by SIGKILL,
 * so that its own teardown ends what it started. Returns -1 with errno
 * when the fork fails.
 */
int proc_keeper(long grace_ms, int quiet, int close_fd);

#endif
