#include "guard.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

static const char *on_connect(void *arg, const char *ip)
{
	struct guard *g = arg;

	if (g->addr[0] && strcmp(ip, g->addr) != 0)
		return "address not allowed";
	if (g->tlen && g->spent)
		return "token already used";
	return NULL;
}

static const char *on_line(void *arg, const char *line, size_t len, int complete)
{
	struct guard *g = arg;

	if (!complete)
		return "first line is not the token";
	if (g->spent)
		return "token already used";
	/* The length is no secret (every token has it); the bytes are compared in constant time. */
	if (len != g->tlen || !mem_equal_ct(line, g->token, len))
		return "wrong token";
	g->spent = 1;
	return NULL;
}

int guard_init(struct guard *g, const char *token, const char *addr, long wait_ms)
{
	memset(g, 0, sizeof *g);
	if ((token && strlen(token) > GUARD_TOKEN_MAX) || (addr && strlen(addr) >= sizeof g->addr)) {
		errno = EINVAL;
		return -1;
	}
	if (token) {
		g->tlen = strlen(token);
		memcpy(g->token, token, g->tlen);
	}
	if (addr) {
		memcpy(g->addr, addr, strlen(addr) + 1);
		net_plain_ip(g->addr);
	}
	g->hook.on_connect = on_connect;
	g->hook.on_line = g->tlen ? on_line : NULL;
	g->hook.line_max = g->tlen + 1; /* a CR may end it */
	g->hook.wait_ms = wait_ms;
	g->hook.late = "no token in time";
	g->hook.arg = g;
	return 0;
}

void guard_wipe(struct guard *g)
{
	mem_wipe(g->token, sizeof g->token);
}
