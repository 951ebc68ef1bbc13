/* See guest_test.h. */
#include "guest_test.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_route_sock *guest_sock;

void guest_sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

bool guest_out_has(const char *cmd, const char *what)
{
	char line[1024];
	bool found = false;
	FILE *f = popen(cmd, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			found = true;
	pclose(f);
	return found;
}

int guest_run(const char *name, const struct CMUnitTest *tests, size_t n, const char *in_guest_env,
	      const char *skip_why)
{
	int r;

	if (!getenv(in_guest_env)) {
		printf("SKIP: %s\n", skip_why);
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("cannot unshare the network namespace: %s\n", strerror(errno));
		return 1;
	}
	if (system("ip link set lo up") != 0) {
		printf("cannot set lo up in the new namespace\n");
		return 1;
	}
	if (ts_route_open(&guest_sock) != 0) {
		printf("cannot open the route socket\n");
		return 1;
	}
	r = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
	ts_route_close(guest_sock);
	return r;
}
