/* Owns the reading of Cloudflare's responses: the envelope
 * {success, errors, messages, result}, tunnels, and the PSK results. Every
 * JSON string is wiped before the document is released, and jansson's own
 * allocations are wiped on free, since a response may carry a PSK. */
#include "cloudflare/parse.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "core/timeutil.h"

#define MAX_ENVELOPE_ERRORS 32

const char *const ts_cf_error_kind_names[_TS_CF_ERR_MAX] = {
	[TS_CF_ERR_NONE] = "none",
	[TS_CF_ERR_CONFIG] = "config",
	[TS_CF_ERR_BUDGET] = "budget-exhausted",
	[TS_CF_ERR_TRANSPORT] = "transport",
	[TS_CF_ERR_TLS] = "tls",
	[TS_CF_ERR_HTTP] = "http",
	[TS_CF_ERR_PROTOCOL] = "protocol",
	[TS_CF_ERR_OUTCOME_UNKNOWN] = "outcome-unknown",
};

const char *ts_cf_error_kind_to_string(enum ts_cf_error_kind k)
{
	return (unsigned)k < _TS_CF_ERR_MAX ? ts_cf_error_kind_names[k] : "unknown";
}

void ts_cf_error_done(struct ts_cf_error *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_errors; i++)
		free(e->errors[i].message);
	free(e->errors);
	memset(e, 0, sizeof(*e));
}

const char *ts_cf_error_format(const struct ts_cf_error *e, char *buf, size_t size)
{
	size_t pos;

	if (!size)
		return buf;
	snprintf(buf, size, "%s: %s", ts_cf_error_kind_to_string(e->kind), e->detail);
	pos = strlen(buf);
	if (e->http_status && pos < size)
		pos += (size_t)snprintf(buf + pos, size - pos, " (HTTP %ld)", e->http_status);
	for (size_t i = 0; i < e->n_errors && pos < size; i++)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%ld: %s", i ? "; " : " ",
					e->errors[i].code, e->errors[i].message);
	return buf;
}

int ts_cf_error_set(struct ts_cf_error *err, enum ts_cf_error_kind kind, int r, const char *fmt,
		    ...)
{
	va_list ap;

	if (!err)
		return r;
	err->kind = kind;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return r;
}

int ts_cf_http_errno(long http_status)
{
	switch (http_status) {
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 429:
		return -EBUSY;
	default:
		return -EREMOTEIO;
	}
}

bool ts_cf_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > TS_CF_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return false;
	}
	return true;
}

/* jansson allocates through these; free wipes the whole usable block. */
static void *wipe_malloc(size_t n)
{
	return malloc(n);
}

static void wipe_free(void *p)
{
	if (!p)
		return;
	ts_wipe(p, malloc_usable_size(p));
	free(p);
}

static void json_init_once(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

void ts_cf_json_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, json_init_once);
}

/* Wipes every string value of the tree. json_string_value() is const, but
 * the bytes are the document's own copy, which the cast lets us clear
 * before the document is released. */
static void json_wipe_strings(json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!j || depth > 64)
		return;
	if (json_is_string(j)) {
		ts_wipe((char *)json_string_value(j), json_string_length(j));
	} else if (json_is_object(j)) {
		json_object_foreach(j, key, v) json_wipe_strings(v, depth + 1);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) json_wipe_strings(v, depth + 1);
	}
}

static void json_wipe_decref(json_t *j)
{
	json_wipe_strings(j, 0);
	json_decref(j);
}

static inline void json_wipe_decrefp(json_t **j)
{
	if (*j)
		json_wipe_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_wipe_decrefp)

static int protocol_error(struct ts_cf_error *err, const char *fmt, ...) TS_PRINTF(2, 3);
static int protocol_error(struct ts_cf_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EBADMSG;
	err->kind = TS_CF_ERR_PROTOCOL;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Copies errors[] of the envelope into err, code and message intact.
 * Malformed entries are skipped: the status alone still reaches the
 * caller. */
static void collect_errors(json_t *root, struct ts_cf_error *err)
{
	json_t *errors = json_object_get(root, "errors"), *e;
	size_t i;

	if (!err || !json_is_array(errors))
		return;
	json_array_foreach(errors, i, e)
	{
		json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
		struct ts_cf_api_message *grown;
		char *copy;

		if (err->n_errors >= MAX_ENVELOPE_ERRORS)
			break;
		if (!json_is_integer(code) || !json_is_string(msg))
			continue;
		copy = strndup(json_string_value(msg), 1024);
		if (!copy)
			break;
		grown = realloc(err->errors, (err->n_errors + 1) * sizeof(*grown));
		if (!grown) {
			free(copy);
			break;
		}
		err->errors = grown;
		err->errors[err->n_errors].code = (long)json_integer_value(code);
		err->errors[err->n_errors].message = copy;
		err->n_errors++;
	}
}

static bool status_ok(long s)
{
	return s >= 200 && s < 300;
}

/* Loads the envelope. For a 2xx status, *ret_root owns the document and
 * *ret_result is its result object. */
static int envelope_load(const void *body, size_t len, long http_status, json_t **ret_root,
			 json_t **ret_result, struct ts_cf_error *err)
{
	json_error_t jerr;
	json_t *root, *success, *result, *errors;

	ts_cf_json_init();
	if (err)
		err->http_status = http_status;
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	/* jerr.text may quote the input: only the position is reported. */
	if (!root) {
		int line = jerr.line, column = jerr.column;

		ts_wipe(&jerr, sizeof(jerr));
		if (!status_ok(http_status))
			return ts_cf_error_set(err, TS_CF_ERR_HTTP, ts_cf_http_errno(http_status),
					       "HTTP %ld with a body that is not JSON",
					       http_status);
		return protocol_error(err, "response is not JSON (line %d, column %d)", line,
				      column);
	}
	if (!json_is_object(root)) {
		json_wipe_decref(root);
		if (!status_ok(http_status))
			return ts_cf_error_set(err, TS_CF_ERR_HTTP, ts_cf_http_errno(http_status),
					       "error response without an envelope");
		return protocol_error(err, "response is not a JSON object");
	}
	collect_errors(root, err);
	if (!status_ok(http_status)) {
		json_wipe_decref(root);
		return ts_cf_error_set(err, TS_CF_ERR_HTTP, ts_cf_http_errno(http_status),
				       "request failed");
	}
	success = json_object_get(root, "success");
	errors = json_object_get(root, "errors");
	result = json_object_get(root, "result");
	if (!json_is_boolean(success)) {
		json_wipe_decref(root);
		return protocol_error(err, "envelope without a boolean 'success'");
	}
	if (!json_is_true(success)) {
		json_wipe_decref(root);
		return protocol_error(err, "success:false with HTTP %ld", http_status);
	}
	if (errors && !json_is_array(errors)) {
		json_wipe_decref(root);
		return protocol_error(err, "envelope 'errors' is not an array");
	}
	if (!json_is_object(result)) {
		json_wipe_decref(root);
		return protocol_error(err, "envelope without a 'result' object");
	}
	*ret_root = root;
	*ret_result = result;
	return 0;
}

int ts_cf_parse_error_response(const void *body, size_t len, long http_status,
			       struct ts_cf_error *err)
{
	json_t *root = NULL, *result = NULL;
	int r = envelope_load(body, len, http_status, &root, &result, err);

	if (r < 0)
		return r;
	json_wipe_decref(root);
	/* A 2xx body is not an error response; the caller asked for one. */
	return protocol_error(err, "unexpected HTTP %ld", http_status);
}

/* Optional string member: NULL when absent or null; -EBADMSG on another type. */
static int get_opt_string(json_t *o, const char *key, const char **ret, const char *where,
			  struct ts_cf_error *err)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return protocol_error(err, "%s.%s is not a string", where, key);
	*ret = json_string_value(v);
	return 0;
}

static int get_string(json_t *o, const char *key, size_t max, const char **ret, const char *where,
		      struct ts_cf_error *err)
{
	int r = get_opt_string(o, key, ret, where, err);

	if (r < 0)
		return r;
	if (!*ret)
		return protocol_error(err, "%s.%s is missing", where, key);
	if (max && strlen(*ret) > max)
		return protocol_error(err, "%s.%s is longer than %zu", where, key, max);
	return 0;
}

static int get_opt_bool(json_t *o, const char *key, bool *ret, const char *where,
			struct ts_cf_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return protocol_error(err, "%s.%s is not a boolean", where, key);
	*ret = json_is_true(v);
	return 0;
}

/* ret_unit (NULL: not wanted): the unit of the text's last digit, for
 * comparing times written at other precisions (core/timeutil.h). */
static int get_opt_time(json_t *o, const char *key, bool *ret_has, ts_usec_t *ret,
			ts_usec_t *ret_unit, const char *where, struct ts_cf_error *err)
{
	const char *s;
	int r = get_opt_string(o, key, &s, where, err);

	if (r < 0)
		return r;
	if (!s || !*s)
		return 0;
	if (ts_time_parse_rfc3339_unit(s, ret, ret_unit) < 0)
		return protocol_error(err, "%s.%s is not an RFC 3339 time", where, key);
	*ret_has = true;
	return 0;
}

static int get_opt_object(json_t *o, const char *key, json_t **ret, const char *where,
			  struct ts_cf_error *err)
{
	json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return protocol_error(err, "%s.%s is not an object", where, key);
	*ret = v;
	return 0;
}

static int copy_word(char *dst, size_t size, const char *s, const char *where, const char *key,
		     struct ts_cf_error *err)
{
	if (s && ts_strlcpy(dst, s, size) < 0)
		return protocol_error(err, "%s.%s is too long", where, key);
	return 0;
}

static int parse_health_check(json_t *hc, struct ts_cf_health_check *ret, const char *where,
			      struct ts_cf_error *err)
{
	const char *s;
	json_t *target;
	int r;

	ret->present = true;
	ret->enabled = true; /* the schema's default */
	if ((r = get_opt_bool(hc, "enabled", &ret->enabled, where, err)) < 0)
		return r;
	if ((r = get_opt_string(hc, "rate", &s, where, err)) < 0 ||
	    (r = copy_word(ret->rate, sizeof(ret->rate), s, where, "rate", err)) < 0)
		return r;
	if ((r = get_opt_string(hc, "type", &s, where, err)) < 0 ||
	    (r = copy_word(ret->type, sizeof(ret->type), s, where, "type", err)) < 0)
		return r;
	if ((r = get_opt_string(hc, "direction", &s, where, err)) < 0 ||
	    (r = copy_word(ret->direction, sizeof(ret->direction), s, where, "direction", err)) < 0)
		return r;
	/* target: a string, or {effective, saved} with x-magic-new-hc-target.
	 * It need not be an address; one that is not stays unset. */
	target = json_object_get(hc, "target");
	s = NULL;
	if (json_is_string(target)) {
		s = json_string_value(target);
	} else if (json_is_object(target)) {
		json_t *eff = json_object_get(target, "effective");
		json_t *saved = json_object_get(target, "saved");

		if (json_is_string(eff) && *json_string_value(eff))
			s = json_string_value(eff);
		else if (json_is_string(saved))
			s = json_string_value(saved);
	} else if (target && !json_is_null(target)) {
		return protocol_error(err, "%s.target is neither a string nor an object", where);
	}
	if (s && *s)
		(void)ts_ip_parse(s, &ret->target);
	return 0;
}

/* *ret: a copy of s, or NULL when s is. */
static int dup_opt(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return s && !*ret ? -ENOMEM : 0;
}

/* borrow: the strings of *ret point into o's tree instead of being copies
 * (the list's parser moves them into one block before the tree goes). */
static int parse_tunnel(json_t *o, struct ts_cf_tunnel *ret, bool borrow, const char *where,
			struct ts_cf_error *err)
{
	struct ts_cf_tunnel t = { 0 };
	const char *s, *name, *fqdn_id = NULL, *description;
	json_t *sub;
	int r;

	if (!json_is_object(o))
		return protocol_error(err, "%s is not an object", where);
	if ((r = get_string(o, "id", TS_CF_ID_LEN, &s, where, err)) < 0)
		return r;
	if (!ts_cf_id_valid(s))
		return protocol_error(err, "%s.id is not an identifier", where);
	strcpy(t.id, s);
	if ((r = get_string(o, "name", TS_CF_NAME_MAX, &name, where, err)) < 0)
		return r;
	if ((r = get_string(o, "cloudflare_endpoint", 0, &s, where, err)) < 0)
		return r;
	if (ts_ip_parse(s, &t.cloudflare_endpoint) < 0)
		return protocol_error(err, "%s.cloudflare_endpoint is not an address", where);
	if ((r = get_string(o, "interface_address", 0, &s, where, err)) < 0)
		return r;
	if (ts_prefix_parse(s, &t.interface_address) < 0)
		return protocol_error(err, "%s.interface_address is not a prefix", where);
	if ((r = get_opt_string(o, "customer_endpoint", &s, where, err)) < 0)
		return r;
	if (s && *s && ts_ip_parse(s, &t.customer_endpoint) < 0)
		return protocol_error(err, "%s.customer_endpoint is not an address", where);
	if ((r = get_opt_string(o, "interface_address6", &s, where, err)) < 0)
		return r;
	if (s && *s && ts_prefix_parse(s, &t.interface_address6) < 0)
		return protocol_error(err, "%s.interface_address6 is not a prefix", where);
	if ((r = get_opt_bool(o, "replay_protection", &t.replay_protection, where, err)) < 0 ||
	    (r = get_opt_bool(o, "allow_null_cipher", &t.allow_null_cipher, where, err)) < 0)
		return r;
	if ((r = get_opt_time(o, "created_on", &t.has_created_on, &t.created_on, NULL, where,
			      err)) < 0 ||
	    (r = get_opt_time(o, "modified_on", &t.has_modified_on, &t.modified_on, NULL, where,
			      err)) < 0)
		return r;
	if ((r = get_opt_object(o, "psk_metadata", &sub, where, err)) < 0)
		return r;
	if (sub && (r = get_opt_time(sub, "last_generated_on", &t.has_psk_generated_on,
				     &t.psk_generated_on, &t.psk_generated_unit, where, err)) < 0)
		return r;
	if ((r = get_opt_object(o, "custom_remote_identities", &sub, where, err)) < 0)
		return r;
	if (sub && (r = get_opt_string(sub, "fqdn_id", &fqdn_id, where, err)) < 0)
		return r;
	if (fqdn_id && strlen(fqdn_id) > TS_CF_FQDN_MAX)
		return protocol_error(err, "%s.fqdn_id is too long", where);
	if (fqdn_id && !*fqdn_id)
		fqdn_id = NULL; /* "" is no identity */
	if ((r = get_opt_object(o, "health_check", &sub, where, err)) < 0)
		return r;
	if (sub && (r = parse_health_check(sub, &t.health_check, where, err)) < 0)
		return r;
	if ((r = get_opt_string(o, "description", &description, where, err)) < 0)
		return r;
	if (borrow) {
		t.name = (char *)name;
		t.fqdn_id = (char *)fqdn_id;
		t.description = (char *)description;
		*ret = t;
		return 0;
	}
	/* Last: the only allocations, so that no error path above leaks. */
	if (dup_opt(name, &t.name) < 0 || dup_opt(fqdn_id, &t.fqdn_id) < 0 ||
	    dup_opt(description, &t.description) < 0) {
		ts_cf_tunnel_done(&t);
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	}
	*ret = t;
	return 0;
}

/* *p: a copy in the block at *at (advanced), or NULL when *p is. */
static void pool_one(char **p, char **at)
{
	size_t n;

	if (!*p)
		return;
	n = strlen(*p) + 1;
	memcpy(*at, *p, n);
	*p = *at;
	*at += n;
}

/* Moves the members' borrowed strings into one block the list owns. */
static int pool_strings(struct ts_cf_tunnel_list *l)
{
	size_t total = 1;
	char *at;

	for (size_t i = 0; i < l->n_tunnels; i++) {
		const struct ts_cf_tunnel *t = &l->tunnels[i];

		total += (t->name ? strlen(t->name) + 1 : 0) +
			 (t->description ? strlen(t->description) + 1 : 0) +
			 (t->fqdn_id ? strlen(t->fqdn_id) + 1 : 0);
	}
	l->strings = malloc(total);
	if (!l->strings)
		return -ENOMEM;
	at = l->strings;
	for (size_t i = 0; i < l->n_tunnels; i++) {
		struct ts_cf_tunnel *t = &l->tunnels[i];

		pool_one(&t->name, &at);
		pool_one(&t->description, &at);
		pool_one(&t->fqdn_id, &at);
	}
	return 0;
}

int ts_cf_parse_tunnel_list(const void *body, size_t len, long http_status,
			    struct ts_cf_tunnel_list *ret_list, struct ts_cf_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct ts_cf_tunnel_list list = { 0 };
	json_t *result = NULL, *arr, *item;
	size_t i;
	int r;

	r = envelope_load(body, len, http_status, &root, &result, err);
	if (r < 0)
		return r;
	arr = json_object_get(result, "ipsec_tunnels");
	if (!json_is_array(arr))
		return protocol_error(err, "result.ipsec_tunnels is not an array");
	if (json_array_size(arr) > 0) {
		list.tunnels = calloc(json_array_size(arr), sizeof(*list.tunnels));
		if (!list.tunnels)
			return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	}
	json_array_foreach(arr, i, item)
	{
		char where[48];

		snprintf(where, sizeof(where), "ipsec_tunnels[%zu]", i);
		r = parse_tunnel(item, &list.tunnels[i], true, where, err);
		if (r < 0) {
			free(list.tunnels); /* its strings are the tree's */
			return r;
		}
		list.n_tunnels++;
	}
	if (pool_strings(&list) < 0) {
		free(list.tunnels);
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	}
	/* Sorted by id once: duplicates are neighbours (comparing every pair
	 * was O(tunnels²)), and the index makes look-ups by id fast. */
	if (ts_cf_tunnel_list_index(&list) < 0) {
		ts_cf_tunnel_list_done(&list);
		return -ENOMEM;
	}
	for (size_t k = 1; k < list.n_tunnels; k++)
		if (ts_streq(list.by_id[k - 1]->id, list.by_id[k]->id)) {
			ts_cf_tunnel_list_done(&list);
			return protocol_error(err, "tunnel id listed twice");
		}
	*ret_list = list;
	return 0;
}

/* One tunnel object under result.MEMBER of an answer's envelope. */
static int parse_tunnel_member(const void *body, size_t len, long http_status, const char *member,
			       struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	json_t *result = NULL;
	char where[64];
	int r;

	r = envelope_load(body, len, http_status, &root, &result, err);
	if (r < 0)
		return r;
	snprintf(where, sizeof(where), "result.%s", member);
	return parse_tunnel(json_object_get(result, member), ret_tunnel, false, where, err);
}

int ts_cf_parse_tunnel_single(const void *body, size_t len, long http_status,
			      struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err)
{
	return parse_tunnel_member(body, len, http_status, "ipsec_tunnel", ret_tunnel, err);
}

/* Takes a PSK out of a JSON string into a secret; the JSON copy is wiped. */
static int take_psk(json_t *v, struct ts_secret **ret, const char *where, struct ts_cf_error *err)
{
	size_t n;
	int r;

	if (!json_is_string(v))
		return protocol_error(err, "%s.psk is missing or not a string", where);
	n = json_string_length(v);
	if (n == 0 || n > TS_SECRET_MAX || memchr(json_string_value(v), '\0', n))
		return protocol_error(err, "%s.psk is empty, too long or has a NUL", where);
	r = ts_secret_from_bytes(json_string_value(v), n, ret);
	ts_wipe((char *)json_string_value(v), n);
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, r, "cannot store the key");
	return 0;
}

static int parse_applied(json_t *o, const struct ts_cf_psk_entry *entry,
			 struct ts_cf_psk_outcome *out, struct ts_cf_error *err)
{
	_cleanup_secret_ struct ts_secret *echo = NULL;
	const char *where = "successfully_applied_psks[]";
	const char *s;
	json_t *meta;
	int r;

	if (!json_is_object(o))
		return protocol_error(err, "%s is not an object", where);
	if ((r = get_string(o, "ipsec_tunnel_id", TS_CF_ID_LEN, &s, where, err)) < 0)
		return r;
	if (!ts_streq(s, entry->tunnel_id))
		return protocol_error(err, "%s.ipsec_tunnel_id differs from its key", where);
	if ((r = get_string(o, "ipsec_id", TS_CF_IPSEC_ID_MAX, &s, where, err)) < 0)
		return r;
	strcpy(out->ipsec_id, s);
	if ((r = take_psk(json_object_get(o, "psk"), &echo, where, err)) < 0)
		return r;
	/* The echo must be the key we sent: anything else means the edge holds
	 * a key we do not have. */
	if (!ts_secret_equal(echo, entry->psk))
		return protocol_error(err, "%s.psk is not the key that was sent", where);
	if ((r = get_opt_object(o, "psk_metadata", &meta, where, err)) < 0)
		return r;
	if (!meta)
		return protocol_error(err, "%s.psk_metadata is missing", where);
	return get_opt_time(meta, "last_generated_on", &out->has_last_generated_on,
			    &out->last_generated_on, &out->last_generated_unit, where, err);
}

int ts_cf_parse_psk_set(const void *body, size_t len, long http_status,
			const struct ts_cf_psk_entry *entries, size_t n_entries,
			struct ts_cf_psk_set_result *ret_result, struct ts_cf_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct ts_cf_psk_set_result res = { 0 };
	json_t *result = NULL, *applied, *unapplied;
	int r;

	r = envelope_load(body, len, http_status, &root, &result, err);
	if (r < 0)
		return r;
	if ((r = get_opt_object(result, "successfully_applied_psks", &applied, "result", err)) <
		    0 ||
	    (r = get_opt_object(result, "unapplied_psks", &unapplied, "result", err)) < 0)
		return r;
	if (n_entries) {
		res.outcomes = calloc(n_entries, sizeof(*res.outcomes));
		if (!res.outcomes)
			return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n_entries; i++) {
		struct ts_cf_psk_outcome *out = &res.outcomes[i];
		json_t *a = json_object_get(applied, entries[i].tunnel_id);
		json_t *u = json_object_get(unapplied, entries[i].tunnel_id);

		res.n_outcomes++;
		if (ts_strlcpy(out->tunnel_id, entries[i].tunnel_id, sizeof(out->tunnel_id)) < 0) {
			r = protocol_error(err, "tunnel id too long");
			goto fail;
		}
		if (a && u) {
			r = protocol_error(err, "tunnel both applied and unapplied");
			goto fail;
		}
		if (a) {
			out->status = TS_CF_PSK_APPLIED;
			r = parse_applied(a, &entries[i], out, err);
			if (r < 0)
				goto fail;
			res.n_applied++;
		} else if (u) {
			if (!json_is_string(u)) {
				r = protocol_error(err, "unapplied_psks[] is not a string");
				goto fail;
			}
			out->status = TS_CF_PSK_UNAPPLIED;
			out->reason = strndup(json_string_value(u), 1024);
			if (!out->reason) {
				r = ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM,
						    "out of memory");
				goto fail;
			}
		} else {
			out->status = TS_CF_PSK_MISSING;
		}
	}
	*ret_result = res;
	return 0;
fail:
	ts_cf_psk_set_result_done(&res);
	return r;
}

int ts_cf_parse_psk_generate(const void *body, size_t len, long http_status, const char *account_id,
			     const char *tunnel_id, bool validate_only,
			     struct ts_cf_psk_generated *ret_generated, struct ts_cf_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	_cleanup_secret_ struct ts_secret *psk = NULL;
	struct ts_cf_psk_generated g = { 0 };
	json_t *result = NULL, *meta;
	const char *s;
	int r;

	r = envelope_load(body, len, http_status, &root, &result, err);
	if (r < 0)
		return r;
	if (ts_strlcpy(g.tunnel_id, tunnel_id, sizeof(g.tunnel_id)) < 0)
		return protocol_error(err, "tunnel id too long");
	if ((r = get_opt_string(result, "ipsec_tunnel_id", &s, "result", err)) < 0)
		return r;
	if (s && !ts_streq(s, tunnel_id))
		return protocol_error(err, "result.ipsec_tunnel_id is another tunnel");
	if ((r = get_opt_string(result, "ipsec_id", &s, "result", err)) < 0)
		return r;
	if (s) {
		if (ts_strlcpy(g.ipsec_id, s, sizeof(g.ipsec_id)) < 0)
			return protocol_error(err, "result.ipsec_id is too long");
	} else if ((size_t)snprintf(g.ipsec_id, sizeof(g.ipsec_id), "%s_%s", account_id,
				    tunnel_id) >= sizeof(g.ipsec_id)) {
		return protocol_error(err, "ipsec_id is too long");
	}
	if ((r = get_opt_object(result, "psk_metadata", &meta, "result", err)) < 0)
		return r;
	if (meta && (r = get_opt_time(meta, "last_generated_on", &g.has_last_generated_on,
				      &g.last_generated_on, &g.last_generated_unit,
				      "result.psk_metadata", err)) < 0)
		return r;
	/* validate_only: any key in the answer was never applied; it is wiped
	 * with the document and not handed out. */
	if (!validate_only) {
		if ((r = take_psk(json_object_get(result, "psk"), &psk, "result", err)) < 0)
			return r;
		g.psk = TS_TAKE_PTR(psk);
	}
	*ret_generated = g;
	return 0;
}

/* The keys of magic_ipsec_tunnel_add_single_request: what the update call
 * may carry. Read-only ones (id, created_on, modified_on, psk_metadata,
 * allow_null_cipher, bgp_status, ...) are left out; psk is never sent, so
 * the key is not touched. */
static const char *const update_keys[] = {
	"automatic_return_routing",
	"bgp",
	"cloudflare_endpoint",
	"custom_remote_identities",
	"customer_endpoint",
	"description",
	"health_check",
	"interface_address",
	"interface_address6",
	"name",
	"replay_protection",
};

static int set_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, json_string(v)) == 0 ? 0 : -ENOMEM;
}

int ts_cf_build_tunnel_update(const void *body, size_t len, long http_status,
			      const struct ts_tunnel *t, char **ret_body, size_t *ret_len,
			      struct ts_cf_error *err)
{
	_cleanup_json_ json_t *root = NULL, *req = NULL;
	json_t *result = NULL, *cur, *hc;
	struct ts_cf_tunnel check = { 0 };
	char buf[TS_PREFIX_STRLEN];
	char *text;
	int r;

	r = envelope_load(body, len, http_status, &root, &result, err);
	if (r < 0)
		return r;
	cur = json_object_get(result, "ipsec_tunnel");
	/* The answer must be a tunnel we understand before anything is built
	 * on it. */
	r = parse_tunnel(cur, &check, false, "result.ipsec_tunnel", err);
	if (r < 0)
		return r;
	ts_cf_tunnel_done(&check);
	req = json_object();
	if (!req)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	/* Everything Cloudflare holds that the request may carry, as it is:
	 * a property the config does not declare keeps its value, whether the
	 * call replaces or merges. */
	for (size_t i = 0; i < TS_ARRAY_SIZE(update_keys); i++) {
		json_t *v = json_object_get(cur, update_keys[i]);

		if (v && !json_is_null(v) && json_object_set(req, update_keys[i], v) < 0)
			return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	}
	r = 0;
	if (ts_ip_is_set(&t->customer_endpoint))
		r = set_str(req, "customer_endpoint",
			    ts_ip_format(&t->customer_endpoint, buf, sizeof(buf)));
	if (r >= 0)
		r = set_str(req, "cloudflare_endpoint",
			    ts_ip_format(&t->cloudflare_endpoint, buf, sizeof(buf)));
	if (r >= 0)
		r = set_str(req, "interface_address",
			    ts_prefix_format(&t->interface_address, buf, sizeof(buf)));
	if (r >= 0 && ts_ip_is_set(&t->interface_address6.ip))
		r = set_str(req, "interface_address6",
			    ts_prefix_format(&t->interface_address6, buf, sizeof(buf)));
	if (r >= 0 && t->cf.description)
		r = set_str(req, "description", t->cf.description);
	if (r >= 0 && t->cf.has_replay_protection)
		r = json_object_set_new(req, "replay_protection",
					json_boolean(t->cf.replay_protection)) == 0
			    ? 0
			    : -ENOMEM;
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, r, "out of memory");
	/* The health check: a copy (the original belongs to root) with the
	 * declared fields; the target in the string form this request uses
	 * (no x-magic-new-hc-target header). */
	hc = json_object_get(req, "health_check");
	hc = json_is_object(hc) ? json_deep_copy(hc) : json_object();
	if (!hc || json_object_set_new(req, "health_check", hc) < 0)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	{
		json_t *target = json_object_get(hc, "target");

		if (json_is_object(target)) {
			json_t *saved = json_object_get(target, "saved");

			if (json_is_string(saved))
				r = set_str(hc, "target", json_string_value(saved));
			else
				r = json_object_del(hc, "target") == 0 ? 0 : -ENOMEM;
		}
	}
	if (r >= 0 && t->cf.has_hc_enabled)
		r = json_object_set_new(hc, "enabled", json_boolean(t->cf.hc_enabled)) == 0
			    ? 0
			    : -ENOMEM;
	if (r >= 0 && t->cf.hc_rate[0])
		r = set_str(hc, "rate", t->cf.hc_rate);
	if (r >= 0 && t->cf.hc_type[0])
		r = set_str(hc, "type", t->cf.hc_type);
	if (r >= 0 && t->cf.hc_direction[0])
		r = set_str(hc, "direction", t->cf.hc_direction);
	if (r >= 0 && ts_ip_is_set(&t->cf.hc_target))
		r = set_str(hc, "target", ts_ip_format(&t->cf.hc_target, buf, sizeof(buf)));
	if (r >= 0 && json_object_size(hc) == 0)
		r = json_object_del(req, "health_check") == 0 ? 0 : -ENOMEM;
	if (r < 0)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, r, "out of memory");
	text = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return ts_cf_error_set(err, TS_CF_ERR_PROTOCOL, -ENOMEM, "out of memory");
	*ret_len = strlen(text);
	*ret_body = text;
	return 0;
}

int ts_cf_parse_tunnel_modified(const void *body, size_t len, long http_status,
				struct ts_cf_tunnel *ret_tunnel, struct ts_cf_error *err)
{
	return parse_tunnel_member(body, len, http_status, "modified_ipsec_tunnel", ret_tunnel,
				   err);
}
