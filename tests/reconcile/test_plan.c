/* Table-driven tests of the planner (reconcile/plan.c): each case starts
 * from a healthy world of four tunnels (t1..t4: enabled, keys fresh, every
 * plane in agreement, which plans nothing), applies a few edits written as
 * "t1.field=value" strings, and compares the whole plan, in order, with the
 * expected (kind, tunnel, plane, cause) rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "core/util.h"
#include "model/observed.h"
#include "model/plan.h"
#include "reconcile/plan.h"

#define NT	 4
#define DAY	 (86400 * TS_USEC_PER_SEC)
#define NOW	 ((ts_usec_t)1800000000 * TS_USEC_PER_SEC)
#define FP_A	 "sha256:aaaaaaaaaaaaaaaa"
#define FP_B	 "sha256:bbbbbbbbbbbbbbbb"
#define MAX_EXP	 16
#define MAX_EDIT 12

struct world {
	struct ts_desired d;
	struct ts_tunnel t[NT];
	struct ts_observed o;
	struct ts_observed_tunnel ot[NT];
	struct ts_key_record rec[NT];
	struct ts_journal_entry jnl[NT];
	struct ts_stale_object stale[8];
	struct ts_cf_tunnel cft[NT];
	char cf_desc[NT][32];
	char decl_desc[NT][32];
	struct ts_change chg[NT][4];
	char chg_val[NT][4][2][64];
	const char *forced[NT];
	char forced_names[NT][TS_NAME_MAX + 1];
	size_t n_forced;
	uint32_t budget;
};

static void ip(struct ts_ip *out, const char *s)
{
	assert_int_equal(ts_ip_parse(s, out), 0);
}

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->d.agent.node_name, sizeof(w->d.agent.node_name), "edge1");
	w->d.tunnels = w->t;
	w->d.n_tunnels = NT;
	w->o.cf_complete = w->o.ike_complete = w->o.kernel_complete = w->o.store_complete = true;
	w->o.tunnels = w->ot;
	w->o.n_tunnels = NT;
	w->o.stale = w->stale;
	w->budget = 100;
	for (int i = 0; i < NT; i++) {
		struct ts_tunnel *t = &w->t[i];
		struct ts_observed_tunnel *o = &w->ot[i];
		struct ts_key_record *r = &w->rec[i];
		char ce[32], cf[32];

		snprintf(t->name, sizeof(t->name), "t%d", i + 1);
		snprintf(t->id, sizeof(t->id), "%032x", i + 1);
		t->enabled = true;
		snprintf(ce, sizeof(ce), "203.0.113.%d", i + 1);
		snprintf(cf, sizeof(cf), "198.51.100.%d", i + 1);
		ip(&t->customer_endpoint, ce);
		ip(&t->cloudflare_endpoint, cf);
		t->psk.source = TS_PSK_SOURCE_RANDOM;
		t->psk.max_age = 30 * 86400;
		t->psk.rotate_on_auth_failure = true;
		t->psk.auth_failure_threshold = 3;

		memcpy(r->tunnel, t->name, sizeof(r->tunnel));
		memcpy(r->tunnel_id, t->id, sizeof(r->tunnel_id));
		snprintf(r->fingerprint, sizeof(r->fingerprint), FP_A);
		r->source = TS_PSK_SOURCE_RANDOM;
		r->applied_at = NOW - DAY;
		r->last_generated_on = NOW - DAY;
		r->generation = 1;

		memcpy(o->name, t->name, sizeof(o->name));
		o->cf.ok = o->cf.present = true;
		o->cf.customer_endpoint = t->customer_endpoint;
		o->cf.cloudflare_endpoint = t->cloudflare_endpoint;
		o->cf.last_generated_on = r->last_generated_on;
		{
			struct ts_cf_tunnel *ct = &w->cft[i];
			char ia[32];

			snprintf(ia, sizeof(ia), "10.0.%d.0/31", i);
			assert_int_equal(ts_prefix_parse(ia, &t->interface_address), 0);
			memcpy(ct->id, t->id, sizeof(ct->id));
			ct->customer_endpoint = t->customer_endpoint;
			ct->cloudflare_endpoint = t->cloudflare_endpoint;
			ct->interface_address = t->interface_address;
			ct->health_check.present = ct->health_check.enabled = true;
			snprintf(ct->health_check.rate, sizeof(ct->health_check.rate), "mid");
			snprintf(ct->health_check.type, sizeof(ct->health_check.type), "reply");
			o->cf.tunnel = ct;
		}
		o->ike.ok = o->ike.conn_loaded = o->ike.conn_equal = o->ike.key_loaded = true;
		snprintf(o->ike.key_fingerprint, sizeof(o->ike.key_fingerprint), FP_A);
		o->ike.sa_state = TS_OBS_SA_ESTABLISHED;
		o->ike.child_up = true;
		o->kernel.ok = o->kernel.sa_pair_ok = o->kernel.policies_ok = true;
		o->kernel.traffic_both_ways = true;
		o->keyfile.ok = true;
		snprintf(o->keyfile.fingerprint, sizeof(o->keyfile.fingerprint), FP_A);
		o->store.ok = true;
		o->store.record = r;
	}
}

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static long num(const char *v)
{
	char *end;
	long x = strtol(v, &end, 10);

	assert_true(*v && *end == '\0');
	return x;
}

static bool flag(const char *v)
{
	assert_true(is(v, "0") || is(v, "1"));
	return is(v, "1");
}

static enum ts_psk_source source_of(const char *v)
{
	for (int i = 0; i < _TS_PSK_SOURCE_MAX; i++)
		if (is(v, ts_psk_source_names[i]))
			return (enum ts_psk_source)i;
	fail_msg("bad source %s", v);
	return 0;
}

/* Global edits: prune=1 suspend=1 node=NAME cap=N budget=N forced=TUNNEL
 * inflight=N batch=N jitter=PERCENT (agent/rotation)
 * complete.{cf,ike,kernel,store}=0 stale=KIND:TUNNEL:OWNED[:OBJECT] */
static void edit_global(struct world *w, const char *k, const char *v)
{
	if (is(k, "prune"))
		w->d.agent.prune = flag(v);
	else if (is(k, "suspend"))
		w->d.agent.suspend = flag(v);
	else if (is(k, "node"))
		snprintf(w->d.agent.node_name, sizeof(w->d.agent.node_name), "%s", v);
	else if (is(k, "manage"))
		w->d.cloudflare.manage_tunnels = flag(v);
	else if (is(k, "cap"))
		w->d.agent.max_rotations_per_pass = (uint32_t)num(v);
	else if (is(k, "budget"))
		w->budget = (uint32_t)num(v);
	else if (is(k, "inflight"))
		w->d.agent.rotation_max_in_flight = (uint32_t)num(v);
	else if (is(k, "batch"))
		w->d.agent.rotation_bulk_batch_size = (uint32_t)num(v);
	else if (is(k, "jitter"))
		w->d.agent.rotation_max_age_jitter = (uint32_t)num(v);
	else if (is(k, "settle"))
		w->d.agent.settle_time = (uint32_t)num(v);
	else if (is(k, "forced")) {
		snprintf(w->forced_names[w->n_forced], sizeof(w->forced_names[0]), "%s", v);
		w->forced[w->n_forced] = w->forced_names[w->n_forced];
		w->n_forced++;
	} else if (is(k, "drop_last")) /* the glue observed nothing for the last ones */
		w->o.n_tunnels = NT - (size_t)num(v);
	else if (is(k, "complete.cf"))
		w->o.cf_complete = flag(v);
	else if (is(k, "complete.ike"))
		w->o.ike_complete = flag(v);
	else if (is(k, "complete.kernel"))
		w->o.kernel_complete = flag(v);
	else if (is(k, "complete.store"))
		w->o.store_complete = flag(v);
	else if (is(k, "stale")) {
		struct ts_stale_object *s = &w->stale[w->o.n_stale++];
		char kind[32] = "", tunnel[64] = "", object[64] = "";
		int owned = 0;

		assert_true(sscanf(v, "%31[^:]:%63[^:]:%d:%63s", kind, tunnel, &owned, object) >=
			    3);
		if (is(tunnel, "-"))
			tunnel[0] = '\0';
		s->kind = is(kind, "conn")  ? TS_STALE_IKE_CONN
			  : is(kind, "key") ? TS_STALE_IKE_KEY
			  : is(kind, "sa")  ? TS_STALE_KERNEL_SA
					    : TS_STALE_KERNEL_POLICY;
		snprintf(s->tunnel, sizeof(s->tunnel), "%s", tunnel);
		snprintf(s->object, sizeof(s->object), "%s", object[0] ? object : kind);
		s->owned = owned;
	} else
		fail_msg("unknown global edit %s", k);
}

/* Per-tunnel edits, "tN.field=value"; ages in seconds before NOW. */
static void edit_tunnel(struct world *w, int i, const char *k, const char *v)
{
	struct ts_tunnel *t = &w->t[i];
	struct ts_observed_tunnel *o = &w->ot[i];
	struct ts_key_record *r = &w->rec[i];
	struct ts_journal_entry *j = &w->jnl[i];

	if (is(k, "enabled"))
		t->enabled = flag(v);
	else if (is(k, "gateway"))
		snprintf(t->gateway, sizeof(t->gateway), "%s", v);
	else if (is(k, "group"))
		snprintf(t->redundancy_group, sizeof(t->redundancy_group), "%s", v);
	else if (is(k, "source")) {
		t->psk.source = source_of(v);
		r->source = t->psk.source;
	} else if (is(k, "max_age"))
		t->psk.max_age = (uint64_t)num(v);
	else if (is(k, "rotate_on_auth"))
		t->psk.rotate_on_auth_failure = flag(v);
	else if (is(k, "threshold"))
		t->psk.auth_failure_threshold = (uint32_t)num(v);
	else if (is(k, "customer_endpoint"))
		ip(&t->customer_endpoint, v);
	else if (is(k, "record")) {
		if (is(v, "none"))
			o->store.record = NULL;
		else if (is(v, "other-id"))
			snprintf(r->tunnel_id, sizeof(r->tunnel_id), "%032x", 0xbad);
		else
			fail_msg("record=%s", v);
	} else if (is(k, "age"))
		r->applied_at = NOW - num(v) * TS_USEC_PER_SEC;
	else if (is(k, "gen"))
		r->generation = (uint64_t)num(v);
	else if (is(k, "traffic"))
		o->kernel.traffic_both_ways = flag(v);
	else if (is(k, "record.lgo"))
		r->last_generated_on = num(v) ? NOW - num(v) * TS_USEC_PER_SEC : 0;
	else if (is(k, "store.ok"))
		o->store.ok = flag(v);
	else if (is(k, "journal")) {
		memcpy(j->tunnel, t->name, sizeof(j->tunnel));
		memcpy(j->tunnel_id, t->id, sizeof(j->tunnel_id));
		j->source = t->psk.source;
		j->attempt = 1;
		j->started_at = NOW - 60 * TS_USEC_PER_SEC;
		j->step = is(v, "prepared") ? TS_JOURNAL_PREPARED
			  : is(v, "remote") ? TS_JOURNAL_REMOTE
			  : is(v, "local")  ? TS_JOURNAL_LOCAL
					    : TS_JOURNAL_COMMITTED;
		o->store.journal = j;
	} else if (is(k, "cf.ok"))
		o->cf.ok = flag(v);
	else if (is(k, "cf.present"))
		o->cf.present = flag(v);
	else if (is(k, "cf.lgo"))
		o->cf.last_generated_on = NOW - num(v) * TS_USEC_PER_SEC;
	else if (is(k, "cf.customer_endpoint"))
		ip(&o->cf.customer_endpoint, v);
	else if (is(k, "cf.cloudflare_endpoint"))
		ip(&o->cf.cloudflare_endpoint, v);
	else if (is(k, "cf.interface_address"))
		assert_int_equal(ts_prefix_parse(v, &w->cft[i].interface_address), 0);
	else if (is(k, "cf.description")) {
		snprintf(w->cf_desc[i], sizeof(w->cf_desc[i]), "%s", v);
		w->cft[i].description = w->cf_desc[i];
	} else if (is(k, "cf.replay"))
		w->cft[i].replay_protection = flag(v);
	else if (is(k, "cf.hc_rate"))
		snprintf(w->cft[i].health_check.rate, sizeof(w->cft[i].health_check.rate), "%s", v);
	else if (is(k, "cf.no_hc"))
		memset(&w->cft[i].health_check, 0, sizeof(w->cft[i].health_check));
	else if (is(k, "cf.unlisted")) /* glue without the listed properties */
		o->cf.tunnel = NULL;
	else if (is(k, "decl.description")) {
		snprintf(w->decl_desc[i], sizeof(w->decl_desc[i]), "%s", v);
		t->cf.description = w->decl_desc[i];
	} else if (is(k, "decl.replay"))
		t->cf.has_replay_protection = true, t->cf.replay_protection = flag(v);
	else if (is(k, "decl.hc_enabled"))
		t->cf.has_hc_enabled = true, t->cf.hc_enabled = flag(v);
	else if (is(k, "decl.hc_rate"))
		snprintf(t->cf.hc_rate, sizeof(t->cf.hc_rate), "%s", v);
	else if (is(k, "decl.hc_target"))
		ip(&t->cf.hc_target, v);
	else if (is(k, "ike.ok"))
		o->ike.ok = flag(v);
	else if (is(k, "conn"))
		o->ike.conn_loaded = !is(v, "missing"), o->ike.conn_equal = is(v, "equal");
	else if (is(k, "conn_change")) {
		/* FIELD:OLD:NEW, "?" = not known */
		size_t n = o->ike.conn_changes.n;
		struct ts_change *ch = &w->chg[i][n];
		char(*val)[64] = w->chg_val[i][n];

		assert_true(n < 4);
		memset(ch, 0, sizeof(*ch));
		assert_int_equal(sscanf(v, "%39[^:]:%63[^:]:%63s", ch->field, val[0], val[1]), 3);
		ch->old_value = is(val[0], "?") ? NULL : val[0];
		ch->new_value = is(val[1], "?") ? NULL : val[1];
		o->ike.conn_changes = (struct ts_changes){ w->chg[i], n + 1 };
		o->ike.conn_equal = false;
	} else if (is(k, "key")) {
		o->ike.key_loaded = !is(v, "missing");
		snprintf(o->ike.key_fingerprint, sizeof(o->ike.key_fingerprint), "%s",
			 is(v, "differs")   ? FP_B
			 : is(v, "unknown") ? ""
					    : FP_A);
	} else if (is(k, "sa"))
		o->ike.sa_state = is(v, "none")		? TS_OBS_SA_NONE
				  : is(v, "connecting") ? TS_OBS_SA_CONNECTING
							: TS_OBS_SA_ESTABLISHED;
	else if (is(k, "child"))
		o->ike.child_up = flag(v);
	else if (is(k, "authfail"))
		o->ike.auth_failures = (uint32_t)num(v), o->ike.last_auth_failure = NOW - 10;
	else if (is(k, "authfail_age"))
		o->ike.last_auth_failure = NOW - num(v) * TS_USEC_PER_SEC;
	else if (is(k, "kernel.ok"))
		o->kernel.ok = flag(v);
	else if (is(k, "pair"))
		o->kernel.sa_pair_ok = flag(v);
	else if (is(k, "policies"))
		o->kernel.policies_ok = flag(v);
	else if (is(k, "hard"))
		o->kernel.hard_expired = flag(v);
	else if (is(k, "file"))
		o->keyfile.ok = !is(v, "unreadable"),
		snprintf(o->keyfile.fingerprint, sizeof(o->keyfile.fingerprint), "%s",
			 is(v, "changed") ? FP_B : FP_A);
	else if (is(k, "down")) {
		/* the tunnel carries nothing: no SAs anywhere */
		o->ike.sa_state = TS_OBS_SA_NONE;
		o->ike.child_up = o->kernel.sa_pair_ok = o->kernel.policies_ok = false;
	} else
		fail_msg("unknown tunnel edit %s", k);
}

static void world_edit(struct world *w, const char *e)
{
	char buf[128], *eq, *k;

	snprintf(buf, sizeof(buf), "%s", e);
	eq = strchr(buf, '=');
	assert_non_null(eq);
	*eq = '\0';
	k = buf;
	if (k[0] == 't' && k[1] >= '1' && k[1] <= '0' + NT && k[2] == '.')
		edit_tunnel(w, k[1] - '1', k + 3, eq + 1);
	else
		edit_global(w, k, eq + 1);
}

struct exp {
	enum ts_action_kind kind;
	const char *tunnel;
	enum ts_plane plane;
	enum ts_plan_cause cause;
};

struct tcase {
	const char *name;
	const char *edits[MAX_EDIT];
	struct exp exp[MAX_EXP];
	size_t n_exp;
	/* When set: every action's changes, "TUNNEL KIND FIELD: OLD -> NEW"
	 * joined with "; " ("?" for a value not known). */
	const char *changes;
};

#define K(x) TS_ACTION_##x
#define P(x) TS_PLANE_##x
#define C(x) TS_CAUSE_##x
#define E(...) \
	.exp = { __VA_ARGS__ }, .n_exp = sizeof((struct exp[]){ __VA_ARGS__ }) / sizeof(struct exp)
#define NONE .n_exp = 0

static const struct tcase cases[] = {
	/* ---- baseline ---- */
	{ "in sync: empty plan", { NULL }, NONE },
	{ "key young, below every threshold", { "t1.age=86399", "t1.authfail=2" }, NONE },

	/* ---- rotation causes ---- */
	{ "bootstrap: no key record",
	  { "t1.record=none", "t1.key=missing" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(BOOTSTRAP) }) },
	{ "record for another tunnel id",
	  { "t2.record=other-id" },
	  E({ K(ROTATE), "t2", P(CLOUDFLARE), C(RECORD_MISMATCH) }) },
	{ "max age reached",
	  { "t1.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "max age 0 = no limit", { "t1.max_age=0", "t1.age=99999999" }, NONE },
	{ "regenerated on Cloudflare",
	  { "t3.cf.lgo=60" },
	  E({ K(ROTATE), "t3", P(CLOUDFLARE), C(REGENERATED) }) },
	/* Issue 9: no baseline (a write answer without psk_metadata, an
	 * older record) decides nothing; the agent adopts the list's value. */
	{ "record without last_generated_on baseline, Cloudflare has one: nothing",
	  { "t1.record.lgo=0" },
	  NONE },
	{ "Cloudflare last_generated_on older than record: nothing", { "t1.cf.lgo=172800" }, NONE },
	{ "key file changed",
	  { "t1.source=file", "t1.file=changed" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(FILE_CHANGED) }) },
	{ "key file unchanged: nothing", { "t1.source=file" }, NONE },
	{ "bootstrap from an unreadable key file: report, no rotation",
	  { "t1.source=file", "t1.file=unreadable", "t1.record=none" },
	  E({ K(REPORT), "t1", P(CONFIG), C(FILE_UNREADABLE) }) },
	{ "key file past max age: report (operator must replace it)",
	  { "t1.source=file", "t1.age=2592000" },
	  E({ K(REPORT), "t1", P(STORE), C(FILE_KEY_AGED) }) },
	{ "auth failures at threshold",
	  { "t2.authfail=3", "t2.sa=none", "t2.child=0" },
	  E({ K(ROTATE), "t2", P(CLOUDFLARE), C(AUTH_FAILURES) }) },
	{ "auth failures, rotate-on-auth-failure off: report and initiate",
	  { "t2.authfail=5", "t2.rotate_on_auth=0", "t2.sa=none", "t2.child=0" },
	  E({ K(INITIATE), "t2", P(IKE), C(SA_DOWN) },
	    { K(REPORT), "t2", P(IKE), C(AUTH_FAILURES) }) },
	{ "auth failures older than the current key: ignored",
	  { "t2.authfail=5", "t2.authfail_age=90000" },
	  NONE },
	{ "auth failures while the IKE daemon lacks the key: load-key, no rotation",
	  { "t2.authfail=5", "t2.key=missing", "t2.sa=none", "t2.child=0" },
	  E({ K(LOAD_KEY), "t2", P(IKE), C(KEY_MISSING) },
	    { K(INITIATE), "t2", P(IKE), C(SA_DOWN) }) },
	{ "auth failures while the IKE daemon holds another key: load-key",
	  { "t2.authfail=5", "t2.key=differs" },
	  E({ K(LOAD_KEY), "t2", P(IKE), C(KEY_DIFFERS) }) },
	{ "forced rotation of a disabled or unknown tunnel: reported",
	  { "forced=t2", "forced=nope", "t2.enabled=0" },
	  E({ K(REPORT), "nope", P(CONFIG), C(FORCED) },
	    { K(REPORT), "t2", P(CONFIG), C(FORCED) }) },
	{ "forced rotation of a healthy tunnel",
	  { "forced=t4" },
	  E({ K(ROTATE), "t4", P(CLOUDFLARE), C(FORCED) }) },
	{ "generate source: its own phase, after the bulk ones",
	  { "t1.source=generate", "t1.age=2592000", "t2.age=2592000", "t3.record=none",
	    "t3.key=missing" },
	  E({ K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(BOOTSTRAP) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },

	/* ---- Cloudflare-side properties ---- */
	{ "interface_address changed on Cloudflare: reported old -> new",
	  { "t2.cf.interface_address=10.9.9.0/31" },
	  E({ K(REPORT), "t2", P(CLOUDFLARE), C(CF_DIFFERS) }),
	  .changes = "t2 report interface_address: 10.9.9.0/31 -> 10.0.1.0/31" },
	{ "manage-tunnels: corrected through the update call, 2 requests",
	  { "manage=1", "t2.cf.interface_address=10.9.9.0/31" },
	  E({ K(UPDATE_TUNNEL), "t2", P(CLOUDFLARE), C(CF_DIFFERS) }),
	  .changes = "t2 update-tunnel interface_address: 10.9.9.0/31 -> 10.0.1.0/31" },
	{ "manage-tunnels, budget short: reported, not sent",
	  { "manage=1", "budget=1", "t2.cf.interface_address=10.9.9.0/31" },
	  E({ K(REPORT), "t2", P(CLOUDFLARE), C(BUDGET) }) },
	{ "undeclared properties are Cloudflare's: nothing",
	  { "t1.cf.description=by hand", "t1.cf.replay=1", "t1.cf.hc_rate=high", "t1.cf.no_hc=1" },
	  NONE },
	{ "declared description, replay protection, health check: each compared",
	  { "t1.decl.description=fra1 primary", "t1.cf.description=old", "t1.decl.replay=1",
	    "t1.decl.hc_enabled=0", "t1.decl.hc_rate=high", "t1.decl.hc_target=10.0.0.1" },
	  E({ K(REPORT), "t1", P(CLOUDFLARE), C(CF_DIFFERS) }),
	  .changes =
		  "t1 report description: old -> fra1 primary; t1 report replay_protection: "
		  "false -> true; t1 report health_check.enabled: true -> false; t1 report "
		  "health_check.rate: mid -> high; t1 report health_check.target:  -> 10.0.0.1" },
	{ "declared values equal to Cloudflare's: nothing",
	  { "t1.decl.description=same", "t1.cf.description=same", "t1.decl.replay=0",
	    "t1.decl.hc_rate=mid" },
	  NONE },
	{ "endpoint and property drift together: one action, endpoints cause",
	  { "manage=1", "t3.cf.customer_endpoint=203.0.113.99",
	    "t3.cf.interface_address=10.7.0.0/31" },
	  E({ K(UPDATE_TUNNEL), "t3", P(CLOUDFLARE), C(ENDPOINTS_DIFFER) }),
	  .changes = "t3 update-tunnel customer_endpoint: 203.0.113.99 -> 203.0.113.3; t3 "
		     "update-tunnel interface_address: 10.7.0.0/31 -> 10.0.2.0/31" },
	{ "only the endpoints known (glue without the listing): endpoints compared",
	  { "t1.cf.unlisted=1", "t1.cf.interface_address=10.9.9.0/31" },
	  NONE },
	{ "Cloudflare unread: no drift decided",
	  { "complete.cf=0", "t2.cf.interface_address=10.9.9.0/31" },
	  E({ K(REPORT), "", P(CLOUDFLARE), C(INCOMPLETE) }) },

	/* ---- IKE daemon ---- */
	{ "connection missing",
	  { "t1.conn=missing" },
	  E({ K(LOAD_CONN), "t1", P(IKE), C(CONN_MISSING) }) },
	{ "connection differs",
	  { "t2.conn=differs" },
	  E({ K(UPDATE_CONN), "t2", P(IKE), C(CONN_DIFFERS) }) },
	{ "declared leaves differ: update-conn with each change, no rotation",
	  { "t2.conn_change=child.esp_proposals:aes256gcm16-ecp384-noesn:aes128gcm16-ecp384-noesn",
	    "t2.conn_change=dpd_delay:10:30" },
	  E({ K(UPDATE_CONN), "t2", P(IKE), C(CONN_DIFFERS) }),
	  .changes = "t2 update-conn child.esp_proposals: aes256gcm16-ecp384-noesn -> "
		     "aes128gcm16-ecp384-noesn; t2 update-conn dpd_delay: 10 -> 30" },
	{ "a leaf not recorded: old value unknown",
	  { "t3.conn_change=child.if_id_in:?:42" },
	  E({ K(UPDATE_CONN), "t3", P(IKE), C(CONN_DIFFERS) }),
	  .changes = "t3 update-conn child.if_id_in: ? -> 42" },
	{ "update-conn of a rotating tunnel: both, config first",
	  { "t1.conn_change=child.replay_window:0:64", "t1.age=2592000" },
	  E({ K(UPDATE_CONN), "t1", P(IKE), C(CONN_DIFFERS) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }),
	  .changes = "t1 update-conn child.replay_window: 0 -> 64; t1 rotate key: " FP_A
		     " -> ?; t1 rotate generation: 1 -> 2" },
	{ "update-conn while the IKE daemon is unread: nothing decided",
	  { "t1.conn_change=dpd_delay:10:30", "complete.ike=0" },
	  E({ K(REPORT), "", P(IKE), C(INCOMPLETE) }) },
	{ "key missing in IKE: load-shared, not a rotation",
	  { "t1.key=missing" },
	  E({ K(LOAD_KEY), "t1", P(IKE), C(KEY_MISSING) }) },
	{ "key differs in IKE",
	  { "t1.key=differs" },
	  E({ K(LOAD_KEY), "t1", P(IKE), C(KEY_DIFFERS) }) },
	{ "key loaded, fingerprint unknown: trusted", { "t1.key=unknown" }, NONE },
	{ "IKE SA down",
	  { "t3.sa=none", "t3.child=0" },
	  E({ K(INITIATE), "t3", P(IKE), C(SA_DOWN) }) },
	{ "IKE SA connecting: wait", { "t3.sa=connecting", "t3.child=0" }, NONE },
	{ "CHILD SA down", { "t3.child=0" }, E({ K(INITIATE), "t3", P(IKE), C(CHILD_DOWN) }) },
	{ "everything missing in IKE (charon restarted): key before conn, then initiate",
	  { "t1.conn=missing", "t1.key=missing", "t1.sa=none", "t1.child=0" },
	  E({ K(LOAD_KEY), "t1", P(IKE), C(KEY_MISSING) },
	    { K(LOAD_CONN), "t1", P(IKE), C(CONN_MISSING) },
	    { K(INITIATE), "t1", P(IKE), C(SA_DOWN) }) },

	/* ---- kernel ---- */
	{ "kernel SA pair missing while IKE up: reauth that tunnel only",
	  { "t2.pair=0" },
	  E({ K(REAUTH), "t2", P(IKE), C(KERNEL_SA_MISSING) }) },
	{ "kernel policies missing while IKE up",
	  { "t4.policies=0" },
	  E({ K(REAUTH), "t4", P(IKE), C(KERNEL_POLICY_MISSING) }) },
	{ "hard expiry without replacement",
	  { "t1.pair=0", "t1.hard=1" },
	  E({ K(REAUTH), "t1", P(IKE), C(HARD_EXPIRED) }) },
	{ "hard expiry with a replacement pair: nothing", { "t1.hard=1" }, NONE },
	{ "kernel pair missing but IKE down: initiate, not reauth",
	  { "t2.down=1" },
	  E({ K(INITIATE), "t2", P(IKE), C(SA_DOWN) }) },

	/* ---- Cloudflare reports ---- */
	{ "endpoints differ: reported, never fixed",
	  { "t1.cf.customer_endpoint=192.0.2.9" },
	  E({ K(REPORT), "t1", P(CLOUDFLARE), C(ENDPOINTS_DIFFER) }) },
	{ "Cloudflare endpoint differs",
	  { "t2.cf.cloudflare_endpoint=192.0.2.1" },
	  E({ K(REPORT), "t2", P(CLOUDFLARE), C(ENDPOINTS_DIFFER) }) },
	{ "tunnel missing on Cloudflare: report, no rotation even when due, no initiate",
	  { "t1.cf.present=0", "t1.age=9999999", "t1.sa=none", "t1.child=0" },
	  E({ K(REPORT), "t1", P(CLOUDFLARE), C(CF_MISSING) }) },

	/* ---- stale objects ---- */
	{ "stale objects, prune off: reported only",
	  { "stale=conn:old:1", "stale=sa:old:1:0xc0ffee" },
	  E({ K(REPORT), "old", P(IKE), C(STALE) }, { K(REPORT), "old", P(KERNEL), C(STALE) }) },
	{ "stale objects, prune on: removed first, conn before kernel objects",
	  { "prune=1", "stale=policy:gone:1", "stale=sa:gone:1", "stale=conn:gone:1",
	    "stale=key:gone:1", "t1.conn=missing" },
	  E({ K(UNLOAD_CONN), "gone", P(IKE), C(STALE) },
	    { K(UNLOAD_KEY), "gone", P(IKE), C(STALE) },
	    { K(DELETE_SA), "gone", P(KERNEL), C(STALE) },
	    { K(DELETE_POLICY), "gone", P(KERNEL), C(STALE) },
	    { K(LOAD_CONN), "t1", P(IKE), C(CONN_MISSING) }) },
	{ "objects not owned by the agent: never touched", { "prune=1", "stale=sa:x:0" }, NONE },
	{ "objects of a disabled tunnel: not stale",
	  { "prune=1", "t2.enabled=0", "stale=sa:t2:1", "stale=conn:t2:1" },
	  NONE },
	{ "objects of another gateway's tunnel: not stale, not reported",
	  { "prune=1", "t3.gateway=edge2", "stale=policy:t3:1", "stale=sa:t3:1" },
	  NONE },
	{ "owned object of unknown tunnel, prune on: deleted",
	  { "prune=1", "stale=sa:-:1:0xbeef" },
	  E({ K(DELETE_SA), "", P(KERNEL), C(STALE) }) },

	/* ---- managed set ---- */
	{ "disabled tunnel untouched even when broken",
	  { "t1.enabled=0", "t1.record=none", "t1.conn=missing", "t1.sa=none" },
	  NONE },
	{ "other gateway's tunnel untouched",
	  { "t2.gateway=edge2", "t2.age=9999999", "t2.sa=none", "t2.child=0" },
	  NONE },
	{ "tunnel assigned to this node is managed",
	  { "t2.gateway=edge1", "t2.sa=none", "t2.child=0" },
	  E({ K(INITIATE), "t2", P(IKE), C(SA_DOWN) }) },

	/* ---- journal ---- */
	{ "journal at prepared: resume via Cloudflare, no new rotation even when due",
	  { "t1.journal=prepared", "t1.age=9999999" },
	  E({ K(RESUME), "t1", P(CLOUDFLARE), C(JOURNAL) }) },
	{ "journal at remote: resume locally, no load-key/initiate meanwhile",
	  { "t2.journal=remote", "t2.key=differs", "t2.sa=none", "t2.child=0" },
	  E({ K(RESUME), "t2", P(IKE), C(JOURNAL) }) },
	{ "journal at local: resume to commit",
	  { "t3.journal=local" },
	  E({ K(RESUME), "t3", P(STORE), C(JOURNAL) }) },
	{ "journal and missing connection: resume first, then load-conn",
	  { "t1.journal=remote", "t1.conn=missing" },
	  E({ K(RESUME), "t1", P(IKE), C(JOURNAL) },
	    { K(LOAD_CONN), "t1", P(IKE), C(CONN_MISSING) }) },
	{ "forced rotation with a journal: resume instead",
	  { "forced=t1", "t1.journal=prepared" },
	  E({ K(RESUME), "t1", P(CLOUDFLARE), C(JOURNAL) }) },

	/* ---- trust: incomplete or corrupt observations ---- */
	{ "corrupt store record: no bootstrap, reported",
	  { "t1.store.ok=0" },
	  E({ K(REPORT), "t1", P(STORE), C(STORE_CORRUPT) }) },
	{ "store not read at all: nothing from absence",
	  { "complete.store=0", "t1.record=none" },
	  E({ K(REPORT), "", P(STORE), C(INCOMPLETE) }) },
	{ "Cloudflare read failed: no rotation, no missing report; local fixes go on",
	  { "complete.cf=0", "t1.cf.present=0", "t2.record=none", "t2.key=missing",
	    "t3.conn=missing" },
	  E({ K(LOAD_CONN), "t3", P(IKE), C(CONN_MISSING) },
	    { K(REPORT), "", P(CLOUDFLARE), C(INCOMPLETE) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(INCOMPLETE) }) },
	{ "one tunnel not read from Cloudflare: regeneration not judged",
	  { "t1.cf.ok=0", "t1.cf.lgo=10" },
	  E({ K(REPORT), "t1", P(CLOUDFLARE), C(INCOMPLETE) }) },
	{ "IKE dump incomplete: no load/initiate from absence",
	  { "complete.ike=0", "t1.conn=missing", "t1.sa=none", "t2.key=missing" },
	  E({ K(REPORT), "", P(IKE), C(INCOMPLETE) }) },
	{ "kernel dump incomplete: no reauth from a missing pair",
	  { "complete.kernel=0", "t2.pair=0" },
	  E({ K(REPORT), "", P(KERNEL), C(INCOMPLETE) }) },
	{ "one tunnel not read from the kernel",
	  { "t4.kernel.ok=0", "t4.policies=0" },
	  E({ K(REPORT), "t4", P(KERNEL), C(INCOMPLETE) }) },
	{ "tunnel missing from the observation: one report, nothing done",
	  { "drop_last=1", "t4.record=none" },
	  E({ K(REPORT), "t4", P(CONFIG), C(INCOMPLETE) }) },
	{ "IKE not read: auth failures not judged, max age deferred (key not loadable)",
	  { "t1.ike.ok=0", "t1.authfail=9", "t2.ike.ok=0", "t2.age=2592000" },
	  E({ K(REPORT), "t1", P(IKE), C(INCOMPLETE) }, { K(REPORT), "t2", P(IKE), C(INCOMPLETE) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(INCOMPLETE) }) },

	/* ---- redundancy groups ---- */
	{ "group: one rotation at a time",
	  { "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(GROUP_BUSY) }) },
	{ "group: up tunnel waits while its peer is down; the down peer is initiated",
	  { "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.down=1" },
	  E({ K(INITIATE), "t2", P(IKE), C(SA_DOWN) },
	    { K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(GROUP_PEER_DOWN) }) },
	{ "group: broken tunnel rotates first, the routine one waits",
	  { "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.authfail=4", "t2.down=1" },
	  E({ K(ROTATE), "t2", P(CLOUDFLARE), C(AUTH_FAILURES) },
	    { K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(GROUP_BUSY) }) },
	{ "group: journaled peer blocks a new rotation",
	  { "t1.group=g", "t2.group=g", "t1.journal=local", "t2.age=2592000" },
	  E({ K(RESUME), "t1", P(STORE), C(JOURNAL) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(GROUP_BUSY) }) },
	{ "group: down tunnel may rotate while its peer is down (bootstrap of a pair)",
	  { "t1.group=g", "t2.group=g", "t1.record=none", "t1.key=missing", "t1.down=1",
	    "t2.record=none", "t2.key=missing", "t2.down=1" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(BOOTSTRAP) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(GROUP_BUSY) }) },
	{ "group: disabled and other gateway's members are not peers",
	  { "t1.group=g", "t2.group=g", "t3.group=g", "t2.enabled=0", "t3.gateway=edge2",
	    "t2.down=1", "t3.down=1", "t1.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "different groups rotate together",
	  { "t1.group=g1", "t2.group=g2", "t1.age=2592000", "t2.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "group: peer with unreadable store counts as busy",
	  { "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.store.ok=0" },
	  E({ K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(GROUP_BUSY) },
	    { K(REPORT), "t2", P(STORE), C(STORE_CORRUPT) }) },

	/* ---- settle window (t2 rotated AGE s ago: generation 2) ---- */
	{ "settle: peer rotated 60 s ago, settle 150 s: wait",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=2", "t2.age=60" },
	  E({ K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(GROUP_SETTLING) }) },
	{ "settle: time passed, but the peer's new SAs carried no traffic both ways: wait",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=2", "t2.age=200",
	    "t2.traffic=0" },
	  E({ K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(GROUP_SETTLING) }) },
	{ "settle: time passed and traffic both ways: rotate",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=2", "t2.age=200" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "settle: an idle peer holds the others back 10 settle times at most",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=2", "t2.age=1500",
	    "t2.traffic=0" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "settle: a peer's first key is no rotation (bootstrap): no wait",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=1", "t2.age=60" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "settle: an operator's rotate does not wait",
	  { "settle=150", "forced=t1", "t1.group=g", "t2.group=g", "t2.gen=2", "t2.age=60" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(FORCED) }) },
	{ "settle: settle-time 0 turns it off",
	  { "settle=0", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.gen=2", "t2.age=1",
	    "t2.traffic=0" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "settle: a tunnel that is down rotates at once (it carries nothing)",
	  { "settle=150", "t1.group=g", "t2.group=g", "t1.authfail=4", "t1.down=1", "t2.gen=2",
	    "t2.age=60" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(AUTH_FAILURES) }) },
	{ "settle: other groups do not wait",
	  { "settle=150", "t1.group=g1", "t2.group=g2", "t1.age=2592000", "t2.gen=2", "t2.age=60" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },

	/* ---- cap and budget ---- */
	{ "cap: max rotations per pass, broken first then by name",
	  { "cap=2", "t1.age=2592000", "t2.age=2592000", "t3.age=2592000", "t4.record=none",
	    "t4.key=missing" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t4", P(CLOUDFLARE), C(BOOTSTRAP) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(ROTATION_CAP) },
	    { K(DEFER_ROTATION), "t3", P(CLOUDFLARE), C(ROTATION_CAP) }) },
	{ "cap: forced rotations are not counted",
	  { "cap=1", "forced=t3", "t1.age=2592000", "t2.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(FORCED) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(ROTATION_CAP) }) },
	{ "budget 1: every bulk rotation fits in the one call",
	  { "budget=1", "t1.age=2592000", "t2.age=2592000", "t3.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "budget 2: bulk call + one generate, the other generate deferred",
	  { "budget=2", "t1.source=generate", "t2.source=generate", "t1.age=2592000",
	    "t2.age=2592000", "t3.age=2592000" },
	  E({ K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(BUDGET) }) },
	{ "budget 0: nothing that calls Cloudflare; local repairs go on",
	  { "budget=0", "t1.age=2592000", "t2.journal=prepared", "t3.journal=remote",
	    "t4.key=missing" },
	  E({ K(RESUME), "t3", P(IKE), C(JOURNAL) }, { K(LOAD_KEY), "t4", P(IKE), C(KEY_MISSING) },
	    { K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(BUDGET) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(BUDGET) }) },
	{ "budget: a resume at prepared shares the bulk call with new rotations",
	  { "budget=1", "t1.journal=prepared", "t2.age=2592000" },
	  E({ K(RESUME), "t1", P(CLOUDFLARE), C(JOURNAL) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "budget: resume of a generate at prepared costs a call before new rotations",
	  { "budget=1", "t1.source=generate", "t1.journal=prepared", "t2.age=2592000" },
	  E({ K(RESUME), "t1", P(CLOUDFLARE), C(JOURNAL) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(BUDGET) }) },

	/* ---- rotation at scale: blast radius, bulk batches, jitter ---- */
	{ "in flight: journaled rotations count against max-in-flight",
	  { "inflight=2", "t1.journal=remote", "t2.age=2592000", "t3.age=2592000",
	    "t4.age=2592000" },
	  E({ K(RESUME), "t1", P(IKE), C(JOURNAL) }, { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t3", P(CLOUDFLARE), C(ROTATION_CAP) },
	    { K(DEFER_ROTATION), "t4", P(CLOUDFLARE), C(ROTATION_CAP) }) },
	{ "in flight: a forced rotation is counted, never deferred",
	  { "inflight=1", "forced=t3", "t1.age=2592000", "t2.age=2592000" },
	  E({ K(ROTATE), "t3", P(CLOUDFLARE), C(FORCED) },
	    { K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(ROTATION_CAP) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(ROTATION_CAP) }) },
	{ "in flight: unlimited by default, every due key in one pass",
	  { "t1.age=2592000", "t2.age=2592000", "t3.age=2592000", "t4.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t4", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "in flight: group rules still hold within the limit",
	  { "inflight=3", "t1.group=g", "t2.group=g", "t1.age=2592000", "t2.age=2592000",
	    "t3.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(GROUP_BUSY) }) },
	{ "batch 2, budget 1: the third key would open a second bulk call",
	  { "batch=2", "budget=1", "t1.age=2592000", "t2.age=2592000", "t3.age=2592000",
	    "t4.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t3", P(CLOUDFLARE), C(BUDGET) },
	    { K(DEFER_ROTATION), "t4", P(CLOUDFLARE), C(BUDGET) }) },
	{ "batch 2, budget 2: two bulk calls carry four keys",
	  { "batch=2", "budget=2", "t1.age=2592000", "t2.age=2592000", "t3.age=2592000",
	    "t4.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t4", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "batch 2: a resume at prepared takes a place in the first batch",
	  { "batch=2", "budget=1", "t1.journal=prepared", "t2.age=2592000", "t3.age=2592000" },
	  E({ K(RESUME), "t1", P(CLOUDFLARE), C(JOURNAL) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(DEFER_ROTATION), "t3", P(CLOUDFLARE), C(BUDGET) }) },
	/* max-age 30 days, jitter 10 %: due after 2338282 (t1), 2532560 (t2),
	 * 2440185 (t3) and 2410083 s (t4); fixed by the tunnel ids. */
	{ "jitter: keys of the same age fall due per tunnel",
	  { "jitter=10", "t1.age=2440185", "t2.age=2440185", "t3.age=2440185", "t4.age=2440185" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t3", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t4", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "jitter: one second before a tunnel's due time, nothing",
	  { "jitter=10", "t1.age=2338281", "t3.age=2440184" },
	  NONE },
	{ "jitter: never later than max-age",
	  { "jitter=50", "t2.age=2592000" },
	  E({ K(ROTATE), "t2", P(CLOUDFLARE), C(MAX_AGE) }) },

	/* ---- suspend, ordering, combinations ---- */
	{ "suspend: the plan is still computed",
	  { "suspend=1", "t1.age=2592000", "t2.conn=missing" },
	  E({ K(LOAD_CONN), "t2", P(IKE), C(CONN_MISSING) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) }) },
	{ "every phase at once, in the fixed order",
	  { "prune=1", "stale=conn:zz:1", "t4.journal=prepared", "t3.conn=differs",
	    "t2.source=generate", "t2.record=none", "t2.key=missing", "t1.age=2592000", "t3.pair=0",
	    "t1.cf.customer_endpoint=192.0.2.50" },
	  E({ K(UNLOAD_CONN), "zz", P(IKE), C(STALE) },
	    { K(RESUME), "t4", P(CLOUDFLARE), C(JOURNAL) },
	    { K(UPDATE_CONN), "t3", P(IKE), C(CONN_DIFFERS) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(BOOTSTRAP) },
	    { K(REAUTH), "t3", P(IKE), C(KERNEL_SA_MISSING) },
	    { K(REPORT), "t1", P(CLOUDFLARE), C(ENDPOINTS_DIFFER) }) },
	{ "rotation supersedes load-key, initiate and reauth of that tunnel",
	  { "t1.age=2592000", "t1.key=differs", "t1.pair=0", "t2.record=none", "t2.down=1",
	    "t2.key=missing" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(ROTATE), "t2", P(CLOUDFLARE), C(BOOTSTRAP) }) },
	{ "deferred rotation keeps the old key loaded and the SA up",
	  { "cap=1", "t1.age=2592000", "t2.age=2592000", "t2.key=missing", "t2.sa=none",
	    "t2.child=0" },
	  E({ K(LOAD_KEY), "t2", P(IKE), C(KEY_MISSING) },
	    { K(ROTATE), "t1", P(CLOUDFLARE), C(MAX_AGE) },
	    { K(INITIATE), "t2", P(IKE), C(SA_DOWN) },
	    { K(DEFER_ROTATION), "t2", P(CLOUDFLARE), C(ROTATION_CAP) }) },
	{ "bootstrap without any key: no initiate while deferred",
	  { "budget=0", "t1.record=none", "t1.key=missing", "t1.down=1" },
	  E({ K(DEFER_ROTATION), "t1", P(CLOUDFLARE), C(BUDGET) }) },
	{ "regeneration wins over max age as cause",
	  { "t1.cf.lgo=5", "t1.age=2592000" },
	  E({ K(ROTATE), "t1", P(CLOUDFLARE), C(REGENERATED) }) },
};

static void run_case(const struct tcase *c, struct ts_plan **ret_plan, struct world *w)
{
	struct ts_plan_input in;
	struct ts_plan *plan = NULL;

	world_init(w);
	for (size_t i = 0; i < MAX_EDIT && c->edits[i]; i++)
		world_edit(w, c->edits[i]);
	in = (struct ts_plan_input){ .desired = &w->d,
				     .observed = &w->o,
				     .now = NOW,
				     .api_budget = w->budget,
				     .forced = w->forced,
				     .n_forced = w->n_forced };
	assert_int_equal(ts_plan_compute(&in, &plan), 0);
	*ret_plan = plan;
}

static void dump(const struct ts_plan *plan)
{
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *a = &plan->actions[i];

		print_message("    got: %s %s %s %s  (%s)\n",
			      ts_plan_action_kind_to_string(a->kind),
			      a->tunnel[0] ? a->tunnel : "-", ts_plane_to_string(a->plane),
			      ts_plan_cause_to_string(a->cause), a->reason);
	}
}

static bool change_equal(const struct ts_change *a, const struct ts_change *b)
{
	return is(a->field, b->field) && !a->old_value == !b->old_value &&
	       !a->new_value == !b->new_value &&
	       (!a->old_value || is(a->old_value, b->old_value)) &&
	       (!a->new_value || is(a->new_value, b->new_value));
}

static bool action_equal(const struct ts_action *a, const struct ts_action *b)
{
	if (a->kind != b->kind || a->plane != b->plane || a->cause != b->cause ||
	    !is(a->tunnel, b->tunnel) || !is(a->reason, b->reason) || a->source != b->source ||
	    a->stale_index != b->stale_index || a->apply != b->apply ||
	    a->changes.n != b->changes.n)
		return false;
	for (size_t i = 0; i < a->changes.n; i++)
		if (!change_equal(&a->changes.items[i], &b->changes.items[i]))
			return false;
	return true;
}

/* Every change of the plan as one line (see struct tcase). */
static void changes_text(const struct ts_plan *plan, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *a = &plan->actions[i];

		for (size_t k = 0; k < a->changes.n && len < size; k++) {
			const struct ts_change *c = &a->changes.items[k];

			len += (size_t)snprintf(buf + len, size - len, "%s%s %s %s: %s -> %s",
						len ? "; " : "", a->tunnel,
						ts_plan_action_kind_to_string(a->kind), c->field,
						c->old_value ? c->old_value : "?",
						c->new_value ? c->new_value : "?");
		}
	}
}

static void test_table(void **state)
{
	size_t failed = 0;

	for (size_t n = 0; n < TS_ARRAY_SIZE(cases); n++) {
		const struct tcase *c = &cases[n];
		struct ts_plan *plan;
		struct world w;
		bool ok;

		run_case(c, &plan, &w);
		ok = plan->n_actions == c->n_exp;
		for (size_t i = 0; ok && i < c->n_exp; i++) {
			const struct ts_action *a = &plan->actions[i];
			const struct exp *e = &c->exp[i];

			ok = a->kind == e->kind && strcmp(a->tunnel, e->tunnel) == 0 &&
			     a->plane == e->plane && a->cause == e->cause && a->reason[0];
		}
		if (ok && c->changes) {
			char got[1024];

			changes_text(plan, got, sizeof(got));
			if (!is(got, c->changes)) {
				print_message("    changes: %s\n    wanted:  %s\n", got,
					      c->changes);
				ok = false;
			}
		}
		if (!ok) {
			print_message("FAILED case %zu: %s\n", n, c->name);
			for (size_t i = 0; i < c->n_exp; i++)
				print_message("    want: %s %s %s %s\n",
					      ts_plan_action_kind_to_string(c->exp[i].kind),
					      c->exp[i].tunnel[0] ? c->exp[i].tunnel : "-",
					      ts_plane_to_string(c->exp[i].plane),
					      ts_plan_cause_to_string(c->exp[i].cause));
			dump(plan);
			failed++;
		}
		/* The same input gives the same plan. */
		{
			struct ts_plan *again;
			struct world w2;

			run_case(c, &again, &w2);
			assert_int_equal(again->n_actions, plan->n_actions);
			for (size_t i = 0; i < plan->n_actions; i++)
				assert_true(action_equal(&again->actions[i], &plan->actions[i]));
			ts_plan_free(again);
		}
		ts_plan_free(plan);
	}
	print_message("%zu planner cases, %zu failed\n", TS_ARRAY_SIZE(cases), failed);
	assert_true(TS_ARRAY_SIZE(cases) >= 40);
	assert_int_equal(failed, 0);
}

static const struct tcase *find_case(const char *name)
{
	for (size_t n = 0; n < TS_ARRAY_SIZE(cases); n++)
		if (strcmp(cases[n].name, name) == 0)
			return &cases[n];
	fail_msg("no case %s", name);
	return NULL;
}

static void test_suspend_marks_nothing_to_apply(void **state)
{
	struct ts_plan *plan;
	struct world w;

	run_case(find_case("suspend: the plan is still computed"), &plan, &w);
	assert_true(plan->suspended);
	assert_true(plan->n_actions == 2);
	for (size_t i = 0; i < plan->n_actions; i++)
		assert_false(plan->actions[i].apply);
	assert_true(ts_plan_has_changes(plan));
	ts_plan_free(plan);

	run_case(find_case("every phase at once, in the fixed order"), &plan, &w);
	assert_false(plan->suspended);
	for (size_t i = 0; i < plan->n_actions; i++)
		assert_int_equal(plan->actions[i].apply,
				 plan->actions[i].kind != TS_ACTION_REPORT &&
					 plan->actions[i].kind != TS_ACTION_DEFER_ROTATION);
	ts_plan_free(plan);
}

static void test_api_calls_counted(void **state)
{
	struct ts_plan *plan;
	struct world w;

	run_case(find_case("in sync: empty plan"), &plan, &w);
	assert_int_equal(plan->n_actions, 0);
	assert_int_equal(plan->api_calls, 0);
	assert_false(ts_plan_has_changes(plan));
	ts_plan_free(plan);

	run_case(find_case("budget 1: every bulk rotation fits in the one call"), &plan, &w);
	assert_int_equal(plan->api_calls, 1);
	assert_int_equal(plan->n_rotations, 3);
	ts_plan_free(plan);

	run_case(find_case("batch 2, budget 2: two bulk calls carry four keys"), &plan, &w);
	assert_int_equal(plan->api_calls, 2);
	assert_int_equal(plan->n_rotations, 4);
	ts_plan_free(plan);

	run_case(find_case("generate source: its own phase, after the bulk ones"), &plan, &w);
	assert_int_equal(plan->api_calls, 2);
	assert_int_equal(plan->n_rotations, 3);
	for (size_t i = 0; i < plan->n_actions; i++)
		assert_int_equal(plan->actions[i].source, strcmp(plan->actions[i].tunnel, "t1") == 0
								  ? TS_PSK_SOURCE_GENERATE
								  : TS_PSK_SOURCE_RANDOM);
	ts_plan_free(plan);

	run_case(find_case("stale objects, prune on: removed first, conn before kernel objects"),
		 &plan, &w);
	/* Removals point back at the observed object they remove. */
	for (size_t i = 0; i < 4; i++) {
		const struct ts_action *a = &plan->actions[i];

		assert_true(a->stale_index < w.o.n_stale);
		assert_string_equal(w.stale[a->stale_index].tunnel, "gone");
	}
	assert_int_equal(plan->actions[0].stale_index, 2); /* the conn was listed third */
	assert_int_equal(plan->actions[4].stale_index, TS_PLAN_NO_OBJECT);
	ts_plan_free(plan);
}

/* Due ages of many tunnels with one max-age: within [max-age less the
 * jitter, max-age], spread over that window, and the same on every call. */
static void test_jitter_spread(void **state)
{
	struct ts_tunnel t = { 0 };
	size_t bucket[10] = { 0 };

	(void)state;
	t.psk.max_age = 1000000;
	assert_int_equal(ts_tunnel_key_due_age(&t, 0), 1000000);
	for (unsigned i = 0; i < 10000; i++) {
		uint64_t due;

		snprintf(t.id, sizeof(t.id), "%032x", i);
		due = ts_tunnel_key_due_age(&t, 20);
		assert_int_equal(due, ts_tunnel_key_due_age(&t, 20));
		assert_true(due <= 1000000 && due > 800000);
		bucket[(1000000 - due) / 20000]++;
	}
	/* 10 slices of the window, 1,000 expected in each. */
	for (size_t i = 0; i < 10; i++)
		if (bucket[i] < 850 || bucket[i] > 1150)
			fail_msg("slice %zu holds %zu of 10000 due times", i, bucket[i]);
	t.psk.max_age = 0;
	assert_int_equal(ts_tunnel_key_due_age(&t, 20), 0);
}

/* The output order does not depend on the order of the config. */
static void test_order_independent_of_input(void **state)
{
	const struct tcase *c = find_case("every phase at once, in the fixed order");
	struct ts_plan *a, *b;
	struct world w1, w2;
	struct ts_tunnel tmp;

	run_case(c, &a, &w1);
	world_init(&w2);
	for (size_t i = 0; c->edits[i]; i++)
		world_edit(&w2, c->edits[i]);
	/* reverse the declared tunnels */
	for (int i = 0; i < NT / 2; i++) {
		tmp = w2.t[i];
		w2.t[i] = w2.t[NT - 1 - i];
		w2.t[NT - 1 - i] = tmp;
	}
	{
		struct ts_plan_input in = {
			.desired = &w2.d, .observed = &w2.o, .now = NOW, .api_budget = w2.budget
		};

		assert_int_equal(ts_plan_compute(&in, &b), 0);
	}
	assert_int_equal(a->n_actions, b->n_actions);
	for (size_t i = 0; i < a->n_actions; i++) {
		assert_int_equal(a->actions[i].kind, b->actions[i].kind);
		assert_string_equal(a->actions[i].tunnel, b->actions[i].tunnel);
		assert_string_equal(a->actions[i].reason, b->actions[i].reason);
	}
	ts_plan_free(a);
	ts_plan_free(b);
}

/* The settle deferral says how long is left, as plan shows it. */
static void test_settle_time_left(void **state)
{
	struct ts_plan *plan;
	struct world w;

	(void)state;
	run_case(find_case("settle: peer rotated 60 s ago, settle 150 s: wait"), &plan, &w);
	assert_int_equal(plan->n_actions, 1);
	assert_non_null(strstr(plan->actions[0].reason, "t2's new SAs settle: 90 s left"));
	ts_plan_free(plan);
	run_case(find_case("settle: time passed, but the peer's new SAs carried no traffic both "
			   "ways: wait"),
		 &plan, &w);
	assert_non_null(strstr(plan->actions[0].reason, "1300 s left (no traffic both ways yet)"));
	ts_plan_free(plan);
}

static void test_format(void **state)
{
	struct ts_plan *plan;
	struct world w;
	char *text = NULL;

	run_case(find_case("in sync: empty plan"), &plan, &w);
	assert_int_equal(ts_plan_format_table(plan, &text), 0);
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(ts_plan_format_json(plan, &text), 0);
	assert_string_equal(text, "{\"version\":2,\"suspended\":false,\"api_calls\":0,"
				  "\"rotations\":0,\"summary\":{\"remove\":0,\"resume\":0,"
				  "\"load\":0,\"update\":0,\"rotate\":0,\"restore\":0,"
				  "\"traffic\":0,\"deferred\":0,\"reported\":0},\"actions\":[]}");
	free(text);
	assert_int_equal(ts_plan_format_summary(plan, &text), 0);
	assert_string_equal(text, "Plan: nothing to do.\n");
	free(text);
	ts_plan_free(plan);

	run_case(find_case("suspend: the plan is still computed"), &plan, &w);
	assert_int_equal(ts_plan_format_table(plan, &text), 0);
	assert_non_null(strstr(text, "PHASE"));
	assert_non_null(strstr(text, "rotate-bulk     rotate            t1"));
	assert_non_null(strstr(text, "[suspended]"));
	free(text);
	assert_int_equal(ts_plan_format_json(plan, &text), 0);
	assert_non_null(strstr(text, "{\"version\":2,\"suspended\":true,\"api_calls\":1,"
				     "\"rotations\":1,"));
	assert_non_null(strstr(text, "{\"phase\":\"config\",\"kind\":\"load-conn\",\"tunnel\":"
				     "\"t2\",\"plane\":\"ike\",\"cause\":\"conn-missing\","
				     "\"apply\":false,\"reason\":\"connection not loaded\","
				     "\"changes\":[]}"));
	assert_non_null(strstr(text, "\"kind\":\"rotate\",\"tunnel\":\"t1\",\"plane\":"
				     "\"cloudflare\",\"cause\":\"max-age\",\"source\":\"random\""));
	free(text);
	ts_plan_free(plan);

	/* Every action shows what changes, old -> new, keys as fingerprints;
	 * the summary counts each kind. */
	run_case(find_case("update-conn of a rotating tunnel: both, config first"), &plan, &w);
	assert_int_equal(ts_plan_format_table(plan, &text), 0);
	assert_non_null(strstr(text, "    child.replay_window: 0 -> 64\n"));
	assert_non_null(strstr(text, "    key: " FP_A " -> (unknown)\n"));
	assert_non_null(strstr(text, "    generation: 1 -> 2\n"));
	assert_non_null(strstr(text, "\nPlan: 1 to update, 1 to rotate.\n"));
	free(text);
	assert_int_equal(ts_plan_format_json(plan, &text), 0);
	assert_non_null(strstr(text, "\"summary\":{\"remove\":0,\"resume\":0,\"load\":0,"
				     "\"update\":1,\"rotate\":1,"));
	assert_non_null(strstr(text, "\"changes\":[{\"field\":\"child.replay_window\","
				     "\"old\":\"0\",\"new\":\"64\"}]"));
	assert_non_null(strstr(text, "{\"field\":\"key\",\"old\":\"" FP_A "\",\"new\":null}"));
	free(text);
	ts_plan_free(plan);
	run_case(find_case("deferred rotation keeps the old key loaded and the SA up"), &plan, &w);
	assert_int_equal(ts_plan_format_summary(plan, &text), 0);
	assert_string_equal(text, "Plan: 1 to load, 1 to rotate, 1 to bring up, 1 deferred.\n");
	free(text);
	ts_plan_free(plan);

	/* Object names from the planes are escaped. */
	run_case(find_case("stale objects, prune on: removed first, conn before kernel objects"),
		 &plan, &w);
	snprintf(plan->actions[0].reason, sizeof(plan->actions[0].reason), "a\"b\\c\nd");
	assert_int_equal(ts_plan_format_json(plan, &text), 0);
	assert_non_null(strstr(text, "\"reason\":\"a\\\"b\\\\c\\u000ad\""));
	free(text);
	ts_plan_free(plan);
}

static void test_name_tables_complete(void **state)
{
	for (int i = 0; i < _TS_ACTION_MAX; i++)
		assert_string_not_equal(ts_plan_action_kind_to_string((enum ts_action_kind)i),
					"unknown");
	for (int i = 0; i < _TS_CAUSE_MAX; i++)
		assert_non_null(ts_plan_cause_to_string((enum ts_plan_cause)i));
	for (int i = 0; i < _TS_PHASE_MAX; i++)
		assert_non_null(ts_plan_phase_to_string((enum ts_plan_phase)i));
	assert_string_equal(ts_plan_cause_to_string(_TS_CAUSE_MAX), "unknown");
	assert_string_equal(ts_plane_to_string(_TS_PLANE_MAX), "unknown");
}

static void test_bad_input(void **state)
{
	struct ts_plan *plan = (struct ts_plan *)0x1;
	struct ts_plan_input in = { 0 };

	assert_int_equal(ts_plan_compute(&in, &plan), -EINVAL);
	assert_ptr_equal(plan, (struct ts_plan *)0x1);
	assert_int_equal(ts_plan_compute(NULL, &plan), -EINVAL);
	ts_plan_free(NULL);
}

/* Every kind of drift the planner knows is covered by at least one case.
 * The interfaces' and routes' (phase traffic, planned by traffic.c from
 * the kernel's state) are covered by test-traffic. */
static bool traffic_kind(int k)
{
	return k >= TS_ACTION_DELETE_IFACE && k <= TS_ACTION_SET_ROUTE_METRIC;
}

static void test_every_cause_covered(void **state)
{
	bool seen[_TS_CAUSE_MAX] = { false };
	bool kinds[_TS_ACTION_MAX] = { false };

	for (size_t n = 0; n < TS_ARRAY_SIZE(cases); n++)
		for (size_t i = 0; i < cases[n].n_exp; i++) {
			seen[cases[n].exp[i].cause] = true;
			kinds[cases[n].exp[i].kind] = true;
		}
	for (int i = 0; i < TS_CAUSE_IFACE_MISSING; i++)
		if (!seen[i])
			fail_msg("no case for cause %s", ts_plan_cause_to_string(i));
	for (int i = 0; i < _TS_ACTION_MAX; i++)
		if (!kinds[i] && !traffic_kind(i))
			fail_msg("no case for kind %s", ts_plan_action_kind_to_string(i));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_suspend_marks_nothing_to_apply),
		cmocka_unit_test(test_api_calls_counted),
		cmocka_unit_test(test_jitter_spread),
		cmocka_unit_test(test_order_independent_of_input),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_settle_time_left),
		cmocka_unit_test(test_name_tables_complete),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_every_cause_covered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
