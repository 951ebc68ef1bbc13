/* Owns the pure part of the kernel plane: ownership of kernel objects,
 * matching them to declared tunnels, per-tunnel status, stale objects, and
 * the name tables. No I/O. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "xfrm/xfrm-internal.h"

const char *const ts_xfrm_mode_names[_TS_XFRM_MODE_MAX] = {
	[TS_XFRM_MODE_TRANSPORT] = "transport",
	[TS_XFRM_MODE_TUNNEL] = "tunnel",
	[TS_XFRM_MODE_ROUTEOPTIMIZATION] = "ro",
	[TS_XFRM_MODE_IN_TRIGGER] = "in_trigger",
	[TS_XFRM_MODE_BEET] = "beet",
};

const char *const ts_xfrm_dir_names[_TS_XFRM_DIR_MAX] = {
	[TS_XFRM_DIR_IN] = "in",
	[TS_XFRM_DIR_OUT] = "out",
	[TS_XFRM_DIR_FWD] = "fwd",
};

const char *const ts_xfrm_event_type_names[_TS_XFRM_EVENT_MAX] = {
	[TS_XFRM_EVENT_SA_NEW] = "sa-new",
	[TS_XFRM_EVENT_SA_UPD] = "sa-update",
	[TS_XFRM_EVENT_SA_DEL] = "sa-delete",
	[TS_XFRM_EVENT_SA_EXPIRE_SOFT] = "sa-expire-soft",
	[TS_XFRM_EVENT_SA_EXPIRE_HARD] = "sa-expire-hard",
	[TS_XFRM_EVENT_POLICY_NEW] = "policy-new",
	[TS_XFRM_EVENT_POLICY_UPD] = "policy-update",
	[TS_XFRM_EVENT_POLICY_DEL] = "policy-delete",
	[TS_XFRM_EVENT_POLICY_EXPIRE_SOFT] = "policy-expire-soft",
	[TS_XFRM_EVENT_POLICY_EXPIRE_HARD] = "policy-expire-hard",
	[TS_XFRM_EVENT_ACQUIRE] = "acquire",
};

const char *const ts_xfrm_resync_names[_TS_XFRM_RESYNC_MAX] = {
	[TS_XFRM_RESYNC_NONE] = "none",
	[TS_XFRM_RESYNC_FLUSH_SA] = "sa-flush",
	[TS_XFRM_RESYNC_FLUSH_POLICY] = "policy-flush",
	[TS_XFRM_RESYNC_OVERFLOW] = "overflow",
	[TS_XFRM_RESYNC_UNKNOWN_MESSAGE] = "unknown-message",
	[TS_XFRM_RESYNC_BAD_MESSAGE] = "bad-message",
};

const char *const ts_xfrm_object_kind_names[_TS_XFRM_OBJECT_MAX] = {
	[TS_XFRM_OBJECT_SA] = "sa",
	[TS_XFRM_OBJECT_POLICY] = "policy",
};

#define NAME_OR_UNKNOWN(table, v) \
	((unsigned)(v) < TS_ARRAY_SIZE(table) && (table)[v] ? (table)[v] : "unknown")

const char *ts_xfrm_mode_to_string(enum ts_xfrm_mode m)
{
	return NAME_OR_UNKNOWN(ts_xfrm_mode_names, m);
}

const char *ts_xfrm_dir_to_string(enum ts_xfrm_dir d)
{
	return NAME_OR_UNKNOWN(ts_xfrm_dir_names, d);
}

const char *ts_xfrm_event_type_to_string(enum ts_xfrm_event_type t)
{
	return NAME_OR_UNKNOWN(ts_xfrm_event_type_names, t);
}

const char *ts_xfrm_resync_to_string(enum ts_xfrm_resync r)
{
	return NAME_OR_UNKNOWN(ts_xfrm_resync_names, r);
}

const char *ts_xfrm_object_kind_to_string(enum ts_xfrm_object_kind k)
{
	return NAME_OR_UNKNOWN(ts_xfrm_object_kind_names, k);
}

int ts_xfrm_owner_validate(const struct ts_xfrm_owner *owner)
{
	if (!owner)
		return -EINVAL;
	if ((owner->n_if_ids && !owner->if_ids) || (owner->n_marks && !owner->marks))
		return -EINVAL;
	for (size_t i = 0; i < owner->n_if_ids; i++)
		if (owner->if_ids[i] == 0)
			return -EINVAL; /* if_id 0 is "none": every plain SA has it */
	for (size_t i = 0; i < owner->n_marks; i++)
		if (owner->marks[i].mask == 0 ||
		    (owner->marks[i].value & ~owner->marks[i].mask) != 0)
			return -EINVAL;
	if (owner->reqid_min == 0 && owner->reqid_max != 0)
		return -EINVAL; /* reqid 0 is "any" in templates */
	if (owner->reqid_max < owner->reqid_min)
		return -EINVAL;
	return 0;
}

static bool if_id_owned(const struct ts_xfrm_owner *o, uint32_t if_id)
{
	if (if_id == 0)
		return false;
	for (size_t i = 0; i < o->n_if_ids; i++)
		if (o->if_ids[i] == if_id)
			return true;
	return false;
}

static bool mark_owned(const struct ts_xfrm_owner *o, const struct ts_xfrm_mark *m)
{
	if (m->mask == 0)
		return false;
	for (size_t i = 0; i < o->n_marks; i++)
		if (o->marks[i].value == m->value && o->marks[i].mask == m->mask)
			return true;
	return false;
}

static bool reqid_owned(const struct ts_xfrm_owner *o, uint32_t reqid)
{
	return o->reqid_min != 0 && reqid >= o->reqid_min && reqid <= o->reqid_max;
}

bool ts_xfrm_sa_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_sa *sa)
{
	if (!owner || !sa || ts_xfrm_owner_validate(owner) < 0)
		return false;
	return if_id_owned(owner, sa->if_id) || mark_owned(owner, &sa->mark) ||
	       reqid_owned(owner, sa->reqid);
}

bool ts_xfrm_policy_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_policy *pol)
{
	if (!owner || !pol || ts_xfrm_owner_validate(owner) < 0)
		return false;
	if (if_id_owned(owner, pol->if_id) || mark_owned(owner, &pol->mark))
		return true;
	for (size_t i = 0; i < pol->n_tmpl && i < TS_XFRM_MAX_TMPL; i++)
		if (reqid_owned(owner, pol->tmpl[i].reqid))
			return true;
	return false;
}

/* The identifiers a tunnel declares must all agree with the object's. */
static bool ids_agree(const struct ts_xfrm_expect *e, uint32_t if_id,
		      const struct ts_xfrm_mark *mark)
{
	if (e->has_if_id && if_id != e->if_id)
		return false;
	if (e->has_mark && (mark->value != e->mark.value || mark->mask != e->mark.mask))
		return false;
	return true;
}

static bool reqid_listed(const struct ts_xfrm_expect *e, uint32_t reqid)
{
	for (size_t i = 0; i < e->n_reqids; i++)
		if (e->reqids[i] == reqid)
			return true;
	return false;
}

static bool endpoints_match(const struct ts_xfrm_expect *e, const struct ts_ip *src,
			    const struct ts_ip *dst)
{
	return (ts_ip_equal(src, &e->local) && ts_ip_equal(dst, &e->remote)) ||
	       (ts_ip_equal(src, &e->remote) && ts_ip_equal(dst, &e->local));
}

bool ts_xfrm_expect_claims_sa(const struct ts_xfrm_expect *e, const struct ts_xfrm_sa *sa)
{
	if (!ids_agree(e, sa->if_id, &sa->mark))
		return false;
	if (e->n_reqids && !reqid_listed(e, sa->reqid))
		return false;
	return endpoints_match(e, &sa->src, &sa->dst);
}

static bool expected_policy_present(const struct ts_xfrm_expect_policy *ep,
				    const struct ts_xfrm_policy *pol)
{
	return pol->dir == ep->dir && ts_prefix_equal(&pol->sel.src, &ep->src) &&
	       ts_prefix_equal(&pol->sel.dst, &ep->dst);
}

bool ts_xfrm_expect_claims_policy(const struct ts_xfrm_expect *e, const struct ts_xfrm_policy *pol)
{
	if (!ids_agree(e, pol->if_id, &pol->mark))
		return false;
	if (e->n_reqids && pol->n_tmpl) {
		bool any = false;

		for (size_t i = 0; i < pol->n_tmpl; i++)
			any = any || reqid_listed(e, pol->tmpl[i].reqid);
		if (!any)
			return false;
	}
	for (size_t i = 0; i < pol->n_tmpl; i++)
		if (pol->tmpl[i].mode == TS_XFRM_MODE_TUNNEL &&
		    endpoints_match(e, &pol->tmpl[i].src, &pol->tmpl[i].dst))
			return true;
	for (size_t i = 0; i < e->n_policies; i++)
		if (expected_policy_present(&e->policies[i], pol))
			return true;
	return false;
}

static bool same_sa(const struct ts_xfrm_sa *a, const struct ts_xfrm_sa *b)
{
	return a->spi == b->spi && a->proto == b->proto && ts_ip_equal(&a->dst, &b->dst) &&
	       a->mark.value == b->mark.value && a->mark.mask == b->mark.mask;
}

/* Whether events since the snapshot leave this SA gone (deleted or hard
 * expired, and not added again afterwards). */
static bool sa_gone(const struct ts_xfrm_sa *sa, const struct ts_xfrm_event *events,
		    size_t n_events)
{
	bool gone = false;

	for (size_t i = 0; i < n_events; i++) {
		const struct ts_xfrm_event *ev = &events[i];

		if (ev->type > TS_XFRM_EVENT_SA_EXPIRE_HARD || !same_sa(&ev->sa, sa))
			continue;
		if (ev->type == TS_XFRM_EVENT_SA_DEL || ev->type == TS_XFRM_EVENT_SA_EXPIRE_HARD)
			gone = true;
		else if (ev->type == TS_XFRM_EVENT_SA_NEW || ev->type == TS_XFRM_EVENT_SA_UPD)
			gone = false;
	}
	return gone;
}

static void tunnel_status(const struct ts_xfrm_snapshot *snap, const struct ts_xfrm_expect *e,
			  const struct ts_xfrm_event *events, size_t n_events,
			  struct ts_xfrm_tunnel_status *st)
{
	const struct ts_xfrm_sa *best_in = NULL, *best_out = NULL;

	memset(st, 0, sizeof(*st));
	memcpy(st->name, e->name, sizeof(st->name));
	st->name[TS_NAME_MAX] = '\0';

	for (size_t i = 0; i < snap->n_sas; i++) {
		const struct ts_xfrm_sa *sa = &snap->sas[i];
		bool out, in;

		if (sa->proto != TS_XFRM_PROTO_ESP || !ts_xfrm_expect_claims_sa(e, sa) ||
		    sa_gone(sa, events, n_events))
			continue;
		out = ts_ip_equal(&sa->src, &e->local) && ts_ip_equal(&sa->dst, &e->remote);
		in = ts_ip_equal(&sa->src, &e->remote) && ts_ip_equal(&sa->dst, &e->local);
		if (out && (!e->spi_out || sa->spi == e->spi_out)) {
			st->n_sa_out++;
			if (!best_out || sa->cur.add_time > best_out->cur.add_time)
				best_out = sa;
		} else if (in && (!e->spi_in || sa->spi == e->spi_in)) {
			st->n_sa_in++;
			if (!best_in || sa->cur.add_time > best_in->cur.add_time)
				best_in = sa;
		}
	}
	if (best_in) {
		st->sa_in = true;
		st->spi_in = best_in->spi;
		st->sa_in_alive = best_in->cur.add_time != 0;
	}
	if (best_out) {
		st->sa_out = true;
		st->spi_out = best_out->spi;
		st->sa_out_alive = best_out->cur.add_time != 0;
	}

	st->n_policies_expected = e->n_policies;
	for (size_t i = 0; i < snap->n_policies; i++) {
		const struct ts_xfrm_policy *pol = &snap->policies[i];

		if (!ts_xfrm_expect_claims_policy(e, pol))
			continue;
		st->policy_in |= pol->dir == TS_XFRM_DIR_IN;
		st->policy_out |= pol->dir == TS_XFRM_DIR_OUT;
		st->policy_fwd |= pol->dir == TS_XFRM_DIR_FWD;
	}
	for (size_t j = 0; j < e->n_policies; j++)
		for (size_t i = 0; i < snap->n_policies; i++)
			if (ids_agree(e, snap->policies[i].if_id, &snap->policies[i].mark) &&
			    expected_policy_present(&e->policies[j], &snap->policies[i])) {
				st->n_policies_found++;
				break;
			}

	for (size_t i = 0; i < n_events; i++) {
		const struct ts_xfrm_event *ev = &events[i];
		bool soft = ev->type == TS_XFRM_EVENT_SA_EXPIRE_SOFT ||
			    ev->type == TS_XFRM_EVENT_POLICY_EXPIRE_SOFT;
		bool hard = ev->type == TS_XFRM_EVENT_SA_EXPIRE_HARD ||
			    ev->type == TS_XFRM_EVENT_POLICY_EXPIRE_HARD;
		bool mine;

		if (!soft && !hard)
			continue;
		mine = ev->type <= TS_XFRM_EVENT_SA_EXPIRE_HARD
			       ? ts_xfrm_expect_claims_sa(e, &ev->sa)
			       : ts_xfrm_expect_claims_policy(e, &ev->policy);
		if (mine) {
			st->soft_expire_seen |= soft;
			st->hard_expire_seen |= hard;
		}
	}

	st->up = st->sa_in_alive && st->sa_out_alive &&
		 (e->n_policies ? st->n_policies_found == e->n_policies
				: st->policy_in && st->policy_out);
}

static int add_stale(struct ts_xfrm_match_result *res, size_t *cap,
		     const struct ts_xfrm_stale *item)
{
	int r = ts_xfrm_grow((void **)&res->stale, cap, res->n_stale, sizeof(*res->stale));

	if (r < 0)
		return r;
	res->stale[res->n_stale++] = *item;
	return 0;
}

int ts_xfrm_match(const struct ts_xfrm_snapshot *snapshot, const struct ts_xfrm_expect *expect,
		  size_t n_expect, const struct ts_xfrm_owner *owner,
		  const struct ts_xfrm_event *events, size_t n_events,
		  struct ts_xfrm_match_result *ret_result)
{
	struct ts_xfrm_match_result res = { 0 };
	size_t cap = 0;
	int r;

	if (!snapshot || (n_expect && !expect) || !owner || (n_events && !events) || !ret_result)
		return -EINVAL;
	r = ts_xfrm_owner_validate(owner);
	if (r < 0)
		return r;
	if (n_expect) {
		res.tunnels = calloc(n_expect, sizeof(*res.tunnels));
		if (!res.tunnels)
			return -ENOMEM;
	}
	res.n_tunnels = n_expect;
	for (size_t i = 0; i < n_expect; i++)
		tunnel_status(snapshot, &expect[i], events, n_events, &res.tunnels[i]);

	res.stale_valid = snapshot->complete;
	if (!res.stale_valid)
		goto done;
	for (size_t i = 0; i < snapshot->n_sas; i++) {
		const struct ts_xfrm_sa *sa = &snapshot->sas[i];
		struct ts_xfrm_stale item = { .kind = TS_XFRM_OBJECT_SA };
		bool claimed = false;

		if (!ts_xfrm_sa_owned(owner, sa))
			continue;
		for (size_t j = 0; j < n_expect && !claimed; j++)
			claimed = ts_xfrm_expect_claims_sa(&expect[j], sa);
		if (claimed)
			continue;
		item.sa = *sa;
		r = add_stale(&res, &cap, &item);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < snapshot->n_policies; i++) {
		const struct ts_xfrm_policy *pol = &snapshot->policies[i];
		struct ts_xfrm_stale item = { .kind = TS_XFRM_OBJECT_POLICY };
		bool claimed = false;

		if (!ts_xfrm_policy_owned(owner, pol))
			continue;
		for (size_t j = 0; j < n_expect && !claimed; j++)
			claimed = ts_xfrm_expect_claims_policy(&expect[j], pol);
		if (claimed)
			continue;
		item.policy = *pol;
		r = add_stale(&res, &cap, &item);
		if (r < 0)
			goto fail;
	}
done:
	*ret_result = res;
	return 0;
fail:
	ts_xfrm_match_result_done(&res);
	return r;
}

void ts_xfrm_match_result_done(struct ts_xfrm_match_result *result)
{
	if (!result)
		return;
	free(result->tunnels);
	free(result->stale);
	memset(result, 0, sizeof(*result));
}
