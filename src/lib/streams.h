/*
 * streams: how much the pool has taken of each master's stream into one
 * name's buffer, so that a master that reconnects (master -r) resumes
 * exactly where the pool's side stopped: nothing lost, nothing twice.
 * A stream is a daemon run, named by the master with 32 hex digits. The
 * table lives while the pool runs; at teardown the streams that did not
 * end are written next to the buffer (NAME.unread.streams), and the next
 * pool takes them back. At most STREAMS_MAX streams per name are kept:
 * the one idle longest goes first.
 */
#ifndef SP_STREAMS_H
#define SP_STREAMS_H

#define STREAMS_MAX 1024
#define STREAMS_SUFFIX ".unread.streams"

struct streams;

/* A new, empty table, or NULL (ENOMEM). */
struct streams *streams_new(void);

/* What was taken of stream id: a count, or -1 when the table does not know it. */
long long streams_get(const struct streams *st, const char *id);

/*
 * Stream id now stands at taken bytes; done: it ended, as its sender
 * closed cleanly (it is then forgotten). Returns 0 or -1 (ENOMEM).
 */
int streams_set(struct streams *st, const char *id, unsigned long long taken, int done,
		long long now);

/* Streams that did not end. */
unsigned streams_open(const struct streams *st);

/*
 * Write the open streams to path (a fresh private file, renamed into
 * place), or remove path when there are none. Returns 0 or -1 with errno.
 */
int streams_save(const struct streams *st, const char *path);

/*
 * Take back what a previous pool saved at path, when it is a private
 * regular file of ours, and remove it. Returns the streams read (0 when
 * there is no such file), or -1 with errno.
 */
int streams_load(struct streams *st, const char *path, long long now);

void streams_free(struct streams *st);

#endif
