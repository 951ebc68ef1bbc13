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

/* --- owned interfaces (iface.c) -------------------------------------------
 * A VTI is the agent's when its alias is "tunnelsync:OWNER" (OWNER: the
 * tunnel's name); an interface without that alias is never changed. */
struct ts_iface_spec {
	const char *ifname;
	const char *owner;	    /* the tunnel's name */
	struct ts_ip local, remote; /* IPv4 endpoints */
	uint32_t key;		    /* ikey = okey = the tunnel's mark */
	uint32_t mtu;
	struct ts_prefix address; /* the interface's IPv4 address */
};

/* What ts_iface_ensure changed (bits). */
#define TS_IFACE_CREATED   0x01u
#define TS_IFACE_RECREATED 0x02u /* another kind, key or endpoint */
#define TS_IFACE_MTU	   0x04u
#define TS_IFACE_UP	   0x08u /* it was down */
#define TS_IFACE_ADDRESS   0x10u /* the address added, or others removed */
#define TS_IFACE_POLICY	   0x20u /* disable_policy set */

/* Makes the VTI sp->ifname exist as sp says, owned, up, policy checks off,
 * with exactly sp->address as its IPv4 address. -EEXIST: an interface of
 * that name exists and is not sp->owner's (left alone). *ret_changes (may
 * be NULL): TS_IFACE_* bits of what was done. */
int ts_iface_ensure(struct ts_route_sock *s, const struct ts_iface_spec *sp, unsigned *ret_changes);

/* Deletes every owned interface whose name is not in keep[0..n).
 * *ret_deleted (may be NULL): how many. */
int ts_iface_prune(struct ts_route_sock *s, const char *const *keep, size_t n,
		   unsigned *ret_deleted);
