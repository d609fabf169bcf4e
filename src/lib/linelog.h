/*
 * linelog: what a child writes to its standard error, read from a pipe
 * line by line for our log (pool -x: a service's stderr). Each line is
 * passed on whole, as one message (never mixed with another writer's,
 * never split), cut at LINELOG_MAX bytes with a note of what was cut;
 * control characters become '?', so that a line cannot forge another.
 * A writer may be hostile: memory is fixed, and at most LINELOG_BURST
 * lines a second are passed on; the rest are read and dropped (reading
 * never waits, and never holds the writer back), counted, and the count
 * is passed on before the next line that is, or at the end.
 */
#ifndef SP_LINELOG_H
#define SP_LINELOG_H

#include <stddef.h>

#define LINELOG_MAX 512	       /* bytes of a line passed on; the rest is cut */
#define LINELOG_BURST 10       /* lines passed on a second */
#define LINELOG_WINDOW_MS 1000
#define LINELOG_READ 65536     /* bytes read at most in one linelog_read */

struct linelog {
	int fd;			 /* the pipe's read end (non-blocking), or -1 */
	char line[LINELOG_MAX];	 /* the line being read */
	size_t len;
	unsigned long long cut;	 /* its bytes beyond LINELOG_MAX */
	long long window;	 /* when the current second began */
	unsigned said;		 /* lines passed on in it */
	unsigned long long held; /* lines not passed on in it */
};

/*
 * Where a line goes: text, without its newline, a C string; or (text
 * NULL) the number of lines dropped, held, since the last one passed on.
 */
typedef void (*linelog_fn)(void *arg, const char *text, unsigned long long held);

/* Read lines from fd (made non-blocking; ours to close). */
void linelog_init(struct linelog *ll, int fd);

/*
 * Read what is there (at most LINELOG_READ bytes) and pass on the whole
 * lines, as the rate allows. Returns 0, or 1 once the pipe is at its end
 * (every writer has closed it, or it failed): then the unfinished line
 * and the count of held lines have been passed on, and fd is closed.
 */
int linelog_read(struct linelog *ll, long long now, linelog_fn say, void *arg);

/*
 * The writer has ended: read what is left, up to the pipe's end or until
 * nothing more is there (a descendant that still holds the pipe cannot
 * keep us), pass it on as linelog_read does, then the unfinished line and
 * the count of held lines; fd is closed.
 */
void linelog_drain(struct linelog *ll, long long now, linelog_fn say, void *arg);

/* Close fd without passing anything on. */
void linelog_close(struct linelog *ll);

#endif
