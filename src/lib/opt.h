/* opt: the options every tool shares, and range-checked numbers. */
#ifndef SP_OPT_H
#define SP_OPT_H

#include <stddef.h>

/*
 * The next option, as getopt(3) with optstring, which must list h and V:
 * -h, -help and --help print usage to stdout and exit 0; -V, -version and
 * --version print "NAME VERSION" and exit 0 (socket-1.1 spelled them with
 * one dash). getopt's own messages are off: on '?' or ':' call opt_bad.
 * The one parser of every tool's command line; options may follow
 * operands (glibc permutes), "--" ends them.
 */
int opt_next(int argc, char **argv, const char *optstring, const char *usage);

/*
 * After opt_next returned '?' or ':': exit with a usage error naming the
 * unknown option, or the option missing its argument.
 */
_Noreturn void opt_bad(char **argv, const char *optstring, const char *synopsis);

/*
 * A PORT operand of the tools that bind or reach a buffer: a number from
 * OPT_PORT_MIN to OPT_PORT_MAX (registered ports, so no root is needed and
 * the kernel's ephemeral range is left alone). Exits with the one usage
 * error for it otherwise.
 */
#define OPT_PORT_MIN 1024
#define OPT_PORT_MAX 49151
long opt_port_or_die(const char *s, const char *synopsis);

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

/* Like opt_bytes, but exits with a usage error naming the option and the bounds. */
long opt_bytes_or_die(const char *s, long min, long max, const char *what, const char *synopsis);

/* Like opt_long, but exits with a usage error naming the option. */
long opt_long_or_die(const char *s, long min, long max, const char *what, const char *synopsis);

/*
 * Parse a duration in seconds, with an optional fraction ("2", "0.5"),
 * into milliseconds in [min_ms, max_ms]. Returns it, or -1 with errno
 * EINVAL (malformed) or ERANGE (out of range).
 */
long opt_ms(const char *s, long min_ms, long max_ms);

/* Like opt_ms, but exits with a usage error naming the option and the bounds. */
long opt_ms_or_die(const char *s, long min_ms, long max_ms, const char *what,
		   const char *synopsis);

/*
 * A KEY operand (see proto_load_key): the key itself, or @FILE. An empty
 * key is a usage error; a file that cannot be read, or is too long, a
 * runtime one (exit 1): both end the program with the one message for it.
 */
void opt_key_or_die(const char *arg, char **key, size_t *len, const char *synopsis);

/*
 * -k of bind-input, bind-output and socket: the channel's 32-byte PSK
 * (noise_psk_from_key) from a KEY operand as opt_key_or_die reads it; the
 * key itself is wiped at once. Fails as opt_key_or_die.
 */
void opt_psk_or_die(const char *arg, unsigned char psk[32], const char *synopsis);

#endif
