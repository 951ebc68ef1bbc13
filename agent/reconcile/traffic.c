/* Owns what the agent does for the traffic of its tunnels beyond the
 * planes' agreement: whether the running charon reauthenticates
 * make-before-break (checked at start and after every charon restart,
 * logged loudly when not, carried into status and metrics), which
 * events the event connection subscribes to, the break-before-make
 * fallback, and the routes it owns (drained to a redundancy group's
 * siblings while a member is reauthenticated or down). */
#include "reconcile/agent_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "reconcile/planes.h"
#include "route/route.h"
#include "xfrm/xfrm.h"

void ts_agent_check_mbb(struct ts_agent *a)
{
	struct ts_mbb_check c;
	int r;

	if (TS_PLANES(a)->ike_take_restarted(TS_PLANES_CTX(a)))
		a->mbb_checked = false; /* charon read its settings again */
	if (a->mbb_checked)
		return;
	r = TS_PLANES(a)->ike_mbb_check(TS_PLANES_CTX(a), a->desired->agent.strongswan_conf, &c);
	if (r < 0)
		return; /* charon not reachable: next pass */
	a->mbb = c;
	a->mbb_checked = true;
	if (c.state == TS_MBB_ON)
		ts_logf(TS_LOG_INFO, "ike", NULL, "reauthentication is make-before-break: %s",
			c.reason);
	else
		ts_logf(TS_LOG_WARN, "ike", NULL,
			"MAKE-BEFORE-BREAK NOT IN FORCE (%s): key rotations will drop traffic: %s",
			ts_mbb_state_to_string(c.state), c.reason);
}

void ts_agent_recheck_mbb(struct ts_agent *a)
{
	a->mbb_checked = false;
}

bool ts_agent_log_needed(const struct ts_observation *o, const struct ts_plan *plan)
{
	for (size_t i = 0; plan && i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];

		if (act->apply &&
		    (act->kind == TS_ACTION_INITIATE || act->kind == TS_ACTION_REAUTH ||
		     act->kind == TS_ACTION_ROTATE || act->kind == TS_ACTION_RESUME))
			return true;
	}
	if (!o || !o->ike_ok)
		return true; /* cannot tell: keep counting */
	/* charon trying by itself (DPD restart, retries): an IKE SA that is
	 * neither absent nor established. */
	for (size_t i = 0; i < o->n_tunnels; i++)
		if (o->ike[i].ike_state == TS_IKE_SA_CREATED ||
		    o->ike[i].ike_state == TS_IKE_SA_CONNECTING)
			return true;
	return false;
}

void ts_agent_want_log(struct ts_agent *a, bool want)
{
	if (TS_PLANES(a)->ike_follow_log(TS_PLANES_CTX(a), want) <= 0)
		return;
	if (want)
		ts_logf(TS_LOG_DEBUG, "ike", NULL,
			"following charon's log (authentications ahead)");
	else
		ts_logf(TS_LOG_DEBUG, "ike", NULL,
			"charon's log no longer followed (every tunnel up)");
}

bool ts_agent_reauth_fallback(const struct ts_agent *a, const struct ts_journal_entry *e)
{
	/* The clock the journal's started_at came from (the planes'). */
	ts_usec_t now = a->planes.ops->now_realtime(a->planes.ctx);

	return e && e->started_at > 0 &&
	       now - e->started_at > (ts_usec_t)a->desired->agent.confirm_timeout * TS_USEC_PER_SEC;
}

/* --- routes ------------------------------------------------------------- */

static bool has_routes(const struct ts_tunnel *t)
{
	return t->routes.ifname[0] && t->routes.n;
}

static bool obs_up(const struct ts_observed_tunnel *ot)
{
	return ot && ot->ike.ok && ot->ike.sa_state == TS_OBS_SA_ESTABLISHED && ot->ike.child_up &&
	       (!ot->kernel.ok || ot->kernel.sa_pair_ok);
}

static int set_routes(struct ts_agent *a, const struct ts_tunnel *t, uint32_t offset)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	int r = 0;

	if (!ops->route_set)
		return 0;
	for (size_t i = 0; i < t->routes.n; i++) {
		int k = ops->route_set(TS_PLANES_CTX(a), t->routes.ifname, &t->routes.dst[i],
				       t->routes.metric[i] + offset);

		if (k < 0 && r == 0)
			r = k;
	}
	if (r < 0)
		ts_logf(TS_LOG_WARN, "kernel", t->name, "cannot set the routes through %s: %s",
			t->routes.ifname, strerror(-r));
	return r;
}

/* Another local member of t's group with routes (up in o, when o given). */
static bool sibling_path(const struct ts_agent *a, const struct ts_tunnel *t,
			 const struct ts_observation *o)
{
	const struct ts_desired *d = a->desired;

	if (!t->redundancy_group[0])
		return false;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *s = &d->tunnels[i];

		if (s == t || !ts_streq(s->redundancy_group, t->redundancy_group) || !s->enabled ||
		    !ts_tunnel_is_local(s, d->agent.node_name) || !has_routes(s))
			continue;
		if (!o || obs_up(ts_observed_find(&o->observed, s->name)))
			return true;
	}
	return false;
}

/* The agent's routes that no enabled local tunnel declares any more go
 * (a tunnel removed, disabled, its routes or a prefix taken out). */
static void prune_routes(struct ts_agent *a)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	const struct ts_desired *d = a->desired;
	struct ts_route_key *keep = NULL;
	size_t n = 0, cap = 0;
	unsigned deleted = 0;
	int r;

	if (!ops->route_prune)
		return;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		if (has_routes(t) && t->enabled && ts_tunnel_is_local(t, d->agent.node_name))
			cap += t->routes.n;
	}
	if (cap && !(keep = calloc(cap, sizeof(*keep)))) {
		ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot prune stale routes: %s",
			strerror(ENOMEM));
		return;
	}
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		if (!has_routes(t) || !t->enabled || !ts_tunnel_is_local(t, d->agent.node_name))
			continue;
		for (size_t j = 0; j < t->routes.n; j++)
			keep[n++] = (struct ts_route_key){ t->routes.ifname, t->routes.dst[j] };
	}
	r = ops->route_prune(TS_PLANES_CTX(a), keep, n, &deleted);
	free(keep);
	if (r < 0)
		ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot prune stale routes: %s", strerror(-r));
	if (deleted)
		ts_logf(TS_LOG_INFO, "kernel", NULL, "%u routes no longer declared removed",
			deleted);
}

/* --- owned interfaces ----------------------------------------------------- */

static void iface_log(const struct ts_tunnel *t, unsigned ch)
{
	static const struct {
		unsigned bit;
		const char *what;
	} said[] = {
		{ TS_IFACE_CREATED, "created" },
		{ TS_IFACE_RECREATED, "recreated (its kind, key or endpoints had changed)" },
		{ TS_IFACE_MTU, "MTU put back" },
		{ TS_IFACE_UP, "brought up" },
		{ TS_IFACE_ADDRESS, "address put back" },
		{ TS_IFACE_POLICY, "policy checks turned off" },
	};

	/* A new interface: its creation says it all. */
	if (ch & (TS_IFACE_CREATED | TS_IFACE_RECREATED))
		ch &= TS_IFACE_CREATED | TS_IFACE_RECREATED;
	for (size_t i = 0; i < TS_ARRAY_SIZE(said); i++)
		if (ch & said[i].bit)
			ts_logf(TS_LOG_INFO, "kernel", t->name, "interface %s: %s", t->iface.ifname,
				said[i].what);
}

/* Before the routes (they go through it): every enabled local tunnel's
 * owned VTI as declared; owned interfaces no local tunnel declares go. */
static void ifaces_sync(struct ts_agent *a)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	const struct ts_desired *d = a->desired;
	const char **keep;
	size_t n = 0;
	unsigned deleted = 0;
	int r;

	if (!ops->iface_ensure || !ops->iface_prune)
		return;
	keep = calloc(d->n_tunnels + 1, sizeof(*keep));
	if (!keep) {
		ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot sync the owned interfaces: %s",
			strerror(ENOMEM));
		return;
	}
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		struct ts_iface_spec sp;
		unsigned ch = 0;

		if (!t->iface.ifname[0] || !ts_tunnel_is_local(t, d->agent.node_name))
			continue;
		keep[n++] = t->iface.ifname;
		if (!t->enabled)
			continue;
		sp = (struct ts_iface_spec){ .ifname = t->iface.ifname,
					     .owner = t->name,
					     .local = t->customer_endpoint,
					     .remote = t->cloudflare_endpoint,
					     .key = t->routing.mark,
					     .mtu = t->iface.mtu,
					     .address = t->iface.address };
		r = ops->iface_ensure(TS_PLANES_CTX(a), &sp, &ch);
		iface_log(t, ch);
		if (r == -EEXIST)
			ts_logf(TS_LOG_WARN, "kernel", t->name,
				"interface %s exists and is not this tunnel's (no alias "
				"tunnelsync:%s): left alone",
				t->iface.ifname, t->name);
		else if (r < 0)
			ts_logf(TS_LOG_WARN, "kernel", t->name, "cannot set up interface %s: %s",
				t->iface.ifname, strerror(-r));
	}
	r = ops->iface_prune(TS_PLANES_CTX(a), keep, n, &deleted);
	free(keep);
	if (r < 0)
		ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot prune owned interfaces: %s",
			strerror(-r));
	if (deleted)
		ts_logf(TS_LOG_INFO, "kernel", NULL,
			"%u owned interfaces no longer declared deleted", deleted);
}

void ts_agent_routes_sync(struct ts_agent *a, const struct ts_observation *o)
{
	const struct ts_desired *d = a->desired;

	ifaces_sync(a);

	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		const struct ts_observed_tunnel *ot;
		bool drain;

		if (!has_routes(t) || !t->enabled || !ts_tunnel_is_local(t, d->agent.node_name) ||
		    !ts_observation_in_scope(o, i))
			continue;
		ot = ts_observed_find(&o->observed, t->name);
		/* Only what was read decides: an unread IKE plane drains nothing. */
		drain = ot && ot->ike.ok && !obs_up(ot) && sibling_path(a, t, o);
		(void)set_routes(a, t, drain ? TS_ROUTE_DRAIN_OFFSET : 0);
	}
	prune_routes(a);
}

bool ts_agent_routes_drain(struct ts_agent *a, const struct ts_tunnel *t)
{
	if (!has_routes(t) || !sibling_path(a, t, NULL))
		return false;
	if (set_routes(a, t, TS_ROUTE_DRAIN_OFFSET) < 0)
		return false;
	ts_logf(TS_LOG_INFO, "kernel", t->name, "routes through %s drained to the group's siblings",
		t->routes.ifname);
	return true;
}

void ts_agent_routes_restore(struct ts_agent *a, const struct ts_tunnel *t)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	ts_usec_t end = ops->now_monotonic(ctx) + 3 * TS_USEC_PER_SEC;

	/* Inbound packets on the new pair: the edge sends through it. */
	while (a->desired->agent.kernel_xfrm && ops->now_monotonic(ctx) < end) {
		struct ts_ike_observed io = { 0 };
		struct ts_xfrm_snapshot snap = { 0 };
		struct ts_xfrm_match_result res = { 0 };
		struct ts_xfrm_expect e;
		bool in = false;

		if (ops->ike_observe(ctx, t, 1, &io) == 0) {
			ts_agent_fill_expect(t, &io, &e);
			if (ops->kernel_match(ctx, &e, 1, &snap, &res) == 0 && res.n_tunnels == 1)
				in = res.tunnels[0].packets_in > 0;
			ts_xfrm_match_result_done(&res);
			ts_xfrm_snapshot_done(&snap);
		}
		ts_ike_observed_done(&io);
		if (in)
			break;
		ops->wait(ctx, 100);
	}
	if (set_routes(a, t, 0) == 0)
		ts_logf(TS_LOG_INFO, "kernel", t->name, "routes through %s restored",
			t->routes.ifname);
}
