/* Renders a declared tunnel into the strongSwan connection and shared key
 * Cloudflare's edge expects, and compares a loaded connection with that
 * rendering. Pure functions: no I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/secret.h"
#include "core/util.h"
#include "ike/ike.h"

#define CF_IDENTITY_SUFFIX ".ipsec.cloudflare.com"

int ts_ike_conn_name(const struct ts_tunnel *t, char *buf, size_t size)
{
	int n;

	if (!t || !t->name[0])
		return -EINVAL;
	n = snprintf(buf, size, TS_IKE_CONN_PREFIX "%s", t->name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool id_ok(const char *s)
{
	if (!s || !*s)
		return false;
	/* Cloudflare ids are hex; anything else would change the identity's
	 * meaning in strongSwan's parser (@, =, :, spaces). */
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '-'))
			return false;
	return true;
}

static int local_id(const struct ts_tunnel *t, const char *account_id, bool config, char *buf,
		    size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (!t)
		return -EINVAL;
	if (t->ike.local_identity == TS_IDENTITY_IPV4) {
		if (t->customer_endpoint.family != AF_INET)
			return -EINVAL;
		ts_ip_format(&t->customer_endpoint, ip, sizeof(ip));
		return ts_strlcpy(buf, ip, size);
	}
	if (!id_ok(t->id) || !id_ok(account_id))
		return -EINVAL;
	switch (t->ike.local_identity) {
	case TS_IDENTITY_FQDN:
		n = snprintf(buf, size, "%s.%s" CF_IDENTITY_SUFFIX, t->id, account_id);
		break;
	case TS_IDENTITY_USER_FQDN:
		n = snprintf(buf, size, "ipsec@%s.%s" CF_IDENTITY_SUFFIX, t->id, account_id);
		break;
	case TS_IDENTITY_KEY_ID:
		n = snprintf(buf, size, "%s%s_%s", config ? "keyid:" : "", account_id, t->id);
		break;
	default:
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int ts_ike_local_id(const struct ts_tunnel *t, const char *account_id, char *buf, size_t size)
{
	return local_id(t, account_id, false, buf, size);
}

int ts_ike_local_id_config(const struct ts_tunnel *t, const char *account_id, char *buf,
			   size_t size)
{
	return local_id(t, account_id, true, buf, size);
}

int ts_ike_remote_id(const struct ts_tunnel *t, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (!t || !ts_ip_is_set(&t->cloudflare_endpoint))
		return -EINVAL;
	ts_ip_format(&t->cloudflare_endpoint, ip, sizeof(ip));
	return ts_strlcpy(buf, ip, size);
}

/* --- proposals ----------------------------------------------------------- */

struct alg {
	uint32_t bit;
	const char *name;
};

/* Strongest first. */
static const struct alg aead_algs[] = {
	{ TS_ENCR_AES256_GCM16, "aes256gcm16" },
	{ TS_ENCR_AES128_GCM16, "aes128gcm16" },
};
static const struct alg cbc_algs[] = {
	{ TS_ENCR_AES256_CBC, "aes256" },
	{ TS_ENCR_AES128_CBC, "aes128" },
};
static const struct alg integ_algs[] = {
	{ TS_INTEG_HMAC_SHA2_256_128, "sha256" },
	{ TS_INTEG_HMAC_SHA1_96, "sha1" },
};
static const struct alg prf_algs[] = {
	{ TS_PRF_HMAC_SHA2_512, "prfsha512" },
	{ TS_PRF_HMAC_SHA2_384, "prfsha384" },
	{ TS_PRF_HMAC_SHA2_256, "prfsha256" },
};
static const struct alg dh_algs[] = {
	{ TS_DH_ECP384, "ecp384" },
	{ TS_DH_MODP2048, "modp2048" },
	{ TS_DH_MODP1536, "modp1536" },
};

struct strbuf {
	char *buf;
	size_t size, len;
	bool overflow;
};

static void sb_add(struct strbuf *sb, const char *s)
{
	int n = snprintf(sb->buf + sb->len, sb->size - sb->len, "%s%s", sb->len ? "-" : "", s);

	if (n < 0 || (size_t)n >= sb->size - sb->len)
		sb->overflow = true;
	else
		sb->len += (size_t)n;
}

/* Appends every algorithm of the set; returns how many. */
static unsigned sb_add_set(struct strbuf *sb, const struct alg *algs, size_t n, uint32_t set)
{
	unsigned count = 0;

	for (size_t i = 0; i < n; i++)
		if (set & algs[i].bit) {
			sb_add(sb, algs[i].name);
			count++;
		}
	return count;
}

static int one_proposal(const struct ts_proposal *p, bool esp, bool aead, char *out)
{
	struct strbuf sb = { out, TS_IKE_PROPOSAL_MAX, 0, false };

	out[0] = 0;
	if (aead) {
		sb_add_set(&sb, aead_algs, TS_ARRAY_SIZE(aead_algs), p->encr);
	} else {
		sb_add_set(&sb, cbc_algs, TS_ARRAY_SIZE(cbc_algs), p->encr);
		if (!sb_add_set(&sb, integ_algs, TS_ARRAY_SIZE(integ_algs), p->integ))
			return -EINVAL;
	}
	if (!esp) {
		if (!sb_add_set(&sb, prf_algs, TS_ARRAY_SIZE(prf_algs), p->prf))
			return -EINVAL;
		if (!sb_add_set(&sb, dh_algs, TS_ARRAY_SIZE(dh_algs), p->dh))
			return -EINVAL;
	} else {
		sb_add_set(&sb, dh_algs, TS_ARRAY_SIZE(dh_algs), p->dh);
		sb_add(&sb, "noesn");
	}
	return sb.overflow ? -ENAMETOOLONG : 0;
}

int ts_ike_proposals(const struct ts_proposal *p, bool esp,
		     char ret_proposals[2][TS_IKE_PROPOSAL_MAX])
{
	char out[2][TS_IKE_PROPOSAL_MAX];
	int n = 0, r;

	if (!p)
		return -EINVAL;
	if (p->encr & TS_ENCR_AEAD_MASK) {
		r = one_proposal(p, esp, true, out[n]);
		if (r < 0)
			return r;
		n++;
	}
	if (p->encr & (TS_ENCR_AES128_CBC | TS_ENCR_AES256_CBC)) {
		r = one_proposal(p, esp, false, out[n]);
		if (r < 0)
			return r;
		n++;
	}
	if (n == 0)
		return -EINVAL;
	memcpy(ret_proposals, out, sizeof(out));
	return n;
}

/* --- lifetimes ----------------------------------------------------------- */

int ts_ike_lifetimes(const struct ts_ike_settings *s, struct ts_ike_lifetimes *ret_lifetimes)
{
	struct ts_ike_lifetimes l;

	/* Below a minute, rekeying would never settle. */
	if (!s || s->ike_sa_lifetime < 60 || s->child_sa_lifetime < 60)
		return -EINVAL;
	l.ike_over = s->ike_sa_lifetime / 10;
	l.ike_rekey = s->ike_sa_lifetime - l.ike_over;
	l.ike_rand = s->lifetime_spread < l.ike_rekey / 2 ? s->lifetime_spread : l.ike_rekey / 2;
	l.child_life = s->child_sa_lifetime;
	l.child_rekey = s->child_sa_lifetime - s->child_sa_lifetime / 10;
	l.child_rand =
		s->lifetime_spread < l.child_rekey / 2 ? s->lifetime_spread : l.child_rekey / 2;
	*ret_lifetimes = l;
	return 0;
}

/* --- connection ---------------------------------------------------------- */

/* The network a prefix denotes, as strongSwan prints a traffic selector. */
static const char *ts_network(const struct ts_prefix *p, char *buf, size_t size)
{
	struct ts_prefix net = *p;
	size_t bytes = ts_ip_len(&net.ip);

	for (size_t i = 0; i < bytes; i++) {
		unsigned keep = net.len > i * 8 ? net.len - i * 8 : 0;

		if (keep < 8)
			net.ip.bytes[i] &= (uint8_t)(0xff00u >> keep);
	}
	return ts_prefix_format(&net, buf, size);
}

/* The selectors as strongSwan lists them: local (which = 0) or remote. */
static int add_selectors(const struct ts_tunnel *t, struct ts_vici_node *list, bool remote)
{
	char buf[TS_PREFIX_STRLEN];
	int r;

	if (t->routing.mode == TS_MODE_ROUTE) {
		r = ts_vici_list_add_str(list, "0.0.0.0/0");
		if (r >= 0 && ts_ip_is_set(&t->interface_address6.ip))
			r = ts_vici_list_add_str(list, "::/0");
		return r;
	}
	if (t->routing.n_selectors == 0)
		return -EINVAL;
	for (size_t i = 0; i < t->routing.n_selectors; i++) {
		const struct ts_traffic_selector *s = &t->routing.selectors[i];
		const struct ts_prefix *p = remote ? &s->remote : &s->local;

		if (!ts_ip_is_set(&p->ip))
			return -EINVAL;
		r = ts_vici_list_add_str(list, ts_network(p, buf, sizeof(buf)));
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_list_of(struct ts_vici_node *sec, const char *name, const char *const *items,
		       size_t n)
{
	struct ts_vici_node *list;
	int r;

	r = ts_vici_add_list(sec, name, &list);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = ts_vici_list_add_str(list, items[i]);
	return r;
}

static int add_proposals(struct ts_vici_node *sec, const char *name, const struct ts_proposal *p,
			 bool esp)
{
	char props[2][TS_IKE_PROPOSAL_MAX];
	const char *items[2] = { props[0], props[1] };
	int n;

	n = ts_ike_proposals(p, esp, props);
	if (n < 0)
		return n;
	return add_list_of(sec, name, items, (size_t)n);
}

static int add_auth(struct ts_vici_node *conn, const char *round, const char *id)
{
	struct ts_vici_node *sec;
	int r;

	r = ts_vici_add_section(conn, round, &sec);
	if (r >= 0)
		r = ts_vici_add_str(sec, "auth", "psk");
	if (r >= 0)
		r = ts_vici_add_str(sec, "id", id);
	return r;
}

static int render_child(const struct ts_tunnel *t, const char *name,
			const struct ts_ike_lifetimes *l, struct ts_vici_node *conn)
{
	struct ts_vici_node *children, *child, *list;
	int r;

	r = ts_vici_add_section(conn, "children", &children);
	if (r < 0)
		return r;
	r = ts_vici_add_section(children, name, &child);
	if (r < 0)
		return r;
	if ((r = ts_vici_add_str(child, "mode", "tunnel")) < 0 ||
	    (r = add_proposals(child, "esp_proposals", &t->ike.child_sa, true)) < 0 ||
	    (r = ts_vici_add_list(child, "local_ts", &list)) < 0 ||
	    (r = add_selectors(t, list, false)) < 0 ||
	    (r = ts_vici_add_list(child, "remote_ts", &list)) < 0 ||
	    (r = add_selectors(t, list, true)) < 0 ||
	    (r = ts_vici_add_fmt(child, "rekey_time", "%us", l->child_rekey)) < 0 ||
	    (r = ts_vici_add_fmt(child, "life_time", "%us", l->child_life)) < 0 ||
	    (r = ts_vici_add_fmt(child, "rand_time", "%us", l->child_rand)) < 0 ||
	    /* Loading never initiates: the agent initiates once key and
	     * connection are both loaded, so that charon cannot start a
	     * keyless IKE_SA_INIT (connection loaded before its key after a
	     * charon restart) nor race the agent's own initiate ("existing
	     * duplicate"). Cloudflare only responds: the gateway restarts. */
	    (r = ts_vici_add_str(child, "start_action", "none")) < 0 ||
	    (r = ts_vici_add_str(child, "dpd_action", "restart")) < 0 ||
	    (r = ts_vici_add_str(child, "close_action", "none")) < 0 ||
	    (r = ts_vici_add_fmt(child, "replay_window", "%u", t->ike.replay_window)) < 0)
		return r;
	if (t->routing.has_if_id &&
	    ((r = ts_vici_add_fmt(child, "if_id_in", "%u", t->routing.if_id)) < 0 ||
	     (r = ts_vici_add_fmt(child, "if_id_out", "%u", t->routing.if_id)) < 0))
		return r;
	if (t->routing.has_mark &&
	    ((r = ts_vici_add_fmt(child, "mark_in", "0x%x/0x%x", t->routing.mark,
				  t->routing.mark_mask)) < 0 ||
	     (r = ts_vici_add_fmt(child, "mark_out", "0x%x/0x%x", t->routing.mark,
				  t->routing.mark_mask)) < 0 ||
	     /* Without it 5.9 marks only the inbound policy, not the inbound
	      * SA: a VTI keyed by the mark never sees decrypted traffic, and
	      * the kernel check (mark on both SAs) never confirms. */
	     (r = ts_vici_add_str(child, "mark_in_sa", "yes")) < 0))
		return r;
	if (t->routing.reqid && (r = ts_vici_add_fmt(child, "reqid", "%u", t->routing.reqid)) < 0)
		return r;
	return 0;
}

int ts_ike_render_conn(const struct ts_tunnel *t, const char *account_id,
		       struct ts_vici_node **ret_msg)
{
	_cleanup_vici_ struct ts_vici_node *msg = NULL;
	char name[TS_IKE_CONN_NAME_MAX], lid[TS_IKE_ID_MAX], rid[TS_IKE_ID_MAX];
	char ip[INET6_ADDRSTRLEN];
	struct ts_ike_lifetimes l;
	struct ts_vici_node *conn;
	const char *addr;
	int r;

	if (!t || (t->routing.mode != TS_MODE_ROUTE && t->routing.mode != TS_MODE_POLICY))
		return -EINVAL;
	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = ts_ike_local_id_config(t, account_id, lid, sizeof(lid))) < 0 ||
	    (r = ts_ike_remote_id(t, rid, sizeof(rid))) < 0 ||
	    (r = ts_ike_lifetimes(&t->ike, &l)) < 0)
		return r;
	if (t->ike.dpd_delay == 0)
		return -EINVAL;
	r = ts_vici_msg_new(&msg);
	if (r < 0)
		return r;
	r = ts_vici_add_section(msg, name, &conn);
	if (r < 0)
		return r;
	if ((r = ts_vici_add_str(conn, "version", "2")) < 0)
		return r;
	if (ts_ip_is_set(&t->customer_endpoint)) {
		addr = ts_ip_format(&t->customer_endpoint, ip, sizeof(ip));
		if ((r = add_list_of(conn, "local_addrs", &addr, 1)) < 0)
			return r;
	}
	addr = ts_ip_format(&t->cloudflare_endpoint, ip, sizeof(ip));
	if ((r = add_list_of(conn, "remote_addrs", &addr, 1)) < 0 ||
	    (r = add_proposals(conn, "proposals", &t->ike.ike_sa, false)) < 0 ||
	    /* keep trying forever: the edge never calls back */
	    (r = ts_vici_add_str(conn, "keyingtries", "0")) < 0 ||
	    /* anycast edge: no address updates */
	    (r = ts_vici_add_str(conn, "mobike", "no")) < 0 ||
	    (r = ts_vici_add_fmt(conn, "rekey_time", "%us", l.ike_rekey)) < 0 ||
	    (r = ts_vici_add_fmt(conn, "over_time", "%us", l.ike_over)) < 0 ||
	    (r = ts_vici_add_fmt(conn, "rand_time", "%us", l.ike_rand)) < 0 ||
	    (r = ts_vici_add_str(conn, "reauth_time", "0")) < 0 ||
	    (r = ts_vici_add_fmt(conn, "dpd_delay", "%us", t->ike.dpd_delay)) < 0 ||
	    (r = add_auth(conn, "local", lid)) < 0 || (r = add_auth(conn, "remote", rid)) < 0 ||
	    (r = render_child(t, name, &l, conn)) < 0)
		return r;
	*ret_msg = TS_TAKE_PTR(msg);
	return 0;
}

int ts_ike_render_shared(const struct ts_tunnel *t, const char *account_id,
			 const struct ts_secret *psk, struct ts_vici_node **ret_msg)
{
	_cleanup_vici_ struct ts_vici_node *msg = NULL;
	char name[TS_IKE_CONN_NAME_MAX], lid[TS_IKE_ID_MAX], rid[TS_IKE_ID_MAX];
	const char *owners[2] = { lid, rid };
	int r;

	if (!psk || ts_secret_len(psk) == 0)
		return -EINVAL;
	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = ts_ike_local_id_config(t, account_id, lid, sizeof(lid))) < 0 ||
	    (r = ts_ike_remote_id(t, rid, sizeof(rid))) < 0)
		return r;
	if ((r = ts_vici_msg_new(&msg)) < 0 || (r = ts_vici_add_str(msg, "id", name)) < 0 ||
	    (r = ts_vici_add_str(msg, "type", "IKE")) < 0 ||
	    (r = ts_vici_add_secret(msg, "data", psk)) < 0 ||
	    (r = add_list_of(msg, "owners", owners, 2)) < 0)
		return r;
	*ret_msg = TS_TAKE_PTR(msg);
	return 0;
}

/* --- comparison ---------------------------------------------------------- */

static int differ(char *diff, size_t size, const char *what)
{
	if (diff && size)
		snprintf(diff, size, "%s", what);
	return 1;
}

/* A listed list equals the rendered one (same items, same order). */
static bool list_equal(const struct ts_vici_node *a, const struct ts_vici_node *b)
{
	if (!a || !b || a->n_children != b->n_children)
		return false;
	for (size_t i = 0; i < a->n_children; i++)
		if (!ts_streq(ts_vici_node_str(a->children[i]), ts_vici_node_str(b->children[i])))
			return false;
	return true;
}

static bool kv_is(const struct ts_vici_node *sec, const char *name, const char *want)
{
	return ts_streq(ts_vici_get_str(sec, name), want);
}

static bool u32_is(const struct ts_vici_node *sec, const char *name, uint32_t want)
{
	uint32_t v;

	return ts_vici_get_u32(sec, name, &v) == 0 && v == want;
}

static int compare_auth(const struct ts_vici_node *listed, const char *round, const char *id)
{
	const struct ts_vici_node *a = ts_vici_get_section(listed, round);

	return a && kv_is(a, "class", "pre-shared key") && kv_is(a, "id", id) ? 0 : 1;
}

int ts_ike_conn_compare(const struct ts_tunnel *t, const char *account_id,
			const struct ts_vici_node *listed, char *diff, size_t diff_size)
{
	_cleanup_vici_ struct ts_vici_node *want = NULL;
	char name[TS_IKE_CONN_NAME_MAX], lid[TS_IKE_ID_MAX], rid[TS_IKE_ID_MAX];
	const struct ts_vici_node *conn, *children, *child, *wchild;
	struct ts_ike_lifetimes l;
	int r;

	if (diff && diff_size)
		diff[0] = 0;
	r = ts_ike_render_conn(t, account_id, &want);
	if (r < 0)
		return r;
	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = ts_ike_local_id(t, account_id, lid, sizeof(lid))) < 0 ||
	    (r = ts_ike_remote_id(t, rid, sizeof(rid))) < 0 ||
	    (r = ts_ike_lifetimes(&t->ike, &l)) < 0)
		return r;
	conn = ts_vici_get_section(want, name);
	wchild = ts_vici_get_section(ts_vici_get_section(conn, "children"), name);
	if (!listed || listed->type != TS_VICI_SECTION)
		return differ(diff, diff_size, "connection missing");

	if (!kv_is(listed, "version", "IKEv2"))
		return differ(diff, diff_size, "version");
	if (ts_vici_get_list(conn, "local_addrs")) {
		if (!list_equal(ts_vici_get_list(listed, "local_addrs"),
				ts_vici_get_list(conn, "local_addrs")))
			return differ(diff, diff_size, "local_addrs");
	} else {
		const struct ts_vici_node *la = ts_vici_get_list(listed, "local_addrs");

		if (!la || la->n_children != 1 ||
		    !ts_streq(ts_vici_node_str(la->children[0]), "%any"))
			return differ(diff, diff_size, "local_addrs");
	}
	if (!list_equal(ts_vici_get_list(listed, "remote_addrs"),
			ts_vici_get_list(conn, "remote_addrs")))
		return differ(diff, diff_size, "remote_addrs");
	if (!u32_is(listed, "rekey_time", l.ike_rekey))
		return differ(diff, diff_size, "rekey_time");
	if (!u32_is(listed, "reauth_time", 0))
		return differ(diff, diff_size, "reauth_time");
	if (compare_auth(listed, "local-1", lid) || ts_vici_get_section(listed, "local-2"))
		return differ(diff, diff_size, "local auth");
	if (compare_auth(listed, "remote-1", rid) || ts_vici_get_section(listed, "remote-2"))
		return differ(diff, diff_size, "remote auth");

	children = ts_vici_get_section(listed, "children");
	child = ts_vici_get_section(children, name);
	if (!child || children->n_children != 1)
		return differ(diff, diff_size, "children");
	if (!kv_is(child, "mode", "TUNNEL"))
		return differ(diff, diff_size, "child mode");
	if (!u32_is(child, "rekey_time", l.child_rekey))
		return differ(diff, diff_size, "child rekey_time");
	/* 5.9.8 names ACTION_RESTART "start" when listing; later ones "restart". */
	if (!kv_is(child, "dpd_action", "start") && !kv_is(child, "dpd_action", "restart"))
		return differ(diff, diff_size, "child dpd_action");
	if (!kv_is(child, "close_action", "none"))
		return differ(diff, diff_size, "child close_action");
	if (!list_equal(ts_vici_get_list(child, "local-ts"), ts_vici_get_list(wchild, "local_ts")))
		return differ(diff, diff_size, "child local-ts");
	if (!list_equal(ts_vici_get_list(child, "remote-ts"),
			ts_vici_get_list(wchild, "remote_ts")))
		return differ(diff, diff_size, "child remote-ts");
	return 0;
}
