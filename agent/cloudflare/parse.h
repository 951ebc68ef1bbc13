/* Internal to agent/cloudflare/: the response parsers, from raw bytes and
 * an HTTP status to model structs or a struct ts_cf_error. Exposed for the
 * client and for the fuzz target (tests/fuzz/fuzz_cf_response.c); not
 * part of the public API. */
#pragma once

#include <stdarg.h>

#include "cloudflare/cloudflare.h"
#include "core/util.h"

/* Makes jansson wipe every block it frees (process-wide, idempotent):
 * parse buffers and strings of a response may hold a PSK. */
void ts_cf_json_init(void);

/* Sets err (if not NULL) and returns r. */
int ts_cf_error_set(struct ts_cf_error *err, enum ts_cf_error_kind kind, int r, const char *fmt,
		    ...) TS_PRINTF(4, 5);

/* The errno for an HTTP error status (see cloudflare.h). */
int ts_cf_http_errno(long http_status);

/* Each parser accepts any bytes: a 2xx body must be a valid envelope with
 * success:true and a result of the documented shape; any other status is
 * TS_CF_ERR_HTTP with the envelope's errors when there is one. */
int ts_cf_parse_error_response(const void *body, size_t len, long http_status,
			       struct ts_cf_error *err);
int ts_cf_parse_tunnel_list(const void *body, size_t len, long http_status,
			    struct ts_cf_tunnel_list *ret_list, struct ts_cf_error *err);
int ts_cf_parse_tunnel_single(const void *body, size_t len, long http_status,
			      struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err);
int ts_cf_parse_psk_set(const void *body, size_t len, long http_status,
			const struct ts_cf_psk_entry *entries, size_t n_entries,
			struct ts_cf_psk_set_result *ret_result, struct ts_cf_error *err);
int ts_cf_parse_psk_generate(const void *body, size_t len, long http_status, const char *account_id,
			     const char *tunnel_id, bool validate_only,
			     struct ts_cf_psk_generated *ret_generated, struct ts_cf_error *err);

/* True for 1..32 characters of [A-Za-z0-9]: account and tunnel ids. */
bool ts_cf_id_valid(const char *id);

/* The body of the tunnel update call (PUT …/{id}) from a GET …/{id}
 * answer: every property the request schema allows, as Cloudflare holds
 * it, with t's declared ones (endpoints, interface addresses, and
 * t->cf: description, replay protection, health check) set. Never a key.
 * The caller frees *ret_body (free). */
int ts_cf_build_tunnel_update(const void *body, size_t len, long http_status,
			      const struct ts_tunnel *t, char **ret_body, size_t *ret_len,
			      struct ts_cf_error *err);
/* The update call's answer: result.modified_ipsec_tunnel. */
int ts_cf_parse_tunnel_modified(const void *body, size_t len, long http_status,
				struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err);
