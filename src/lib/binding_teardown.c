/*
 * The binding's teardown (binding_close): stop listening, let each sender
 * finish what its TCP already acknowledged, then save every byte accepted
 * but not yet read (the pipe, the queue, senders' unfinished lines) to
 * PATH.unread, or append it to a spool file, and report what was taken of
 * each sender still connected.
 */
#define _GNU_SOURCE /* memrchr */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "binding_int.h"
#include "io.h"
#include "mem.h"

/*
 * Teardown, a sender told our last count and our END: what it sends after
 * is its own (it keeps what we did not count), unless its END follows:
 * then it gave all of it up (its own teardown handed it over), and it is
 * ours to save. Returns 1 at the connection's end.
 */
static int conn_after(struct binding *b, struct conn *c)
{
	char buf[16384];

	channel_shutdown(c->ch); /* what of our END the socket did not take yet */
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r = channel_read(c->ch, buf, sizeof buf);

		if (r > 0 && lines_hold(&c->after, buf, (size_t)r) == 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (r == 0 && lines_hold(&c->lines, c->after.part, c->after.len) == 0) {
			c->bytes += c->after.len;
			b->parts += c->after.len;
		}
		lines_clear(&c->after);
		chan_drain(c);
		return 1;
	}
	return 0;
}

/* Take what a sender's socket holds right now; 1 when it is at its end. */
static int conn_snatch(struct binding *b, struct conn *c)
{
	char buf[16384];

	if (c->closing)
		return conn_after(b, c);
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t r = stream_conn_recv(c->fd, c->ch, buf, sizeof buf);

		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (r < 0 || lines_hold(&c->lines, buf, (size_t)r) < 0)
			return 0;
		c->bytes += (unsigned long long)r;
		b->parts += (size_t)r;
	}
	return 0;
}
/*
 * Start a sender's end at teardown: 1 when it is to be waited for (read
 * until it closes), 0 when it never became a sender.
 */
static int sender_seal(struct binding *b, struct conn *c)
{
	if (c->state != CONN_DATA)
		return 0;
	if (c->ch && c->acks) {
		/*
		 * It keeps what we never acknowledged: take what its TCP
		 * gave us already (a sender that gave up trusts our TCP
		 * for that much, and is gone), tell it how far we took,
		 * and end; what it sends after that is its own, and
		 * dropped until it closes (see chan_drain).
		 */
		for (int rounds = 0; rounds < 64 && !conn_snatch(b, c) &&
				     (conn_pending(c) > 0 || channel_readable(c->ch));
		     rounds++)
			;
		chan_close(c, 0);
		c->closing = 1;
		return 1;
	}
	stream_conn_shutdown(c->fd, c->ch); /* best effort: with a channel, the END says the same */
	return 1;
}

/*
 * At teardown, what each sender's TCP acknowledged must be read, or it is
 * lost in a reset: our FIN says we take no more (a master stops sending
 * and closes), and we read until every sender has closed, or the time is
 * up. What arrives after that was never acknowledged as read by us.
 */
static void senders_quiesce(struct binding *b, long long deadline)
{
	struct pollfd *pfd = calloc(b->nconns ? b->nconns : 1, sizeof *pfd);
	int *done = calloc(b->nconns ? b->nconns : 1, sizeof *done);
	size_t left = 0;

	if (!done || !pfd) {
		free(pfd);
		free(done);
		return;
	}
	for (size_t i = 0; i < b->nconns; i++) {
		if (sender_seal(b, &b->conns[i]))
			left++;
		else
			done[i] = 1;
	}
	while (left && io_now_ms() < deadline) {
		size_t n = 0;

		for (size_t i = 0; i < b->nconns; i++)
			if (!done[i])
				pfd[n++] = (struct pollfd){.fd = b->conns[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n, (int)(deadline - io_now_ms())) <= 0)
			break;
		for (size_t i = 0; i < b->nconns; i++)
			if (!done[i] && conn_snatch(b, &b->conns[i])) {
				done[i] = 1;
				left--;
			}
	}
	/*
	 * The time is up: what each socket holds now, to its last byte, for
	 * the close that follows resets it, and a plain sender trusts our TCP
	 * for what it acknowledged (bounded: 64 rounds of 64 at most). The
	 * smallest receive buffer first: the kernel then takes (and
	 * acknowledges) one more segment at most while we read, not a window
	 * of them: a sender that goes on loses at most that one (measured:
	 * 64 KiB on loopback, 300-800 KiB before). -k counts make it exact.
	 */
	for (size_t i = 0; i < b->nconns; i++)
		if (!done[i])
			setsockopt(b->conns[i].fd, SOL_SOCKET, SO_RCVBUF, &(int){1}, sizeof(int));
	for (size_t i = 0; i < b->nconns; i++)
		for (int rounds = 0; !done[i] && rounds < 64 && !conn_snatch(b, &b->conns[i]) &&
				     conn_pending(&b->conns[i]) > 0;
		     rounds++)
			;
	free(pfd);
	free(done);
}

/*
 * At teardown, the part of a sender's unfinished line that goes into the
 * spill: all of it, or, for a resumable stream in line mode, what ends in
 * its last newline (the rest comes again from its sender).
 */
static size_t spill_part(const struct binding *b, const struct conn *c)
{
	const char *nl;

	if (!c->adm.resume || b->single || !c->lines.len)
		return c->lines.len;
	nl = memrchr(c->lines.part, '\n', c->lines.len);
	return nl ? (size_t)(nl + 1 - c->lines.part) : 0;
}

/*
 * What was accepted but never reached the pipe, in order, into iov (room
 * for nconns + 1): the queue, then each sender's unfinished line (its
 * spill_part). Returns how many entries.
 */
static size_t spill_gather(const struct binding *b, struct iovec *iov)
{
	size_t n = 0, qn;
	const char *q = queue_unsent(&b->w.q, &qn);

	if (qn)
		iov[n++] = (struct iovec){(void *)q, qn};
	for (size_t i = 0; i < b->nconns; i++) {
		const struct conn *c = &b->conns[i];
		size_t part;

		if (c->state != CONN_DATA)
			continue;
		part = spill_part(b, c);
		if (part)
			iov[n++] = (struct iovec){c->lines.part, part};
	}
	return n;
}

/*
 * Put what spill_gather found (iov NULL: no memory to gather it) where it
 * belongs: at a spool file's end, or with save into PATH.unread after
 * what the pipe still holds. Returns the bytes PATH.unread got (0: no
 * file), or -1; a failure's errno goes to *err (the first one, for a
 * spool).
 */
static long long spill_save(struct binding *b, const struct iovec *iov, size_t n, int save,
			    int *err)
{
	long long saved = 0;

	if (b->fifo.path && b->fifo.spool) {
		/* Accepted bytes belong in the spool file, which is kept. */
		for (size_t i = 0; i < n; i++)
			if (io_write_all(b->fifo.fd, iov[i].iov_base, iov[i].iov_len) < 0 && !*err)
				*err = errno;
	} else if (b->fifo.path && save) {
		/*
		 * Sealed first: no new writer, and our own write end closed, so the
		 * pipe is read to its end: nothing another writer was told it wrote
		 * is lost. Before it, a reader at work takes what the pipe holds.
		 */
		fifo_let_reader_finish(&b->fifo, io_now_ms() + BINDING_SEAL_MS);
		fifo_seal(&b->fifo);
		saved = iov ? fifo_spill(&b->fifo, iov, n, 0, io_now_ms() + BINDING_SEAL_MS) : -1;
		if (saved < 0)
			*err = errno ? errno : ENOMEM;
	}
	return saved;
}

/* Senders still connected: what was taken of each (a resumable one resumes from there). */
static void report_taken(struct binding *b, int save)
{
	for (size_t i = 0; i < b->nconns; i++) {
		struct conn *c = &b->conns[i];

		if (c->state == CONN_DATA)
			conn_report(b, BINDING_EV_CLOSE, c, ECONNABORTED,
				    c->bytes - (c->lines.len - (save ? spill_part(b, c) : c->lines.len)));
	}
}

/* Close every descriptor, free every allocation, and wipe the key. */
static void release(struct binding *b)
{
	while (b->nconns)
		conn_drop(b, 0);
	if (b->ino >= 0)
		close(b->ino);
	fifo_close(&b->fifo);
	pipew_free(&b->w);
	free(b->conns);
	free(b->pen);
	mem_wipe(b->psk, sizeof b->psk);
	free(b);
}

long long binding_close(struct binding *b, int save)
{
	struct iovec *iov;
	size_t n = 0;
	long long saved;
	int err = 0;

	if (!b)
		return 0;
	listener_close(&b->l);
	if (save)
		senders_quiesce(b, io_now_ms() + BINDING_SEAL_MS);
	iov = calloc(b->nconns + 1, sizeof *iov);
	if (iov)
		n = spill_gather(b, iov);
	saved = spill_save(b, iov, n, save, &err);
	free(iov);
	if (saved > 0 || (err && !b->fifo.spool))
		binding_report(b, BINDING_EV_SAVED, b->fifo.unread_why ? b->fifo.unread_why : "",
			       b->fifo.unread ? b->fifo.unread : "",
			       saved > 0 ? (unsigned long long)saved : 0, err);
	report_taken(b, save);
	release(b);
	if (err) {
		errno = err;
		return -1;
	}
	return saved;
}
