/* Memory: what the agent carries from pass to pass (and, through the
 * status file, from one `once` run to the next) per tunnel: failure
 * counts, the last rotation, the last error. Fed from the observation and
 * from apply's outcomes; nothing else writes it. */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <string.h>

struct ts_agent_tunnel_memory *ts_agent_memory(struct ts_agent *a, const char *tunnel)
{
	size_t lo = 0, hi = a->n_memory;

	/* In the desired tunnels' order, sorted by name: a binary search (it
	 * runs per tunnel and per action of every pass); a miss is confirmed
	 * by a scan. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->memory[mid].name, tunnel);

		if (c == 0)
			return &a->memory[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < a->n_memory; i++)
		if (strcmp(a->memory[i].name, tunnel) == 0)
			return &a->memory[i];
	return NULL;
}

void ts_memory_set_error(struct ts_agent_tunnel_memory *m, const char *error)
{
	/* At most 191 bytes, as the fixed field it was; an allocation that
	 * fails leaves the previous error. */
	char *copy = strndup(error, 191);

	if (copy) {
		free(m->last_error);
		m->last_error = copy;
	}
}

void ts_memory_observe(struct ts_agent *a, const struct ts_observation *o)
{
	const struct ts_desired *d = a->desired;

	if (!o->ike_ok)
		return;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_observed_tunnel *ot = &o->tunnels[i];
		struct ts_agent_tunnel_memory *mem = ts_agent_memory(a, d->tunnels[i].name);

		if (!mem || !ts_observation_in_scope(o, i))
			continue;
		if (ot->ike.sa_state == TS_OBS_SA_ESTABLISHED) {
			/* An established SA proves the key and clears them. */
			mem->auth_failures_base = 0;
			mem->auth_failures = 0;
			TS_PLANES(a)->ike_failures_reset(TS_PLANES_CTX(a), o->ike[i].conn_name);
			continue;
		}
		mem->auth_failures = ot->ike.auth_failures;
		mem->last_auth_failure = ot->ike.last_auth_failure;
	}
}

void ts_memory_rotated(struct ts_agent *a, const struct ts_tunnel *t, ts_usec_t now)
{
	struct ts_agent_tunnel_memory *m = ts_agent_memory(a, t->name);
	char conn[TS_IKE_CONN_NAME_MAX];

	if (m) {
		m->auth_failures = 0;
		m->auth_failures_base = 0;
		m->last_auth_failure = 0;
		m->last_rotation = now;
		free(m->last_error);
		m->last_error = NULL;
	}
	if (ts_ike_conn_name(t, conn, sizeof(conn)) == 0)
		TS_PLANES(a)->ike_failures_reset(TS_PLANES_CTX(a), conn);
	a->rotations++;
}

void ts_memory_fold(struct ts_agent *a, const struct ts_plan *plan,
		    const struct ts_pass_result *res)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	const struct ts_desired *d = a->desired;

	for (size_t i = 0; res->outcomes && i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];
		const struct ts_action_outcome *out = &res->outcomes[i];
		const struct ts_tunnel *t = ts_desired_find(d, act->tunnel);
		struct ts_agent_tunnel_memory *m = ts_agent_memory(a, act->tunnel);

		if (t && out->status == TS_OUTCOME_APPLIED &&
		    (act->kind == TS_ACTION_ROTATE || act->kind == TS_ACTION_RESUME))
			ts_memory_rotated(a, t, ops->now_realtime(ctx));
		else if (m && out->detail[0] && out->status != TS_OUTCOME_APPLIED)
			ts_memory_set_error(m, out->detail);
	}

	/* Failures the pass's own initiations and reauthentications met (after
	 * observe), so that a run of one-shot `once` passes still reaches the
	 * authentication-failure threshold. Same sum as observe: base from
	 * the file + this process's. */
	for (size_t i = 0; i < d->n_tunnels; i++) {
		struct ts_agent_tunnel_memory *mem = ts_agent_memory(a, d->tunnels[i].name);
		struct ts_ike_failures f;
		char conn[TS_IKE_CONN_NAME_MAX];

		if (!mem || ts_ike_conn_name(&d->tunnels[i], conn, sizeof(conn)) < 0)
			continue;
		ops->ike_failures(ctx, conn, &f);
		if (f.auth_failures == 0)
			continue;
		mem->auth_failures = mem->auth_failures_base + f.auth_failures;
		if (f.last_auth_failure > mem->last_auth_failure)
			mem->last_auth_failure = f.last_auth_failure;
	}
}
