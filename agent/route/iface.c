/* The tunnel interfaces the agent owns (route.h: ts_iface_*), over
 * libnl-route. An interface is the agent's only when its alias is
 * "tunnelsync:TUNNEL"; nothing else is ever changed or deleted. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/ipvti.h>
#include <netlink/route/link/xfrmi.h>

#include "route/route.h"
#include "route/route_internal.h"

#define OWNER_PREFIX "tunnelsync:"

static bool alias_owned(const char *alias, const char *owner)
{
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

static void ip4(struct ts_ip *ip, uint32_t be)
{
	memset(ip, 0, sizeof(*ip));
	ip->family = AF_INET;
	memcpy(ip->bytes, &be, 4);
}

static bool spec_ok(const struct ts_iface_spec *sp)
{
	return sp && sp->ifname && sp->ifname[0] && strlen(sp->ifname) < IFNAMSIZ && sp->owner &&
	       sp->owner[0] && sp->address.ip.family == AF_INET && sp->address.len >= 1 &&
	       sp->address.len <= 32 && sp->mtu >= 68 &&
	       (sp->if_id ||
		(sp->local.family == AF_INET && sp->remote.family == AF_INET && sp->key));
}

/* The link as the spec wants it: a VTI with its key both ways and its
 * endpoints, or an XFRM interface with its if_id. */
static bool link_matches(const struct ts_iface_seen *seen, const struct ts_iface_spec *sp)
{
	if (sp->if_id)
		return strcmp(seen->kind, "xfrm") == 0 && seen->if_id == sp->if_id;
	return strcmp(seen->kind, "vti") == 0 && seen->ikey == sp->key && seen->okey == sp->key &&
	       ts_ip_equal(&seen->local, &sp->local) && ts_ip_equal(&seen->remote, &sp->remote);
}

size_t ts_iface_other_addresses(const struct ts_iface_seen *seen, const struct ts_iface_spec *sp,
				bool *ret_found)
{
	size_t others = 0;
	bool found = false;

	for (size_t i = 0; i < seen->n_addr; i++) {
		if (seen->addr[i].len == sp->address.len &&
		    memcmp(seen->addr[i].ip.bytes, sp->address.ip.bytes, 4) == 0)
			found = true;
		else
			others++;
	}
	*ret_found = found;
	return others;
}

int ts_iface_decide(const struct ts_iface_seen *seen, const struct ts_iface_spec *sp,
		    unsigned *ret_changes)
{
	unsigned ch = 0;
	bool found;

	if (!seen || !spec_ok(sp) || !ret_changes)
		return -EINVAL;
	if (!seen->exists) {
		*ret_changes = TS_IFACE_CREATED;
		return 0;
	}
	if (!alias_owned(seen->alias, sp->owner))
		return -EEXIST;
	if (!link_matches(seen, sp)) {
		/* Another kind, key, endpoint or if_id: recreated (its routes go
		 * with it; the pass puts them back). */
		*ret_changes = TS_IFACE_RECREATED;
		return 0;
	}
	if (seen->mtu != sp->mtu)
		ch |= TS_IFACE_MTU;
	if (!seen->up)
		ch |= TS_IFACE_UP;
	/* Policy checks off on a VTI: the SAs' policies are keyed by the
	 * mark the VTI sets, not by this device. */
	if (!sp->if_id && seen->policy_off != 1)
		ch |= TS_IFACE_POLICY;
	if (ts_iface_other_addresses(seen, sp, &found) || !found)
		ch |= TS_IFACE_ADDRESS;
	*ret_changes = ch;
	return 0;
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

/* /proc/sys of this network namespace: 1, 0, or -1 when it cannot be read. */
static int policy_read(const char *ifname)
{
	char path[96], v = 0;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/disable_policy", ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, &v, 1, 0);
	close(fd);
	return n != 1 ? -1 : v == '1';
}

static int policy_write(const char *ifname)
{
	char path[96];
	int fd, r = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/disable_policy", ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, "1\n", 2, 0) != 2)
		r = -errno;
	close(fd);
	return r;
}

static void on_addr(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct ts_iface_seen *seen = arg;
	struct nl_addr *local = rtnl_addr_get_local(a);
	struct ts_prefix *p;

	if (rtnl_addr_get_ifindex(a) != seen->ifindex || rtnl_addr_get_family(a) != AF_INET ||
	    !local || nl_addr_get_len(local) != 4 ||
	    seen->n_addr >= sizeof(seen->addr) / sizeof(seen->addr[0]))
		return;
	p = &seen->addr[seen->n_addr++];
	memset(p, 0, sizeof(*p));
	p->ip.family = AF_INET;
	memcpy(p->ip.bytes, nl_addr_get_binary_addr(local), 4);
	p->len = (uint8_t)rtnl_addr_get_prefixlen(a);
}

static int on_addr_msg(struct nl_msg *msg, void *arg)
{
	(void)nl_msg_parse(msg, on_addr, arg);
	return NL_OK;
}

/* seen->ifindex's IPv4 addresses: a dump the kernel filters to that
 * interface where it can (4.20 and later), else every address, filtered
 * here (on_addr) — reading N interfaces is then N^2. */
static int addr_dump(struct ts_route_sock *s, struct ts_iface_seen *seen)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_index = (unsigned)seen->ifindex };
	int r, one = 1;

	if (!s->strict) {
		s->strict = nl_socket_alloc();
		if (!s->strict)
			return -ENOMEM;
		r = nl_connect(s->strict, NETLINK_ROUTE);
		if (r < 0) {
			nl_socket_free(s->strict);
			s->strict = NULL;
			return ts_route_nl_errno(r);
		}
		/* Refused by an older kernel: it dumps every address then. */
		(void)setsockopt(nl_socket_get_fd(s->strict), SOL_NETLINK, NETLINK_GET_STRICT_CHK,
				 &one, sizeof(one));
	}
	r = nl_socket_modify_cb(s->strict, NL_CB_VALID, NL_CB_CUSTOM, on_addr_msg, seen);
	if (r >= 0)
		r = nl_send_simple(s->strict, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
	if (r >= 0)
		r = nl_recvmsgs_default(s->strict);
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

int ts_iface_read(struct ts_route_sock *s, const char *ifname, struct ts_iface_seen *ret_seen)
{
	struct ts_iface_seen seen = { .policy_off = -1 };
	struct rtnl_link *l = NULL;
	const char *kind, *alias;
	int r;

	if (!s || !ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ || !ret_seen)
		return -EINVAL;
	if ((r = link_get(s, ifname, &l)) < 0)
		return r;
	if (!l) {
		*ret_seen = seen;
		return 0;
	}
	seen.exists = true;
	seen.ifindex = rtnl_link_get_ifindex(l);
	kind = rtnl_link_get_type(l);
	alias = rtnl_link_get_ifalias(l);
	snprintf(seen.kind, sizeof(seen.kind), "%s", kind ? kind : "");
	snprintf(seen.alias, sizeof(seen.alias), "%s", alias ? alias : "");
	if (strcmp(seen.kind, "vti") == 0) {
		/* libnl hands the keys over as the kernel has them: big-endian. */
		seen.ikey = ntohl(rtnl_link_ipvti_get_ikey(l));
		seen.okey = ntohl(rtnl_link_ipvti_get_okey(l));
		ip4(&seen.local, rtnl_link_ipvti_get_local(l));
		ip4(&seen.remote, rtnl_link_ipvti_get_remote(l));
	} else if (strcmp(seen.kind, "xfrm") == 0) {
		(void)rtnl_link_xfrmi_get_if_id(l, &seen.if_id);
	}
	seen.mtu = rtnl_link_get_mtu(l);
	seen.up = rtnl_link_get_flags(l) & IFF_UP;
	rtnl_link_put(l);
	seen.policy_off = policy_read(ifname);
	if ((r = addr_dump(s, &seen)) < 0)
		return r;
	*ret_seen = seen;
	return 0;
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

/* Alias (ownership), MTU and up, as many as asked. */
static int link_change(struct ts_route_sock *s, const struct ts_iface_spec *sp, bool alias,
		       unsigned what)
{
	struct rtnl_link *l = NULL, *c;
	char text[64];
	int r;

	if ((r = link_get(s, sp->ifname, &l)) < 0)
		return r;
	if (!l)
		return -ENODEV;
	c = rtnl_link_alloc();
	if (!c) {
		rtnl_link_put(l);
		return -ENOMEM;
	}
	if (alias) {
		snprintf(text, sizeof(text), OWNER_PREFIX "%s", sp->owner);
		rtnl_link_set_ifalias(c, text);
	}
	if (what & TS_IFACE_MTU)
		rtnl_link_set_mtu(c, sp->mtu);
	if (what & TS_IFACE_UP)
		rtnl_link_set_flags(c, IFF_UP);
	r = rtnl_link_change(s->sk, l, c, 0);
	rtnl_link_put(c);
	rtnl_link_put(l);
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

/* Created with its MTU, then marked as the agent's (the kernel takes no
 * alias in a new link). */
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
	if (r < 0)
		return ts_route_nl_errno(r);
	return link_change(s, sp, true, 0);
}

static int link_delete(struct ts_route_sock *s, int ifindex)
{
	struct rtnl_link *l = rtnl_link_alloc();
	int r;

	if (!l)
		return -ENOMEM;
	rtnl_link_set_ifindex(l, ifindex);
	r = rtnl_link_delete(s->sk, l);
	rtnl_link_put(l);
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

static int addr_op(struct ts_route_sock *s, int ifindex, const struct ts_prefix *p, bool add)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *local = nl_addr_build(AF_INET, p->ip.bytes, 4);
	int r;

	if (!a || !local) {
		rtnl_addr_put(a);
		nl_addr_put(local);
		return -ENOMEM;
	}
	nl_addr_set_prefixlen(local, p->len);
	rtnl_addr_set_ifindex(a, ifindex);
	rtnl_addr_set_family(a, AF_INET);
	rtnl_addr_set_local(a, local);
	r = add ? rtnl_addr_add(s->sk, a, 0) : rtnl_addr_delete(s->sk, a, 0);
	nl_addr_put(local);
	rtnl_addr_put(a);
	if (!add && (r == -NLE_NOADDR || r == -NLE_OBJ_NOTFOUND))
		return 0; /* gone already */
	return r < 0 ? ts_route_nl_errno(r) : 0;
}

/* Exactly the declared IPv4 address: added first, then the others go. */
static int addr_fix(struct ts_route_sock *s, const struct ts_iface_seen *seen,
		    const struct ts_iface_spec *sp)
{
	bool found;
	int r = 0;

	(void)ts_iface_other_addresses(seen, sp, &found);
	if (!found)
		r = addr_op(s, seen->ifindex, &sp->address, true);
	for (size_t i = 0; i < seen->n_addr; i++) {
		int d;

		if (seen->addr[i].len == sp->address.len &&
		    memcmp(seen->addr[i].ip.bytes, sp->address.ip.bytes, 4) == 0)
			continue;
		d = addr_op(s, seen->ifindex, &seen->addr[i], false);
		if (d < 0 && r == 0)
			r = d;
	}
	return r;
}

int ts_iface_ensure(struct ts_route_sock *s, const struct ts_iface_spec *sp, unsigned *ret_changes)
{
	struct ts_iface_seen seen;
	unsigned changes = 0, fix = 0;
	int r;

	if (ret_changes)
		*ret_changes = 0;
	if (!s || !spec_ok(sp))
		return -EINVAL;
	if ((r = ts_iface_read(s, sp->ifname, &seen)) < 0 ||
	    (r = ts_iface_decide(&seen, sp, &changes)) < 0)
		return r;
	if (changes & TS_IFACE_RECREATED && (r = link_delete(s, seen.ifindex)) < 0)
		return r;
	if (changes & (TS_IFACE_CREATED | TS_IFACE_RECREATED)) {
		/* The new one as the decision finds it: down, no address. */
		if ((r = link_create(s, sp)) < 0 || (r = ts_iface_read(s, sp->ifname, &seen)) < 0 ||
		    (r = ts_iface_decide(&seen, sp, &fix)) < 0)
			return r;
		if (fix & (TS_IFACE_CREATED | TS_IFACE_RECREATED))
			return -EIO; /* not what was asked for */
	} else {
		fix = changes;
	}
	if (fix & (TS_IFACE_MTU | TS_IFACE_UP))
		r = link_change(s, sp, false, fix);
	if (r == 0 && fix & TS_IFACE_POLICY)
		r = policy_write(sp->ifname);
	if (r == 0 && fix & TS_IFACE_ADDRESS)
		r = addr_fix(s, &seen, sp);
	if (ret_changes)
		*ret_changes = changes | fix;
	return r;
}

bool ts_iface_kept(const char *ifname, const char *const *keep, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (keep[i] && strcmp(keep[i], ifname) == 0)
			return true;
	return false;
}

struct owned_scan {
	struct ts_iface_owned *v;
	size_t n, cap;
	int err;
};

static void on_link(struct nl_object *obj, void *arg)
{
	struct rtnl_link *l = (struct rtnl_link *)obj;
	struct owned_scan *sc = arg;
	const char *name = rtnl_link_get_name(l), *alias = rtnl_link_get_ifalias(l);
	const char *kind = rtnl_link_get_type(l);
	struct ts_iface_owned *e;

	if (sc->err || !name || !alias_owned(alias, NULL))
		return;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? 2 * sc->cap : 8;
		struct ts_iface_owned *v = realloc(sc->v, cap * sizeof(*v));

		if (!v) {
			sc->err = -ENOMEM;
			return;
		}
		sc->v = v;
		sc->cap = cap;
	}
	e = &sc->v[sc->n++];
	snprintf(e->ifname, sizeof(e->ifname), "%s", name);
	snprintf(e->owner, sizeof(e->owner), "%s", alias + strlen(OWNER_PREFIX));
	snprintf(e->kind, sizeof(e->kind), "%s", kind ? kind : "");
}

int ts_iface_list_owned(struct ts_route_sock *s, struct ts_iface_owned **ret_ifaces, size_t *ret_n)
{
	struct owned_scan sc = { 0 };
	struct nl_cache *cache = NULL;
	int r;

	if (!s || !ret_ifaces || !ret_n)
		return -EINVAL;
	r = rtnl_link_alloc_cache(s->sk, AF_UNSPEC, &cache);
	if (r < 0)
		return ts_route_nl_errno(r);
	nl_cache_foreach(cache, on_link, &sc);
	nl_cache_free(cache);
	if (sc.err) {
		free(sc.v);
		return sc.err;
	}
	*ret_ifaces = sc.v;
	*ret_n = sc.n;
	return 0;
}

int ts_iface_delete(struct ts_route_sock *s, const char *ifname)
{
	struct ts_iface_seen seen;
	int r;

	if ((r = ts_iface_read(s, ifname, &seen)) < 0)
		return r;
	if (!seen.exists)
		return -ENOENT;
	if (!alias_owned(seen.alias, NULL))
		return -EEXIST;
	r = link_delete(s, seen.ifindex);
	return r == -ENODEV || r == -ENOENT ? -ENOENT : r;
}

int ts_iface_prune(struct ts_route_sock *s, const char *const *keep, size_t n,
		   unsigned *ret_deleted)
{
	struct ts_iface_owned *owned = NULL;
	size_t n_owned = 0;
	unsigned deleted = 0;
	int r;

	if (ret_deleted)
		*ret_deleted = 0;
	if (!s || (n && !keep))
		return -EINVAL;
	r = ts_iface_list_owned(s, &owned, &n_owned);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_owned; i++) {
		int d;

		if (ts_iface_kept(owned[i].ifname, keep, n))
			continue;
		d = ts_iface_delete(s, owned[i].ifname);
		if (d == 0)
			deleted++;
		else if (d != -ENOENT && r == 0)
			r = d;
	}
	free(owned);
	if (ret_deleted)
		*ret_deleted = deleted;
	return r;
}
