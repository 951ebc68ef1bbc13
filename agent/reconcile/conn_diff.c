/* The declared connection against what the IKE daemon holds and what the
 * agent recorded when it last loaded and established it (agent/ike/README.md,
 * "What is compared"). Glue only: the leaves and the diff are the IKE
 * adapter's pure functions, the record is the store's file. */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ike/ike.h"

int ts_agent_diff_conns(const struct ts_agent *a, struct ts_observation *o)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	const struct ts_desired *d = o->desired;

	if (!o->ike_ok || !o->ike)
		return 0;
	o->conn_changes = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*o->conn_changes));
	if (!o->conn_changes)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		const struct ts_ike_observed *io = &o->ike[i];
		struct ts_obs_ike *oi = &o->tunnels[i].ike;
		struct ts_ike_leaves want = { 0 }, rec = { 0 };
		bool have_rec;
		int r;

		if (!io->conn_loaded)
			continue;
		/* The rendering the observation's compare made, else one now. */
		r = io->want.values[0] ? 0
				       : ts_ike_leaves_render(t, d->cloudflare.account_id, &want);
		if (r < 0) {
			/* Not renderable: the planner sees "differs" (from the
			 * listed compare), the load then fails with the reason. */
			ts_logf(TS_LOG_WARN, "ike", t->name, "cannot render the connection: %s",
				strerror(-r));
			continue;
		}
		r = ops->conn_record_read ? ops->conn_record_read(TS_PLANES_CTX(a), t->name, &rec)
					  : -ENOENT;
		if (r == -EBADMSG)
			ts_logf(TS_LOG_WARN, "store", t->name,
				"connection record unusable (%s): the connection is reloaded",
				ops->store_error(TS_PLANES_CTX(a)));
		else if (r < 0 && r != -ENOENT)
			ts_logf(TS_LOG_WARN, "store", t->name,
				"cannot read the connection record: %s", strerror(-r));
		have_rec = r == 0;
		r = ts_ike_conn_diff(io->want.values[0] ? &io->want : &want, &io->listed,
				     have_rec ? &rec : NULL, &o->conn_changes[i]);
		ts_ike_leaves_done(&want);
		ts_ike_leaves_done(&rec);
		if (r < 0)
			return r;
		oi->conn_changes = o->conn_changes[i];
		oi->conn_equal = o->conn_changes[i].n == 0;
	}
	return 0;
}

void ts_agent_record_conn(struct ts_agent *a, const struct ts_tunnel *t)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	struct ts_ike_leaves want = { 0 };
	int r;

	if (!ops->conn_record_write)
		return;
	r = ts_ike_leaves_render(t, a->desired->cloudflare.account_id, &want);
	if (r >= 0)
		r = ops->conn_record_write(TS_PLANES_CTX(a), t->name, &want);
	ts_ike_leaves_done(&want);
	if (r < 0)
		ts_logf(TS_LOG_WARN, "store", t->name,
			"cannot record the loaded connection: %s (it will be reloaded)",
			strerror(-r));
}
