/*
 * lines: line assembly for a buffer with several senders. What a sender
 * sends goes into the buffer in whole lines, so that lines of concurrent
 * senders never mix: each chunk read is cut after its last newline, the
 * rest waits for the next chunk. A line longer than max goes in by whole
 * pieces of max bytes.
 */
#ifndef SP_LINES_H
#define SP_LINES_H

#include <stddef.h>

/* A sender's unfinished line. */
struct lines {
	char *part;
	size_t len, cap;
};

/* Where whole units go, in order; returns 0, or -1 with errno to stop. */
typedef int (*lines_emit_fn)(void *arg, const char *p, size_t n);

/*
 * Take n bytes: the unfinished line and everything up to the last newline
 * are emitted (as at most two units, in order), the rest is kept; then a
 * kept part of max bytes or more is emitted in pieces of max. Returns 0,
 * or -1 with errno (ENOMEM, or what emit returned).
 */
int lines_feed(struct lines *l, const char *p, size_t n, size_t max, lines_emit_fn emit,
	       void *arg);

/*
 * Emit the unfinished line as one unit (the sender has ended); with
 * newline, a '\n' ends it, so that the next sender's bytes start a line
 * of their own. Returns 0, or -1 with errno.
 */
int lines_flush(struct lines *l, int newline, lines_emit_fn emit, void *arg);

/* Keep n bytes as they are (a first line still being read). Returns 0 or -1 (ENOMEM). */
int lines_hold(struct lines *l, const char *p, size_t n);

/* Forget the unfinished line; free its memory. */
void lines_clear(struct lines *l);

#endif
