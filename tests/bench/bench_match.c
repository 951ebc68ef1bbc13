/* Kernel matching figures: ts_xfrm_match over N route-based tunnels, each
 * with its SA pair and three policies, plus 1 % stale objects, at 1,000
 * and 10,000 tunnels. Prints time per match; asserts nothing about time
 * (the result itself is checked: every tunnel up, the stale ones found). */
#include <stdio.h>

#include "../xfrm/hub-fixture.h"
#include "core/timeutil.h"

static int run(size_t n, int rounds)
{
	size_t gone = n / 100, up = 0, n_stale = 0;
	struct hub_fixture h;
	ts_usec_t t0, t1;
	bool ok;

	if (hub_fixture_init(&h, n, gone) < 0)
		return 1;
	t0 = ts_now_monotonic();
	for (int r = 0; r < rounds; r++) {
		struct ts_xfrm_match_result m;

		if (ts_xfrm_match(&h.snap, h.expect, n, &h.owner, NULL, 0, &m) < 0)
			return 1;
		up = 0;
		for (size_t i = 0; i < n; i++)
			up += m.tunnels[i].up;
		n_stale = m.n_stale;
		ts_xfrm_match_result_done(&m);
	}
	t1 = ts_now_monotonic();
	ok = up == n && n_stale == 5 * gone;
	printf("xfrm match: %6zu tunnels, %6zu SAs, %6zu policies: %8.2f ms per match "
	       "(%zu up, %zu stale: %s)\n",
	       n, h.snap.n_sas, h.snap.n_policies, (double)(t1 - t0) / rounds / 1000.0, up, n_stale,
	       ok ? "ok" : "WRONG");
	hub_fixture_done(&h);
	return ok ? 0 : 1;
}

int main(void)
{
	return run(1000, 20) || run(10000, 5);
}
