/* Fake planes for unit tests of the agent (observe → plan → apply →
 * rotation → memory) without root, charon or HTTP: a Cloudflare that holds
 * one key per tunnel and answers PSK calls as a test scripts them, an IKE
 * daemon whose tunnels come up exactly when the key it was given is the
 * one Cloudflare holds, a clock that waits by advancing, and the real
 * state directory (agent/store) in a temporary directory, with faults
 * injectable per operation. The kernel is not checked (kernel-xfrm off).
 * Its network side is a fake too: a table of interfaces and of the
 * agent's routes that the route plane reads and changes as the kernel
 * would (route/route.h's decisions applied to it).
 *
 * Named a fake on purpose: what is real here is the store and everything
 * above the planes; Cloudflare and charon are models of the behaviour the
 * agent depends on, no more. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "model/ike.h"
#include "model/observed.h"
#include "model/tunnel.h"
#include "reconcile/agent.h"

#define FAKE_MAX_TUNNELS 32
#define FAKE_MAX_SCRIPT	 16

/* How Cloudflare answers one write (bulk PSK set or psk_generate). */
enum fake_answer {
	FAKE_APPLIED,	/* taken; in successfully_applied_psks (generate: the key) */
	FAKE_UNAPPLIED, /* not taken; in unapplied_psks with a reason */
	FAKE_MISSING,	/* in neither map (bulk only); taken or not: .taken */
	FAKE_LOST,	/* no answer (timeout); taken or not: .taken */
	FAKE_RESET,	/* connection reset after sending; taken or not */
	FAKE_4XX,	/* HTTP 400: not taken */
	FAKE_5XX,	/* HTTP 500: taken or not */
	FAKE_MALFORMED, /* 200 with a body that breaks the schema; taken or not */
	_FAKE_ANSWER_MAX,
};
const char *fake_answer_name(enum fake_answer a);

struct fake_call {
	enum fake_answer answer;
	bool taken; /* for the answers that do not say: did Cloudflare take it */
};

struct fake_cf_tunnel {
	bool present;
	struct ts_secret *key; /* what Cloudflare holds; NULL: none yet */
	ts_usec_t last_generated_on;
	/* The key was the agent's (bulk set) or returned in an answer: only
	 * then can it be anywhere but on Cloudflare. A psk_generate whose
	 * answer was lost minted a key nobody knows: it can authenticate
	 * nothing and the next rotation replaces it. */
	bool told;
	/* interface_address changed on Cloudflare's side (set: differs from
	 * the config's); the tunnel update call puts the config's back. */
	bool ifaddr_drift;
	struct ts_prefix ifaddr;
	unsigned updates; /* tunnel update calls (validate_only not counted) */
};

struct fake_ike_tunnel {
	bool conn_loaded;
	struct ts_secret *key; /* loaded; NULL: none */
	uint32_t ike_id;       /* 0: no IKE SA */
	bool up;
	bool reachable; /* the peer answers at all */
	unsigned loads, initiates, reauths;
	unsigned reinitiates; /* break-before-make: terminate, then initiate */
	unsigned unloads;     /* unload-conn and unload-shared calls */
	uint32_t auth_failures;
	/* The connection as loaded (the rendering's leaves); the fake's
	 * list-conns reports the listed ones of it. */
	struct ts_ike_leaves conn;
	unsigned updates;	/* update-conn calls */
	unsigned finishes;	/* update-conn finish calls (new SAs seen up) */
	bool update_fails;	/* update-conn: loaded, but the new SAs never come up */
	bool refuses_overlap;	/* the peer takes no second IKE SA: only break_first
				 * (update-conn) or a re-initiation works */
	unsigned breaks;	/* update-conn calls with break_first */
	unsigned reestablishes; /* update-conn calls asking for new SAs */
	ts_usec_t up_since;	/* realtime of the IKE SA's establishment */
	/* A make-before-break reauthentication's new IKE SA beside the one
	 * in service, as charon 5.9.8's list-sas shows it (measured, agent/
	 * reconcile/README.md): a refusing peer (refuses_overlap) never
	 * answers its IKE_SA_INIT and charon retries it for ever
	 * (keyingtries 0); a slow peer (reauth_slow) answers it, and IKE_AUTH
	 * stays under way until fake_reauth_complete/_fail. */
	bool reauth_slow;
	enum fake_reauth_sa {
		FAKE_REAUTH_NONE,
		FAKE_REAUTH_UNANSWERED,
		FAKE_REAUTH_ANSWERED,
	} reauth_sa;
	/* reauth_sa is update-conn's new IKE SA (not a reauthentication) */
	bool update_under_way;
	/* The old IKE SA beside the one update-conn's request brought up
	 * (0: none), until the update's finish terminates it. */
	uint32_t beside;
};

enum fake_store_op {
	FAKE_STORE_NONE,
	FAKE_STORE_BEGIN,
	FAKE_STORE_ADVANCE_REMOTE,
	FAKE_STORE_ADVANCE_LOCAL,
	FAKE_STORE_ADVANCE_ATTEMPT, /* the same step, a higher attempt */
	FAKE_STORE_COMMIT,
	FAKE_STORE_DISCARD,
};

/* One interface of the fake kernel. */
struct fake_link {
	bool present;
	char name[16];
	char alias[64];
	char kind[16]; /* "vti", "xfrm", "dummy", ... */
	uint32_t key, if_id;
	struct ts_ip local, remote;
	uint32_t mtu;
	bool up;
	int policy_off;
	struct ts_prefix addr[8];
	size_t n_addr;
};

/* One route of the agent's protocol in the fake kernel. */
struct fake_route {
	bool present;
	struct ts_prefix dst;
	char ifname[16];
	uint32_t metric;
};

#define FAKE_MAX_LINKS	16
#define FAKE_MAX_ROUTES 64

struct fake {
	struct ts_desired d;
	struct ts_tunnel t[FAKE_MAX_TUNNELS];
	/* Tunnels Cloudflare and charon know: t[0..n_world), of which the
	 * config declares the first d.n_tunnels (lower d.n_tunnels: the last
	 * ones removed from the config, still in the world). */
	size_t n_world;
	char dir[128];
	char state_dir[160];
	ts_usec_t mono, real;
	unsigned waits; /* calls of wait() */

	/* Cloudflare */
	struct fake_cf_tunnel cf[FAKE_MAX_TUNNELS];
	struct fake_call set_script[FAKE_MAX_SCRIPT]; /* next bulk calls; then applied */
	size_t n_set_script, set_calls;
	ts_usec_t set_delay; /* each bulk call lasts this long (both clocks move) */
	/* per tunnel, overrides the call's answer for its entry when set
	 * (APPLIED/UNAPPLIED/MISSING); index + 1, 0 = not set */
	int entry_answer[FAKE_MAX_TUNNELS];
	struct fake_call gen_script[FAKE_MAX_SCRIPT];
	size_t n_gen_script, gen_calls;
	unsigned lists;
	/* lists made with cf_list_watch (a daemon's full pass: three rounds,
	 * the step "cf_list_request" in each), and the rounds' events handed
	 * to its ready that it took (returned 0; "stop" ends the rounds) */
	unsigned list_watches, list_readies;
	bool list_fails;
	unsigned list_fail_at; /* this list call (1-based) fails; 0: none */
	bool write_omits_time; /* write answers without psk_metadata/last_generated_on */
	/* The unit times are written in (0: 1 us), truncated, or rounded to
	 * the nearest unit with write_rounds / list_rounds. */
	ts_usec_t write_unit, list_unit;
	bool write_rounds, list_rounds;

	/* the IKE daemon */
	struct fake_ike_tunnel ike[FAKE_MAX_TUNNELS];
	uint32_t next_ike_id;
	bool ike_down;
	/* Its event stream, as the daemon sees it: an initiate makes an event
	 * (the SA coming up), which an observe drains; process_events then
	 * says whether any was read since it was last asked. */
	bool event_queued, event_read;
	/* The tunnels events named (as charon's ike-updown names its
	 * connection: an initiate names its tunnel), handed out by
	 * event_scope; event_nameless: one named none (charon restarted). */
	bool event_named[FAKE_MAX_TUNNELS];
	bool event_nameless;
	/* Called at some operations ("store_load", "cf_list", "cf_list_request"
	 * (a daemon's full pass: events then come during its list request),
	 * "ike_observe"
	 * after its answer, "initiate" before the exchange; tunnel: the one
	 * initiated, or the one observed when only one is, else NULL), so that
	 * a test changes the world in the middle of a pass. */
	void (*on_step)(struct fake *f, const char *step, const char *tunnel);
	void *step_data;
	uint32_t budget; /* Cloudflare requests left; 0: 1000 */
	/* initiate answers as charon does when its timeout ends before the
	 * exchange does (the exchange goes on). */
	bool initiate_slow;
	/* observations (ike_observe) and SA-only ones (ike_observe_sas, what
	 * waits use); each lasts observe_delay (both clocks move). */
	unsigned observes, sa_observes;
	ts_usec_t observe_delay;

	/* after each fake_pass: /metrics and /readyz as the agent renders them */
	char *last_metrics;
	bool last_ready;
	char last_ready_reason[256];

	/* the kernel's interfaces and the agent's routes */
	struct fake_link links[FAKE_MAX_LINKS];
	struct fake_route routes[FAKE_MAX_ROUTES];
	unsigned net_writes; /* every change the route plane made */
	bool net_read_fails; /* route and interface listings fail (-EIO) */

	/* the store: the real one, with one injectable failure */
	struct ts_store *store;
	enum fake_store_op fail_op;
	unsigned fail_after; /* let this many of that op succeed first */
	unsigned store_writes;
};

/* n tunnels t01..tNN (random keys), a state directory, a healthy world:
 * no keys anywhere yet (the first pass bootstraps). */
void fake_init(struct fake *f, size_t n);
void fake_done(struct fake *f);
/* Scripts the next bulk PSK set / psk_generate calls. */
void fake_script_set(struct fake *f, enum fake_answer a, bool taken);
void fake_script_generate(struct fake *f, enum fake_answer a, bool taken);

/* An agent on the fake's planes (options: NULL for the defaults; the
 * state directory is the fake's). */
int fake_agent_open(struct fake *f, const struct ts_agent_options *options, struct ts_agent **ret);
/* One pass over an agent opened on the fake (forced names rotate now). */
int fake_pass(struct fake *f, const char *const *forced, size_t n_forced,
	      struct ts_pass_result *ret);
/* `rotate NAMES`: the request persisted, then one pass (as main does);
 * with cancel, `rotate --cancel NAMES` (no pass; ret gets the count). */
int fake_rotate(struct fake *f, const char *const *names, size_t n, struct ts_pass_result *ret);
int fake_cancel(struct fake *f, const char *const *names, size_t n, size_t *ret_cancelled);
/* Whether the state directory holds a requested rotation for tunnel i. */
bool fake_requested(struct fake *f, size_t i);
/* Runs passes until one has nothing pending or failed (at most max). */
unsigned fake_settle(struct fake *f, unsigned max);

/* The fake kernel's network side: an interface by name (NULL: none), a
 * link added by hand (not the agent's: no alias), a route of the agent's
 * protocol added or found (NULL: none). */
struct fake_link *fake_link_find(struct fake *f, const char *name);
struct fake_link *fake_link_add(struct fake *f, const char *name, const char *kind);
struct fake_route *fake_route_add(struct fake *f, const char *ifname, const char *dst,
				  uint32_t metric);
struct fake_route *fake_route_find(struct fake *f, const char *ifname, const char *dst);
size_t fake_route_count(struct fake *f);

/* Tunnel i's IKE SA goes down behind the agent's back, and charon says
 * so (an event naming it). */
void fake_drift(struct fake *f, size_t i);

/* Someone regenerates tunnel i's key on Cloudflare (not the agent). */
void fake_cf_regenerate(struct fake *f, size_t i);
/* The same, at dt after Cloudflare's last key change of tunnel i (the
 * fake's clock moved on to that time if it is not there yet). */
void fake_cf_regenerate_after(struct fake *f, size_t i, ts_usec_t dt);
ts_usec_t fake_record_baseline(struct fake *f, size_t i);

/* The key invariant: the key Cloudflare holds for tunnel i, if it was
 * ever told to anyone, is in the tunnel's record or its journal entry. */
bool fake_key_safe(struct fake *f, size_t i);
/* Cloudflare, the record and the IKE daemon hold one key, no journal
 * entry is left, and the tunnel is up. */
bool fake_in_agreement(struct fake *f, size_t i);
/* The journal entry's step, or -1 when there is none (-2: unreadable). */
int fake_journal_step(struct fake *f, size_t i);
/* The slow peer's IKE_AUTH answer arrives for tunnel i's reauthentication
 * (reauth_sa answered): the new IKE SA up if the keys agree (exchange()'s
 * rules), the old one gone (make-before-break). */
int fake_reauth_complete(struct fake *f, size_t i);
/* Its answer is an error (AUTHENTICATION_FAILED): charon drops the new IKE
 * SA, the old one carries on. */
void fake_reauth_fail(struct fake *f, size_t i);
bool fake_journal_key_is_cf(struct fake *f, size_t i);
uint64_t fake_record_generation(struct fake *f, size_t i);
