/*
 * cmd: a command as a program starts it: split at blanks for a direct
 * exec, or through /bin/sh -c; its program looked up in PATH as execvp(3)
 * would, once for many execs.
 */
#ifndef SP_CMD_H
#define SP_CMD_H

#include <stddef.h>

#define CMD_MAX_ARGS 64
#define CMD_PATH_MAX 4096

/*
 * A command prepared once for many execs: split at blanks for a direct
 * exec when it has no shell metacharacters, else "sh -c cmd".
 */
struct cmd {
	char *argv[CMD_MAX_ARGS + 4];
	char *copy;		   /* the words' storage */
	int shell;		   /* through /bin/sh -c */
	char path[CMD_PATH_MAX];   /* a direct exec's program as found in PATH, or "" */
};

/*
 * Prepare command; path (may be NULL) is where its program was found
 * before (cmd_lookup). Returns 0, or -1 with errno ENOMEM.
 */
int cmd_init(struct cmd *c, const char *command, const char *path);
void cmd_free(struct cmd *c);

/*
 * Look the program up again (PATH may have changed, or the file): as
 * cmd_lookup, into c->path. Returns 0, 1 for a shell command, or -1 with
 * errno (c is left as it was).
 */
int cmd_find(struct cmd *c);

/*
 * Exec c in this process with environment envp (NULL: the current one):
 * c->path first, then a PATH search if that fails. Returns only on
 * failure, with errno. Touches no memory but its stack, as a child that
 * shares its parent's until the exec must.
 */
void cmd_exec(const struct cmd *c, char *const envp[]);

/*
 * Look up the program a direct exec of command will run, as execvp(3)
 * does: a name with a '/' as it is, else the first executable DIR/NAME in
 * PATH (unset: /bin:/usr/bin; an empty entry: the current directory).
 * Returns 0 with that file in path (len bytes); 1 when command goes
 * through /bin/sh -c, whose lookup is the shell's; or -1 with errno ENOENT
 * (no such program), EACCES (found, but not an executable file) or
 * ENAMETOOLONG.
 */
int cmd_lookup(const char *command, char *path, size_t len);

/* The program name of command, its first word, into buf (len bytes), for messages; returns buf. */
const char *cmd_name(const char *command, char *buf, size_t len);

#endif
