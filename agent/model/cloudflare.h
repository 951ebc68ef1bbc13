/* The Cloudflare plane as observed: plain structs for IPsec tunnels as the
 * API reports them and for the outcomes of PSK calls. No I/O, no
 * third-party types; filled by agent/cloudflare/, read by the planner. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "model/addr.h"
#include "model/tunnel.h"

#define TS_CF_NAME_MAX	   255 /* tunnel names as Cloudflare stores them */
#define TS_CF_FQDN_MAX	   253 /* custom_remote_identities.fqdn_id */
#define TS_CF_IPSEC_ID_MAX 127 /* ipsec_id: "<account_id>_<tunnel_id>" */
#define TS_CF_HC_WORD_MAX  15  /* health check rate/type/direction words */

struct ts_cf_health_check {
	bool present; /* false: the tunnel reported no health_check object */
	bool enabled;
	char rate[TS_CF_HC_WORD_MAX + 1];      /* low, mid, high; "" when absent */
	char type[TS_CF_HC_WORD_MAX + 1];      /* reply, request */
	char direction[TS_CF_HC_WORD_MAX + 1]; /* unidirectional, bidirectional */
	struct ts_ip target;		       /* AF_UNSPEC when absent or empty */
};

struct ts_cf_tunnel {
	char id[TS_CF_ID_LEN + 1];
	char *name;			     /* owned; at most TS_CF_NAME_MAX, set when parsed */
	char *description;		     /* owned; NULL when absent */
	struct ts_ip customer_endpoint;	     /* AF_UNSPEC when absent or "" */
	struct ts_ip cloudflare_endpoint;    /* always set */
	struct ts_prefix interface_address;  /* always set (/31) */
	struct ts_prefix interface_address6; /* AF_UNSPEC when absent (/127) */
	bool replay_protection;
	bool allow_null_cipher;
	struct ts_cf_health_check health_check;
	/* psk_metadata.last_generated_on: the only remote sign that a key
	 * changed. Absent on a tunnel that never had a key set. */
	bool has_psk_generated_on;
	ts_usec_t psk_generated_on;
	ts_usec_t psk_generated_unit; /* the unit of its text's last digit (timeutil.h) */
	bool has_created_on;
	ts_usec_t created_on;
	bool has_modified_on;
	ts_usec_t modified_on;
	char *fqdn_id; /* owned, custom_remote_identities.fqdn_id; NULL when absent or "" */
};

struct ts_cf_tunnel_list {
	struct ts_cf_tunnel *tunnels; /* owned, in the API's order */
	size_t n_tunnels;
	/* Optional (ts_cf_tunnel_list_index): the tunnels sorted by id. */
	const struct ts_cf_tunnel **by_id;
	/* Owned; set by the parser: one block holding every member's name,
	 * description and fqdn_id (then the members own none of them: a kept
	 * list's small strings, each allocated while the JSON tree was live,
	 * would pin its freed pages). NULL: each member owns its own. */
	char *strings;
};

/* The outcome of one tunnel's entry in a bulk PSK set. */
enum ts_cf_psk_status {
	TS_CF_PSK_APPLIED,   /* in successfully_applied_psks */
	TS_CF_PSK_UNAPPLIED, /* in unapplied_psks, with Cloudflare's reason */
	TS_CF_PSK_MISSING,   /* in neither map: outcome unknown (the key may be taken) */
	_TS_CF_PSK_STATUS_MAX,
};

struct ts_cf_psk_outcome {
	char tunnel_id[TS_CF_ID_LEN + 1];
	enum ts_cf_psk_status status;
	char ipsec_id[TS_CF_IPSEC_ID_MAX + 1]; /* applied only */
	bool has_last_generated_on;	       /* applied only */
	ts_usec_t last_generated_on;
	ts_usec_t last_generated_unit; /* the unit of its text's last digit */
	char *reason;		       /* owned; unapplied only */
};

/* One outcome per requested tunnel, in the order of the request. */
struct ts_cf_psk_set_result {
	struct ts_cf_psk_outcome *outcomes; /* owned */
	size_t n_outcomes;
	size_t n_applied;
};

/* A key Cloudflare generated (psk_generate). psk is NULL for a
 * validate_only call: nothing was generated that could be used. */
struct ts_cf_psk_generated {
	char tunnel_id[TS_CF_ID_LEN + 1];
	char ipsec_id[TS_CF_IPSEC_ID_MAX + 1];
	struct ts_secret *psk; /* owned */
	bool has_last_generated_on;
	ts_usec_t last_generated_on;
	ts_usec_t last_generated_unit; /* the unit of its text's last digit */
};

extern const char *const ts_cf_psk_status_names[_TS_CF_PSK_STATUS_MAX];
const char *ts_cf_psk_status_to_string(enum ts_cf_psk_status s);

/* Destructors free what the struct owns (not the struct); accept NULL and
 * leave the struct zeroed. */
void ts_cf_tunnel_done(struct ts_cf_tunnel *t);
void ts_cf_tunnel_list_done(struct ts_cf_tunnel_list *l);
/* Sorts an index by id so that ts_cf_tunnel_list_find is a binary search
 * (one look-up per declared tunnel per pass); without it (or on -ENOMEM)
 * find scans. The list must not change afterwards. */
int ts_cf_tunnel_list_index(struct ts_cf_tunnel_list *l);
void ts_cf_psk_set_result_done(struct ts_cf_psk_set_result *r);
void ts_cf_psk_generated_done(struct ts_cf_psk_generated *g);

const struct ts_cf_tunnel *ts_cf_tunnel_list_find(const struct ts_cf_tunnel_list *l,
						  const char *id);
