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

/* Matching is driven by the objects, not by the tunnels: each
 * expectation is filed under one key — its if_id, else its mark, else its
 * endpoint pair and expected selectors — and each SA, policy or event
 * looks up only the expectations under its own keys, then applies the
 * claims rules above to them. Every expectation that could claim an
 * object is filed under one of that object's keys (claims require equal
 * if_id / mark when declared, else equal endpoints or selector), so the
 * result is what comparing every tunnel with every object gives, in
 * O((objects + tunnels) log tunnels) instead of tunnels × objects: at
 * 10,000 tunnels and 30,000 policies that is the difference between
 * milliseconds and minutes. */
enum key_kind {
	KEY_IF_ID = 1,
	KEY_MARK,
	KEY_ENDS, /* unordered endpoint pair */
	KEY_SEL,  /* expected policy: selector and direction */
};

struct exp_key {
	uint64_t hash;
	size_t idx; /* into expect[] */
};

struct matcher {
	const struct ts_xfrm_expect *expect;
	size_t n_expect;
	struct exp_key *keys;
	size_t n_keys;
	size_t *stamp; /* per expectation: the last object it was offered for */
	size_t serial;
};

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static uint64_t key_start(enum key_kind kind)
{
	uint8_t k = (uint8_t)kind;

	return mix(14695981039346656037ull, &k, 1);
}

static uint64_t mix_ip(uint64_t h, const struct ts_ip *ip)
{
	uint8_t fam = (uint8_t)ip->family;

	return mix(mix(h, &fam, 1), ip->bytes, ts_ip_len(ip));
}

static uint64_t mix_prefix(uint64_t h, const struct ts_prefix *p)
{
	return mix(mix_ip(h, &p->ip), &p->len, 1);
}

static int cmp_ip(const struct ts_ip *a, const struct ts_ip *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, ts_ip_len(a));
}

static uint64_t key_if_id(uint32_t if_id)
{
	return mix(key_start(KEY_IF_ID), &if_id, sizeof(if_id));
}

static uint64_t key_mark(const struct ts_xfrm_mark *m)
{
	return mix(mix(key_start(KEY_MARK), &m->value, sizeof(m->value)), &m->mask,
		   sizeof(m->mask));
}

static uint64_t key_ends(const struct ts_ip *a, const struct ts_ip *b)
{
	if (cmp_ip(a, b) > 0) {
		const struct ts_ip *t = a;

		a = b;
		b = t;
	}
	return mix_ip(mix_ip(key_start(KEY_ENDS), a), b);
}

static uint64_t key_sel(const struct ts_prefix *src, const struct ts_prefix *dst,
			enum ts_xfrm_dir dir)
{
	uint8_t d = (uint8_t)dir;

	return mix(mix_prefix(mix_prefix(key_start(KEY_SEL), src), dst), &d, 1);
}

static int cmp_exp_key(const void *a, const void *b)
{
	const struct exp_key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

static int matcher_init(struct matcher *m, const struct ts_xfrm_expect *expect, size_t n_expect)
{
	size_t n = 0;

	memset(m, 0, sizeof(*m));
	m->expect = expect;
	m->n_expect = n_expect;
	for (size_t i = 0; i < n_expect; i++)
		n += 1 + (!expect[i].has_if_id && !expect[i].has_mark ? expect[i].n_policies : 0);
	m->keys = calloc(n ? n : 1, sizeof(*m->keys));
	m->stamp = calloc(n_expect ? n_expect : 1, sizeof(*m->stamp));
	if (!m->keys || !m->stamp)
		return -ENOMEM;
	for (size_t i = 0; i < n_expect; i++) {
		const struct ts_xfrm_expect *e = &expect[i];

		if (e->has_if_id) {
			m->keys[m->n_keys++] = (struct exp_key){ key_if_id(e->if_id), i };
		} else if (e->has_mark) {
			m->keys[m->n_keys++] = (struct exp_key){ key_mark(&e->mark), i };
		} else {
			m->keys[m->n_keys++] =
				(struct exp_key){ key_ends(&e->local, &e->remote), i };
			for (size_t j = 0; j < e->n_policies; j++)
				m->keys[m->n_keys++] =
					(struct exp_key){ key_sel(&e->policies[j].src,
								  &e->policies[j].dst,
								  e->policies[j].dir),
							  i };
		}
	}
	qsort(m->keys, m->n_keys, sizeof(*m->keys), cmp_exp_key);
	return 0;
}

static void matcher_done(struct matcher *m)
{
	free(m->keys);
	free(m->stamp);
}

/* Starts the look-ups for one object: each expectation is offered once. */
static void matcher_next_object(struct matcher *m)
{
	m->serial++;
}

/* Calls fn for each expectation filed under hash not yet offered for the
 * current object, in expectation order within the key. */
static void matcher_each(struct matcher *m, uint64_t hash, void (*fn)(size_t idx, void *data),
			 void *data)
{
	size_t lo = 0, hi = m->n_keys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->keys[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < m->n_keys && m->keys[lo].hash == hash; lo++) {
		size_t idx = m->keys[lo].idx;

		if (m->stamp[idx] == m->serial)
			continue;
		m->stamp[idx] = m->serial;
		fn(idx, data);
	}
}

/* Offers an SA to every expectation filed under one of its keys. */
static void matcher_sa(struct matcher *m, const struct ts_xfrm_sa *sa,
		       void (*fn)(size_t idx, void *data), void *data)
{
	matcher_next_object(m);
	matcher_each(m, key_if_id(sa->if_id), fn, data);
	matcher_each(m, key_mark(&sa->mark), fn, data);
	matcher_each(m, key_ends(&sa->src, &sa->dst), fn, data);
}

static void matcher_policy(struct matcher *m, const struct ts_xfrm_policy *pol,
			   void (*fn)(size_t idx, void *data), void *data)
{
	matcher_next_object(m);
	matcher_each(m, key_if_id(pol->if_id), fn, data);
	matcher_each(m, key_mark(&pol->mark), fn, data);
	for (size_t i = 0; i < pol->n_tmpl && i < TS_XFRM_MAX_TMPL; i++)
		matcher_each(m, key_ends(&pol->tmpl[i].src, &pol->tmpl[i].dst), fn, data);
	matcher_each(m, key_sel(&pol->sel.src, &pol->sel.dst, pol->dir), fn, data);
}

struct status_pass {
	const struct ts_xfrm_expect *expect;
	struct ts_xfrm_tunnel_status *st;
	const struct ts_xfrm_sa **best_in, **best_out;
	bool *found; /* per expected policy, at found_at[idx] + j */
	size_t *found_at;
	const void *object; /* the SA, policy or event offered */
	bool claimed;
	bool soft, hard; /* an expiry event */
};

static void offer_sa(size_t idx, void *data)
{
	struct status_pass *p = data;
	const struct ts_xfrm_expect *e = &p->expect[idx];
	struct ts_xfrm_tunnel_status *st = &p->st[idx];
	const struct ts_xfrm_sa *sa = p->object;
	bool out, in;

	if (!ts_xfrm_expect_claims_sa(e, sa))
		return;
	out = ts_ip_equal(&sa->src, &e->local) && ts_ip_equal(&sa->dst, &e->remote);
	in = ts_ip_equal(&sa->src, &e->remote) && ts_ip_equal(&sa->dst, &e->local);
	if (out && (!e->spi_out || sa->spi == e->spi_out)) {
		st->n_sa_out++;
		if (!p->best_out[idx] || sa->cur.add_time > p->best_out[idx]->cur.add_time)
			p->best_out[idx] = sa;
	} else if (in && (!e->spi_in || sa->spi == e->spi_in)) {
		st->n_sa_in++;
		if (!p->best_in[idx] || sa->cur.add_time > p->best_in[idx]->cur.add_time)
			p->best_in[idx] = sa;
	}
}

static void offer_policy(size_t idx, void *data)
{
	struct status_pass *p = data;
	const struct ts_xfrm_expect *e = &p->expect[idx];
	struct ts_xfrm_tunnel_status *st = &p->st[idx];
	const struct ts_xfrm_policy *pol = p->object;

	if (ts_xfrm_expect_claims_policy(e, pol)) {
		st->policy_in |= pol->dir == TS_XFRM_DIR_IN;
		st->policy_out |= pol->dir == TS_XFRM_DIR_OUT;
		st->policy_fwd |= pol->dir == TS_XFRM_DIR_FWD;
	}
	if (!ids_agree(e, pol->if_id, &pol->mark))
		return;
	for (size_t j = 0; j < e->n_policies; j++)
		if (expected_policy_present(&e->policies[j], pol))
			p->found[p->found_at[idx] + j] = true;
}

static void offer_expiry(size_t idx, void *data)
{
	struct status_pass *p = data;
	const struct ts_xfrm_event *ev = p->object;
	bool mine = ev->type <= TS_XFRM_EVENT_SA_EXPIRE_HARD
			    ? ts_xfrm_expect_claims_sa(&p->expect[idx], &ev->sa)
			    : ts_xfrm_expect_claims_policy(&p->expect[idx], &ev->policy);

	if (mine) {
		p->st[idx].soft_expire_seen |= p->soft;
		p->st[idx].hard_expire_seen |= p->hard;
	}
}

static void offer_claim_sa(size_t idx, void *data)
{
	struct status_pass *p = data;

	p->claimed = p->claimed || ts_xfrm_expect_claims_sa(&p->expect[idx], p->object);
}

static void offer_claim_policy(size_t idx, void *data)
{
	struct status_pass *p = data;

	p->claimed = p->claimed || ts_xfrm_expect_claims_policy(&p->expect[idx], p->object);
}

static int tunnel_statuses(struct matcher *m, const struct ts_xfrm_snapshot *snap,
			   const struct ts_xfrm_event *events, size_t n_events,
			   struct ts_xfrm_tunnel_status *st)
{
	size_t n = m->n_expect, n_found = 0;
	struct status_pass p = { .expect = m->expect, .st = st };
	int r = -ENOMEM;

	p.best_in = calloc(n ? n : 1, sizeof(*p.best_in));
	p.best_out = calloc(n ? n : 1, sizeof(*p.best_out));
	p.found_at = calloc(n ? n : 1, sizeof(*p.found_at));
	if (!p.best_in || !p.best_out || !p.found_at)
		goto out;
	for (size_t i = 0; i < n; i++) {
		p.found_at[i] = n_found;
		n_found += m->expect[i].n_policies;
	}
	p.found = calloc(n_found ? n_found : 1, sizeof(*p.found));
	if (!p.found)
		goto out;
	for (size_t i = 0; i < n; i++) {
		memcpy(st[i].name, m->expect[i].name, sizeof(st[i].name));
		st[i].name[TS_NAME_MAX] = '\0';
	}

	for (size_t i = 0; i < snap->n_sas; i++) {
		const struct ts_xfrm_sa *sa = &snap->sas[i];

		if (sa->proto != TS_XFRM_PROTO_ESP || sa_gone(sa, events, n_events))
			continue;
		p.object = sa;
		matcher_sa(m, sa, offer_sa, &p);
	}
	for (size_t i = 0; i < snap->n_policies; i++) {
		p.object = &snap->policies[i];
		matcher_policy(m, &snap->policies[i], offer_policy, &p);
	}
	for (size_t i = 0; i < n_events; i++) {
		const struct ts_xfrm_event *ev = &events[i];

		p.soft = ev->type == TS_XFRM_EVENT_SA_EXPIRE_SOFT ||
			 ev->type == TS_XFRM_EVENT_POLICY_EXPIRE_SOFT;
		p.hard = ev->type == TS_XFRM_EVENT_SA_EXPIRE_HARD ||
			 ev->type == TS_XFRM_EVENT_POLICY_EXPIRE_HARD;
		if (!p.soft && !p.hard)
			continue;
		p.object = ev;
		if (ev->type <= TS_XFRM_EVENT_SA_EXPIRE_HARD)
			matcher_sa(m, &ev->sa, offer_expiry, &p);
		else
			matcher_policy(m, &ev->policy, offer_expiry, &p);
	}

	for (size_t i = 0; i < n; i++) {
		const struct ts_xfrm_expect *e = &m->expect[i];

		if (p.best_in[i]) {
			st[i].sa_in = true;
			st[i].spi_in = p.best_in[i]->spi;
			st[i].sa_in_alive = p.best_in[i]->cur.add_time != 0;
			st[i].packets_in = p.best_in[i]->cur.packets;
		}
		if (p.best_out[i]) {
			st[i].sa_out = true;
			st[i].spi_out = p.best_out[i]->spi;
			st[i].sa_out_alive = p.best_out[i]->cur.add_time != 0;
			st[i].packets_out = p.best_out[i]->cur.packets;
		}
		st[i].n_policies_expected = e->n_policies;
		for (size_t j = 0; j < e->n_policies; j++)
			st[i].n_policies_found += p.found[p.found_at[i] + j];
		st[i].up = st[i].sa_in_alive && st[i].sa_out_alive &&
			   (e->n_policies ? st[i].n_policies_found == e->n_policies
					  : st[i].policy_in && st[i].policy_out);
	}
	r = 0;
out:
	free(p.best_in);
	free(p.best_out);
	free(p.found_at);
	free(p.found);
	return r;
}

/* The owner's sets sorted once, for ownership tests by binary search. */
struct owner_sets {
	uint32_t *if_ids;
	size_t n_if_ids;
	struct ts_xfrm_mark *marks;
	size_t n_marks;
	uint32_t reqid_min, reqid_max;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int cmp_mark(const void *a, const void *b)
{
	const struct ts_xfrm_mark *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return (x->mask > y->mask) - (x->mask < y->mask);
}

static int owner_sets_init(struct owner_sets *o, const struct ts_xfrm_owner *owner)
{
	memset(o, 0, sizeof(*o));
	o->if_ids = malloc((owner->n_if_ids ? owner->n_if_ids : 1) * sizeof(*o->if_ids));
	o->marks = malloc((owner->n_marks ? owner->n_marks : 1) * sizeof(*o->marks));
	if (!o->if_ids || !o->marks)
		return -ENOMEM;
	if (owner->n_if_ids)
		memcpy(o->if_ids, owner->if_ids, owner->n_if_ids * sizeof(*o->if_ids));
	if (owner->n_marks)
		memcpy(o->marks, owner->marks, owner->n_marks * sizeof(*o->marks));
	o->n_if_ids = owner->n_if_ids;
	o->n_marks = owner->n_marks;
	qsort(o->if_ids, o->n_if_ids, sizeof(*o->if_ids), cmp_u32);
	qsort(o->marks, o->n_marks, sizeof(*o->marks), cmp_mark);
	o->reqid_min = owner->reqid_min;
	o->reqid_max = owner->reqid_max;
	return 0;
}

static void owner_sets_done(struct owner_sets *o)
{
	free(o->if_ids);
	free(o->marks);
}

static bool sets_reqid(const struct owner_sets *o, uint32_t reqid)
{
	return o->reqid_min != 0 && reqid >= o->reqid_min && reqid <= o->reqid_max;
}

static bool sets_if_id_or_mark(const struct owner_sets *o, uint32_t if_id,
			       const struct ts_xfrm_mark *mark)
{
	return (if_id != 0 && bsearch(&if_id, o->if_ids, o->n_if_ids, sizeof(if_id), cmp_u32)) ||
	       (mark->mask != 0 && bsearch(mark, o->marks, o->n_marks, sizeof(*mark), cmp_mark));
}

/* ts_xfrm_sa_owned / ts_xfrm_policy_owned over the sorted sets. */
static bool sets_sa_owned(const struct owner_sets *o, const struct ts_xfrm_sa *sa)
{
	return sets_if_id_or_mark(o, sa->if_id, &sa->mark) || sets_reqid(o, sa->reqid);
}

static bool sets_policy_owned(const struct owner_sets *o, const struct ts_xfrm_policy *pol)
{
	if (sets_if_id_or_mark(o, pol->if_id, &pol->mark))
		return true;
	for (size_t i = 0; i < pol->n_tmpl && i < TS_XFRM_MAX_TMPL; i++)
		if (sets_reqid(o, pol->tmpl[i].reqid))
			return true;
	return false;
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
	struct owner_sets own = { 0 };
	struct matcher m = { 0 };
	struct status_pass p = { .expect = expect };
	size_t cap = 0;
	int r;

	if (!snapshot || (n_expect && !expect) || !owner || (n_events && !events) || !ret_result)
		return -EINVAL;
	r = ts_xfrm_owner_validate(owner);
	if (r < 0)
		return r;
	r = -ENOMEM;
	if (matcher_init(&m, expect, n_expect) < 0 || owner_sets_init(&own, owner) < 0)
		goto fail;
	if (n_expect) {
		res.tunnels = calloc(n_expect, sizeof(*res.tunnels));
		if (!res.tunnels)
			goto fail;
	}
	res.n_tunnels = n_expect;
	r = tunnel_statuses(&m, snapshot, events, n_events, res.tunnels);
	if (r < 0)
		goto fail;

	res.stale_valid = snapshot->complete;
	if (!res.stale_valid)
		goto done;
	for (size_t i = 0; i < snapshot->n_sas; i++) {
		const struct ts_xfrm_sa *sa = &snapshot->sas[i];
		struct ts_xfrm_stale item = { .kind = TS_XFRM_OBJECT_SA };

		if (!sets_sa_owned(&own, sa))
			continue;
		p.object = sa;
		p.claimed = false;
		matcher_sa(&m, sa, offer_claim_sa, &p);
		if (p.claimed)
			continue;
		item.sa = *sa;
		r = add_stale(&res, &cap, &item);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < snapshot->n_policies; i++) {
		const struct ts_xfrm_policy *pol = &snapshot->policies[i];
		struct ts_xfrm_stale item = { .kind = TS_XFRM_OBJECT_POLICY };

		if (!sets_policy_owned(&own, pol))
			continue;
		p.object = pol;
		p.claimed = false;
		matcher_policy(&m, pol, offer_claim_policy, &p);
		if (p.claimed)
			continue;
		item.policy = *pol;
		r = add_stale(&res, &cap, &item);
		if (r < 0)
			goto fail;
	}
done:
	matcher_done(&m);
	owner_sets_done(&own);
	*ret_result = res;
	return 0;
fail:
	matcher_done(&m);
	owner_sets_done(&own);
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
