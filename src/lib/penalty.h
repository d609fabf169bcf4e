/*
 * penalty: slowing down key guessers, the way OpenSSH's PerSourcePenalties
 * and MaxStartups do. A proof of the key is judged only when the penalty
 * allows: a source gets PENALTY_FREE wrong answers, then must wait a
 * second, doubling with each further failure up to PENALTY_MAX_MS; and
 * once PENALTY_FREE failures have come from anywhere within
 * PENALTY_WINDOW_MS, all judgements are spaced PENALTY_SPACING_MS apart,
 * so that no number of sources and connections gets more than about one
 * guess a second through. A right answer clears its source's count. The
 * table is bounded: past PENALTY_SOURCES sources the one idle longest is
 * forgotten.
 */
#ifndef SP_PENALTY_H
#define SP_PENALTY_H

#include <stddef.h>

#include "net.h"

#define PENALTY_FREE 3
#define PENALTY_MAX_MS 60000
#define PENALTY_WINDOW_MS 60000
#define PENALTY_SPACING_MS 1000
#define PENALTY_SOURCES 256

struct penalty {
	struct penalty_src {
		char ip[NET_IPLEN];
		unsigned fails;	  /* wrong answers in a row */
		long long until;  /* no judgement for it before this */
		long long last;	  /* its last failure */
	} src[PENALTY_SOURCES];
	size_t n;
	unsigned recent;	 /* failures from anywhere within the window */
	long long window_start;
	long long next;		 /* no judgement at all before this (once under attack) */
};

/* When a proof from ip may be judged: now, or a later io_now_ms time. */
long long penalty_when(const struct penalty *p, const char *ip, long long now);

/*
 * Record a judgement of a proof from ip: ok or not. Returns the failures
 * in a row from ip after it (0 after a right answer).
 */
unsigned penalty_judged(struct penalty *p, const char *ip, int ok, long long now);

#endif
