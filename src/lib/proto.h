/*
 * proto: the line protocol between master and pool (socketpool(7)):
 * line framing, parsing, nonces, tokens and the key proof.
 */
#ifndef SP_PROTO_H
#define SP_PROTO_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "name.h"

#define PROTO_VERSION 3	      /* the lines inside the channel (wire.h) */
#define PROTO_VERSION_PLAIN 2 /* the same lines in plain text, with AUTH and OK (-U) */
#define PROTO_LINE_MAX 1024 /* bytes in a line, its LF included */
#define PROTO_NONCE_HEX 64  /* 32 random bytes */
#define PROTO_MAC_HEX 64    /* HMAC-SHA-256 */
#define PROTO_TOKEN_HEX 32  /* 16 random bytes */
#define PROTO_STREAM_HEX 32 /* a daemon run's stream: 16 random bytes */
#define PROTO_NAME_MAX NAME_MAX_LEN
#define PROTO_ARGS 5

/* Bytes received and not yet taken as lines. */
struct proto_in {
	size_t len;
	int cr; /* the last line proto_next took ended in CR LF (the CR is not in it) */
	char buf[PROTO_LINE_MAX];
};

/*
 * Format one line (the words, then its LF) into out, which has room for
 * PROTO_LINE_MAX bytes: the one writer of both sides' lines. Returns its
 * length, LF included, or -1 with errno EMSGSIZE when it would be longer
 * than PROTO_LINE_MAX (nothing of it is to be sent: a cut line is
 * another line).
 */
ssize_t proto_vline(char out[PROTO_LINE_MAX], const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Read what fd has into in (one read(2)). Returns the bytes read, 0 at
 * EOF, or -1 with errno (EAGAIN when nothing is there; EMSGSIZE when the
 * buffer already holds PROTO_LINE_MAX bytes without a LF).
 */
ssize_t proto_fill(struct proto_in *in, int fd);

/*
 * Add n bytes to in, as proto_fill does from a descriptor. Returns the
 * bytes taken (less than n when in is full).
 */
size_t proto_push(struct proto_in *in, const void *data, size_t n);

/*
 * Take the next complete line out of in into out, NUL-terminated, without
 * its LF (and without a CR before it). Returns 1, 0 when no complete line
 * is there yet, or -1 with errno EMSGSIZE when PROTO_LINE_MAX bytes hold
 * no LF, or EILSEQ when the line holds a NUL or other control byte.
 */
int proto_next(struct proto_in *in, char out[PROTO_LINE_MAX]);

enum proto_cmd {
	PROTO_HELLO, /* SOCKETPOOL version nonce         pool -> master */
	PROTO_AUTH,  /* AUTH mac nonce                   master -> pool */
	PROTO_OK,    /* OK mac                           pool -> master */
	PROTO_PORT,  /* PORT name stream offset          master -> pool */
	PROTO_GRANT, /* GRANT name port token taken      pool -> master */
	PROTO_FAIL,  /* FAIL name reason...              pool -> master */
	PROTO_END,   /* END                              master -> pool */
	PROTO_BYE,   /* BYE                              pool -> master */
	PROTO_ERR,   /* ERR reason...                    pool -> master, then close */
	PROTO_CALL,  /* CALL name stream                 master -> pool: run service name */
	PROTO_EXIT,  /* EXIT name stream status [text]   pool -> master: how it ended */
};

struct proto_msg {
	enum proto_cmd cmd;
	long version;		 /* HELLO */
	int port;		 /* GRANT */
	int status;		 /* EXIT: 0-255, or -1 when the service never ran */
	long long offset;	 /* PORT: where the master's stream resumes; GRANT: what the
				    pool has of it ("taken"), -1 for unknown ("-") */
	const char *arg[PROTO_ARGS]; /* pointers into the parsed line */
	const char *text;	 /* FAIL and ERR: the free text, possibly "" */
};

/*
 * Parse one line (as proto_next gives it; it is modified in place: words
 * are NUL-terminated) into m. Words are separated by one space. Returns
 * 0, or -1 with errno ENOMSG (unknown command word) or EINVAL (a known
 * command with wrong arguments: count, hex length, name, port; m->cmd
 * still tells which command it was).
 */
int proto_parse(char *line, struct proto_msg *m);

/* s is exactly n lowercase hex digits. */
int proto_is_hex(const char *s, size_t n);

/*
 * n random bytes from getrandom(2), or /dev/urandom where it is missing,
 * written as 2n lowercase hex digits plus a NUL. Returns 0 or -1.
 */
int proto_random_hex(char *out, size_t n);

/*
 * The proofs of version 2 (version 3 has the handshake instead): each side proves it knows the key over both
 * nonces (the pool's first), so neither can be replayed from another
 * session, and with its role in the message, so neither can be reflected:
 * out = hex of HMAC-SHA-256(key, "socketpool 2 ROLE NP NM") with ROLE
 * "master" or "pool" (64 digits plus a NUL).
 */
enum proto_role { PROTO_MASTER, PROTO_POOL };
void proto_mac(const char *key, size_t keylen, enum proto_role role, const char *np,
	       const char *nm, char out[PROTO_MAC_HEX + 1]);

/* mac is the proof of role over np and nm under key, compared in constant time: 1 when it is. */
int proto_mac_ok(const char *key, size_t keylen, enum proto_role role, const char *np,
		 const char *nm, const char *mac);

#define PROTO_KEY_MAX 4096 /* an @FILE key longer than this is surely the wrong file */

/*
 * The key from an operand: the text itself, or with a leading '@' the
 * contents of that file (so it never shows in ps) less one line end at
 * its very end: a LF, or a CR LF; nothing else is stripped, so a key may
 * hold any bytes. *key is malloc'd and NUL-terminated. Returns 0, or -1
 * with errno: ENODATA (the key is empty), EFBIG (more than PROTO_KEY_MAX
 * bytes once the line end is off), EINVAL (not a regular file: a FIFO or
 * device planted there is never read), or the open/read error.
 */
int proto_load_key(const char *arg, char **key, size_t *len);

#endif
