#include "guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static void drop(struct guard *g, size_t i)
{
	mem_wipe(g->t[i].token, sizeof g->t[i].token);
	g->t[i] = g->t[--g->n];
}

static int addr_ok(const struct guard_ticket *t, const char *ip)
{
	return !t->addr[0] || strcmp(ip, t->addr) == 0;
}

static const char *on_connect(void *arg, const char *ip)
{
	struct guard *g = arg;

	for (size_t i = 0; i < g->n; i++)
		if (addr_ok(&g->t[i], ip))
			return NULL;
	if (g->spent && !g->n)
		return "token already used";
	return g->n ? "address not allowed" : "no grant waits";
}

static const char *on_line(void *arg, const char *ip, const char *line, size_t len, int complete,
			   struct binding_admit *adm)
{
	struct guard *g = arg;
	size_t hit = (size_t)-1;

	if (!complete)
		return "first line is not the token";
	/*
	 * Every ticket is compared, each in constant time: which one matched,
	 * or how much of a guess was right, shows in no timing. The length is
	 * no secret (every token has it).
	 */
	for (size_t i = 0; i < g->n; i++)
		if (len == g->t[i].tlen && mem_equal_ct(line, g->t[i].token, len) &&
		    addr_ok(&g->t[i], ip))
			hit = i;
	if (hit == (size_t)-1)
		return g->spent && !g->n ? "token already used" : "wrong token";
	adm->tag = g->t[hit].tag;
	adm->resume = g->t[hit].resume;
	g->spent = 1;
	drop(g, hit);
	return NULL;
}

int guard_init(struct guard *g, int once, long wait_ms)
{
	memset(g, 0, sizeof *g);
	g->once = once;
	g->hook.on_connect = on_connect;
	g->hook.on_line = on_line;
	g->hook.line_max = GUARD_TOKEN_MAX + 1; /* a CR may end it */
	g->hook.wait_ms = wait_ms;
	g->hook.late = "no token in time";
	g->hook.arg = g;
	return 0;
}

int guard_add(struct guard *g, const char *token, const char *addr, void *tag, int resume)
{
	struct guard_ticket *t;

	if (strlen(token) > GUARD_TOKEN_MAX || (addr && strlen(addr) >= sizeof t->addr)) {
		errno = EINVAL;
		return -1;
	}
	if (mem_reserve(&g->t, &g->cap, g->n + 1, sizeof *g->t, 4) < 0)
		return -1;
	t = &g->t[g->n++];
	memset(t, 0, sizeof *t);
	t->tlen = strlen(token);
	memcpy(t->token, token, t->tlen);
	if (addr) {
		memcpy(t->addr, addr, strlen(addr) + 1);
		net_plain_ip(t->addr);
	}
	t->tag = tag;
	t->resume = resume;
	return 0;
}

void guard_drop(struct guard *g, const void *tag)
{
	for (size_t i = g->n; i-- > 0;)
		if (g->t[i].tag == tag)
			drop(g, i);
}

size_t guard_waiting(const struct guard *g)
{
	return g->n;
}

void guard_free(struct guard *g)
{
	while (g->n)
		drop(g, g->n - 1);
	free(g->t);
	g->t = NULL;
	g->cap = 0;
}
