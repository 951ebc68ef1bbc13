/* Owns what the agent does for the traffic of its tunnels beyond the
 * planes' agreement: whether the running charon reauthenticates
 * make-before-break (checked at start and after every charon restart,
 * logged loudly when not, carried into status and metrics) and which
 * events the event connection subscribes to. */
#include "reconcile/agent_internal.h"

#include "core/log.h"
#include "core/timeutil.h"

void ts_agent_check_mbb(struct ts_agent *a)
{
	struct ts_mbb_check c;
	int r;

	if (TS_PLANES(a)->ike_take_restarted(TS_PLANES_CTX(a)))
		a->mbb_checked = false; /* charon read its settings again */
	if (a->mbb_checked)
		return;
	r = TS_PLANES(a)->ike_mbb_check(TS_PLANES_CTX(a), a->desired->agent.strongswan_conf, &c);
	if (r < 0)
		return; /* charon not reachable: next pass */
	a->mbb = c;
	a->mbb_checked = true;
	if (c.state == TS_MBB_ON)
		ts_logf(TS_LOG_INFO, "ike", NULL, "reauthentication is make-before-break: %s",
			c.reason);
	else
		ts_logf(TS_LOG_WARN, "ike", NULL,
			"MAKE-BEFORE-BREAK NOT IN FORCE (%s): key rotations will drop traffic: %s",
			ts_mbb_state_to_string(c.state), c.reason);
}

void ts_agent_recheck_mbb(struct ts_agent *a)
{
	a->mbb_checked = false;
}

bool ts_agent_log_needed(const struct ts_observation *o, const struct ts_plan *plan)
{
	for (size_t i = 0; plan && i < plan->n_actions; i++) {
		const struct ts_action *act = &plan->actions[i];

		if (act->apply &&
		    (act->kind == TS_ACTION_INITIATE || act->kind == TS_ACTION_REAUTH ||
		     act->kind == TS_ACTION_ROTATE || act->kind == TS_ACTION_RESUME))
			return true;
	}
	if (!o || !o->ike_ok)
		return true; /* cannot tell: keep counting */
	/* charon trying by itself (DPD restart, retries): an IKE SA that is
	 * neither absent nor established. */
	for (size_t i = 0; i < o->n_tunnels; i++)
		if (o->ike[i].ike_state == TS_IKE_SA_CREATED ||
		    o->ike[i].ike_state == TS_IKE_SA_CONNECTING)
			return true;
	return false;
}

void ts_agent_want_log(struct ts_agent *a, bool want)
{
	if (TS_PLANES(a)->ike_follow_log(TS_PLANES_CTX(a), want) <= 0)
		return;
	if (want)
		ts_logf(TS_LOG_DEBUG, "ike", NULL,
			"following charon's log (authentications ahead)");
	else
		ts_logf(TS_LOG_DEBUG, "ike", NULL,
			"charon's log no longer followed (every tunnel up)");
}

bool ts_agent_reauth_fallback(const struct ts_agent *a, const struct ts_journal_entry *e)
{
	ts_usec_t now = ts_now_realtime();

	return e && e->started_at > 0 &&
	       now - e->started_at > (ts_usec_t)a->desired->agent.confirm_timeout * TS_USEC_PER_SEC;
}
