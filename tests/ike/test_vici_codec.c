/* Unit tests of the VICI codec: round trips, exact wire bytes, every class
 * of malformed input, builder limits, and charon 5.9.8 responses captured
 * on this machine (tests/fuzz/corpus/vici/charon-*.bin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/secret.h"
#include "core/util.h"
#include "ike/vici.h"

#define CORPUS TS_TEST_SOURCE_DIR "/fuzz/corpus/vici/"

static struct ts_vici_node *sample_tree(void)
{
	struct ts_vici_node *root, *conn, *child, *list, *children;

	assert_int_equal(ts_vici_msg_new(&root), 0);
	assert_int_equal(ts_vici_add_section(root, "ts-a", &conn), 0);
	assert_int_equal(ts_vici_add_str(conn, "version", "2"), 0);
	assert_int_equal(ts_vici_add_list(conn, "remote_addrs", &list), 0);
	assert_int_equal(ts_vici_list_add_str(list, "192.0.2.2"), 0);
	assert_int_equal(ts_vici_list_add_str(list, ""), 0);
	assert_int_equal(ts_vici_add_section(conn, "children", &children), 0);
	assert_int_equal(ts_vici_add_section(children, "ts-a", &child), 0);
	assert_int_equal(ts_vici_add_bytes(child, "bin", "\0\1\2", 3), 0);
	assert_int_equal(ts_vici_add_list(child, "empty", &list), 0);
	assert_int_equal(ts_vici_add_str(root, "top", "yes"), 0);
	return root;
}

static void test_roundtrip_body(void **state)
{
	struct ts_vici_node *root = sample_tree(), *again = NULL;
	uint8_t *buf;
	size_t len;
	bool secret = true;

	assert_int_equal(ts_vici_body_encode(root, &buf, &len, &secret), 0);
	assert_false(secret);
	assert_int_equal(ts_vici_body_decode(buf, len, &again), 0);
	assert_true(ts_vici_node_equal(root, again));
	/* Accessors on the decoded copy. */
	const struct ts_vici_node *conn = ts_vici_get_section(again, "ts-a");
	assert_non_null(conn);
	assert_string_equal(ts_vici_get_str(conn, "version"), "2");
	assert_true(ts_vici_get_yes(again, "top"));
	const struct ts_vici_node *ra = ts_vici_get_list(conn, "remote_addrs");
	assert_int_equal(ra->n_children, 2);
	assert_string_equal(ts_vici_node_str(ra->children[0]), "192.0.2.2");
	const struct ts_vici_node *ch =
		ts_vici_get_section(ts_vici_get_section(conn, "children"), "ts-a");
	/* A value holding a NUL is not text. */
	assert_null(ts_vici_get_str(ch, "bin"));
	assert_int_equal(ts_vici_get(ch, "bin")->value_len, 3);
	assert_int_equal(ts_vici_get_list(ch, "empty")->n_children, 0);
	assert_null(ts_vici_get_section(conn, "version"));
	uint32_t v;
	assert_int_equal(ts_vici_get_u32(conn, "version", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(ts_vici_get_u32(conn, "nope", &v), -ENOENT);
	assert_int_equal(ts_vici_get_u32(again, "top", &v), -EINVAL);
	/* A changed value makes the trees differ. */
	ts_vici_get(ch, "bin")->value[0] = 9;
	assert_false(ts_vici_node_equal(root, again));
	ts_vici_node_free(again);
	ts_vici_node_free(root);
	free(buf);
}

static void all_in_block(const struct ts_vici_node *n, bool root)
{
	assert_true(n->in_block);
	assert_int_equal(n->block_root, root);
	assert_int_equal(n->cap_children, n->n_children);
	for (size_t i = 0; i < n->n_children; i++)
		all_in_block(n->children[i], false);
}

/* A decoded tree is one block: every node in it, read-only, freed with its
 * root; it encodes back to the same bytes. */
static void test_decoded_tree_is_one_block(void **state)
{
	struct ts_vici_node *root = sample_tree(), *again = NULL, *s = NULL;
	uint8_t *buf, *buf2;
	size_t len, len2;

	assert_int_equal(ts_vici_body_encode(root, &buf, &len, NULL), 0);
	assert_int_equal(ts_vici_body_decode(buf, len, &again), 0);
	all_in_block(again, true);
	assert_false(root->in_block);
	assert_int_equal(ts_vici_add_str(again, "more", "x"), -EPERM);
	assert_int_equal(ts_vici_add_section(again, "more", &s), -EPERM);
	assert_null(s);
	assert_int_equal(ts_vici_list_add_str(again->children[0]->children[1], "x"), -EPERM);
	assert_int_equal(again->children[0]->children[1]->n_children, 2);
	/* Freeing a member frees nothing (valgrind would see the double free). */
	ts_vici_node_free(again->children[0]);
	assert_int_equal(ts_vici_body_encode(again, &buf2, &len2, NULL), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	/* An empty body: the root alone. */
	ts_vici_node_free(again);
	assert_int_equal(ts_vici_body_decode(buf, 0, &again), 0);
	assert_int_equal(again->n_children, 0);
	assert_true(again->block_root);
	ts_vici_node_free(again);
	ts_vici_node_free(root);
	free(buf2);
	free(buf);
}

static void test_exact_bytes(void **state)
{
	static const uint8_t want[] = {
		0, 0, 0,   0x19,			/* payload length 25 */
		0, 4, 'l', 'i',	 's', 't',		/* request "list" */
		3, 1, 'k', 0,	 1,   'v',		/* k = v */
		1, 1, 's',				/* s { */
		4, 1, 'l', 5,	 0,   2,   'a', 'b', 6, /* l = [ab] */
		2,					/* } */
	};
	struct ts_vici_node *root, *s, *l;
	struct ts_vici_packet p;
	uint8_t *buf;
	size_t len;

	assert_int_equal(ts_vici_msg_new(&root), 0);
	assert_int_equal(ts_vici_add_str(root, "k", "v"), 0);
	assert_int_equal(ts_vici_add_section(root, "s", &s), 0);
	assert_int_equal(ts_vici_add_list(s, "l", &l), 0);
	assert_int_equal(ts_vici_list_add_str(l, "ab"), 0);
	assert_int_equal(ts_vici_packet_encode(TS_VICI_CMD_REQUEST, "list", root, &buf, &len, NULL),
			 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(ts_vici_frame_decode(buf, len, &p), 0);
	assert_int_equal(p.type, TS_VICI_CMD_REQUEST);
	assert_string_equal(p.name, "list");
	assert_true(ts_vici_node_equal(p.body, root));
	ts_vici_packet_done(&p);
	free(buf);
	ts_vici_node_free(root);
}

static void test_packet_types(void **state)
{
	for (int t = 0; t < _TS_VICI_PACKET_MAX; t++) {
		struct ts_vici_packet p;
		uint8_t *buf;
		size_t len;

		assert_int_equal(ts_vici_packet_encode(t, "ike-updown", NULL, &buf, &len, NULL), 0);
		assert_int_equal(ts_vici_frame_decode(buf, len, &p), 0);
		assert_int_equal(p.type, t);
		assert_string_equal(p.name, ts_vici_packet_type_has_name(t) ? "ike-updown" : "");
		assert_true(ts_vici_packet_type_has_body(t) ? p.body != NULL : p.body == NULL);
		ts_vici_packet_done(&p);
		free(buf);
	}
	assert_string_equal(ts_vici_packet_type_to_string(TS_VICI_EVENT_CONFIRM), "event-confirm");
	assert_string_equal(ts_vici_packet_type_to_string(99), "invalid");
}

static int decode_frame(const uint8_t *b, size_t n)
{
	struct ts_vici_packet p;
	int r = ts_vici_frame_decode(b, n, &p);

	if (r == 0)
		ts_vici_packet_done(&p);
	return r;
}

static int decode_body(const uint8_t *b, size_t n)
{
	struct ts_vici_node *root;
	int r = ts_vici_body_decode(b, n, &root);

	if (r == 0)
		ts_vici_node_free(root);
	return r;
}

static void test_malformed(void **state)
{
	/* truncated value: length 50, 3 bytes present */
	static const uint8_t trunc_value[] = { 3, 1, 'k', 0, 50, 'a', 'b', 'c' };
	/* truncated value length field */
	static const uint8_t trunc_vlen[] = { 3, 1, 'k', 0 };
	/* name longer than the buffer */
	static const uint8_t long_name[] = { 1, 200, 'a', 'b', 'c' };
	static const uint8_t no_name_len[] = { 4 };
	/* unbalanced */
	static const uint8_t open_section[] = { 1, 1, 's', 3, 1, 'k', 0, 0 };
	static const uint8_t close_at_root[] = { 3, 1, 'k', 0, 0, 2 };
	static const uint8_t open_list[] = { 4, 1, 'l', 5, 0, 0 };
	static const uint8_t list_end_in_section[] = { 1, 1, 's', 6 };
	static const uint8_t section_end_in_list[] = { 4, 1, 'l', 2 };
	static const uint8_t item_outside[] = { 5, 0, 1, 'x' };
	static const uint8_t kv_in_list[] = { 4, 1, 'l', 3, 1, 'k', 0, 0, 6 };
	/* bad element types and names */
	static const uint8_t type0[] = { 0 };
	static const uint8_t type7[] = { 7, 1, 'x' };
	static const uint8_t empty_name[] = { 3, 0, 0, 0 };
	static const uint8_t nul_name[] = { 3, 2, 'a', 0, 0, 0 };

	assert_int_equal(decode_body(trunc_value, sizeof(trunc_value)), -EBADMSG);
	assert_int_equal(decode_body(trunc_vlen, sizeof(trunc_vlen)), -EBADMSG);
	assert_int_equal(decode_body(long_name, sizeof(long_name)), -EBADMSG);
	assert_int_equal(decode_body(no_name_len, sizeof(no_name_len)), -EBADMSG);
	assert_int_equal(decode_body(open_section, sizeof(open_section)), -EBADMSG);
	assert_int_equal(decode_body(close_at_root, sizeof(close_at_root)), -EBADMSG);
	assert_int_equal(decode_body(open_list, sizeof(open_list)), -EBADMSG);
	assert_int_equal(decode_body(list_end_in_section, sizeof(list_end_in_section)), -EBADMSG);
	assert_int_equal(decode_body(section_end_in_list, sizeof(section_end_in_list)), -EBADMSG);
	assert_int_equal(decode_body(item_outside, sizeof(item_outside)), -EBADMSG);
	assert_int_equal(decode_body(kv_in_list, sizeof(kv_in_list)), -EBADMSG);
	assert_int_equal(decode_body(type0, sizeof(type0)), -EBADMSG);
	assert_int_equal(decode_body(type7, sizeof(type7)), -EBADMSG);
	assert_int_equal(decode_body(empty_name, sizeof(empty_name)), -EBADMSG);
	assert_int_equal(decode_body(nul_name, sizeof(nul_name)), -EBADMSG);
	/* An empty body is a valid empty message. */
	assert_int_equal(decode_body((const uint8_t *)"", 0), 0);
}

static void test_malformed_frames(void **state)
{
	static const uint8_t short_hdr[] = { 0, 0, 1 };
	static const uint8_t zero_len[] = { 0, 0, 0, 0 };
	static const uint8_t len_mismatch[] = { 0, 0, 0, 5, 1 };
	static const uint8_t oversize[] = { 0x7f, 0xff, 0xff, 0xff, 1 };
	static const uint8_t bad_type[] = { 0, 0, 0, 1, 8 };
	static const uint8_t trailing[] = { 0, 0, 0, 2, 5, 0 };		  /* confirm + junk */
	static const uint8_t name_past_end[] = { 0, 0, 0, 3, 7, 9, 'a' }; /* event name */
	static const uint8_t confirm[] = { 0, 0, 0, 1, 5 };
	size_t n;

	assert_int_equal(decode_frame(short_hdr, sizeof(short_hdr)), -EBADMSG);
	assert_int_equal(decode_frame(zero_len, sizeof(zero_len)), -EBADMSG);
	assert_int_equal(decode_frame(len_mismatch, sizeof(len_mismatch)), -EBADMSG);
	assert_int_equal(decode_frame(oversize, sizeof(oversize)), -EMSGSIZE);
	assert_int_equal(ts_vici_frame_length(oversize, &n), -EMSGSIZE);
	assert_int_equal(decode_frame(bad_type, sizeof(bad_type)), -EBADMSG);
	assert_int_equal(decode_frame(trailing, sizeof(trailing)), -EBADMSG);
	assert_int_equal(decode_frame(name_past_end, sizeof(name_past_end)), -EBADMSG);
	assert_int_equal(decode_frame(confirm, sizeof(confirm)), 0);
}

/* Every proper prefix of a valid frame is rejected (the length prefix no
 * longer matches), and every proper prefix of its body that ends inside an
 * element or a section is rejected too: no crash, no leak either way. */
static void test_truncation_everywhere(void **state)
{
	struct ts_vici_node *root = sample_tree();
	uint8_t *frame, *body;
	size_t flen, blen;

	assert_int_equal(
		ts_vici_packet_encode(TS_VICI_EVENT, "list-conn", root, &frame, &flen, NULL), 0);
	assert_int_equal(ts_vici_body_encode(root, &body, &blen, NULL), 0);
	for (size_t i = 0; i < flen; i++)
		assert_int_not_equal(decode_frame(frame, i), 0);
	/* The sample's only prefixes that are complete messages: the empty
	 * one and the one ending after the "ts-a" section. */
	for (size_t i = 1; i < blen; i++) {
		int r = decode_body(body, i);

		if (i == blen - 10)
			assert_int_equal(r, 0);
		else
			assert_int_equal(r, -EBADMSG);
	}
	free(frame);
	free(body);
	ts_vici_node_free(root);
}

static void test_depth_limit(void **state)
{
	uint8_t buf[4 * 40];
	size_t n = 0;
	struct ts_vici_node *root, *sec;

	/* Exactly TS_VICI_DEPTH_MAX levels decode; one more is refused. */
	for (unsigned depth = TS_VICI_DEPTH_MAX; depth <= TS_VICI_DEPTH_MAX + 1; depth++) {
		n = 0;
		for (unsigned i = 0; i < depth; i++) {
			buf[n++] = 1;
			buf[n++] = 1;
			buf[n++] = 's';
		}
		for (unsigned i = 0; i < depth; i++)
			buf[n++] = 2;
		assert_int_equal(decode_body(buf, n), depth == TS_VICI_DEPTH_MAX ? 0 : -ELOOP);
	}
	/* The encoder refuses what the decoder would refuse. */
	assert_int_equal(ts_vici_msg_new(&root), 0);
	sec = root;
	for (unsigned i = 0; i < TS_VICI_DEPTH_MAX + 1; i++)
		assert_int_equal(ts_vici_add_section(sec, "s", &sec), 0);
	uint8_t *out;
	size_t len;
	assert_int_equal(ts_vici_body_encode(root, &out, &len, NULL), -ELOOP);
	ts_vici_node_free(root);
}

static void test_builder_limits(void **state)
{
	struct ts_vici_node *root, *list;
	char name[TS_VICI_NAME_MAX + 2];
	char *big;
	uint8_t *out;
	size_t len;

	assert_int_equal(ts_vici_msg_new(&root), 0);
	memset(name, 'n', sizeof(name));
	name[TS_VICI_NAME_MAX + 1] = 0;
	assert_int_equal(ts_vici_add_str(root, name, "x"), -ENAMETOOLONG);
	name[TS_VICI_NAME_MAX] = 0;
	assert_int_equal(ts_vici_add_str(root, name, "x"), 0);
	assert_int_equal(ts_vici_add_str(root, "", "x"), -ENAMETOOLONG);
	big = malloc(TS_VICI_VALUE_MAX + 1);
	memset(big, 'v', TS_VICI_VALUE_MAX + 1);
	assert_int_equal(ts_vici_add_bytes(root, "big", big, TS_VICI_VALUE_MAX + 1), -E2BIG);
	assert_int_equal(ts_vici_add_list(root, "l", &list), 0);
	assert_int_equal(ts_vici_list_add_bytes(list, big, TS_VICI_VALUE_MAX + 1), -E2BIG);
	/* Items only in lists, named elements only in sections. */
	assert_int_equal(ts_vici_add_str(list, "k", "v"), -EINVAL);
	assert_int_equal(ts_vici_list_add_str(root, "v"), -EINVAL);
	/* Over the message limit: nine values of 64 KiB. */
	for (int i = 0; i < 9; i++)
		assert_int_equal(ts_vici_add_bytes(root, "big", big, TS_VICI_VALUE_MAX), 0);
	assert_int_equal(ts_vici_body_encode(root, &out, &len, NULL), -EMSGSIZE);
	assert_int_equal(ts_vici_packet_encode(TS_VICI_CMD_REQUEST, "x", root, &out, &len, NULL),
			 -EMSGSIZE);
	/* And the decoder refuses an oversize body without reading it. */
	assert_int_equal(ts_vici_body_decode((const uint8_t *)big, TS_VICI_MESSAGE_MAX + 1, &list),
			 -EMSGSIZE);
	free(big);
	ts_vici_node_free(root);
}

static void test_secret_marked(void **state)
{
	struct ts_secret *s;
	struct ts_vici_node *root;
	uint8_t *buf;
	size_t len;
	bool secret = false;

	assert_int_equal(ts_secret_from_bytes("psk-value-123", 13, &s), 0);
	assert_int_equal(ts_vici_msg_new(&root), 0);
	assert_int_equal(ts_vici_add_str(root, "id", "ts-a"), 0);
	assert_int_equal(ts_vici_add_secret(root, "data", s), 0);
	assert_true(ts_vici_get(root, "data")->secret);
	assert_int_equal(ts_vici_body_encode(root, &buf, &len, &secret), 0);
	assert_true(secret);
	assert_non_null(memmem(buf, len, "psk-value-123", 13));
	ts_wipe(buf, len);
	assert_null(memmem(buf, len, "psk-value-123", 13));
	free(buf);
	assert_int_equal(ts_vici_add_secret(root, "data", NULL), -EINVAL);
	ts_vici_node_free(root);
	ts_secret_free(s);
}

static struct ts_vici_packet read_capture(const char *file)
{
	struct ts_vici_packet p;
	char *data;
	size_t len;

	assert_int_equal(ts_file_read_all(file, 1 << 20, &data, &len), 0);
	assert_int_equal(ts_vici_frame_decode((const uint8_t *)data, len, &p), 0);
	free(data);
	return p;
}

static void test_charon_captures(void **state)
{
	struct ts_vici_packet p;
	const struct ts_vici_node *sa, *n;

	p = read_capture(CORPUS "charon-version-response.bin");
	assert_int_equal(p.type, TS_VICI_CMD_RESPONSE);
	assert_string_equal(ts_vici_get_str(p.body, "daemon"), "charon");
	assert_string_equal(ts_vici_get_str(p.body, "version"), "5.9.8");
	ts_vici_packet_done(&p);

	p = read_capture(CORPUS "charon-get-shared-response.bin");
	n = ts_vici_get_list(p.body, "keys");
	assert_non_null(n);
	assert_int_equal(n->n_children, 1);
	assert_string_equal(ts_vici_node_str(n->children[0]), "ike-gw");
	ts_vici_packet_done(&p);

	p = read_capture(CORPUS "charon-list-sa-event.bin");
	assert_int_equal(p.type, TS_VICI_EVENT);
	assert_string_equal(p.name, "list-sa");
	sa = ts_vici_get_section(p.body, "ts-t1");
	assert_string_equal(ts_vici_get_str(sa, "state"), "ESTABLISHED");
	assert_string_equal(ts_vici_get_str(sa, "remote-host"), "192.0.2.2");
	assert_non_null(ts_vici_get_section(sa, "child-sas"));
	ts_vici_packet_done(&p);

	p = read_capture(CORPUS "charon-list-conn-event.bin");
	n = ts_vici_get_section(p.body, "ts-t1");
	assert_string_equal(ts_vici_get_str(n, "version"), "IKEv2");
	assert_string_equal(ts_vici_get_str(ts_vici_get_section(n, "local-1"), "class"),
			    "pre-shared key");
	ts_vici_packet_done(&p);

	p = read_capture(CORPUS "charon-ike-updown-auth-failed.bin");
	assert_string_equal(p.name, "ike-updown");
	assert_false(ts_vici_get_yes(p.body, "up"));
	assert_string_equal(ts_vici_get_str(ts_vici_get_section(p.body, "ts-t1"), "state"),
			    "CONNECTING");
	ts_vici_packet_done(&p);

	p = read_capture(CORPUS "charon-empty-response.bin");
	assert_int_equal(p.type, TS_VICI_CMD_RESPONSE);
	assert_int_equal(p.body->n_children, 0);
	ts_vici_packet_done(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_body),
		cmocka_unit_test(test_decoded_tree_is_one_block),
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_packet_types),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_malformed_frames),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_builder_limits),
		cmocka_unit_test(test_secret_marked),
		cmocka_unit_test(test_charon_captures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
