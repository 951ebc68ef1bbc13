/* The rotation protocol (reconcile/agent.h, DESIGN.md "PSK rotation"): a
 * rotation's journal entry carried from prepared through remote and local
 * to the commit, over the planes. Each rotation writes its own outcome;
 * apply decides nothing about keys. */
#pragma once

#include "core/util.h"
#include "reconcile/agent_internal.h"
#include "reconcile/wait.h"

struct ts_rotation {
	const struct ts_tunnel *t;
	struct ts_journal_entry e; /* as journaled; owns e.new_key */
	bool journaled;		   /* still in flight this pass */
	bool resumed;		   /* from a journal entry an earlier pass left */
	bool waiting;		   /* step 3 requested, confirmation awaited */
	bool drained;		   /* its routes drained for the reauth (traffic.c) */
	struct ts_waiter wait;
	struct ts_action_outcome *out;
};
void ts_rotation_done(struct ts_rotation *rot);

/* Step 1 of a fresh rotation: the new key (random/file) and the journal
 * entry at prepared. */
int ts_rotation_begin(struct ts_agent *a, const struct ts_observation *o, struct ts_rotation *rot);
/* Takes up the journal entry an earlier pass left. */
int ts_rotation_resume(struct ts_agent *a, const struct ts_observation *o, struct ts_rotation *rot);
/* Step 2 for every rotation at prepared: one bulk set for random/file,
 * psk_generate one by one. -errno only when nothing could be tried. */
int ts_rotation_remote(struct ts_agent *a, struct ts_rotation *rots, size_t n);
/* Records without a last_generated_on baseline (an earlier list failed, or
 * a record older than the baseline rule) take the value of this
 * observation's list, unless a rotation of this pass touched the tunnel. */
void ts_rotation_adopt_baselines(struct ts_agent *a, const struct ts_observation *o,
				 const struct ts_rotation *rots, size_t n);
/* Step 3 requested for every rotation at remote (their waits join the
 * pass's others, wait.h); rotations at local or committed are committed. */
void ts_rotation_local_request(struct ts_agent *a, struct ts_rotation *rots, size_t n);
/* After the wait: step 3 confirmed or left pending, then step 4. */
void ts_rotation_local_finish(struct ts_agent *a, struct ts_rotation *rots, size_t n);

/* Waits until the tunnel has an IKE SA other than old_id (any, when 0)
 * that is established with a CHILD SA installed, and the kernel's ESP
 * pair when the kernel is checked. -ETIMEDOUT after confirm-timeout. */
int ts_confirm_up(struct ts_agent *a, const struct ts_tunnel *t, uint32_t old_id);

/* Sets an outcome (detail formatted, may be NULL). */
void ts_outcome_set(struct ts_action_outcome *out, enum ts_outcome status, const char *fmt, ...)
	TS_PRINTF(3, 4);
/* Logs a failed API call and counts it. */
void ts_agent_cf_failed(struct ts_agent *a, const char *tunnel, const char *what,
			const struct ts_cf_error *err, struct ts_action_outcome *out);
