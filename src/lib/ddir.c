#include "ddir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "mem.h"
#include "name.h"

/* Who holds the flock(2) on fd's file, from /proc/locks; 0 when it cannot be told. */
static pid_t lock_holder(int fd)
{
	struct stat st;
	char line[256];
	FILE *f;
	pid_t who = 0;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!who && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		unsigned long long ino;
		long pid;

		if (strstr(line, "FLOCK") &&
		    sscanf(line, "%*s FLOCK %*s %*s %ld %x:%x:%llu", &pid, &maj, &min, &ino) == 4 &&
		    maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino)
			who = (pid_t)pid;
	}
	fclose(f);
	return who;
}

int ddir_lock(int fd, int wait, pid_t *holder)
{
	*holder = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -1;
	if (wait) {
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return -1;
		return 0;
	}
	*holder = lock_holder(fd);
	errno = EWOULDBLOCK;
	return -1;
}

const char *ddir_lock_why(int err, pid_t holder, char *buf, size_t len)
{
	if (err != EWOULDBLOCK)
		snprintf(buf, len, "locking: %s", strerror(err));
	else if (holder > 0)
		snprintf(buf, len, "another master (PID %ld) runs these daemons; not starting",
			 (long)holder);
	else
		snprintf(buf, len, "another master runs these daemons; not starting");
	return buf;
}

/*
 * Why the entry is not a daemon, or NULL when it is one. *quiet is set for
 * an entry never meant to run (a dotfile, anything but a regular file, a
 * file nobody may execute: run-parts(8) skips those silently); an
 * executable file that cannot run as a daemon is not quiet.
 */
static const char *not_daemon(int fd, const char *name, size_t prefix_len, int *quiet)
{
	struct stat st;

	*quiet = 1;
	if (name[0] == '.')
		return "a dotfile";
	if (fstatat(fd, name, &st, 0) < 0) {
		*quiet = 0; /* a dangling link: someone meant something */
		return strerror(errno);
	}
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	if (!(st.st_mode & 0111) || faccessat(fd, name, X_OK, 0) < 0)
		return "not executable";
	*quiet = 0;
	if (!name_ok(name))
		return "not a valid daemon name";
	if (prefix_len && prefix_len + 1 + strlen(name) > NAME_MAX_LEN)
		return "too long a name with the -N prefix";
	return NULL;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ddir_list(int fd, size_t prefix_len, char ***names, size_t *n,
	      void (*skipped)(void *arg, const char *name, const char *why), void *arg)
{
	int dup_fd = dup(fd);
	DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;
	size_t cap = 0;
	int saved;

	*names = NULL;
	*n = 0;
	if (!dir) {
		saved = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		errno = saved;
		return -1;
	}
	while ((e = readdir(dir)) != NULL) {
		const char *why;
		int quiet;

		if ((why = not_daemon(fd, e->d_name, prefix_len, &quiet)) != NULL) {
			if (skipped && !quiet)
				skipped(arg, e->d_name, why);
			continue;
		}
		if (mem_reserve(names, &cap, *n + 1, sizeof **names, 16) < 0 ||
		    !((*names)[*n] = strdup(e->d_name)))
			goto fail;
		(*n)++;
	}
	closedir(dir);
	if (*n)
		qsort(*names, *n, sizeof **names, by_name);
	return 0;
fail:
	saved = errno;
	closedir(dir);
	ddir_free(*names, *n);
	*names = NULL;
	*n = 0;
	errno = saved;
	return -1;
}

void ddir_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
