/*
 * The binding's table of senders: a connection accepted (the guard's
 * on_connect, the cap on handshakes per address, the channel it starts),
 * its first line when the guard wants one, its admission (once mode's
 * binding is then taken), and its removal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binding_int.h"
#include "io.h"

#define FIRST_READ 512 /* bytes read at a time while a first line is awaited */

/*
 * Connections from ip still in their handshake. A quarter of -c is the
 * most one address may hold (as pool -c), so that guessers waiting out
 * their penalty, or silent ones, cannot take every slot.
 */
static size_t hs_from(const struct binding *b, const char *ip)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nconns; i++)
		n += b->conns[i].state == CONN_HS && strcmp(b->conns[i].ip, ip) == 0;
	return n;
}

/* Every sender the listener has, while there is room: each one guarded, handshaking or admitted. */
void conns_accept(struct binding *b, long long now)
{
	while (b->l.n && b->nconns < b->max_conns) {
		char port[NET_PORTLEN];
		const char *why = NULL;
		unsigned long failures;
		struct conn *c;
		int fd = listener_accept(&b->l, now, &failures);

		if (fd < 0) {
			if (failures)
				binding_report(b, BINDING_EV_ERROR, "", NULL, failures, errno);
			return;
		}
		io_set_nonblock(fd, 1);
		c = &b->conns[b->nconns++];
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->state = CONN_FIRST;
		c->connected_at = time(NULL);
		if (net_name(fd, 1, c->ip, port) < 0) {
			strcpy(c->ip, "?");
			strcpy(port, "?");
		}
		snprintf(c->peer, sizeof c->peer, "%s %s", c->ip, port);
		if (b->guard.on_connect)
			why = b->guard.on_connect(b->guard.arg, c->ip);
		if (why) {
			conn_reject(b, b->nconns - 1, why);
			continue;
		}
		/* Not for a guarded binding (a pool's port): it admits one address, which proved the key. */
		if (b->chan && !b->guard.on_connect &&
		    hs_from(b, c->ip) >= (b->max_conns / 4 ? b->max_conns / 4 : 1)) {
			conn_reject(b, b->nconns - 1,
				    "too many handshakes at once from its address");
			continue;
		}
		if (b->chan) {
			/* We answer that we can acknowledge; the sender's payload says whether it wants it. */
			c->state = CONN_HS;
			c->judge_at = -1;
			c->ch = channel_new(fd, 0, b->psk, b->prologue, CHANNEL_ACKS,
					    strlen(CHANNEL_ACKS), now);
			if (!c->ch)
				conn_reject(b, b->nconns - 1, "no memory for its channel");
			else if (b->also)
				channel_also(c->ch, b->also);
			continue;
		}
		if (b->guard.on_line) {
			c->first_by = now + b->guard.wait_ms;
			continue;
		}
		conn_admit(b, b->nconns - 1, NULL, 0);
	}
}

/* The sender passed the guard (or there is none): it is a sender now. */
int conn_admit(struct binding *b, size_t i, const char *rest, size_t n)
{
	int fd = b->conns[i].fd;
	struct conn *c;

	b->conns[i].state = CONN_DATA;
	b->ndata++;
	conn_report(b, BINDING_EV_ACCEPT, &b->conns[i], 0, 0);
	if (b->flags & BINDING_ONCE) {
		b->passed = 1;
		listener_close(&b->l);
		/* The binding is taken: whoever else waits with a first line (or a handshake) goes. */
		for (size_t k = b->nconns; k-- > 0;)
			if (b->conns[k].fd != fd && b->conns[k].state != CONN_DATA)
				conn_reject(b, k, "binding already taken");
	}
	if (!n)
		return 0;
	c = conn_by_fd(b, fd, &i); /* rejects may have moved it */
	if (!c)
		return 0;
	c->bytes += n;
	c->data_at = time(NULL);
	return conn_take(b, c, rest, n);
}

/* A guarded sender's first line, read a little at a time. */
int conn_first_read(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];
	char buf[FIRST_READ], *nl, *rest = NULL;
	ssize_t r = conn_recv(c, buf, sizeof buf);
	const char *why;
	size_t len, head, n;
	int rc;
	struct binding_admit adm = {NULL, 0};

	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return conn_end(b, i, r < 0 ? errno : 0);
	if (lines_hold(&c->lines, buf, (size_t)r) < 0)
		return -1;
	nl = memchr(c->lines.part, '\n', c->lines.len);
	if (!nl) {
		if (c->lines.len > b->guard.line_max) {
			why = b->guard.on_line(b->guard.arg, c->ip, c->lines.part, c->lines.len, 0, &adm);
			conn_reject(b, i, why ? why : "first line too long");
		}
		return 0;
	}
	len = (size_t)(nl - c->lines.part);
	head = len + 1;
	if (len && c->lines.part[len - 1] == '\r')
		len--;
	why = b->guard.on_line(b->guard.arg, c->ip, c->lines.part, len, 1, &adm);
	if (why) {
		conn_reject(b, i, why);
		return 0;
	}
	c->adm = adm;
	/* Bytes after the first line are the sender's first data. */
	n = c->lines.len - head;
	if (n) {
		if (!(rest = malloc(n)))
			return -1;
		memcpy(rest, c->lines.part + head, n);
	}
	lines_clear(&c->lines);
	rc = conn_admit(b, i, rest, n);
	free(rest);
	return rc;
}

/* The conn on fd, or NULL; its index goes to *idx. */
struct conn *conn_by_fd(struct binding *b, int fd, size_t *idx)
{
	for (size_t i = 0; i < b->nconns; i++)
		if (b->conns[i].fd == fd) {
			*idx = i;
			return &b->conns[i];
		}
	return NULL;
}

/* Refuse a sender that is not (yet) admitted: reported, then dropped. */
void conn_reject(struct binding *b, size_t i, const char *why)
{
	binding_report(b, BINDING_EV_REJECT, b->conns[i].peer, why, 0, 0);
	conn_drop(b, i);
}

/* Close conns[i] and forget it: the last conn takes its place, so loops over them go down. */
void conn_drop(struct binding *b, size_t i)
{
	struct conn *c = &b->conns[i];

	if (c->state == CONN_DATA) {
		b->parts -= c->lines.len;
		b->ndata--;
	}
	lines_clear(&c->lines);
	lines_clear(&c->after);
	pipew_disown(&b->w, c->fd);
	channel_free(c->ch);
	c->ch = NULL;
	if (c->fd >= 0)
		close(c->fd);
	b->conns[i] = b->conns[--b->nconns];
}
