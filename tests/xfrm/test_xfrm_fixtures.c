/* Unit tests of the XFRM message parser on messages recorded from a real
 * kernel (tests/data/xfrm, see its README): every field of every SA and
 * policy, the notifications (delete, new, soft and hard expire), no key
 * bytes in the parsed structs, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/util.h"
#include "xfrm/xfrm.h"

#define DIR TS_TEST_DATA_DIR "/xfrm/"

/* The test keys of guest-capture.sh. */
static const char *const keys_hex[] = {
	"6b31a9f05c27d8e4139b02fa77c4e6d15a0b8c3e",
	"2f84c6e19d3b70a5e8165cf27b09d3a4c1e65b7d",
	"93d7e2514af86c0b3e19a7d5c2f0648b71e3d9a6",
	"a1c3e5f7092b4d6f81a3c5e7f90b2d4f",
	"5e7a9cbed0f2143658799badcfe1f20314253647a8b9cadbecfd0e1f20314253",
	"d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607",
	"0f1e2d3c4b5a69788796a5b4c3d2e1f0ffeeddcc",
};

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

struct fixture {
	char *data;
	size_t len;
	struct ts_xfrm_event ev;
	int r;
};

static void load(const char *path, struct fixture *f)
{
	enum ts_xfrm_resync resync = _TS_XFRM_RESYNC_MAX;

	assert_int_equal(ts_file_read_all(path, 1 << 20, &f->data, &f->len), 0);
	memset(&f->ev, 0, sizeof(f->ev));
	f->r = ts_xfrm_parse_msg(f->data, f->len, &f->ev, &resync);
	assert_int_equal(resync, TS_XFRM_RESYNC_NONE);
}

static size_t load_glob(const char *pattern, struct fixture **ret)
{
	glob_t g;
	struct fixture *fx;

	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	fx = calloc(g.gl_pathc, sizeof(*fx));
	assert_non_null(fx);
	for (size_t i = 0; i < g.gl_pathc; i++)
		load(g.gl_pathv[i], &fx[i]);
	*ret = fx;
	{
		size_t n = g.gl_pathc;

		globfree(&g);
		return n;
	}
}

static void free_fixtures(struct fixture *fx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fx[i].data);
	free(fx);
}

static const struct ts_xfrm_sa *by_spi(const struct fixture *fx, size_t n, uint32_t spi)
{
	for (size_t i = 0; i < n; i++)
		if (fx[i].r == 1 && fx[i].ev.sa.spi == spi)
			return &fx[i].ev.sa;
	fail_msg("no SA with spi 0x%x in the fixtures", spi);
	return NULL;
}

static struct ts_ip ip(const char *s)
{
	struct ts_ip a;

	assert_int_equal(ts_ip_parse(s, &a), 0);
	return a;
}

static void assert_ip(const struct ts_ip *a, const char *s)
{
	struct ts_ip b = ip(s);

	assert_true(ts_ip_equal(a, &b));
}

static void assert_no_limits(const struct ts_xfrm_lifetime_cfg *l)
{
	assert_true(l->soft_byte_limit == TS_XFRM_INF && l->hard_byte_limit == TS_XFRM_INF);
	assert_true(l->soft_packet_limit == TS_XFRM_INF && l->hard_packet_limit == TS_XFRM_INF);
	assert_true(l->soft_add_expires_seconds == 0 && l->hard_add_expires_seconds == 0);
	assert_true(l->soft_use_expires_seconds == 0 && l->hard_use_expires_seconds == 0);
}

static void test_sa_dump(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "sa-dump-*.bin", &fx);
	const struct ts_xfrm_sa *sa;

	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(fx[i].r, 1);
		assert_int_equal(fx[i].ev.type, TS_XFRM_EVENT_SA_NEW);
		assert_int_equal(fx[i].ev.sa.proto, TS_XFRM_PROTO_ESP);
	}

	/* Pair 1, outbound: traffic moved it. */
	sa = by_spi(fx, n, 0x1001);
	assert_ip(&sa->src, "192.0.2.1");
	assert_ip(&sa->dst, "192.0.2.2");
	assert_int_equal(sa->mode, TS_XFRM_MODE_TRANSPORT);
	assert_int_equal(sa->reqid, 1500);
	assert_int_equal(sa->replay_window, 32);
	assert_int_equal(sa->if_id, 0);
	assert_int_equal(sa->mark.value, 0);
	assert_int_equal(sa->mark.mask, 0);
	assert_string_equal(sa->aead.name, "rfc4106(gcm(aes))");
	assert_int_equal(sa->aead.key_bits, 160);
	assert_int_equal(sa->aead.icv_bits, 128);
	assert_string_equal(sa->crypt.name, "");
	assert_string_equal(sa->auth.name, "");
	assert_false(sa->has_encap);
	assert_int_equal(sa->cur.packets, 3);
	assert_int_equal(sa->cur.bytes, 192);
	assert_true(sa->cur.add_time > 1700000000);
	assert_true(sa->cur.use_time >= sa->cur.add_time);
	assert_no_limits(&sa->lft);
	assert_int_equal(sa->stats_integrity_failed, 0);
	assert_int_equal(sa->stats_replay, 0);
	assert_int_equal(sa->replay_oseq, 3);
	assert_int_equal(sa->replay_seq, 0);
	assert_int_equal(sa->set_mark, 0);

	/* Pair 1, inbound: the three replies. */
	sa = by_spi(fx, n, 0x1002);
	assert_ip(&sa->src, "192.0.2.2");
	assert_ip(&sa->dst, "192.0.2.1");
	assert_int_equal(sa->cur.packets, 3);
	assert_int_equal(sa->cur.bytes, 192);
	assert_true(sa->cur.use_time > 0);
	assert_int_equal(sa->replay_seq, 3);
	assert_int_equal(sa->replay_oseq, 0);

	/* Tunnel mode with if_id, mark, encap, selector, every limit. */
	sa = by_spi(fx, n, 0x2001);
	assert_ip(&sa->src, "192.0.2.1");
	assert_ip(&sa->dst, "192.0.2.3");
	assert_int_equal(sa->mode, TS_XFRM_MODE_TUNNEL);
	assert_int_equal(sa->reqid, 1501);
	assert_int_equal(sa->replay_window, 64);
	assert_int_equal(sa->if_id, 7);
	assert_int_equal(sa->mark.value, 0x10);
	assert_int_equal(sa->mark.mask, 0xff);
	assert_true(sa->has_encap);
	assert_int_equal(sa->encap_type, 2); /* UDP_ENCAP_ESPINUDP */
	assert_int_equal(sa->encap_sport, 4500);
	assert_int_equal(sa->encap_dport, 4501);
	assert_ip(&sa->sel.src.ip, "198.51.100.0");
	assert_int_equal(sa->sel.src.len, 24);
	assert_ip(&sa->sel.dst.ip, "203.0.113.0");
	assert_int_equal(sa->sel.dst.len, 24);
	assert_int_equal(sa->lft.soft_add_expires_seconds, 3000);
	assert_int_equal(sa->lft.hard_add_expires_seconds, 3600);
	assert_int_equal(sa->lft.soft_use_expires_seconds, 600);
	assert_int_equal(sa->lft.hard_use_expires_seconds, 700);
	assert_int_equal(sa->lft.soft_byte_limit, 1000000);
	assert_int_equal(sa->lft.hard_byte_limit, 2000000);
	assert_int_equal(sa->lft.soft_packet_limit, 1000);
	assert_int_equal(sa->lft.hard_packet_limit, 2000);
	assert_int_equal(sa->cur.packets, 0);
	assert_int_equal(sa->cur.use_time, 0);
	assert_true(sa->cur.add_time > 0);

	/* Separate encryption and truncated authentication, output mark. */
	sa = by_spi(fx, n, 0x3001);
	assert_string_equal(sa->aead.name, "");
	assert_string_equal(sa->crypt.name, "cbc(aes)");
	assert_int_equal(sa->crypt.key_bits, 128);
	assert_string_equal(sa->auth.name, "hmac(sha256)");
	assert_int_equal(sa->auth.key_bits, 256);
	assert_int_equal(sa->auth.icv_bits, 128);
	assert_int_equal(sa->set_mark, 0x20);
	assert_int_equal(sa->set_mark_mask, 0xff);
	assert_int_equal(sa->reqid, 1502);

	/* IPv6. */
	sa = by_spi(fx, n, 0x6001);
	assert_int_equal(sa->src.family, AF_INET6);
	assert_ip(&sa->src, "::1");
	assert_ip(&sa->dst, "::1");
	assert_int_equal(sa->reqid, 1503);

	free_fixtures(fx, n);
}

static void test_policy_dump(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "policy-dump-*.bin", &fx);
	bool seen_in = false, seen_out = false;

	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		const struct ts_xfrm_policy *p = &fx[i].ev.policy;

		assert_int_equal(fx[i].r, 1);
		assert_int_equal(fx[i].ev.type, TS_XFRM_EVENT_POLICY_NEW);
		assert_int_equal(p->sel.proto, 1); /* icmp */
		assert_int_equal(p->sel.src.len, 32);
		assert_int_equal(p->n_tmpl, 1);
		assert_int_equal(p->tmpl[0].reqid, 1500);
		assert_int_equal(p->tmpl[0].mode, TS_XFRM_MODE_TRANSPORT);
		assert_int_equal(p->tmpl[0].proto, TS_XFRM_PROTO_ESP);
		assert_true(p->cur.add_time > 0);
		if (p->dir == TS_XFRM_DIR_OUT) {
			seen_out = true;
			assert_ip(&p->sel.src.ip, "192.0.2.1");
			assert_ip(&p->tmpl[0].dst, "192.0.2.2");
			assert_true(p->cur.use_time > 0); /* the pings used it */
		} else {
			assert_int_equal(p->dir, TS_XFRM_DIR_IN);
			seen_in = true;
			assert_ip(&p->sel.src.ip, "192.0.2.2");
		}
	}
	assert_true(seen_in && seen_out);
	free_fixtures(fx, n);
}

static void test_events(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "event-*.bin", &fx);

	/* glob sorts: delsa, newsa, expire (soft), expire (hard). */
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fx[i].r, 1);
	assert_int_equal(fx[0].ev.type, TS_XFRM_EVENT_SA_DEL);
	assert_int_equal(fx[0].ev.sa.spi, 0x2001);
	assert_int_equal(fx[0].ev.sa.if_id, 7);
	assert_int_equal(fx[0].ev.sa.mark.value, 0x10);
	assert_int_equal(fx[0].ev.sa.reqid, 1501);
	assert_ip(&fx[0].ev.sa.dst, "192.0.2.3");
	assert_string_equal(fx[0].ev.sa.aead.name, "rfc4106(gcm(aes))");

	assert_int_equal(fx[1].ev.type, TS_XFRM_EVENT_SA_NEW);
	assert_int_equal(fx[1].ev.sa.spi, 0x4001);
	assert_int_equal(fx[1].ev.sa.if_id, 9);
	assert_int_equal(fx[1].ev.sa.lft.soft_add_expires_seconds, 1);
	assert_int_equal(fx[1].ev.sa.lft.hard_add_expires_seconds, 2);

	assert_int_equal(fx[2].ev.type, TS_XFRM_EVENT_SA_EXPIRE_SOFT);
	assert_int_equal(fx[3].ev.type, TS_XFRM_EVENT_SA_EXPIRE_HARD);
	for (size_t i = 2; i < 4; i++) {
		assert_int_equal(fx[i].ev.sa.spi, 0x4001);
		assert_int_equal(fx[i].ev.sa.if_id, 9);
		assert_int_equal(fx[i].ev.sa.reqid, 1504);
		assert_ip(&fx[i].ev.sa.src, "192.0.2.1");
		assert_ip(&fx[i].ev.sa.dst, "192.0.2.5");
	}
	free_fixtures(fx, n);
}

static bool contains(const void *hay, size_t hlen, const uint8_t *needle, size_t nlen)
{
	return nlen <= hlen && memmem(hay, hlen, needle, nlen) != NULL;
}

/* Each test key is in the raw fixtures, and no 4-byte piece of any key is
 * in any parsed struct. */
static void test_no_key_bytes(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "*.bin", &fx);
	bool key_in_fixture[TS_ARRAY_SIZE(keys_hex)] = { false };

	assert_true(n >= 11);
	for (size_t k = 0; k < TS_ARRAY_SIZE(keys_hex); k++) {
		uint8_t key[64];
		size_t klen = unhex(keys_hex[k], key);

		for (size_t i = 0; i < n; i++) {
			if (contains(fx[i].data, fx[i].len, key, klen))
				key_in_fixture[k] = true;
			for (size_t off = 0; off + 4 <= klen; off++)
				assert_false(contains(&fx[i].ev, sizeof(fx[i].ev), key + off, 4));
		}
		assert_true(key_in_fixture[k]);
	}
	free_fixtures(fx, n);
}

/* Every prefix of every fixture, and the fixtures at odd addresses. */
static void test_malformed(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "*.bin", &fx);

	for (size_t i = 0; i < n; i++) {
		char *odd = malloc(fx[i].len + 1);
		struct ts_xfrm_event ev;
		enum ts_xfrm_resync rs;

		assert_non_null(odd);
		memcpy(odd + 1, fx[i].data, fx[i].len);
		assert_int_equal(ts_xfrm_parse_msg(odd + 1, fx[i].len, &ev, &rs), fx[i].r);
		assert_int_equal(memcmp(&ev, &fx[i].ev, sizeof(ev)), 0);
		for (size_t cut = 0; cut < fx[i].len; cut++)
			assert_int_equal(ts_xfrm_parse_msg(fx[i].data, cut, &ev, &rs), -EBADMSG);
		/* A header that claims less than the fixed part. */
		{
			struct nlmsghdr h;

			memcpy(&h, odd + 1, sizeof(h));
			h.nlmsg_len = NLMSG_HDRLEN + 8;
			memcpy(odd + 1, &h, sizeof(h));
			assert_int_equal(ts_xfrm_parse_msg(odd + 1, fx[i].len, &ev, &rs), -EBADMSG);
		}
		free(odd);
	}
	free_fixtures(fx, n);
}

static void test_resync_messages(void **state)
{
	struct {
		struct nlmsghdr h;
		uint8_t body[64];
	} m = { 0 };
	struct ts_xfrm_event ev;
	enum ts_xfrm_resync rs;

	m.h.nlmsg_len = NLMSG_HDRLEN + 4;
	m.h.nlmsg_type = XFRM_MSG_FLUSHSA;
	assert_int_equal(ts_xfrm_parse_msg(&m, sizeof(m), &ev, &rs), 0);
	assert_int_equal(rs, TS_XFRM_RESYNC_FLUSH_SA);
	m.h.nlmsg_type = XFRM_MSG_FLUSHPOLICY;
	assert_int_equal(ts_xfrm_parse_msg(&m, sizeof(m), &ev, &rs), 0);
	assert_int_equal(rs, TS_XFRM_RESYNC_FLUSH_POLICY);
	m.h.nlmsg_type = XFRM_MSG_NEWAE;
	assert_int_equal(ts_xfrm_parse_msg(&m, sizeof(m), &ev, &rs), 0);
	assert_int_equal(rs, TS_XFRM_RESYNC_UNKNOWN_MESSAGE);
	m.h.nlmsg_type = 0x7fff;
	assert_int_equal(ts_xfrm_parse_msg(&m, sizeof(m), &ev, &rs), 0);
	assert_int_equal(rs, TS_XFRM_RESYNC_UNKNOWN_MESSAGE);
	assert_string_equal(ts_xfrm_resync_to_string(TS_XFRM_RESYNC_OVERFLOW), "overflow");
	assert_string_equal(ts_xfrm_event_type_to_string(TS_XFRM_EVENT_SA_EXPIRE_HARD),
			    "sa-expire-hard");
	assert_string_equal(ts_xfrm_dir_to_string(TS_XFRM_DIR_FWD), "fwd");
	assert_string_equal(ts_xfrm_mode_to_string(TS_XFRM_MODE_TUNNEL), "tunnel");
	assert_string_equal(ts_xfrm_dir_to_string((enum ts_xfrm_dir)9), "unknown");
}

/* A per-socket policy (dir ≥ XFRM_POLICY_MAX) is skipped: built from the
 * recorded outbound policy with its direction moved. */
static void test_per_socket_policy_skipped(void **state)
{
	struct fixture *fx;
	size_t n = load_glob(DIR "policy-dump-*.bin", &fx);
	struct xfrm_userpolicy_info info;
	struct ts_xfrm_event ev;
	enum ts_xfrm_resync rs;
	char *copy = malloc(fx[0].len);

	assert_non_null(copy);
	memcpy(copy, fx[0].data, fx[0].len);
	memcpy(&info, copy + NLMSG_HDRLEN, sizeof(info));
	info.dir = XFRM_POLICY_MAX + XFRM_POLICY_OUT;
	memcpy(copy + NLMSG_HDRLEN, &info, sizeof(info));
	assert_int_equal(ts_xfrm_parse_msg(copy, fx[0].len, &ev, &rs), 0);
	assert_int_equal(rs, TS_XFRM_RESYNC_NONE);
	free(copy);
	free_fixtures(fx, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sa_dump),
		cmocka_unit_test(test_policy_dump),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_no_key_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_resync_messages),
		cmocka_unit_test(test_per_socket_policy_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
