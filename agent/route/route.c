/* Owns the routes of route-based tunnels (see route.h), over libnl-route:
 * add before delete, so that moving a route's metric never leaves the
 * prefix without a route. */
#include <errno.h>
#include <stdbool.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>

#include "route/route.h"
#include "route/route_internal.h"

int ts_route_nl_errno(int e)
{
	switch (e < 0 ? -e : e) {
	case NLE_EXIST:
		return -EEXIST;
	case NLE_OBJ_NOTFOUND:
		return -ENOENT;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_INVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int ts_route_open(struct ts_route_sock **ret_sock)
{
	struct ts_route_sock *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->sk = nl_socket_alloc();
	if (!s->sk) {
		free(s);
		return -ENOMEM;
	}
	r = nl_connect(s->sk, NETLINK_ROUTE);
	if (r < 0) {
		nl_socket_free(s->sk);
		free(s);
		return ts_route_nl_errno(r);
	}
	*ret_sock = s;
	return 0;
}

void ts_route_close(struct ts_route_sock *s)
{
	if (!s)
		return;
	nl_socket_free(s->sk);
	free(s);
}

static struct rtnl_route *route_new(int ifindex, const struct ts_prefix *dst, uint32_t metric)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *a = nl_addr_build(AF_INET, dst->ip.bytes, 4);

	if (!rt || !nh || !a) {
		rtnl_route_put(rt);
		rtnl_route_nh_free(nh);
		nl_addr_put(a);
		return NULL;
	}
	nl_addr_set_prefixlen(a, dst->len);
	rtnl_route_set_family(rt, AF_INET);
	rtnl_route_set_dst(rt, a);
	nl_addr_put(a);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_protocol(rt, TS_ROUTE_PROTOCOL);
	rtnl_route_set_scope(rt, RT_SCOPE_LINK);
	rtnl_route_set_type(rt, RTN_UNICAST);
	rtnl_route_set_priority(rt, metric);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(rt, nh);
	return rt;
}

struct scan {
	int ifindex;
	struct nl_addr *dst;
	uint32_t keep; /* metric not to collect */
	struct rtnl_route *found[16];
	size_t n;
	uint32_t metric;
	bool any;
};

static void on_route(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct scan *sc = arg;
	struct rtnl_nexthop *nh;

	if (rtnl_route_get_protocol(rt) != TS_ROUTE_PROTOCOL ||
	    rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(rt) != 1 ||
	    nl_addr_cmp(rtnl_route_get_dst(rt), sc->dst) != 0)
		return;
	nh = rtnl_route_nexthop_n(rt, 0);
	if (!nh || rtnl_route_nh_get_ifindex(nh) != sc->ifindex)
		return;
	sc->any = true;
	sc->metric = rtnl_route_get_priority(rt);
	if (sc->metric != sc->keep && sc->n < sizeof(sc->found) / sizeof(sc->found[0])) {
		nl_object_get(obj);
		sc->found[sc->n++] = rt;
	}
}

/* Owned routes to dst through ifindex (all but those with metric keep). */
static int scan(struct ts_route_sock *s, int ifindex, const struct ts_prefix *dst, uint32_t keep,
		struct scan *sc)
{
	struct nl_cache *cache = NULL;
	int r;

	memset(sc, 0, sizeof(*sc));
	sc->ifindex = ifindex;
	sc->keep = keep;
	sc->dst = nl_addr_build(AF_INET, dst->ip.bytes, 4);
	if (!sc->dst)
		return -ENOMEM;
	nl_addr_set_prefixlen(sc->dst, dst->len);
	r = rtnl_route_alloc_cache(s->sk, AF_INET, 0, &cache);
	if (r < 0) {
		nl_addr_put(sc->dst);
		return ts_route_nl_errno(r);
	}
	nl_cache_foreach(cache, on_route, sc);
	nl_cache_free(cache);
	nl_addr_put(sc->dst);
	return 0;
}

static int check(const char *ifname, const struct ts_prefix *dst, int *ret_ifindex)
{
	unsigned idx;

	if (!ifname || !dst || dst->ip.family != AF_INET || dst->len > 32)
		return -EINVAL;
	idx = if_nametoindex(ifname);
	if (!idx)
		return -ENODEV;
	*ret_ifindex = (int)idx;
	return 0;
}

int ts_route_set(struct ts_route_sock *s, const char *ifname, const struct ts_prefix *dst,
		 uint32_t metric)
{
	struct rtnl_route *rt;
	struct scan sc;
	int ifindex, r;

	if (!s)
		return -EINVAL;
	r = check(ifname, dst, &ifindex);
	if (r < 0)
		return r;
	rt = route_new(ifindex, dst, metric);
	if (!rt)
		return -ENOMEM;
	r = rtnl_route_add(s->sk, rt, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_route_put(rt);
	if (r < 0 && r != -NLE_EXIST)
		return ts_route_nl_errno(r);
	/* Then the old ones: the prefix always has a route. */
	r = scan(s, ifindex, dst, metric, &sc);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc.n; i++) {
		int d = rtnl_route_delete(s->sk, sc.found[i], 0);

		if (d < 0 && d != -NLE_OBJ_NOTFOUND && r == 0)
			r = ts_route_nl_errno(d);
		rtnl_route_put(sc.found[i]);
	}
	return r;
}

int ts_route_get(struct ts_route_sock *s, const char *ifname, const struct ts_prefix *dst,
		 uint32_t *ret_metric)
{
	struct scan sc;
	int ifindex, r;

	if (!s)
		return -EINVAL;
	r = check(ifname, dst, &ifindex);
	if (r < 0)
		return r;
	r = scan(s, ifindex, dst, UINT32_MAX, &sc);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc.n; i++)
		rtnl_route_put(sc.found[i]);
	if (!sc.any)
		return -ENOENT;
	*ret_metric = sc.metric;
	return 0;
}

struct prune {
	const struct ts_route_key *keep;
	const int *ifindex; /* of keep[i]; 0: no such interface */
	size_t n;
	struct rtnl_route **stale;
	size_t n_stale, cap;
	int err;
};

static bool kept(const struct prune *pr, struct rtnl_route *rt)
{
	struct rtnl_nexthop *nh =
		rtnl_route_get_nnexthops(rt) == 1 ? rtnl_route_nexthop_n(rt, 0) : NULL;
	struct nl_addr *dst = rtnl_route_get_dst(rt);

	if (!nh || !dst || nl_addr_get_len(dst) != 4)
		return false;
	for (size_t i = 0; i < pr->n; i++)
		if (pr->ifindex[i] && rtnl_route_nh_get_ifindex(nh) == pr->ifindex[i] &&
		    nl_addr_get_prefixlen(dst) == pr->keep[i].dst.len &&
		    memcmp(nl_addr_get_binary_addr(dst), pr->keep[i].dst.ip.bytes, 4) == 0)
			return true;
	return false;
}

static void on_owned(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct prune *pr = arg;

	if (rtnl_route_get_protocol(rt) != TS_ROUTE_PROTOCOL ||
	    rtnl_route_get_table(rt) != RT_TABLE_MAIN || kept(pr, rt))
		return;
	if (pr->n_stale == pr->cap) {
		size_t cap = pr->cap ? 2 * pr->cap : 16;
		struct rtnl_route **v = realloc(pr->stale, cap * sizeof(*v));

		if (!v) {
			pr->err = -ENOMEM;
			return;
		}
		pr->stale = v;
		pr->cap = cap;
	}
	nl_object_get(obj);
	pr->stale[pr->n_stale++] = rt;
}

int ts_route_prune(struct ts_route_sock *s, const struct ts_route_key *keep, size_t n,
		   unsigned *ret_deleted)
{
	struct prune pr = { .keep = keep, .n = n };
	struct nl_cache *cache = NULL;
	int *idx = NULL, r;
	unsigned deleted = 0;

	if (ret_deleted)
		*ret_deleted = 0;
	if (!s || (n && !keep))
		return -EINVAL;
	if (n && !(idx = calloc(n, sizeof(*idx))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (keep[i].ifname && keep[i].dst.ip.family == AF_INET)
			idx[i] = (int)if_nametoindex(keep[i].ifname);
	pr.ifindex = idx;
	r = rtnl_route_alloc_cache(s->sk, AF_INET, 0, &cache);
	if (r < 0) {
		free(idx);
		return ts_route_nl_errno(r);
	}
	nl_cache_foreach(cache, on_owned, &pr);
	nl_cache_free(cache);
	r = pr.err;
	for (size_t i = 0; i < pr.n_stale; i++) {
		int d = rtnl_route_delete(s->sk, pr.stale[i], 0);

		if (d == 0)
			deleted++;
		else if (d != -NLE_OBJ_NOTFOUND && r == 0)
			r = ts_route_nl_errno(d);
		rtnl_route_put(pr.stale[i]);
	}
	free(pr.stale);
	free(idx);
	if (ret_deleted)
		*ret_deleted = deleted;
	return r;
}
