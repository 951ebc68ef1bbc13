/* The desired state: plain structs the config loader fills and every other
 * module reads. No I/O, no third-party types. Field names follow the YANG
 * model in models/tunnelsync.yang (and RFC 9061 where it has a name). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/addr.h"

#define TS_NAME_MAX  63 /* tunnel, gateway, group names */
#define TS_CF_ID_LEN 32 /* Cloudflare account and tunnel ids: 32 hex */

enum ts_identity_type {
	TS_IDENTITY_FQDN,      /* <tunnel_id>.<account_id>.ipsec.cloudflare.com */
	TS_IDENTITY_USER_FQDN, /* ipsec@<tunnel_id>.<account_id>.ipsec.cloudflare.com */
	TS_IDENTITY_KEY_ID,    /* <account_id>_<tunnel_id> */
	TS_IDENTITY_IPV4,      /* the customer endpoint address */
	_TS_IDENTITY_MAX,
};

enum ts_psk_source {
	TS_PSK_SOURCE_RANDOM,	/* agent draws the key, sets it through the bulk call */
	TS_PSK_SOURCE_GENERATE, /* Cloudflare draws it (psk_generate) */
	TS_PSK_SOURCE_FILE,	/* operator supplies it in a file */
	_TS_PSK_SOURCE_MAX,
};

enum ts_tunnel_mode {
	TS_MODE_ROUTE,	/* 0/0 selectors, traffic steered by if_id and/or mark */
	TS_MODE_POLICY, /* explicit traffic selectors */
	_TS_MODE_MAX,
};

/* Algorithm sets (bit masks). The renderer emits them strongest first. */
enum ts_encr_alg {
	TS_ENCR_AES128_GCM16 = 1u << 0,
	TS_ENCR_AES256_GCM16 = 1u << 1,
	TS_ENCR_AES128_CBC = 1u << 2,
	TS_ENCR_AES256_CBC = 1u << 3,
};
#define TS_ENCR_AEAD_MASK (TS_ENCR_AES128_GCM16 | TS_ENCR_AES256_GCM16)

enum ts_integ_alg {
	TS_INTEG_HMAC_SHA1_96 = 1u << 0,
	TS_INTEG_HMAC_SHA2_256_128 = 1u << 1,
};

enum ts_prf_alg {
	TS_PRF_HMAC_SHA2_256 = 1u << 0,
	TS_PRF_HMAC_SHA2_384 = 1u << 1,
	TS_PRF_HMAC_SHA2_512 = 1u << 2,
};

enum ts_dh_group {
	TS_DH_MODP1536 = 1u << 0, /* group 5 */
	TS_DH_MODP2048 = 1u << 1, /* group 14 */
	TS_DH_ECP384 = 1u << 2,	  /* group 20 */
};

struct ts_proposal {
	uint32_t encr;	/* enum ts_encr_alg bits */
	uint32_t integ; /* enum ts_integ_alg bits; ignored for AEAD-only sets */
	uint32_t prf;	/* enum ts_prf_alg bits; IKE SA only */
	uint32_t dh;	/* enum ts_dh_group bits; for the child SA: PFS groups, 0 = no PFS */
};

struct ts_ike_settings {
	enum ts_identity_type local_identity; /* RFC 9061: local-pad-entry-name type */
	struct ts_proposal ike_sa;
	struct ts_proposal child_sa;
	uint32_t ike_sa_lifetime;   /* seconds (reauth/rekey of the IKE SA) */
	uint32_t child_sa_lifetime; /* seconds, 1800..28800 */
	uint32_t lifetime_spread;   /* seconds of random rekey spread (stagger) */
	uint32_t dpd_delay;	    /* seconds */
	uint32_t replay_window;	    /* packets; Cloudflare wants 0 */
};

struct ts_traffic_selector {
	struct ts_prefix local;
	struct ts_prefix remote;
};

struct ts_routing {
	enum ts_tunnel_mode mode;
	bool has_if_id;
	uint32_t if_id;
	bool has_mark;
	uint32_t mark;
	uint32_t mark_mask;
	struct ts_traffic_selector *selectors; /* policy mode; owned */
	size_t n_selectors;
	uint32_t reqid; /* explicit CHILD SA reqid; 0 = charon assigns one */
};

struct ts_psk_policy {
	enum ts_psk_source source;
	char *file;	  /* source file: path to the key, owned */
	uint64_t max_age; /* seconds; 0 = no age limit */
	bool rotate_on_auth_failure;
	uint32_t auth_failure_threshold; /* failures seen before a rotation */
};

/* Cloudflare-side properties a tunnel may declare (tunnel/cloudflare in
 * the YANG model). Only declared ones are compared with Cloudflare's and,
 * with cloudflare/manage-tunnels, set through the tunnel update call. */
struct ts_cf_declared {
	char *description; /* owned; NULL: not declared */
	bool has_replay_protection;
	bool replay_protection;
	bool has_hc_enabled;
	bool hc_enabled;
	char hc_rate[16];	/* low|mid|high; "" not declared */
	char hc_type[16];	/* reply|request */
	char hc_direction[16];	/* unidirectional|bidirectional */
	struct ts_ip hc_target; /* AF_UNSPEC: not declared */
};

/* One of a tunnel's routes (tunnel/routes/route in the YANG model). */
struct ts_tunnel_route {
	struct ts_prefix dst;
	uint32_t metric;
};
#define TS_ROUTES_MAX 16 /* routes of one tunnel (the model's max-elements) */

struct ts_tunnel {
	char name[TS_NAME_MAX + 1];
	char id[TS_CF_ID_LEN + 1]; /* Cloudflare tunnel id */
	bool enabled;
	char gateway[TS_NAME_MAX + 1];		/* "" = unassigned: any agent */
	char redundancy_group[TS_NAME_MAX + 1]; /* "" = none */
	struct ts_ip customer_endpoint;		/* AF_UNSPEC when not declared */
	struct ts_ip cloudflare_endpoint;
	struct ts_prefix interface_address;  /* /31 */
	struct ts_prefix interface_address6; /* /127, AF_UNSPEC when absent */
	struct ts_ike_settings ike;
	struct ts_routing routing;
	struct ts_psk_policy psk;
	struct ts_cf_declared cf;
	/* routes (opt-in): the agent's routes through the tunnel's interface */
	struct {
		char ifname[16]; /* "" = the agent owns no route of this tunnel */
		size_t n;
		struct ts_tunnel_route *route; /* owned, n of them; NULL when none */
	} routes;
	/* interface (opt-in): the VTI the agent owns (alias tunnelsync:NAME) */
	struct {
		char ifname[16]; /* "" = the agent owns no interface of this tunnel */
		struct ts_prefix address;
		uint32_t mtu;
	} iface;
	/* Where the tunnel was declared: set only by a load with
	 * TS_CONFIG_LOAD_SOURCES (agent/config/config.h), else NULL / 0. */
	char *source_file;
	unsigned source_line;
};

enum ts_cf_auth {
	TS_CF_AUTH_TOKEN,     /* Authorization: Bearer */
	TS_CF_AUTH_EMAIL_KEY, /* X-Auth-Email + X-Auth-Key */
};

struct ts_cloudflare_config {
	char account_id[TS_CF_ID_LEN + 1];
	char *api_base_url; /* e.g. https://api.cloudflare.com/client/v4 */
	enum ts_cf_auth auth;
	char *token_file; /* NULL: CLOUDFLARE_API_TOKEN from the environment */
	char *email;
	char *key_file;
	char *ca_file; /* NULL: system trust store */
	bool allow_plain_http_loopback;
	uint32_t request_budget;  /* requests per 5 minutes */
	uint32_t connect_timeout; /* seconds */
	uint32_t request_timeout; /* seconds */
	/* Correct Cloudflare-side drift of declared properties through the
	 * tunnel update call (else only report it). Never deletes a tunnel. */
	bool manage_tunnels;
};

struct ts_agent_config {
	char node_name[TS_NAME_MAX + 1];
	char *state_dir;
	uint32_t resync_interval;	 /* seconds */
	char *vici_socket;		 /* path of charon's VICI unix socket */
	char *metrics_listen;		 /* "addr:port" or NULL */
	bool suspend;			 /* observe and plan only */
	bool prune;			 /* delete stale objects of removed tunnels */
	uint32_t max_rotations_per_pass; /* deprecated; 0 = none */
	/* rotation (in-flight and batch 0: the model's default, for structs
	 * built in code; jitter 0: none) */
	uint32_t rotation_max_in_flight;   /* tunnels mid-rotation at once */
	uint32_t rotation_bulk_batch_size; /* keys per bulk PSK call */
	uint32_t rotation_max_age_jitter;  /* percent of max-age */
	bool kernel_xfrm;		   /* the IKE daemon's SAs live in the kernel's XFRM */
	uint32_t confirm_timeout;	   /* seconds to wait for an SA after a key change */
	/* traffic: */
	char *strongswan_conf; /* charon's settings, read for make_before_break */
	uint32_t settle_time;  /* seconds a group's next rotation waits */
};

struct ts_desired {
	struct ts_agent_config agent;
	struct ts_cloudflare_config cloudflare;
	struct ts_tunnel *tunnels; /* sorted by name */
	size_t n_tunnels;
	char revision[72]; /* git commit, or "sha256:<hex>" of the content */
};

extern const char *const ts_identity_type_names[_TS_IDENTITY_MAX];
extern const char *const ts_psk_source_names[_TS_PSK_SOURCE_MAX];
extern const char *const ts_tunnel_mode_names[_TS_MODE_MAX];

const char *ts_identity_type_to_string(enum ts_identity_type t);
const char *ts_psk_source_to_string(enum ts_psk_source s);
const char *ts_tunnel_mode_to_string(enum ts_tunnel_mode m);

/* Frees what the struct owns (not the struct); accepts NULL. */
void ts_tunnel_done(struct ts_tunnel *t);
void ts_desired_free(struct ts_desired *d);

const struct ts_tunnel *ts_desired_find(const struct ts_desired *d, const char *name);
const struct ts_tunnel *ts_desired_find_id(const struct ts_desired *d, const char *id);
/* True when the agent on node should manage the tunnel: assigned to it or
 * to no gateway. */
bool ts_tunnel_is_local(const struct ts_tunnel *t, const char *node);

#define TS_ROTATION_MAX_IN_FLIGHT_DEFAULT 1000
#define TS_ROTATION_BULK_BATCH_DEFAULT	  100

/* Seconds after which t's key falls due: psk.max_age shortened by up to
 * jitter_percent of it, by a fraction fixed per tunnel id (a hash of the
 * id), so that keys set together fall due spread over that window. 0 when
 * the key has no age limit. */
uint64_t ts_tunnel_key_due_age(const struct ts_tunnel *t, uint32_t jitter_percent);
