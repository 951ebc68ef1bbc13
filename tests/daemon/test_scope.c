/* The scoped pass (ts_agent_pass_scoped) over the reconcile tests' fake
 * planes (tests/reconcile/fake_planes.c — named fakes: Cloudflare and
 * charon are models, the store is real). The promise tested: a plan over
 * an event's tunnels (and their redundancy groups) decides for them what
 * the full plan decides, or the pass does not use it (it escalates to the
 * full plan). Compared over many random worlds: SAs down, connections and
 * keys missing, peers unreachable, keys regenerated on Cloudflare,
 * authentication failures, redundancy groups, a tight request budget and
 * a rotation cap. Also: the events a pass's own changes caused need no
 * further pass once the state it left plans nothing. No root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fake_planes.h"
#include "reconcile/agent_internal.h"

#define N_TUNNELS 10

/* "kind/cause/apply" of every action about a tunnel in scope, sorted by
 * the plan's own order (which is deterministic), one per line. */
static void decisions(const struct ts_plan *plan, const struct ts_desired *d, const bool *scope,
		      char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < plan->n_actions; i++) {
		const struct ts_action *a = &plan->actions[i];
		bool in = false;

		for (size_t k = 0; k < d->n_tunnels && !in; k++)
			in = scope[k] && strcmp(d->tunnels[k].name, a->tunnel) == 0;
		if (!in || len >= size)
			continue;
		len += (size_t)snprintf(buf + len, size - len, "%s %s %s %d\n", a->tunnel,
					ts_plan_action_kind_to_string(a->kind),
					ts_plan_cause_to_string(a->cause), a->apply);
	}
}

static void sa_down(struct fake *f, size_t i)
{
	f->ike[i].up = false;
	f->ike[i].ike_id = 0;
}

static void perturb(struct fake *f, unsigned *seed)
{
	for (size_t i = 0; i < N_TUNNELS; i++) {
		unsigned r = (unsigned)rand_r(seed) % 16;

		switch (r) {
		case 0:
		case 1:
			sa_down(f, i);
			break;
		case 2:
			f->ike[i].conn_loaded = false;
			sa_down(f, i);
			break;
		case 3:
			ts_secret_free(f->ike[i].key); /* charon lost the key */
			f->ike[i].key = NULL;
			break;
		case 4:
			f->ike[i].reachable = false;
			sa_down(f, i);
			break;
		case 5:
			fake_cf_regenerate(f, i);
			break;
		case 6:
			f->ike[i].auth_failures = 5;
			sa_down(f, i);
			break;
		default:
			break;
		}
	}
}

static void test_scoped_plan_matches_full(void **state)
{
	unsigned used = 0, escalated = 0, seed = 12345, borrowed = 0, listed = 0;
	(void)state;

	for (unsigned world = 0; world < 24; world++) {
		struct fake f;
		struct ts_agent *a = NULL;
		struct ts_pass_result full = { 0 };
		struct ts_agent_options ro = { .readonly = true };

		fake_init(&f, N_TUNNELS);
		for (size_t i = 0; i < N_TUNNELS; i++) {
			unsigned g = (unsigned)rand_r(&seed) % 4;

			if (g)
				snprintf(f.t[i].redundancy_group, sizeof(f.t[i].redundancy_group),
					 "g%u", g);
		}
		f.d.agent.max_rotations_per_pass = world % 3 == 0 ? 1 : 0;
		assert_true(fake_settle(&f, 12) > 0);
		perturb(&f, &seed);
		f.budget = world % 4 == 0 ? 1 : 0;

		assert_int_equal(fake_agent_open(&f, &ro, &a), 0);
		assert_int_equal(ts_agent_pass(a, NULL, 0, &full), 0);
		for (size_t x = 0; x < N_TUNNELS; x++) {
			const char *name = f.t[x].name;
			struct ts_observation o = { 0 };
			struct ts_plan *plan = NULL;
			char want[4096], got[4096];
			size_t k = 0;
			bool *scope = ts_agent_scope_expand(&f.d, &name, 1, &k);
			bool kept = a->cf_last_ok;
			int r;

			assert_non_null(scope);
			assert_true(k >= 1);
			/* Both of the scoped stage's Cloudflare reads: the full
			 * pass's list (kept: the readonly pass wrote nothing), or
			 * a new one (the same world). */
			if (x % 2)
				a->cf_last_ok = false;
			r = ts_agent_plan_scoped(a, scope, &o, &plan);
			a->cf_last_ok = kept;
			assert_true(r >= 0);
			if (o.cf_borrowed)
				borrowed++;
			else
				listed++;
			if (r == 0) {
				escalated++;
			} else {
				used++;
				decisions(full.plan, &f.d, scope, want, sizeof(want));
				decisions(plan, &f.d, scope, got, sizeof(got));
				if (strcmp(want, got) != 0)
					fail_msg("world %u, scope of %s:\nfull:\n%sscoped:\n%s",
						 world, name, want, got);
			}
			ts_plan_free(plan);
			ts_observation_done(&o);
			free(scope);
		}
		ts_pass_result_done(&full);
		ts_agent_free(a);
		fake_done(&f);
	}
	/* Both roads were taken, often: the comparison compared something. */
	print_message("scoped plans used %u, escalated %u; the last pass's list %u, a new one %u\n",
		      used, escalated, borrowed, listed);
	assert_true(used > 40);
	assert_true(escalated > 10);
	assert_true(borrowed > 40 && listed > 40);
}

/* The scope takes the whole redundancy group, and nothing else. */
static void test_scope_expands_to_group(void **state)
{
	struct fake f;
	const char *names[] = { "t02", "nope" };
	size_t k = 0;
	bool *scope;
	(void)state;

	fake_init(&f, 6);
	snprintf(f.t[1].redundancy_group, sizeof(f.t[1].redundancy_group), "up");
	snprintf(f.t[4].redundancy_group, sizeof(f.t[4].redundancy_group), "up");
	snprintf(f.t[5].redundancy_group, sizeof(f.t[5].redundancy_group), "other");
	scope = ts_agent_scope_expand(&f.d, names, 2, &k);
	assert_int_equal(k, 2);
	assert_true(scope[1] && scope[4]);
	assert_false(scope[0] || scope[2] || scope[3] || scope[5]);
	free(scope);
	fake_done(&f);
}

/* A scoped pass on an SA down: the tunnel comes back, the rest of the
 * gateway is reconciled in the same pass (a second SA down elsewhere is
 * fixed too), one Cloudflare list for both stages, and its own events
 * (the initiates') ask for no further pass. */
static void test_scoped_pass_fixes_and_settles(void **state)
{
	struct fake f;
	struct ts_agent *a = NULL;
	struct ts_agent_options watch = { .watch = true };
	struct ts_pass_result res = { 0 };
	const char *name = "t03";
	unsigned lists;
	(void)state;

	fake_init(&f, 5);
	assert_true(fake_settle(&f, 10) > 0);
	assert_int_equal(fake_agent_open(&f, &watch, &a), 0);
	sa_down(&f, 2);
	sa_down(&f, 4);
	lists = f.lists;
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_true(res.scoped);
	assert_int_equal(res.n_scoped_applied, 1);
	assert_int_equal(res.n_applied, 2); /* t03 first, then t05 */
	assert_int_equal(f.lists, lists + 1);
	assert_true(fake_in_agreement(&f, 2));
	assert_true(fake_in_agreement(&f, 4));
	assert_true(res.settled);
	assert_false(res.events_unsettled);
	/* Taken by the agent: the loop finds nothing left to read. */
	assert_int_equal(ts_agent_process_events(a), 0);
	ts_pass_result_done(&res);

	/* Without watch (once, plan): nothing is taken; the event is left. */
	ts_agent_free(a);
	assert_int_equal(fake_agent_open(&f, NULL, &a), 0);
	sa_down(&f, 1);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_int_equal(res.n_applied, 1);
	assert_false(res.settled);
	assert_int_equal(ts_agent_process_events(a), 1);
	ts_pass_result_done(&res);

	/* A rotation is the full plan's: the scope escalates. */
	ts_agent_free(a);
	assert_int_equal(fake_agent_open(&f, &watch, &a), 0);
	fake_cf_regenerate(&f, 0);
	name = "t01";
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_false(res.scoped);
	assert_int_equal(res.n_scoped_applied, 0);
	assert_true(res.n_applied >= 1);
	assert_true(fake_in_agreement(&f, 0));
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* The scoped stage asks Cloudflare for a new list (one request). */
static void scoped_lists_anew(struct fake *f, struct ts_agent *a, const bool *scope)
{
	struct ts_observation o = { 0 };
	struct ts_plan *plan = NULL;
	unsigned lists = f->lists;

	assert_true(ts_agent_plan_scoped(a, scope, &o, &plan) >= 0);
	assert_false(o.cf_borrowed);
	assert_int_equal(f->lists, lists + 1);
	ts_plan_free(plan);
	ts_observation_done(&o);
}

/* The scoped stage's Cloudflare read: the last pass's list when that pass
 * wrote nothing to Cloudflare after reading it and it is at most
 * resync-interval old (no request before the corrective action; the full
 * stage then lists once, as before), else a new list. A change made on
 * Cloudflare since that list (a key regenerated on the dashboard) is not
 * seen by the scope, which decides what a full plan over the same
 * observation would; the full stage of the same pass lists again, sees it
 * and rotates: the tunnel ends in agreement within that pass. */
static void test_scoped_stage_reuses_last_list(void **state)
{
	struct fake f;
	struct ts_agent *a = NULL;
	struct ts_agent_options watch = { .watch = true };
	struct ts_pass_result res = { 0 };
	struct ts_observation o = { 0 };
	struct ts_plan *plan = NULL;
	const char *name = "t02";
	unsigned lists, rotations;
	size_t k = 0;
	bool *scope;
	(void)state;

	fake_init(&f, 5);
	assert_true(fake_settle(&f, 10) > 0);
	assert_int_equal(fake_agent_open(&f, &watch, &a), 0);
	scope = ts_agent_scope_expand(&f.d, &name, 1, &k);
	assert_non_null(scope);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	ts_pass_result_done(&res);

	/* After a quiet pass: no request, the action comes at once. */
	sa_down(&f, 1);
	lists = f.lists;
	assert_int_equal(ts_agent_plan_scoped(a, scope, &o, &plan), 1);
	assert_true(o.cf_borrowed);
	assert_int_equal(f.lists, lists);
	assert_int_equal(plan->n_actions, 1);
	assert_int_equal(plan->actions[0].kind, TS_ACTION_INITIATE);
	ts_plan_free(plan);
	ts_observation_done(&o);
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_true(res.scoped);
	assert_int_equal(res.n_scoped_applied, 1);
	assert_int_equal(f.lists, lists + 1); /* the full stage's */
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);

	/* Older than resync-interval: listed again. */
	f.mono += ((ts_usec_t)f.d.agent.resync_interval + 1) * TS_USEC_PER_SEC;
	scoped_lists_anew(&f, a, scope);

	/* A pass that wrote to Cloudflare (a rotation) keeps no list. */
	fake_cf_regenerate(&f, 3);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(res.n_applied >= 1);
	assert_true(fake_in_agreement(&f, 3));
	ts_pass_result_done(&res);
	assert_false(a->cf_last_ok);
	scoped_lists_anew(&f, a, scope);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0); /* quiet: kept */
	ts_pass_result_done(&res);
	assert_true(a->cf_last_ok);

	/* Cloudflare changes behind the last list: the scope plans from that
	 * list (an initiate, as a full plan over it would), the full stage
	 * from a new one (the rotation), in the same pass. */
	fake_cf_regenerate(&f, 1);
	sa_down(&f, 1);
	lists = f.lists;
	rotations = f.set_calls;
	assert_int_equal(ts_agent_plan_scoped(a, scope, &o, &plan), 1);
	assert_true(o.cf_borrowed);
	assert_int_equal(plan->actions[0].kind, TS_ACTION_INITIATE);
	ts_plan_free(plan);
	ts_observation_done(&o);
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_true(res.scoped);
	assert_true(f.lists > lists);
	assert_true(f.set_calls > rotations);
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);

	free(scope);
	ts_agent_free(a);
	fake_done(&f);
}

/* An event whose tunnels need nothing (an SA replaced by a rekey, a
 * tunnel back up by itself): the scoped pass ends with its scope, with no
 * Cloudflare request and no whole-gateway stage; what else drifted waits
 * for its own event or the resync. A scope that acts still goes on to the
 * whole gateway. */
static void test_scope_with_nothing_to_do_ends(void **state)
{
	struct fake f;
	struct ts_agent *a = NULL;
	struct ts_agent_options watch = { .watch = true };
	struct ts_pass_result res = { 0 };
	const char *name = "t02", *other = "t05"; /* indexes 1 and 4 */
	unsigned lists;
	(void)state;

	fake_init(&f, 5);
	assert_true(fake_settle(&f, 10) > 0);
	assert_int_equal(fake_agent_open(&f, &watch, &a), 0);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	ts_pass_result_done(&res);

	sa_down(&f, 4); /* no event of its own yet */
	lists = f.lists;
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_true(res.scoped);
	assert_true(res.planes_ok);
	assert_true(res.settled);
	assert_int_equal(res.plan->n_actions, 0);
	assert_int_equal(res.n_applied, 0);
	assert_int_equal(f.lists, lists);
	assert_false(fake_in_agreement(&f, 4));
	ts_pass_result_done(&res);

	/* Its event: acted on, then the whole gateway (one list). */
	assert_int_equal(ts_agent_pass_scoped(a, &other, 1, &res), 0);
	assert_int_equal(res.n_scoped_applied, 1);
	assert_int_equal(f.lists, lists + 1);
	assert_true(fake_in_agreement(&f, 4));
	ts_pass_result_done(&res);

	/* After a pass that could not read a plane, a scope with nothing to
	 * do still goes on to the whole gateway. */
	f.list_fails = true;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_false(res.planes_ok);
	ts_pass_result_done(&res);
	f.list_fails = false;
	lists = f.lists;
	assert_int_equal(ts_agent_pass_scoped(a, &name, 1, &res), 0);
	assert_true(f.lists > lists);
	assert_true(res.planes_ok);
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* charon's answer when its initiate timeout ends before the exchange
 * (a loaded machine): the initiate is confirmed by observation, not
 * taken as failed (the e2e-daemon flake "e2e-b not re-initiated"). */
static void test_slow_initiate_confirmed(void **state)
{
	struct fake f;
	struct ts_pass_result res = { 0 };
	(void)state;

	fake_init(&f, 2);
	assert_true(fake_settle(&f, 10) > 0);
	sa_down(&f, 1);
	f.initiate_slow = true;
	assert_int_equal(fake_pass(&f, NULL, 0, &res), 0);
	assert_int_equal(res.n_applied, 1);
	assert_int_equal(res.n_pending, 0);
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);
	fake_done(&f);
}

/* --- events during a full pass (ts_agent_yield) ----------------------------- */

static const struct ts_agent_options daemon_options = { .watch = true };

/* What a test does to the world at one of the fake's steps, once. */
struct drift_at {
	const char *step;   /* the fake's step ("ike_observe", "initiate") */
	const char *tunnel; /* at this tunnel's step (NULL: a step of many) */
	int drift;	    /* this tunnel's SA goes down (an event names it); -1: none */
	int comes_up;	    /* this tunnel comes up by itself (an event names it); -1: none */
	bool nameless;	    /* an event naming no tunnel (charon restarted) */
	bool fired;
	char order[128]; /* the tunnels initiated, in order */
	bool initiated;
	unsigned lists_at_initiate; /* Cloudflare lists done at the first initiate */
};

static void on_step(struct fake *f, const char *step, const char *tunnel)
{
	struct drift_at *d = f->step_data;

	if (strcmp(step, "initiate") == 0 && !d->initiated) {
		d->initiated = true;
		d->lists_at_initiate = f->lists;
	}
	if (strcmp(step, "initiate") == 0 && strlen(d->order) + 8 < sizeof(d->order))
		snprintf(d->order + strlen(d->order), sizeof(d->order) - strlen(d->order), "%s ",
			 tunnel);
	if (d->fired || strcmp(step, d->step) != 0 ||
	    (d->tunnel ? !tunnel || strcmp(tunnel, d->tunnel) != 0 : tunnel != NULL))
		return;
	d->fired = true;
	if (d->drift >= 0)
		fake_drift(f, (size_t)d->drift);
	if (d->comes_up >= 0) {
		f->ike[d->comes_up].up = true;
		f->ike[d->comes_up].ike_id = ++f->next_ike_id;
		f->event_named[d->comes_up] = true;
	}
	if (d->nameless)
		f->event_nameless = true;
}

/* The events of earlier passes read, as the loop reads them between passes. */
static void drain(struct ts_agent *a)
{
	char **names = NULL;
	size_t n = 0;

	(void)ts_agent_process_events(a);
	(void)ts_agent_event_scope(a, &names, &n);
	ts_agent_names_free(names, n);
}

/* n tunnels settled (t01 and t02 in one redundancy group with group),
 * d armed, and an agent with options on them whose earlier events are
 * read. */
static struct ts_agent *settled_world(struct fake *f, size_t n, bool group,
				      const struct ts_agent_options *options, struct drift_at *d,
				      const char *step, const char *tunnel, int drift)
{
	struct ts_agent *a = NULL;

	fake_init(f, n);
	if (group) {
		snprintf(f->t[0].redundancy_group, sizeof(f->t[0].redundancy_group), "g");
		snprintf(f->t[1].redundancy_group, sizeof(f->t[1].redundancy_group), "g");
	}
	assert_true(fake_settle(f, 10) > 0);
	*d = (struct drift_at){ .step = step, .tunnel = tunnel, .drift = drift, .comes_up = -1 };
	f->step_data = d;
	f->on_step = on_step;
	assert_int_equal(fake_agent_open(f, options, &a), 0);
	drain(a);
	return a;
}

/* An SA goes down while the full pass reads charon (after its answer: the
 * pass's observation has the tunnel up). The daemon's pass acts on it
 * before it ends (a nested scope); once, or a pass without watch, leaves
 * the event for later. */
static void test_event_during_observation(void **state)
{
	struct fake f;
	struct drift_at d;
	struct ts_agent *a;
	struct ts_pass_result res = { 0 };
	unsigned initiates;
	(void)state;

	a = settled_world(&f, 5, false, &daemon_options, &d, "ike_observe", NULL, 2);
	initiates = f.ike[2].initiates;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_int_equal(res.n_yielded, 1);
	assert_int_equal(res.n_applied, 1);
	assert_int_equal(f.ike[2].initiates, initiates + 1);
	assert_string_equal(d.order, "t03 ");
	assert_true(fake_in_agreement(&f, 2));
	assert_true(res.settled); /* its own initiate's event needs nothing more */
	assert_false(res.events_unsettled);
	assert_int_equal(ts_agent_process_events(a), 0);
	ts_pass_result_done(&res);
	ts_agent_free(a);

	/* Without watch: the pass does what its observation said (nothing). */
	d.fired = false;
	assert_int_equal(fake_agent_open(&f, NULL, &a), 0);
	drain(a);
	f.ike[1].initiates = 0;
	d.drift = 1;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_int_equal(res.n_yielded, 0);
	assert_int_equal(res.n_applied, 0);
	assert_int_equal(f.ike[1].initiates, 0);
	assert_false(f.ike[1].up);
	assert_int_equal(ts_agent_process_events(a), 1);
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* An SA goes down while the full pass's Cloudflare list is under way (the
 * request's wait hook, cf_list_watch): the daemon initiates it before the
 * list has come back, planning with the last pass's kept list (as a
 * scoped pass just before the full one would); the full observation,
 * read after that, has it up and plans nothing for it, and the nested
 * scope made no request. Without a kept list (an agent's first pass) the
 * events stay unread during the request and are taken by the yield
 * after it, with the new list. */
static void test_event_during_list(void **state)
{
	struct fake f;
	struct drift_at d;
	struct ts_agent *a;
	struct ts_pass_result res = { 0 };
	unsigned initiates, lists;
	(void)state;

	a = settled_world(&f, 5, false, &daemon_options, &d, "cf_list_request", NULL, 2);
	d.fired = true; /* the agent's first pass: nothing to do; it keeps its list */
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_int_equal(res.n_applied, 0);
	ts_pass_result_done(&res);
	d.fired = false;
	initiates = f.ike[2].initiates;
	lists = f.lists;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	/* (and the nested initiate's own event, in a later round of the
	 * request: a scope that finds it up) */
	assert_true(f.list_readies >= 1);
	assert_true(res.n_yielded >= 1);
	assert_int_equal(res.n_applied, 1);
	assert_int_equal(f.ike[2].initiates, initiates + 1);
	assert_string_equal(d.order, "t03 ");
	assert_int_equal(d.lists_at_initiate, lists); /* before the list came back */
	assert_int_equal(f.lists, lists + 1);	      /* the nested scope listed nothing */
	assert_true(fake_in_agreement(&f, 2));
	assert_false(res.events_unsettled);
	assert_int_equal(ts_agent_process_events(a), 0);
	ts_pass_result_done(&res);
	ts_agent_free(a);

	/* A fresh agent: no kept list. */
	assert_int_equal(fake_agent_open(&f, &daemon_options, &a), 0);
	drain(a);
	d = (struct drift_at){ .step = "cf_list_request", .drift = 1, .comes_up = -1 };
	f.list_readies = 0;
	lists = f.lists;
	initiates = f.ike[1].initiates;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_int_equal(f.list_readies, 0);
	assert_true(res.n_yielded >= 1);
	assert_int_equal(f.ike[1].initiates, initiates + 1);
	assert_int_equal(d.lists_at_initiate, lists + 1); /* after the list */
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);
	ts_agent_free(a);

	/* once (no watch) never lists this way. */
	assert_int_equal(fake_agent_open(&f, NULL, &a), 0);
	f.list_watches = 0;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_int_equal(f.list_watches, 0);
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* Nested scopes hold the list request while they run: once they have for
 * a third of request-timeout, none more starts in it. t03 goes down in the
 * request's first round and its nested scope takes 11 s (a slow
 * observation, as with a peer that does not answer); t04 goes down in the
 * second round: it waits for the list and is initiated after it. */
struct rounds {
	int drift[3];
	unsigned round;
	unsigned lists_at[5]; /* lists done when tunnel i was initiated, + 1 */
};

static void on_round(struct fake *f, const char *step, const char *tunnel)
{
	struct rounds *r = f->step_data;

	if (strcmp(step, "cf_list_request") == 0 && r->round < 3) {
		if (r->drift[r->round] >= 0)
			fake_drift(f, (size_t)r->drift[r->round]);
		r->round++;
	}
	if (strcmp(step, "initiate") == 0 && tunnel && tunnel[0] == 't')
		r->lists_at[atoi(tunnel + 1) - 1] = f->lists + 1;
}

static void test_list_pause_bounded(void **state)
{
	struct fake f;
	struct drift_at d;
	struct rounds rd = { .drift = { 2, 3, -1 } };
	struct ts_agent *a;
	struct ts_pass_result res = { 0 };
	unsigned lists;
	(void)state;

	a = settled_world(&f, 5, false, &daemon_options, &d, "none", NULL, -1);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0); /* keeps its list */
	ts_pass_result_done(&res);
	f.on_step = on_round;
	f.step_data = &rd;
	f.observe_delay = 11 * TS_USEC_PER_SEC;
	f.list_readies = 0;
	lists = f.lists;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_int_equal(rd.round, 2); /* "stop" at the second: no third round */
	assert_int_equal(f.list_readies, 1);
	assert_int_equal(rd.lists_at[2], lists + 1); /* t03 during the list */
	assert_int_equal(rd.lists_at[3], lists + 2); /* t04 after it */
	assert_true(fake_in_agreement(&f, 2));
	assert_true(fake_in_agreement(&f, 3));
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* An SA goes down while the full pass carries out its actions (t01 and
 * t02 were down): t04 is initiated between them, before t02. */
static void test_event_during_actions(void **state)
{
	struct fake f;
	struct drift_at d;
	struct ts_pass_result res = { 0 };
	struct ts_agent *a;
	(void)state;

	a = settled_world(&f, 5, false, &daemon_options, &d, "initiate", "t01", 3);
	sa_down(&f, 0);
	sa_down(&f, 1);
	for (size_t i = 0; i < 5; i++)
		f.ike[i].initiates = 0;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_string_equal(d.order, "t01 t04 t02 ");
	assert_int_equal(res.n_yielded, 1);
	assert_int_equal(res.n_applied, 3);
	for (size_t i = 0; i < 5; i++) {
		assert_true(fake_in_agreement(&f, i));
		assert_int_equal(f.ike[i].initiates, i == 2 || i == 4 ? 0 : 1);
	}
	/* t01's own event was left to the pass's end, which settled it. */
	assert_true(res.settled);
	assert_false(res.events_unsettled);
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* The event is for a tunnel the full pass is about to act on: the nested
 * scope plans it from its newer observation and the pass does not act on
 * it again from its older one (one initiate, not two; none when the
 * tunnel came up by itself meanwhile). */
static void test_event_for_tunnel_about_to_be_acted_on(void **state)
{
	struct fake f;
	struct drift_at d;
	struct ts_pass_result res = { 0 };
	struct ts_agent *a;
	(void)state;

	a = settled_world(&f, 4, false, &daemon_options, &d, "initiate", "t01", 1);
	sa_down(&f, 0);
	sa_down(&f, 1);
	f.ike[0].initiates = f.ike[1].initiates = 0;
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_string_equal(d.order, "t01 t02 ");
	assert_int_equal(res.n_yielded, 1);
	assert_int_equal(f.ike[1].initiates, 1);
	assert_true(fake_in_agreement(&f, 0));
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);

	/* t02 comes up by itself (its peer initiated) before the pass gets
	 * to it: nothing is done to it. */
	sa_down(&f, 0);
	sa_down(&f, 1);
	f.ike[0].initiates = f.ike[1].initiates = 0;
	d = (struct drift_at){ .step = "initiate", .tunnel = "t01", .drift = -1, .comes_up = 1 };
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_string_equal(d.order, "t01 ");
	assert_int_equal(res.n_yielded, 1);
	assert_int_equal(res.n_applied, 1);
	assert_int_equal(f.ike[1].initiates, 0);
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);
	ts_agent_free(a);
	fake_done(&f);
}

/* What is left to the pass's end (a further pass): an event for a
 * tunnel whose redundancy group the pass acts on already, one after the
 * pass wrote to Cloudflare (a rotation), one naming no tunnel. The
 * journal is left consistent and the next pass fixes the tunnel. */
static void test_events_left_to_the_pass_end(void **state)
{
	struct fake f;
	struct drift_at d;
	struct ts_pass_result res = { 0 };
	struct ts_agent *a;
	(void)state;

	/* The group: t01 acted on, t02 drifts (seen before t05's initiate). */
	a = settled_world(&f, 5, true, &daemon_options, &d, "initiate", "t01", 1);
	sa_down(&f, 0);
	sa_down(&f, 4);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_string_equal(d.order, "t01 t05 ");
	assert_int_equal(res.n_yielded, 0);
	assert_false(f.ike[1].up);
	assert_true(res.events_unsettled);
	ts_pass_result_done(&res);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(fake_in_agreement(&f, 1));
	ts_pass_result_done(&res);

	/* A rotation (t03's key regenerated on Cloudflare), then t04's SA
	 * goes down during the pass's initiate of t01. */
	fake_cf_regenerate(&f, 2);
	sa_down(&f, 0);
	sa_down(&f, 4);
	d = (struct drift_at){ .step = "initiate", .tunnel = "t01", .drift = 3, .comes_up = -1 };
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_string_equal(d.order, "t01 t05 ");
	assert_int_equal(res.n_yielded, 0);
	assert_true(res.events_unsettled);
	assert_true(fake_key_safe(&f, 2));
	assert_int_equal(fake_journal_step(&f, 2), -1);
	assert_true(fake_in_agreement(&f, 2));
	assert_false(f.ike[3].up);
	ts_pass_result_done(&res);
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(fake_in_agreement(&f, 3));
	ts_pass_result_done(&res);

	/* An event naming no tunnel during the observation. */
	d = (struct drift_at){
		.step = "ike_observe", .drift = -1, .comes_up = -1, .nameless = true
	};
	assert_int_equal(ts_agent_pass(a, NULL, 0, &res), 0);
	assert_true(d.fired);
	assert_int_equal(res.n_yielded, 0);
	assert_true(res.events_unsettled);
	ts_pass_result_done(&res);
	for (size_t i = 0; i < 5; i++)
		assert_true(fake_in_agreement(&f, i));
	ts_agent_free(a);
	fake_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_expands_to_group),
		cmocka_unit_test(test_scoped_plan_matches_full),
		cmocka_unit_test(test_scoped_pass_fixes_and_settles),
		cmocka_unit_test(test_scoped_stage_reuses_last_list),
		cmocka_unit_test(test_scope_with_nothing_to_do_ends),
		cmocka_unit_test(test_slow_initiate_confirmed),
		cmocka_unit_test(test_event_during_observation),
		cmocka_unit_test(test_event_during_list),
		cmocka_unit_test(test_list_pause_bounded),
		cmocka_unit_test(test_event_during_actions),
		cmocka_unit_test(test_event_for_tunnel_about_to_be_acted_on),
		cmocka_unit_test(test_events_left_to_the_pass_end),
	};

	if (getenv("TEST_DEBUG"))
		ts_log_set_level(TS_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
