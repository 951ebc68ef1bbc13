/* The owned-interface adapter (agent/route/iface.c) for if-id tunnels:
 * XFRM interfaces, against Debian's stock kernel booted under qemu
 * (tests/kernel/run-qemu; neither the host kernel nor the UML guest has
 * CONFIG_XFRM_INTERFACE), in a network namespace of its own. Creates the
 * XFRM interface with its if_id, MTU, alias, address and up; a second pass
 * changes nothing; drift (address removed or another added, link down,
 * MTU, another if_id set behind the agent's back, the declared if_id
 * changed) is put back; an interface not the tunnel's (no alias, or
 * another tunnel's) is refused and left alone; a VTI of the same name
 * owned by the tunnel (a tunnel switched from mark to if-id) is replaced;
 * pruning deletes only owned interfaces no longer declared. Checked with
 * `ip`, not with the adapter. Exit 77 outside the guest (TS_IN_QEMU
 * unset). Before every change, what `plan` reads and decides is the
 * change made, and reading changes nothing (guest_ensure). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_test.h"

/* An if-id tunnel's spec: no endpoints, no key. */
static struct ts_iface_spec spec(const char *name, const char *owner, uint32_t if_id)
{
	struct ts_iface_spec sp = { .ifname = name, .owner = owner, .if_id = if_id, .mtu = 1400 };

	assert_int_equal(ts_prefix_parse("10.213.0.0/31", &sp.address), 0);
	return sp;
}

static void assert_xfrmi_as_declared(const char *if_id_hex)
{
	char want[64];

	snprintf(want, sizeof(want), "xfrm if_id %s ", if_id_hex);
	if (!guest_out_has("ip -d link show dev xfrm0", want))
		if (system("ip -d link show dev xfrm0; ip addr show dev xfrm0") != 0)
			print_message("(ip failed)\n");
	assert_true(guest_out_has("ip -d link show dev xfrm0", want));
	assert_true(guest_out_has("ip -d link show dev xfrm0", "alias tunnelsync:t1"));
	assert_true(guest_out_has("ip link show dev xfrm0", "mtu 1400"));
	assert_true(guest_out_has("ip link show dev xfrm0", ",UP"));
	assert_true(guest_out_has("ip -4 addr show dev xfrm0", "inet 10.213.0.0/31"));
	assert_false(guest_out_has("ip -4 addr show dev xfrm0", "10.9.9.9"));
}

static void test_create_idempotent(void **state)
{
	struct ts_iface_spec sp = spec("xfrm0", "t1", 257);
	unsigned ch = 0;

	(void)state;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, TS_IFACE_CREATED | TS_IFACE_UP | TS_IFACE_ADDRESS);
	assert_xfrmi_as_declared("0x101");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, 0);
}

static void test_drift_healed(void **state)
{
	struct ts_iface_spec sp = spec("xfrm0", "t1", 257);
	unsigned ch = 0;

	(void)state;
	guest_sh("ip addr flush dev xfrm0");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, TS_IFACE_ADDRESS);
	assert_xfrmi_as_declared("0x101");

	guest_sh("ip addr add 10.9.9.9/32 dev xfrm0 && ip link set xfrm0 down && "
		 "ip link set xfrm0 mtu 1300");
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_int_equal(ch, TS_IFACE_ADDRESS | TS_IFACE_UP | TS_IFACE_MTU);
	assert_xfrmi_as_declared("0x101");

	/* Another if_id behind the agent's back: recreated with the declared. */
	guest_sh("ip link set xfrm0 type xfrm if_id 9");
	assert_true(guest_out_has("ip -d link show dev xfrm0", "xfrm if_id 0x9 "));
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_true(ch & TS_IFACE_RECREATED);
	assert_xfrmi_as_declared("0x101");

	/* The declared if_id changed: the same. */
	sp.if_id = 258;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_true(ch & TS_IFACE_RECREATED);
	assert_xfrmi_as_declared("0x102");
	sp.if_id = 257;
	assert_int_equal(guest_ensure(&sp, &ch), 0);
	assert_xfrmi_as_declared("0x101");
}

static void test_not_ours(void **state)
{
	struct ts_iface_spec foreign = spec("xfrmx", "t1", 257), other = spec("xfrm0", "t2", 257);
	unsigned ch = 99;

	(void)state;
	guest_sh("ip link add xfrmx type xfrm if_id 7 && ip link set xfrmx mtu 1280");
	assert_int_equal(guest_ensure(&foreign, &ch), -EEXIST);
	assert_int_equal(ch, 0);
	assert_true(guest_out_has("ip -d link show dev xfrmx", "xfrm if_id 0x7 "));
	assert_true(guest_out_has("ip link show dev xfrmx", "mtu 1280"));
	assert_false(guest_out_has("ip -d link show dev xfrmx", "alias"));
	/* Another tunnel's interface of that name. */
	assert_int_equal(guest_ensure(&other, &ch), -EEXIST);
	assert_true(guest_out_has("ip -d link show dev xfrm0", "alias tunnelsync:t1"));
	assert_true(guest_out_has("ip -d link show dev xfrm0", "xfrm if_id 0x101 "));
}

/* The tunnel switched from a mark to an if-id: its owned VTI of that name
 * is replaced by an XFRM interface. */
static void test_vti_replaced(void **state)
{
	struct ts_iface_spec vti = spec("xfrmv", "t3", 0), xi = spec("xfrmv", "t3", 300);
	unsigned ch = 0;

	(void)state;
	vti.key = 77;
	assert_int_equal(ts_ip_parse("192.0.2.1", &vti.local), 0);
	assert_int_equal(ts_ip_parse("192.0.2.2", &vti.remote), 0);
	assert_int_equal(guest_ensure(&vti, &ch), 0);
	assert_true(guest_out_has("ip -d link show dev xfrmv", "vti remote 192.0.2.2"));
	assert_int_equal(guest_ensure(&xi, &ch), 0);
	assert_true(ch & TS_IFACE_RECREATED);
	assert_true(guest_out_has("ip -d link show dev xfrmv", "xfrm if_id 0x12c "));
	assert_true(guest_out_has("ip -d link show dev xfrmv", "alias tunnelsync:t3"));
	assert_true(guest_out_has("ip -4 addr show dev xfrmv", "inet 10.213.0.0/31"));
}

static void test_prune(void **state)
{
	struct ts_iface_spec sp1 = spec("xfrm1", "t2", 301);
	const char *keep[] = { "xfrm0" };
	unsigned n = 99;

	(void)state;
	/* The kernel allows one XFRM interface per if_id (xfrmv has 300). */
	sp1.if_id = 300;
	assert_int_equal(guest_ensure(&sp1, NULL), -EEXIST);
	sp1.if_id = 301;
	assert_int_equal(guest_ensure(&sp1, NULL), 0);
	assert_true(guest_out_has("ip link show", ": xfrm1@"));
	/* xfrmv (t3) is owned and not kept either. */
	assert_int_equal(ts_iface_prune(guest_sock, keep, 1, &n), 0);
	assert_int_equal(n, 2);
	assert_false(guest_out_has("ip link show", ": xfrm1@"));
	assert_false(guest_out_has("ip link show", ": xfrmv@"));
	assert_true(guest_out_has("ip link show", ": xfrm0@"));
	assert_true(guest_out_has("ip link show", ": xfrmx@"));
	assert_int_equal(ts_iface_prune(guest_sock, keep, 1, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ts_iface_prune(guest_sock, NULL, 0, &n), 0);
	assert_int_equal(n, 1);
	assert_false(guest_out_has("ip link show", ": xfrm0@"));
	assert_true(guest_out_has("ip link show", ": xfrmx@"));
}

static void test_bad_input(void **state)
{
	struct ts_iface_spec sp = spec("xfrm0", "t1", 0);

	(void)state;
	/* Neither an if_id nor a VTI's key and endpoints. */
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	sp = spec("a-name-too-long-for-linux", "t1", 257);
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	sp = spec("xfrm0", "", 257);
	assert_int_equal(guest_ensure(&sp, NULL), -EINVAL);
	assert_false(guest_out_has("ip link show", ": xfrm0@"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_idempotent),
		cmocka_unit_test(test_drift_healed),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_vti_replaced),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_bad_input),
	};

	return guest_run("test_xfrmi_qemu", tests, sizeof(tests) / sizeof(tests[0]), "TS_IN_QEMU",
			 "needs XFRM interfaces: run through tests/kernel/run-qemu");
}
