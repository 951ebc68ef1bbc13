/* Owns the daemon's view of the real agent (ts_daemon_agent_ops): the
 * config adapter and reconcile/agent.h behind the loop's ops table. */
#include "daemon/daemon.h"

#include <errno.h>
#include <stdlib.h>

#include "config/config.h"
#include "reconcile/agent.h"
#include "reconcile/plan.h"

static int agent_load(void *ctx, const char *config, const char *models_dir,
		      struct ts_desired **ret_desired, char *errbuf, size_t errsize)
{
	struct ts_config_error err = { 0 };
	int r = ts_config_load(config, models_dir, ret_desired, &err);

	if (r < 0)
		ts_config_error_format(&err, errbuf, errsize);
	ts_config_error_done(&err);
	return r;
}

static int agent_open(void *ctx, const struct ts_desired *desired, const char *state_dir,
		      void **ret_agent)
{
	struct ts_agent_options ao = { .state_dir = state_dir, .watch = true };
	struct ts_agent *a = NULL;
	int r = ts_agent_open(desired, &ao, &a);

	if (r < 0)
		return r;
	*ret_agent = a;
	return 0;
}

static void agent_close(void *ctx, void *agent)
{
	ts_agent_free(agent);
}

static void *agent_carry_take(void *ctx, void *agent)
{
	return ts_agent_carry_take(agent);
}

static void agent_carry_give(void *ctx, void *agent, void *carry)
{
	ts_agent_carry_give(agent, carry);
}

static int agent_pass(void *ctx, void *agent, const char *const *names, size_t n,
		      struct ts_daemon_pass *ret)
{
	struct ts_pass_result res = { 0 };
	int r = n ? ts_agent_pass_scoped(agent, names, n, &res)
		  : ts_agent_pass(agent, NULL, 0, &res);

	if (r < 0)
		return r;
	*ret = (struct ts_daemon_pass){
		.n_actions = res.plan ? res.plan->n_actions : 0,
		.n_applied = res.n_applied,
		.n_pending = res.n_pending,
		.n_failed = res.n_failed,
		.planes_ok = res.planes_ok,
		.changes = res.plan && ts_plan_has_changes(res.plan),
		.next_due = ts_agent_next_due(agent),
		.scoped = res.scoped,
		.n_scoped_applied = res.n_scoped_applied,
		.settled = res.settled,
		.events_unsettled = res.events_unsettled,
	};
	ts_pass_result_done(&res);
	return 0;
}

static void agent_fds(void *ctx, void *agent, int *ret_ike_fd, int *ret_xfrm_fd)
{
	ts_agent_fds(agent, ret_ike_fd, ret_xfrm_fd);
}

static int agent_events(void *ctx, void *agent)
{
	return ts_agent_process_events(agent);
}

static int agent_event_scope(void *ctx, void *agent, char ***ret_names, size_t *ret_n)
{
	return ts_agent_event_scope(agent, ret_names, ret_n);
}

static int agent_metrics(void *ctx, void *agent, char **ret_text)
{
	return ts_agent_metrics_text(agent, ret_text);
}

static bool agent_ready(void *ctx, void *agent, char *buf, size_t size)
{
	return ts_agent_ready_reason(agent, buf, size);
}

static void agent_idle(void *ctx, void *agent, ts_usec_t quiet)
{
	ts_agent_idle(agent, quiet);
}

const struct ts_daemon_ops ts_daemon_agent_ops = {
	.load = agent_load,
	.open = agent_open,
	.close = agent_close,
	.carry_take = agent_carry_take,
	.carry_give = agent_carry_give,
	.pass = agent_pass,
	.idle = agent_idle,
	.fds = agent_fds,
	.process_events = agent_events,
	.event_scope = agent_event_scope,
	.metrics = agent_metrics,
	.ready = agent_ready,
};
