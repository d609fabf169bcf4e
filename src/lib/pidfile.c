#define _DEFAULT_SOURCE /* flock */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opt.h"

#define TRIES 3 /* the file replaced under us while we locked it: open it again */

/* The process's PID file (see pidfile.h for why a global). */
static struct {
	int fd;
	char path[4096];
	pid_t owner;
	int registered; /* pidfile_remove is an atexit handler */
} pf = {.fd = -1};

/* The PID a running holder wrote, or 0. */
static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	long v;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return opt_long(buf, 1, 0x7fffffff, &v) == 0 ? (pid_t)v : 0;
}

/* fd is still the file at path (its last owner did not remove it meanwhile). */
static int same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* One try: 0 locked, 1 the file went away meanwhile (try again), -1 refused. */
static int try_open(const char *path, pid_t *holder)
{
	struct stat st;
	int fd, saved;

	/* Never through a link, never held by a FIFO planted there. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	errno = !S_ISREG(st.st_mode) ? EINVAL : st.st_uid != geteuid() ? EPERM : 0;
	if (errno)
		goto fail;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			*holder = read_pid(fd);
			errno = EWOULDBLOCK;
		}
		goto fail;
	}
	if (!same_file(fd, path)) {
		close(fd);
		return 1;
	}
	if (ftruncate(fd, 0) < 0)
		goto fail;
	pf.fd = fd;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static void at_exit(void)
{
	pidfile_remove();
}

int pidfile_open(const char *path, pid_t *holder)
{
	int r = 1;

	*holder = 0;
	if (strlen(path) >= sizeof pf.path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int i = 0; i < TRIES && r == 1; i++)
		r = try_open(path, holder);
	if (r == 1)
		errno = EWOULDBLOCK; /* replaced each time: someone else is at it */
	if (r != 0)
		return -1;
	memcpy(pf.path, path, strlen(path) + 1);
	pf.owner = getpid();
	if (!pf.registered && atexit(at_exit) == 0)
		pf.registered = 1;
	return 0;
}

const char *pidfile_why(int err, pid_t holder, char *buf, size_t len)
{
	switch (err) {
	case EWOULDBLOCK:
		if (holder > 0)
			snprintf(buf, len, "already running as PID %ld", (long)holder);
		else
			snprintf(buf, len, "in use by another program (its PID not written yet)");
		return buf;
	case ELOOP: return "a symbolic link; not following it";
	case EINVAL: return "not a regular file; not touching it";
	case EPERM: return "owned by another user; not touching it";
	}
	return strerror(err);
}

void pidfile_owner(pid_t pid)
{
	pf.owner = pid;
}

int pidfile_write(pid_t pid)
{
	char line[32];
	int len;

	if (pf.fd < 0)
		return 0;
	len = snprintf(line, sizeof line, "%ld\n", (long)pid);
	if (ftruncate(pf.fd, 0) < 0)
		return -1;
	errno = EIO; /* what a short write means */
	return pwrite(pf.fd, line, (size_t)len, 0) == len ? 0 : -1;
	return 0;
}

const char *pidfile_path(void)
{
	return pf.fd >= 0 ? pf.path : NULL;
}

void pidfile_remove(void)
{
	int saved = errno;

	if (pf.fd < 0 || getpid() != pf.owner)
		return;
	/* Only what we locked: a file put there since is someone else's. */
	if (same_file(pf.fd, pf.path))
		unlink(pf.path);
	close(pf.fd);
	pf.fd = -1;
	errno = saved;
}
