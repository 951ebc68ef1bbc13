/* Waiting for SAs, all of a pass's at once: the rotations' reauthentications,
 * the initiates, the reauths and the updated connections' new SAs are
 * requested first (none blocks), then one
 * loop observes every tunnel still waited for per round (one set of VICI
 * calls, one kernel dump) until each is up or past its own deadline. A pass
 * lasts as long as its slowest wait, not their sum. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/timeutil.h"
#include "ike/ike.h"
#include "model/tunnel.h"

struct ts_agent;

/* An initiate is given this long (at most confirm-timeout), as charon's
 * blocking initiate was before the waits ran together. */
#define TS_INITIATE_WAIT_S 10

struct ts_waiter {
	const struct ts_tunnel *t;
	uint32_t old_id;    /* up means an IKE SA other than this one (0: any) */
	ts_usec_t deadline; /* monotonic, from ts_wait_deadline() */
	bool up;	    /* set by ts_wait_up() */
	/* Not NULL (update-conn): up means a CHILD SA installed that this
	 * does not hold, in any IKE SA. */
	const struct ts_ike_update_sas *before;
};

/* now + seconds on the planes' monotonic clock. */
ts_usec_t ts_wait_deadline(struct ts_agent *a, unsigned seconds);
/* Up: the IKE SA established (not old_id), a CHILD SA installed (with
 * before: a new one) and, with kernel-xfrm, that CHILD SA's ESP pair alive
 * in the kernel. Returns when every waiter is up
 * or past its deadline, or the agent is stopping. */
void ts_wait_up(struct ts_agent *a, struct ts_waiter *const *waiters, size_t n);

/* The pause in ms after a round that took `took` (us): 250 ms, or three
 * times the round when that is longer (a dump of every SA at 10,000
 * tunnels), at most 5 s. A waiter whose deadline falls in a pause loses at
 * most that much of its confirm-timeout. */
int ts_wait_pause(ts_usec_t took);

/* --- a make-before-break request an earlier pass stopped waiting for ----
 * A resumed rotation's reauthentication (rotation.c) and a retried
 * update-conn's new SAs (apply.c) are decided by one rule, from what
 * charon shows of the tunnel's IKE SAs (strongSwan 5.9.8 list-sas,
 * measured against a refusing and a slow edge: agent/reconcile/README.md,
 * "A resumed rotation's reauthentication"). */
enum ts_earlier {
	TS_EARLIER_NONE,       /* no IKE SA but the one in service: never asked,
				* refused with an error, or given up */
	TS_EARLIER_UNANSWERED, /* a new IKE SA whose IKE_SA_INIT the peer has
				* not answered (a refusing peer stays here) */
	TS_EARLIER_UNDER_WAY,  /* the peer answered it (chose its SPI): IKE_AUTH
				* under way, the peer took the second IKE SA */
	TS_EARLIER_CAME_UP,    /* the IKE SA in service was established after
				* the earlier request */
};

/* What the pass does about it. */
enum ts_earlier_verdict {
	TS_EARLIER_ASK,	    /* make-before-break asked (again) */
	TS_EARLIER_WAIT,    /* left to go on: no new request, waited for */
	TS_EARLIER_CONFIRM, /* came up since: confirmed, no new request */
	TS_EARLIER_BREAK,   /* break-before-make this time */
};

/* How long an answered request is waited for, in confirm-timeouts since
 * it was made (300 s at the default 30 s: about twice what charon 5.9.8's
 * default retransmissions give one exchange, 165 s, before it starts the
 * attempt over from IKE_SA_INIT); then break-before-make as for a
 * refusal. Waiting costs no traffic: the old SAs carry it. */
#define TS_EARLIER_PATIENCE 10 /* ts_earlier_decide's log says it too */

/* What charon shows (io: the tunnel's observation) of a request made at
 * since (realtime, > 0). Pure. */
enum ts_earlier ts_earlier_seen(const struct ts_ike_observed *io, ts_usec_t now, ts_usec_t since);
/* The rule: came up → confirm; answered → wait, up to TS_EARLIER_PATIENCE
 * x confirm-timeout since; unanswered → wait up to confirm-timeout; none
 * → ask again up to confirm-timeout; later → break-before-make. With
 * bounded, one that came up is confirmed up to the patience too (update-
 * conn: an IKE SA up without the new CHILD SA is not waited for for
 * ever). Logs what it decided and why, for what ("the rotation's
 * reauthentication") of tunnel; no secret. */
enum ts_earlier_verdict ts_earlier_decide(struct ts_agent *a, const char *tunnel, const char *what,
					  enum ts_earlier seen, ts_usec_t since, bool bounded);
