/*
 * libFuzzer target for what the encrypted channel reads from the network:
 * the first byte of the input picks
 *   0: the rest as the first handshake message, to a fresh responder;
 *   1: the rest as the second, to an initiator that wrote the first;
 *   2: the rest as a record stream, to a reader (in uneven pieces);
 *   3: the rest as stream data, sealed into records by a writer with the
 *      reader's key, then one byte flipped (or none), and read back: the
 *      fuzzer cannot forge a tag, so this is how it reaches the reader's
 *      states past the first record.
 * Each checks what the library promises: lengths, errno values, and that a
 * failed state stays failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/noise.h"
#include "lib/record.h"

static const unsigned char psk[NOISE_PSK] = {7};
static const unsigned char e_init[32] = {1, 2, 3}, e_resp[32] = {4, 5, 6};
static unsigned char payload[NOISE_MSG_MAX];

static void handshake(int initiator, const uint8_t *data, size_t size)
{
	struct noise_hs hs;
	unsigned char m[64];
	ssize_t n;

	noise_hs_init_ephemeral(&hs, initiator, psk, "fuzz", 4, initiator ? e_init : e_resp);
	if (initiator && noise_hs_write(&hs, NULL, 0, m, sizeof m) != NOISE_HS_OVERHEAD)
		abort();
	n = noise_hs_read(&hs, data, size, payload, sizeof payload);
	if (n >= 0) {
		if ((size_t)n != size - NOISE_HS_OVERHEAD || noise_hs_done(&hs) != initiator)
			abort();
	} else {
		if (errno != EBADMSG)
			abort();
		/* A failed handshake refuses everything after. */
		if (noise_hs_read(&hs, data, size, payload, sizeof payload) != -1 ||
		    errno != EINVAL)
			abort();
		if (noise_hs_write(&hs, NULL, 0, m, sizeof m) != -1 || errno != EINVAL)
			abort();
	}
	noise_hs_wipe(&hs);
}

/* Feed the stream in pieces; returns the plaintext length, and *end how it ended. */
static size_t read_stream(struct record_reader *r, const uint8_t *data, size_t size,
			  unsigned char *out, size_t outcap, int *end)
{
	size_t off = 0, got = 0, step = 1;

	*end = 0; /* 0: wants more, 1: END, -1: failed */
	while (off < size && !*end) {
		size_t n = size - off < step ? size - off : step;
		ssize_t m;
		off += record_push(r, data + off, n);
		step = step * 13 % 4099 + 1;
		while ((m = record_pull(r, payload, 1 + step % 70000)) > 0) {
			if ((size_t)m > 1 + step % 70000 || (size_t)m > RECORD_PLAIN_MAX)
				abort();
			if (out && got + (size_t)m <= outcap)
				memcpy(out + got, payload, (size_t)m);
			got += (size_t)m;
		}
		if (m == 0)
			*end = 1;
		else if (errno == EBADMSG)
			*end = -1;
		else if (errno != EAGAIN)
			abort();
		if (record_want(r) > RECORD_WIRE_MAX)
			abort();
	}
	/* The end state holds: failed stays failed, ended stays ended. */
	if (*end == -1 &&
	    (record_pull(r, payload, 10) != -1 || errno != EBADMSG ||
	     record_push(r, data, size) != 0 || record_eof(r) != -1 || errno != EBADMSG))
		abort();
	if (*end == 1 && (record_pull(r, payload, 10) != 0 || record_eof(r) != 0))
		abort();
	if (*end == 0 && (record_eof(r) != -1 || errno != EPIPE))
		abort();
	return got;
}

static void sealed(const uint8_t *data, size_t size)
{
	static unsigned char wire[1 << 20], back[1 << 20];
	static struct record_writer w;
	static struct record_reader r;
	struct noise_cs cs = {.k = {9, 9, 9}, .n = 0, .haskey = 1};
	size_t wl = 0, off = 0, flip, got;
	int end, with_end;

	if (size < 3)
		return;
	/* Two bytes choose the byte to flip (past the end: none), one whether END is sent. */
	flip = (size_t)data[0] << 8 | data[1];
	with_end = data[2] & 1;
	data += 3, size -= 3;
	record_writer_init(&w, &cs);
	record_reader_init(&r, &cs);
	while (off < size) {
		/* Record sizes from the data itself: 1-256 bytes each. */
		size_t want = (size_t)data[off] + 1, taken;
		ssize_t k;
		if (want > size - off)
			want = size - off;
		k = record_seal(&w, data + off, want, &taken, wire + wl, sizeof wire - wl);
		if (k < 0 || taken != want || (size_t)k != taken + RECORD_OVERHEAD)
			abort();
		off += taken, wl += (size_t)k;
	}
	if (with_end)
		wl += (size_t)record_seal_end(&w, wire + wl, sizeof wire - wl);
	if (flip < wl)
		wire[flip] ^= 0x20;
	got = read_stream(&r, wire, wl, back, sizeof back, &end);
	if (flip >= wl) {
		/* Untouched: everything arrives, and the end is what was sent. */
		if (got != size || memcmp(back, data, size) != 0 || end != (with_end ? 1 : 0))
			abort();
	} else if (end == 1 && flip < wl - RECORD_OVERHEAD) {
		abort(); /* a flipped byte before the END record never ends the stream cleanly */
	}
	record_writer_wipe(&w);
	record_reader_wipe(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct record_reader r;
	struct noise_cs cs = {.k = {9, 9, 9}, .n = 0, .haskey = 1};
	int end;

	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		handshake(0, data + 1, size - 1);
		break;
	case 1:
		handshake(1, data + 1, size - 1);
		break;
	case 2:
		record_reader_init(&r, &cs);
		read_stream(&r, data + 1, size - 1, NULL, 0, &end);
		record_reader_wipe(&r);
		break;
	default:
		sealed(data + 1, size - 1);
		break;
	}
	return 0;
}
