/* Unit tests of what a pass does to the owned interfaces and routes
 * (reconcile/traffic.c), over fake planes (fake_planes.h: the kernel's
 * interfaces and the agent's routes are a fake table, changed after
 * route/route.h's own decisions): `plan` (a read-only pass) lists each
 * kind of change with its fields old -> new, in phase "traffic", changes
 * nothing, and exits 2 while one is pending and 0 when none is; the
 * applying pass carries out exactly what the plan listed, and the next
 * plan is empty. No root: the kernel side is tested for real in
 * tests/route (test-route-netns, test-iface-uml, test-xfrmi-qemu). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_planes.h"
#include "reconcile/plan.h"
#include "route/route.h"

/* Which traffic kinds and causes the cases below produced. */
static bool kinds_seen[_TS_ACTION_MAX], causes_seen[_TS_CAUSE_MAX];

/* Tunnels t01, t02: VTIs vti01/vti02 (mark 0x101/0x102), a redundancy
 * group, routes 10.1.N.0/24 metric 100 and 10.2.N.0/24 metric 200. */
static int setup(void **state)
{
	/* The fake's tunnels are never freed: their routes live here. */
	static struct ts_tunnel_route routes[2][2];
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_init(f, 2);
	for (size_t i = 0; i < 2; i++) {
		struct ts_tunnel *t = &f->t[i];
		char text[32];

		t->routing.has_if_id = false;
		t->routing.if_id = 0;
		t->routing.mark = (uint32_t)(0x101 + i);
		snprintf(t->redundancy_group, sizeof(t->redundancy_group), "uplink");
		snprintf(t->iface.ifname, sizeof(t->iface.ifname), "vti%02zu", i + 1);
		snprintf(text, sizeof(text), "10.0.%zu.0/31", i);
		assert_int_equal(ts_prefix_parse(text, &t->iface.address), 0);
		t->iface.mtu = 1400;
		snprintf(t->routes.ifname, sizeof(t->routes.ifname), "vti%02zu", i + 1);
		t->routes.route = routes[i];
		t->routes.n = 2;
		snprintf(text, sizeof(text), "10.1.%zu.0/24", i);
		assert_int_equal(ts_prefix_parse(text, &t->routes.route[0].dst), 0);
		t->routes.route[0].metric = 100;
		snprintf(text, sizeof(text), "10.2.%zu.0/24", i);
		assert_int_equal(ts_prefix_parse(text, &t->routes.route[1].dst), 0);
		t->routes.route[1].metric = 200;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fake_done(*state);
	free(*state);
	return 0;
}

/* `plan`: a read-only pass. The fake kernel must not change. */
static void plan(struct fake *f, struct ts_pass_result *res)
{
	struct ts_agent_options opts = { .readonly = true };
	struct fake_link links[FAKE_MAX_LINKS];
	struct fake_route routes[FAKE_MAX_ROUTES];
	unsigned writes = f->net_writes;
	struct ts_agent *a = NULL;

	memcpy(links, f->links, sizeof(links));
	memcpy(routes, f->routes, sizeof(routes));
	assert_int_equal(fake_agent_open(f, &opts, &a), 0);
	memset(res, 0, sizeof(*res));
	assert_int_equal(ts_agent_pass(a, NULL, 0, res), 0);
	ts_agent_free(a);
	assert_int_equal(f->net_writes, writes);
	assert_memory_equal(links, f->links, sizeof(links));
	assert_memory_equal(routes, f->routes, sizeof(routes));
	/* In phase order, whatever traffic.c added (apply walks it so). */
	for (size_t i = 1; i < res->plan->n_actions; i++)
		assert_true(ts_plan_action_phase(&res->plan->actions[i - 1]) <=
			    ts_plan_action_phase(&res->plan->actions[i]));
	for (size_t i = 0; i < res->plan->n_actions; i++) {
		const struct ts_action *act = &res->plan->actions[i];

		if (ts_plan_action_phase(act) == TS_PHASE_TRAFFIC ||
		    act->cause >= TS_CAUSE_IFACE_MISSING) {
			kinds_seen[act->kind] = true;
			causes_seen[act->cause] = true;
		}
	}
}

/* `plan`'s exit status (main.c): 1 a plane not read, 2 changes, 0 none. */
static int plan_exit(const struct ts_pass_result *res)
{
	return !res->planes_ok || res->n_store_problems ? 1
	       : ts_plan_has_changes(res->plan)		? 2
							: 0;
}

static size_t count_traffic(const struct ts_plan *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_actions; i++)
		n += ts_plan_action_phase(&p->actions[i]) == TS_PHASE_TRAFFIC;
	return n;
}

/* The one action of that kind about ifname (and dst, when given). */
static const struct ts_action *find(const struct ts_plan *p, enum ts_action_kind kind,
				    const char *ifname, const char *dst)
{
	const struct ts_action *hit = NULL;
	struct ts_prefix want;

	if (dst)
		assert_int_equal(ts_prefix_parse(dst, &want), 0);
	for (size_t i = 0; i < p->n_actions; i++) {
		const struct ts_action *act = &p->actions[i];

		if (act->kind != kind || !act->object || strcmp(act->object->ifname, ifname) != 0 ||
		    (dst && !ts_prefix_equal(&act->object->dst, &want)))
			continue;
		if (hit)
			fail_msg("two %s actions for %s", ts_plan_action_kind_to_string(kind),
				 ifname);
		hit = act;
	}
	if (!hit)
		fail_msg("no %s action for %s %s", ts_plan_action_kind_to_string(kind), ifname,
			 dst ? dst : "");
	return hit;
}

static void find_kind_tunnel(const struct ts_plan *p, enum ts_action_kind kind, const char *tunnel)
{
	for (size_t i = 0; i < p->n_actions; i++)
		if (p->actions[i].kind == kind && strcmp(p->actions[i].tunnel, tunnel) == 0)
			return;
	fail_msg("no %s action for %s", ts_plan_action_kind_to_string(kind), tunnel);
}

static void assert_change(const struct ts_action *act, const char *field, const char *old_value,
			  const char *new_value)
{
	const struct ts_change *c = ts_changes_find(&act->changes, field);

	if (!c)
		fail_msg("%s: no change of %s", act->reason, field);
	if (old_value)
		assert_non_null(c->old_value);
	if (old_value)
		assert_string_equal(c->old_value, old_value);
	else
		assert_null(c->old_value);
	assert_string_equal(c->new_value, new_value);
}

/* Everything as declared, after the passes that set it up. */
static void settle(struct fake *f)
{
	assert_true(fake_settle(f, 3) > 0);
}

static void test_create_then_nothing_to_do(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *act;
	char *text = NULL;

	plan(f, &res);
	assert_int_equal(plan_exit(&res), 2);
	act = find(res.plan, TS_ACTION_CREATE_IFACE, "vti01", NULL);
	assert_string_equal(act->tunnel, "t01");
	assert_int_equal(act->cause, TS_CAUSE_IFACE_MISSING);
	assert_int_equal(act->plane, TS_PLANE_KERNEL);
	assert_true(act->apply);
	assert_string_equal(act->reason, "interface vti01: create (VTI)");
	assert_change(act, "kind", "", "vti");
	assert_change(act, "key", "", "0x101");
	assert_change(act, "local", "", "203.0.113.1");
	assert_change(act, "remote", "", "198.51.100.1");
	assert_change(act, "address", "", "10.0.0.0/31");
	assert_change(act, "mtu", "", "1400");
	assert_change(act, "link", "", "up");
	assert_change(act, "disable_policy", "", "1");
	act = find(res.plan, TS_ACTION_ADD_ROUTE, "vti02", "10.2.1.0/24");
	assert_string_equal(act->tunnel, "t02");
	assert_int_equal(act->cause, TS_CAUSE_ROUTE_MISSING);
	assert_int_equal(act->object->metric, 200);
	assert_string_equal(act->reason, "route 10.2.1.0/24 via vti02: add at metric 200");
	assert_change(act, "metric", "", "200");
	/* Two interfaces, four routes; the interfaces before their routes,
	 * all after the removals and before anything IKE. */
	assert_int_equal(count_traffic(res.plan), 6);
	for (size_t i = 1; i < res.plan->n_actions; i++)
		assert_true(ts_plan_action_phase(&res.plan->actions[i - 1]) <=
			    ts_plan_action_phase(&res.plan->actions[i]));
	assert_true(find(res.plan, TS_ACTION_CREATE_IFACE, "vti02", NULL) <
		    find(res.plan, TS_ACTION_ADD_ROUTE, "vti01", "10.1.0.0/24"));

	assert_int_equal(ts_plan_format_table(res.plan, &text), 0);
	assert_non_null(strstr(text, "traffic         create-interface  t01 "));
	assert_non_null(strstr(text, "interface vti01: create (VTI)\n    kind: (none) -> vti\n"));
	assert_non_null(strstr(text, "6 interface/route changes"));
	free(text);
	assert_int_equal(ts_plan_format_json(res.plan, &text), 0);
	assert_non_null(strstr(text, "{\"phase\":\"traffic\",\"kind\":\"add-route\",\"tunnel\":"
				     "\"t01\",\"plane\":\"kernel\",\"cause\":\"route-missing\","
				     "\"interface\":\"vti01\",\"route\":\"10.1.0.0/24\","
				     "\"apply\":true,\"reason\":\"route 10.1.0.0/24 via vti01: add "
				     "at metric 100\",\"changes\":[{\"field\":\"metric\",\"old\":"
				     "\"\",\"new\":\"100\"}]}"));
	assert_non_null(strstr(text, "\"traffic\":6"));
	free(text);
	ts_pass_result_done(&res);

	/* The applying pass does what was listed; then nothing is left. */
	settle(f);
	assert_non_null(fake_link_find(f, "vti01"));
	assert_string_equal(fake_link_find(f, "vti02")->alias, "tunnelsync:t02");
	assert_int_equal(fake_route_count(f), 4);
	assert_int_equal(fake_route_find(f, "vti01", "10.2.0.0/24")->metric, 200);
	plan(f, &res);
	assert_int_equal(count_traffic(res.plan), 0);
	assert_int_equal(plan_exit(&res), 0);
	ts_pass_result_done(&res);
}

static void test_drift_put_back(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *act;
	struct fake_link *l;

	settle(f);
	l = fake_link_find(f, "vti01");
	l->mtu = 1500;
	l->up = false;
	l->policy_off = 0;
	assert_int_equal(ts_prefix_parse("192.0.2.9/24", &l->addr[1]), 0);
	l->n_addr = 2;
	fake_link_find(f, "vti02")->n_addr = 0;

	plan(f, &res);
	assert_int_equal(plan_exit(&res), 2);
	assert_int_equal(count_traffic(res.plan), 2);
	act = find(res.plan, TS_ACTION_FIX_IFACE, "vti01", NULL);
	assert_int_equal(act->cause, TS_CAUSE_IFACE_DRIFT);
	assert_string_equal(act->reason,
			    "interface vti01: put back address MTU link up disable_policy");
	assert_change(act, "address", "10.0.0.0/31, 192.0.2.9/24", "10.0.0.0/31");
	assert_change(act, "mtu", "1500", "1400");
	assert_change(act, "link", "down", "up");
	assert_change(act, "disable_policy", "0", "1");
	act = find(res.plan, TS_ACTION_FIX_IFACE, "vti02", NULL);
	assert_string_equal(act->reason, "interface vti02: put back address");
	assert_int_equal(act->changes.n, 1);
	assert_change(act, "address", "", "10.0.1.0/31");
	ts_pass_result_done(&res);

	settle(f);
	l = fake_link_find(f, "vti01");
	assert_int_equal(l->mtu, 1400);
	assert_true(l->up);
	assert_int_equal(l->n_addr, 1);
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 0);
	ts_pass_result_done(&res);
}

static void test_replace_and_foreign(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *act;

	settle(f);
	/* Another key behind the agent's back: recreated, its routes (gone
	 * with it) added again. */
	fake_link_find(f, "vti01")->key = 0x999;
	/* t02 now wants an XFRM interface where its VTI is. */
	f->t[1].routing.has_if_id = true;
	f->t[1].routing.if_id = 42;
	f->t[1].routing.mark = 0;
	plan(f, &res);
	act = find(res.plan, TS_ACTION_REPLACE_IFACE, "vti01", NULL);
	assert_int_equal(act->cause, TS_CAUSE_IFACE_DIFFERS);
	assert_string_equal(act->reason,
			    "interface vti01: replace (not the declared VTI; its routes put back)");
	assert_change(act, "key", "0x999", "0x101");
	assert_null(ts_changes_find(&act->changes, "kind"));
	assert_null(ts_changes_find(&act->changes, "local"));
	act = find(res.plan, TS_ACTION_REPLACE_IFACE, "vti02", NULL);
	assert_change(act, "kind", "vti", "xfrm");
	assert_change(act, "if_id", "", "42");
	assert_null(ts_changes_find(&act->changes, "disable_policy"));
	/* Their routes are at the declared metric now but go with them. */
	find(res.plan, TS_ACTION_ADD_ROUTE, "vti01", "10.1.0.0/24");
	find(res.plan, TS_ACTION_ADD_ROUTE, "vti02", "10.2.1.0/24");
	assert_int_equal(count_traffic(res.plan), 6);
	ts_pass_result_done(&res);
	settle(f);
	assert_string_equal(fake_link_find(f, "vti02")->kind, "xfrm");
	assert_int_equal(fake_route_count(f), 4);
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 0);
	ts_pass_result_done(&res);

	/* A name taken by an interface that is not the tunnel's: reported,
	 * left alone, no change pending (exit 0 then, nothing to apply). */
	snprintf(f->t[1].iface.ifname, sizeof(f->t[1].iface.ifname), "eth9");
	snprintf(f->t[1].routes.ifname, sizeof(f->t[1].routes.ifname), "vti02");
	assert_non_null(fake_link_add(f, "eth9", "dummy"));
	/* t01 down too: an initiate follows, and the report stays after it. */
	f->ike[0].up = false;
	f->ike[0].ike_id = 0;
	plan(f, &res);
	find_kind_tunnel(res.plan, TS_ACTION_INITIATE, "t01");
	act = find(res.plan, TS_ACTION_REPORT, "eth9", NULL);
	assert_int_equal(act->cause, TS_CAUSE_IFACE_FOREIGN);
	assert_false(act->apply);
	/* vti02 is no local tunnel's any more: it goes (and its routes
	 * with it, so they are listed too). */
	act = find(res.plan, TS_ACTION_DELETE_IFACE, "vti02", NULL);
	assert_string_equal(act->tunnel, "t02");
	assert_int_equal(act->cause, TS_CAUSE_STALE);
	assert_change(act, "kind", "xfrm", "");
	ts_pass_result_done(&res);
}

static void test_prune_and_metric(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *act;
	struct fake_link *old;

	settle(f);
	/* An owned interface of a tunnel removed from the config, a route
	 * of the agent's to a prefix no longer declared, and a declared
	 * route at another metric. */
	old = fake_link_add(f, "vti77", "vti");
	snprintf(old->alias, sizeof(old->alias), "tunnelsync:gone");
	assert_non_null(fake_route_add(f, "vti01", "10.9.0.0/16", 300));
	fake_route_find(f, "vti02", "10.1.1.0/24")->metric = 50;
	/* A disabled tunnel keeps its interface, not its routes. */
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 2);
	assert_int_equal(count_traffic(res.plan), 3);
	act = find(res.plan, TS_ACTION_DELETE_IFACE, "vti77", NULL);
	assert_string_equal(act->tunnel, "gone");
	assert_string_equal(act->reason,
			    "interface vti77: delete (alias tunnelsync:gone; no local tunnel "
			    "declares it)");
	act = find(res.plan, TS_ACTION_DELETE_ROUTE, "vti01", "10.9.0.0/16");
	assert_int_equal(act->cause, TS_CAUSE_STALE);
	assert_string_equal(act->tunnel, "");
	assert_string_equal(act->reason, "route 10.9.0.0/16 via vti01: delete (metric 300; no "
					 "enabled local tunnel declares it)");
	assert_change(act, "metric", "300", "");
	act = find(res.plan, TS_ACTION_SET_ROUTE_METRIC, "vti02", "10.1.1.0/24");
	assert_int_equal(act->cause, TS_CAUSE_ROUTE_METRIC);
	assert_string_equal(act->reason,
			    "route 10.1.1.0/24 via vti02: metric 50 -> 100 (the declared metric)");
	assert_change(act, "metric", "50", "100");
	/* Removals first. */
	assert_true(find(res.plan, TS_ACTION_DELETE_IFACE, "vti77", NULL) <
		    find(res.plan, TS_ACTION_DELETE_ROUTE, "vti01", "10.9.0.0/16"));
	assert_true(find(res.plan, TS_ACTION_DELETE_ROUTE, "vti01", "10.9.0.0/16") <
		    find(res.plan, TS_ACTION_SET_ROUTE_METRIC, "vti02", "10.1.1.0/24"));
	ts_pass_result_done(&res);

	settle(f);
	assert_null(fake_link_find(f, "vti77"));
	assert_null(fake_route_find(f, "vti01", "10.9.0.0/16"));
	assert_int_equal(fake_route_find(f, "vti02", "10.1.1.0/24")->metric, 100);

	f->t[1].enabled = false;
	plan(f, &res);
	find(res.plan, TS_ACTION_DELETE_ROUTE, "vti02", "10.1.1.0/24");
	find(res.plan, TS_ACTION_DELETE_ROUTE, "vti02", "10.2.1.0/24");
	assert_int_equal(count_traffic(res.plan), 2);
	ts_pass_result_done(&res);
}

static void test_failover_metric(void **state)
{
	struct fake *f = *state;
	struct ts_pass_result res;
	const struct ts_action *act;
	char *text = NULL;

	settle(f);
	/* t01 down (its VTI stays up with no SA), t02 up: t01's routes go
	 * to +10000 so that t02's carry the traffic. */
	f->ike[0].up = false;
	f->ike[0].ike_id = 0;
	f->ike[0].reachable = false;
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 2);
	act = find(res.plan, TS_ACTION_SET_ROUTE_METRIC, "vti01", "10.1.0.0/24");
	assert_int_equal(act->cause, TS_CAUSE_ROUTE_FAILOVER);
	assert_int_equal(act->object->metric, 10100);
	assert_string_equal(act->reason, "route 10.1.0.0/24 via vti01: metric 100 -> 10100 "
					 "(failover: tunnel not up, a group sibling is)");
	assert_change(act, "metric", "100", "10100");
	act = find(res.plan, TS_ACTION_SET_ROUTE_METRIC, "vti01", "10.2.0.0/24");
	assert_change(act, "metric", "200", "10200");
	assert_int_equal(count_traffic(res.plan), 2);
	assert_int_equal(ts_plan_format_json(res.plan, &text), 0);
	assert_non_null(strstr(text, "\"cause\":\"route-failover\",\"interface\":\"vti01\","
				     "\"route\":\"10.1.0.0/24\""));
	free(text);
	ts_pass_result_done(&res);

	/* The pass drains them (the initiate fails: the peer is away). */
	assert_int_equal(fake_pass(f, NULL, 0, &res), 0);
	ts_pass_result_done(&res);
	assert_int_equal(fake_route_find(f, "vti01", "10.1.0.0/24")->metric, 10100);
	/* A route missing meanwhile comes back at the failover metric. */
	fake_route_find(f, "vti01", "10.2.0.0/24")->present = false;
	plan(f, &res);
	act = find(res.plan, TS_ACTION_ADD_ROUTE, "vti01", "10.2.0.0/24");
	assert_int_equal(act->cause, TS_CAUSE_ROUTE_FAILOVER);
	assert_change(act, "metric", "", "10200");
	ts_pass_result_done(&res);

	/* Up again: the pass that brings it up plans from what it found (still
	 * drained: the missing route comes back at 10200) and, once the
	 * tunnel is up, puts the declared metrics back at its end. */
	f->ike[0].reachable = true;
	assert_int_equal(fake_pass(f, NULL, 0, &res), 0);
	find(res.plan, TS_ACTION_ADD_ROUTE, "vti01", "10.2.0.0/24");
	assert_int_equal(
		find(res.plan, TS_ACTION_ADD_ROUTE, "vti01", "10.2.0.0/24")->object->metric, 10200);
	ts_pass_result_done(&res);
	assert_int_equal(fake_route_find(f, "vti01", "10.1.0.0/24")->metric, 100);
	assert_int_equal(fake_route_find(f, "vti01", "10.2.0.0/24")->metric, 200);
	assert_int_equal(fake_route_count(f), 4);
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 0);
	ts_pass_result_done(&res);

	/* Drained by hand (as a crash mid-rotation would leave it): the
	 * declared metric back, said so. */
	fake_route_find(f, "vti01", "10.1.0.0/24")->metric = 10100;
	plan(f, &res);
	act = find(res.plan, TS_ACTION_SET_ROUTE_METRIC, "vti01", "10.1.0.0/24");
	assert_int_equal(act->cause, TS_CAUSE_ROUTE_METRIC);
	assert_string_equal(act->reason, "route 10.1.0.0/24 via vti01: metric 10100 -> 100 "
					 "(tunnel up: the declared metric back)");
	ts_pass_result_done(&res);
	settle(f);
	assert_int_equal(fake_route_find(f, "vti01", "10.1.0.0/24")->metric, 100);
	plan(f, &res);
	assert_int_equal(plan_exit(&res), 0);
	ts_pass_result_done(&res);
}

/* once --dry-run lists them and changes nothing; suspended: listed, not
 * to apply; a plane that cannot be read: reported, nothing decided. */
static void test_dry_run_suspend_unreadable(void **state)
{
	struct fake *f = *state;
	struct ts_agent_options opts = { .dry_run = true };
	struct ts_pass_result res;
	struct ts_agent *a = NULL;
	const struct ts_action *act;

	settle(f);
	fake_link_find(f, "vti01")->mtu = 9000;
	fake_route_find(f, "vti02", "10.1.1.0/24")->present = false;
	{
		unsigned writes = f->net_writes;

		assert_int_equal(fake_agent_open(f, &opts, &a), 0);
		assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
		ts_agent_free(a);
		assert_int_equal(f->net_writes, writes);
	}
	assert_int_equal(count_traffic(res.plan), 2);
	for (size_t i = 0; i < res.plan->n_actions; i++)
		if (ts_plan_action_phase(&res.plan->actions[i]) == TS_PHASE_TRAFFIC)
			assert_int_equal(res.outcomes[i].status, TS_OUTCOME_PENDING);
	assert_int_equal(fake_link_find(f, "vti01")->mtu, 9000);
	assert_null(fake_route_find(f, "vti02", "10.1.1.0/24"));
	ts_pass_result_done(&res);

	f->d.agent.suspend = true;
	plan(f, &res);
	act = find(res.plan, TS_ACTION_FIX_IFACE, "vti01", NULL);
	assert_false(act->apply);
	assert_false(find(res.plan, TS_ACTION_ADD_ROUTE, "vti02", "10.1.1.0/24")->apply);
	ts_pass_result_done(&res);
	f->d.agent.suspend = false;

	f->net_read_fails = true;
	plan(f, &res);
	assert_int_equal(count_traffic(res.plan), 0);
	for (size_t i = 0, n = 0; i < res.plan->n_actions; i++) {
		act = &res.plan->actions[i];
		if (act->kind == TS_ACTION_REPORT && act->cause == TS_CAUSE_INCOMPLETE &&
		    act->plane == TS_PLANE_KERNEL)
			n++;
		if (i + 1 == res.plan->n_actions)
			assert_int_equal(n, 4); /* interfaces, routes, vti01, vti02 */
	}
	ts_pass_result_done(&res);
	f->net_read_fails = false;
	settle(f);
	assert_int_equal(fake_link_find(f, "vti01")->mtu, 1400);
}

/* Every traffic kind and cause came up in a case above. */
static void test_every_traffic_entry_covered(void **state)
{
	(void)state;
	for (int k = TS_ACTION_DELETE_IFACE; k <= TS_ACTION_SET_ROUTE_METRIC; k++)
		if (!kinds_seen[k])
			fail_msg("no case for kind %s", ts_plan_action_kind_to_string(k));
	for (int c = TS_CAUSE_IFACE_MISSING; c < _TS_CAUSE_MAX; c++)
		if (!causes_seen[c])
			fail_msg("no case for cause %s", ts_plan_cause_to_string(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_then_nothing_to_do, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drift_put_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_and_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_and_metric, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_metric, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_suspend_unreadable, setup, teardown),
		cmocka_unit_test(test_every_traffic_entry_covered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
