/*
 * deadline: the one rule the poll loops wake by. Every part of a loop
 * says when it must be handled next as an absolute io_now_ms() time (-1:
 * never by itself); the loop keeps the earliest and turns it into poll's
 * timeout once:
 *
 *	long long at = -1;
 *	at = deadline_earlier(at, s->reply_by);
 *	at = deadline_earlier(at, deadline_in(listener_timeout(&l, now), now));
 *	poll(pfd, n, deadline_timeout(at, now));
 */
#ifndef SP_DEADLINE_H
#define SP_DEADLINE_H

/* The earlier of two absolute times, where -1 (or any negative) is never. */
long long deadline_earlier(long long a, long long b);

/* The absolute time of a relative poll timeout ms (-1: never) from now. */
long long deadline_in(int ms, long long now);

/* poll's timeout for an absolute time: -1 for never, 0 when past, else clamped to INT_MAX. */
int deadline_timeout(long long at, long long now);

#endif
