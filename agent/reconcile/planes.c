/* The real planes: the adapters' handles and the thin calls the reconcile
 * makes through struct ts_planes_ops. Everything here is I/O; no decision
 * is taken here (the agent's logic lives in observe, rotation and apply). */
#include "route/route.h"
#include "reconcile/planes.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "store/conn_record.h"
#include "reconcile/agent.h"
#include "xfrm/xfrm.h"

#define VICI_TIMEOUT_MS	    10000
#define IKE_CALL_TIMEOUT_MS 10000
/* Reauths (their terminate + initiate fallback) and an update's deletes:
 * charon detaches after this and carries on. Initiates (also an update's)
 * do not wait at all (TS_VICI_NO_WAIT): the pass waits for every SA at
 * once (reconcile/wait.h). */
#define IKE_REQUEST_TIMEOUT_MS 500
/* More tunnels than this in one event scope: a full pass. */
#define SCOPE_MAX 16

struct real_planes {
	const struct ts_desired *desired;
	const char *account;
	struct ts_store *store;
	struct ts_cf_client *cf;
	char cf_error[256];
	struct ts_vici_client *vici;
	struct ts_vici_events *events;
	struct ts_vici_events *log_events; /* "log" only, while needed */
	bool events_seen;		   /* an own connection's event drained by a pass */
	bool event_asks;		   /* the last event asks for a pass (on_event) */
	bool restarted;			   /* charon restarted since asked */
	/* The tunnels events named since event_scope() was last asked;
	 * scope_full: one asked for the whole gateway. */
	char *scope[SCOPE_MAX];
	size_t n_scope;
	bool scope_full;
	struct ts_ike_monitor *monitor;
	struct ts_xfrm_sock *xfrm;
	struct ts_xfrm_watch *watch; /* daemon only */
	struct ts_xfrm_owner owner;
	uint32_t *owner_if_ids;
	struct ts_xfrm_mark *owner_marks;
	struct ts_route_sock *routes; /* opened at the first route change */
	struct ts_reqid_map reqids;   /* tunnels without if_id or mark */
	/* Every name the last whole IKE observation's lists held, for the
	 * ike_names that follows it (observe.c calls the two in a row);
	 * taken by it, dropped by the next observation. */
	struct ts_ike_names names;
};

/* --- clock and events -------------------------------------------------- */

static ts_usec_t real_now_realtime(void *ctx)
{
	(void)ctx;
	return ts_now_realtime();
}

static ts_usec_t real_now_monotonic(void *ctx)
{
	(void)ctx;
	return ts_now_monotonic();
}

static void scope_add(struct real_planes *p, const char *tunnel)
{
	if (p->scope_full)
		return;
	if (!tunnel || !tunnel[0]) {
		p->scope_full = true;
		return;
	}
	for (size_t i = 0; i < p->n_scope; i++)
		if (strcmp(p->scope[i], tunnel) == 0)
			return;
	if (p->n_scope == SCOPE_MAX || !(p->scope[p->n_scope] = strdup(tunnel))) {
		p->scope_full = true;
		return;
	}
	p->n_scope++;
}

static void scope_clear(struct real_planes *p)
{
	for (size_t i = 0; i < p->n_scope; i++)
		free(p->scope[i]);
	p->n_scope = 0;
	p->scope_full = false;
}

static void on_event(void *userdata, const char *event, const struct ts_vici_node *body)
{
	struct real_planes *p = userdata;
	struct ts_ike_event ev;

	if (ts_ike_event_parse(event, body, &ev) < 0)
		return;
	ts_ike_monitor_feed(p->monitor, &ev, ts_now_realtime());
	p->event_asks = ts_planes_ike_event_asks(event, &ev);
	/* A pass drains events too (before each observe): one it read after
	 * observing that tunnel must still ask the daemon for a pass. */
	if (p->event_asks && ev.conn[0]) {
		p->events_seen = true;
		scope_add(p, ev.conn + strlen(TS_IKE_CONN_PREFIX));
	}
	if (ev.kind == TS_IKE_EVENT_AUTH_FAILED) {
		size_t plen = strlen(TS_IKE_CONN_PREFIX);

		if (strncmp(ev.conn, TS_IKE_CONN_PREFIX, plen) == 0)
			ts_logf(TS_LOG_WARN, "ike", ev.conn + plen,
				"authentication failed (key mismatch?)");
	}
}

/* Feeds the IKE daemon's pending events to the failure monitor. */
static void drain_events(struct real_planes *p)
{
	int r;

	if (!p->events)
		return;
	r = ts_vici_events_connect(p->events);
	if (r < 0)
		return;
	if (r == 1) { /* charon restarted: it read its settings again */
		ts_logf(TS_LOG_WARN, "ike", NULL,
			"reconnected to the IKE daemon: it restarted and forgot our keys");
		p->restarted = true;
		p->scope_full = true;
	}
	r = ts_vici_events_drain(p->events, on_event, p);
	if (r == -ECONNRESET || r == -EBADMSG) {
		p->restarted = true;
		(void)ts_vici_events_connect(p->events);
	}
	if (p->log_events && ts_vici_events_connect(p->log_events) >= 0)
		(void)ts_vici_events_drain(p->log_events, on_event, p);
}

static void real_wait(void *ctx, int timeout_ms)
{
	struct real_planes *p = ctx;

	if (p->events && ts_vici_events_fd(p->events) >= 0) {
		struct pollfd pfd = { ts_vici_events_fd(p->events), POLLIN, 0 };

		(void)poll(&pfd, 1, timeout_ms);
	} else {
		struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
}

/* --- Cloudflare ---------------------------------------------------------- */

static int no_client(struct real_planes *p, struct ts_cf_error *err)
{
	err->kind = TS_CF_ERR_CONFIG;
	snprintf(err->detail, sizeof(err->detail), "no API client: %.200s", p->cf_error);
	return -ENOTCONN;
}

static int real_cf_list(void *ctx, struct ts_cf_tunnel_list *ret, struct ts_cf_error *err)
{
	struct real_planes *p = ctx;

	return p->cf ? ts_cf_list_tunnels(p->cf, ret, err) : no_client(p, err);
}

struct list_watch {
	struct real_planes *p;
	int (*ready)(void *userdata);
	void *userdata;
};

static void real_fds(void *ctx, int *ret_ike_fd, int *ret_xfrm_fd);

static void list_watch_fds(void *userdata, int *fds)
{
	struct list_watch *w = userdata;

	real_fds(w->p, &fds[0], &fds[1]);
}

static int list_watch_ready(void *userdata)
{
	struct list_watch *w = userdata;

	return w->ready(w->userdata);
}

static int real_cf_list_watch(void *ctx, int (*ready)(void *userdata), void *userdata,
			      struct ts_cf_tunnel_list *ret, struct ts_cf_error *err)
{
	struct real_planes *p = ctx;
	struct list_watch w = { p, ready, userdata };
	struct ts_cf_wait_hook hook = { list_watch_fds, list_watch_ready, &w };
	int r;

	if (!p->cf)
		return no_client(p, err);
	ts_cf_client_set_wait_hook(p->cf, &hook);
	r = ts_cf_list_tunnels(p->cf, ret, err);
	ts_cf_client_set_wait_hook(p->cf, NULL);
	return r;
}

static int real_cf_psk_set(void *ctx, const struct ts_cf_psk_entry *entries, size_t n,
			   bool validate_only, struct ts_cf_psk_set_result *ret,
			   struct ts_cf_error *err)
{
	struct real_planes *p = ctx;

	return p->cf ? ts_cf_psk_set(p->cf, entries, n, validate_only, ret, err)
		     : no_client(p, err);
}

static int real_cf_psk_generate(void *ctx, const char *tunnel_id, bool validate_only,
				struct ts_cf_psk_generated *ret, struct ts_cf_error *err)
{
	struct real_planes *p = ctx;

	return p->cf ? ts_cf_psk_generate(p->cf, tunnel_id, validate_only, ret, err)
		     : no_client(p, err);
}

static int real_cf_update_tunnel(void *ctx, const struct ts_tunnel *t, bool validate_only,
				 struct ts_cf_tunnel *ret, struct ts_cf_error *err)
{
	struct real_planes *p = ctx;

	return p->cf ? ts_cf_update_tunnel(p->cf, t, validate_only, ret, err) : no_client(p, err);
}

static uint32_t real_cf_budget(void *ctx)
{
	struct real_planes *p = ctx;

	return p->cf ? ts_cf_client_budget_available(p->cf) : 0;
}

/* --- the IKE daemon ------------------------------------------------------ */

/* The reqids charon gave the CHILD SAs of tunnels without if_id or mark:
 * what names such a tunnel in a kernel event. */
static void note_reqids(struct real_planes *p, const struct ts_ike_observed *obs, size_t n)
{
	const struct ts_desired *d = p->desired;

	for (size_t i = 0; i < n; i++) {
		const struct ts_tunnel *t = ts_desired_find(d, obs[i].tunnel);

		if (!t || t->routing.has_if_id || t->routing.has_mark)
			continue;
		for (size_t k = 0; k < obs[i].n_children; k++)
			if (obs[i].children[k].reqid)
				(void)ts_reqid_map_set(&p->reqids, obs[i].children[k].reqid,
						       (uint32_t)(t - d->tunnels));
	}
}

static int real_ike_observe(void *ctx, const struct ts_tunnel *tunnels, size_t n,
			    struct ts_ike_observed *ret)
{
	struct real_planes *p = ctx;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	drain_events(p);
	ts_ike_names_done(&p->names);
	r = ts_ike_observe_names(p->vici, tunnels, n, p->account, p->monitor, ret, &p->names);
	if (r >= 0)
		note_reqids(p, ret, n);
	return r;
}

static int real_ike_observe_sas(void *ctx, const struct ts_tunnel *tunnels, size_t n,
				struct ts_ike_observed *ret)
{
	struct real_planes *p = ctx;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	drain_events(p);
	r = ts_ike_observe_sas(p->vici, tunnels, n, ret);
	if (r >= 0)
		note_reqids(p, ret, n);
	return r;
}

struct names_walk {
	ts_ike_name_fn fn;
	void *userdata;
};

static int on_conn_names(void *userdata, const struct ts_vici_node *event)
{
	struct names_walk *w = userdata;

	for (size_t i = 0; i < event->n_children; i++) {
		const char *name = event->children[i]->name;
		int r;

		if (event->children[i]->type != TS_VICI_SECTION || !name)
			continue;
		r = w->fn(w->userdata, TS_IKE_NAME_CONN, name);
		if (r < 0)
			return r;
	}
	return 0;
}

static int real_ike_names(void *ctx, ts_ike_name_fn fn, void *userdata)
{
	struct real_planes *p = ctx;
	struct names_walk w = { fn, userdata };
	_cleanup_vici_ struct ts_vici_node *shared = NULL;
	const struct ts_vici_node *keys;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	if (p->names.valid) {
		/* The observation's own lists: names, then keys. */
		struct ts_ike_names names = p->names;
		const char *s = names.conns;

		p->names = (struct ts_ike_names){ 0 };
		r = 0;
		for (size_t k = 0; k < names.n_conns && r >= 0; k++, s += strlen(s) + 1)
			r = fn(userdata, TS_IKE_NAME_CONN, s);
		s = names.keys;
		for (size_t k = 0; k < names.n_keys && r >= 0; k++, s += strlen(s) + 1)
			r = fn(userdata, TS_IKE_NAME_KEY, s);
		ts_ike_names_done(&names);
		return r < 0 ? r : 0;
	}
	r = ts_vici_list_conns(p->vici, NULL, on_conn_names, &w);
	if (r < 0)
		return r;
	r = ts_vici_get_shared(p->vici, &shared);
	if (r < 0)
		return r;
	keys = ts_vici_get_list(shared, "keys");
	for (size_t k = 0; keys && k < keys->n_children; k++) {
		const char *id = ts_vici_node_str(keys->children[k]);

		if (id && (r = fn(userdata, TS_IKE_NAME_KEY, id)) < 0)
			return r;
	}
	return 0;
}

static int real_ike_load(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			 char *err, size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	return ts_ike_load(p->vici, t, p->account, key, err, err_size);
}

static int real_ike_load_conn(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct real_planes *p = ctx;
	_cleanup_vici_ struct ts_vici_node *msg = NULL;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	r = ts_ike_render_conn(t, p->account, &msg);
	return r < 0 ? r : ts_vici_load_conn(p->vici, msg, err, err_size);
}

static int real_ike_load_key(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			     char *err, size_t err_size)
{
	struct real_planes *p = ctx;
	_cleanup_vici_ struct ts_vici_node *msg = NULL;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	r = ts_ike_render_shared(t, p->account, key, &msg);
	return r < 0 ? r : ts_vici_load_shared(p->vici, msg, err, err_size);
}

static int real_ike_update_conn(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
				bool reestablish, bool break_first,
				struct ts_ike_update_sas *ret_before, char *err, size_t err_size)
{
	struct real_planes *p = ctx;
	int r;

	if (!p->vici)
		return -ENOTCONN;
	r = ts_ike_update_begin(p->vici, t, p->account, key, reestablish, break_first,
				TS_VICI_NO_WAIT, ret_before, err, err_size);
	drain_events(p);
	return r;
}

static int real_ike_update_finish(void *ctx, const struct ts_tunnel *t,
				  const struct ts_ike_update_sas *before, char *err,
				  size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	/* The deletes need no answer: charon finishes them. */
	return ts_ike_update_finish(p->vici, t, before, IKE_REQUEST_TIMEOUT_MS, err, err_size);
}

static int real_ike_unload_conn(void *ctx, const char *conn, char *err, size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	(void)ts_vici_terminate(p->vici, conn, IKE_CALL_TIMEOUT_MS, NULL, 0);
	return ts_vici_unload_conn(p->vici, conn, err, err_size);
}

static int real_ike_unload_key(void *ctx, const char *id, char *err, size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	return ts_vici_unload_shared(p->vici, id, err, err_size);
}

static int real_ike_initiate(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct real_planes *p = ctx;
	char conn[TS_IKE_CONN_NAME_MAX];
	int r;

	if (!p->vici)
		return -ENOTCONN;
	r = ts_ike_conn_name(t, conn, sizeof(conn));
	if (r < 0)
		return r;
	r = ts_vici_initiate(p->vici, conn, conn, TS_VICI_NO_WAIT, err, err_size);
	drain_events(p);
	return r;
}

static int real_ike_reauth(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	return ts_ike_reauth(p->vici, t, IKE_REQUEST_TIMEOUT_MS, err, err_size);
}

static int real_ike_reinitiate(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	return ts_ike_reinitiate(p->vici, t, IKE_REQUEST_TIMEOUT_MS, err, err_size);
}

/* The route socket, opened at the first use. */
static struct ts_route_sock *route_sock(struct real_planes *p, int *ret_error)
{
	int r;

	if (!p->routes && (r = ts_route_open(&p->routes)) < 0) {
		*ret_error = r;
		return NULL;
	}
	return p->routes;
}

static int real_route_list(void *ctx, struct ts_route_seen **ret_routes, size_t *ret_n)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_route_list(s, ret_routes, ret_n) : r;
}

static int real_route_set(void *ctx, const char *ifname, const struct ts_prefix *dst,
			  uint32_t metric)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_route_set(s, ifname, dst, metric) : r;
}

static int real_route_delete(void *ctx, const struct ts_route_seen *rt)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_route_delete(s, rt) : r;
}

static int real_iface_read(void *ctx, const char *ifname, struct ts_iface_seen *ret_seen)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_iface_read(s, ifname, ret_seen) : r;
}

static int real_iface_list_owned(void *ctx, struct ts_iface_owned **ret_ifaces, size_t *ret_n)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_iface_list_owned(s, ret_ifaces, ret_n) : r;
}

static int real_iface_ensure(void *ctx, const struct ts_iface_spec *sp, unsigned *ret_changes)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_iface_ensure(s, sp, ret_changes) : r;
}

static int real_iface_delete(void *ctx, const char *ifname)
{
	int r = 0;
	struct ts_route_sock *s = route_sock(ctx, &r);

	return s ? ts_iface_delete(s, ifname) : r;
}

static void real_ike_failures(void *ctx, const char *conn, struct ts_ike_failures *ret)
{
	struct real_planes *p = ctx;

	drain_events(p);
	ts_ike_monitor_get(p->monitor, conn, ret);
}

static void real_ike_failures_reset(void *ctx, const char *conn)
{
	struct real_planes *p = ctx;

	ts_ike_monitor_reset(p->monitor, conn);
}

static int real_ike_mbb_check(void *ctx, const char *conf_path, struct ts_mbb_check *ret)
{
	struct real_planes *p = ctx;

	if (!p->vici)
		return -ENOTCONN;
	return ts_mbb_check(p->vici, conf_path, ret);
}

static bool real_ike_take_restarted(void *ctx)
{
	struct real_planes *p = ctx;
	bool r = p->restarted;

	p->restarted = false;
	return r;
}

static int real_ike_follow_log(void *ctx, bool want)
{
	static const char *const log_event[] = { "log" };
	struct real_planes *p = ctx;

	if (want && !p->log_events) {
		if (ts_vici_events_new(p->desired->agent.vici_socket, log_event, 1, VICI_TIMEOUT_MS,
				       &p->log_events) < 0) {
			p->log_events = NULL;
			return 0;
		}
		return 1;
	}
	if (!want && p->log_events) {
		drain_events(p);
		ts_vici_events_free(p->log_events);
		p->log_events = NULL;
		return 1;
	}
	return 0;
}

/* --- the kernel ------------------------------------------------------------ */

/* The owner spec: every if_id and mark a declared tunnel uses (declared
 * anywhere: a disabled tunnel's objects are still ours, not foreign). */
static int build_owner(struct real_planes *p)
{
	const struct ts_desired *d = p->desired;

	p->owner_if_ids = calloc(d->n_tunnels + 1, sizeof(*p->owner_if_ids));
	p->owner_marks = calloc(d->n_tunnels + 1, sizeof(*p->owner_marks));
	if (!p->owner_if_ids || !p->owner_marks)
		return -ENOMEM;
	memset(&p->owner, 0, sizeof(p->owner));
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_routing *rt = &d->tunnels[i].routing;

		if (rt->has_if_id && rt->if_id)
			p->owner_if_ids[p->owner.n_if_ids++] = rt->if_id;
		if (rt->has_mark && rt->mark_mask)
			p->owner_marks[p->owner.n_marks++] =
				(struct ts_xfrm_mark){ rt->mark, rt->mark_mask };
		/* A declared reqid names its tunnel's events from the start
		 * (charon's own ones are learnt by observation). */
		if (!rt->has_if_id && !rt->has_mark && rt->reqid &&
		    ts_reqid_map_set(&p->reqids, rt->reqid, (uint32_t)i) < 0)
			return -ENOMEM;
	}
	p->owner.if_ids = p->owner_if_ids;
	p->owner.marks = p->owner_marks;
	return 0;
}

static int real_kernel_match(void *ctx, const struct ts_xfrm_expect *expect, size_t n,
			     struct ts_xfrm_snapshot *snap, struct ts_xfrm_match_result *res)
{
	struct real_planes *p = ctx;
	int r;

	if (!p->xfrm)
		return -ENOTCONN;
	r = ts_xfrm_dump(p->xfrm, snap);
	if (r < 0)
		return r;
	return ts_xfrm_match(snap, expect, n, &p->owner, NULL, 0, res);
}

static int real_kernel_delete(void *ctx, const struct ts_xfrm_stale *x)
{
	struct real_planes *p = ctx;

	if (!p->xfrm)
		return -ENOTCONN;
	return x->kind == TS_XFRM_OBJECT_SA ? ts_xfrm_sa_delete(p->xfrm, &p->owner, &x->sa)
					    : ts_xfrm_policy_delete(p->xfrm, &p->owner, &x->policy);
}

/* --- the state directory ------------------------------------------------ */

static int real_store_load(void *ctx, struct ts_store_state **ret)
{
	struct real_planes *p = ctx;

	*ret = NULL;
	return p->store ? ts_store_load(p->store, ret) : -ENODEV;
}

static int real_store_load_names(void *ctx, const char *const *names, size_t n,
				 struct ts_store_state **ret)
{
	struct real_planes *p = ctx;

	*ret = NULL;
	return p->store ? ts_store_load_names(p->store, names, n, ret) : -ENODEV;
}

static int real_store_begin(void *ctx, const struct ts_journal_entry *e)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_journal_begin(p->store, e) : -ENODEV;
}

static int real_store_advance(void *ctx, const struct ts_journal_entry *e)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_journal_advance(p->store, e) : -ENODEV;
}

static int real_store_commit(void *ctx, const char *tunnel, ts_usec_t applied_at,
			     struct ts_key_record *ret)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_journal_commit(p->store, tunnel, applied_at, ret) : -ENODEV;
}

static int real_store_discard(void *ctx, const char *tunnel)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_journal_discard(p->store, tunnel) : -ENODEV;
}

static int real_store_adopt_baseline(void *ctx, const char *tunnel, const char *fingerprint,
				     ts_usec_t last_generated_on, ts_usec_t unit)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_record_adopt_baseline(p->store, tunnel, fingerprint,
							 last_generated_on, unit)
			: -ENODEV;
}

static int real_store_request_add(void *ctx, const char *tunnel, ts_usec_t at)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_request_add(p->store, tunnel, at) : -ENODEV;
}

static int real_store_request_remove(void *ctx, const char *tunnel)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_request_remove(p->store, tunnel) : -ENODEV;
}

static const char *real_store_error(void *ctx)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_last_error(p->store) : "";
}

static int real_conn_record_read(void *ctx, const char *tunnel, struct ts_ike_leaves *ret)
{
	struct real_planes *p = ctx;

	return p->store ? ts_conn_record_read(ts_store_dir(p->store), tunnel, ret, NULL) : -ENOENT;
}

static int real_conn_record_write(void *ctx, const char *tunnel, const struct ts_ike_leaves *l)
{
	struct real_planes *p = ctx;

	return p->store ? ts_conn_record_write(ts_store_dir(p->store), tunnel, l) : -ENODEV;
}

static int real_conn_record_remove(void *ctx, const char *tunnel)
{
	struct real_planes *p = ctx;

	return p->store ? ts_conn_record_remove(ts_store_dir(p->store), tunnel) : -ENODEV;
}

static int real_conn_failing_read(void *ctx, const char *tunnel, ts_usec_t *ret)
{
	struct real_planes *p = ctx;

	return p->store ? ts_conn_record_failing_read(ts_store_dir(p->store), tunnel, ret)
			: -ENOENT;
}

static int real_conn_failing_write(void *ctx, const char *tunnel, ts_usec_t since)
{
	struct real_planes *p = ctx;

	return p->store ? ts_conn_record_failing_write(ts_store_dir(p->store), tunnel, since)
			: -ENODEV;
}

static const char *real_store_dir(void *ctx)
{
	struct real_planes *p = ctx;

	return p->store ? ts_store_dir(p->store) : "";
}

/* --- the daemon's event loop ------------------------------------------- */

static void real_fds(void *ctx, int *ret_ike_fd, int *ret_xfrm_fd)
{
	struct real_planes *p = ctx;

	*ret_ike_fd = p->events ? ts_vici_events_fd(p->events) : -1;
	*ret_xfrm_fd = p->watch ? ts_xfrm_watch_fd(p->watch) : -1;
}

struct event_scan {
	struct real_planes *p;
	bool relevant;
};

static void on_event_scan(void *userdata, const char *event, const struct ts_vici_node *body)
{
	struct event_scan *sc = userdata;

	sc->p->event_asks = false;
	on_event(sc->p, event, body);
	if (sc->p->event_asks)
		sc->relevant = true;
}

bool ts_planes_ike_event_asks(const char *event, const struct ts_ike_event *ev)
{
	size_t plen = strlen(TS_IKE_CONN_PREFIX);

	/* Log lines only feed the failure counters (an authentication
	 * failure is counted there and the next pass reads the count). */
	if (strcmp(event, "log") == 0)
		return false;
	/* A rekey is an SA replaced as declared, not drift: at 1,000
	 * tunnels they come every second or so, each would otherwise cost a
	 * pass and a Cloudflare list (tests/bench/idle-scale.sh after the
	 * first hour). */
	if (ev->kind == TS_IKE_EVENT_IKE_REKEY || ev->kind == TS_IKE_EVENT_CHILD_REKEY)
		return false;
	/* Another daemon's or an operator's connection: not ours to watch. */
	if (ev->conn[0] && strncmp(ev->conn, TS_IKE_CONN_PREFIX, plen) != 0)
		return false;
	/* Ours (its scope), or one that names no connection (a whole pass). */
	return true;
}

/* The policy an XFRM event is about; NULL: it is about an SA. */
static const struct ts_xfrm_policy *xfrm_event_policy(const struct ts_xfrm_event *ev)
{
	switch (ev->type) {
	case TS_XFRM_EVENT_SA_NEW:
	case TS_XFRM_EVENT_SA_UPD:
	case TS_XFRM_EVENT_SA_DEL:
	case TS_XFRM_EVENT_SA_EXPIRE_SOFT:
	case TS_XFRM_EVENT_SA_EXPIRE_HARD:
		return NULL;
	case TS_XFRM_EVENT_ACQUIRE:
		return &ev->acquire.policy;
	default:
		return &ev->policy;
	}
}

bool ts_planes_xfrm_event_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_event *ev)
{
	const struct ts_xfrm_policy *pol = xfrm_event_policy(ev);

	return pol ? ts_xfrm_policy_owned(owner, pol) : ts_xfrm_sa_owned(owner, &ev->sa);
}

/* The declared tunnel an owned XFRM object belongs to, by its if_id or
 * mark; NULL when none says (reqid-owned: policy-based tunnels). */
static const char *xfrm_event_tunnel(const struct real_planes *p, const struct ts_xfrm_event *ev)
{
	const struct ts_desired *d = p->desired;
	const struct ts_xfrm_policy *pol = xfrm_event_policy(ev);
	uint32_t if_id = pol ? pol->if_id : ev->sa.if_id;
	struct ts_xfrm_mark mark = pol ? pol->mark : ev->sa.mark;

	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_routing *rt = &d->tunnels[i].routing;

		if ((rt->has_if_id && if_id && rt->if_id == if_id) ||
		    (rt->has_mark && mark.mask && rt->mark == mark.value))
			return d->tunnels[i].name;
	}
	return NULL;
}

static ssize_t reqid_find(const struct ts_reqid_map *m, uint32_t reqid, size_t *ret_at)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].reqid < reqid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ret_at)
		*ret_at = lo;
	return lo < m->n && m->v[lo].reqid == reqid ? (ssize_t)m->v[lo].tunnel : -1;
}

int ts_reqid_map_set(struct ts_reqid_map *m, uint32_t reqid, uint32_t tunnel)
{
	size_t at;

	if (reqid == 0)
		return -EINVAL;
	if (reqid_find(m, reqid, &at) >= 0) {
		m->v[at].tunnel = tunnel;
		return 0;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct ts_reqid_owner *v = reallocarray(m->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	memmove(&m->v[at + 1], &m->v[at], (m->n - at) * sizeof(*m->v));
	m->v[at] = (struct ts_reqid_owner){ reqid, tunnel };
	m->n++;
	return 0;
}

ssize_t ts_reqid_map_event(const struct ts_reqid_map *m, const struct ts_xfrm_event *ev)
{
	const struct ts_xfrm_policy *pol = xfrm_event_policy(ev);
	ssize_t t;

	if (!pol)
		return ev->sa.reqid ? reqid_find(m, ev->sa.reqid, NULL) : -1;
	for (size_t k = 0; k < pol->n_tmpl && k < TS_XFRM_MAX_TMPL; k++)
		if (pol->tmpl[k].reqid && (t = reqid_find(m, pol->tmpl[k].reqid, NULL)) >= 0)
			return t;
	return -1;
}

void ts_reqid_map_done(struct ts_reqid_map *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int real_event_scope(void *ctx, char ***ret_names, size_t *ret_n)
{
	struct real_planes *p = ctx;
	char **names;
	int r = 0;

	*ret_names = NULL;
	*ret_n = 0;
	if (!p->scope_full && p->n_scope) {
		names = calloc(p->n_scope, sizeof(*names));
		if (!names) {
			scope_clear(p);
			return 0;
		}
		memcpy(names, p->scope, p->n_scope * sizeof(*names));
		*ret_names = names;
		*ret_n = p->n_scope;
		p->n_scope = 0; /* moved */
		r = 1;
	}
	scope_clear(p);
	return r;
}

static int real_process_events(void *ctx)
{
	struct real_planes *p = ctx;
	struct event_scan sc = { p, false };
	int r;

	if (p->events) {
		r = ts_vici_events_connect(p->events);
		if (r == 1) {
			ts_logf(TS_LOG_WARN, "ike", NULL,
				"reconnected to the IKE daemon: it restarted and forgot our keys");
			p->restarted = true;
			sc.relevant = true;
			p->scope_full = true;
		} else if (r == 2) {
			sc.relevant = true;
			p->scope_full = true;
		}
		if (r >= 0) {
			r = ts_vici_events_drain(p->events, on_event_scan, &sc);
			if (r == -ECONNRESET || r == -EBADMSG) {
				ts_logf(TS_LOG_WARN, "ike", NULL,
					"lost the IKE daemon's event stream");
				p->restarted = true;
				sc.relevant = true;
				p->scope_full = true;
			}
		}
	}
	if (p->watch) {
		struct ts_xfrm_changes ch = { 0 };

		r = ts_xfrm_watch_drain(p->watch, &ch);
		/* Only the agent's own objects (struct ts_xfrm_owner) ask for a
		 * pass: another IKE daemon's or an operator's SAs do not. */
		for (size_t i = 0; r > 0 && i < ch.n_events; i++) {
			ssize_t t;

			if (ts_planes_xfrm_event_owned(&p->owner, &ch.events[i])) {
				sc.relevant = true;
				scope_add(p, xfrm_event_tunnel(p, &ch.events[i]));
			} else if ((t = ts_reqid_map_event(&p->reqids, &ch.events[i])) >= 0) {
				/* A policy-based tunnel's SA or policy (its reqid). */
				sc.relevant = true;
				scope_add(p, p->desired->tunnels[t].name);
			}
		}
		if (ch.resync != TS_XFRM_RESYNC_NONE) {
			sc.relevant = true;
			p->scope_full = true;
		}
		if (ch.resync != TS_XFRM_RESYNC_NONE)
			ts_logf(TS_LOG_DEBUG, "kernel", NULL, "XFRM events ask for a resync (%s)",
				ts_xfrm_resync_to_string(ch.resync));
		ts_xfrm_changes_done(&ch);
	}
	if (p->events_seen)
		sc.relevant = true;
	p->events_seen = false;
	return sc.relevant ? 1 : 0;
}

static struct ts_cf_client *real_cf_client(void *ctx)
{
	return ((struct real_planes *)ctx)->cf;
}

static const struct ts_planes_ops real_ops = {
	.now_realtime = real_now_realtime,
	.now_monotonic = real_now_monotonic,
	.wait = real_wait,
	.cf_list = real_cf_list,
	.cf_list_watch = real_cf_list_watch,
	.cf_psk_set = real_cf_psk_set,
	.cf_psk_generate = real_cf_psk_generate,
	.cf_budget = real_cf_budget,
	.cf_update_tunnel = real_cf_update_tunnel,
	.ike_observe = real_ike_observe,
	.ike_observe_sas = real_ike_observe_sas,
	.ike_names = real_ike_names,
	.ike_load = real_ike_load,
	.ike_load_conn = real_ike_load_conn,
	.ike_load_key = real_ike_load_key,
	.ike_update_conn = real_ike_update_conn,
	.ike_update_finish = real_ike_update_finish,
	.ike_unload_conn = real_ike_unload_conn,
	.ike_unload_key = real_ike_unload_key,
	.ike_initiate = real_ike_initiate,
	.ike_reauth = real_ike_reauth,
	.ike_reinitiate = real_ike_reinitiate,
	.route_list = real_route_list,
	.route_set = real_route_set,
	.route_delete = real_route_delete,
	.iface_read = real_iface_read,
	.iface_list_owned = real_iface_list_owned,
	.iface_ensure = real_iface_ensure,
	.iface_delete = real_iface_delete,
	.ike_failures = real_ike_failures,
	.ike_failures_reset = real_ike_failures_reset,
	.ike_mbb_check = real_ike_mbb_check,
	.ike_take_restarted = real_ike_take_restarted,
	.ike_follow_log = real_ike_follow_log,
	.kernel_match = real_kernel_match,
	.kernel_delete = real_kernel_delete,
	.store_load = real_store_load,
	.store_load_names = real_store_load_names,
	.store_begin = real_store_begin,
	.store_advance = real_store_advance,
	.store_commit = real_store_commit,
	.store_discard = real_store_discard,
	.store_adopt_baseline = real_store_adopt_baseline,
	.store_request_add = real_store_request_add,
	.store_request_remove = real_store_request_remove,
	.store_error = real_store_error,
	.store_dir = real_store_dir,
	.conn_record_read = real_conn_record_read,
	.conn_record_write = real_conn_record_write,
	.conn_record_remove = real_conn_record_remove,
	.conn_failing_read = real_conn_failing_read,
	.conn_failing_write = real_conn_failing_write,
	.fds = real_fds,
	.process_events = real_process_events,
	.event_scope = real_event_scope,
	.cf_client = real_cf_client,
};

static void real_free(void *ctx)
{
	struct real_planes *p = ctx;

	if (!p)
		return;
	ts_xfrm_watch_free(p->watch);
	ts_xfrm_sock_free(p->xfrm);
	ts_route_close(p->routes);
	ts_vici_events_free(p->events);
	ts_vici_events_free(p->log_events);
	ts_vici_client_free(p->vici);
	ts_ike_monitor_free(p->monitor);
	ts_ike_names_done(&p->names);
	scope_clear(p);
	ts_cf_client_free(p->cf);
	ts_store_close(p->store);
	free(p->owner_if_ids);
	free(p->owner_marks);
	ts_reqid_map_done(&p->reqids);
	free(p);
}

static int open_store(struct real_planes *p, const struct ts_agent_options *options,
		      const char *state_dir)
{
	pid_t holder = 0;
	int r;

	/* A dry run changes nothing local either: not even the directory. */
	if (options->readonly || options->dry_run) {
		r = ts_store_open_readonly(state_dir, &p->store);
		if (r == -ENOENT) {
			/* Nothing recorded yet: every tunnel reads as "no record". */
			p->store = NULL;
			return 0;
		}
		if (r < 0)
			ts_logf(TS_LOG_ERROR, "store", NULL, "%s", ts_store_open_error());
		return r;
	}
	r = ts_store_open(state_dir, &p->store, &holder);
	if (r == -EBUSY)
		ts_logf(TS_LOG_ERROR, "store", NULL,
			"state directory %s is in use by another agent (pid %d)", state_dir,
			(int)holder);
	else if (r < 0)
		ts_logf(TS_LOG_ERROR, "store", NULL, "%s", ts_store_open_error());
	return r;
}

int ts_planes_open_real(const struct ts_desired *desired, const struct ts_agent_options *options,
			const char *state_dir, struct ts_planes *ret)
{
	struct real_planes *p;
	struct ts_cf_error err = { 0 };
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->desired = desired;
	p->account = desired->cloudflare.account_id;
	r = open_store(p, options, state_dir);
	if (r < 0)
		goto fail;

	r = ts_cf_client_new(&desired->cloudflare, options->cf_options, &p->cf, &err);
	if (r < 0) {
		ts_cf_error_format(&err, p->cf_error, sizeof(p->cf_error));
		ts_logf(TS_LOG_ERROR, "cloudflare", NULL, "cannot set up the API client: %s",
			p->cf_error);
		p->cf = NULL;
	}
	ts_cf_error_done(&err);

	r = ts_ike_monitor_new(&p->monitor);
	if (r < 0)
		goto fail;
	r = ts_vici_client_new(desired->agent.vici_socket, VICI_TIMEOUT_MS, &p->vici);
	if (r < 0)
		goto fail;
	/* No "log" here: ike_follow_log adds it only while needed. */
	r = ts_vici_events_new(desired->agent.vici_socket, ts_vici_state_events,
			       TS_ARRAY_SIZE(ts_vici_state_events), VICI_TIMEOUT_MS, &p->events);
	if (r < 0)
		p->events = NULL;

	if (desired->agent.kernel_xfrm) {
		r = ts_xfrm_sock_open(&p->xfrm);
		if (r < 0) {
			ts_logf(TS_LOG_WARN, "kernel", NULL,
				"cannot open an XFRM netlink socket: %s", strerror(-r));
			p->xfrm = NULL;
		}
		/* Subscribed now, before any pass dumps: no change is missed. */
		if (p->xfrm && options->watch && (r = ts_xfrm_watch_open(0, &p->watch)) < 0) {
			ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot watch XFRM events: %s",
				strerror(-r));
			p->watch = NULL;
		}
	}
	r = build_owner(p);
	if (r < 0)
		goto fail;
	*ret = (struct ts_planes){ &real_ops, p, real_free };
	return 0;
fail:
	real_free(p);
	return r;
}

void ts_planes_close(struct ts_planes *planes)
{
	if (!planes)
		return;
	if (planes->free)
		planes->free(planes->ctx);
	memset(planes, 0, sizeof(*planes));
}
