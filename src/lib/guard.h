/*
 * guard: the pool's admission policy for a grant's binding, installed as
 * the binding's hooks (binding.h). A sender must come from the master's
 * address, and its first line must be the grant's one-time token: the
 * first sender that presents it is admitted and spends it.
 */
#ifndef SP_GUARD_H
#define SP_GUARD_H

#include "binding.h"
#include "net.h"

#define GUARD_TOKEN_MAX 128

struct guard {
	struct binding_guard hook; /* give &hook as binding_config.guard */
	char token[GUARD_TOKEN_MAX + 1];
	size_t tlen; /* 0: no token line is asked for */
	int spent;
	char addr[NET_IPLEN]; /* "": any address */
};

/*
 * Set g up for token (NULL: none) and addr (a numeric address, NULL:
 * any); wait_ms is the time a sender has for the token (0: the binding's
 * default). g must stay where it is while the binding lives. Returns 0,
 * or -1 with errno EINVAL (token or address too long).
 */
int guard_init(struct guard *g, const char *token, const char *addr, long wait_ms);

/* Wipe the token. */
void guard_wipe(struct guard *g);

#endif
