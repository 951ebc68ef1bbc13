/* Owns the translation of XFRM netlink messages into model structs.
 *
 * Messages are parsed from their raw attributes (libnl-3 core does the
 * attribute validation) rather than through libnl-xfrm's objects: that
 * keeps key material out of any heap object, gives us XFRMA_IF_ID, which
 * libnl-xfrm 3.7 lacks, and avoids its per-policy reference leak. Kernel
 * structs are copied out with memcpy because attributes are only 4-byte
 * aligned and the structs hold 64-bit fields. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/xfrm.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "xfrm/xfrm-internal.h"

static struct nla_policy xfrma_policy[XFRMA_MAX + 1] = {
	[XFRMA_ALG_AUTH] = { .minlen = sizeof(struct xfrm_algo) },
	[XFRMA_ALG_CRYPT] = { .minlen = sizeof(struct xfrm_algo) },
	[XFRMA_ALG_COMP] = { .minlen = sizeof(struct xfrm_algo) },
	[XFRMA_ALG_AUTH_TRUNC] = { .minlen = sizeof(struct xfrm_algo_auth) },
	[XFRMA_ALG_AEAD] = { .minlen = sizeof(struct xfrm_algo_aead) },
	[XFRMA_ENCAP] = { .minlen = sizeof(struct xfrm_encap_tmpl) },
	[XFRMA_TMPL] = { .minlen = 0 },
	[XFRMA_SA] = { .minlen = sizeof(struct xfrm_usersa_info) },
	[XFRMA_POLICY] = { .minlen = sizeof(struct xfrm_userpolicy_info) },
	[XFRMA_LASTUSED] = { .type = NLA_U64 },
	[XFRMA_POLICY_TYPE] = { .minlen = sizeof(struct xfrm_userpolicy_type) },
	[XFRMA_MARK] = { .minlen = sizeof(struct xfrm_mark) },
	[XFRMA_SET_MARK] = { .type = NLA_U32 },
	[XFRMA_SET_MARK_MASK] = { .type = NLA_U32 },
	[XFRMA_IF_ID] = { .type = NLA_U32 },
	[XFRMA_REPLAY_VAL] = { .minlen = sizeof(struct xfrm_replay_state) },
	[XFRMA_REPLAY_ESN_VAL] = { .minlen = sizeof(struct xfrm_replay_state_esn) },
};

static void ip_from_xfrm(struct ts_ip *ip, const xfrm_address_t *a, int family)
{
	memset(ip, 0, sizeof(*ip));
	if (family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->bytes, &a->a4, 4);
	} else if (family == AF_INET6) {
		ip->family = AF_INET6;
		memcpy(ip->bytes, a->a6, 16);
	} else {
		ip->family = AF_UNSPEC;
	}
}

static void sel_from_xfrm(struct ts_xfrm_selector *s, const struct xfrm_selector *k)
{
	memset(s, 0, sizeof(*s));
	ip_from_xfrm(&s->src.ip, &k->saddr, k->family);
	ip_from_xfrm(&s->dst.ip, &k->daddr, k->family);
	s->src.len = k->prefixlen_s;
	s->dst.len = k->prefixlen_d;
	s->sport = ntohs(k->sport);
	s->sport_mask = ntohs(k->sport_mask);
	s->dport = ntohs(k->dport);
	s->dport_mask = ntohs(k->dport_mask);
	s->proto = k->proto;
	s->ifindex = k->ifindex;
	s->user = k->user;
}

static void lft_from_xfrm(struct ts_xfrm_lifetime_cfg *c, struct ts_xfrm_lifetime_cur *u,
			  const struct xfrm_lifetime_cfg *kc, const struct xfrm_lifetime_cur *ku)
{
	c->soft_byte_limit = kc->soft_byte_limit;
	c->hard_byte_limit = kc->hard_byte_limit;
	c->soft_packet_limit = kc->soft_packet_limit;
	c->hard_packet_limit = kc->hard_packet_limit;
	c->soft_add_expires_seconds = kc->soft_add_expires_seconds;
	c->hard_add_expires_seconds = kc->hard_add_expires_seconds;
	c->soft_use_expires_seconds = kc->soft_use_expires_seconds;
	c->hard_use_expires_seconds = kc->hard_use_expires_seconds;
	u->bytes = ku->bytes;
	u->packets = ku->packets;
	u->add_time = ku->add_time;
	u->use_time = ku->use_time;
}

static void alg_name(struct ts_xfrm_alg *a, const char *name)
{
	memcpy(a->name, name, TS_XFRM_ALG_NAME);
	a->name[TS_XFRM_ALG_NAME] = '\0';
}

static void mark_from_attr(struct ts_xfrm_mark *m, struct nlattr *attr)
{
	struct xfrm_mark k;

	memset(m, 0, sizeof(*m));
	if (!attr)
		return;
	memcpy(&k, nla_data(attr), sizeof(k));
	m->value = k.v;
	m->mask = k.m;
}

/* Only the algorithm names and key lengths are read; the key bytes stay
 * in the receive buffer, which the caller wipes. */
static int sa_extra_from_attrs(struct ts_xfrm_sa *sa, struct nlattr **tb)
{
	if (tb[XFRMA_ALG_AEAD]) {
		struct xfrm_algo_aead k;

		memcpy(&k, nla_data(tb[XFRMA_ALG_AEAD]), sizeof(k));
		if ((size_t)nla_len(tb[XFRMA_ALG_AEAD]) < sizeof(k) + (k.alg_key_len + 7) / 8)
			return -EBADMSG;
		alg_name(&sa->aead, k.alg_name);
		sa->aead.key_bits = k.alg_key_len;
		sa->aead.icv_bits = k.alg_icv_len;
	}
	if (tb[XFRMA_ALG_CRYPT]) {
		struct xfrm_algo k;

		memcpy(&k, nla_data(tb[XFRMA_ALG_CRYPT]), sizeof(k));
		if ((size_t)nla_len(tb[XFRMA_ALG_CRYPT]) < sizeof(k) + (k.alg_key_len + 7) / 8)
			return -EBADMSG;
		alg_name(&sa->crypt, k.alg_name);
		sa->crypt.key_bits = k.alg_key_len;
	}
	if (tb[XFRMA_ALG_AUTH_TRUNC]) {
		struct xfrm_algo_auth k;

		memcpy(&k, nla_data(tb[XFRMA_ALG_AUTH_TRUNC]), sizeof(k));
		if ((size_t)nla_len(tb[XFRMA_ALG_AUTH_TRUNC]) < sizeof(k) + (k.alg_key_len + 7) / 8)
			return -EBADMSG;
		alg_name(&sa->auth, k.alg_name);
		sa->auth.key_bits = k.alg_key_len;
		sa->auth.icv_bits = k.alg_trunc_len;
	} else if (tb[XFRMA_ALG_AUTH]) {
		struct xfrm_algo k;

		memcpy(&k, nla_data(tb[XFRMA_ALG_AUTH]), sizeof(k));
		if ((size_t)nla_len(tb[XFRMA_ALG_AUTH]) < sizeof(k) + (k.alg_key_len + 7) / 8)
			return -EBADMSG;
		alg_name(&sa->auth, k.alg_name);
		sa->auth.key_bits = k.alg_key_len;
	}
	if (tb[XFRMA_ENCAP]) {
		struct xfrm_encap_tmpl k;

		memcpy(&k, nla_data(tb[XFRMA_ENCAP]), sizeof(k));
		sa->has_encap = true;
		sa->encap_type = k.encap_type;
		sa->encap_sport = ntohs(k.encap_sport);
		sa->encap_dport = ntohs(k.encap_dport);
	}
	mark_from_attr(&sa->mark, tb[XFRMA_MARK]);
	if (tb[XFRMA_IF_ID])
		sa->if_id = nla_get_u32(tb[XFRMA_IF_ID]);
	if (tb[XFRMA_SET_MARK])
		sa->set_mark = nla_get_u32(tb[XFRMA_SET_MARK]);
	if (tb[XFRMA_SET_MARK_MASK])
		sa->set_mark_mask = nla_get_u32(tb[XFRMA_SET_MARK_MASK]);
	if (tb[XFRMA_LASTUSED])
		sa->lastused = nla_get_u64(tb[XFRMA_LASTUSED]);
	if (tb[XFRMA_REPLAY_ESN_VAL]) {
		struct xfrm_replay_state_esn k;

		memcpy(&k, nla_data(tb[XFRMA_REPLAY_ESN_VAL]), sizeof(k));
		sa->replay_window = k.replay_window;
		sa->replay_seq = k.seq;
		sa->replay_oseq = k.oseq;
	} else if (tb[XFRMA_REPLAY_VAL]) {
		struct xfrm_replay_state k;

		memcpy(&k, nla_data(tb[XFRMA_REPLAY_VAL]), sizeof(k));
		sa->replay_seq = k.seq;
		sa->replay_oseq = k.oseq;
	}
	return 0;
}

static void sa_from_info(struct ts_xfrm_sa *sa, const void *info)
{
	struct xfrm_usersa_info p;

	memcpy(&p, info, sizeof(p));
	memset(sa, 0, sizeof(*sa));
	ip_from_xfrm(&sa->src, &p.saddr, p.family);
	ip_from_xfrm(&sa->dst, &p.id.daddr, p.family);
	sa->spi = ntohl(p.id.spi);
	sa->proto = p.id.proto;
	sa->mode = p.mode < _TS_XFRM_MODE_MAX ? (enum ts_xfrm_mode)p.mode : _TS_XFRM_MODE_MAX;
	sa->reqid = p.reqid;
	sa->seq = p.seq;
	sa->replay_window = p.replay_window;
	sa->flags = p.flags;
	sel_from_xfrm(&sa->sel, &p.sel);
	lft_from_xfrm(&sa->lft, &sa->cur, &p.lft, &p.curlft);
	sa->stats_replay_window = p.stats.replay_window;
	sa->stats_replay = p.stats.replay;
	sa->stats_integrity_failed = p.stats.integrity_failed;
}

static int tmpls_from_attr(struct ts_xfrm_policy *pol, struct nlattr *attr)
{
	size_t len, n;
	const char *data;

	pol->n_tmpl = 0;
	if (!attr)
		return 0;
	len = (size_t)nla_len(attr);
	if (len % sizeof(struct xfrm_user_tmpl))
		return -EBADMSG;
	n = len / sizeof(struct xfrm_user_tmpl);
	if (n > TS_XFRM_MAX_TMPL)
		return -EBADMSG;
	data = nla_data(attr);
	for (size_t i = 0; i < n; i++) {
		struct xfrm_user_tmpl k;
		struct ts_xfrm_tmpl *t = &pol->tmpl[i];

		memcpy(&k, data + i * sizeof(k), sizeof(k));
		memset(t, 0, sizeof(*t));
		ip_from_xfrm(&t->src, &k.saddr, k.family);
		ip_from_xfrm(&t->dst, &k.id.daddr, k.family);
		t->spi = ntohl(k.id.spi);
		t->proto = k.id.proto;
		t->mode =
			k.mode < _TS_XFRM_MODE_MAX ? (enum ts_xfrm_mode)k.mode : _TS_XFRM_MODE_MAX;
		t->reqid = k.reqid;
		t->share = k.share;
		t->optional = k.optional != 0;
		t->aalgos = k.aalgos;
		t->ealgos = k.ealgos;
		t->calgos = k.calgos;
	}
	pol->n_tmpl = n;
	return 0;
}

static void policy_from_info(struct ts_xfrm_policy *pol, const void *info)
{
	struct xfrm_userpolicy_info p;

	memcpy(&p, info, sizeof(p));
	memset(pol, 0, sizeof(*pol));
	sel_from_xfrm(&pol->sel, &p.sel);
	lft_from_xfrm(&pol->lft, &pol->cur, &p.lft, &p.curlft);
	pol->dir = (enum ts_xfrm_dir)p.dir;
	pol->priority = p.priority;
	pol->index = p.index;
	pol->action = p.action == XFRM_POLICY_BLOCK ? TS_XFRM_ACTION_BLOCK : TS_XFRM_ACTION_ALLOW;
	pol->flags = p.flags;
	pol->share = p.share;
}

static int policy_extra_from_attrs(struct ts_xfrm_policy *pol, struct nlattr **tb)
{
	int r = tmpls_from_attr(pol, tb[XFRMA_TMPL]);

	if (r < 0)
		return r;
	mark_from_attr(&pol->mark, tb[XFRMA_MARK]);
	if (tb[XFRMA_IF_ID])
		pol->if_id = nla_get_u32(tb[XFRMA_IF_ID]);
	if (tb[XFRMA_POLICY_TYPE]) {
		struct xfrm_userpolicy_type k;

		memcpy(&k, nla_data(tb[XFRMA_POLICY_TYPE]), sizeof(k));
		pol->type = k.type;
	}
	return 0;
}

/* Message type → size of the fixed header that precedes the attributes. */
static size_t xfrm_hdrlen(int type)
{
	switch (type) {
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA:
		return sizeof(struct xfrm_usersa_info);
	case XFRM_MSG_DELSA:
		return sizeof(struct xfrm_usersa_id);
	case XFRM_MSG_NEWPOLICY:
	case XFRM_MSG_UPDPOLICY:
		return sizeof(struct xfrm_userpolicy_info);
	case XFRM_MSG_DELPOLICY:
		return sizeof(struct xfrm_userpolicy_id);
	case XFRM_MSG_EXPIRE:
		return sizeof(struct xfrm_user_expire);
	case XFRM_MSG_POLEXPIRE:
		return sizeof(struct xfrm_user_polexpire);
	case XFRM_MSG_ACQUIRE:
		return sizeof(struct xfrm_user_acquire);
	default:
		return 0;
	}
}

static int parse_aligned(const struct nlmsghdr *nlh, struct ts_xfrm_event *ev,
			 enum ts_xfrm_resync *resync)
{
	struct nlattr *tb[XFRMA_MAX + 1];
	const void *hdr = nlmsg_data(nlh);
	size_t hdrlen = xfrm_hdrlen(nlh->nlmsg_type);
	int r;

	*resync = TS_XFRM_RESYNC_NONE;
	switch (nlh->nlmsg_type) {
	case XFRM_MSG_FLUSHSA:
		*resync = TS_XFRM_RESYNC_FLUSH_SA;
		return 0;
	case XFRM_MSG_FLUSHPOLICY:
		*resync = TS_XFRM_RESYNC_FLUSH_POLICY;
		return 0;
	case NLMSG_NOOP:
	case NLMSG_DONE:
		return 0;
	}
	if (hdrlen == 0) {
		*resync = TS_XFRM_RESYNC_UNKNOWN_MESSAGE;
		return 0;
	}
	if (nlh->nlmsg_len < NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen))
		return -EBADMSG;
	r = nlmsg_parse((struct nlmsghdr *)nlh, (int)hdrlen, tb, XFRMA_MAX, xfrma_policy);
	if (r < 0)
		return -EBADMSG;

	memset(ev, 0, sizeof(*ev));
	switch (nlh->nlmsg_type) {
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA:
		ev->type = nlh->nlmsg_type == XFRM_MSG_NEWSA ? TS_XFRM_EVENT_SA_NEW
							     : TS_XFRM_EVENT_SA_UPD;
		sa_from_info(&ev->sa, hdr);
		r = sa_extra_from_attrs(&ev->sa, tb);
		break;
	case XFRM_MSG_DELSA:
		/* The deleted SA travels in XFRMA_SA, its extras at top level. */
		if (!tb[XFRMA_SA])
			return -EBADMSG;
		ev->type = TS_XFRM_EVENT_SA_DEL;
		sa_from_info(&ev->sa, nla_data(tb[XFRMA_SA]));
		r = sa_extra_from_attrs(&ev->sa, tb);
		break;
	case XFRM_MSG_EXPIRE: {
		struct xfrm_user_expire k;

		memcpy(&k, hdr, sizeof(k));
		sa_from_info(&ev->sa, hdr);
		ev->type = k.hard ? TS_XFRM_EVENT_SA_EXPIRE_HARD : TS_XFRM_EVENT_SA_EXPIRE_SOFT;
		r = sa_extra_from_attrs(&ev->sa, tb);
		break;
	}
	case XFRM_MSG_NEWPOLICY:
	case XFRM_MSG_UPDPOLICY:
		ev->type = nlh->nlmsg_type == XFRM_MSG_NEWPOLICY ? TS_XFRM_EVENT_POLICY_NEW
								 : TS_XFRM_EVENT_POLICY_UPD;
		policy_from_info(&ev->policy, hdr);
		r = policy_extra_from_attrs(&ev->policy, tb);
		break;
	case XFRM_MSG_DELPOLICY:
		if (!tb[XFRMA_POLICY])
			return -EBADMSG;
		ev->type = TS_XFRM_EVENT_POLICY_DEL;
		policy_from_info(&ev->policy, nla_data(tb[XFRMA_POLICY]));
		r = policy_extra_from_attrs(&ev->policy, tb);
		break;
	case XFRM_MSG_POLEXPIRE: {
		struct xfrm_user_polexpire k;

		memcpy(&k, hdr, sizeof(k));
		policy_from_info(&ev->policy, hdr);
		ev->type = k.hard ? TS_XFRM_EVENT_POLICY_EXPIRE_HARD
				  : TS_XFRM_EVENT_POLICY_EXPIRE_SOFT;
		r = policy_extra_from_attrs(&ev->policy, tb);
		break;
	}
	case XFRM_MSG_ACQUIRE: {
		struct xfrm_user_acquire k;

		memcpy(&k, hdr, sizeof(k));
		ev->type = TS_XFRM_EVENT_ACQUIRE;
		policy_from_info(&ev->acquire.policy, &k.policy);
		ip_from_xfrm(&ev->acquire.src, &k.saddr, k.policy.sel.family);
		ip_from_xfrm(&ev->acquire.dst, &k.id.daddr, k.policy.sel.family);
		ev->acquire.proto = k.id.proto;
		ev->acquire.seq = k.seq;
		r = policy_extra_from_attrs(&ev->acquire.policy, tb);
		/* The acquiring packet's own selector, not the policy's. */
		sel_from_xfrm(&ev->acquire.policy.sel, &k.sel);
		if (r >= 0 && ev->acquire.policy.n_tmpl > 0) {
			ev->acquire.src = ev->acquire.policy.tmpl[0].src;
			ev->acquire.dst = ev->acquire.policy.tmpl[0].dst;
		}
		break;
	}
	default:
		*resync = TS_XFRM_RESYNC_UNKNOWN_MESSAGE;
		return 0;
	}
	if (r < 0)
		return -EBADMSG;

	/* Per-socket policies (dir ≥ XFRM_POLICY_MAX) belong to sockets such
	 * as charon's IKE socket, never to a tunnel. */
	if ((ev->type >= TS_XFRM_EVENT_POLICY_NEW && ev->type <= TS_XFRM_EVENT_POLICY_EXPIRE_HARD &&
	     (unsigned)ev->policy.dir >= XFRM_POLICY_MAX) ||
	    (ev->type == TS_XFRM_EVENT_ACQUIRE &&
	     (unsigned)ev->acquire.policy.dir >= XFRM_POLICY_MAX))
		return 0;
	return 1;
}

int ts_xfrm_parse_msg(const void *buf, size_t len, struct ts_xfrm_event *ret_event,
		      enum ts_xfrm_resync *ret_resync)
{
	enum ts_xfrm_resync resync = TS_XFRM_RESYNC_NONE;
	struct ts_xfrm_event ev;
	struct nlmsghdr hdr;
	void *copy = NULL;
	const struct nlmsghdr *nlh;
	int r;

	if (!buf || !ret_event || !ret_resync || len < NLMSG_HDRLEN)
		return -EBADMSG;
	memcpy(&hdr, buf, sizeof(hdr));
	if (hdr.nlmsg_len < NLMSG_HDRLEN || hdr.nlmsg_len > len)
		return -EBADMSG;
	/* Receive buffers are aligned; fuzzers and fixtures may not be. The
	 * copy may hold key bytes and is wiped. */
	if ((uintptr_t)buf % 8) {
		copy = malloc(hdr.nlmsg_len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, buf, hdr.nlmsg_len);
		nlh = copy;
	} else {
		nlh = buf;
	}
	r = parse_aligned(nlh, &ev, &resync);
	if (copy) {
		ts_wipe(copy, hdr.nlmsg_len);
		free(copy);
	}
	if (r < 0)
		return r;
	*ret_resync = resync;
	if (r > 0)
		*ret_event = ev;
	return r;
}
