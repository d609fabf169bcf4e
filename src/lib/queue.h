/*
 * queue: the output queue every tool writes through. Bytes are appended
 * at the tail and leave at the head; between the two, a queue can retain
 * bytes already sent until the receiver has acknowledged them, so that a
 * broken connection loses nothing it cannot name:
 *
 *	head                                                      tail
 *	|-- sent, kept until acknowledged --|-- not sent yet --|-- room --|
 *	 <------------- q->sent ----------->
 *	 <------------------------- q->len ------------------->
 *
 * A queue that does not retain drops bytes as they are written. A queue
 * is written one way or the other, never both. Memory
 * grows by mem_reserve's doubling rule and is given back when the queue
 * is empty and idle (queue_release).
 */
#ifndef SP_QUEUE_H
#define SP_QUEUE_H

#include <stddef.h>

struct queue {
	char *buf;
	size_t off;  /* where the head is in buf */
	size_t len;  /* bytes held: sent-and-retained plus unsent */
	size_t sent; /* of those, sent and retained */
	size_t cap;
};

/* Flags of queue_write. */
#define QUEUE_SOCKET 1u /* fd is a socket: send(2) with MSG_NOSIGNAL */
#define QUEUE_RETAIN 2u /* keep what was written until queue_ack */

/* Append n bytes. Returns 0, or -1 with errno ENOMEM (nothing appended). */
int queue_append(struct queue *q, const void *p, size_t n);

/*
 * Room for up to n more bytes at the tail, to read into directly; commit
 * what was put there with queue_commit. Returns the pointer, or NULL with
 * errno ENOMEM.
 */
char *queue_tail(struct queue *q, size_t n);
void queue_commit(struct queue *q, size_t n);

/* The bytes not sent yet: a pointer to them, their count in *n. */
const char *queue_unsent(const struct queue *q, size_t *n);

/* Bytes not sent yet. */
size_t queue_pending(const struct queue *q);

/* Mark the next n unsent bytes as sent (they stay until acknowledged). */
void queue_mark_sent(struct queue *q, size_t n);

/* The receiver acknowledged n more bytes (at most q->sent): drop them. */
void queue_ack(struct queue *q, size_t n);

/* Drop the n oldest bytes, sent or not (a writer that does not retain). */
void queue_consume(struct queue *q, size_t n);

/* Treat every retained byte as unsent again: after a reconnect, they go first. */
void queue_rewind(struct queue *q);

/*
 * Write unsent bytes to fd without blocking (flags: QUEUE_SOCKET,
 * QUEUE_RETAIN), until done or fd is full: *full is set when fd took less
 * than offered (wait for POLLOUT), cleared otherwise. Returns the bytes
 * written, or -1 with errno (EPIPE, ECONNRESET, ...) when fd failed.
 */
long long queue_write(struct queue *q, int fd, unsigned flags, int *full);

/*
 * Bring what q retains in line with what the receiver's TCP has
 * acknowledged on socket fd, where sent bytes were written to fd on this
 * connection, all through q with QUEUE_RETAIN. Linux counts acknowledged
 * bytes in TCP_INFO (tcpi_bytes_acked, the SYN included, the FIN not);
 * older kernels' SIOCOUTQ is used instead. Returns the bytes still
 * unacknowledged, or -1 with errno.
 */
long long queue_ack_tcp(struct queue *q, int fd, unsigned long long sent);

/* Of sent bytes written to socket fd, how many its peer's TCP acknowledged; -1 with errno. */
long long queue_tcp_acked(int fd, unsigned long long sent);

/* Empty and more than keep bytes allocated: give the memory back. */
void queue_release(struct queue *q, size_t keep);

void queue_free(struct queue *q);

#endif
