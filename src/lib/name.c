#include "name.h"

#include <string.h>

static const char name_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

int name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-' || name_reserved(s))
		return 0;
	return strspn(s, name_chars) == n;
}

int name_reserved(const char *s)
{
	return strstr(s, NAME_RESERVED) != NULL;
}
