/* The owned-interface adapter (agent/route/iface.c) against a real kernel
 * with VTIs: inside the user-mode Linux guest (tests/kernel/run-uml; the
 * machines' own kernel has no VTI), in a network namespace of its own.
 * Creates the VTI with its key, endpoints, MTU, alias, address, policy
 * checks off and up; a second pass changes nothing; drift (address
 * removed or another added, link down, MTU, disable_policy, another key)
 * is put back; an interface not the tunnel's (no alias, or another
 * tunnel's) is refused and left alone, and adopted once given the alias;
 * before every change, what `plan` reads and decides is the change made,
 * and reading changes nothing (guest_ensure);
 * pruning deletes only owned interfaces no longer declared. Checked with `ip`, not with the
 * adapter. Exit 77 outside the guest (TS_IN_UML unset). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_test.h"

static struct ts_iface_spec spec(const char *name, const char *owner, uint32_t key)
{
	struct ts_iface_spec sp = { .ifname = name, .owner = owner, .key = key, .mtu = 1400 };

	assert_int_equal(ts_ip_parse("192.0.2.1", &sp.local), 0);
	assert_int_equal(ts_ip_parse("192.0.2.2", &sp.remote), 0);
	assert_int_equal(ts_prefix_parse("10.213.0.0/31", &sp.address), 0);
	return sp;
}

static void assert_vti_as_declared(const char *key)
{
	char want[128];

	snprintf(want, sizeof(want), "vti remote 192.0.2.2 local 192.0.2.1 ikey %s okey %s", key,
		 key);
	if (!guest_out_has("ip -d link show dev vti0", want))
		if (system("ip -d link show dev vti0; ip addr show dev vti0") != 0)
			print_message("(ip failed)\n");
	assert_true(guest_out_has("ip -d link show dev vti0", want));
	assert_true(guest_out_has("ip -d link show dev vti0", "alias tunnelsync:t1"));
	assert_true(guest_out_has("ip link show dev vti0", "mtu 1400"));
	assert_true(guest_out_has("ip link show dev vti0", ",UP"));
	assert_true(guest_out_has("ip -4 addr show dev vti0", "inet 10.213.0.0/31"));
	assert_false(guest_out_has("ip -4 addr show dev vti0", "10.9.9.9"));
	assert_true(guest_out_has("cat /proc/sys/net/ipv4/conf/vti0/disable_policy", "1"));
}

static void test_create_idempotent(void **state)
{
	struct ts_iface_spec sp = spec("vti0", "t1", 257);
	unsigned ch = 0;

	(void)state;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_true(ch & TS_IFACE_CREATED);
	assert_vti_as_declared("0.0.1.1");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, 0);
}

static void test_drift_healed(void **state)
{
	struct ts_iface_spec sp = spec("vti0", "t1", 257);
	unsigned ch = 0;

	(void)state;
	guest_sh("ip addr flush dev vti0");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, TS_IFACE_ADDRESS);
	assert_vti_as_declared("0.0.1.1");

	guest_sh(
		"ip addr add 10.9.9.9/32 dev vti0 && ip link set vti0 down && ip link set vti0 mtu 1300 "
		"&& echo 0 > /proc/sys/net/ipv4/conf/vti0/disable_policy");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, TS_IFACE_ADDRESS | TS_IFACE_UP | TS_IFACE_MTU | TS_IFACE_POLICY);
	assert_vti_as_declared("0.0.1.1");

	/* Another key behind the agent's back: recreated with the declared. */
	guest_sh("ip link set vti0 type vti key 9");
	assert_true(guest_out_has("ip -d link show dev vti0", "ikey 0.0.0.9"));
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_true(ch & TS_IFACE_RECREATED);
	assert_vti_as_declared("0.0.1.1");

	/* The declared key changed: the same. */
	sp.key = 258;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_true(ch & TS_IFACE_RECREATED);
	assert_vti_as_declared("0.0.1.2");
	sp.key = 257;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_vti_as_declared("0.0.1.1");
}

static void test_not_ours(void **state)
{
	struct ts_iface_spec foreign = spec("vtix", "t1", 257), other = spec("vti0", "t2", 257);
	unsigned ch = 99;

	(void)state;
	guest_sh("ip link add vtix type vti local 192.0.2.1 remote 192.0.2.9 key 7 && "
		 "ip link set vtix mtu 1280");
	assert_int_equal(guest_ensure(&foreign, &ch), -EEXIST);
	assert_int_equal(ch, 0);
	assert_true(guest_out_has("ip -d link show dev vtix", "remote 192.0.2.9"));
	assert_true(guest_out_has("ip link show dev vtix", "mtu 1280"));
	assert_false(guest_out_has("ip -d link show dev vtix", "alias"));
	/* Another tunnel's interface of that name. */
	assert_int_equal(guest_ensure(&other, &ch), -EEXIST);
	assert_true(guest_out_has("ip -d link show dev vti0", "alias tunnelsync:t1"));
}

static void test_prune(void **state)
{
	struct ts_iface_spec sp1 = spec("vti1", "t2", 300);
	const char *keep[] = { "vti0" };
	unsigned n = 99;

	(void)state;
	/* The kernel allows one VTI per pair of endpoints. */
	assert_int_equal(ts_ip_parse("192.0.2.3", &sp1.remote), 0);
	assert_int_equal(guest_ensure(&sp1, NULL), 0);
	assert_int_equal(ts_iface_prune(guest_sock, keep, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_false(guest_out_has("ip link show", ": vti1@"));
	assert_true(guest_out_has("ip link show", ": vti0@"));
	assert_true(guest_out_has("ip link show", ": vtix@"));
	assert_int_equal(ts_iface_prune(guest_sock, keep, 1, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ts_iface_prune(guest_sock, NULL, 0, &n), 0);
	assert_int_equal(n, 1);
	assert_false(guest_out_has("ip link show", ": vti0@"));
	assert_true(guest_out_has("ip link show", ": vtix@"));

	/* A VTI made by hand, handed over with the alias: adopted as it is
	 * (same key and endpoints), MTU and address put right. */
	{
		struct ts_iface_spec adopt = spec("vtix", "t1", 7);
		unsigned ch = 0;

		assert_int_equal(ts_ip_parse("192.0.2.9", &adopt.remote), 0);
		guest_sh("ip link set vtix alias tunnelsync:t1");
		assert_int_equal(guest_ensure(&adopt, &ch), 0);
		assert_int_equal(ch,
				 TS_IFACE_MTU | TS_IFACE_UP | TS_IFACE_ADDRESS | TS_IFACE_POLICY);
		assert_true(guest_out_has("ip link show dev vtix", "mtu 1400"));
		assert_true(guest_out_has("ip -4 addr show dev vtix", "inet 10.213.0.0/31"));
		assert_int_equal(ts_iface_prune(guest_sock, NULL, 0, &n), 0);
		assert_int_equal(n, 1);
		assert_false(guest_out_has("ip link show", ": vtix@"));
	}
}

static void test_bad_input(void **state)
{
	struct ts_iface_spec sp = spec("vti0", "t1", 257);

	(void)state;
	assert_int_equal(ts_iface_ensure(NULL, &sp, NULL), -EINVAL);
	sp.key = 0;
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	sp = spec("a-name-too-long-for-linux", "t1", 257);
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	sp = spec("vti0", "", 257);
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	assert_int_equal(ts_iface_prune(NULL, NULL, 0, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_idempotent), cmocka_unit_test(test_drift_healed),
		cmocka_unit_test(test_not_ours),	  cmocka_unit_test(test_prune),
		cmocka_unit_test(test_bad_input),
	};

	return guest_run("test_iface_uml", tests, sizeof(tests) / sizeof(tests[0]), "TS_IN_UML",
			 "needs VTIs: run through tests/kernel/run-uml");
}
