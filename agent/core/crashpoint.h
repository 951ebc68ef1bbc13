/* Crash injection for tests: named points in the code where a test build
 * can make the process die on the spot, as a power cut or SIGKILL would,
 * so that tests can check what a crash at each step leaves on disk.
 *
 * TUNNELSYNC_CRASH_AT=name makes the first hit of that point call _exit()
 * (no atexit handlers, no stdio flush); name#N makes the Nth hit do so.
 * Without TUNNELSYNC_TEST_HOOKS everything here compiles to nothing, so a
 * production binary cannot be made to crash through its environment. */
#pragma once

#include <stdbool.h>

/* Exit status of a process that stopped at a crash point. */
#define TS_CRASH_EXIT_STATUS 86

#ifdef TUNNELSYNC_TEST_HOOKS
/* True when TUNNELSYNC_CRASH_AT names this point and this hit is the one
 * to crash at (counts the hit); for points that must do something special
 * first (e.g. write half a file). Then call ts_crash_now(). */
bool ts_crash_armed(const char *name);
_Noreturn void ts_crash_now(const char *name);
void ts_crash_point(const char *name);
#else
#define ts_crash_armed(name) ((void)(name), false)
#define ts_crash_now(name)   ((void)(name))
#define ts_crash_point(name) ((void)(name))
#endif
