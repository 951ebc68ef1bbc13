/* Tests of the Cloudflare client against the local API emulator
 * (contrib/cf-emulator) over HTTPS with a CA made for the test, and over
 * plain http on loopback: every operation, both auth methods, wrong
 * credentials, certificate checks, each fault mode with the retries
 * counted in the emulator's request log, the request budget, and a run at
 * trace level whose every output line is searched for secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cloudflare/cloudflare.h"
#include "cloudflare/trust.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/util.h"
#include "emu.h"
#include "version.h"

static char dir[256];
static struct emu tls_emu, plain_emu;

/* Injected sleep: records each delay, waits only a millisecond. */
static ts_usec_t sleeps[16];
static int n_sleeps;

static void fake_sleep(ts_usec_t usec, void *userdata)
{
	if (n_sleeps < (int)TS_ARRAY_SIZE(sleeps))
		sleeps[n_sleeps] = usec;
	n_sleeps++;
	usleep(1000);
}

static char token_path[300], key_path[300], ca_path[300], other_ca_path[300], bad_token_path[300];

static int group_setup(void **state)
{
	if (emu_prepare_dir(dir, sizeof(dir)) < 0)
		return -1;
	snprintf(token_path, sizeof(token_path), "%s/token", dir);
	snprintf(bad_token_path, sizeof(bad_token_path), "%s/bad-token", dir);
	snprintf(key_path, sizeof(key_path), "%s/apikey", dir);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s/other-ca.pem", dir);
	if (emu_start(&tls_emu, dir, true, "tls") < 0)
		return -1;
	if (emu_start(&plain_emu, dir, false, "plain") < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	emu_stop(&tls_emu);
	emu_stop(&plain_emu);
	emu_remove_dir(dir);
	return 0;
}

static int test_setup(void **state)
{
	emu_reset(&tls_emu);
	emu_reset(&plain_emu);
	n_sleeps = 0;
	return 0;
}

static void cfg_init(struct ts_cloudflare_config *cfg, const struct emu *e)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->account_id, EMU_ACCOUNT);
	cfg->api_base_url = (char *)e->base_url;
	cfg->auth = TS_CF_AUTH_TOKEN;
	cfg->token_file = token_path;
	cfg->ca_file = ca_path;
	cfg->connect_timeout = 5;
	cfg->request_timeout = 10;
}

static const struct ts_cf_client_options test_opts = {
	.sleep = fake_sleep,
	.backoff_base = 100 * 1000,
};

static struct ts_cf_client *client_for(const struct ts_cloudflare_config *cfg)
{
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;
	int r = ts_cf_client_new(cfg, &test_opts, &c, &err);

	if (r < 0)
		fprintf(stderr, "client: %s\n", err.detail);
	assert_int_equal(r, 0);
	ts_cf_error_done(&err);
	return c;
}

static struct ts_cf_client *tls_client(void)
{
	struct ts_cloudflare_config cfg;

	cfg_init(&cfg, &tls_emu);
	return client_for(&cfg);
}

static void test_list_and_get(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_tunnel t = { 0 };
	struct ts_cf_error err = { 0 };
	const struct ts_cf_tunnel *a, *b;
	struct ts_ip ip;
	struct ts_prefix p;
	ts_usec_t when;
	int statuses[4];
	char ua[64];

	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	/* Over TLS, OpenSSL's buffers were on the wiping allocator (the
	 * gcore-secrets test shows what it keeps out of a core). */
	assert_true(ts_cf_tls_memory_wiped());
	/* ... and the connection's context wipes received plaintext. */
	assert_true(ts_cf_tls_cleansed_contexts() > 0);
	emu_last_user_agent(&tls_emu, ua, sizeof(ua));
	assert_string_equal(ua, "tunnelsync/" TUNNELSYNC_VERSION);
	a = ts_cf_tunnel_list_find(&list, EMU_TUNNEL1);
	b = ts_cf_tunnel_list_find(&list, EMU_TUNNEL2);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a->name, "edge-a");
	assert_string_equal(a->description, "first");
	ts_ip_parse("203.0.113.1", &ip);
	assert_true(ts_ip_equal(&a->cloudflare_endpoint, &ip));
	ts_ip_parse("198.51.100.2", &ip);
	assert_true(ts_ip_equal(&a->customer_endpoint, &ip));
	ts_prefix_parse("10.0.0.0/31", &p);
	assert_true(ts_prefix_equal(&a->interface_address, &p));
	ts_prefix_parse("2606:54c1:7:0:a9fe:12d2:1:200/127", &p);
	assert_true(ts_prefix_equal(&a->interface_address6, &p));
	assert_true(a->replay_protection);
	assert_true(a->has_psk_generated_on);
	ts_time_parse_rfc3339("2026-01-02T03:04:05Z", &when);
	assert_int_equal(a->psk_generated_on, when);
	assert_true(a->has_created_on);
	assert_string_equal(a->fqdn_id, "a." EMU_ACCOUNT ".custom.ipsec.cloudflare.com");
	assert_true(a->health_check.present);
	assert_string_equal(a->health_check.rate, "mid");
	/* The second tunnel never had a key and has no customer endpoint. */
	assert_false(b->has_psk_generated_on);
	assert_false(ts_ip_is_set(&b->customer_endpoint));
	assert_false(ts_ip_is_set(&b->interface_address6.ip));
	ts_cf_tunnel_list_done(&list);

	assert_int_equal(ts_cf_get_tunnel(c, EMU_TUNNEL2, &t, &err), 0);
	assert_string_equal(t.id, EMU_TUNNEL2);
	assert_string_equal(t.name, "edge-b");
	ts_cf_tunnel_done(&t);

	/* Unknown tunnel: 404 with Cloudflare's code 1032, not retried. */
	assert_int_equal(ts_cf_get_tunnel(c, "0123456789abcdef0123456789abcdef", &t, &err),
			 -ENOENT);
	assert_int_equal(err.kind, TS_CF_ERR_HTTP);
	assert_int_equal(err.http_status, 404);
	assert_int_equal(err.n_errors, 1);
	assert_int_equal(err.errors[0].code, 1032);
	assert_string_equal(err.errors[0].message, "IPsec tunnel not found");
	assert_int_equal(
		emu_count(&tls_emu, "GET", "/0123456789abcdef0123456789abcdef", statuses, 4), 1);
	assert_int_equal(statuses[0], 404);
	/* Path injection is refused before any request. */
	assert_int_equal(ts_cf_get_tunnel(c, "../x", &t, &err), -EINVAL);
	ts_cf_error_done(&err);
}

/* The tunnel update call: declared properties set, undeclared ones kept
 * (description when not declared, custom identities, replay protection),
 * the key and last_generated_on untouched; validate_only changes nothing;
 * a GET then a PUT. */
static void test_update_tunnel(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel got = { 0 }, after = { 0 }, before = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_tunnel t = { 0 };
	struct ts_prefix p;
	char fp_before[32], fp[32];

	assert_int_equal(ts_cf_get_tunnel(c, EMU_TUNNEL1, &before, &err), 0);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp_before);
	strcpy(t.id, EMU_TUNNEL1);
	assert_int_equal(ts_ip_parse("203.0.113.1", &t.cloudflare_endpoint), 0);
	assert_int_equal(ts_ip_parse("198.51.100.2", &t.customer_endpoint), 0);
	assert_int_equal(ts_prefix_parse("10.0.7.0/31", &t.interface_address), 0);
	snprintf(t.cf.hc_rate, sizeof(t.cf.hc_rate), "high");
	emu_clear_log(&tls_emu);

	assert_int_equal(ts_cf_update_tunnel(c, &t, true, &got, &err), 0);
	ts_cf_tunnel_done(&got);
	assert_int_equal(ts_cf_get_tunnel(c, EMU_TUNNEL1, &after, &err), 0);
	assert_true(ts_prefix_equal(&after.interface_address, &before.interface_address));
	ts_cf_tunnel_done(&after);
	assert_int_equal(emu_count_query(&tls_emu, "validate_only=true"), 1);

	emu_clear_log(&tls_emu);
	assert_int_equal(ts_cf_update_tunnel(c, &t, false, &got, &err), 0);
	assert_int_equal(emu_count(&tls_emu, "GET", "/" EMU_TUNNEL1, NULL, 0), 1);
	assert_int_equal(emu_count(&tls_emu, "PUT", "/" EMU_TUNNEL1, NULL, 0), 1);
	ts_prefix_parse("10.0.7.0/31", &p);
	assert_true(ts_prefix_equal(&got.interface_address, &p));
	assert_string_equal(got.health_check.rate, "high");
	/* Not declared: Cloudflare's values stay. */
	assert_string_equal(got.description, "first");
	assert_true(got.replay_protection);
	assert_string_equal(got.fqdn_id, before.fqdn_id);
	assert_true(ts_prefix_equal(&got.interface_address6, &before.interface_address6));
	assert_int_equal(got.psk_generated_on, before.psk_generated_on);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	assert_string_equal(fp, fp_before);
	ts_cf_tunnel_done(&got);

	/* Declared description and replay protection are set. */
	t.cf.description = "ams primary";
	t.cf.has_replay_protection = true;
	t.cf.replay_protection = false;
	assert_int_equal(ts_cf_update_tunnel(c, &t, false, &got, &err), 0);
	assert_string_equal(got.description, "ams primary");
	assert_false(got.replay_protection);
	ts_cf_tunnel_done(&got);

	/* Unknown tunnel: the GET's 404, no PUT. */
	strcpy(t.id, "0123456789abcdef0123456789abcdef");
	emu_clear_log(&tls_emu);
	assert_int_equal(ts_cf_update_tunnel(c, &t, false, &got, &err), -ENOENT);
	assert_int_equal(emu_count(&tls_emu, "PUT", "/0123456789abcdef0123456789abcdef", NULL, 0),
			 0);
	ts_cf_tunnel_done(&before);
	ts_cf_error_done(&err);
}

static void read_hook(const char *id, char *buf, size_t size)
{
	char path[400];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/hook-%s.key", dir, id);
	buf[0] = '\0';
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
}

static void test_psk_set(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	_cleanup_secret_ struct ts_secret *k1 = NULL, *k2 = NULL;
	struct ts_cf_psk_set_result res = { 0 };
	struct ts_cf_error err = { 0 };
	char fp_before[32], fp[32], want[TS_FINGERPRINT_LEN], hook[128];
	struct ts_cf_psk_entry entries[2];

	assert_int_equal(ts_secret_random_alnum(32, &k1), 0);
	assert_int_equal(ts_secret_random_alnum(40, &k2), 0);
	entries[0] = (struct ts_cf_psk_entry){ EMU_TUNNEL1, k1 };
	entries[1] = (struct ts_cf_psk_entry){ EMU_TUNNEL2, k2 };
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp_before);
	assert_true(fp_before[0]);

	/* validate_only: answered, nothing changes. */
	assert_int_equal(ts_cf_psk_set(c, entries, 2, true, &res, &err), 0);
	assert_int_equal(res.n_outcomes, 2);
	assert_int_equal(res.n_applied, 2);
	ts_cf_psk_set_result_done(&res);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	assert_string_equal(fp, fp_before);
	emu_fingerprint(&tls_emu, EMU_TUNNEL2, fp);
	assert_string_equal(fp, "");
	assert_int_equal(emu_count_query(&tls_emu, "validate_only=true"), 1);

	assert_int_equal(ts_cf_psk_set(c, entries, 2, false, &res, &err), 0);
	assert_int_equal(res.n_applied, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(res.outcomes[i].tunnel_id, entries[i].tunnel_id);
		assert_int_equal(res.outcomes[i].status, TS_CF_PSK_APPLIED);
		assert_true(res.outcomes[i].has_last_generated_on);
		assert_true(res.outcomes[i].last_generated_on >
			    ts_now_realtime() - 60 * TS_USEC_PER_SEC);
	}
	assert_string_equal(res.outcomes[0].ipsec_id, EMU_ACCOUNT "_" EMU_TUNNEL1);
	ts_cf_psk_set_result_done(&res);
	/* The edge holds exactly our keys (same fingerprint function). */
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	ts_secret_fingerprint(k1, want);
	assert_string_equal(fp, want);
	emu_fingerprint(&tls_emu, EMU_TUNNEL2, fp);
	ts_secret_fingerprint(k2, want);
	assert_string_equal(fp, want);
	/* The key-change hook got the key on stdin. */
	read_hook(EMU_TUNNEL2, hook, sizeof(hook));
	assert_string_equal(hook, ts_secret_str(k2));
	ts_wipe(hook, sizeof(hook));

	/* Bad input is refused locally. */
	entries[1].tunnel_id = EMU_TUNNEL1;
	assert_int_equal(ts_cf_psk_set(c, entries, 2, false, &res, &err), -EINVAL);
	assert_int_equal(err.kind, TS_CF_ERR_CONFIG);
	ts_cf_error_done(&err);
}

static void test_psk_set_partial(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	_cleanup_secret_ struct ts_secret *k1 = NULL, *k2 = NULL, *k3 = NULL;
	struct ts_cf_psk_set_result res = { 0 };
	struct ts_cf_error err = { 0 };
	char fp[32], want[TS_FINGERPRINT_LEN];
	struct ts_cf_psk_entry entries[3];

	assert_int_equal(ts_secret_random_alnum(32, &k1), 0);
	assert_int_equal(ts_secret_random_alnum(32, &k2), 0);
	assert_int_equal(ts_secret_random_alnum(32, &k3), 0);
	entries[0] = (struct ts_cf_psk_entry){ EMU_TUNNEL1, k1 };
	entries[1] = (struct ts_cf_psk_entry){ EMU_TUNNEL2, k2 };
	entries[2] = (struct ts_cf_psk_entry){ "ffffffffffffffffffffffffffffffff", k3 };
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"POST\",\"path\":\"/psk$\","
			    "\"action\":\"unapplied\",\"ids\":[\"" EMU_TUNNEL2 "\"],"
			    "\"reason\":\"tunnel is being modified\"}]}");
	assert_int_equal(ts_cf_psk_set(c, entries, 3, false, &res, &err), 0);
	assert_int_equal(res.n_outcomes, 3);
	assert_int_equal(res.n_applied, 1);
	assert_int_equal(res.outcomes[0].status, TS_CF_PSK_APPLIED);
	assert_int_equal(res.outcomes[1].status, TS_CF_PSK_UNAPPLIED);
	assert_string_equal(res.outcomes[1].reason, "tunnel is being modified");
	assert_int_equal(res.outcomes[2].status, TS_CF_PSK_UNAPPLIED);
	assert_string_equal(res.outcomes[2].reason, "IPsec tunnel not found");
	ts_cf_psk_set_result_done(&res);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	ts_secret_fingerprint(k1, want);
	assert_string_equal(fp, want);
	emu_fingerprint(&tls_emu, EMU_TUNNEL2, fp);
	assert_string_equal(fp, "");
}

static void test_psk_generate(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	char fp_before[32], fp[32], want[TS_FINGERPRINT_LEN], hook[128];
	ts_usec_t seeded;

	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp_before);
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, true, &g, &err), 0);
	assert_null(g.psk);
	ts_cf_psk_generated_done(&g);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	assert_string_equal(fp, fp_before);

	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err), 0);
	assert_non_null(g.psk);
	assert_int_equal(ts_secret_len(g.psk), 32);
	for (const char *p = ts_secret_str(g.psk); *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9'));
	assert_string_equal(g.tunnel_id, EMU_TUNNEL1);
	assert_string_equal(g.ipsec_id, EMU_ACCOUNT "_" EMU_TUNNEL1);
	ts_time_parse_rfc3339("2026-01-02T03:04:05Z", &seeded);
	assert_true(g.has_last_generated_on);
	assert_true(g.last_generated_on > seeded);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	ts_secret_fingerprint(g.psk, want);
	assert_string_equal(fp, want);
	read_hook(EMU_TUNNEL1, hook, sizeof(hook));
	assert_string_equal(hook, ts_secret_str(g.psk));
	ts_wipe(hook, sizeof(hook));
	ts_cf_psk_generated_done(&g);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 2);

	assert_int_equal(ts_cf_psk_generate(c, "0123456789abcdef0123456789abcdef", false, &g, &err),
			 -ENOENT);
	assert_int_equal(err.errors[0].code, 1032);
	ts_cf_error_done(&err);
}

static void test_email_key_auth(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;

	cfg_init(&cfg, &tls_emu);
	cfg.auth = TS_CF_AUTH_EMAIL_KEY;
	cfg.token_file = NULL;
	cfg.email = EMU_EMAIL;
	cfg.key_file = key_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);

	/* The right key with another email is refused: 403, code 9103. */
	cfg.email = "someone@example.com";
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	assert_int_equal(err.http_status, 403);
	assert_int_equal(err.errors[0].code, 9103);
	assert_int_equal(err.attempts, 1);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

static void test_wrong_credentials(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;
	char buf[512];

	cfg_init(&cfg, &tls_emu);
	cfg.token_file = bad_token_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	assert_int_equal(err.kind, TS_CF_ERR_HTTP);
	assert_int_equal(err.http_status, 401);
	assert_int_equal(err.n_errors, 1);
	assert_int_equal(err.errors[0].code, 1000);
	assert_string_equal(err.errors[0].message, "Invalid API Token");
	assert_int_equal(err.attempts, 1);
	ts_cf_error_format(&err, buf, sizeof(buf));
	assert_non_null(strstr(buf, "1000: Invalid API Token"));
	ts_cf_client_free(c);

	/* A valid token used on another account. */
	cfg_init(&cfg, &tls_emu);
	strcpy(cfg.account_id, "99999999999999999999999999999999");
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	assert_int_equal(err.http_status, 403);
	assert_int_equal(err.errors[0].code, 10000);
	ts_cf_client_free(c);

	/* A missing token file is a configuration error, before any request. */
	cfg_init(&cfg, &tls_emu);
	cfg.token_file = "/nonexistent/token";
	c = NULL;
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -ENOENT);
	assert_int_equal(err.kind, TS_CF_ERR_CONFIG);
	assert_null(c);
	ts_cf_error_done(&err);
}

static void test_token_from_env(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;

	cfg_init(&cfg, &tls_emu);
	cfg.token_file = NULL;
	unsetenv("CLOUDFLARE_API_TOKEN");
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -ENOKEY);
	assert_null(c);
	setenv("CLOUDFLARE_API_TOKEN", EMU_TOKEN, 1);
	c = client_for(&cfg);
	unsetenv("CLOUDFLARE_API_TOKEN");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

/* Writes text to dir/name, 0400 as systemd leaves a credential. */
static void write_credential(const char *d, const char *name, const char *text)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0400), 0);
}

/* LoadCredential=cloudflare-api-token:FILE: the agent finds the token in
 * $CREDENTIALS_DIRECTORY when the config names no file; it comes before
 * CLOUDFLARE_API_TOKEN; a configured api-token-file still comes first; a
 * credentials directory without that credential falls back to the
 * environment. */
static void test_token_from_credentials_directory(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;
	char creds[320], other[320], path[400];

	snprintf(creds, sizeof(creds), "%s/credentials", dir);
	snprintf(other, sizeof(other), "%s/credentials-other", dir);
	assert_int_equal(mkdir(creds, 0700), 0);
	assert_int_equal(mkdir(other, 0700), 0);
	write_credential(creds, "cloudflare-api-token", EMU_TOKEN "\n");
	write_credential(other, "some-other-credential", "x\n");

	cfg_init(&cfg, &tls_emu);
	cfg.token_file = NULL;
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	/* A wrong token in the environment: the credential must win. */
	setenv("CLOUDFLARE_API_TOKEN", "tstoken-not-the-right-one", 1);
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);

	/* The config's file comes first: the bad one is refused by the API. */
	cfg.token_file = bad_token_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	assert_int_equal(err.http_status, 401);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);

	/* No such credential: the environment's token is used (here wrong). */
	cfg.token_file = NULL;
	setenv("CREDENTIALS_DIRECTORY", other, 1);
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);

	/* Nothing at all: the message names every place looked at. */
	unsetenv("CLOUDFLARE_API_TOKEN");
	c = NULL;
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -ENOKEY);
	assert_null(c);
	assert_non_null(strstr(err.detail, "cloudflare-api-token"));
	assert_non_null(strstr(err.detail, "CLOUDFLARE_API_TOKEN"));
	ts_cf_error_done(&err);

	/* An empty credential is an error naming the file, not a fallback. */
	write_credential(other, "cloudflare-api-token", "");
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -ENODATA);
	assert_null(c);
	snprintf(path, sizeof(path), "%s/cloudflare-api-token", other);
	assert_non_null(strstr(err.detail, path));
	ts_cf_error_done(&err);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_untrusted_certificate(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;

	cfg_init(&cfg, &tls_emu);
	cfg.ca_file = other_ca_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EKEYREJECTED);
	assert_int_equal(err.kind, TS_CF_ERR_TLS);
	assert_int_equal(err.attempts, 1);
	/* In words, without OpenSSL's error strings loaded (client.c
	 * curl_init_once): libcurl spells a failed check out itself. */
	assert_non_null(strstr(err.detail, "certificate problem: unable to get local issuer"));
	/* Nothing sent before the handshake, so the outcome is known. */
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err), -EKEYREJECTED);
	ts_cf_client_free(c);

	cfg.ca_file = NULL; /* the system store does not know the test CA either */
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EKEYREJECTED);
	ts_cf_client_free(c);
	assert_int_equal(emu_count(&tls_emu, NULL, "", NULL, 0), 0);
	ts_cf_error_done(&err);
}

/* Appends the file at src (its whole text) to f. */
static void append_file(FILE *f, const char *src)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(ts_file_read_all(src, 16u << 20, &text, &len), 0);
	assert_int_equal(fwrite(text, 1, len, f), len);
	free(text);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int list_with_ca(const char *ca_file)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;
	int r;

	cfg_init(&cfg, &tls_emu);
	cfg.ca_file = (char *)ca_file;
	c = client_for(&cfg);
	r = ts_cf_list_tunnels(c, &list, &err);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
	return r;
}

/* The bundle's certificates are read when a handshake asks for an issuer
 * (cloudflare/trust.c), not all parsed into each connection's store: of a
 * bundle with the system's roots, another CA and, among them, the test CA
 * that signed the emulator's intermediate, the one root the chain needs
 * is loaded, once for the connection. OpenSSL's trusted form of a
 * certificate keeps its meaning: trusted for serverAuth, or rejected. */
static void test_trust_bundle(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;
	char bundle[320], path[320];
	unsigned long before;
	FILE *f;

	snprintf(bundle, sizeof(bundle), "%s/bundle.pem", dir);
	f = fopen(bundle, "w");
	assert_non_null(f);
	append_file(f, other_ca_path);
	if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
		append_file(f, "/etc/ssl/certs/ca-certificates.crt");
	append_file(f, ca_path);
	append_file(f, other_ca_path);
	assert_int_equal(fclose(f), 0);

	cfg_init(&cfg, &tls_emu);
	cfg.ca_file = bundle;
	c = client_for(&cfg);
	before = ts_cf_trust_loaded();
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_trust_loaded() - before, 1);
	/* The kept-alive connection verified once. */
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_trust_loaded() - before, 1);
	ts_cf_client_free(c);

	snprintf(path, sizeof(path), "%s/ca-trusted.pem", dir);
	assert_int_equal(list_with_ca(path), 0);
	snprintf(path, sizeof(path), "%s/ca-rejected.pem", dir);
	assert_int_equal(list_with_ca(path), -EKEYREJECTED);
	ts_cf_error_done(&err);
}

/* Told that no request comes for longer than a connection may idle and
 * be reused, the client closes it at once (the next request makes a new
 * one); told less, it keeps it. */
static void test_idle_closes_connections(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };

	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_client_connects(c), 1);
	ts_cf_client_idle(c, (ts_usec_t)TS_CF_CONN_MAX_AGE * TS_USEC_PER_SEC);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_client_connects(c), 1);
	ts_cf_client_idle(c, 300 * TS_USEC_PER_SEC);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_client_connects(c), 2);
	ts_cf_error_done(&err);
}

/* A CA file that cannot be used is an error naming it when the client is
 * made, before any request; a FIFO in its place does not block. */
static void test_trust_file_errors(void **state)
{
	static const struct {
		const char *name, *text, *detail;
	} cases[] = {
		{ "missing.pem", NULL, "No such file" },
		{ "empty.pem", "", "no PEM certificate" },
		{ "words.pem", "not a certificate\n", "no PEM certificate" },
		{ "bad-base64.pem",
		  "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
		  "PEM block 1 " },
		{ "bad-der.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		  "PEM block 1 " },
		{ "fifo.pem", NULL, "not a regular file" },
	};
	struct ts_cloudflare_config cfg;
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;
	char path[320];

	for (size_t i = 0; i < TS_ARRAY_SIZE(cases); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
		if (cases[i].text)
			write_text(path, cases[i].text);
		else if (strcmp(cases[i].name, "fifo.pem") == 0)
			assert_int_equal(mkfifo(path, 0600), 0);
		cfg_init(&cfg, &tls_emu);
		cfg.ca_file = path;
		assert_true(ts_cf_client_new(&cfg, &test_opts, &c, &err) < 0);
		assert_null(c);
		assert_int_equal(err.kind, TS_CF_ERR_CONFIG);
		if (!strstr(err.detail, path) || !strstr(err.detail, cases[i].detail))
			fail_msg("%s: %s", cases[i].name, err.detail);
		unlink(path);
	}
	/* A private key is a PEM block but no certificate. */
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	cfg.ca_file = path;
	assert_true(ts_cf_client_new(&cfg, &test_opts, &c, &err) < 0);
	assert_non_null(strstr(err.detail, "no PEM certificate"));
	assert_int_equal(emu_count(&tls_emu, NULL, "", NULL, 0), 0);
	ts_cf_error_done(&err);
}

/* In a mount namespace of its own, a system trust store made for the
 * test over /etc/ssl/certs (curl's built-in bundle and hashed folder):
 * returns 0, or the number of the check that failed. */
static int system_store_checks(void)
{
	char hash[32] = "", cmd[1200], link[320];
	FILE *p;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/etc/ssl/certs", "tmpfs", 0, "mode=0755") < 0)
		return 77;
	snprintf(cmd, sizeof(cmd), "openssl x509 -hash -noout -in %s", ca_path);
	p = popen(cmd, "r");
	if (!p || !fgets(hash, sizeof(hash), p) || pclose(p) != 0)
		return 1;
	hash[strcspn(hash, "\n")] = '\0';
	snprintf(link, sizeof(link), "/etc/ssl/certs/%s.0", hash);
	snprintf(cmd, sizeof(cmd), "cp %s %s && cp %s /etc/ssl/certs/ca-certificates.crt", ca_path,
		 link, other_ca_path);
	if (system(cmd) != 0)
		return 2;
	/* The test CA in the hashed folder alone: trusted without ca-file,
	 * as libcurl reads both places ... */
	if (list_with_ca(NULL) != 0)
		return 3;
	/* ... but a declared ca-file is all that is trusted. */
	if (list_with_ca(other_ca_path) != -EKEYREJECTED)
		return 4;
	/* A bundle mounted over ca-certificates.crt without hash links, as
	 * a pod is given a CA: trusted. */
	snprintf(cmd, sizeof(cmd), "rm %s && cat %s %s >/etc/ssl/certs/ca-certificates.crt", link,
		 other_ca_path, ca_path);
	if (system(cmd) != 0)
		return 5;
	if (list_with_ca(NULL) != 0)
		return 6;
	/* The system bundle gone: an error naming it, no request. */
	if (unlink("/etc/ssl/certs/ca-certificates.crt") < 0)
		return 7;
	{
		struct ts_cloudflare_config cfg;
		struct ts_cf_error err = { 0 };
		struct ts_cf_client *c = NULL;
		int r;

		cfg_init(&cfg, &tls_emu);
		cfg.ca_file = NULL;
		r = ts_cf_client_new(&cfg, &test_opts, &c, &err);
		r = r < 0 && strstr(err.detail, "/etc/ssl/certs/ca-certificates.crt") &&
		    strstr(err.detail, "ca-certificates");
		ts_cf_error_done(&err);
		ts_cf_client_free(c);
		if (!r)
			return 8;
	}
	return 0;
}

static void test_trust_system_store(void **state)
{
	int status, fds[2], result = -1;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("skipped: a mount namespace needs root\n");
		skip();
	}
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The answer through the pipe, then SIGKILL: the child of a
		 * process under valgrind would otherwise be leak-checked (all
		 * of its parent's memory) on the way out. */
		result = system_store_checks();
		if (write(fds[1], &result, sizeof(result)) != sizeof(result))
			_exit(1);
		raise(SIGKILL);
	}
	close(fds[1]);
	if (read(fds[0], &result, sizeof(result)) != sizeof(result))
		result = -1;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (result == 77) {
		print_message("skipped: no mount namespace with a tmpfs here\n");
		skip();
	}
	assert_int_equal(result, 0);
}

static void test_plain_http(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;
	char url[128];

	cfg_init(&cfg, &plain_emu);
	cfg.ca_file = NULL;
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -EPERM);
	assert_int_equal(err.kind, TS_CF_ERR_CONFIG);
	assert_non_null(strstr(err.detail, "plain http"));
	assert_null(c);

	cfg.allow_plain_http_loopback = true;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);

	snprintf(url, sizeof(url), "http://localhost:%d/client/v4/", plain_emu.port);
	cfg.api_base_url = url;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);
	assert_int_equal(emu_count(&plain_emu, "GET", "/ipsec_tunnels", NULL, 0), 2);

	/* Every loopback form is accepted (no request is made here). */
	cfg.api_base_url = "http://[::1]:9/client/v4";
	c = client_for(&cfg);
	ts_cf_client_free(c);
	cfg.api_base_url = "http://127.5.6.7:9/client/v4";
	c = client_for(&cfg);
	ts_cf_client_free(c);

	/* Not loopback: refused even when allowed. */
	c = NULL;
	cfg.api_base_url = "http://[::2]:8080/client/v4";
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -EPERM);
	cfg.api_base_url = "http://192.0.2.10:8080/client/v4";
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -EPERM);
	cfg.api_base_url = "http://127.0.0.1.example.com/client/v4";
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -EPERM);
	cfg.api_base_url = "ftp://127.0.0.1/client/v4";
	assert_int_equal(ts_cf_client_new(&cfg, &test_opts, &c, &err), -EINVAL);
	assert_null(c);
	ts_cf_error_done(&err);
}

static void test_fault_429(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	int st[4];

	emu_fault(&tls_emu,
		  "{\"rules\":[{\"method\":\"GET\",\"path\":\"/ipsec_tunnels$\","
		  "\"action\":\"status\",\"status\":429,\"retry_after\":7,\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(n_sleeps, 1);
	assert_int_equal(sleeps[0], 7 * TS_USEC_PER_SEC);
	assert_int_equal(emu_count(&tls_emu, "GET", "/ipsec_tunnels", st, 4), 2);
	assert_int_equal(st[0], 429);
	assert_int_equal(st[1], 200);

	/* A Retry-After beyond the bound is not waited for. */
	emu_clear_log(&tls_emu);
	n_sleeps = 0;
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"status\","
			    "\"status\":429,\"retry_after\":300,\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EBUSY);
	assert_int_equal(err.http_status, 429);
	assert_int_equal(err.retry_after, 300 * TS_USEC_PER_SEC);
	assert_int_equal(err.errors[0].code, 971);
	assert_int_equal(n_sleeps, 0);
	assert_int_equal(emu_count(&tls_emu, "GET", "", NULL, 0), 1);

	/* ... but honoured by every later call: nothing is sent before it,
	 * and the state a new client (another process) takes over says so. */
	{
		struct ts_cf_client_state cs;
		struct ts_cf_client *c2 = tls_client();

		emu_clear_log(&tls_emu);
		assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EAGAIN);
		assert_int_equal(err.kind, TS_CF_ERR_BUDGET);
		assert_non_null(strstr(err.detail, "rate-limited"));
		assert_true(err.retry_after > 290 * TS_USEC_PER_SEC);
		ts_cf_client_state_get(c, &cs);
		assert_true(cs.rate_limited);
		assert_true(cs.hold_until > ts_now_realtime() + 290 * TS_USEC_PER_SEC);
		ts_cf_client_state_set(c2, &cs);
		assert_int_equal(ts_cf_list_tunnels(c2, &list, &err), -EAGAIN);
		assert_int_equal(emu_count(&tls_emu, "GET", "", NULL, 0), 0);
		ts_cf_client_free(c2);
	}
	ts_cf_error_done(&err);
}

static void test_fault_503_then_ok(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel t = { 0 };
	struct ts_cf_error err = { 0 };
	int st[4];

	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"status\","
			    "\"status\":503,\"count\":2}]}");
	assert_int_equal(ts_cf_get_tunnel(c, EMU_TUNNEL1, &t, &err), 0);
	ts_cf_tunnel_done(&t);
	assert_int_equal(emu_count(&tls_emu, "GET", "/" EMU_TUNNEL1, st, 4), 3);
	assert_int_equal(st[0], 503);
	assert_int_equal(st[1], 503);
	assert_int_equal(st[2], 200);
	/* Exponential backoff with jitter: [d/2, d] for d = 100 ms, 200 ms. */
	assert_int_equal(n_sleeps, 2);
	assert_in_range(sleeps[0], 50000, 100000);
	assert_in_range(sleeps[1], 100000, 200000);
}

static void test_fault_500_persistent(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	_cleanup_secret_ struct ts_secret *k = NULL;
	struct ts_cf_psk_set_result res = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_psk_entry e;

	assert_int_equal(ts_secret_random_alnum(32, &k), 0);
	e = (struct ts_cf_psk_entry){ EMU_TUNNEL1, k };
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"POST\",\"action\":\"status\","
			    "\"status\":500,\"code\":10002,\"message\":\"boom\",\"count\":-1}]}");
	assert_int_equal(ts_cf_psk_set(c, &e, 1, false, &res, &err), -EREMOTEIO);
	assert_int_equal(err.kind, TS_CF_ERR_HTTP);
	assert_int_equal(err.http_status, 500);
	assert_int_equal(err.errors[0].code, 10002);
	assert_string_equal(err.errors[0].message, "boom");
	assert_int_equal(err.attempts, 4);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk", NULL, 0), 4);
	assert_int_equal(n_sleeps, 3);
	ts_cf_error_done(&err);
}

static void test_fault_timeout_read(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;

	cfg_init(&cfg, &tls_emu);
	cfg.request_timeout = 3; /* valgrind and a loaded machine stay well inside */
	c = client_for(&cfg);
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"delay\","
			    "\"delay\":6,\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(err.attempts, 2);
	assert_int_equal(emu_count(&tls_emu, "GET", "/ipsec_tunnels", NULL, 0), 2);
	assert_int_equal(n_sleeps, 1);
	ts_cf_client_free(c);
}

/* The wait hook: a pipe made readable while the list's answer is held
 * back 0.5 s; the hook runs during the request (the answer still to
 * come), may not use the client (-EBUSY), and once it says "stop" it is
 * not called again in that request, though its fd stays readable. */
struct hook_probe {
	int fd;
	unsigned calls;
	int answer;
	int nested;
	struct ts_cf_client *c;
};

static void hook_fds(void *userdata, int *fds)
{
	struct hook_probe *h = userdata;

	fds[0] = h->fd;
}

static int hook_ready(void *userdata)
{
	struct hook_probe *h = userdata;
	struct ts_cf_tunnel_list l = { 0 };
	struct ts_cf_error e = { 0 };

	if (h->calls++ == 0) {
		h->nested = ts_cf_list_tunnels(h->c, &l, &e);
		ts_cf_tunnel_list_done(&l);
		ts_cf_error_done(&e);
	}
	return h->answer;
}

static void test_wait_hook(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct hook_probe h = { .answer = 1 };
	struct ts_cf_wait_hook hook = { hook_fds, hook_ready, &h };
	int p[2];
	(void)state;

	assert_int_equal(pipe(p), 0);
	h.fd = p[0];
	h.c = c;
	assert_int_equal(write(p[1], "x", 1), 1);
	ts_cf_client_set_wait_hook(c, &hook);
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"delay\","
			    "\"delay\":0.5,\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	assert_int_equal(h.calls, 1); /* "stop": not again, the pipe still readable */
	assert_int_equal(h.nested, -EBUSY);
	assert_int_equal(err.attempts, 1);
	ts_cf_tunnel_list_done(&list);

	/* Going on watching: called for each round while readable, and the
	 * request still completes; then cleared, not called at all. */
	h = (struct hook_probe){ .fd = p[0], .c = c, .answer = 0 };
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"delay\","
			    "\"delay\":0.3,\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(list.n_tunnels, 2);
	assert_true(h.calls > 1);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_set_wait_hook(c, NULL);
	h.calls = 0;
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	assert_int_equal(h.calls, 0);
	ts_cf_tunnel_list_done(&list);
	ts_cf_error_done(&err);
	close(p[0]);
	close(p[1]);
}

static void test_lost_bulk_response_retried(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	_cleanup_secret_ struct ts_secret *k = NULL;
	struct ts_cf_psk_set_result res = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_psk_entry e;
	char fp[32], want[TS_FINGERPRINT_LEN];

	assert_int_equal(ts_secret_random_alnum(32, &k), 0);
	e = (struct ts_cf_psk_entry){ EMU_TUNNEL1, k };
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"POST\",\"path\":\"/psk$\","
			    "\"action\":\"drop\",\"count\":1}]}");
	/* Setting the same key again is harmless: the bulk call is retried. */
	assert_int_equal(ts_cf_psk_set(c, &e, 1, false, &res, &err), 0);
	assert_int_equal(res.n_applied, 1);
	ts_cf_psk_set_result_done(&res);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk", NULL, 0), 2);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	ts_secret_fingerprint(k, want);
	assert_string_equal(fp, want);
}

/* A 1 MiB response header is named for what it is and not retried (curl
 * 7.88 calls it "out of memory"); for psk_generate the key is lost. */
static void test_huge_response_header(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };

	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"huge_header\","
			    "\"count\":-1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EMSGSIZE);
	assert_int_equal(err.kind, TS_CF_ERR_PROTOCOL);
	assert_int_equal(err.attempts, 1);
	assert_non_null(strstr(err.detail, "response header too large"));
	assert_null(strstr(err.detail, "memory"));
	assert_int_equal(n_sleeps, 0);
	emu_reset(&tls_emu);
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk_generate$\",\"action\":\"huge_header\","
			    "\"count\":-1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err),
			 -TS_CF_EOUTCOME_UNKNOWN);
	assert_non_null(strstr(err.detail, "response header too large"));
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 1);
	ts_cf_error_done(&err);
}

static void test_psk_generate_lost_response(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	char fp_before[32], fp[32];
	int st[4];

	/* A keep-alive connection exists: curl must not replay on it. */
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp_before);
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"POST\",\"path\":\"/psk_generate$\","
			    "\"action\":\"drop\",\"count\":1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err),
			 -TS_CF_EOUTCOME_UNKNOWN);
	assert_int_equal(err.kind, TS_CF_ERR_OUTCOME_UNKNOWN);
	assert_null(g.psk);
	assert_int_equal(n_sleeps, 0);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", st, 4), 1);
	assert_int_equal(st[0], 0);
	/* The edge did change the key: exactly why a retry would be wrong. */
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	assert_string_not_equal(fp, fp_before);
	ts_cf_error_done(&err);
}

/* Sleeps until the client's hold after a failed call has ended. */
static void wait_hold_over(const struct ts_cf_client *c)
{
	struct ts_cf_client_state cs;

	for (int i = 0; i < 600; i++) {
		ts_cf_client_state_get(c, &cs);
		if (!cs.hold_until || cs.hold_until < ts_now_realtime())
			return;
		usleep(50 * 1000);
	}
	fail_msg("the client's hold did not end within 30 s");
}

static void test_psk_generate_5xx_and_timeout(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;

	cfg_init(&cfg, &tls_emu);
	cfg.request_timeout = 3; /* valgrind and a loaded machine stay well inside */
	c = client_for(&cfg);
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk_generate$\",\"action\":\"status\","
			    "\"status\":503,\"count\":-1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err),
			 -TS_CF_EOUTCOME_UNKNOWN);
	assert_int_equal(err.http_status, 503);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 1);
	/* The failed call holds the next one back (test_backoff_across_calls
	 * checks the hold itself); wait it out by the client's own clock, not
	 * by a fixed sleep that a loaded machine outlives. */
	wait_hold_over(c);

	emu_reset(&tls_emu);
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk_generate$\",\"action\":\"delay\","
			    "\"delay\":6,\"count\":1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err),
			 -TS_CF_EOUTCOME_UNKNOWN);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 1);
	wait_hold_over(c); /* second failure in a row: a longer hold */

	/* A 429 is a refusal, not an unknown outcome: waited for and retried. */
	emu_reset(&tls_emu);
	n_sleeps = 0;
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk_generate$\",\"action\":\"status\","
			    "\"status\":429,\"retry_after\":1,\"count\":1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err), 0);
	assert_non_null(g.psk);
	ts_cf_psk_generated_done(&g);
	assert_int_equal(n_sleeps, 1);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 2);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

/* Failures back off across calls: after a call that ended in 5xx the next
 * sends nothing until the hold ends (backoff_base 10 s here, so that no
 * loaded machine outlives it), and the state says so. */
static void test_backoff_across_calls(void **state)
{
	struct ts_cf_client_options opts = test_opts;
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client_state cs;
	struct ts_cf_client *c = NULL;

	opts.backoff_base = 10 * TS_USEC_PER_SEC;
	opts.max_attempts = 1;
	cfg_init(&cfg, &tls_emu);
	assert_int_equal(ts_cf_client_new(&cfg, &opts, &c, &err), 0);
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"status\","
			    "\"status\":503,\"count\":-1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EREMOTEIO);
	emu_clear_log(&tls_emu);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EAGAIN);
	assert_int_equal(err.kind, TS_CF_ERR_BUDGET);
	assert_non_null(strstr(err.detail, "backing off"));
	assert_true(err.retry_after > 4 * TS_USEC_PER_SEC);
	assert_int_equal(emu_count(&tls_emu, "GET", "", NULL, 0), 0);
	ts_cf_client_state_get(c, &cs);
	assert_false(cs.rate_limited);
	assert_int_equal(cs.consecutive_failures, 1);
	assert_true(cs.hold_until > ts_now_realtime());
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

/* Seconds (as a double) the client holds its next call, from its state. */
static double hold_left(const struct ts_cf_client *c)
{
	struct ts_cf_client_state cs;

	ts_cf_client_state_get(c, &cs);
	return cs.hold_until ? (double)(cs.hold_until - ts_now_realtime()) / TS_USEC_PER_SEC : 0;
}

/* Across calls (passes) the hold doubles with each failed call, base << (k
 * - 1) with jitter down to half of it, well beyond two steps, and stops
 * at TS_CF_BACKOFF_ACROSS_MAX; an answered call resets it. */
static void test_backoff_grows_and_caps(void **state)
{
	struct ts_cf_client_options opts = test_opts;
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client_state cs = { 0 };
	struct ts_cf_client *c = NULL;
	const ts_usec_t base = 20 * 1000; /* 20 ms: six steps in about 1.3 s */

	opts.backoff_base = base;
	opts.max_attempts = 1;
	cfg_init(&cfg, &tls_emu);
	assert_int_equal(ts_cf_client_new(&cfg, &opts, &c, &err), 0);
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"status\","
			    "\"status\":503,\"count\":-1}]}");
	for (unsigned k = 1; k <= 6; k++) {
		double want = (double)(base << (k - 1)) / TS_USEC_PER_SEC, left;

		while (hold_left(c) > 0)
			usleep(2000);
		assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EREMOTEIO);
		left = hold_left(c);
		ts_cf_client_state_get(c, &cs);
		assert_int_equal(cs.consecutive_failures, k);
		/* jitter: between half of it and all of it (less what elapsed) */
		if (!(left <= want + 0.001 && left >= want / 2 - 0.01))
			fail_msg("step %u: held %.3f s, want %.3f..%.3f s", k, left, want / 2,
				 want);
	}
	/* Many failures later (a state from an earlier process): capped. */
	cs = (struct ts_cf_client_state){ .consecutive_failures = 15 };
	ts_cf_client_state_set(c, &cs);
	while (hold_left(c) > 0)
		usleep(2000);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EREMOTEIO);
	assert_true(hold_left(c) <= (double)TS_CF_BACKOFF_ACROSS_MAX / TS_USEC_PER_SEC);
	assert_true(hold_left(c) >= (double)TS_CF_BACKOFF_ACROSS_MAX / TS_USEC_PER_SEC / 2 - 1);
	ts_cf_client_state_get(c, &cs);
	assert_int_equal(cs.consecutive_failures, 16);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd); /* bound, never listened: connections are refused */
	return port;
}

static void test_connection_refused(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;
	char url[128];

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/client/v4", closed_port());
	cfg_init(&cfg, &tls_emu);
	cfg.api_base_url = url;
	c = client_for(&cfg);
	/* Nothing was sent, so even psk_generate may be retried. */
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err), -ECONNREFUSED);
	assert_int_equal(err.kind, TS_CF_ERR_TRANSPORT);
	assert_int_equal(err.attempts, 4);
	assert_int_equal(n_sleeps, 3);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

static void test_malformed_responses(void **state)
{
	_cleanup_cf_client_ struct ts_cf_client *c = tls_client();
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_tunnel t = { 0 };
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	char fp_before[32], fp[32];

	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"malformed\","
			    "\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EBADMSG);
	assert_int_equal(err.kind, TS_CF_ERR_PROTOCOL);
	assert_int_equal(err.attempts, 1);

	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"malformed\","
			    "\"body\":\"<html>502 Bad Gateway</html>\",\"count\":1}]}");
	assert_int_equal(ts_cf_get_tunnel(c, EMU_TUNNEL1, &t, &err), -EBADMSG);

	/* success:false with HTTP 200: an error, with the errors kept. */
	emu_fault(&tls_emu, "{\"rules\":[{\"method\":\"GET\",\"action\":\"malformed\","
			    "\"body\":\"{\\\"success\\\":false,\\\"errors\\\":[{\\\"code\\\":1012,"
			    "\\\"message\\\":\\\"not onboarded\\\"}],\\\"messages\\\":[],"
			    "\\\"result\\\":null}\",\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EBADMSG);
	assert_int_equal(err.n_errors, 1);
	assert_int_equal(err.errors[0].code, 1012);

	/* Wrong types inside a tunnel. */
	emu_fault(&tls_emu,
		  "{\"rules\":[{\"method\":\"GET\",\"action\":\"malformed\","
		  "\"body\":\"{\\\"success\\\":true,\\\"errors\\\":[],\\\"messages\\\":[],"
		  "\\\"result\\\":{\\\"ipsec_tunnels\\\":[{\\\"id\\\":7}]}}\","
		  "\"count\":1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EBADMSG);
	assert_non_null(strstr(err.detail, "ipsec_tunnels[0].id"));

	/* An unreadable psk_generate answer: a key was made and is lost. */
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp_before);
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk_generate$\",\"action\":\"malformed\","
			    "\"count\":1}]}");
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err),
			 -TS_CF_EOUTCOME_UNKNOWN);
	emu_fingerprint(&tls_emu, EMU_TUNNEL1, fp);
	assert_string_not_equal(fp, fp_before);
	assert_int_equal(emu_count(&tls_emu, "POST", "/psk_generate", NULL, 0), 1);
	ts_cf_error_done(&err);
}

static void test_budget(void **state)
{
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c;
	int ok = 0, refused = 0;

	cfg_init(&cfg, &tls_emu);
	cfg.request_budget = 5;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_client_budget_available(c), 5);
	for (int i = 0; i < 9; i++) {
		int r = ts_cf_list_tunnels(c, &list, &err);

		if (r == 0) {
			ok++;
			ts_cf_tunnel_list_done(&list);
		} else {
			assert_int_equal(r, -EAGAIN);
			assert_int_equal(err.kind, TS_CF_ERR_BUDGET);
			/* One token per 60 s: the wait is about a minute, not five. */
			assert_in_range(err.retry_after, 50 * TS_USEC_PER_SEC,
					60 * TS_USEC_PER_SEC);
			refused++;
		}
	}
	assert_int_equal(ok, 5);
	assert_int_equal(refused, 4);
	assert_int_equal(ts_cf_client_budget_available(c), 0);
	assert_int_equal(emu_count(&tls_emu, "GET", "", NULL, 0), 5);
	assert_int_equal(n_sleeps, 0);
	ts_cf_client_free(c);

	/* Retries draw from the same budget. */
	emu_clear_log(&tls_emu);
	cfg.request_budget = 3;
	c = client_for(&cfg);
	emu_fault(&tls_emu, "{\"rules\":[{\"action\":\"status\",\"status\":503,\"count\":-1}]}");
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EAGAIN);
	assert_int_equal(err.kind, TS_CF_ERR_BUDGET);
	assert_int_equal(emu_count(&tls_emu, "GET", "", NULL, 0), 3);
	ts_cf_client_free(c);
	ts_cf_error_done(&err);
}

/* ---- secrets never reach any output ---- */

static char *captured;
static size_t captured_len;

static void capture_sink(enum ts_log_level level, const char *line, void *userdata)
{
	size_t n = strlen(line);
	char *grown = realloc(captured, captured_len + n + 2);

	assert_non_null(grown);
	captured = grown;
	memcpy(captured + captured_len, line, n);
	captured[captured_len + n] = '\n';
	captured_len += n + 1;
	captured[captured_len] = '\0';
}

static void assert_absent(const char *hay, const char *needle, const char *where)
{
	if (hay && strstr(hay, needle)) {
		fprintf(stderr, "secret found in %s\n", where);
		fail();
	}
}

static void test_trace_has_no_secrets(void **state)
{
	_cleanup_secret_ struct ts_secret *k1 = NULL, *k2 = NULL;
	struct ts_cloudflare_config cfg;
	struct ts_cf_tunnel_list list = { 0 };
	struct ts_cf_psk_set_result res = { 0 };
	struct ts_cf_psk_generated g = { 0 };
	struct ts_cf_error err = { 0 };
	struct ts_cf_psk_entry e[2];
	struct ts_cf_client *c;
	char stderr_path[300], generated[64] = "", k1s[64], k2s[64];
	char *err_out = NULL, *emu_out = NULL;
	size_t len;
	int saved, fd;

	assert_int_equal(ts_secret_random_alnum(32, &k1), 0);
	assert_int_equal(ts_secret_random_alnum(32, &k2), 0);
	snprintf(k1s, sizeof(k1s), "%s", ts_secret_str(k1));
	snprintf(k2s, sizeof(k2s), "%s", ts_secret_str(k2));
	e[0] = (struct ts_cf_psk_entry){ EMU_TUNNEL1, k1 };
	e[1] = (struct ts_cf_psk_entry){ EMU_TUNNEL2, k2 };

	snprintf(stderr_path, sizeof(stderr_path), "%s/client.stderr", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	ts_log_set_level(TS_LOG_TRACE);
	ts_log_set_sink(capture_sink, NULL);

	cfg_init(&cfg, &tls_emu);
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	assert_int_equal(ts_cf_psk_set(c, e, 2, true, &res, &err), 0);
	ts_cf_psk_set_result_done(&res);
	assert_int_equal(ts_cf_psk_set(c, e, 2, false, &res, &err), 0);
	ts_cf_psk_set_result_done(&res);
	emu_fault(&tls_emu, "{\"rules\":[{\"path\":\"/psk$\",\"action\":\"status\",\"status\":"
			    "503,\"count\":1}]}");
	assert_int_equal(ts_cf_psk_set(c, e, 2, false, &res, &err), 0);
	ts_cf_psk_set_result_done(&res);
	assert_int_equal(ts_cf_psk_generate(c, EMU_TUNNEL1, false, &g, &err), 0);
	snprintf(generated, sizeof(generated), "%s", ts_secret_str(g.psk));
	ts_cf_psk_generated_done(&g);
	ts_cf_client_free(c);

	cfg.auth = TS_CF_AUTH_EMAIL_KEY;
	cfg.email = EMU_EMAIL;
	cfg.key_file = key_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), 0);
	ts_cf_tunnel_list_done(&list);
	ts_cf_client_free(c);
	cfg.auth = TS_CF_AUTH_TOKEN;
	cfg.token_file = bad_token_path;
	c = client_for(&cfg);
	assert_int_equal(ts_cf_list_tunnels(c, &list, &err), -EACCES);
	ts_cf_client_free(c);

	ts_log_set_sink(NULL, NULL);
	ts_log_set_level(TS_LOG_INFO);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	/* The trace really was on, with headers shown and credentials hidden. */
	assert_non_null(captured);
	assert_non_null(strstr(captured, "curl > POST "));
	assert_non_null(strstr(captured, "Authorization: (hidden)"));
	assert_non_null(strstr(captured, "X-Auth-Key: (hidden)"));
	assert_non_null(strstr(captured, "bytes of body not shown"));
	assert_true(strlen(generated) == 32);
	assert_int_equal(ts_file_read_all(stderr_path, 1 << 20, &err_out, &len), 0);
	assert_int_equal(ts_file_read_all(tls_emu.stderr_path, 1 << 22, &emu_out, &len), 0);
	assert_non_null(strstr(emu_out, "psk_generate")); /* the emulator's log was on */
	{
		const char *outputs[] = { captured, err_out, emu_out };
		const char *names[] = { "log lines", "stderr", "emulator stderr" };
		const char *secrets[] = { EMU_TOKEN,   EMU_API_KEY, "tstoken-not-the-right-one",
					  k1s,	       k2s,	    generated,
					  EMU_SEED_PSK };

		for (size_t i = 0; i < TS_ARRAY_SIZE(outputs); i++) {
			for (size_t j = 0; j < TS_ARRAY_SIZE(secrets); j++)
				assert_absent(outputs[i], secrets[j], names[i]);
			/* The redactor is the last line of defence: it must
			 * have had nothing to do. */
			assert_absent(outputs[i], "[redacted]", names[i]);
		}
	}
	ts_wipe(generated, sizeof(generated));
	ts_wipe(k1s, sizeof(k1s));
	ts_wipe(k2s, sizeof(k2s));
	free(err_out);
	free(emu_out);
	free(captured);
	captured = NULL;
	captured_len = 0;
	ts_cf_error_done(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_list_and_get, test_setup),
		cmocka_unit_test_setup(test_update_tunnel, test_setup),
		cmocka_unit_test_setup(test_psk_set, test_setup),
		cmocka_unit_test_setup(test_psk_set_partial, test_setup),
		cmocka_unit_test_setup(test_psk_generate, test_setup),
		cmocka_unit_test_setup(test_email_key_auth, test_setup),
		cmocka_unit_test_setup(test_wrong_credentials, test_setup),
		cmocka_unit_test_setup(test_token_from_env, test_setup),
		cmocka_unit_test_setup(test_token_from_credentials_directory, test_setup),
		cmocka_unit_test_setup(test_untrusted_certificate, test_setup),
		cmocka_unit_test_setup(test_trust_bundle, test_setup),
		cmocka_unit_test_setup(test_trust_file_errors, test_setup),
		cmocka_unit_test_setup(test_trust_system_store, test_setup),
		cmocka_unit_test_setup(test_idle_closes_connections, test_setup),
		cmocka_unit_test_setup(test_plain_http, test_setup),
		cmocka_unit_test_setup(test_fault_429, test_setup),
		cmocka_unit_test_setup(test_fault_503_then_ok, test_setup),
		cmocka_unit_test_setup(test_fault_500_persistent, test_setup),
		cmocka_unit_test_setup(test_fault_timeout_read, test_setup),
		cmocka_unit_test_setup(test_wait_hook, test_setup),
		cmocka_unit_test_setup(test_lost_bulk_response_retried, test_setup),
		cmocka_unit_test_setup(test_psk_generate_lost_response, test_setup),
		cmocka_unit_test_setup(test_huge_response_header, test_setup),
		cmocka_unit_test_setup(test_psk_generate_5xx_and_timeout, test_setup),
		cmocka_unit_test_setup(test_backoff_across_calls, test_setup),
		cmocka_unit_test_setup(test_backoff_grows_and_caps, test_setup),
		cmocka_unit_test_setup(test_connection_refused, test_setup),
		cmocka_unit_test_setup(test_malformed_responses, test_setup),
		cmocka_unit_test_setup(test_budget, test_setup),
		cmocka_unit_test_setup(test_trace_has_no_secrets, test_setup),
	};

	/* As main() does: before the emulator helpers' own curl calls. */
	ts_cf_global_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
