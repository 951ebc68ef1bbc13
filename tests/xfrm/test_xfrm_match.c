/* Unit tests of ts_xfrm_match, which finds each object's tunnels through
 * hashed keys (if_id, mark, endpoint pair, selector): over thousands of
 * random snapshots, expectations, owners and events drawn from small
 * value sets (so that collisions of every kind happen), its result must
 * equal that of the plain definition — every tunnel compared with every
 * object through the public claims and ownership rules — computed here
 * as the oracle. Then one large case (10,000 tunnels) checked the same
 * way for its totals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "hub-fixture.h"
#include "xfrm/xfrm.h"

/* The plain definition, tunnel by tunnel (what match.c computed before it
 * was keyed). */
static bool oracle_gone(const struct ts_xfrm_sa *sa, const struct ts_xfrm_event *ev, size_t n)
{
	bool gone = false;

	for (size_t i = 0; i < n; i++) {
		if (ev[i].type > TS_XFRM_EVENT_SA_EXPIRE_HARD || ev[i].sa.spi != sa->spi ||
		    ev[i].sa.proto != sa->proto || !ts_ip_equal(&ev[i].sa.dst, &sa->dst) ||
		    ev[i].sa.mark.value != sa->mark.value || ev[i].sa.mark.mask != sa->mark.mask)
			continue;
		if (ev[i].type == TS_XFRM_EVENT_SA_DEL ||
		    ev[i].type == TS_XFRM_EVENT_SA_EXPIRE_HARD)
			gone = true;
		else if (ev[i].type == TS_XFRM_EVENT_SA_NEW || ev[i].type == TS_XFRM_EVENT_SA_UPD)
			gone = false;
	}
	return gone;
}

static bool oracle_ids(const struct ts_xfrm_expect *e, uint32_t if_id, const struct ts_xfrm_mark *m)
{
	return (!e->has_if_id || if_id == e->if_id) &&
	       (!e->has_mark || (m->value == e->mark.value && m->mask == e->mark.mask));
}

static void oracle_status(const struct ts_xfrm_snapshot *s, const struct ts_xfrm_expect *e,
			  const struct ts_xfrm_event *ev, size_t n_ev,
			  struct ts_xfrm_tunnel_status *st)
{
	const struct ts_xfrm_sa *bi = NULL, *bo = NULL;

	memset(st, 0, sizeof(*st));
	memcpy(st->name, e->name, sizeof(st->name));
	for (size_t i = 0; i < s->n_sas; i++) {
		const struct ts_xfrm_sa *sa = &s->sas[i];
		bool out, in;

		if (sa->proto != TS_XFRM_PROTO_ESP || !ts_xfrm_expect_claims_sa(e, sa) ||
		    oracle_gone(sa, ev, n_ev))
			continue;
		out = ts_ip_equal(&sa->src, &e->local) && ts_ip_equal(&sa->dst, &e->remote);
		in = ts_ip_equal(&sa->src, &e->remote) && ts_ip_equal(&sa->dst, &e->local);
		if (out && (!e->spi_out || sa->spi == e->spi_out)) {
			st->n_sa_out++;
			if (!bo || sa->cur.add_time > bo->cur.add_time)
				bo = sa;
		} else if (in && (!e->spi_in || sa->spi == e->spi_in)) {
			st->n_sa_in++;
			if (!bi || sa->cur.add_time > bi->cur.add_time)
				bi = sa;
		}
	}
	if (bi)
		st->sa_in = true, st->spi_in = bi->spi, st->sa_in_alive = bi->cur.add_time != 0;
	if (bo)
		st->sa_out = true, st->spi_out = bo->spi, st->sa_out_alive = bo->cur.add_time != 0;
	st->n_policies_expected = e->n_policies;
	for (size_t i = 0; i < s->n_policies; i++) {
		const struct ts_xfrm_policy *p = &s->policies[i];

		if (!ts_xfrm_expect_claims_policy(e, p))
			continue;
		st->policy_in |= p->dir == TS_XFRM_DIR_IN;
		st->policy_out |= p->dir == TS_XFRM_DIR_OUT;
		st->policy_fwd |= p->dir == TS_XFRM_DIR_FWD;
	}
	for (size_t j = 0; j < e->n_policies; j++)
		for (size_t i = 0; i < s->n_policies; i++) {
			const struct ts_xfrm_policy *p = &s->policies[i];

			if (oracle_ids(e, p->if_id, &p->mark) && p->dir == e->policies[j].dir &&
			    ts_prefix_equal(&p->sel.src, &e->policies[j].src) &&
			    ts_prefix_equal(&p->sel.dst, &e->policies[j].dst)) {
				st->n_policies_found++;
				break;
			}
		}
	for (size_t i = 0; i < n_ev; i++) {
		bool soft = ev[i].type == TS_XFRM_EVENT_SA_EXPIRE_SOFT ||
			    ev[i].type == TS_XFRM_EVENT_POLICY_EXPIRE_SOFT;
		bool hard = ev[i].type == TS_XFRM_EVENT_SA_EXPIRE_HARD ||
			    ev[i].type == TS_XFRM_EVENT_POLICY_EXPIRE_HARD;
		bool mine;

		if (!soft && !hard)
			continue;
		mine = ev[i].type <= TS_XFRM_EVENT_SA_EXPIRE_HARD
			       ? ts_xfrm_expect_claims_sa(e, &ev[i].sa)
			       : ts_xfrm_expect_claims_policy(e, &ev[i].policy);
		if (mine)
			st->soft_expire_seen |= soft, st->hard_expire_seen |= hard;
	}
	st->up = st->sa_in_alive && st->sa_out_alive &&
		 (e->n_policies ? st->n_policies_found == e->n_policies
				: st->policy_in && st->policy_out);
}

/* Stale objects, in the order ts_xfrm_match lists them: SAs, then
 * policies, each in snapshot order. */
static size_t oracle_stale(const struct ts_xfrm_snapshot *s, const struct ts_xfrm_expect *e,
			   size_t n_e, const struct ts_xfrm_owner *o, size_t *sa_idx,
			   size_t *pol_idx, size_t *ret_n_sa)
{
	size_t n_sa = 0, n_pol = 0;

	for (size_t i = 0; i < s->n_sas; i++) {
		bool claimed = false;

		if (!ts_xfrm_sa_owned(o, &s->sas[i]))
			continue;
		for (size_t j = 0; j < n_e && !claimed; j++)
			claimed = ts_xfrm_expect_claims_sa(&e[j], &s->sas[i]);
		if (!claimed)
			sa_idx[n_sa++] = i;
	}
	for (size_t i = 0; i < s->n_policies; i++) {
		bool claimed = false;

		if (!ts_xfrm_policy_owned(o, &s->policies[i]))
			continue;
		for (size_t j = 0; j < n_e && !claimed; j++)
			claimed = ts_xfrm_expect_claims_policy(&e[j], &s->policies[i]);
		if (!claimed)
			pol_idx[n_pol++] = i;
	}
	*ret_n_sa = n_sa;
	return n_sa + n_pol;
}

static unsigned rnd(unsigned n)
{
	return (unsigned)random() % n;
}

static void pick_ip(struct ts_ip *ip)
{
	static const char *const pool[] = { "203.0.113.10", "198.51.100.1", "198.51.100.2",
					    "192.0.2.7",    "2001:db8::1",  "2001:db8::2" };
	const char *a = pool[rnd(TS_ARRAY_SIZE(pool))];

	memset(ip, 0, sizeof(*ip));
	ip->family = strchr(a, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(ip->family, a, ip->bytes), 1);
}

static void pick_prefix(struct ts_prefix *p)
{
	pick_ip(&p->ip);
	p->len = rnd(2) ? 0 : (p->ip.family == AF_INET ? 32 : 128);
	if (!p->len)
		memset(p->ip.bytes, 0, sizeof(p->ip.bytes));
}

static void pick_mark(struct ts_xfrm_mark *m)
{
	static const struct ts_xfrm_mark pool[] = {
		{ 0, 0 }, { 1, 0xff }, { 2, 0xff }, { 1, 0xf }
	};

	*m = pool[rnd(TS_ARRAY_SIZE(pool))];
}

static void pick_sa(struct ts_xfrm_sa *sa)
{
	memset(sa, 0, sizeof(*sa));
	pick_ip(&sa->src);
	pick_ip(&sa->dst);
	sa->spi = 0x100 + rnd(6);
	sa->proto = rnd(5) ? TS_XFRM_PROTO_ESP : 51 /* AH */;
	sa->reqid = rnd(4);
	sa->if_id = rnd(4);
	pick_mark(&sa->mark);
	sa->cur.add_time = rnd(4) ? 1000 + rnd(3) : 0;
}

static void pick_policy(struct ts_xfrm_policy *p)
{
	memset(p, 0, sizeof(*p));
	pick_prefix(&p->sel.src);
	pick_prefix(&p->sel.dst);
	p->dir = (enum ts_xfrm_dir)rnd(3);
	p->if_id = rnd(4);
	pick_mark(&p->mark);
	p->n_tmpl = rnd(3);
	for (size_t i = 0; i < p->n_tmpl; i++) {
		pick_ip(&p->tmpl[i].src);
		pick_ip(&p->tmpl[i].dst);
		p->tmpl[i].mode = rnd(4) ? TS_XFRM_MODE_TUNNEL : TS_XFRM_MODE_TRANSPORT;
		p->tmpl[i].reqid = rnd(4);
	}
}

static void check_equal(const struct ts_xfrm_snapshot *s, const struct ts_xfrm_expect *e,
			size_t n_e, const struct ts_xfrm_owner *o, const struct ts_xfrm_event *ev,
			size_t n_ev, unsigned round)
{
	struct ts_xfrm_match_result m;
	size_t sa_idx[64], pol_idx[64], n_sa, n_stale;

	assert_int_equal(ts_xfrm_match(s, e, n_e, o, ev, n_ev, &m), 0);
	assert_int_equal(m.n_tunnels, n_e);
	for (size_t i = 0; i < n_e; i++) {
		struct ts_xfrm_tunnel_status want;

		oracle_status(s, &e[i], ev, n_ev, &want);
		if (memcmp(&want, &m.tunnels[i], sizeof(want)) != 0)
			fail_msg("round %u tunnel %zu: status differs (in %d/%d out %d/%d, "
				 "policies %zu/%zu, up %d/%d)",
				 round, i, want.sa_in, m.tunnels[i].sa_in, want.sa_out,
				 m.tunnels[i].sa_out, want.n_policies_found,
				 m.tunnels[i].n_policies_found, want.up, m.tunnels[i].up);
	}
	assert_int_equal(m.stale_valid, s->complete);
	if (s->complete) {
		n_stale = oracle_stale(s, e, n_e, o, sa_idx, pol_idx, &n_sa);
		if (m.n_stale != n_stale)
			fail_msg("round %u: %zu stale, expected %zu", round, m.n_stale, n_stale);
		for (size_t i = 0; i < n_stale; i++) {
			const struct ts_xfrm_stale *st = &m.stale[i];

			if (i < n_sa) {
				assert_int_equal(st->kind, TS_XFRM_OBJECT_SA);
				assert_memory_equal(&st->sa, &s->sas[sa_idx[i]], sizeof(st->sa));
			} else {
				assert_int_equal(st->kind, TS_XFRM_OBJECT_POLICY);
				assert_memory_equal(&st->policy, &s->policies[pol_idx[i - n_sa]],
						    sizeof(st->policy));
			}
		}
	}
	ts_xfrm_match_result_done(&m);
}

static void test_random_against_oracle(void **state)
{
	(void)state;
	srandom(12);
	for (unsigned round = 0; round < 3000; round++) {
		struct ts_xfrm_sa sas[12];
		struct ts_xfrm_policy pols[12];
		struct ts_xfrm_expect e[6];
		struct ts_xfrm_expect_policy ep[6][2];
		uint32_t reqids[6][2], if_ids[3];
		struct ts_xfrm_mark marks[2];
		struct ts_xfrm_event ev[4];
		struct ts_xfrm_snapshot s = { .sas = sas, .policies = pols };
		struct ts_xfrm_owner o = { .if_ids = if_ids, .marks = marks };
		size_t n_e = rnd(7), n_ev = rnd(5);

		s.n_sas = rnd(13);
		s.n_policies = rnd(13);
		s.complete = rnd(8) != 0;
		for (size_t i = 0; i < s.n_sas; i++)
			pick_sa(&sas[i]);
		for (size_t i = 0; i < s.n_policies; i++)
			pick_policy(&pols[i]);
		for (size_t i = 0; i < n_e; i++) {
			memset(&e[i], 0, sizeof(e[i]));
			snprintf(e[i].name, sizeof(e[i].name), "t%zu", i);
			pick_ip(&e[i].local);
			pick_ip(&e[i].remote);
			e[i].has_if_id = rnd(2);
			e[i].if_id = rnd(4);
			e[i].has_mark = rnd(3) == 0;
			pick_mark(&e[i].mark);
			e[i].spi_in = rnd(3) ? 0 : 0x100 + rnd(6);
			e[i].spi_out = rnd(3) ? 0 : 0x100 + rnd(6);
			e[i].n_reqids = rnd(3);
			for (size_t j = 0; j < e[i].n_reqids; j++)
				reqids[i][j] = rnd(4);
			e[i].reqids = reqids[i];
			e[i].n_policies = rnd(3);
			for (size_t j = 0; j < e[i].n_policies; j++) {
				pick_prefix(&ep[i][j].src);
				pick_prefix(&ep[i][j].dst);
				ep[i][j].dir = (enum ts_xfrm_dir)rnd(3);
			}
			e[i].policies = ep[i];
		}
		o.n_if_ids = rnd(4);
		for (size_t i = 0; i < o.n_if_ids; i++)
			if_ids[i] = 1 + rnd(3);
		o.n_marks = rnd(3);
		marks[0] = (struct ts_xfrm_mark){ 1, 0xff };
		marks[1] = (struct ts_xfrm_mark){ 1, 0xf };
		if (rnd(2))
			o.reqid_min = 1, o.reqid_max = 1 + rnd(3);
		for (size_t i = 0; i < n_ev; i++) {
			memset(&ev[i], 0, sizeof(ev[i]));
			ev[i].type = (enum ts_xfrm_event_type)rnd(TS_XFRM_EVENT_ACQUIRE);
			if (ev[i].type <= TS_XFRM_EVENT_SA_EXPIRE_HARD) {
				if (s.n_sas && rnd(2))
					ev[i].sa = sas[rnd((unsigned)s.n_sas)];
				else
					pick_sa(&ev[i].sa);
			} else {
				pick_policy(&ev[i].policy);
			}
		}
		check_equal(&s, e, n_e, &o, ev, n_ev, round);
	}
}

/* 10,000 route-based tunnels with their SA pairs and three policies each,
 * plus stale objects of removed tunnels: every tunnel up, the stale ones
 * (and only they) reported. */
static void test_large(void **state)
{
	enum {
		N = 10000,
		GONE = 50
	};
	struct hub_fixture h;
	struct ts_xfrm_match_result m;
	size_t up = 0;

	(void)state;
	assert_int_equal(hub_fixture_init(&h, N, GONE), 0);
	assert_int_equal(ts_xfrm_match(&h.snap, h.expect, N, &h.owner, NULL, 0, &m), 0);
	for (size_t i = 0; i < N; i++)
		up += m.tunnels[i].up && m.tunnels[i].n_sa_in == 1 && m.tunnels[i].n_sa_out == 1 &&
		      m.tunnels[i].policy_fwd;
	assert_int_equal(up, N);
	assert_int_equal(m.n_stale, 5 * GONE);
	for (size_t i = 0; i < m.n_stale; i++) {
		uint32_t id = m.stale[i].kind == TS_XFRM_OBJECT_SA ? m.stale[i].sa.if_id
								   : m.stale[i].policy.if_id;

		assert_true(id >= 1000 + N);
	}
	ts_xfrm_match_result_done(&m);
	hub_fixture_done(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_oracle),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
