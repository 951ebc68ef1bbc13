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

char *guest_out_text(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	char *text = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 16) - 1, f);
	pclose(f);
	assert_true(n > 0 && n < (1 << 16) - 1);
	return text;
}

/* Links, addresses and every disable_policy of the namespace, as text. */
static char *state_text(void)
{
	return guest_out_text(
		"ip -d link; ip -4 -d addr; grep -H . /proc/sys/net/ipv4/conf/*/disable_policy");
}

int guest_ensure(const struct ts_iface_spec *sp, unsigned *ret_changes)
{
	struct ts_iface_seen seen;
	char *before = state_text(), *after;
	unsigned planned = 0, done = 0;
	int r = ts_iface_read(guest_sock, sp->ifname, &seen), e;

	if (r == 0)
		r = ts_iface_decide(&seen, sp, &planned);
	after = state_text();
	assert_string_equal(before, after);
	free(before);
	free(after);
	e = ts_iface_ensure(guest_sock, sp, &done);
	assert_int_equal(r < 0 ? r : 0, r < 0 ? e : 0);
	if (r == 0 && e == 0) {
		if (planned & (TS_IFACE_CREATED | TS_IFACE_RECREATED))
			assert_int_equal(done & (TS_IFACE_CREATED | TS_IFACE_RECREATED), planned);
		else
			assert_int_equal(done, planned);
	}
	if (ret_changes)
		*ret_changes = done;
	return e;
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
