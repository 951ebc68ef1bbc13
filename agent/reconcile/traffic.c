/* Owns what the agent does for the traffic of its tunnels beyond the
 * planes' agreement: whether the running charon reauthenticates
 * make-before-break (checked at start and after every charon restart,
 * logged loudly when not, carried into status and metrics), which
 * events the event connection subscribes to, the break-before-make
 * fallback, and the interfaces and routes it owns (planned as actions
 * of phase traffic, drained to a redundancy group's siblings while a
 * member is reauthenticated or down). */
#include "reconcile/agent_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "reconcile/planes.h"
#include "reconcile/rotation.h"
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
		int k = ops->route_set(TS_PLANES_CTX(a), t->routes.ifname, &t->routes.route[i].dst,
				       t->routes.route[i].metric + offset);

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

/* --- interfaces and routes: one decision for plan and apply --------------
 * ts_agent_plan_traffic reads the owned interfaces and routes and lists
 * what a pass changes as plan actions (phase traffic);
 * ts_agent_apply_traffic carries out one such action, with the object
 * and metric the plan chose. What is wanted (below) and how the kernel's
 * state compares with it (route/route.h: ts_iface_decide,
 * ts_route_decide_set, ts_route_kept, ts_iface_kept) are decided once,
 * for both: the adapter's ensure and set act on the same decisions. */

static bool iface_kept_for(const struct ts_desired *d, const struct ts_tunnel *t)
{
	return t->iface.ifname[0] && ts_tunnel_is_local(t, d->agent.node_name);
}

static bool routes_wanted(const struct ts_desired *d, const struct ts_tunnel *t)
{
	return has_routes(t) && t->enabled && ts_tunnel_is_local(t, d->agent.node_name);
}

static struct ts_iface_spec iface_spec(const struct ts_tunnel *t)
{
	return (struct ts_iface_spec){ .ifname = t->iface.ifname,
				       .owner = t->name,
				       .local = t->customer_endpoint,
				       .remote = t->cloudflare_endpoint,
				       .key = t->routing.mark,
				       .if_id = t->routing.has_if_id ? t->routing.if_id : 0,
				       .mtu = t->iface.mtu,
				       .address = t->iface.address };
}

/* The metric offset of t's routes: drained while it is not up and a
 * group sibling is. Only what was read decides: an unread IKE plane
 * drains nothing. */
static uint32_t route_offset(const struct ts_agent *a, const struct ts_observation *o,
			     const struct ts_tunnel *t, bool *ret_drained)
{
	const struct ts_observed_tunnel *ot = ts_observed_find(&o->observed, t->name);
	bool drain = ot && ot->ike.ok && !obs_up(ot) && sibling_path(a, t, o);

	*ret_drained = drain;
	return drain ? TS_ROUTE_DRAIN_OFFSET : 0;
}

/* Owned interfaces no local tunnel declares go (a disabled tunnel's stays). */
static const char **iface_keep(const struct ts_desired *d, size_t *ret_n)
{
	const char **keep = calloc(d->n_tunnels + 1, sizeof(*keep));
	size_t n = 0;

	if (!keep)
		return NULL;
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (iface_kept_for(d, &d->tunnels[i]))
			keep[n++] = d->tunnels[i].iface.ifname;
	*ret_n = n;
	return keep;
}

/* Owned routes no enabled local tunnel declares go (a tunnel removed,
 * disabled, its routes or a prefix taken out). */
static struct ts_route_key *route_keep(const struct ts_desired *d, size_t *ret_n)
{
	struct ts_route_key *keep;
	size_t n = 0, cap = 1;

	for (size_t i = 0; i < d->n_tunnels; i++)
		if (routes_wanted(d, &d->tunnels[i]))
			cap += d->tunnels[i].routes.n;
	keep = calloc(cap, sizeof(*keep));
	if (!keep)
		return NULL;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		for (size_t j = 0; routes_wanted(d, t) && j < t->routes.n; j++)
			keep[n++] =
				(struct ts_route_key){ t->routes.ifname, t->routes.route[j].dst };
	}
	*ret_n = n;
	return keep;
}

/* The actions being built (sorted into the plan at the end). */
struct tlist {
	struct ts_action *v;
	size_t n, cap;
	bool apply;
	int err;
};

static struct ts_action *tl_add(struct tlist *tl, enum ts_action_kind kind,
				enum ts_plan_cause cause, const char *tunnel, const char *ifname,
				const struct ts_prefix *dst, uint32_t metric, const char *fmt, ...)
	TS_PRINTF(8, 9);

static struct ts_action *tl_add(struct tlist *tl, enum ts_action_kind kind,
				enum ts_plan_cause cause, const char *tunnel, const char *ifname,
				const struct ts_prefix *dst, uint32_t metric, const char *fmt, ...)
{
	struct ts_action *act;
	va_list ap;

	if (tl->err)
		return NULL;
	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? 2 * tl->cap : 8;
		struct ts_action *v = realloc(tl->v, cap * sizeof(*v));

		if (!v) {
			tl->err = -ENOMEM;
			return NULL;
		}
		tl->v = v;
		tl->cap = cap;
	}
	act = &tl->v[tl->n];
	memset(act, 0, sizeof(*act));
	act->kind = kind;
	act->plane = TS_PLANE_KERNEL;
	act->cause = cause;
	act->stale_index = TS_PLAN_NO_OBJECT;
	act->apply = kind != TS_ACTION_REPORT && tl->apply;
	snprintf(act->tunnel, sizeof(act->tunnel), "%s", tunnel ? tunnel : "");
	va_start(ap, fmt);
	vsnprintf(act->reason, sizeof(act->reason), fmt, ap);
	va_end(ap);
	tl->n++;
	if (ifname) {
		act->object = calloc(1, sizeof(*act->object));
		if (!act->object) {
			tl->err = -ENOMEM;
			return NULL;
		}
		snprintf(act->object->ifname, sizeof(act->object->ifname), "%s", ifname);
		if (dst)
			act->object->dst = *dst;
		act->object->metric = metric;
	}
	return act;
}

static void tl_change(struct tlist *tl, struct ts_action *act, const char *field,
		      const char *old_value, const char *new_value)
{
	if (act && ts_changes_add(&act->changes, field, old_value, new_value) < 0)
		tl->err = -ENOMEM;
}

static void tl_free(struct tlist *tl)
{
	for (size_t i = 0; i < tl->n; i++) {
		ts_changes_done(&tl->v[i].changes);
		free(tl->v[i].object);
	}
	free(tl->v);
	memset(tl, 0, sizeof(*tl));
}

static const char *u32_text(uint32_t v, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu32, v);
	return buf;
}

static const char *hex_text(uint32_t v, char *buf, size_t size)
{
	snprintf(buf, size, "0x%" PRIx32, v);
	return buf;
}

/* The link properties the spec decides (kind, key and endpoints, or
 * if_id): what a create sets, or what a replace changes. */
static void iface_link_changes(struct tlist *tl, struct ts_action *act,
			       const struct ts_iface_seen *seen, const struct ts_iface_spec *sp)
{
	char o[TS_PREFIX_STRLEN], n[TS_PREFIX_STRLEN];
	const char *kind = sp->if_id ? "xfrm" : "vti";
	bool same = seen->exists && strcmp(seen->kind, kind) == 0;

	if (!same)
		tl_change(tl, act, "kind", seen->exists ? seen->kind : "", kind);
	if (sp->if_id) {
		if (!same || seen->if_id != sp->if_id)
			tl_change(tl, act, "if_id", same ? u32_text(seen->if_id, o, sizeof(o)) : "",
				  u32_text(sp->if_id, n, sizeof(n)));
		return;
	}
	if (!same || seen->ikey != sp->key || seen->okey != sp->key)
		tl_change(tl, act, "key", same ? hex_text(seen->ikey, o, sizeof(o)) : "",
			  hex_text(sp->key, n, sizeof(n)));
	if (!same || !ts_ip_equal(&seen->local, &sp->local))
		tl_change(tl, act, "local", same ? ts_ip_format(&seen->local, o, sizeof(o)) : "",
			  ts_ip_format(&sp->local, n, sizeof(n)));
	if (!same || !ts_ip_equal(&seen->remote, &sp->remote))
		tl_change(tl, act, "remote", same ? ts_ip_format(&seen->remote, o, sizeof(o)) : "",
			  ts_ip_format(&sp->remote, n, sizeof(n)));
}

/* The properties put back on an interface that stays (ch: TS_IFACE_*
 * bits), or with fresh every one of them, from nothing (a new one). */
static void iface_fix_changes(struct tlist *tl, struct ts_action *act,
			      const struct ts_iface_seen *seen, const struct ts_iface_spec *sp,
			      unsigned ch, bool fresh)
{
	char o[8 * TS_PREFIX_STRLEN], n[TS_PREFIX_STRLEN];

	if (fresh || ch & TS_IFACE_ADDRESS) {
		size_t len = 0;

		o[0] = 0;
		for (size_t i = 0; !fresh && i < seen->n_addr && len < sizeof(o); i++) {
			char one[TS_PREFIX_STRLEN];

			len += (size_t)snprintf(o + len, sizeof(o) - len, "%s%s", i ? ", " : "",
						ts_prefix_format(&seen->addr[i], one, sizeof(one)));
		}
		tl_change(tl, act, "address", o, ts_prefix_format(&sp->address, n, sizeof(n)));
	}
	if (fresh || ch & TS_IFACE_MTU)
		tl_change(tl, act, "mtu", fresh ? "" : u32_text(seen->mtu, o, sizeof(o)),
			  u32_text(sp->mtu, n, sizeof(n)));
	if (fresh || ch & TS_IFACE_UP)
		tl_change(tl, act, "link", fresh ? "" : "down", "up");
	if ((fresh && !sp->if_id) || ch & TS_IFACE_POLICY)
		tl_change(tl, act, "disable_policy",
			  fresh			 ? ""
			  : seen->policy_off < 0 ? NULL
						 : "0",
			  "1");
}

/* Tunnel t's interface: created, replaced, put back, or reported.
 * *ret_new: (re)created, so that the routes through it are added again. */
static void plan_iface(struct tlist *tl, const struct ts_planes_ops *ops, void *ctx,
		       const struct ts_tunnel *t, bool *ret_new)
{
	struct ts_iface_spec sp = iface_spec(t);
	struct ts_iface_seen seen;
	struct ts_action *act;
	unsigned ch = 0;
	int r;

	*ret_new = false;
	r = ops->iface_read(ctx, sp.ifname, &seen);
	if (r == 0)
		r = ts_iface_decide(&seen, &sp, &ch);
	if (r == -EEXIST) {
		tl_add(tl, TS_ACTION_REPORT, TS_CAUSE_IFACE_FOREIGN, t->name, sp.ifname, NULL, 0,
		       "interface %s exists and is not this tunnel's (no alias tunnelsync:%s): "
		       "left alone",
		       sp.ifname, t->name);
		return;
	}
	if (r < 0) {
		tl_add(tl, TS_ACTION_REPORT, TS_CAUSE_INCOMPLETE, t->name, sp.ifname, NULL, 0,
		       "interface %s not read: %s", sp.ifname, strerror(-r));
		return;
	}
	if (ch & (TS_IFACE_CREATED | TS_IFACE_RECREATED)) {
		bool create = ch & TS_IFACE_CREATED;

		act = tl_add(tl, create ? TS_ACTION_CREATE_IFACE : TS_ACTION_REPLACE_IFACE,
			     create ? TS_CAUSE_IFACE_MISSING : TS_CAUSE_IFACE_DIFFERS, t->name,
			     sp.ifname, NULL, 0, "interface %s: %s (%s)", sp.ifname,
			     create ? "create" : "replace",
			     create	? (sp.if_id ? "XFRM interface" : "VTI")
			     : sp.if_id ? "not the declared XFRM interface; its routes put back"
					: "not the declared VTI; its routes put back");
		iface_link_changes(tl, act, &seen, &sp);
		iface_fix_changes(tl, act, &seen, &sp, 0, true);
		*ret_new = true;
	} else if (ch) {
		act = tl_add(tl, TS_ACTION_FIX_IFACE, TS_CAUSE_IFACE_DRIFT, t->name, sp.ifname,
			     NULL, 0, "interface %s: put back%s%s%s%s", sp.ifname,
			     ch & TS_IFACE_ADDRESS ? " address" : "",
			     ch & TS_IFACE_MTU ? " MTU" : "", ch & TS_IFACE_UP ? " link up" : "",
			     ch & TS_IFACE_POLICY ? " disable_policy" : "");
		iface_fix_changes(tl, act, &seen, &sp, ch, false);
	}
}

/* Tunnel t's routes at their metric (+ the drain offset). fresh: through
 * an interface this plan (re)creates, where none of them is left. */
static void plan_routes(struct tlist *tl, const struct ts_agent *a, const struct ts_observation *o,
			const struct ts_tunnel *t, const struct ts_route_seen *routes, size_t n,
			bool fresh)
{
	bool drained;
	uint32_t offset = route_offset(a, o, t, &drained);

	for (size_t j = 0; j < t->routes.n; j++) {
		const struct ts_prefix *dst = &t->routes.route[j].dst;
		uint32_t metric = t->routes.route[j].metric + offset;
		struct ts_route_move mv;
		char p[TS_PREFIX_STRLEN], old[16], new[16];
		struct ts_action *act;

		ts_route_decide_set(routes, fresh ? 0 : n, t->routes.ifname, dst, metric, &mv);
		ts_prefix_format(dst, p, sizeof(p));
		u32_text(metric, new, sizeof(new));
		if (mv.add && !mv.n_old) {
			act = tl_add(
				tl, TS_ACTION_ADD_ROUTE,
				drained ? TS_CAUSE_ROUTE_FAILOVER : TS_CAUSE_ROUTE_MISSING, t->name,
				t->routes.ifname, dst, metric,
				"route %s via %s: add at metric %s%s", p, t->routes.ifname, new,
				drained ? " (failover: tunnel not up, a group sibling is)" : "");
			tl_change(tl, act, "metric", "", new);
		} else if (mv.n_old) {
			u32_text(mv.old_metric, old, sizeof(old));
			act = tl_add(tl, TS_ACTION_SET_ROUTE_METRIC,
				     drained ? TS_CAUSE_ROUTE_FAILOVER : TS_CAUSE_ROUTE_METRIC,
				     t->name, t->routes.ifname, dst, metric,
				     "route %s via %s: metric %s -> %s (%s)", p, t->routes.ifname,
				     old, new,
				     drained ? "failover: tunnel not up, a group sibling is"
				     : mv.old_metric >= TS_ROUTE_DRAIN_OFFSET
					     ? "tunnel up: the declared metric back"
					     : "the declared metric");
			tl_change(tl, act, "metric", old, new);
		}
	}
}

/* Removals first, then the interfaces, then the routes through them. */
static int tl_rank(const struct ts_action *x)
{
	switch (x->kind) {
	case TS_ACTION_DELETE_IFACE:
		return 0;
	case TS_ACTION_DELETE_ROUTE:
		return 1;
	case TS_ACTION_ADD_ROUTE:
	case TS_ACTION_SET_ROUTE_METRIC:
		return 3;
	case TS_ACTION_REPORT:
		return 4; /* phase report: at the plan's end */
	default:
		return 2;
	}
}

static int cmp_traffic(const void *a, const void *b)
{
	const struct ts_action *x = a, *y = b;
	int c = tl_rank(x) - tl_rank(y);

	if (c)
		return c;
	if ((c = strcmp(x->tunnel, y->tunnel)))
		return c;
	if (!x->object || !y->object)
		return (int)(x->object != NULL) - (int)(y->object != NULL);
	if ((c = strcmp(x->object->ifname, y->object->ifname)))
		return c;
	if ((c = memcmp(x->object->dst.ip.bytes, y->object->dst.ip.bytes, 4)))
		return c;
	if (x->object->dst.len != y->object->dst.len)
		return (int)x->object->dst.len - (int)y->object->dst.len;
	if (x->object->metric != y->object->metric)
		return x->object->metric < y->object->metric ? -1 : 1;
	return (int)x->kind - (int)y->kind;
}

/* The traffic actions into the plan after its removals, their reports at
 * its end (phase order). */
static int tl_splice(struct tlist *tl, struct ts_plan *plan)
{
	struct ts_action *v;
	size_t at = 0, k = 0;

	if (!tl->n)
		return 0;
	qsort(tl->v, tl->n, sizeof(*tl->v), cmp_traffic);
	while (k < tl->n && ts_plan_action_phase(&tl->v[k]) == TS_PHASE_TRAFFIC)
		k++;
	v = realloc(plan->actions, (plan->n_actions + tl->n) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	plan->actions = v;
	while (at < plan->n_actions && ts_plan_action_phase(&v[at]) <= TS_PHASE_TRAFFIC)
		at++;
	memmove(&v[at + k], &v[at], (plan->n_actions - at) * sizeof(*v));
	memcpy(&v[at], tl->v, k * sizeof(*v));
	memcpy(&v[plan->n_actions + k], tl->v + k, (tl->n - k) * sizeof(*v));
	plan->n_actions += tl->n;
	free(tl->v); /* what the actions hold is the plan's now */
	memset(tl, 0, sizeof(*tl));
	return 0;
}

int ts_agent_plan_traffic(struct ts_agent *a, const struct ts_observation *o, struct ts_plan *plan)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_desired *d = a->desired;
	struct tlist tl = { .apply = !plan->suspended };
	struct ts_iface_owned *owned = NULL;
	struct ts_route_seen *routes = NULL;
	struct ts_route_key *rkeep = NULL;
	const char **ikeep = NULL;
	size_t n_owned = 0, n_routes = 0, n_ikeep = 0, n_rkeep = 0;
	bool *fresh = NULL, routes_read;
	int r;

	if (!ops->route_list || !ops->iface_read || !ops->iface_list_owned)
		return 0; /* no such plane */
	ikeep = iface_keep(d, &n_ikeep);
	rkeep = route_keep(d, &n_rkeep);
	fresh = calloc(d->n_tunnels + 1, sizeof(*fresh));
	if (!ikeep || !rkeep || !fresh) {
		r = -ENOMEM;
		goto out;
	}

	/* Owned interfaces, then owned routes, that nobody declares. */
	r = ops->iface_list_owned(ctx, &owned, &n_owned);
	if (r < 0)
		tl_add(&tl, TS_ACTION_REPORT, TS_CAUSE_INCOMPLETE, "", NULL, NULL, 0,
		       "owned interfaces not read: %s", strerror(-r));
	for (size_t i = 0; r == 0 && i < n_owned; i++) {
		struct ts_action *act;

		if (ts_iface_kept(owned[i].ifname, ikeep, n_ikeep))
			continue;
		act = tl_add(
			&tl, TS_ACTION_DELETE_IFACE, TS_CAUSE_STALE, owned[i].owner,
			owned[i].ifname, NULL, 0,
			"interface %s: delete (alias tunnelsync:%s; no local tunnel declares it)",
			owned[i].ifname, owned[i].owner);
		tl_change(&tl, act, "kind", owned[i].kind, "");
	}
	r = ops->route_list(ctx, &routes, &n_routes);
	routes_read = r == 0;
	if (r < 0)
		tl_add(&tl, TS_ACTION_REPORT, TS_CAUSE_INCOMPLETE, "", NULL, NULL, 0,
		       "owned routes not read: %s", strerror(-r));
	for (size_t i = 0; routes_read && i < n_routes; i++) {
		char p[TS_PREFIX_STRLEN], m[16];
		struct ts_action *act;

		if (ts_route_kept(&routes[i], rkeep, n_rkeep))
			continue;
		ts_prefix_format(&routes[i].dst, p, sizeof(p));
		u32_text(routes[i].metric, m, sizeof(m));
		act = tl_add(
			&tl, TS_ACTION_DELETE_ROUTE, TS_CAUSE_STALE, "", routes[i].ifname,
			&routes[i].dst, routes[i].metric,
			"route %s via %s: delete (metric %s; no enabled local tunnel declares it)",
			p, routes[i].ifname[0] ? routes[i].ifname : "several nexthops", m);
		tl_change(&tl, act, "metric", m, "");
	}

	/* Then every enabled local tunnel's interface, then its routes. */
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		if (iface_kept_for(d, t) && t->enabled)
			plan_iface(&tl, ops, ctx, t, &fresh[i]);
	}
	for (size_t i = 0; routes_read && i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		bool through_new = false;

		if (!routes_wanted(d, t))
			continue;
		for (size_t k = 0; k < d->n_tunnels; k++)
			through_new |=
				fresh[k] && ts_streq(d->tunnels[k].iface.ifname, t->routes.ifname);
		plan_routes(&tl, a, o, t, routes, n_routes, through_new);
	}
	r = tl.err ? tl.err : tl_splice(&tl, plan);
out:
	tl_free(&tl);
	free(owned);
	free(routes);
	free(rkeep);
	free(ikeep);
	free(fresh);
	return r;
}

void ts_agent_traffic_follow_up(struct ts_agent *a, const struct ts_observation *after)
{
	struct ts_plan *plan = calloc(1, sizeof(*plan));

	if (!plan)
		return;
	if (ts_agent_plan_traffic(a, after, plan) == 0)
		for (size_t i = 0; i < plan->n_actions; i++) {
			struct ts_action_outcome out = { 0 };

			if (plan->actions[i].kind == TS_ACTION_SET_ROUTE_METRIC)
				(void)ts_agent_apply_traffic(a, &plan->actions[i], &out);
		}
	ts_plan_free(plan);
}

bool ts_action_is_traffic(const struct ts_action *act)
{
	return ts_plan_action_phase(act) == TS_PHASE_TRAFFIC;
}

int ts_agent_apply_traffic(struct ts_agent *a, const struct ts_action *act,
			   struct ts_action_outcome *out)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_traffic_object *ob = act->object;
	const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
	const char *tunnel = act->tunnel[0] ? act->tunnel : NULL;
	int r = -EINVAL;

	switch (ob ? act->kind : _TS_ACTION_MAX) {
	case TS_ACTION_DELETE_IFACE:
		r = ops->iface_delete ? ops->iface_delete(ctx, ob->ifname) : -ENOTCONN;
		break;
	case TS_ACTION_DELETE_ROUTE: {
		struct ts_route_seen rt = { .dst = ob->dst, .metric = ob->metric };

		snprintf(rt.ifname, sizeof(rt.ifname), "%s", ob->ifname);
		r = ops->route_delete ? ops->route_delete(ctx, &rt) : -ENOTCONN;
		break;
	}
	case TS_ACTION_CREATE_IFACE:
	case TS_ACTION_REPLACE_IFACE:
	case TS_ACTION_FIX_IFACE: {
		struct ts_iface_spec sp;
		unsigned ch = 0;

		if (!t || !ops->iface_ensure)
			break;
		sp = iface_spec(t);
		r = ops->iface_ensure(ctx, &sp, &ch);
		iface_log(t, ch);
		break;
	}
	case TS_ACTION_ADD_ROUTE:
	case TS_ACTION_SET_ROUTE_METRIC:
		r = ops->route_set ? ops->route_set(ctx, ob->ifname, &ob->dst, ob->metric)
				   : -ENOTCONN;
		break;
	default:
		break;
	}
	if (r == -ENOENT &&
	    (act->kind == TS_ACTION_DELETE_IFACE || act->kind == TS_ACTION_DELETE_ROUTE))
		r = 0; /* gone already */
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "kernel", tunnel, "%s: %s", act->reason,
			r == -EEXIST ? "not this tunnel's, left alone" : strerror(-r));
		ts_outcome_set(out, TS_OUTCOME_FAILED, "%s", strerror(-r));
		out->error = r;
		return r;
	}
	if (act->kind != TS_ACTION_CREATE_IFACE && act->kind != TS_ACTION_REPLACE_IFACE &&
	    act->kind != TS_ACTION_FIX_IFACE)
		ts_logf(TS_LOG_INFO, "kernel", tunnel, "%s", act->reason);
	out->status = TS_OUTCOME_APPLIED;
	return 0;
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
