/* A hub gateway's kernel state for tests and benchmarks of matching: n
 * route-based tunnels (if_id 1000 + i, gateway 203.0.113.10, edges cycling
 * through 198.51.100.1-250), each with its ESP SA pair and out/in/fwd
 * policies, plus `gone` more tunnels' objects that no expectation claims
 * (owned through their if_ids: stale). Header-only. */
#pragma once

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfrm/xfrm.h"

struct hub_fixture {
	struct ts_xfrm_snapshot snap;
	struct ts_xfrm_expect *expect; /* n, SPIs set */
	size_t n;
	uint32_t *if_ids;
	struct ts_xfrm_owner owner; /* every if_id, the gone ones too */
};

static inline int hub_fixture_init(struct hub_fixture *h, size_t n, size_t gone)
{
	size_t total = n + gone;
	struct ts_ip gw = { .family = AF_INET };

	memset(h, 0, sizeof(*h));
	h->n = n;
	h->expect = calloc(n ? n : 1, sizeof(*h->expect));
	h->if_ids = calloc(total ? total : 1, sizeof(*h->if_ids));
	h->snap.sas = calloc(2 * total + 1, sizeof(*h->snap.sas));
	h->snap.policies = calloc(3 * total + 1, sizeof(*h->snap.policies));
	h->snap.complete = true;
	h->owner = (struct ts_xfrm_owner){ .if_ids = h->if_ids, .n_if_ids = total };
	if (!h->expect || !h->if_ids || !h->snap.sas || !h->snap.policies)
		return -1;
	inet_pton(AF_INET, "203.0.113.10", gw.bytes);
	for (size_t i = 0; i < total; i++) {
		struct ts_ip edge = gw;

		inet_pton(AF_INET, "198.51.100.0", edge.bytes);
		edge.bytes[3] = (uint8_t)(1 + i % 250);
		h->if_ids[i] = (uint32_t)(1000 + i);
		for (int d = 0; d < 2; d++) {
			struct ts_xfrm_sa *sa = &h->snap.sas[h->snap.n_sas++];

			sa->src = d ? edge : gw;
			sa->dst = d ? gw : edge;
			sa->spi = (uint32_t)(0x1000 + 2 * i + (size_t)d);
			sa->proto = TS_XFRM_PROTO_ESP;
			sa->if_id = h->if_ids[i];
			sa->cur.add_time = 1;
		}
		for (int d = 0; d < 3; d++) {
			struct ts_xfrm_policy *p = &h->snap.policies[h->snap.n_policies++];

			p->dir = (enum ts_xfrm_dir)d;
			p->if_id = h->if_ids[i];
			p->sel.src.ip.family = p->sel.dst.ip.family = AF_INET;
			p->n_tmpl = 1;
			p->tmpl[0].mode = TS_XFRM_MODE_TUNNEL;
			p->tmpl[0].proto = TS_XFRM_PROTO_ESP;
			p->tmpl[0].src = d == TS_XFRM_DIR_OUT ? gw : edge;
			p->tmpl[0].dst = d == TS_XFRM_DIR_OUT ? edge : gw;
		}
		if (i >= n)
			continue;
		snprintf(h->expect[i].name, sizeof(h->expect[i].name), "t%05zu", i);
		h->expect[i].local = gw;
		h->expect[i].remote = edge;
		h->expect[i].has_if_id = true;
		h->expect[i].if_id = h->if_ids[i];
		h->expect[i].spi_out = (uint32_t)(0x1000 + 2 * i);
		h->expect[i].spi_in = (uint32_t)(0x1000 + 2 * i + 1);
	}
	return 0;
}

static inline void hub_fixture_done(struct hub_fixture *h)
{
	free(h->snap.sas);
	free(h->snap.policies);
	free(h->expect);
	free(h->if_ids);
	memset(h, 0, sizeof(*h));
}
