#define _GNU_SOURCE /* getopt_long_only */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "mem.h"
#include "noise.h"
#include "proto.h"

int opt_next(int argc, char **argv, const char *optstring, const char *usage)
{
	static const struct option words[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0; /* opt_bad reports, in our format */
	/* _only: one dash is enough for a word, while -v and clusters stay short options. */
	c = getopt_long_only(argc, argv, optstring, words, NULL);
	if (c == 'h') {
		fputs(usage, stdout);
		exit(fflush(stdout) == 0 ? 0 : EXIT_RUNTIME);
	}
	if (c == 'V') {
		printf("%s %s\n", err_progname(), SP_VERSION);
		exit(fflush(stdout) == 0 ? 0 : EXIT_RUNTIME);
	}
	return c;
}

void opt_bad(char **argv, const char *optstring, const char *synopsis)
{
	/* An unknown word (--foo) leaves optopt 0 and optind past it. */
	if (optopt == 0)
		err_usage(synopsis, "unknown option %s", argv[optind - 1]);
	if (optopt != ':' && strchr(optstring, optopt))
		err_usage(synopsis, "-%c needs an argument", optopt);
	err_usage(synopsis, "unknown option -%c", optopt);
}

long opt_port_or_die(const char *s, const char *synopsis)
{
	long v;

	if (opt_long(s, OPT_PORT_MIN, OPT_PORT_MAX, &v) < 0)
		err_usage(synopsis, "port: '%s' is not a number from %d to %d", s, OPT_PORT_MIN,
			  OPT_PORT_MAX);
	return v;
}

int opt_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s || isspace((unsigned char)*s)) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

long opt_long_or_die(const char *s, long min, long max, const char *what, const char *synopsis)
{
	long v;

	if (opt_long(s, min, max, &v) < 0) {
		if (errno == ERANGE)
			err_usage(synopsis, "%s: '%s' is out of range (%ld-%ld)", what, s, min, max);
		err_usage(synopsis, "%s: '%s' is not a number", what, s);
	}
	return v;
}

long opt_ms(const char *s, long min_ms, long max_ms)
{
	char *end;
	double d;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.')) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || errno) {
		errno = errno == ERANGE ? ERANGE : EINVAL;
		return -1;
	}
	d = d * 1000.0 + 0.5;
	if (d < (double)min_ms || d > (double)max_ms + 0.5) {
		errno = ERANGE;
		return -1;
	}
	return (long)d;
}

long opt_bytes(const char *s, long min, long max)
{
	char buf[32];
	size_t len = strlen(s);
	long v, mul = 1;

	if (len == 0 || len >= sizeof buf) {
		errno = EINVAL;
		return -1;
	}
	memcpy(buf, s, len + 1);
	switch (buf[len - 1]) {
	case 'k': case 'K': mul = 1L << 10; break;
	case 'm': case 'M': mul = 1L << 20; break;
	case 'g': case 'G': mul = 1L << 30; break;
	}
	if (mul > 1)
		buf[len - 1] = '\0';
	if (opt_long(buf, 0, LONG_MAX / mul, &v) < 0)
		return -1;
	if (v * mul < min || v * mul > max) {
		errno = ERANGE;
		return -1;
	}
	return v * mul;
}

/* A size as a user would write it: whole G or M where it is one, else bytes. */
static void size_text(long v, char buf[32])
{
	if (v >= 1L << 30 && v % (1L << 30) == 0)
		snprintf(buf, 32, "%ldG", v >> 30);
	else if (v >= 1L << 20 && v % (1L << 20) == 0)
		snprintf(buf, 32, "%ldM", v >> 20);
	else
		snprintf(buf, 32, "%ld", v);
}

long opt_bytes_or_die(const char *s, long min, long max, const char *what, const char *synopsis)
{
	long v = opt_bytes(s, min, max);
	char lo[32], hi[32];

	if (v < 0) {
		size_text(min, lo);
		size_text(max, hi);
		err_usage(synopsis, "%s: '%s' is not a size from %s to %s", what, s, lo, hi);
	}
	return v;
}

/* Milliseconds as seconds a user would write: "5", "0.25". */
static void secs_text(long ms, char buf[32])
{
	if (ms % 1000 == 0)
		snprintf(buf, 32, "%ld", ms / 1000);
	else
		snprintf(buf, 32, "%g", (double)ms / 1000.0);
}

long opt_ms_or_die(const char *s, long min_ms, long max_ms, const char *what,
		   const char *synopsis)
{
	long ms = opt_ms(s, min_ms, max_ms);
	char lo[32], hi[32];

	if (ms < 0) {
		secs_text(min_ms, lo);
		secs_text(max_ms, hi);
		err_usage(synopsis, "%s: '%s' is not a duration from %s to %s seconds", what, s, lo,
			  hi);
	}
	return ms;
}

void opt_key_or_die(const char *arg, char **key, size_t *len, const char *synopsis)
{
	if (proto_load_key(arg, key, len) == 0)
		return;
	if (errno == ENODATA)
		err_usage(synopsis, "empty key%s%s", arg[0] == '@' ? " in " : "",
			  arg[0] == '@' ? arg + 1 : "");
	if (errno == EFBIG)
		err_die(EXIT_RUNTIME, "key file %s: longer than %d bytes", arg + 1, PROTO_KEY_MAX);
	if (errno == EINVAL)
		err_die(EXIT_RUNTIME, "key file %s: not a regular file", arg + 1);
	err_die(EXIT_RUNTIME, "key file %s:", arg + 1);
}

void opt_psk_or_die(const char *arg, unsigned char psk[32], const char *synopsis)
{
	char *key;
	size_t len;

	opt_key_or_die(arg, &key, &len, synopsis);
	noise_psk_from_key(key, len, psk);
	mem_wipe(key, len);
	free(key);
}
