/* io: whole reads and writes, descriptor flags, and the splice wrapper. */
#ifndef SP_IO_H
#define SP_IO_H

#include <stddef.h>
#include <sys/types.h>

/* read(2) retrying EINTR. */
ssize_t io_read(int fd, void *buf, size_t n);

/*
 * Write all n bytes, retrying EINTR and short writes, and waiting in poll
 * on EAGAIN, but never longer than IO_STALL_MS without progress (then
 * ETIMEDOUT). Returns 0, or -1 with errno set.
 */
#define IO_STALL_MS 30000
int io_write_all(int fd, const void *buf, size_t n);

int io_set_nonblock(int fd, int on);
int io_set_cloexec(int fd, int on);

/* pipe2(O_CLOEXEC) */
int io_pipe(int fds[2]);

/*
 * Move up to n bytes from in to out without copying through user space,
 * where one of them is a pipe (Linux splice). Returns bytes moved, 0 at
 * EOF, or -1 with errno; ENOSYS/EINVAL mean "fall back to read/write".
 */
ssize_t io_splice(int in, int out, size_t n, int nonblock);

/* Reopen fds 0, 1 and 2 on /dev/null where they are closed. */
void io_sanitize_std(void);

/* Point fd at /dev/null. Returns 0 or -1. */
int io_devnull(int fd, int flags);

/*
 * Close every descriptor from lowfd up that is not close-on-exec, however
 * many there are (close_range(2) cannot spare the close-on-exec ones a
 * tool keeps, such as a socket-activation descriptor).
 */
void io_close_inherited(int lowfd);

/*
 * path must be a directory (and, mode not 0, one access(2) grants mode).
 * Returns 0, or -1 with errno, *not_dir set when path is something else
 * than a directory (errno ENOTDIR), cleared when stat or access failed.
 */
int io_check_dir(const char *path, int mode, int *not_dir);

struct stat;
/*
 * st is a private regular file of our user (no bit for group or others):
 * one a process of ours wrote, not one planted for us to read. 1 or 0.
 */
int io_private_file(const struct stat *st);

/* Raise the soft limit on open descriptors to the hard one. Returns 0, or -1 with errno. */
int io_raise_nofile(void);

/* Duration in milliseconds from CLOCK_MONOTONIC. */
long long io_now_ms(void);

#endif
