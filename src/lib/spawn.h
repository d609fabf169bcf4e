/*
 * spawn: the one way we start a program (its descriptors 0-2 placed, its
 * environment applied, the signals sig.c set reset, the exec's outcome
 * known), and the one way we fork a child of ours that runs our own code.
 * A child resets sig.c's list and nothing else (sig_exec_reset,
 * sig_child_reset).
 */
#ifndef SP_SPAWN_H
#define SP_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

struct cmd;

/*
 * The variables to set ("NAME=VALUE") and to remove before exec; either
 * list may be NULL, both are NULL-terminated. clear: start from an empty
 * environment (a service's: nothing of ours leaks into it), then set.
 */
struct spawn_env {
	char *const *set;
	const char *const *unset;
	int clear;
};

enum spawn_flags {
	SPAWN_NEWPGRP = 1u,   /* the child leads a process group of its own */
	SPAWN_PDEATHSIG = 2u, /* the child gets SIGTERM when its parent dies, even by SIGKILL,
				 or at once if it had died already (Linux) */
};

/* What to start. */
struct spawn {
	const struct cmd *cmd;	     /* the program, prepared (cmd_init); or NULL, and */
	const char *command;	     /* this command is prepared for this start only */
	int fd[3];		     /* its fds 0, 1 and 2; -1: /dev/null */
	const struct spawn_env *env; /* applied to our environment; NULL: ours as it is */
	unsigned flags;		     /* enum spawn_flags */
};

/*
 * Start sp's program. The child is made with clone(2) on a stack in our
 * frame, every signal blocked until it has reset sig.c's dispositions
 * (posix_spawn asks the kernel about all 64 signals, twice for most), and
 * reports a failed exec through a close-on-exec pipe.
 *
 * errfd NULL: vfork's economy (CLONE_VM, CLONE_VFORK: nothing of ours is
 * copied, and we wait only until the exec). Returns the pid once the exec
 * has happened, or -1 with errno set to why it failed (the child is
 * reaped then), or to why the start failed.
 *
 * errfd not NULL: fork's (the child has a copy of our memory, and we do
 * not wait at all: a caller starting many programs lets their execs run
 * at once). Returns the pid at once, with in *errfd the read end of the
 * pipe, for spawn_result; a child whose exec failed exits 127 and is the
 * caller's to reap. Returns -1 with errno when the start itself fails.
 */
pid_t spawn_start(const struct spawn *sp, int *errfd);

/*
 * The outcome in errfd (waits for it; poll errfd for POLLIN to avoid
 * that), which is closed: 0 when the exec happened, else its errno.
 */
int spawn_result(int errfd);

/*
 * Fork a child of ours, which goes on in our code (a relay, a worker):
 * signals are blocked across the fork, so that no handler of ours runs in
 * the child before sig_child_reset has; flags as for spawn_start. Returns
 * as fork(2) does: 0 in the child, the pid in the parent, or -1 with
 * errno.
 */
pid_t spawn_fork(unsigned flags);

/*
 * Put fd0, fd1, fd2 in place as this process's descriptors 0, 1, 2 (-1:
 * /dev/null), whatever their numbers. Returns 0 or -1.
 */
int spawn_place_fds(int fd0, int fd1, int fd2);

/*
 * Our environment with env applied (env NULL: as it is), as a new array
 * with room for extra more entries; its strings are borrowed. *n (n may be
 * NULL) gets the count. NULL with errno ENOMEM.
 */
char **spawn_envp(const struct spawn_env *env, size_t extra, size_t *n);

#endif
