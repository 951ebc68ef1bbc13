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

int ts_confirm_up(struct ts_agent *a, const struct ts_tunnel *t, uint32_t old_id)
{
	struct ts_waiter w = { t, old_id, ts_wait_deadline(a, a->desired->agent.confirm_timeout),
			       false, NULL };
	struct ts_waiter *wp = &w;

	ts_wait_up(a, &wp, 1);
	return w.up ? 0 : -ETIMEDOUT;
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
	if (r < 0) {
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot prepare the new key: %s",
			       strerror(-r));
		rot->out->error = r;
		return r;
	}
	if (e->new_key)
		ts_secret_fingerprint(e->new_key, e->new_fingerprint);
	if (e->source == TS_PSK_SOURCE_FILE && rec &&
	    ts_streq(e->new_fingerprint, rec->fingerprint)) {
		/* Setting the same key again changes nothing but the generation:
		 * only the operator can put a new key into the file. */
		ts_logf(TS_LOG_ERROR, "config", t->name,
			"key file %s holds the current key (%s): write the new key to the file to "
			"rotate",
			t->psk.file, e->new_fingerprint);
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED,
			       "key file %s holds the current key (%s): nothing to rotate to",
			       t->psk.file, e->new_fingerprint);
		rot->out->error = -EALREADY;
		return -EALREADY;
	}
	r = ops->store_begin(TS_PLANES_CTX(a), e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal the rotation: %s (%s)",
			strerror(-r), ops->store_error(TS_PLANES_CTX(a)));
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot journal the rotation: %s",
			       strerror(-r));
		rot->out->error = r;
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

/* Before a resend: the journal counts the attempt, so that an entry that
 * was ever sent is never taken for one that never was. */
static int count_attempt(struct ts_agent *a, struct ts_rotation *rot)
{
	int r;

	rot->e.attempt++;
	r = TS_PLANES(a)->store_advance(TS_PLANES_CTX(a), &rot->e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", rot->t->name,
			"cannot journal attempt %u: %s; key %s not resent", rot->e.attempt,
			strerror(-r), rot->e.new_fingerprint);
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot journal the resend: %s",
			       strerror(-r));
		rot->journaled = false;
	}
	return r;
}

/* The baseline for "regenerated elsewhere" from the write's own answer:
 * Cloudflare's state right after the agent's write, so any regeneration
 * after it shows a later time on a later list (compared at the coarser of
 * the two texts' precisions: plan.c, core/timeutil.h). It is journaled
 * with step remote, in the same write as the key. The schema makes the
 * time optional (psk_metadata.last_generated_on; psk_generate's whole
 * psk_metadata): without it 0, and remote_baseline() lists once after the
 * pass's writes instead. */
static void answer_baseline(struct ts_rotation *rot, bool has, ts_usec_t t, ts_usec_t unit)
{
	rot->e.last_generated_on = has && t > 0 ? t : 0;
	rot->e.last_generated_unit = has && t > 0 ? unit : 0;
}

/* One tunnel's entry of a bulk answer (agent/reconcile/README.md, "The
 * rotation protocol under every answer"). Only an explicit unapplied
 * answer to the only send there ever was proves that Cloudflare did not
 * take the key; everything else keeps the journal (the key is resent). */
static void bulk_outcome(struct ts_agent *a, struct ts_rotation *rot,
			 const struct ts_cf_psk_outcome *oc)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	int r;

	if (!oc || oc->status == TS_CF_PSK_MISSING) {
		ts_logf(TS_LOG_WARN, "cloudflare", rot->t->name,
			"Cloudflare's answer does not say whether it took key %s: kept in the "
			"journal, resent next pass",
			rot->e.new_fingerprint);
		ts_outcome_set(
			rot->out, TS_OUTCOME_PENDING,
			"outcome unknown (tunnel in neither map of the answer): key %s resent "
			"next pass",
			rot->e.new_fingerprint);
		rot->journaled = false;
		return;
	}
	if (oc->status == TS_CF_PSK_UNAPPLIED) {
		const char *why = oc->reason ? oc->reason : "no reason given";

		rot->journaled = false;
		if (!rot->resumed && rot->e.attempt == 1) {
			ts_logf(TS_LOG_WARN, "cloudflare", rot->t->name,
				"key %s not applied by Cloudflare: %s", rot->e.new_fingerprint,
				why);
			ts_outcome_set(rot->out, TS_OUTCOME_PENDING,
				       "not applied by Cloudflare: %s", why);
			(void)ops->store_discard(ctx, rot->t->name);
			return;
		}
		/* An earlier send of this key may have been taken. */
		ts_logf(TS_LOG_WARN, "cloudflare", rot->t->name,
			"resent key %s not applied by Cloudflare (%s); an earlier send may have "
			"been: kept in the journal, resent next pass",
			rot->e.new_fingerprint, why);
		ts_outcome_set(
			rot->out, TS_OUTCOME_PENDING,
			"resend not applied by Cloudflare (%s): key %s kept, resent next pass", why,
			rot->e.new_fingerprint);
		return;
	}
	rot->e.step = TS_JOURNAL_REMOTE;
	answer_baseline(rot, oc->has_last_generated_on, oc->last_generated_on,
			oc->last_generated_unit);
	r = ops->store_advance(ctx, &rot->e);
	if (r < 0) {
		/* Cloudflare has the key, the journal has it at prepared: the
		 * next pass resends it (idempotent) and advances then. */
		ts_logf(TS_LOG_ERROR, "store", rot->t->name, "cannot journal step remote: %s",
			strerror(-r));
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot journal step remote: %s",
			       strerror(-r));
		rot->journaled = false;
		return;
	}
	ts_log_fields(TS_LOG_INFO, "cloudflare", rot->t->name,
		      &(struct ts_log_fields){ .fingerprint = rot->e.new_fingerprint,
					       .generation = rot->e.generation },
		      "new key %s set", rot->e.new_fingerprint);
}

/* The bulk set for every random/file rotation (fresh or resumed at
 * prepared) in one call. */
static int remote_bulk(struct ts_agent *a, struct ts_rotation **rots, size_t n)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_cf_psk_entry *entries;
	struct ts_rotation **sent;
	struct ts_cf_psk_set_result out = { 0 };
	struct ts_cf_error err = { 0 };
	size_t n_sent = 0;
	int r;

	if (n == 0)
		return 0;
	entries = calloc(n, sizeof(*entries));
	sent = calloc(n, sizeof(*sent));
	if (!entries || !sent) {
		free(entries);
		free(sent);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (rots[i]->resumed && count_attempt(a, rots[i]) < 0)
			continue;
		entries[n_sent] = (struct ts_cf_psk_entry){ rots[i]->t->id, rots[i]->e.new_key };
		sent[n_sent++] = rots[i];
	}
	r = n_sent ? ops->cf_psk_set(ctx, entries, n_sent, false, &out, &err) : 0;
	free(entries);
	if (r < 0) {
		/* Unknown or refused: the journal keeps each key at prepared, and
		 * resending the same key is harmless. */
		ts_agent_cf_failed(a, NULL, "bulk PSK set", &err, NULL);
		for (size_t i = 0; i < n_sent; i++) {
			ts_outcome_set(sent[i]->out, TS_OUTCOME_FAILED,
				       "bulk PSK set failed (%s): key %s kept, resent next pass",
				       ts_cf_error_kind_to_string(err.kind),
				       sent[i]->e.new_fingerprint);
			sent[i]->journaled = false; /* nothing more this pass */
		}
		ts_cf_error_done(&err);
		free(sent);
		return 0;
	}
	ts_cf_error_done(&err);
	ts_crash_point("rotate:remote-sent");
	for (size_t i = 0; i < n_sent; i++) {
		const struct ts_cf_psk_outcome *oc = NULL;

		/* By tunnel id, whatever order or subset the answer came in. */
		for (size_t k = 0; k < out.n_outcomes; k++)
			if (strcmp(out.outcomes[k].tunnel_id, sent[i]->t->id) == 0)
				oc = &out.outcomes[k];
		bulk_outcome(a, sent[i], oc);
	}
	ts_crash_point("rotate:remote");
	ts_cf_psk_set_result_done(&out);
	free(sent);
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
	answer_baseline(rot, gen.has_last_generated_on, gen.last_generated_on,
			gen.last_generated_unit);
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

/* The fallback for write answers without a time (answer_baseline): one
 * list after the pass's writes, made only when some rotation at step
 * remote has no baseline yet; its last_generated_on is journaled with
 * each such key and carried into the record by the commit. A regeneration
 * between the write and this list goes unseen (the tunnel then fails
 * authentication: the mismatch path). A list that fails leaves 0, and the
 * baseline is adopted from a later pass's list
 * (ts_rotation_adopt_baselines). */
static void remote_baseline(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	bool wanted = false;
	int r;

	for (size_t i = 0; i < n; i++)
		if (rots[i].journaled && rots[i].e.step >= TS_JOURNAL_REMOTE &&
		    rots[i].e.step < TS_JOURNAL_COMMITTED && !rots[i].e.last_generated_on)
			wanted = true;
	if (!wanted)
		return;
	r = ops->cf_list(ctx, &list, &err);
	if (r >= 0)
		(void)ts_cf_tunnel_list_index(&list); /* else find scans */
	if (r < 0) {
		char buf[512];

		ts_logf(TS_LOG_WARN, "cloudflare", NULL,
			"cannot list the tunnels after the key change (%s): the baseline of "
			"last_generated_on is taken from a later list",
			ts_cf_error_format(&err, buf, sizeof(buf)));
		ts_cf_error_done(&err);
		return;
	}
	ts_cf_error_done(&err);
	for (size_t i = 0; i < n; i++) {
		struct ts_rotation *rot = &rots[i];
		const struct ts_cf_tunnel *ct;

		if (!rot->journaled || rot->e.step < TS_JOURNAL_REMOTE ||
		    rot->e.step >= TS_JOURNAL_COMMITTED || rot->e.last_generated_on)
			continue;
		ct = ts_cf_tunnel_list_find(&list, rot->t->id);
		if (!ct || !ct->has_psk_generated_on || ct->psk_generated_on <= 0)
			continue;
		rot->e.last_generated_on = ct->psk_generated_on;
		rot->e.last_generated_unit = ct->psk_generated_unit;
		if (ops->store_advance(ctx, &rot->e) < 0)
			rot->e.last_generated_on = rot->e.last_generated_unit =
				0; /* adopted later */
	}
	ts_cf_tunnel_list_done(&list);
}

void ts_rotation_adopt_baselines(struct ts_agent *a, const struct ts_observation *o,
				 const struct ts_rotation *rots, size_t n)
{
	const struct ts_desired *d = a->desired;

	if (!o->cf_ok || !o->store)
		return;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		const struct ts_key_record *rec = ts_store_state_record(o->store, t->name);
		const struct ts_cf_tunnel *ct = ts_cf_tunnel_list_find(&o->cf_list, t->id);
		bool rotated = false;

		for (size_t k = 0; k < n; k++)
			rotated |= rots[k].t == t;
		if (rotated || !rec || rec->last_generated_on ||
		    ts_store_state_journal(o->store, t->name) || !ct || !ct->has_psk_generated_on ||
		    ct->psk_generated_on <= 0 ||
		    (rec->tunnel_id[0] && strcmp(rec->tunnel_id, t->id)))
			continue;
		if (TS_PLANES(a)->store_adopt_baseline(TS_PLANES_CTX(a), t->name, rec->fingerprint,
						       ct->psk_generated_on,
						       ct->psk_generated_unit) == 0)
			ts_logf(TS_LOG_INFO, "store", t->name,
				"baseline for Cloudflare's last_generated_on taken from its list");
	}
}

int ts_rotation_remote(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	struct ts_rotation **bulk = calloc(n + 1, sizeof(*bulk));
	size_t n_bulk = 0, batch;
	int r = 0;

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
	/* In calls of rotation/bulk-batch-size keys, as the plan counted them. */
	batch = a->desired->agent.rotation_bulk_batch_size
			? a->desired->agent.rotation_bulk_batch_size
			: TS_ROTATION_BULK_BATCH_DEFAULT;
	for (size_t off = 0; off < n_bulk && r == 0; off += batch)
		r = remote_bulk(a, bulk + off, n_bulk - off < batch ? n_bulk - off : batch);
	free(bulk);
	if (r == 0)
		remote_baseline(a, rots, n);
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
		/* A store failure is an error, never "work left" (below). */
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot commit the rotation: %s",
			       strerror(-r));
		rot->out->error = r;
		return r;
	}
	ts_log_fields(TS_LOG_INFO, "store", name,
		      &(struct ts_log_fields){ .fingerprint = rec.fingerprint,
					       .generation = rec.generation },
		      "rotation committed: key %s, generation %llu", rec.fingerprint,
		      (unsigned long long)rec.generation);
	ts_store_record_done(&rec);
	return 0;
}

/* A rotation taken from the journal may have had its reauthentication
 * requested by an earlier pass: what charon shows of it decides
 * (ts_earlier_decide, wait.h; the same rule as update-conn's). */
static const char earlier_what[] = "the rotation's reauthentication";

/* Step 3, requested: the journal holds the key Cloudflare has (step
 * remote); the key and connection are loaded and the reauthentication (or
 * initiation) requested. The confirmation is waited for with every other
 * wait of the pass (ts_rotation_local_finish). */
static int local_request(struct ts_agent *a, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_tunnel *t = rot->t;
	struct ts_ike_observed before = { 0 };
	enum ts_earlier seen = TS_EARLIER_NONE;
	enum ts_earlier_verdict v = TS_EARLIER_ASK;
	uint32_t old_id = 0;
	char err[256] = "";
	int r;

	if (ops->ike_observe(ctx, t, 1, &before) == 0 && before.ike_state != TS_IKE_SA_NONE) {
		old_id = before.ike_unique_id;
		/* Only a rotation taken from the journal can have had an
		 * earlier attempt: a fresh one's entry may be older than
		 * confirm-timeout already, the bulk call before it having
		 * lasted longer (100 keys to an edge that takes each one in
		 * turn). */
		if (rot->resumed && rot->e.started_at > 0)
			seen = ts_earlier_seen(&before, ops->now_realtime(ctx), rot->e.started_at);
	}
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
	/* A member in service: its siblings carry the traffic meanwhile. */
	rot->drained = old_id && ts_agent_routes_drain(a, t);
	if (old_id && rot->resumed && rot->e.started_at > 0)
		v = ts_earlier_decide(a, t->name, earlier_what, seen, rot->e.started_at, false);
	if (v == TS_EARLIER_WAIT || v == TS_EARLIER_CONFIRM) {
		/* The SA that came up is the one waited for. */
		if (v == TS_EARLIER_CONFIRM)
			old_id = 0;
	} else if (v == TS_EARLIER_BREAK && ops->ike_reinitiate) {
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
		 * outcome is confirmed by the wait, whatever initiate says. */
		(void)ops->ike_initiate(ctx, t, NULL, 0);
	}
	rot->wait = (struct ts_waiter){ t, old_id,
					ts_wait_deadline(a, a->desired->agent.confirm_timeout),
					false, NULL };
	rot->waiting = true;
	return 0;
}

/* Step 3 confirmed (or not) and step 4. */
static int local_finish(struct ts_agent *a, struct ts_rotation *rot)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_tunnel *t = rot->t;
	int r;

	if (!rot->wait.up) {
		ts_logf(TS_LOG_WARN, "ike", t->name,
			"new key %s loaded, but the tunnel is not up within %u s: rotation left "
			"pending at step remote",
			rot->e.new_fingerprint, a->desired->agent.confirm_timeout);
		ts_outcome_set(rot->out, TS_OUTCOME_PENDING,
			       "not confirmed up within %u s after the key change",
			       a->desired->agent.confirm_timeout);
		return -ETIMEDOUT;
	}
	ts_log_fields(TS_LOG_INFO, "ike", t->name,
		      &(struct ts_log_fields){ .fingerprint = rot->e.new_fingerprint,
					       .generation = rot->e.generation },
		      "up with the new key %s", rot->e.new_fingerprint);
	if (rot->drained)
		ts_agent_routes_restore(a, t);
	rot->e.step = TS_JOURNAL_LOCAL;
	r = ops->store_advance(ctx, &rot->e);
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", t->name, "cannot journal step local: %s",
			strerror(-r));
		ts_outcome_set(rot->out, TS_OUTCOME_FAILED, "cannot journal step local: %s",
			       strerror(-r));
		rot->out->error = r;
		return r;
	}
	ts_crash_point("rotate:local");
	return commit(a, rot);
}

static void set_local_outcome(struct ts_rotation *rot, int r)
{
	if (r < 0 && rot->out->error)
		rot->out->status = TS_OUTCOME_FAILED; /* the store failed */
	else if (r == -ETIMEDOUT || r == -ENOTCONN || r == -EIO)
		rot->out->status = TS_OUTCOME_PENDING;
	else if (r < 0)
		rot->out->status = TS_OUTCOME_FAILED;
	else
		rot->out->status = TS_OUTCOME_APPLIED;
}

void ts_rotation_local_request(struct ts_agent *a, struct ts_rotation *rots, size_t n)
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
			r = local_request(a, rot);
			if (r < 0)
				set_local_outcome(rot, r);
		} else if (rot->e.step == TS_JOURNAL_LOCAL || rot->e.step == TS_JOURNAL_COMMITTED) {
			rot->out->status =
				commit(a, rot) < 0 ? TS_OUTCOME_FAILED : TS_OUTCOME_APPLIED;
		}
	}
}

void ts_rotation_local_finish(struct ts_agent *a, struct ts_rotation *rots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rots[i].waiting) {
			set_local_outcome(&rots[i], local_finish(a, &rots[i]));
			rots[i].waiting = false;
		}
}
