/* Owns the agent (its planes, memory and figures) and runs the pass:
 * observe → plan → apply → memory → record (reconcile/agent_internal.h). */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "core/cancel.h"
#include "core/log.h"
#include "core/timeutil.h"

const char *ts_outcome_to_string(enum ts_outcome o)
{
	static const char *const names[_TS_OUTCOME_MAX] = {
		[TS_OUTCOME_NONE] = "none",
		[TS_OUTCOME_APPLIED] = "applied",
		[TS_OUTCOME_PENDING] = "pending",
		[TS_OUTCOME_FAILED] = "failed",
	};

	return o < _TS_OUTCOME_MAX ? names[o] : "?";
}

int ts_agent_new(const struct ts_desired *desired, const struct ts_agent_options *options,
		 struct ts_planes *planes, struct ts_agent **ret_agent)
{
	struct ts_agent *a;

	a = calloc(1, sizeof(*a));
	if (!a) {
		ts_planes_close(planes);
		return -ENOMEM;
	}
	a->planes = *planes;
	memset(planes, 0, sizeof(*planes));
	a->desired = desired;
	if (options)
		a->options = *options;
	a->state_dir =
		strdup(a->options.state_dir ? a->options.state_dir : desired->agent.state_dir);
	a->n_memory = desired->n_tunnels;
	a->memory = calloc(a->n_memory ? a->n_memory : 1, sizeof(*a->memory));
	a->metrics = calloc(a->n_memory ? a->n_memory : 1, sizeof(*a->metrics));
	if (!a->state_dir || !a->memory || !a->metrics) {
		ts_agent_free(a);
		return -ENOMEM;
	}
	a->options.state_dir = a->state_dir;
	for (size_t i = 0; i < a->n_memory; i++)
		a->memory[i].name = desired->tunnels[i].name;
	/* plan reads the failure counts too, so that it shows what once does. */
	(void)ts_agent_status_load_memory(a);
	*ret_agent = a;
	return 0;
}

int ts_agent_open(const struct ts_desired *desired, const struct ts_agent_options *options,
		  struct ts_agent **ret_agent)
{
	struct ts_agent_options opts = { 0 };
	struct ts_planes planes = { 0 };
	int r;

	if (options)
		opts = *options;
	r = ts_planes_open_real(desired, &opts,
				opts.state_dir ? opts.state_dir : desired->agent.state_dir,
				&planes);
	if (r < 0)
		return r;
	r = ts_agent_new(desired, &opts, &planes, ret_agent);
	if (r < 0)
		return r;
	if (ts_agent_cf(*ret_agent)) {
		ts_cf_client_set_observer(ts_agent_cf(*ret_agent), ts_agent_count_request,
					  *ret_agent);
		/* Retry-After, backoff and budget from earlier processes. */
		(void)ts_agent_api_state_load(*ret_agent);
	}
	return 0;
}

void ts_agent_free(struct ts_agent *a)
{
	if (!a)
		return;
	ts_planes_close(&a->planes);
	ts_cf_tunnel_list_done(&a->cf_last);
	for (size_t i = 0; a->memory && i < a->n_memory; i++)
		free(a->memory[i].last_error);
	free(a->memory);
	free(a->metrics);
	free(a->state_dir);
	ts_agent_status_done(a);
	free(a);
}

void ts_pass_result_done(struct ts_pass_result *r)
{
	if (!r)
		return;
	ts_plan_free(r->plan);
	free(r->outcomes);
	memset(r, 0, sizeof(*r));
}

/* Observes and hands the observation to memory; counts a failed list. */
static int observe(struct ts_agent *a, const bool *scope, struct ts_observation *o,
		   struct ts_observation *reuse_cf, const struct ts_cf_tunnel_list *cf_last,
		   ts_usec_t cf_last_at)
{
	int r = scope ? ts_agent_observe_scoped(a, scope, o, cf_last, cf_last_at)
		      : ts_agent_observe(a, o, reuse_cf);

	if (r < 0)
		return r;
	if (o->cf_api_error) {
		a->api_errors++;
		if (o->cf_http_status == 429)
			a->api_429++;
	}
	ts_memory_observe(a, o);
	return 0;
}

/* A damaged record or journal may hold the only local copy of the key
 * Cloudflare has: never "in sync" while one is there. */
static void note_store_problems(const struct ts_observation *o, struct ts_pass_result *res)
{
	for (size_t i = 0; o->store && i < o->store->n_problems; i++) {
		const struct ts_store_problem *pb = &o->store->problems[i];

		ts_logf(TS_LOG_ERROR, "store", pb->tunnel[0] ? pb->tunnel : NULL,
			"%s: %s: held back until repaired (README: Repairing the state directory)",
			pb->path, pb->message);
		if (res->n_store_problems++ == 0)
			snprintf(res->store_problem, sizeof(res->store_problem), "%.500s: %.127s",
				 pb->path, pb->message);
	}
}

/* The names forced by the caller and the requests the state directory
 * holds, each once. The caller frees the array (not the names). */
static const char **forced_names(const struct ts_observation *o, const char *const *forced,
				 size_t n_forced, size_t *ret_n)
{
	size_t n_req = o->store ? o->store->n_requests : 0, n = 0;
	const char **all = calloc(n_forced + n_req + 1, sizeof(*all));

	if (!all)
		return NULL;
	for (size_t i = 0; i < n_forced + n_req; i++) {
		const char *name =
			i < n_forced ? forced[i] : o->store->requests[i - n_forced].tunnel;
		bool dup = false;

		for (size_t k = 0; k < n; k++)
			dup |= strcmp(all[k], name) == 0;
		if (!dup)
			all[n++] = name;
	}
	*ret_n = n;
	return all;
}

/* Whether a journal entry is a rotation begun after the request. */
static bool journal_serves(const struct ts_store_state *st, const struct ts_store_request *q)
{
	const struct ts_journal_entry *j = st ? ts_store_state_journal(st, q->tunnel) : NULL;

	return j && j->started_at >= q->requested_at;
}

/* A requested rotation is done once a rotation of the tunnel began after
 * it (its journal entry carries it on, also across a crash), committed,
 * or was refused for good (a key file that holds the current key). */
static void settle_requests(struct ts_agent *a, const struct ts_observation *o,
			    const struct ts_pass_result *res)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_store_state *now = NULL;

	if (!o->store || !o->store->n_requests || !res->outcomes)
		return;
	(void)ops->store_load(ctx, &now);
	for (size_t k = 0; k < o->store->n_requests; k++) {
		const struct ts_store_request *q = &o->store->requests[k];
		const char *why = NULL;

		if (journal_serves(o->store, q) || journal_serves(now, q))
			why = "begun";
		for (size_t i = 0; !why && i < res->plan->n_actions; i++) {
			const struct ts_action *act = &res->plan->actions[i];
			const struct ts_action_outcome *out = &res->outcomes[i];

			if (act->kind != TS_ACTION_ROTATE || strcmp(act->tunnel, q->tunnel) != 0)
				continue;
			if (out->status == TS_OUTCOME_APPLIED)
				why = "done";
			else if (out->error == -EALREADY)
				why = "dropped (the key file holds the current key)";
		}
		if (why && ops->store_request_remove(ctx, q->tunnel) == 0)
			ts_logf(TS_LOG_INFO, "store", q->tunnel, "requested rotation %s", why);
	}
	ts_store_state_free(now);
}

int ts_agent_request_rotations(struct ts_agent *a, const char *const *names, size_t n)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	int r;

	if (a->options.readonly || a->options.dry_run)
		return -EROFS;
	for (size_t i = 0; i < n; i++) {
		r = ops->store_request_add(ctx, names[i], ops->now_realtime(ctx));
		if (r < 0) {
			ts_logf(TS_LOG_ERROR, "store", names[i],
				"cannot record the requested rotation: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

int ts_agent_cancel_rotations(struct ts_agent *a, const char *const *names, size_t n,
			      size_t *ret_cancelled)
{
	size_t done = 0;
	int r;

	if (a->options.readonly || a->options.dry_run)
		return -EROFS;
	for (size_t i = 0; i < n; i++) {
		r = TS_PLANES(a)->store_request_remove(TS_PLANES_CTX(a), names[i]);
		if (r == 0)
			done++;
		else if (r != -ENOENT)
			return r;
	}
	if (ret_cancelled)
		*ret_cancelled = done;
	return 0;
}

static void update_next_due(struct ts_agent *a, const struct ts_observation *o)
{
	a->next_due = 0;
	for (size_t i = 0; o->store && i < a->desired->n_tunnels; i++) {
		const struct ts_tunnel *t = &a->desired->tunnels[i];
		const struct ts_key_record *rec = ts_store_state_record(o->store, t->name);
		ts_usec_t due;

		if (!rec || !t->psk.max_age || !rec->applied_at)
			continue;
		due = rec->applied_at + (ts_usec_t)ts_tunnel_key_due_age(
						t, a->desired->agent.rotation_max_age_jitter) *
						TS_USEC_PER_SEC;
		if (!a->next_due || due < a->next_due)
			a->next_due = due;
	}
}

/* After a pass that changed something, before the observation of what it
 * left (daemon only): the events read so far (the pass's own drains and
 * confirmation waits included, and the XFRM messages its own changes
 * caused) all came before that observation. They are taken now; whether
 * they ask for more is then that observation's plan (settle_after). */
static int take_events(struct ts_agent *a)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	char **names = NULL;
	size_t n = 0;
	int r = ops->process_events(TS_PLANES_CTX(a));

	if (ops->event_scope && ops->event_scope(TS_PLANES_CTX(a), &names, &n) > 0)
		ts_agent_names_free(names, n);
	return r;
}

/* Whether the state the pass left asks for nothing more (a pure plan). */
static bool settle_after(struct ts_agent *a, const struct ts_observation *after)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	struct ts_plan *plan = NULL;
	struct ts_plan_input in = {
		.desired = a->desired,
		.observed = &after->observed,
		.now = ops->now_realtime(TS_PLANES_CTX(a)),
		.api_budget = ops->cf_budget(TS_PLANES_CTX(a)),
	};
	bool settled;

	if (after->store && after->store->n_requests)
		return false;
	if (ts_plan_compute(&in, &plan) < 0)
		return false;
	settled = !ts_plan_has_changes(plan);
	ts_plan_free(plan);
	return settled;
}

/* Whether applying the plan may write to Cloudflare (any call that
 * spends request budget: a rotation, a resumed one, a tunnel update). */
static bool plan_writes_cloudflare(const struct ts_plan *plan)
{
	if (plan->api_calls || plan->n_rotations)
		return true;
	for (size_t i = 0; i < plan->n_actions; i++) {
		enum ts_action_kind k = plan->actions[i].kind;

		if (k == TS_ACTION_ROTATE || k == TS_ACTION_RESUME || k == TS_ACTION_UPDATE_TUNNEL)
			return true;
	}
	return false;
}

/* At the end of a pass: its Cloudflare list becomes the agent's cf_last
 * when the pass wrote nothing to Cloudflare after reading it (so the list
 * is Cloudflare as it stood after the pass); else there is none. */
static void keep_cf_list(struct ts_agent *a, struct ts_observation *src, const struct ts_plan *plan)
{
	ts_cf_tunnel_list_done(&a->cf_last);
	a->cf_last_ok = false;
	if (!src || !src->cf_ok || src->cf_borrowed || (plan && plan_writes_cloudflare(plan)))
		return;
	a->cf_last = src->cf_list;
	a->cf_last_at = src->cf_read_at;
	a->cf_last_ok = true;
	memset(&src->cf_list, 0, sizeof(src->cf_list));
	src->cf_ok = false;
}

/* The list a scoped stage may plan with instead of asking Cloudflare
 * (README "Scoped passes" argues why its decisions stay the full plan's
 * over the same observation): the last pass's, when it wrote nothing to
 * Cloudflare after reading it, at most resync-interval old. */
static const struct ts_cf_tunnel_list *usable_cf_last(const struct ts_agent *a)
{
	ts_usec_t now = TS_PLANES(a)->now_monotonic(TS_PLANES_CTX(a));
	ts_usec_t max_age = (ts_usec_t)a->desired->agent.resync_interval * TS_USEC_PER_SEC;

	if (!a->cf_last_ok || now < a->cf_last_at || now - a->cf_last_at > max_age)
		return NULL;
	return &a->cf_last;
}

static void yield_begin(struct ts_agent *a, struct ts_observation *full)
{
	struct ts_agent_yield *y = &a->yield;
	size_t n = a->desired->n_tunnels ? a->desired->n_tunnels : 1;

	memset(y, 0, sizeof(*y));
	if (!a->options.watch || a->options.readonly || a->options.dry_run ||
	    a->desired->agent.suspend)
		return;
	y->acted = calloc(n, sizeof(*y->acted));
	y->superseded = calloc(n, sizeof(*y->superseded));
	if (!y->acted || !y->superseded) {
		free(y->acted);
		free(y->superseded);
		memset(y, 0, sizeof(*y));
		return; /* no yield: the events wait for the pass's end */
	}
	y->full = full;
	y->active = true;
}

static void yield_end(struct ts_agent *a)
{
	free(a->yield.acted);
	free(a->yield.superseded);
	memset(&a->yield, 0, sizeof(a->yield));
}

/* take_first: a scoped stage changed something just before; the events
 * read so far are taken before this observation, which is then the state
 * that stage left. */
static int pass_full(struct ts_agent *a, const char *const *forced, size_t n_forced,
		     struct ts_observation *reuse_cf, bool take_first,
		     struct ts_pass_result *ret_result)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_observation o;
	struct ts_pass_result result = { 0 };
	struct ts_plan_input in;
	ts_usec_t started = ops->now_monotonic(ctx);
	const char **all_forced;
	size_t n_all = 0;
	bool kept = false, o_has_list = true, deferred = false;
	int r, seen = take_first && a->options.watch ? take_events(a) : 0;

	ts_agent_check_mbb(a);
	yield_begin(a, &o);
	r = observe(a, NULL, &o, reuse_cf, NULL, 0);
	if (r >= 0) { /* a last look before the plan: the events of the observation */
		a->yield.observed = true;
		ts_agent_yield(a, "observation: after the kernel");
	}
	if (r < 0) {
		yield_end(a);
		ts_observation_done(&o);
		return r;
	}
	result.planes_ok = o.cf_ok && o.ike_ok && o.kernel_ok && o.store_ok;
	note_store_problems(&o, &result);
	update_next_due(a, &o);
	all_forced = forced_names(&o, forced, n_forced, &n_all);
	if (!all_forced) {
		yield_end(a);
		ts_observation_done(&o);
		return -ENOMEM;
	}
	in = (struct ts_plan_input){
		.desired = a->desired,
		.observed = &o.observed,
		.now = ops->now_realtime(ctx),
		.api_budget = ops->cf_budget(ctx),
		.forced = all_forced,
		.n_forced = n_all,
	};
	r = ts_plan_compute(&in, &result.plan);
	free(all_forced);
	/* What the pass does to the owned interfaces and routes (read here). */
	if (r >= 0)
		r = ts_agent_plan_traffic(a, &o, result.plan);
	if (r < 0) {
		yield_end(a);
		ts_plan_free(result.plan);
		ts_observation_done(&o);
		return r;
	}
	if (!a->options.readonly) {
		ts_agent_want_log(a, ts_agent_log_needed(&o, result.plan));
		r = ts_agent_apply(a, &o, result.plan, &result);
		if (r < 0)
			ts_logf(TS_LOG_ERROR, NULL, NULL, "apply stopped: %s", strerror(-r));
		if (!a->options.dry_run) {
			ts_memory_fold(a, result.plan, &result);
			settle_requests(a, &o, &result);
		}
		/* The nested scopes' actions are this pass's too. */
		deferred = a->yield.deferred;
		result.n_yielded = a->yield.n_scopes;
		result.n_applied += a->yield.n_applied;
		result.n_pending += a->yield.n_pending;
		result.n_failed += a->yield.n_failed;
		yield_end(a);
		/* What a scoped stage left, when this plan has nothing for it
		 * (and nested scopes did nothing since). */
		result.settled = take_first && a->options.watch &&
				 !ts_plan_has_changes(result.plan) && !result.n_yielded;
		/* Events a nested scope could not take ask for a pass (the
		 * observation below, if any, may settle them). */
		result.events_unsettled = (seen > 0 && !result.settled) || deferred;
		if (!a->options.dry_run && result.n_applied > 0) {
			/* Record the state the pass left, not the one it found. */
			struct ts_observation after;
			int seen_after = a->options.watch ? take_events(a) : 0;

			o_has_list = false; /* after takes it */

			if (observe(a, NULL, &after, &o, NULL, 0) == 0) {
				ts_agent_traffic_follow_up(a, &after);
				(void)ts_agent_status_write(a, &after, &result);
				result.settled = a->options.watch && settle_after(a, &after);
				keep_cf_list(a, &after, result.plan);
				kept = true;
			}
			/* Events taken that the state left does not settle:
			 * they still ask for a pass (the loop cannot read them
			 * any more). Without that observation, deferred ones
			 * do anyway. */
			result.events_unsettled =
				(seen > 0 || seen_after > 0 || deferred) && !result.settled;
			if (!kept && deferred)
				result.events_unsettled = true;
			ts_observation_done(&after);
		} else if (!a->options.dry_run) {
			(void)ts_agent_status_write(a, &o, &result);
		}
	}
	if (!kept) /* o still holds its list unless after took it; plan and
		    * once --dry-run write nothing whatever they planned */
		keep_cf_list(a, o_has_list ? &o : NULL,
			     a->options.readonly || a->options.dry_run ? NULL : result.plan);
	yield_end(a); /* readonly: still set up? never (yield_begin) */
	ts_observation_done(&o);
	a->passes++;
	a->last_pass = ops->now_realtime(ctx);
	a->last_pass_duration = ops->now_monotonic(ctx) - started;
	ts_agent_count_pass(a, a->last_pass_duration);
	if (!a->options.readonly && !a->options.dry_run && ts_agent_cf(a))
		(void)ts_agent_api_state_save(a);
	a->last_pending = result.n_pending;
	a->last_failed = result.n_failed;
	a->last_store_problems = result.n_store_problems;
	if (result.planes_ok && !result.n_failed && !result.n_store_problems) {
		a->passes_ok++;
		a->last_pass_ok = a->last_pass;
	}
	*ret_result = result;
	return 0;
}

int ts_agent_pass(struct ts_agent *a, const char *const *forced, size_t n_forced,
		  struct ts_pass_result *ret_result)
{
	return pass_full(a, forced, n_forced, NULL, false, ret_result);
}

bool *ts_agent_scope_expand(const struct ts_desired *d, const char *const *names, size_t n,
			    size_t *ret_k)
{
	bool *scope = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*scope));
	size_t k = 0;

	if (!scope)
		return NULL;
	for (size_t i = 0; i < d->n_tunnels; i++)
		for (size_t j = 0; j < n && !scope[i]; j++)
			scope[i] = ts_streq(d->tunnels[i].name, names[j]);
	/* The redundancy-group rules read every member: all of them come. */
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const char *g = d->tunnels[i].redundancy_group;

		if (!scope[i] || !g[0])
			continue;
		for (size_t j = 0; j < d->n_tunnels; j++)
			if (ts_streq(d->tunnels[j].redundancy_group, g))
				scope[j] = true;
	}
	for (size_t i = 0; i < d->n_tunnels; i++)
		k += scope[i];
	*ret_k = k;
	return scope;
}

/* Whether a plan over the scope alone could decide otherwise than the
 * full plan: anything that spends the request budget (which the full plan
 * shares out in its own order) or counts against max-rotations-per-pass,
 * a resumed rotation, and a deferral for budget or cap. */
static bool plan_needs_full(const struct ts_plan *plan)
{
	if (plan_writes_cloudflare(plan))
		return true;
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];

		if (act->cause == TS_CAUSE_BUDGET || act->cause == TS_CAUSE_ROTATION_CAP ||
		    act->cause == TS_CAUSE_FORCED)
			return true;
	}
	return false;
}

/* ts_agent_plan_scoped with that list (NULL: a new one). */
static int plan_scoped_with(struct ts_agent *a, const bool *scope, struct ts_observation *o,
			    const struct ts_cf_tunnel_list *cf, ts_usec_t cf_at,
			    struct ts_plan **ret_plan)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_desired *d = a->desired;
	struct ts_desired sub = *d;
	struct ts_tunnel *tunnels;
	struct ts_plan_input in;
	struct ts_plan *plan = NULL;
	int r;

	*ret_plan = NULL;
	r = observe(a, scope, o, NULL, cf, cf_at);
	if (r < 0)
		return r;
	/* Requested rotations are the full plan's (they are rotations). */
	if (o->store && o->store->n_requests)
		return 0;
	tunnels = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*tunnels));
	if (!tunnels)
		return -ENOMEM;
	sub.tunnels = tunnels;
	sub.n_tunnels = 0;
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (scope[i])
			tunnels[sub.n_tunnels++] = d->tunnels[i]; /* shallow: read only */
	in = (struct ts_plan_input){
		.desired = &sub,
		.observed = &o->observed,
		.now = ops->now_realtime(ctx),
		.api_budget = ops->cf_budget(ctx),
	};
	r = ts_plan_compute(&in, &plan);
	free(tunnels);
	if (r < 0)
		return r;
	if (plan_needs_full(plan)) {
		ts_plan_free(plan);
		return 0;
	}
	*ret_plan = plan;
	return 1;
}

int ts_agent_plan_scoped(struct ts_agent *a, const bool *scope, struct ts_observation *o,
			 struct ts_plan **ret_plan)
{
	return plan_scoped_with(a, scope, o, usable_cf_last(a), a->cf_last_at, ret_plan);
}

static ssize_t tunnel_index(const struct ts_agent *a, const char *tunnel)
{
	const struct ts_tunnel *t =
		tunnel && tunnel[0] ? ts_desired_find(a->desired, tunnel) : NULL;

	return t ? t - a->desired->tunnels : -1;
}

bool ts_agent_superseded(const struct ts_agent *a, const char *tunnel)
{
	ssize_t i;

	if (!a->yield.active || a->yield.running)
		return false;
	i = tunnel_index(a, tunnel);
	return i >= 0 && a->yield.superseded[i];
}

void ts_agent_acted(struct ts_agent *a, const char *tunnel, bool writes_cloudflare)
{
	ssize_t i;

	if (!a->yield.active || a->yield.running)
		return;
	if (writes_cloudflare)
		a->yield.cf_written = true;
	i = tunnel_index(a, tunnel);
	if (i >= 0)
		a->yield.acted[i] = true;
}

/* The list a nested scope plans with: the full pass's own, once read
 * and while the pass has written nothing to Cloudflare (then it is
 * Cloudflare as it stands). Not the kept one of the last pass: the full
 * pass plans from its newer list, and a nested plan from an older one must
 * not replace that plan for its tunnels (a key regenerated on Cloudflare
 * would be initiated with again instead of rotated). */
static const struct ts_cf_tunnel_list *yield_list(const struct ts_agent *a, ts_usec_t *ret_at)
{
	const struct ts_agent_yield *y = &a->yield;

	if (y->cf_listing) {
		/* The full list is on its way and this pass has read nothing
		 * else yet: the nested scope is a scoped pass just before the
		 * full one (which then reads every plane after what it did,
		 * Cloudflare's list excepted, which no nested scope writes). */
		const struct ts_cf_tunnel_list *l = usable_cf_last(a);

		*ret_at = a->cf_last_at;
		return l;
	}
	if (y->cf_written || !y->full || !y->full->cf_ok)
		return NULL;
	*ret_at = y->full->cf_read_at;
	return &y->full->cf_list;
}

int ts_agent_yield_during_list(void *agent)
{
	struct ts_agent *a = agent; /* the pass's thread, inside the request: it owns a */
	const struct ts_planes_ops *ops = TS_PLANES(a);
	ts_usec_t limit = (ts_usec_t)a->desired->cloudflare.request_timeout * TS_USEC_PER_SEC / 3;
	ts_usec_t t0;
	bool read;

	/* Without the last pass's list a nested scope could not plan, and
	 * once nested scopes have held the request for a third of its
	 * timeout (a peer that does not answer keeps an initiate's wait
	 * going for up to 10 s) the list comes first: either way the events
	 * stay unread for the yield after the list (stop watching, else
	 * their socket stays readable). */
	if (!usable_cf_last(a) || a->yield.list_paused >= limit)
		return 1;
	t0 = ops->now_monotonic(TS_PLANES_CTX(a));
	read = ts_agent_yield(a, "observation: during Cloudflare's list");
	a->yield.list_paused += ops->now_monotonic(TS_PLANES_CTX(a)) - t0;
	return read ? 0 : 1;
}

bool ts_agent_yield(struct ts_agent *a, const char *where)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_agent_yield *y = &a->yield;
	struct ts_observation o = { 0 };
	struct ts_pass_result res = { 0 };
	const struct ts_cf_tunnel_list *cf;
	struct ts_plan *plan = NULL;
	const char *why = NULL;
	char **names = NULL;
	size_t n = 0, k = 0, k2 = 0;
	ts_usec_t cf_at = 0;
	bool *scope = NULL;
	int r;

	if (!y->active || y->running || ts_cancel_requested())
		return false;
	r = ops->process_events(ctx);
	if (r <= 0)
		return r == 0;
	if (!ops->event_scope || ops->event_scope(ctx, &names, &n) <= 0 || n == 0) {
		y->deferred = true; /* named no tunnel: a full pass follows */
		ts_agent_names_free(names, n);
		return true;
	}
	/* A name whose tunnel or group this pass acts on already (its own
	 * actions' events, mostly) is left to the pass's end, which observes
	 * them again; the others are taken now. */
	for (size_t j = 0; j < n; j++) {
		bool *one =
			ts_agent_scope_expand(a->desired, (const char *const *)&names[j], 1, &k);

		for (size_t i = 0; one && i < a->desired->n_tunnels; i++)
			if (one[i] && y->acted[i]) {
				y->deferred = true;
				free(names[j]);
				names[j] = NULL;
				break;
			}
		free(one);
	}
	for (size_t j = 0, m = n; j < m; j++)
		if (names[j])
			names[k2++] = names[j];
	if (k2 < n)
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"%s: events for %zu tunnels left to the pass's end (it acts on them)",
			where, n - k2);
	n = k2;
	scope = n ? ts_agent_scope_expand(a->desired, (const char *const *)names, n, &k) : NULL;
	ts_agent_names_free(names, n);
	cf = yield_list(a, &cf_at);
	if (!scope || k == 0) {
		free(scope);
		return true; /* none declared, or all left (no memory: the pass's end reads them) */
	}
	if (!cf)
		why = y->cf_listing
			      ? "no usable list of the last pass"
			      : "no Cloudflare list of this pass, or it wrote to Cloudflare since";
	if (why) {
		/* The pass's end observes them again (and its own actions'
		 * events are usually these). */
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"%s: events for %zu tunnels left to the pass's end (%s)", where, k, why);
		y->deferred = true;
		free(scope);
		return true;
	}
	y->running = true;
	r = plan_scoped_with(a, scope, &o, cf, cf_at, &plan);
	if (r > 0) {
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"%s: events: scoped stage, %zu of %zu tunnels, %zu actions", where, k,
			a->desired->n_tunnels, plan->n_actions);
		ts_agent_want_log(a, ts_agent_log_needed(&o, plan));
		r = ts_agent_apply(a, &o, plan, &res);
		if (r < 0)
			ts_logf(TS_LOG_ERROR, NULL, NULL, "apply stopped: %s", strerror(-r));
		ts_memory_fold(a, plan, &res);
		/* The full plan, from an older observation, keeps off them;
		 * before that observation is complete it reads them after
		 * this, and decides from a newer view. */
		for (size_t i = 0; y->observed && i < a->desired->n_tunnels; i++)
			y->superseded[i] |= scope[i];
		y->n_scopes++;
		y->n_applied += res.n_applied;
		y->n_pending += res.n_pending;
		y->n_failed += res.n_failed;
		res.plan = plan;
		ts_pass_result_done(&res);
	} else {
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"%s: events for %zu tunnels left to the pass's end (%s)", where, k,
			r < 0 ? strerror(-r) : "their plan needs the whole gateway");
		y->deferred = true;
	}
	ts_observation_done(&o);
	y->running = false;
	free(scope);
	return true;
}

/* The last full pass read every plane and left nothing pending, failed or
 * damaged: the gateway outside an event's scope is as that pass left it,
 * save for what raises its own events. */
static bool last_pass_clean(const struct ts_agent *a)
{
	return a->passes > 0 && a->last_pass_ok == a->last_pass && !a->last_pending &&
	       !a->last_failed && !a->last_store_problems;
}

int ts_agent_pass_scoped(struct ts_agent *a, const char *const *names, size_t n,
			 struct ts_pass_result *ret_result)
{
	struct ts_observation o = { 0 };
	struct ts_pass_result first = { 0 };
	struct ts_cf_tunnel_list held = { 0 };
	struct ts_plan *plan = NULL;
	size_t k = 0;
	bool *scope;
	int r;

	if (a->options.readonly || a->options.dry_run || a->desired->agent.suspend)
		return pass_full(a, NULL, 0, NULL, false, ret_result);
	scope = ts_agent_scope_expand(a->desired, names, n, &k);
	if (!scope)
		return -ENOMEM;
	if (k == 0) {
		free(scope);
		return pass_full(a, NULL, 0, NULL, false, ret_result);
	}
	ts_agent_check_mbb(a);
	r = ts_agent_plan_scoped(a, scope, &o, &plan);
	if (r < 0) {
		ts_observation_done(&o);
		free(scope);
		return r;
	}
	if (r > 0 && plan->n_actions == 0 && o.cf_ok && o.ike_ok && o.kernel_ok && o.store_ok &&
	    (!o.store || !o.store->n_problems) && last_pass_clean(a)) {
		/* The scope plans nothing: its events changed nothing that asks
		 * for action (an SA the kernel replaced, a tunnel back up by
		 * itself). The rest of the gateway had no event and the last
		 * full pass left it clean: the next resync reads it, as it
		 * would have without these events (work left pending keeps
		 * its retry: a whole-gateway stage then). No
		 * whole-gateway stage, so no Cloudflare list for it: an event
		 * costs no request (a flapping tunnel or an SA replaced every
		 * second would otherwise spend the request budget). */
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"scoped pass: %zu of %zu tunnels, nothing to do: the pass ends there", k,
			a->desired->n_tunnels);
		*ret_result = (struct ts_pass_result){
			.plan = plan,
			.planes_ok = true,
			.scoped = true,
			.settled = a->options.watch,
		};
		ts_observation_done(&o);
		free(scope);
		return 0;
	}
	if (r > 0) {
		/* The scope first: its corrective actions do not wait for the
		 * rest of the gateway to be read. */
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"scoped pass: %zu of %zu tunnels, %zu actions (Cloudflare: %s)", k,
			a->desired->n_tunnels, plan->n_actions,
			o.cf_borrowed ? "the last pass's list" : "listed");
		ts_agent_want_log(a, ts_agent_log_needed(&o, plan));
		r = ts_agent_apply(a, &o, plan, &first);
		if (r < 0)
			ts_logf(TS_LOG_ERROR, NULL, NULL, "apply stopped: %s", strerror(-r));
		ts_memory_fold(a, plan, &first);
		first.plan = plan;
	} else {
		ts_logf(TS_LOG_DEBUG, NULL, NULL,
			"scoped pass: its plan needs the whole gateway (budget, rotations)");
	}
	free(scope);
	/* Then the whole gateway as any pass: what the scope did is seen
	 * there, the rest is reconciled, the status recorded. Cloudflare: the
	 * scope's list when it asked for one (no second request), else a new
	 * one (the scope planned with the last pass's; this pass's list then
	 * replaces it, so the borrowed one is held until o is done). */
	if (o.cf_borrowed) {
		held = a->cf_last;
		memset(&a->cf_last, 0, sizeof(a->cf_last));
		a->cf_last_ok = false;
	}
	r = pass_full(a, NULL, 0, o.cf_borrowed ? NULL : &o, first.n_applied > 0, ret_result);
	ts_observation_done(&o);
	ts_cf_tunnel_list_done(&held);
	if (r == 0) {
		ret_result->scoped = first.plan != NULL;
		ret_result->n_scoped_applied = first.n_applied;
		ret_result->n_applied += first.n_applied;
	}
	ts_pass_result_done(&first);
	return r;
}

void ts_agent_fds(struct ts_agent *a, int *ret_ike_fd, int *ret_xfrm_fd)
{
	TS_PLANES(a)->fds(TS_PLANES_CTX(a), ret_ike_fd, ret_xfrm_fd);
}

int ts_agent_process_events(struct ts_agent *a)
{
	return TS_PLANES(a)->process_events(TS_PLANES_CTX(a));
}

void ts_agent_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int ts_agent_event_scope(struct ts_agent *a, char ***ret_names, size_t *ret_n)
{
	*ret_names = NULL;
	*ret_n = 0;
	if (!TS_PLANES(a)->event_scope)
		return 0;
	return TS_PLANES(a)->event_scope(TS_PLANES_CTX(a), ret_names, ret_n);
}

ts_usec_t ts_agent_next_due(const struct ts_agent *a)
{
	return a->next_due;
}

void ts_agent_idle(struct ts_agent *a, ts_usec_t quiet)
{
	ts_cf_client_idle(ts_agent_cf(a), quiet);
}
