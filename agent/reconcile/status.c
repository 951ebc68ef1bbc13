/* Owns STATE_DIR/status.json: what the last pass saw and did, in the
 * manner of Flux/Argo conditions (Ready / Reconciling / Stalled with a
 * reason), the applied and attempted config revisions, and per tunnel the
 * key's fingerprint (never the key), its generation and age, the IKE and
 * kernel state, failures and the last error. It also carries the failure
 * counters from one `once` run to the next. */
#include "reconcile/agent_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"

#define STATUS_FILE    "status.json"
#define STATUS_MAX     (8u << 20)
#define STATUS_VERSION 1

static char *status_path(const char *state_dir)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", state_dir, STATUS_FILE) < 0)
		return NULL;
	return p;
}

static json_t *json_time(ts_usec_t t)
{
	char buf[40];

	if (t <= 0 || ts_time_format_rfc3339(t, buf, sizeof(buf)) < 0)
		return json_null();
	return json_string(buf);
}

static ts_usec_t time_of(const json_t *v)
{
	ts_usec_t t = 0;

	if (json_is_string(v) && ts_time_parse_rfc3339(json_string_value(v), &t) == 0)
		return t;
	return 0;
}

int ts_agent_status_read(const char *state_dir, char **ret_json)
{
	char *path = status_path(state_dir);
	int r;

	if (!path)
		return -ENOMEM;
	r = ts_file_read_all(path, STATUS_MAX, ret_json, NULL);
	free(path);
	return r;
}

static json_t *status_load(const char *state_dir)
{
	char *text = NULL;
	json_t *root;

	int r = ts_agent_status_read(state_dir, &text);

	if (r < 0) {
		if (r != -ENOENT)
			ts_logf(TS_LOG_WARN, "store", NULL, "%s/status.json not read: %s",
				state_dir, ts_file_strerror(r));
		return NULL;
	}
	root = json_loads(text, 0, NULL);
	free(text);
	return json_is_object(root) ? root : (json_decref(root), NULL);
}

int ts_agent_status_load_memory(struct ts_agent *a)
{
	json_t *root = status_load(a->state_dir), *tunnels, *t;
	size_t i;

	if (!root)
		return -ENOENT;
	tunnels = json_object_get(root, "tunnels");
	json_array_foreach(tunnels, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));
		struct ts_agent_tunnel_memory *m = name ? ts_agent_memory(a, name) : NULL;
		json_int_t n = json_integer_value(json_object_get(t, "auth_failures"));

		if (!m)
			continue;
		m->auth_failures_base = n > 0 && n < UINT32_MAX ? (uint32_t)n : 0;
		m->auth_failures = m->auth_failures_base;
		m->last_auth_failure = time_of(json_object_get(t, "last_auth_failure"));
		m->last_rotation = time_of(json_object_get(t, "last_rotation"));
	}
	json_decref(root);
	return 0;
}

static const char *condition(const struct ts_pass_result *res, const char **ret_reason)
{
	if (!res->planes_ok) {
		*ret_reason = "PlaneUnavailable";
		return "Stalled";
	}
	if (res->n_store_problems) {
		*ret_reason = "StoreDamaged";
		return "Stalled";
	}
	if (res->n_failed) {
		*ret_reason = "ApplyFailed";
		return "Stalled";
	}
	if (res->plan && res->plan->suspended) {
		*ret_reason = "Suspended";
		return ts_plan_has_changes(res->plan) ? "Reconciling" : "Ready";
	}
	if (res->n_pending) {
		*ret_reason = "ChangesPending";
		return "Reconciling";
	}
	*ret_reason = "InSync";
	return "Ready";
}

/* kstatus / Flux conditions: Ready, Reconciling, Stalled, each True or
 * False with a reason, a message, when it last changed (kept from the
 * previous status.json while its status stays) and the revision the pass
 * reconciled (observedGeneration). */
static json_t *conditions_json(struct ts_agent *a, const struct ts_observation *o,
			       const struct ts_pass_result *res, const char *cond,
			       const char *reason, const json_t *old)
{
	static const char *const types[] = { "Ready", "Reconciling", "Stalled" };
	json_t *arr = json_array();
	struct ts_cf_client_state cs = { 0 };
	char msg[512], until[40] = "";

	if (!arr)
		return NULL;
	if (ts_agent_cf(a))
		ts_cf_client_state_get(ts_agent_cf(a), &cs);
	if (cs.hold_until)
		(void)ts_time_format_rfc3339(cs.hold_until, until, sizeof(until));
	if (!res->planes_ok)
		snprintf(msg, sizeof(msg), "planes not read:%s%s%s%s%s%s",
			 o->cf_ok ? "" : " cloudflare", o->ike_ok ? "" : " ike",
			 o->kernel_ok ? "" : " kernel", o->store_ok ? "" : " store",
			 cs.hold_until ? "; API requests held until " : "", until);
	else if (res->n_store_problems)
		snprintf(msg, sizeof(msg), "%.400s (repair: README, Repairing the state directory)",
			 res->store_problem);
	else if (res->n_failed)
		snprintf(msg, sizeof(msg), "%u actions failed (see tunnels[].last_error)",
			 res->n_failed);
	else if (res->n_pending)
		snprintf(msg, sizeof(msg), "%u actions pending%s%s", res->n_pending,
			 cs.hold_until ? "; API requests held until " : "", until);
	else
		snprintf(msg, sizeof(msg), "every plane agrees with revision %s",
			 a->desired->revision);
	if (!res->planes_ok && cs.rate_limited && !o->cf_ok)
		reason = "RateLimited";
	for (size_t i = 0; i < TS_ARRAY_SIZE(types); i++) {
		bool on = strcmp(cond, types[i]) == 0;
		const char *status = on ? "True" : "False";
		const json_t *prev = NULL, *c;
		const char *since = NULL;
		size_t k;

		json_array_foreach(
			json_object_get(old, "conditions"), k,
			c) if (strcmp(json_string_value(json_object_get(c, "type")) ?: "",
				      types[i]) == 0) prev = c;
		if (prev &&
		    strcmp(json_string_value(json_object_get(prev, "status")) ?: "", status) == 0)
			since = json_string_value(json_object_get(prev, "lastTransitionTime"));
		json_array_append_new(
			arr, json_pack("{s:s,s:s,s:s,s:s,s:o,s:s}", "type", types[i], "status",
				       status, "reason", on ? reason : "None", "message",
				       on ? msg : "", "lastTransitionTime",
				       since ? json_string(since) : json_time(ts_now_realtime()),
				       "observedGeneration", a->desired->revision));
	}
	return arr;
}

/* --- the API client's state across processes ------------------------------ */

#define API_STATE_FILE "api-state.json"

int ts_agent_api_state_load(struct ts_agent *a)
{
	struct ts_cf_client_state cs = { 0 };
	char *path = NULL, *text = NULL;
	json_t *root;
	int r;

	if (asprintf(&path, "%s/%s", a->state_dir, API_STATE_FILE) < 0)
		return -ENOMEM;
	r = ts_file_read_all(path, 64 * 1024, &text, NULL);
	if (r < 0) {
		if (r != -ENOENT)
			ts_logf(TS_LOG_WARN, "cloudflare", NULL, "%s not read: %s", path,
				ts_file_strerror(r));
		free(path);
		return r;
	}
	root = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(root)) {
		ts_logf(TS_LOG_WARN, "cloudflare", NULL, "%s is not a JSON object: ignored", path);
		json_decref(root);
		free(path);
		return -EBADMSG;
	}
	cs.budget_tat = time_of(json_object_get(root, "budget_tat"));
	cs.hold_until = time_of(json_object_get(root, "hold_until"));
	cs.rate_limited = json_is_true(json_object_get(root, "rate_limited"));
	cs.consecutive_failures =
		(unsigned)json_integer_value(json_object_get(root, "consecutive_failures"));
	if (cs.consecutive_failures > 16)
		cs.consecutive_failures = 16;
	ts_cf_client_state_set(ts_agent_cf(a), &cs);
	if (cs.hold_until > ts_now_realtime()) {
		char until[40] = "";

		(void)ts_time_format_rfc3339(cs.hold_until, until, sizeof(until));
		ts_logf(TS_LOG_INFO, "cloudflare", NULL, "%s: no API request before %s", path,
			until);
	}
	json_decref(root);
	free(path);
	return 0;
}

int ts_agent_api_state_save(struct ts_agent *a)
{
	struct ts_cf_client_state cs;
	char *path = NULL, *text = NULL;
	json_t *root;
	int r = -ENOMEM;

	ts_cf_client_state_get(ts_agent_cf(a), &cs);
	root = json_pack("{s:i,s:o,s:o,s:b,s:i}", "version", 1, "budget_tat",
			 json_time(cs.budget_tat), "hold_until", json_time(cs.hold_until),
			 "rate_limited", cs.rate_limited, "consecutive_failures",
			 (json_int_t)cs.consecutive_failures);
	if (root)
		text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text && asprintf(&path, "%s/%s", a->state_dir, API_STATE_FILE) >= 0) {
		r = ts_file_write_atomic(path, text, strlen(text), 0600);
		if (r < 0)
			ts_logf(TS_LOG_WARN, "cloudflare", NULL, "cannot write %s: %s", path,
				strerror(-r));
	} else {
		path = NULL;
	}
	free(path);
	free(text);
	json_decref(root);
	return r;
}

static json_t *tunnel_json(struct ts_agent *a, const struct ts_observation *o, size_t i,
			   const struct ts_store_state *after)
{
	const struct ts_tunnel *t = &a->desired->tunnels[i];
	const struct ts_key_record *rec = after ? ts_store_state_record(after, t->name) : NULL;
	const struct ts_journal_entry *j = after ? ts_store_state_journal(after, t->name) : NULL;
	const struct ts_agent_tunnel_memory *m = ts_agent_memory(a, t->name);
	const struct ts_observed_tunnel *ot = &o->tunnels[i];
	struct ts_agent_tunnel_metrics *mt = &a->metrics[i];
	json_t *jt = json_object();

	mt->up = ot->ike.ok && ot->ike.sa_state == TS_OBS_SA_ESTABLISHED && ot->ike.child_up &&
		 ot->kernel.ok && ot->kernel.sa_pair_ok;
	mt->has_key = rec != NULL;
	mt->key_applied_at = rec ? rec->applied_at : 0;
	mt->key_generation = rec ? rec->generation : 0;
	mt->auth_failures = m ? m->auth_failures : 0;

	json_object_set_new(jt, "name", json_string(t->name));
	json_object_set_new(jt, "id", json_string(t->id));
	json_object_set_new(jt, "enabled", json_boolean(t->enabled));
	json_object_set_new(jt, "managed_here",
			    json_boolean(ts_tunnel_is_local(t, a->desired->agent.node_name)));
	json_object_set_new(jt, "psk_source", json_string(ts_psk_source_to_string(t->psk.source)));
	json_object_set_new(jt, "key_fingerprint",
			    rec ? json_string(rec->fingerprint) : json_null());
	json_object_set_new(jt, "key_generation",
			    rec ? json_integer((json_int_t)rec->generation) : json_null());
	json_object_set_new(jt, "key_applied_at", json_time(rec ? rec->applied_at : 0));
	json_object_set_new(
		jt, "rotation_requested",
		after && ts_store_state_request(after, t->name)
			? json_time(ts_store_state_request(after, t->name)->requested_at)
			: json_null());
	json_object_set_new(jt, "rotation_in_progress",
			    j ? json_string(ts_journal_step_to_string(j->step)) : json_null());
	json_object_set_new(jt, "cloudflare_present",
			    ot->cf.ok ? json_boolean(ot->cf.present) : json_null());
	json_object_set_new(jt, "cloudflare_last_generated_on",
			    json_time(ot->cf.ok ? ot->cf.last_generated_on : 0));
	json_object_set_new(jt, "ike_state",
			    ot->ike.ok ? json_string(ts_obs_sa_state_to_string(ot->ike.sa_state))
				       : json_null());
	json_object_set_new(jt, "child_up",
			    ot->ike.ok ? json_boolean(ot->ike.child_up) : json_null());
	json_object_set_new(jt, "kernel_checked", json_boolean(a->desired->agent.kernel_xfrm));
	json_object_set_new(jt, "kernel_sa_pair",
			    ot->kernel.ok ? json_boolean(ot->kernel.sa_pair_ok) : json_null());
	json_object_set_new(jt, "auth_failures", json_integer(m ? m->auth_failures : 0));
	json_object_set_new(jt, "last_auth_failure", json_time(m ? m->last_auth_failure : 0));
	json_object_set_new(jt, "last_rotation", json_time(m ? m->last_rotation : 0));
	json_object_set_new(jt, "last_error",
			    m && m->last_error[0] ? json_string(m->last_error) : json_null());
	return jt;
}

int ts_agent_status_write(struct ts_agent *a, const struct ts_observation *o,
			  const struct ts_pass_result *res)
{
	json_t *root = json_object(), *tunnels = json_array(), *pass = json_object(),
	       *planes = json_object(), *old = status_load(a->state_dir);
	struct ts_store_state *after = NULL;
	const char *reason, *cond = condition(res, &reason);
	const char *applied = NULL;
	char *text = NULL, *path = NULL;
	int r = -ENOMEM;

	if (!root || !tunnels || !pass || !planes)
		goto out;
	(void)TS_PLANES(a)->store_load(TS_PLANES_CTX(a), &after);
	if (old)
		applied = json_string_value(
			json_object_get(json_object_get(old, "revision"), "applied"));
	if (strcmp(cond, "Ready") == 0)
		applied = a->desired->revision;

	json_object_set_new(root, "version", json_integer(STATUS_VERSION));
	json_object_set_new(root, "time", json_time(ts_now_realtime()));
	json_object_set_new(root, "node", json_string(a->desired->agent.node_name));
	json_object_set_new(root, "condition", json_string(cond));
	json_object_set_new(root, "reason", json_string(reason));
	json_object_set_new(root, "store_problem",
			    res->n_store_problems ? json_string(res->store_problem) : json_null());
	json_object_set_new(root, "conditions", conditions_json(a, o, res, cond, reason, old));
	json_object_set_new(root, "suspended", json_boolean(a->desired->agent.suspend));
	json_object_set_new(root, "make_before_break",
			    a->mbb_checked ? json_pack("{s:s,s:s}", "state",
						       ts_mbb_state_to_string(a->mbb.state),
						       "reason", a->mbb.reason)
					   : json_null());
	json_object_set_new(root, "revision",
			    json_pack("{s:o,s:s}", "applied",
				      applied ? json_string(applied) : json_null(), "attempted",
				      a->desired->revision));
	json_object_set_new(planes, "cloudflare", json_boolean(o->cf_ok));
	json_object_set_new(planes, "ike", json_boolean(o->ike_ok));
	json_object_set_new(planes, "kernel", json_boolean(o->kernel_ok));
	json_object_set_new(planes, "store", json_boolean(o->store_ok));
	json_object_set_new(pass, "planes_read", planes);
	planes = NULL;
	json_object_set_new(pass, "actions",
			    json_integer(res->plan ? (json_int_t)res->plan->n_actions : 0));
	json_object_set_new(pass, "applied", json_integer(res->n_applied));
	json_object_set_new(pass, "pending", json_integer(res->n_pending));
	json_object_set_new(pass, "failed", json_integer(res->n_failed));
	json_object_set_new(pass, "rotations", json_integer(a->rotations));
	json_object_set_new(pass, "api_errors", json_integer(a->api_errors));
	json_object_set_new(pass, "api_429", json_integer(a->api_429));
	json_object_set_new(root, "last_pass", pass);
	pass = NULL;
	for (size_t i = 0; i < a->desired->n_tunnels; i++)
		json_array_append_new(tunnels, tunnel_json(a, o, i, after));
	json_object_set_new(root, "tunnels", tunnels);
	tunnels = NULL;

	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	path = status_path(a->state_dir);
	if (!text || !path)
		goto out;
	/* No secret is in here, but the directory is private anyway. */
	r = ts_file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		ts_logf(TS_LOG_WARN, "store", NULL, "cannot write %s: %s", path, strerror(-r));
out:
	free(text);
	free(path);
	ts_store_state_free(after);
	json_decref(old);
	json_decref(planes);
	json_decref(pass);
	json_decref(tunnels);
	json_decref(root);
	return r;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static const char *bool_word(const json_t *o, const char *key, const char *yes, const char *no)
{
	const json_t *v = json_object_get(o, key);

	return json_is_boolean(v) ? (json_is_true(v) ? yes : no) : "-";
}

int ts_status_check(const char *json_text, char *buf, size_t size)
{
	json_error_t e;
	json_t *root = json_loads(json_text, 0, &e);
	bool object = json_is_object(root);

	json_decref(root);
	if (object)
		return 0;
	if (root)
		snprintf(buf, size, "not a JSON object");
	else
		snprintf(buf, size, "line %d, column %d: %s", e.line, e.column, e.text);
	return -EBADMSG;
}

int ts_status_print_text(const char *json_text, FILE *out)
{
	json_t *root = json_loads(json_text, 0, NULL), *tunnels, *t, *rev, *pass;
	size_t i;

	if (!json_is_object(root)) {
		json_decref(root);
		return -EBADMSG;
	}
	rev = json_object_get(root, "revision");
	pass = json_object_get(root, "last_pass");
	fprintf(out, "condition: %s (%s) at %s\n", str_or(root, "condition", "?"),
		str_or(root, "reason", "?"), str_or(root, "time", "?"));
	fprintf(out, "revision:  applied %s, attempted %s\n", str_or(rev, "applied", "-"),
		str_or(rev, "attempted", "-"));
	if (json_is_string(json_object_get(root, "store_problem")))
		fprintf(out, "stalled:   %s (repair it: README, Repairing the state directory)\n",
			str_or(root, "store_problem", ""));
	{
		const json_t *c;
		size_t k;

		json_array_foreach(json_object_get(root, "conditions"), k, c)
			fprintf(out, "  %-12s %-5s %-18s since %s%s%s\n", str_or(c, "type", "?"),
				str_or(c, "status", "?"), str_or(c, "reason", "-"),
				str_or(c, "lastTransitionTime", "-"),
				str_or(c, "message", "")[0] ? ": " : "", str_or(c, "message", ""));
	}
	if (json_is_object(json_object_get(root, "make_before_break")))
		fprintf(out, "make-before-break: %s (%s)\n",
			str_or(json_object_get(root, "make_before_break"), "state", "?"),
			str_or(json_object_get(root, "make_before_break"), "reason", ""));
	fprintf(out, "last pass: %lld actions, %lld applied, %lld pending, %lld failed\n\n",
		(long long)json_integer_value(json_object_get(pass, "actions")),
		(long long)json_integer_value(json_object_get(pass, "applied")),
		(long long)json_integer_value(json_object_get(pass, "pending")),
		(long long)json_integer_value(json_object_get(pass, "failed")));
	fprintf(out, "%-16s %-23s %-4s %-12s %-6s %-7s %-5s %s\n", "TUNNEL", "KEY", "GEN", "IKE",
		"CHILD", "KERNEL", "AUTHF", "LAST ERROR");
	tunnels = json_object_get(root, "tunnels");
	json_array_foreach(tunnels, i, t)
	{
		const json_t *gen = json_object_get(t, "key_generation");
		char g[24] = "-";

		if (json_is_integer(gen))
			snprintf(g, sizeof(g), "%lld", (long long)json_integer_value(gen));
		fprintf(out, "%-16s %-23s %-4s %-12s %-6s %-7s %-5lld %s\n", str_or(t, "name", "?"),
			str_or(t, "key_fingerprint", "-"), g, str_or(t, "ike_state", "-"),
			bool_word(t, "child_up", "up", "down"),
			json_is_false(json_object_get(t, "kernel_checked"))
				? "n/a"
				: bool_word(t, "kernel_sa_pair", "ok", "missing"),
			(long long)json_integer_value(json_object_get(t, "auth_failures")),
			str_or(t, "last_error", ""));
	}
	json_array_foreach(tunnels, i, t)
	{
		if (json_is_string(json_object_get(t, "rotation_requested")))
			fprintf(out, "rotation requested: %s (since %s; rotate --cancel to drop)\n",
				str_or(t, "name", "?"), str_or(t, "rotation_requested", "?"));
	}
	json_decref(root);
	return 0;
}
