/*
 * call: the pool's service calls (pool -x). A master's CALL of NAME, when
 * DIR/NAME is an executable regular file and fewer than -S services run,
 * is a grant as a PORT's is (grant.c: the -n cap, the token, the port on
 * the -r range), whose sender's connection the program then runs on
 * (service.c: under a leader child, in a process group of its own, for at
 * most -R). When it ends, its caller hears how (CALL_EV_ENDED, for
 * session_call_ended). The program whose children the calls are reaps
 * through calls_reap when SIGCHLD comes, and ends them with calls_end.
 * Poll-driven; never prints or exits: what happens, and
 * what the programs write to their standard error, is reported through
 * cfg.on_event.
 */
#ifndef SP_CALL_H
#define SP_CALL_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "grant.h"
#include "linger.h"

enum call_ev {
	CALL_EV_ENDED, /* a call ended: owner (NULL when gone) hears how; then it is freed */
	CALL_EV_SAID   /* a line of the program's standard error (text), or held lines dropped */
};

struct call_event {
	enum call_ev type;
	const char *name, *stream; /* the service's, the caller's stream */
	const char *text;	   /* SAID: the line (linelog.c), or NULL: ... */
	unsigned long long held;   /* ... this many lines were dropped (over the rate) */
	const char *program;	   /* the service's path */
	int status;		   /* what a shell would say of its exit, or -1: it never ran */
	const char *why;	   /* NULL, or how it ended (its run cap), or why it never ran */
	int exec_err;		   /* the program could not be started: its exec's errno */
	struct session *owner;
};

struct call_config {
	struct grant_policy *policy;
	const char *dir;	   /* -x: the services */
	long run_ms;		   /* -R */
	long grace_ms;		   /* after TERM at the run cap, KILL this much later */
	long max_running;	   /* -S */
	struct linger_set *linger; /* where a call's connection drains once it ended */
	long linger_ms;
	void (*on_event)(const struct call_event *ev, void *arg);
	void *arg;
};

struct calls {
	struct call_config cfg;
	struct call **all;
	size_t ncalls, cap;
};

void calls_init(struct calls *cs, const struct call_config *cfg);

/* A CALL: returns 0 with rq's port and token filled in, or -1 with rq->why. */
int calls_start(struct calls *cs, struct grant_request *rq);

/* The most pollfds calls_pollfds can append. */
size_t calls_nfds(const struct calls *cs);

/*
 * Append what the calls want polled to pfd (room for calls_nfds);
 * returns how many. *at becomes the earlier of itself and when one must
 * be handled.
 */
size_t calls_pollfds(struct calls *cs, struct pollfd *pfd, long long now, long long *at);

/* Act on poll's answer, pfd being what calls_pollfds filled; ended calls are reported, and go. */
void calls_handle(struct calls *cs, const struct pollfd *pfd);

/*
 * Reap every child that ended (our children are the calls' leaders): each
 * leader's call ends as calls_handle reports. With -x, a child that is no
 * running call's leader is a stray (orphans of a leader killed at the end
 * of -R's grace come back to us, their subreaper) and is killed; with no
 * memory for that, it waits for the next reap.
 */
void calls_reap(struct calls *cs);

/* owner's connection is gone: a call waiting for its caller goes; one running ends as it will. */
void calls_forget(struct calls *cs, const struct session *owner);

/*
 * The program ends: every running call's whole process group gets
 * SIGTERM, then SIGKILL after the grace (cfg.grace_ms), reaped meanwhile
 * (sigfd: the self-pipe, see proc_end_groups); with no memory, SIGTERM
 * at least. Then, with -x, every stray child as well. Every call is
 * freed, reporting none.
 */
void calls_end(struct calls *cs, int sigfd);

/* Free every call, reporting none (their leaders are reaped, or ours to leave). */
void calls_free(struct calls *cs);

#endif
