#define _GNU_SOURCE /* execvpe */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* Anything the shell would treat specially sends the command through sh -c. */
static const char shell_meta[] = "|&;<>()$`\\\"'*?[]#~=%{}!\n";

/* The blank-separated words of command into argv (in copy), or 0 for the shell. */
static int split_cmd(const char *command, char **copy, char *argv[CMD_MAX_ARGS + 1])
{
	char *tok, *save;
	int argc = 0;

	if (strpbrk(command, shell_meta) != NULL || (*copy = strdup(command)) == NULL)
		return 0;
	for (tok = strtok_r(*copy, " \t", &save); tok && argc < CMD_MAX_ARGS;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc > 0 && !strtok_r(NULL, " \t", &save))
		return argc;
	free(*copy);
	*copy = NULL;
	return 0;
}

int cmd_init(struct cmd *c, const char *command, const char *path)
{
	memset(c, 0, sizeof *c);
	if (split_cmd(command, &c->copy, c->argv) > 0) {
		if (path && snprintf(c->path, sizeof c->path, "%s", path) >= (int)sizeof c->path)
			c->path[0] = '\0';
		return 0;
	}
	if (!(c->copy = strdup(command)))
		return -1;
	c->shell = 1;
	c->argv[0] = "sh";
	c->argv[1] = "-c";
	c->argv[2] = c->copy;
	c->argv[3] = NULL;
	return 0;
}

void cmd_free(struct cmd *c)
{
	free(c->copy);
	c->copy = NULL;
}

void cmd_exec(const struct cmd *c, char *const envp[])
{
	if (!envp)
		envp = environ;
	if (c->shell) {
		execve("/bin/sh", c->argv, envp);
		return;
	}
	/* A stale cached path (ENOENT, ENOEXEC...) falls back to the full search. */
	if (c->path[0])
		execve(c->path, c->argv, envp);
	execvpe(c->argv[0], c->argv, envp);
}

/* An executable regular file, as execve would take it; else -1 with errno. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/* find_prog: cmd_lookup for a program name argv0 (a direct exec's first word). */
static int find_prog(const char *argv0, char *path, size_t len)
{
	const char *dirs = getenv("PATH"), *d, *end;
	int err = ENOENT;

	if (strchr(argv0, '/')) {
		int n = snprintf(path, len, "%s", argv0);

		if (n < 0 || (size_t)n >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return executable(path);
	}
	if (!dirs)
		dirs = "/bin:/usr/bin"; /* execvp's default */
	for (d = dirs;; d = end + 1) {
		size_t dl;
		int n;

		end = strchr(d, ':');
		if (!end)
			end = d + strlen(d);
		dl = (size_t)(end - d);
		/* An empty entry is the current directory, as for execvp. */
		n = dl ? snprintf(path, len, "%.*s/%s", (int)dl, d, argv0)
		       : snprintf(path, len, "./%s", argv0);
		if (n > 0 && (size_t)n < len) {
			if (executable(path) == 0)
				return 0;
			if (errno == EACCES)
				err = EACCES; /* as execvp: said only if nothing else is found */
		}
		if (!*end)
			break;
	}
	path[0] = '\0';
	errno = err;
	return -1;
}

int cmd_lookup(const char *command, char *path, size_t len)
{
	struct cmd c;
	int r, saved;

	if (cmd_init(&c, command, NULL) < 0)
		return -1;
	r = c.shell ? 1 : find_prog(c.argv[0], path, len);
	saved = errno;
	cmd_free(&c);
	errno = saved;
	return r;
}

int cmd_find(struct cmd *c)
{
	char path[sizeof c->path];

	if (c->shell)
		return 1;
	if (find_prog(c->argv[0], path, sizeof path) < 0)
		return -1;
	memcpy(c->path, path, sizeof path);
	return 0;
}

const char *cmd_name(const char *command, char *buf, size_t len)
{
	size_t n;

	command += strspn(command, " \t");
	n = strcspn(command, " \t");
	if (len == 0)
		return "";
	if (n >= len)
		n = len - 1;
	memcpy(buf, command, n);
	buf[n] = '\0';
	return buf;
}
