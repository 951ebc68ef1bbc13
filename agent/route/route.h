/* The routes the agent owns through a route-based tunnel's interface
 * (libnl-route; its types stay behind this header). A route is owned when
 * its protocol is TS_ROUTE_PROTOCOL: nothing else is ever changed.
 * Draining a tunnel raises the metric of its routes by TS_ROUTE_DRAIN_OFFSET
 * so that a sibling's routes to the same prefixes (lower metric) carry the
 * traffic while the tunnel is reauthenticated; restoring puts the declared
 * metric back. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "model/addr.h"

#define TS_ROUTE_PROTOCOL     0xb6 /* rtm_protocol of the agent's routes (182) */
#define TS_ROUTE_DRAIN_OFFSET 10000u

struct ts_route_sock;

int ts_route_open(struct ts_route_sock **ret_sock);
void ts_route_close(struct ts_route_sock *s);

/* Makes "dst dev ifname metric M proto TS_ROUTE_PROTOCOL" the only owned
 * IPv4 route to dst through ifname: adds it (if missing), then deletes the
 * owned ones to dst through ifname with another metric, so that a route
 * is there at every moment. -ENODEV: no such interface. */
int ts_route_set(struct ts_route_sock *s, const char *ifname, const struct ts_prefix *dst,
		 uint32_t metric);

/* The metric of the owned route to dst through ifname: 0 and *ret_metric
 * set when one exists, -ENOENT when none. */
int ts_route_get(struct ts_route_sock *s, const char *ifname, const struct ts_prefix *dst,
		 uint32_t *ret_metric);

/* One route the agent declares (ts_route_prune keeps it, whatever its
 * metric). */
struct ts_route_key {
	const char *ifname;
	struct ts_prefix dst;
};

/* Deletes every owned IPv4 route (protocol TS_ROUTE_PROTOCOL, main table)
 * that is not one of keep[0..n) (same destination, same interface): the
 * routes of a tunnel or prefix no longer declared. A keep entry whose
 * interface does not exist keeps nothing. *ret_deleted (may be NULL): how
 * many were deleted. */
int ts_route_prune(struct ts_route_sock *s, const struct ts_route_key *keep, size_t n,
		   unsigned *ret_deleted);

/* --- owned routes as they are, and the decisions over them ----------------
 * ts_route_set and ts_route_prune act on these decisions; `plan` reads the
 * same list and reports the same decisions without acting (read only). */

/* One owned route (protocol TS_ROUTE_PROTOCOL, main table, IPv4). */
struct ts_route_seen {
	struct ts_prefix dst;
	char ifname[16]; /* its one nexthop's interface; "": several, or none */
	uint32_t metric;
};

/* Every owned route, read only. The caller frees *ret_routes. */
int ts_route_list(struct ts_route_sock *s, struct ts_route_seen **ret_routes, size_t *ret_n);

/* What ts_route_set(ifname, dst, metric) does to routes[0..n) (pure): add
 * the route at metric (when not there), then delete n_old owned routes to
 * dst through ifname at other metrics (old_metric: one of them). */
struct ts_route_move {
	bool add;
	size_t n_old;
	uint32_t old_metric;
};
void ts_route_decide_set(const struct ts_route_seen *routes, size_t n, const char *ifname,
			 const struct ts_prefix *dst, uint32_t metric, struct ts_route_move *ret);

/* Whether ts_route_prune keeps r (pure): it is one of keep[0..n). */
bool ts_route_kept(const struct ts_route_seen *r, const struct ts_route_key *keep, size_t n);

/* Deletes one owned route as ts_route_list read it; -ENOENT: gone. */
int ts_route_delete(struct ts_route_sock *s, const struct ts_route_seen *r);

/* --- owned interfaces (iface.c) -------------------------------------------
 * A VTI (mark tunnels) or an XFRM interface (if-id tunnels) is the agent's
 * when its alias is "tunnelsync:OWNER" (OWNER: the tunnel's name); an
 * interface without that alias is never changed. */
struct ts_iface_spec {
	const char *ifname;
	const char *owner;	    /* the tunnel's name */
	struct ts_ip local, remote; /* IPv4 endpoints (VTI only) */
	uint32_t key;		    /* VTI: ikey = okey = the tunnel's mark */
	uint32_t if_id;		    /* non-zero: an XFRM interface with this if_id */
	uint32_t mtu;
	struct ts_prefix address; /* the interface's IPv4 address */
};

/* What ts_iface_ensure changed (bits). */
#define TS_IFACE_CREATED   0x01u
#define TS_IFACE_RECREATED 0x02u /* another kind, key, endpoint or if_id */
#define TS_IFACE_MTU	   0x04u
#define TS_IFACE_UP	   0x08u /* it was down */
#define TS_IFACE_ADDRESS   0x10u /* the address added, or others removed */
#define TS_IFACE_POLICY	   0x20u /* disable_policy set */

/* Makes the VTI (sp->if_id 0) or XFRM interface sp->ifname exist as sp
 * says, owned, up (a VTI with policy checks off), with exactly sp->address
 * as its IPv4 address. -EEXIST: an interface of
 * that name exists and is not sp->owner's (left alone). *ret_changes (may
 * be NULL): TS_IFACE_* bits of what was done. */
int ts_iface_ensure(struct ts_route_sock *s, const struct ts_iface_spec *sp, unsigned *ret_changes);

/* Deletes every owned interface whose name is not in keep[0..n).
 * *ret_deleted (may be NULL): how many. */
int ts_iface_prune(struct ts_route_sock *s, const char *const *keep, size_t n,
		   unsigned *ret_deleted);

/* --- owned interfaces as they are, and the decision over them -------------
 * ts_iface_ensure acts on ts_iface_decide's answer; `plan` reads the same
 * state (ts_iface_read) and reports the same answer without acting. */

/* An interface as read. */
struct ts_iface_seen {
	bool exists;
	int ifindex;
	char kind[16];		    /* "vti", "xfrm", another kind, "" unknown */
	char alias[64];		    /* "" none */
	uint32_t ikey, okey;	    /* VTI keys (host order) */
	struct ts_ip local, remote; /* VTI endpoints */
	uint32_t if_id;		    /* XFRM interface */
	uint32_t mtu;
	bool up;
	int policy_off;		  /* disable_policy: 1 set, 0 not, -1 not read */
	struct ts_prefix addr[8]; /* its IPv4 addresses (the first 8) */
	size_t n_addr;
};

/* Reads ifname (read only): *ret_seen.exists false when there is none. */
int ts_iface_read(struct ts_route_sock *s, const char *ifname, struct ts_iface_seen *ret_seen);

/* The one decision (pure): the TS_IFACE_* bits ts_iface_ensure makes of
 * seen to reach sp. -EEXIST: seen exists and is not sp->owner's; -EINVAL:
 * sp is not a valid spec. */
int ts_iface_decide(const struct ts_iface_seen *seen, const struct ts_iface_spec *sp,
		    unsigned *ret_changes);

/* Whether sp->address is on seen, and how many other IPv4 addresses are. */
size_t ts_iface_other_addresses(const struct ts_iface_seen *seen, const struct ts_iface_spec *sp,
				bool *ret_found);

/* An owned interface (ts_iface_list_owned). */
struct ts_iface_owned {
	char ifname[16];
	char owner[64]; /* the tunnel its alias names */
	char kind[16];
};

/* Every interface whose alias marks it as the agent's, read only. The
 * caller frees *ret_ifaces. */
int ts_iface_list_owned(struct ts_route_sock *s, struct ts_iface_owned **ret_ifaces, size_t *ret_n);

/* Whether ts_iface_prune keeps ifname (pure): it is in keep[0..n). */
bool ts_iface_kept(const char *ifname, const char *const *keep, size_t n);

/* Deletes ifname when it is owned (any tunnel's): -EEXIST not owned,
 * -ENOENT no such interface. */
int ts_iface_delete(struct ts_route_sock *s, const char *ifname);
