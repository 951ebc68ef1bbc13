/* What the IKE plane observed for one tunnel: plain structs that the IKE
 * adapter fills (from VICI) and the planner reads. No I/O, no third-party
 * types. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "model/tunnel.h"

/* IKE SA states as charon names them (ike_sa_state_t). */
enum ts_ike_sa_state {
	TS_IKE_SA_NONE, /* no IKE SA of this connection */
	TS_IKE_SA_CREATED,
	TS_IKE_SA_CONNECTING,
	TS_IKE_SA_ESTABLISHED,
	TS_IKE_SA_PASSIVE,
	TS_IKE_SA_REKEYING,
	TS_IKE_SA_REKEYED,
	TS_IKE_SA_DELETING,
	TS_IKE_SA_DESTROYING,
	TS_IKE_SA_UNKNOWN, /* a name this build does not know */
	_TS_IKE_SA_STATE_MAX,
};

/* CHILD SA states as charon names them (child_sa_state_t). */
enum ts_child_sa_state {
	TS_CHILD_SA_CREATED,
	TS_CHILD_SA_ROUTED,
	TS_CHILD_SA_INSTALLING,
	TS_CHILD_SA_INSTALLED,
	TS_CHILD_SA_UPDATING,
	TS_CHILD_SA_REKEYING,
	TS_CHILD_SA_REKEYED,
	TS_CHILD_SA_RETRYING,
	TS_CHILD_SA_DELETING,
	TS_CHILD_SA_DELETED,
	TS_CHILD_SA_DESTROYING,
	TS_CHILD_SA_UNKNOWN,
	_TS_CHILD_SA_STATE_MAX,
};

struct ts_ike_child_sa {
	char name[TS_NAME_MAX + 8]; /* CHILD SA config name, "ts-<tunnel>" */
	uint32_t unique_id;
	uint32_t reqid;
	enum ts_child_sa_state state;
	uint32_t spi_in; /* host order; 0 when not (yet) known */
	uint32_t spi_out;
};

/* Failures seen in the event stream for one connection. */
struct ts_ike_failures {
	uint32_t auth_failures;		/* authentication failed (key mismatch) */
	ts_usec_t last_auth_failure;	/* wall clock, 0 = never */
	uint32_t connect_failures;	/* IKE SA went down before it was up */
	ts_usec_t last_connect_failure; /* wall clock, 0 = never */
};

/* The leaves of a rendered connection and of its key's owners, flattened
 * to one string each (lists joined with ","), normalized so that the
 * rendering, charon's list-conns answer and the agent's own record of what
 * it loaded compare equal when they mean the same. Which leaves list-conns
 * reports (strongSwan 5.9.8, vici_query.c) is ts_ike_leaf_listed[]; the
 * others are compared with the record (agent/ike/README.md). */
enum ts_ike_leaf {
	TS_LEAF_VERSION,
	TS_LEAF_LOCAL_ADDRS,
	TS_LEAF_REMOTE_ADDRS,
	TS_LEAF_PROPOSALS,
	TS_LEAF_KEYINGTRIES,
	TS_LEAF_MOBIKE,
	TS_LEAF_REKEY_TIME,
	TS_LEAF_OVER_TIME,
	TS_LEAF_RAND_TIME,
	TS_LEAF_REAUTH_TIME,
	TS_LEAF_DPD_DELAY,
	TS_LEAF_LOCAL_AUTH,
	TS_LEAF_LOCAL_ID,
	TS_LEAF_REMOTE_AUTH,
	TS_LEAF_REMOTE_ID,
	TS_LEAF_CHILDREN,
	TS_LEAF_CHILD_MODE,
	TS_LEAF_CHILD_ESP_PROPOSALS,
	TS_LEAF_CHILD_LOCAL_TS,
	TS_LEAF_CHILD_REMOTE_TS,
	TS_LEAF_CHILD_REKEY_TIME,
	TS_LEAF_CHILD_LIFE_TIME,
	TS_LEAF_CHILD_RAND_TIME,
	TS_LEAF_CHILD_START_ACTION,
	TS_LEAF_CHILD_DPD_ACTION,
	TS_LEAF_CHILD_CLOSE_ACTION,
	TS_LEAF_CHILD_REPLAY_WINDOW,
	TS_LEAF_CHILD_IF_ID_IN,
	TS_LEAF_CHILD_IF_ID_OUT,
	TS_LEAF_CHILD_MARK_IN,
	TS_LEAF_CHILD_MARK_OUT,
	TS_LEAF_CHILD_MARK_IN_SA,
	TS_LEAF_CHILD_REQID,
	TS_LEAF_SHARED_OWNERS,
	_TS_LEAF_MAX,
};

/* values[i] NULL: not known from this source; "": absent (not set). */
struct ts_ike_leaves {
	char *values[_TS_LEAF_MAX]; /* owned */
};

extern const char *const ts_ike_leaf_names[_TS_LEAF_MAX];
/* True for the leaves strongSwan 5.9.8's list-conns reports. */
extern const bool ts_ike_leaf_listed[_TS_LEAF_MAX];
const char *ts_ike_leaf_to_string(enum ts_ike_leaf l);
/* _TS_LEAF_MAX when the name is unknown. */
enum ts_ike_leaf ts_ike_leaf_from_string(const char *name);
/* "sha256:" + 16 hex digits over every leaf (name=value lines). */
void ts_ike_leaves_fingerprint(const struct ts_ike_leaves *l, char ret_fp[TS_FINGERPRINT_LEN]);
/* Frees the values and sets them to NULL; accepts NULL. */
void ts_ike_leaves_done(struct ts_ike_leaves *l);

struct ts_ike_observed {
	char tunnel[TS_NAME_MAX + 1];
	char conn_name[TS_NAME_MAX + 8];
	bool conn_loaded;
	bool conn_equal;		/* loaded and equal to the rendering (as far as
					 * list-conns reports it) */
	char conn_diff[128];		/* first difference, "" when equal */
	struct ts_ike_leaves listed;	/* what list-conns reported; all NULL
					 * when the connection is not loaded */
	struct ts_ike_leaves want;	/* the declared connection as the compare
					 * rendered it; all NULL when not rendered */
	bool key_loaded;		/* get-shared lists our key id */
	enum ts_ike_sa_state ike_state; /* best IKE SA of the connection */
	uint32_t ike_unique_id;
	uint32_t n_ike_sas; /* more than one during a reauth */
	/* IKE SAs this side initiates that are not up yet (CREATED or
	 * CONNECTING, initiator=yes), by what the peer did with them: its
	 * IKE_SA_INIT unanswered (responder SPI still zero: no answer, or
	 * charon retrying after one), or answered (the peer chose its SPI,
	 * IKE_AUTH under way). A peer that refuses a second IKE SA leaves the
	 * first kind; a slow one the second (agent/reconcile/README.md). */
	uint32_t n_ike_unanswered;
	uint32_t n_ike_answered;
	uint32_t ike_established_secs;	  /* age of the best IKE SA */
	struct ts_ike_child_sa *children; /* owned */
	size_t n_children;
	struct ts_ike_failures failures;
};

extern const char *const ts_ike_sa_state_names[_TS_IKE_SA_STATE_MAX];
extern const char *const ts_child_sa_state_names[_TS_CHILD_SA_STATE_MAX];
const char *ts_ike_sa_state_to_string(enum ts_ike_sa_state s);
const char *ts_child_sa_state_to_string(enum ts_child_sa_state s);
/* Maps charon's names ("ESTABLISHED", ...); unknown names map to _UNKNOWN. */
enum ts_ike_sa_state ts_ike_sa_state_from_string(const char *s);
enum ts_child_sa_state ts_child_sa_state_from_string(const char *s);

/* Frees what the struct owns (not the struct); accepts NULL. */
void ts_ike_observed_done(struct ts_ike_observed *o);
