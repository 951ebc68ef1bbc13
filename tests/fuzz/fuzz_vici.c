/* Fuzz target for the VICI codec and the event classifier: any input is
 * decoded as a frame and as a bare message body; whatever decodes must
 * encode back to a tree that decodes equal, and must classify and compare
 * without a fault. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ike.h"
#include "ike/vici.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_body_roundtrip(const struct ts_vici_node *root)
{
	struct ts_vici_node *again = NULL;
	uint8_t *buf;
	size_t len;

	if (ts_vici_body_encode(root, &buf, &len, NULL) < 0)
		abort();
	if (ts_vici_body_decode(buf, len, &again) < 0 || !ts_vici_node_equal(root, again))
		abort();
	ts_vici_node_free(again);
	free(buf);
}

static void exercise_ike(const char *event, const struct ts_vici_node *body)
{
	static const struct ts_tunnel t = {
		.name = "fuzz",
		.id = "0123456789abcdef0123456789abcdef",
		.customer_endpoint = { AF_INET, { 192, 0, 2, 1 } },
		.cloudflare_endpoint = { AF_INET, { 192, 0, 2, 2 } },
		.ike = { .ike_sa = { TS_ENCR_AES256_GCM16, 0, TS_PRF_HMAC_SHA2_256, TS_DH_ECP384 },
			 .child_sa = { TS_ENCR_AES256_GCM16, 0, 0, TS_DH_ECP384 },
			 .ike_sa_lifetime = 86400,
			 .child_sa_lifetime = 28800,
			 .dpd_delay = 10 },
	};
	struct ts_ike_event ev;
	char diff[64];

	(void)ts_ike_event_parse(event, body, &ev);
	for (size_t i = 0; i < body->n_children; i++)
		(void)ts_ike_conn_compare(&t, "fedcba9876543210fedcba9876543210", body->children[i],
					  diff, sizeof(diff));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_vici_packet p;
	struct ts_vici_node *root;

	if (ts_vici_frame_decode(data, size, &p) == 0) {
		struct ts_vici_packet q;
		uint8_t *buf;
		size_t len;

		if (ts_vici_packet_encode(p.type, p.name, p.body, &buf, &len, NULL) < 0)
			abort();
		if (ts_vici_frame_decode(buf, len, &q) < 0 || q.type != p.type ||
		    strcmp(q.name, p.name) != 0 || !ts_vici_node_equal(p.body, q.body))
			abort();
		if (p.body)
			exercise_ike(p.name, p.body);
		ts_vici_packet_done(&q);
		ts_vici_packet_done(&p);
		free(buf);
	}
	if (ts_vici_body_decode(data, size, &root) == 0) {
		check_body_roundtrip(root);
		exercise_ike("log", root);
		ts_vici_node_free(root);
	}
	return 0;
}
