/* The planner: a pure function from the desired state, the observed state
 * of every plane (model/observed.h), the time and the Cloudflare request
 * budget left to an ordered plan (model/plan.h). No I/O, no clock, no
 * third-party header: the same input always gives the same plan.
 *
 * Rules it applies (DESIGN.md, "Drift and expiry"):
 * - Only enabled tunnels of this node (gateway = node_name or unassigned)
 *   are planned. Objects that claim a declared tunnel (disabled or another
 *   gateway's included) are never stale; only objects the agent owns and
 *   that map to no declared tunnel are, and they are removed only with
 *   agent.prune (else reported).
 * - A plane not read completely is never trusted for absence: no rotation,
 *   load or reauth because something "is missing" there; it is reported.
 * - A journaled rotation is resumed before anything else happens to that
 *   tunnel's key; no new rotation starts for it meanwhile.
 * - Rotation causes, in this precedence: forced, bootstrap (no record),
 *   record for another tunnel id, regenerated elsewhere (Cloudflare's
 *   last_generated_on newer than the record's beyond the two texts'
 *   precision (core/timeutil.h ts_time_later_beyond_precision); the
 *   record's is the baseline the agent took from its own write's answer,
 *   or from Cloudflare's list after that write when the answer had no
 *   time; a record without one (0) decides nothing: the agent adopts
 *   one), key file changed,
 *   authentication failures (>= threshold since the key was applied, when
 *   rotate_on_auth_failure; else reported; not while the IKE daemon lacks
 *   the record's key: load-key is the remedy then), max age (source file: reported,
 *   since only the operator can change the file).
 * - Candidates are taken broken-first (forced, then everything but max age,
 *   then max age), bulk (random/file) before generate, then by name. In a redundancy group at most
 * one rotation (or journaled one) at a time, and a tunnel that is up rotates only while every other
 * enabled local member is up. max_rotations_per_pass (0 = unlimited; forced ones are not counted
 * against it) and the request budget (one bulk call for all random/file rotations and resumes at
 *   prepared, one call per psk_generate) defer the rest, with a reason.
 * - A forced name that is not a managed tunnel is reported, not rotated.
 * - agent.suspend: the plan is computed in full, nothing marked to apply.
 * - Nothing to do gives an empty plan. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/timeutil.h"
#include "model/observed.h"
#include "model/plan.h"
#include "model/tunnel.h"

struct ts_plan_input {
	const struct ts_desired *desired;
	const struct ts_observed *observed;
	ts_usec_t now;
	uint32_t api_budget;	   /* Cloudflare requests left in the window */
	const char *const *forced; /* tunnel names to rotate now (`rotate`) */
	size_t n_forced;
};

int ts_plan_compute(const struct ts_plan_input *in, struct ts_plan **ret_plan);
void ts_plan_free(struct ts_plan *plan);
static inline void ts_plan_freep(struct ts_plan **p)
{
	ts_plan_free(*p);
}
#define _cleanup_plan_ __attribute__((cleanup(ts_plan_freep)))

/* True when some action would change something (reports and deferrals
 * do not), whether or not the plan is suspended. */
bool ts_plan_has_changes(const struct ts_plan *plan);

/* The version of ts_plan_format_json()'s schema (README.md, "plan --json");
 * output without a "version" field is version 1. */
#define TS_PLAN_JSON_VERSION 2

/* A fixed-width table, one action a line, each followed by its changes
 * ("    FIELD: OLD -> NEW", "(unknown)" / "(none)" for missing values), then
 * the summary line; "" for an empty plan. The caller frees the text. */
int ts_plan_format_table(const struct ts_plan *plan, char **ret_text);
/* "Plan: 2 to update, 1 to rotate, 1 deferred.\n" (categories with a count
 * only; "Plan: nothing to do.\n" for an empty plan). */
int ts_plan_format_summary(const struct ts_plan *plan, char **ret_text);
/* {"version":2,"suspended":…,"api_calls":…,"rotations":…,"summary":{…},
 * "actions":[{"phase","kind","tunnel","plane","cause","source"?,"apply",
 * "reason","changes":[{"field","old","new"}…]}…]} on one line; old/new
 * are null when not known. */
int ts_plan_format_json(const struct ts_plan *plan, char **ret_text);
