/* Fuzz target for the small state-directory files the agent reads back
 * (a crash, a disk error or a hand edit may leave anything in them):
 *   mode 0: STATE_DIR/conns/NAME.conn, the leaves last loaded into charon
 *           (store/conn_record.c); bit 2 of the mode byte seals the rest
 *           with a valid checksum line, so the parser behind it is reached;
 *   mode 1: STATE_DIR/conns/NAME.failing (since when an update failed);
 *   mode 2: STATE_DIR/api-state.json, the API client's budget, hold and
 *           failure count across processes (reconcile/status.c), into a
 *           real API client;
 *   mode 3: STATE_DIR/journal/NAME.req, rotation requests (store/requests.c),
 *           through a whole load of the state directory.
 * The first byte selects the mode, the rest is the file, written to a
 * private temporary state directory as the agent would find it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloudflare/cloudflare.h"
#include "core/log.h"
#include "core/sha256.h"
#include "fuzz_files.h"
#include "reconcile/agent.h"
#include "reconcile/agent_internal.h"
#include "store/conn_record.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/ts-fuzz-state-XXXXXX";
static char conn_path[96], failing_path[96], api_path[96], req_path[96], token_path[96];
static char conns_dir[80];
static struct ts_store *store;
static struct ts_cloudflare_config cfg;

static void cleanup(void)
{
	ts_store_close(store);
	unlink(conn_path);
	unlink(failing_path);
	unlink(api_path);
	unlink(req_path);
	unlink(token_path);
	rmdir(conns_dir);
	fuzz_remove_store_dir(dir);
}

static void put(const char *path, const uint8_t *data, size_t size, bool seal)
{
	FILE *f = fopen(path, "w");

	if (!f || (size && fwrite(data, 1, size, f) != size))
		abort();
	if (seal) {
		uint8_t d[TS_SHA256_DIGEST_LEN];
		char hex[65];

		ts_sha256(data, size, d);
		ts_sha256_hex(d, hex);
		fprintf(f, "sha256=%s\n", hex);
	}
	if (fclose(f) != 0)
		abort();
}

static void init(void)
{
	if (!mkdtemp(dir) || ts_store_open(dir, &store, NULL) < 0)
		abort();
	snprintf(conns_dir, sizeof(conns_dir), "%s/" TS_CONN_RECORD_DIR, dir);
	if (mkdir(conns_dir, 0700) < 0)
		abort();
	snprintf(conn_path, sizeof(conn_path), "%s/t1.conn", conns_dir);
	snprintf(failing_path, sizeof(failing_path), "%s/t1.failing", conns_dir);
	snprintf(api_path, sizeof(api_path), "%s/api-state.json", dir);
	snprintf(req_path, sizeof(req_path), "%s/journal/t1.req", dir);
	snprintf(token_path, sizeof(token_path), "%s/token", dir);
	atexit(cleanup);
	put(token_path, (const uint8_t *)"fuzz-token-0123456789", 21, false);
	snprintf(cfg.account_id, sizeof(cfg.account_id), "023e105f4ecef8ad9ca31a8372d0c353");
	cfg.api_base_url = (char *)"http://127.0.0.1:9/client/v4";
	cfg.allow_plain_http_loopback = true;
	cfg.auth = TS_CF_AUTH_TOKEN;
	cfg.token_file = token_path;
	cfg.request_budget = 1200;
	cfg.connect_timeout = 1;
	cfg.request_timeout = 1;
	ts_log_set_level(TS_LOG_ERROR);
}

static struct ts_cf_client *cf_of(void *ctx)
{
	return ctx;
}

static void api_state(const uint8_t *data, size_t size)
{
	static const struct ts_planes_ops ops = { .cf_client = cf_of };
	struct ts_cf_client_state before, after;
	struct ts_cf_error err = { 0 };
	struct ts_cf_client *c = NULL;
	struct ts_agent a = { .state_dir = dir };

	if (ts_cf_client_new(&cfg, NULL, &c, &err) < 0)
		abort();
	a.planes.ops = &ops;
	a.planes.ctx = c;
	put(api_path, data, size, false);
	ts_cf_client_state_get(c, &before);
	(void)ts_agent_api_state_load(&a);
	ts_cf_client_state_get(c, &after);
	/* A state read back never makes the client less careful, and the
	 * failure count stays bounded whatever the file says. */
	if (after.consecutive_failures < before.consecutive_failures ||
	    after.consecutive_failures > 16)
		abort();
	ts_cf_client_free(c);
	unlink(api_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;

	if (!store)
		init();
	if (size == 0)
		return 0;
	mode = data[0];
	data++, size--;
	switch (mode & 3) {
	case 0: {
		struct ts_ike_leaves l = { 0 };
		char fp[TS_FINGERPRINT_LEN];

		put(conn_path, data, size, mode & 4);
		if (ts_conn_record_read(dir, "t1", &l, fp) == 0) {
			if (strlen(fp) >= TS_FINGERPRINT_LEN)
				abort();
			ts_ike_leaves_done(&l);
		}
		unlink(conn_path);
		break;
	}
	case 1: {
		ts_usec_t since = 0;

		put(failing_path, data, size, false);
		if (ts_conn_record_failing_read(dir, "t1", &since) == 0 && since <= 0)
			abort();
		unlink(failing_path);
		break;
	}
	case 2:
		api_state(data, size);
		break;
	case 3: {
		struct ts_store_state *st = NULL;

		put(req_path, data, size, false);
		if (ts_store_load(store, &st) == 0) {
			for (size_t i = 0; i < st->n_requests; i++)
				if (strcmp(st->requests[i].tunnel, "t1") != 0 ||
				    st->requests[i].requested_at < 0)
					abort();
			ts_store_state_free(st);
		}
		unlink(req_path);
		break;
	}
	}
	return 0;
}
