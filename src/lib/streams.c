#include "streams.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "mem.h"
#include "proto.h"

struct stream {
	char id[PROTO_STREAM_HEX + 1];
	unsigned long long taken;
	long long seen;
};

struct streams {
	struct stream *s;
	size_t n, cap;
};

struct streams *streams_new(void)
{
	return calloc(1, sizeof(struct streams));
}

static struct stream *find(const struct streams *st, const char *id)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->s[i].id, id) == 0)
			return &st->s[i];
	return NULL;
}

long long streams_get(const struct streams *st, const char *id)
{
	const struct stream *s = find(st, id);

	return s ? (long long)s->taken : -1;
}

int streams_set(struct streams *st, const char *id, unsigned long long taken, int done,
		long long now)
{
	struct stream *s = find(st, id);

	if (done) {
		if (s)
			*s = st->s[--st->n];
		return 0;
	}
	if (!s) {
		if (st->n == STREAMS_MAX) {
			size_t old = 0;
			for (size_t i = 1; i < st->n; i++)
				if (st->s[i].seen < st->s[old].seen)
					old = i;
			st->s[old] = st->s[--st->n];
		}
		if (mem_reserve(&st->s, &st->cap, st->n + 1, sizeof *st->s, 8) < 0)
			return -1;
		s = &st->s[st->n++];
		snprintf(s->id, sizeof s->id, "%s", id);
	}
	s->taken = taken;
	s->seen = now;
	return 0;
}

unsigned streams_open(const struct streams *st)
{
	return (unsigned)st->n;
}

int streams_save(const struct streams *st, const char *path)
{
	size_t len = strlen(path) + 32;
	char *tmp = malloc(len), line[PROTO_STREAM_HEX + 32];
	mode_t old;
	int fd, saved;

	if (!tmp)
		return -1;
	if (st->n == 0) {
		free(tmp);
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	}
	snprintf(tmp, len, "%s-%ld", path, (long)getpid());
	old = umask(077);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	umask(old);
	if (fd < 0)
		goto fail;
	for (size_t i = 0; i < st->n; i++) {
		int n = snprintf(line, sizeof line, "%s %llu\n", st->s[i].id, st->s[i].taken);
		if (io_write_all(fd, line, (size_t)n) < 0) {
			close(fd);
			unlink(tmp);
			goto fail;
		}
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}

int streams_load(struct streams *st, const char *path, long long now)
{
	size_t cap = STREAMS_MAX * (PROTO_STREAM_HEX + 24) + 1, got = 0;
	char *buf, *line, *save;
	struct stat sb;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK), n = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (!(buf = malloc(cap))) {
		close(fd);
		return -1;
	}
	/* Only what a pool of ours wrote: a private regular file of our user. */
	if (fstat(fd, &sb) < 0 || !io_private_file(&sb)) {
		close(fd);
		free(buf);
		errno = EPERM;
		return -1;
	}
	while (got < cap - 1 && (r = io_read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	buf[got] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char id[PROTO_STREAM_HEX + 1];
		unsigned long long taken;

		if (sscanf(line, "%32s %llu", id, &taken) == 2 && proto_is_hex(id, PROTO_STREAM_HEX) &&
		    streams_set(st, id, taken, 0, now) == 0)
			n++;
	}
	free(buf);
	unlink(path);
	return n;
}

void streams_free(struct streams *st)
{
	if (!st)
		return;
	free(st->s);
	free(st);
}
