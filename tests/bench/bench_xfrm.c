/* Figures for agent/xfrm: time and peak memory to dump 10k and 50k
 * policies (a full resync), in a network namespace of its own. Prints;
 * asserts nothing about speed. Needs root; says so and skips otherwise. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "../xfrm/netns-helper.h"
#include "core/timeutil.h"
#include "xfrm/xfrm.h"

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static int add_policies(unsigned start, unsigned n)
{
	char path[] = "/tmp/tsx-bench-XXXXXX";
	int fd = mkstemp(path), r;
	FILE *f;

	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -1;
	for (unsigned i = start; i < start + n; i++)
		fprintf(f,
			"xfrm policy add src 10.%u.%u.0/24 dst 198.51.100.0/24 dir out if_id %u "
			"tmpl src 192.0.2.1 dst 192.0.2.2 proto esp reqid %u mode tunnel\n",
			(i >> 8) & 0xff, i & 0xff, 1 + i % 7, 1000 + i % 1000);
	fclose(f);
	r = ts_sh("ip -batch %s", path);
	unlink(path);
	return r;
}

static int measure(struct ts_xfrm_sock *sock, unsigned expect)
{
	struct ts_xfrm_snapshot s;
	long rss0 = maxrss_kib();
	ts_usec_t t0 = ts_now_monotonic(), t1;
	int r = ts_xfrm_dump(sock, &s);

	t1 = ts_now_monotonic();
	if (r < 0) {
		fprintf(stderr, "dump failed: %s\n", strerror(-r));
		return r;
	}
	printf("xfrm dump %u policies: %.1f ms, maxrss +%ld KiB (%zu B per policy struct), "
	       "count %s\n",
	       expect, (double)(t1 - t0) / 1000.0, maxrss_kib() - rss0,
	       sizeof(struct ts_xfrm_policy), s.n_policies == expect ? "ok" : "WRONG");
	r = s.n_policies == expect ? 0 : -1;
	ts_xfrm_snapshot_done(&s);
	return r;
}

int main(void)
{
	struct ts_xfrm_sock *sock;
	int r;

	if (getuid() != 0) {
		printf("bench_xfrm: skipped: needs root to create a network namespace\n");
		return 0;
	}
	if (ts_ns_enter("tsx-bench") < 0) {
		printf("bench_xfrm: skipped: cannot create a network namespace\n");
		return 0;
	}
	r = ts_xfrm_sock_open(&sock);
	if (r < 0 || add_policies(0, 10000) != 0 || measure(sock, 10000) < 0 ||
	    add_policies(10000, 40000) != 0 || measure(sock, 50000) < 0) {
		fprintf(stderr, "bench_xfrm: failed\n");
		ts_xfrm_sock_free(sock);
		ts_ns_leave();
		return 1;
	}
	ts_xfrm_sock_free(sock);
	ts_ns_leave();
	return 0;
}
