/*
 * wire: the pool protocol's transport (socketpool(7)). Version 2 writes
 * its lines in plain text on the socket; version 3 puts them, and every
 * data connection's token and stream, inside the channel (channel.h),
 * whose prologue binds the use (control or data) and the version, so a
 * handshake relayed from another use, or under a rewritten greeting,
 * fails. Every function takes the channel, or NULL for plain text.
 */
#ifndef SP_WIRE_H
#define SP_WIRE_H

#include <stddef.h>
#include <sys/types.h>

#include "noise.h"
#include "proto.h"

struct channel;
struct queue;

#define WIRE_NOISE "noise"		      /* version 3's greeting word, where 2 has its nonce */
#define WIRE_CONTROL "socketpool 3 control\n" /* the control prologue, before the greeting */
#define WIRE_DATA "socketpool 3 data"	      /* the data connections' prologue */
/* Version 3's greeting line, without its LF: the pool's words, and the master's expectation. */
#define WIRE_GREETING "SOCKETPOOL 3 " WIRE_NOISE

/*
 * The channel of a version 3 control connection on fd, under its
 * greeting (WIRE_GREETING): the master is the initiator, the pool the
 * responder. Returns it, or NULL with errno (channel_new_for's).
 */
struct channel *wire_control(int fd, int initiator, const unsigned char psk[NOISE_PSK],
			     long long now);

/*
 * As proto_fill, through ch when it is not NULL: one read of what the
 * channel has. Returns the bytes read, 0 at the peer's end (its END
 * record), or -1 with errno (EAGAIN; EMSGSIZE when in is full without a
 * LF; channel_read's EBADMSG, EPIPE).
 */
ssize_t wire_fill(struct proto_in *in, int fd, struct channel *ch);

/*
 * As queue_write, through ch when it is not NULL: the queue's unsent
 * bytes are sealed and sent without blocking; *full is set when some
 * wait (in the channel or the queue) for POLLOUT. Returns the bytes
 * taken, or -1 with errno.
 */
long long wire_write(struct queue *q, int fd, struct channel *ch, unsigned flags, int *full);

/*
 * All n bytes out, through ch when it is not NULL, blocking (polling) at
 * most IO_STALL_MS without progress. Returns 0, or -1 with errno.
 */
int wire_write_all(int fd, struct channel *ch, const void *buf, size_t n);

#endif
