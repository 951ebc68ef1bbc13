/* Unit tests of the Cloudflare response parsers on recorded-shape bodies
 * (the fuzz corpus in tests/fuzz/corpus/cf_response/): what is accepted,
 * what each field becomes, and which broken bodies are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cloudflare/parse.h"
#include "core/fileio.h"
#include "core/secret.h"
#include "core/util.h"

#define CORPUS TS_TEST_SOURCE_DIR "/fuzz/corpus/cf_response/"
#define T1     "c4a7362d577a6c3019a474fd6f485821"
#define T2     "d4a7362d577a6c3019a474fd6f485822"
#define ACC    "023e105f4ecef8ad9ca31a8372d0c353"

static char *load(const char *name, size_t *len)
{
	char *data;

	assert_int_equal(ts_file_read_all(name, 1 << 20, &data, len), 0);
	return data;
}

static void test_list(void **state)
{
	size_t len;
	_cleanup_free_ char *body = load(CORPUS "list.json", &len);
	struct ts_cf_tunnel_list l = { 0 };
	struct ts_cf_error err = { 0 };
	const struct ts_cf_tunnel *a;
	ts_usec_t t;

	assert_int_equal(ts_cf_parse_tunnel_list(body, len, 200, &l, &err), 0);
	assert_int_equal(l.n_tunnels, 2);
	a = &l.tunnels[0];
	assert_string_equal(a->id, T1);
	assert_true(a->has_psk_generated_on);
	/* +02:00 offset honoured. */
	assert_int_equal(ts_time_parse_rfc3339("2017-06-14T03:20:00Z", &t), 0);
	assert_int_equal(a->psk_generated_on, t);
	assert_int_equal(a->psk_generated_unit, TS_USEC_PER_SEC); /* whole seconds */
	assert_true(a->has_modified_on);
	assert_int_equal(a->modified_on % TS_USEC_PER_SEC, 123456);
	assert_true(ts_ip_is_set(&a->health_check.target)); /* object form, effective */
	assert_string_equal(a->health_check.direction, "unidirectional");
	assert_string_equal(a->name, "edge-a");
	assert_string_equal(a->fqdn_id,
			    "a.023e105f4ecef8ad9ca31a8372d0c353.custom.ipsec.cloudflare.com");
	assert_false(l.tunnels[1].has_psk_generated_on);
	assert_false(l.tunnels[1].health_check.present);
	assert_string_equal(l.tunnels[1].name, "edge-b");
	assert_null(l.tunnels[1].fqdn_id); /* no custom_remote_identities */
	ts_cf_tunnel_list_done(&l);
	ts_cf_tunnel_list_done(&l); /* idempotent */

	/* The same body with an error status is an HTTP error, not a list. */
	assert_int_equal(ts_cf_parse_tunnel_list(body, len, 500, &l, &err), -EREMOTEIO);
	assert_int_equal(err.kind, TS_CF_ERR_HTTP);
	ts_cf_error_done(&err);
}

static bool in_block(const struct ts_cf_tunnel_list *l, const char *p, size_t size)
{
	return p >= l->strings && p < l->strings + size;
}

/* A parsed list keeps its members' strings in one block it owns (small
 * strings allocated while the JSON tree was live pinned its freed pages:
 * README "Daemon idle"); a list refused half-way frees what it took. */
static void test_list_strings_one_block(void **state)
{
	static const char good[] =
		"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"ipsec_tunnels\":["
		"{\"id\":\"" T1 "\",\"name\":\"edge-a\",\"cloudflare_endpoint\":\"203.0.113.1\","
		"\"interface_address\":\"10.0.0.0/31\",\"description\":\"first\","
		"\"custom_remote_identities\":{\"fqdn_id\":\"a.example\"}},"
		"{\"id\":\"" T2 "\",\"name\":\"edge-b\",\"cloudflare_endpoint\":\"203.0.113.2\","
		"\"interface_address\":\"10.0.0.2/31\",\"description\":\"\"}]}}";
	static const char bad[] =
		"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"ipsec_tunnels\":["
		"{\"id\":\"" T1 "\",\"name\":\"edge-a\",\"cloudflare_endpoint\":\"203.0.113.1\","
		"\"interface_address\":\"10.0.0.0/31\",\"description\":\"first\"},"
		"{\"id\":\"" T2 "\",\"name\":\"edge-b\",\"cloudflare_endpoint\":\"nowhere\","
		"\"interface_address\":\"10.0.0.2/31\"}]}}";
	/* "edge-a" "first" "a.example" "edge-b" "" and the block's spare byte */
	const size_t size = 7 + 6 + 10 + 7 + 1 + 1;
	struct ts_cf_tunnel_list l = { 0 };
	struct ts_cf_error err = { 0 };

	assert_int_equal(ts_cf_parse_tunnel_list(good, strlen(good), 200, &l, &err), 0);
	assert_int_equal(l.n_tunnels, 2);
	assert_non_null(l.strings);
	assert_string_equal(l.tunnels[0].name, "edge-a");
	assert_string_equal(l.tunnels[0].description, "first");
	assert_string_equal(l.tunnels[0].fqdn_id, "a.example");
	assert_string_equal(l.tunnels[1].name, "edge-b");
	assert_string_equal(l.tunnels[1].description, "");
	assert_null(l.tunnels[1].fqdn_id);
	assert_true(in_block(&l, l.tunnels[0].name, size));
	assert_true(in_block(&l, l.tunnels[0].description, size));
	assert_true(in_block(&l, l.tunnels[0].fqdn_id, size));
	assert_true(in_block(&l, l.tunnels[1].name, size));
	assert_true(in_block(&l, l.tunnels[1].description, size));
	ts_cf_tunnel_list_done(&l);
	assert_null(l.strings);

	assert_int_equal(ts_cf_parse_tunnel_list(bad, strlen(bad), 200, &l, &err), -EBADMSG);
	assert_non_null(strstr(err.detail, "ipsec_tunnels[1].cloudflare_endpoint"));
	assert_null(l.tunnels);
	ts_cf_error_done(&err);
}

/* custom_remote_identities.fqdn_id: "" is none (NULL), as absent; up to
 * TS_CF_FQDN_MAX characters are kept, a longer one is refused. */
static void test_fqdn_id(void **state)
{
	static const char head[] =
		"{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"ipsec_tunnel\":"
		"{\"id\":\"" T1 "\",\"name\":\"edge-a\",\"cloudflare_endpoint\":\"203.0.113.1\","
		"\"interface_address\":\"10.0.0.0/31\",\"custom_remote_identities\":{\"fqdn_id\":\"";
	static const size_t lens[] = { 0, TS_CF_FQDN_MAX, TS_CF_FQDN_MAX + 1 };

	for (size_t i = 0; i < TS_ARRAY_SIZE(lens); i++) {
		char body[1024], fqdn[TS_CF_FQDN_MAX + 2];
		struct ts_cf_tunnel t = { 0 };
		struct ts_cf_error err = { 0 };
		int r;

		memset(fqdn, 'a', lens[i]);
		fqdn[lens[i]] = '\0';
		snprintf(body, sizeof(body), "%s%s\"}}}}", head, fqdn);
		r = ts_cf_parse_tunnel_single(body, strlen(body), 200, &t, &err);
		if (lens[i] > TS_CF_FQDN_MAX) {
			assert_int_equal(r, -EBADMSG);
			assert_non_null(strstr(err.detail, "fqdn_id is too long"));
		} else {
			assert_int_equal(r, 0);
			assert_string_equal(t.name, "edge-a");
			if (lens[i])
				assert_string_equal(t.fqdn_id, fqdn);
			else
				assert_null(t.fqdn_id);
		}
		ts_cf_tunnel_done(&t);
		ts_cf_error_done(&err);
	}
}

static void test_refused(void **state)
{
	static const struct {
		const char *file;
		long status;
		int want;
		enum ts_cf_error_kind kind;
	} cases[] = {
		{ "wrong_types.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "duplicate_ids.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "duplicate_keys.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "truncated.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "html.txt", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "empty.txt", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "nested.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "success_false.json", 200, -EBADMSG, TS_CF_ERR_PROTOCOL },
		{ "html.txt", 502, -EREMOTEIO, TS_CF_ERR_HTTP },
		{ "error_404.json", 404, -ENOENT, TS_CF_ERR_HTTP },
		{ "error_404.json", 403, -EACCES, TS_CF_ERR_HTTP },
	};

	for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
		char path[512];
		size_t len;
		char *body;
		struct ts_cf_tunnel_list l = { 0 };
		struct ts_cf_error err = { 0 };

		snprintf(path, sizeof(path), CORPUS "%s", cases[i].file);
		body = load(path, &len);
		assert_int_equal(ts_cf_parse_tunnel_list(body, len, cases[i].status, &l, &err),
				 cases[i].want);
		assert_int_equal(err.kind, cases[i].kind);
		assert_int_equal(err.http_status, cases[i].status);
		if (strcmp(cases[i].file, "error_404.json") == 0) {
			assert_int_equal(err.n_errors, 1);
			assert_int_equal(err.errors[0].code, 1032);
		}
		ts_cf_error_done(&err);
		free(body);
	}
}

static void test_psk_set(void **state)
{
	size_t len;
	_cleanup_free_ char *body = load(CORPUS "psk_set.json", &len);
	_cleanup_free_ char *bad = NULL;
	_cleanup_secret_ struct ts_secret *k1 = NULL, *k2 = NULL, *other = NULL;
	struct ts_cf_psk_set_result r = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_psk_entry e[3];

	ts_secret_from_bytes("O3bwKSjnaoCxDoUxjcq4Rk8ZKkezQUiy", 32, &k1);
	ts_secret_from_bytes("second-key-0123456789", 21, &k2);
	ts_secret_from_bytes("third-key-0123456789", 20, &other);
	e[0] = (struct ts_cf_psk_entry){ T1, k1 };
	e[1] = (struct ts_cf_psk_entry){ T2, k2 };
	e[2] = (struct ts_cf_psk_entry){ "eeee", other };
	assert_int_equal(ts_cf_parse_psk_set(body, len, 200, e, 3, &r, &err), 0);
	assert_int_equal(r.n_outcomes, 3);
	assert_int_equal(r.n_applied, 1);
	assert_int_equal(r.outcomes[0].status, TS_CF_PSK_APPLIED);
	assert_string_equal(r.outcomes[0].ipsec_id, ACC "_" T1);
	assert_true(r.outcomes[0].has_last_generated_on);
	/* "...T12:00:00.000001Z": the unit of its last digit, for comparing
	 * with a list at another precision. */
	assert_int_equal(r.outcomes[0].last_generated_unit, 1);
	assert_int_equal(r.outcomes[0].last_generated_on % TS_USEC_PER_SEC, 1);
	assert_int_equal(r.outcomes[1].status, TS_CF_PSK_UNAPPLIED);
	assert_string_equal(r.outcomes[1].reason, "tunnel is being modified");
	assert_int_equal(r.outcomes[2].status, TS_CF_PSK_MISSING);
	assert_string_equal(ts_cf_psk_status_to_string(r.outcomes[2].status), "missing");
	ts_cf_psk_set_result_done(&r);

	/* An echo of another key than the one sent is refused. */
	e[0].psk = k2;
	assert_int_equal(ts_cf_parse_psk_set(body, len, 200, e, 2, &r, &err), -EBADMSG);
	bad = load(CORPUS "psk_echo_mismatch.json", &len);
	e[0].psk = k1;
	assert_int_equal(ts_cf_parse_psk_set(bad, len, 200, e, 1, &r, &err), -EBADMSG);
	ts_cf_error_done(&err);
}

static void test_psk_generate(void **state)
{
	size_t len;
	_cleanup_free_ char *body = load(CORPUS "psk_generate.json", &len);
	_cleanup_free_ char *nul = NULL;
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };

	assert_int_equal(ts_cf_parse_psk_generate(body, len, 200, ACC, T1, false, &g, &err), 0);
	assert_non_null(g.psk);
	assert_string_equal(ts_secret_str(g.psk), "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0");
	assert_string_equal(g.ipsec_id, ACC "_" T1); /* derived: absent in the body */
	assert_true(g.has_last_generated_on);
	assert_int_equal(g.last_generated_unit, TS_USEC_PER_SEC); /* "...T12:00:00Z" */
	ts_cf_psk_generated_done(&g);
	assert_null(g.psk);

	assert_int_equal(ts_cf_parse_psk_generate(body, len, 200, ACC, T1, true, &g, &err), 0);
	assert_null(g.psk);
	ts_cf_psk_generated_done(&g);
	/* The body names another tunnel. */
	assert_int_equal(ts_cf_parse_psk_generate(body, len, 200, ACC, T2, false, &g, &err),
			 -EBADMSG);
	nul = load(CORPUS "psk_nul.json", &len);
	assert_int_equal(ts_cf_parse_psk_generate(nul, len, 200, ACC, T1, false, &g, &err),
			 -EBADMSG);
	ts_cf_error_done(&err);
}

static void test_error_format(void **state)
{
	size_t len;
	_cleanup_free_ char *body = load(CORPUS "error_404.json", &len);
	struct ts_cf_error err = { 0 };
	char buf[256];

	assert_int_equal(ts_cf_parse_error_response(body, len, 404, &err), -ENOENT);
	ts_cf_error_format(&err, buf, sizeof(buf));
	assert_string_equal(buf, "http: request failed (HTTP 404) 1032: IPsec tunnel not found");
	ts_cf_error_done(&err);
	assert_int_equal(err.n_errors, 0);
	ts_cf_error_done(NULL);
	assert_true(ts_cf_id_valid(T1));
	assert_false(ts_cf_id_valid(T1 "0"));
	assert_false(ts_cf_id_valid("a/b"));
	assert_false(ts_cf_id_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),	     cmocka_unit_test(test_list_strings_one_block),
		cmocka_unit_test(test_fqdn_id),	     cmocka_unit_test(test_refused),
		cmocka_unit_test(test_psk_set),	     cmocka_unit_test(test_psk_generate),
		cmocka_unit_test(test_error_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
