/*
 * pidfile: the program's PID in a file (-i FILE of every tool), as BSD
 * pidfile(3) keeps one. The file is opened without following a link and
 * without blocking on a FIFO, must be a regular file owned by us, and is
 * locked (flock) for as long as the program runs, so that a second one
 * given the same file refuses to start instead of overwriting it. The PID
 * is written once the program is ready (daemon_ready: the moment -b prints
 * it), and the file is removed when the program exits, whatever exit path
 * it takes, by the process whose PID it holds.
 *
 * One per process, in a file-local state: the library's third mutable
 * global, besides sig.c's self-pipe and err.c's diagnostics, by the same
 * right (process-wide by nature; atexit(3) takes no argument).
 */
#ifndef SP_PIDFILE_H
#define SP_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Open and lock path, created 0644 if need be; it is removed at exit by
 * the owner (below). Returns 0, or -1 with errno: EWOULDBLOCK (another
 * program holds it: *holder is its PID, 0 while it has written none yet),
 * ELOOP (a symbolic link), EINVAL (not a regular file), EPERM (owned by
 * another user), or what open(2) said; nothing is touched then.
 */
int pidfile_open(const char *path, pid_t *holder);

/* Why pidfile_open failed with err (holder as it gave it), in words for "FILE: why". */
const char *pidfile_why(int err, pid_t holder, char *buf, size_t len);

/*
 * The process that removes the file at its exit: at first the one that
 * opened it; after a fork, the daemon (daemon_start sets it in both
 * processes, so that the caller's exit leaves the file alone).
 */
void pidfile_owner(pid_t pid);

/* Write pid (alone, on one line). Returns 0, also when no file is open, or -1 with errno. */
int pidfile_write(pid_t pid);

/* The path given to pidfile_open, or NULL when there is none. */
const char *pidfile_path(void);

/*
 * In the owner: remove the file if it is still the one we locked, and let
 * go of it (also done at exit). Elsewhere nothing: a forked child's exit,
 * or the caller of a daemon, leaves it alone.
 */
void pidfile_remove(void);

#endif
