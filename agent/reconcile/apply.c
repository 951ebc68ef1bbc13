/* Apply: walks the plan's phases in the order the planner gave them
 * (model/plan.h: removals, interfaces and routes, resumes, config loads,
 * rotations, SAs, reports)
 * and writes one outcome per action. Rotations are gathered through their
 * phases and run together at its end, through the journal protocol
 * (rotation.c). Every action is logged once, here or in rotation.c, with
 * its tunnel and plane; the adapters stay quiet. */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "core/crashpoint.h"
#include "core/log.h"
#include "core/secret.h"
#include "reconcile/rotation.h"
#include "reconcile/wait.h"
#include "xfrm/xfrm.h"

/* --- dry run ---------------------------------------------------------------- */

static void dry_run(struct ts_agent *a, const struct ts_plan *plan,
		    struct ts_action_outcome *outcomes)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_cf_psk_entry *entries = calloc(plan->n_actions + 1, sizeof(*entries));
	struct ts_secret **keys = calloc(plan->n_actions + 1, sizeof(*keys));
	size_t n = 0;

	for (size_t i = 0; i < plan->n_actions; i++)
		if (plan->actions[i].apply)
			outcomes[i].status = TS_OUTCOME_PENDING;
	if (!entries || !keys) {
		free(entries);
		free(keys);
		return;
	}

	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
		struct ts_cf_error err = { 0 };

		if (act->apply && t && act->kind == TS_ACTION_UPDATE_TUNNEL &&
		    ops->cf_update_tunnel) {
			struct ts_cf_tunnel got = { 0 };

			/* Cloudflare checks the update and keeps nothing. */
			int r = ops->cf_update_tunnel(ctx, t, true, &got, &err);

			if (r < 0 && r != -ENOTCONN)
				ts_agent_cf_failed(a, t->name, "tunnel update (validate only)",
						   &err, NULL);
			ts_cf_tunnel_done(&got);
			ts_cf_error_done(&err);
			continue;
		}
		if (!act->apply || !t ||
		    (act->kind != TS_ACTION_ROTATE && act->kind != TS_ACTION_RESUME))
			continue;
		if (t->psk.source == TS_PSK_SOURCE_GENERATE) {
			struct ts_cf_psk_generated gen = { 0 };

			int r = ops->cf_psk_generate(ctx, t->id, true, &gen, &err);

			if (r < 0 && r != -ENOTCONN)
				ts_agent_cf_failed(a, t->name, "psk_generate (validate only)", &err,
						   NULL);
			ts_cf_psk_generated_done(&gen);
		} else if (ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &keys[n]) == 0) {
			/* A throwaway key: validate_only never stores it. */
			entries[n] = (struct ts_cf_psk_entry){ t->id, keys[n] };
			n++;
		}
		ts_cf_error_done(&err);
	}
	/* In the batches the real pass would send. */
	for (size_t off = 0, batch = a->desired->agent.rotation_bulk_batch_size
					     ? a->desired->agent.rotation_bulk_batch_size
					     : TS_ROTATION_BULK_BATCH_DEFAULT;
	     off < n; off += batch) {
		size_t m = n - off < batch ? n - off : batch;
		struct ts_cf_psk_set_result out = { 0 };
		struct ts_cf_error err = { 0 };
		int r = ops->cf_psk_set(ctx, entries + off, m, true, &out, &err);

		if (r < 0 && r != -ENOTCONN)
			ts_agent_cf_failed(a, NULL, "bulk PSK set (validate only)", &err, NULL);
		else if (r == 0)
			ts_logf(TS_LOG_INFO, "cloudflare", NULL,
				"validate only: Cloudflare would accept %zu of %zu keys",
				out.n_applied, m);
		ts_cf_psk_set_result_done(&out);
		ts_cf_error_done(&err);
	}
	for (size_t i = 0; i < n; i++)
		ts_secret_free(keys[i]);
	free(keys);
	free(entries);
}

/* --- one action ------------------------------------------------------------ */

static int apply_simple(struct ts_agent *a, const struct ts_observation *o,
			const struct ts_action *act, struct ts_action_outcome *out)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
	const struct ts_stale_object *st =
		act->stale_index != TS_PLAN_NO_OBJECT && act->stale_index < o->n_stale
			? &o->stale[act->stale_index]
			: NULL;
	char err[256] = "";
	int r = -EINVAL;

	switch (act->kind) {
	case TS_ACTION_UNLOAD_CONN:
		if (st)
			r = ops->ike_unload_conn(ctx, st->object, err, sizeof(err));
		/* What it was loaded with is of no use any more. */
		if (r == 0 && st->tunnel[0] && ops->conn_record_remove &&
		    ops->conn_record_remove(ctx, st->tunnel) < 0)
			ts_logf(TS_LOG_WARN, "store", st->tunnel,
				"cannot remove the connection record (harmless)");
		break;
	case TS_ACTION_UNLOAD_KEY:
		if (st)
			r = ops->ike_unload_key(ctx, st->object, err, sizeof(err));
		break;
	case TS_ACTION_DELETE_SA:
	case TS_ACTION_DELETE_POLICY:
		if (!st || !o->match.stale_valid ||
		    o->stale_ref[act->stale_index] >= o->match.n_stale)
			break;
		r = ops->kernel_delete(ctx, &o->match.stale[o->stale_ref[act->stale_index]]);
		if (r == -ENOENT)
			r = 0; /* gone already */
		break;
	case TS_ACTION_LOAD_CONN:
		if (t)
			r = ops->ike_load_conn(ctx, t, err, sizeof(err));
		if (r == 0)
			ts_agent_record_conn(a, t); /* its SAs will be made from it */
		break;
	case TS_ACTION_UPDATE_TUNNEL: {
		struct ts_cf_tunnel got = { 0 };
		struct ts_cf_error cerr = { 0 };

		if (!t || !ops->cf_update_tunnel)
			break;
		r = ops->cf_update_tunnel(ctx, t, false, &got, &cerr);
		ts_cf_tunnel_done(&got);
		if (r < 0) {
			ts_agent_cf_failed(a, t->name, "tunnel update", &cerr, out);
			ts_cf_error_done(&cerr);
			return r;
		}
		ts_cf_error_done(&cerr);
		break;
	}
	case TS_ACTION_LOAD_KEY: {
		const struct ts_key_record *rec =
			o->store ? ts_store_state_record(o->store, act->tunnel) : NULL;

		if (t && rec && rec->key)
			r = ops->ike_load_key(ctx, t, rec->key, err, sizeof(err));
		break;
	}
	default: /* initiates and reauths: request_sa() */
		break;
	}
	if (r < 0) {
		const char *why = err[0] ? err : strerror(-r);

		ts_logf(TS_LOG_WARN, ts_plane_to_string(act->plane),
			act->tunnel[0] ? act->tunnel : NULL, "%s failed: %s",
			ts_plan_action_kind_to_string(act->kind), why);
		ts_outcome_set(out, TS_OUTCOME_FAILED, "%s failed: %s",
			       ts_plan_action_kind_to_string(act->kind), why);
	} else {
		ts_logf(TS_LOG_INFO, ts_plane_to_string(act->plane),
			act->tunnel[0] ? act->tunnel : NULL, "%s: done (%s)",
			ts_plan_action_kind_to_string(act->kind), act->reason);
		out->status = TS_OUTCOME_APPLIED;
	}
	return r;
}

/* --- the plan ------------------------------------------------------------ */

/* Whether a rotation of this pass already brought the tunnel up. */
static bool rotated(const struct ts_rotation *rots, size_t n, const char *tunnel)
{
	for (size_t k = 0; k < n; k++)
		if (rots[k].t && strcmp(rots[k].t->name, tunnel) == 0)
			return true;
	return false;
}

static void run_rotations(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	if (n == 0)
		return;
	/* Stopping: what is journaled at prepared is resumed by the next
	 * start, as after a crash. */
	if (ts_cancel_requested()) {
		for (size_t i = 0; i < n; i++)
			if (rots[i].journaled)
				ts_outcome_set(rots[i].out, TS_OUTCOME_PENDING, "stopping");
		return;
	}
	ts_crash_point("rotate:prepared");
	if (ts_rotation_remote(a, rots, n) < 0) {
		for (size_t i = 0; i < n; i++)
			if (rots[i].journaled) {
				ts_outcome_set(rots[i].out, TS_OUTCOME_FAILED, "out of memory");
				rots[i].journaled = false;
			}
		return;
	}
	ts_rotation_local_request(a, rots, n);
}

/* How long an SA action's new SAs are waited for. An initiate or an
 * update is given TS_INITIATE_WAIT_S at most, as charon's blocking
 * initiate was before the waits ran together. */
static unsigned sa_wait_s(const struct ts_agent *a, enum ts_action_kind kind)
{
	unsigned seconds = a->desired->agent.confirm_timeout;

	if ((kind == TS_ACTION_INITIATE || kind == TS_ACTION_UPDATE_CONN) &&
	    seconds > TS_INITIATE_WAIT_S)
		seconds = TS_INITIATE_WAIT_S;
	return seconds;
}

/* An initiate or a reauth: requested now, confirmed with every other wait
 * of the pass (wait.h). A reauth request returns before the new IKE SA
 * exists, and so does an initiate given a short time: the new IKE SA, its
 * CHILD SA and, with kernel-xfrm, the kernel's ESP pair are what count.
 * Unconfirmed: pending, so that the pass does not say "in sync" while the
 * tunnel is still down. */
static bool request_sa(struct ts_agent *a, const struct ts_observation *o,
		       const struct ts_action *act, const struct ts_tunnel *t,
		       struct ts_action_outcome *out, struct ts_waiter *w)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	bool reauth = act->kind == TS_ACTION_REAUTH;
	char err[256] = "";
	int r;

	if (reauth) {
		/* The new SAs from the current rendering: charon does not list
		 * what a kernel check depends on (marks, mark_in_sa, if_ids), so
		 * a connection loaded by an older agent would look equal and
		 * rebuild the same wrong SAs forever. load-conn leaves SAs be. */
		(void)ops->ike_load_conn(ctx, t, NULL, 0);
		r = ops->ike_reauth(ctx, t, err, sizeof(err));
	} else {
		r = ops->ike_initiate(ctx, t, err, sizeof(err));
	}
	if (r < 0 && !ts_ike_request_detached(r, err) && !(reauth && r == -EIO)) {
		const char *why = err[0] ? err : strerror(-r);

		ts_logf(TS_LOG_WARN, "ike", act->tunnel, "%s failed: %s",
			ts_plan_action_kind_to_string(act->kind), why);
		/* An SA that would not come up is work left, not an error. */
		ts_outcome_set(out, TS_OUTCOME_PENDING, "%s failed: %s",
			       ts_plan_action_kind_to_string(act->kind), why);
		return false;
	}
	/* The corrective action has started (bench-daemon-reaction times it). */
	ts_logf(TS_LOG_INFO, "ike", act->tunnel, "%s: requested",
		ts_plan_action_kind_to_string(act->kind));
	*w = (struct ts_waiter){ t,
				 reauth && o->ike_ok ? o->ike[t - a->desired->tunnels].ike_unique_id
						     : 0,
				 ts_wait_deadline(a, sa_wait_s(a, act->kind)), false, NULL };
	out->status = TS_OUTCOME_PENDING; /* until confirmed */
	return true;
}

/* --- update-conn: the connection reloaded, its new SAs waited for with
 * every other wait of the pass, then the old ones go ------------------------ */

struct update_wait {
	struct ts_ike_update_sas before; /* the SAs the new ones are told from */
	ts_usec_t since; /* new SAs have not come up since (state directory; 0: no) */
};

/* Whether the plan also rotates (or resumes a rotation of) the tunnel. */
static bool rotates(const struct ts_plan *plan, const char *tunnel)
{
	for (size_t i = 0; i < plan->n_actions; i++)
		if (plan->actions[i].apply &&
		    (plan->actions[i].kind == TS_ACTION_ROTATE ||
		     plan->actions[i].kind == TS_ACTION_RESUME) &&
		    strcmp(plan->actions[i].tunnel, tunnel) == 0)
			return true;
	return false;
}

/* r: 0 new SAs up and the old gone (or none needed), -EAGAIN not up (the
 * old SAs carry on with the old config), else the update failed. */
static void update_done(struct ts_agent *a, const struct ts_action *act, const struct ts_tunnel *t,
			const struct update_wait *u, int r, const char *err,
			struct ts_action_outcome *out)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const char *why = err[0] ? err : r < 0 ? strerror(-r) : "";

	if (r != -EAGAIN && u->since && ops->conn_failing_write)
		(void)ops->conn_failing_write(ctx, t->name, 0);
	if (r == -EAGAIN && !u->since && ops->conn_failing_write)
		(void)ops->conn_failing_write(ctx, t->name, ops->now_realtime(ctx));
	if (r == 0) {
		ts_agent_record_conn(a, t); /* the running SAs are made from it */
		ts_logf(TS_LOG_INFO, "ike", t->name, "update-conn: done (%s)", act->reason);
		out->status = TS_OUTCOME_APPLIED;
	} else if (r == -EAGAIN) {
		/* Loaded, but no new SA yet: the old ones carry on with the old
		 * config, the record keeps saying so, and the next pass tries
		 * again. */
		ts_logf(TS_LOG_WARN, "ike", t->name,
			"update-conn: loaded, new SAs not up (%s); old SAs kept",
			why[0] ? why : "no reason");
		ts_outcome_set(out, TS_OUTCOME_PENDING, "connection loaded, new SAs not up: %s",
			       why);
	} else {
		ts_logf(TS_LOG_WARN, "ike", t->name, "update-conn failed: %s", why);
		ts_outcome_set(out, TS_OUTCOME_FAILED, "update-conn failed: %s", why);
	}
}

/* What charon shows of the new SAs an earlier pass asked for at since;
 * *ret_up: the IKE SA that came up since. update-conn's new IKE SA is no
 * reauthentication: the old IKE SAs stay beside it until
 * ts_ike_update_finish. An IKE SA established since with none beside it
 * replaced the old one (an IKE rekey or charon's own reauthentication:
 * the old config) and is not taken for the update's. */
static enum ts_earlier earlier_seen(struct ts_agent *a, const struct ts_tunnel *t, ts_usec_t since,
				    uint32_t *ret_up)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_ike_observed io = { 0 };
	enum ts_earlier seen = TS_EARLIER_NONE;

	if (ops->ike_observe(ctx, t, 1, &io) == 0)
		seen = ts_earlier_seen(&io, ops->now_realtime(ctx), since);
	if (seen == TS_EARLIER_CAME_UP && io.n_ike_sas < 2)
		seen = io.n_ike_answered     ? TS_EARLIER_UNDER_WAY
		       : io.n_ike_unanswered ? TS_EARLIER_UNANSWERED
					     : TS_EARLIER_NONE;
	*ret_up = io.ike_unique_id;
	ts_ike_observed_done(&io);
	return seen;
}

/* The IKE SA that came up since (and its CHILD SAs) out of the SAs the
 * new ones are told from: its CHILD SA confirms the update. */
static void forget_ike(struct ts_ike_update_sas *before, uint32_t id)
{
	size_t k = 0;

	for (size_t i = 0; i < before->n_ike; i++)
		if (before->ike[i] != id)
			before->ike[k++] = before->ike[i];
	before->n_ike = k;
	k = 0;
	for (size_t i = 0; i < before->n_child; i++)
		if (before->child[i].ike != id)
			before->child[k++] = before->child[i];
	before->n_child = k;
}

/* Loads the changed connection and requests its new SAs (none blocks).
 * True: waited for with the others (w), then update_outcome(). */
static bool request_update(struct ts_agent *a, const struct ts_observation *o,
			   const struct ts_plan *plan, const struct ts_action *act,
			   const struct ts_tunnel *t, struct ts_action_outcome *out,
			   struct update_wait *u, struct ts_waiter *w)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_key_record *rec =
		o->store ? ts_store_state_record(o->store, act->tunnel) : NULL;
	enum ts_earlier_verdict v = TS_EARLIER_ASK;
	ts_usec_t since = 0;
	uint32_t up = 0;
	bool key, again, waits, running, later = false;
	char err[256] = "";
	int r;

	if (!ops->ike_update_conn) {
		ts_outcome_set(out, TS_OUTCOME_FAILED, "update-conn: not supported");
		return false;
	}
	/* Never a new key: at most the current one again, for the new
	 * identities it belongs to. */
	ts_ike_update_needs(&act->changes, &key, &again);
	/* A rotation of this pass reauthenticates the tunnel, and a reauth
	 * keeps the config the SAs were made from: the new SAs wait for the
	 * next pass (the record still names the old config). */
	if (again && rotates(plan, t->name)) {
		again = false;
		later = true;
	}
	if (!ops->conn_failing_read || ops->conn_failing_read(ctx, t->name, &since) < 0)
		since = 0;
	/* New SAs beside the old ones have not come up in an earlier pass:
	 * the same rule as a resumed rotation's reauthentication (wait.h) —
	 * an answered one is waited for, a refused one (a peer that refuses
	 * a second IKE SA with the same identities) breaks before it makes. */
	if (again && since)
		v = ts_earlier_decide(a, t->name, "update-conn's request for new SAs",
				      earlier_seen(a, t, since, &up), since, true);
	waits = v == TS_EARLIER_WAIT || v == TS_EARLIER_CONFIRM;
	u->since = since;
	r = ops->ike_update_conn(ctx, t, key && rec ? rec->key : NULL, again && !waits,
				 v == TS_EARLIER_BREAK, &u->before, err, sizeof(err));
	/* Waiting: loaded only, the earlier request's SAs confirmed as new. */
	running = u->before.n_ike > 0;
	if (r == 0 && v == TS_EARLIER_CONFIRM)
		forget_ike(&u->before, up);
	if (r == 1 || (r == 0 && waits && running)) {
		*w = (struct ts_waiter){ t, 0, ts_wait_deadline(a, sa_wait_s(a, act->kind)), false,
					 &u->before };
		out->status = TS_OUTCOME_PENDING; /* until confirmed */
		return true;
	}
	if (r == 0 && later) {
		ts_logf(TS_LOG_INFO, "ike", t->name,
			"update-conn: loaded; new SAs from it in the next pass (rotating now)");
		ts_outcome_set(out, TS_OUTCOME_PENDING,
			       "connection loaded, new SAs after the rotation");
		return false;
	}
	update_done(a, act, t, u, r, err, out);
	return false;
}

static void update_outcome(struct ts_agent *a, const struct ts_action *act,
			   const struct ts_waiter *w, const struct update_wait *u,
			   struct ts_action_outcome *out)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	char err[256] = "";
	int r;

	if (!w->up) {
		snprintf(err, sizeof(err), "not up within %u s", sa_wait_s(a, act->kind));
		r = -EAGAIN;
	} else if (ops->ike_update_finish) {
		r = ops->ike_update_finish(TS_PLANES_CTX(a), w->t, &u->before, err, sizeof(err));
	} else {
		r = 0;
	}
	update_done(a, act, w->t, u, r, err, out);
}

static void sa_outcome(struct ts_agent *a, const struct ts_action *act, const struct ts_waiter *w,
		       struct ts_action_outcome *out)
{
	unsigned seconds = sa_wait_s(a, act->kind);

	if (w->up) {
		ts_logf(TS_LOG_INFO, ts_plane_to_string(act->plane), act->tunnel, "%s: done (%s)",
			ts_plan_action_kind_to_string(act->kind), act->reason);
		out->status = TS_OUTCOME_APPLIED;
		return;
	}
	ts_logf(TS_LOG_WARN, "ike", act->tunnel, "%s requested, but not up within %u s",
		ts_plan_action_kind_to_string(act->kind), seconds);
	ts_outcome_set(out, TS_OUTCOME_PENDING, "not confirmed up within %u s after the %s",
		       seconds, ts_plan_action_kind_to_string(act->kind));
}

/* Every wait of the pass at once: the rotations' and the SA actions'. */
static void wait_all(struct ts_agent *a, const struct ts_plan *plan, struct ts_rotation *rots,
		     size_t n_rots, struct ts_waiter *sa_waits, const bool *sa_waiting,
		     const struct update_wait *updates, struct ts_action_outcome *outcomes)
{
	struct ts_waiter **all = calloc(n_rots + plan->n_actions + 1, sizeof(*all));
	size_t n = 0;

	if (!all)
		return; /* nothing confirmed: everything stays pending */
	for (size_t i = 0; i < n_rots; i++)
		if (rots[i].waiting)
			all[n++] = &rots[i].wait;
	for (size_t i = 0; i < plan->n_actions; i++)
		if (sa_waiting[i])
			all[n++] = &sa_waits[i];
	if (n)
		ts_wait_up(a, all, n);
	free(all);
	ts_rotation_local_finish(a, rots, n_rots);
	for (size_t i = 0; i < plan->n_actions; i++) {
		if (!sa_waiting[i])
			continue;
		if (plan->actions[i].kind == TS_ACTION_UPDATE_CONN)
			update_outcome(a, &plan->actions[i], &sa_waits[i], &updates[i],
				       &outcomes[i]);
		else
			sa_outcome(a, &plan->actions[i], &sa_waits[i], &outcomes[i]);
	}
}

static void count_outcomes(const struct ts_plan *plan, struct ts_pass_result *res)
{
	for (size_t i = 0; i < plan->n_actions; i++) {
		switch (res->outcomes[i].status) {
		case TS_OUTCOME_APPLIED:
			res->n_applied++;
			break;
		case TS_OUTCOME_PENDING:
			res->n_pending++;
			break;
		case TS_OUTCOME_FAILED:
			res->n_failed++;
			break;
		default:
			break;
		}
	}
}

int ts_agent_apply(struct ts_agent *a, struct ts_observation *o, const struct ts_plan *plan,
		   struct ts_pass_result *res)
{
	struct ts_action_outcome *outcomes;
	struct ts_rotation *rots;
	struct ts_waiter *sa_waits;  /* by action: an initiate, reauth or update requested */
	struct update_wait *updates; /* by action: update-conn */
	bool *sa_waiting;
	size_t n_rots = 0;
	enum ts_plan_phase phase = TS_PHASE_REMOVE;

	outcomes = calloc(plan->n_actions + 1, sizeof(*outcomes));
	if (!outcomes)
		return -ENOMEM;
	res->outcomes = outcomes;
	if (plan->suspended) {
		ts_logf(TS_LOG_INFO, NULL, NULL, "suspended: %zu actions planned, none applied",
			plan->n_actions);
		return 0;
	}
	if (a->options.dry_run) {
		dry_run(a, plan, outcomes);
		count_outcomes(plan, res);
		return 0;
	}
	rots = calloc(plan->n_actions + 1, sizeof(*rots));
	sa_waits = calloc(plan->n_actions + 1, sizeof(*sa_waits));
	sa_waiting = calloc(plan->n_actions + 1, sizeof(*sa_waiting));
	updates = calloc(plan->n_actions + 1, sizeof(*updates));
	if (!rots || !sa_waits || !sa_waiting || !updates) {
		free(rots);
		free(sa_waits);
		free(sa_waiting);
		free(updates);
		return -ENOMEM;
	}

	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		const struct ts_tunnel *t = ts_desired_find(a->desired, act->tunnel);
		enum ts_plan_phase p = ts_plan_action_phase(act);
		struct ts_action_outcome *out = &outcomes[i];

		/* The rotation phases end here: their journal protocol runs
		 * before any SA is touched. */
		if (phase <= TS_PHASE_ROTATE_GENERATE && p > TS_PHASE_ROTATE_GENERATE)
			run_rotations(a, rots, n_rots);
		phase = p;

		/* Stopping (SIGTERM): between actions is a safe step. */
		if (act->apply && ts_cancel_requested() && act->kind != TS_ACTION_ROTATE &&
		    act->kind != TS_ACTION_RESUME) {
			ts_outcome_set(out, TS_OUTCOME_PENDING, "stopping");
			continue;
		}
		/* The daemon: drift events since the observation are acted on
		 * now (a nested scope), and this plan, older, does not act on
		 * their tunnels any more (the owned interfaces and routes are
		 * not a scope's: those stay). */
		if (act->apply) {
			ts_agent_yield(a, "between actions");
			if (!ts_action_is_traffic(act) && ts_agent_superseded(a, act->tunnel)) {
				ts_logf(TS_LOG_DEBUG, ts_plane_to_string(act->plane), act->tunnel,
					"%s: not applied: planned again from a newer observation",
					ts_plan_action_kind_to_string(act->kind));
				continue;
			}
			ts_agent_acted(a, act->tunnel,
				       act->kind == TS_ACTION_ROTATE ||
					       act->kind == TS_ACTION_RESUME ||
					       act->kind == TS_ACTION_UPDATE_TUNNEL);
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
			out->status = TS_OUTCOME_PENDING;
			continue;
		}
		if (!act->apply)
			continue;
		if (act->kind == TS_ACTION_RESUME || act->kind == TS_ACTION_ROTATE) {
			struct ts_rotation *rot = &rots[n_rots];

			if (!t) {
				if (act->kind == TS_ACTION_RESUME)
					out->status = TS_OUTCOME_FAILED;
				continue;
			}
			rot->t = t;
			rot->out = out;
			if (act->kind == TS_ACTION_RESUME) {
				if (ts_rotation_resume(a, o, rot) < 0) {
					out->status = TS_OUTCOME_FAILED;
					ts_rotation_done(rot);
					memset(rot, 0, sizeof(*rot));
					continue;
				}
				ts_logf(TS_LOG_INFO, "store", t->name,
					"resuming rotation at step %s",
					ts_journal_step_to_string(rot->e.step));
			} else {
				ts_logf(TS_LOG_INFO, "cloudflare", t->name,
					"rotating the key (%s, source %s)", act->reason,
					ts_psk_source_to_string(t->psk.source));
				if (ts_rotation_begin(a, o, rot) < 0) {
					if (!out->detail[0])
						ts_outcome_set(out, TS_OUTCOME_FAILED,
							       "cannot start the rotation");
					out->status = TS_OUTCOME_FAILED;
					ts_rotation_done(rot);
					memset(rot, 0, sizeof(*rot));
					continue;
				}
			}
			n_rots++;
			continue;
		}
		if (act->kind == TS_ACTION_INITIATE || act->kind == TS_ACTION_REAUTH) {
			if (rotated(rots, n_rots, act->tunnel) || !t)
				continue; /* the rotation brings it up (or says why not) */
			sa_waiting[i] = request_sa(a, o, act, t, out, &sa_waits[i]);
			continue;
		}
		if (ts_action_is_traffic(act)) {
			(void)ts_agent_apply_traffic(a, act, out);
			continue;
		}
		if (act->kind == TS_ACTION_UPDATE_CONN && t) {
			sa_waiting[i] =
				request_update(a, o, plan, act, t, out, &updates[i], &sa_waits[i]);
			continue;
		}
		(void)apply_simple(a, o, act, out);
	}
	if (phase <= TS_PHASE_ROTATE_GENERATE)
		run_rotations(a, rots, n_rots);
	wait_all(a, plan, rots, n_rots, sa_waits, sa_waiting, updates, outcomes);
	ts_rotation_adopt_baselines(a, o, rots, n_rots);
	count_outcomes(plan, res);
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];

		if (act->kind != TS_ACTION_ROTATE && act->kind != TS_ACTION_RESUME)
			continue;
		if (outcomes[i].status == TS_OUTCOME_APPLIED)
			ts_agent_count_rotation(a, act->cause, TS_AGENT_ROTATION_COMMITTED);
		else if (outcomes[i].status == TS_OUTCOME_PENDING)
			ts_agent_count_rotation(a, act->cause, TS_AGENT_ROTATION_PENDING);
		else if (outcomes[i].status == TS_OUTCOME_FAILED)
			ts_agent_count_rotation(a, act->cause, TS_AGENT_ROTATION_FAILED);
	}
	for (size_t i = 0; i < n_rots; i++)
		ts_rotation_done(&rots[i]);
	free(rots);
	free(sa_waits);
	free(sa_waiting);
	free(updates);
	return 0;
}
