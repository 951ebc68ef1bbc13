/* The observed state the planner consumes: a plane-neutral summary per
 * declared tunnel (Cloudflare, IKE daemon, kernel, key file, state dir) and
 * the stale objects found on the local planes. Plain fields only; each
 * adapter produces a richer struct of its own, and glue code maps it here.
 *
 * Trust: every plane has an `ok` flag per tunnel and a `complete` flag for
 * the whole plane. A plane that was not read completely is never used to
 * decide something from ABSENCE (no rotation, load or delete because a
 * thing "is not there"); the planner reports it instead. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "model/addr.h"
#include "model/change.h"
#include "model/cloudflare.h"
#include "model/tunnel.h"

enum ts_plane {
	TS_PLANE_CONFIG,
	TS_PLANE_CLOUDFLARE,
	TS_PLANE_IKE,
	TS_PLANE_KERNEL,
	TS_PLANE_STORE,
	_TS_PLANE_MAX,
};

enum ts_obs_sa_state {
	TS_OBS_SA_NONE,
	TS_OBS_SA_CONNECTING,
	TS_OBS_SA_ESTABLISHED,
	_TS_OBS_SA_MAX,
};

/* The step of a rotation that has COMPLETED (DESIGN.md, PSK rotation). */
enum ts_journal_step {
	TS_JOURNAL_PREPARED,  /* new key chosen (random/file) or not yet (generate) */
	TS_JOURNAL_REMOTE,    /* Cloudflare holds the new key; the journal too */
	TS_JOURNAL_LOCAL,     /* IKE daemon loaded it, SAs confirmed */
	TS_JOURNAL_COMMITTED, /* record being replaced; the store rolls forward */
	_TS_JOURNAL_STEP_MAX,
};

/* The current key of a tunnel, as the state directory holds it. */
struct ts_key_record {
	char tunnel[TS_NAME_MAX + 1];
	char tunnel_id[TS_CF_ID_LEN + 1];
	struct ts_secret *key; /* owned */
	char fingerprint[TS_FINGERPRINT_LEN];
	enum ts_psk_source source;
	ts_usec_t last_generated_on; /* Cloudflare's psk_metadata; 0 unknown */
	/* The unit it was written in (core/timeutil.h); 0: 1 us. */
	ts_usec_t last_generated_unit;
	ts_usec_t applied_at; /* when this key became current */
	uint64_t generation;  /* 1 for the first key, +1 per rotation */
};

/* A rotation in progress (write-ahead journal entry). */
struct ts_journal_entry {
	char tunnel[TS_NAME_MAX + 1];
	char tunnel_id[TS_CF_ID_LEN + 1];
	enum ts_journal_step step;
	enum ts_psk_source source;
	struct ts_secret *new_key; /* owned; NULL while not known (generate, prepared) */
	char new_fingerprint[TS_FINGERPRINT_LEN]; /* "" while not known */
	char old_fingerprint[TS_FINGERPRINT_LEN]; /* "" at bootstrap */
	ts_usec_t started_at;
	ts_usec_t last_generated_on;   /* from the remote step; 0 unknown */
	ts_usec_t last_generated_unit; /* its unit; 0: 1 us */
	ts_usec_t applied_at;	       /* set at the committed step */
	uint32_t attempt;	       /* 1 for the first try of this rotation */
	uint64_t generation;	       /* the generation the new record will have */
};

struct ts_obs_cloudflare {
	bool ok;      /* this tunnel's Cloudflare data was read */
	bool present; /* the tunnel id exists in the account */
	struct ts_ip customer_endpoint;
	struct ts_ip cloudflare_endpoint;
	ts_usec_t last_generated_on;   /* 0 unknown */
	ts_usec_t last_generated_unit; /* its unit (core/timeutil.h); 0: 1 us */
	/* Every property as listed (present only); NULL when the glue gave
	 * none. Not owned. The planner diffs what the config declares. */
	const struct ts_cf_tunnel *tunnel;
};

struct ts_obs_ike {
	bool ok;
	bool conn_loaded;
	bool conn_equal; /* the loaded connection equals the rendering of the config */
	/* When loaded and not equal: the leaves that differ, old -> new (not
	 * owned; ts_ike_conn_diff()). May be empty when the glue only knows
	 * that it differs. */
	struct ts_changes conn_changes;
	bool key_loaded;
	char key_fingerprint[TS_FINGERPRINT_LEN]; /* of the loaded key; "" unknown */
	enum ts_obs_sa_state sa_state;
	bool child_up;
	uint32_t auth_failures; /* AUTHENTICATION_FAILED seen, recent window */
	ts_usec_t last_auth_failure;
};

struct ts_obs_kernel {
	bool ok;
	bool sa_pair_ok;   /* an ESP SA in each direction between the endpoints, alive */
	bool policies_ok;  /* the tunnel's policies (in, out, fwd) present */
	bool hard_expired; /* a hard expiry was seen without a replacement */
	/* The current SA pair has carried packets both ways (its counters);
	 * true when the kernel is not checked (nothing to count with). */
	bool traffic_both_ways;
};

/* Source `file`: the key file as read this pass. */
struct ts_obs_keyfile {
	bool ok; /* read fine; false: missing, unreadable or empty */
	char fingerprint[TS_FINGERPRINT_LEN];
};

struct ts_obs_store {
	bool ok; /* the record and journal files parsed (or are absent) */
	const struct ts_key_record *record;	/* NULL: none */
	const struct ts_journal_entry *journal; /* NULL: none */
};

struct ts_observed_tunnel {
	char name[TS_NAME_MAX + 1];
	struct ts_obs_cloudflare cf;
	struct ts_obs_ike ike;
	struct ts_obs_kernel kernel;
	struct ts_obs_keyfile keyfile;
	struct ts_obs_store store;
};

enum ts_stale_kind {
	TS_STALE_IKE_CONN,	/* a connection loaded in the IKE daemon */
	TS_STALE_IKE_KEY,	/* a shared secret loaded in the IKE daemon */
	TS_STALE_KERNEL_SA,	/* an XFRM state */
	TS_STALE_KERNEL_POLICY, /* an XFRM policy */
	_TS_STALE_MAX,
};

/* A local object that maps to no declared tunnel. */
struct ts_stale_object {
	enum ts_stale_kind kind;
	char tunnel[TS_NAME_MAX + 1]; /* the tunnel it claims to be; "" unknown */
	char object[96];	      /* for humans and for apply: conn name, spi, ... */
	bool owned;		      /* the agent made it (name prefix, reqid/mark/if_id range) */
};

struct ts_observed {
	bool cf_complete;
	bool ike_complete;
	bool kernel_complete;
	bool store_complete;
	struct ts_observed_tunnel *tunnels; /* sorted by name; not owned by the planner */
	size_t n_tunnels;
	struct ts_stale_object *stale;
	size_t n_stale;
};

static inline const char *ts_plane_to_string(enum ts_plane p)
{
	static const char *const names[_TS_PLANE_MAX] = {
		[TS_PLANE_CONFIG] = "config", [TS_PLANE_CLOUDFLARE] = "cloudflare",
		[TS_PLANE_IKE] = "ike",	      [TS_PLANE_KERNEL] = "kernel",
		[TS_PLANE_STORE] = "store",
	};
	return (unsigned)p < _TS_PLANE_MAX ? names[p] : "unknown";
}

static inline const char *ts_obs_sa_state_to_string(enum ts_obs_sa_state s)
{
	static const char *const names[_TS_OBS_SA_MAX] = {
		[TS_OBS_SA_NONE] = "none",
		[TS_OBS_SA_CONNECTING] = "connecting",
		[TS_OBS_SA_ESTABLISHED] = "established",
	};
	return (unsigned)s < _TS_OBS_SA_MAX ? names[s] : "unknown";
}

static inline const char *ts_journal_step_to_string(enum ts_journal_step s)
{
	static const char *const names[_TS_JOURNAL_STEP_MAX] = {
		[TS_JOURNAL_PREPARED] = "prepared",
		[TS_JOURNAL_REMOTE] = "remote",
		[TS_JOURNAL_LOCAL] = "local",
		[TS_JOURNAL_COMMITTED] = "committed",
	};
	return (unsigned)s < _TS_JOURNAL_STEP_MAX ? names[s] : "unknown";
}

static inline const char *ts_stale_kind_to_string(enum ts_stale_kind k)
{
	static const char *const names[_TS_STALE_MAX] = {
		[TS_STALE_IKE_CONN] = "ike-conn",
		[TS_STALE_IKE_KEY] = "ike-key",
		[TS_STALE_KERNEL_SA] = "kernel-sa",
		[TS_STALE_KERNEL_POLICY] = "kernel-policy",
	};
	return (unsigned)k < _TS_STALE_MAX ? names[k] : "unknown";
}

/* Lookup by name; NULL when absent. */
static inline const struct ts_observed_tunnel *ts_observed_find(const struct ts_observed *o,
								const char *name)
{
	for (size_t i = 0; o && i < o->n_tunnels; i++)
		if (strcmp(o->tunnels[i].name, name) == 0)
			return &o->tunnels[i];
	return NULL;
}
