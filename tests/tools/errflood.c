/*
 * errflood: drive the log limiter (src/lib/err.c) for the tests.
 *   errflood same N     N identical lines at once
 *   errflood distinct N N lines from one call site, each different
 *   errflood spaced N MS  N identical lines, MS milliseconds apart
 *   errflood kinds N    N lines through one call, of two kinds in turn (err_warn_as)
 * Everything goes to stderr, through err_warn, as a daemon's log would.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"

int main(int argc, char **argv)
{
	static const char kinds[2];
	long n, ms = 0;

	err_init("errflood");
	if (argc < 3)
		return 2;
	n = atol(argv[2]);
	if (argc > 3)
		ms = atol(argv[3]);
	for (long i = 0; i < n; i++) {
		if (strcmp(argv[1], "same") == 0 || strcmp(argv[1], "spaced") == 0)
			err_warn("accept: Too many open files");
		else if (strcmp(argv[1], "kinds") == 0)
			err_warn_as(&kinds[i % 2], "sender 127.0.0.1 %ld: %s", 40000 + i,
				    i % 2 ? "closed" : "refused");
		else
			err_warn("sender 127.0.0.1 %ld: refused", 40000 + i);
		if (ms) {
			struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	err_warn("the end");
	return 0;
}
