/* name: the one rule for the names of buffers and daemons. */
#ifndef SP_NAME_H
#define SP_NAME_H

#define NAME_MAX_LEN 64

/*
 * A plain name: 1-NAME_MAX_LEN characters of [A-Za-z0-9._-], not starting
 * with '.' or '-' (so never a hidden file or an option), and not holding
 * NAME_RESERVED, the suffix of the files unread bytes and stream counts
 * are saved to (a buffer of such a name would receive another one's). Such a name is
 * a file name in a buffer directory and a word in the pool protocol.
 * Returns 1 when s is one, else 0.
 */
#define NAME_RESERVED ".unread"
int name_ok(const char *s);

/* s holds NAME_RESERVED. */
int name_reserved(const char *s);

#endif
