/*
 * guard: the pool's admission policy for a buffer's binding, installed as
 * the binding's hooks (binding.h). Every grant is a ticket: a one-time
 * token, the only address its sender may come from, and a tag the pool
 * knows the sender by. A sender is admitted when its first line is the
 * token of an unused ticket for its address; the ticket is spent. A once
 * binding has one ticket over its life; a lasting buffer (pool -l) takes
 * new tickets as masters come.
 */
#ifndef SP_GUARD_H
#define SP_GUARD_H

#include "binding.h"
#include "net.h"

#define GUARD_TOKEN_MAX 128

struct guard_ticket {
	char token[GUARD_TOKEN_MAX + 1];
	size_t tlen;
	char addr[NET_IPLEN]; /* "": any address */
	void *tag;
	int resume; /* its sender's stream may resume elsewhere (binding_admit) */
};

struct guard {
	struct binding_guard hook; /* give &hook as binding_config.guard */
	struct guard_ticket *t;
	size_t n, cap;
	int once;  /* a once binding: after its ticket, "token already used" */
	int spent; /* a ticket was used */
};

/*
 * Set g up with no ticket; once: the binding is a once binding. wait_ms is
 * the time a sender has for its token (0: the binding's default). g must
 * stay where it is while the binding lives. Returns 0.
 */
int guard_init(struct guard *g, int once, long wait_ms);

/*
 * Add a ticket: token (at most GUARD_TOKEN_MAX bytes), the sender's
 * numeric address (NULL: any), a tag and whether its stream may resume.
 * Returns 0, or -1 with errno EINVAL (too long) or ENOMEM.
 */
int guard_add(struct guard *g, const char *token, const char *addr, void *tag, int resume);

/* Cancel the unused tickets with this tag (their master has gone). */
void guard_drop(struct guard *g, const void *tag);

/* Unused tickets. */
size_t guard_waiting(const struct guard *g);

/* Wipe the tokens and free the tickets. */
void guard_free(struct guard *g);

#endif
