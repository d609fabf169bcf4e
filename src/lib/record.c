#include "record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

enum { R_OPEN, R_ENDED, R_FAILED };

#define KEEP 4096 /* a record buffer up to this is kept for the next record */

void record_writer_init(struct record_writer *w, const struct noise_cs *send)
{
	w->cs = *send;
	w->ended = 0;
}

/* Frame and seal one record of type with m bytes of payload into out (room checked). */
static ssize_t seal(struct record_writer *w, int type, const void *data, size_t m,
		    unsigned char *out)
{
	size_t clen = 1 + m + NOISE_TAG;
	unsigned char t = (unsigned char)type;

	out[0] = (unsigned char)(clen >> 8);
	out[1] = (unsigned char)clen;
	/* The type byte and the payload are one plaintext, sealed without copying them together. */
	if (noise_cs_encrypt_parts(&w->cs, NULL, 0, &t, 1, data, m, out + 2) < 0)
		return -1;
	return (ssize_t)(RECORD_HDR + clen);
}

ssize_t record_seal(struct record_writer *w, const void *data, size_t n, size_t *taken, void *out,
		    size_t cap)
{
	size_t m = n < RECORD_PLAIN_MAX ? n : RECORD_PLAIN_MAX;
	ssize_t r;

	*taken = 0;
	if (w->ended) {
		errno = EPIPE;
		return -1;
	}
	if (cap < RECORD_OVERHEAD || (n && cap == RECORD_OVERHEAD)) {
		errno = ENOBUFS;
		return -1;
	}
	if (m > cap - RECORD_OVERHEAD)
		m = cap - RECORD_OVERHEAD;
	r = seal(w, RECORD_DATA, data, m, out);
	if (r >= 0)
		*taken = m;
	return r;
}

ssize_t record_seal_end(struct record_writer *w, void *out, size_t cap)
{
	ssize_t r;

	if (w->ended) {
		errno = EPIPE;
		return -1;
	}
	if (cap < RECORD_OVERHEAD) {
		errno = ENOBUFS;
		return -1;
	}
	r = seal(w, RECORD_END, NULL, 0, out);
	if (r >= 0) {
		w->ended = 1;
		noise_cs_wipe(&w->cs); /* nothing more will be sealed with it */
	}
	return r;
}

void record_writer_wipe(struct record_writer *w)
{
	mem_wipe(w, sizeof *w);
	w->ended = 1;
}

void record_reader_init(struct record_reader *r, const struct noise_cs *recv)
{
	r->cs = *recv;
	r->state = R_OPEN;
	r->have = r->off = r->len = 0;
	r->buf = NULL;
	r->cap = 0;
}

/* The whole length of the record being assembled, once its header is in. */
static size_t record_size(const struct record_reader *r)
{
	return RECORD_HDR + ((size_t)r->hdr[0] << 8 | r->hdr[1]);
}

/*
 * The record is done with: a large buffer goes back, wiped first when it
 * held plaintext (opened in place), so that quiet channels hold little.
 */
static void record_done(struct record_reader *r, int plain)
{
	if (r->cap <= KEEP)
		return;
	if (plain)
		mem_wipe(r->buf, r->cap);
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

size_t record_want(const struct record_reader *r)
{
	if (r->state != R_OPEN || r->len)
		return 0;
	if (r->have < RECORD_HDR)
		return RECORD_HDR - r->have;
	return record_size(r) - r->have; /* 0: complete, pull it */
}

void *record_room(struct record_reader *r, size_t *n)
{
	size_t size;

	*n = record_want(r);
	if (!*n)
		return r->hdr; /* nothing to take now: any place will do */
	if (r->have < RECORD_HDR)
		return r->hdr + r->have;
	/* The length is in (in hdr): a buffer that takes the rest, the ciphertext. */
	size = record_size(r) - RECORD_HDR;
	if (size > r->cap) {
		unsigned char *b = malloc(size < KEEP ? KEEP : size);
		if (!b) {
			*n = 0;
			errno = ENOMEM;
			return NULL;
		}
		if (r->buf)
			mem_wipe(r->buf, r->cap); /* a small record's, maybe opened in place */
		free(r->buf);
		r->buf = b;
		r->cap = size < KEEP ? KEEP : size;
	}
	return r->buf + (r->have - RECORD_HDR);
}

void record_fill(struct record_reader *r, size_t n)
{
	size_t want = record_want(r);

	r->have += n < want ? n : want;
}

size_t record_push(struct record_reader *r, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t taken = 0;

	while (n) {
		size_t want;
		unsigned char *room = record_room(r, &want);
		size_t take = want < n ? want : n;

		if (!room || !take)
			break;
		memcpy(room, p, take);
		r->have += take;
		p += take;
		n -= take;
		taken += take;
	}
	return taken;
}

int record_ready(const struct record_reader *r)
{
	return r->state == R_OPEN &&
	       (r->len || (r->have >= RECORD_HDR && r->have == record_size(r)));
}

int record_fits(const struct record_reader *r, size_t cap)
{
	if (r->state != R_OPEN || r->len || r->have < RECORD_HDR)
		return 1;
	return record_size(r) - RECORD_HDR <= cap + 1 + NOISE_TAG;
}

static ssize_t fail(struct record_reader *r)
{
	record_reader_wipe(r);
	r->state = R_FAILED;
	errno = EBADMSG;
	return -1;
}

/*
 * Open the complete record in r into out when its payload fits cap (out
 * may be NULL: never), else in place, where record_pull copies it from.
 * Returns the payload's length opened into out, 0 when it went in place
 * (or was an empty DATA record or the END), -1 with errno EBADMSG.
 */
static ssize_t open_record(struct record_reader *r, void *out, size_t cap)
{
	size_t clen = record_size(r) - RECORD_HDR, m;
	unsigned char type;
	int direct;

	if (clen < 1 + NOISE_TAG)
		return fail(r);
	m = clen - 1 - NOISE_TAG;
	direct = out && m <= cap;
	if (noise_cs_decrypt_parts(&r->cs, NULL, 0, r->buf, clen, &type, 1,
				   direct ? out : r->buf + 1) < 0)
		return fail(r);
	r->have = 0;
	if (direct || !m)
		record_done(r, 0);
	if (type == RECORD_END) {
		if (m)
			return fail(r);
		r->state = R_ENDED;
		noise_cs_wipe(&r->cs);
		return 0;
	}
	if (type != RECORD_DATA)
		return fail(r);
	if (direct)
		return (ssize_t)m;
	r->off = 1;
	r->len = m;
	return 0;
}

int record_open(struct record_reader *r)
{
	if (r->state == R_FAILED) {
		errno = EBADMSG;
		return -1;
	}
	if (r->state == R_ENDED || r->len)
		return 1;
	if (r->have < RECORD_HDR || r->have < record_size(r)) {
		errno = EAGAIN;
		return 0;
	}
	return open_record(r, NULL, 0) < 0 ? -1 : 1;
}

ssize_t record_pull(struct record_reader *r, void *out, size_t cap)
{
	size_t m;

	if (r->state == R_FAILED) {
		errno = EBADMSG;
		return -1;
	}
	if (r->state == R_ENDED)
		return 0;
	if (!cap) {
		errno = EINVAL;
		return -1;
	}
	if (!r->len) {
		ssize_t d;

		if (r->have < RECORD_HDR || r->have < record_size(r)) {
			errno = EAGAIN;
			return -1;
		}
		/* A payload that fits is opened straight into out, else in place and copied. */
		if ((d = open_record(r, out, cap)) != 0)
			return d;
		if (r->state == R_ENDED)
			return 0;
		if (!r->len) {
			errno = EAGAIN; /* an empty record: nothing to hand out */
			return -1;
		}
	}
	m = r->len < cap ? r->len : cap;
	memcpy(out, r->buf + r->off, m);
	r->off += m;
	r->len -= m;
	if (!r->len)
		record_done(r, 1);
	return (ssize_t)m;
}

int record_eof(const struct record_reader *r)
{
	if (r->state == R_ENDED)
		return 0;
	errno = r->state == R_FAILED ? EBADMSG : EPIPE;
	return -1;
}

void record_reader_wipe(struct record_reader *r)
{
	int state = r->state;

	if (r->buf)
		mem_wipe(r->buf, r->cap);
	free(r->buf);
	mem_wipe(r, sizeof *r);
	r->state = state == R_OPEN ? R_FAILED : state;
}
