/* The rotation protocol over the planes: journal, Cloudflare, IKE daemon,
 * commit (reconcile/agent.h has the steps and crash points). */
#include "reconcile/rotation.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "core/crashpoint.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/secret.h"
#include "xfrm/xfrm.h"

#define CONFIRM_POLL_MS 250

void ts_outcome_set(struct ts_action_outcome *out, enum ts_outcome status, const char *fmt, ...)
{
	va_list ap;

	if (!out)
		return;
	out->status = status;
	if (!fmt)
		return;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
}

void ts_agent_cf_failed(struct ts_agent *a, const char *tunnel, const char *what,
			const struct ts_cf_error *err, struct ts_action_outcome *out)
{
	char buf[512];

	ts_cf_error_format(err, buf, sizeof(buf));
	ts_logf(TS_LOG_ERROR, "cloudflare", tunnel, "%s failed: %s", what, buf);
	if (out)
		ts_outcome_set(out, TS_OUTCOME_FAILED, "%s failed: %s", what, buf);
	a->api_errors++;
	if (err->kind == TS_CF_ERR_HTTP && err->http_status == 429)
		a->api_429++;
}

void ts_rotation_done(struct ts_rotation *rot)
{
	ts_store_journal_entry_done(&rot->e);
}

/* --- confirmation ---------------------------------------------------------- */

static bool kernel_up(struct ts_agent *a, const struct ts_tunnel *t,
		      const struct ts_ike_observed *io)
{
	struct ts_xfrm_snapshot snap = { 0 };
	struct ts_xfrm_match_result res = { 0 };
	struct ts_xfrm_expect e;
	bool up = false;

	if (!a->desired->agent.kernel_xfrm)
		return true;
	ts_agent_fill_expect(t, io, &e);
	if (TS_PLANES(a)->kernel_match(TS_PLANES_CTX(a), &e, 1, &snap, &res) == 0 &&
	    res.n_tunnels == 1)
		up = res.tunnels[0].sa_in_alive && res.tunnels[0].sa_out_alive;
	ts_xfrm_match_result_done(&res);
	ts_xfrm_snapshot_done(&snap);
	return up;
}

int ts_confirm_up(struct ts_agent *a, const struct ts_tunnel *t, uint32_t old_id)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	ts_usec_t deadline = ops->now_monotonic(ctx) +
			     (ts_usec_t)a->desired->agent.confirm_timeout * TS_USEC_PER_SEC;

	for (;;) {
		struct ts_ike_observed io = { 0 };
		bool ok;
		int r = ops->ike_observe(ctx, t, 1, &io);

		ok = r == 0 && io.ike_state == TS_IKE_SA_ESTABLISHED &&
		     (old_id == 0 || io.ike_unique_id != old_id) && ts_agent_installed_child(&io) &&
		     kernel_up(a, t, &io);
		ts_ike_observed_done(&io);
		if (ok)
			return 0;
		/* Stopping: unconfirmed is pending (the journal keeps the step). */
		if (ops->now_monotonic(ctx) >= deadline || ts_cancel_requested())
			return -ETIMEDOUT;
		ops->wait(ctx, CONFIRM_POLL_MS);
	}
}

/* --- step 1 ------------------------------------------------------------------ */

int ts_rotation_begin(struct ts_agent *a, const struct ts_observation *o, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	const struct ts_tunnel *t = rot->t;
	const struct ts_key_record *rec =
		o->store ? ts_store_state_record(o->store, t->name) : NULL;
	struct ts_journal_entry *e = &rot->e;
	int r;

	memset(e, 0, sizeof(*e));
	snprintf(e->tunnel, sizeof(e->tunnel), "%s", t->name);
	snprintf(e->tunnel_id, sizeof(e->tunnel_id), "%s", t->id);
	e->step = TS_JOURNAL_PREPARED;
	e->source = t->psk.source;
	e->started_at = ops->now_realtime(TS_PLANES_CTX(a));
	e->attempt = 1;
	e->generation = rec ? rec->generation + 1 : 1;
	if (rec)
		snprintf(e->old_fingerprint, sizeof(e->old_fingerprint), "%s", rec->fingerprint);
	if (e->source == TS_PSK_SOURCE_RANDOM) {
		r = ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &e->new_key);
	} else if (e->source == TS_PSK_SOURCE_FILE) {
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
	r = ops->store_begin(TS_PLANES_CTX(a), e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal the rotation: %s (%s)",
			strerror(-r), ops->store_error(TS_PLANES_CTX(a)));
		return r;
	}
	rot->journaled = true;
	return 0;
}

int ts_rotation_resume(struct ts_agent *a, const struct ts_observation *o, struct ts_rotation *rot)
{
	const struct ts_journal_entry *j =
		o->store ? ts_store_state_journal(o->store, rot->t->name) : NULL;

	(void)a;
	if (!j)
		return -ENOENT;
	rot->e = *j;
	rot->e.new_key = j->new_key ? ts_secret_dup(j->new_key) : NULL;
	if (j->new_key && !rot->e.new_key)
		return -ENOMEM;
	rot->journaled = true;
	rot->resumed = true;
	return 0;
}

/* --- step 2 ------------------------------------------------------------------ */

/* The bulk set for every random/file rotation (fresh or resumed at
 * prepared) in one call; entries Cloudflare applied move to remote, the
 * others are dropped (fresh) or stay prepared (resumed: resent next pass). */
static int remote_bulk(struct ts_agent *a, struct ts_rotation **rots, size_t n)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
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
		entries[i] = (struct ts_cf_psk_entry){ rots[i]->t->id, rots[i]->e.new_key };
	r = ops->cf_psk_set(ctx, entries, n, false, &out, &err);
	free(entries);
	if (r < 0) {
		/* Unknown or refused: the journal keeps each key at prepared, and
		 * resending the same key is harmless. */
		ts_agent_cf_failed(a, NULL, "bulk PSK set", &err, NULL);
		for (size_t i = 0; i < n; i++) {
			ts_outcome_set(rots[i]->out, TS_OUTCOME_FAILED, "bulk PSK set failed: %s",
				       ts_cf_error_kind_to_string(err.kind));
			rots[i]->journaled = false; /* nothing more this pass */
		}
		ts_cf_error_done(&err);
		return 0;
	}
	ts_cf_error_done(&err);
	ts_crash_point("rotate:remote-sent");
	for (size_t i = 0; i < n && i < out.n_outcomes; i++) {
		const struct ts_cf_psk_outcome *oc = &out.outcomes[i];
		struct ts_rotation *rot = rots[i];

		if (oc->status != TS_CF_PSK_APPLIED) {
			ts_logf(TS_LOG_WARN, "cloudflare", rot->t->name,
				"key %s not applied by Cloudflare: %s", rot->e.new_fingerprint,
				oc->reason ? oc->reason : ts_cf_psk_status_to_string(oc->status));
			ts_outcome_set(rot->out, TS_OUTCOME_PENDING,
				       "not applied by Cloudflare: %s",
				       oc->reason ? oc->reason : "no reason given");
			if (rot->e.attempt == 1 && rot->e.step == TS_JOURNAL_PREPARED)
				(void)ops->store_discard(ctx, rot->t->name);
			rot->journaled = false;
			continue;
		}
		rot->e.step = TS_JOURNAL_REMOTE;
		rot->e.last_generated_on = oc->has_last_generated_on ? oc->last_generated_on : 0;
		r = ops->store_advance(ctx, &rot->e);
		if (r < 0) {
			ts_logf(TS_LOG_ERROR, "store", rot->t->name,
				"cannot journal step remote: %s", strerror(-r));
			ts_outcome_set(rot->out, TS_OUTCOME_FAILED, NULL);
			rot->journaled = false;
			continue;
		}
		ts_logf(TS_LOG_INFO, "cloudflare", rot->t->name, "new key %s set",
			rot->e.new_fingerprint);
	}
	ts_crash_point("rotate:remote");
	ts_cf_psk_set_result_done(&out);
	return 0;
}

static void remote_generate(struct ts_agent *a, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	struct ts_cf_psk_generated gen = { 0 };
	struct ts_cf_error err = { 0 };
	int r;

	r = ops->cf_psk_generate(TS_PLANES_CTX(a), rot->t->id, false, &gen, &err);
	if (r < 0) {
		ts_agent_cf_failed(a, rot->t->name, "psk_generate", &err, rot->out);
		/* Outcome unknown or refused: the journal stays at prepared; the
		 * next pass generates again (a lost key was never known here). */
		ts_cf_error_done(&err);
		rot->journaled = false;
		return;
	}
	ts_cf_error_done(&err);
	ts_crash_point("rotate:remote-sent");
	rot->e.new_key = TS_TAKE_PTR(gen.psk);
	ts_secret_fingerprint(rot->e.new_key, rot->e.new_fingerprint);
	rot->e.step = TS_JOURNAL_REMOTE;
	rot->e.last_generated_on = gen.has_last_generated_on ? gen.last_generated_on : 0;
	ts_cf_psk_generated_done(&gen);
	r = ops->store_advance(TS_PLANES_CTX(a), &rot->e);
	if (r < 0) {
		/* The one window the protocol cannot close (store.h): say it. */
		ts_logf(TS_LOG_ERROR, "store", rot->t->name,
			"Cloudflare generated key %s but it cannot be journaled: %s",
			rot->e.new_fingerprint, strerror(-r));
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, NULL);
		rot->journaled = false;
		return;
	}
	ts_logf(TS_LOG_INFO, "cloudflare", rot->t->name, "Cloudflare generated key %s",
		rot->e.new_fingerprint);
	ts_crash_point("rotate:remote");
}

int ts_rotation_remote(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	struct ts_rotation **bulk = calloc(n + 1, sizeof(*bulk));
	size_t n_bulk = 0;
	int r;

	if (!bulk)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!rots[i].journaled || rots[i].e.step != TS_JOURNAL_PREPARED)
			continue;
		if (rots[i].e.source == TS_PSK_SOURCE_GENERATE)
			remote_generate(a, &rots[i]);
		else
			bulk[n_bulk++] = &rots[i];
	}
	r = remote_bulk(a, bulk, n_bulk);
	free(bulk);
	return r;
}

/* --- steps 3 and 4 ------------------------------------------------------------ */

static int commit(struct ts_agent *a, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const char *name = rot->t->name;
	struct ts_key_record rec = { 0 };
	int r;

	r = ops->store_commit(ctx, name, ops->now_realtime(ctx), &rec);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", name, "cannot commit the rotation: %s (%s)",
			strerror(-r), ops->store_error(ctx));
		return r;
	}
	ts_logf(TS_LOG_INFO, "store", name, "rotation committed: key %s, generation %llu",
		rec.fingerprint, (unsigned long long)rec.generation);
	ts_store_record_done(&rec);
	return 0;
}

/* The journal holds the key Cloudflare has (step remote). */
static int local_step(struct ts_agent *a, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_tunnel *t = rot->t;
	struct ts_ike_observed before = { 0 };
	uint32_t old_id = 0;
	char err[256] = "";
	int r;

	if (ops->ike_observe(ctx, t, 1, &before) == 0 && before.ike_state != TS_IKE_SA_NONE)
		old_id = before.ike_unique_id;
	ts_ike_observed_done(&before);

	r = ops->ike_load(ctx, t, rot->e.new_key, err, sizeof(err));
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "ike", t->name, "cannot load the new key: %s",
			err[0] ? err : strerror(-r));
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot load the new key: %s",
			       err[0] ? err : strerror(-r));
		return r;
	}
	ts_crash_point("rotate:local-loaded");
	if (old_id && ops->ike_reinitiate && ts_agent_reauth_fallback(a, &rot->e)) {
		ts_logf(TS_LOG_WARN, "ike", t->name,
			"the rotation's reauthentication has not come up for %u s (a peer that "
			"refuses overlapping SAs?): break-before-make this time",
			a->desired->agent.confirm_timeout);
		r = ops->ike_reinitiate(ctx, t, err, sizeof(err));
		if (r < 0 && r != -EIO && r != -ETIMEDOUT)
			ts_logf(TS_LOG_WARN, "ike", t->name, "re-initiation failed: %s",
				err[0] ? err : strerror(-r));
	} else if (old_id) {
		r = ops->ike_reauth(ctx, t, err, sizeof(err));
		if (r < 0 && r != -EIO && r != -ETIMEDOUT)
			ts_logf(TS_LOG_WARN, "ike", t->name, "reauthentication request failed: %s",
				err[0] ? err : strerror(-r));
	} else {
		/* No IKE SA to reauthenticate: bring one up with the new key. The
		 * outcome is confirmed below, whatever initiate says. */
		(void)ops->ike_initiate(ctx, t, NULL, 0);
	}
	r = ts_confirm_up(a, t, old_id);
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "ike", t->name,
			"new key %s loaded, but the tunnel is not up within %u s: rotation left "
			"pending at step remote",
			rot->e.new_fingerprint, a->desired->agent.confirm_timeout);
		ts_outcome_set(rot->out, TS_OUTCOME_PENDING,
			       "not confirmed up within %u s after the key change",
			       a->desired->agent.confirm_timeout);
		return r;
	}
	ts_logf(TS_LOG_INFO, "ike", t->name, "up with the new key %s", rot->e.new_fingerprint);
	rot->e.step = TS_JOURNAL_LOCAL;
	r = ops->store_advance(ctx, &rot->e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal step local: %s",
			strerror(-r));
		return r;
	}
	ts_crash_point("rotate:local");
	return commit(a, rot);
}

void ts_rotation_local(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ts_rotation *rot = &rots[i];
		int r;

		if (!rot->journaled)
			continue;
		/* Stopping: between rotations is a safe step; the journal
		 * resumes this one at its step on the next start. */
		if (ts_cancel_requested()) {
			ts_outcome_set(rot->out, TS_OUTCOME_PENDING, "stopping");
			continue;
		}
		if (rot->e.step == TS_JOURNAL_REMOTE) {
			r = local_step(a, rot);
			if (r == -ETIMEDOUT || r == -ENOTCONN || r == -EIO)
				rot->out->status = TS_OUTCOME_PENDING;
			else if (r < 0)
				rot->out->status = TS_OUTCOME_FAILED;
			else
				rot->out->status = TS_OUTCOME_APPLIED;
		} else if (rot->e.step == TS_JOURNAL_LOCAL || rot->e.step == TS_JOURNAL_COMMITTED) {
			rot->out->status =
				commit(a, rot) < 0 ? TS_OUTCOME_FAILED : TS_OUTCOME_APPLIED;
		}
	}
}
