#include "penalty.h"

#include <stdio.h>
#include <string.h>

static struct penalty_src *find(const struct penalty *p, const char *ip)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->src[i].ip, ip) == 0)
			return (struct penalty_src *)&p->src[i];
	return NULL;
}

/* A slot for ip: its own, a new one, or the one idle longest. */
static struct penalty_src *slot(struct penalty *p, const char *ip)
{
	struct penalty_src *s = find(p, ip), *old;

	if (s)
		return s;
	if (p->n < PENALTY_SOURCES) {
		s = &p->src[p->n++];
	} else {
		old = &p->src[0];
		for (size_t i = 1; i < p->n; i++)
			if (p->src[i].last < old->last)
				old = &p->src[i];
		s = old;
	}
	memset(s, 0, sizeof *s);
	snprintf(s->ip, sizeof s->ip, "%s", ip);
	return s;
}

long long penalty_when(const struct penalty *p, const char *ip, long long now)
{
	const struct penalty_src *s = find(p, ip);
	long long at = now;

	if (s && s->until > at)
		at = s->until;
	if (p->next > at)
		at = p->next;
	return at;
}

unsigned penalty_judged(struct penalty *p, const char *ip, int ok, long long now)
{
	struct penalty_src *s;
	long wait;

	if (ok) {
		if ((s = find(p, ip)) != NULL)
			s->fails = 0, s->until = 0;
		return 0;
	}
	if (now - p->window_start >= PENALTY_WINDOW_MS) {
		p->window_start = now;
		p->recent = 0;
	}
	if (++p->recent >= PENALTY_FREE)
		p->next = now + PENALTY_SPACING_MS;
	s = slot(p, ip);
	s->last = now;
	if (++s->fails >= PENALTY_FREE) {
		wait = 1000L << (s->fails - PENALTY_FREE < 6 ? s->fails - PENALTY_FREE : 6);
		s->until = now + (wait < PENALTY_MAX_MS ? wait : PENALTY_MAX_MS);
	}
	return s->fails;
}
