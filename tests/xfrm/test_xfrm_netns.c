/* Integration tests of agent/xfrm on the machine's own kernel, each in a
 * fresh network namespace: policies added with `ip xfrm` are read back
 * field by field; larval SAs (allocspi) and policies are deleted only when
 * owned; events arrive for add, update, delete, flush, expire; a flush and
 * a forced overflow ask for a resync; 10k policies dump correctly. This
 * kernel has no ESP, so full SAs are covered by the UML suite and the
 * recorded fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "netns-helper.h"
#include "xfrm/xfrm.h"

static int setup(void **state)
{
	int r = ts_ns_enter("tsx");

	if (r < 0) {
		fprintf(stderr, "cannot create a network namespace (%s); need root\n",
			strerror(-r));
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

static const struct ts_xfrm_policy *find_policy(const struct ts_xfrm_snapshot *s, const char *src,
						const char *dst, enum ts_xfrm_dir dir)
{
	struct ts_prefix ps = pfx(src), pd = pfx(dst);

	for (size_t i = 0; i < s->n_policies; i++)
		if (s->policies[i].dir == dir && ts_prefix_equal(&s->policies[i].sel.src, &ps) &&
		    ts_prefix_equal(&s->policies[i].sel.dst, &pd))
			return &s->policies[i];
	return NULL;
}

static void test_policy_readback(void **state)
{
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_sock *sock;
	const struct ts_xfrm_policy *p;
	struct ts_ip a1 = ip("192.0.2.1"), a2 = ip("192.0.2.2");

	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "priority 100 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 42 "
			       "mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir in "
			       "priority 101 if_id 7 tmpl src 192.0.2.2 dst 192.0.2.1 proto esp "
			       "reqid 43 mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir fwd "
			       "mark 0x10 mask 0xff if_id 9 tmpl src 192.0.2.2 dst 192.0.2.1 "
			       "proto esp reqid 44 mode tunnel level use"),
			 0);
	assert_int_equal(
		ts_sh("ip xfrm policy add src 198.51.100.5/32 dst 203.0.113.9/32 proto tcp "
		      "sport 1000 dport 2000 dir out action block priority 5 "
		      "limit time-soft 100 limit time-hard 200 limit byte-soft 3000 "
		      "limit byte-hard 4000 limit packet-soft 5 limit packet-hard 6"),
		0);

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_true(s.complete);
	assert_int_equal(s.n_policies, 4);
	assert_int_equal(s.n_sas, 0);

	p = find_policy(&s, "198.51.100.0/24", "203.0.113.0/24", TS_XFRM_DIR_OUT);
	assert_non_null(p);
	assert_int_equal(p->priority, 100);
	assert_int_not_equal(p->index, 0);
	assert_int_equal(p->index % 8, TS_XFRM_DIR_OUT); /* the kernel encodes dir in index */
	assert_int_equal(p->action, TS_XFRM_ACTION_ALLOW);
	assert_int_equal(p->if_id, 0);
	assert_int_equal(p->mark.mask, 0);
	assert_int_equal(p->type, 0);
	assert_int_equal(p->sel.proto, 0);
	assert_int_equal(p->n_tmpl, 1);
	assert_true(ts_ip_equal(&p->tmpl[0].src, &a1));
	assert_true(ts_ip_equal(&p->tmpl[0].dst, &a2));
	assert_int_equal(p->tmpl[0].proto, TS_XFRM_PROTO_ESP);
	assert_int_equal(p->tmpl[0].reqid, 42);
	assert_int_equal(p->tmpl[0].mode, TS_XFRM_MODE_TUNNEL);
	assert_false(p->tmpl[0].optional);
	assert_true(p->lft.hard_byte_limit == TS_XFRM_INF);
	assert_true(p->cur.add_time > 0);

	p = find_policy(&s, "203.0.113.0/24", "198.51.100.0/24", TS_XFRM_DIR_IN);
	assert_non_null(p);
	assert_int_equal(p->priority, 101);
	assert_int_equal(p->if_id, 7);
	assert_int_equal(p->mark.mask, 0);
	assert_int_equal(p->tmpl[0].reqid, 43);
	assert_true(ts_ip_equal(&p->tmpl[0].src, &a2));

	p = find_policy(&s, "203.0.113.0/24", "198.51.100.0/24", TS_XFRM_DIR_FWD);
	assert_non_null(p);
	assert_int_equal(p->if_id, 9);
	assert_int_equal(p->mark.value, 0x10);
	assert_int_equal(p->mark.mask, 0xff);
	assert_int_equal(p->tmpl[0].reqid, 44);
	assert_true(p->tmpl[0].optional); /* level use */

	p = find_policy(&s, "198.51.100.5/32", "203.0.113.9/32", TS_XFRM_DIR_OUT);
	assert_non_null(p);
	assert_int_equal(p->action, TS_XFRM_ACTION_BLOCK);
	assert_int_equal(p->priority, 5);
	assert_int_equal(p->sel.proto, 6);
	assert_int_equal(p->sel.sport, 1000);
	assert_int_equal(p->sel.sport_mask, 0xffff);
	assert_int_equal(p->sel.dport, 2000);
	assert_int_equal(p->n_tmpl, 0);
	assert_int_equal(p->lft.soft_add_expires_seconds, 100);
	assert_int_equal(p->lft.hard_add_expires_seconds, 200);
	assert_int_equal(p->lft.soft_byte_limit, 3000);
	assert_int_equal(p->lft.hard_byte_limit, 4000);
	assert_int_equal(p->lft.soft_packet_limit, 5);
	assert_int_equal(p->lft.hard_packet_limit, 6);

	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

static const uint32_t owned_if_ids[] = { 7 };
static const struct ts_xfrm_mark owned_marks[] = { { 0x10, 0xff } };
static const struct ts_xfrm_owner owner = {
	.if_ids = owned_if_ids,
	.n_if_ids = 1,
	.marks = owned_marks,
	.n_marks = 1,
	.reqid_min = 1000,
	.reqid_max = 1999,
};

static void test_owner_validate(void **state)
{
	static const uint32_t zero_if[] = { 0 };
	static const struct ts_xfrm_mark bad_mark[] = { { 0x10, 0 } };
	struct ts_xfrm_owner o = { 0 };
	struct ts_xfrm_sa sa = { .reqid = 1, .if_id = 0 };

	assert_int_equal(ts_xfrm_owner_validate(&owner), 0);
	assert_int_equal(ts_xfrm_owner_validate(&o), 0);
	assert_false(ts_xfrm_sa_owned(&o, &sa)); /* empty spec owns nothing */
	o.if_ids = zero_if;
	o.n_if_ids = 1;
	assert_int_equal(ts_xfrm_owner_validate(&o), -EINVAL);
	o = (struct ts_xfrm_owner){ .marks = bad_mark, .n_marks = 1 };
	assert_int_equal(ts_xfrm_owner_validate(&o), -EINVAL);
	o = (struct ts_xfrm_owner){ .reqid_min = 0, .reqid_max = 5 };
	assert_int_equal(ts_xfrm_owner_validate(&o), -EINVAL);
	o = (struct ts_xfrm_owner){ .reqid_min = 9, .reqid_max = 5 };
	assert_int_equal(ts_xfrm_owner_validate(&o), -EINVAL);
}

static void test_delete_owned_only(void **state)
{
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_match_result m;
	const struct ts_xfrm_policy *p;
	struct ts_xfrm_policy copy, gone = { 0 };
	size_t n_owned = 0;
	int r;

	/* Owned: if_id 7; reqid 1500; mark 0x10/0xff. Foreign: reqid 50;
	 * if_id 8 with reqid 2000; mark 0x10/0xf0. */
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "if_id 7 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 50 mode "
			       "tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir in "
			       "tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 1500 mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir fwd "
			       "mark 0x10 mask 0xff tmpl src 192.0.2.2 dst 192.0.2.1 proto esp "
			       "mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.7/32 dst 203.0.113.7/32 dir out "
			       "tmpl src 192.0.2.1 dst 192.0.2.3 proto esp reqid 50 mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.8/32 dst 203.0.113.8/32 dir out "
			       "if_id 8 tmpl src 192.0.2.1 dst 192.0.2.3 proto esp reqid 2000 mode "
			       "tunnel"),
			 0);
	assert_int_equal(
		ts_sh("ip xfrm policy add src 198.51.100.9/32 dst 203.0.113.9/32 dir out "
		      "mark 0x10 mask 0xf0 tmpl src 192.0.2.1 dst 192.0.2.3 proto esp mode "
		      "tunnel"),
		0);
	/* Larval SAs: owned by reqid / by mark, and a foreign one. */
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "reqid 1500 min 0x2000 max 0x2000 >/dev/null"),
			 0);
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "mark 0x10 mask 0xff min 0x2001 max 0x2001 >/dev/null"),
			 0);
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "reqid 5 min 0x2002 max 0x2002 >/dev/null"),
			 0);

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_int_equal(s.n_policies, 6);
	assert_int_equal(s.n_sas, 3);

	/* No tunnel declared: exactly the owned objects are stale. */
	assert_int_equal(ts_xfrm_match(&s, NULL, 0, &owner, NULL, 0, &m), 0);
	assert_true(m.stale_valid);
	assert_int_equal(m.n_stale, 5);
	for (size_t i = 0; i < m.n_stale; i++) {
		if (m.stale[i].kind == TS_XFRM_OBJECT_SA) {
			assert_int_not_equal(m.stale[i].sa.spi, 0x2002);
		} else {
			assert_true(ts_xfrm_policy_owned(&owner, &m.stale[i].policy));
			assert_true(m.stale[i].policy.if_id == 7 ||
				    m.stale[i].policy.tmpl[0].reqid == 1500 ||
				    m.stale[i].policy.mark.mask == 0xff);
		}
	}
	ts_xfrm_match_result_done(&m);

	/* An incomplete view never yields stale objects. */
	s.complete = false;
	assert_int_equal(ts_xfrm_match(&s, NULL, 0, &owner, NULL, 0, &m), 0);
	assert_false(m.stale_valid);
	assert_int_equal(m.n_stale, 0);
	ts_xfrm_match_result_done(&m);
	s.complete = true;

	/* Foreign objects: refused, still there. */
	for (size_t i = 0; i < s.n_policies; i++) {
		r = ts_xfrm_policy_delete(sock, &owner, &s.policies[i]);

		if (ts_xfrm_policy_owned(&owner, &s.policies[i])) {
			assert_int_equal(r, 0);
			gone = s.policies[i];
			n_owned++;
		} else {
			assert_int_equal(r, -EPERM);
		}
	}
	assert_int_equal(n_owned, 3);
	for (size_t i = 0; i < s.n_sas; i++) {
		r = ts_xfrm_sa_delete(sock, &owner, &s.sas[i]);

		assert_int_equal(r, s.sas[i].spi == 0x2002 ? -EPERM : 0);
	}

	/* The caller's copy cannot lie its way past the check: claim if_id 7
	 * on the foreign reqid-50 policy; the kernel's copy is judged. */
	p = find_policy(&s, "198.51.100.7/32", "203.0.113.7/32", TS_XFRM_DIR_OUT);
	assert_non_null(p);
	copy = *p;
	copy.if_id = 7;
	copy.index = 0;
	r = ts_xfrm_policy_delete(sock, &owner, &copy);
	assert_true(r == -ENOENT || r == -EPERM); /* kernels differ in if_id lookup */
	copy = *p;
	copy.tmpl[0].reqid = 1500;
	assert_int_equal(ts_xfrm_policy_delete(sock, &owner, &copy), -EPERM);

	ts_xfrm_snapshot_done(&s);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_int_equal(s.n_policies, 3);
	assert_int_equal(s.n_sas, 1);
	for (size_t i = 0; i < s.n_policies; i++)
		assert_false(ts_xfrm_policy_owned(&owner, &s.policies[i]));
	assert_int_equal(s.sas[0].spi, 0x2002);
	assert_int_equal(s.sas[0].reqid, 5);
	/* Deleting what is gone: ENOENT, not success. */
	assert_int_equal(ts_xfrm_policy_delete(sock, &owner, &gone), -ENOENT);
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

static void test_match_status(void **state)
{
	static const uint32_t reqids[] = { 1500 };
	struct ts_xfrm_expect_policy ep[3];
	struct ts_xfrm_expect e = { .name = "t1" };
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_match_result m;

	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "if_id 7 tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid 1500 mode "
			       "tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy add src 203.0.113.0/24 dst 198.51.100.0/24 dir in "
			       "if_id 7 tmpl src 192.0.2.2 dst 192.0.2.1 proto esp reqid 1500 mode "
			       "tunnel"),
			 0);
	/* An owned leftover of a removed tunnel (other peer, reqid 1501). */
	assert_int_equal(
		ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.128/25 dir out "
		      "tmpl src 192.0.2.1 dst 192.0.2.9 proto esp reqid 1501 mode tunnel"),
		0);
	/* Larval SAs stand in for the pair (no ESP on this kernel). */
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "reqid 1500 min 0x3000 max 0x3000 >/dev/null"),
			 0);
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.2 dst 192.0.2.1 proto esp "
			       "reqid 1500 min 0x3001 max 0x3001 >/dev/null"),
			 0);

	ep[0] = (struct ts_xfrm_expect_policy){ pfx("198.51.100.0/24"), pfx("203.0.113.0/24"),
						TS_XFRM_DIR_OUT };
	ep[1] = (struct ts_xfrm_expect_policy){ pfx("203.0.113.0/24"), pfx("198.51.100.0/24"),
						TS_XFRM_DIR_IN };
	ep[2] = (struct ts_xfrm_expect_policy){ pfx("203.0.113.0/24"), pfx("198.51.100.0/24"),
						TS_XFRM_DIR_FWD };
	e.local = ip("192.0.2.1");
	e.remote = ip("192.0.2.2");
	e.reqids = reqids;
	e.n_reqids = 1;
	e.policies = ep;
	e.n_policies = 2;

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, NULL, 0, &m), 0);
	assert_int_equal(m.n_tunnels, 1);
	assert_string_equal(m.tunnels[0].name, "t1");
	assert_true(m.tunnels[0].sa_out);
	assert_true(m.tunnels[0].sa_in);
	assert_int_equal(m.tunnels[0].spi_out, 0x3000);
	assert_int_equal(m.tunnels[0].spi_in, 0x3001);
	assert_true(m.tunnels[0].sa_in_alive && m.tunnels[0].sa_out_alive);
	assert_true(m.tunnels[0].policy_in && m.tunnels[0].policy_out);
	assert_false(m.tunnels[0].policy_fwd);
	assert_int_equal(m.tunnels[0].n_policies_found, 2);
	assert_true(m.tunnels[0].up);
	assert_true(m.stale_valid);
	assert_int_equal(m.n_stale, 1);
	assert_int_equal(m.stale[0].kind, TS_XFRM_OBJECT_POLICY);
	assert_int_equal(m.stale[0].policy.tmpl[0].reqid, 1501);
	ts_xfrm_match_result_done(&m);

	/* A wrong expected SPI, a missing fwd policy, and an if_id that does
	 * not agree each show. */
	e.spi_in = 0x4444;
	e.n_policies = 3;
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, NULL, 0, &m), 0);
	assert_false(m.tunnels[0].sa_in);
	assert_true(m.tunnels[0].sa_out);
	assert_int_equal(m.tunnels[0].n_policies_found, 2);
	assert_false(m.tunnels[0].up);
	ts_xfrm_match_result_done(&m);
	e.spi_in = 0;
	e.n_policies = 2;
	e.has_if_id = true;
	e.if_id = 9;
	assert_int_equal(ts_xfrm_match(&s, &e, 1, &owner, NULL, 0, &m), 0);
	assert_false(m.tunnels[0].policy_in);
	assert_false(m.tunnels[0].up);
	ts_xfrm_match_result_done(&m);

	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

/* Drains until at least `want` events or a resync, waiting up to ms. */
static void drain_wait(struct ts_xfrm_watch *w, size_t want, int ms, struct ts_xfrm_changes *all)
{
	struct timespec t0, t;

	memset(all, 0, sizeof(*all));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = ts_xfrm_watch_fd(w), .events = POLLIN };
		struct ts_xfrm_changes ch;
		long left;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (all->n_events >= want || all->resync != TS_XFRM_RESYNC_NONE || left <= 0)
			return;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		assert_true(ts_xfrm_watch_drain(w, &ch) >= 0);
		if (ch.n_events) {
			all->events = realloc(all->events,
					      (all->n_events + ch.n_events) * sizeof(*all->events));
			assert_non_null(all->events);
			memcpy(all->events + all->n_events, ch.events,
			       ch.n_events * sizeof(*ch.events));
			all->n_events += ch.n_events;
		}
		if (ch.resync != TS_XFRM_RESYNC_NONE)
			all->resync = ch.resync;
		ts_xfrm_changes_done(&ch);
	}
}

static void test_events(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_watch *w;
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_changes ch;
	int fdflags;

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_start(sock, 0, &w, &s), 0);
	assert_int_equal(s.n_policies, 0);
	ts_xfrm_snapshot_done(&s);
	fdflags = fcntl(ts_xfrm_watch_fd(w), F_GETFD);
	assert_true(fdflags & FD_CLOEXEC);
	assert_true(fcntl(ts_xfrm_watch_fd(w), F_GETFL) & O_NONBLOCK);
	{
		int rcvbuf = 0;
		socklen_t optlen = sizeof(rcvbuf);

		/* Root gets the full buffer past rmem_max (the kernel doubles it). */
		assert_int_equal(
			getsockopt(ts_xfrm_watch_fd(w), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &optlen),
			0);
		assert_true(rcvbuf >= (int)TS_XFRM_WATCH_RCVBUF);
	}

	/* Nothing pending: an empty drain. */
	assert_int_equal(ts_xfrm_watch_drain(w, &ch), 0);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_NONE);
	ts_xfrm_changes_done(&ch);

	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "if_id 7 mark 0x10 mask 0xff tmpl src 192.0.2.1 dst 192.0.2.2 "
			       "proto esp reqid 1500 mode tunnel"),
			 0);
	drain_wait(w, 1, 2000, &ch);
	assert_int_equal(ch.n_events, 1);
	assert_int_equal(ch.events[0].type, TS_XFRM_EVENT_POLICY_NEW);
	assert_int_equal(ch.events[0].policy.if_id, 7);
	assert_int_equal(ch.events[0].policy.mark.value, 0x10);
	assert_int_equal(ch.events[0].policy.tmpl[0].reqid, 1500);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_NONE);
	ts_xfrm_changes_done(&ch);

	assert_int_equal(ts_sh("ip xfrm policy update src 198.51.100.0/24 dst 203.0.113.0/24 dir "
			       "out if_id 7 mark 0x10 mask 0xff priority 77 tmpl src 192.0.2.1 "
			       "dst 192.0.2.2 proto esp reqid 1500 mode tunnel"),
			 0);
	drain_wait(w, 1, 2000, &ch);
	assert_int_equal(ch.n_events, 1);
	assert_int_equal(ch.events[0].type, TS_XFRM_EVENT_POLICY_UPD);
	assert_int_equal(ch.events[0].policy.priority, 77);
	ts_xfrm_changes_done(&ch);

	assert_int_equal(ts_sh("ip xfrm policy delete src 198.51.100.0/24 dst 203.0.113.0/24 dir "
			       "out if_id 7 mark 0x10 mask 0xff"),
			 0);
	drain_wait(w, 1, 2000, &ch);
	assert_int_equal(ch.n_events, 1);
	assert_int_equal(ch.events[0].type, TS_XFRM_EVENT_POLICY_DEL);
	assert_int_equal(ch.events[0].policy.if_id, 7);
	assert_int_equal(ch.events[0].policy.mark.mask, 0xff);
	assert_int_equal(ch.events[0].policy.dir, TS_XFRM_DIR_OUT);
	assert_int_equal(ch.events[0].policy.sel.dst.len, 24);
	ts_xfrm_changes_done(&ch);

	/* SA events from a larval SA: add, delete. */
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "reqid 1500 min 0x5000 max 0x5000 >/dev/null"),
			 0);
	assert_int_equal(ts_sh("ip xfrm state delete src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "spi 0x5000"),
			 0);
	drain_wait(w, 1, 2000, &ch);
	assert_true(ch.n_events >= 1);
	assert_int_equal(ch.events[ch.n_events - 1].type, TS_XFRM_EVENT_SA_DEL);
	assert_int_equal(ch.events[ch.n_events - 1].sa.spi, 0x5000);
	assert_int_equal(ch.events[ch.n_events - 1].sa.reqid, 1500);
	ts_xfrm_changes_done(&ch);

	/* Expiry: a policy with a 1 s hard lifetime. */
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir in "
			       "if_id 7 limit time-hard 1 tmpl src 192.0.2.2 dst 192.0.2.1 "
			       "proto esp reqid 1500 mode tunnel"),
			 0);
	drain_wait(w, 2, 5000, &ch);
	assert_int_equal(ch.n_events, 2);
	assert_int_equal(ch.events[0].type, TS_XFRM_EVENT_POLICY_NEW);
	assert_int_equal(ch.events[1].type, TS_XFRM_EVENT_POLICY_EXPIRE_HARD);
	assert_int_equal(ch.events[1].policy.if_id, 7);
	assert_int_equal(ch.events[1].policy.dir, TS_XFRM_DIR_IN);
	ts_xfrm_changes_done(&ch);

	/* A flush cannot be followed object by object: resync. */
	assert_int_equal(ts_sh("ip xfrm policy add src 198.51.100.0/24 dst 203.0.113.0/24 dir out "
			       "tmpl src 192.0.2.1 dst 192.0.2.2 proto esp mode tunnel"),
			 0);
	assert_int_equal(ts_sh("ip xfrm policy flush"), 0);
	drain_wait(w, 100, 2000, &ch);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_FLUSH_POLICY);
	ts_xfrm_changes_done(&ch);
	assert_int_equal(ts_sh("ip xfrm state allocspi src 192.0.2.1 dst 192.0.2.2 proto esp "
			       "min 0x5001 max 0x5001 >/dev/null"),
			 0);
	assert_int_equal(ts_sh("ip xfrm state flush"), 0);
	drain_wait(w, 100, 2000, &ch);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_FLUSH_SA);
	ts_xfrm_changes_done(&ch);

	ts_xfrm_watch_free(w);
	ts_xfrm_sock_free(sock);
}

/* A policy without an SA and a packet that needs one: the kernel asks for
 * the SA (ACQUIRE) with the policy's identity. lo has disable_xfrm, so
 * the packet leaves through a veth. */
static void test_acquire(void **state)
{
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_watch *w;
	struct ts_xfrm_snapshot s;
	struct ts_xfrm_changes ch;
	const struct ts_xfrm_acquire *a = NULL;
	struct ts_ip a1 = ip("192.0.2.1"), a2 = ip("192.0.2.99");

	assert_int_equal(ts_sh("ip link add tsxa type veth peer name tsxb && "
			       "ip addr add 192.0.2.1/24 dev tsxa && ip link set tsxa up && "
			       "ip link set tsxb up"),
			 0);
	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_start(sock, 0, &w, &s), 0);
	ts_xfrm_snapshot_done(&s);
	assert_int_equal(ts_sh("ip xfrm policy add src 192.0.2.1/32 dst 192.0.2.99/32 dir out "
			       "tmpl src 192.0.2.1 dst 192.0.2.99 proto esp "
			       "reqid 1500 mode tunnel"),
			 0);
	/* The ping fails (no SA): ping's first packet asks for one. */
	assert_int_equal(ts_sh("ping -c 1 -W 1 192.0.2.99 >/dev/null 2>&1 || true"), 0);
	drain_wait(w, 2, 3000, &ch);
	for (size_t i = 0; i < ch.n_events; i++)
		if (ch.events[i].type == TS_XFRM_EVENT_ACQUIRE)
			a = &ch.events[i].acquire;
	assert_non_null(a);
	assert_true(ts_ip_equal(&a->src, &a1));
	assert_true(ts_ip_equal(&a->dst, &a2));
	assert_int_equal(a->proto, TS_XFRM_PROTO_ESP);
	assert_int_equal(a->policy.dir, TS_XFRM_DIR_OUT);
	assert_int_equal(a->policy.mark.mask, 0);
	assert_int_equal(a->policy.n_tmpl, 1);
	assert_int_equal(a->policy.tmpl[0].reqid, 1500);
	assert_true(ts_ip_equal(&a->policy.sel.dst.ip, &a2)); /* the packet's selector */
	ts_xfrm_changes_done(&ch);
	ts_xfrm_watch_free(w);
	ts_xfrm_sock_free(sock);
}

static int write_batch(const char *path, unsigned n, unsigned start)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	for (unsigned i = start; i < start + n; i++)
		fprintf(f,
			"xfrm policy add src 10.%u.%u.0/24 dst 198.51.100.0/24 dir out priority %u "
			"tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid %u mode tunnel\n",
			(i >> 8) & 0xff, i & 0xff, i % 1000, 1000 + i % 1000);
	return fclose(f) == 0 ? 0 : -errno;
}

static void test_overflow(void **state)
{
	char path[] = "/tmp/tsx-batch-XXXXXX";
	struct ts_xfrm_watch *w;
	struct ts_xfrm_changes ch;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(write_batch(path, 500, 0), 0);
	/* The smallest receive buffer the kernel grants; 500 notifications
	 * without a drain cannot fit. */
	assert_int_equal(ts_xfrm_watch_open(1, &w), 0);
	assert_int_equal(ts_sh("ip -batch %s", path), 0);
	unlink(path);
	assert_true(ts_xfrm_watch_drain(w, &ch) >= 0);
	assert_int_equal(ch.resync, TS_XFRM_RESYNC_OVERFLOW);
	assert_true(ch.n_events < 500);
	ts_xfrm_changes_done(&ch);
	ts_xfrm_watch_free(w);
}

static void test_dump_10k(void **state)
{
	char path[] = "/tmp/tsx-batch-XXXXXX";
	struct ts_xfrm_sock *sock;
	struct ts_xfrm_snapshot s;
	unsigned seen[10000] = { 0 };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(write_batch(path, 10000, 0), 0);
	assert_int_equal(ts_sh("ip -batch %s", path), 0);
	unlink(path);

	assert_int_equal(ts_xfrm_sock_open(&sock), 0);
	assert_int_equal(ts_xfrm_dump(sock, &s), 0);
	assert_true(s.complete);
	assert_int_equal(s.n_policies, 10000);
	for (size_t k = 0; k < s.n_policies; k++) {
		const struct ts_xfrm_policy *p = &s.policies[k];
		unsigned i;

		assert_int_equal(p->sel.src.ip.family, AF_INET);
		assert_int_equal(p->sel.src.ip.bytes[0], 10);
		i = (unsigned)p->sel.src.ip.bytes[1] << 8 | p->sel.src.ip.bytes[2];
		assert_true(i < 10000);
		seen[i]++;
		assert_int_equal(p->priority, i % 1000);
		assert_int_equal(p->n_tmpl, 1);
		assert_int_equal(p->tmpl[0].reqid, 1000 + i % 1000);
		assert_int_equal(p->dir, TS_XFRM_DIR_OUT);
		assert_int_equal(p->sel.src.len, 24);
	}
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(seen[i], 1);
	ts_xfrm_snapshot_done(&s);
	ts_xfrm_sock_free(sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_validate),
		cmocka_unit_test_setup_teardown(test_policy_readback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_owned_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dump_10k, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
