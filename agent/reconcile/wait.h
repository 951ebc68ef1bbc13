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
