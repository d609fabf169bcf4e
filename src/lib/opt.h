/*
 * opt: the options every tool shares, and range-checked numbers. Nothing
 * here prints or exits: what ends a command line (help, version, a value
 * refused) is recorded in a struct opt_parse, and the program says it
 * with err_cmdline (err.c):
 *
 *	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
 *
 *	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
 *		switch (c) {
 *		case 'c': o->max = opt_number(optarg, 1, 4096, "-c", &p); break;
 *		...
 *		default: err_cmdline(&p);
 *		}
 *	}
 *	if (opt_port(argv[1], &p) < 0)
 *		err_cmdline(&p);
 */
#ifndef SP_OPT_H
#define SP_OPT_H

#include <stddef.h>

/* What ends a command line instead of running it. */
enum opt_outcome {
	OPT_GOING,   /* nothing: parse on */
	OPT_HELP,    /* -h, -help, --help: the usage text on stdout, exit 0 */
	OPT_VERSION, /* -V, -version, --version: "NAME VERSION" on stdout, exit 0 */
	OPT_USAGE,   /* a usage error: why, then the usage line, exit 2 */
	OPT_FAILED,  /* a runtime failure (a key file that cannot be read): why, exit 1 */
};

#define OPT_WHY_MAX 512

struct opt_parse {
	const char *usage;	   /* the --help text */
	const char *synopsis;	   /* the usage line's synopsis */
	enum opt_outcome outcome;  /* the first thing that ends the command line */
	char why[OPT_WHY_MAX];	   /* OPT_USAGE, OPT_FAILED: the message */
	int opt;		   /* the option opt_next returned last */
	char warn[OPT_WHY_MAX];	   /* a value taken, with a warning (opt_key): say it, or "" */
};

/*
 * The next option, as getopt(3) with optstring, which must list h and V
 * (-h, -help and --help; -V, -version and --version: socket-1.1 spelled
 * them with one dash). Returns '?' when the command line has ended
 * instead: help or version asked for, an unknown option, one missing its
 * argument, or a value an opt_ parser refused since the last call (so the
 * first thing wrong is what is said); the tool's default case then calls
 * err_cmdline. getopt's own messages are off. The one parser of every
 * tool's command line; options may follow operands (glibc permutes),
 * "--" ends them.
 */
int opt_next(int argc, char **argv, const char *optstring, struct opt_parse *p);

/*
 * The parsers below return the value, or -1 when they refuse it: then
 * (unless p holds an outcome already) p says why, naming the option what
 * and the bounds, for err_cmdline. Bounds are never negative.
 */

/* A whole decimal number in [min, max]. */
long opt_number(const char *s, long min, long max, const char *what, struct opt_parse *p);

/* A byte count, as opt_bytes, in [min, max]. */
long opt_size(const char *s, long min, long max, const char *what, struct opt_parse *p);

/* A duration in seconds, as opt_ms, in [min_ms, max_ms] milliseconds. */
long opt_duration(const char *s, long min_ms, long max_ms, const char *what, struct opt_parse *p);

/*
 * A PORT operand of the tools that bind or reach a buffer: a number from
 * OPT_PORT_MIN to OPT_PORT_MAX (registered ports, so no root is needed and
 * the kernel's ephemeral range is left alone).
 */
#define OPT_PORT_MIN 1024
#define OPT_PORT_MAX 49151
long opt_port(const char *s, struct opt_parse *p);

/*
 * A range of ports LO-HI, each from OPT_RANGE_MIN to OPT_RANGE_MAX, LO not
 * above HI, into *lo and *hi (-r of pool). Returns 0, or -1 as the parsers
 * above.
 */
#define OPT_RANGE_MIN 1024
#define OPT_RANGE_MAX 65535
int opt_port_range(const char *s, long *lo, long *hi, const char *what, struct opt_parse *p);

/*
 * A KEY operand (see proto_load_key): the key itself, or @FILE, into *key
 * (allocated) and *len. Returns 0, or -1: an empty key is a usage error,
 * a file that cannot be read, or is too long, a runtime failure. A key
 * taken with a doubt leaves p->warn set (err_cmdline_warn says it), as
 * ssh warns: a key itself that is the name of a file (@ forgotten?), a
 * key file that group or others may read. The last key given decides.
 */
int opt_key(const char *arg, char **key, size_t *len, struct opt_parse *p);

/*
 * -k of bind-input, bind-output and socket: the channel's 32-byte PSK
 * (noise_psk_from_key) from a KEY operand as opt_key reads it; the key
 * itself is wiped at once. Returns 0, or -1 as opt_key.
 */
int opt_psk(const char *arg, unsigned char psk[32], struct opt_parse *p);

/*
 * Parse s as a whole decimal number in [min, max]. Returns 0, or -1 with
 * errno EINVAL (not a number) or ERANGE (out of range).
 */
int opt_long(const char *s, long min, long max, long *out);

/*
 * Parse a byte count: a decimal number with an optional suffix K, M or G
 * (times 1024, 1024^2, 1024^3), in [min, max]. Returns it, or -1 with
 * errno EINVAL (malformed) or ERANGE (out of range).
 */
long opt_bytes(const char *s, long min, long max);

/*
 * Parse a duration in seconds, with an optional fraction ("2", "0.5"),
 * into milliseconds in [min_ms, max_ms]. Returns it, or -1 with errno
 * EINVAL (malformed) or ERANGE (out of range).
 */
long opt_ms(const char *s, long min_ms, long max_ms);

/*
 * A duration in milliseconds as the options write it, in seconds: "30",
 * "0.25", "0.001" (what opt_ms reads back), into buf; returns buf. Every
 * message that tells a duration tells it so, with " s" after it.
 */
#define OPT_SECS_MAX 32
const char *opt_secs(long long ms, char buf[OPT_SECS_MAX]);

#endif
