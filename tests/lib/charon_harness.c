/* The charon-in-netns test harness (see charon_harness.h). */
#include "charon_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TS_HARNESS_SCRIPT
#define TS_HARNESS_SCRIPT TS_TEST_SOURCE_DIR "/lib/charon-netns.sh"
#endif

static const char side_name[2] = { 'a', 'b' };

bool ts_harness_available(const char **why)
{
	if (geteuid() != 0) {
		*why = "needs root (network namespaces)";
		return false;
	}
	if (access("/usr/lib/ipsec/charon", X_OK) != 0) {
		*why = "needs /usr/lib/ipsec/charon (strongswan-charon)";
		return false;
	}
	if (system("command -v swanctl >/dev/null && command -v ip >/dev/null") != 0) {
		*why = "needs swanctl (strongswan-swanctl) and ip (iproute2)";
		return false;
	}
	return true;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	if (st < 0)
		return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The watchdog holds the read end of a pipe; EOF means the test process is
 * gone (exit, abort, signal) and it cleans up after it. */
static int watchdog_start(struct ts_harness *h)
{
	char cmd[512];
	int fds[2];
	pid_t pid;

	snprintf(cmd, sizeof(cmd), "sh '%s' down '%s' '%s' >/dev/null 2>&1; %s '%s'",
		 TS_HARNESS_SCRIPT, h->prefix, h->dir, getenv("TS_HARNESS_KEEP") ? ":" : "rm -rf",
		 h->dir);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		char c;
		ssize_t n;

		close(fds[1]);
		/* Out of the test's process group: a ^C reaches the test, and
		 * the watchdog still cleans up after it. */
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		/* 'q': the test cleaned up itself. */
		if (n == 1 && c == 'q')
			_exit(0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	h->watchdog = pid;
	h->watchdog_fd = fds[1];
	return 0;
}

int ts_harness_up(struct ts_harness *h, const char *base)
{
	char cmd[512];
	int r;

	memset(h, 0, sizeof(*h));
	h->watchdog_fd = -1;
	snprintf(h->prefix, sizeof(h->prefix), "%s-%d", base, (int)getpid());
	snprintf(h->dir, sizeof(h->dir), "%s/%s",
		 getenv("TS_HARNESS_DIR") ? getenv("TS_HARNESS_DIR") : "/tmp", h->prefix);
	if (mkdir(h->dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r = watchdog_start(h);
	if (r < 0)
		return r;
	snprintf(cmd, sizeof(cmd), "sh '%s' up '%s' '%s'", TS_HARNESS_SCRIPT, h->prefix, h->dir);
	if (run(cmd) != 0) {
		ts_harness_down(h);
		return -EIO;
	}
	for (int s = 0; s < 2; s++) {
		char d[256];

		snprintf(d, sizeof(d), "%s/%c/swanctl", h->dir, side_name[s]);
		if (mkdir(d, 0700) < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int ts_harness_start(struct ts_harness *h, int side)
{
	char cmd[512], line[32] = "";
	FILE *f;
	long pid;

	if (side < 0 || side > 1 || h->charon[side])
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "TS_HARNESS_KERNEL=%s sh '%s' start '%s' %c '%s'",
		 h->userspace_esp ? "libipsec" : "netlink", TS_HARNESS_SCRIPT, h->prefix,
		 side_name[side], h->dir);
	f = popen(cmd, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	if (pclose(f) != 0)
		return -EIO;
	pid = strtol(line, NULL, 10);
	if (pid <= 1)
		return -EIO;
	h->charon[side] = (pid_t)pid;
	return 0;
}

int ts_harness_stop(struct ts_harness *h, int side)
{
	char cmd[256];

	if (side < 0 || side > 1 || !h->charon[side])
		return -EINVAL;
	snprintf(cmd, sizeof(cmd), "sh '%s' stop %d", TS_HARNESS_SCRIPT, (int)h->charon[side]);
	h->charon[side] = 0;
	return run(cmd) == 0 ? 0 : -EIO;
}

void ts_harness_down(struct ts_harness *h)
{
	char cmd[512];

	if (!h->prefix[0])
		return;
	for (int s = 0; s < 2; s++)
		if (h->charon[s])
			(void)ts_harness_stop(h, s);
	/* TS_HARNESS_KEEP=1 keeps the logs and configs for a post-mortem. */
	snprintf(cmd, sizeof(cmd), "sh '%s' down '%s' '%s' >/dev/null 2>&1; %s '%s'",
		 TS_HARNESS_SCRIPT, h->prefix, h->dir, getenv("TS_HARNESS_KEEP") ? ":" : "rm -rf",
		 h->dir);
	(void)run(cmd);
	if (h->watchdog_fd >= 0) {
		(void)!write(h->watchdog_fd, "q", 1);
		close(h->watchdog_fd);
		h->watchdog_fd = -1;
	}
	if (h->watchdog > 0)
		waitpid(h->watchdog, NULL, 0);
	h->watchdog = 0;
	h->prefix[0] = 0;
}

const char *ts_harness_side_dir(const struct ts_harness *h, int side, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%c", h->dir, side_name[side & 1]);
	return buf;
}

const char *ts_harness_vici_path(const struct ts_harness *h, int side, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%c/charon.vici", h->dir, side_name[side & 1]);
	return buf;
}

int ts_harness_swanctl_load(const struct ts_harness *h, int side, const char *swanctl_conf)
{
	char d[256], path[320], cmd[2048];
	FILE *f;

	ts_harness_side_dir(h, side, d, sizeof(d));
	snprintf(path, sizeof(path), "%s/swanctl/swanctl.conf", d);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(swanctl_conf, f);
	if (fclose(f) != 0)
		return -EIO;
	snprintf(
		cmd, sizeof(cmd),
		"STRONGSWAN_CONF='%s/strongswan.conf' SWANCTL_DIR='%s/swanctl' "
		"swanctl --load-all --noprompt --uri 'unix://%s/charon.vici' >>'%s/swanctl.out' 2>&1",
		d, d, d, d);
	return run(cmd) == 0 ? 0 : -EIO;
}

int ts_harness_exec(const struct ts_harness *h, int side, const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "ip netns exec '%s-%c' sh -c '%s'", h->prefix,
		 side_name[side & 1], cmd);
	return run(full);
}
