/*
 * proc: the processes we started, at their end: reaping them, their exit
 * status as a shell shows it, and ending process groups, orphaned
 * descendants and strays.
 */
#ifndef SP_PROC_H
#define SP_PROC_H

#include <stddef.h>
#include <sys/types.h>

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

#endif
