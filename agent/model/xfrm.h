/* The kernel plane as plain values: XFRM SAs and policies as the kernel
 * reports them (never with key material), what the agent expects of each
 * tunnel, the ownership spec that says which objects the agent may touch,
 * and the per-tunnel status and stale objects that matching produces.
 * No I/O, no third-party types; filled by agent/xfrm, read by the planner. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/addr.h"
#include "model/tunnel.h"

/* Kernel constants, repeated so that readers need no kernel header. */
#define TS_XFRM_PROTO_ESP  50
#define TS_XFRM_PROTO_AH   51
#define TS_XFRM_PROTO_COMP 108
#define TS_XFRM_INF	   UINT64_MAX /* "no limit" in lifetime configs */
#define TS_XFRM_MAX_TMPL   6	      /* XFRM_MAX_DEPTH */
#define TS_XFRM_ALG_NAME   64	      /* xfrm_algo.alg_name */

enum ts_xfrm_mode {
	TS_XFRM_MODE_TRANSPORT = 0,
	TS_XFRM_MODE_TUNNEL = 1,
	TS_XFRM_MODE_ROUTEOPTIMIZATION = 2,
	TS_XFRM_MODE_IN_TRIGGER = 3,
	TS_XFRM_MODE_BEET = 4,
	_TS_XFRM_MODE_MAX,
};

/* Values are the kernel's XFRM_POLICY_IN/OUT/FWD. */
enum ts_xfrm_dir {
	TS_XFRM_DIR_IN = 0,
	TS_XFRM_DIR_OUT = 1,
	TS_XFRM_DIR_FWD = 2,
	_TS_XFRM_DIR_MAX,
};

enum ts_xfrm_action {
	TS_XFRM_ACTION_ALLOW = 0,
	TS_XFRM_ACTION_BLOCK = 1,
	_TS_XFRM_ACTION_MAX,
};

struct ts_xfrm_mark {
	uint32_t value;
	uint32_t mask; /* 0 = no mark */
};

struct ts_xfrm_selector {
	struct ts_prefix src;
	struct ts_prefix dst;
	uint16_t sport, sport_mask; /* host order */
	uint16_t dport, dport_mask;
	uint8_t proto; /* 0 = any */
	int ifindex;
	uint32_t user;
};

struct ts_xfrm_lifetime_cfg {
	uint64_t soft_byte_limit, hard_byte_limit; /* TS_XFRM_INF = none */
	uint64_t soft_packet_limit, hard_packet_limit;
	uint64_t soft_add_expires_seconds, hard_add_expires_seconds; /* 0 = none */
	uint64_t soft_use_expires_seconds, hard_use_expires_seconds;
};

struct ts_xfrm_lifetime_cur {
	uint64_t bytes;
	uint64_t packets;
	uint64_t add_time; /* seconds since the epoch; 0 = never */
	uint64_t use_time;
};

/* An algorithm as the SA uses it; the key itself is never copied. */
struct ts_xfrm_alg {
	char name[TS_XFRM_ALG_NAME + 1]; /* "" = absent */
	uint32_t key_bits;
	uint32_t icv_bits; /* AEAD ICV, or truncation length of auth_trunc */
};

struct ts_xfrm_sa {
	struct ts_ip src;
	struct ts_ip dst;
	uint32_t spi; /* host order */
	uint8_t proto;
	enum ts_xfrm_mode mode;
	uint32_t reqid;
	uint32_t if_id;
	struct ts_xfrm_mark mark;
	uint32_t seq;
	uint32_t replay_window; /* from the ESN replay state when present */
	uint32_t replay_seq;	/* highest sequence number received */
	uint32_t replay_oseq;	/* last sequence number sent */
	uint8_t flags;		/* XFRM_STATE_* */
	struct ts_xfrm_selector sel;
	struct ts_xfrm_lifetime_cfg lft;
	struct ts_xfrm_lifetime_cur cur;
	uint32_t stats_replay_window, stats_replay, stats_integrity_failed;
	struct ts_xfrm_alg aead;
	struct ts_xfrm_alg crypt;
	struct ts_xfrm_alg auth;
	bool has_encap;
	uint16_t encap_type, encap_sport, encap_dport; /* ports host order */
	uint32_t set_mark, set_mark_mask;	       /* XFRMA_SET_MARK (output mark) */
	uint64_t lastused;
};

struct ts_xfrm_tmpl {
	struct ts_ip src; /* tunnel mode: outer addresses */
	struct ts_ip dst;
	uint32_t spi;
	uint8_t proto;
	enum ts_xfrm_mode mode;
	uint32_t reqid;
	uint8_t share;
	bool optional;
	uint32_t aalgos, ealgos, calgos;
};

struct ts_xfrm_policy {
	struct ts_xfrm_selector sel;
	enum ts_xfrm_dir dir;
	uint32_t priority;
	uint32_t index;
	enum ts_xfrm_action action;
	uint8_t flags; /* XFRM_POLICY_* */
	uint8_t share;
	uint8_t type; /* XFRM_POLICY_TYPE_MAIN (0) or SUB (1) */
	uint32_t if_id;
	struct ts_xfrm_mark mark;
	struct ts_xfrm_lifetime_cfg lft;
	struct ts_xfrm_lifetime_cur cur;
	struct ts_xfrm_tmpl tmpl[TS_XFRM_MAX_TMPL];
	size_t n_tmpl;
};

/* One consistent view of the kernel's SAs and policies (per-socket
 * policies left out). `complete` is true only for a dump that finished
 * without NLM_F_DUMP_INTR; nothing may be deleted on the strength of an
 * incomplete view. */
struct ts_xfrm_snapshot {
	struct ts_xfrm_sa *sas;
	size_t n_sas;
	struct ts_xfrm_policy *policies;
	size_t n_policies;
	bool complete;
};

/* Which kernel objects belong to tunnelsync. The operator reserves these
 * values for the agent's tunnels alone; an object is owned when at least
 * one of its identifiers falls in a reserved set:
 *   - if_id ≠ 0 and listed in if_ids;
 *   - mark mask ≠ 0 and (value, mask) equal to one listed in marks;
 *   - reqid in [reqid_min, reqid_max] (reqid_max ≥ reqid_min > 0);
 *     for a policy, the reqid of any of its templates.
 * Addresses alone never prove ownership: other software may run tunnels
 * to the same peers. An empty spec owns nothing. */
struct ts_xfrm_owner {
	const uint32_t *if_ids;
	size_t n_if_ids;
	const struct ts_xfrm_mark *marks;
	size_t n_marks;
	uint32_t reqid_min, reqid_max; /* 0, 0 = none */
};

/* An expected policy: selector (addresses; ports/proto as in the kernel)
 * and direction. */
struct ts_xfrm_expect_policy {
	struct ts_prefix src;
	struct ts_prefix dst;
	enum ts_xfrm_dir dir;
};

/* What a declared tunnel should have in the kernel. */
struct ts_xfrm_expect {
	char name[TS_NAME_MAX + 1];
	struct ts_ip local;	/* our endpoint: src of the out SA */
	struct ts_ip remote;	/* the peer: src of the in SA */
	const uint32_t *reqids; /* optional: the tunnel's SAs use one of these */
	size_t n_reqids;
	bool has_if_id;
	uint32_t if_id;
	bool has_mark;
	struct ts_xfrm_mark mark;
	/* SPIs the IKE daemon reports for the installed CHILD SA (host order,
	 * 0 = unknown). When set, only the SA with that SPI counts as the pair. */
	uint32_t spi_in, spi_out;
	const struct ts_xfrm_expect_policy *policies;
	size_t n_policies;
};

/* A tunnel as the kernel shows it. */
struct ts_xfrm_tunnel_status {
	char name[TS_NAME_MAX + 1];
	bool sa_in, sa_out;			/* present (matching SPI when one was given) */
	bool sa_in_alive, sa_out_alive;		/* present, has an add time, no hard expiry seen */
	uint32_t spi_in, spi_out;		/* the SAs chosen (newest add time) */
	uint64_t packets_in, packets_out;	/* their packet counters */
	size_t n_sa_in, n_sa_out;		/* all matching SAs (rekeys overlap) */
	bool policy_in, policy_out, policy_fwd; /* at least one of each */
	size_t n_policies_expected, n_policies_found;
	bool soft_expire_seen, hard_expire_seen; /* from the events given */
	/* sa_in_alive && sa_out_alive && every expected policy found (when the
	 * expectation lists none: at least one in and one out policy). */
	bool up;
};

enum ts_xfrm_object_kind {
	TS_XFRM_OBJECT_SA,
	TS_XFRM_OBJECT_POLICY,
	_TS_XFRM_OBJECT_MAX,
};

/* An owned object that no declared tunnel claims. */
struct ts_xfrm_stale {
	enum ts_xfrm_object_kind kind;
	union {
		struct ts_xfrm_sa sa;
		struct ts_xfrm_policy policy;
	};
};

/* What a watch saw. Identity fields (addresses, SPI, reqid, if_id, mark,
 * selector, templates) are filled for every kind so that the caller can
 * map the event to a tunnel. */
enum ts_xfrm_event_type {
	TS_XFRM_EVENT_SA_NEW,
	TS_XFRM_EVENT_SA_UPD,
	TS_XFRM_EVENT_SA_DEL,
	TS_XFRM_EVENT_SA_EXPIRE_SOFT,
	TS_XFRM_EVENT_SA_EXPIRE_HARD, /* the kernel deletes it; no SA_DEL follows */
	TS_XFRM_EVENT_POLICY_NEW,
	TS_XFRM_EVENT_POLICY_UPD,
	TS_XFRM_EVENT_POLICY_DEL,
	TS_XFRM_EVENT_POLICY_EXPIRE_SOFT,
	TS_XFRM_EVENT_POLICY_EXPIRE_HARD,
	TS_XFRM_EVENT_ACQUIRE, /* a policy wants an SA: acquire.* */
	_TS_XFRM_EVENT_MAX,
};

struct ts_xfrm_acquire {
	struct ts_ip src, dst;
	uint8_t proto;
	uint32_t seq;
	struct ts_xfrm_policy policy; /* the policy that asked, with templates */
};

struct ts_xfrm_event {
	enum ts_xfrm_event_type type;
	union {
		struct ts_xfrm_sa sa;		/* SA_* */
		struct ts_xfrm_policy policy;	/* POLICY_* */
		struct ts_xfrm_acquire acquire; /* ACQUIRE */
	};
};

/* Why a watch asks for a full resync. */
enum ts_xfrm_resync {
	TS_XFRM_RESYNC_NONE,
	TS_XFRM_RESYNC_FLUSH_SA,
	TS_XFRM_RESYNC_FLUSH_POLICY,
	TS_XFRM_RESYNC_OVERFLOW,	/* ENOBUFS: events were lost */
	TS_XFRM_RESYNC_UNKNOWN_MESSAGE, /* a type the agent does not follow */
	TS_XFRM_RESYNC_BAD_MESSAGE,	/* a message that did not parse */
	_TS_XFRM_RESYNC_MAX,
};

/* The result of one drain. When resync ≠ NONE the events are still
 * reported, but the caller must dump everything again before acting. */
struct ts_xfrm_changes {
	struct ts_xfrm_event *events;
	size_t n_events;
	enum ts_xfrm_resync resync;
};

/* Matching output: status per expectation, in the order given, and the
 * owned objects no expectation claims. stale_valid is false when the
 * snapshot was incomplete: then `stale` is empty and must not be read as
 * "nothing stale". */
struct ts_xfrm_match_result {
	struct ts_xfrm_tunnel_status *tunnels;
	size_t n_tunnels;
	struct ts_xfrm_stale *stale;
	size_t n_stale;
	bool stale_valid;
};
