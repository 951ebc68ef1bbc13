/* The agent: one pass of observe → plan → apply over every plane, and the
 * status record it leaves in the state directory. This is where the
 * adapters meet (config's desired state, the Cloudflare client, the VICI
 * client, the XFRM socket and the store); the planner it calls stays pure.
 *
 * Rotation protocol (DESIGN.md) as apply runs it, with the crash points a
 * test build can stop at (core/crashpoint.h):
 *   1. journal begin at prepared (random/file: with the new key)
 *                                                  rotate:prepared
 *   2. Cloudflare: one bulk set for every random/file rotation of the pass,
 *      or psk_generate per generate rotation      rotate:remote-sent
 *      journal advance to remote (generate: with the returned key, at once);
 *      a bulk entry Cloudflare left unapplied is discarded (nothing changed)
 *                                                  rotate:remote
 *   3. load-shared + load-conn, reauthenticate    rotate:local-loaded
 *      and wait (confirm-timeout) for a new IKE SA, the CHILD SA and, with
 *      kernel-xfrm, the kernel's ESP SA pair; then journal local
 *                                                  rotate:local
 *   4. commit (store: record replaced, journal entry removed).
 * A journal entry left by a crash or a timeout is resumed from its step by
 * the next pass (RESUME actions): a bulk set is repeated with the same key;
 * a generate left at prepared (outcome unknown) is generated again — the
 * key a lost response carried was never known here, so only a new one can
 * be. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/timeutil.h"
#include "model/plan.h"
#include "model/tunnel.h"

struct ts_cf_client_options;

struct ts_agent_options {
	const char *state_dir; /* overrides the config's; NULL: config */
	/* plan, status: observe only. The state directory is opened without
	 * its lock, nothing is written anywhere, no API write is made. */
	bool readonly;
	/* once --dry-run: observe, plan, and ask Cloudflare to validate the
	 * rotations (validate_only); no journal, no local change. */
	bool dry_run;
	const struct ts_cf_client_options *cf_options; /* tests; NULL: defaults */
	/* The daemon: also subscribe to XFRM events (before the first dump). */
	bool watch;
};

struct ts_agent;

/* Opens the planes' handles: the store (locked unless readonly), the
 * Cloudflare client, the VICI client and event socket, the XFRM socket.
 * A plane that cannot be opened is not an error here: the pass reports it
 * as not observed. Errors: -EBUSY (another agent holds the state
 * directory), -EPERM/-EBADMSG (state directory unusable), -ENOMEM. */
int ts_agent_open(const struct ts_desired *desired, const struct ts_agent_options *options,
		  struct ts_agent **ret_agent);
void ts_agent_free(struct ts_agent *agent);
static inline void ts_agent_freep(struct ts_agent **a)
{
	ts_agent_free(*a);
}
#define _cleanup_agent_ __attribute__((cleanup(ts_agent_freep)))

/* What became of one planned action. */
enum ts_outcome {
	TS_OUTCOME_NONE,    /* nothing to carry out: a report, or not applied (suspended) */
	TS_OUTCOME_APPLIED, /* carried out and confirmed */
	TS_OUTCOME_PENDING, /* left for a later pass: deferred, unapplied, unconfirmed */
	TS_OUTCOME_FAILED,  /* failed with an error */
	_TS_OUTCOME_MAX,
};
const char *ts_outcome_to_string(enum ts_outcome o);

struct ts_action_outcome {
	enum ts_outcome status;
	int error;	  /* -errno of a failure, 0 when none or unknown */
	char detail[192]; /* why, for humans (never a key); "" when nothing to say */
};

/* What a pass did. */
struct ts_pass_result {
	struct ts_plan *plan; /* owned; the plan the pass computed */
	/* owned; one per plan action, in plan order (NULL when not applied) */
	struct ts_action_outcome *outcomes;
	unsigned n_applied; /* actions carried out and confirmed */
	unsigned n_pending; /* left for a later pass: deferred, unapplied,
			     * unconfirmed within the timeout */
	unsigned n_failed;  /* actions that failed with an error */
	bool planes_ok;	    /* every plane was read completely */
	/* Record or journal files that could not be used (corrupt, truncated,
	 * wrong mode or version): the pass is Stalled until they are repaired
	 * (README: "Repairing the state directory"). */
	unsigned n_store_problems;
	char store_problem[640]; /* the first: "PATH: what is wrong" */
	/* ts_agent_pass_scoped: the scope was planned and applied first
	 * (false: its plan needed the whole gateway, and the pass was a full
	 * one); n_scoped_applied of n_applied were its actions. */
	bool scoped;
	unsigned n_scoped_applied;
	/* The daemon: drift events read during the full pass were acted on
	 * by this many nested scoped stages before the pass ended (their
	 * actions are in n_applied, n_pending, n_failed). */
	unsigned n_yielded;
	/* The daemon (options.watch), after a pass that changed something:
	 * the events read during the pass were taken before observing what it
	 * left; settled: that observation plans nothing (the events its own
	 * actions caused need no further pass); events_unsettled: some were
	 * read and it is not settled (a further pass is needed at once). */
	bool settled, events_unsettled;
};
void ts_pass_result_done(struct ts_pass_result *r);

/* One pass: observe every plane, plan (forced: tunnel names to rotate
 * now), and apply unless the agent is readonly or the config suspends it
 * (dry-run: validate only). Writes STATE_DIR/status.json unless readonly.
 * Returns 0 when the pass ran (look at the result), -errno when it could
 * not run at all. */
int ts_agent_pass(struct ts_agent *agent, const char *const *forced, size_t n_forced,
		  struct ts_pass_result *ret_result);

/* A pass for the events of a few tunnels (the daemon's drift events):
 * names and their redundancy groups are observed, planned and corrected
 * first, then the whole gateway is reconciled as by ts_agent_pass() with
 * the same Cloudflare read (no second list). When the scope's plan could
 * differ from the full plan's for the same tunnels (it spends the request
 * budget, rotates, resumes, or defers for budget or cap, or rotations are
 * requested), nothing is applied from it: the pass is a full one. Names
 * not declared are ignored; none declared: a full pass. */
int ts_agent_pass_scoped(struct ts_agent *agent, const char *const *names, size_t n,
			 struct ts_pass_result *ret_result);

/* `rotate NAME...`: the rotations are persisted in the state directory
 * until a rotation of each tunnel begins (a redundancy group's deferred
 * member rotates in a later pass) or they are cancelled; every pass, plan
 * included, takes them as forced. Not in a read-only agent. */
int ts_agent_request_rotations(struct ts_agent *a, const char *const *names, size_t n);
/* `rotate --cancel NAME...`: ret_cancelled (may be NULL) gets how many
 * were requested and are no more. A rotation already begun (journaled)
 * is not undone: it is carried to its end. */
int ts_agent_cancel_rotations(struct ts_agent *a, const char *const *names, size_t n,
			      size_t *ret_cancelled);

/* The descriptors to poll for the IKE daemon's and the kernel's events
 * (-1 where there is none, e.g. while charon is down). */
void ts_agent_fds(struct ts_agent *a, int *ret_ike_fd, int *ret_xfrm_fd);
/* Reads every pending event (and reconnects to charon when it was down).
 * Returns 1 when something happened that a pass should look at, 0 when
 * not, -errno on failure. */
int ts_agent_process_events(struct ts_agent *a);
/* The tunnels the events read since the last call name (ret_names: the
 * caller frees them with ts_agent_names_free()): 1 with the names, 0 when
 * they ask for a full pass instead (charon restarted or its stream was
 * lost, an XFRM resync, an owned object no declared tunnel claims, too
 * many names), -ENOMEM. */
int ts_agent_event_scope(struct ts_agent *a, char ***ret_names, size_t *ret_n);
void ts_agent_names_free(char **names, size_t n);
/* Earliest time (wall clock) a key falls due by max age after the last
 * pass; 0 when none does. */
ts_usec_t ts_agent_next_due(const struct ts_agent *a);
/* Between passes: no pass is due for quiet (usec). The API client closes
 * connections it would not reuse after so long (ts_cf_client_idle). */
void ts_agent_idle(struct ts_agent *a, ts_usec_t quiet);

/* Prometheus text exposition of the agent's figures (tunnelsync_*); the
 * caller frees the text. */
int ts_agent_metrics_text(const struct ts_agent *a, char **ret_text);
/* True when the last pass read every plane and nothing failed. */
bool ts_agent_ready(const struct ts_agent *a);
/* The same, and when not ready why, in words (buf): no pass yet, a plane
 * not read, failed actions, rate-limited by Cloudflare until T. */
bool ts_agent_ready_reason(const struct ts_agent *a, char *buf, size_t size);

/* What a daemon reload carries from one agent to the next: counters, the
 * API client's budget and holds. take allocates (NULL on ENOMEM); give
 * applies and frees (accepts NULL). */
struct ts_agent_carry;
struct ts_agent_carry *ts_agent_carry_take(const struct ts_agent *a);
void ts_agent_carry_give(struct ts_agent *a, struct ts_agent_carry *carry);

/* The status file the last pass wrote, as text (JSON, one object). */
int ts_agent_status_read(const char *state_dir, char **ret_json);
/* The same, as a short human-readable table. */
int ts_status_print_text(const char *json_text, FILE *out);
/* Why json_text is not a status record ("line L, column C: what"; "not a
 * JSON object"): 0 when it is one, -EBADMSG with the reason in buf. */
int ts_status_check(const char *json_text, char *buf, size_t size);
