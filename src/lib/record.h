/*
 * record: a byte stream in both directions over the transport
 * CipherStates of a finished handshake (noise.h), in records:
 *
 *	length	2 bytes, big-endian: the ciphertext's length, 17-65535
 *	cipher	ChaChaPoly of (type | payload), the 16-byte tag at its end
 *
 * type is RECORD_DATA (payload: stream bytes) or RECORD_END (no payload).
 * The nonce is each direction's record count, so a record that is altered,
 * dropped, replayed or moved fails to decrypt. END is the authenticated
 * end of the stream: a stream whose transport closes before its END was
 * cut short by someone, and the reader says so (record_eof).
 *
 * Made for poll loops: the writer seals into the caller's buffer, the
 * reader takes whatever bytes the caller received and hands out plaintext
 * as records complete. The writer never allocates. The reader holds one
 * record, in a buffer of its length taken once its length is in and given
 * back when the record is done (a small one is kept for the next): a pool
 * with hundreds of quiet channels holds kilobytes each, not a 64 KiB
 * record apiece.
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include <stddef.h>
#include <sys/types.h>

#include "noise.h"

enum { RECORD_DATA = 0, RECORD_END = 1 };

#define RECORD_HDR 2
#define RECORD_CIPHER_MAX NOISE_MSG_MAX			     /* 65535 */
#define RECORD_PLAIN_MAX (RECORD_CIPHER_MAX - NOISE_TAG - 1) /* 65518 stream bytes */
#define RECORD_OVERHEAD (RECORD_HDR + 1 + NOISE_TAG)	     /* 19 bytes per record */
#define RECORD_WIRE_MAX (RECORD_HDR + RECORD_CIPHER_MAX)     /* the largest record */

struct record_writer {
	struct noise_cs cs;
	int ended;
};

struct record_reader {
	struct noise_cs cs;
	int state;	 /* open, ended or failed */
	size_t have;	 /* bytes of the next record in (length included) */
	size_t off, len; /* plaintext of the last record not yet pulled: buf[off..off+len) */
	unsigned char hdr[RECORD_HDR]; /* the record's length, until buf is there */
	unsigned char *buf;	       /* the record's ciphertext: cap bytes, or NULL */
	size_t cap;
};

/* A writer that seals with send (from noise_hs_split), which it copies. */
void record_writer_init(struct record_writer *w, const struct noise_cs *send);

/*
 * Seal the first bytes of data (n of them) as one DATA record into out:
 * as many as fit in RECORD_PLAIN_MAX and in cap - RECORD_OVERHEAD, so a
 * buffer of RECORD_WIRE_MAX always takes a full record. *taken gets how
 * many were sealed; n = 0 makes an empty record. Returns the record's
 * length (*taken + RECORD_OVERHEAD), or -1 with errno: ENOBUFS when cap
 * takes no byte (or not even an empty record); EPIPE after the END
 * record; EOVERFLOW when the nonces are used up.
 */
ssize_t record_seal(struct record_writer *w, const void *data, size_t n, size_t *taken, void *out,
		    size_t cap);

/*
 * Seal the END record (RECORD_OVERHEAD bytes) into out: send it last,
 * then close or shut down the transport. Returns its length, or -1 with
 * errno as record_seal. The writer refuses everything after it.
 */
ssize_t record_seal_end(struct record_writer *w, void *out, size_t cap);

/* Wipe the writer's key; it refuses to seal after it. */
void record_writer_wipe(struct record_writer *w);

/*
 * A reader that opens with recv (from noise_hs_split), which it copies.
 * One already set up is wiped (record_reader_wipe) before it is set up
 * again, or its buffer is lost.
 */
void record_reader_init(struct record_reader *r, const struct noise_cs *recv);

/*
 * Take up to n received bytes into the reader. It takes at most the rest
 * of the record it is assembling, and nothing while that record's
 * plaintext is still to be pulled, after the END record, or after a
 * failure: push the bytes it did not take again after record_pull.
 * Returns the number of bytes taken (fewer also when no memory was left
 * for the record: see record_room).
 */
size_t record_push(struct record_reader *r, const void *data, size_t n);

/*
 * Where received bytes can go straight into the reader: returns the place
 * and sets *n to record_want (0: nothing now). Say how many were put
 * there with record_fill; a recv into it spares record_push's copy.
 * NULL with errno ENOMEM (and *n 0) when the record's buffer cannot be had.
 */
void *record_room(struct record_reader *r, size_t *n);

/* n bytes (at most what record_room said) were put at record_room's place. */
void record_fill(struct record_reader *r, size_t n);

/*
 * How many more bytes complete the record being assembled (reading just
 * that many never takes bytes of the next one); 0 when pull has something
 * to do first.
 */
size_t record_want(const struct record_reader *r);

/*
 * 1 when record_pull has something to do without more bytes: plaintext
 * not yet pulled, or a whole record to open. (poll cannot say so.)
 */
int record_ready(const struct record_reader *r);

/*
 * 0 when the record being assembled is known (its length is in) to carry
 * more than cap bytes: a caller that has some plaintext already can stop
 * there and pull it next time into a buffer it fits, opened straight
 * into it. 1 otherwise.
 */
int record_fits(const struct record_reader *r, size_t cap);

/*
 * Copy up to cap (> 0) bytes of plaintext to out, decrypting the record
 * pushed in when it is complete. Returns the bytes copied; 0 once the END
 * record has been read (and on every call after it); -1 with errno EAGAIN
 * when a record is still incomplete (push more), EBADMSG when a record
 * fails to decrypt (altered, replayed, reordered, from another key) or is
 * malformed (length under 17, unknown type, END with a payload), and on
 * every call after that: the reader refuses the rest of the stream.
 * EINVAL when cap is 0.
 */
ssize_t record_pull(struct record_reader *r, void *out, size_t cap);

/*
 * Open the record pushed in, when it is complete, without handing its
 * plaintext out: that waits for record_pull (record_ready says so). What
 * a responder needs to know the initiator holds the key, its first record
 * authenticated, before it pulls anything. Returns 1 once a record is
 * open (or one already was, or the END was read), 0 with errno EAGAIN
 * while the record is incomplete, -1 with errno EBADMSG as record_pull.
 */
int record_open(struct record_reader *r);

/*
 * Say the transport has reached end of file (after pulling until EAGAIN
 * or 0). Returns 0 when the END record was read: the stream is complete;
 * -1 with errno EPIPE when it was not: the stream was truncated, and what
 * was pulled may lack its end; -1 with errno EBADMSG after a failure.
 */
int record_eof(const struct record_reader *r);

/*
 * Wipe the reader's key and buffer (which may hold plaintext of a record
 * not all pulled) and give the buffer back; it refuses to read after it
 * (record_eof still tells whether the END had come).
 */
void record_reader_wipe(struct record_reader *r);

#endif
