#define _GNU_SOURCE /* splice, pipe2 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

ssize_t io_read(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

int io_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				int r = poll(&pfd, 1, IO_STALL_MS);

				if (r == 0) {
					errno = ETIMEDOUT;
					return -1;
				}
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int io_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

int io_set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl);
}

int io_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC);
}

ssize_t io_splice(int in, int out, size_t n, int nonblock)
{
	ssize_t r;

	do
		r = splice(in, NULL, out, NULL, n,
			   SPLICE_F_MOVE | (nonblock ? SPLICE_F_NONBLOCK : 0));
	while (r < 0 && errno == EINTR);
	return r;
}

int io_devnull(int fd, int flags)
{
	int nfd = open("/dev/null", flags | O_CLOEXEC);

	if (nfd < 0)
		return -1;
	if (nfd != fd) {
		if (dup2(nfd, fd) < 0) {
			close(nfd);
			return -1;
		}
		close(nfd);
	} else {
		io_set_cloexec(fd, 0);
	}
	return 0;
}

void io_sanitize_std(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			io_devnull(fd, fd == 0 ? O_RDONLY : O_WRONLY);
}

long long io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One pass over /proc/self/fd: close what is not close-on-exec; how many were closed, or -1. */
static int close_pass(int lowfd)
{
	int fds[256], n = 0, more = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -1;
	/* Collect first: closing while reading the directory would skip entries. */
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), fl;

		if (e->d_name[0] == '.' || fd < lowfd || fd == dirfd(d))
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl < 0 || (fl & FD_CLOEXEC))
			continue;
		if (n == (int)(sizeof fds / sizeof fds[0])) {
			more = 1; /* another pass takes the rest */
			break;
		}
		fds[n++] = fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return more ? n + 1 : n;
}

void io_close_inherited(int lowfd)
{
	long max;

	/* Passes until one finds nothing: bounded, as each closes what it found. */
	for (int pass = 0; pass < 4096; pass++) {
		int r = close_pass(lowfd);

		if (r == 0)
			return;
		if (r < 0)
			break;
	}
	/* No /proc: ask every descriptor the limit allows (bounded). */
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowfd; fd < max; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0 && !(fl & FD_CLOEXEC))
			close(fd);
	}
}

int io_check_dir(const char *path, int mode, int *not_dir)
{
	struct stat st;

	*not_dir = 0;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		*not_dir = 1;
		errno = ENOTDIR;
		return -1;
	}
	return mode ? access(path, mode) : 0;
}

int io_private_file(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 077);
}

int io_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur >= rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl);
}
