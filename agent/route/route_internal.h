/* Shared by route.c and iface.c (not part of route.h's API). */
#pragma once

#include <netlink/netlink.h>

struct ts_route_sock {
	struct nl_sock *sk;
	/* Dumps the kernel filters (NETLINK_GET_STRICT_CHK: one interface's
	 * addresses, not every one); opened at the first use. Not sk: strict
	 * checking refuses libnl's short route dump requests. */
	struct nl_sock *strict;
};

/* A libnl error as a negative errno. */
int ts_route_nl_errno(int nl_error);
