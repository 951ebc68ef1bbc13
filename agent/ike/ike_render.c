/* Renders a declared tunnel into the strongSwan connection and shared key
 * Cloudflare's edge expects, flattens a rendering or a list-conns answer
 * into comparable leaves, and diffs them. Pure functions: no I/O. */
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

/* --- leaves --------------------------------------------------------------- */

enum leaf_sec {
	SEC_CONN,
	SEC_LOCAL,
	SEC_REMOTE,
	SEC_CHILD,
	SEC_NONE
};

/* Where each leaf is in a load-conn message (the conn section, its local
 * and remote rounds, its one CHILD section). */
static const struct {
	enum leaf_sec sec;
	const char *key;
} leaf_path[_TS_LEAF_MAX] = {
	[TS_LEAF_VERSION] = { SEC_CONN, "version" },
	[TS_LEAF_LOCAL_ADDRS] = { SEC_CONN, "local_addrs" },
	[TS_LEAF_REMOTE_ADDRS] = { SEC_CONN, "remote_addrs" },
	[TS_LEAF_PROPOSALS] = { SEC_CONN, "proposals" },
	[TS_LEAF_KEYINGTRIES] = { SEC_CONN, "keyingtries" },
	[TS_LEAF_MOBIKE] = { SEC_CONN, "mobike" },
	[TS_LEAF_REKEY_TIME] = { SEC_CONN, "rekey_time" },
	[TS_LEAF_OVER_TIME] = { SEC_CONN, "over_time" },
	[TS_LEAF_RAND_TIME] = { SEC_CONN, "rand_time" },
	[TS_LEAF_REAUTH_TIME] = { SEC_CONN, "reauth_time" },
	[TS_LEAF_DPD_DELAY] = { SEC_CONN, "dpd_delay" },
	[TS_LEAF_LOCAL_AUTH] = { SEC_LOCAL, "auth" },
	[TS_LEAF_LOCAL_ID] = { SEC_LOCAL, "id" },
	[TS_LEAF_REMOTE_AUTH] = { SEC_REMOTE, "auth" },
	[TS_LEAF_REMOTE_ID] = { SEC_REMOTE, "id" },
	[TS_LEAF_CHILDREN] = { SEC_NONE, NULL },
	[TS_LEAF_CHILD_MODE] = { SEC_CHILD, "mode" },
	[TS_LEAF_CHILD_ESP_PROPOSALS] = { SEC_CHILD, "esp_proposals" },
	[TS_LEAF_CHILD_LOCAL_TS] = { SEC_CHILD, "local_ts" },
	[TS_LEAF_CHILD_REMOTE_TS] = { SEC_CHILD, "remote_ts" },
	[TS_LEAF_CHILD_REKEY_TIME] = { SEC_CHILD, "rekey_time" },
	[TS_LEAF_CHILD_LIFE_TIME] = { SEC_CHILD, "life_time" },
	[TS_LEAF_CHILD_RAND_TIME] = { SEC_CHILD, "rand_time" },
	[TS_LEAF_CHILD_START_ACTION] = { SEC_CHILD, "start_action" },
	[TS_LEAF_CHILD_DPD_ACTION] = { SEC_CHILD, "dpd_action" },
	[TS_LEAF_CHILD_CLOSE_ACTION] = { SEC_CHILD, "close_action" },
	[TS_LEAF_CHILD_REPLAY_WINDOW] = { SEC_CHILD, "replay_window" },
	[TS_LEAF_CHILD_IF_ID_IN] = { SEC_CHILD, "if_id_in" },
	[TS_LEAF_CHILD_IF_ID_OUT] = { SEC_CHILD, "if_id_out" },
	[TS_LEAF_CHILD_MARK_IN] = { SEC_CHILD, "mark_in" },
	[TS_LEAF_CHILD_MARK_OUT] = { SEC_CHILD, "mark_out" },
	[TS_LEAF_CHILD_MARK_IN_SA] = { SEC_CHILD, "mark_in_sa" },
	[TS_LEAF_CHILD_REQID] = { SEC_CHILD, "reqid" },
	[TS_LEAF_SHARED_OWNERS] = { SEC_NONE, NULL },
};

bool ts_ike_leaf_path(enum ts_ike_leaf leaf, const char **ret_section, const char **ret_key)
{
	static const char *const secs[] = { "", "local", "remote", "child" };

	if ((unsigned)leaf >= _TS_LEAF_MAX || leaf_path[leaf].sec == SEC_NONE)
		return false;
	*ret_section = secs[leaf_path[leaf].sec];
	*ret_key = leaf_path[leaf].key;
	return true;
}

/* A value or list as one string, items joined with ","; NULL when absent. */
static char *node_value(const struct ts_vici_node *n)
{
	struct strbuf sb;
	size_t size = 1;
	char *out;

	if (!n)
		return NULL;
	if (n->type == TS_VICI_KV)
		return strndup((const char *)n->value, n->value_len);
	if (n->type != TS_VICI_LIST)
		return NULL;
	for (size_t i = 0; i < n->n_children; i++)
		size += n->children[i]->value_len + 1;
	out = malloc(size);
	if (!out)
		return NULL;
	out[0] = 0;
	sb = (struct strbuf){ out, size, 0, false };
	for (size_t i = 0; i < n->n_children; i++) {
		char *item =
			strndup((const char *)n->children[i]->value, n->children[i]->value_len);

		if (!item) {
			free(out);
			return NULL;
		}
		/* sb_add joins with "-"; lists are joined with ",". */
		snprintf(sb.buf + sb.len, sb.size - sb.len, "%s%s", sb.len ? "," : "", item);
		sb.len += strlen(sb.buf + sb.len);
		free(item);
	}
	return out;
}

/* "3240s" and "3240" are the same time. */
static void norm_time(char *v)
{
	size_t n = strlen(v);

	if (n > 1 && v[n - 1] == 's' && strspn(v, "0123456789") == n - 1)
		v[n - 1] = 0;
}

/* vici_config.c parse_action(): restart/start, route/trap, clear/none;
 * list-conns prints action_names ("none", "trap", "start"). */
static const char *norm_action(const char *v)
{
	if (ts_streq(v, "restart") || ts_streq(v, "start"))
		return "start";
	if (ts_streq(v, "route") || ts_streq(v, "trap"))
		return "trap";
	if (ts_streq(v, "clear") || ts_streq(v, "none"))
		return "none";
	return v;
}

static int set_leaf(struct ts_ike_leaves *l, enum ts_ike_leaf leaf, const char *v)
{
	char *copy = strdup(v ? v : "");

	if (!copy)
		return -ENOMEM;
	free(l->values[leaf]);
	l->values[leaf] = copy;
	return 0;
}

/* Brings a value of either side to the one form both compare in. */
static int normalize(struct ts_ike_leaves *l, enum ts_ike_leaf leaf)
{
	char *v = l->values[leaf];

	if (!v)
		return 0;
	switch (leaf) {
	case TS_LEAF_REKEY_TIME:
	case TS_LEAF_OVER_TIME:
	case TS_LEAF_RAND_TIME:
	case TS_LEAF_REAUTH_TIME:
	case TS_LEAF_DPD_DELAY:
	case TS_LEAF_CHILD_REKEY_TIME:
	case TS_LEAF_CHILD_LIFE_TIME:
	case TS_LEAF_CHILD_RAND_TIME:
		norm_time(v);
		if (!v[0] && leaf == TS_LEAF_DPD_DELAY)
			return set_leaf(l, leaf, "0");
		return 0;
	case TS_LEAF_CHILD_START_ACTION:
	case TS_LEAF_CHILD_DPD_ACTION:
	case TS_LEAF_CHILD_CLOSE_ACTION:
		return set_leaf(l, leaf, norm_action(v));
	case TS_LEAF_CHILD_MODE:
		for (char *c = v; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		return 0;
	case TS_LEAF_VERSION:
		if (ts_streq(v, "IKEv2"))
			return set_leaf(l, leaf, "2");
		if (ts_streq(v, "IKEv1"))
			return set_leaf(l, leaf, "1");
		if (ts_streq(v, "IKEv1/2"))
			return set_leaf(l, leaf, "0");
		return 0;
	case TS_LEAF_LOCAL_ADDRS:
		/* No local_addrs is "%any" in list-conns. */
		return v[0] ? 0 : set_leaf(l, leaf, "%any");
	case TS_LEAF_LOCAL_AUTH:
	case TS_LEAF_REMOTE_AUTH:
		return ts_streq(v, "pre-shared key") ? set_leaf(l, leaf, "psk") : 0;
	case TS_LEAF_LOCAL_ID:
		/* list-conns prints a printable key id without its prefix. */
		if (strncmp(v, "keyid:", 6) == 0)
			memmove(v, v + 6, strlen(v + 6) + 1);
		return 0;
	default:
		return 0;
	}
}

static int normalize_all(struct ts_ike_leaves *l)
{
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++) {
		int r = normalize(l, (enum ts_ike_leaf)i);

		if (r < 0)
			return r;
	}
	return 0;
}

int ts_ike_leaves_render(const struct ts_tunnel *t, const char *account_id,
			 struct ts_ike_leaves *ret_leaves)
{
	_cleanup_vici_ struct ts_vici_node *msg = NULL;
	struct ts_ike_leaves l = { 0 };
	char name[TS_IKE_CONN_NAME_MAX], lid[TS_IKE_ID_MAX], rid[TS_IKE_ID_MAX];
	char owners[2 * TS_IKE_ID_MAX + 2];
	const struct ts_vici_node *sec[4];
	int r;

	if ((r = ts_ike_render_conn(t, account_id, &msg)) < 0 ||
	    (r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = ts_ike_local_id_config(t, account_id, lid, sizeof(lid))) < 0 ||
	    (r = ts_ike_remote_id(t, rid, sizeof(rid))) < 0)
		return r;
	sec[SEC_CONN] = ts_vici_get_section(msg, name);
	sec[SEC_LOCAL] = ts_vici_get_section(sec[SEC_CONN], "local");
	sec[SEC_REMOTE] = ts_vici_get_section(sec[SEC_CONN], "remote");
	sec[SEC_CHILD] = ts_vici_get_section(ts_vici_get_section(sec[SEC_CONN], "children"), name);
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++) {
		char *v = NULL;

		if (leaf_path[i].sec != SEC_NONE) {
			const struct ts_vici_node *n =
				ts_vici_get(sec[leaf_path[i].sec], leaf_path[i].key);

			v = n ? node_value(n) : strdup("");
		} else if (i == TS_LEAF_CHILDREN) {
			v = strdup(name);
		} else {
			snprintf(owners, sizeof(owners), "%s,%s", lid, rid);
			v = strdup(owners);
		}
		if (!v) {
			ts_ike_leaves_done(&l);
			return -ENOMEM;
		}
		l.values[i] = v;
	}
	r = normalize_all(&l);
	if (r < 0) {
		ts_ike_leaves_done(&l);
		return r;
	}
	*ret_leaves = l;
	return 0;
}

/* One auth round of list-conns ("local-1"): its class, and whether a second
 * round exists (we render exactly one). */
static int listed_auth(struct ts_ike_leaves *l, const struct ts_vici_node *conn, bool local)
{
	const struct ts_vici_node *a = ts_vici_get_section(conn, local ? "local-1" : "remote-1");
	const char *cls = a ? ts_vici_get_str(a, "class") : NULL;
	bool second = ts_vici_get_section(conn, local ? "local-2" : "remote-2") != NULL;
	char buf[96];
	int r;

	snprintf(buf, sizeof(buf), "%s%s", cls ? cls : "", second ? "+more rounds" : "");
	r = set_leaf(l, local ? TS_LEAF_LOCAL_AUTH : TS_LEAF_REMOTE_AUTH,
		     ts_streq(cls, "pre-shared key") && !second ? "psk" : buf);
	if (r < 0)
		return r;
	return set_leaf(l, local ? TS_LEAF_LOCAL_ID : TS_LEAF_REMOTE_ID,
			a ? ts_vici_get_str(a, "id") : NULL);
}

/* list-conns names a few keys differently from load-conn. */
static const char *listed_key(enum ts_ike_leaf leaf)
{
	switch (leaf) {
	case TS_LEAF_CHILD_LOCAL_TS:
		return "local-ts";
	case TS_LEAF_CHILD_REMOTE_TS:
		return "remote-ts";
	default:
		return leaf_path[leaf].key;
	}
}

int ts_ike_leaves_listed(const struct ts_vici_node *listed, const char *conn_name,
			 struct ts_ike_leaves *ret_leaves)
{
	struct ts_ike_leaves l = { 0 };
	const struct ts_vici_node *children, *child;
	char names[512] = "";
	int r = 0;

	if (!listed || listed->type != TS_VICI_SECTION || !conn_name)
		return -EINVAL;
	children = ts_vici_get_section(listed, "children");
	child = ts_vici_get_section(children, conn_name);
	for (size_t i = 0; children && i < children->n_children; i++) {
		const struct ts_vici_node *c = children->children[i];
		size_t len = strlen(names);

		if (c->type == TS_VICI_SECTION && c->name)
			snprintf(names + len, sizeof(names) - len, "%s%s", len ? "," : "", c->name);
	}
	for (unsigned i = 0; r >= 0 && i < _TS_LEAF_MAX; i++) {
		const struct ts_vici_node *from;
		char *v;

		if (!ts_ike_leaf_listed[i] || leaf_path[i].sec == SEC_NONE ||
		    leaf_path[i].sec == SEC_LOCAL || leaf_path[i].sec == SEC_REMOTE)
			continue;
		from = leaf_path[i].sec == SEC_CHILD ? child : listed;
		if (!from)
			continue; /* the child is missing: "children" differs */
		v = node_value(ts_vici_get(from, listed_key((enum ts_ike_leaf)i)));
		r = set_leaf(&l, (enum ts_ike_leaf)i, v);
		free(v);
	}
	if (r >= 0)
		r = set_leaf(&l, TS_LEAF_CHILDREN, names);
	if (r >= 0)
		r = listed_auth(&l, listed, true);
	if (r >= 0)
		r = listed_auth(&l, listed, false);
	if (r >= 0)
		r = normalize_all(&l);
	if (r < 0) {
		ts_ike_leaves_done(&l);
		return r;
	}
	*ret_leaves = l;
	return 0;
}

int ts_ike_conn_diff(const struct ts_ike_leaves *want, const struct ts_ike_leaves *listed,
		     const struct ts_ike_leaves *recorded, struct ts_changes *ret_changes)
{
	struct ts_changes c = { 0 };
	bool unrecorded = false;
	int r = 0;

	if (!want || !ret_changes)
		return -EINVAL;
	for (unsigned i = 0; r >= 0 && i < _TS_LEAF_MAX; i++) {
		const char *w = want->values[i] ? want->values[i] : "";
		const char *have = NULL;

		if (ts_ike_leaf_listed[i] && listed) {
			have = listed->values[i] ? listed->values[i] : "";
			/* charon holds it, but the record says the running SAs
			 * were made with another value (their update did not
			 * complete): still a change. */
			if (ts_streq(have, w) && recorded && recorded->values[i])
				have = recorded->values[i];
		} else if (recorded) {
			have = recorded->values[i]; /* NULL: this leaf was not recorded */
		} else {
			unrecorded = true;
			continue;
		}
		if (!have || !ts_streq(have, w))
			r = ts_changes_add(&c, ts_ike_leaf_names[i], have, w);
	}
	/* Without a record, what list-conns cannot show is unknown: one
	 * change says so (reloading an equal connection changes nothing in
	 * charon, vici_config.c merge_config()). */
	if (r >= 0 && unrecorded)
		r = ts_changes_add(&c, "unlisted-fields", NULL, "as rendered (not recorded)");
	if (r < 0) {
		ts_changes_done(&c);
		return r;
	}
	*ret_changes = c;
	return 0;
}

/* Only what list-conns shows; the record is the caller's. */
int ts_ike_leaves_compare(const struct ts_ike_leaves *want, const struct ts_ike_leaves *have,
			  char *diff, size_t diff_size)
{
	if (diff && diff_size)
		diff[0] = 0;
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		if (ts_ike_leaf_listed[i] && !ts_streq(want->values[i], have->values[i] ?: "")) {
			if (diff && diff_size)
				snprintf(diff, diff_size, "%s", ts_ike_leaf_names[i]);
			return 1;
		}
	return 0;
}

int ts_ike_conn_compare(const struct ts_tunnel *t, const char *account_id,
			const struct ts_vici_node *listed, char *diff, size_t diff_size)
{
	struct ts_ike_leaves want = { 0 }, have = { 0 };
	char name[TS_IKE_CONN_NAME_MAX];
	int r;

	if (diff && diff_size)
		diff[0] = 0;
	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = ts_ike_leaves_render(t, account_id, &want)) < 0)
		return r;
	if (!listed || listed->type != TS_VICI_SECTION) {
		if (diff && diff_size)
			snprintf(diff, diff_size, "connection missing");
		r = 1;
		goto out;
	}
	r = ts_ike_leaves_listed(listed, name, &have);
	if (r >= 0)
		r = ts_ike_leaves_compare(&want, &have, diff, diff_size);
out:
	ts_ike_leaves_done(&want);
	ts_ike_leaves_done(&have);
	return r;
}
