/* Internal to the agent (the files of reconcile/): the pass's pipeline, one way
 *
 *   planes (planes.h: every adapter behind one ops table)
 *     → observe  (observe.c: builds a struct ts_observation; changes nothing)
 *     → plan     (plan.c: pure)
 *     → apply    (apply.c: walks the plan's phases in order, one outcome per
 *                 action; rotations through rotation.c, the journal protocol)
 *     → memory   (memory.c: failure counts and last errors, from the
 *                 observation and the outcomes)
 *     → record   (status.c, metrics.c: rendered from the pass).
 * No stage reaches back into another's state: each gets what it reads as
 * an argument and returns what it decided. */
#pragma once

#include "cloudflare/cloudflare.h"
#include "ike/ike.h"
#include "ike/swconf.h"
#include "model/cloudflare.h"
#include "model/ike.h"
#include "model/observed.h"
#include "model/xfrm.h"
#include "reconcile/agent.h"
#include "reconcile/plan.h"
#include "reconcile/planes.h"
#include "store/store.h"

/* What the agent remembers per tunnel across passes (and across `once`
 * runs, through the status file): failures the event stream showed. */
struct ts_agent_tunnel_memory {
	const char *name;	     /* the declared tunnel's (the agent's desired state) */
	uint32_t auth_failures_base; /* from the status file at start */
	uint32_t auth_failures;	     /* base + what this process saw */
	ts_usec_t last_auth_failure;
	ts_usec_t last_rotation;
	char *last_error; /* owned; NULL: none */
};

/* Per-tunnel figures for the metrics endpoint, as the last pass left them. */
struct ts_agent_tunnel_metrics {
	bool up; /* IKE established, CHILD SA up, kernel pair (if checked) */
	bool has_key;
	ts_usec_t key_applied_at; /* wall clock */
	uint64_t key_generation;
	uint32_t auth_failures;
};

/* Counters the metrics endpoint shows and a reload carries over
 * (reconcile/metrics.c). */
#define TS_AGENT_OPERATIONS	  8
#define TS_AGENT_CODES		  12
#define TS_AGENT_ROTATION_RESULTS 3 /* committed, pending, failed */
#define TS_AGENT_PASS_BUCKETS	  12
extern const double ts_agent_pass_buckets[TS_AGENT_PASS_BUCKETS];
struct ts_agent_counters {
	/* api_requests_total{operation,code}: code 0 = no answer */
	struct {
		char operation[16];
		long code;
		uint64_t n;
	} api[TS_AGENT_OPERATIONS * TS_AGENT_CODES];
	size_t n_api;
	uint64_t rotations[_TS_CAUSE_MAX][TS_AGENT_ROTATION_RESULTS];
	uint64_t pass_bucket[TS_AGENT_PASS_BUCKETS]; /* non-cumulative */
	uint64_t pass_count;
	double pass_sum;
};
enum ts_agent_rotation_result {
	TS_AGENT_ROTATION_COMMITTED,
	TS_AGENT_ROTATION_PENDING,
	TS_AGENT_ROTATION_FAILED,
};
/* Counts a rotation's outcome under its plan cause (apply). */
void ts_agent_count_rotation(struct ts_agent *a, enum ts_plan_cause cause,
			     enum ts_agent_rotation_result result);
/* Counts a finished pass's duration (the histogram). */
void ts_agent_count_pass(struct ts_agent *a, ts_usec_t duration);
/* The client's request observer (cf options .on_request). */
void ts_agent_count_request(void *agent, const char *operation, long http_status);

struct ts_agent {
	const struct ts_desired *desired;
	struct ts_agent_options options;
	char *state_dir;
	struct ts_planes planes;
	struct ts_agent_tunnel_memory *memory; /* one per declared tunnel */
	size_t n_memory;
	unsigned api_errors, api_429, rotations;
	struct ts_agent_tunnel_metrics *metrics; /* one per declared tunnel */
	unsigned passes, passes_ok;
	ts_usec_t last_pass, last_pass_ok, last_pass_duration;
	unsigned last_pending, last_failed, last_store_problems;
	ts_usec_t next_due;
	struct ts_agent_counters counters;
	struct ts_mbb_check mbb; /* traffic.c */
	bool mbb_checked;
	/* Cloudflare's list as the last pass read it, kept when that pass
	 * wrote nothing to Cloudflare after reading it (cf_last_ok): a scoped
	 * stage plans with it instead of asking again (agent/daemon/README.md,
	 * "Scoped passes"). cf_last_at: when it was read (monotonic). */
	struct ts_cf_tunnel_list cf_last;
	ts_usec_t cf_last_at;
	bool cf_last_ok;
	/* A daemon's full pass yields to drift events at its safe steps:
	 * ts_agent_yield() (agent.c; agent/daemon/README.md, "Events during
	 * a pass"). Set up and cleared by each full pass. */
	struct ts_agent_yield {
		bool active;   /* a full pass with watch runs */
		bool running;  /* a nested scope runs: no yield inside */
		bool observed; /* the full observation is complete (its plan may be superseded) */
		/* Cloudflare's list of the full observation is being read, the
		 * first of its reads: a nested scope then plans with the last
		 * pass's kept list, as a scoped pass before this one would. */
		bool cf_listing;
		/* How long nested scopes have held that list request so far:
		 * at a third of request-timeout no more start in it (the
		 * request must not time out for them). */
		ts_usec_t list_paused;
		struct ts_observation *full; /* the full pass's observation (as read so far) */
		bool cf_written;  /* the pass reached a Cloudflare write: no list is usable */
		bool *acted;	  /* per declared tunnel: the full pass began an action on it */
		bool *superseded; /* per declared tunnel: a nested scope planned it afresh */
		bool deferred;	  /* events taken that no nested scope handled */
		unsigned n_scopes, n_applied, n_pending, n_failed;
	} yield;
	/* What the next status write needs of the last one (its conditions
	 * and applied revision; status.c), a json_t. */
	struct json_t *status_prev;
};

#define TS_PLANES(a)	 ((a)->planes.ops)
#define TS_PLANES_CTX(a) ((a)->planes.ctx)

/* The planes' API client (NULL: none, or fake planes). */
static inline struct ts_cf_client *ts_agent_cf(const struct ts_agent *a)
{
	return a->planes.ops && a->planes.ops->cf_client ? a->planes.ops->cf_client(a->planes.ctx)
							 : NULL;
}

/* Over planes the caller made (tests: fake planes); the agent takes them
 * over (closes them when freed, also on failure). */
int ts_agent_new(const struct ts_desired *desired, const struct ts_agent_options *options,
		 struct ts_planes *planes, struct ts_agent **ret_agent);

/* --- observe --------------------------------------------------------------- */

/* One pass's view of every plane. */
struct ts_observation {
	const struct ts_desired *desired;
	/* A scoped observation (ts_agent_pass_scoped): per declared tunnel,
	 * whether it was observed; the others are left unread (their entries
	 * name them, every ok flag false) and no stale object is looked for.
	 * NULL: every tunnel, and the stale objects. */
	const bool *scope;
	bool cf_ok, ike_ok, kernel_ok, store_ok;
	long cf_http_status; /* of a failed list: 429 counts as rate limited */
	bool cf_api_error;   /* the list was answered with an error (counted) */
	struct ts_cf_tunnel_list cf_list;
	ts_usec_t cf_read_at;	     /* when cf_list was asked for (monotonic) */
	bool cf_borrowed;	     /* cf_list is the agent's cf_last: not freed here */
	struct ts_ike_observed *ike; /* one per declared tunnel */
	size_t n_tunnels;
	struct ts_xfrm_snapshot snapshot;
	struct ts_xfrm_match_result match;
	struct ts_store_state *store;
	struct ts_observed_tunnel *tunnels;
	/* Per declared tunnel: the declared connection diffed with charon's
	 * and the record (conn_diff.c); tunnels[i].ike.conn_changes views it. */
	struct ts_changes *conn_changes;
	struct ts_stale_object *stale;
	size_t *stale_ref; /* kernel objects: index into match.stale */
	size_t n_stale;
	struct ts_observed observed; /* the planner's input, pointing into the above */
};

/* Observes every plane; with reuse_cf, takes Cloudflare's tunnel list
 * from that earlier observation instead of asking the API again. The
 * failure counts in the planner's input are memory's base plus what the
 * IKE daemon reports; memory itself is not changed (ts_memory_observe). */
int ts_agent_observe(const struct ts_agent *a, struct ts_observation *o,
		     struct ts_observation *reuse_cf);
/* The same for the tunnels scope marks (one flag per declared tunnel);
 * with cf_last, Cloudflare's list is that one (borrowed: it must outlive
 * o), else it is asked for. */
int ts_agent_observe_scoped(const struct ts_agent *a, const bool *scope, struct ts_observation *o,
			    const struct ts_cf_tunnel_list *cf_last, ts_usec_t cf_last_at);
static inline bool ts_observation_in_scope(const struct ts_observation *o, size_t i)
{
	return !o->scope || o->scope[i];
}
void ts_observation_done(struct ts_observation *o);
/* The scope of a scoped pass: the named tunnels and every member of their
 * redundancy groups (one flag per declared tunnel); ret_k: how many. */
bool *ts_agent_scope_expand(const struct ts_desired *d, const char *const *names, size_t n,
			    size_t *ret_k);
/* Observes the scope and plans it alone (forced: none). 1: *ret_plan is
 * a plan whose decisions a full plan over the same observation shares;
 * 0: the decision needs the whole gateway (no plan); -errno. o is the
 * caller's to free either way. Cloudflare's list is the agent's cf_last
 * when it is at most resync-interval old (o->cf_borrowed; o must not
 * outlive it), else a new one. */
int ts_agent_plan_scoped(struct ts_agent *a, const bool *scope, struct ts_observation *o,
			 struct ts_plan **ret_plan);
/* A safe step of a daemon's full pass (between the planes of its
 * observation, between its actions, between rounds of its waits): drift
 * events read since are acted on now by a nested scoped stage when they
 * can be (their tunnels and groups untouched by this pass so far, a
 * Cloudflare list read before any write of this pass, a plan that needs
 * nothing of the whole gateway); the pass then acts on none of those
 * tunnels from its older observation (ts_agent_superseded). Events that
 * cannot be are left to the pass's end (a further pass). where: for the
 * debug line. A no-op outside a daemon's full pass and inside a nested
 * scope. Returns whether it read the events (false: it did nothing). */
bool ts_agent_yield(struct ts_agent *a, const char *where);
/* ts_agent_yield() while the full observation's Cloudflare list is under
 * way (the API client's wait hook): 0 to go on watching the event
 * sockets, 1 to stop (events cannot be read now). */
int ts_agent_yield_during_list(void *agent);
/* Whether the full pass must not act on this tunnel any more (a nested
 * scope planned it from a newer observation). */
bool ts_agent_superseded(const struct ts_agent *a, const char *tunnel);
/* The full pass begins an action on this tunnel (a nested scope keeps
 * off it and its group from now on). */
void ts_agent_acted(struct ts_agent *a, const char *tunnel, bool writes_cloudflare);
/* Fills o->conn_changes and the planner's conn_equal/conn_changes from
 * charon's listing and the connection records (conn_diff.c). */
int ts_agent_diff_conns(const struct ts_agent *a, struct ts_observation *o);
/* After a load-conn whose SAs are (or will be) made from the loaded
 * config: records the rendering (conn_diff.c). Logged, never fatal: a
 * missing record only means one more reload. */
void ts_agent_record_conn(struct ts_agent *a, const struct ts_tunnel *t);
const struct ts_ike_child_sa *ts_agent_installed_child(const struct ts_ike_observed *io);
struct ts_xfrm_expect;
void ts_agent_fill_expect(const struct ts_tunnel *t, const struct ts_ike_observed *io,
			  struct ts_xfrm_expect *e);

/* --- apply ------------------------------------------------------------------ */

/* Carries out the plan (dry-run: validates the rotations only). Writes one
 * outcome per action into result->outcomes (allocated here) and the
 * counts derived from them. */
int ts_agent_apply(struct ts_agent *a, struct ts_observation *o, const struct ts_plan *plan,
		   struct ts_pass_result *result);

/* --- memory ---------------------------------------------------------------- */

struct ts_agent_tunnel_memory *ts_agent_memory(struct ts_agent *a, const char *tunnel);
/* Sets the tunnel's last error (a copy, cut at 191 bytes). */
void ts_memory_set_error(struct ts_agent_tunnel_memory *m, const char *error);
/* After an observation: an established IKE SA proves the key and clears a
 * tunnel's counters; otherwise the counts the observation carries are
 * remembered. */
void ts_memory_observe(struct ts_agent *a, const struct ts_observation *o);
/* After apply: failures the pass's own initiations and reauthentications
 * met, and the last error of every action that did not succeed. */
void ts_memory_fold(struct ts_agent *a, const struct ts_plan *plan,
		    const struct ts_pass_result *result);
/* A rotation was committed: counters cleared, time recorded. */
void ts_memory_rotated(struct ts_agent *a, const struct ts_tunnel *t, ts_usec_t now);

/* --- traffic (traffic.c) ------------------------------------------------- */

/* Checks once (again after ts_agent_recheck_mbb(), or when the planes saw
 * charon restart) whether charon reauthenticates make-before-break; warns
 * when not. */
void ts_agent_check_mbb(struct ts_agent *a);
void ts_agent_recheck_mbb(struct ts_agent *a);
/* Whether charon's log stream is needed now: the plan (re)authenticates
 * (initiate, reauth, rotate, resume) or charon is connecting a tunnel by
 * itself (its retries may fail authentication). Pure. */
bool ts_agent_log_needed(const struct ts_observation *o, const struct ts_plan *plan);
/* The owned interfaces and routes (opt-in, per tunnel): what a pass
 * changes there, appended to plan as actions of phase traffic (read
 * only; `plan`, `once --dry-run` and every pass): owned interfaces and
 * routes nobody declares deleted, each enabled local tunnel's interface
 * created, replaced or put back, its routes added or moved to their
 * metric (+TS_ROUTE_DRAIN_OFFSET while the tunnel is not up and a sibling
 * of its redundancy group is: a VTI stays up with no SA behind it). */
int ts_agent_plan_traffic(struct ts_agent *a, const struct ts_observation *o, struct ts_plan *plan);
bool ts_action_is_traffic(const struct ts_action *act);
/* Carries out one such action (apply), as the plan decided it. */
int ts_agent_apply_traffic(struct ts_agent *a, const struct ts_action *act,
			   struct ts_action_outcome *out);
/* After a pass that changed something, from the observation of what it
 * left: the route metrics its own changes call for (a tunnel it brought
 * up gets its declared metric back, one that went down its failover
 * metric) at once, not a pass later. */
void ts_agent_traffic_follow_up(struct ts_agent *a, const struct ts_observation *after);
/* Before a group member's reauthentication: its routes drained when a
 * sibling declares routes too. True when drained. */
bool ts_agent_routes_drain(struct ts_agent *a, const struct ts_tunnel *t);
/* After it: waits (at most 3 s) for the new SA pair to receive packets,
 * then puts the declared metrics back. */
void ts_agent_routes_restore(struct ts_agent *a, const struct ts_tunnel *t);
/* Opens or closes the "log" event connection (drained into the failure
 * counters before it closes). */
void ts_agent_want_log(struct ts_agent *a, bool want);

/* --- record ---------------------------------------------------------------- */

int ts_agent_status_write(struct ts_agent *a, const struct ts_observation *o,
			  const struct ts_pass_result *result);
/* The per-tunnel memory and what the next status write needs of the last
 * one, from STATE_DIR/memory while it matches status.json, else from
 * status.json. ts_agent_status_done frees the latter. */
int ts_agent_status_load_memory(struct ts_agent *a);
void ts_agent_status_done(struct ts_agent *a);
/* STATE_DIR/api-state.json: the API client's budget, Retry-After hold and
 * failure backoff, so that a restart or `once` in a loop respects them.
 * load merges into the client (never less careful); save is atomic 0600. */
int ts_agent_api_state_load(struct ts_agent *a);
int ts_agent_api_state_save(struct ts_agent *a);
