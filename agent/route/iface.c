/* The tunnel interfaces the agent owns (route.h: ts_iface_*), over
 * libnl-route. An interface is the agent's only when its alias is
 * "tunnelsync:TUNNEL"; nothing else is ever changed or deleted. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/ipvti.h>
#include <netlink/route/link/xfrmi.h>

#include "route/route.h"
#include "route/route_internal.h"

#define OWNER_PREFIX "tunnelsync:"

static bool owned_by(struct rtnl_link *l, const char *owner)
{
	const char *alias = rtnl_link_get_ifalias(l);

	if (!alias || strncmp(alias, OWNER_PREFIX, strlen(OWNER_PREFIX)) != 0)
		return false;
	return !owner || strcmp(alias + strlen(OWNER_PREFIX), owner) == 0;
}

static uint32_t be32(const struct ts_ip *ip)
{
	uint32_t v;

	memcpy(&v, ip->bytes, 4);
	return v;
}

/* The VTI as the spec wants it (kind, key both ways, endpoints). */
static bool vti_matches(struct rtnl_link *l, const struct ts_iface_spec *sp)
{
	const char *kind = rtnl_link_get_type(l);

	return kind && strcmp(kind, "vti") == 0 && rtnl_link_ipvti_get_ikey(l) == htonl(sp->key) &&
	       rtnl_link_ipvti_get_okey(l) == htonl(sp->key) &&
	       rtnl_link_ipvti_get_local(l) == be32(&sp->local) &&
	       rtnl_link_ipvti_get_remote(l) == be32(&sp->remote);
}

/* The XFRM interface as the spec wants it (kind, if_id). */
static bool xfrmi_matches(struct rtnl_link *l, const struct ts_iface_spec *sp)
{
	const char *kind = rtnl_link_get_type(l);
	uint32_t if_id = 0;

	return kind && strcmp(kind, "xfrm") == 0 && rtnl_link_xfrmi_get_if_id(l, &if_id) == 0 &&
	       if_id == sp->if_id;
}

static bool link_matches(struct rtnl_link *l, const struct ts_iface_spec *sp)
{
	return sp->if_id ? xfrmi_matches(l, sp) : vti_matches(l, sp);
}

static struct rtnl_link *vti_alloc(const struct ts_iface_spec *sp)
{
	struct rtnl_link *l = rtnl_link_ipvti_alloc();

	if (!l)
		return NULL;
	/* libnl passes the keys as they are: the kernel wants them big-endian. */
	rtnl_link_ipvti_set_ikey(l, htonl(sp->key));
	rtnl_link_ipvti_set_okey(l, htonl(sp->key));
	rtnl_link_ipvti_set_local(l, be32(&sp->local));
	rtnl_link_ipvti_set_remote(l, be32(&sp->remote));
	return l;
}

/* An XFRM interface bound to no lower device (the SAs' if_id selects it). */
static struct rtnl_link *xfrmi_alloc(const struct ts_iface_spec *sp)
{
	struct rtnl_link *l = rtnl_link_xfrmi_alloc();

	if (l && rtnl_link_xfrmi_set_if_id(l, sp->if_id) < 0) {
		rtnl_link_put(l);
		return NULL;
	}
	return l;
}

static int link_create(struct ts_route_sock *s, const struct ts_iface_spec *sp)
{
	struct rtnl_link *l = sp->if_id ? xfrmi_alloc(sp) : vti_alloc(sp);
	int r;

	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, sp->ifname);
	rtnl_link_set_mtu(l, sp->mtu);
	r = rtnl_link_add(s->sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

static int link_get(struct ts_route_sock *s, const char *name, struct rtnl_link **ret)
{
	int r = rtnl_link_get_kernel(s->sk, 0, name, ret);

	if (r == -NLE_NODEV || r == -NLE_OBJ_NOTFOUND) {
		*ret = NULL;
		return 0;
	}
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

/* The alias (ownership), MTU and up, where they differ. */
static int link_fix(struct ts_route_sock *s, struct rtnl_link *l, const struct ts_iface_spec *sp,
		    unsigned *changes)
{
	struct rtnl_link *c = rtnl_link_alloc();
	char alias[64];
	bool any = false;
	int r = 0;

	if (!c)
		return -ENOMEM;
	snprintf(alias, sizeof(alias), OWNER_PREFIX "%s", sp->owner);
	if (!rtnl_link_get_ifalias(l) || strcmp(rtnl_link_get_ifalias(l), alias) != 0) {
		rtnl_link_set_ifalias(c, alias);
		any = true;
	}
	if (rtnl_link_get_mtu(l) != sp->mtu) {
		rtnl_link_set_mtu(c, sp->mtu);
		*changes |= TS_IFACE_MTU;
		any = true;
	}
	if (!(rtnl_link_get_flags(l) & IFF_UP)) {
		rtnl_link_set_flags(c, IFF_UP);
		*changes |= TS_IFACE_UP;
		any = true;
	}
	if (any)
		r = rtnl_link_change(s->sk, l, c, 0);
	rtnl_link_put(c);
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

/* Policy checks off on the VTI (the SAs' policies are keyed by the mark
 * the VTI sets, not by this device): /proc/sys of this network namespace. */
static int disable_policy(const char *ifname, unsigned *changes)
{
	char path[96], v = 0;
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/disable_policy", ifname);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &v, 1, 0) != 1)
		r = -EIO;
	else if (v != '1') {
		if (pwrite(fd, "1\n", 2, 0) != 2)
			r = -errno;
		else
			*changes |= TS_IFACE_POLICY;
	}
	close(fd);
	return r;
}

struct addr_scan {
	int ifindex;
	struct nl_addr *want;
	bool found;
	struct rtnl_addr *other[8];
	size_t n_other;
};

static void on_addr(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct addr_scan *sc = arg;

	if (rtnl_addr_get_ifindex(a) != sc->ifindex || rtnl_addr_get_family(a) != AF_INET)
		return;
	if (nl_addr_cmp(rtnl_addr_get_local(a), sc->want) == 0)
		sc->found = true;
	else if (sc->n_other < sizeof(sc->other) / sizeof(sc->other[0])) {
		nl_object_get(obj);
		sc->other[sc->n_other++] = a;
	}
}

/* Exactly the declared IPv4 address on the owned interface. */
static int addr_fix(struct ts_route_sock *s, int ifindex, const struct ts_iface_spec *sp,
		    unsigned *changes)
{
	struct addr_scan sc = { .ifindex = ifindex };
	struct nl_cache *cache = NULL;
	int r;

	sc.want = nl_addr_build(AF_INET, sp->address.ip.bytes, 4);
	if (!sc.want)
		return -ENOMEM;
	nl_addr_set_prefixlen(sc.want, sp->address.len);
	r = rtnl_addr_alloc_cache(s->sk, &cache);
	if (r < 0) {
		nl_addr_put(sc.want);
		return ts_route_nl_errno(r);
	}
	nl_cache_foreach(cache, on_addr, &sc);
	nl_cache_free(cache);
	r = 0;
	if (!sc.found) {
		struct rtnl_addr *a = rtnl_addr_alloc();

		if (!a)
			r = -ENOMEM;
		else {
			rtnl_addr_set_ifindex(a, ifindex);
			rtnl_addr_set_family(a, AF_INET);
			rtnl_addr_set_local(a, sc.want);
			r = rtnl_addr_add(s->sk, a, 0);
			r = r < 0 ? ts_route_nl_errno(r) : 0;
			rtnl_addr_put(a);
			if (r == 0)
				*changes |= TS_IFACE_ADDRESS;
		}
	}
	for (size_t i = 0; i < sc.n_other; i++) {
		int d = rtnl_addr_delete(s->sk, sc.other[i], 0);

		if (d == 0)
			*changes |= TS_IFACE_ADDRESS;
		else if (d != -NLE_NOADDR && d != -NLE_OBJ_NOTFOUND && r == 0)
			r = ts_route_nl_errno(d);
		rtnl_addr_put(sc.other[i]);
	}
	nl_addr_put(sc.want);
	return r;
}

int ts_iface_ensure(struct ts_route_sock *s, const struct ts_iface_spec *sp, unsigned *ret_changes)
{
	struct rtnl_link *l = NULL;
	unsigned changes = 0;
	int r;

	if (ret_changes)
		*ret_changes = 0;
	if (!s || !sp || !sp->ifname || !sp->ifname[0] || strlen(sp->ifname) >= IFNAMSIZ ||
	    !sp->owner || !sp->owner[0] || sp->address.ip.family != AF_INET ||
	    sp->address.len < 1 || sp->address.len > 32 || sp->mtu < 68 ||
	    (!sp->if_id &&
	     (sp->local.family != AF_INET || sp->remote.family != AF_INET || !sp->key)))
		return -EINVAL;
	if ((r = link_get(s, sp->ifname, &l)) < 0)
		return r;
	if (l && !owned_by(l, sp->owner)) {
		rtnl_link_put(l);
		return -EEXIST;
	}
	if (l && !link_matches(l, sp)) {
		/* Another kind, key, endpoint or if_id: recreated (its routes go
		 * with it; the pass puts them back). */
		r = rtnl_link_delete(s->sk, l);
		rtnl_link_put(l);
		l = NULL;
		if (r < 0)
			return ts_route_nl_errno(r);
		changes |= TS_IFACE_RECREATED;
	}
	if (!l) {
		if ((r = link_create(s, sp)) < 0 || (r = link_get(s, sp->ifname, &l)) < 0)
			return r;
		if (!l)
			return -ENODEV;
		if (!(changes & TS_IFACE_RECREATED))
			changes |= TS_IFACE_CREATED;
	}
	r = link_fix(s, l, sp, &changes);
	if (r == 0 && !sp->if_id)
		r = disable_policy(sp->ifname, &changes);
	if (r == 0)
		r = addr_fix(s, rtnl_link_get_ifindex(l), sp, &changes);
	rtnl_link_put(l);
	if (ret_changes)
		*ret_changes = changes;
	return r;
}

struct link_scan {
	const char *const *keep;
	size_t n;
	struct rtnl_link *stale[16];
	size_t n_stale;
};

static void on_link(struct nl_object *obj, void *arg)
{
	struct rtnl_link *l = (struct rtnl_link *)obj;
	struct link_scan *sc = arg;
	const char *name = rtnl_link_get_name(l);

	if (!owned_by(l, NULL) || !name)
		return;
	for (size_t i = 0; i < sc->n; i++)
		if (sc->keep[i] && strcmp(sc->keep[i], name) == 0)
			return;
	if (sc->n_stale < sizeof(sc->stale) / sizeof(sc->stale[0])) {
		nl_object_get(obj);
		sc->stale[sc->n_stale++] = l;
	}
}

int ts_iface_prune(struct ts_route_sock *s, const char *const *keep, size_t n,
		   unsigned *ret_deleted)
{
	struct link_scan sc = { .keep = keep, .n = n };
	struct nl_cache *cache = NULL;
	unsigned deleted = 0;
	int r;

	if (ret_deleted)
		*ret_deleted = 0;
	if (!s || (n && !keep))
		return -EINVAL;
	r = rtnl_link_alloc_cache(s->sk, AF_UNSPEC, &cache);
	if (r < 0)
		return ts_route_nl_errno(r);
	nl_cache_foreach(cache, on_link, &sc);
	nl_cache_free(cache);
	r = 0;
	for (size_t i = 0; i < sc.n_stale; i++) {
		int d = rtnl_link_delete(s->sk, sc.stale[i]);

		if (d == 0)
			deleted++;
		else if (d != -NLE_NODEV && d != -NLE_OBJ_NOTFOUND && r == 0)
			r = ts_route_nl_errno(d);
		rtnl_link_put(sc.stale[i]);
	}
	if (ret_deleted)
		*ret_deleted = deleted;
	return r;
}
