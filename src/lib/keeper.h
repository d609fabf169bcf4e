/* keeper: a process that outlives what it started, and ends it, however it ends. */
#ifndef SP_KEEPER_H
#define SP_KEEPER_H

/*
 * Split this process in two, so that no descendant outlives it, however
 * it ends. The caller's process becomes the keeper: a subreaper (Linux
 * PR_SET_CHILD_SUBREAPER) that passes SIGINT, SIGHUP, SIGTERM and
 * SIG_OPS (SIGQUIT, SIGUSR1, SIGUSR2) on to the worker (through its self-pipe, sig.c), and, when the worker has
 * ended, ends whatever is left (proc_end_children, grace_ms). With quiet,
 * the keeper lets go of fds 0-2 first (a backgrounded caller's terminal
 * and pipes); close_fd (-1: none) is a descriptor the keeper must not
 * hold.
 *
 * Returns 0 in the worker: a subreaper too, it gets SIGTERM when the
 * keeper dies, even by SIGKILL, so that its own teardown ends what it
 * started. Returns 1 in the keeper once all is over, with *status the
 * exit status to end with (the worker's, or 128+signal): the caller
 * _exits with it (the worker flushes what is buffered, not the keeper).
 * Returns -1 with errno when the fork fails.
 */
int keeper_start(long grace_ms, int quiet, int close_fd, int *status);

#endif
