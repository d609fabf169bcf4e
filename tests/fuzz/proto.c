/*
 * libFuzzer target for the pool protocol parser (`make fuzz`): arbitrary
 * bytes go through the framing (in uneven pieces, as a socket delivers
 * them) and every line through proto_parse, checking what the parser
 * promises about its results.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/proto.h"

static void check_msg(const struct proto_msg *m)
{
	switch (m->cmd) {
	case PROTO_PORT:
		if (!name_ok(m->arg[0]) || !proto_is_hex(m->arg[1], PROTO_STREAM_HEX) || m->offset < -1)
			abort();
		break;
	case PROTO_OK:
		if (!proto_is_hex(m->arg[0], PROTO_MAC_HEX))
			abort();
		break;
	case PROTO_GRANT:
		if (!name_ok(m->arg[0]) || m->port < 1 || m->port > 65535 ||
		    !proto_is_hex(m->arg[2], PROTO_TOKEN_HEX) || m->offset < -1)
			abort();
		break;
	case PROTO_AUTH:
		if (!proto_is_hex(m->arg[0], PROTO_MAC_HEX) || !proto_is_hex(m->arg[1], PROTO_NONCE_HEX))
			abort();
		break;
	case PROTO_FAIL:
		if (!name_ok(m->arg[0]) || !m->text)
			abort();
		break;
	case PROTO_HELLO:
		if (m->version < 1 ||
		    (m->version == PROTO_VERSION_PLAIN && !proto_is_hex(m->arg[1], PROTO_NONCE_HEX)))
			abort();
		break;
	case PROTO_CALL:
		if (!name_ok(m->arg[0]) || !proto_is_hex(m->arg[1], PROTO_STREAM_HEX))
			abort();
		break;
	case PROTO_EXIT:
		if (!name_ok(m->arg[0]) || !proto_is_hex(m->arg[1], PROTO_STREAM_HEX) || m->status < -1 ||
		    m->status > 255 || !m->text)
			abort();
		break;
	case PROTO_ERR:
		if (!m->text || strlen(m->text) >= PROTO_LINE_MAX)
			abort();
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_in in = {0};
	char line[PROTO_LINE_MAX];
	size_t off = 0, step = 1;

	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		int r;

		off += proto_push(&in, data + off, n);
		step = step * 7 % 301 + 1;
		while ((r = proto_next(&in, line)) == 1) {
			struct proto_msg m;
			if (strlen(line) >= PROTO_LINE_MAX)
				abort();
			if (proto_parse(line, &m) == 0)
				check_msg(&m);
			else if (errno != EINVAL && errno != ENOMSG)
				abort();
		}
		if (r < 0) {
			if (errno != EMSGSIZE && errno != EILSEQ)
				abort();
			if (errno == EMSGSIZE)
				return 0; /* the pool closes such a connection */
		}
		if (in.len > PROTO_LINE_MAX)
			abort();
	}
	return 0;
}
