#define _GNU_SOURCE /* getopt_long_only */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "noise.h"
#include "proto.h"

/* Record what ends the command line, unless something did before. Returns -1. */
__attribute__((format(printf, 3, 4))) static int
refuse(struct opt_parse *p, enum opt_outcome outcome, const char *fmt, ...)
{
	va_list ap;

	if (p->outcome != OPT_GOING)
		return -1;
	p->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof p->why, fmt, ap);
	va_end(ap);
	return -1;
}

int opt_next(int argc, char **argv, const char *optstring, struct opt_parse *p)
{
	static const struct option words[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};

	if (p->outcome != OPT_GOING)
		return '?'; /* a value was refused: that is the first thing wrong */
	opterr = 0; /* err_cmdline reports, in our format */
	/* _only: one dash is enough for a word, while -v and clusters stay short options. */
	p->opt = getopt_long_only(argc, argv, optstring, words, NULL);
	switch (p->opt) {
	case 'h': p->outcome = OPT_HELP; return '?';
	case 'V': p->outcome = OPT_VERSION; return '?';
	case '?':
	case ':': break;
	default: return p->opt;
	}
	/* An unknown word (--foo) leaves optopt 0 and optind past it. */
	if (optopt == 0)
		refuse(p, OPT_USAGE, "unknown option %s", argv[optind - 1]);
	else if (optopt != ':' && strchr(optstring, optopt))
		refuse(p, OPT_USAGE, "-%c needs an argument", optopt);
	else
		refuse(p, OPT_USAGE, "unknown option -%c", optopt);
	return '?';
}

long opt_port(const char *s, struct opt_parse *p)
{
	long v;

	if (opt_long(s, OPT_PORT_MIN, OPT_PORT_MAX, &v) < 0)
		return refuse(p, OPT_USAGE, "port: '%s' is not a number from %d to %d", s,
			      OPT_PORT_MIN, OPT_PORT_MAX);
	return v;
}

int opt_port_range(const char *s, long *lo, long *hi, const char *what, struct opt_parse *p)
{
	const char *dash = strchr(s, '-');
	char first[16];

	if (!dash || (size_t)(dash - s) >= sizeof first)
		return refuse(p, OPT_USAGE, "%s: '%s' is not a range LO-HI", what, s);
	memcpy(first, s, (size_t)(dash - s));
	first[dash - s] = '\0';
	if (opt_long(first, OPT_RANGE_MIN, OPT_RANGE_MAX, lo) < 0 ||
	    opt_long(dash + 1, OPT_RANGE_MIN, OPT_RANGE_MAX, hi) < 0)
		return refuse(p, OPT_USAGE, "%s: '%s' is not a range LO-HI of ports %d-%d", what, s,
			      OPT_RANGE_MIN, OPT_RANGE_MAX);
	if (*lo > *hi)
		return refuse(p, OPT_USAGE, "%s: '%s': LO is above HI", what, s);
	return 0;
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

long opt_number(const char *s, long min, long max, const char *what, struct opt_parse *p)
{
	long v;

	if (opt_long(s, min, max, &v) == 0)
		return v;
	if (errno == ERANGE)
		return refuse(p, OPT_USAGE, "%s: '%s' is out of range (%ld-%ld)", what, s, min,
			      max);
	return refuse(p, OPT_USAGE, "%s: '%s' is not a number", what, s);
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

long opt_size(const char *s, long min, long max, const char *what, struct opt_parse *p)
{
	long v = opt_bytes(s, min, max);
	char lo[32], hi[32];

	if (v >= 0)
		return v;
	size_text(min, lo);
	size_text(max, hi);
	return refuse(p, OPT_USAGE, "%s: '%s' is not a size from %s to %s", what, s, lo, hi);
}

const char *opt_secs(long long ms, char buf[OPT_SECS_MAX])
{
	int len;

	if (ms < 0)
		ms = 0;
	if (ms % 1000 == 0) {
		snprintf(buf, OPT_SECS_MAX, "%lld", ms / 1000);
		return buf;
	}
	/* Exact to the millisecond, the fraction without trailing zeros: "1.5", not "1.500". */
	len = snprintf(buf, OPT_SECS_MAX, "%lld.%03lld", ms / 1000, ms % 1000);
	while (len > 0 && buf[len - 1] == '0')
		buf[--len] = '\0';
	return buf;
}

long opt_duration(const char *s, long min_ms, long max_ms, const char *what, struct opt_parse *p)
{
	long ms = opt_ms(s, min_ms, max_ms);
	char lo[OPT_SECS_MAX], hi[OPT_SECS_MAX];

	if (ms >= 0)
		return ms;
	return refuse(p, OPT_USAGE, "%s: '%s' is not a duration from %s to %s seconds", what, s,
		      opt_secs(min_ms, lo), opt_secs(max_ms, hi));
}

/* A key taken, but not as it should be: p->warn says why, or is "". */
static void key_doubts(const char *arg, struct opt_parse *p)
{
	struct stat st;

	p->warn[0] = '\0';
	if (arg[0] != '@') {
		if (stat(arg, &st) == 0 && S_ISREG(st.st_mode))
			snprintf(p->warn, sizeof p->warn,
				 "key '%s' is the name of a file, but is taken as the key itself; "
				 "give @%s to read the key from the file", arg, arg);
		return;
	}
	/* As ssh says of a private key: others may read, or change, what the key protects. */
	if (stat(arg + 1, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)))
		snprintf(p->warn, sizeof p->warn,
			 "key file %s is %s by others (mode %04o); chmod 600 it", arg + 1,
			 st.st_mode & (S_IRGRP | S_IROTH) ? "readable" : "writable",
			 (unsigned)(st.st_mode & 07777));
}

int opt_key(const char *arg, char **key, size_t *len, struct opt_parse *p)
{
	const char *file = arg + 1;

	if (proto_load_key(arg, key, len) == 0) {
		key_doubts(arg, p);
		return 0;
	}
	if (errno == ENODATA)
		return refuse(p, OPT_USAGE, "empty key%s%s", arg[0] == '@' ? " in " : "",
			      arg[0] == '@' ? file : "");
	if (errno == EFBIG)
		return refuse(p, OPT_FAILED, "key file %s: longer than %d bytes", file,
			      PROTO_KEY_MAX);
	if (errno == EINVAL)
		return refuse(p, OPT_FAILED, "key file %s: not a regular file", file);
	return refuse(p, OPT_FAILED, "key file %s: %s", file, strerror(errno));
}

int opt_psk(const char *arg, unsigned char psk[32], struct opt_parse *p)
{
	char *key;
	size_t len;

	if (opt_key(arg, &key, &len, p) < 0)
		return -1;
	noise_psk_from_key(key, len, psk);
	mem_wipe(key, len);
	free(key);
	return 0;
}
