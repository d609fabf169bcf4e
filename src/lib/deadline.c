#include "deadline.h"

#include <limits.h>

long long deadline_earlier(long long a, long long b)
{
	if (a < 0)
		return b < 0 ? -1 : b;
	return b >= 0 && b < a ? b : a;
}

long long deadline_in(int ms, long long now)
{
	return ms < 0 ? -1 : now + ms;
}

int deadline_timeout(long long at, long long now)
{
	if (at < 0)
		return -1;
	if (at <= now)
		return 0;
	return at - now > INT_MAX ? INT_MAX : (int)(at - now);
}
