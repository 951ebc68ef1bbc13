/* The plan: what one pass will do, as an ordered list of actions, each
 * naming its tunnel, the plane it changes (or reports on), a cause code
 * and a reason for humans. Built by reconcile/plan.c, executed by apply.
 *
 * Fixed order (enum ts_plan_phase): removals of stale objects, the owned
 * interfaces and routes (removals first; traffic.c), resumes of
 * journaled rotations, IKE config loads (connection, key), rotations (the
 * tunnels sharing the bulk PSK call first, then psk_generate ones), SA
 * initiations and reauthentications, then reports and deferrals. Within a
 * phase: sorted by tunnel name, then kind, then object. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/change.h"
#include "model/observed.h"
#include "model/tunnel.h"

enum ts_action_kind {
	TS_ACTION_UNLOAD_CONN,	 /* stale IKE connection (and its SAs) */
	TS_ACTION_UNLOAD_KEY,	 /* stale IKE shared secret */
	TS_ACTION_DELETE_SA,	 /* stale kernel XFRM state */
	TS_ACTION_DELETE_POLICY, /* stale kernel XFRM policy */
	TS_ACTION_RESUME,	 /* finish a journaled rotation from its step */
	TS_ACTION_LOAD_KEY,	 /* load-shared the record's key (not a rotation) */
	TS_ACTION_LOAD_CONN,	 /* load-conn the rendering; after the key, never without it */
	TS_ACTION_UPDATE_CONN,	 /* load-conn again: declared leaves differ (changes) */
	TS_ACTION_UPDATE_TUNNEL, /* Cloudflare: PUT the declared properties (changes) */
	TS_ACTION_ROTATE,	 /* new PSK: journal, Cloudflare, IKE, commit */
	TS_ACTION_INITIATE,	 /* bring the IKE/CHILD SA up */
	TS_ACTION_REAUTH,	 /* IKE claims up but the kernel disagrees */
	/* The owned interfaces and routes (reconcile/traffic.c; object set) */
	TS_ACTION_DELETE_IFACE,	    /* an owned interface no local tunnel declares */
	TS_ACTION_DELETE_ROUTE,	    /* an owned route no enabled local tunnel declares */
	TS_ACTION_CREATE_IFACE,	    /* the declared VTI / XFRM interface is missing */
	TS_ACTION_REPLACE_IFACE,    /* another kind, key, endpoint or if_id: recreated */
	TS_ACTION_FIX_IFACE,	    /* address, MTU, link state, disable_policy put back */
	TS_ACTION_ADD_ROUTE,	    /* a declared route is missing */
	TS_ACTION_SET_ROUTE_METRIC, /* a declared route at another metric */
	TS_ACTION_REPORT,	    /* drift the agent must not or cannot fix */
	TS_ACTION_DEFER_ROTATION,   /* a rotation is due but a rule holds it back */
	_TS_ACTION_MAX,
};

enum ts_plan_phase {
	TS_PHASE_REMOVE,
	TS_PHASE_TRAFFIC,
	TS_PHASE_RESUME,
	TS_PHASE_CONFIG,
	TS_PHASE_ROTATE_BULK,
	TS_PHASE_ROTATE_GENERATE,
	TS_PHASE_INITIATE,
	TS_PHASE_REPORT,
	_TS_PHASE_MAX,
};

/* Why an action is there; stable names for JSON, metrics and tests. */
enum ts_plan_cause {
	TS_CAUSE_STALE,	  /* object of an undeclared tunnel */
	TS_CAUSE_JOURNAL, /* rotation left in the journal */
	TS_CAUSE_CONN_MISSING,
	TS_CAUSE_CONN_DIFFERS,
	TS_CAUSE_KEY_MISSING,
	TS_CAUSE_KEY_DIFFERS,
	TS_CAUSE_FORCED,	  /* `rotate TUNNEL` */
	TS_CAUSE_BOOTSTRAP,	  /* no key record */
	TS_CAUSE_RECORD_MISMATCH, /* record is for another tunnel id */
	TS_CAUSE_REGENERATED,	  /* last_generated_on newer than the record */
	TS_CAUSE_FILE_CHANGED,
	TS_CAUSE_AUTH_FAILURES,
	TS_CAUSE_MAX_AGE,
	TS_CAUSE_SA_DOWN,
	TS_CAUSE_CHILD_DOWN,
	TS_CAUSE_KERNEL_SA_MISSING,
	TS_CAUSE_KERNEL_POLICY_MISSING,
	TS_CAUSE_HARD_EXPIRED,
	TS_CAUSE_ENDPOINTS_DIFFER,
	TS_CAUSE_CF_MISSING,
	TS_CAUSE_CF_DIFFERS,	  /* a declared Cloudflare property other than the endpoints */
	TS_CAUSE_INCOMPLETE,	  /* a plane was not read completely */
	TS_CAUSE_STORE_CORRUPT,	  /* record or journal file unreadable */
	TS_CAUSE_FILE_UNREADABLE, /* source file: key file unreadable */
	TS_CAUSE_FILE_KEY_AGED,	  /* source file: past max age, file unchanged */
	TS_CAUSE_GROUP_BUSY,	  /* another rotation in the redundancy group */
	TS_CAUSE_GROUP_PEER_DOWN, /* a group peer is not up */
	TS_CAUSE_GROUP_SETTLING,  /* a group peer's new SAs are settling */
	TS_CAUSE_ROTATION_CAP,	  /* max_rotations_per_pass reached */
	TS_CAUSE_BUDGET,	  /* Cloudflare request budget exhausted */
	TS_CAUSE_IFACE_MISSING,	  /* the declared interface does not exist */
	TS_CAUSE_IFACE_DIFFERS,	  /* its kind, key, endpoints or if_id differ */
	TS_CAUSE_IFACE_DRIFT,	  /* its address, MTU, link state or disable_policy */
	TS_CAUSE_IFACE_FOREIGN,	  /* the name is taken by an interface not this tunnel's */
	TS_CAUSE_ROUTE_MISSING,
	TS_CAUSE_ROUTE_METRIC,	 /* at another metric than the declared one */
	TS_CAUSE_ROUTE_FAILOVER, /* tunnel not up, a group sibling is: +10000 */
	_TS_CAUSE_MAX,
};

#define TS_PLAN_NO_OBJECT SIZE_MAX

/* The interface or route a traffic action (TS_PHASE_TRAFFIC) is about. */
struct ts_traffic_object {
	char ifname[16];
	struct ts_prefix dst; /* routes; AF_UNSPEC: an interface */
	uint32_t metric;      /* routes: the metric set, or the one deleted */
};

struct ts_action {
	enum ts_action_kind kind;
	enum ts_plane plane; /* the plane changed, or reported on */
	enum ts_plan_cause cause;
	char tunnel[TS_NAME_MAX + 1]; /* "" for a plane-wide report */
	char reason[192];	      /* for humans; never a key, at most fingerprints */
	enum ts_psk_source source;    /* ROTATE, RESUME, DEFER_ROTATION */
	size_t stale_index;	      /* into observed->stale, or TS_PLAN_NO_OBJECT */
	bool apply;		      /* false: a report, a deferral, or suspended */
	/* What changes, old -> new (keys as fingerprints only); owned by the
	 * plan. Empty for actions that change no declared value. */
	struct ts_changes changes;
	struct ts_traffic_object *object; /* owned; traffic actions only */
};

struct ts_plan {
	struct ts_action *actions;
	size_t n_actions;
	bool suspended;	      /* agent.suspend: nothing is to be applied */
	uint32_t api_calls;   /* Cloudflare writes the plan needs */
	uint32_t n_rotations; /* ROTATE actions */
};

enum ts_plan_phase ts_plan_action_phase(const struct ts_action *a);

const char *ts_plan_action_kind_to_string(enum ts_action_kind k);
const char *ts_plan_cause_to_string(enum ts_plan_cause c);
const char *ts_plan_phase_to_string(enum ts_plan_phase p);
