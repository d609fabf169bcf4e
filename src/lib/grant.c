#include "grant.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"
#include "deadline.h"
#include "err.h"
#include "fifo.h"
#include "guard.h"
#include "io.h"
#include "listener.h"
#include "mem.h"
#include "name.h"
#include "net.h"
#include "streams.h"
#include "wire.h"

#define ONCE_CONNS 4	    /* senders a once grant's binding holds while checking tokens */
#define LASTING_CONNS 64    /* senders a lasting buffer (-l) serves at once */
#define PRELOAD_CHUNK 65536 /* bytes of NAME.unread read at a time */

/* What the pool knows of a name across grants: its streams, its lasting buffer (-l). */
struct name_entry {
	char name[PROTO_NAME_MAX + 1];
	struct streams *streams;
	struct buffer *lasting;
};

/*
 * A buffer the pool serves: a once binding for one grant, or with -l the
 * lasting binding of a name, which takes a ticket for each grant.
 */
struct buffer {
	struct grants *gs;
	struct name_entry *entry;
	char name[PROTO_NAME_MAX + 1];
	struct binding *binding;
	struct guard guard;
	size_t users;	     /* grants waiting for it or using it */
	size_t slot, nslots; /* its slice of the poll set */
};

/* A grant: one master's stream into one buffer. */
struct grant {
	struct buffer *buffer;
	struct session *owner; /* NULL once its master's connection is gone */
	int connected;	       /* its sender passed the guard */
	char stream[PROTO_STREAM_HEX + 1];
	unsigned long long base; /* the stream's offset where this grant's sender starts */
};

static void tell(struct grants *gs, struct grant_event ev)
{
	if (gs->cfg.on_event)
		gs->cfg.on_event(&ev, gs->cfg.arg);
}

static void note(struct grants *gs, const char *name, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What happened to name's buffer, for the log; err: what failed, and why. */
static void note(struct grants *gs, const char *name, int err, const char *fmt, ...)
{
	char what[PATH_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	tell(gs,
	     (struct grant_event){.type = GRANT_EV_NOTE, .name = name, .what = what, .err = err});
}

/* ---- what every grant shares ---- */

int grant_refuse(struct grant_request *rq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rq->why, sizeof rq->why, fmt, ap);
	va_end(ap);
	return -1;
}

int grant_within_session(const struct grant_policy *gp, struct grant_request *rq)
{
	if (rq->granted < (size_t)gp->max_session)
		return 0;
	return grant_refuse(rq, "too many grants for one session (%ld)", gp->max_session);
}

int grant_token(struct grant_request *rq)
{
	if (proto_random_hex(rq->token, PROTO_TOKEN_HEX / 2) == 0)
		return 0;
	return grant_refuse(rq, "%s", strerror(errno));
}

static int listen_in_range(struct grant_policy *gp, struct listener *l, int *gai)
{
	char port[NET_PORTLEN];
	long span = gp->port_hi - gp->port_lo + 1;

	if (!gp->port_lo)
		return listener_open(l, gp->addr, "0", SOMAXCONN, gai);
	for (long k = 0; k < span; k++) {
		long cand = gp->port_lo + (gp->next_port - gp->port_lo + k) % span;

		snprintf(port, sizeof port, "%ld", cand);
		if (listener_open(l, gp->addr, port, SOMAXCONN, gai) == 0) {
			gp->next_port = cand + 1 > gp->port_hi ? gp->port_lo : cand + 1;
			return 0;
		}
		if (errno != EADDRINUSE && errno != EACCES)
			return -1;
	}
	*gai = 0;
	errno = EADDRNOTAVAIL;
	return -1;
}

int grant_listen(struct grant_policy *gp, struct grant_request *rq, struct listener *l)
{
	int gai = 0;

	if (listen_in_range(gp, l, &gai) == 0)
		return 0;
	if (errno == EADDRNOTAVAIL && gp->port_lo)
		return grant_refuse(rq, "no free port in %ld-%ld", gp->port_lo, gp->port_hi);
	return grant_refuse(rq, "cannot listen: %s", net_strerror(gai));
}

/* ---- names ---- */

void grants_init(struct grants *gs, const struct grant_config *cfg)
{
	memset(gs, 0, sizeof *gs);
	gs->cfg = *cfg;
}

/* The buffer path of a name, with suffix ("" or a file's beside it). */
static char *path_of(const struct grants *gs, const char *name, const char *suffix)
{
	char *base = fifo_resolve(name, gs->cfg.dir), *path;
	size_t len;

	if (!base)
		return NULL;
	len = strlen(base) + strlen(suffix) + 1;
	if ((path = malloc(len)))
		snprintf(path, len, "%s%s", base, suffix);
	free(base);
	return path;
}

static struct name_entry *entry_find(const struct grants *gs, const char *name)
{
	for (size_t i = 0; i < gs->nnames; i++)
		if (strcmp(gs->names[i]->name, name) == 0)
			return gs->names[i];
	return NULL;
}

/* What the pool knows of name, made on first use: a previous pool's stream counts come back. */
static struct name_entry *entry_of(struct grants *gs, const char *name)
{
	struct name_entry *e = entry_find(gs, name);
	char *path;

	if (e)
		return e;
	if (mem_reserve(&gs->names, &gs->names_cap, gs->nnames + 1, sizeof *gs->names, 16) < 0 ||
	    !(e = calloc(1, sizeof *e)))
		return NULL;
	if (!(e->streams = streams_new())) {
		free(e);
		return NULL;
	}
	snprintf(e->name, sizeof e->name, "%s", name);
	if ((path = path_of(gs, name, STREAMS_SUFFIX)) != NULL) {
		int r = streams_load(e->streams, path, io_now_ms());

		if (r > 0)
			note(gs, name, 0, "%d stream%s to resume, from %s", r, err_plural((unsigned)r),
			     path);
		else if (r < 0)
			note(gs, name, errno, "%s not taken back", path);
		free(path);
	}
	gs->names[gs->nnames++] = e;
	return e;
}

/* What may still resume is written next to each buffer, and the names go. */
static void save_streams(struct grants *gs)
{
	for (size_t i = 0; i < gs->nnames; i++) {
		struct name_entry *e = gs->names[i];
		char *path = path_of(gs, e->name, STREAMS_SUFFIX);

		if (path && streams_save(e->streams, path) < 0)
			note(gs, e->name, errno, "saving its streams to %s", path);
		else if (path && streams_open(e->streams))
			note(gs, e->name, 0, "%u stream%s may resume; counts saved to %s",
			     streams_open(e->streams), err_plural(streams_open(e->streams)), path);
		free(path);
		streams_free(e->streams);
		free(e);
	}
	free(gs->names);
	gs->names = NULL;
	gs->nnames = gs->names_cap = 0;
}

/* ---- buffers ---- */

static struct grant *grant_find(const struct grants *gs, const void *tag, size_t *index)
{
	for (size_t i = 0; i < gs->ngrants; i++)
		if (gs->all[i] == tag) {
			if (index)
				*index = i;
			return gs->all[i];
		}
	return NULL;
}

static void grant_end(struct grants *gs, size_t i);

/* What the sender's close means for its stream (where it resumes), and for its grant. */
static void sender_closed(struct buffer *buf, const struct binding_event *ev)
{
	struct grants *gs = buf->gs;
	size_t i;
	struct grant *g = grant_find(gs, ev->tag, &i);

	if (!g)
		return;
	streams_set(buf->entry->streams, g->stream, g->base + ev->taken, !ev->err, io_now_ms());
	tell(gs, (struct grant_event){.type = GRANT_EV_BINDING, .name = buf->name, .binding = ev});
	/* A lasting buffer goes on and the grant is over; a once binding ends by itself. */
	if (buf == buf->entry->lasting)
		grant_end(gs, i);
}

static void on_binding_event(const struct binding_event *ev, void *arg)
{
	struct buffer *buf = arg;
	struct grant *g;

	switch (ev->type) {
	case BINDING_EV_ACCEPT:
		if ((g = grant_find(buf->gs, ev->tag, NULL)) != NULL)
			g->connected = 1;
		break;
	case BINDING_EV_CLOSE:
		sender_closed(buf, ev);
		break;
	case BINDING_EV_REJECT:
	case BINDING_EV_ERROR:
	case BINDING_EV_SAVED:
		tell(buf->gs, (struct grant_event){
				  .type = GRANT_EV_BINDING, .name = buf->name, .binding = ev});
		break;
	default:
		break;
	}
}

/*
 * What a previous binding of this name saved unread goes first into the
 * new one (a private regular file of ours only), and is then removed.
 */
static void preload(struct buffer *buf)
{
	char *path = path_of(buf->gs, buf->name, FIFO_UNREAD), chunk[PRELOAD_CHUNK];
	unsigned long long total = 0;
	struct stat st;
	ssize_t r;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		free(path);
		return;
	}
	if (fstat(fd, &st) < 0 || !io_private_file(&st)) {
		note(buf->gs, buf->name, 0, "%s is not a private file of ours; left alone", path);
		goto out;
	}
	while ((r = io_read(fd, chunk, sizeof chunk)) > 0) {
		if (binding_put(buf->binding, chunk, (size_t)r) < 0)
			break;
		total += (unsigned long long)r;
	}
	if (r == 0) {
		unlink(path);
		note(buf->gs, buf->name, 0,
		     "%llu byte%s a previous pool left unread go%s first, from %s", total,
		     err_plural(total), total == 1 ? "es" : "", path);
	} else {
		note(buf->gs, buf->name, errno, "reading %s", path);
	}
out:
	close(fd);
	free(path);
}

/* A buffer for rq's name: a once binding, or the lasting one of the name (-l). */
static struct buffer *buffer_open(struct grants *gs, struct name_entry *e, struct grant_request *rq)
{
	const struct grant_config *c = &gs->cfg;
	struct binding_config bc = {0};
	struct buffer *buf;
	struct listener l;
	char *path = NULL, why[64];
	pid_t holder = 0;
	int gai = 0;

	if (mem_reserve(&gs->buffers, &gs->buffers_cap, gs->nbuffers + 1, sizeof *gs->buffers, 16) <
		0 ||
	    !(buf = calloc(1, sizeof *buf))) {
		grant_refuse(rq, "out of memory");
		return NULL;
	}
	buf->gs = gs;
	buf->entry = e;
	snprintf(buf->name, sizeof buf->name, "%s", rq->name);
	guard_init(&buf->guard, !c->lasting, 0);
	if (!(path = fifo_resolve(rq->name, c->dir))) {
		grant_refuse(rq, "%s", strerror(errno));
		goto fail;
	}
	if (grant_listen(c->policy, rq, &l) < 0)
		goto fail;
	bc.path = path;
	bc.listener = &l;
	bc.flags = (c->lasting ? 0 : BINDING_ONCE) | (c->spool ? BINDING_SPOOL : 0);
	bc.max_conns = c->lasting ? LASTING_CONNS : ONCE_CONNS;
	bc.guard = &buf->guard.hook;
	/* Version 3: every sender is a channel; its token is the first line of its plaintext. */
	bc.psk = c->policy->psk;
	bc.prologue = WIRE_DATA;
	bc.on_event = on_binding_event;
	bc.arg = buf;
	if (!(buf->binding = binding_open(&bc, &holder, &gai))) {
		grant_refuse(rq, "buffer %s", fifo_why(errno, c->spool, holder, why, sizeof why));
		goto fail;
	}
	if (!c->spool)
		preload(buf);
	if (c->lasting)
		e->lasting = buf;
	gs->buffers[gs->nbuffers++] = buf;
	free(path);
	return buf;
fail:
	free(path);
	guard_free(&buf->guard);
	free(buf);
	return NULL;
}

/*
 * -l: the lasting buffer of a name whose NAME.unread a previous pool left
 * in the buffers' directory, opened now. Returns 1 when one was opened.
 */
static int recover_one(struct grants *gs, int dirfd, const char *file)
{
	struct stat st;
	char name[PROTO_NAME_MAX + 1];
	size_t len = strlen(file), suffix = strlen(FIFO_UNREAD);
	struct grant_request rq = {.cmd = PROTO_PORT, .offset = -1};
	struct name_entry *e;

	if (len <= suffix || len - suffix > PROTO_NAME_MAX ||
	    strcmp(file + len - suffix, FIFO_UNREAD) != 0)
		return 0;
	memcpy(name, file, len - suffix);
	name[len - suffix] = '\0';
	if (!name_ok(name) || name_reserved(name))
		return 0; /* not a name a master could have pushed: not ours */
	/* Checked before a buffer (a FIFO, a port) is made for it; preload checks it again, open. */
	if (fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !io_private_file(&st)) {
		note(gs, name, 0, "%s is not a private file of ours; left alone", file);
		return 0;
	}
	if (!(e = entry_of(gs, name))) {
		note(gs, name, errno, "not recovered");
		return 0;
	}
	if (e->lasting)
		return 0;
	rq.name = e->name;
	if (!buffer_open(gs, e, &rq)) {
		note(gs, name, 0, "not recovered: %s", rq.why);
		return 0;
	}
	return 1;
}

size_t grants_recover(struct grants *gs)
{
	const struct grant_config *c = &gs->cfg;
	struct dirent *d;
	size_t opened = 0;
	DIR *dir;

	if (!c->lasting || c->spool)
		return 0; /* a spool's file is the buffer; a once buffer waits for its grant */
	if (!(dir = opendir(c->dir ? c->dir : ".")))
		return 0;
	/* Bounded: by the directory, and by -N, which bounds lasting buffers as always. */
	while ((d = readdir(dir)) && gs->nbuffers < (size_t)c->max_grants)
		opened += (size_t)recover_one(gs, dirfd(dir), d->d_name);
	closedir(dir);
	return opened;
}

static void buffer_close(struct grants *gs, struct buffer *buf, int save)
{
	binding_close(buf->binding,
		      save); /* it tells what it saved, and where (on_binding_event) */
	buf->binding = NULL;
	if (buf->entry->lasting == buf)
		buf->entry->lasting = NULL;
	guard_free(&buf->guard);
	for (size_t i = 0; i < gs->nbuffers; i++)
		if (gs->buffers[i] == buf) {
			gs->buffers[i] = gs->buffers[--gs->nbuffers];
			break;
		}
	free(buf);
}

/* A buffer has ended (a once binding is drained, or its FIFO failed): its grants with it. */
static void buffer_end(struct grants *gs, struct buffer *buf, int save)
{
	for (size_t i = gs->ngrants; i-- > 0;)
		if (gs->all[i]->buffer == buf)
			grant_end(gs, i);
	buffer_close(gs, buf, save);
}

size_t grants_buffers(const struct grants *gs) { return gs->nbuffers; }

void grants_status(const struct grants *gs, struct status_text *t)
{
	for (size_t i = 0; i < gs->nbuffers; i++)
		binding_status(gs->buffers[i]->binding, t, gs->buffers[i]->name);
}

size_t grants_nfds(const struct grants *gs)
{
	size_t n = 0;

	for (size_t i = 0; i < gs->nbuffers; i++)
		n += binding_nfds(gs->buffers[i]->binding);
	return n;
}

size_t grants_pollfds(struct grants *gs, struct pollfd *pfd, long long now, long long *at)
{
	size_t n = 0;

	for (size_t i = 0; i < gs->nbuffers; i++) {
		struct buffer *buf = gs->buffers[i];

		buf->slot = n;
		buf->nslots = binding_pollfds(buf->binding, pfd + n);
		n += buf->nslots;
		*at = deadline_earlier(*at, deadline_in(binding_timeout(buf->binding), now));
	}
	return n;
}

void grants_handle(struct grants *gs, const struct pollfd *pfd)
{
	for (size_t i = 0; i < gs->nbuffers; i++) {
		struct buffer *buf = gs->buffers[i];
		size_t before = gs->nbuffers;

		if (binding_handle(buf->binding, pfd + buf->slot, buf->nslots) < 0) {
			note(gs, buf->name, errno, "buffer");
			buffer_end(gs, buf, 1);
		} else if (binding_done(buf->binding)) {
			buffer_end(gs, buf, 0);
		}
		if (gs->nbuffers < before)
			i--;
	}
}

/* ---- grants ---- */

/* A live once binding of this name (its FIFO would be "in use"). */
static int once_busy(const struct grants *gs, const char *name)
{
	for (size_t i = 0; i < gs->nbuffers; i++)
		if (gs->buffers[i] != gs->buffers[i]->entry->lasting &&
		    strcmp(gs->buffers[i]->name, name) == 0)
			return 1;
	return 0;
}

/* The caps a PORT must pass, in the order its master hears of them. Returns 0 or -1 (refused). */
static int port_allowed(struct grants *gs, struct grant_request *rq)
{
	const struct grant_config *c = &gs->cfg;
	const struct name_entry *e = entry_find(gs, rq->name);

	if (!c->lasting && once_busy(gs, rq->name))
		return grant_refuse(rq, "already bound");
	if (grant_within_session(c->policy, rq) < 0)
		return -1;
	if (gs->ngrants >= (size_t)c->max_grants)
		return grant_refuse(rq, "the pool holds all the grants it may (%ld)",
				    c->max_grants);
	/*
	 * -l: a name's buffer lasts until the pool ends (a reader that keeps
	 * reading never sees its end), with a FIFO and a listener: -N bounds
	 * those too, so a new name past it is refused, and names are retired
	 * by restarting the pool.
	 */
	if (c->lasting && !(e && e->lasting) && gs->nbuffers >= (size_t)c->max_grants)
		return grant_refuse(rq,
				    "the pool holds all the buffers it may (%ld): no new name "
				    "until it restarts",
				    c->max_grants);
	return 0;
}

int grants_port(struct grants *gs, struct grant_request *rq)
{
	struct name_entry *e;
	struct buffer *buf;
	struct grant *g = NULL;
	long long r;

	if (port_allowed(gs, rq) < 0)
		return -1;
	if (mem_reserve(&gs->all, &gs->grants_cap, gs->ngrants + 1, sizeof *gs->all, 16) < 0 ||
	    !(e = entry_of(gs, rq->name)) || !(g = calloc(1, sizeof *g)))
		return grant_refuse(rq, "%s", strerror(errno));
	if (grant_token(rq) < 0 || !(buf = e->lasting ? e->lasting : buffer_open(gs, e, rq))) {
		free(g);
		return -1;
	}
	/* Where this stream stands here: known, new (its master starts at 0), or unknown. */
	r = streams_get(e->streams, rq->stream);
	if (r < 0 && rq->offset == 0)
		r = 0;
	g->buffer = buf;
	g->owner = rq->owner;
	snprintf(g->stream, sizeof g->stream, "%s", rq->stream);
	g->base = r >= 0	   ? (unsigned long long)r
		  : rq->offset > 0 ? (unsigned long long)rq->offset
				   : 0;
	if (guard_add(&buf->guard, rq->token, rq->ip, g, rq->offset >= 0) < 0) {
		grant_refuse(rq, "%s", strerror(errno));
		if (buf->users == 0 && buf != e->lasting)
			buffer_close(gs, buf, 0);
		free(g);
		return -1;
	}
	buf->users++;
	gs->all[gs->ngrants++] = g;
	rq->port = binding_port(buf->binding);
	rq->taken = r;
	return 0;
}

/* A grant is over: its sender closed (-l), its binding ended, or it was cancelled. */
static void grant_end(struct grants *gs, size_t i)
{
	struct grant *g = gs->all[i];
	struct session *owner = g->owner;

	guard_drop(&g->buffer->guard, g);
	g->buffer->users--;
	gs->all[i] = gs->all[--gs->ngrants];
	free(g);
	if (owner)
		tell(gs, (struct grant_event){.type = GRANT_EV_ENDED, .owner = owner});
}

/* Its master left before its sender came: a once binding nobody will use goes too. */
static void grant_cancel(struct grants *gs, size_t i)
{
	struct buffer *buf = gs->all[i]->buffer;

	note(gs, buf->name, 0, "its master left before connecting; cancelled");
	grant_end(gs, i);
	if (buf != buf->entry->lasting && buf->users == 0)
		buffer_close(gs, buf, 0);
}

void grants_forget(struct grants *gs, const struct session *owner)
{
	for (size_t i = gs->ngrants; i-- > 0;) {
		if (gs->all[i]->owner != owner || gs->all[i]->connected)
			continue;
		gs->all[i]->owner = NULL;
		grant_cancel(gs, i);
	}
	for (size_t i = 0; i < gs->ngrants; i++)
		if (gs->all[i]->owner == owner)
			gs->all[i]->owner = NULL;
}

void grants_free(struct grants *gs)
{
	while (gs->nbuffers)
		buffer_close(gs, gs->buffers[0], 1);
	while (gs->ngrants)
		free(gs->all[--gs->ngrants]);
	save_streams(gs);
	free(gs->buffers);
	free(gs->all);
	gs->buffers = NULL;
	gs->all = NULL;
	gs->buffers_cap = gs->grants_cap = 0;
}
