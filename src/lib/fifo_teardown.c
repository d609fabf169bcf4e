/*
 * fifo_teardown: a buffer's end, losing nothing a writer was told was
 * written: its reader let finish, the path sealed, the pipe drained, its
 * writers cut off exactly (fifo_cut), and what nobody read spilled to
 * PATH.unread. Creating and owning a buffer: fifo.c.
 */
#define _GNU_SOURCE /* tee, F_SETPIPE_SZ, memmem */
#include "fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "io.h"
#include "mem.h"

void fifo_let_reader_finish(const struct fifo *f, long long deadline)
{
	long long now = io_now_ms(), moved = now;
	size_t left = fifo_pending(f);

	while (left && now < deadline && now - moved < FIFO_READER_IDLE_MS) {
		size_t was = left;

		poll(NULL, 0, 10); /* a pipe tells no one when it is read: look again */
		now = io_now_ms();
		if ((left = fifo_pending(f)) < was)
			moved = now;
	}
}

int fifo_seal(struct fifo *f)
{
	struct stat st;
	int rd;

	if (f->spool || f->sealed || f->fd < 0)
		return 0;
	/* A second description of the same pipe, for reading only: opened before the path goes. */
	rd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (rd < 0)
		return -1;
	if (fstat(rd, &st) < 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
		close(rd);
		errno = ESTALE; /* the path names another file now */
		return -1;
	}
	unlink(f->path);
	close(f->fd); /* our write end: EOF comes once the last writer closes */
	f->fd = rd;
	f->sealed = 1;
	return 0;
}

ssize_t fifo_drain(struct fifo *f, void *buf, size_t n, long long deadline)
{
	for (;;) {
		ssize_t r = io_read(f->fd, buf, n);
		long long left;
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};

		if (r >= 0 || errno != EAGAIN || !f->sealed)
			return r;
		left = deadline - io_now_ms();
		if (left <= 0) {
			errno = EAGAIN;
			return -1;
		}
		poll(&pfd, 1, deadline_timeout(deadline, io_now_ms()));
	}
}

/* ---- the exact cut ---- */

#define CUT_PAGE 4096	  /* a filler page: PIPE_BUF, so each write of one is atomic and whole */
#define CUT_ROUNDS 4096	  /* bound on the rounds of the cut (each is a read and a fill) */

/* Write filler pages through w until the pipe takes no more; returns how many went in. */
static int cut_fill(int w, const unsigned char *page)
{
	int pages = 0;

	while (write(w, page, CUT_PAGE) == CUT_PAGE)
		pages++;
	return pages;
}

/* A copy of everything in rd, which stays there (tee(2)), appended to *buf (*n bytes, *cap). */
static int cut_copy(int rd, char **buf, size_t *n, size_t *cap)
{
	int tp[2], size = fcntl(rd, F_GETPIPE_SZ), saved;
	size_t want;
	ssize_t t;

	if (size < 0 || pipe2(tp, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	/* As many slots as the pipe: tee copies slot by slot, and only from the start. */
	if (fcntl(tp[1], F_SETPIPE_SZ, size) < 0 ||
	    (t = tee(rd, tp[1], (size_t)INT_MAX, SPLICE_F_NONBLOCK)) < 0)
		goto fail;
	want = *n + (size_t)t;
	if (mem_reserve(buf, cap, want, 1, 65536) < 0)
		goto fail;
	while (*n < want) {
		ssize_t r = read(tp[0], *buf + *n, want - *n);

		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			goto fail;
		}
		*n += (size_t)r;
	}
	close(tp[0]);
	close(tp[1]);
	return 0;
fail:
	saved = errno;
	close(tp[0]);
	close(tp[1]);
	errno = saved;
	return -1;
}

/* Take our filler pages out: contiguous runs of the page's content. */
static size_t cut_unfill(char *buf, size_t n, const unsigned char *page, long pages)
{
	size_t at = 0;

	while (pages > 0 && n - at >= CUT_PAGE) {
		char *hit = memmem(buf + at, n - at, page, CUT_PAGE);

		if (!hit)
			break;
		at = (size_t)(hit - buf);
		memmove(hit, hit + CUT_PAGE, n - at - CUT_PAGE);
		n -= CUT_PAGE;
		pages--;
	}
	return n;
}

/*
 * The cut itself: fill the pipe with our pages until it takes no more. A
 * writer still writing may have taken the last free slot meanwhile, and
 * while its page there has room its small writes still go in: then a page
 * of the head is read out (kept, in order) and we fill again, until our
 * page is the last one. Then nothing can go in: the copy is everything.
 */
static int cut_rounds(int rd, int w, const unsigned char *page, char **out, size_t *n)
{
	size_t cap = 0, copied;
	long pages = 0;

	for (int round = 0; round < CUT_ROUNDS; round++) {
		ssize_t r;

		pages += cut_fill(w, page);
		copied = *n;
		if (cut_copy(rd, out, n, &cap) < 0)
			return -1;
		if (*n - copied >= CUT_PAGE && !memcmp(*out + *n - CUT_PAGE, page, CUT_PAGE)) {
			*n = cut_unfill(*out, *n, page, pages);
			return 0;
		}
		*n = copied; /* not the last word: read a page of the head and fill again */
		if (mem_reserve(out, &cap, *n + CUT_PAGE, 1, 65536) < 0)
			return -1;
		if ((r = read(rd, *out + *n, CUT_PAGE)) < 0 && errno != EAGAIN)
			return -1;
		*n += r > 0 ? (size_t)r : 0;
	}
	errno = EBUSY; /* a writer faster than every round: cannot be cut exactly */
	return -1;
}

int fifo_cut(struct fifo *f, char **out, size_t *n)
{
	unsigned char page[CUT_PAGE];
	char path[64];
	int w = -1, rc = -1, saved = 0;

	*out = NULL;
	*n = 0;
	if (f->spool || f->fd < 0)
		return 0;
	/* A write end of this very pipe, for the filler: through /proc, the path is gone. */
	snprintf(path, sizeof path, "/proc/self/fd/%d", f->fd);
	if (getrandom(page, sizeof page, 0) == (ssize_t)sizeof page &&
	    (w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0)
		rc = cut_rounds(f->fd, w, page, out, n);
	if (rc < 0)
		saved = errno;
	/* The pipe full to its last page: writers wait, and now get EPIPE. */
	if (w >= 0)
		close(w);
	close(f->fd);
	f->fd = -1;
	if (rc < 0)
		errno = saved;
	return rc;
}

/* The file at fd may take our unread bytes: a regular file of ours, private. */
static const char *unread_unfit(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return "cannot be examined";
	if (!S_ISREG(st.st_mode))
		return "is not a regular file";
	if (st.st_uid != geteuid())
		return "is not ours";
	if (st.st_mode & 077)
		return "is open to others";
	return NULL;
}

/* A fresh file, made here and now (O_EXCL), mode 0600 whatever the umask. */
static int unread_create(const char *name)
{
	int fd = open(name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0)
		fchmod(fd, 0600); /* the umask may have taken our own write permission */
	return fd;
}

/*
 * Open the file unread bytes go to, never blocking and never writing into
 * anything but a private regular file of ours: PATH.unread when it is one
 * (appended) or does not exist (made); else, untouched, a fresh
 * PATH.unread-PID-N, named with the reason in f->unread and f->unread_why.
 */
static int unread_open(struct fifo *f)
{
	size_t len = strlen(f->path) + sizeof FIFO_UNREAD + 32;
	char *name = malloc(len);
	int fd;

	if (!name)
		return -1;
	snprintf(name, len, "%s%s", f->path, FIFO_UNREAD);
	/* O_NONBLOCK: a FIFO planted there must not hold us in open(2). */
	fd = open(name, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		fd = unread_create(name);
	if (fd >= 0 && !(f->unread_why = unread_unfit(fd))) {
		io_set_nonblock(fd, 0);
		f->unread = name;
		return fd;
	}
	if (fd >= 0)
		close(fd);
	else if (errno == ELOOP)
		f->unread_why = "is a symbolic link";
	else if (errno == ENXIO)
		f->unread_why = "is a FIFO";
	else if (errno != EEXIST)
		f->unread_why = strerror(errno);
	else
		f->unread_why = "appeared meanwhile";
	for (int k = 1; k <= 100; k++) {
		snprintf(name, len, "%s%s-%ld-%d", f->path, FIFO_UNREAD, (long)getpid(), k);
		if ((fd = unread_create(name)) >= 0) {
			f->unread = name;
			return fd;
		}
		if (errno != EEXIST)
			break;
	}
	free(name);
	return -1;
}

/* Append to the unread file, opening it on first use. */
static int spill_write(struct fifo *f, int *out, const void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (*out < 0 && (*out = unread_open(f)) < 0)
		return -1;
	return io_write_all(*out, buf, n);
}

/*
 * The pipe's content into the unread file. It is taken whole, in one
 * read(2) of the pipe's size: a reader still reading (a byte at a time)
 * may take bytes between two reads of ours, and what it took would then
 * come before what we saved of the bytes ahead of it.
 */
static long long spill_pipe(struct fifo *f, int *out, long long deadline)
{
	/* A spliced slot may hold more than a page: what is there, if that is more. */
	size_t cap = fifo_capacity(f), now = fifo_pending(f);
	char *buf;
	long long total = 0;
	ssize_t r;

	if (f->spool || f->fd < 0)
		return 0;
	if (now > cap)
		cap = now;
	if (!(buf = malloc(cap)))
		return -1;
	while ((r = fifo_drain(f, buf, cap, deadline)) > 0) {
		if (spill_write(f, out, buf, (size_t)r) < 0) {
			free(buf);
			return -1;
		}
		total += r;
	}
	free(buf);
	return total;
}

long long fifo_spill(struct fifo *f, const struct iovec *iov, size_t n, size_t pipe_at,
		     long long deadline)
{
	long long total = 0, r;
	int out = -1, saved;

	for (size_t i = 0; i <= n; i++) {
		if (i == pipe_at) {
			if ((r = spill_pipe(f, &out, deadline)) < 0)
				goto fail;
			total += r;
		}
		if (i == n)
			break;
		if (spill_write(f, &out, iov[i].iov_base, iov[i].iov_len) < 0)
			goto fail;
		total += (long long)iov[i].iov_len;
	}
	if (out >= 0 && close(out) < 0)
		return -1;
	return total;
fail:
	saved = errno;
	if (out >= 0)
		close(out);
	errno = saved;
	return -1;
}
