#define _GNU_SOURCE /* O_NOFOLLOW, O_CLOEXEC */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "mem.h"

#define SAMPLES_MAX 100000 /* a bound on what one round sorts */

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s", a, b);
	return s;
}

int status_open(struct status_file *sf, const char *path, const char *prom, const char *program)
{
	char suffix[32];

	*sf = (struct status_file){.program = program};
	/* Not ending in .prom: node_exporter reads only whole files. */
	snprintf(suffix, sizeof suffix, ".tmp-%ld", (long)getpid());
	if (!(sf->path = strdup(path)) || !(sf->tmp = join(path, suffix)))
		goto fail;
	if (prom && (!(sf->prom = strdup(prom)) || !(sf->promtmp = join(prom, suffix))))
		goto fail;
	return 0;
fail: /* nothing was written: nothing to unlink */
	free(sf->path);
	free(sf->tmp);
	free(sf->prom);
	free(sf->promtmp);
	*sf = (struct status_file){0};
	errno = ENOMEM;
	return -1;
}

/* Append to a growing buffer; a failure marks the round. */
__attribute__((format(printf, 5, 6))) static void put(struct status_text *t, char **buf,
						       size_t *len, size_t *cap, const char *fmt,
						       ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (int tries = 0; tries < 2; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = EINVAL;
			return;
		}
		if (*buf && (size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		if (mem_reserve(buf, cap, *len + (size_t)n + 1, 1, 4096) < 0) {
			t->err = ENOMEM;
			return;
		}
	}
}

/* A label's value in the samples: backslash, quote and newline escaped. */
static void add_label(struct status_text *t, const char *key, const char *value)
{
	size_t n = t->llen;

	n += (size_t)snprintf(t->labels + n, n < sizeof t->labels ? sizeof t->labels - n : 0,
			      "%s%s=\"", n ? "," : "", key);
	for (const char *p = value; *p && n + 3 < sizeof t->labels; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n')
			t->labels[n++] = '\\';
		t->labels[n++] = *p == '\n' ? 'n' : *p;
	}
	if (n + 2 > sizeof t->labels) {
		t->err = ENAMETOOLONG;
		return;
	}
	t->labels[n++] = '"';
	t->labels[n] = '\0';
	t->llen = n;
}

/* The end of the line before: its newline. */
static void end_line(struct status_text *t)
{
	if (t->tlen)
		put(t, &t->text, &t->tlen, &t->tcap, "\n");
}

void status_line(struct status_text *t, const char *kind, const char *name)
{
	end_line(t);
	t->kind = kind;
	t->llen = 0;
	t->labels[0] = '\0';
	add_label(t, "program", t->program);
	add_label(t, kind, name);
	put(t, &t->text, &t->tlen, &t->tcap, "%s=%s", kind, name);
}

void status_label(struct status_text *t, const char *key, const char *value)
{
	put(t, &t->text, &t->tlen, &t->tcap, " %s=%s", key, value);
	add_label(t, key, value);
}

static void sample(struct status_text *t, const char *key, const char *unit, long long n)
{
	put(t, &t->prom, &t->plen, &t->pcap, "socketpool_%s_%s%s{%s} %lld\n", t->kind, key, unit,
	    t->labels, n);
}

void status_num(struct status_text *t, const char *key, unsigned long long n)
{
	put(t, &t->text, &t->tlen, &t->tcap, " %s=%llu", key, n);
	sample(t, key, "", (long long)n);
}

void status_time(struct status_text *t, const char *key, long long epoch_s)
{
	char when[32] = "-";
	time_t s = (time_t)epoch_s;
	struct tm tm;

	if (epoch_s > 0 && gmtime_r(&s, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	put(t, &t->text, &t->tlen, &t->tcap, " %s=%s", key, when);
	if (epoch_s > 0)
		sample(t, key, "_timestamp_seconds", epoch_s);
}

/* Write len bytes as path, through tmp: a reader sees the old file or the new one. */
static int replace(const char *path, const char *tmp, const char *p, size_t len)
{
	int fd, saved;

	unlink(tmp); /* ours from a run before, or planted: never written through */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (io_write_all(fd, p, len) < 0 || close(fd) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A sample's metric name: what comes before its labels. */
static size_t name_len(const char *line)
{
	return strcspn(line, "{ ");
}

struct sample_ref {
	const char *line;
	size_t at; /* its place: the sort keeps a metric's samples in the text's order */
};

static int by_metric(const void *a, const void *b)
{
	const struct sample_ref *x = a, *y = b;
	size_t nx = name_len(x->line), ny = name_len(y->line);
	int c = strncmp(x->line, y->line, nx < ny ? nx : ny);

	if (c == 0 && nx != ny)
		c = nx < ny ? -1 : 1;
	return c ? c : (x->at > y->at) - (x->at < y->at);
}

/*
 * The samples grouped by metric, each group after its TYPE line, as the
 * text format wants them (the round made them line by line).
 */
static int render_prom(struct status_text *t, char **out, size_t *len)
{
	struct sample_ref *v = NULL;
	size_t n = 0, cap = 0, olen = 0, ocap = 0;
	char *o = NULL;

	for (char *p = t->prom; p && p < t->prom + t->plen && n < SAMPLES_MAX;) {
		char *nl = memchr(p, '\n', (size_t)(t->prom + t->plen - p));

		if (!nl || mem_reserve(&v, &cap, n + 1, sizeof *v, 64) < 0)
			break;
		*nl = '\0';
		v[n] = (struct sample_ref){p, n};
		n++;
		p = nl + 1;
	}
	if (n)
		qsort(v, n, sizeof *v, by_metric);
	for (size_t i = 0; i < n; i++) {
		size_t k = name_len(v[i].line);

		if (i == 0 || k != name_len(v[i - 1].line) || strncmp(v[i].line, v[i - 1].line, k))
			put(t, &o, &olen, &ocap, "# TYPE %.*s gauge\n", (int)k, v[i].line);
		put(t, &o, &olen, &ocap, "%s\n", v[i].line);
	}
	free(v);
	if (t->err) {
		free(o);
		errno = t->err;
		return -1;
	}
	*out = o;
	*len = olen;
	return 0;
}

/* Write the round's files, if its text is not the one written last. */
static int publish(struct status_file *sf, struct status_text *t)
{
	char *prom = NULL;
	size_t plen = 0;
	int r = 0;

	end_line(t);
	if (t->err) {
		errno = t->err;
		return -1;
	}
	if (sf->last && t->tlen == sf->lastlen && !memcmp(t->text, sf->last, t->tlen))
		return 0;
	if (replace(sf->path, sf->tmp, t->text ? t->text : "", t->tlen) < 0)
		return -1;
	if (sf->prom && (render_prom(t, &prom, &plen) < 0 ||
			 replace(sf->prom, sf->promtmp, prom ? prom : "", plen) < 0))
		r = -1;
	free(prom);
	free(sf->last);
	sf->last = t->text;
	sf->lastlen = t->tlen;
	t->text = NULL;
	return r;
}

long long status_tick(struct status_file *sf, long long now,
		      void (*fill)(struct status_text *t, void *arg), void *arg, int *err)
{
	struct status_text t = {.program = sf->program};

	if (err)
		*err = 0;
	if (!sf->path)
		return -1;
	if (now < sf->next_at) {
		sf->pending = 1;
		return sf->next_at;
	}
	sf->pending = 0;
	sf->next_at = now + STATUS_EVERY_MS;
	fill(&t, arg);
	if (publish(sf, &t) < 0 && err && !sf->told) {
		*err = errno;
		sf->told = 1;
	}
	free(t.text);
	free(t.prom);
	return t.moving ? sf->next_at : -1;
}

int status_open_beside(struct status_file *sf, const char *buffer, const char *prom,
		       const char *program)
{
	const char *base = strrchr(buffer, '/');
	size_t dirlen = base ? (size_t)(base + 1 - buffer) : 0;
	size_t n = strlen(buffer) + sizeof "..status";
	char *path = malloc(n);
	int r;

	if (!path) {
		*sf = (struct status_file){0};
		return -1;
	}
	snprintf(path, n, "%.*s.%s.status", (int)dirlen, buffer, buffer + dirlen);
	r = status_open(sf, path, prom, program);
	free(path);
	return r;
}

int status_open_in(struct status_file *sf, const char *dir, const char *id, const char *prom,
		   const char *program)
{
	size_t n;
	char *path;
	int r;

	if (!dir)
		dir = ".";
	n = strlen(dir) + strlen(program) + strlen(id) + sizeof "/.-.status";
	path = malloc(n);
	if (!path) {
		*sf = (struct status_file){0};
		return -1;
	}
	snprintf(path, n, "%s/.%s-%s.status", dir, program, id);
	r = status_open(sf, path, prom, program);
	free(path);
	return r;
}

void status_close(struct status_file *sf)
{
	if (sf->path)
		unlink(sf->path);
	if (sf->prom)
		unlink(sf->prom);
	free(sf->path);
	free(sf->tmp);
	free(sf->prom);
	free(sf->promtmp);
	free(sf->last);
	*sf = (struct status_file){0};
}
