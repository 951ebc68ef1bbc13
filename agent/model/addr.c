/* Owns parsing and printing of addresses and prefixes. */
#include "model/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_ip_parse(const char *s, struct ts_ip *ret_ip)
{
	struct ts_ip ip = { 0 };

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, ip.bytes) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, s, ip.bytes) == 1)
		ip.family = AF_INET6;
	else
		return -EINVAL;
	*ret_ip = ip;
	return 0;
}

int ts_prefix_parse(const char *s, struct ts_prefix *ret_prefix)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	struct ts_prefix p = { 0 };
	unsigned long len;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if (ts_ip_parse(buf, &p.ip) < 0)
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || len > ts_ip_len(&p.ip) * 8)
		return -EINVAL;
	p.len = (uint8_t)len;
	*ret_prefix = p;
	return 0;
}

const char *ts_ip_format(const struct ts_ip *ip, char *buf, size_t size)
{
	if (!ts_ip_is_set(ip) || !inet_ntop(ip->family, ip->bytes, buf, (socklen_t)size))
		snprintf(buf, size, "-");
	return buf;
}

const char *ts_prefix_format(const struct ts_prefix *p, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (!ts_ip_is_set(&p->ip))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%s/%u", ts_ip_format(&p->ip, ip, sizeof(ip)), p->len);
	return buf;
}

bool ts_ip_equal(const struct ts_ip *a, const struct ts_ip *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, ts_ip_len(a)) == 0;
}

bool ts_prefix_equal(const struct ts_prefix *a, const struct ts_prefix *b)
{
	return a->len == b->len && ts_ip_equal(&a->ip, &b->ip);
}
