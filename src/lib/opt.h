/* opt: the options every tool shares, and range-checked numbers. */
#ifndef SP_OPT_H
#define SP_OPT_H

/*
 * Handle -h/-help/--help (print usage to stdout, exit 0) and
 * -V/-version/--version ("NAME VERSION", exit 0) anywhere before "--".
 * optstring is the tool's getopt string, so option arguments are skipped.
 * Also silences getopt's own messages: opt_bad reports them instead.
 */
void opt_common(int argc, char **argv, const char *optstring, const char *usage);

/*
 * After getopt returned '?' or ':' (with opterr = 0): exit with a usage
 * error naming the unknown option, or the option missing its argument.
 */
_Noreturn void opt_bad(const char *optstring, const char *synopsis);

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
 * in [0, max]; returns milliseconds or -1.
 */
long opt_seconds_ms(const char *s, long max);

/*
 * Like opt_seconds_ms, but exits with a usage error naming the option;
 * zero is refused unless allow_zero.
 */
long opt_seconds_or_die(const char *s, int allow_zero, long max, const char *what,
			const char *synopsis);

#endif
