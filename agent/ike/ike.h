/* The IKE plane: renders a declared tunnel into a strongSwan connection and
 * shared key (VICI messages), compares what charon has loaded with the
 * rendering, applies it, and observes per tunnel what charon reports
 * (connection, key, IKE and CHILD SAs, authentication failures).
 *
 * Authentication failures: strongSwan 5.9.8 has no VICI event for them
 * (measured: registering "ike-state-change" answers "unknown event"). What
 * it does send, over VICI only (no log files needed), for a failed attempt:
 * a "log" event of the IKE SA ("received AUTHENTICATION_FAILED notify
 * error" when the peer rejected our key; "... but MAC mismatched" when we
 * rejected the peer's), then "ike-updown" without up=yes while the SA is
 * still CONNECTING. The monitor counts the first as an authentication
 * failure and the second as a failure to connect (any cause), so that a
 * charon that streams no log events still shows failing attempts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "ike/vici.h"
#include "model/change.h"
#include "model/ike.h"
#include "model/tunnel.h"

struct ts_secret;

/* Connection, CHILD SA and shared-key id are all "ts-<tunnel name>". */
#define TS_IKE_CONN_PREFIX   "ts-"
#define TS_IKE_CONN_NAME_MAX (TS_NAME_MAX + 8)
#define TS_IKE_ID_MAX	     160
#define TS_IKE_PROPOSAL_MAX  160

/* --- rendering (pure) ---------------------------------------------------- */

int ts_ike_conn_name(const struct ts_tunnel *t, char *buf, size_t size);
/* The gateway's IKE identity per t->ike.local_identity: FQDN
 * "<tunnel_id>.<account_id>.ipsec.cloudflare.com", user FQDN "ipsec@" + that,
 * key id "<account_id>_<tunnel_id>", or the IPv4 customer endpoint.
 * -EINVAL when the needed ids or address are missing. */
int ts_ike_local_id(const struct ts_tunnel *t, const char *account_id, char *buf, size_t size);
/* The identity charon must see for the peer: the Cloudflare endpoint. */
int ts_ike_remote_id(const struct ts_tunnel *t, char *buf, size_t size);
/* The identity as strongSwan parses it: key ids need the "keyid:" prefix
 * (an identity without dots or @ would otherwise be taken as a FQDN). */
int ts_ike_local_id_config(const struct ts_tunnel *t, const char *account_id, char *buf,
			   size_t size);

/* strongSwan proposal strings for an algorithm set, strongest first: one
 * proposal with the AEAD algorithms and one with the others (strongSwan
 * refuses to mix them). esp: a CHILD SA proposal (PFS groups from p->dh,
 * none when 0; "noesn" appended), else an IKE one (prf and dh required).
 * Returns the number of proposals (1 or 2); -EINVAL for an empty set. */
int ts_ike_proposals(const struct ts_proposal *p, bool esp,
		     char ret_proposals[2][TS_IKE_PROPOSAL_MAX]);

/* Lifetimes in seconds as charon takes them. The declared lifetimes are hard
 * limits; rekeying starts a tenth earlier, minus a random part of up to
 * lifetime_spread (capped at half the rekey time) so that tunnels loaded
 * together do not rekey together. */
struct ts_ike_lifetimes {
	uint32_t ike_rekey, ike_over, ike_rand;
	uint32_t child_rekey, child_life, child_rand;
};
int ts_ike_lifetimes(const struct ts_ike_settings *s, struct ts_ike_lifetimes *ret_lifetimes);

/* The load-conn message: one connection named ts_ike_conn_name() with one
 * CHILD SA of the same name. IKEv2, PSK both ways, start_action=none (the
 * agent initiates after loading key and connection), dpd_action=restart, replay_window from the
 * config (Cloudflare: 0), ESN off, route-based (0.0.0.0/0, ::/0 with an IPv6 interface address,
 * if_id and/or mark; a mark goes on both SAs: mark_in_sa=yes) or policy-based (the declared
 * selectors). */
int ts_ike_render_conn(const struct ts_tunnel *t, const char *account_id,
		       struct ts_vici_node **ret_msg);
/* The load-shared message: id ts_ike_conn_name(), type IKE, the key, owners
 * local id and remote id. The key is kept in a wiped-on-free node. */
int ts_ike_render_shared(const struct ts_tunnel *t, const char *account_id,
			 const struct ts_secret *psk, struct ts_vici_node **ret_msg);

/* --- leaves and diff (pure) ---------------------------------------------- */

/* The rendering of t flattened into leaves (model/ike.h), normalized: every
 * leaf set, "" for an absent optional one (no if_id, no mark, ...). */
int ts_ike_leaves_render(const struct ts_tunnel *t, const char *account_id,
			 struct ts_ike_leaves *ret_leaves);
/* The leaves list-conns reports for the connection section `listed`
 * (named conn_name, with a CHILD config of the same name), normalized like
 * the rendering; the others stay NULL. */
int ts_ike_leaves_listed(const struct ts_vici_node *listed, const char *conn_name,
			 struct ts_ike_leaves *ret_leaves);
/* The section and key of a leaf in a load-conn message ("" = the
 * connection's own section, "local", "remote", "child"); false for leaves
 * that are not keys of the message (children, shared.owners). */
bool ts_ike_leaf_path(enum ts_ike_leaf leaf, const char **ret_section, const char **ret_key);
/* What must change for charon, and the SAs it runs, to hold want. recorded
 * is what the agent last loaded and established (store/conn_record.h), or
 * NULL when it has none. Each leaf list-conns reports is compared with
 * listed (when given) and, when charon already holds want's value, with
 * the record (an update whose new SAs did not come up); every other leaf
 * with the record only (without a record: one change "unlisted-fields"
 * says they are unknown). A change's old value is charon's or the
 * record's (NULL: not recorded), its new value want's. */
int ts_ike_conn_diff(const struct ts_ike_leaves *want, const struct ts_ike_leaves *listed,
		     const struct ts_ike_leaves *recorded, struct ts_changes *ret_changes);

/* Compares only the leaves list-conns reports with the rendering: 0 equal,
 * 1 different (the first differing leaf's name in diff, no secrets),
 * -errno when the tunnel cannot be rendered. */
int ts_ike_conn_compare(const struct ts_tunnel *t, const char *account_id,
			const struct ts_vici_node *listed, char *diff, size_t diff_size);
/* The same over a rendering and list-conns' leaves already at hand. */
int ts_ike_leaves_compare(const struct ts_ike_leaves *want, const struct ts_ike_leaves *have,
			  char *diff, size_t diff_size);

/* --- events -------------------------------------------------------------- */

enum ts_ike_event_kind {
	TS_IKE_EVENT_OTHER,
	TS_IKE_EVENT_IKE_UP,
	TS_IKE_EVENT_IKE_DOWN,
	TS_IKE_EVENT_CONNECT_FAILED, /* ike-updown down while CONNECTING */
	TS_IKE_EVENT_AUTH_FAILED,    /* log: AUTHENTICATION_FAILED / MAC mismatched */
	TS_IKE_EVENT_CHILD_UP,
	TS_IKE_EVENT_CHILD_DOWN,
	TS_IKE_EVENT_IKE_REKEY,
	TS_IKE_EVENT_CHILD_REKEY,
	_TS_IKE_EVENT_MAX,
};
extern const char *const ts_ike_event_kind_names[_TS_IKE_EVENT_MAX];
const char *ts_ike_event_kind_to_string(enum ts_ike_event_kind k);

struct ts_ike_event {
	enum ts_ike_event_kind kind;
	char conn[TS_VICI_NAME_MAX + 1]; /* IKE SA's connection name, "" unknown */
	uint32_t ike_unique_id;		 /* 0 unknown */
	enum ts_ike_sa_state state;	 /* IKE SA state the event reports */
};
/* Classifies a VICI event (pure). Unknown events and uninteresting log
 * lines are TS_IKE_EVENT_OTHER. */
int ts_ike_event_parse(const char *event, const struct ts_vici_node *body,
		       struct ts_ike_event *ret_event);

/* Failure counters per connection name, fed from the event stream. */
struct ts_ike_monitor;
int ts_ike_monitor_new(struct ts_ike_monitor **ret_monitor);
void ts_ike_monitor_free(struct ts_ike_monitor *m);
void ts_ike_monitor_feed(struct ts_ike_monitor *m, const struct ts_ike_event *ev, ts_usec_t now);
/* Zeroes when nothing was seen for that connection. */
void ts_ike_monitor_get(const struct ts_ike_monitor *m, const char *conn,
			struct ts_ike_failures *ret_failures);
/* Forgets a connection's counters (after a rotation fixed the key). */
void ts_ike_monitor_reset(struct ts_ike_monitor *m, const char *conn);

/* --- applying and observing ---------------------------------------------- */

/* Loads the key (load-shared) and then the connection (load-conn). Neither
 * initiates (start_action=none): the caller initiates or reauthenticates.
 * err gets charon's reason. */
int ts_ike_load(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
		const struct ts_secret *psk, char *err, size_t err_size);
/* Terminates the tunnel's IKE SAs, unloads connection and key. Missing
 * pieces are not an error. */
int ts_ike_unload(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms);
/* Makes a new IKE SA authenticated with the key loaded now. With a CHILD
 * SA: rekey with reauth=yes (charon rebuilds the CHILD SAs). Without one
 * (charon 5.9.8 would only delete the IKE SA: "unable to reauthenticate
 * IKE_SA, no CHILD_SA to recreate"), or without any IKE SA: terminate and
 * initiate, waiting up to timeout_ms. Confirm the outcome through the
 * events or ts_ike_observe() (charon answers before the exchange ends,
 * and `swanctl --rekey --reauth` even exits 0 when it then fails). */
int ts_ike_reauth(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms, char *err,
		  size_t err_size);

/* What a diff (ts_ike_conn_diff) needs besides the reload: the key again
 * with its new owners (an identity changed), and new SAs (every leaf but
 * the "unlisted-fields" placeholder: running SAs keep the config they were
 * made from, through rekeys and reauths, in strongSwan 5.9.8). */
void ts_ike_update_needs(const struct ts_changes *c, bool *ret_key, bool *ret_reestablish);
/* Whether a failed initiate or terminate only means "not done within the
 * timeout the request gave charon" (charon carries on): -ETIMEDOUT, or
 * -EIO with charon's answer for it (5.9.8 vici_control.c: "CHILD_SA '…'
 * not established after 500ms", older texts "timeout"/"timed out"). */
bool ts_ike_request_detached(int r, const char *err);

/* The SAs of a connection before its update: what the new ones are told
 * from, and what goes once they are up. */
struct ts_ike_update_sas {
	uint32_t ike[8];
	size_t n_ike;
	struct {
		uint32_t ike, child;
		bool installed;
	} child[16];
	size_t n_child;
};
bool ts_ike_update_sas_had_child(const struct ts_ike_update_sas *before, uint32_t id);

/* Applies a changed connection in two steps, so that the wait for the new
 * SAs joins every other wait of the pass (reconcile/wait.h).
 * ts_ike_update_begin(): psk (non-NULL: the current key, loaded again
 * first for its new owners), load-conn, then, when reestablish and SAs are
 * running, a new CHILD SA from the loaded config is requested (in the
 * running IKE SA when the peer config is unchanged, else in a new IKE SA),
 * waiting at most request_ms for charon's answer. Returns 0 when done (no
 * SA to re-establish), 1 when new SAs were requested: confirm through
 * observation (a CHILD SA installed that ret_before does not hold), then
 * ts_ike_update_finish(); -EAGAIN when charon refused the initiate at once
 * (the old SAs are kept and carry traffic with the old config). The key is
 * never changed. break_first: the old IKE SAs are terminated (blocking)
 * before the initiate (break before make), for a peer that refuses a
 * second IKE SA with the same identities.
 * ts_ike_update_finish(): with a new CHILD SA installed, terminates the
 * old IKE SAs, or in a kept IKE SA the old CHILD SAs (make before break);
 * -EAGAIN (err says why) when there is none.
 * ts_ike_update(): both, the initiate blocking up to timeout_ms. */
int ts_ike_update_begin(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
			const struct ts_secret *psk, bool reestablish, bool break_first,
			int request_ms, struct ts_ike_update_sas *ret_before, char *err,
			size_t err_size);
int ts_ike_update_finish(struct ts_vici_client *c, const struct ts_tunnel *t,
			 const struct ts_ike_update_sas *before, int timeout_ms, char *err,
			 size_t err_size);
int ts_ike_update(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
		  const struct ts_secret *psk, bool reestablish, bool break_first, int timeout_ms,
		  char *err, size_t err_size);

/* Break-before-make: terminates the tunnel's IKE SAs (and so their CHILD
 * SAs) and initiates a new one, waiting up to timeout_ms. For a peer that
 * refuses a second IKE SA with the same identities while the first is up
 * (strongSwan's unique=keep answers AUTHENTICATION_FAILED), which a
 * make-before-break reauthentication needs. Confirm as for ts_ike_reauth. */
int ts_ike_reinitiate(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms,
		      char *err, size_t err_size);

/* Observes n tunnels with three calls (list-conns, list-sas, get-shared).
 * ret_obs is an array of n, filled in order; free each with
 * ts_ike_observed_done(). m may be NULL (no failure counters). */
int ts_ike_observe(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
		   const char *account_id, const struct ts_ike_monitor *m,
		   struct ts_ike_observed *ret_obs);
/* The names of every connection and shared key charon listed: what a
 * whole observation's list-conns and get-shared answered anyway, kept so
 * that the search for stale ones needs no second pair of requests. Each
 * list is its names one after another, each with its NUL. */
struct ts_ike_names {
	bool valid; /* both lists read whole */
	char *conns, *keys;
	size_t conns_len, keys_len, n_conns, n_keys;
};
/* ts_ike_observe(), and when it reads charon's whole lists (more than a few
 * tunnels asked), every name in them into ret_names (valid); otherwise
 * ret_names stays invalid. Free with ts_ike_names_done(). */
int ts_ike_observe_names(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
			 const char *account_id, const struct ts_ike_monitor *m,
			 struct ts_ike_observed *ret_obs, struct ts_ike_names *ret_names);
void ts_ike_names_done(struct ts_ike_names *names);
/* What this thread's last ts_ike_observe() spent on each request (the
 * daemon's debug lines: which of charon's answers grow with the gateway). */
struct ts_ike_observe_timing {
	uint64_t conns_usec, sas_usec, shared_usec;
	size_t n_keys;	 /* key ids in get-shared's answer */
	bool by_name;	 /* list-conns and list-sas asked by name */
	bool keys_known; /* no get-shared: the keys as the client knew them */
};
const struct ts_ike_observe_timing *ts_ike_observe_last_timing(void);

/* The SAs alone (one list-sas, or one per tunnel for a few): the IKE and
 * CHILD SA fields of ret_obs, nothing of the connections or keys (no
 * list-conns, no get-shared, no rendering) and no failure counters. What
 * a wait for SAs needs: at 10,000 tunnels the connections' dump is the
 * largest of charon's answers. */
int ts_ike_observe_sas(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
		       struct ts_ike_observed *ret_obs);
