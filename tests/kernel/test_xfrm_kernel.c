/* Real-ESP tests of agent/xfrm, run INSIDE a user-mode Linux guest by
 * tests/kernel/run-uml (ctest: test-xfrm-kernel, label kernel): ESP SA
 * pairs and policies installed with `ip xfrm` are read back with every
 * field right; matching reports the tunnel up and only owned leftovers as
 * stale; deletes refuse foreign SAs; an SA deleted behind the agent's back
 * is reported by the very next drain; soft and hard expiry are reported;
 * traffic through a real ESP pair moves the counters. Each test works in
 * its own network namespace of the guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <time.h>

#include "../xfrm/netns-helper.h"
#include "core/util.h"
#include "xfrm/xfrm.h"

#define AEAD "rfc4106(gcm(aes))"
/* Test keys (not secrets); the tests check none of their bytes is copied. */
#define K_OUT "0x3c8e1f2a9b7d4c6e5a0f1e2d3c4b5a6978695a4b"
#define K_IN  "0x7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"

static const uint32_t owned_if_ids[] = { 7, 8 };
static const struct ts_xfrm_owner owner = {
	.if_ids = owned_if_ids,
	.n_if_ids = 2,
	.reqid_min = 1000,
	.reqid_max = 1999,
};

static int setup(void **state)
{
	int r = ts_ns_enter("tsx-k");

	if (r < 0) {
		fprintf(stderr, "cannot create a network namespace: %s\n", strerror(-r));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	ts_ns_leave();
	return 0;
}

static struct ts_ip ip(const char *s)
{
	struct ts_ip a;

	assert_int_equal(ts_ip_parse(s, &a), 0);
	return a;
}

static struct ts_prefix pfx(const char *s)
{
	struct ts_prefix p;

	assert_int_equal(ts_prefix_parse(s, &p), 0);
	return p;
}

static const struct ts_xfrm_sa *find_sa(const struct ts_xfrm_snapshot *s, uint32_t spi)
{
	for (size_t i = 0; i < s->n_sas; i++)
		if (s->sas[i].spi == spi)
			return &s->sas[i];
	return NULL;
}

/* Tunnel t1: 192.0.2.1 (us) ↔ 192.0.2.2, if_id 7, mark 0x10/0xff,
 * reqid 1500, out SPI 0x1001, in SPI 0x1002, policies in/out/fwd. */
static void add_t1(void)
{
	assert_int_equal(
		ts_sh("ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1001 "
		      "reqid 1500 mode tunnel replay-window 32 if_id 7 mark 0x10 mask 0xff "
		      "aead '" AEAD "' " K_OUT " 128 limit time-soft 3000 limit time-hard "
		      "3600 limit packet-hard 100000"),
		0);
	assert_int_equal(
		ts_sh("ip xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x1002 "
		      "reqid 1500 mode tunnel replay-window 32 if_id 7 mark 0x10 mask 0xff "
		      "aead '" AEAD "' " K_IN " 128"),
		0);
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "if_id 7 mark 0x10 mask 0xff priority 10 tmpl src 192.0.2.1 "
			       "dst 192.0.2.2 proto esp reqid 1500 mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir in "
			       "if_id 7 mark 0x10 mask 0xff priority 10 tmpl src 192.0.2.2 "
			       "dst 192.0.2.1 proto esp reqid 1500 mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir fwd "
			       "if_id 7 mark 0x10 mask 0xff priority 10 tmpl src 192.0.2.2 "
			       "dst 192.0.2.1 proto esp reqid 1500 mode tunnel"),
			 0);
}

static struct ts_xfrm_expect_policy t1_policies[3];

static struct ts_xfrm_expect t1_expect(void)
{
	static const uint32_t reqids[] = { 1500 };
	struct ts_xfrm_expect e = { .name = "t1" };

	t1_policies[0] = (struct ts_xfrm_expect_policy){ pfx("198.51.100.0/24"),
							 pfx("203.0.113.0/24"), TS_XFRM_DIR_OUT };
	t1_policies[1] = (struct ts_xfrm_expect_policy){ pfx("203.0.113.0/24"),
							 pfx("198.51.100.0/24"), TS_XFRM_DIR_IN };
	t1_policies[2] = (struct ts_xfrm_expect_policy){ pfx("203.0.113.0/24"),
							 pfx("198.51.100.0/24"), TS_XFRM_DIR_FWD };
	e.local = ip("192.0.2.1");
	e.remote = ip("192.0.2.2");
	e.reqids = reqids;
	e.n_reqids = 1;
	e.has_if_id = true;
	e.if_id = 7;
	e.has_mark = true;
	e.mark = (struct ts_xfrm_mark){ 0x10, 0xff };
	e.spi_out = 0x1001;
	e.spi_in = 0x1002;
	e.policies = t1_policies;
	e.n_policies = 3;
	return e;
}

static void assert_no_key(const void *mem, size_t len)
{
	static const char *const keys[] = { K_OUT + 2, K_IN + 2 };

	for (size_t k = 0; k < TS_ARRAY_SIZE(keys); k++) {
		uint8_t key[20];

		for (size_t i = 0; i < sizeof(key); i++) {
			unsigned v;

			sscanf(keys[k] + 2 * i, "%2x", &v);
			key[i] = (uint8_t)v;
		}
		for (size_t off = 0; off + 4 <= sizeof(key); off++)
			assert_null(memmem(mem, len, key + off, 4));
	}
}

static void test_sa_readback(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_snapshot s;
	const struct ts_xfrm_sa *out, *in;

	add_t1();
	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_true(s.complete);
	assert_int_equal(s.n_sas, 2);
	assert_int_equal(s.n_policies, 3);

	out = find_sa(&s, 0x1001);
	in = find_sa(&s, 0x1002);
	assert_non_null(out);
	assert_non_null(in);
	for (int i = 0; i < 2; i++) {
		const struct ts_xfrm_sa *sa = i ? in : out;

		assert_int_equal(sa->proto, TS_XFRM_PROTO_ESP);
		assert_int_equal(sa->mode, TS_XFRM_MODE_TUNNEL);
		assert_int_equal(sa->reqid, 1500);
		assert_int_equal(sa->if_id, 7);
		assert_int_equal(sa->mark.value, 0x10);
		assert_int_equal(sa->mark.mask, 0xff);
		assert_int_equal(sa->replay_window, 32);
		assert_string_equal(sa->aead.name, AEAD);
		assert_int_equal(sa->aead.key_bits, 160);
		assert_int_equal(sa->aead.icv_bits, 128);
		assert_string_equal(sa->crypt.name, "");
		assert_true(sa->cur.add_time > 0);
		assert_int_equal(sa->cur.use_time, 0);
		assert_int_equal(sa->cur.bytes, 0);
		assert_int_equal(sa->cur.packets, 0);
		assert_true(sa->lft.soft_byte_limit == TS_XFRM_INF);
	}
	assert_true(ts_ip_equal(&out->src, &(struct ts_ip){ 0 }) == false);
	{
		struct ts_ip a1 = ip("192.0.2.1"), a2 = ip("192.0.2.2");

		assert_true(ts_ip_equal(&out->src, &a1) && ts_ip_equal(&out->dst, &a2));
		assert_true(ts_ip_equal(&in->src, &a2) && ts_ip_equal(&in->dst, &a1));
	}
	assert_int_equal(out->lft.soft_add_expires_seconds, 3000);
	assert_int_equal(out->lft.hard_add_expires_seconds, 3600);
	assert_int_equal(out->lft.hard_packet_limit, 100000);
	assert_true(out->lft.soft_packet_limit == TS_XFRM_INF);
	assert_int_equal(in->lft.hard_add_expires_seconds, 0);

	for (size_t i = 0; i < s.n_policies; i++) {
		const struct ts_xfrm_policy *p = &s.policies[i];

		assert_int_equal(p->if_id, 7);
		assert_int_equal(p->mark.value, 0x10);
		assert_int_equal(p->mark.mask, 0xff);
		assert_int_equal(p->priority, 10);
		assert_int_equal(p->n_tmpl, 1);
		assert_int_equal(p->tmpl[0].reqid, 1500);
		assert_int_equal(p->tmpl[0].mode, TS_XFRM_MODE_TUNNEL);
	}
	assert_no_key(s.sas, s.n_sas * sizeof(*s.sas));

	/* A single SA by identity, as the delete path reads it. */
	{
		struct ts_xfrm_sa got;

		assert_int_equal(ts_xfrm_sa_get(sock, out, &got), 0);
		assert_int_equal(got.spi, 0x1001);
		assert_int_equal(got.if_id, 7);
		assert_no_key(&got, sizeof(got));
	}
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

static void test_match_stale_delete(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_match_result m;
	struct ts_xfrm_expect e = t1_expect();
	const struct ts_xfrm_sa *foreign;

	add_t1();
	/* A leftover of a removed tunnel (owned: reqid 1501, if_id 8). */
	assert_int_equal(ts_sh("ip xfrm state add src 192.0.2.1 dst 192.0.2.9 proto esp spi 0x2001 "
			       "reqid 1501 mode tunnel if_id 8 aead '" AEAD "' " K_OUT " 128"),
			 0);
	/* Another program's SA to the same peer: foreign (reqid 5, no if_id). */
	assert_int_equal(ts_sh("ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x3001 "
			       "reqid 5 mode tunnel aead '" AEAD "' " K_OUT " 128"),
			 0);

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_int_equal(s.n_sas, 4);
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, NULL, 0, &m), 0);
	assert_true(m.tunnels[0].sa_in_alive && m.tunnels[0].sa_out_alive);
	assert_int_equal(m.tunnels[0].spi_out, 0x1001);
	assert_int_equal(m.tunnels[0].spi_in, 0x1002);
	assert_true(m.tunnels[0].policy_in && m.tunnels[0].policy_out && m.tunnels[0].policy_fwd);
	assert_int_equal(m.tunnels[0].n_policies_found, 3);
	assert_true(m.tunnels[0].up);
	assert_true(m.stale_valid);
	assert_int_equal(m.n_stale, 1);
	assert_int_equal(m.stale[0].kind, TS_XFRM_OBJECT_SA);
	assert_int_equal(m.stale[0].sa.spi, 0x2001);

	assert_int_equal(ts_xfrm_sa_delete(sock, &owner, &m.stale[0].sa), 0);
	foreign = find_sa(&s, 0x3001);
	assert_non_null(foreign);
	assert_int_equal(ts_xfrm_sa_delete(sock, &owner, foreign), -EPERM);
	ts_xfrm_match_result_done(&m);
	ts_xfrm_snapshot_done(&s);

	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_int_equal(s.n_sas, 3);
	assert_null(find_sa(&s, 0x2001));
	assert_non_null(find_sa(&s, 0x3001));
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

/* Polls and drains once: the first batch that arrives within ms. */
static int drain_once(struct ts_xfrm_watch *w, int ms, struct ts_xfrm_changes *ch)
{
	struct pollfd pfd = { .fd = ts_xfrm_watch_fd(w), .events = POLLIN };

	memset(ch, 0, sizeof(*ch));
	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	return ts_xfrm_watch_drain(w, ch);
}

static void test_delete_behind_back(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_watch *w;
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_changes ch;
	struct ts_xfrm_match_result m;
	struct ts_xfrm_expect e = t1_expect();

	add_t1();
	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_start(sock, 0, &w, &s), 0);
	assert_int_equal(s.n_sas, 2);

	assert_int_equal(ts_sh("ip xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "spi 0x1001 mark 0x10 mask 0xff"),
			 0);
	assert_int_equal(drain_once(w, 2000, &ch), 1);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_NONE);
	assert_int_equal(ch.events[0].type, TS_XFRM_EVENT_SA_DEL);
	assert_int_equal(ch.events[0].sa.spi, 0x1001);
	assert_int_equal(ch.events[0].sa.if_id, 7);
	assert_int_equal(ch.events[0].sa.reqid, 1500);
	assert_true(ts_xfrm_expect_claims_sa(&e, &ch.events[0].sa));
	assert_no_key(ch.events, sizeof(*ch.events));

	/* The old snapshot plus the event: the tunnel is down. */
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, ch.events, ch.n_events, &m), 0);
	assert_false(m.tunnels[0].sa_out);
	assert_true(m.tunnels[0].sa_in);
	assert_false(m.tunnels[0].up);
	ts_xfrm_match_result_done(&m);
	ts_xfrm_changes_done(&ch);
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_watch_free(w);
	ts_xfrm_sock_free(sock);
}

static void test_expiry(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_watch *w;
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_event events[8];
	size_t n = 0;
	struct ts_xfrm_match_result m;
	struct ts_xfrm_expect e = t1_expect();
	time_t end;

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_start(sock, 0, &w, &s), 0);
	add_t1();
	/* A rekeyed out SA of t1 with a short life: soft after 1 s, hard
	 * after 3 s (counted from its add time). */
	assert_int_equal(ts_sh("ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "spi 0x1003 reqid 1500 mode tunnel replay-window 32 if_id 7 "
			       "mark 0x10 mask 0xff aead '" AEAD "' " K_OUT " 128 "
			       "limit time-soft 1 limit time-hard 3"),
			 0);
	end = time(NULL) + 6;
	while (time(NULL) < end && n < TS_ARRAY_SIZE(events)) {
		struct ts_xfrm_changes ch;

		if (drain_once(w, 500, &ch) < 0)
			fail();
		assert_int_equal(ch.resync, TS_XFRM_RESYNC_NONE);
		for (size_t i = 0; i < ch.n_events && n < TS_ARRAY_SIZE(events); i++)
			events[n++] = ch.events[i];
		ts_xfrm_changes_done(&ch);
		if (n && events[n - 1].type == TS_XFRM_EVENT_SA_EXPIRE_HARD)
			break;
	}
	/* 3 SA adds, 3 policy adds, a soft and a hard expiry. */
	assert_int_equal(n, 8);
	assert_int_equal(events[5].type, TS_XFRM_EVENT_SA_NEW);
	assert_int_equal(events[6].type, TS_XFRM_EVENT_SA_EXPIRE_SOFT);
	assert_int_equal(events[6].sa.spi, 0x1003);
	assert_int_equal(events[7].type, TS_XFRM_EVENT_SA_EXPIRE_HARD);
	assert_int_equal(events[7].sa.spi, 0x1003);
	assert_int_equal(events[7].sa.if_id, 7);
	assert_int_equal(events[7].sa.lft.hard_add_expires_seconds, 3);

	ts_xfrm_snapshot_done(&s);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_null(find_sa(&s, 0x1003)); /* gone without a DELSA */
	assert_non_null(find_sa(&s, 0x1001));
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, events, n, &m), 0);
	assert_true(m.tunnels[0].soft_expire_seen);
	assert_true(m.tunnels[0].hard_expire_seen);
	assert_true(m.tunnels[0].sa_out); /* 0x1001, the SA IKE reports, lives */
	assert_true(m.tunnels[0].up);
	ts_xfrm_match_result_done(&m);
	/* Had IKE reported the expired SA, the tunnel would be down. */
	e.spi_out = 0x1003;
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, events, n, &m), 0);
	assert_false(m.tunnels[0].sa_out);
	assert_false(m.tunnels[0].up);
	ts_xfrm_match_result_done(&m);
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_watch_free(w);
	ts_xfrm_sock_free(sock);
}

/* Two namespaces, one real ESP pair, pings through it. The peer
 * namespace is driven with `ip netns exec`. */
static void test_traffic_counters(void **state)
{
	char peer[80];
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_snapshot s;
	const struct ts_xfrm_sa *out, *in;

	snprintf(peer, sizeof(peer), "tsx-k-%d-peer", (int)getpid());
	assert_int_equal(ts_sh("ip netns add %s", peer), 0);
	assert_int_equal(ts_sh("ip link add va type veth peer name vb netns %s && "
			       "ip addr add 192.0.2.1/24 dev va && ip link set va up && "
			       "ip link set lo up && ip -n %s addr add 192.0.2.2/24 dev vb && "
			       "ip -n %s link set vb up",
			       peer, peer, peer),
			 0);
	for (int side = 0; side < 2; side++) {
		const char *x = side ? "ip -n " : "ip ";
		const char *ns = side ? peer : "";

		assert_int_equal(ts_sh("%s%s xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp "
				       "spi 0x1001 reqid 1500 mode transport replay-window 32 "
				       "aead '" AEAD "' " K_OUT " 128",
				       x, ns),
				 0);
		assert_int_equal(ts_sh("%s%s xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp "
				       "spi 0x1002 reqid 1500 mode transport replay-window 32 "
				       "aead '" AEAD "' " K_IN " 128",
				       x, ns),
				 0);
		assert_int_equal(
			ts_sh("%s%s xfrm policy add src 192.0.2.%d/32 dst 192.0.2.%d/32 proto icmp "
			      "dir out tmpl src 192.0.2.%d dst 192.0.2.%d proto esp reqid 1500 mode "
			      "transport",
			      x, ns, side + 1, 2 - side, side + 1, 2 - side),
			0);
		assert_int_equal(
			ts_sh("%s%s xfrm policy add src 192.0.2.%d/32 dst 192.0.2.%d/32 proto icmp "
			      "dir in tmpl src 192.0.2.%d dst 192.0.2.%d proto esp reqid 1500 mode "
			      "transport",
			      x, ns, 2 - side, side + 1, 2 - side, side + 1),
			0);
	}
	assert_int_equal(ts_sh("ping -c 2 -i 0.2 -W 2 192.0.2.2 >/dev/null"), 0);

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	out = find_sa(&s, 0x1001);
	in = find_sa(&s, 0x1002);
	assert_non_null(out);
	assert_non_null(in);
	assert_int_equal(out->cur.packets, 2);
	assert_int_equal(in->cur.packets, 2);
	assert_true(out->cur.bytes > 0 && in->cur.bytes == out->cur.bytes);
	assert_true(out->cur.use_time >= out->cur.add_time && out->cur.use_time > 0);
	assert_int_equal(out->replay_oseq, 2);
	assert_int_equal(in->replay_seq, 2);
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
	ts_sh("ip netns del %s", peer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sa_readback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_stale_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_behind_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traffic_counters, setup, teardown),
	};

	if (!getenv("TS_IN_UML")) {
		fprintf(stderr, "test-xfrm-kernel needs a kernel with ESP: run it through "
				"tests/kernel/run-uml (ctest -L kernel does)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
