/*
 * ddir: the directory of daemons a master runs. One master at a time runs
 * it (a lock held for the run: a cron run that overlaps the last must not
 * run every daemon twice), and its entries are the daemons.
 */
#ifndef SP_DDIR_H
#define SP_DDIR_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Take the lock on the directory open as fd (flock(2), held as long as fd
 * is open), or with wait, wait for it. Returns 0, or -1 with errno:
 * EWOULDBLOCK when another process holds it (*holder gets its PID, or 0
 * when /proc/locks cannot tell), or flock's error.
 */
int ddir_lock(int fd, int wait, pid_t *holder);

/*
 * Why ddir_lock failed with err (holder: its *holder), as master says it
 * after the directory's name, into buf (len bytes); returns buf.
 */
const char *ddir_lock_why(int err, pid_t holder, char *buf, size_t len);

/*
 * The daemons of the directory open as fd: its executable regular files
 * whose names are valid (name.h) and, with prefix_len, still valid after
 * a prefix of that length and a dot; sorted. Dotfiles, entries that are
 * not regular files and files nobody may execute are passed over in
 * silence, as run-parts(8) does; an executable file that cannot be a
 * daemon (its name) is told to skipped (may be NULL) with the reason. *names gets a malloc'd array of
 * *n malloc'd names (free with ddir_free). Returns 0, or -1 with errno.
 */
int ddir_list(int fd, size_t prefix_len, char ***names, size_t *n,
	      void (*skipped)(void *arg, const char *name, const char *why), void *arg);

void ddir_free(char **names, size_t n);

#endif
