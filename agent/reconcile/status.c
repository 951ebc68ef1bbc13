/* Owns STATE_DIR/status.json: what the last pass saw and did, in the
 * manner of Flux/Argo conditions (Ready / Reconciling / Stalled with a
 * reason), the applied and attempted config revisions, and per tunnel the
 * key's fingerprint (never the key), its generation and age, the IKE and
 * kernel state, failures and the last error. It also carries the failure
 * counters from one `once` run to the next. */
#include "reconcile/agent_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/log.h"
#include "core/sha256.h"
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

/* What the next write needs of the last one (conditions_json: each
 * condition's status and since when; the applied revision): the two
 * members, not the whole file. */
static json_t *status_prev_of(const json_t *root)
{
	json_t *prev = json_object();
	json_t *c = json_object_get(root, "conditions"), *rev = json_object_get(root, "revision");

	if (prev && c)
		json_object_set(prev, "conditions", c);
	if (prev && rev)
		json_object_set(prev, "revision", rev);
	return prev;
}

static void memory_set(struct ts_agent_tunnel_memory *m, json_int_t n, ts_usec_t last_auth_failure,
		       ts_usec_t last_rotation)
{
	m->auth_failures_base = n > 0 && n < UINT32_MAX ? (uint32_t)n : 0;
	m->auth_failures = m->auth_failures_base;
	m->last_auth_failure = last_auth_failure;
	m->last_rotation = last_rotation;
}

/* --- STATE_DIR/memory: what status.json carries for the agent itself ------
 *
 * status.json is the operator's file (0.7 MB of JSON at 1,000 tunnels);
 * the agent needs of it only the per-tunnel failure counts and times and,
 * for the next write, the conditions and the applied revision. Each write
 * of status.json is followed by this compact copy of those, stamped with
 * the status.json it was written with (device, inode, size, times: the
 * atomic rename makes a new inode each time). It is used only while that
 * stamp still matches — a crash between the two writes, an edited, removed
 * or replaced status.json, or any fault in this file and status.json is
 * read instead, as before. Lines (values are the strings status.json
 * holds: "s" + string, or "n" for null):
 *
 *   tunnelsync-memory 1
 *   status=DEV INO SIZE MTIME_S MTIME_NS CTIME_S CTIME_NS
 *   applied=s<revision>                      (absent: no member)
 *   condition=<type>\t<status>\t<s|n>[<lastTransitionTime>]
 *   tunnel=<auth_failures>\t<s|n>[<last_auth_failure>]\t<s|n>[<last_rotation>]\t<name>
 *   sha256=<hex of every byte before this line>
 */
#define MEMORY_FILE  "memory"
#define MEMORY_MAGIC "tunnelsync-memory 1"
#define MEMORY_MAX   (4u << 20)

static char *memory_path(const char *state_dir)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", state_dir, MEMORY_FILE) < 0)
		return NULL;
	return p;
}

static int status_stamp(const char *state_dir, char *buf, size_t size)
{
	char *path = status_path(state_dir);
	struct stat st;
	int r;

	if (!path)
		return -ENOMEM;
	r = lstat(path, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -TS_ENOTREG;
	free(path);
	if (r < 0)
		return r;
	snprintf(buf, size, "%llu %llu %lld %lld %ld %lld %ld", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	return 0;
}

/* "s<string>" or "n" (null) up to the next tab or the end: the string is
 * cut out in place. NULL: neither. */
static bool memory_value(char **p, const char **ret)
{
	char *v = *p, *end = strchr(v, '\t');

	if (end)
		*end = '\0';
	*p = end ? end + 1 : v + strlen(v);
	if (v[0] == 'n' && !v[1]) {
		*ret = NULL;
		return true;
	}
	if (v[0] != 's')
		return false;
	*ret = v + 1;
	return true;
}

static json_t *json_string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Parses the memory file into the per-tunnel memory and ret_prev; any
 * fault (or a stamp that is not status.json's) is -EBADMSG and nothing of
 * the file is used. */
static int memory_parse(struct ts_agent *a, char *text, json_t **ret_prev)
{
	char stamp[160], *line, *next;
	json_t *prev = json_object(), *conds = json_array(), *rev = json_object();
	struct {
		struct ts_agent_tunnel_memory *m;
		json_int_t n;
		ts_usec_t laf, lr;
	} *tun = NULL;
	size_t n_tun = 0, cap_tun = 0;
	bool stamped = false;
	int r = -EBADMSG;
	size_t len = strlen(text);
	char *sum, hex[65];
	uint8_t digest[TS_SHA256_DIGEST_LEN];

	if (!prev || !conds || !rev) {
		r = -ENOMEM;
		goto out;
	}
	/* The checksum line is the last one and covers every byte before it. */
	if (len < 7 + 64 + 1 || text[len - 1] != '\n')
		goto out;
	sum = text + len - (7 + 64 + 1);
	if (strncmp(sum, "sha256=", 7) != 0 || (sum > text && sum[-1] != '\n'))
		goto out;
	ts_sha256(text, (size_t)(sum - text), digest);
	ts_sha256_hex(digest, hex);
	if (strncmp(sum + 7, hex, 64) != 0)
		goto out;
	*sum = '\0';
	if (strncmp(text, MEMORY_MAGIC "\n", sizeof(MEMORY_MAGIC)) != 0)
		goto out;
	for (line = text + sizeof(MEMORY_MAGIC); *line; line = next) {
		next = strchr(line, '\n');
		if (!next)
			goto out;
		*next++ = '\0';
		if (strncmp(line, "status=", 7) == 0) {
			if (status_stamp(a->state_dir, stamp, sizeof(stamp)) < 0 ||
			    strcmp(line + 7, stamp) != 0)
				goto out;
			stamped = true;
		} else if (strncmp(line, "applied=", 8) == 0) {
			char *p = line + 8;
			const char *v;

			if (!memory_value(&p, &v) || *p ||
			    json_object_set_new(rev, "applied", json_string_or_null(v)) < 0)
				goto out;
		} else if (strncmp(line, "condition=", 10) == 0) {
			char *type = line + 10, *status = strchr(type, '\t'), *p;
			const char *since;

			if (!status)
				goto out;
			*status++ = '\0';
			p = strchr(status, '\t');
			if (!p)
				goto out;
			*p++ = '\0';
			if (!memory_value(&p, &since) || *p ||
			    json_array_append_new(conds,
						  json_pack("{s:s,s:s,s:o}", "type", type, "status",
							    status, "lastTransitionTime",
							    json_string_or_null(since))) < 0)
				goto out;
		} else if (strncmp(line, "tunnel=", 7) == 0) {
			char *p = line + 7, *end;
			const char *laf, *lr;
			long long n;
			ts_usec_t t_laf = 0, t_lr = 0;

			errno = 0;
			n = strtoll(p, &end, 10);
			if (errno || end == p || *end != '\t')
				goto out;
			p = end + 1;
			if (!memory_value(&p, &laf) || !memory_value(&p, &lr) || !*p)
				goto out;
			/* As time_of() reads them from status.json. */
			if (laf && ts_time_parse_rfc3339(laf, &t_laf) < 0)
				t_laf = 0;
			if (lr && ts_time_parse_rfc3339(lr, &t_lr) < 0)
				t_lr = 0;
			{
				struct ts_agent_tunnel_memory *m = ts_agent_memory(a, p);

				if (m && n_tun == cap_tun) {
					void *more = reallocarray(tun, cap_tun ? 2 * cap_tun : 64,
								  sizeof(*tun));

					if (!more) {
						r = -ENOMEM;
						goto out;
					}
					tun = more;
					cap_tun = cap_tun ? 2 * cap_tun : 64;
				}
				if (m)
					tun[n_tun++] =
						(typeof(*tun)){ m, (json_int_t)n, t_laf, t_lr };
			}
		} else {
			goto out;
		}
	}
	if (!stamped)
		goto out;
	for (size_t i = 0; i < n_tun; i++)
		memory_set(tun[i].m, tun[i].n, tun[i].laf, tun[i].lr);
	if (json_object_size(rev))
		json_object_set(prev, "revision", rev);
	json_object_set(prev, "conditions", conds);
	*ret_prev = prev;
	prev = NULL;
	r = 0;
out:
	free(tun);
	json_decref(prev);
	json_decref(conds);
	json_decref(rev);
	return r;
}

static int memory_load(struct ts_agent *a, json_t **ret_prev)
{
	char *path = memory_path(a->state_dir), *text = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = ts_file_read_all(path, MEMORY_MAX, &text, NULL);
	free(path);
	if (r < 0)
		return r;
	r = memory_parse(a, text, ret_prev);
	free(text);
	return r;
}

/* Appends "s<string>" or "n"; false when the string cannot be carried on
 * one line (then no memory file is written: status.json is read instead). */
static bool memory_put(FILE *f, const json_t *v)
{
	const char *s = json_string_value(v);

	if (!s) {
		fputc('n', f);
		return true;
	}
	if (strpbrk(s, "\t\n"))
		return false;
	fprintf(f, "s%s", s);
	return true;
}

/* After status.json was written from root: the memory file beside it. On
 * any failure the old one goes, so that status.json is read next time. */
static void memory_write(struct ts_agent *a, const json_t *root)
{
	char *path = memory_path(a->state_dir), *buf = NULL, stamp[160];
	size_t cap = 0, i;
	const json_t *c, *t,
		*applied = json_object_get(json_object_get(root, "revision"), "applied");
	FILE *f = NULL;
	bool ok = path && status_stamp(a->state_dir, stamp, sizeof(stamp)) == 0 &&
		  (f = open_memstream(&buf, &cap)) != NULL;

	if (ok) {
		fprintf(f, MEMORY_MAGIC "\nstatus=%s\n", stamp);
		if (applied) {
			fputs("applied=", f);
			ok = memory_put(f, applied);
			fputc('\n', f);
		}
	}
	json_array_foreach(ok ? json_object_get(root, "conditions") : NULL, i, c)
	{
		const char *type = json_string_value(json_object_get(c, "type"));
		const char *status = json_string_value(json_object_get(c, "status"));

		if (!type || !status || strpbrk(type, "\t\n") || strpbrk(status, "\t\n")) {
			ok = false;
			break;
		}
		fprintf(f, "condition=%s\t%s\t", type, status);
		ok = memory_put(f, json_object_get(c, "lastTransitionTime"));
		fputc('\n', f);
		if (!ok)
			break;
	}
	json_array_foreach(ok ? json_object_get(root, "tunnels") : NULL, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));

		if (!name || !name[0] || strchr(name, '\n')) {
			ok = false;
			break;
		}
		fprintf(f, "tunnel=%lld\t",
			(long long)json_integer_value(json_object_get(t, "auth_failures")));
		ok = memory_put(f, json_object_get(t, "last_auth_failure"));
		fputc('\t', f);
		ok = ok && memory_put(f, json_object_get(t, "last_rotation"));
		fprintf(f, "\t%s\n", name);
		if (!ok)
			break;
	}
	if (f)
		ok = fclose(f) == 0 && ok;
	if (ok) {
		size_t len = strlen(buf);
		char *sealed = malloc(len + 7 + 64 + 2);
		uint8_t digest[TS_SHA256_DIGEST_LEN];
		char hex[65];

		ts_sha256(buf, len, digest);
		ts_sha256_hex(digest, hex);
		ok = sealed != NULL;
		if (ok) {
			memcpy(sealed, buf, len);
			len += (size_t)sprintf(sealed + len, "sha256=%s\n", hex);
			ok = ts_file_write_atomic(path, sealed, len, 0600) == 0;
		}
		free(sealed);
	}
	if (!ok && path)
		(void)unlink(path);
	free(buf);
	free(path);
}

int ts_agent_status_load_memory(struct ts_agent *a)
{
	json_t *root, *tunnels, *t;
	size_t i;

	json_decref(a->status_prev);
	a->status_prev = NULL;
	if (memory_load(a, &a->status_prev) == 0)
		return 0;
	root = status_load(a->state_dir);
	if (!root)
		return -ENOENT;
	tunnels = json_object_get(root, "tunnels");
	json_array_foreach(tunnels, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));
		struct ts_agent_tunnel_memory *m = name ? ts_agent_memory(a, name) : NULL;

		if (!m)
			continue;
		memory_set(m, json_integer_value(json_object_get(t, "auth_failures")),
			   time_of(json_object_get(t, "last_auth_failure")),
			   time_of(json_object_get(t, "last_rotation")));
	}
	a->status_prev = status_prev_of(root);
	json_decref(root);
	return 0;
}

void ts_agent_status_done(struct ts_agent *a)
{
	json_decref(a->status_prev);
	a->status_prev = NULL;
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
			arr, json_pack("{s:o,s:s,s:s,s:s,s:s,s:s}", "lastTransitionTime",
				       since ? json_string(since) : json_time(ts_now_realtime()),
				       "message", on ? msg : "", "observedGeneration",
				       a->desired->revision, "reason", on ? reason : "None",
				       "status", status, "type", types[i]));
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

	/* In strcmp order (ts_agent_status_write). */
	json_object_set_new(jt, "auth_failures", json_integer(m ? m->auth_failures : 0));
	json_object_set_new(jt, "child_up",
			    ot->ike.ok ? json_boolean(ot->ike.child_up) : json_null());
	json_object_set_new(jt, "cloudflare_last_generated_on",
			    json_time(ot->cf.ok ? ot->cf.last_generated_on : 0));
	json_object_set_new(jt, "cloudflare_present",
			    ot->cf.ok ? json_boolean(ot->cf.present) : json_null());
	json_object_set_new(jt, "enabled", json_boolean(t->enabled));
	json_object_set_new(jt, "id", json_string(t->id));
	json_object_set_new(jt, "ike_state",
			    ot->ike.ok ? json_string(ts_obs_sa_state_to_string(ot->ike.sa_state))
				       : json_null());
	json_object_set_new(jt, "kernel_checked", json_boolean(a->desired->agent.kernel_xfrm));
	json_object_set_new(jt, "kernel_sa_pair",
			    ot->kernel.ok ? json_boolean(ot->kernel.sa_pair_ok) : json_null());
	json_object_set_new(jt, "key_applied_at", json_time(rec ? rec->applied_at : 0));
	json_object_set_new(jt, "key_fingerprint",
			    rec ? json_string(rec->fingerprint) : json_null());
	json_object_set_new(jt, "key_generation",
			    rec ? json_integer((json_int_t)rec->generation) : json_null());
	json_object_set_new(jt, "last_auth_failure", json_time(m ? m->last_auth_failure : 0));
	json_object_set_new(jt, "last_error",
			    m && m->last_error ? json_string(m->last_error) : json_null());
	json_object_set_new(jt, "last_rotation", json_time(m ? m->last_rotation : 0));
	json_object_set_new(jt, "managed_here",
			    json_boolean(ts_tunnel_is_local(t, a->desired->agent.node_name)));
	json_object_set_new(jt, "name", json_string(t->name));
	json_object_set_new(jt, "psk_source", json_string(ts_psk_source_to_string(t->psk.source)));
	json_object_set_new(jt, "rotation_in_progress",
			    j ? json_string(ts_journal_step_to_string(j->step)) : json_null());
	json_object_set_new(
		jt, "rotation_requested",
		after && ts_store_state_request(after, t->name)
			? json_time(ts_store_state_request(after, t->name)->requested_at)
			: json_null());
	return jt;
}

int ts_agent_status_write(struct ts_agent *a, const struct ts_observation *o,
			  const struct ts_pass_result *res)
{
	json_t *root = json_object(), *tunnels = json_array(), *pass = json_object(),
	       *planes = json_object(), *old = a->status_prev;
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

	/* Every object's members are added in strcmp order and dumped in that
	 * order: the file is what JSON_SORT_KEYS made of it, without sorting
	 * 20,000 members per write (test-apply assert_status_sorted). */
	json_object_set_new(root, "condition", json_string(cond));
	json_object_set_new(root, "conditions", conditions_json(a, o, res, cond, reason, old));
	json_object_set_new(pass, "actions",
			    json_integer(res->plan ? (json_int_t)res->plan->n_actions : 0));
	json_object_set_new(pass, "api_429", json_integer(a->api_429));
	json_object_set_new(pass, "api_errors", json_integer(a->api_errors));
	json_object_set_new(pass, "applied", json_integer(res->n_applied));
	json_object_set_new(pass, "failed", json_integer(res->n_failed));
	json_object_set_new(pass, "pending", json_integer(res->n_pending));
	json_object_set_new(planes, "cloudflare", json_boolean(o->cf_ok));
	json_object_set_new(planes, "ike", json_boolean(o->ike_ok));
	json_object_set_new(planes, "kernel", json_boolean(o->kernel_ok));
	json_object_set_new(planes, "store", json_boolean(o->store_ok));
	json_object_set_new(pass, "planes_read", planes);
	planes = NULL;
	json_object_set_new(pass, "rotations", json_integer(a->rotations));
	json_object_set_new(root, "last_pass", pass);
	pass = NULL;
	json_object_set_new(root, "make_before_break",
			    a->mbb_checked
				    ? json_pack("{s:s,s:s}", "reason", a->mbb.reason, "state",
						ts_mbb_state_to_string(a->mbb.state))
				    : json_null());
	json_object_set_new(root, "node", json_string(a->desired->agent.node_name));
	json_object_set_new(root, "reason", json_string(reason));
	json_object_set_new(root, "revision",
			    json_pack("{s:o,s:s}", "applied",
				      applied ? json_string(applied) : json_null(), "attempted",
				      a->desired->revision));
	json_object_set_new(root, "store_problem",
			    res->n_store_problems ? json_string(res->store_problem) : json_null());
	json_object_set_new(root, "suspended", json_boolean(a->desired->agent.suspend));
	json_object_set_new(root, "time", json_time(ts_now_realtime()));
	for (size_t i = 0; i < a->desired->n_tunnels; i++)
		json_array_append_new(tunnels, tunnel_json(a, o, i, after));
	json_object_set_new(root, "tunnels", tunnels);
	tunnels = NULL;
	json_object_set_new(root, "version", json_integer(STATUS_VERSION));

	text = json_dumps(root, JSON_INDENT(2));
	path = status_path(a->state_dir);
	if (!text || !path)
		goto out;
	/* No secret is in here, but the directory is private anyway. */
	r = ts_file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "store", NULL, "cannot write %s: %s", path, strerror(-r));
	} else {
		/* The next write's "old" is this one (status.json is not read
		 * back); the memory file carries it to the next process. */
		json_t *prev = status_prev_of(root);

		if (prev) {
			json_decref(a->status_prev);
			a->status_prev = prev;
		}
		memory_write(a, root);
	}
out:
	free(text);
	free(path);
	ts_store_state_free(after);
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
