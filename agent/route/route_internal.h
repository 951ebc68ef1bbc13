/* Shared by route.c and iface.c (not part of route.h's API). */
#pragma once

#include <netlink/netlink.h>

struct ts_route_sock {
	struct nl_sock *sk;
};

/* A libnl error as a negative errno. */
int ts_route_nl_errno(int nl_error);
