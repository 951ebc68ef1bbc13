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
	nl_socket_free(s->strict);
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

/* Collect during the dump, act after it. */
struct listing {
	struct ts_route_seen *v;
	size_t n, cap;
	int err;
};

static void on_owned(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct listing *ls = arg;
	struct nl_addr *dst = rtnl_route_get_dst(rt);
	struct rtnl_nexthop *nh;
	struct ts_route_seen *e;
	char name[IF_NAMESIZE];

	if (ls->err || rtnl_route_get_protocol(rt) != TS_ROUTE_PROTOCOL ||
	    rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_family(rt) != AF_INET ||
	    !dst)
		return;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? 2 * ls->cap : 16;
		struct ts_route_seen *v = realloc(ls->v, cap * sizeof(*v));

		if (!v) {
			ls->err = -ENOMEM;
			return;
		}
		ls->v = v;
		ls->cap = cap;
	}
	e = &ls->v[ls->n++];
	memset(e, 0, sizeof(*e));
	e->dst.ip.family = AF_INET;
	/* A default route's destination has no bytes. */
	if (nl_addr_get_len(dst) == 4)
		memcpy(e->dst.ip.bytes, nl_addr_get_binary_addr(dst), 4);
	e->dst.len = (uint8_t)nl_addr_get_prefixlen(dst);
	e->metric = rtnl_route_get_priority(rt);
	nh = rtnl_route_get_nnexthops(rt) == 1 ? rtnl_route_nexthop_n(rt, 0) : NULL;
	if (nh && if_indextoname((unsigned)rtnl_route_nh_get_ifindex(nh), name))
		snprintf(e->ifname, sizeof(e->ifname), "%s", name);
}

int ts_route_list(struct ts_route_sock *s, struct ts_route_seen **ret_routes, size_t *ret_n)
{
	struct listing ls = { 0 };
	struct nl_cache *cache = NULL;
	int r;

	if (!s || !ret_routes || !ret_n)
		return -EINVAL;
	r = rtnl_route_alloc_cache(s->sk, AF_INET, 0, &cache);
	if (r < 0)
		return ts_route_nl_errno(r);
	nl_cache_foreach(cache, on_owned, &ls);
	nl_cache_free(cache);
	if (ls.err) {
		free(ls.v);
		return ls.err;
	}
	*ret_routes = ls.v;
	*ret_n = ls.n;
	return 0;
}

static bool same_dst(const struct ts_prefix *a, const struct ts_prefix *b)
{
	return a->ip.family == AF_INET && b->ip.family == AF_INET && a->len == b->len &&
	       memcmp(a->ip.bytes, b->ip.bytes, 4) == 0;
}

/* r is an owned route to dst through ifname. */
static bool route_is(const struct ts_route_seen *r, const char *ifname, const struct ts_prefix *dst)
{
	return r->ifname[0] && strcmp(r->ifname, ifname) == 0 && same_dst(&r->dst, dst);
}

void ts_route_decide_set(const struct ts_route_seen *routes, size_t n, const char *ifname,
			 const struct ts_prefix *dst, uint32_t metric, struct ts_route_move *ret)
{
	*ret = (struct ts_route_move){ .add = true };
	for (size_t i = 0; i < n; i++) {
		if (!route_is(&routes[i], ifname, dst))
			continue;
		if (routes[i].metric == metric) {
			ret->add = false;
		} else {
			ret->n_old++;
			ret->old_metric = routes[i].metric;
		}
	}
}

bool ts_route_kept(const struct ts_route_seen *r, const struct ts_route_key *keep, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keep[i].ifname && route_is(r, keep[i].ifname, &keep[i].dst))
			return true;
	return false;
}

int ts_route_delete(struct ts_route_sock *s, const struct ts_route_seen *r)
{
	struct rtnl_route *rt;
	int ifindex = 0, d;

	if (!s || !r || r->dst.ip.family != AF_INET || r->dst.len > 32)
		return -EINVAL;
	if (r->ifname[0] && !(ifindex = (int)if_nametoindex(r->ifname)))
		return -ENOENT; /* its interface went, and the route with it */
	rt = route_new(ifindex, &r->dst, r->metric);
	if (!rt)
		return -ENOMEM;
	if (!ifindex) {
		/* Several nexthops: matched by destination, metric, protocol. */
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, 0);

		rtnl_route_remove_nexthop(rt, nh);
		rtnl_route_nh_free(nh);
	}
	rtnl_route_set_scope(rt, RT_SCOPE_NOWHERE); /* any scope */
	d = rtnl_route_delete(s->sk, rt, 0);
	rtnl_route_put(rt);
	return d < 0 ? ts_route_nl_errno(d) : 0;
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
	struct ts_route_seen *routes = NULL;
	struct ts_route_move mv;
	size_t n = 0;
	int ifindex, r;

	if (!s)
		return -EINVAL;
	r = check(ifname, dst, &ifindex);
	if (r < 0)
		return r;
	r = ts_route_list(s, &routes, &n);
	if (r < 0)
		return r;
	ts_route_decide_set(routes, n, ifname, dst, metric, &mv);
	if (mv.add) {
		struct rtnl_route *rt = route_new(ifindex, dst, metric);

		if (!rt) {
			free(routes);
			return -ENOMEM;
		}
		r = rtnl_route_add(s->sk, rt, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_route_put(rt);
		if (r < 0 && r != -NLE_EXIST) {
			free(routes);
			return ts_route_nl_errno(r);
		}
		r = 0;
	}
	/* Then the old ones: the prefix always has a route. */
	for (size_t i = 0; mv.n_old && i < n; i++) {
		int d;

		if (!route_is(&routes[i], ifname, dst) || routes[i].metric == metric)
			continue;
		d = ts_route_delete(s, &routes[i]);
		if (d < 0 && d != -ENOENT && r == 0)
			r = d;
	}
	free(routes);
	return r;
}

int ts_route_get(struct ts_route_sock *s, const char *ifname, const struct ts_prefix *dst,
		 uint32_t *ret_metric)
{
	struct ts_route_seen *routes = NULL;
	size_t n = 0;
	int ifindex, r;

	if (!s)
		return -EINVAL;
	r = check(ifname, dst, &ifindex);
	if (r < 0)
		return r;
	r = ts_route_list(s, &routes, &n);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n; i++)
		if (route_is(&routes[i], ifname, dst)) {
			*ret_metric = routes[i].metric;
			r = 0;
		}
	free(routes);
	return r;
}

int ts_route_prune(struct ts_route_sock *s, const struct ts_route_key *keep, size_t n,
		   unsigned *ret_deleted)
{
	struct ts_route_seen *routes = NULL;
	size_t n_routes = 0;
	unsigned deleted = 0;
	int r;

	if (ret_deleted)
		*ret_deleted = 0;
	if (!s || (n && !keep))
		return -EINVAL;
	r = ts_route_list(s, &routes, &n_routes);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_routes; i++) {
		int d;

		if (ts_route_kept(&routes[i], keep, n))
			continue;
		d = ts_route_delete(s, &routes[i]);
		if (d == 0)
			deleted++;
		else if (d != -ENOENT && r == 0)
			r = d;
	}
	free(routes);
	if (ret_deleted)
		*ret_deleted = deleted;
	return r;
}
