/* Fake planes (fake_planes.h). */
#include "fake_planes.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ike/ike.h"
#include "reconcile/agent_internal.h"
#include "route/route.h"
#include "store/conn_record.h"
#include "xfrm/xfrm.h"

#define START_REAL ((ts_usec_t)1800000000 * TS_USEC_PER_SEC + 123456)

const char *fake_answer_name(enum fake_answer a)
{
	static const char *const names[_FAKE_ANSWER_MAX] = {
		[FAKE_APPLIED] = "applied", [FAKE_UNAPPLIED] = "unapplied",
		[FAKE_MISSING] = "missing", [FAKE_LOST] = "lost",
		[FAKE_RESET] = "reset",	    [FAKE_4XX] = "4xx",
		[FAKE_5XX] = "5xx",	    [FAKE_MALFORMED] = "malformed",
	};
	return a < _FAKE_ANSWER_MAX ? names[a] : "?";
}

static int index_of_id(const struct fake *f, const char *id)
{
	for (size_t i = 0; i < f->n_world; i++)
		if (strcmp(f->t[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int index_of_name(const struct fake *f, const char *name)
{
	for (size_t i = 0; i < f->n_world; i++)
		if (strcmp(f->t[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* A time as a writer in this unit puts it (0: 1 us). */
static ts_usec_t written(ts_usec_t t, ts_usec_t unit, bool rounds)
{
	if (unit <= 1)
		return t;
	return (rounds ? t + unit / 2 : t) / unit * unit;
}

/* --- clock ------------------------------------------------------------------ */

static ts_usec_t f_now_realtime(void *ctx)
{
	return ((struct fake *)ctx)->real;
}

static ts_usec_t f_now_monotonic(void *ctx)
{
	return ((struct fake *)ctx)->mono;
}

static void f_wait(void *ctx, int timeout_ms)
{
	struct fake *f = ctx;

	f->waits++;
	f->mono += (ts_usec_t)timeout_ms * 1000;
	f->real += (ts_usec_t)timeout_ms * 1000;
}

/* --- Cloudflare ------------------------------------------------------------- */

static void step(struct fake *f, const char *what, const char *tunnel)
{
	if (f->on_step)
		f->on_step(f, what, tunnel);
}

static int f_cf_list(void *ctx, struct ts_cf_tunnel_list *ret, struct ts_cf_error *err)
{
	struct fake *f = ctx;

	step(f, "cf_list", NULL);
	f->lists++;
	memset(ret, 0, sizeof(*ret));
	if (f->list_fails || f->lists == f->list_fail_at) {
		err->kind = TS_CF_ERR_TRANSPORT;
		snprintf(err->detail, sizeof(err->detail), "fake: list fails");
		return -ETIMEDOUT;
	}
	ret->tunnels = calloc(f->n_world + 1, sizeof(*ret->tunnels));
	if (!ret->tunnels)
		return -ENOMEM;
	for (size_t i = 0; i < f->n_world; i++) {
		struct ts_cf_tunnel *ct = &ret->tunnels[ret->n_tunnels];

		if (!f->cf[i].present)
			continue;
		snprintf(ct->id, sizeof(ct->id), "%s", f->t[i].id);
		ct->name = strdup(f->t[i].name);
		if (!ct->name) {
			ts_cf_tunnel_list_done(ret);
			return -ENOMEM;
		}
		ct->customer_endpoint = f->t[i].customer_endpoint;
		ct->cloudflare_endpoint = f->t[i].cloudflare_endpoint;
		ct->interface_address =
			f->cf[i].ifaddr_drift ? f->cf[i].ifaddr : f->t[i].interface_address;
		if (f->cf[i].last_generated_on) {
			ct->has_psk_generated_on = true;
			ct->psk_generated_on =
				written(f->cf[i].last_generated_on, f->list_unit, f->list_rounds);
			ct->psk_generated_unit = f->list_unit;
		}
		ret->n_tunnels++;
	}
	return 0;
}

/* The daemon's full pass lists this way: events that come during the
 * request ("cf_list_request", where a test changes the world) are handed
 * to ready, as the real planes do when an event socket turns readable. */
static int f_cf_list_watch(void *ctx, int (*ready)(void *userdata), void *userdata,
			   struct ts_cf_tunnel_list *ret, struct ts_cf_error *err)
{
	struct fake *f = ctx;

	f->list_watches++;
	/* Three rounds of the request: events may come in each; ready's
	 * "stop" ends the watching, as in the real client. */
	for (unsigned round = 0; round < 3; round++) {
		bool pending;

		step(f, "cf_list_request", NULL);
		pending = f->event_queued || f->event_read || f->event_nameless;
		for (size_t i = 0; i < FAKE_MAX_TUNNELS; i++)
			pending |= f->event_named[i];
		if (!pending)
			continue;
		if (ready(userdata) != 0)
			break;
		f->list_readies++;
	}
	return f_cf_list(ctx, ret, err);
}

static struct fake_call next_call(struct fake_call *script, size_t *n)
{
	struct fake_call c = { FAKE_APPLIED, true };

	if (*n > 0) {
		c = script[0];
		memmove(script, script + 1, (*n - 1) * sizeof(*script));
		(*n)--;
	}
	if (c.answer == FAKE_APPLIED)
		c.taken = true;
	if (c.answer == FAKE_UNAPPLIED || c.answer == FAKE_4XX)
		c.taken = false;
	return c;
}

static void cf_take(struct fake *f, size_t i, const struct ts_secret *key, bool told)
{
	ts_secret_free(f->cf[i].key);
	f->cf[i].key = ts_secret_dup(key);
	f->cf[i].last_generated_on = f->real;
	f->cf[i].told = told;
}

static int call_error(enum fake_answer a, struct ts_cf_error *err, bool generate)
{
	switch (a) {
	case FAKE_LOST:
		err->kind = generate ? TS_CF_ERR_OUTCOME_UNKNOWN : TS_CF_ERR_TRANSPORT;
		snprintf(err->detail, sizeof(err->detail), "fake: timed out");
		return generate ? -TS_CF_EOUTCOME_UNKNOWN : -ETIMEDOUT;
	case FAKE_RESET:
		err->kind = generate ? TS_CF_ERR_OUTCOME_UNKNOWN : TS_CF_ERR_TRANSPORT;
		snprintf(err->detail, sizeof(err->detail), "fake: connection reset");
		return generate ? -TS_CF_EOUTCOME_UNKNOWN : -ECONNRESET;
	case FAKE_4XX:
		err->kind = TS_CF_ERR_HTTP;
		err->http_status = 400;
		snprintf(err->detail, sizeof(err->detail), "fake: HTTP 400");
		return -EREMOTEIO;
	case FAKE_5XX:
		err->kind = generate ? TS_CF_ERR_OUTCOME_UNKNOWN : TS_CF_ERR_HTTP;
		err->http_status = 500;
		snprintf(err->detail, sizeof(err->detail), "fake: HTTP 500");
		return generate ? -TS_CF_EOUTCOME_UNKNOWN : -EREMOTEIO;
	case FAKE_MALFORMED:
		err->kind = generate ? TS_CF_ERR_OUTCOME_UNKNOWN : TS_CF_ERR_PROTOCOL;
		snprintf(err->detail, sizeof(err->detail), "fake: malformed answer");
		return generate ? -TS_CF_EOUTCOME_UNKNOWN : -EBADMSG;
	default:
		return 0;
	}
}

static int f_cf_psk_set(void *ctx, const struct ts_cf_psk_entry *entries, size_t n,
			bool validate_only, struct ts_cf_psk_set_result *ret,
			struct ts_cf_error *err)
{
	struct fake *f = ctx;
	struct fake_call c;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (validate_only)
		return 0;
	f->set_calls++;
	f->mono += f->set_delay;
	f->real += f->set_delay;
	c = next_call(f->set_script, &f->n_set_script);
	ret->outcomes = calloc(n + 1, sizeof(*ret->outcomes));
	if (!ret->outcomes)
		return -ENOMEM;
	ret->n_outcomes = n;
	for (size_t k = 0; k < n; k++) {
		int i = index_of_id(f, entries[k].tunnel_id);
		struct ts_cf_psk_outcome *oc = &ret->outcomes[k];
		enum fake_answer a = c.answer;
		bool taken = c.taken;

		if (i < 0)
			continue;
		if (f->entry_answer[i]) {
			a = (enum fake_answer)(f->entry_answer[i] - 1);
			taken = a == FAKE_APPLIED || (a == FAKE_MISSING && c.taken);
		}
		snprintf(oc->tunnel_id, sizeof(oc->tunnel_id), "%s", f->t[i].id);
		if (taken)
			cf_take(f, (size_t)i, entries[k].psk, true);
		if (a == FAKE_APPLIED) {
			oc->status = TS_CF_PSK_APPLIED;
			ret->n_applied++;
			if (!f->write_omits_time) {
				oc->has_last_generated_on = true;
				oc->last_generated_on = written(f->cf[i].last_generated_on,
								f->write_unit, f->write_rounds);
				oc->last_generated_unit = f->write_unit;
			}
		} else if (a == FAKE_UNAPPLIED) {
			oc->status = TS_CF_PSK_UNAPPLIED;
			oc->reason = strdup("fake: tunnel busy");
		} else {
			oc->status = TS_CF_PSK_MISSING;
		}
	}
	r = call_error(c.answer, err, false);
	if (r < 0)
		ts_cf_psk_set_result_done(ret);
	return r;
}

static int f_cf_psk_generate(void *ctx, const char *tunnel_id, bool validate_only,
			     struct ts_cf_psk_generated *ret, struct ts_cf_error *err)
{
	struct fake *f = ctx;
	int i = index_of_id(f, tunnel_id);
	struct ts_secret *key = NULL;
	struct fake_call c;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (validate_only || i < 0)
		return i < 0 ? -ENOENT : 0;
	f->gen_calls++;
	c = next_call(f->gen_script, &f->n_gen_script);
	if (c.answer == FAKE_MISSING)
		c.answer = FAKE_APPLIED;
	if (c.taken) {
		r = ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &key);
		if (r < 0)
			return r;
		cf_take(f, (size_t)i, key, false);
	}
	r = call_error(c.answer, err, true);
	if (r < 0 || c.answer == FAKE_UNAPPLIED) {
		ts_secret_free(key);
		if (r == 0) {
			err->kind = TS_CF_ERR_HTTP;
			err->http_status = 409;
			r = -EREMOTEIO;
		}
		return r;
	}
	snprintf(ret->tunnel_id, sizeof(ret->tunnel_id), "%s", tunnel_id);
	ret->psk = key;
	f->cf[i].told = true;
	if (!f->write_omits_time) {
		ret->has_last_generated_on = true;
		ret->last_generated_on =
			written(f->cf[i].last_generated_on, f->write_unit, f->write_rounds);
		ret->last_generated_unit = f->write_unit;
	}
	return 0;
}

static uint32_t f_cf_budget(void *ctx)
{
	struct fake *f = ctx;

	return f->budget ? f->budget : 1000;
}

/* --- the IKE daemon --------------------------------------------------------- */

static void conn_name(const struct ts_tunnel *t, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", TS_IKE_CONN_PREFIX, t->name);
}

static int f_ike_observe(void *ctx, const struct ts_tunnel *tunnels, size_t n,
			 struct ts_ike_observed *ret)
{
	struct fake *f = ctx;

	f->observes++;
	f->mono += f->observe_delay;
	f->real += f->observe_delay;
	/* Drains the events first, as the real planes do. */
	if (f->event_queued) {
		f->event_queued = false;
		f->event_read = true;
	}
	if (f->ike_down)
		return -ENOTCONN;
	for (size_t k = 0; k < n; k++) {
		int i = index_of_name(f, tunnels[k].name);
		struct ts_ike_observed *io = &ret[k];
		const struct fake_ike_tunnel *it;

		memset(io, 0, sizeof(*io));
		snprintf(io->tunnel, sizeof(io->tunnel), "%s", tunnels[k].name);
		conn_name(&tunnels[k], io->conn_name, sizeof(io->conn_name));
		if (i < 0)
			continue;
		it = &f->ike[i];
		io->conn_loaded = io->conn_equal = it->conn_loaded;
		/* list-conns: the listed leaves of what was loaded. */
		for (unsigned l = 0; it->conn_loaded && l < _TS_LEAF_MAX; l++)
			if (ts_ike_leaf_listed[l] && it->conn.values[l] &&
			    !(io->listed.values[l] = strdup(it->conn.values[l])))
				return -ENOMEM;
		io->key_loaded = it->key != NULL;
		io->failures.auth_failures = it->auth_failures;
		if (it->up) {
			io->ike_state = TS_IKE_SA_ESTABLISHED;
			io->ike_unique_id = it->ike_id;
			io->n_ike_sas = 1 + (it->reauth_sa != FAKE_REAUTH_NONE) + (it->beside != 0);
			io->n_ike_unanswered = it->reauth_sa == FAKE_REAUTH_UNANSWERED;
			io->n_ike_answered = it->reauth_sa == FAKE_REAUTH_ANSWERED;
			io->ike_established_secs =
				(uint32_t)((f->real - it->up_since) / TS_USEC_PER_SEC);
			io->children = calloc(1, sizeof(*io->children));
			if (!io->children)
				return -ENOMEM;
			io->n_children = 1;
			io->children[0].state = TS_CHILD_SA_INSTALLED;
			io->children[0].unique_id = it->ike_id;
		}
	}
	step(f, "ike_observe", n == 1 ? tunnels[0].name : NULL);
	return 0;
}

/* The SAs alone: what list-conns and get-shared would say is not there. */
static int f_ike_observe_sas(void *ctx, const struct ts_tunnel *tunnels, size_t n,
			     struct ts_ike_observed *ret)
{
	struct fake *f = ctx;
	int r = f_ike_observe(ctx, tunnels, n, ret);

	f->observes--;
	f->sa_observes++;
	for (size_t k = 0; r == 0 && k < n; k++) {
		ret[k].conn_loaded = ret[k].conn_equal = ret[k].key_loaded = false;
		ts_ike_leaves_done(&ret[k].listed);
		ret[k].failures.auth_failures = 0;
	}
	return r;
}

static int f_ike_names(void *ctx, ts_ike_name_fn fn, void *userdata)
{
	struct fake *f = ctx;
	char name[TS_NAME_MAX + 8];
	int r;

	if (f->ike_down)
		return -ENOTCONN;
	for (size_t i = 0; i < f->n_world; i++) {
		conn_name(&f->t[i], name, sizeof(name));
		if (f->ike[i].conn_loaded && (r = fn(userdata, TS_IKE_NAME_CONN, name)) < 0)
			return r;
		if (f->ike[i].key && (r = fn(userdata, TS_IKE_NAME_KEY, name)) < 0)
			return r;
	}
	return 0;
}

static int load_conn(struct fake *f, int i)
{
	struct fake_ike_tunnel *it = &f->ike[i];

	ts_ike_leaves_done(&it->conn);
	it->conn_loaded = true;
	return ts_ike_leaves_render(&f->t[i], f->d.cloudflare.account_id, &it->conn);
}

static int load_key(struct fake *f, int i, const struct ts_secret *key)
{
	if (f->ike_down || i < 0)
		return -ENOTCONN;
	ts_secret_free(f->ike[i].key);
	f->ike[i].key = ts_secret_dup(key);
	f->ike[i].loads++;
	return 0;
}

static int f_ike_load(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key, char *err,
		      size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);
	int r = load_key(f, i, key);

	(void)err;
	(void)err_size;
	if (r == 0)
		r = load_conn(f, i);
	return r;
}

static int f_ike_load_conn(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);

	(void)err;
	(void)err_size;
	if (f->ike_down || i < 0)
		return -ENOTCONN;
	return load_conn(f, i);
}

/* update-conn: the key again when given, the connection, then new SAs
 * requested when asked and running (the fake does not tell CHILD from IKE
 * SAs: one SA, whose id changes when it is made again). A peer that does
 * not take the new SAs answers nothing: the agent waits for them. The new
 * SAs of a peer that refuses overlapping SAs or is slow are a new IKE SA
 * beside the old one, shown as charon shows a reauthentication's
 * (reauth_sa: unanswered, or answered until fake_reauth_complete/_fail);
 * unlike a reauthentication's, the old IKE SA stays beside it (beside)
 * until the update's finish terminates it. */
static int f_ike_update_conn(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			     bool reestablish, bool break_first,
			     struct ts_ike_update_sas *ret_before, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);
	struct fake_ike_tunnel *it;
	int r;

	(void)err;
	(void)err_size;
	memset(ret_before, 0, sizeof(*ret_before));
	if (f->ike_down || i < 0)
		return -ENOTCONN;
	it = &f->ike[i];
	it->updates++;
	if (key && (r = load_key(f, i, key)) < 0)
		return r;
	if ((r = load_conn(f, i)) < 0 || !it->up)
		return r;
	/* The SAs running before the load, whatever follows. */
	ret_before->n_ike = ret_before->n_child = 1;
	ret_before->ike[0] = it->ike_id;
	ret_before->child[0].ike = ret_before->child[0].child = it->ike_id;
	ret_before->child[0].installed = true;
	if (it->beside) {
		ret_before->n_ike = ret_before->n_child = 2;
		ret_before->ike[1] = it->beside;
		ret_before->child[1].ike = ret_before->child[1].child = it->beside;
		ret_before->child[1].installed = true;
	}
	if (!reestablish)
		return 0;
	it->reestablishes++;
	it->breaks += break_first;
	if (break_first) {
		/* Every IKE SA of the connection goes, a new one beside too. */
		it->ike_id = it->beside = 0, it->up = false;
		it->reauth_sa = FAKE_REAUTH_NONE;
	}
	if (it->update_fails)
		return 1; /* requested; nothing comes of it */
	if (!break_first && (it->refuses_overlap || it->reauth_slow)) {
		it->reauth_sa = it->refuses_overlap ? FAKE_REAUTH_UNANSWERED : FAKE_REAUTH_ANSWERED;
		it->update_under_way = !it->refuses_overlap;
		return 1;
	}
	it->up = true;
	it->ike_id = ++f->next_ike_id;
	it->up_since = f->real;
	return 1;
}

static int f_ike_update_finish(void *ctx, const struct ts_tunnel *t,
			       const struct ts_ike_update_sas *before, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);

	if (f->ike_down || i < 0)
		return -ENOTCONN;
	f->ike[i].finishes++;
	if (!f->ike[i].up || ts_ike_update_sas_had_child(before, f->ike[i].ike_id)) {
		snprintf(err, err_size, "fake: no new CHILD SA");
		return -EAGAIN;
	}
	f->ike[i].beside = 0; /* the old IKE SA terminated */
	return 0;
}

static int f_ike_load_key(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			  char *err, size_t err_size)
{
	(void)err;
	(void)err_size;
	return load_key(ctx, index_of_name(ctx, t->name), key);
}

/* The IKE daemon's names for tunnel i: "ts-NAME", connection and key. */
static int index_of_conn(const struct fake *f, const char *conn)
{
	size_t plen = strlen(TS_IKE_CONN_PREFIX);

	return strncmp(conn, TS_IKE_CONN_PREFIX, plen) == 0 ? index_of_name(f, conn + plen) : -1;
}

/* Terminates the connection's SAs, then unloads it. */
static int f_ike_unload_conn(void *ctx, const char *conn, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_conn(f, conn);

	(void)err;
	(void)err_size;
	if (f->ike_down)
		return -ENOTCONN;
	if (i < 0)
		return -ENOENT;
	f->ike[i].unloads++;
	f->ike[i].conn_loaded = f->ike[i].up = false;
	f->ike[i].ike_id = 0;
	ts_ike_leaves_done(&f->ike[i].conn);
	return 0;
}

static int f_ike_unload_key(void *ctx, const char *id, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_conn(f, id);

	(void)err;
	(void)err_size;
	if (f->ike_down)
		return -ENOTCONN;
	if (i < 0)
		return -ENOENT;
	f->ike[i].unloads++;
	ts_secret_free(f->ike[i].key);
	f->ike[i].key = NULL;
	return 0;
}

/* An exchange: up exactly when the loaded key is the one Cloudflare holds
 * and the peer answers. */
static int exchange(struct fake *f, const struct ts_tunnel *t)
{
	int i = index_of_name(f, t->name);
	struct fake_ike_tunnel *it;

	if (f->ike_down || i < 0)
		return -ENOTCONN;
	it = &f->ike[i];
	it->up = false;
	it->ike_id = 0;
	it->reauth_sa = FAKE_REAUTH_NONE;
	it->update_under_way = false;
	it->beside = 0;
	if (!it->reachable)
		return -ETIMEDOUT;
	if (!it->key || !f->cf[i].key || !ts_secret_equal(it->key, f->cf[i].key)) {
		it->auth_failures++;
		return -EIO;
	}
	it->up = true;
	it->ike_id = ++f->next_ike_id;
	it->up_since = f->real;
	return 0;
}

int fake_reauth_complete(struct fake *f, size_t i)
{
	struct fake_ike_tunnel *it = &f->ike[i];
	uint32_t old = it->ike_id;
	bool update = it->update_under_way;
	int r;

	assert(it->reauth_sa == FAKE_REAUTH_ANSWERED);
	r = exchange(f, &f->t[i]);
	/* update-conn's: the old IKE SA stays until the finish. */
	if (r == 0 && update)
		it->beside = old;
	return r;
}

void fake_reauth_fail(struct fake *f, size_t i)
{
	assert(f->ike[i].reauth_sa == FAKE_REAUTH_ANSWERED);
	f->ike[i].reauth_sa = FAKE_REAUTH_NONE;
	f->ike[i].update_under_way = false;
	f->ike[i].auth_failures++;
}

static int f_ike_initiate(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);
	int r;

	step(f, "initiate", t->name);
	f->event_queued = true;
	if (i >= 0) {
		f->ike[i].initiates++;
		f->event_named[i] = true;
	}
	r = exchange(f, t);
	if (r == 0 && f->initiate_slow) {
		/* charon 5.9's answer when its timeout ends first; the
		 * exchange goes on (here: it is done already). */
		snprintf(err, err_size, "CHILD_SA '%s%s' not established after 500ms",
			 TS_IKE_CONN_PREFIX, t->name);
		return -EIO;
	}
	return r;
}

static int f_ike_reauth(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);

	(void)err;
	(void)err_size;
	if (i >= 0)
		f->ike[i].reauths++;
	/* A second IKE SA refused (no answer) or slow: the old SAs carry on
	 * beside the new one, which charon's answer does not wait for. */
	if (i >= 0 && f->ike[i].up && (f->ike[i].refuses_overlap || f->ike[i].reauth_slow)) {
		f->ike[i].reauth_sa =
			f->ike[i].refuses_overlap ? FAKE_REAUTH_UNANSWERED : FAKE_REAUTH_ANSWERED;
		return -ETIMEDOUT;
	}
	return exchange(f, t);
}

static int f_ike_reinitiate(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);

	(void)err;
	(void)err_size;
	if (i >= 0)
		f->ike[i].reinitiates++;
	return exchange(f, t);
}

static void f_ike_failures(void *ctx, const char *conn, struct ts_ike_failures *ret)
{
	struct fake *f = ctx;
	int i = index_of_name(f, conn + strlen(TS_IKE_CONN_PREFIX));

	memset(ret, 0, sizeof(*ret));
	if (i >= 0)
		ret->auth_failures = f->ike[i].auth_failures;
}

static void f_ike_failures_reset(void *ctx, const char *conn)
{
	struct fake *f = ctx;
	int i = index_of_name(f, conn + strlen(TS_IKE_CONN_PREFIX));

	if (i >= 0)
		f->ike[i].auth_failures = 0;
}

static int f_ike_mbb_check(void *ctx, const char *conf, struct ts_mbb_check *ret)
{
	(void)ctx;
	(void)conf;
	memset(ret, 0, sizeof(*ret));
	ret->state = TS_MBB_ON;
	snprintf(ret->reason, sizeof(ret->reason), "fake");
	return 0;
}

static bool f_ike_take_restarted(void *ctx)
{
	(void)ctx;
	return false;
}

static int f_ike_follow_log(void *ctx, bool want)
{
	(void)ctx;
	(void)want;
	return 0;
}

/* --- the kernel: not checked (kernel-xfrm off) -------------------------- */

static int f_kernel_match(void *ctx, const struct ts_xfrm_expect *e, size_t n,
			  struct ts_xfrm_snapshot *snap, struct ts_xfrm_match_result *res)
{
	(void)ctx;
	(void)e;
	(void)n;
	(void)snap;
	(void)res;
	return -ENOTCONN;
}

static int f_kernel_delete(void *ctx, const struct ts_xfrm_stale *x)
{
	(void)ctx;
	(void)x;
	return -ENOTCONN;
}

/* --- the store: real, with one injectable failure ------------------------ */

static bool fail_now(struct fake *f, enum fake_store_op op)
{
	if (f->fail_op != op)
		return false;
	if (f->fail_after > 0) {
		f->fail_after--;
		return false;
	}
	return true;
}

static int f_store_load(void *ctx, struct ts_store_state **ret)
{
	step(ctx, "store_load", NULL);
	return ts_store_load(((struct fake *)ctx)->store, ret);
}

static int f_store_load_names(void *ctx, const char *const *names, size_t n,
			      struct ts_store_state **ret)
{
	return ts_store_load_names(((struct fake *)ctx)->store, names, n, ret);
}

static int f_store_begin(void *ctx, const struct ts_journal_entry *e)
{
	struct fake *f = ctx;

	if (fail_now(f, FAKE_STORE_BEGIN))
		return -EIO;
	f->store_writes++;
	return ts_store_journal_begin(f->store, e);
}

static int f_store_advance(void *ctx, const struct ts_journal_entry *e)
{
	struct fake *f = ctx;
	struct ts_journal_entry old = { 0 };
	enum fake_store_op op = e->step == TS_JOURNAL_REMOTE  ? FAKE_STORE_ADVANCE_REMOTE
				: e->step == TS_JOURNAL_LOCAL ? FAKE_STORE_ADVANCE_LOCAL
							      : FAKE_STORE_NONE;

	if (ts_store_journal_read(f->store, e->tunnel, &old) == 0 && old.step == e->step)
		op = FAKE_STORE_ADVANCE_ATTEMPT;
	ts_store_journal_entry_done(&old);
	if (fail_now(f, op))
		return -EIO;
	f->store_writes++;
	return ts_store_journal_advance(f->store, e);
}

static int f_store_commit(void *ctx, const char *tunnel, ts_usec_t at, struct ts_key_record *ret)
{
	struct fake *f = ctx;

	if (fail_now(f, FAKE_STORE_COMMIT))
		return -EIO;
	f->store_writes++;
	return ts_store_journal_commit(f->store, tunnel, at, ret);
}

static int f_store_discard(void *ctx, const char *tunnel)
{
	struct fake *f = ctx;

	if (fail_now(f, FAKE_STORE_DISCARD))
		return -EIO;
	f->store_writes++;
	return ts_store_journal_discard(f->store, tunnel);
}

static int f_store_adopt_baseline(void *ctx, const char *tunnel, const char *fp, ts_usec_t lgo,
				  ts_usec_t unit)
{
	struct fake *f = ctx;

	f->store_writes++;
	return ts_store_record_adopt_baseline(f->store, tunnel, fp, lgo, unit);
}

static int f_store_request_add(void *ctx, const char *tunnel, ts_usec_t at)
{
	return ts_store_request_add(((struct fake *)ctx)->store, tunnel, at);
}

static int f_store_request_remove(void *ctx, const char *tunnel)
{
	return ts_store_request_remove(((struct fake *)ctx)->store, tunnel);
}

static const char *f_store_error(void *ctx)
{
	return ts_store_last_error(((struct fake *)ctx)->store);
}

static const char *f_store_dir(void *ctx)
{
	return ts_store_dir(((struct fake *)ctx)->store);
}

static void f_fds(void *ctx, int *ike, int *xfrm)
{
	(void)ctx;
	*ike = *xfrm = -1;
}

static int f_process_events(void *ctx)
{
	struct fake *f = ctx;
	bool any = f->event_queued || f->event_read || f->event_nameless;

	for (size_t i = 0; i < FAKE_MAX_TUNNELS; i++)
		any |= f->event_named[i];
	f->event_queued = f->event_read = false;
	return any;
}

static int f_event_scope(void *ctx, char ***ret_names, size_t *ret_n)
{
	struct fake *f = ctx;
	char **names = calloc(FAKE_MAX_TUNNELS, sizeof(*names));
	size_t n = 0;

	*ret_names = NULL;
	*ret_n = 0;
	if (!names)
		abort();
	for (size_t i = 0; i < FAKE_MAX_TUNNELS; i++) {
		if (f->event_named[i] && !f->event_nameless && !(names[n++] = strdup(f->t[i].name)))
			abort();
		f->event_named[i] = false;
	}
	if (f->event_nameless || n == 0) {
		f->event_nameless = false;
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return 0;
	}
	*ret_names = names;
	*ret_n = n;
	return 1;
}

void fake_drift(struct fake *f, size_t i)
{
	f->ike[i].up = false;
	f->ike[i].ike_id = 0;
	f->event_queued = true;
	f->event_named[i] = true;
}

static int f_conn_record_read(void *ctx, const char *tunnel, struct ts_ike_leaves *ret)
{
	struct fake *f = ctx;

	return ts_conn_record_read(f->state_dir, tunnel, ret, NULL);
}

static int f_conn_record_write(void *ctx, const char *tunnel, const struct ts_ike_leaves *l)
{
	struct fake *f = ctx;

	return ts_conn_record_write(f->state_dir, tunnel, l);
}

static int f_conn_record_remove(void *ctx, const char *tunnel)
{
	struct fake *f = ctx;

	return ts_conn_record_remove(f->state_dir, tunnel);
}

static int f_conn_failing_read(void *ctx, const char *tunnel, ts_usec_t *ret)
{
	struct fake *f = ctx;

	return ts_conn_record_failing_read(f->state_dir, tunnel, ret);
}

static int f_conn_failing_write(void *ctx, const char *tunnel, ts_usec_t since)
{
	struct fake *f = ctx;

	return ts_conn_record_failing_write(f->state_dir, tunnel, since);
}

static int f_cf_update_tunnel(void *ctx, const struct ts_tunnel *t, bool validate_only,
			      struct ts_cf_tunnel *ret, struct ts_cf_error *err)
{
	struct fake *f = ctx;
	int i = index_of_name(f, t->name);

	(void)err;
	if (i < 0 || !f->cf[i].present) {
		err->kind = TS_CF_ERR_HTTP;
		err->http_status = 404;
		return -ENOENT;
	}
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->id, sizeof(ret->id), "%s", t->id);
	ret->interface_address = t->interface_address;
	if (!validate_only) {
		f->cf[i].ifaddr_drift = false;
		f->cf[i].updates++;
	}
	return 0;
}

/* --- the kernel's network side (route/route.h) ----------------------------
 * A model of what the kernel holds: the reads fill the adapter's structs,
 * the writes change the tables as the kernel would, after the adapter's
 * own decisions (ts_iface_decide, ts_route_decide_set). */

struct fake_link *fake_link_find(struct fake *f, const char *name)
{
	for (size_t i = 0; i < FAKE_MAX_LINKS; i++)
		if (f->links[i].present && strcmp(f->links[i].name, name) == 0)
			return &f->links[i];
	return NULL;
}

struct fake_link *fake_link_add(struct fake *f, const char *name, const char *kind)
{
	for (size_t i = 0; i < FAKE_MAX_LINKS; i++) {
		struct fake_link *l = &f->links[i];

		if (l->present)
			continue;
		memset(l, 0, sizeof(*l));
		l->present = true;
		snprintf(l->name, sizeof(l->name), "%s", name);
		snprintf(l->kind, sizeof(l->kind), "%s", kind);
		l->mtu = 1500;
		return l;
	}
	return NULL;
}

static void routes_through_gone(struct fake *f, const char *ifname)
{
	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++)
		if (f->routes[i].present && strcmp(f->routes[i].ifname, ifname) == 0)
			f->routes[i].present = false;
}

struct fake_route *fake_route_add(struct fake *f, const char *ifname, const char *dst,
				  uint32_t metric)
{
	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++) {
		struct fake_route *r = &f->routes[i];

		if (r->present)
			continue;
		memset(r, 0, sizeof(*r));
		if (ts_prefix_parse(dst, &r->dst) < 0)
			return NULL;
		r->present = true;
		snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
		r->metric = metric;
		return r;
	}
	return NULL;
}

struct fake_route *fake_route_find(struct fake *f, const char *ifname, const char *dst)
{
	struct ts_prefix p;

	if (ts_prefix_parse(dst, &p) < 0)
		return NULL;
	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++)
		if (f->routes[i].present && strcmp(f->routes[i].ifname, ifname) == 0 &&
		    ts_prefix_equal(&f->routes[i].dst, &p))
			return &f->routes[i];
	return NULL;
}

size_t fake_route_count(struct fake *f)
{
	size_t n = 0;

	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++)
		n += f->routes[i].present;
	return n;
}

static int f_route_list(void *ctx, struct ts_route_seen **ret_routes, size_t *ret_n)
{
	struct fake *f = ctx;
	struct ts_route_seen *v;
	size_t n = 0;

	if (f->net_read_fails)
		return -EIO;
	if (!(v = calloc(FAKE_MAX_ROUTES, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++) {
		if (!f->routes[i].present)
			continue;
		v[n].dst = f->routes[i].dst;
		snprintf(v[n].ifname, sizeof(v[n].ifname), "%s", f->routes[i].ifname);
		v[n].metric = f->routes[i].metric;
		n++;
	}
	*ret_routes = v;
	*ret_n = n;
	return 0;
}

static int f_route_set(void *ctx, const char *ifname, const struct ts_prefix *dst, uint32_t metric)
{
	struct fake *f = ctx;
	struct ts_route_seen *routes = NULL;
	struct ts_route_move mv;
	size_t n = 0;
	char p[TS_PREFIX_STRLEN];

	if (!fake_link_find(f, ifname))
		return -ENODEV;
	if (f_route_list(ctx, &routes, &n) < 0)
		return -EIO;
	ts_route_decide_set(routes, n, ifname, dst, metric, &mv);
	free(routes);
	if (mv.add && !fake_route_add(f, ifname, ts_prefix_format(dst, p, sizeof(p)), metric))
		return -ENOSPC;
	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++) {
		struct fake_route *r = &f->routes[i];

		if (r->present && strcmp(r->ifname, ifname) == 0 && ts_prefix_equal(&r->dst, dst) &&
		    r->metric != metric)
			r->present = false;
	}
	f->net_writes++;
	return 0;
}

static int f_route_delete(void *ctx, const struct ts_route_seen *rt)
{
	struct fake *f = ctx;

	for (size_t i = 0; i < FAKE_MAX_ROUTES; i++) {
		struct fake_route *r = &f->routes[i];

		if (r->present && strcmp(r->ifname, rt->ifname) == 0 &&
		    ts_prefix_equal(&r->dst, &rt->dst) && r->metric == rt->metric) {
			r->present = false;
			f->net_writes++;
			return 0;
		}
	}
	return -ENOENT;
}

static int f_iface_read(void *ctx, const char *ifname, struct ts_iface_seen *ret_seen)
{
	struct fake *f = ctx;
	struct fake_link *l = fake_link_find(f, ifname);
	struct ts_iface_seen seen = { .policy_off = -1 };

	if (f->net_read_fails)
		return -EIO;
	if (l) {
		seen.exists = true;
		seen.ifindex = (int)(l - f->links) + 1;
		snprintf(seen.kind, sizeof(seen.kind), "%s", l->kind);
		snprintf(seen.alias, sizeof(seen.alias), "%s", l->alias);
		seen.ikey = seen.okey = l->key;
		seen.local = l->local;
		seen.remote = l->remote;
		seen.if_id = l->if_id;
		seen.mtu = l->mtu;
		seen.up = l->up;
		seen.policy_off = l->policy_off;
		memcpy(seen.addr, l->addr, sizeof(seen.addr));
		seen.n_addr = l->n_addr;
	}
	*ret_seen = seen;
	return 0;
}

static int f_iface_list_owned(void *ctx, struct ts_iface_owned **ret_ifaces, size_t *ret_n)
{
	struct fake *f = ctx;
	struct ts_iface_owned *v;
	size_t n = 0;

	if (f->net_read_fails)
		return -EIO;
	if (!(v = calloc(FAKE_MAX_LINKS, sizeof(*v))))
		return -ENOMEM;
	for (size_t i = 0; i < FAKE_MAX_LINKS; i++) {
		const struct fake_link *l = &f->links[i];

		if (!l->present || strncmp(l->alias, "tunnelsync:", 11) != 0)
			continue;
		snprintf(v[n].ifname, sizeof(v[n].ifname), "%s", l->name);
		snprintf(v[n].owner, sizeof(v[n].owner), "%s", l->alias + 11);
		snprintf(v[n].kind, sizeof(v[n].kind), "%s", l->kind);
		n++;
	}
	*ret_ifaces = v;
	*ret_n = n;
	return 0;
}

static int f_iface_ensure(void *ctx, const struct ts_iface_spec *sp, unsigned *ret_changes)
{
	struct fake *f = ctx;
	struct ts_iface_seen seen;
	struct fake_link *l;
	unsigned ch = 0;
	int r;

	if ((r = f_iface_read(ctx, sp->ifname, &seen)) < 0 ||
	    (r = ts_iface_decide(&seen, sp, &ch)) < 0)
		return r;
	l = fake_link_find(f, sp->ifname);
	if (ch & TS_IFACE_RECREATED) {
		routes_through_gone(f, sp->ifname);
		l->present = false;
	}
	if (ch & (TS_IFACE_CREATED | TS_IFACE_RECREATED)) {
		l = fake_link_add(f, sp->ifname, sp->if_id ? "xfrm" : "vti");
		if (!l)
			return -ENOSPC;
		snprintf(l->alias, sizeof(l->alias), "tunnelsync:%s", sp->owner);
		l->key = sp->key;
		l->if_id = sp->if_id;
		l->local = sp->if_id ? (struct ts_ip){ 0 } : sp->local;
		l->remote = sp->if_id ? (struct ts_ip){ 0 } : sp->remote;
		l->mtu = sp->mtu;
		ch |= TS_IFACE_UP | TS_IFACE_ADDRESS | (sp->if_id ? 0 : TS_IFACE_POLICY);
	}
	l->mtu = sp->mtu;
	l->up = true;
	if (!sp->if_id)
		l->policy_off = 1;
	l->addr[0] = sp->address;
	l->n_addr = 1;
	f->net_writes++;
	*ret_changes = ch;
	return 0;
}

static int f_iface_delete(void *ctx, const char *ifname)
{
	struct fake *f = ctx;
	struct fake_link *l = fake_link_find(f, ifname);

	if (!l)
		return -ENOENT;
	if (strncmp(l->alias, "tunnelsync:", 11) != 0)
		return -EEXIST;
	routes_through_gone(f, ifname);
	l->present = false;
	f->net_writes++;
	return 0;
}

static const struct ts_planes_ops fake_ops = {
	.now_realtime = f_now_realtime,
	.now_monotonic = f_now_monotonic,
	.wait = f_wait,
	.cf_list = f_cf_list,
	.cf_list_watch = f_cf_list_watch,
	.cf_psk_set = f_cf_psk_set,
	.cf_psk_generate = f_cf_psk_generate,
	.cf_budget = f_cf_budget,
	.ike_observe = f_ike_observe,
	.ike_observe_sas = f_ike_observe_sas,
	.ike_names = f_ike_names,
	.ike_load = f_ike_load,
	.ike_load_conn = f_ike_load_conn,
	.ike_load_key = f_ike_load_key,
	.ike_update_conn = f_ike_update_conn,
	.ike_update_finish = f_ike_update_finish,
	.conn_record_read = f_conn_record_read,
	.conn_record_write = f_conn_record_write,
	.conn_record_remove = f_conn_record_remove,
	.conn_failing_read = f_conn_failing_read,
	.conn_failing_write = f_conn_failing_write,
	.cf_update_tunnel = f_cf_update_tunnel,
	.ike_unload_conn = f_ike_unload_conn,
	.ike_unload_key = f_ike_unload_key,
	.ike_initiate = f_ike_initiate,
	.ike_reauth = f_ike_reauth,
	.ike_reinitiate = f_ike_reinitiate,
	.ike_failures = f_ike_failures,
	.ike_failures_reset = f_ike_failures_reset,
	.ike_mbb_check = f_ike_mbb_check,
	.ike_take_restarted = f_ike_take_restarted,
	.ike_follow_log = f_ike_follow_log,
	.route_list = f_route_list,
	.route_set = f_route_set,
	.route_delete = f_route_delete,
	.iface_read = f_iface_read,
	.iface_list_owned = f_iface_list_owned,
	.iface_ensure = f_iface_ensure,
	.iface_delete = f_iface_delete,
	.kernel_match = f_kernel_match,
	.kernel_delete = f_kernel_delete,
	.store_load = f_store_load,
	.store_load_names = f_store_load_names,
	.store_begin = f_store_begin,
	.store_advance = f_store_advance,
	.store_commit = f_store_commit,
	.store_discard = f_store_discard,
	.store_adopt_baseline = f_store_adopt_baseline,
	.store_request_add = f_store_request_add,
	.store_request_remove = f_store_request_remove,
	.store_error = f_store_error,
	.store_dir = f_store_dir,
	.fds = f_fds,
	.process_events = f_process_events,
	.event_scope = f_event_scope,
};

/* --- set-up and checks ------------------------------------------------------ */

void fake_init(struct fake *f, size_t n)
{
	memset(f, 0, sizeof(*f));
	if (n > FAKE_MAX_TUNNELS)
		abort();
	snprintf(f->dir, sizeof(f->dir), "/tmp/ts-fake-XXXXXX");
	if (!mkdtemp(f->dir))
		abort();
	snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
	if (ts_store_open(f->state_dir, &f->store, NULL) < 0)
		abort();
	f->mono = 1000 * TS_USEC_PER_SEC;
	f->real = START_REAL;
	snprintf(f->d.agent.node_name, sizeof(f->d.agent.node_name), "edge1");
	f->d.agent.state_dir = f->state_dir;
	f->d.agent.vici_socket = (char *)"/nonexistent/fake.vici";
	f->d.agent.confirm_timeout = 5;
	f->d.agent.resync_interval = 300; /* the model's default */
	snprintf(f->d.cloudflare.account_id, sizeof(f->d.cloudflare.account_id), "%032x", 0xacc);
	f->d.cloudflare.request_timeout = 30; /* the model's default */
	f->d.tunnels = f->t;
	f->d.n_tunnels = n;
	f->n_world = n;
	for (size_t i = 0; i < n; i++) {
		struct ts_tunnel *t = &f->t[i];
		char ce[32], cf[32];

		snprintf(t->name, sizeof(t->name), "t%02zu", i + 1);
		snprintf(t->id, sizeof(t->id), "%032zx", i + 1);
		t->enabled = true;
		snprintf(ce, sizeof(ce), "203.0.113.%zu", i + 1);
		snprintf(cf, sizeof(cf), "198.51.100.%zu", i + 1);
		(void)ts_ip_parse(ce, &t->customer_endpoint);
		(void)ts_ip_parse(cf, &t->cloudflare_endpoint);
		t->psk.source = TS_PSK_SOURCE_RANDOM;
		t->psk.max_age = 30 * 86400;
		t->psk.rotate_on_auth_failure = true;
		t->psk.auth_failure_threshold = 3;
		/* A connection the IKE adapter can render (so that its leaves
		 * are diffed as in production). */
		t->ike.local_identity = TS_IDENTITY_FQDN;
		t->ike.ike_sa = (struct ts_proposal){ TS_ENCR_AES256_GCM16, 0, TS_PRF_HMAC_SHA2_256,
						      TS_DH_ECP384 };
		t->ike.child_sa = (struct ts_proposal){ TS_ENCR_AES256_GCM16, 0, 0, TS_DH_ECP384 };
		t->ike.ike_sa_lifetime = 28800;
		t->ike.child_sa_lifetime = 3600;
		t->ike.lifetime_spread = 300;
		t->ike.dpd_delay = 10;
		t->routing.mode = TS_MODE_ROUTE;
		t->routing.has_if_id = true;
		t->routing.if_id = (uint32_t)(100 + i);
		snprintf(ce, sizeof(ce), "10.0.%zu.0/31", i);
		(void)ts_prefix_parse(ce, &t->interface_address);
		f->cf[i].present = true;
		f->ike[i].reachable = true;
	}
}

void fake_done(struct fake *f)
{
	char cmd[256];

	free(f->last_metrics);
	f->last_metrics = NULL;

	for (size_t i = 0; i < FAKE_MAX_TUNNELS; i++) {
		ts_secret_free(f->cf[i].key);
		ts_secret_free(f->ike[i].key);
		ts_ike_leaves_done(&f->ike[i].conn);
	}
	ts_store_close(f->store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
}

void fake_script_set(struct fake *f, enum fake_answer a, bool taken)
{
	if (f->n_set_script < FAKE_MAX_SCRIPT)
		f->set_script[f->n_set_script++] = (struct fake_call){ a, taken };
}

void fake_script_generate(struct fake *f, enum fake_answer a, bool taken)
{
	if (f->n_gen_script < FAKE_MAX_SCRIPT)
		f->gen_script[f->n_gen_script++] = (struct fake_call){ a, taken };
}

int fake_agent_open(struct fake *f, const struct ts_agent_options *options, struct ts_agent **ret)
{
	struct ts_planes planes = { &fake_ops, f, NULL };
	struct ts_agent_options opts = { 0 };

	if (options)
		opts = *options;
	opts.state_dir = f->state_dir;
	return ts_agent_new(&f->d, &opts, &planes, ret);
}

int fake_pass(struct fake *f, const char *const *forced, size_t n_forced,
	      struct ts_pass_result *ret)
{
	struct ts_planes planes = { &fake_ops, f, NULL };
	struct ts_agent_options opts = { .state_dir = f->state_dir };
	struct ts_agent *a = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = ts_agent_new(&f->d, &opts, &planes, &a);
	if (r < 0)
		return r;
	r = ts_agent_pass(a, forced, n_forced, ret);
	/* The record a daemon would serve after this pass. */
	free(f->last_metrics);
	f->last_metrics = NULL;
	(void)ts_agent_metrics_text(a, &f->last_metrics);
	f->last_ready =
		ts_agent_ready_reason(a, f->last_ready_reason, sizeof(f->last_ready_reason));
	ts_agent_free(a);
	/* Time passes between one-shot runs. */
	f->mono += 60 * TS_USEC_PER_SEC;
	f->real += 60 * TS_USEC_PER_SEC;
	return r;
}

unsigned fake_settle(struct fake *f, unsigned max)
{
	for (unsigned n = 1; n <= max; n++) {
		struct ts_pass_result res;
		bool done;

		if (fake_pass(f, NULL, 0, &res) < 0)
			return 0;
		done = res.n_pending == 0 && res.n_failed == 0 && res.planes_ok;
		ts_pass_result_done(&res);
		if (done)
			return n;
	}
	return 0;
}

static bool key_is(const struct ts_secret *a, const struct ts_secret *b)
{
	return a && b && ts_secret_equal(a, b);
}

bool fake_key_safe(struct fake *f, size_t i)
{
	struct ts_key_record rec = { 0 };
	struct ts_journal_entry e = { 0 };
	bool safe;

	if (!f->cf[i].key || !f->cf[i].told)
		return true;
	(void)ts_store_record_read(f->store, f->t[i].name, &rec);
	(void)ts_store_journal_read(f->store, f->t[i].name, &e);
	safe = key_is(rec.key, f->cf[i].key) || key_is(e.new_key, f->cf[i].key);
	ts_store_record_done(&rec);
	ts_store_journal_entry_done(&e);
	return safe;
}

bool fake_in_agreement(struct fake *f, size_t i)
{
	struct ts_key_record rec = { 0 };
	struct ts_journal_entry e = { 0 };
	bool ok;

	ok = ts_store_record_read(f->store, f->t[i].name, &rec) == 0 &&
	     ts_store_journal_read(f->store, f->t[i].name, &e) == -ENOENT &&
	     key_is(rec.key, f->cf[i].key) && key_is(rec.key, f->ike[i].key) && f->ike[i].up;
	ts_store_record_done(&rec);
	ts_store_journal_entry_done(&e);
	return ok;
}

int fake_journal_step(struct fake *f, size_t i)
{
	struct ts_journal_entry e = { 0 };
	int r = ts_store_journal_read(f->store, f->t[i].name, &e);

	if (r == 0)
		r = (int)e.step;
	else
		r = r == -ENOENT ? -1 : -2;
	ts_store_journal_entry_done(&e);
	return r;
}

bool fake_journal_key_is_cf(struct fake *f, size_t i)
{
	struct ts_journal_entry e = { 0 };
	bool r = ts_store_journal_read(f->store, f->t[i].name, &e) == 0 &&
		 key_is(e.new_key, f->cf[i].key);

	ts_store_journal_entry_done(&e);
	return r;
}

uint64_t fake_record_generation(struct fake *f, size_t i)
{
	struct ts_key_record rec = { 0 };
	uint64_t g = 0;

	if (ts_store_record_read(f->store, f->t[i].name, &rec) == 0)
		g = rec.generation;
	ts_store_record_done(&rec);
	return g;
}

static void cf_regenerate_at(struct fake *f, size_t i, ts_usec_t at)
{
	ts_secret_free(f->cf[i].key);
	f->cf[i].key = NULL;
	if (ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &f->cf[i].key) < 0)
		abort();
	f->cf[i].last_generated_on = at;
	f->cf[i].told = true; /* whoever regenerated it knows it */
}

void fake_cf_regenerate(struct fake *f, size_t i)
{
	f->real += TS_USEC_PER_SEC;
	cf_regenerate_at(f, i, f->real);
}

void fake_cf_regenerate_after(struct fake *f, size_t i, ts_usec_t dt)
{
	ts_usec_t at = f->cf[i].last_generated_on + dt;

	if (f->real < at)
		f->real = at;
	cf_regenerate_at(f, i, at);
}

ts_usec_t fake_record_baseline(struct fake *f, size_t i)
{
	struct ts_key_record rec = { 0 };
	ts_usec_t t = -1;

	if (ts_store_record_read(f->store, f->t[i].name, &rec) == 0)
		t = rec.last_generated_on;
	ts_store_record_done(&rec);
	return t;
}

static int open_agent(struct fake *f, struct ts_agent **ret)
{
	struct ts_planes planes = { &fake_ops, f, NULL };
	struct ts_agent_options opts = { .state_dir = f->state_dir };

	return ts_agent_new(&f->d, &opts, &planes, ret);
}

int fake_rotate(struct fake *f, const char *const *names, size_t n, struct ts_pass_result *ret)
{
	struct ts_agent *a = NULL;
	int r = open_agent(f, &a);

	memset(ret, 0, sizeof(*ret));
	if (r < 0)
		return r;
	r = ts_agent_request_rotations(a, names, n);
	if (r >= 0)
		r = ts_agent_pass(a, names, n, ret);
	ts_agent_free(a);
	f->mono += 60 * TS_USEC_PER_SEC;
	f->real += 60 * TS_USEC_PER_SEC;
	return r;
}

int fake_cancel(struct fake *f, const char *const *names, size_t n, size_t *ret_cancelled)
{
	struct ts_agent *a = NULL;
	int r = open_agent(f, &a);

	if (r < 0)
		return r;
	r = ts_agent_cancel_rotations(a, names, n, ret_cancelled);
	ts_agent_free(a);
	return r;
}

bool fake_requested(struct fake *f, size_t i)
{
	struct ts_store_state *st = NULL;
	bool r;

	if (ts_store_load(f->store, &st) < 0)
		return false;
	r = ts_store_state_request(st, f->t[i].name) != NULL;
	ts_store_state_free(st);
	return r;
}
