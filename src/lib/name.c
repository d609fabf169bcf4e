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
	size_t n = strlen(s), k = sizeof NAME_RESERVED - 1;

	return n >= k && strcmp(s + n - k, NAME_RESERVED) == 0;
}
