/*
 * fifo: the buffers that bindings expose to the shell. A buffer is a FIFO
 * (or, for spooling, a regular file) named by an ID.
 *
 * Liveness: the owner holds an open-file-description write lock
 * (F_OFD_SETLK) on byte 0 of the buffer's own inode, through the
 * descriptor it keeps open. The kernel drops it when the owner dies, even
 * by SIGKILL, so a FIFO without it is stale and may be reclaimed. It
 * conflicts within one process too, so one process (pool) can never bind
 * a buffer twice. A classic POSIX lock on byte 1 is there only so that
 * F_GETLK can name the owner's PID; POSIX locks end when the process
 * closes any descriptor of the inode, which costs only the name.
 */
#ifndef SP_FIFO_H
#define SP_FIFO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "name.h"

#define FIFO_UNREAD NAME_RESERVED /* suffix of the file unread bytes are saved to */

/* The rule for an ID, as the tools say it. */
#define FIFO_ID_RULE                                                                             \
	"1-64 characters of A-Za-z0-9._- not starting with '.' or '-' nor holding .unread, " \
	"or a path"

enum fifo_kind {
	FIFO_ID_NAME = 1, /* a plain name, created in $BIND_DIR */
	FIFO_ID_PATH = 2  /* contains '/': the buffer's own path */
};

struct fifo {
	char *path;  /* the buffer's path (owned) */
	int fd;	     /* FIFO: O_RDWR, non-blocking (sealed: O_RDONLY); spool: O_WRONLY|O_APPEND */
	int spool;   /* a regular file that is kept */
	int sealed;  /* fifo_seal: the path is gone and fd only reads */
	dev_t dev;   /* the inode we created, so removal never hits a successor */
	ino_t ino;
	char *unread;		/* fifo_spill: the file it saved to (owned), or NULL */
	const char *unread_why; /* why that is not PATH.unread, or NULL */
};

/*
 * Classify an ID: FIFO_ID_NAME for a plain name (name_ok); FIFO_ID_PATH
 * for an ID containing '/' whose last component is not empty, "." or
 * "..", and with no control character. Returns -1 with errno EINVAL for anything else.
 */
int fifo_check_id(const char *id);

/*
 * dir takes FIFOs from us: one is made there (a dot name no buffer can
 * have) and removed. Returns 0, or -1 with errno (mkfifo's).
 */
int fifo_probe_dir(const char *dir);

/*
 * The buffer path for id: dir/id for a plain name (dir NULL or "": id as
 * is, in the current directory), id itself for a path. Returns a malloc'd
 * string, or NULL with errno (EINVAL: bad id; ENAMETOOLONG).
 */
char *fifo_resolve(const char *id, const char *dir);

/*
 * Create the buffer at path and take ownership (the lock), mode 0600
 * whatever the umask. A FIFO left by a dead binding of ours (our uid,
 * mode 0600, unlocked) is taken over; any other FIFO is never touched.
 * With spool, a regular file is opened for append (created 0600 if
 * missing) instead. Returns 0, or -1 with errno:
 *   EBUSY   a live owner holds it (this process too); *holder gets its
 *           PID, or 0 when it cannot be named
 *   EEXIST  the path exists and is not a FIFO (spool: not a regular
 *           file); it was not touched
 *   EPERM   a FIFO that is not ours (another uid, or not mode 0600); untouched
 *   other   from mkfifo/open (ENOENT: the directory does not exist)
 */
int fifo_create(struct fifo *f, const char *path, int spool, pid_t *holder);

/*
 * The reason fifo_create failed with err, as the tools say it after the
 * path: "in use by PID N", "in use by another binding", "exists and is
 * not a FIFO; not touching it" (or "... a regular file ..." for a spool),
 * else strerror. Uses buf (len bytes) when it needs to; returns the text.
 */
const char *fifo_why(int err, int spool, pid_t holder, char *buf, size_t len);

/*
 * The PID of the live owner of the buffer at path: >0, 0 when nobody
 * holds it (or it does not exist), -1 with errno when it cannot be told
 * (EBUSY: it is held, but the owner cannot be named, as when it is this
 * process).
 */
pid_t fifo_owner(const char *path);

/* Ask for a pipe of size bytes (F_SETPIPE_SZ); 0 or -1 with errno. */
int fifo_set_size(struct fifo *f, size_t size);

/* The pipe's nominal size (F_GETPIPE_SZ); 64 KiB when it cannot be told. */
size_t fifo_capacity(const struct fifo *f);

/* Bytes sitting in the FIFO's pipe now (0 for a spool or on error). */
size_t fifo_pending(const struct fifo *f);

/*
 * At teardown, before the spill: a reader still taking the pipe's bytes
 * gets them, so that the spill does not take the rest of a line it is in
 * the middle of (a shell's read takes a byte at a time, and drops a part
 * line at end of file). Returns once the pipe is empty, or its reader has
 * taken nothing for FIFO_READER_IDLE_MS, or at the deadline (io_now_ms).
 */
#define FIFO_READER_IDLE_MS 100
void fifo_let_reader_finish(const struct fifo *f, long long deadline);

/*
 * The first step of a teardown that loses nothing a writer was told was
 * written: the path is removed (if it still names our FIFO), so no new
 * writer can open it, and our own write end is closed, so that reading
 * reaches end of file once every writer has closed. fd then only reads
 * (non-blocking). Returns 0, or -1 with errno (the FIFO is left as it was).
 */
int fifo_seal(struct fifo *f);

/*
 * Read what the sealed FIFO holds into buf (n bytes at most), waiting up
 * to the deadline (io_now_ms time) for writers still writing. Returns the
 * bytes read, 0 once every writer has closed and the pipe is empty, or -1
 * with errno EAGAIN when the deadline passed with writers still open.
 */
ssize_t fifo_drain(struct fifo *f, void *buf, size_t n, long long deadline);

/*
 * End the sealed FIFO's writers exactly: every byte their write()s
 * accepted that was not read yet comes out in *out (malloc'd, *n bytes,
 * NULL when none), and no write is accepted after this: a writer still
 * writing gets EPIPE. (Closing the read end while bytes wait would lose
 * them, and a write between our last read and the close would be lost
 * too: so the pipe is first made full, with pages of our own whose
 * content no writer can have, so that no writer can add a byte; it is
 * then copied without taking anything out (tee(2)), closed, and our pages
 * are taken out of the copy.) The FIFO's descriptor is closed. Returns 0,
 * or -1 with errno: what was read out by then is in *out all the same
 * (free it), what the pipe still held is lost.
 */
int fifo_cut(struct fifo *f, char **out, size_t *n);

/*
 * Save what nobody read to path.unread (appended, created 0600 only when
 * there is something to save), which must be a regular file of ours with
 * no group or other permissions; anything else there (a FIFO, a link,
 * another user's file) is left alone and a fresh path.unread-PID-N is
 * made instead (f->unread names the file used, f->unread_why the reason).
 * The open never blocks. Saved are: the iov bytes with the pipe's pending
 * content inserted before iov[pipe_at] (pipe_at == n: after all of them).
 * Empties the pipe; a sealed one is read until its writers have closed,
 * or the deadline (io_now_ms time) has passed. Returns the number of bytes
 * saved, or -1 with errno (some bytes may have been saved).
 */
long long fifo_spill(struct fifo *f, const struct iovec *iov, size_t n, size_t pipe_at,
		     long long deadline);

/*
 * Close the buffer; remove the FIFO if the path still names the inode we
 * created (a spool file is kept). Frees path. Safe to call twice.
 */
void fifo_close(struct fifo *f);

#endif
