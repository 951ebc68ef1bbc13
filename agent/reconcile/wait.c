/* Concurrent waits for SAs (wait.h). */
#include "reconcile/wait.h"

#include <stdlib.h>
#include <string.h>

#include "core/cancel.h"
#include "core/log.h"
#include "reconcile/agent_internal.h"
#include "xfrm/xfrm.h"

#define POLL_MS 250
/* A round's dump of every SA costs charon seconds at 10,000 tunnels (its
 * work, on the cores that negotiate the SAs waited for): the pause after a
 * round is this many times the round's own time, up to POLL_MAX_MS, so
 * that the waits take at most a quarter of the time. */
#define POLL_ROUND_FACTOR 3
#define POLL_MAX_MS	  5000

/* The pause after a round of `took` (ts_wait_pause). */
int ts_wait_pause(ts_usec_t took)
{
	ts_usec_t ms = took / 1000 * POLL_ROUND_FACTOR;

	if (ms > POLL_MAX_MS)
		ms = POLL_MAX_MS;
	return ms < POLL_MS ? POLL_MS : (int)ms;
}

ts_usec_t ts_wait_deadline(struct ts_agent *a, unsigned seconds)
{
	return TS_PLANES(a)->now_monotonic(TS_PLANES_CTX(a)) + (ts_usec_t)seconds * TS_USEC_PER_SEC;
}

/* An installed CHILD SA that was not there before the update. */
static const struct ts_ike_child_sa *new_child(const struct ts_ike_observed *io,
					       const struct ts_ike_update_sas *before)
{
	for (size_t i = 0; i < io->n_children; i++)
		if (io->children[i].state == TS_CHILD_SA_INSTALLED &&
		    !ts_ike_update_sas_had_child(before, io->children[i].unique_id))
			return &io->children[i];
	return NULL;
}

/* One round: observes the k tunnels of pending[] and marks those up. */
static void round_up(struct ts_agent *a, struct ts_waiter **pending, size_t k)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_tunnel *tunnels = calloc(k, sizeof(*tunnels));
	struct ts_ike_observed *io = calloc(k, sizeof(*io));
	struct ts_xfrm_expect *expect = calloc(k, sizeof(*expect));
	struct ts_xfrm_snapshot snap = { 0 };
	struct ts_xfrm_match_result res = { 0 };
	bool *ike_up = calloc(k, sizeof(*ike_up));
	bool kernel_read = false;

	if (!tunnels || !io || !expect || !ike_up)
		goto out;
	for (size_t i = 0; i < k; i++)
		tunnels[i] = *pending[i]->t; /* a shallow copy: read only */
	/* The SAs alone: a wait needs no connection, key or rendering. */
	if ((ops->ike_observe_sas ? ops->ike_observe_sas : ops->ike_observe)(ctx, tunnels, k, io) <
	    0)
		goto out;
	for (size_t i = 0; i < k; i++) {
		const struct ts_ike_child_sa *child =
			pending[i]->before ? new_child(&io[i], pending[i]->before)
					   : ts_agent_installed_child(&io[i]);

		ike_up[i] =
			io[i].ike_state == TS_IKE_SA_ESTABLISHED &&
			(pending[i]->old_id == 0 || io[i].ike_unique_id != pending[i]->old_id) &&
			child;
		ts_agent_fill_expect(pending[i]->t, &io[i], &expect[i]);
		if (child) {
			/* The kernel's pair of the SA waited for, not an old one. */
			expect[i].spi_in = child->spi_in;
			expect[i].spi_out = child->spi_out;
		}
	}
	if (a->desired->agent.kernel_xfrm)
		kernel_read =
			ops->kernel_match(ctx, expect, k, &snap, &res) == 0 && res.n_tunnels == k;
	for (size_t i = 0; i < k; i++)
		pending[i]->up = ike_up[i] && (!a->desired->agent.kernel_xfrm ||
					       (kernel_read && res.tunnels[i].sa_in_alive &&
						res.tunnels[i].sa_out_alive));
out:
	for (size_t i = 0; io && i < k; i++)
		ts_ike_observed_done(&io[i]);
	ts_xfrm_match_result_done(&res);
	ts_xfrm_snapshot_done(&snap);
	free(tunnels);
	free(io);
	free(expect);
	free(ike_up);
}

void ts_wait_up(struct ts_agent *a, struct ts_waiter *const *waiters, size_t n)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	void *ctx = TS_PLANES_CTX(a);
	struct ts_waiter **pending = calloc(n + 1, sizeof(*pending));

	if (!pending)
		return;
	for (size_t i = 0; i < n; i++)
		waiters[i]->up = false;
	for (bool first = true;; first = false) {
		ts_usec_t now = ops->now_monotonic(ctx), took;
		size_t k = 0;

		/* The first round looks at every waiter, even one whose time is
		 * up already (confirm-timeout 0: one look). */
		for (size_t i = 0; i < n; i++)
			if (!waiters[i]->up && (first || now < waiters[i]->deadline))
				pending[k++] = waiters[i];
		if (k == 0 || ts_cancel_requested())
			break;
		round_up(a, pending, k);
		took = ops->now_monotonic(ctx) - now;
		k = 0;
		for (size_t i = 0; i < n; i++)
			k += !waiters[i]->up && ops->now_monotonic(ctx) < waiters[i]->deadline;
		if (k == 0)
			break;
		/* The daemon: events for other tunnels go on meanwhile (a
		 * nested scope; one of its own waits yields to nothing). */
		ts_agent_yield(a, "waiting for SAs");
		ops->wait(ctx, ts_wait_pause(took));
	}
	free(pending);
}

/* --- a make-before-break request an earlier pass stopped waiting for ---- */

enum ts_earlier ts_earlier_seen(const struct ts_ike_observed *io, ts_usec_t now, ts_usec_t since)
{
	ts_usec_t up = now - (ts_usec_t)io->ike_established_secs * TS_USEC_PER_SEC;

	/* established counts whole seconds: one of slack. */
	if (io->ike_state == TS_IKE_SA_ESTABLISHED && up > since + TS_USEC_PER_SEC)
		return TS_EARLIER_CAME_UP;
	if (io->n_ike_answered)
		return TS_EARLIER_UNDER_WAY;
	return io->n_ike_unanswered ? TS_EARLIER_UNANSWERED : TS_EARLIER_NONE;
}

enum ts_earlier_verdict ts_earlier_decide(struct ts_agent *a, const char *tunnel, const char *what,
					  enum ts_earlier seen, ts_usec_t since, bool bounded)
{
	unsigned ct = a->desired->agent.confirm_timeout;
	ts_usec_t age = TS_PLANES(a)->now_realtime(TS_PLANES_CTX(a)) - since;
	bool late = since > 0 && age > (ts_usec_t)ct * TS_USEC_PER_SEC;
	bool patient = since > 0 && age <= (ts_usec_t)TS_EARLIER_PATIENCE * ct * TS_USEC_PER_SEC;
	const char *waits = NULL, *why = "a peer that refuses overlapping SAs?";
	enum ts_earlier_verdict v = TS_EARLIER_WAIT;

	switch (seen) {
	case TS_EARLIER_CAME_UP:
		if (patient || !bounded) {
			waits = "came up since: confirming it, no new request";
			v = TS_EARLIER_CONFIRM;
		}
		why = "came up, no new CHILD SA confirmed within 10 x confirm-timeout";
		late = true;
		break;
	case TS_EARLIER_UNDER_WAY:
		if (patient)
			waits = "is still under way (the peer answered its IKE_SA_INIT): waiting "
				"for it, no new request";
		why = "answered by the peer, not completed within 10 x confirm-timeout";
		late = true;
		break;
	case TS_EARLIER_UNANSWERED:
		if (!late)
			waits = "is not answered yet: charon retries it, no new request";
		why = "the peer never answered its IKE_SA_INIT: a peer that refuses "
		      "overlapping SAs?";
		break;
	default:
		break;
	}
	if (waits) {
		ts_logf(TS_LOG_INFO, "ike", tunnel, "%s %s", what, waits);
		return v;
	}
	if (!late)
		return TS_EARLIER_ASK;
	ts_logf(TS_LOG_WARN, "ike", tunnel,
		"%s has not come up for %llu s (%s): break-before-make this time", what,
		(unsigned long long)(age / TS_USEC_PER_SEC), why);
	return TS_EARLIER_BREAK;
}
