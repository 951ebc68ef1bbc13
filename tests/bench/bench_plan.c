/* Planner benchmark: plans for growing numbers of tunnels (paired in
 * redundancy groups, some due for rotation, some with drift) and prints
 * the time per plan. Figures only; nothing is asserted about time. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "reconcile/plan.h"

#define NOW ((ts_usec_t)1800000000 * TS_USEC_PER_SEC)

static int run(size_t n, int rounds)
{
	struct ts_desired d = { 0 };
	struct ts_observed o = { .cf_complete = true,
				 .ike_complete = true,
				 .kernel_complete = true,
				 .store_complete = true };
	struct ts_key_record *rec = calloc(n, sizeof(*rec));
	ts_usec_t t0, t1;
	size_t actions = 0;

	d.tunnels = calloc(n, sizeof(*d.tunnels));
	o.tunnels = calloc(n, sizeof(*o.tunnels));
	o.n_tunnels = d.n_tunnels = n;
	if (!rec || !d.tunnels || !o.tunnels)
		return 1;
	d.agent.max_rotations_per_pass = 50;
	for (size_t i = 0; i < n; i++) {
		struct ts_tunnel *t = &d.tunnels[i];
		struct ts_observed_tunnel *ot = &o.tunnels[i];

		snprintf(t->name, sizeof(t->name), "t%06zu", i);
		snprintf(t->id, sizeof(t->id), "%032zx", i);
		snprintf(t->redundancy_group, sizeof(t->redundancy_group), "g%zu", i / 2);
		t->enabled = true;
		t->psk.max_age = 86400;
		t->psk.auth_failure_threshold = 3;
		t->psk.rotate_on_auth_failure = true;
		memcpy(rec[i].tunnel, t->name, sizeof(rec[i].tunnel));
		memcpy(rec[i].tunnel_id, t->id, sizeof(rec[i].tunnel_id));
		rec[i].applied_at = NOW - (i % 10 == 0 ? 2 : 0) * 86400 * TS_USEC_PER_SEC;
		memcpy(ot->name, t->name, sizeof(ot->name));
		ot->cf.ok = ot->cf.present = true;
		ot->ike.ok = ot->ike.conn_loaded = ot->ike.key_loaded = true;
		ot->ike.conn_equal = i % 7 != 0;
		ot->ike.sa_state = TS_OBS_SA_ESTABLISHED;
		ot->ike.child_up = true;
		ot->kernel.ok = ot->kernel.sa_pair_ok = ot->kernel.policies_ok = true;
		ot->store.ok = true;
		ot->store.record = &rec[i];
	}
	t0 = ts_now_monotonic();
	for (int r = 0; r < rounds; r++) {
		struct ts_plan_input in = {
			.desired = &d, .observed = &o, .now = NOW, .api_budget = 1000
		};
		struct ts_plan *plan;

		if (ts_plan_compute(&in, &plan) < 0)
			return 1;
		actions = plan->n_actions;
		ts_plan_free(plan);
	}
	t1 = ts_now_monotonic();
	printf("plan: %6zu tunnels, %5zu actions, %10.3f ms per plan\n", n, actions,
	       (double)(t1 - t0) / rounds / 1000.0);
	free(rec);
	free(d.tunnels);
	free(o.tunnels);
	return 0;
}

int main(void)
{
	static const size_t sizes[] = { 10, 100, 1000, 4000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (run(sizes[i], sizes[i] >= 1000 ? 3 : 50))
			return 1;
	return 0;
}
