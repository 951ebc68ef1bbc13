/* Fuzz target for the Cloudflare response parsers: the same bytes are fed
 * to every parser, as a 2xx body and as an error body, with the request
 * shapes the client uses (two tunnels in a bulk set, generate with and
 * without validate_only), and as the GET of one tunnel that the tunnel
 * update body is built on (a declared tunnel with every cf leaf set, and
 * a bare one). Nothing may crash, leak or read out of bounds; a built
 * update must be a JSON object that carries no key (psk). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudflare/parse.h"
#include "core/secret.h"
#include "model/tunnel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void update(const void *data, size_t size, long st, const struct ts_tunnel *t)
{
	struct ts_cf_error err = { 0 };
	char *body = NULL;
	size_t len = 0;

	if (ts_cf_build_tunnel_update(data, size, st, t, &body, &len, &err) == 0) {
		json_t *req = json_loadb(body, len, 0, NULL);

		if (!json_is_object(req) || json_object_get(req, "psk") ||
		    !json_object_get(req, "cloudflare_endpoint"))
			abort();
		json_decref(req);
		free(body);
	}
	ts_cf_error_done(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_tunnel declared, bare;
	static const long statuses[] = { 200, 404, 429, 500 };
	static struct ts_secret *k1, *k2;
	struct ts_cf_psk_entry entries[2];

	if (!k1 && (ts_secret_from_bytes("O3bwKSjnaoCxDoUxjcq4Rk8ZKkezQUiy", 32, &k1) < 0 ||
		    ts_secret_from_bytes("second-key-0123456789", 21, &k2) < 0))
		abort();
	if (!declared.cf.description) {
		declared = (struct ts_tunnel){
			.customer_endpoint = { AF_INET, { 192, 0, 2, 1 } },
			.cloudflare_endpoint = { AF_INET, { 192, 0, 2, 2 } },
			.interface_address = { { AF_INET, { 10, 0, 0, 1 } }, 31 },
			.interface_address6 = { { AF_INET6, { 0xfd, 0, [15] = 1 } }, 127 },
			.cf = { .description = strdup("fuzz"),
				.has_replay_protection = true,
				.has_hc_enabled = true,
				.hc_enabled = true,
				.hc_rate = "low",
				.hc_type = "request",
				.hc_direction = "bidirectional",
				.hc_target = { AF_INET, { 203, 0, 113, 9 } } },
		};
		bare = (struct ts_tunnel){
			.cloudflare_endpoint = { AF_INET, { 192, 0, 2, 2 } },
			.interface_address = { { AF_INET, { 10, 0, 0, 1 } }, 31 },
		};
		if (!declared.cf.description)
			abort();
	}
	entries[0] = (struct ts_cf_psk_entry){ "c4a7362d577a6c3019a474fd6f485821", k1 };
	entries[1] = (struct ts_cf_psk_entry){ "d4a7362d577a6c3019a474fd6f485822", k2 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct ts_cf_error err = { 0 };
		struct ts_cf_tunnel_list list = { 0 };
		struct ts_cf_tunnel t = { 0 };
		struct ts_cf_psk_set_result res = { 0 };
		struct ts_cf_psk_generated g = { 0 };
		long st = statuses[i];

		if (ts_cf_parse_tunnel_list(data, size, st, &list, &err) == 0)
			ts_cf_tunnel_list_done(&list);
		ts_cf_error_done(&err);
		if (ts_cf_parse_tunnel_single(data, size, st, &t, &err) == 0)
			ts_cf_tunnel_done(&t);
		ts_cf_error_done(&err);
		if (ts_cf_parse_psk_set(data, size, st, entries, 2, &res, &err) == 0)
			ts_cf_psk_set_result_done(&res);
		ts_cf_error_done(&err);
		for (int vo = 0; vo < 2; vo++) {
			if (ts_cf_parse_psk_generate(
				    data, size, st, "023e105f4ecef8ad9ca31a8372d0c353",
				    "c4a7362d577a6c3019a474fd6f485821", vo, &g, &err) == 0)
				ts_cf_psk_generated_done(&g);
			ts_cf_error_done(&err);
		}
		if (ts_cf_parse_tunnel_modified(data, size, st, &t, &err) == 0)
			ts_cf_tunnel_done(&t);
		ts_cf_error_done(&err);
		update(data, size, st, &declared);
		update(data, size, st, &bare);
		ts_cf_parse_error_response(data, size, st, &err);
		ts_cf_error_done(&err);
	}
	return 0;
}
