/* Test harness: two network namespaces joined by veth, one strongSwan
 * charon in each (tests/lib/charon-netns.sh does the work). Side 'a' is
 * 192.0.2.1, side 'b' is 192.0.2.2. A watchdog process deletes the
 * namespaces and stops the charons when the test process dies, however it
 * dies. Any suite may link it (see tests/lib/CMakeLists.txt). Set
 * TS_HARNESS_KEEP=1 to keep the directory (logs, configs) after a run. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TS_HARNESS_ADDR_A "192.0.2.1"
#define TS_HARNESS_ADDR_B "192.0.2.2"

struct ts_harness {
	char prefix[32];    /* "<base>-<pid>": namespaces <prefix>-a, <prefix>-b */
	char dir[128];	    /* $TS_HARNESS_DIR (default /tmp)/<prefix>: a/ and b/ */
	pid_t charon[2];    /* 0 when not running */
	bool userspace_esp; /* set before start: kernel-libipsec instead of XFRM */
	pid_t watchdog;
	int watchdog_fd;
};

/* True when the machine can run the harness (root, ip, charon, swanctl);
 * otherwise why is set for the skip message. */
bool ts_harness_available(const char **why);
/* Creates the namespaces and the directories; base is a short prefix of
 * letters such as "tsike". */
int ts_harness_up(struct ts_harness *h, const char *base);
/* Starts the charon of side 0 (a) or 1 (b) and waits for its VICI socket. */
int ts_harness_start(struct ts_harness *h, int side);
/* Stops it (TERM, then KILL) by its PID. */
int ts_harness_stop(struct ts_harness *h, int side);
/* Stops everything, deletes the namespaces and the directory. Safe to call
 * twice. */
void ts_harness_down(struct ts_harness *h);

/* Paths of a side's files. */
const char *ts_harness_vici_path(const struct ts_harness *h, int side, char *buf, size_t size);
const char *ts_harness_side_dir(const struct ts_harness *h, int side, char *buf, size_t size);
/* Writes DIR/<side>/swanctl/swanctl.conf and runs swanctl --load-all on that
 * side's charon. */
int ts_harness_swanctl_load(const struct ts_harness *h, int side, const char *swanctl_conf);
/* Runs a shell command inside the side's namespace; returns its exit status. */
int ts_harness_exec(const struct ts_harness *h, int side, const char *cmd);
