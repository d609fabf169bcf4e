#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"

static int takes_arg(const char *optstring, char c)
{
	const char *p = strchr(optstring, c);

	return c != ':' && p && p[1] == ':';
}

void opt_common(int argc, char **argv, const char *optstring, const char *usage)
{
	opterr = 0; /* getopt's errors are reported by opt_bad, in our format */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "-help") || !strcmp(a, "--help")) {
			fputs(usage, stdout);
			exit(0);
		}
		if (!strcmp(a, "-V") || !strcmp(a, "-version") || !strcmp(a, "--version")) {
			printf("%s %s\n", err_progname(), SP_VERSION);
			exit(0);
		}
		/* Skip the argument of a cluster like "-fp" whose last option wants one. */
		if (a[0] == '-' && a[1] && a[1] != '-') {
			for (const char *c = a + 1; *c; c++) {
				if (takes_arg(optstring, *c)) {
					if (c[1] == '\0')
						i++;
					break;
				}
			}
		}
	}
}

void opt_bad(const char *optstring, const char *synopsis)
{
	if (optopt != ':' && strchr(optstring, optopt))
		usage_error(synopsis, "-%c needs an argument", optopt);
	usage_error(synopsis, "unknown option -%c", optopt);
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
			usage_error(synopsis, "%s: '%s' is out of range (%ld-%ld)", what, s, min, max);
		usage_error(synopsis, "%s: '%s' is not a number", what, s);
	}
	return v;
}

long opt_seconds_ms(const char *s, long max)
{
	char *end;
	double d;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || errno || d < 0 || d > (double)max)
		return -1;
	return (long)(d * 1000.0 + 0.5);
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
		usage_error(synopsis, "%s: '%s' is not a size from %s to %s", what, s, lo, hi);
	}
	return v;
}

long opt_seconds_or_die(const char *s, int allow_zero, long max, const char *what,
			const char *synopsis)
{
	long ms = opt_seconds_ms(s, max);

	if (ms < 0 || (ms == 0 && !allow_zero))
		usage_error(synopsis, "%s: '%s' is not a duration in seconds (0-%ld%c", what, s, max,
			    allow_zero ? ')' : ']');
	return ms;
}
