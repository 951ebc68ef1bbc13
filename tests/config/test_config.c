/* Unit tests of config/: the examples load with every value and default
 * converted; each rule of the model, broken once, is refused with file,
 * line, YANG path and plain words; directories merge or conflict; broken
 * and unreadable files; the git-sync link swap; revisions from a commit
 * link, a .git checkout and content. Each test works in its own temporary
 * directory outside any git checkout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "config/config.h"
#include "core/fileio.h"
#include "core/sha256.h"
#include "core/util.h"

#define MODELS	     TS_SOURCE_MODELS_DIR
#define EXAMPLE_JSON MODELS "/examples/gateway.json"
#define EXAMPLE_XML  MODELS "/examples/gateway.xml"
#define HASH_A	     "0123456789abcdef0123456789abcdef01234567"
#define HASH_B	     "89abcdef0123456789abcdef0123456789abcdef"

__attribute__((noinline)) static char *slurp(const char *path)
{
	char *data = NULL;

	assert_int_equal(ts_file_read_all(path, 1 << 20, &data, NULL), 0);
	return data;
}

/* text with the one occurrence of from replaced by to. */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out = NULL;

	if (!at)
		fail_msg("test data: \"%s\" not found", from);
	if (strstr(at + 1, from))
		fail_msg("test data: \"%s\" found twice", from);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
	return out;
}

/* Line of the first occurrence of marker; "2|marker": of the second. */
static unsigned line_of(const char *text, const char *marker)
{
	bool second = strncmp(marker, "2|", 2) == 0;
	const char *at = strstr(text, second ? marker + 2 : marker);
	unsigned line = 1;

	if (at && second)
		at = strstr(at + 1, marker + 2);

	if (!at)
		fail_msg("test data: marker \"%s\" not found", marker);
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = NULL;
	FILE *f;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static char *join(const char *a, const char *b)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/ts-config-test-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	*state = dir;
	return 0;
}

static int teardown_dir(void **state)
{
	char *dir = *state;

	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

static const char *host_name(void)
{
	static char host[256];

	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	return host;
}

static int load(const char *path, struct ts_desired **ret, struct ts_config_error *err)
{
	memset(err, 0, sizeof(*err));
	return ts_config_load(path, MODELS, ret, err);
}

/* The same with each tunnel's source_file/source_line set. */
static int load_sources(const char *path, struct ts_desired **ret, struct ts_config_error *err)
{
	memset(err, 0, sizeof(*err));
	return ts_config_load_flags(path, MODELS, TS_CONFIG_LOAD_SOURCES, ret, err);
}

/* Loads text as dir/name and expects it refused as described. line 0:
 * expect the line of marker in text. */
static void expect_invalid(const char *dir, const char *name, const char *text, const char *marker,
			   const char *path, const char *message)
{
	_cleanup_free_ char *file = join(dir, name);
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	char buf[2048];
	int r;

	write_text(dir, name, text);
	r = load(file, &d, &err);
	ts_config_error_format(&err, buf, sizeof(buf));
	if (r != -EINVAL)
		fail_msg("expected -EINVAL, got %d: %s", r, buf);
	assert_null(d);
	assert_non_null(err.file);
	assert_string_equal(err.file, file);
	if (marker && err.line != line_of(text, marker))
		fail_msg("line %u, expected %u (\"%s\"): %s", err.line, line_of(text, marker),
			 marker, buf);
	if (path && !ts_streq(err.path, path))
		fail_msg("path \"%s\", expected \"%s\": %s", err.path, path, buf);
	if (!err.message || !strstr(err.message, message))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, message);
	ts_config_error_done(&err);
	unlink(file);
}

#define T  "/tunnelsync:tunnelsync/tunnels/tunnel"
#define TA T "[name='ams-cf-a']"
#define TB T "[name='ams-cf-b']"

struct invalid_case {
	const char *what;
	const char *from, *to; /* up to two edits of the example */
	const char *from2, *to2;
	const char *marker; /* text on the line the error must name */
	const char *path;
	const char *message;
};

static const struct invalid_case json_cases[] = {
	{ "tunnel id not hex", "\"5f0d8e3b7a9c41e2b6d4a1c3e5f70819\"",
	  "\"5f0d8e3b7a9c41e2b6d4a1c3e5f7081Z\"", NULL, NULL, "5f0d8e3b7a9c41e2b6d4a1c3e5f7081Z",
	  TB "/id", "must be 32 lowercase hexadecimal digits" },
	{ "tunnel id short", "\"5f0d8e3b7a9c41e2b6d4a1c3e5f70819\"", "\"5f0d8e3b\"", NULL, NULL,
	  "5f0d8e3b\"", TB "/id", "32 lowercase hexadecimal" },
	{ "account id", "\"023e105f4ecef8ad9ca31a8372d0c353\"",
	  "\"023E105F4ECEF8AD9CA31A8372D0C353\"", NULL, NULL, "023E105F",
	  "/tunnelsync:tunnelsync/cloudflare/account-id", "32 lowercase hexadecimal" },
	{ "bad endpoint address", "\"198.51.100.2\"", "\"198.51.100.300\"", NULL, NULL,
	  "198.51.100.300", TB "/cloudflare-endpoint", "not a valid IP address" },
	{ "interface address not /31", "\"192.0.2.2/31\"", "\"192.0.2.2/30\"", NULL, NULL,
	  "192.0.2.2/30", TB "/interface-address", "prefix length 31" },
	{ "interface address not an address", "\"192.0.2.2/31\"", "\"192.0.2/31\"", NULL, NULL,
	  "192.0.2/31", TB "/interface-address", "prefix length 31" },
	{ "interface address6 not /127", "\"2001:db8:0:2::/127\"", "\"2001:db8:0:2::/64\"", NULL,
	  NULL, "2001:db8:0:2::/64", TB "/interface-address6", "prefix length 127" },
	{ "interface address6 garbage", "\"2001:db8:0:2::/127\"", "\"2001:db8:zz::/127\"", NULL,
	  NULL, "2001:db8:zz::/127", TB "/interface-address6", "prefix length 127" },
	{ "child lifetime too short", "\"time\": 3900", "\"time\": 1799", NULL, NULL, "1799",
	  TB "/ike/child-sa-lifetime-soft/time", "between 1800 and 28800 seconds" },
	{ "child lifetime too long", "\"time\": 3900", "\"time\": 28801", NULL, NULL, "28801",
	  TB "/ike/child-sa-lifetime-soft/time", "between 1800 and 28800 seconds" },
	{ "IKE lifetime too short", "\"rekey-time\": 28800", "\"rekey-time\": 3600", NULL, NULL,
	  "rekey-time", TA "/ike/ike-sa-lifetime-soft/rekey-time", "8 to 24 hours" },
	{ "replay window too large", "\"replay-window-size\": 0", "\"replay-window-size\": 5000",
	  NULL, NULL, "replay-window-size", TA "/ike/replay-window-size", "0 and 4096 packets" },
	{ "lifetime spread not below lifetime", "\"time\": 3900\n            }",
	  "\"time\": 1800\n            }, \"lifetime-spread\": 1800", NULL, NULL, "lifetime-spread",
	  TB "/ike/lifetime-spread", "shorter than the CHILD SA lifetime" },
	{ "psk file missing for source file",
	  "\"source\": \"random\",\n            \"max-age\": 7776000,\n            \"rotate",
	  "\"source\": \"file\",\n            \"max-age\": 7776000,\n            \"rotate", NULL,
	  NULL, "\"psk\": {", TA "/psk/file", "\"file\" is mandatory here but missing" },
	{ "psk file relative", "\"source\": \"random\",\n            \"max-age\": 7776000\n",
	  "\"source\": \"file\", \"file\": \"keys/b.psk\",\n            \"max-age\": 7776000\n",
	  NULL, NULL, "keys/b.psk", TB "/psk/file", "absolute path" },
	{ "psk file with source random",
	  "\"source\": \"random\",\n            \"max-age\": 7776000\n",
	  "\"source\": \"random\", \"file\": \"/etc/b.psk\",\n            \"max-age\": 7776000\n",
	  NULL, NULL, "/etc/b.psk", TB "/psk/file", "not allowed here" },
	{ "psk max age too small", "\"max-age\": 7776000\n", "\"max-age\": 60\n", NULL, NULL,
	  "\"max-age\": 60", TB "/psk/max-age", "at least 3600 seconds" },
	{ "duplicate tunnel id", "\"5f0d8e3b7a9c41e2b6d4a1c3e5f70819\"",
	  "\"c4a7362d577a6c3019a474fd6f485821\"", NULL, NULL, "2|c4a7362d577a6c3019a474fd6f485821",
	  TB "/id", "id must be unique, but tunnel[name='ams-cf-a'] has the same value" },
	{ "duplicate if-id", "\"if-id\": 102", "\"if-id\": 101", NULL, NULL, "2|\"if-id\": 101",
	  TB "/route-based/if-id", "if-id must be unique" },
	{ "duplicate interface address", "\"192.0.2.2/31\"", "\"192.0.2.0/31\"", NULL, NULL,
	  "2|\"192.0.2.0/31\"", TB "/interface-address", "interface-address must be unique" },
	{ "same /31", "\"192.0.2.2/31\"", "\"192.0.2.1/31\"", NULL, NULL, "192.0.2.1/31",
	  TB "/interface-address", "same /31 as tunnel \"ams-cf-a\"" },
	{ "duplicate tunnel name", "\"name\": \"ams-cf-b\"", "\"name\": \"ams-cf-a\"", NULL, NULL,
	  NULL, TA, "a \"tunnel\" with this key is given twice" },
	{ "unknown leaf", "\"replay-window-size\": 0", "\"replay-window-size\": 0, \"bogus\": 1",
	  NULL, NULL, "bogus", TA "/ike/bogus", "unknown \"bogus\"" },
	{ "unknown top-level member", "\"cloudflare\": {", "\"clouflare\": {", NULL, NULL,
	  "clouflare", NULL, "clouflare" },
	{ "ipv4 identity without customer endpoint",
	  "\"local-identity\": \"fqdn\",\n            \"child",
	  "\"local-identity\": \"ipv4\",\n            \"child",
	  "\"customer-endpoint\": \"203.0.113.10\",\n          \"cloudflare-endpoint\": \"198.51.100.2\"",
	  "\"cloudflare-endpoint\": \"198.51.100.2\"", "\"local-identity\": \"ipv4\"",
	  TB "/ike/local-identity", "needs an IPv4 customer-endpoint" },
	{ "ipv4 identity with the same endpoint pair",
	  "\"local-identity\": \"fqdn\",\n            \"child",
	  "\"local-identity\": \"ipv4\",\n            \"child", "\"198.51.100.2\"",
	  "\"198.51.100.1\"", "\"local-identity\": \"ipv4\"", TB "/ike/local-identity",
	  "unique pair of endpoints" },
	{ "address families differ",
	  "\"customer-endpoint\": \"203.0.113.10\",\n          \"cloudflare-endpoint\": \"198.51.100.2\"",
	  "\"customer-endpoint\": \"2001:db8::10\",\n          \"cloudflare-endpoint\": \"198.51.100.2\"",
	  NULL, NULL, "198.51.100.2", TB "/cloudflare-endpoint", "same address family" },
	{ "IKE cipher Cloudflare refuses", "\"aes-256-gcm-16\"],\n              \"prf",
	  "\"aes-128-cbc\"],\n              \"prf", NULL, NULL, "aes-128-cbc",
	  TA "/ike/ike-sa/encryption-algorithm",
	  "choose from: aes-128-gcm-16, aes-256-gcm-16, aes-256-cbc" },
	{ "DH group Cloudflare refuses", "\"dh-group\": [\"ecp-384\"]",
	  "\"dh-group\": [\"modp-1024\"]", NULL, NULL, "modp-1024", TA "/ike/ike-sa/dh-group",
	  "\"modp-1024\" is not allowed" },
	{ "route-based without if-id or mark", "\"if-id\": 102", "", NULL, NULL, NULL,
	  TB "/route-based", "needs an if-id, a mark, or both" },
	{ "mark-mask without mark", "\"if-id\": 102", "\"if-id\": 102, \"mark-mask\": 255", NULL,
	  NULL, "mark-mask", TB "/route-based/mark-mask", "not allowed here" },
	{ "same mark without if-id", "\"if-id\": 101", "\"mark\": 7", "\"if-id\": 102",
	  "\"mark\": 7, \"mark-mask\": 15", "\"mark\": 7, \"mark-mask\": 15",
	  TB "/route-based/mark", "each tunnel needs its own mark" },
	{ "neither route- nor policy-based",
	  "\"route-based\": {\n            \"if-id\": 102\n          },", "", NULL, NULL,
	  "\"name\": \"ams-cf-b\"", TB "/mode", "\"route-based\" or \"policy-based\"" },
	{ "both route- and policy-based", "\"if-id\": 102\n          },",
	  "\"if-id\": 102\n          }, \"policy-based\": {\"traffic-selector\": [{\"local-prefix\": \"10.1.0.0/16\", \"remote-prefix\": \"0.0.0.0/0\"}]},",
	  NULL, NULL, NULL, TB "/mode", "exclude each other" },
	{ "policy-based without selectors",
	  "\"route-based\": {\n            \"if-id\": 102\n          },", "\"policy-based\": {},",
	  NULL, NULL, "\"policy-based\": {}", TB "/policy-based/traffic-selector",
	  "at least one \"traffic-selector\"" },
	{ "selector families differ",
	  "\"route-based\": {\n            \"if-id\": 102\n          },",
	  "\"policy-based\": {\"traffic-selector\": [{\"local-prefix\": \"10.1.0.0/16\", \"remote-prefix\": \"2001:db8::/32\"}]},",
	  NULL, NULL, NULL,
	  TB
	  "/policy-based/traffic-selector[local-prefix='10.1.0.0/16'][remote-prefix='2001:db8::/32']/remote-prefix",
	  "same address family" },
	{ "plain http to a remote API", "\"request-budget\": 600",
	  "\"request-budget\": 600, \"api-base-url\": \"http://api.example.com/client/v4\"", NULL,
	  NULL, "api-base-url", "/tunnelsync:tunnelsync/cloudflare/api-base-url",
	  "plain http is allowed only to a loopback address" },
	{ "request budget over Cloudflare's limit", "\"request-budget\": 600",
	  "\"request-budget\": 1201", NULL, NULL, "1201",
	  "/tunnelsync:tunnelsync/cloudflare/request-budget", "between 1 and 1200" },
	{ "email without key file", "\"request-budget\": 600",
	  "\"request-budget\": 600, \"email\": \"ops@example.com\"", NULL, NULL, "\"cloudflare\"",
	  "/tunnelsync:tunnelsync/cloudflare/api-key-file", "\"api-key-file\" is mandatory" },
	{ "token file and email together", "\"request-budget\": 600",
	  "\"request-budget\": 600, \"api-token-file\": \"/etc/t\", \"email\": \"ops@example.com\", \"api-key-file\": \"/etc/k\"",
	  NULL, NULL, "\"cloudflare\"", "/tunnelsync:tunnelsync/cloudflare/credentials",
	  "give either api-token-file or email with api-key-file, not both" },
	{ "unknown module", "\"tunnelsync:tunnelsync\"", "\"tunnelsyn:tunnelsync\"", NULL, NULL,
	  "tunnelsyn:", NULL, "the config must be a \"tunnelsync:tunnelsync\" object" },
	{ "token file relative", "\"request-budget\": 600",
	  "\"request-budget\": 600, \"api-token-file\": \"token\"", NULL, NULL, "\"token\"",
	  "/tunnelsync:tunnelsync/cloudflare/api-token-file", "absolute path" },
	{ "bad gateway name",
	  "\"gateway\": \"edge-ams-1\",\n          \"redundancy-group\": \"ams-uplink\",\n          \"customer-endpoint\": \"203.0.113.10\",\n          \"cloudflare-endpoint\": \"198.51.100.2\"",
	  "\"gateway\": \"edge ams\",\n          \"redundancy-group\": \"ams-uplink\",\n          \"customer-endpoint\": \"203.0.113.10\",\n          \"cloudflare-endpoint\": \"198.51.100.2\"",
	  NULL, NULL, "edge ams", TB "/gateway", "letters, digits" },
	{ "resync interval too short", "\"resync-interval\": 300", "\"resync-interval\": 1", NULL,
	  NULL, "resync-interval", "/tunnelsync:tunnelsync/agent/resync-interval",
	  "between 10 and 86400 seconds" },
	{ "metrics listen without port", "\"127.0.0.1:9470\"", "\"127.0.0.1\"", NULL, NULL,
	  "metrics-listen", "/tunnelsync:tunnelsync/agent/metrics-listen", "ADDRESS:PORT" },
	{ "account id missing", "\"account-id\": \"023e105f4ecef8ad9ca31a8372d0c353\",", "", NULL,
	  NULL, "\"cloudflare\"", "/tunnelsync:tunnelsync/cloudflare/account-id",
	  "\"account-id\" is mandatory here but missing" },
	{ "tunnel id missing", "\"id\": \"5f0d8e3b7a9c41e2b6d4a1c3e5f70819\",", "", NULL, NULL,
	  "\"name\": \"ams-cf-b\"", TB "/id", "\"id\" is mandatory here but missing" },
	{ "wrong type", "\"resync-interval\": 300", "\"resync-interval\": \"soon\"", NULL, NULL,
	  "soon", "/tunnelsync:tunnelsync/agent/resync-interval", "soon" },
};

static void test_invalid_json(void **state)
{
	_cleanup_free_ char *base = slurp(EXAMPLE_JSON);

	for (size_t i = 0; i < TS_ARRAY_SIZE(json_cases); i++) {
		const struct invalid_case *c = &json_cases[i];
		_cleanup_free_ char *one = replace(base, c->from, c->to);
		_cleanup_free_ char *two = c->from2 ? replace(one, c->from2, c->to2) : NULL;

		print_message("case: %s\n", c->what);
		expect_invalid(*state, "gateway.json", two ? two : one, c->marker, c->path,
			       c->message);
	}
}

static const struct invalid_case xml_cases[] = {
	{ "xml: tunnel id", "<id>0f1e2d3c4b5a69788796a5b4c3d2e1f0</id>", "<id>0f1e</id>", NULL,
	  NULL, "<id>0f1e</id>", T "[name='fra-cf-b']/id", "32 lowercase hexadecimal" },
	{ "xml: psk file missing", "<file>/etc/tunnelsync/psk/fra-cf-b</file>", "", NULL, NULL,
	  "2|<psk>", T "[name='fra-cf-b']/psk/file", "mandatory" },
	{ "xml: unknown element", "<mark>4097</mark>", "<mark>4097</mark><colour>red</colour>",
	  NULL, NULL, "<colour>", T "[name='fra-cf-a']/route-based/colour", "unknown \"colour\"" },
	{ "xml: duplicate mark", "<mark>4098</mark>", "<mark>4097</mark>", NULL, NULL,
	  "2|<mark>4097</mark>", T "[name='fra-cf-b']/route-based/mark", "own mark" },
	{ "xml: lifetime", "<time>7500</time>", "<time>30000</time>", NULL, NULL,
	  "<time>30000</time>", T "[name='fra-cf-b']/ike/child-sa-lifetime-soft/time",
	  "between 1800 and 28800" },
};

static void test_invalid_xml(void **state)
{
	_cleanup_free_ char *base = slurp(EXAMPLE_XML);

	for (size_t i = 0; i < TS_ARRAY_SIZE(xml_cases); i++) {
		const struct invalid_case *c = &xml_cases[i];
		_cleanup_free_ char *one = replace(base, c->from, c->to);

		print_message("case: %s\n", c->what);
		expect_invalid(*state, "gateway.xml", one, c->marker, c->path, c->message);
	}
}

static void test_malformed(void **state)
{
	_cleanup_free_ char *json = slurp(EXAMPLE_JSON), *xml = slurp(EXAMPLE_XML);
	_cleanup_free_ char *bad_json =
		replace(json, "\"resync-interval\": 300,", "\"resync-interval\": 300,,");
	_cleanup_free_ char *bad_xml = replace(xml, "<resync-interval>600</resync-interval>",
					       "<resync-interval>600</resync-intervl>");

	expect_invalid(*state, "gateway.json", bad_json, "300,,", NULL, "");
	expect_invalid(*state, "gateway.xml", bad_xml, "</resync-intervl>", NULL, "");
	/* Truncated: the error is at the end. */
	json[strlen(json) / 2] = '\0';
	expect_invalid(*state, "cut.json", json, NULL, NULL, "");
	expect_invalid(*state, "empty.xml", "<tunnelsync xmlns=\"urn:tunnelsync:yang:tunnelsync\">",
		       NULL, NULL, "");
	expect_invalid(*state, "other.xml", "<x xmlns=\"urn:example\"/>", NULL, NULL, "");
}

static void test_example_json(void **state)
{
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	const struct ts_tunnel *a, *b;
	char buf[TS_PREFIX_STRLEN];

	assert_int_equal(load_sources(EXAMPLE_JSON, &d, &err), 0);
	assert_string_equal(d->agent.node_name, "edge-ams-1");
	assert_string_equal(d->agent.state_dir, "/var/lib/tunnelsync");
	assert_int_equal(d->agent.resync_interval, 300);
	assert_string_equal(d->agent.vici_socket, "/var/run/charon.vici");
	assert_string_equal(d->agent.metrics_listen, "127.0.0.1:9470");
	assert_true(d->agent.prune);
	assert_false(d->agent.suspend);
	assert_string_equal(d->cloudflare.account_id, "023e105f4ecef8ad9ca31a8372d0c353");
	assert_int_equal(d->cloudflare.auth, TS_CF_AUTH_TOKEN);
	/* No api-token-file: the systemd credential or the Kubernetes secret. */
	assert_null(d->cloudflare.token_file);
	assert_null(d->cloudflare.email);
	assert_string_equal(d->cloudflare.api_base_url, "https://api.cloudflare.com/client/v4");
	assert_int_equal(d->n_tunnels, 2);
	a = &d->tunnels[0];
	b = &d->tunnels[1];
	assert_string_equal(a->name, "ams-cf-a");
	assert_string_equal(b->name, "ams-cf-b");
	assert_ptr_equal(ts_desired_find_id(d, "5f0d8e3b7a9c41e2b6d4a1c3e5f70819"), b);
	assert_true(a->enabled);
	assert_string_equal(a->gateway, "edge-ams-1");
	assert_string_equal(a->redundancy_group, "ams-uplink");
	assert_string_equal(ts_ip_format(&a->customer_endpoint, buf, sizeof(buf)), "203.0.113.10");
	assert_string_equal(ts_ip_format(&b->cloudflare_endpoint, buf, sizeof(buf)),
			    "198.51.100.2");
	assert_string_equal(ts_prefix_format(&b->interface_address, buf, sizeof(buf)),
			    "192.0.2.2/31");
	assert_string_equal(ts_prefix_format(&a->interface_address6, buf, sizeof(buf)),
			    "2001:db8:0:1::/127");
	assert_int_equal(a->ike.local_identity, TS_IDENTITY_FQDN);
	assert_int_equal(a->ike.ike_sa.encr, TS_ENCR_AES256_GCM16);
	assert_int_equal(a->ike.ike_sa.prf, TS_PRF_HMAC_SHA2_256);
	assert_int_equal(a->ike.ike_sa.dh, TS_DH_ECP384);
	assert_int_equal(a->ike.child_sa.dh, TS_DH_ECP384);
	assert_int_equal(a->ike.ike_sa_lifetime, 28800);
	assert_int_equal(a->ike.child_sa_lifetime, 3600);
	assert_int_equal(b->ike.child_sa_lifetime, 3900);
	assert_int_equal(a->ike.replay_window, 0);
	assert_int_equal(a->routing.mode, TS_MODE_ROUTE);
	assert_true(a->routing.has_if_id);
	assert_int_equal(a->routing.if_id, 101);
	assert_false(a->routing.has_mark);
	assert_int_equal(b->routing.if_id, 102);
	assert_int_equal(a->psk.source, TS_PSK_SOURCE_RANDOM);
	assert_int_equal(a->psk.max_age, 7776000);
	assert_true(a->psk.rotate_on_auth_failure);
	assert_null(a->psk.file);
	assert_string_equal(a->source_file, EXAMPLE_JSON);
	{
		_cleanup_free_ char *text = slurp(EXAMPLE_JSON);

		assert_int_equal(a->source_line, line_of(text, "\"name\": \"ams-cf-a\""));
		assert_int_equal(b->source_line, line_of(text, "\"name\": \"ams-cf-b\""));
	}
	/* The source tree is a git checkout: the revision is its HEAD. */
	assert_int_equal(strlen(d->revision), 40);
	ts_desired_free(d);
}

/* A plain load (the agent's) locates no tunnel: NULL / 0 sources and
 * otherwise the same result; its errors still name file and line
 * (expect_invalid and the conflict tests load plainly). */
static void test_plain_load_locates_nothing(void **state)
{
	struct ts_desired *d = NULL, *s = NULL;
	struct ts_config_error err;

	(void)state;
	assert_int_equal(load(EXAMPLE_JSON, &d, &err), 0);
	assert_int_equal(load_sources(EXAMPLE_JSON, &s, &err), 0);
	assert_int_equal(d->n_tunnels, s->n_tunnels);
	assert_string_equal(d->revision, s->revision);
	for (size_t i = 0; i < d->n_tunnels; i++) {
		assert_string_equal(d->tunnels[i].name, s->tunnels[i].name);
		assert_null(d->tunnels[i].source_file);
		assert_int_equal(d->tunnels[i].source_line, 0);
		assert_non_null(s->tunnels[i].source_file);
		assert_true(s->tunnels[i].source_line > 0);
	}
	ts_desired_free(d);
	ts_desired_free(s);
}

static void test_example_xml(void **state)
{
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	const struct ts_tunnel *a, *b;

	assert_int_equal(load(EXAMPLE_XML, &d, &err), 0);
	assert_int_equal(d->cloudflare.auth, TS_CF_AUTH_EMAIL_KEY);
	assert_string_equal(d->cloudflare.email, "netops@example.com");
	assert_string_equal(d->cloudflare.key_file, "/etc/tunnelsync/cloudflare-api-key");
	assert_null(d->cloudflare.token_file);
	assert_string_equal(d->cloudflare.ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(d->cloudflare.request_budget, 300);
	assert_string_equal(d->agent.vici_socket, "/run/strongswan/charon.vici");
	assert_int_equal(d->n_tunnels, 2);
	a = ts_desired_find(d, "fra-cf-a");
	b = ts_desired_find(d, "fra-cf-b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->ike.local_identity, TS_IDENTITY_IPV4);
	assert_int_equal(b->ike.local_identity, TS_IDENTITY_KEY_ID);
	assert_int_equal(a->ike.ike_sa.encr, TS_ENCR_AES256_GCM16 | TS_ENCR_AES256_CBC);
	assert_int_equal(a->ike.ike_sa.integ, TS_INTEG_HMAC_SHA2_256_128);
	assert_int_equal(a->ike.ike_sa.prf, TS_PRF_HMAC_SHA2_384);
	assert_int_equal(a->ike.ike_sa.dh, TS_DH_ECP384 | TS_DH_MODP2048);
	assert_int_equal(a->ike.ike_sa_lifetime, 43200);
	assert_int_equal(a->ike.child_sa.encr, TS_ENCR_AES128_GCM16);
	assert_int_equal(a->routing.mode, TS_MODE_ROUTE);
	assert_false(a->routing.has_if_id);
	assert_true(a->routing.has_mark);
	assert_int_equal(a->routing.mark, 4097);
	assert_int_equal(a->routing.mark_mask, 65535);
	assert_int_equal(a->psk.source, TS_PSK_SOURCE_GENERATE);
	assert_int_equal(a->psk.max_age, 2592000);
	assert_int_equal(b->psk.source, TS_PSK_SOURCE_FILE);
	assert_string_equal(b->psk.file, "/etc/tunnelsync/psk/fra-cf-b");
	assert_false(b->psk.rotate_on_auth_failure);
	assert_int_equal(b->psk.max_age, 0);
	ts_desired_free(d);
}

/* A minimal config gets every default of the model, and tunnels come out
 * sorted by name whatever their order in the file. */
static void test_defaults_and_order(void **state)
{
	static const char text[] =
		"{\"tunnelsync:tunnelsync\": {\n"
		" \"cloudflare\": {\"account-id\": \"00000000000000000000000000000001\"},\n"
		" \"tunnels\": {\"tunnel\": [\n"
		"  {\"name\": \"zeta\", \"id\": \"0000000000000000000000000000000a\",\n"
		"   \"cloudflare-endpoint\": \"198.51.100.1\", \"interface-address\": \"192.0.2.4/31\",\n"
		"   \"policy-based\": {\"traffic-selector\": [\n"
		"     {\"local-prefix\": \"10.1.0.0/16\", \"remote-prefix\": \"0.0.0.0/0\"},\n"
		"     {\"local-prefix\": \"10.2.0.0/16\", \"remote-prefix\": \"0.0.0.0/0\"}]}},\n"
		"  {\"name\": \"alpha\", \"id\": \"0000000000000000000000000000000b\",\n"
		"   \"enabled\": false,\n"
		"   \"cloudflare-endpoint\": \"198.51.100.2\", \"interface-address\": \"192.0.2.6/31\",\n"
		"   \"route-based\": {\"mark\": 42}}\n"
		" ]}}}\n";
	_cleanup_free_ char *file = join(*state, "min.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	const struct ts_tunnel *t;
	char buf[TS_PREFIX_STRLEN];

	write_text(*state, "min.json", text);
	assert_int_equal(load_sources(file, &d, &err), 0);
	/* No node-name: the host name, as the module says. */
	assert_string_equal(d->agent.node_name, host_name());
	assert_string_equal(d->agent.state_dir, "/var/lib/tunnelsync");
	assert_int_equal(d->agent.resync_interval, 300);
	assert_string_equal(d->agent.vici_socket, "/var/run/charon.vici");
	assert_null(d->agent.metrics_listen);
	assert_false(d->agent.suspend);
	assert_false(d->agent.prune);
	assert_int_equal(d->agent.max_rotations_per_pass, 0); /* deprecated: no default */
	assert_int_equal(d->agent.rotation_max_in_flight, 1000);
	assert_int_equal(d->agent.rotation_bulk_batch_size, 100);
	assert_int_equal(d->agent.rotation_max_age_jitter, 10);
	assert_string_equal(d->cloudflare.api_base_url, "https://api.cloudflare.com/client/v4");
	assert_int_equal(d->cloudflare.auth, TS_CF_AUTH_TOKEN);
	assert_null(d->cloudflare.token_file); /* CLOUDFLARE_API_TOKEN */
	assert_null(d->cloudflare.ca_file);
	assert_false(d->cloudflare.allow_plain_http_loopback);
	assert_int_equal(d->cloudflare.request_budget, 600);
	assert_false(d->cloudflare.manage_tunnels);
	/* No tunnel/cloudflare: nothing declared, nothing compared. */
	t = ts_desired_find(d, "zeta");
	assert_null(t->cf.description);
	assert_false(t->cf.has_replay_protection);
	assert_false(t->cf.has_hc_enabled);
	assert_string_equal(t->cf.hc_rate, "");
	assert_false(ts_ip_is_set(&t->cf.hc_target));
	assert_int_equal(d->cloudflare.connect_timeout, 10);
	assert_int_equal(d->cloudflare.request_timeout, 30);
	assert_int_equal(d->n_tunnels, 2);
	assert_string_equal(d->tunnels[0].name, "alpha");
	assert_string_equal(d->tunnels[1].name, "zeta");

	t = &d->tunnels[0];
	assert_false(t->enabled);
	assert_string_equal(t->gateway, "");
	assert_string_equal(t->redundancy_group, "");
	assert_int_equal(t->customer_endpoint.family, AF_UNSPEC);
	assert_int_equal(t->interface_address6.ip.family, AF_UNSPEC);
	assert_int_equal(t->ike.local_identity, TS_IDENTITY_FQDN);
	assert_int_equal(t->ike.ike_sa.encr, TS_ENCR_AES256_GCM16);
	assert_int_equal(t->ike.ike_sa.integ, TS_INTEG_HMAC_SHA2_256_128);
	assert_int_equal(t->ike.ike_sa.prf, TS_PRF_HMAC_SHA2_256);
	assert_int_equal(t->ike.ike_sa.dh, TS_DH_ECP384);
	assert_int_equal(t->ike.child_sa.encr, TS_ENCR_AES256_GCM16);
	assert_int_equal(t->ike.child_sa.integ, TS_INTEG_HMAC_SHA2_256_128);
	assert_int_equal(t->ike.child_sa.dh, TS_DH_ECP384);
	assert_int_equal(t->ike.ike_sa_lifetime, 28800);
	assert_int_equal(t->ike.child_sa_lifetime, 3600);
	assert_int_equal(t->ike.lifetime_spread, 300);
	assert_int_equal(t->ike.dpd_delay, 30);
	assert_int_equal(t->ike.replay_window, 0);
	assert_int_equal(t->routing.mode, TS_MODE_ROUTE);
	assert_true(t->routing.has_mark);
	assert_int_equal(t->routing.mark, 42);
	assert_int_equal(t->routing.mark_mask, 0xffffffffu);
	assert_false(t->routing.has_if_id);
	assert_int_equal(t->psk.source, TS_PSK_SOURCE_RANDOM);
	assert_int_equal(t->psk.max_age, 0);
	assert_true(t->psk.rotate_on_auth_failure);
	assert_int_equal(t->psk.auth_failure_threshold, 3);
	assert_int_equal(t->source_line, 9);

	t = &d->tunnels[1];
	assert_int_equal(t->routing.mode, TS_MODE_POLICY);
	assert_int_equal(t->routing.n_selectors, 2);
	assert_string_equal(ts_prefix_format(&t->routing.selectors[1].local, buf, sizeof(buf)),
			    "10.2.0.0/16");
	assert_string_equal(ts_prefix_format(&t->routing.selectors[1].remote, buf, sizeof(buf)),
			    "0.0.0.0/0");
	assert_int_equal(t->source_line, 4);
	ts_desired_free(d);
}

/* Splits the example into agent+cloudflare and tunnels, plus a third
 * file (XML) with one more tunnel. */
static const char part_tunnel_xml[] =
	"<tunnelsync xmlns=\"urn:tunnelsync:yang:tunnelsync\"><tunnels><tunnel>\n"
	"  <name>ams-cf-c</name>\n"
	"  <id>ffffffffffffffffffffffffffffffff</id>\n"
	"  <cloudflare-endpoint>198.51.100.3</cloudflare-endpoint>\n"
	"  <interface-address>192.0.2.8/31</interface-address>\n"
	"  <route-based><if-id>103</if-id></route-based>\n"
	"</tunnel></tunnels></tunnelsync>\n";

static void write_split(const char *dir)
{
	char *json = slurp(EXAMPLE_JSON);
	const char *tunnels = strstr(json, "    \"tunnels\": {");
	_cleanup_free_ char *head = NULL, *tail = NULL;
	int r;

	assert_non_null(tunnels);
	/* 10-base.json: up to the end of "cloudflare"; 20-tunnels.json: the rest. */
	r = asprintf(&head, "%.*s\n  }\n}\n", (int)(tunnels - json - 2), json);
	assert_true(r > 0);
	r = asprintf(&tail, "{\n  \"tunnelsync:tunnelsync\": {\n%s", tunnels);
	assert_true(r > 0);
	free(json);
	write_text(dir, "10-base.json", head);
	write_text(dir, "20-tunnels.json", tail);
	write_text(dir, "30-extra.xml", part_tunnel_xml);
	write_text(dir, "README.md", "not config\n");
	write_text(dir, ".hidden.json", "{ broken");
}

/* tunnel/cloudflare declares Cloudflare-side properties; manage-tunnels
 * turns correction on. */
static void test_cloudflare_properties(void **state)
{
	static const char text[] =
		"{\"tunnelsync:tunnelsync\": {\n"
		" \"cloudflare\": {\"account-id\": \"00000000000000000000000000000001\",\n"
		"   \"manage-tunnels\": true},\n"
		" \"tunnels\": {\"tunnel\": [\n"
		"  {\"name\": \"zeta\", \"id\": \"0000000000000000000000000000000a\",\n"
		"   \"cloudflare-endpoint\": \"198.51.100.1\", \"interface-address\": \"192.0.2.4/31\",\n"
		"   \"route-based\": {\"if-id\": 7},\n"
		"   \"cloudflare\": {\"description\": \"ams primary\", \"replay-protection\": false,\n"
		"     \"health-check\": {\"enabled\": true, \"rate\": \"high\", \"type\": \"request\",\n"
		"       \"direction\": \"bidirectional\", \"target\": \"192.0.2.5\"}}}\n"
		" ]}}}\n";
	_cleanup_free_ char *file = join(*state, "cf.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	const struct ts_tunnel *t;
	char buf[TS_PREFIX_STRLEN];

	write_text(*state, "cf.json", text);
	assert_int_equal(load(file, &d, &err), 0);
	assert_true(d->cloudflare.manage_tunnels);
	t = ts_desired_find(d, "zeta");
	assert_string_equal(t->cf.description, "ams primary");
	assert_true(t->cf.has_replay_protection);
	assert_false(t->cf.replay_protection);
	assert_true(t->cf.has_hc_enabled && t->cf.hc_enabled);
	assert_string_equal(t->cf.hc_rate, "high");
	assert_string_equal(t->cf.hc_type, "request");
	assert_string_equal(t->cf.hc_direction, "bidirectional");
	assert_string_equal(ts_ip_format(&t->cf.hc_target, buf, sizeof(buf)), "192.0.2.5");
	ts_desired_free(d);
}

/* agent/traffic and tunnel/routes (issue 11): converted, defaults, and
 * routes refused on a policy-based tunnel. */
static void test_traffic_and_routes(void **state)
{
	static const char text[] =
		"{\"tunnelsync:tunnelsync\": {\n"
		" \"agent\": {\"traffic\": {\"settle-time\": 30}},\n"
		" \"cloudflare\": {\"account-id\": \"00000000000000000000000000000001\"},\n"
		" \"tunnels\": {\"tunnel\": [\n"
		"  {\"name\": \"zeta\", \"id\": \"0000000000000000000000000000000a\",\n"
		"   \"cloudflare-endpoint\": \"198.51.100.1\", \"interface-address\": \"192.0.2.4/31\",\n"
		"   \"route-based\": {\"mark\": 7},\n"
		"   \"routes\": {\"interface\": \"vti-zeta\", \"route\": [\n"
		"     {\"prefix\": \"203.0.113.0/24\", \"metric\": 200}]}}\n"
		" ]}}}\n";
	static const char bad[] =
		"{\"tunnelsync:tunnelsync\": {\n"
		" \"cloudflare\": {\"account-id\": \"00000000000000000000000000000001\"},\n"
		" \"tunnels\": {\"tunnel\": [\n"
		"  {\"name\": \"zeta\", \"id\": \"0000000000000000000000000000000a\",\n"
		"   \"cloudflare-endpoint\": \"198.51.100.1\", \"interface-address\": \"192.0.2.4/31\",\n"
		"   \"policy-based\": {\"traffic-selector\": [{\"local-prefix\": \"10.0.0.0/8\",\n"
		"     \"remote-prefix\": \"10.1.0.0/16\"}]},\n"
		"   \"routes\": {\"interface\": \"vti-zeta\", \"route\": [{\"prefix\": \"203.0.113.0/24\"}]}}\n"
		" ]}}}\n";
	_cleanup_free_ char *file = join(*state, "traffic.json");
	_cleanup_free_ char *badfile = join(*state, "traffic-bad.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	const struct ts_tunnel *t;
	char buf[TS_PREFIX_STRLEN];

	write_text(*state, "traffic.json", text);
	assert_int_equal(load(file, &d, &err), 0);
	assert_int_equal(d->agent.settle_time, 30);
	assert_string_equal(d->agent.strongswan_conf, "/etc/strongswan.conf");
	t = ts_desired_find(d, "zeta");
	assert_string_equal(t->routes.ifname, "vti-zeta");
	assert_int_equal(t->routes.n, 1);
	assert_int_equal(t->routes.route[0].metric, 200);
	ts_prefix_format(&t->routes.route[0].dst, buf, sizeof(buf));
	assert_string_equal(buf, "203.0.113.0/24");
	ts_desired_free(d);

	write_text(*state, "traffic-bad.json", bad);
	assert_true(load(badfile, &d, &err) < 0);
	assert_non_null(err.message);
	assert_non_null(strstr(err.message, "routes need a route-based tunnel"));
	ts_config_error_done(&err);
}

/* tunnel/interface (issue 11): converted with its defaults, for a mark
 * tunnel (a VTI) and an if-id tunnel (an XFRM interface); refused on a
 * tunnel with both, for a VTI without an IPv4 customer-endpoint and for
 * two tunnels naming one interface, the message naming the field. */
static void test_owned_interface(void **state)
{
	static const char head[] =
		"{\"tunnelsync:tunnelsync\": {\n"
		" \"cloudflare\": {\"account-id\": \"00000000000000000000000000000001\"},\n"
		" \"tunnels\": {\"tunnel\": [\n"
		"  {\"name\": \"zeta\", \"id\": \"0000000000000000000000000000000a\",\n"
		"   \"cloudflare-endpoint\": \"198.51.100.1\", \"interface-address\": \"10.0.0.0/31\",\n";
	static const struct {
		const char *tail, *error;
	} cases[] = {
		{ "   \"customer-endpoint\": \"203.0.113.1\", \"route-based\": {\"mark\": 7},\n"
		  "   \"interface\": {\"name\": \"vti-zeta\", \"address\": \"10.0.0.1\"}}\n",
		  NULL },
		{ "   \"route-based\": {\"if-id\": 7},\n"
		  "   \"interface\": {\"name\": \"xfrm-zeta\", \"address\": \"10.0.0.1\"}}\n",
		  NULL },
		{ "   \"customer-endpoint\": \"203.0.113.1\",\n"
		  "   \"route-based\": {\"if-id\": 7, \"mark\": 7},\n"
		  "   \"interface\": {\"name\": \"xfrm-zeta\", \"address\": \"10.0.0.1\"}}\n",
		  "needs either a mark (a VTI) or an if-id (an XFRM interface), not both" },
		{ "   \"route-based\": {\"mark\": 7},\n"
		  "   \"interface\": {\"name\": \"vti-zeta\", \"address\": \"10.0.0.1\"}}\n",
		  "needs an IPv4 customer-endpoint" },
		{ "   \"customer-endpoint\": \"203.0.113.1\", \"route-based\": {\"mark\": 7},\n"
		  "   \"interface\": {\"name\": \"vti-zeta\", \"address\": \"10.0.0.1\", \"mtu\": 100}}\n",
		  "interface/mtu" },
		/* Two tunnels owning one interface would fight over it. */
		{ "   \"customer-endpoint\": \"203.0.113.1\", \"route-based\": {\"mark\": 7},\n"
		  "   \"interface\": {\"name\": \"vti-zeta\", \"address\": \"10.0.0.1\"}},\n"
		  "  {\"name\": \"eta\", \"id\": \"0000000000000000000000000000000b\",\n"
		  "   \"cloudflare-endpoint\": \"198.51.100.2\", \"interface-address\": \"10.0.0.2/31\",\n"
		  "   \"customer-endpoint\": \"203.0.113.1\", \"route-based\": {\"mark\": 8},\n"
		  "   \"interface\": {\"name\": \"vti-zeta\", \"address\": \"10.0.0.3\"}}\n",
		  "must be unique" },
	};
	_cleanup_free_ char *file = join(*state, "iface.json");

	for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
		struct ts_config_error err;
		struct ts_desired *d = NULL;
		char text[2048], msg[1024], buf[TS_PREFIX_STRLEN];

		snprintf(text, sizeof(text), "%s%s ]}}}\n", head, cases[i].tail);
		write_text(*state, "iface.json", text);
		if (!cases[i].error) {
			const struct ts_tunnel *t;

			assert_int_equal(load(file, &d, &err), 0);
			t = ts_desired_find(d, "zeta");
			/* An if-id tunnel's XFRM interface needs no customer-endpoint. */
			assert_string_equal(t->iface.ifname,
					    t->routing.has_if_id ? "xfrm-zeta" : "vti-zeta");
			assert_int_equal(t->routing.has_if_id ? t->routing.if_id : t->routing.mark,
					 7);
			assert_int_equal(t->iface.mtu, 1400);
			ts_prefix_format(&t->iface.address, buf, sizeof(buf));
			assert_string_equal(buf, "10.0.0.1/31");
			ts_desired_free(d);
			continue;
		}
		assert_true(load(file, &d, &err) < 0);
		assert_non_null(err.message);
		ts_config_error_format(&err, msg, sizeof(msg));
		if (!strstr(msg, cases[i].error) || !strstr(msg, "iface.json:"))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, msg, cases[i].error);
		ts_config_error_done(&err);
	}
}

static void test_directory_merge(void **state)
{
	_cleanup_free_ char *tunnels_file = join(*state, "20-tunnels.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	write_split(*state);
	assert_int_equal(load_sources(*state, &d, &err), 0);
	assert_int_equal(d->n_tunnels, 3);
	assert_string_equal(d->tunnels[2].name, "ams-cf-c");
	assert_int_equal(d->tunnels[2].routing.if_id, 103);
	assert_string_equal(d->cloudflare.account_id, "023e105f4ecef8ad9ca31a8372d0c353");
	assert_string_equal(d->tunnels[0].source_file, tunnels_file);
	assert_string_equal(d->tunnels[2].source_line ? "ok" : "no line", "ok");
	assert_int_equal(strncmp(d->revision, "sha256:", 7), 0);
	ts_desired_free(d);

	/* The same tunnel in two files with the same values is no conflict. */
	{
		_cleanup_free_ char *again = replace(part_tunnel_xml, "ams-cf-c", "ams-cf-c");

		write_text(*state, "40-again.xml", again);
		assert_int_equal(load(*state, &d, &err), 0);
		assert_int_equal(d->n_tunnels, 3);
		ts_desired_free(d);
	}
}

static void test_directory_conflict(void **state)
{
	_cleanup_free_ char *later = join(*state, "40-conflict.xml");
	_cleanup_free_ char *earlier = join(*state, "30-extra.xml");
	_cleanup_free_ char *text =
		replace(part_tunnel_xml, "<if-id>103</if-id>", "<if-id>104</if-id>");
	_cleanup_free_ char *want = NULL;
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	write_split(*state);
	write_text(*state, "40-conflict.xml", text);
	assert_int_equal(load(*state, &d, &err), -EINVAL);
	assert_null(d);
	assert_string_equal(err.file, later);
	assert_int_equal(err.line, line_of(text, "<if-id>"));
	assert_string_equal(err.path, T "[name='ams-cf-c']/route-based/if-id");
	assert_true(asprintf(&want, "conflicting values: \"104\" here, \"103\" in %s:%u", earlier,
			     line_of(part_tunnel_xml, "<if-id>")) > 0);
	assert_string_equal(err.message, want);
	ts_config_error_done(&err);

	/* A leaf-list with other values in another file. */
	unlink(later);
	text = (free(text), replace(part_tunnel_xml, "<route-based>",
				    "<ike><ike-sa><dh-group>modp-2048</dh-group></ike-sa></ike>"
				    "<route-based>"));
	write_text(*state, "40-conflict.xml", text);
	free(text);
	text = replace(part_tunnel_xml, "<route-based>",
		       "<ike><ike-sa><dh-group>ecp-384</dh-group></ike-sa></ike><route-based>");
	write_text(*state, "30-extra.xml", text);
	assert_int_equal(load(*state, &d, &err), -EINVAL);
	assert_string_equal(err.file, later);
	assert_string_equal(err.path, T "[name='ams-cf-c']/ike/ike-sa/dh-group");
	assert_non_null(strstr(err.message, "conflicting values"));
	assert_non_null(strstr(err.message, earlier));
	ts_config_error_done(&err);
}

static void test_empty_directory(void **state)
{
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	write_text(*state, "notes.txt", "nothing here\n");
	assert_int_equal(load(*state, &d, &err), -ENOENT);
	assert_string_equal(err.file, *state);
	assert_non_null(strstr(err.message, "no config files"));
	ts_config_error_done(&err);
}

static void test_missing_path(void **state)
{
	_cleanup_free_ char *p = join(*state, "nope.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	assert_int_equal(load(p, &d, &err), -ENOENT);
	assert_string_equal(err.file, p);
	assert_non_null(strstr(err.message, "No such file"));
	ts_config_error_done(&err);

	/* A file not named *.json / *.xml. */
	write_text(*state, "config.yaml", "a: b\n");
	ts_config_error_done(&err);
	{
		_cleanup_free_ char *y = join(*state, "config.yaml");

		assert_int_equal(load(y, &d, &err), -EINVAL);
		assert_non_null(strstr(err.message, ".json or .xml"));
		ts_config_error_done(&err);
	}
}

/* Files the loader cannot read. Tests run as root, so permissions do not
 * stop a read: a directory named like a config file, a dangling link, and
 * a file read by a child that dropped root. */
static void test_unreadable(void **state)
{
	_cleanup_free_ char *json = slurp(EXAMPLE_JSON);
	_cleanup_free_ char *sub = join(*state, "b.json"), *dangling = join(*state, "c.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	write_text(*state, "a.json", json);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(load(*state, &d, &err), -EISDIR);
	assert_string_equal(err.file, sub);
	assert_non_null(strstr(err.message, "is a directory"));
	ts_config_error_done(&err);
	assert_int_equal(rmdir(sub), 0);

	assert_int_equal(symlink("/nonexistent/target.json", dangling), 0);
	assert_int_equal(load(*state, &d, &err), -ENOENT);
	assert_string_equal(err.file, dangling);
	assert_non_null(strstr(err.message, "cannot read"));
	ts_config_error_done(&err);
	assert_int_equal(unlink(dangling), 0);

	if (geteuid() == 0) {
		_cleanup_free_ char *a = join(*state, "a.json");
		pid_t pid;
		int status;

		assert_int_equal(chmod(a, 0600), 0);
		assert_int_equal(chmod(*state, 0755), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct ts_config_error e = { 0 };
			bool ok;
			int r;

			if (setresgid(65534, 65534, 65534) < 0 ||
			    setresuid(65534, 65534, 65534) < 0)
				_exit(2);
			r = ts_config_load(a, MODELS, &d, &e);
			ok = r == -EACCES && e.message && strstr(e.message, "Permission denied");
			/* _exit skips the cleanups: free by hand, for valgrind. */
			ts_config_error_done(&e);
			free(a);
			free(sub);
			free(dangling);
			free(json);
			_exit(ok ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

static void link_swap(const char *dir, const char *link, const char *target)
{
	_cleanup_free_ char *tmp = join(dir, ".link.tmp"), *l = join(dir, link);

	unlink(tmp);
	assert_int_equal(symlink(target, tmp), 0);
	assert_int_equal(rename(tmp, l), 0);
}

/* git-sync: root/link -> .worktrees/<hash>; the swap replaces the link. */
static void test_symlink_swap(void **state)
{
	_cleanup_free_ char *json = slurp(EXAMPLE_JSON);
	_cleanup_free_ char *wt = join(*state, ".worktrees"), *a = join(wt, HASH_A),
			    *b = join(wt, HASH_B), *link = join(*state, "link");
	_cleanup_free_ char *one_tunnel = replace(json, "\"time\": 3900", "\"time\": 4000");
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	assert_int_equal(mkdir(wt, 0755), 0);
	assert_int_equal(mkdir(a, 0755), 0);
	assert_int_equal(mkdir(b, 0755), 0);
	write_text(a, "gateway.json", json);
	write_text(b, "gateway.json", one_tunnel);
	link_swap(*state, "link", ".worktrees/" HASH_A);

	assert_int_equal(load(link, &d, &err), 0);
	assert_string_equal(d->revision, HASH_A);
	assert_int_equal(ts_desired_find(d, "ams-cf-b")->ike.child_sa_lifetime, 3900);
	ts_desired_free(d);

	link_swap(*state, "link", ".worktrees/" HASH_B);
	assert_int_equal(load(link, &d, &err), 0);
	assert_string_equal(d->revision, HASH_B);
	assert_int_equal(ts_desired_find(d, "ams-cf-b")->ike.child_sa_lifetime, 4000);
	ts_desired_free(d);

	/* A file below the link also takes the revision from the link target. */
	{
		_cleanup_free_ char *file = join(link, "gateway.json");

		assert_int_equal(load(file, &d, &err), 0);
		assert_string_equal(d->revision, HASH_B);
		ts_desired_free(d);
	}
	/* Errors name the path as given, not the resolved worktree. */
	write_text(b, "gateway.json", "{ \"tunnelsync:tunnelsync\": { \"x\": 1 } }");
	assert_int_equal(load(link, &d, &err), -EINVAL);
	{
		_cleanup_free_ char *want = join(link, "gateway.json");

		assert_string_equal(err.file, want);
	}
	ts_config_error_done(&err);
}

static void mkdirs(const char *base, const char *rel)
{
	_cleanup_free_ char *p = join(base, rel);

	assert_int_equal(ts_mkdir_p(p, 0755), 0);
}

static void test_revision_git(void **state)
{
	_cleanup_free_ char *json = slurp(EXAMPLE_JSON);
	_cleanup_free_ char *conf = join(*state, "conf"), *git = join(*state, ".git");
	_cleanup_free_ char *ref = join(git, "refs/heads/main"), *packed = join(git, "packed-refs");
	struct ts_config_error err;
	struct ts_desired *d = NULL;

	mkdirs(*state, "conf");
	mkdirs(*state, ".git/refs/heads");
	write_text(conf, "gateway.json", json);

	/* HEAD -> loose ref. */
	write_text(git, "HEAD", "ref: refs/heads/main\n");
	write_text(git, "refs/heads/main", HASH_A "\n");
	assert_int_equal(load(conf, &d, &err), 0);
	assert_string_equal(d->revision, HASH_A);
	ts_desired_free(d);

	/* HEAD -> packed ref. */
	assert_int_equal(unlink(ref), 0);
	write_text(git, "packed-refs",
		   "# pack-refs with: peeled fully-peeled sorted \n" HASH_A
		   " refs/heads/dev\n" HASH_B " refs/heads/main\n");
	assert_int_equal(load(conf, &d, &err), 0);
	assert_string_equal(d->revision, HASH_B);
	ts_desired_free(d);

	/* Detached HEAD. */
	write_text(git, "HEAD", HASH_A "\n");
	assert_int_equal(load(conf, &d, &err), 0);
	assert_string_equal(d->revision, HASH_A);
	ts_desired_free(d);

	/* A linked worktree: .git is a file; refs live in the common dir. */
	{
		_cleanup_free_ char *wtgit = join(*state, ".git/worktrees/conf");

		mkdirs(*state, ".git/worktrees/conf");
		write_text(wtgit, "HEAD", "ref: refs/heads/main\n");
		write_text(wtgit, "commondir", "../..\n");
		write_text(conf, ".git", "gitdir: ../.git/worktrees/conf\n");
		assert_int_equal(load(conf, &d, &err), 0);
		assert_string_equal(d->revision, HASH_B);
		ts_desired_free(d);
		assert_int_equal(unlink(packed), 0);
	}

	/* An unborn branch: no commit to name, so the content hash. */
	assert_int_equal(load(conf, &d, &err), 0);
	assert_int_equal(strncmp(d->revision, "sha256:", 7), 0);
	ts_desired_free(d);
}

static void test_revision_content(void **state)
{
	_cleanup_free_ char *json = slurp(EXAMPLE_JSON);
	_cleanup_free_ char *file = join(*state, "gateway.json");
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	struct ts_sha256_ctx ctx;
	uint8_t digest[TS_SHA256_DIGEST_LEN];
	char hex[65], want[72];

	write_text(*state, "gateway.json", json);
	ts_sha256_init(&ctx);
	ts_sha256_update(&ctx, "gateway.json", sizeof("gateway.json"));
	ts_sha256_update(&ctx, json, strlen(json) + 1);
	ts_sha256_final(&ctx, digest);
	ts_sha256_hex(digest, hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);

	assert_int_equal(load(file, &d, &err), 0);
	assert_string_equal(d->revision, want);
	ts_desired_free(d);
	/* The directory form of the same content has the same revision. */
	assert_int_equal(load(*state, &d, &err), 0);
	assert_string_equal(d->revision, want);
	ts_desired_free(d);
	/* One byte more, another revision. */
	{
		_cleanup_free_ char *more =
			replace(json, "\"resync-interval\": 300", "\"resync-interval\": 301");

		write_text(*state, "gateway.json", more);
	}
	assert_int_equal(load(file, &d, &err), 0);
	assert_string_not_equal(d->revision, want);
	ts_desired_free(d);
}

static void test_models_dir(void **state)
{
	_cleanup_free_ char *missing = join(*state, "none");
	const char *dir = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;

	assert_int_equal(ts_config_models_dir(MODELS, &dir), 0);
	assert_string_equal(dir, MODELS);
	assert_int_equal(ts_config_models_dir(missing, &dir), -ENOENT);
	/* Without an override: the install dir, else the source tree. */
	assert_int_equal(ts_config_models_dir(NULL, &dir), 0);
	assert_true(access(dir, R_OK) == 0);
	/* A models directory without the module. */
	assert_int_equal(ts_config_load(EXAMPLE_JSON, *state, &d, &err), -ENOENT);
	assert_non_null(strstr(err.message, "cannot load the YANG module"));
	ts_config_error_done(&err);
}

static void test_error_format(void **state)
{
	struct ts_config_error e = {
		.file = "a.json", .line = 7, .path = "/m:x", .message = "bad"
	};
	char buf[64];

	ts_config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.json:7: /m:x: bad");
	e.line = 0;
	ts_config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.json: /m:x: bad");
	e.path = NULL;
	ts_config_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "a.json: bad");
	ts_config_error_done(NULL);
}

/* TUNNELSYNC_NODE_NAME (the downward API's spec.nodeName in a DaemonSet)
 * overrides agent/node-name; a bad one is refused, naming the variable. */
static void test_node_name_from_environment(void **state)
{
	struct ts_config_error err;
	struct ts_desired *d = NULL;
	char buf[512];

	setenv(TS_CONFIG_NODE_NAME_ENV, "edge-fra-9", 1);
	assert_int_equal(load(EXAMPLE_JSON, &d, &err), 0);
	assert_string_equal(d->agent.node_name, "edge-fra-9");
	ts_desired_free(d);

	setenv(TS_CONFIG_NODE_NAME_ENV, "", 1); /* empty: as if unset */
	assert_int_equal(load(EXAMPLE_JSON, &d, &err), 0);
	assert_string_equal(d->agent.node_name, "edge-ams-1");
	ts_desired_free(d);

	d = NULL;
	setenv(TS_CONFIG_NODE_NAME_ENV, "edge fra/1", 1);
	assert_int_equal(load(EXAMPLE_JSON, &d, &err), -EINVAL);
	assert_null(d);
	ts_config_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, TS_CONFIG_NODE_NAME_ENV));
	assert_non_null(strstr(buf, "edge fra/1"));
	ts_config_error_done(&err);

	setenv(TS_CONFIG_NODE_NAME_ENV,
	       "a23456789012345678901234567890123456789012345678901234567890abcd",
	       1); /* 64 characters: one too many */
	assert_int_equal(load(EXAMPLE_JSON, &d, &err), -EINVAL);
	ts_config_error_done(&err);
	unsetenv(TS_CONFIG_NODE_NAME_ENV);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_json),
		cmocka_unit_test(test_plain_load_locates_nothing),
		cmocka_unit_test(test_example_xml),
		DIR_TEST(test_defaults_and_order),
		DIR_TEST(test_invalid_json),
		DIR_TEST(test_invalid_xml),
		DIR_TEST(test_malformed),
		DIR_TEST(test_directory_merge),
		DIR_TEST(test_directory_conflict),
		DIR_TEST(test_empty_directory),
		DIR_TEST(test_missing_path),
		DIR_TEST(test_unreadable),
		DIR_TEST(test_symlink_swap),
		DIR_TEST(test_revision_git),
		DIR_TEST(test_revision_content),
		DIR_TEST(test_models_dir),
		cmocka_unit_test(test_error_format),
		DIR_TEST(test_cloudflare_properties),
		DIR_TEST(test_traffic_and_routes),
		DIR_TEST(test_owned_interface),
		cmocka_unit_test(test_node_name_from_environment),
	};

	/* The runner's environment must not pick the node name. */
	unsetenv(TS_CONFIG_NODE_NAME_ENV);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
