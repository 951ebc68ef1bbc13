/* Owns the conversion of the validated data tree into struct ts_desired,
 * and the checks across tunnels that YANG cannot state (or not clearly):
 * endpoint pairs of IPv4 identities, marks without an if-id, /31s that
 * overlap. Defaults are in the tree already (libyang adds them when it
 * validates), so a missing leaf that has a default is an internal error. */
#include "config/config-internal.h"

#include <arpa/inet.h>

#include "core/log.h"

struct name_bit {
	const char *name;
	uint32_t bit;
};

static const struct name_bit encr_names[] = {
	{ "aes-128-gcm-16", TS_ENCR_AES128_GCM16 },
	{ "aes-256-gcm-16", TS_ENCR_AES256_GCM16 },
	{ "aes-128-cbc", TS_ENCR_AES128_CBC },
	{ "aes-256-cbc", TS_ENCR_AES256_CBC },
};

static const struct name_bit integ_names[] = {
	{ "hmac-sha1-96", TS_INTEG_HMAC_SHA1_96 },
	{ "hmac-sha2-256-128", TS_INTEG_HMAC_SHA2_256_128 },
};

static const struct name_bit prf_names[] = {
	{ "hmac-sha2-256", TS_PRF_HMAC_SHA2_256 },
	{ "hmac-sha2-384", TS_PRF_HMAC_SHA2_384 },
	{ "hmac-sha2-512", TS_PRF_HMAC_SHA2_512 },
};

static const struct name_bit dh_names[] = {
	{ "modp-1536", TS_DH_MODP1536 },
	{ "modp-2048", TS_DH_MODP2048 },
	{ "ecp-384", TS_DH_ECP384 },
};

/* Conversion context: the path of the node being converted, for errors. */
struct conv {
	struct cfg_load *L;
	const struct lyd_node *node;
};

static const struct lyd_node *child(const struct lyd_node *parent, const char *name)
{
	const struct lyd_node *n;

	if (!parent)
		return NULL;
	LY_LIST_FOR(lyd_child(parent), n)
	if (n->schema && strcmp(n->schema->name, name) == 0)
		return n;
	return NULL;
}

static const char *str(const struct lyd_node *parent, const char *name)
{
	const struct lyd_node *n = child(parent, name);

	return n ? lyd_get_value(n) : NULL;
}

static int conv_error(struct conv *c, const struct lyd_node *at, const char *leaf, int r,
		      const char *fmt, ...) TS_PRINTF(5, 6);

static int conv_error(struct conv *c, const struct lyd_node *at, const char *leaf, int r,
		      const char *fmt, ...)
{
	_cleanup_free_ char *base = at ? lyd_path(at, LYD_PATH_STD, NULL, 0) : NULL;
	_cleanup_free_ char *path = NULL, *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (base && asprintf(&path, "%s%s%s", base, leaf ? "/" : "", leaf ? leaf : "") < 0)
		path = NULL;
	return cfg_error_at(c->L, path, r, "%s", msg ? msg : "invalid value");
}

/* A leaf that must be in the tree (mandatory or defaulted). */
static int need(struct conv *c, const struct lyd_node *parent, const char *name,
		const char **ret_value)
{
	const char *v = str(parent, name);

	if (!v)
		return conv_error(c, parent, name, -EINVAL, "internal error: no value for \"%s\"",
				  name);
	*ret_value = v;
	return 0;
}

static int need_u32(struct conv *c, const struct lyd_node *parent, const char *name,
		    uint32_t *ret_value)
{
	const char *v = NULL;
	char *end;
	unsigned long long x;
	int r = need(c, parent, name, &v);

	if (r < 0)
		return r;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x > UINT32_MAX)
		return conv_error(c, parent, name, -EINVAL, "not a 32-bit number: \"%s\"", v);
	*ret_value = (uint32_t)x;
	return 0;
}

/* A leaf without a default: 0 when absent. */
static int opt_u32(struct conv *c, const struct lyd_node *parent, const char *name,
		   uint32_t *ret_value)
{
	if (!str(parent, name)) {
		*ret_value = 0;
		return 0;
	}
	return need_u32(c, parent, name, ret_value);
}

static int need_bool(struct conv *c, const struct lyd_node *parent, const char *name,
		     bool *ret_value)
{
	const char *v = NULL;
	int r = need(c, parent, name, &v);

	if (r < 0)
		return r;
	*ret_value = strcmp(v, "true") == 0;
	return 0;
}

static int opt_strdup(const struct lyd_node *parent, const char *name, char **ret_value)
{
	const char *v = str(parent, name);

	*ret_value = NULL;
	if (!v)
		return 0;
	*ret_value = strdup(v);
	return *ret_value ? 0 : -ENOMEM;
}

static int copy_name(struct conv *c, const struct lyd_node *parent, const char *name, char *dst,
		     size_t size)
{
	const char *v = str(parent, name);

	if (!v) {
		dst[0] = '\0';
		return 0;
	}
	if (ts_strlcpy(dst, v, size) < 0)
		return conv_error(c, parent, name, -EINVAL, "longer than %zu characters", size - 1);
	return 0;
}

static int bits(struct conv *c, const struct lyd_node *parent, const char *name,
		const struct name_bit *table, size_t n, uint32_t *ret_bits)
{
	const struct lyd_node *m;
	uint32_t b = 0;

	if (!parent)
		return conv_error(c, NULL, name, -EINVAL, "internal error: no \"%s\"", name);
	LY_LIST_FOR(lyd_child(parent), m)
	{
		size_t i;

		if (!m->schema || strcmp(m->schema->name, name) != 0)
			continue;
		for (i = 0; i < n; i++)
			if (strcmp(lyd_get_value(m), table[i].name) == 0)
				break;
		if (i == n)
			return conv_error(c, parent, name, -EINVAL, "unknown algorithm \"%s\"",
					  lyd_get_value(m));
		b |= table[i].bit;
	}
	*ret_bits = b;
	return 0;
}

static int enum_index(struct conv *c, const struct lyd_node *parent, const char *name,
		      const char *const *names, size_t n, int *ret_index)
{
	const char *v = NULL;
	int r = need(c, parent, name, &v);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], v) == 0) {
			*ret_index = (int)i;
			return 0;
		}
	return conv_error(c, parent, name, -EINVAL, "unknown value \"%s\"", v);
}

static int ip(struct conv *c, const struct lyd_node *parent, const char *name, struct ts_ip *ret)
{
	const char *v = str(parent, name);

	memset(ret, 0, sizeof(*ret));
	ret->family = AF_UNSPEC;
	if (!v)
		return 0;
	if (ts_ip_parse(v, ret) < 0)
		return conv_error(c, parent, name, -EINVAL, "not an IP address: \"%s\"", v);
	return 0;
}

static int prefix(struct conv *c, const struct lyd_node *parent, const char *name,
		  struct ts_prefix *ret)
{
	const char *v = str(parent, name);

	memset(ret, 0, sizeof(*ret));
	ret->ip.family = AF_UNSPEC;
	if (!v)
		return 0;
	if (ts_prefix_parse(v, ret) < 0)
		return conv_error(c, parent, name, -EINVAL, "not an address with a prefix: \"%s\"",
				  v);
	return 0;
}

static int convert_agent(struct conv *c, const struct lyd_node *a, struct ts_agent_config *ag)
{
	const struct lyd_node *ike = child(a, "ike-backend");
	int r;

	if ((r = copy_name(c, a, "node-name", ag->node_name, sizeof(ag->node_name))) < 0 ||
	    (r = opt_strdup(a, "state-directory", &ag->state_dir)) < 0 ||
	    (r = need_u32(c, a, "resync-interval", &ag->resync_interval)) < 0 ||
	    (r = opt_strdup(ike, "vici-socket", &ag->vici_socket)) < 0 ||
	    (r = opt_strdup(a, "metrics-listen", &ag->metrics_listen)) < 0 ||
	    (r = need_bool(c, a, "suspend", &ag->suspend)) < 0 ||
	    (r = need_bool(c, a, "prune", &ag->prune)) < 0 ||
	    (r = opt_u32(c, a, "max-rotations-per-pass", &ag->max_rotations_per_pass)) < 0 ||
	    (r = need_u32(c, child(a, "rotation"), "max-in-flight", &ag->rotation_max_in_flight)) <
		    0 ||
	    (r = need_u32(c, child(a, "rotation"), "bulk-batch-size",
			  &ag->rotation_bulk_batch_size)) < 0 ||
	    (r = need_u32(c, child(a, "rotation"), "max-age-jitter",
			  &ag->rotation_max_age_jitter)) < 0 ||
	    (r = need_bool(c, ike, "kernel-xfrm", &ag->kernel_xfrm)) < 0 ||
	    (r = need_u32(c, ike, "confirm-timeout", &ag->confirm_timeout)) < 0 ||
	    (r = opt_strdup(child(a, "traffic"), "strongswan-conf", &ag->strongswan_conf)) < 0 ||
	    (r = need_u32(c, child(a, "traffic"), "settle-time", &ag->settle_time)) < 0)
		return r;
	if (!ag->state_dir || !ag->vici_socket || !ag->strongswan_conf)
		return conv_error(c, a, NULL, -EINVAL, "internal error: defaults missing");
	return 0;
}

static int convert_cloudflare(struct conv *c, const struct lyd_node *cf,
			      struct ts_cloudflare_config *cc)
{
	int r;

	if ((r = copy_name(c, cf, "account-id", cc->account_id, sizeof(cc->account_id))) < 0 ||
	    (r = opt_strdup(cf, "api-base-url", &cc->api_base_url)) < 0 ||
	    (r = opt_strdup(cf, "api-token-file", &cc->token_file)) < 0 ||
	    (r = opt_strdup(cf, "email", &cc->email)) < 0 ||
	    (r = opt_strdup(cf, "api-key-file", &cc->key_file)) < 0 ||
	    (r = opt_strdup(cf, "ca-file", &cc->ca_file)) < 0 ||
	    (r = need_bool(c, cf, "allow-plain-http-loopback", &cc->allow_plain_http_loopback)) <
		    0 ||
	    (r = need_u32(c, cf, "request-budget", &cc->request_budget)) < 0 ||
	    (r = need_u32(c, cf, "connect-timeout", &cc->connect_timeout)) < 0 ||
	    (r = need_u32(c, cf, "request-timeout", &cc->request_timeout)) < 0 ||
	    (r = need_bool(c, cf, "manage-tunnels", &cc->manage_tunnels)) < 0)
		return r;
	cc->auth = cc->email ? TS_CF_AUTH_EMAIL_KEY : TS_CF_AUTH_TOKEN;
	return 0;
}

static int convert_ike(struct conv *c, const struct lyd_node *ike, struct ts_ike_settings *s)
{
	const struct lyd_node *ike_sa = child(ike, "ike-sa"), *child_sa = child(ike, "child-sa");
	int id, r;

	if (!ike)
		return conv_error(c, c->node, "ike", -EINVAL, "internal error: no ike settings");
	if ((r = enum_index(c, ike, "local-identity", ts_identity_type_names, _TS_IDENTITY_MAX,
			    &id)) < 0)
		return r;
	s->local_identity = (enum ts_identity_type)id;
	if ((r = bits(c, ike_sa, "encryption-algorithm", encr_names, TS_ARRAY_SIZE(encr_names),
		      &s->ike_sa.encr)) < 0 ||
	    (r = bits(c, ike_sa, "integrity-algorithm", integ_names, TS_ARRAY_SIZE(integ_names),
		      &s->ike_sa.integ)) < 0 ||
	    (r = bits(c, ike_sa, "prf-algorithm", prf_names, TS_ARRAY_SIZE(prf_names),
		      &s->ike_sa.prf)) < 0 ||
	    (r = bits(c, ike_sa, "dh-group", dh_names, TS_ARRAY_SIZE(dh_names), &s->ike_sa.dh)) <
		    0 ||
	    (r = bits(c, child_sa, "encryption-algorithm", encr_names, TS_ARRAY_SIZE(encr_names),
		      &s->child_sa.encr)) < 0 ||
	    (r = bits(c, child_sa, "integrity-algorithm", integ_names, TS_ARRAY_SIZE(integ_names),
		      &s->child_sa.integ)) < 0 ||
	    (r = bits(c, child_sa, "pfs-group", dh_names, TS_ARRAY_SIZE(dh_names),
		      &s->child_sa.dh)) < 0 ||
	    (r = need_u32(c, child(ike, "ike-sa-lifetime-soft"), "rekey-time",
			  &s->ike_sa_lifetime)) < 0 ||
	    (r = need_u32(c, child(ike, "child-sa-lifetime-soft"), "time", &s->child_sa_lifetime)) <
		    0 ||
	    (r = need_u32(c, ike, "lifetime-spread", &s->lifetime_spread)) < 0 ||
	    (r = need_u32(c, ike, "dpd-delay", &s->dpd_delay)) < 0 ||
	    (r = need_u32(c, ike, "replay-window-size", &s->replay_window)) < 0)
		return r;
	return 0;
}

static int convert_routing(struct conv *c, const struct lyd_node *t, struct ts_routing *rt)
{
	const struct lyd_node *rb = child(t, "route-based"), *pb = child(t, "policy-based"), *n;
	int r;

	if (rb) {
		rt->mode = TS_MODE_ROUTE;
		rt->has_if_id = child(rb, "if-id") != NULL;
		rt->has_mark = child(rb, "mark") != NULL;
		if ((rt->has_if_id && (r = need_u32(c, rb, "if-id", &rt->if_id)) < 0) ||
		    (rt->has_mark && (r = need_u32(c, rb, "mark", &rt->mark)) < 0) ||
		    (rt->has_mark && (r = need_u32(c, rb, "mark-mask", &rt->mark_mask)) < 0))
			return r;
		return 0;
	}
	if (!pb)
		return conv_error(c, t, NULL, -EINVAL,
				  "a tunnel needs \"route-based\" or \"policy-based\"");
	rt->mode = TS_MODE_POLICY;
	LY_LIST_FOR(lyd_child(pb), n)
	{
		struct ts_traffic_selector *sel;

		if (!n->schema || strcmp(n->schema->name, "traffic-selector") != 0)
			continue;
		sel = reallocarray(rt->selectors, rt->n_selectors + 1, sizeof(*sel));
		if (!sel)
			return -ENOMEM;
		rt->selectors = sel;
		sel = &rt->selectors[rt->n_selectors++];
		if ((r = prefix(c, n, "local-prefix", &sel->local)) < 0 ||
		    (r = prefix(c, n, "remote-prefix", &sel->remote)) < 0)
			return r;
	}
	return 0;
}

static bool is_route(const struct lyd_node *n)
{
	return n->schema && strcmp(n->schema->name, "route") == 0;
}

static int convert_routes(struct conv *c, const struct lyd_node *t, struct ts_tunnel *tun)
{
	const struct lyd_node *rs = child(t, "routes"), *n;
	size_t count = 0;
	int r;

	if (!rs)
		return 0;
	if ((r = copy_name(c, rs, "interface", tun->routes.ifname, sizeof(tun->routes.ifname))) < 0)
		return r;
	/* Counted first: the array is as long as the routes declared. */
	LY_LIST_FOR(lyd_child(rs), n)
	count += is_route(n);
	if (count > TS_ROUTES_MAX)
		return conv_error(c, rs, "route", -EINVAL, "more than %d routes", TS_ROUTES_MAX);
	if (!count)
		return 0;
	tun->routes.route = calloc(count, sizeof(*tun->routes.route));
	if (!tun->routes.route)
		return -ENOMEM;
	LY_LIST_FOR(lyd_child(rs), n)
	{
		struct ts_tunnel_route *rt;

		if (!is_route(n))
			continue;
		rt = &tun->routes.route[tun->routes.n];
		if ((r = prefix(c, n, "prefix", &rt->dst)) < 0 ||
		    (r = need_u32(c, n, "metric", &rt->metric)) < 0)
			return r;
		tun->routes.n++;
	}
	return 0;
}

static int convert_iface(struct conv *c, const struct lyd_node *t, struct ts_tunnel *tun)
{
	const struct lyd_node *i = child(t, "interface");
	uint32_t len;
	int r;

	if (!i)
		return 0;
	if ((r = copy_name(c, i, "name", tun->iface.ifname, sizeof(tun->iface.ifname))) < 0 ||
	    (r = need_u32(c, i, "prefix-length", &len)) < 0 ||
	    (r = need_u32(c, i, "mtu", &tun->iface.mtu)) < 0)
		return r;
	if (!str(i, "address") || ts_ip_parse(str(i, "address"), &tun->iface.address.ip) < 0)
		return conv_error(c, i, "address", -EINVAL, "not an IPv4 address");
	tun->iface.address.len = (uint8_t)len;
	return 0;
}

static int convert_psk(struct conv *c, const struct lyd_node *psk, struct ts_psk_policy *p)
{
	uint32_t max_age;
	int src, r;

	if (!psk)
		return conv_error(c, c->node, "psk", -EINVAL, "internal error: no psk settings");
	if ((r = enum_index(c, psk, "source", ts_psk_source_names, _TS_PSK_SOURCE_MAX, &src)) < 0 ||
	    (r = opt_strdup(psk, "file", &p->file)) < 0 ||
	    (r = need_u32(c, psk, "max-age", &max_age)) < 0 ||
	    (r = need_bool(c, psk, "rotate-on-authentication-failure",
			   &p->rotate_on_auth_failure)) < 0 ||
	    (r = need_u32(c, psk, "authentication-failure-threshold", &p->auth_failure_threshold)) <
		    0)
		return r;
	p->source = (enum ts_psk_source)src;
	p->max_age = max_age;
	return 0;
}

/* tunnel/cloudflare: only what is present is declared. */
static int convert_cf_declared(struct conv *c, const struct lyd_node *cf, struct ts_cf_declared *d)
{
	const struct lyd_node *hc = child(cf, "health-check");
	const char *v;
	int r;

	if (!cf)
		return 0;
	if ((r = opt_strdup(cf, "description", &d->description)) < 0)
		return r;
	if ((v = str(cf, "replay-protection")))
		d->has_replay_protection = true, d->replay_protection = strcmp(v, "true") == 0;
	if ((v = str(hc, "enabled")))
		d->has_hc_enabled = true, d->hc_enabled = strcmp(v, "true") == 0;
	/* Enumerations: YANG checked the words, which fit. */
	snprintf(d->hc_rate, sizeof(d->hc_rate), "%s", str(hc, "rate") ?: "");
	snprintf(d->hc_type, sizeof(d->hc_type), "%s", str(hc, "type") ?: "");
	snprintf(d->hc_direction, sizeof(d->hc_direction), "%s", str(hc, "direction") ?: "");
	return ip(c, hc, "target", &d->hc_target);
}

static int convert_tunnel(struct conv *c, const struct lyd_node *t, struct ts_tunnel *tun)
{
	_cleanup_free_ char *path = NULL;
	const struct cfg_file *f = NULL;
	int r;

	c->node = t;
	if ((r = copy_name(c, t, "name", tun->name, sizeof(tun->name))) < 0 ||
	    (r = copy_name(c, t, "id", tun->id, sizeof(tun->id))) < 0 ||
	    (r = need_bool(c, t, "enabled", &tun->enabled)) < 0 ||
	    (r = copy_name(c, t, "gateway", tun->gateway, sizeof(tun->gateway))) < 0 ||
	    (r = copy_name(c, t, "redundancy-group", tun->redundancy_group,
			   sizeof(tun->redundancy_group))) < 0 ||
	    (r = ip(c, t, "customer-endpoint", &tun->customer_endpoint)) < 0 ||
	    (r = ip(c, t, "cloudflare-endpoint", &tun->cloudflare_endpoint)) < 0 ||
	    (r = prefix(c, t, "interface-address", &tun->interface_address)) < 0 ||
	    (r = prefix(c, t, "interface-address6", &tun->interface_address6)) < 0 ||
	    (r = convert_ike(c, child(t, "ike"), &tun->ike)) < 0 ||
	    (r = convert_routing(c, t, &tun->routing)) < 0 || (r = convert_routes(c, t, tun)) < 0 ||
	    (r = convert_iface(c, t, tun)) < 0 ||
	    (r = convert_psk(c, child(t, "psk"), &tun->psk)) < 0 ||
	    (r = convert_cf_declared(c, child(t, "cloudflare"), &tun->cf)) < 0)
		return r;
	if (c->L->locate_tunnels) {
		path = lyd_path(t, LYD_PATH_STD, NULL, 0);
		if (!path)
			return -ENOMEM;
		f = cfg_locate(c->L, path, &tun->source_line);
	}
	if (f) {
		tun->source_file = strdup(f->display);
		if (!tun->source_file)
			return -ENOMEM;
	}
	return 0;
}

static int cmp_tunnel(const void *a, const void *b)
{
	return strcmp(((const struct ts_tunnel *)a)->name, ((const struct ts_tunnel *)b)->name);
}

static int tunnel_error(struct cfg_load *L, const struct ts_tunnel *t, const char *leaf,
			const char *fmt, ...) TS_PRINTF(4, 5);

static int tunnel_error(struct cfg_load *L, const struct ts_tunnel *t, const char *leaf,
			const char *fmt, ...)
{
	_cleanup_free_ char *path = NULL, *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (asprintf(&path, "/" TS_CONFIG_MODULE ":tunnelsync/tunnels/tunnel[name='%s']/%s",
		     t->name, leaf) < 0)
		path = NULL;
	return cfg_error_at(L, path, -EINVAL, "%s", msg ? msg : "invalid tunnel");
}

static bool mark_only(const struct ts_tunnel *t)
{
	return t->routing.mode == TS_MODE_ROUTE && !t->routing.has_if_id && t->routing.has_mark;
}

static bool marks_match(const struct ts_tunnel *t, const struct ts_tunnel *o)
{
	return (t->routing.mark & t->routing.mark_mask & o->routing.mark_mask) ==
	       (o->routing.mark & t->routing.mark_mask & o->routing.mark_mask);
}

static bool same_subnet(const struct ts_prefix *a, const struct ts_prefix *b)
{
	size_t n = ts_ip_len(&a->ip), full;
	unsigned rest;

	if (a->ip.family != b->ip.family || a->len != b->len || !n)
		return false;
	full = a->len / 8;
	rest = a->len % 8;
	if (memcmp(a->ip.bytes, b->ip.bytes, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return (a->ip.bytes[full] & mask) == (b->ip.bytes[full] & mask);
	}
	return true;
}

/* The first rule across tunnels that t breaks against the earlier o, or 0. */
static int check_pair(struct cfg_load *L, const struct ts_tunnel *t, const struct ts_tunnel *o)
{
	char buf[TS_PREFIX_STRLEN];

	/* Cloudflare tells IPv4 identities apart by the pair. */
	if ((t->ike.local_identity == TS_IDENTITY_IPV4 ||
	     o->ike.local_identity == TS_IDENTITY_IPV4) &&
	    ts_ip_equal(&t->customer_endpoint, &o->customer_endpoint) &&
	    ts_ip_equal(&t->cloudflare_endpoint, &o->cloudflare_endpoint))
		return tunnel_error(L, t->ike.local_identity == TS_IDENTITY_IPV4 ? t : o,
				    "ike/local-identity",
				    "local-identity ipv4 needs a unique pair of endpoints, but "
				    "tunnels \"%s\" and \"%s\" have the same "
				    "customer-endpoint and cloudflare-endpoint",
				    o->name, t->name);
	/* Without an if-id, the mark alone selects the SAs. */
	if (mark_only(t) && mark_only(o) && marks_match(t, o))
		return tunnel_error(L, t, "route-based/mark",
				    "mark matches the mark of tunnel \"%s\"; "
				    "without an if-id each tunnel needs its own mark",
				    o->name);
	if (same_subnet(&t->interface_address, &o->interface_address))
		return tunnel_error(L, t, "interface-address",
				    "%s is in the same /31 as tunnel \"%s\"'s interface-address",
				    ts_prefix_format(&t->interface_address, buf, sizeof(buf)),
				    o->name);
	return 0;
}

/* A tunnel's value for one rule: tunnels with equal keys conflict. */
struct cross_key {
	uint8_t key[36];
	size_t idx; /* in d->tunnels */
};

static int cmp_cross_key(const void *a, const void *b)
{
	const struct cross_key *x = a, *y = b;
	int c = memcmp(x->key, y->key, sizeof(x->key));

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static size_t put_ip(uint8_t *k, const struct ts_ip *ip)
{
	k[0] = (uint8_t)ip->family;
	memcpy(k + 1, ip->bytes, ts_ip_len(ip));
	return 17;
}

/* Lowers first[i] to the earliest j < i of i's group (equal key) that
 * conflicts with i. Without pair: members of a group conflict when either
 * is strong (any two when strong is NULL). With pair (keys that cannot
 * say it all): pair decides, comparing the group's members pairwise. */
static void earliest_in_groups(struct cross_key *keys, size_t n, const struct ts_desired *d,
			       bool (*strong)(const struct ts_tunnel *),
			       bool (*pair)(const struct ts_tunnel *, const struct ts_tunnel *),
			       size_t *first)
{
	if (n > 1) /* keys may be NULL when n is 0: qsort's pointer is nonnull */
		qsort(keys, n, sizeof(*keys), cmp_cross_key);
	for (size_t g = 0; g < n;) {
		size_t e = g, first_strong = SIZE_MAX;

		while (e < n && memcmp(keys[e].key, keys[g].key, sizeof(keys[g].key)) == 0)
			e++;
		/* Sorted by index within the group. */
		for (size_t m = g; m < e; m++) {
			const struct ts_tunnel *t = &d->tunnels[keys[m].idx];
			size_t j = SIZE_MAX;

			if (pair) {
				for (size_t k = g; k < m && j == SIZE_MAX; k++)
					if (pair(t, &d->tunnels[keys[k].idx]))
						j = keys[k].idx;
			} else if (!strong || strong(t)) {
				j = m > g ? keys[g].idx : SIZE_MAX;
			} else {
				j = first_strong;
			}
			if (j < first[keys[m].idx])
				first[keys[m].idx] = j;
			if (strong && strong(t) && first_strong == SIZE_MAX)
				first_strong = keys[m].idx;
		}
		g = e;
	}
}

static bool ipv4_identity(const struct ts_tunnel *t)
{
	return t->ike.local_identity == TS_IDENTITY_IPV4;
}

/* Rules across tunnels that YANG's unique cannot say. The error is the one
 * a comparison of every pair in order would find first (the earliest i,
 * then its earliest j), found through keys sorted once: O(N log N), where
 * pairs were O(N²) (a second at 10,000 tunnels). Groups of equal keys are
 * searched pairwise, and so are marks under differing masks, which cannot
 * be keyed; both are small in any config that loads. */
static int check_tunnels(struct cfg_load *L, const struct ts_desired *d)
{
	size_t n = d->n_tunnels, n_keys, *first = NULL;
	struct cross_key *keys = NULL;
	bool one_mask = true;
	uint32_t mask = 0;
	int r = 0;

	if (n < 2)
		return 0;
	first = malloc(n * sizeof(*first));
	keys = calloc(n, sizeof(*keys));
	if (!first || !keys) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		first[i] = SIZE_MAX;

	/* Endpoint pairs, where an IPv4 identity is involved. */
	for (size_t i = 0; i < n; i++) {
		memset(&keys[i], 0, sizeof(keys[i]));
		put_ip(keys[i].key + put_ip(keys[i].key, &d->tunnels[i].customer_endpoint),
		       &d->tunnels[i].cloudflare_endpoint);
		keys[i].idx = i;
	}
	earliest_in_groups(keys, n, d, ipv4_identity, NULL, first);

	/* Marks of tunnels without an if-id. */
	n_keys = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		if (!mark_only(t))
			continue;
		if (n_keys && t->routing.mark_mask != mask)
			one_mask = false;
		mask = t->routing.mark_mask;
		n_keys++;
	}
	n_keys = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];

		if (!mark_only(t))
			continue;
		memset(&keys[n_keys], 0, sizeof(keys[n_keys]));
		if (one_mask) {
			uint32_t v = t->routing.mark & mask;

			memcpy(keys[n_keys].key, &v, sizeof(v));
		}
		keys[n_keys++].idx = i;
	}
	/* Under one mask equal keys are equal marks; otherwise one group,
	 * compared pairwise. */
	earliest_in_groups(keys, n_keys, d, NULL, one_mask ? NULL : marks_match, first);

	/* Interface addresses in one subnet. */
	n_keys = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ts_prefix *p = &d->tunnels[i].interface_address;
		size_t len = ts_ip_len(&p->ip), full = p->len / 8;
		uint8_t *k = keys[n_keys].key;

		if (!len)
			continue;
		memset(&keys[n_keys], 0, sizeof(keys[n_keys]));
		k[0] = (uint8_t)p->ip.family;
		k[1] = p->len;
		memcpy(k + 2, p->ip.bytes, full);
		if (p->len % 8)
			k[2 + full] = p->ip.bytes[full] & (uint8_t)(0xff << (8 - p->len % 8));
		keys[n_keys++].idx = i;
	}
	earliest_in_groups(keys, n_keys, d, NULL, NULL, first);

	for (size_t i = 0; i < n && r == 0; i++)
		if (first[i] != SIZE_MAX)
			r = check_pair(L, &d->tunnels[i], &d->tunnels[first[i]]);
out:
	free(first);
	free(keys);
	return r;
}

static const struct lyd_node *top(const struct lyd_node *tree)
{
	const struct lyd_node *n;

	LY_LIST_FOR(tree, n)
	if (n->schema && strcmp(n->schema->name, "tunnelsync") == 0 &&
	    strcmp(lyd_owner_module(n)->name, TS_CONFIG_MODULE) == 0)
		return n;
	return NULL;
}

int cfg_convert(struct cfg_load *L, struct ts_desired **ret_desired)
{
	struct conv c = { .L = L };
	struct ts_desired *d;
	const struct lyd_node *root = top(L->tree), *tunnels, *t;
	size_t n = 0;
	int r;

	if (!root)
		return cfg_error(L, L->n_files == 1 ? L->files[0].display : NULL, 0, NULL, -EINVAL,
				 "no tunnelsync configuration (expected a top-level "
				 "\"tunnelsync:tunnelsync\" object or <tunnelsync> element)");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	r = convert_agent(&c, child(root, "agent"), &d->agent);
	if (r >= 0)
		r = convert_cloudflare(&c, child(root, "cloudflare"), &d->cloudflare);
	tunnels = child(root, "tunnels");
	if (r >= 0 && tunnels) {
		LY_LIST_FOR(lyd_child(tunnels), t)
		n++;
		d->tunnels = calloc(n ? n : 1, sizeof(*d->tunnels));
		if (!d->tunnels)
			r = -ENOMEM;
		LY_LIST_FOR(lyd_child(tunnels), t)
		{
			if (r < 0)
				break;
			r = convert_tunnel(&c, t, &d->tunnels[d->n_tunnels]);
			d->n_tunnels++; /* also on failure: its parts are freed with d */
		}
	}
	if (r >= 0) {
		if (d->n_tunnels > 1) /* none declared: d->tunnels is NULL */
			qsort(d->tunnels, d->n_tunnels, sizeof(*d->tunnels), cmp_tunnel);
		r = check_tunnels(L, d);
	}
	if (r < 0) {
		ts_desired_free(d);
		return r;
	}
	*ret_desired = d;
	return 0;
}
