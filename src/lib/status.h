/*
 * status: what a program holds now, in a file the shell can read, kept
 * current. One line a thing (a buffer, a stream), `key=value` fields, so
 * that `cat` and `awk` need nothing else:
 *
 *	buffer=in port=4000 senders=1 unread=0
 *	stream=in peer=10.0.0.7:51512 bytes=4096 since=2026-12-06T13:45:02Z last=...
 *
 * and, when asked (-M FILE), the same figures in the text format of
 * node_exporter's textfile collector (labels from the text fields, one
 * sample for each number or time):
 *
 *	socketpool_stream_bytes{program="bind-input",stream="in",peer="..."} 4096
 *
 * Both are written atomically (a temporary file renamed over the old
 * one), at most once a second, and only when something changed: an idle
 * program is not woken for them (unless a figure changes without it:
 * bytes waiting for a reader).
 *
 *	status_open(&sf, path, prom, "bind-input");
 *	each round: at = status_tick(&sf, now, fill, arg);  (poll no longer than at)
 *	fill(t, arg): status_line(t, "buffer", id); status_num(t, "unread", n); ...
 *	status_close(&sf);  (removes both files)
 */
#ifndef SP_STATUS_H
#define SP_STATUS_H

#include <stddef.h>

#define STATUS_EVERY_MS 1000 /* at most one rewrite a second */

/* The figures of one round, as text and as samples. */
struct status_text {
	char *text, *prom; /* built: key=value lines; node_exporter samples */
	size_t tlen, tcap, plen, pcap;
	char labels[512]; /* the current line's labels, for its samples */
	size_t llen;
	const char *kind;    /* the current line's first key */
	const char *program; /* the program's name, a label of every sample */
	int err;	     /* memory ran out: the round is not written */
	int moving;	     /* a figure may change with no event of ours (a reader
				reads): look again in a second */
};

struct status_file {
	char *path, *tmp;     /* the status file, and the name it is made under */
	char *prom, *promtmp; /* -M: node_exporter's file, or NULL */
	const char *program;
	char *last; /* the text last written */
	size_t lastlen;
	long long next_at; /* no rewrite before this io_now_ms() time */
	int pending;	   /* a round was skipped for the rate: one is due at next_at */
	int told;	   /* a failed write was told: no later one is */
};

/*
 * Keep path (and prom, NULL for none) for program. Nothing is written
 * yet. Returns 0, or -1 with errno (ENOMEM).
 */
int status_open(struct status_file *sf, const char *path, const char *prom, const char *program);

/*
 * A round: when due, fill builds the figures and the files are rewritten
 * if they changed. Returns the io_now_ms() time of the next round due
 * (a skipped one), or -1 when none is. A failed write is not retried
 * before the next round; *err (may be NULL) gets the errno of the first
 * failure only (one log line for a file that cannot be written), else 0.
 */
long long status_tick(struct status_file *sf, long long now,
		      void (*fill)(struct status_text *t, void *arg), void *arg, int *err);

/* Start a line: its first field names what it is (buffer=NAME, stream=NAME). */
void status_line(struct status_text *t, const char *kind, const char *name);

/* A field that names or describes (a label in the samples). */
void status_label(struct status_text *t, const char *key, const char *value);

/* A number (a sample of its own). */
void status_num(struct status_text *t, const char *key, unsigned long long n);

/* A time, seconds since the epoch: RFC 3339 UTC in the text, the number in the samples. */
void status_time(struct status_text *t, const char *key, long long epoch_s);

/*
 * status_open for a binding: its status lives beside its buffer, a
 * dotfile that no buffer name can be (".NAME.status" for "NAME").
 */
int status_open_beside(struct status_file *sf, const char *buffer, const char *prom,
		       const char *program);

/*
 * status_open for a program serving ID (the pool: its control port): its
 * status lives in DIR (NULL: the current directory), a dotfile no buffer
 * name can be, "DIR/.PROGRAM-ID.status".
 */
int status_open_in(struct status_file *sf, const char *dir, const char *id, const char *prom,
		   const char *program);

/* Remove the files and forget them. */
void status_close(struct status_file *sf);

#endif
