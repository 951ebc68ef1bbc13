/* Rotation at scale, through the planner: K tunnels whose keys are due
 * (K = 1, 10, 100, 1000, in redundancy groups of two, every tunnel up),
 * default rotation leaves (max-in-flight 1000, bulk-batch-size 100). Each
 * pass costs one list GET plus the plan's Cloudflare calls when the write
 * answers carry last_generated_on (the pass then lists nothing more:
 * test-apply test_answer_time_is_baseline), one list more when they do not
 * (test_answer_without_time_lists_once; rotate-scale.sh measures both over
 * HTTP); a rotated tunnel commits before the next pass. Prints passes and requests (the
 * goal: ceil(K/100) + 1 per pass, K keys in as few passes as the group
 * rule allows), then how max-age-jitter spreads the due times of 1,000
 * keys set in the same second. Figures only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "reconcile/plan.h"

#define NOW ((ts_usec_t)1800000000 * TS_USEC_PER_SEC)
#define AGE (86400 * 31)

static int run(size_t k, const char *grouping)
{
	struct ts_desired d = { 0 };
	struct ts_observed o = { .cf_complete = true,
				 .ike_complete = true,
				 .kernel_complete = true,
				 .store_complete = true };
	struct ts_key_record *rec = calloc(k, sizeof(*rec));
	size_t passes = 0, requests = 0, rotated = 0;
	bool groups = strcmp(grouping, "pairs") == 0;

	d.tunnels = calloc(k, sizeof(*d.tunnels));
	o.tunnels = calloc(k, sizeof(*o.tunnels));
	if (!rec || !d.tunnels || !o.tunnels)
		return 1;
	o.n_tunnels = d.n_tunnels = k;
	for (size_t i = 0; i < k; i++) {
		struct ts_tunnel *t = &d.tunnels[i];
		struct ts_observed_tunnel *ot = &o.tunnels[i];

		snprintf(t->name, sizeof(t->name), "t%05zu", i);
		snprintf(t->id, sizeof(t->id), "%032zx", i);
		if (groups)
			snprintf(t->redundancy_group, sizeof(t->redundancy_group), "g%zu", i / 2);
		t->enabled = true;
		t->psk.max_age = 86400 * 30;
		memcpy(rec[i].tunnel, t->name, sizeof(rec[i].tunnel));
		memcpy(rec[i].tunnel_id, t->id, sizeof(rec[i].tunnel_id));
		rec[i].applied_at = NOW - (ts_usec_t)AGE * TS_USEC_PER_SEC;
		memcpy(ot->name, t->name, sizeof(ot->name));
		ot->cf.ok = ot->cf.present = true;
		ot->ike.ok = ot->ike.conn_loaded = ot->ike.conn_equal = ot->ike.key_loaded = true;
		ot->ike.sa_state = TS_OBS_SA_ESTABLISHED;
		ot->ike.child_up = true;
		ot->kernel.ok = ot->kernel.sa_pair_ok = ot->kernel.policies_ok = true;
		ot->store.ok = true;
		ot->store.record = &rec[i];
	}
	while (rotated < k && passes < 100) {
		struct ts_plan_input in = {
			.desired = &d, .observed = &o, .now = NOW, .api_budget = 600
		};
		struct ts_plan *plan;

		if (ts_plan_compute(&in, &plan) < 0)
			return 1;
		passes++;
		requests += 1 + plan->api_calls; /* the tunnel list, then the writes */
		for (size_t i = 0; i < plan->n_actions; i++) {
			const struct ts_action *a = &plan->actions[i];

			if (a->kind != TS_ACTION_ROTATE)
				continue;
			for (size_t j = 0; j < k; j++)
				if (strcmp(rec[j].tunnel, a->tunnel) == 0)
					rec[j].applied_at = NOW; /* committed */
			rotated++;
		}
		ts_plan_free(plan);
	}
	printf("rotate K=%4zu due (%s): %3zu passes, %4zu API requests (%zu per pass; "
	       "goal ceil(K/100)+1 = %zu)\n",
	       k, grouping, passes, requests, passes ? requests / passes : 0, (k + 99) / 100 + 1);
	free(rec);
	free(d.tunnels);
	free(o.tunnels);
	return rotated == k ? 0 : 1;
}

static void spread(void)
{
	struct ts_tunnel t = { 0 };
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t per_day[4] = { 0 };

	t.psk.max_age = 86400 * 30;
	for (size_t i = 0; i < 1000; i++) {
		uint64_t due;

		snprintf(t.id, sizeof(t.id), "%032zx", i);
		due = ts_tunnel_key_due_age(&t, 10);
		lo = due < lo ? due : lo;
		hi = due > hi ? due : hi;
		per_day[(t.psk.max_age - due) / 86400 < 4 ? (t.psk.max_age - due) / 86400 : 3]++;
	}
	printf("jitter 10 %%, max-age 30 d, 1000 keys set together: due from day %.2f to %.2f; "
	       "per day before max-age: %zu, %zu, %zu, %zu\n",
	       lo / 86400.0, hi / 86400.0, per_day[0], per_day[1], per_day[2], per_day[3]);
}

int main(void)
{
	static const size_t ks[] = { 1, 10, 100, 1000 };

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
		if (run(ks[i], "no groups") || run(ks[i], "pairs"))
			return 1;
	spread();
	return 0;
}
