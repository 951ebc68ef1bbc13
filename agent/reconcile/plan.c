/* Owns the planner (see plan.h for its rules) and the plan's name tables
 * and text renderings. Pure: no I/O, no clock, no third-party header. */
#include "reconcile/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *const action_kind_names[_TS_ACTION_MAX] = {
	[TS_ACTION_UNLOAD_CONN] = "unload-conn",
	[TS_ACTION_UNLOAD_KEY] = "unload-key",
	[TS_ACTION_DELETE_SA] = "delete-sa",
	[TS_ACTION_DELETE_POLICY] = "delete-policy",
	[TS_ACTION_RESUME] = "resume",
	[TS_ACTION_LOAD_CONN] = "load-conn",
	[TS_ACTION_UPDATE_CONN] = "update-conn",
	[TS_ACTION_UPDATE_TUNNEL] = "update-tunnel",
	[TS_ACTION_LOAD_KEY] = "load-key",
	[TS_ACTION_ROTATE] = "rotate",
	[TS_ACTION_INITIATE] = "initiate",
	[TS_ACTION_REAUTH] = "reauth",
	[TS_ACTION_REPORT] = "report",
	[TS_ACTION_DEFER_ROTATION] = "defer-rotation",
	[TS_ACTION_DELETE_IFACE] = "delete-interface",
	[TS_ACTION_DELETE_ROUTE] = "delete-route",
	[TS_ACTION_CREATE_IFACE] = "create-interface",
	[TS_ACTION_REPLACE_IFACE] = "replace-interface",
	[TS_ACTION_FIX_IFACE] = "fix-interface",
	[TS_ACTION_ADD_ROUTE] = "add-route",
	[TS_ACTION_SET_ROUTE_METRIC] = "set-route-metric",
};

static const char *const cause_names[_TS_CAUSE_MAX] = {
	[TS_CAUSE_STALE] = "stale",
	[TS_CAUSE_JOURNAL] = "journal",
	[TS_CAUSE_CONN_MISSING] = "conn-missing",
	[TS_CAUSE_CONN_DIFFERS] = "conn-differs",
	[TS_CAUSE_KEY_MISSING] = "key-missing",
	[TS_CAUSE_KEY_DIFFERS] = "key-differs",
	[TS_CAUSE_FORCED] = "forced",
	[TS_CAUSE_BOOTSTRAP] = "bootstrap",
	[TS_CAUSE_RECORD_MISMATCH] = "record-mismatch",
	[TS_CAUSE_REGENERATED] = "regenerated",
	[TS_CAUSE_FILE_CHANGED] = "file-changed",
	[TS_CAUSE_AUTH_FAILURES] = "auth-failures",
	[TS_CAUSE_MAX_AGE] = "max-age",
	[TS_CAUSE_SA_DOWN] = "sa-down",
	[TS_CAUSE_CHILD_DOWN] = "child-down",
	[TS_CAUSE_KERNEL_SA_MISSING] = "kernel-sa-missing",
	[TS_CAUSE_KERNEL_POLICY_MISSING] = "kernel-policy-missing",
	[TS_CAUSE_HARD_EXPIRED] = "hard-expired",
	[TS_CAUSE_ENDPOINTS_DIFFER] = "endpoints-differ",
	[TS_CAUSE_CF_MISSING] = "cloudflare-missing",
	[TS_CAUSE_CF_DIFFERS] = "cloudflare-differs",
	[TS_CAUSE_INCOMPLETE] = "incomplete",
	[TS_CAUSE_STORE_CORRUPT] = "store-corrupt",
	[TS_CAUSE_FILE_UNREADABLE] = "file-unreadable",
	[TS_CAUSE_FILE_KEY_AGED] = "file-key-aged",
	[TS_CAUSE_GROUP_BUSY] = "group-busy",
	[TS_CAUSE_GROUP_PEER_DOWN] = "group-peer-down",
	[TS_CAUSE_GROUP_SETTLING] = "group-settling",
	[TS_CAUSE_ROTATION_CAP] = "rotation-cap",
	[TS_CAUSE_BUDGET] = "budget",
	[TS_CAUSE_IFACE_MISSING] = "interface-missing",
	[TS_CAUSE_IFACE_DIFFERS] = "interface-differs",
	[TS_CAUSE_IFACE_DRIFT] = "interface-drift",
	[TS_CAUSE_IFACE_FOREIGN] = "interface-foreign",
	[TS_CAUSE_ROUTE_MISSING] = "route-missing",
	[TS_CAUSE_ROUTE_METRIC] = "route-metric",
	[TS_CAUSE_ROUTE_FAILOVER] = "route-failover",
};

static const char *const phase_names[_TS_PHASE_MAX] = {
	[TS_PHASE_REMOVE] = "remove",		[TS_PHASE_TRAFFIC] = "traffic",
	[TS_PHASE_RESUME] = "resume",		[TS_PHASE_CONFIG] = "config",
	[TS_PHASE_ROTATE_BULK] = "rotate-bulk", [TS_PHASE_ROTATE_GENERATE] = "rotate-generate",
	[TS_PHASE_INITIATE] = "initiate",	[TS_PHASE_REPORT] = "report",
};

const char *ts_plan_action_kind_to_string(enum ts_action_kind k)
{
	return (unsigned)k < _TS_ACTION_MAX ? action_kind_names[k] : "unknown";
}

const char *ts_plan_cause_to_string(enum ts_plan_cause c)
{
	return (unsigned)c < _TS_CAUSE_MAX ? cause_names[c] : "unknown";
}

const char *ts_plan_phase_to_string(enum ts_plan_phase p)
{
	return (unsigned)p < _TS_PHASE_MAX ? phase_names[p] : "unknown";
}

enum ts_plan_phase ts_plan_action_phase(const struct ts_action *a)
{
	switch (a->kind) {
	case TS_ACTION_UNLOAD_CONN:
	case TS_ACTION_UNLOAD_KEY:
	case TS_ACTION_DELETE_SA:
	case TS_ACTION_DELETE_POLICY:
		return TS_PHASE_REMOVE;
	case TS_ACTION_DELETE_IFACE:
	case TS_ACTION_DELETE_ROUTE:
	case TS_ACTION_CREATE_IFACE:
	case TS_ACTION_REPLACE_IFACE:
	case TS_ACTION_FIX_IFACE:
	case TS_ACTION_ADD_ROUTE:
	case TS_ACTION_SET_ROUTE_METRIC:
		return TS_PHASE_TRAFFIC;
	case TS_ACTION_RESUME:
		return TS_PHASE_RESUME;
	case TS_ACTION_LOAD_CONN:
	case TS_ACTION_UPDATE_CONN:
	case TS_ACTION_UPDATE_TUNNEL:
	case TS_ACTION_LOAD_KEY:
		return TS_PHASE_CONFIG;
	case TS_ACTION_ROTATE:
		return a->source == TS_PSK_SOURCE_GENERATE ? TS_PHASE_ROTATE_GENERATE
							   : TS_PHASE_ROTATE_BULK;
	case TS_ACTION_INITIATE:
	case TS_ACTION_REAUTH:
		return TS_PHASE_INITIATE;
	case TS_ACTION_REPORT:
	case TS_ACTION_DEFER_ROTATION:
	default:
		return TS_PHASE_REPORT;
	}
}

/* ---- building the action list ---- */

struct planner {
	const struct ts_plan_input *in;
	const struct ts_observed *obs;
	struct ts_action *actions;
	size_t n, cap;
	uint32_t api_calls;
	uint32_t bulk_entries; /* keys in bulk PSK calls, counted by batch */
	uint32_t n_rotations;
	uint32_t n_capped;    /* rotations counted against the deprecated cap */
	uint32_t n_in_flight; /* journaled + started here (rotation/max-in-flight) */
};

/* The request a bulk-set key costs: the first of each batch opens a call. */
static uint32_t bulk_cost(const struct planner *p)
{
	uint32_t batch = p->in->desired->agent.rotation_bulk_batch_size;

	return p->bulk_entries % (batch ? batch : TS_ROTATION_BULK_BATCH_DEFAULT) == 0;
}

static int add_action(struct planner *p, enum ts_action_kind kind, enum ts_plane plane,
		      enum ts_plan_cause cause, const char *tunnel, enum ts_psk_source source,
		      size_t stale_index, const char *fmt, ...) TS_PRINTF(8, 9);

static int add_action(struct planner *p, enum ts_action_kind kind, enum ts_plane plane,
		      enum ts_plan_cause cause, const char *tunnel, enum ts_psk_source source,
		      size_t stale_index, const char *fmt, ...)
{
	struct ts_action *a;
	va_list ap;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct ts_action *grown = realloc(p->actions, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		p->actions = grown;
		p->cap = cap;
	}
	a = &p->actions[p->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->plane = plane;
	a->cause = cause;
	a->source = source;
	a->stale_index = stale_index;
	a->apply = kind != TS_ACTION_REPORT && kind != TS_ACTION_DEFER_ROTATION;
	/* Names were bounded by the config loader; a longer one is cut, which is
	 * harmless here because apply looks tunnels up by this exact field only
	 * after the loader guaranteed the bound. */
	snprintf(a->tunnel, sizeof(a->tunnel), "%s", tunnel ? tunnel : "");
	va_start(ap, fmt);
	vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
	va_end(ap);
	return 0;
}

#define REPORT(p, plane, cause, tunnel, ...) \
	add_action(p, TS_ACTION_REPORT, plane, cause, tunnel, 0, TS_PLAN_NO_OBJECT, __VA_ARGS__)

/* Gives the action just added its changes (copies). */
static int attach_changes(struct planner *p, const struct ts_changes *changes)
{
	return ts_changes_append(&p->actions[p->n - 1].changes, changes);
}

static int attach_change(struct planner *p, const char *field, const char *old_value,
			 const char *new_value)
{
	return ts_changes_add(&p->actions[p->n - 1].changes, field, old_value, new_value);
}

/* The field names of changes, ", " separated, for a reason line. */
static void change_names(const struct ts_changes *c, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < c->n && len < size; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", c->items[i].field);

		if (n < 0 || (size_t)n >= size - len) {
			/* Cut at a name boundary rather than mid-name. */
			snprintf(buf + len, size - len, "%s", i ? ", ..." : "...");
			return;
		}
		len += (size_t)n;
	}
}

/* What the planner knows about one managed tunnel while it decides. */
struct tstate {
	const struct ts_tunnel *t;
	const struct ts_observed_tunnel *o;
	bool cf_ok, ike_ok, kern_ok, store_ok;
	const struct ts_key_record *rec;    /* NULL unless store_ok */
	const struct ts_journal_entry *jnl; /* NULL unless store_ok */
	bool rec_usable;		    /* rec for this tunnel id */
	bool up;			    /* IKE + CHILD + kernel pair + policies, trusted */
	bool want_rotation;
	enum ts_plan_cause rotate_cause;
	char rotate_reason[128];
	int urgency;   /* 0 forced, 1 broken, 2 routine */
	bool rotating; /* ROTATE planned */
	/* The members of its redundancy group (itself included), in order. */
	struct tstate **group;
	size_t n_group;
};

static const struct ts_observed_tunnel unobserved; /* every plane "not read" */

static bool is_forced(const struct ts_plan_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_forced; i++)
		if (ts_streq(in->forced[i], name))
			return true;
	return false;
}

static int plan_stale(struct planner *p)
{
	const struct ts_desired *d = p->in->desired;
	int r;

	for (size_t i = 0; i < p->obs->n_stale; i++) {
		const struct ts_stale_object *s = &p->obs->stale[i];
		bool ike = s->kind == TS_STALE_IKE_CONN || s->kind == TS_STALE_IKE_KEY;
		enum ts_plane plane = ike ? TS_PLANE_IKE : TS_PLANE_KERNEL;
		static const enum ts_action_kind removal[_TS_STALE_MAX] = {
			[TS_STALE_IKE_CONN] = TS_ACTION_UNLOAD_CONN,
			[TS_STALE_IKE_KEY] = TS_ACTION_UNLOAD_KEY,
			[TS_STALE_KERNEL_SA] = TS_ACTION_DELETE_SA,
			[TS_STALE_KERNEL_POLICY] = TS_ACTION_DELETE_POLICY,
		};

		/* Never touch what the agent did not make. An object claiming a
		 * declared tunnel belongs to that tunnel even when it is disabled
		 * or assigned to another gateway (it may carry that gateway's
		 * traffic after a failover): not stale. */
		if (!s->owned || (unsigned)s->kind >= _TS_STALE_MAX)
			continue;
		if (s->tunnel[0] && ts_desired_find(d, s->tunnel))
			continue;
		if (d->agent.prune)
			r = add_action(p, removal[s->kind], plane, TS_CAUSE_STALE, s->tunnel, 0, i,
				       "%s %s of undeclared tunnel",
				       ts_stale_kind_to_string(s->kind), s->object);
		else
			r = add_action(p, TS_ACTION_REPORT, plane, TS_CAUSE_STALE, s->tunnel, 0, i,
				       "%s %s of undeclared tunnel (prune off: kept)",
				       ts_stale_kind_to_string(s->kind), s->object);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool ip_differs(const struct ts_ip *declared, const struct ts_ip *seen)
{
	/* Only a declared endpoint can differ; an undeclared one is whatever
	 * Cloudflare says. */
	return ts_ip_is_set(declared) && !ts_ip_equal(declared, seen);
}

static void want(struct tstate *ts, enum ts_plan_cause cause, int urgency, const char *fmt, ...)
	TS_PRINTF(4, 5);

static void want(struct tstate *ts, enum ts_plan_cause cause, int urgency, const char *fmt, ...)
{
	va_list ap;

	ts->want_rotation = true;
	ts->rotate_cause = cause;
	ts->urgency = urgency;
	va_start(ap, fmt);
	vsnprintf(ts->rotate_reason, sizeof(ts->rotate_reason), fmt, ap);
	va_end(ap);
}

/* Per-plane trust for one tunnel; reports per-tunnel read failures of
 * planes that were otherwise read completely (plane-wide ones are reported
 * once, by plan_compute). */
static int observe_trust(struct planner *p, struct tstate *ts)
{
	const struct ts_observed *obs = p->obs;
	const struct ts_observed_tunnel *o = ts->o;
	const char *name = ts->t->name;
	int r = 0;

	if (o == &unobserved)
		/* Glue gave nothing for this tunnel: every ok flag is false. */
		return REPORT(p, TS_PLANE_CONFIG, TS_CAUSE_INCOMPLETE, name,
			      "tunnel not observed on any plane");
	ts->cf_ok = obs->cf_complete && o->cf.ok;
	ts->ike_ok = obs->ike_complete && o->ike.ok;
	ts->kern_ok = obs->kernel_complete && o->kernel.ok;
	ts->store_ok = obs->store_complete && o->store.ok;
	if (obs->cf_complete && !o->cf.ok)
		r = REPORT(p, TS_PLANE_CLOUDFLARE, TS_CAUSE_INCOMPLETE, name,
			   "tunnel not read from Cloudflare");
	if (r >= 0 && obs->ike_complete && !o->ike.ok)
		r = REPORT(p, TS_PLANE_IKE, TS_CAUSE_INCOMPLETE, name,
			   "tunnel not read from the IKE daemon");
	if (r >= 0 && obs->kernel_complete && !o->kernel.ok)
		r = REPORT(p, TS_PLANE_KERNEL, TS_CAUSE_INCOMPLETE, name,
			   "tunnel not read from the kernel");
	if (r >= 0 && obs->store_complete && !o->store.ok)
		r = REPORT(p, TS_PLANE_STORE, TS_CAUSE_STORE_CORRUPT, name,
			   "key record or journal unreadable: no rotation until repaired");
	if (r < 0)
		return r;
	if (ts->store_ok) {
		ts->rec = o->store.record;
		ts->jnl = o->store.journal;
	}
	ts->rec_usable =
		ts->rec && (!ts->rec->tunnel_id[0] || ts_streq(ts->rec->tunnel_id, ts->t->id));
	ts->up = ts->ike_ok && ts->kern_ok && o->ike.sa_state == TS_OBS_SA_ESTABLISHED &&
		 o->ike.child_up && o->kernel.sa_pair_ok && o->kernel.policies_ok;
	return 0;
}

static const char *ip_text(const struct ts_ip *a, char *buf, size_t size)
{
	if (!ts_ip_is_set(a))
		return "";
	return ts_ip_format(a, buf, size);
}

static const char *prefix_text(const struct ts_prefix *p, char *buf, size_t size)
{
	if (!ts_ip_is_set(&p->ip))
		return "";
	return ts_prefix_format(p, buf, size);
}

static bool prefix_differs(const struct ts_prefix *declared, const struct ts_prefix *seen)
{
	return ts_ip_is_set(&declared->ip) &&
	       (!ts_ip_equal(&declared->ip, &seen->ip) || declared->len != seen->len);
}

/* Every declared Cloudflare-side property that differs, Cloudflare's value
 * -> the config's. Undeclared properties are Cloudflare's business. */
static int cloudflare_changes(const struct ts_tunnel *t, const struct ts_obs_cloudflare *cf,
			      struct ts_changes *c, bool *ret_endpoints)
{
	const struct ts_cf_tunnel *ct = cf->tunnel;
	const struct ts_cf_declared *d = &t->cf;
	char a[TS_PREFIX_STRLEN], b[TS_PREFIX_STRLEN];
	int r = 0;

	*ret_endpoints = false;
	if (ip_differs(&t->customer_endpoint, &cf->customer_endpoint)) {
		*ret_endpoints = true;
		r = ts_changes_add(c, "customer_endpoint",
				   ip_text(&cf->customer_endpoint, a, sizeof(a)),
				   ip_text(&t->customer_endpoint, b, sizeof(b)));
	}
	if (r >= 0 && ip_differs(&t->cloudflare_endpoint, &cf->cloudflare_endpoint)) {
		*ret_endpoints = true;
		r = ts_changes_add(c, "cloudflare_endpoint",
				   ip_text(&cf->cloudflare_endpoint, a, sizeof(a)),
				   ip_text(&t->cloudflare_endpoint, b, sizeof(b)));
	}
	if (r < 0 || !ct)
		return r;
	if (prefix_differs(&t->interface_address, &ct->interface_address))
		r = ts_changes_add(c, "interface_address",
				   prefix_text(&ct->interface_address, a, sizeof(a)),
				   prefix_text(&t->interface_address, b, sizeof(b)));
	if (r >= 0 && prefix_differs(&t->interface_address6, &ct->interface_address6))
		r = ts_changes_add(c, "interface_address6",
				   prefix_text(&ct->interface_address6, a, sizeof(a)),
				   prefix_text(&t->interface_address6, b, sizeof(b)));
	if (r >= 0 && d->description && !ts_streq(d->description, ct->description ?: ""))
		r = ts_changes_add(c, "description", ct->description ?: "", d->description);
	if (r >= 0 && d->has_replay_protection && d->replay_protection != ct->replay_protection)
		r = ts_changes_add(c, "replay_protection", ct->replay_protection ? "true" : "false",
				   d->replay_protection ? "true" : "false");
	if (r >= 0 && d->has_hc_enabled &&
	    (!ct->health_check.present || d->hc_enabled != ct->health_check.enabled))
		r = ts_changes_add(c, "health_check.enabled",
				   !ct->health_check.present  ? ""
				   : ct->health_check.enabled ? "true"
							      : "false",
				   d->hc_enabled ? "true" : "false");
	if (r >= 0 && d->hc_rate[0] && !ts_streq(d->hc_rate, ct->health_check.rate))
		r = ts_changes_add(c, "health_check.rate", ct->health_check.rate, d->hc_rate);
	if (r >= 0 && d->hc_type[0] && !ts_streq(d->hc_type, ct->health_check.type))
		r = ts_changes_add(c, "health_check.type", ct->health_check.type, d->hc_type);
	if (r >= 0 && d->hc_direction[0] && !ts_streq(d->hc_direction, ct->health_check.direction))
		r = ts_changes_add(c, "health_check.direction", ct->health_check.direction,
				   d->hc_direction);
	if (r >= 0 && ip_differs(&d->hc_target, &ct->health_check.target))
		r = ts_changes_add(c, "health_check.target",
				   ip_text(&ct->health_check.target, a, sizeof(a)),
				   ip_text(&d->hc_target, b, sizeof(b)));
	return r;
}

/* Cloudflare-side drift of declared properties: reported, or with
 * cloudflare/manage-tunnels corrected through the tunnel update call (the
 * config is the source of truth then). A missing tunnel is reported and
 * never created or deleted here. */
static int plan_cloudflare(struct planner *p, struct tstate *ts)
{
	const struct ts_obs_cloudflare *cf = &ts->o->cf;
	const struct ts_tunnel *t = ts->t;
	struct ts_changes c = { 0 };
	char names[160];
	bool endpoints;
	int r;

	if (!ts->cf_ok)
		return 0;
	if (!cf->present)
		return REPORT(p, TS_PLANE_CLOUDFLARE, TS_CAUSE_CF_MISSING, t->name,
			      "tunnel id %s not found on Cloudflare: no rotation possible", t->id);
	r = cloudflare_changes(t, cf, &c, &endpoints);
	if (r < 0 || c.n == 0)
		goto out;
	change_names(&c, names, sizeof(names));
	if (!p->in->desired->cloudflare.manage_tunnels)
		r = REPORT(p, TS_PLANE_CLOUDFLARE,
			   endpoints ? TS_CAUSE_ENDPOINTS_DIFFER : TS_CAUSE_CF_DIFFERS, t->name,
			   "Cloudflare differs from the config (manage-tunnels off): %s", names);
	else if (p->api_calls + 2 > p->in->api_budget)
		r = REPORT(p, TS_PLANE_CLOUDFLARE, TS_CAUSE_BUDGET, t->name,
			   "Cloudflare differs (%s): update deferred, request budget exhausted",
			   names);
	else {
		/* A read of the tunnel and the update itself. */
		p->api_calls += 2;
		r = add_action(p, TS_ACTION_UPDATE_TUNNEL, TS_PLANE_CLOUDFLARE,
			       endpoints ? TS_CAUSE_ENDPOINTS_DIFFER : TS_CAUSE_CF_DIFFERS, t->name,
			       0, TS_PLAN_NO_OBJECT, "set the declared %s on Cloudflare", names);
	}
	if (r >= 0)
		r = attach_changes(p, &c);
out:
	ts_changes_done(&c);
	return r;
}

static int plan_resume(struct planner *p, struct tstate *ts)
{
	const struct ts_journal_entry *j = ts->jnl;
	enum ts_plane plane = TS_PLANE_STORE;
	uint32_t cost = 0;
	int r;

	if (j->step == TS_JOURNAL_PREPARED) {
		/* The remote step is redone: the same key again through the bulk
		 * call (idempotent), or a new psk_generate. */
		plane = TS_PLANE_CLOUDFLARE;
		cost = j->source == TS_PSK_SOURCE_GENERATE ? 1 : bulk_cost(p);
	} else if (j->step == TS_JOURNAL_REMOTE) {
		plane = TS_PLANE_IKE;
	}
	if (p->api_calls + cost > p->in->api_budget)
		return add_action(p, TS_ACTION_DEFER_ROTATION, plane, TS_CAUSE_BUDGET, ts->t->name,
				  j->source, TS_PLAN_NO_OBJECT,
				  "resume from step %s needs a Cloudflare call: request budget "
				  "exhausted",
				  ts_journal_step_to_string(j->step));
	p->api_calls += cost;
	if (j->step == TS_JOURNAL_PREPARED && j->source != TS_PSK_SOURCE_GENERATE)
		p->bulk_entries++;
	r = add_action(p, TS_ACTION_RESUME, plane, TS_CAUSE_JOURNAL, ts->t->name, j->source,
		       TS_PLAN_NO_OBJECT, "rotation left at step %s (attempt %" PRIu32 ", %s)",
		       ts_journal_step_to_string(j->step), j->attempt,
		       ts_psk_source_to_string(j->source));
	if (r >= 0)
		r = attach_change(p, "key", j->old_fingerprint,
				  j->new_fingerprint[0] ? j->new_fingerprint : NULL);
	return r;
}

/* The IKE daemon lacks the record's key or holds another one: failures
 * are explained by that, and load-key (not a new key) is the remedy. */
static bool ike_key_wrong(const struct tstate *ts)
{
	const struct ts_obs_ike *ike = &ts->o->ike;

	return !ike->key_loaded ||
	       (ike->key_fingerprint[0] && !ts_streq(ike->key_fingerprint, ts->rec->fingerprint));
}

/* Decides whether the tunnel's key must change, and why. */
static int plan_rotation_cause(struct planner *p, struct tstate *ts)
{
	const struct ts_tunnel *t = ts->t;
	const struct ts_observed_tunnel *o = ts->o;
	const struct ts_key_record *rec = ts->rec;
	const struct ts_psk_policy *psk = &t->psk;
	bool file = psk->source == TS_PSK_SOURCE_FILE;
	/* max-age less this tunnel's share of the jitter window. */
	uint64_t due_age = ts_tunnel_key_due_age(t, p->in->desired->agent.rotation_max_age_jitter);

	/* A journaled rotation is resumed, not restarted; a key record that
	 * could not be read is never mistaken for "no key". */
	if (ts->jnl || !ts->store_ok)
		return 0;
	if (is_forced(p->in, t->name))
		want(ts, TS_CAUSE_FORCED, 0, "rotation requested");
	else if (!rec)
		want(ts, TS_CAUSE_BOOTSTRAP, 1, "no key record");
	else if (!ts->rec_usable)
		want(ts, TS_CAUSE_RECORD_MISMATCH, 1, "key record is for tunnel id %s",
		     rec->tunnel_id);
	else if (ts->cf_ok && o->cf.present && rec->last_generated_on &&
		 ts_time_later_beyond_precision(o->cf.last_generated_on, o->cf.last_generated_unit,
						rec->last_generated_on, rec->last_generated_unit))
		want(ts, TS_CAUSE_REGENERATED, 1, "key regenerated on Cloudflare (%s)",
		     "last_generated_on newer than the record");
	else if (file && o->keyfile.ok && !ts_streq(o->keyfile.fingerprint, rec->fingerprint))
		want(ts, TS_CAUSE_FILE_CHANGED, 1, "key file changed: %s, record %s",
		     o->keyfile.fingerprint, rec->fingerprint);
	else if (ts->ike_ok && psk->auth_failure_threshold > 0 &&
		 o->ike.auth_failures >= psk->auth_failure_threshold &&
		 o->ike.last_auth_failure >= rec->applied_at && !ike_key_wrong(ts)) {
		if (!psk->rotate_on_auth_failure)
			return REPORT(p, TS_PLANE_IKE, TS_CAUSE_AUTH_FAILURES, t->name,
				      "%" PRIu32 " authentication failures (rotate-on-auth-failure "
				      "off)",
				      o->ike.auth_failures);
		want(ts, TS_CAUSE_AUTH_FAILURES, 1, "%" PRIu32 " authentication failures",
		     o->ike.auth_failures);
	} else if (psk->max_age > 0 && p->in->now >= rec->applied_at &&
		   (uint64_t)(p->in->now - rec->applied_at) / TS_USEC_PER_SEC >= due_age) {
		if (file)
			return REPORT(p, TS_PLANE_STORE, TS_CAUSE_FILE_KEY_AGED, t->name,
				      "key older than %" PRIu64 " s; replace the key file",
				      due_age);
		want(ts, TS_CAUSE_MAX_AGE, 2, "key older than %" PRIu64 " s", due_age);
	}
	/* Source file: without a readable key file there is nothing to set,
	 * and the operator must hear of it whether or not a rotation is due. */
	if (file && !o->keyfile.ok) {
		bool wanted = ts->want_rotation;

		ts->want_rotation = false;
		return REPORT(p, TS_PLANE_CONFIG, TS_CAUSE_FILE_UNREADABLE, t->name,
			      "%s%skey file %s unreadable", wanted ? ts->rotate_reason : "",
			      wanted ? "; " : "", psk->file ? psk->file : "(none)");
	}
	if (!ts->want_rotation)
		return 0;

	/* Whatever the cause, a rotation needs Cloudflare to hold the tunnel
	 * (a missing one is already reported). */
	if (!ts->cf_ok) {
		ts->want_rotation = false;
		return add_action(p, TS_ACTION_DEFER_ROTATION, TS_PLANE_CLOUDFLARE,
				  TS_CAUSE_INCOMPLETE, t->name, psk->source, TS_PLAN_NO_OBJECT,
				  "%s; Cloudflare not read", ts->rotate_reason);
	}
	if (!o->cf.present)
		ts->want_rotation = false;
	return 0;
}

static int cmp_candidates(const void *a, const void *b)
{
	const struct tstate *x = *(const struct tstate *const *)a;
	const struct tstate *y = *(const struct tstate *const *)b;

	bool gx = x->t->psk.source == TS_PSK_SOURCE_GENERATE;
	bool gy = y->t->psk.source == TS_PSK_SOURCE_GENERATE;

	if (x->urgency != y->urgency)
		return x->urgency - y->urgency;
	/* Bulk ones first: they share one request, so a tight budget serves
	 * more tunnels. */
	if (gx != gy)
		return gx - gy;
	return strcmp(x->t->name, y->t->name);
}

/* Settle window: after a peer's rotation (a key of generation 2 or more
 * applied settle-time ago or less), its new SAs are still spreading over
 * Cloudflare's servers (90-150 s) and the edge may show it degraded: the
 * others wait that long, and then until the peer's new SA pair has
 * carried packets both ways (the kernel's counters), but no longer than
 * SETTLE_TRAFFIC_FACTOR settle times (an idle link never shows traffic).
 * Returns the seconds left, 0 when o does not hold c back. */
#define SETTLE_TRAFFIC_FACTOR 10

static uint64_t settle_left(const struct planner *p, const struct tstate *o, bool *ret_traffic)
{
	uint64_t settle = p->in->desired->agent.settle_time, age;

	*ret_traffic = false;
	if (!settle || !o->rec || o->rec->generation < 2 || p->in->now < o->rec->applied_at)
		return 0;
	age = (uint64_t)(p->in->now - o->rec->applied_at) / TS_USEC_PER_SEC;
	if (age < settle)
		return settle - age;
	if (age < settle * SETTLE_TRAFFIC_FACTOR && o->kern_ok && !o->o->kernel.traffic_both_ways) {
		*ret_traffic = true;
		return settle * SETTLE_TRAFFIC_FACTOR - age;
	}
	return 0;
}

/* Group rules for candidate c among its group's members. Returns the
 * deferral cause, or -1 when c may rotate; *ret_peer names the culprit,
 * *ret_left the seconds a settling peer still needs. */
static int group_blocks(const struct planner *p, const struct tstate *c, const char **ret_peer,
			uint64_t *ret_left, bool *ret_traffic)
{
	if (!c->t->redundancy_group[0])
		return -1;
	for (size_t i = 0; i < c->n_group; i++) {
		const struct tstate *o = c->group[i];

		/* A peer whose store could not be read might be mid-rotation. */
		if (o != c && (o->rotating || o->jnl || !o->store_ok)) {
			*ret_peer = o->t->name;
			return TS_CAUSE_GROUP_BUSY;
		}
	}
	/* A tunnel that is down carries no traffic: rotating it cannot take a
	 * path away, so only an up tunnel waits for its peers. */
	if (!c->up)
		return -1;
	for (size_t i = 0; i < c->n_group; i++) {
		const struct tstate *o = c->group[i];

		if (o != c && !o->up) {
			*ret_peer = o->t->name;
			return TS_CAUSE_GROUP_PEER_DOWN;
		}
	}
	for (size_t i = 0; i < c->n_group; i++) {
		const struct tstate *o = c->group[i];
		uint64_t left;

		if (o == c)
			continue;
		left = settle_left(p, o, ret_traffic);
		if (left) {
			*ret_peer = o->t->name;
			*ret_left = left;
			return TS_CAUSE_GROUP_SETTLING;
		}
	}
	return -1;
}

static int cmp_group_member(const void *a, const void *b)
{
	const struct tstate *x = *(const struct tstate *const *)a;
	const struct tstate *y = *(const struct tstate *const *)b;
	int c = strcmp(x->t->redundancy_group, y->t->redundancy_group);

	return c ? c : (x > y) - (x < y);
}

/* Points each tunnel at its group's members (sorted once: looking the
 * group up among all tunnels per candidate was O(tunnels²)). */
static int index_groups(struct tstate *all, size_t n, struct tstate ***ret_members)
{
	struct tstate **m = calloc(n ? n : 1, sizeof(*m));
	size_t k = 0;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (all[i].t->redundancy_group[0])
			m[k++] = &all[i];
	qsort(m, k, sizeof(*m), cmp_group_member);
	for (size_t g = 0; g < k;) {
		size_t e = g;

		while (e < k && strcmp(m[e]->t->redundancy_group, m[g]->t->redundancy_group) == 0)
			e++;
		for (size_t i = g; i < e; i++) {
			m[i]->group = &m[g];
			m[i]->n_group = e - g;
		}
		g = e;
	}
	*ret_members = m;
	return 0;
}

static int defer(struct planner *p, struct tstate *c, enum ts_plan_cause cause, const char *fmt,
		 ...) TS_PRINTF(4, 5);

static int defer(struct planner *p, struct tstate *c, enum ts_plan_cause cause, const char *fmt,
		 ...)
{
	char why[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return add_action(p, TS_ACTION_DEFER_ROTATION, TS_PLANE_CLOUDFLARE, cause, c->t->name,
			  c->t->psk.source, TS_PLAN_NO_OBJECT, "%s; %s", c->rotate_reason, why);
}

/* key: the record's fingerprint -> the new one when known now (source
 * file), else NULL (drawn or generated at apply); generation: N -> N+1. */
static int rotation_changes(struct planner *p, const struct tstate *c)
{
	const struct ts_observed_tunnel *o = c->o;
	const char *next = c->t->psk.source == TS_PSK_SOURCE_FILE && o->keyfile.ok
				   ? o->keyfile.fingerprint
				   : NULL;
	char from[24] = "", to[24];
	int r;

	if (c->rec_usable)
		snprintf(from, sizeof(from), "%" PRIu64, c->rec->generation);
	snprintf(to, sizeof(to), "%" PRIu64, c->rec_usable ? c->rec->generation + 1 : 1);
	r = attach_change(p, "key", c->rec_usable ? c->rec->fingerprint : "", next);
	if (r >= 0)
		r = attach_change(p, "generation", from, to);
	return r;
}

static int plan_rotations(struct planner *p, struct tstate *all, size_t n)
{
	_cleanup_free_ struct tstate **cand = NULL, **members = NULL;
	const struct ts_agent_config *agent = &p->in->desired->agent;
	uint32_t max_in_flight = agent->rotation_max_in_flight ? agent->rotation_max_in_flight
							       : TS_ROTATION_MAX_IN_FLIGHT_DEFAULT;
	size_t n_cand = 0;
	int r;

	/* Rotations under way (journaled) count against the blast radius. */
	for (size_t i = 0; i < n; i++)
		p->n_in_flight += all[i].jnl != NULL;
	cand = calloc(n ? n : 1, sizeof(*cand));
	if (!cand || index_groups(all, n, &members) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (all[i].want_rotation)
			cand[n_cand++] = &all[i];
	qsort(cand, n_cand, sizeof(*cand), cmp_candidates);

	for (size_t i = 0; i < n_cand; i++) {
		struct tstate *c = cand[i];
		bool generate = c->t->psk.source == TS_PSK_SOURCE_GENERATE;
		bool forced = c->rotate_cause == TS_CAUSE_FORCED;
		const char *peer = NULL;
		uint64_t left = 0;
		bool traffic = false;
		uint32_t cost;
		int cause;

		cause = group_blocks(p, c, &peer, &left, &traffic);
		/* An operator's explicit rotate does not wait for a settle. */
		if (cause == TS_CAUSE_GROUP_SETTLING && forced)
			cause = -1;
		/* A key Cloudflare takes must be loadable here at once, or the
		 * rotation itself takes the tunnel down until the IKE daemon is
		 * back: no rotation while the IKE plane is unread. */
		if (!c->ike_ok)
			r = defer(p, c, TS_CAUSE_INCOMPLETE,
				  "the IKE daemon was not read: the new key could not be loaded");
		else if (cause == TS_CAUSE_GROUP_BUSY)
			r = defer(p, c, cause, "%s in group %s is rotating or unreadable", peer,
				  c->t->redundancy_group);
		else if (cause == TS_CAUSE_GROUP_PEER_DOWN)
			r = defer(p, c, cause, "%s in group %s is not up", peer,
				  c->t->redundancy_group);
		else if (cause == TS_CAUSE_GROUP_SETTLING)
			r = defer(p, c, cause, "%s's new SAs settle: %" PRIu64 " s left%s", peer,
				  left, traffic ? " (no traffic both ways yet)" : "");
		else if (!forced && p->n_in_flight >= max_in_flight)
			r = defer(p, c, TS_CAUSE_ROTATION_CAP,
				  "%" PRIu32 " rotations in flight (rotation/max-in-flight)",
				  p->n_in_flight);
		else if (!forced && agent->max_rotations_per_pass > 0 &&
			 p->n_capped >= agent->max_rotations_per_pass)
			r = defer(p, c, TS_CAUSE_ROTATION_CAP,
				  "max %" PRIu32 " rotations per pass reached",
				  agent->max_rotations_per_pass);
		else {
			cost = generate ? 1 : bulk_cost(p);
			if (p->api_calls + cost > p->in->api_budget) {
				r = defer(p, c, TS_CAUSE_BUDGET,
					  "Cloudflare request budget exhausted (%" PRIu32 " left)",
					  p->in->api_budget - p->api_calls);
			} else {
				p->api_calls += cost;
				if (!generate)
					p->bulk_entries++;
				c->rotating = true;
				p->n_rotations++;
				p->n_in_flight++;
				if (!forced)
					p->n_capped++;
				r = add_action(p, TS_ACTION_ROTATE, TS_PLANE_CLOUDFLARE,
					       c->rotate_cause, c->t->name, c->t->psk.source,
					       TS_PLAN_NO_OBJECT, "%s (%s)", c->rotate_reason,
					       ts_psk_source_to_string(c->t->psk.source));
				if (r >= 0)
					r = rotation_changes(p, c);
			}
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* IKE and kernel: what the local planes need once rotations are decided
 * (a rotating or resuming tunnel gets its key and SAs from that). */
static int plan_local(struct planner *p, struct tstate *ts)
{
	const struct ts_obs_ike *ike = &ts->o->ike;
	const struct ts_obs_kernel *k = &ts->o->kernel;
	const char *name = ts->t->name;
	bool busy = ts->jnl || ts->rotating;
	bool have_key;
	int r;

	if (!ts->ike_ok)
		return 0;
	if (!ike->conn_loaded)
		r = add_action(p, TS_ACTION_LOAD_CONN, TS_PLANE_IKE, TS_CAUSE_CONN_MISSING, name, 0,
			       TS_PLAN_NO_OBJECT, "connection not loaded");
	else if (!ike->conn_equal) {
		char names[160];

		change_names(&ike->conn_changes, names, sizeof(names));
		/* Reloading that one connection; charon re-establishes its SAs
		 * (apply, agent/ike/README.md). The key is not touched. */
		r = add_action(p, TS_ACTION_UPDATE_CONN, TS_PLANE_IKE, TS_CAUSE_CONN_DIFFERS, name,
			       0, TS_PLAN_NO_OBJECT,
			       "loaded connection differs from the config%s%s",
			       names[0] ? ": " : "", names);
		if (r >= 0)
			r = attach_changes(p, &ike->conn_changes);
	} else
		r = 0;
	if (r < 0)
		return r;
	if (busy)
		return 0;

	if (ts->rec_usable) {
		if (!ike->key_loaded) {
			r = add_action(p, TS_ACTION_LOAD_KEY, TS_PLANE_IKE, TS_CAUSE_KEY_MISSING,
				       name, ts->rec->source, TS_PLAN_NO_OBJECT,
				       "key %s not loaded", ts->rec->fingerprint);
			if (r >= 0)
				r = attach_change(p, "key", "", ts->rec->fingerprint);
		} else if (ike->key_fingerprint[0] &&
			   !ts_streq(ike->key_fingerprint, ts->rec->fingerprint)) {
			r = add_action(p, TS_ACTION_LOAD_KEY, TS_PLANE_IKE, TS_CAUSE_KEY_DIFFERS,
				       name, ts->rec->source, TS_PLAN_NO_OBJECT,
				       "loaded key %s, record %s", ike->key_fingerprint,
				       ts->rec->fingerprint);
			if (r >= 0)
				r = attach_change(p, "key", ike->key_fingerprint,
						  ts->rec->fingerprint);
		}
		if (r < 0)
			return r;
	}

	/* Without a key there is nothing to authenticate with, and a tunnel
	 * Cloudflare does not have cannot come up: initiating would only add
	 * failures. */
	have_key = ts->rec_usable || ike->key_loaded;
	if (!have_key || (ts->cf_ok && !ts->o->cf.present))
		return 0;
	if (ike->sa_state == TS_OBS_SA_NONE)
		return add_action(p, TS_ACTION_INITIATE, TS_PLANE_IKE, TS_CAUSE_SA_DOWN, name, 0,
				  TS_PLAN_NO_OBJECT, "no IKE SA");
	if (ike->sa_state != TS_OBS_SA_ESTABLISHED)
		return 0; /* connecting: let the daemon finish */
	if (!ike->child_up)
		return add_action(p, TS_ACTION_INITIATE, TS_PLANE_IKE, TS_CAUSE_CHILD_DOWN, name, 0,
				  TS_PLAN_NO_OBJECT, "IKE SA up, CHILD SA missing");
	if (!ts->kern_ok)
		return 0;
	if (!k->sa_pair_ok)
		return add_action(
			p, TS_ACTION_REAUTH, TS_PLANE_IKE,
			k->hard_expired ? TS_CAUSE_HARD_EXPIRED : TS_CAUSE_KERNEL_SA_MISSING, name,
			0, TS_PLAN_NO_OBJECT,
			k->hard_expired ? "IKE up but the kernel's ESP SAs hard-expired unreplaced"
					: "IKE up but no ESP SA pair in the kernel");
	if (!k->policies_ok)
		return add_action(p, TS_ACTION_REAUTH, TS_PLANE_IKE, TS_CAUSE_KERNEL_POLICY_MISSING,
				  name, 0, TS_PLAN_NO_OBJECT,
				  "IKE up but the kernel's policies are missing");
	return 0;
}

static int cmp_observed(const void *a, const void *b)
{
	const struct ts_observed_tunnel *x = *(const struct ts_observed_tunnel *const *)a;
	const struct ts_observed_tunnel *y = *(const struct ts_observed_tunnel *const *)b;

	return strcmp(x->name, y->name);
}

/* The observed list is sorted by name by contract, but a sorted index of
 * our own keeps lookups O(log n) whatever the glue did. */
static const struct ts_observed_tunnel *find_observed(const struct ts_observed_tunnel **index,
						      size_t n, const char *name)
{
	struct ts_observed_tunnel key;
	const struct ts_observed_tunnel *k = &key, *const * hit;

	if (ts_strlcpy(key.name, name, sizeof(key.name)) < 0)
		return NULL;
	hit = bsearch(&k, index, n, sizeof(*index), cmp_observed);
	return hit ? *hit : NULL;
}

static int cmp_actions(const void *a, const void *b)
{
	const struct ts_action *x = a, *y = b;
	enum ts_plan_phase px = ts_plan_action_phase(x), py = ts_plan_action_phase(y);
	int c;

	if (px != py)
		return (int)px - (int)py;
	c = strcmp(x->tunnel, y->tunnel);
	if (c)
		return c;
	if (x->kind != y->kind)
		return (int)x->kind - (int)y->kind;
	if (x->stale_index != y->stale_index)
		return x->stale_index < y->stale_index ? -1 : 1;
	return (int)x->cause - (int)y->cause;
}

int ts_plan_compute(const struct ts_plan_input *in, struct ts_plan **ret_plan)
{
	static const struct ts_observed nothing;
	struct planner p = { .in = in };
	_cleanup_free_ struct tstate *ts = NULL;
	_cleanup_free_ const struct ts_observed_tunnel **index = NULL;
	const struct ts_desired *d;
	struct ts_plan *plan;
	size_t n = 0;
	int r;

	if (!in || !in->desired || !ret_plan)
		return -EINVAL;
	d = in->desired;
	p.obs = in->observed ? in->observed : &nothing;

	static const struct {
		enum ts_plane plane;
		size_t offset;
	} planes[] = {
		{ TS_PLANE_CLOUDFLARE, offsetof(struct ts_observed, cf_complete) },
		{ TS_PLANE_IKE, offsetof(struct ts_observed, ike_complete) },
		{ TS_PLANE_KERNEL, offsetof(struct ts_observed, kernel_complete) },
		{ TS_PLANE_STORE, offsetof(struct ts_observed, store_complete) },
	};
	for (size_t i = 0; i < TS_ARRAY_SIZE(planes); i++) {
		if (*(const bool *)((const char *)p.obs + planes[i].offset))
			continue;
		r = REPORT(&p, planes[i].plane, TS_CAUSE_INCOMPLETE, "",
			   "%s not read completely: nothing decided from absence there",
			   ts_plane_to_string(planes[i].plane));
		if (r < 0)
			goto fail;
	}

	r = plan_stale(&p);
	if (r < 0)
		goto fail;

	ts = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*ts));
	index = calloc(p.obs->n_tunnels ? p.obs->n_tunnels : 1, sizeof(*index));
	if (!ts || !index) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < p.obs->n_tunnels; i++)
		index[i] = &p.obs->tunnels[i];
	if (p.obs->n_tunnels > 1)
		qsort(index, p.obs->n_tunnels, sizeof(*index), cmp_observed);
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		const struct ts_observed_tunnel *o;

		if (!t->enabled || !ts_tunnel_is_local(t, d->agent.node_name))
			continue;
		o = find_observed(index, p.obs->n_tunnels, t->name);
		ts[n].t = t;
		ts[n].o = o ? o : &unobserved;
		r = observe_trust(&p, &ts[n]);
		if (r < 0)
			goto fail;
		n++;
	}
	/* Resumes first: they are rotations already under way, and they get
	 * the request budget before any new one. Names are sorted by the
	 * loader; the final sort makes the output order independent of it. */
	for (size_t i = 0; i < n; i++) {
		r = plan_cloudflare(&p, &ts[i]);
		if (r >= 0 && ts[i].jnl)
			r = plan_resume(&p, &ts[i]);
		if (r >= 0)
			r = plan_rotation_cause(&p, &ts[i]);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < in->n_forced; i++) {
		bool managed = false;

		for (size_t k = 0; k < n && !managed; k++)
			managed = ts_streq(ts[k].t->name, in->forced[i]);
		if (managed)
			continue;
		r = REPORT(&p, TS_PLANE_CONFIG, TS_CAUSE_FORCED, in->forced[i],
			   "rotation requested for a tunnel not managed here (undeclared, "
			   "disabled, or another gateway's)");
		if (r < 0)
			goto fail;
	}
	r = plan_rotations(&p, ts, n);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		r = plan_local(&p, &ts[i]);
		if (r < 0)
			goto fail;
	}

	if (p.n > 1)
		qsort(p.actions, p.n, sizeof(*p.actions), cmp_actions);
	if (d->agent.suspend)
		for (size_t i = 0; i < p.n; i++)
			p.actions[i].apply = false;

	plan = calloc(1, sizeof(*plan));
	if (!plan) {
		r = -ENOMEM;
		goto fail;
	}
	plan->actions = p.actions;
	plan->n_actions = p.n;
	plan->suspended = d->agent.suspend;
	plan->api_calls = p.api_calls;
	plan->n_rotations = p.n_rotations;
	*ret_plan = plan;
	return 0;
fail:
	for (size_t i = 0; i < p.n; i++)
		ts_changes_done(&p.actions[i].changes);
	free(p.actions);
	return r;
}

void ts_plan_free(struct ts_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_actions; i++) {
		ts_changes_done(&plan->actions[i].changes);
		free(plan->actions[i].object);
	}
	free(plan->actions);
	free(plan);
}

bool ts_plan_has_changes(const struct ts_plan *plan)
{
	for (size_t i = 0; plan && i < plan->n_actions; i++) {
		enum ts_action_kind k = plan->actions[i].kind;

		if (k != TS_ACTION_REPORT && k != TS_ACTION_DEFER_ROTATION)
			return true;
	}
	return false;
}

/* ---- text renderings ---- */

struct strbuf {
	char *s;
	size_t len, cap;
	int error;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) TS_PRINTF(2, 3);

static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->error)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->error = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap : 256);

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *grown = realloc(b->s, cap);

		if (!grown) {
			b->error = -ENOMEM;
			return;
		}
		b->s = grown;
		b->cap = cap;
	}
}

static void sb_json_string(struct strbuf *b, const char *s)
{
	sb_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20)
			sb_printf(b, "\\u%04x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_printf(b, "\"");
}

static int sb_finish(struct strbuf *b, char **ret_text)
{
	if (!b->error && !b->s) {
		b->s = strdup("");
		if (!b->s)
			b->error = -ENOMEM;
	}
	if (b->error) {
		free(b->s);
		return b->error;
	}
	*ret_text = b->s;
	return 0;
}

/* The summary's categories, in the order the line names them. */
enum summary_kind {
	SUM_REMOVE,
	SUM_RESUME,
	SUM_LOAD,
	SUM_UPDATE,
	SUM_ROTATE,
	SUM_RESTORE,
	SUM_TRAFFIC,
	SUM_DEFERRED,
	SUM_REPORTED,
	_SUM_MAX
};

static const struct {
	const char *json, *text;
} summary_names[_SUM_MAX] = {
	[SUM_REMOVE] = { "remove", "to remove" },
	[SUM_RESUME] = { "resume", "to resume" },
	[SUM_LOAD] = { "load", "to load" },
	[SUM_UPDATE] = { "update", "to update" },
	[SUM_ROTATE] = { "rotate", "to rotate" },
	[SUM_RESTORE] = { "restore", "to bring up" },
	[SUM_TRAFFIC] = { "traffic", "interface/route changes" },
	[SUM_DEFERRED] = { "deferred", "deferred" },
	[SUM_REPORTED] = { "reported", "reported" },
};

static enum summary_kind summary_kind(enum ts_action_kind k)
{
	const struct ts_action probe = { .kind = k };

	if (ts_plan_action_phase(&probe) == TS_PHASE_TRAFFIC)
		return SUM_TRAFFIC;
	switch (k) {
	case TS_ACTION_UNLOAD_CONN:
	case TS_ACTION_UNLOAD_KEY:
	case TS_ACTION_DELETE_SA:
	case TS_ACTION_DELETE_POLICY:
		return SUM_REMOVE;
	case TS_ACTION_RESUME:
		return SUM_RESUME;
	case TS_ACTION_LOAD_CONN:
	case TS_ACTION_LOAD_KEY:
		return SUM_LOAD;
	case TS_ACTION_UPDATE_CONN:
	case TS_ACTION_UPDATE_TUNNEL:
		return SUM_UPDATE;
	case TS_ACTION_ROTATE:
		return SUM_ROTATE;
	case TS_ACTION_INITIATE:
	case TS_ACTION_REAUTH:
		return SUM_RESTORE;
	case TS_ACTION_DEFER_ROTATION:
		return SUM_DEFERRED;
	case TS_ACTION_REPORT:
	default:
		return SUM_REPORTED;
	}
}

static void summary_count(const struct ts_plan *plan, unsigned counts[_SUM_MAX])
{
	memset(counts, 0, sizeof(unsigned) * _SUM_MAX);
	for (size_t i = 0; i < plan->n_actions; i++)
		counts[summary_kind(plan->actions[i].kind)]++;
}

int ts_plan_format_summary(const struct ts_plan *plan, char **ret_text)
{
	struct strbuf b = { 0 };
	unsigned counts[_SUM_MAX];
	bool any = false;

	if (!plan || !ret_text)
		return -EINVAL;
	summary_count(plan, counts);
	sb_printf(&b, "Plan: ");
	for (int k = 0; k < _SUM_MAX; k++) {
		if (!counts[k])
			continue;
		sb_printf(&b, "%s%u %s", any ? ", " : "", counts[k], summary_names[k].text);
		any = true;
	}
	if (!any)
		sb_printf(&b, "nothing to do");
	if (plan->suspended && any)
		sb_printf(&b, " (suspended: nothing applied)");
	sb_printf(&b, ".\n");
	return sb_finish(&b, ret_text);
}

/* A change's value for humans: unknown and none are said in words. */
static const char *shown(const char *v)
{
	return !v ? "(unknown)" : !v[0] ? "(none)" : v;
}

int ts_plan_format_table(const struct ts_plan *plan, char **ret_text)
{
	struct strbuf b = { 0 };

	if (!plan || !ret_text)
		return -EINVAL;
	if (plan->n_actions > 0) {
		sb_printf(&b, "%-15s %-17s %-20s %-10s %-21s %s\n", "PHASE", "ACTION", "TUNNEL",
			  "PLANE", "CAUSE", "REASON");
		for (size_t i = 0; i < plan->n_actions; i++) {
			const struct ts_action *a = &plan->actions[i];

			sb_printf(&b, "%-15s %-17s %-20s %-10s %-21s %s%s\n",
				  ts_plan_phase_to_string(ts_plan_action_phase(a)),
				  ts_plan_action_kind_to_string(a->kind),
				  a->tunnel[0] ? a->tunnel : "-", ts_plane_to_string(a->plane),
				  ts_plan_cause_to_string(a->cause), a->reason,
				  plan->suspended && a->kind != TS_ACTION_REPORT &&
						  a->kind != TS_ACTION_DEFER_ROTATION
					  ? " [suspended]"
					  : "");
			for (size_t k = 0; k < a->changes.n; k++) {
				const struct ts_change *c = &a->changes.items[k];

				sb_printf(&b, "    %s: %s -> %s\n", c->field, shown(c->old_value),
					  shown(c->new_value));
			}
		}
		{
			char *summary = NULL;
			int r = ts_plan_format_summary(plan, &summary);

			if (r < 0 && !b.error)
				b.error = r;
			else if (r >= 0)
				sb_printf(&b, "%s", summary);
			free(summary);
		}
	}
	return sb_finish(&b, ret_text);
}

static void sb_json_value(struct strbuf *b, const char *s)
{
	if (s)
		sb_json_string(b, s);
	else
		sb_printf(b, "null");
}

int ts_plan_format_json(const struct ts_plan *plan, char **ret_text)
{
	struct strbuf b = { 0 };
	unsigned counts[_SUM_MAX];

	if (!plan || !ret_text)
		return -EINVAL;
	summary_count(plan, counts);
	sb_printf(&b,
		  "{\"version\":%d,\"suspended\":%s,\"api_calls\":%" PRIu32
		  ",\"rotations\":%" PRIu32 ",\"summary\":{",
		  TS_PLAN_JSON_VERSION, plan->suspended ? "true" : "false", plan->api_calls,
		  plan->n_rotations);
	for (int k = 0; k < _SUM_MAX; k++)
		sb_printf(&b, "%s\"%s\":%u", k ? "," : "", summary_names[k].json, counts[k]);
	sb_printf(&b, "},\"actions\":[");
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *a = &plan->actions[i];
		bool keyed = a->kind == TS_ACTION_ROTATE || a->kind == TS_ACTION_RESUME ||
			     a->kind == TS_ACTION_DEFER_ROTATION || a->kind == TS_ACTION_LOAD_KEY;

		sb_printf(&b, "%s{\"phase\":\"%s\",\"kind\":\"%s\",\"tunnel\":", i ? "," : "",
			  ts_plan_phase_to_string(ts_plan_action_phase(a)),
			  ts_plan_action_kind_to_string(a->kind));
		sb_json_string(&b, a->tunnel);
		sb_printf(&b, ",\"plane\":\"%s\",\"cause\":\"%s\"", ts_plane_to_string(a->plane),
			  ts_plan_cause_to_string(a->cause));
		if (keyed)
			sb_printf(&b, ",\"source\":\"%s\"", ts_psk_source_to_string(a->source));
		if (a->object) {
			sb_printf(&b, ",\"interface\":");
			sb_json_string(&b, a->object->ifname);
		}
		if (a->object && a->object->dst.ip.family == AF_INET) {
			char dst[TS_PREFIX_STRLEN];

			sb_printf(&b, ",\"route\":");
			sb_json_string(&b, ts_prefix_format(&a->object->dst, dst, sizeof(dst)));
		}
		sb_printf(&b, ",\"apply\":%s,\"reason\":", a->apply ? "true" : "false");
		sb_json_string(&b, a->reason);
		sb_printf(&b, ",\"changes\":[");
		for (size_t k = 0; k < a->changes.n; k++) {
			const struct ts_change *c = &a->changes.items[k];

			sb_printf(&b, "%s{\"field\":", k ? "," : "");
			sb_json_string(&b, c->field);
			sb_printf(&b, ",\"old\":");
			sb_json_value(&b, c->old_value);
			sb_printf(&b, ",\"new\":");
			sb_json_value(&b, c->new_value);
			sb_printf(&b, "}");
		}
		sb_printf(&b, "]}");
	}
	sb_printf(&b, "]}");
	return sb_finish(&b, ret_text);
}
