/*
 * channel: the encrypted stream of bind-input, bind-output and socket -k,
 * and of the pool protocol (wire.h), over one non-blocking connected
 * socket, for poll loops. The handshake is noise.h's NNpsk0 under a
 * prologue that names the tool and the use; each handshake message goes
 * after a 2-byte big-endian length (as tests/node/peer.js frames them),
 * then records (record.h) both ways.
 *
 *	c = channel_new(fd, initiator, psk, prologue, payload, n, now);
 *	while ((r = channel_handshake(c, now)) == 0)
 *		poll fd for channel_events(c), at most channel_timeout(c, now)
 *	r == 1: channel_read / channel_write / channel_shutdown, polling
 *	for channel_events(c) | what the caller wants;
 *	r == -1: errno says why (channel_strerror)
 *
 * The initiator is the connecting side. Its first message may carry a
 * short payload, and the responder's answer one too: the peers' way of
 * agreeing on extras (bind-output asks bind-input for acknowledgements).
 *
 * The channel owns no descriptor: the caller closes fd after
 * channel_free. Every secret is wiped on free and on failure.
 */
#ifndef SP_CHANNEL_H
#define SP_CHANNEL_H

#include <stddef.h>
#include <sys/types.h>

#include "noise.h"

/*
 * Key confirmation. NNpsk0's first message can be replayed by anyone who
 * recorded one, so the responder cannot know the initiator holds the key
 * from it: only the initiator's first record, sealed under keys that mix
 * in the responder's fresh ephemeral, proves it. The initiator sends one
 * at once (an empty record, before whatever it writes), and a responder's
 * channel_handshake returns 1 only once that record has authenticated:
 * until then the peer is "proving the key", under the handshake's
 * deadline. What the initiator learns from the responder's answer is
 * proof enough for it (that answer depends on its own fresh ephemeral).
 *
 * What both sides hash in: a peer for another tool or use fails the
 * handshake, so a first message recorded for one starts nothing with
 * another. v2: with key confirmation (a v1 peer fails the handshake).
 */
#define CHANNEL_SOCKET "socketpool socket v2"	/* socket -k: its client, to its server */
#define CHANNEL_BIND "socketpool bind-output v2" /* bind-output -k, to bind-input -k */
#define CHANNEL_HS_MS 10000   /* the handshake's deadline: a silent peer holds nothing longer */
#define CHANNEL_PAYLOAD_MAX 64 /* a handshake payload's longest */
/*
 * The handshake payload of a sender that wants its bytes acknowledged
 * (bind-output), and of a receiver that does so (bind-input): then the
 * receiver's stream is 8-byte big-endian counts of the sender's bytes it
 * has taken. The receiver's TCP acknowledges records before it has opened
 * them: only its own word proves a byte was delivered.
 */
#define CHANNEL_ACKS "acks v1"

struct channel;

/*
 * A channel on fd as initiator (1) or responder (0), with the 32-byte psk
 * (noise_psk_from_key; copied), the prologue (a NUL-terminated text both
 * sides hash in: CHANNEL_SOCKET, CHANNEL_BIND, wire.h's) and a handshake
 * payload (n bytes, at most CHANNEL_PAYLOAD_MAX) for the peer; now is
 * io_now_ms(), for the deadline. Returns the channel, or NULL with errno
 * (ENOMEM, EINVAL, or getrandom's).
 */
struct channel *channel_new(int fd, int initiator, const unsigned char psk[NOISE_PSK],
			    const char *prologue, const void *payload, size_t n, long long now);

/*
 * A responder (before the handshake began) that also takes an initiator
 * under this other prologue (static text): bind-input takes socket's
 * senders as well as bind-output's, while a socket server takes only
 * socket's. Returns 0, or -1 with errno EINVAL for an initiator or later.
 */
int channel_also(struct channel *c, const char *prologue);

/*
 * Make progress with the handshake, never blocking. Returns 1 once it is
 * done (and on every call after): for a responder, once the initiator's
 * first record has authenticated (key confirmation, above); 0 while it
 * waits for the peer (poll for channel_events), or -1 with errno: EBADMSG
 * when the peer does not hold the key (or speaks another protocol, or
 * replays a recorded handshake and then sends a record), ECONNRESET when
 * it closed first (what a responder does to a wrong key, and a replayer
 * that gives up), ETIMEDOUT after CHANNEL_HS_MS, EPROTO when a message is
 * malformed, or the socket's error.
 */
int channel_handshake(struct channel *c, long long now);

/* The same, blocking until done or the deadline: 1, or -1 with errno as above. */
int channel_handshake_wait(struct channel *c);

/*
 * Move the handshake's deadline (CHANNEL_HS_MS from channel_new) to at,
 * an io_now_ms() time: for a caller with a deadline of its own, longer or
 * shorter (pool -t, master -t).
 */
void channel_set_deadline(struct channel *c, long long at);

/* The peer's handshake payload: a pointer to it, its length in *n (0 before it came). */
const unsigned char *channel_peer_payload(const struct channel *c, size_t *n);

/* 1 when the peer's handshake payload is the string s, else 0. */
int channel_peer_said(const struct channel *c, const char *s);

/* The poll events the channel itself needs: POLLIN during the handshake, POLLOUT with bytes to send. */
short channel_events(const struct channel *c);

/* Milliseconds to the handshake's deadline (0: past it), or -1 once it is done. */
int channel_timeout(const struct channel *c, long long now);

/*
 * Read up to n bytes of the peer's plaintext into buf, never blocking.
 * Returns the bytes read; 0 at the peer's authenticated end (its END
 * record); -1 with errno EAGAIN (nothing now: poll for POLLIN, unless
 * channel_readable), EBADMSG when a record was altered, replayed, moved
 * or sealed under another key (the rest of the stream is refused), EPIPE
 * when the connection closed without the END record (truncated), or the
 * socket's error. Reads from the socket never go past the record being
 * assembled, so what the kernel holds is what poll sees. It may stop
 * short of n before a record longer than the room left, which the next
 * call opens straight into its buffer instead of copying it in pieces.
 */
ssize_t channel_read(struct channel *c, void *buf, size_t n);

/*
 * 1 when channel_read has something to say without the socket: a record's
 * plaintext read already, or the END or a failure met while it handed out
 * bytes before them (poll would not say so).
 */
int channel_readable(const struct channel *c);

/*
 * Seal up to n bytes of buf as records and send what the socket takes.
 * Returns the bytes taken (sealed: they will go out with channel_flush),
 * or -1 with errno EAGAIN (the channel's buffer is full: poll for
 * POLLOUT), EPIPE after channel_shutdown, or the socket's error.
 */
ssize_t channel_write(struct channel *c, const void *buf, size_t n);

/* Send sealed bytes waiting. Returns 0 when none waits, -1 with errno (EAGAIN: some still wait). */
int channel_flush(struct channel *c);

/* Sealed bytes not sent yet. */
size_t channel_unsent(const struct channel *c);

/*
 * The authenticated end of our side: seal the END record, send it and
 * then shut the socket down for writing. Returns 0 once all is out, -1
 * with errno EAGAIN while bytes still wait (call again on POLLOUT), or
 * the socket's error. Calling it again is fine.
 */
int channel_shutdown(struct channel *c);

/* Keep what channel_tcp_acked needs, from now on (call before the first write). */
void channel_track_acks(struct channel *c);

/*
 * Of the plaintext taken by channel_write, how many bytes lie in records
 * the peer's TCP has wholly acknowledged (queue_tcp_acked): what a peer
 * that sends no acknowledgements of its own is known to have received.
 * Returns it, or -1 with errno.
 */
long long channel_tcp_acked(struct channel *c);

/*
 * Of the plaintext taken by channel_write, how many bytes lie in records
 * the socket has wholly taken (the rest waits sealed here): what the
 * kernel goes on delivering if we close now. Needs channel_track_acks.
 */
unsigned long long channel_handed(const struct channel *c);

/* Plaintext bytes taken by channel_write so far. */
unsigned long long channel_sent(const struct channel *c);

/*
 * The channel's error in words: errno values channel_* return, as a user
 * reads them; handshake: 1 for the initiator's handshake, 2 for the
 * responder's (a peer that closed first is then no sign of a wrong key),
 * 0 after it.
 */
const char *channel_strerror(int err, int handshake);

/* Wipe and free (c may be NULL); the descriptor stays open. */
void channel_free(struct channel *c);

#endif
