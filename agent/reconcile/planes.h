/* The planes: every adapter the reconcile talks to (Cloudflare, the IKE
 * daemon and its events, the kernel's XFRM state, the state directory and
 * the clock) behind one table of operations, so that observe, rotation
 * and apply never hold a handle themselves and tests run them over fake
 * planes (tests/reconcile/fake_planes.c) without root, charon or HTTP.
 *
 * Conventions: int returns are 0 or -errno as the adapter returns them;
 * a plane that is not there (no API client, charon down, no XFRM socket,
 * no state directory) is -ENOTCONN (store: -ENODEV for "nothing recorded
 * yet", which a read-only pass accepts). err/err_size receive the peer's
 * reason where it gave one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudflare/cloudflare.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "ike/ike.h"
#include "ike/swconf.h"
#include "model/cloudflare.h"
#include "model/ike.h"
#include "model/tunnel.h"
#include "model/xfrm.h"
#include "store/store.h"

/* route/route.h */
struct ts_route_seen;
struct ts_iface_spec;
struct ts_iface_seen;
struct ts_iface_owned;

struct ts_xfrm_expect;
struct ts_xfrm_stale;
struct ts_xfrm_snapshot;
struct ts_xfrm_match_result;

enum ts_ike_name_kind {
	TS_IKE_NAME_CONN,
	TS_IKE_NAME_KEY,
};
typedef int (*ts_ike_name_fn)(void *userdata, enum ts_ike_name_kind kind, const char *name);

struct ts_planes_ops {
	/* --- clock ------------------------------------------------------- */
	ts_usec_t (*now_realtime)(void *ctx);
	ts_usec_t (*now_monotonic)(void *ctx);
	/* Waits up to timeout_ms for something from the IKE daemon (an event),
	 * else sleeps that long. Fakes advance their clock instead. */
	void (*wait)(void *ctx, int timeout_ms);

	/* --- Cloudflare -------------------------------------------------- */
	int (*cf_list)(void *ctx, struct ts_cf_tunnel_list *ret_list, struct ts_cf_error *err);
	/* cf_list, calling ready(userdata) whenever charon's or the kernel's
	 * event socket (fds) is readable while the request is under way
	 * (ts_cf_wait_hook: ready returns 0 to go on watching; it must not
	 * call Cloudflare). NULL: cf_list. */
	int (*cf_list_watch)(void *ctx, int (*ready)(void *userdata), void *userdata,
			     struct ts_cf_tunnel_list *ret_list, struct ts_cf_error *err);
	int (*cf_psk_set)(void *ctx, const struct ts_cf_psk_entry *entries, size_t n,
			  bool validate_only, struct ts_cf_psk_set_result *ret_result,
			  struct ts_cf_error *err);
	int (*cf_psk_generate)(void *ctx, const char *tunnel_id, bool validate_only,
			       struct ts_cf_psk_generated *ret_generated, struct ts_cf_error *err);
	uint32_t (*cf_budget)(void *ctx);
	/* Sets the tunnel's declared properties (ts_cf_update_tunnel). */
	int (*cf_update_tunnel)(void *ctx, const struct ts_tunnel *t, bool validate_only,
				struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err);

	/* --- the IKE daemon ---------------------------------------------- */
	/* Reads pending events first (failure counters), then observes. */
	int (*ike_observe)(void *ctx, const struct ts_tunnel *tunnels, size_t n,
			   struct ts_ike_observed *ret_obs);
	/* The SAs alone (ts_ike_observe_sas), for waits; NULL: ike_observe. */
	int (*ike_observe_sas)(void *ctx, const struct ts_tunnel *tunnels, size_t n,
			       struct ts_ike_observed *ret_obs);
	/* Every connection and shared-key id charon has loaded. */
	int (*ike_names)(void *ctx, ts_ike_name_fn fn, void *userdata);
	/* load-shared then load-conn (a rotation's local step). */
	int (*ike_load)(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			char *err, size_t err_size);
	int (*ike_load_conn)(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size);
	int (*ike_load_key)(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			    char *err, size_t err_size);
	/* A changed connection: key (when not NULL) again for new owners,
	 * load-conn, and with reestablish new SAs from it requested, make
	 * before break (ts_ike_update_begin: 0 done, 1 confirm the new SAs
	 * then ike_update_finish, -EAGAIN refused at once). The key itself
	 * never changes. Neither call waits for an exchange. */
	int (*ike_update_conn)(void *ctx, const struct ts_tunnel *t, const struct ts_secret *key,
			       bool reestablish, bool break_first,
			       struct ts_ike_update_sas *ret_before, char *err, size_t err_size);
	/* New SAs up: the old ones go (ts_ike_update_finish; -EAGAIN none). */
	int (*ike_update_finish)(void *ctx, const struct ts_tunnel *t,
				 const struct ts_ike_update_sas *before, char *err,
				 size_t err_size);
	/* Terminates the connection's SAs, then unloads it. */
	int (*ike_unload_conn)(void *ctx, const char *conn, char *err, size_t err_size);
	int (*ike_unload_key)(void *ctx, const char *id, char *err, size_t err_size);
	/* Initiate and reauth request and return at once (charon goes on):
	 * the caller confirms through observation (reconcile/wait.h). An
	 * answer "timeout" (-EIO) or -ETIMEDOUT only means "not done yet". */
	int (*ike_initiate)(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size);
	int (*ike_reauth)(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size);
	/* Break-before-make: terminate, then initiate (ts_ike_reinitiate). */
	int (*ike_reinitiate)(void *ctx, const struct ts_tunnel *t, char *err, size_t err_size);
	/* The failure counters of a connection (after reading pending events). */
	void (*ike_failures)(void *ctx, const char *conn, struct ts_ike_failures *ret);
	void (*ike_failures_reset)(void *ctx, const char *conn);
	/* Whether charon reauthenticates make-before-break (ike/swconf.h). */
	int (*ike_mbb_check)(void *ctx, const char *conf_path, struct ts_mbb_check *ret);
	/* True once after the planes saw charon restart (or lost its event
	 * stream) since the last call: what was checked may have changed. */
	bool (*ike_take_restarted)(void *ctx);
	/* Follows charon's "log" events (authentication failures) or stops;
	 * drained into the failure counters before it stops. 1: changed. */
	int (*ike_follow_log)(void *ctx, bool want);

	/* --- routes and owned interfaces (route/route.h) ------------------
	 * Read (plan: route_list, iface_read, iface_list_owned) and act on
	 * what the plan lists (route_set, route_delete, iface_ensure,
	 * iface_delete). NULL: no such plane (tests); the plan lists nothing. */
	int (*route_list)(void *ctx, struct ts_route_seen **ret_routes, size_t *ret_n);
	/* The agent's route to dst through ifname at metric (add, then drop
	 * its other metrics). */
	int (*route_set)(void *ctx, const char *ifname, const struct ts_prefix *dst,
			 uint32_t metric);
	int (*route_delete)(void *ctx, const struct ts_route_seen *r);
	int (*iface_read)(void *ctx, const char *ifname, struct ts_iface_seen *ret_seen);
	int (*iface_list_owned)(void *ctx, struct ts_iface_owned **ret_ifaces, size_t *ret_n);
	/* The tunnel's owned VTI or XFRM interface as sp says (ts_iface_ensure). */
	int (*iface_ensure)(void *ctx, const struct ts_iface_spec *sp, unsigned *ret_changes);
	int (*iface_delete)(void *ctx, const char *ifname);

	/* --- the kernel -------------------------------------------------- */
	/* Dumps the XFRM state and matches it against n expectations with the
	 * agent's owner spec. */
	int (*kernel_match)(void *ctx, const struct ts_xfrm_expect *expect, size_t n,
			    struct ts_xfrm_snapshot *ret_snapshot,
			    struct ts_xfrm_match_result *ret_result);
	int (*kernel_delete)(void *ctx, const struct ts_xfrm_stale *object);

	/* --- the state directory ----------------------------------------- */
	int (*store_load)(void *ctx, struct ts_store_state **ret_state);
	/* The named tunnels only (ts_store_load_names); NULL: store_load. */
	int (*store_load_names)(void *ctx, const char *const *names, size_t n,
				struct ts_store_state **ret_state);
	int (*store_begin)(void *ctx, const struct ts_journal_entry *entry);
	int (*store_advance)(void *ctx, const struct ts_journal_entry *entry);
	int (*store_commit)(void *ctx, const char *tunnel, ts_usec_t applied_at,
			    struct ts_key_record *ret_record);
	int (*store_discard)(void *ctx, const char *tunnel);
	int (*store_adopt_baseline)(void *ctx, const char *tunnel, const char *fingerprint,
				    ts_usec_t last_generated_on, ts_usec_t unit);
	/* Requested rotations (store.h: ts_store_request_add/remove). */
	int (*store_request_add)(void *ctx, const char *tunnel, ts_usec_t at);
	int (*store_request_remove)(void *ctx, const char *tunnel);
	/* What was last loaded into the IKE daemon and established, per
	 * tunnel (store/conn_record.h): -ENOENT none (or no directory),
	 * -EBADMSG unusable. Writing needs the store open for writing. */
	int (*conn_record_read)(void *ctx, const char *tunnel, struct ts_ike_leaves *ret_leaves);
	int (*conn_record_write)(void *ctx, const char *tunnel, const struct ts_ike_leaves *leaves);
	/* After the connection is unloaded (a stale tunnel's). */
	int (*conn_record_remove)(void *ctx, const char *tunnel);
	/* Since when an update's new SAs have not come up (-ENOENT: they
	 * did, or none was tried); since 0 clears it. */
	int (*conn_failing_read)(void *ctx, const char *tunnel, ts_usec_t *ret_since);
	int (*conn_failing_write)(void *ctx, const char *tunnel, ts_usec_t since);
	/* "PATH: what was wrong" for the last failure, "" if none. */
	const char *(*store_error)(void *ctx);
	const char *(*store_dir)(void *ctx);

	/* --- the daemon's event loop ------------------------------------- */
	void (*fds)(void *ctx, int *ret_ike_fd, int *ret_xfrm_fd);
	/* 1: something happened a pass should look at; 0: no; -errno. */
	int (*process_events)(void *ctx);
	/* The tunnels named by the events read since the last call (drains
	 * during passes included), then forgotten: 1 with the names (the
	 * caller frees them), 0 when one of them asks for a full pass. NULL
	 * (fakes): always a full pass. */
	int (*event_scope)(void *ctx, char ***ret_names, size_t *ret_n);
	/* The API client, for its state across processes (api-state.json),
	 * its request counts and "rate-limited until"; NULL (or the op
	 * absent, as in fakes) when there is none. */
	struct ts_cf_client *(*cf_client)(void *ctx);
};

struct ts_planes {
	const struct ts_planes_ops *ops;
	void *ctx;
	void (*free)(void *ctx);
};

struct ts_agent_options;

/* The real planes: opens the store (locked unless readonly/dry-run), the
 * API client, the VICI client and event socket, the XFRM socket (and its
 * event watch with options->watch). A plane that cannot be opened is
 * reported by its operations (-ENOTCONN), not here. Errors: -EBUSY,
 * -EPERM/-EBADMSG (state directory unusable), -ENOMEM. */
int ts_planes_open_real(const struct ts_desired *desired, const struct ts_agent_options *options,
			const char *state_dir, struct ts_planes *ret_planes);
void ts_planes_close(struct ts_planes *planes);

/* Whether an XFRM event is about one of the agent's own objects (the
 * owner spec): only those ask the daemon for a pass. */
bool ts_planes_xfrm_event_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_event *ev);
/* Whether an event of the IKE daemon (its VICI name and parsed body) asks
 * for a pass: one of our connections', or one naming none; not a log
 * line, not a rekey (an SA replaced as declared), not another
 * connection's. */
bool ts_planes_ike_event_asks(const char *event, const struct ts_ike_event *ev);

/* The kernel objects of a tunnel with neither if_id nor mark (a
 * policy-based one) carry only its CHILD SAs' reqid: the one it declares,
 * else the ones charon gave them (seen by observations). The daemon names
 * the tunnel of such an event by this map (sorted by reqid; a reqid seen
 * again for another tunnel moves to it); it is not an owner spec: the
 * kernel's stale-object search does not use it. */
struct ts_reqid_map {
	struct ts_reqid_owner {
		uint32_t reqid;
		uint32_t tunnel; /* index into the desired tunnels */
	} * v;
	size_t n, cap;
};
int ts_reqid_map_set(struct ts_reqid_map *m, uint32_t reqid, uint32_t tunnel);
/* The tunnel (index) an SA, policy or acquire event's reqid (any
 * template's) names; -1: none. */
ssize_t ts_reqid_map_event(const struct ts_reqid_map *m, const struct ts_xfrm_event *ev);
void ts_reqid_map_done(struct ts_reqid_map *m);
