/* Owns the crash-injection points of test builds (see crashpoint.h). */
#include "core/crashpoint.h"

#ifdef TUNNELSYNC_TEST_HOOKS

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned hits;

bool ts_crash_armed(const char *name)
{
	const char *spec = getenv("TUNNELSYNC_CRASH_AT");
	const char *hash;
	size_t len;
	unsigned long nth = 1;

	if (!spec || !name)
		return false;
	hash = strchr(spec, '#');
	len = hash ? (size_t)(hash - spec) : strlen(spec);
	if (len != strlen(name) || strncmp(spec, name, len) != 0)
		return false;
	if (hash) {
		char *end;

		nth = strtoul(hash + 1, &end, 10);
		if (*end != '\0' || nth == 0)
			return false;
	}
	return ++hits == nth;
}

_Noreturn void ts_crash_now(const char *name)
{
	static const char msg[] = "crash point reached: ";

	/* write(2) only: the point must not depend on stdio or the logger. */
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)!write(STDERR_FILENO, name, strlen(name));
	(void)!write(STDERR_FILENO, "\n", 1);
	_exit(TS_CRASH_EXIT_STATUS);
}

void ts_crash_point(const char *name)
{
	if (ts_crash_armed(name))
		ts_crash_now(name);
}

#else

/* ISO C forbids an empty translation unit. */
typedef int ts_crashpoint_unused;

#endif
