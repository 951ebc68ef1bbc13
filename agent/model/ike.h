/* What the IKE plane observed for one tunnel: plain structs that the IKE
 * adapter fills (from VICI) and the planner reads. No I/O, no third-party
 * types. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct ts_ike_observed {
	char tunnel[TS_NAME_MAX + 1];
	char conn_name[TS_NAME_MAX + 8];
	bool conn_loaded;
	bool conn_equal;		/* loaded and equal to the rendering (as far as
					 * list-conns reports it) */
	char conn_diff[128];		/* first difference, "" when equal */
	bool key_loaded;		/* get-shared lists our key id */
	enum ts_ike_sa_state ike_state; /* best IKE SA of the connection */
	uint32_t ike_unique_id;
	uint32_t n_ike_sas;		  /* more than one during a reauth */
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
