/* IP addresses and prefixes as plain values, independent of any library. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ts_ip {
	int family; /* AF_INET, AF_INET6, or AF_UNSPEC for "not set" */
	uint8_t bytes[16];
};

struct ts_prefix {
	struct ts_ip ip;
	uint8_t len;
};

/* Big enough for an IPv6 prefix with its length. */
#define TS_PREFIX_STRLEN 52

int ts_ip_parse(const char *s, struct ts_ip *ret_ip);
/* "a.b.c.d/len" or "x::y/len"; host bits may be set (interface addresses). */
int ts_prefix_parse(const char *s, struct ts_prefix *ret_prefix);
/* Writes "-" for AF_UNSPEC. */
const char *ts_ip_format(const struct ts_ip *ip, char *buf, size_t size);
const char *ts_prefix_format(const struct ts_prefix *p, char *buf, size_t size);
bool ts_ip_equal(const struct ts_ip *a, const struct ts_ip *b);
bool ts_prefix_equal(const struct ts_prefix *a, const struct ts_prefix *b);
static inline bool ts_ip_is_set(const struct ts_ip *ip)
{
	return ip->family == AF_INET || ip->family == AF_INET6;
}
static inline size_t ts_ip_len(const struct ts_ip *ip)
{
	return ip->family == AF_INET6 ? 16 : ip->family == AF_INET ? 4 : 0;
}
