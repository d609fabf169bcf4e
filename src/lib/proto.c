#define _GNU_SOURCE /* getrandom */
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "mem.h"
#include "name.h"
#include "sha256.h"

ssize_t proto_vline(char out[PROTO_LINE_MAX], const char *fmt, va_list ap)
{
	int n = vsnprintf(out, PROTO_LINE_MAX, fmt, ap);

	if (n < 0 || n > PROTO_LINE_MAX - 1) {
		errno = EMSGSIZE;
		return -1;
	}
	out[n] = '\n'; /* over the NUL: a line is not a string */
	return n + 1;
}

ssize_t proto_fill(struct proto_in *in, int fd)
{
	ssize_t r;

	if (in->len == sizeof in->buf) {
		errno = EMSGSIZE;
		return -1;
	}
	r = io_read(fd, in->buf + in->len, sizeof in->buf - in->len);
	if (r > 0)
		in->len += (size_t)r;
	return r;
}

size_t proto_push(struct proto_in *in, const void *data, size_t n)
{
	size_t room = sizeof in->buf - in->len;

	if (n > room)
		n = room;
	memcpy(in->buf + in->len, data, n);
	in->len += n;
	return n;
}

int proto_next(struct proto_in *in, char out[PROTO_LINE_MAX])
{
	char *lf = memchr(in->buf, '\n', in->len);
	size_t n, take;

	if (!lf) {
		if (in->len == sizeof in->buf) {
			errno = EMSGSIZE;
			return -1;
		}
		return 0;
	}
	take = (size_t)(lf - in->buf) + 1;
	n = take - 1;
	in->cr = n && in->buf[n - 1] == '\r';
	n -= (size_t)in->cr;
	memcpy(out, in->buf, n);
	out[n] = '\0';
	memmove(in->buf, in->buf + take, in->len - take);
	in->len -= take;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c < 0x20 || c == 0x7f) {
			errno = EILSEQ;
			return -1;
		}
	}
	return 1;
}

int proto_is_hex(const char *s, size_t n)
{
	return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* Split line at single spaces into at most max words; the last takes the rest. */
static int split(char *line, const char **w, int max)
{
	int n = 0;

	if (!*line)
		return 0;
	for (;;) {
		char *sp;

		w[n++] = line;
		if (n == max || !(sp = strchr(line, ' ')))
			return n;
		*sp = '\0';
		line = sp + 1;
	}
}

static int number(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	/* One spelling per number: "03" is not 3 (a rewritten line is not the line). */
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9 || (s[0] == '0' && s[1]))
		return -1;
	v = strtol(s, &end, 10);
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* A stream offset: decimal digits (at most 18), or with unknown_ok "-" for -1. */
static int offset(const char *s, int unknown_ok, long long *out)
{
	long long v = 0;
	size_t n = strlen(s);

	if (unknown_ok && strcmp(s, "-") == 0) {
		*out = -1;
		return 0;
	}
	if (n == 0 || n > 18 || strspn(s, "0123456789") != n || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	*out = v;
	return 0;
}

/* How a command's words after the first are shaped. */
enum shape {
	SHAPE_WORDS,	 /* exactly nargs words, each checked (words_ok) */
	SHAPE_NAME_TEXT, /* FAIL name [text] */
	SHAPE_TEXT,	 /* ERR text: everything after "ERR " */
	SHAPE_EXIT	 /* EXIT name stream status [text] */
};

static const struct {
	const char *word;
	enum proto_cmd cmd;
	enum shape shape;
	int nargs; /* SHAPE_WORDS: how many */
} cmds[] = {
	{"SOCKETPOOL", PROTO_HELLO, SHAPE_WORDS, 2},
	{"AUTH", PROTO_AUTH, SHAPE_WORDS, 2},
	{"OK", PROTO_OK, SHAPE_WORDS, 1},
	{"PORT", PROTO_PORT, SHAPE_WORDS, 3},
	{"GRANT", PROTO_GRANT, SHAPE_WORDS, 4},
	{"FAIL", PROTO_FAIL, SHAPE_NAME_TEXT, 0},
	{"END", PROTO_END, SHAPE_WORDS, 0},
	{"BYE", PROTO_BYE, SHAPE_WORDS, 0},
	{"ERR", PROTO_ERR, SHAPE_TEXT, 0},
	{"CALL", PROTO_CALL, SHAPE_WORDS, 2},
	{"EXIT", PROTO_EXIT, SHAPE_EXIT, 0},
};

/* Free text from word k on (n words in all), the split undone: "" when there is none. */
static const char *text_from(const char **w, int k, int n)
{
	for (int i = k + 1; i < n; i++)
		((char *)w[i])[-1] = ' ';
	return k < n ? w[k] : "";
}

/* EXIT name stream status [text]: 0, or -1 when it is not well formed. */
static int parse_exit(const char **w, int n, struct proto_msg *m)
{
	long v;

	if (n < 4)
		return -1;
	for (int k = 1; k < 4; k++)
		m->arg[k - 1] = w[k];
	m->text = text_from(w, 4, n);
	if (!name_ok(m->arg[0]) || !proto_is_hex(m->arg[1], PROTO_STREAM_HEX))
		return -1;
	if (strcmp(m->arg[2], "-") == 0)
		m->status = -1;
	else if (number(m->arg[2], 0, 255, &v) == 0)
		m->status = (int)v;
	else
		return -1;
	return 0;
}

/* FAIL name [text]: 0, or -1 when it is not well formed. */
static int parse_fail(const char **w, int n, struct proto_msg *m)
{
	if (n < 2)
		return -1;
	m->arg[0] = w[1];
	m->text = text_from(w, 2, n);
	return name_ok(m->arg[0]) ? 0 : -1;
}

/* Each of a fixed-words command's words (w[1..]) has its shape: 1 when they do. */
static int words_ok(const char **w, struct proto_msg *m)
{
	long v;

	switch (m->cmd) {
	case PROTO_HELLO:
		if (number(w[1], 1, 999999, &m->version) < 0)
			return 0;
		/* A later version may send another nonce shape: the caller checks version first. */
		return m->version != PROTO_VERSION_PLAIN || proto_is_hex(w[2], PROTO_NONCE_HEX);
	case PROTO_AUTH:
		return proto_is_hex(w[1], PROTO_MAC_HEX) && proto_is_hex(w[2], PROTO_NONCE_HEX);
	case PROTO_OK:
		return proto_is_hex(w[1], PROTO_MAC_HEX);
	case PROTO_PORT:
		return name_ok(w[1]) && proto_is_hex(w[2], PROTO_STREAM_HEX) &&
		       offset(w[3], 1, &m->offset) == 0;
	case PROTO_CALL:
		return name_ok(w[1]) && proto_is_hex(w[2], PROTO_STREAM_HEX);
	case PROTO_GRANT:
		if (!name_ok(w[1]) || number(w[2], 1, 65535, &v) < 0 ||
		    !proto_is_hex(w[3], PROTO_TOKEN_HEX) || offset(w[4], 1, &m->offset) < 0)
			return 0;
		m->port = (int)v;
		return 1;
	default:
		return 1;
	}
}

/* A command of exactly nargs words: 0, or -1 when it is not well formed. */
static int parse_words(const char **w, int n, int nargs, struct proto_msg *m)
{
	/* The words are there for the caller to tell what was wrong, even when something was. */
	for (int k = 1; k < n && k <= PROTO_ARGS; k++)
		m->arg[k - 1] = w[k];
	/* An older peer's AUTH or PORT has fewer words: known, but not this version's. */
	if (n - 1 != nargs || strchr(w[n - 1], ' '))
		return -1;
	for (int k = 1; k < n; k++)
		if (!*w[k])
			return -1; /* two spaces in a row */
	return words_ok(w, m) ? 0 : -1;
}

int proto_parse(char *line, struct proto_msg *m)
{
	const char *w[PROTO_ARGS + 1];
	size_t i;
	int n, r;

	memset(m, 0, sizeof *m);
	m->text = "";
	n = split(line, w, PROTO_ARGS + 1);
	for (i = 0; n > 0 && i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(w[0], cmds[i].word) == 0)
			break;
	if (n == 0 || i == sizeof cmds / sizeof cmds[0]) {
		errno = ENOMSG;
		return -1;
	}
	m->cmd = cmds[i].cmd;
	switch (cmds[i].shape) {
	case SHAPE_TEXT: m->text = text_from(w, 1, n); return 0;
	case SHAPE_EXIT: r = parse_exit(w, n, m); break;
	case SHAPE_NAME_TEXT: r = parse_fail(w, n, m); break;
	default: r = parse_words(w, n, cmds[i].nargs, m);
	}
	if (r < 0)
		errno = EINVAL;
	return r;
}

static int urandom(unsigned char *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got < n) {
		ssize_t r = io_read(fd, p + got, n - got);
		if (r <= 0) {
			int saved = r < 0 ? errno : EIO;
			close(fd);
			errno = saved;
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

int proto_random_hex(char *out, size_t n)
{
	unsigned char buf[64];
	size_t got = 0;

	if (n > sizeof buf) {
		errno = EINVAL;
		return -1;
	}
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (errno != ENOSYS || urandom(buf + got, n - got) < 0)
				return -1;
			break;
		}
		got += (size_t)r;
	}
	mem_hex(buf, n, out);
	mem_wipe(buf, sizeof buf);
	return 0;
}

void proto_mac(const char *key, size_t keylen, enum proto_role role, const char *np,
	       const char *nm, char out[PROTO_MAC_HEX + 1])
{
	char msg[2 * PROTO_NONCE_HEX + 64];
	unsigned char d[SHA256_LEN];
	int n = snprintf(msg, sizeof msg, "socketpool %d %s %s %s", PROTO_VERSION_PLAIN,
			 role == PROTO_POOL ? "pool" : "master", np, nm);

	hmac_sha256(key, keylen, msg, n > 0 ? (size_t)n : 0, d);
	mem_hex(d, sizeof d, out);
	mem_wipe(d, sizeof d);
}

int proto_mac_ok(const char *key, size_t keylen, enum proto_role role, const char *np,
		 const char *nm, const char *mac)
{
	char want[PROTO_MAC_HEX + 1];
	int ok;

	if (strlen(mac) != PROTO_MAC_HEX)
		return 0;
	proto_mac(key, keylen, role, np, nm, want);
	ok = mem_equal_ct(want, mac, PROTO_MAC_HEX);
	mem_wipe(want, sizeof want);
	return ok;
}

int proto_load_key(const char *arg, char **key, size_t *len)
{
	char buf[PROTO_KEY_MAX + 3]; /* the longest key, its CR LF, and one byte to tell more */
	size_t n = 0;
	ssize_t r = 0;
	struct stat st;
	int fd, saved;

	if (arg[0] != '@') {
		if (!*arg) {
			errno = ENODATA;
			return -1;
		}
		*key = strdup(arg);
		*len = strlen(arg);
		return *key ? 0 : -1;
	}
	/* A FIFO or device planted at that path neither holds us nor gives the key. */
	fd = open(arg + 1, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	while (n < sizeof buf && (r = io_read(fd, buf + n, sizeof buf - n)) > 0)
		n += (size_t)r;
	saved = errno;
	close(fd);
	if (r < 0) {
		mem_wipe(buf, sizeof buf);
		errno = saved;
		return -1;
	}
	/* One line end is not part of the key (a file written by echo): LF, or CR LF. */
	if (n && buf[n - 1] == '\n') {
		n--;
		if (n && buf[n - 1] == '\r')
			n--;
	}
	if (n > PROTO_KEY_MAX) {
		mem_wipe(buf, sizeof buf);
		errno = EFBIG;
		return -1;
	}
	if (n == 0) {
		errno = ENODATA;
		return -1;
	}
	*key = malloc(n + 1);
	if (!*key) {
		mem_wipe(buf, sizeof buf);
		return -1;
	}
	memcpy(*key, buf, n);
	(*key)[n] = '\0';
	*len = n;
	mem_wipe(buf, sizeof buf);
	return 0;
}
