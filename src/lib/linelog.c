#include "linelog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#define CHUNK 16384			/* one read */
#define DRAIN_MAX (16 * LINELOG_READ)	/* what a pipe holds, and more */

void linelog_init(struct linelog *ll, int fd)
{
	memset(ll, 0, sizeof *ll);
	ll->fd = fd;
	ll->window = -1;
	if (fd >= 0)
		io_set_nonblock(fd, 1);
}

/* The lines dropped since the last one passed on, if any. */
static void tell_held(struct linelog *ll, linelog_fn say, void *arg)
{
	unsigned long long held = ll->held;

	ll->held = 0;
	if (held && say)
		say(arg, NULL, held);
}

/* A line is complete: passed on (whole, cut, no control character), or held. */
static void line_end(struct linelog *ll, long long now, linelog_fn say, void *arg)
{
	char text[LINELOG_MAX + 48];
	size_t n = ll->len;

	if (ll->window < 0 || now - ll->window >= LINELOG_WINDOW_MS) {
		ll->window = now;
		ll->said = 0;
	}
	if (ll->said >= LINELOG_BURST) {
		ll->held++;
	} else {
		ll->said++;
		tell_held(ll, say, arg);
		if (n && ll->line[n - 1] == '\r' && !ll->cut)
			n--;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)ll->line[i];

			/* No escape sequence, no NUL, no line of its own forged with '\r'. */
			text[i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
		}
		text[n] = '\0';
		if (ll->cut)
			snprintf(text + n, sizeof text - n, " [cut: %llu more bytes]", ll->cut);
		if (say)
			say(arg, text, 0);
	}
	ll->len = 0;
	ll->cut = 0;
}

/* n bytes read: lines completed are passed on; a line's bytes beyond LINELOG_MAX are counted. */
static void take(struct linelog *ll, const char *p, size_t n, long long now, linelog_fn say,
		 void *arg)
{
	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl - p) : n;
		size_t room = LINELOG_MAX - ll->len, copy = k < room ? k : room;

		memcpy(ll->line + ll->len, p, copy);
		ll->len += copy;
		ll->cut += k - copy;
		if (!nl)
			return;
		line_end(ll, now, say, arg);
		p += k + 1;
		n -= k + 1;
	}
}

/* The end: the unfinished line, the count, the pipe closed. */
static void finish(struct linelog *ll, long long now, linelog_fn say, void *arg)
{
	if (ll->len || ll->cut)
		line_end(ll, now, say, arg);
	tell_held(ll, say, arg);
	linelog_close(ll);
}

/* Read up to max bytes: 1 at the pipe's end (finished), 0 when nothing more is there now. */
static int read_some(struct linelog *ll, size_t max, long long now, linelog_fn say, void *arg)
{
	char buf[CHUNK];
	size_t got = 0;

	if (ll->fd < 0)
		return 1;
	while (got < max) {
		ssize_t r = read(ll->fd, buf, sizeof buf);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			finish(ll, now, say, arg);
			return 1;
		}
		take(ll, buf, (size_t)r, now, say, arg);
		got += (size_t)r;
	}
	return 0;
}

int linelog_read(struct linelog *ll, long long now, linelog_fn say, void *arg)
{
	return read_some(ll, LINELOG_READ, now, say, arg);
}

void linelog_drain(struct linelog *ll, long long now, linelog_fn say, void *arg)
{
	if (read_some(ll, DRAIN_MAX, now, say, arg) == 0)
		finish(ll, now, say, arg);
}

void linelog_close(struct linelog *ll)
{
	if (ll->fd >= 0)
		close(ll->fd);
	ll->fd = -1;
	ll->len = 0;
	ll->cut = 0;
}
