/* Owns what the agent does for the traffic of its tunnels beyond the
 * planes' agreement: whether the running charon reauthenticates
 * make-before-break (checked at start and after every charon restart,
 * logged loudly when not, carried into status and metrics) and which
 * events the event connection subscribes to. */
#include "reconcile/agent_internal.h"

#include "core/log.h"

void ts_agent_check_mbb(struct ts_agent *a)
{
	struct ts_mbb_check c;
	int r;

	if (a->mbb_checked || !a->vici)
		return;
	r = ts_mbb_check(a->vici, a->desired->agent.strongswan_conf, &c);
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
