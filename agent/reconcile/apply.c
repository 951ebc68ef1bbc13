/* Apply: carries out a plan through the adapters, with the crash-safe
 * rotation protocol described in reconcile/agent.h. Every action is logged
 * once, here, with its tunnel and plane; the adapters stay quiet. */
#include "reconcile/agent_internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cancel.h"
#include "core/crashpoint.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "xfrm/xfrm.h"

#define IKE_CALL_TIMEOUT_MS 10000
#define CONFIRM_POLL_MS	    250

struct rotation {
	const struct ts_tunnel *t;
	size_t index;		   /* into desired->tunnels */
	struct ts_journal_entry e; /* as journaled; owns e.new_key */
	bool journaled;
	enum ts_plan_cause cause; /* for the metrics */
};

static void rotation_done(struct rotation *r)
{
	ts_store_journal_entry_done(&r->e);
}

static size_t tunnel_index(const struct ts_desired *d, const struct ts_tunnel *t)
{
	return (size_t)(t - d->tunnels);
}

static void note_error(struct ts_agent *a, const char *tunnel, const char *fmt, ...)
	TS_PRINTF(3, 4);
static void note_error(struct ts_agent *a, const char *tunnel, const char *fmt, ...)
{
	struct ts_agent_tunnel_memory *m = tunnel ? ts_agent_memory(a, tunnel) : NULL;
	va_list ap;

	if (!m)
		return;
	va_start(ap, fmt);
	vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
	va_end(ap);
}

static void cf_failed(struct ts_agent *a, const char *tunnel, const char *what,
		      const struct ts_cf_error *err)
{
	char buf[512];

	ts_cf_error_format(err, buf, sizeof(buf));
	ts_logf(TS_LOG_ERROR, "cloudflare", tunnel, "%s failed: %s", what, buf);
	note_error(a, tunnel, "%s failed: %s", what, buf);
	a->api_errors++;
	if (err->kind == TS_CF_ERR_HTTP && err->http_status == 429)
		a->api_429++;
}

/* --- confirmation ---------------------------------------------------------- */

static int observe_one(struct ts_agent *a, const struct ts_tunnel *t, struct ts_ike_observed *io)
{
	ts_agent_drain_events(a);
	return ts_ike_observe(a->vici, t, 1, a->desired->cloudflare.account_id, a->monitor, io);
}

static bool kernel_up(struct ts_agent *a, const struct ts_tunnel *t,
		      const struct ts_ike_observed *io)
{
	struct ts_xfrm_snapshot snap = { 0 };
	struct ts_xfrm_match_result res = { 0 };
	struct ts_xfrm_expect e;
	bool up = false;

	if (!a->desired->agent.kernel_xfrm)
		return true;
	if (!a->xfrm)
		return false;
	ts_agent_fill_expect(t, io, &e);
	if (ts_xfrm_dump(a->xfrm, &snap) == 0 &&
	    ts_xfrm_match(&snap, &e, 1, &a->owner, NULL, 0, &res) == 0 && res.n_tunnels == 1)
		up = res.tunnels[0].sa_in_alive && res.tunnels[0].sa_out_alive;
	ts_xfrm_match_result_done(&res);
	ts_xfrm_snapshot_done(&snap);
	return up;
}

/* Waits until the tunnel has an IKE SA other than old_id (any, when 0) that
 * is established with a CHILD SA installed, and the kernel's ESP pair when
 * the kernel is checked. -ETIMEDOUT after confirm-timeout. */
static int confirm_up(struct ts_agent *a, const struct ts_tunnel *t, uint32_t old_id)
{
	ts_usec_t deadline =
		ts_now_monotonic() + (ts_usec_t)a->desired->agent.confirm_timeout * TS_USEC_PER_SEC;

	for (;;) {
		struct ts_ike_observed io = { 0 };
		bool ok;
		int r = observe_one(a, t, &io);

		ok = r == 0 && io.ike_state == TS_IKE_SA_ESTABLISHED &&
		     (old_id == 0 || io.ike_unique_id != old_id) && ts_agent_installed_child(&io) &&
		     kernel_up(a, t, &io);
		ts_ike_observed_done(&io);
		if (ok)
			return 0;
		if (ts_now_monotonic() >= deadline)
			return -ETIMEDOUT;
		if (a->events && ts_vici_events_fd(a->events) >= 0) {
			struct pollfd p = { ts_vici_events_fd(a->events), POLLIN, 0 };

			(void)poll(&p, 1, CONFIRM_POLL_MS);
		} else {
			struct timespec ts = { 0, CONFIRM_POLL_MS * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
}

/* --- the local step and the commit ---------------------------------------- */

static int rotation_commit(struct ts_agent *a, struct rotation *rot)
{
	const char *name = rot->t->name;
	struct ts_key_record rec = { 0 };
	struct ts_agent_tunnel_memory *m = ts_agent_memory(a, name);
	char conn[TS_IKE_CONN_NAME_MAX];
	int r;

	r = ts_store_journal_commit(a->store, name, ts_now_realtime(), &rec);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", name, "cannot commit the rotation: %s (%s)",
			strerror(-r), ts_store_last_error(a->store));
		return r;
	}
	ts_logf(TS_LOG_INFO, "store", name, "rotation committed: key %s, generation %llu",
		rec.fingerprint, (unsigned long long)rec.generation);
	ts_store_record_done(&rec);
	if (m) {
		m->auth_failures = 0;
		m->auth_failures_base = 0;
		m->last_auth_failure = 0;
		m->last_rotation = ts_now_realtime();
		m->last_error[0] = '\0';
	}
	if (ts_ike_conn_name(rot->t, conn, sizeof(conn)) == 0)
		ts_ike_monitor_reset(a->monitor, conn);
	a->rotations++;
	return 0;
}

/* Step 3 and 4: the journal holds the key Cloudflare has (step remote). */
static int rotation_local(struct ts_agent *a, struct rotation *rot)
{
	const struct ts_tunnel *t = rot->t;
	struct ts_ike_observed before = { 0 };
	uint32_t old_id = 0;
	char err[256] = "";
	int r;

	if (!a->vici)
		return -ENOTCONN;
	if (observe_one(a, t, &before) == 0 && before.ike_state != TS_IKE_SA_NONE)
		old_id = before.ike_unique_id;
	ts_ike_observed_done(&before);

	r = ts_ike_load(a->vici, t, a->desired->cloudflare.account_id, rot->e.new_key, err,
			sizeof(err));
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "ike", t->name, "cannot load the new key: %s",
			err[0] ? err : strerror(-r));
		note_error(a, t->name, "cannot load the new key: %s", err[0] ? err : strerror(-r));
		return r;
	}
	ts_crash_point("rotate:local-loaded");
	if (old_id) {
		r = ts_ike_reauth(a->vici, t, IKE_CALL_TIMEOUT_MS, err, sizeof(err));
		if (r < 0 && r != -EIO && r != -ETIMEDOUT)
			ts_logf(TS_LOG_WARN, "ike", t->name, "reauthentication request failed: %s",
				err[0] ? err : strerror(-r));
	} else {
		/* No IKE SA to reauthenticate: bring one up with the new key. The
		 * outcome is confirmed below, whatever initiate says. */
		char conn[TS_IKE_CONN_NAME_MAX];

		if (ts_ike_conn_name(t, conn, sizeof(conn)) == 0)
			(void)ts_vici_initiate(a->vici, conn, conn, IKE_CALL_TIMEOUT_MS, NULL, 0);
	}
	r = confirm_up(a, t, old_id);
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "ike", t->name,
			"new key %s loaded, but the tunnel is not up within %u s: rotation left "
			"pending at step remote",
			rot->e.new_fingerprint, a->desired->agent.confirm_timeout);
		note_error(a, t->name, "not confirmed up within %u s after the key change",
			   a->desired->agent.confirm_timeout);
		return r;
	}
	ts_logf(TS_LOG_INFO, "ike", t->name, "up with the new key %s", rot->e.new_fingerprint);
	rot->e.step = TS_JOURNAL_LOCAL;
	r = ts_store_journal_advance(a->store, &rot->e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal step local: %s",
			strerror(-r));
		return r;
	}
	ts_crash_point("rotate:local");
	return rotation_commit(a, rot);
}

/* --- the remote step ------------------------------------------------------- */

static int rotation_begin(struct ts_agent *a, struct ts_observation *o, struct rotation *rot,
			  enum ts_psk_source source)
{
	const struct ts_tunnel *t = rot->t;
	const struct ts_key_record *rec =
		o->store ? ts_store_state_record(o->store, t->name) : NULL;
	struct ts_journal_entry *e = &rot->e;
	int r;

	memset(e, 0, sizeof(*e));
	snprintf(e->tunnel, sizeof(e->tunnel), "%s", t->name);
	snprintf(e->tunnel_id, sizeof(e->tunnel_id), "%s", t->id);
	e->step = TS_JOURNAL_PREPARED;
	e->source = source;
	e->started_at = ts_now_realtime();
	e->attempt = 1;
	e->generation = rec ? rec->generation + 1 : 1;
	if (rec)
		snprintf(e->old_fingerprint, sizeof(e->old_fingerprint), "%s", rec->fingerprint);
	if (source == TS_PSK_SOURCE_RANDOM) {
		r = ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &e->new_key);
	} else if (source == TS_PSK_SOURCE_FILE) {
		bool loose = false;

		r = ts_secret_from_file(t->psk.file, &e->new_key, &loose);
		if (r == 0 && loose)
			ts_logf(TS_LOG_WARN, "config", t->name,
				"key file %s is readable by group or others", t->psk.file);
		if (r < 0)
			ts_logf(TS_LOG_ERROR, "config", t->name, "cannot read key file %s: %s",
				t->psk.file, ts_file_strerror(r));
	} else {
		r = 0;
	}
	if (r < 0)
		return r;
	if (e->new_key)
		ts_secret_fingerprint(e->new_key, e->new_fingerprint);
	r = ts_store_journal_begin(a->store, e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal the rotation: %s (%s)",
			strerror(-r), ts_store_last_error(a->store));
		return r;
	}
	rot->journaled = true;
	return 0;
}

/* The bulk set for every random/file rotation (fresh or resumed at
 * prepared) in one call; entries Cloudflare applied move to remote, the
 * others are dropped (fresh) or stay prepared (resumed: resent next pass). */
static int rotation_bulk_remote(struct ts_agent *a, struct rotation *rots, size_t n,
				struct ts_pass_result *res)
{
	struct ts_cf_psk_entry *entries;
	struct ts_cf_psk_set_result out = { 0 };
	struct ts_cf_error err = { 0 };
	int r;

	if (n == 0)
		return 0;
	entries = calloc(n, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		entries[i] = (struct ts_cf_psk_entry){ rots[i].t->id, rots[i].e.new_key };
	r = a->cf ? ts_cf_psk_set(a->cf, entries, n, false, &out, &err) : -ENOTCONN;
	free(entries);
	if (r < 0) {
		/* Unknown or refused: the journal keeps each key at prepared, and
		 * resending the same key is harmless. */
		cf_failed(a, NULL, "bulk PSK set", &err);
		for (size_t i = 0; i < n; i++)
			note_error(a, rots[i].t->name, "bulk PSK set failed: %s",
				   ts_cf_error_kind_to_string(err.kind));
		ts_cf_error_done(&err);
		res->n_failed += (unsigned)n;
		for (size_t i = 0; i < n; i++)
			rots[i].journaled = false; /* nothing more this pass */
		return 0;
	}
	ts_cf_error_done(&err);
	ts_crash_point("rotate:remote-sent");
	for (size_t i = 0; i < n && i < out.n_outcomes; i++) {
		const struct ts_cf_psk_outcome *oc = &out.outcomes[i];
		struct rotation *rot = &rots[i];

		if (oc->status != TS_CF_PSK_APPLIED) {
			ts_logf(TS_LOG_WARN, "cloudflare", rot->t->name,
				"key %s not applied by Cloudflare: %s", rot->e.new_fingerprint,
				oc->reason ? oc->reason : ts_cf_psk_status_to_string(oc->status));
			note_error(a, rot->t->name, "not applied by Cloudflare: %s",
				   oc->reason ? oc->reason : "no reason given");
			if (rot->e.attempt == 1 && rot->e.step == TS_JOURNAL_PREPARED)
				(void)ts_store_journal_discard(a->store, rot->t->name);
			rot->journaled = false;
			res->n_pending++;
			continue;
		}
		rot->e.step = TS_JOURNAL_REMOTE;
		rot->e.last_generated_on = oc->has_last_generated_on ? oc->last_generated_on : 0;
		r = ts_store_journal_advance(a->store, &rot->e);
		if (r < 0) {
			ts_logf(TS_LOG_ERROR, "store", rot->t->name,
				"cannot journal step remote: %s", strerror(-r));
			rot->journaled = false;
			res->n_failed++;
			continue;
		}
		ts_logf(TS_LOG_INFO, "cloudflare", rot->t->name, "new key %s set",
			rot->e.new_fingerprint);
	}
	ts_crash_point("rotate:remote");
	ts_cf_psk_set_result_done(&out);
	return 0;
}

static int rotation_generate_remote(struct ts_agent *a, struct rotation *rot,
				    struct ts_pass_result *res)
{
	struct ts_cf_psk_generated gen = { 0 };
	struct ts_cf_error err = { 0 };
	int r;

	r = a->cf ? ts_cf_psk_generate(a->cf, rot->t->id, false, &gen, &err) : -ENOTCONN;
	if (r < 0) {
		cf_failed(a, rot->t->name, "psk_generate", &err);
		/* Outcome unknown or refused: the journal stays at prepared; the
		 * next pass generates again (a lost key was never known here). */
		ts_cf_error_done(&err);
		rot->journaled = false;
		res->n_failed++;
		return 0;
	}
	ts_cf_error_done(&err);
	ts_crash_point("rotate:remote-sent");
	rot->e.new_key = TS_TAKE_PTR(gen.psk);
	ts_secret_fingerprint(rot->e.new_key, rot->e.new_fingerprint);
	rot->e.step = TS_JOURNAL_REMOTE;
	rot->e.last_generated_on = gen.has_last_generated_on ? gen.last_generated_on : 0;
	ts_cf_psk_generated_done(&gen);
	r = ts_store_journal_advance(a->store, &rot->e);
	if (r < 0) {
		/* The one window the protocol cannot close (store.h): say it. */
		ts_logf(TS_LOG_ERROR, "store", rot->t->name,
			"Cloudflare generated key %s but it cannot be journaled: %s",
			rot->e.new_fingerprint, strerror(-r));
		rot->journaled = false;
		res->n_failed++;
		return 0;
	}
	ts_logf(TS_LOG_INFO, "cloudflare", rot->t->name, "Cloudflare generated key %s",
		rot->e.new_fingerprint);
	ts_crash_point("rotate:remote");
	return 0;
}

/* --- dry run ---------------------------------------------------------------- */

static void dry_run_rotations(struct ts_agent *a, const struct ts_plan *plan,
			      struct ts_pass_result *res)
{
	struct ts_cf_psk_entry *entries = calloc(plan->n_actions + 1, sizeof(*entries));
	struct ts_secret **keys = calloc(plan->n_actions + 1, sizeof(*keys));
	size_t n = 0;

	if (!entries || !keys) {
		free(entries);
		free(keys);
		res->n_failed++;
		return;
	}

	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
		struct ts_cf_error err = { 0 };

		if (!act->apply || !t ||
		    (act->kind != TS_ACTION_ROTATE && act->kind != TS_ACTION_RESUME))
			continue;
		res->n_pending++;
		if (t->psk.source == TS_PSK_SOURCE_GENERATE) {
			struct ts_cf_psk_generated gen = { 0 };

			if (a->cf && ts_cf_psk_generate(a->cf, t->id, true, &gen, &err) < 0)
				cf_failed(a, t->name, "psk_generate (validate only)", &err);
			ts_cf_psk_generated_done(&gen);
		} else if (ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &keys[n]) == 0) {
			/* A throwaway key: validate_only never stores it. */
			entries[n] = (struct ts_cf_psk_entry){ t->id, keys[n] };
			n++;
		}
		ts_cf_error_done(&err);
	}
	if (n > 0 && a->cf) {
		struct ts_cf_psk_set_result out = { 0 };
		struct ts_cf_error err = { 0 };

		if (ts_cf_psk_set(a->cf, entries, n, true, &out, &err) < 0)
			cf_failed(a, NULL, "bulk PSK set (validate only)", &err);
		else
			ts_logf(TS_LOG_INFO, "cloudflare", NULL,
				"validate only: Cloudflare would accept %zu of %zu keys",
				out.n_applied, n);
		ts_cf_psk_set_result_done(&out);
		ts_cf_error_done(&err);
	}
	for (size_t i = 0; i < n; i++)
		ts_secret_free(keys[i]);
	free(keys);
	free(entries);
}

/* --- other actions ------------------------------------------------------- */

static int apply_simple(struct ts_agent *a, struct ts_observation *o, const struct ts_action *act)
{
	const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
	const char *account = a->desired->cloudflare.account_id;
	const struct ts_stale_object *st =
		act->stale_index != TS_PLAN_NO_OBJECT && act->stale_index < o->n_stale
			? &o->stale[act->stale_index]
			: NULL;
	char err[256] = "", conn[TS_IKE_CONN_NAME_MAX] = "";
	int r = -EINVAL;

	if (t)
		(void)ts_ike_conn_name(t, conn, sizeof(conn));
	switch (act->kind) {
	case TS_ACTION_UNLOAD_CONN:
		if (!st || !a->vici)
			break;
		(void)ts_vici_terminate(a->vici, st->object, IKE_CALL_TIMEOUT_MS, NULL, 0);
		r = ts_vici_unload_conn(a->vici, st->object, err, sizeof(err));
		break;
	case TS_ACTION_UNLOAD_KEY:
		if (!st || !a->vici)
			break;
		r = ts_vici_unload_shared(a->vici, st->object, err, sizeof(err));
		break;
	case TS_ACTION_DELETE_SA:
	case TS_ACTION_DELETE_POLICY: {
		const struct ts_xfrm_stale *x;

		if (!st || !a->xfrm || !o->match.stale_valid ||
		    o->stale_ref[act->stale_index] >= o->match.n_stale)
			break;
		x = &o->match.stale[o->stale_ref[act->stale_index]];
		r = x->kind == TS_XFRM_OBJECT_SA
			    ? ts_xfrm_sa_delete(a->xfrm, &a->owner, &x->sa)
			    : ts_xfrm_policy_delete(a->xfrm, &a->owner, &x->policy);
		if (r == -ENOENT)
			r = 0; /* gone already */
		break;
	}
	case TS_ACTION_LOAD_CONN: {
		_cleanup_vici_ struct ts_vici_node *msg = NULL;

		if (!t || !a->vici)
			break;
		r = ts_ike_render_conn(t, account, &msg);
		if (r == 0)
			r = ts_vici_load_conn(a->vici, msg, err, sizeof(err));
		break;
	}
	case TS_ACTION_LOAD_KEY: {
		_cleanup_vici_ struct ts_vici_node *msg = NULL;
		const struct ts_key_record *rec =
			o->store ? ts_store_state_record(o->store, act->tunnel) : NULL;

		if (!t || !a->vici || !rec || !rec->key)
			break;
		r = ts_ike_render_shared(t, account, rec->key, &msg);
		if (r == 0)
			r = ts_vici_load_shared(a->vici, msg, err, sizeof(err));
		break;
	}
	case TS_ACTION_INITIATE:
		if (!t || !a->vici)
			break;
		r = ts_vici_initiate(a->vici, conn, conn, IKE_CALL_TIMEOUT_MS, err, sizeof(err));
		ts_agent_drain_events(a);
		break;
	case TS_ACTION_REAUTH: {
		_cleanup_vici_ struct ts_vici_node *msg = NULL;

		if (!t || !a->vici)
			break;
		/* The new SAs from the current rendering: charon does not list
		 * what a kernel check depends on (marks, mark_in_sa, if_ids), so
		 * a connection loaded by an older agent would look equal and
		 * rebuild the same wrong SAs forever. load-conn leaves SAs be. */
		if (ts_ike_render_conn(t, account, &msg) == 0)
			(void)ts_vici_load_conn(a->vici, msg, NULL, 0);
		r = ts_ike_reauth(a->vici, t, IKE_CALL_TIMEOUT_MS, err, sizeof(err));
		break;
	}
	default:
		break;
	}
	if (r < 0) {
		const char *why = err[0] ? err : strerror(-r);

		ts_logf(TS_LOG_WARN, ts_plane_to_string(act->plane),
			act->tunnel[0] ? act->tunnel : NULL, "%s failed: %s",
			ts_plan_action_kind_to_string(act->kind), why);
		note_error(a, act->tunnel, "%s failed: %s",
			   ts_plan_action_kind_to_string(act->kind), why);
	} else {
		ts_logf(TS_LOG_INFO, ts_plane_to_string(act->plane),
			act->tunnel[0] ? act->tunnel : NULL, "%s: done (%s)",
			ts_plan_action_kind_to_string(act->kind), act->reason);
	}
	return r;
}

/* --- the plan ------------------------------------------------------------ */

static int resume_entry(struct ts_agent *a, struct ts_observation *o, const struct ts_tunnel *t,
			struct rotation *rot)
{
	const struct ts_journal_entry *j = ts_store_state_journal(o->store, t->name);

	if (!j)
		return -ENOENT;
	rot->t = t;
	rot->index = tunnel_index(a->desired, t);
	rot->e = *j;
	rot->e.new_key = j->new_key ? ts_secret_dup(j->new_key) : NULL;
	if (j->new_key && !rot->e.new_key)
		return -ENOMEM;
	rot->journaled = true;
	return 0;
}

int ts_agent_apply(struct ts_agent *a, struct ts_observation *o, const struct ts_plan *plan,
		   struct ts_pass_result *res)
{
	struct rotation *rots;
	size_t *reauthed; /* plan indexes of the reauths requested, to confirm */
	size_t n_rots = 0, n_bulk = 0, n_reauthed = 0;
	int r = 0;

	if (plan->suspended) {
		ts_logf(TS_LOG_INFO, NULL, NULL, "suspended: %zu actions planned, none applied",
			plan->n_actions);
		return 0;
	}
	if (a->options.dry_run) {
		dry_run_rotations(a, plan, res);
		for (size_t i = 0; i < plan->n_actions; i++)
			if (plan->actions[i].apply && plan->actions[i].kind != TS_ACTION_ROTATE &&
			    plan->actions[i].kind != TS_ACTION_RESUME)
				res->n_pending++;
		return 0;
	}
	rots = calloc(plan->n_actions + 1, sizeof(*rots));
	reauthed = calloc(plan->n_actions + 1, sizeof(*reauthed));
	if (!rots || !reauthed) {
		free(rots);
		free(reauthed);
		return -ENOMEM;
	}

	/* Phases in plan order: removals, resumes, loads; rotations are
	 * collected and run together; initiates and reauths after them. */
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);

		/* Stopping (SIGTERM): between actions is a safe step. */
		if (act->apply && ts_cancel_requested() && act->kind != TS_ACTION_INITIATE &&
		    act->kind != TS_ACTION_REAUTH) {
			res->n_pending++;
			continue;
		}
		if (act->kind == TS_ACTION_REPORT) {
			ts_logf(TS_LOG_WARN, ts_plane_to_string(act->plane),
				act->tunnel[0] ? act->tunnel : NULL, "%s: %s",
				ts_plan_cause_to_string(act->cause), act->reason);
			continue;
		}
		if (act->kind == TS_ACTION_DEFER_ROTATION) {
			ts_logf(TS_LOG_INFO, "store", act->tunnel, "rotation deferred: %s",
				act->reason);
			res->n_pending++;
			continue;
		}
		if (!act->apply)
			continue;
		if (act->kind == TS_ACTION_RESUME) {
			struct rotation *rot = &rots[n_rots];

			if (!t || resume_entry(a, o, t, rot) < 0) {
				res->n_failed++;
				continue;
			}
			rot->cause = TS_CAUSE_JOURNAL;
			n_rots++;
			ts_logf(TS_LOG_INFO, "store", t->name, "resuming rotation at step %s",
				ts_journal_step_to_string(rot->e.step));
			continue;
		}
		if (act->kind == TS_ACTION_ROTATE) {
			struct rotation *rot = &rots[n_rots];

			if (!t)
				continue;
			rot->t = t;
			rot->index = tunnel_index(a->desired, t);
			rot->cause = act->cause;
			ts_logf(TS_LOG_INFO, "cloudflare", t->name,
				"rotating the key (%s, source %s)", act->reason,
				ts_psk_source_to_string(t->psk.source));
			if (rotation_begin(a, o, rot, t->psk.source) < 0) {
				note_error(a, t->name, "cannot start the rotation");
				ts_agent_count_rotation(a, act->cause, TS_AGENT_ROTATION_FAILED);
				res->n_failed++;
				rotation_done(rot);
				memset(rot, 0, sizeof(*rot));
				continue;
			}
			n_rots++;
			continue;
		}
		if (act->kind == TS_ACTION_INITIATE || act->kind == TS_ACTION_REAUTH)
			continue; /* after the rotations */
		if (apply_simple(a, o, act) < 0)
			res->n_failed++;
		else
			res->n_applied++;
	}
	if (n_rots)
		ts_crash_point("rotate:prepared");

	/* Remote: the bulk set for random/file at prepared, generate one by one.
	 * Stopping: what is journaled at prepared is resumed by the next start,
	 * as after a crash. */
	if (ts_cancel_requested()) {
		res->n_pending += (unsigned)n_rots;
		goto out;
	}
	{
		struct rotation *bulk = calloc(n_rots + 1, sizeof(*bulk));
		size_t *where = calloc(n_rots + 1, sizeof(*where));

		if (!bulk || !where) {
			free(bulk);
			free(where);
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n_rots; i++) {
			if (!rots[i].journaled || rots[i].e.step != TS_JOURNAL_PREPARED)
				continue;
			if (rots[i].e.source == TS_PSK_SOURCE_GENERATE) {
				r = rotation_generate_remote(a, &rots[i], res);
				if (r < 0)
					break;
				continue;
			}
			bulk[n_bulk] = rots[i];
			where[n_bulk++] = i;
		}
		if (r == 0)
			r = rotation_bulk_remote(a, bulk, n_bulk, res);
		/* The bulk entries were copied: bring their state back. */
		for (size_t k = 0; k < n_bulk; k++)
			rots[where[k]] = bulk[k];
		free(bulk);
		free(where);
		if (r < 0)
			goto out;
	}

	/* Local and commit, one tunnel at a time. */
	for (size_t i = 0; i < n_rots; i++) {
		struct rotation *rot = &rots[i];

		if (!rot->journaled)
			continue;
		if (ts_cancel_requested()) {
			res->n_pending++;
			continue;
		}
		if (rot->e.step == TS_JOURNAL_REMOTE) {
			r = rotation_local(a, rot);
			ts_agent_count_rotation(a, rot->cause,
						r == -ETIMEDOUT || r == -ENOTCONN || r == -EIO
							? TS_AGENT_ROTATION_PENDING
						: r < 0 ? TS_AGENT_ROTATION_FAILED
							: TS_AGENT_ROTATION_COMMITTED);
			if (r == -ETIMEDOUT || r == -ENOTCONN || r == -EIO)
				res->n_pending++;
			else if (r < 0)
				res->n_failed++;
			else
				res->n_applied++;
		} else if (rot->e.step == TS_JOURNAL_LOCAL || rot->e.step == TS_JOURNAL_COMMITTED) {
			if (rotation_commit(a, rot) < 0)
				res->n_failed++;
			else
				res->n_applied++;
		}
	}
	r = 0;

	/* SAs last: a rotated tunnel came up above; the rest are initiated. */
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		bool rotated = false;

		if (!act->apply ||
		    (act->kind != TS_ACTION_INITIATE && act->kind != TS_ACTION_REAUTH))
			continue;
		if (ts_cancel_requested()) {
			res->n_pending++;
			continue;
		}
		for (size_t k = 0; k < n_rots; k++)
			if (rots[k].t && strcmp(rots[k].t->name, act->tunnel) == 0)
				rotated = true;
		if (rotated)
			continue;
		if (apply_simple(a, o, act) < 0)
			res->n_pending++;
		else if (act->kind == TS_ACTION_REAUTH)
			reauthed[n_reauthed++] = i;
		else
			res->n_applied++;
	}
	/* A reauth request returns before the new IKE SA exists (charon runs
	 * it asynchronously): confirm each one, all requested first, as a key
	 * change is confirmed (the new IKE SA, its CHILD SA and, with
	 * kernel-xfrm, the kernel's ESP pair). Unconfirmed: pending, so that
	 * the pass does not say "in sync" while the tunnel is still down. */
	for (size_t k = 0; k < n_reauthed; k++) {
		const struct ts_action *act = &plan->actions[reauthed[k]];
		const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
		size_t idx = t ? tunnel_index(a->desired, t) : 0;
		uint32_t old_id = t && o->ike_ok ? o->ike[idx].ike_unique_id : 0;

		if (t && confirm_up(a, t, old_id) == 0) {
			res->n_applied++;
			continue;
		}
		ts_logf(TS_LOG_WARN, "ike", act->tunnel, "reauthenticated, but not up within %u s",
			a->desired->agent.confirm_timeout);
		note_error(a, act->tunnel,
			   "not confirmed up within %u s after the reauthentication",
			   a->desired->agent.confirm_timeout);
		res->n_pending++;
	}
out:
	free(reauthed);
	for (size_t i = 0; i < n_rots; i++)
		rotation_done(&rots[i]);
	free(rots);
	return r;
}
