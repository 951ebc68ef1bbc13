/* Cloudflare Magic IPsec API client: authentication, the response
 * envelope, retries with backoff, a local request budget, and the four
 * operations the agent needs (list, get, update, bulk PSK set, PSK
 * generate).
 * Results are the plain structs of model/cloudflare.h.
 *
 * A client is not thread-safe: one client per thread. Secrets (the API
 * token or key, PSKs) pass in and out only as struct ts_secret; every
 * buffer that held one (request body, response body, JSON strings, the
 * header list) is wiped before it is released. What curl and the TLS
 * library copy internally is beyond reach and is not wiped.
 *
 * Return values: 0 on success, otherwise a negative errno, and when err
 * is not NULL it says what happened (kind, HTTP status, the envelope's
 * errors verbatim). err must start zeroed ({ 0 }); each call resets it,
 * and ts_cf_error_done() releases it after the last call:
 *   -EINVAL, -EPERM, -ENOENT...  TS_CF_ERR_CONFIG: bad configuration, or a
 *                                plain-http URL that is not allowed
 *   -EAGAIN      TS_CF_ERR_BUDGET: the local request budget is empty; no
 *                request was sent; err->retry_after says when one token
 *                is free again. The client never sleeps for the budget.
 *   -EACCES      TS_CF_ERR_HTTP 401/403 (credentials, permissions)
 *   -ENOENT      TS_CF_ERR_HTTP 404 (e.g. code 1032: tunnel not found)
 *   -EBUSY       TS_CF_ERR_HTTP 429 after the retries (err->retry_after)
 *   -EREMOTEIO   TS_CF_ERR_HTTP, any other status >= 400
 *   -EBADMSG     TS_CF_ERR_PROTOCOL: a response that breaks the schema
 *   -EKEYREJECTED TS_CF_ERR_TLS: certificate not trusted / handshake failed
 *   -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EIO  TS_CF_ERR_TRANSPORT
 *   -TS_CF_EOUTCOME_UNKNOWN  TS_CF_ERR_OUTCOME_UNKNOWN: psk_generate may or
 *                may not have changed the key (timeout, lost or unreadable
 *                response, 5xx). It is never retried: a retry would mint
 *                another key. The caller must treat the remote key as
 *                unknown (e.g. rotate with a key of its own via the bulk
 *                set, or compare last_generated_on on the next list).
 *
 * Retries: 429 waits for Retry-After (if it is within
 * retry_after_max, else returns at once), and no later call sends anything
 * before it either (-EAGAIN, TS_CF_ERR_BUDGET, err->retry_after); a call
 * that fails with 5xx or in transport makes the next call wait 1 s, then
 * 2, 4 ... up to 5 min (reset by any answer); 5xx, timeouts, lost responses
 * and connection errors back off exponentially with jitter, at most
 * max_attempts requests in all. psk_generate is retried only after a
 * connection that failed before anything was sent, or after a 429. Every
 * attempt, retries included, takes a token from the request budget, which
 * lives in the client: keep one client for the life of the process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "model/cloudflare.h"
#include "model/tunnel.h"

/* A project error code beyond the errno range: returned negated. */
#define TS_CF_EOUTCOME_UNKNOWN 10001

#define TS_CF_DEFAULT_BASE_URL	      "https://api.cloudflare.com/client/v4"
#define TS_CF_DEFAULT_REQUEST_BUDGET  1000 /* per 5 min; Cloudflare allows 1,200 */
#define TS_CF_BUDGET_WINDOW	      (300 * TS_USEC_PER_SEC)
#define TS_CF_DEFAULT_CONNECT_TIMEOUT 10 /* seconds */
#define TS_CF_DEFAULT_REQUEST_TIMEOUT 30 /* seconds */
/* Longest quiet time after consecutive failed calls (5xx, transport). */
#define TS_CF_BACKOFF_ACROSS_MAX (300 * TS_USEC_PER_SEC)

enum ts_cf_error_kind {
	TS_CF_ERR_NONE,
	TS_CF_ERR_CONFIG,
	TS_CF_ERR_BUDGET,
	TS_CF_ERR_TRANSPORT,
	TS_CF_ERR_TLS,
	TS_CF_ERR_HTTP,
	TS_CF_ERR_PROTOCOL,
	TS_CF_ERR_OUTCOME_UNKNOWN,
	_TS_CF_ERR_MAX,
};

/* One entry of the envelope's errors[], as Cloudflare wrote it. */
struct ts_cf_api_message {
	long code;
	char *message; /* owned */
};

struct ts_cf_error {
	enum ts_cf_error_kind kind;
	long http_status;		  /* 0: no HTTP response */
	struct ts_cf_api_message *errors; /* owned */
	size_t n_errors;
	ts_usec_t retry_after; /* budget or 429: wait at least this long; 0 = unknown */
	unsigned attempts;     /* requests sent for this call */
	char detail[256];      /* human-readable cause, free of secrets */
};

struct ts_cf_client;

typedef void (*ts_cf_sleep_fn)(ts_usec_t usec, void *userdata);

/* Tuning; zero fields take the defaults. Tests inject sleep so that no
 * test waits for real. */
struct ts_cf_client_options {
	unsigned max_attempts;	   /* requests per call, retries included; default 4 */
	ts_usec_t backoff_base;	   /* first backoff; default 1 s (doubling) */
	ts_usec_t backoff_max;	   /* default 30 s */
	ts_usec_t retry_after_max; /* longest Retry-After honoured by waiting; default 60 s */
	ts_cf_sleep_fn sleep;	   /* default: a sleep that a stop (core/cancel.h) ends */
	void *sleep_userdata;
	/* Called after every request that was sent: the operation (list, get,
	 * psk_set, psk_generate, update, ...) and the HTTP status (0: no
	 * answer). For metrics; NULL: none. */
	void (*on_request)(void *userdata, const char *operation, long http_status);
	void *on_request_userdata;
};

/* What a client remembers that must outlive it (the agent keeps it in
 * the state directory, so that a reload, a restart or `once` in a loop
 * respects it): wall-clock times, 0 = none. */
struct ts_cf_client_state {
	ts_usec_t budget_tat;	       /* the request budget's theoretical arrival time */
	ts_usec_t hold_until;	       /* no request before it */
	bool rate_limited;	       /* hold_until comes from a 429's Retry-After */
	unsigned consecutive_failures; /* calls that ended in 5xx or transport failure */
};
/* Sets (or clears, NULL) the request observer after creation. */
void ts_cf_client_set_observer(struct ts_cf_client *c,
			       void (*on_request)(void *userdata, const char *operation,
						  long http_status),
			       void *userdata);
/* While a request is under way the client also waits for the descriptors
 * fds() names (up to TS_CF_WAIT_FDS; -1 unused: it gets them filled with
 * -1, asked again each round since they may change) and calls ready()
 * when one is readable, the transfer paused meanwhile. ready() returns 0
 * to go on watching, else they are left out for the rest of that
 * request; it must not call the client (that fails with -EBUSY). The
 * daemon's full pass acts on charon's and the kernel's events there
 * while Cloudflare's list is being read (agent/daemon/README.md). NULL
 * clears it. */
#define TS_CF_WAIT_FDS 4
struct ts_cf_wait_hook {
	void (*fds)(void *userdata, int *fds);
	int (*ready)(void *userdata);
	void *userdata;
};
void ts_cf_client_set_wait_hook(struct ts_cf_client *c, const struct ts_cf_wait_hook *hook);

/* Seconds a kept-alive connection may idle and still be reused
 * (CURLOPT_MAXAGE_CONN, libcurl's default, set explicitly). */
#define TS_CF_CONN_MAX_AGE 118
/* The caller expects no request for quiet: when that is longer than
 * TS_CF_CONN_MAX_AGE the connections, which would not be reused, are
 * closed now and their TLS state freed (the daemon idle between resyncs
 * holds no connection), rather than at the next request. */
void ts_cf_client_idle(struct ts_cf_client *c, ts_usec_t quiet);
/* Connections the client has made so far. */
unsigned long ts_cf_client_connects(const struct ts_cf_client *c);

void ts_cf_client_state_get(const struct ts_cf_client *c, struct ts_cf_client_state *ret_state);
/* Merges: a time or count is taken only when it is later (more careful). */
void ts_cf_client_state_set(struct ts_cf_client *c, const struct ts_cf_client_state *state);

extern const char *const ts_cf_error_kind_names[_TS_CF_ERR_MAX];
const char *ts_cf_error_kind_to_string(enum ts_cf_error_kind k);
/* Frees the owned envelope errors and zeroes the struct; accepts NULL. */
void ts_cf_error_done(struct ts_cf_error *e);
/* "kind: detail (HTTP n; code: message; ...)" for the caller's one log line. */
const char *ts_cf_error_format(const struct ts_cf_error *e, char *buf, size_t size);

/* The systemd credential (LoadCredential=NAME:FILE) holding the API token. */
#define TS_CF_CREDENTIAL_TOKEN "cloudflare-api-token"

/* Moves CLOUDFLARE_API_TOKEN out of the environment into a secret buffer
 * (the variable removed, its bytes wiped) for every later client of the
 * process. main() calls it first, before any thread; 0 also when unset. */
int ts_cf_take_env_token(void);
/* Initializes libcurl and OpenSSL with the wiping allocator (core/secret.h)
 * for their allocations: once, before anything else in the process uses
 * them (main() does, at start; the first client would). */
void ts_cf_global_init(void);
/* Whether OpenSSL's allocations go through the wiping allocator: false
 * before ts_cf_global_init, or when OpenSSL had been used before it. */
bool ts_cf_tls_memory_wiped(void);
/* How many TLS contexts the clients set up with SSL_OP_CLEANSE_PLAINTEXT
 * (a received record's plaintext wiped from the read buffer once read);
 * a context that does not take it fails the connection. */
unsigned ts_cf_tls_cleansed_contexts(void);

/* Reads the credentials (token_file, else the file TS_CF_CREDENTIAL_TOKEN in
 * $CREDENTIALS_DIRECTORY, else CLOUDFLARE_API_TOKEN; or email + key_file), checks the base URL
 * (https, or http to loopback only with allow_plain_http_loopback) and prepares the HTTP handle.
 * opts may be NULL. */
int ts_cf_client_new(const struct ts_cloudflare_config *cfg,
		     const struct ts_cf_client_options *opts, struct ts_cf_client **ret_client,
		     struct ts_cf_error *err);
void ts_cf_client_free(struct ts_cf_client *c);
static inline void ts_cf_client_freep(struct ts_cf_client **c)
{
	ts_cf_client_free(*c);
}
#define _cleanup_cf_client_ __attribute__((cleanup(ts_cf_client_freep)))

/* Tokens left in the request budget now (for status and tests). */
unsigned ts_cf_client_budget_available(struct ts_cf_client *c);

/* GET …/ipsec_tunnels */
int ts_cf_list_tunnels(struct ts_cf_client *c, struct ts_cf_tunnel_list *ret_list,
		       struct ts_cf_error *err);
/* GET …/ipsec_tunnels/{id}; a missing tunnel is -ENOENT (code 1032). */
int ts_cf_get_tunnel(struct ts_cf_client *c, const char *tunnel_id, struct ts_cf_tunnel *ret_tunnel,
		     struct ts_cf_error *err);

/* PUT …/ipsec_tunnels/{id} (after a GET of it): sets the properties t
 * declares (customer and cloudflare endpoints, interface_address(6), and
 * t->cf: description, replay_protection, health_check fields); every other
 * property the update request may carry is sent as Cloudflare holds it, so
 * that an undeclared one keeps its value. Never sends a key. Two requests;
 * with validate_only nothing changes. ret_tunnel: the answer's
 * modified_ipsec_tunnel. */
int ts_cf_update_tunnel(struct ts_cf_client *c, const struct ts_tunnel *t, bool validate_only,
			struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err);

struct ts_cf_psk_entry {
	const char *tunnel_id;
	const struct ts_secret *psk;
};

/* POST …/ipsec_tunnels/psk: sets every entry's key in one call. Success
 * means the call was answered; each tunnel's outcome (applied, unapplied
 * with reason) is in ret_result, in the order of entries. Idempotent, so
 * retried like a read. */
int ts_cf_psk_set(struct ts_cf_client *c, const struct ts_cf_psk_entry *entries, size_t n_entries,
		  bool validate_only, struct ts_cf_psk_set_result *ret_result,
		  struct ts_cf_error *err);

/* POST …/ipsec_tunnels/{id}/psk_generate: Cloudflare draws a new key and
 * returns it once. See -TS_CF_EOUTCOME_UNKNOWN above. With validate_only
 * nothing changes, the call may be retried and ret->psk is NULL.
 * ipsec_id is taken from the response, or "<account_id>_<tunnel_id>"
 * (the documented key-id form) when the response has none. */
int ts_cf_psk_generate(struct ts_cf_client *c, const char *tunnel_id, bool validate_only,
		       struct ts_cf_psk_generated *ret_generated, struct ts_cf_error *err);
