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
