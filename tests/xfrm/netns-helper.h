/* Test helper (header-only): a fresh, uniquely named network namespace
 * ("<prefix>-<pid>-<n>") that the calling process enters with setns() and
 * that is deleted again on leave, at exit, and on fatal signals. Children
 * (ip commands run through ts_sh) inherit it. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char ts_ns_name[64];
static int ts_ns_home_fd = -1;
static unsigned ts_ns_counter;

static void ts_ns_delete(void)
{
	char cmd[128];

	if (!ts_ns_name[0])
		return;
	if (ts_ns_home_fd >= 0)
		(void)setns(ts_ns_home_fd, CLONE_NEWNET);
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ts_ns_name);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not delete netns %s\n", ts_ns_name);
	ts_ns_name[0] = '\0';
}

static void ts_ns_on_signal(int sig)
{
	ts_ns_delete();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Runs a shell command in the current namespace; returns its exit status. */
static inline int ts_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int ts_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Creates and enters a new namespace. Returns 0 or -errno. */
static inline int ts_ns_enter(const char *prefix)
{
	static int hooked;
	char path[128];
	int fd, r;

	if (getuid() != 0)
		return -EPERM;
	if (ts_ns_home_fd < 0) {
		ts_ns_home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ts_ns_home_fd < 0)
			return -errno;
	}
	if (!hooked) {
		atexit(ts_ns_delete);
		signal(SIGTERM, ts_ns_on_signal);
		signal(SIGINT, ts_ns_on_signal);
		signal(SIGABRT, ts_ns_on_signal);
		hooked = 1;
	}
	snprintf(ts_ns_name, sizeof(ts_ns_name), "%s-%d-%u", prefix, (int)getpid(),
		 ts_ns_counter++);
	if (ts_sh("ip netns add %s", ts_ns_name) != 0) {
		ts_ns_name[0] = '\0';
		return -EIO;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", ts_ns_name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		ts_ns_delete();
		return r;
	}
	close(fd);
	return 0;
}

static inline void ts_ns_leave(void)
{
	ts_ns_delete();
}
