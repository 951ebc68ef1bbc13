/* The route adapter (agent/route) against this machine's kernel, in a
 * network namespace of its own (unshare; root): moving a route's metric
 * keeps the prefix routed at every step, only the agent's routes (its
 * protocol) are touched, a missing interface is -ENODEV; pruning deletes
 * the owned routes no longer declared and nothing else; what `plan`
 * reads (ts_route_list) and decides (ts_route_decide_set, ts_route_kept)
 * shows the drift made here and changes nothing. Exit 77 without root. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_test.h"
#include "route/route.h"

static struct ts_route_sock *sock;

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* Lines of `ip -4 route show CMD`. */
static int routes(const char *filter)
{
	char cmd[256], line[256];
	FILE *f;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ip -4 route show %s", filter);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n++;
	pclose(f);
	return n;
}

static struct ts_prefix pfx(const char *s)
{
	struct ts_prefix p;

	assert_int_equal(ts_prefix_parse(s, &p), 0);
	return p;
}

static void test_set_move_get(void **state)
{
	struct ts_prefix net = pfx("192.0.2.0/24");
	uint32_t m = 0;

	(void)state;
	assert_int_equal(ts_route_get(sock, "tsr0", &net, &m), -ENOENT);
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 100), 0);
	assert_int_equal(ts_route_get(sock, "tsr0", &net, &m), 0);
	assert_int_equal(m, 100);
	assert_int_equal(routes("192.0.2.0/24 dev tsr0 proto 182 metric 100"), 1);
	/* Idempotent. */
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 100), 0);
	assert_int_equal(routes("192.0.2.0/24 proto 182"), 1);
	/* Drained: one owned route, the new metric. */
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 100 + TS_ROUTE_DRAIN_OFFSET), 0);
	assert_int_equal(routes("192.0.2.0/24 proto 182"), 1);
	assert_int_equal(routes("192.0.2.0/24 dev tsr0 proto 182 metric 10100"), 1);
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 100), 0);
	assert_int_equal(routes("192.0.2.0/24 proto 182 metric 100"), 1);
	assert_int_equal(routes("192.0.2.0/24 proto 182"), 1);
}

/* A route of someone else to the same prefix and device stays. */
static void test_foreign_untouched(void **state)
{
	struct ts_prefix net = pfx("203.0.113.0/24");
	uint32_t m = 0;

	(void)state;
	sh("ip route add 203.0.113.0/24 dev tsr0 metric 300 proto static");
	assert_int_equal(ts_route_get(sock, "tsr0", &net, &m), -ENOENT);
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 50), 0);
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 60), 0);
	assert_int_equal(routes("203.0.113.0/24 proto static metric 300"), 1);
	assert_int_equal(routes("203.0.113.0/24 proto 182"), 1);
	/* The sibling's route (another device) is not ours to move either. */
	assert_int_equal(ts_route_set(sock, "tsr1", &net, 200), 0);
	assert_int_equal(routes("203.0.113.0/24 proto 182"), 2);
	assert_int_equal(ts_route_set(sock, "tsr0", &net, 10050), 0);
	assert_int_equal(routes("203.0.113.0/24 dev tsr1 proto 182 metric 200"), 1);
}

/* Owned routes not declared any more go; the declared one (whatever its
 * metric) and everyone else's stay. Runs after test_foreign_untouched:
 * 203.0.113.0/24 has owned routes through tsr0 and tsr1 and a static one. */
static void test_prune(void **state)
{
	struct ts_route_key keep[] = {
		{ "tsr0", pfx("192.0.2.0/24") },
		{ "no-such-if", pfx("203.0.113.0/24") },
	};
	struct ts_prefix a = pfx("192.0.2.0/24"), b = pfx("198.51.100.0/24");
	unsigned n = 99;

	(void)state;
	assert_int_equal(ts_route_set(sock, "tsr0", &a, 10100), 0);
	assert_int_equal(ts_route_set(sock, "tsr0", &b, 100), 0);
	assert_int_equal(ts_route_set(sock, "tsr1", &a, 100), 0);
	sh("ip route add 198.51.100.0/24 dev tsr1 metric 5 proto static");
	assert_int_equal(routes("proto 182"), 5);
	assert_int_equal(ts_route_prune(sock, keep, 2, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(routes("proto 182"), 1);
	assert_int_equal(routes("192.0.2.0/24 dev tsr0 proto 182 metric 10100"), 1);
	assert_int_equal(routes("203.0.113.0/24 proto static metric 300"), 1);
	assert_int_equal(routes("198.51.100.0/24 proto static metric 5"), 1);
	/* Nothing left to prune: a second pass deletes nothing. */
	assert_int_equal(ts_route_prune(sock, keep, 2, &n), 0);
	assert_int_equal(n, 0);
	/* Nothing declared: no owned route is left. */
	assert_int_equal(ts_route_prune(sock, NULL, 0, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(routes("proto 182"), 0);
	assert_int_equal(routes("proto static"), 2);
	assert_int_equal(ts_route_prune(NULL, NULL, 0, NULL), -EINVAL);
}

/* The IPv4 routing state (every table) and the links, as text. Not IPv6:
 * the kernel changes it by itself for a while after links come up
 * (link-local addresses), and the agent has no IPv6 route. */
static char *state_text(void)
{
	return guest_out_text("ip -4 -d route show table all; ip -d link");
}

static const struct ts_route_seen *seen_find(const struct ts_route_seen *v, size_t n,
					     const char *ifname, const char *dst)
{
	struct ts_prefix p = pfx(dst);

	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].ifname, ifname) == 0 && ts_prefix_equal(&v[i].dst, &p))
			return &v[i];
	return NULL;
}

/* What plan reads and decides, against drift made by hand (runs after
 * test_prune: no owned route is left). */
static void test_read_decide(void **state)
{
	struct ts_route_key keep[] = {
		{ "tsr0", pfx("192.0.2.0/24") },
		{ "tsr0", pfx("0.0.0.0/0") },
	};
	struct ts_prefix a = pfx("192.0.2.0/24"), def = pfx("0.0.0.0/0");
	struct ts_route_seen *v = NULL;
	struct ts_route_move mv;
	char *before, *after;
	size_t n = 0;
	unsigned deleted = 0;

	(void)state;
	/* A declared route left drained (100 + 10000 wanted back at 100), a
	 * default route of the agent's, one to a prefix nobody declares,
	 * one over two nexthops, and someone else's. */
	sh("ip route add 192.0.2.0/24 dev tsr0 proto 182 metric 10100 && "
	   "ip route add default dev tsr0 proto 182 metric 7 && "
	   "ip route add 198.51.100.0/24 dev tsr0 proto 182 metric 50 && "
	   "ip route add 10.9.0.0/16 proto 182 metric 9 nexthop dev tsr0 nexthop dev tsr1 && "
	   "ip route add 192.0.2.0/24 dev tsr1 proto static metric 300");
	before = state_text();
	assert_int_equal(ts_route_list(sock, &v, &n), 0);
	after = state_text();
	assert_string_equal(before, after); /* reading changed nothing */
	assert_int_equal(n, 4);
	assert_int_equal(seen_find(v, n, "tsr0", "192.0.2.0/24")->metric, 10100);
	assert_int_equal(seen_find(v, n, "tsr0", "0.0.0.0/0")->metric, 7);
	assert_int_equal(seen_find(v, n, "tsr0", "198.51.100.0/24")->metric, 50);
	assert_int_equal(seen_find(v, n, "", "10.9.0.0/16")->metric, 9);
	assert_null(seen_find(v, n, "tsr1", "192.0.2.0/24")); /* not the agent's */

	ts_route_decide_set(v, n, "tsr0", &a, 100, &mv);
	assert_true(mv.add);
	assert_int_equal(mv.n_old, 1);
	assert_int_equal(mv.old_metric, 10100);
	ts_route_decide_set(v, n, "tsr0", &def, 7, &mv);
	assert_false(mv.add);
	assert_int_equal(mv.n_old, 0);
	ts_route_decide_set(v, n, "tsr1", &a, 100, &mv); /* the static one is not ours */
	assert_true(mv.add);
	assert_int_equal(mv.n_old, 0);
	assert_true(ts_route_kept(seen_find(v, n, "tsr0", "192.0.2.0/24"), keep, 2));
	assert_true(ts_route_kept(seen_find(v, n, "tsr0", "0.0.0.0/0"), keep, 2));
	assert_false(ts_route_kept(seen_find(v, n, "tsr0", "198.51.100.0/24"), keep, 2));
	assert_false(ts_route_kept(seen_find(v, n, "", "10.9.0.0/16"), keep, 2));

	/* Acting on the same decisions: the prune deletes just the two. */
	assert_int_equal(ts_route_prune(sock, keep, 2, &deleted), 0);
	assert_int_equal(deleted, 2);
	assert_int_equal(routes("proto 182"), 2);
	assert_int_equal(routes("10.9.0.0/16"), 0);
	assert_int_equal(ts_route_set(sock, "tsr0", &a, 100), 0);
	assert_int_equal(routes("192.0.2.0/24 dev tsr0 proto 182 scope link metric 100"), 1);
	assert_int_equal(routes("192.0.2.0/24 dev tsr0 proto 182 scope link metric 10100"), 0);
	assert_int_equal(routes("192.0.2.0/24 dev tsr1 proto static metric 300"), 1);
	free(v);
	free(before);
	free(after);
	assert_int_equal(ts_route_prune(sock, NULL, 0, &deleted), 0);
	sh("ip route del 192.0.2.0/24 dev tsr1 proto static metric 300");
}

static void test_bad_input(void **state)
{
	struct ts_prefix net = pfx("192.0.2.0/24"), v6 = pfx("2001:db8::/64");

	(void)state;
	assert_int_equal(ts_route_set(sock, "no-such-if", &net, 1), -ENODEV);
	assert_int_equal(ts_route_set(sock, "tsr0", &v6, 1), -EINVAL);
	assert_int_equal(ts_route_set(NULL, "tsr0", &net, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_move_get), cmocka_unit_test(test_foreign_untouched),
		cmocka_unit_test(test_prune),	     cmocka_unit_test(test_read_decide),
		cmocka_unit_test(test_bad_input),
	};
	int r;

	if (geteuid() != 0) {
		printf("SKIP: needs root (a network namespace)\n");
		return 77;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		printf("SKIP: cannot unshare the network namespace: %s\n", strerror(errno));
		return 77;
	}
	sh("ip link set lo up && ip link add tsr0 type veth peer name tsr1 && "
	   "ip link set tsr0 up && ip link set tsr1 up");
	assert_int_equal(ts_route_open(&sock), 0);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	ts_route_close(sock);
	return r;
}
