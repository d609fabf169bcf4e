#include "call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadline.h"
#include "io.h"
#include "listener.h"
#include "mem.h"
#include "proc.h"
#include "service.h"

/* A service call: the program run for one master's CALL (service.c). */
struct call {
	struct calls *cs;
	struct service *service;
	struct session *owner; /* NULL once its master's connection is gone */
	char name[PROTO_NAME_MAX + 1];
	char stream[PROTO_STREAM_HEX + 1];
	size_t slot, nslots; /* its slice of the poll set */
};

void calls_init(struct calls *cs, const struct call_config *cfg)
{
	memset(cs, 0, sizeof *cs);
	cs->cfg = *cfg;
}

/* The service of this name: DIR/NAME, an executable regular file. Returns its path (malloc'd). */
static char *service_path(const char *dir, const char *name)
{
	char *path;
	struct stat st;
	size_t len;

	if (!dir)
		return NULL;
	len = strlen(dir) + strlen(name) + 2;
	if (!(path = malloc(len)))
		return NULL;
	snprintf(path, len, "%s/%s", dir, name);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static size_t running(const struct calls *cs)
{
	size_t n = 0;

	for (size_t i = 0; i < cs->ncalls; i++)
		n += cs->all[i]->service->state != SERVICE_ENDED;
	return n;
}

/* A line the program wrote to its standard error, passed on with the call's name. */
static void said(void *arg, const char *text, unsigned long long held)
{
	struct call *c = arg;
	struct call_event ev = {.type = CALL_EV_SAID, .name = c->name, .stream = c->stream,
				.text = text, .held = held, .owner = c->owner};

	if (c->cs->cfg.on_event)
		c->cs->cfg.on_event(&ev, c->cs->cfg.arg);
}

/* The call's service, waiting for its caller on a port of the grant's. Returns 0 or -1 (refused).
 */
static int call_open(struct calls *cs, struct call *c, const char *path, struct grant_request *rq)
{
	const struct call_config *cc = &cs->cfg;
	struct listener l;
	struct service_config sc = {.name = rq->name,
				    .program = path,
				    .token = rq->token,
				    .addr = rq->ip,
				    .listener = &l,
				    .run_ms = cc->run_ms,
				    .grace_ms = cc->grace_ms,
				    .psk = cc->policy->psk,
				    .said = said,
				    .said_arg = c};

	if (grant_token(rq) < 0 || grant_listen(cc->policy, rq, &l) < 0)
		return -1;
	if (!(c->service = service_open(&sc)))
		return grant_refuse(rq, "%s", strerror(errno));
	return 0;
}

int calls_start(struct calls *cs, struct grant_request *rq)
{
	const struct call_config *cc = &cs->cfg;
	struct call *c = NULL;
	char *path;
	int r = -1;

	if (!(path = service_path(cc->dir, rq->name)))
		return grant_refuse(rq, "no such service");
	if (running(cs) >= (size_t)cc->max_running) {
		grant_refuse(rq, "too many services running (%ld)", cc->max_running);
		goto out;
	}
	if (grant_within_session(cc->policy, rq) < 0)
		goto out;
	if (mem_reserve(&cs->all, &cs->cap, cs->ncalls + 1, sizeof *cs->all, 8) < 0 ||
	    !(c = calloc(1, sizeof *c))) {
		grant_refuse(rq, "out of memory");
		goto out;
	}
	c->cs = cs;
	snprintf(c->name, sizeof c->name, "%s", rq->name);
	if (call_open(cs, c, path, rq) < 0)
		goto out;
	c->owner = rq->owner;
	snprintf(c->stream, sizeof c->stream, "%s", rq->stream);
	cs->all[cs->ncalls++] = c;
	rq->port = service_port(c->service);
	rq->taken = -1;
	c = NULL;
	r = 0;
out:
	free(c);
	free(path);
	return r;
}

/* A call has ended: its master hears how; its connection closes gracefully. */
static void call_end(struct calls *cs, size_t i)
{
	struct call *c = cs->all[i];
	struct service *sv = c->service;
	struct call_event ev = {.type = CALL_EV_ENDED,
				.name = c->name,
				.stream = c->stream,
				.program = sv->program,
				.status = sv->status,
				.why = sv->why,
				.exec_err = sv->exec_err,
				.owner = c->owner};

	if (cs->cfg.on_event)
		cs->cfg.on_event(&ev, cs->cfg.arg);
	/* Our FIN follows everything the program wrote; then the peer is drained. */
	if (sv->fd >= 0) {
		linger_add(cs->cfg.linger, sv->fd, cs->cfg.linger_ms);
		sv->fd = -1;
	}
	service_free(sv);
	free(c);
	cs->all[i] = cs->all[--cs->ncalls];
}

size_t calls_nfds(const struct calls *cs) { return cs->ncalls * (LISTENER_MAX + 1); }

size_t calls_pollfds(struct calls *cs, struct pollfd *pfd, long long now, long long *at)
{
	size_t n = 0;

	for (size_t i = 0; i < cs->ncalls; i++) {
		struct call *c = cs->all[i];

		c->slot = n;
		c->nslots = service_pollfds(c->service, pfd + n, now);
		n += c->nslots;
		*at = deadline_earlier(*at, deadline_in(service_timeout(c->service, now), now));
	}
	return n;
}

void calls_handle(struct calls *cs, const struct pollfd *pfd)
{
	for (size_t i = 0; i < cs->ncalls; i++) {
		struct call *c = cs->all[i];

		service_handle(c->service, pfd + c->slot, c->nslots, io_now_ms());
		if (c->service->state == SERVICE_ENDED)
			call_end(cs, i--);
	}
}

/* pid was reaped with status: 1 when it was a call's leader (that call has ended). */
static int calls_reaped(struct calls *cs, pid_t pid, int status)
{
	for (size_t i = 0; i < cs->ncalls; i++)
		if (service_reaped(cs->all[i]->service, pid, status))
			return 1;
	return 0;
}

/* The running calls' leaders into pids (room for cs->ncalls); returns how many. */
static size_t calls_leaders(const struct calls *cs, pid_t *pids)
{
	size_t n = 0;

	for (size_t i = 0; i < cs->ncalls; i++)
		if (cs->all[i]->service->state == SERVICE_RUNNING)
			pids[n++] = cs->all[i]->service->pid;
	return n;
}

void calls_forget(struct calls *cs, const struct session *owner)
{
	for (size_t i = 0; i < cs->ncalls; i++)
		if (cs->all[i]->owner == owner) {
			cs->all[i]->owner = NULL;
			if (cs->all[i]->service->state == SERVICE_WAITING)
				service_stop(cs->all[i]->service);
		}
}

void calls_reap(struct calls *cs)
{
	pid_t *live, pid;
	int status;

	while ((pid = proc_reap(&status)) > 0)
		calls_reaped(cs, pid, status);
	if (!cs->cfg.dir)
		return;
	live = calloc(cs->ncalls + 1, sizeof *live);
	if (!live)
		return; /* at the next call's end, or ours */
	proc_kill_strays(live, calls_leaders(cs, live));
	free(live);
}

void calls_end(struct calls *cs, int sigfd)
{
	if (cs->ncalls) {
		pid_t *pids = calloc(cs->ncalls, sizeof *pids);
		size_t i, n = pids ? calls_leaders(cs, pids) : 0;

		if (pids)
			proc_end_groups(pids, n, cs->cfg.grace_ms, sigfd, NULL, NULL);
		else /* no memory: TERM at least */
			for (i = 0; i < cs->ncalls; i++)
				service_stop(cs->all[i]->service);
		free(pids);
		calls_free(cs);
	}
	if (cs->cfg.dir)
		proc_end_children(cs->cfg.grace_ms, NULL, NULL); /* strays (calls_reap), if any */
}

void calls_free(struct calls *cs)
{
	while (cs->ncalls) {
		service_free(cs->all[cs->ncalls - 1]->service);
		free(cs->all[--cs->ncalls]);
	}
	free(cs->all);
	cs->all = NULL;
	cs->cap = 0;
}
