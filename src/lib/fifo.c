/*
 * fifo: a buffer's ID and path, its creation and the lock that says its
 * owner lives, its pipe's size. Its end (sealed, drained, cut, what
 * nobody read saved): fifo_teardown.c.
 */
#define _GNU_SOURCE /* FIONREAD on a pipe; F_SETPIPE_SZ */
#include "fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "name.h"

int fifo_check_id(const char *id)
{
	size_t len = strlen(id);
	const char *base;

	if (strchr(id, '/')) {
		for (const char *p = id; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				goto bad;
		base = strrchr(id, '/') + 1;
		if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || name_reserved(base))
			goto bad;
		if (len + sizeof FIFO_UNREAD > PATH_MAX)
			goto bad;
		return FIFO_ID_PATH;
	}
	if (!name_ok(id))
		goto bad;
	return FIFO_ID_NAME;
bad:
	errno = EINVAL;
	return -1;
}

int fifo_probe_dir(const char *dir)
{
	char probe[4096];

	snprintf(probe, sizeof probe, "%s/.pool-probe-%ld", dir, (long)getpid());
	if (mkfifo(probe, 0600) < 0)
		return -1;
	unlink(probe);
	return 0;
}

char *fifo_resolve(const char *id, const char *dir)
{
	int kind = fifo_check_id(id);
	size_t dlen;
	char *p;

	if (kind < 0)
		return NULL;
	if (kind == FIFO_ID_PATH || !dir || !*dir)
		return strdup(id);
	dlen = strlen(dir);
	if (dlen + 1 + strlen(id) + sizeof FIFO_UNREAD > PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	p = malloc(dlen + strlen(id) + 2);
	if (!p)
		return NULL;
	strcpy(p, dir);
	if (dlen && dir[dlen - 1] != '/')
		strcat(p, "/");
	strcat(p, id);
	return p;
}

/*
 * Two locks on two bytes of the inode. Byte 0: an open file description
 * (OFD) lock, the guard itself: it conflicts with every other open of the
 * file, in this process too, and stays until the last descriptor of our
 * open is closed, which dying does. Byte 1: a classic POSIX lock, only so
 * that F_GETLK can name the owner's PID (OFD locks report none). Kernels
 * without OFD locks (before 3.15) get the POSIX lock on byte 0 instead.
 */
#define LOCK_GUARD 0
#define LOCK_PID 1

static int lock_cmd(int ofd_cmd, int posix_cmd, int fd, struct flock *l)
{
	int r = fcntl(fd, ofd_cmd, l);

	if (r < 0 && errno == EINVAL) {
		l->l_pid = 0;
		r = fcntl(fd, posix_cmd, l);
	}
	return r;
}

/* The PID holding fd's inode: >0; 0 when free; -1 with EBUSY when held by an owner we cannot name. */
static pid_t lock_owner(int fd)
{
	struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_GUARD, .l_len = 1};
	struct flock p = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_PID, .l_len = 1};

	if (lock_cmd(F_OFD_GETLK, F_GETLK, fd, &g) < 0)
		return -1;
	if (g.l_type == F_UNLCK)
		return 0;
	if (g.l_pid > 0)
		return g.l_pid;
	if (fcntl(fd, F_GETLK, &p) == 0 && p.l_type != F_UNLCK && p.l_pid > 0)
		return p.l_pid;
	errno = EBUSY; /* held (by this very process, or its PID lock was lost) */
	return -1;
}

static int lock_fd(int fd)
{
	struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_GUARD, .l_len = 1};
	struct flock p = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_PID, .l_len = 1};

	if (lock_cmd(F_OFD_SETLK, F_SETLK, fd, &g) < 0)
		return -1;
	fcntl(fd, F_SETLK, &p); /* for the PID only: the guard is held either way */
	return 0;
}

/* Open and lock what is at path; EBUSY with *holder when someone holds it. */
static int open_locked(const char *path, int flags, pid_t *holder)
{
	int fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);

	if (fd < 0)
		return -1;
	if (lock_fd(fd) < 0) {
		int saved = errno;
		pid_t who = lock_owner(fd);

		close(fd);
		if (saved == EAGAIN || saved == EACCES) {
			if (holder)
				*holder = who > 0 ? who : 0;
			saved = EBUSY;
		}
		errno = saved;
		return -1;
	}
	return fd;
}

static int create_spool(struct fifo *f, const char *path, pid_t *holder)
{
	struct stat st;
	int fd, saved;

	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	{
		mode_t old = umask(077); /* a spool we create is 0600, whatever the umask */
		fd = open_locked(path, O_WRONLY | O_APPEND | O_CREAT, holder);
		saved = errno;
		umask(old);
		errno = saved;
	}
	if (fd < 0)
		return -1;
	/* Writes to a regular file are blocking by nature; keep them simple. */
	io_set_nonblock(fd, 0);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EEXIST;
		return -1;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	return 0;
}

/* mkfifo with mode 0600 exactly: the caller's umask must not make our FIFO look foreign. */
static int make_fifo(const char *path)
{
	mode_t old = umask(077);
	int r = mkfifo(path, 0600);
	int saved = errno;

	umask(old);
	errno = saved;
	return r;
}

/* What a binding of ours leaves behind: a FIFO of our uid, mode 0600. */
static int ours(const struct stat *st)
{
	return S_ISFIFO(st->st_mode) && st->st_uid == geteuid() && (st->st_mode & 07777) == 0600;
}

/*
 * mkfifo, then open and lock, then check the path still names what we
 * locked: a rival that judged our fresh FIFO stale (before we locked it)
 * may have replaced it, and then we look again. A FIFO that was there
 * already is taken only when it is ours and nobody holds it.
 */
static int create_fifo(struct fifo *f, const char *path, pid_t *holder)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat st, pst;
		int fd, fresh = make_fifo(path) == 0;

		if (!fresh && errno != EEXIST)
			return -1;
		if (lstat(path, &pst) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (!S_ISFIFO(pst.st_mode)) {
			errno = EEXIST;
			return -1;
		}
		/* Judged before opening: another user's FIFO is not even opened. */
		if (!fresh && !ours(&pst)) {
			errno = EPERM;
			return -1;
		}
		fd = open_locked(path, O_RDWR, holder);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (fstat(fd, &st) < 0) {
			close(fd);
			return -1;
		}
		if (lstat(path, &pst) < 0 || pst.st_dev != st.st_dev || pst.st_ino != st.st_ino) {
			close(fd);
			continue;
		}
		if (!ours(&st)) {
			close(fd);
			errno = EPERM;
			return -1;
		}
		f->fd = fd;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		return 0;
	}
	errno = EAGAIN;
	return -1;
}

int fifo_create(struct fifo *f, const char *path, int spool, pid_t *holder)
{
	int r;

	memset(f, 0, sizeof *f);
	f->fd = -1;
	f->spool = spool;
	if (holder)
		*holder = 0;
	f->path = strdup(path);
	if (!f->path)
		return -1;
	r = spool ? create_spool(f, path, holder) : create_fifo(f, path, holder);
	if (r < 0) {
		int saved = errno;
		free(f->path);
		f->path = NULL;
		errno = saved;
	}
	return r;
}

const char *fifo_why(int err, int spool, pid_t holder, char *buf, size_t len)
{
	if (err == EBUSY && holder > 0) {
		snprintf(buf, len, "in use by PID %ld", (long)holder);
		return buf;
	}
	if (err == EBUSY)
		return "in use by another binding";
	if (err == EEXIST)
		return spool ? "exists and is not a regular file; not touching it"
			     : "exists and is not a FIFO; not touching it";
	if (err == EPERM)
		return "exists and is not ours (a FIFO of another user, or not mode 0600); "
		       "not touching it";
	return strerror(err);
}

pid_t fifo_owner(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	pid_t who;
	int saved;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	who = lock_owner(fd);
	/*
	 * Closing drops this process's POSIX locks on the inode, so when we
	 * own it we no longer report our PID; the guard (OFD) stays.
	 */
	saved = errno;
	close(fd);
	errno = saved;
	return who;
}

int fifo_set_size(struct fifo *f, size_t size)
{
	if (f->spool || f->fd < 0 || size > 0x7fffffff) {
		errno = EINVAL;
		return -1;
	}
	return fcntl(f->fd, F_SETPIPE_SZ, (int)size) < 0 ? -1 : 0;
}

size_t fifo_capacity(const struct fifo *f)
{
	int n = f->fd >= 0 && !f->spool ? fcntl(f->fd, F_GETPIPE_SZ) : -1;

	return n > 0 ? (size_t)n : 65536;
}

size_t fifo_pending(const struct fifo *f)
{
	int n = 0;

	if (f->spool || f->fd < 0 || ioctl(f->fd, FIONREAD, &n) < 0 || n < 0)
		return 0;
	return (size_t)n;
}

void fifo_close(struct fifo *f)
{
	struct stat st;

	if (f->path && !f->spool && !f->sealed && lstat(f->path, &st) == 0 && st.st_dev == f->dev &&
	    st.st_ino == f->ino)
		unlink(f->path);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->path);
	f->path = NULL;
	free(f->unread);
	f->unread = NULL;
}
