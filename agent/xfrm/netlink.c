/* Owns the XFRM netlink sockets: request sockets (dumps, lookups,
 * deletes) and the event socket of a watch.
 *
 * libnl-3 core opens the sockets and builds requests; replies are read
 * with our own recvmsg loop so that ENOBUFS, NLM_F_DUMP_INTR and truncation
 * are seen as what they are (libnl folds ENOBUFS into NLE_NOMEM). Every
 * receive buffer is wiped after use: SA replies and SA notifications carry
 * the keys. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/secret.h"
#include "core/util.h"
#include "xfrm/xfrm-internal.h"

/* Dump datagrams are at most 32 KiB (the kernel's cap); notifications are
 * single messages. A truncated datagram is an error, never half-read. */
#define RECV_BUF_SIZE (64u * 1024)
/* A drain stops after this many datagrams so that a busy kernel cannot
 * starve the caller's loop; the fd stays readable. */
#define DRAIN_MAX_DATAGRAMS 4096

struct ts_xfrm_sock {
	struct nl_sock *nl;
	uint8_t *buf;
};

struct ts_xfrm_watch {
	struct nl_sock *nl;
	uint8_t *buf;
};

int ts_xfrm_grow(void **items, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*items, ncap * elem);
	if (!p)
		return -ENOMEM;
	*items = p;
	*cap = ncap;
	return 0;
}

static int nl_err(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
		return -EPERM;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_BAD_SOCK:
		return -EBADF;
	default:
		return -EIO;
	}
}

/* nl_connect() in libnl ≥ 3.2.26 opens with SOCK_CLOEXEC; set it again so
 * that no libnl version can leak the socket into a child. */
static int open_nl(struct nl_sock **ret_nl)
{
	struct nl_sock *nl = nl_socket_alloc();
	int r, fd, flags;

	if (!nl)
		return -ENOMEM;
	nl_socket_disable_auto_ack(nl);
	r = nl_connect(nl, NETLINK_XFRM);
	if (r < 0) {
		nl_socket_free(nl);
		return nl_err(r);
	}
	fd = nl_socket_get_fd(nl);
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
		r = -errno;
		nl_socket_free(nl);
		return r;
	}
	*ret_nl = nl;
	return 0;
}

int ts_xfrm_sock_open(struct ts_xfrm_sock **ret_sock)
{
	struct ts_xfrm_sock *s;
	int r;

	if (!ret_sock)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->buf = malloc(RECV_BUF_SIZE);
	if (!s->buf) {
		free(s);
		return -ENOMEM;
	}
	r = open_nl(&s->nl);
	if (r < 0) {
		free(s->buf);
		free(s);
		return r;
	}
	*ret_sock = s;
	return 0;
}

void ts_xfrm_sock_free(struct ts_xfrm_sock *sock)
{
	if (!sock)
		return;
	nl_socket_free(sock->nl);
	ts_wipe(sock->buf, RECV_BUF_SIZE);
	free(sock->buf);
	free(sock);
}

/* One datagram from the kernel. Returns its length, -EAGAIN when
 * non-blocking and empty, -ENOBUFS on overflow, -EMSGSIZE if truncated. */
static ssize_t recv_datagram(int fd, uint8_t *buf, bool nonblock)
{
	struct sockaddr_nl sa;
	struct iovec iov = { .iov_base = buf, .iov_len = RECV_BUF_SIZE };
	struct msghdr mh = {
		.msg_name = &sa,
		.msg_namelen = sizeof(sa),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;

	for (;;) {
		n = recvmsg(fd, &mh, nonblock ? MSG_DONTWAIT : 0);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	if (mh.msg_flags & MSG_TRUNC) {
		ts_wipe(buf, RECV_BUF_SIZE);
		return -EMSGSIZE;
	}
	if (sa.nl_pid != 0) {
		/* Not from the kernel: ignore it, as the kernel would. */
		ts_wipe(buf, (size_t)n);
		return 0;
	}
	return n;
}

typedef int (*msg_fn)(const struct nlmsghdr *nlh, void *userdata);

/* Sends msg and reads replies until the ack (or DONE for a dump). Each
 * reply message of another type goes to fn. *ret_intr tells whether the
 * kernel flagged the dump as interrupted. */
static int transact(struct ts_xfrm_sock *sock, struct nl_msg *msg, msg_fn fn, void *userdata,
		    bool *ret_intr)
{
	int fd = nl_socket_get_fd(sock->nl);
	bool intr = false, dump = nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP;
	uint32_t seq;
	int r, result = 0;

	r = nl_send_auto(sock->nl, msg);
	if (r < 0)
		return nl_err(r);
	seq = nlmsg_hdr(msg)->nlmsg_seq;

	for (;;) {
		ssize_t n = recv_datagram(fd, sock->buf, false);
		bool done = false;
		int len;

		if (n < 0)
			return (int)n;
		len = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)sock->buf; nlmsg_ok(h, len);
		     h = nlmsg_next(h, &len)) {
			if (h->nlmsg_seq != seq)
				continue; /* a stale reply to an earlier request */
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr e;

				if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(e)) {
					result = -EBADMSG;
				} else {
					memcpy(&e, nlmsg_data(h), sizeof(e));
					if (e.error < 0 && result == 0)
						result = e.error;
				}
				done = true;
				break;
			}
			if (fn && result == 0) {
				r = fn(h, userdata);
				if (r < 0)
					result = r; /* keep reading to the end */
			}
			if (!dump && !(h->nlmsg_flags & NLM_F_MULTI) &&
			    !(nlmsg_hdr(msg)->nlmsg_flags & NLM_F_ACK)) {
				done = true;
				break;
			}
		}
		ts_wipe(sock->buf, (size_t)n);
		if (done)
			break;
	}
	if (ret_intr)
		*ret_intr = intr;
	return result;
}

struct sa_collect {
	struct ts_xfrm_sa *items;
	size_t n, cap;
};

static int collect_sa(const struct nlmsghdr *nlh, void *userdata)
{
	struct sa_collect *c = userdata;
	enum ts_xfrm_resync resync;
	struct ts_xfrm_event ev;
	int r;

	if (nlh->nlmsg_type != XFRM_MSG_NEWSA)
		return 0;
	r = ts_xfrm_parse_msg(nlh, nlh->nlmsg_len, &ev, &resync);
	if (r <= 0)
		return r;
	r = ts_xfrm_grow((void **)&c->items, &c->cap, c->n, sizeof(*c->items));
	if (r < 0)
		return r;
	c->items[c->n++] = ev.sa;
	return 0;
}

struct policy_collect {
	struct ts_xfrm_policy *items;
	size_t n, cap;
};

static int collect_policy(const struct nlmsghdr *nlh, void *userdata)
{
	struct policy_collect *c = userdata;
	enum ts_xfrm_resync resync;
	struct ts_xfrm_event ev;
	int r;

	if (nlh->nlmsg_type != XFRM_MSG_NEWPOLICY)
		return 0;
	r = ts_xfrm_parse_msg(nlh, nlh->nlmsg_len, &ev, &resync);
	if (r <= 0)
		return r; /* 0: a per-socket policy, skipped */
	r = ts_xfrm_grow((void **)&c->items, &c->cap, c->n, sizeof(*c->items));
	if (r < 0)
		return r;
	c->items[c->n++] = ev.policy;
	return 0;
}

static int dump_once(struct ts_xfrm_sock *sock, int type, msg_fn fn, void *userdata, bool *ret_intr)
{
	struct nl_msg *msg = nlmsg_alloc_simple(type, NLM_F_DUMP);
	int r;

	if (!msg)
		return -ENOMEM;
	r = transact(sock, msg, fn, userdata, ret_intr);
	nlmsg_free(msg);
	return r;
}

int ts_xfrm_dump_sas(struct ts_xfrm_sock *sock, struct ts_xfrm_sa **ret_sas, size_t *ret_n)
{
	if (!sock || !ret_sas || !ret_n)
		return -EINVAL;
	for (int attempt = 0; attempt < TS_XFRM_DUMP_RETRIES; attempt++) {
		struct sa_collect c = { 0 };
		bool intr = false;
		int r = dump_once(sock, XFRM_MSG_GETSA, collect_sa, &c, &intr);

		if (r < 0 || intr) {
			free(c.items);
			if (r < 0)
				return r;
			continue;
		}
		*ret_sas = c.items;
		*ret_n = c.n;
		return 0;
	}
	return -EAGAIN;
}

int ts_xfrm_dump_policies(struct ts_xfrm_sock *sock, struct ts_xfrm_policy **ret_policies,
			  size_t *ret_n)
{
	if (!sock || !ret_policies || !ret_n)
		return -EINVAL;
	for (int attempt = 0; attempt < TS_XFRM_DUMP_RETRIES; attempt++) {
		struct policy_collect c = { 0 };
		bool intr = false;
		int r = dump_once(sock, XFRM_MSG_GETPOLICY, collect_policy, &c, &intr);

		if (r < 0 || intr) {
			free(c.items);
			if (r < 0)
				return r;
			continue;
		}
		*ret_policies = c.items;
		*ret_n = c.n;
		return 0;
	}
	return -EAGAIN;
}

int ts_xfrm_dump(struct ts_xfrm_sock *sock, struct ts_xfrm_snapshot *ret_snapshot)
{
	struct ts_xfrm_snapshot s = { 0 };
	int r;

	if (!sock || !ret_snapshot)
		return -EINVAL;
	r = ts_xfrm_dump_sas(sock, &s.sas, &s.n_sas);
	if (r < 0)
		return r;
	r = ts_xfrm_dump_policies(sock, &s.policies, &s.n_policies);
	if (r < 0) {
		free(s.sas);
		return r;
	}
	s.complete = true;
	*ret_snapshot = s;
	return 0;
}

void ts_xfrm_snapshot_done(struct ts_xfrm_snapshot *snapshot)
{
	if (!snapshot)
		return;
	free(snapshot->sas);
	free(snapshot->policies);
	memset(snapshot, 0, sizeof(*snapshot));
}

static void xaddr_from_ip(xfrm_address_t *a, const struct ts_ip *ip)
{
	memset(a, 0, sizeof(*a));
	memcpy(a, ip->bytes, ts_ip_len(ip));
}

static int build_sa_id(int type, int flags, const struct ts_xfrm_sa *sa, struct nl_msg **ret_msg)
{
	struct xfrm_usersa_id id = { 0 };
	struct nl_msg *msg;

	if (!ts_ip_is_set(&sa->dst))
		return -EINVAL;
	xaddr_from_ip(&id.daddr, &sa->dst);
	id.spi = htonl(sa->spi);
	id.family = (uint16_t)sa->dst.family;
	id.proto = sa->proto;
	msg = nlmsg_alloc_simple(type, flags);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &id, sizeof(id), NLMSG_ALIGNTO) < 0)
		goto fail;
	if (ts_ip_is_set(&sa->src)) {
		xfrm_address_t src;

		xaddr_from_ip(&src, &sa->src);
		if (nla_put(msg, XFRMA_SRCADDR, sizeof(src), &src) < 0)
			goto fail;
	}
	if (sa->mark.mask) {
		struct xfrm_mark m = { .v = sa->mark.value, .m = sa->mark.mask };

		if (nla_put(msg, XFRMA_MARK, sizeof(m), &m) < 0)
			goto fail;
	}
	*ret_msg = msg;
	return 0;
fail:
	nlmsg_free(msg);
	return -ENOMEM;
}

/* The kernel's answer to a GET: the one SA or policy it names. */
struct one_obj {
	uint16_t type; /* XFRM_MSG_NEWSA or XFRM_MSG_NEWPOLICY */
	struct ts_xfrm_event ev;
	bool found;
};

static int take_one(const struct nlmsghdr *nlh, void *userdata)
{
	struct one_obj *o = userdata;
	enum ts_xfrm_resync resync;
	struct ts_xfrm_event ev;
	int r;

	if (nlh->nlmsg_type != o->type)
		return 0;
	r = ts_xfrm_parse_msg(nlh, nlh->nlmsg_len, &ev, &resync);
	if (r < 0)
		return r;
	if (r > 0) {
		o->ev = ev;
		o->found = true;
	}
	return 0;
}

/* Sends msg (a GET, freed here) and takes the object of the answer of
 * that type into ret. -ENOENT: none. */
static int get_one(struct ts_xfrm_sock *sock, struct nl_msg *msg, uint16_t type,
		   struct ts_xfrm_event *ret)
{
	struct one_obj o = { .type = type, .found = false };
	int r = transact(sock, msg, take_one, &o, NULL);

	nlmsg_free(msg);
	if (r < 0)
		return r;
	if (!o.found)
		return -ENOENT;
	*ret = o.ev;
	return 0;
}

/* Sends msg (freed here), waits for the kernel's ack. */
static int send_acked(struct ts_xfrm_sock *sock, struct nl_msg *msg)
{
	int r = transact(sock, msg, NULL, NULL, NULL);

	nlmsg_free(msg);
	return r;
}

int ts_xfrm_sa_get(struct ts_xfrm_sock *sock, const struct ts_xfrm_sa *id,
		   struct ts_xfrm_sa *ret_sa)
{
	struct ts_xfrm_event ev;
	struct nl_msg *msg;
	int r;

	if (!sock || !id || !ret_sa)
		return -EINVAL;
	r = build_sa_id(XFRM_MSG_GETSA, 0, id, &msg);
	if (r < 0)
		return r;
	r = get_one(sock, msg, XFRM_MSG_NEWSA, &ev);
	if (r == 0)
		*ret_sa = ev.sa;
	return r;
}

int ts_xfrm_sa_delete(struct ts_xfrm_sock *sock, const struct ts_xfrm_owner *owner,
		      const struct ts_xfrm_sa *sa)
{
	struct ts_xfrm_sa cur;
	struct nl_msg *msg;
	int r;

	if (!sock || !owner || !sa)
		return -EINVAL;
	r = ts_xfrm_owner_validate(owner);
	if (r < 0)
		return r;
	/* Judge ownership on the kernel's own copy, not on the caller's. */
	r = ts_xfrm_sa_get(sock, sa, &cur);
	if (r < 0)
		return r;
	if (!ts_xfrm_sa_owned(owner, &cur))
		return -EPERM;
	r = build_sa_id(XFRM_MSG_DELSA, NLM_F_ACK, &cur, &msg);
	return r < 0 ? r : send_acked(sock, msg);
}

static int build_policy_id(int type, int flags, const struct ts_xfrm_policy *pol, bool by_index,
			   struct nl_msg **ret_msg)
{
	struct xfrm_userpolicy_id id = { 0 };
	const struct ts_xfrm_selector *s = &pol->sel;
	struct nl_msg *msg;

	if ((unsigned)pol->dir >= XFRM_POLICY_MAX)
		return -EINVAL;
	if (by_index) {
		id.index = pol->index;
	} else {
		int family = ts_ip_is_set(&s->src.ip) ? s->src.ip.family : s->dst.ip.family;

		xaddr_from_ip(&id.sel.saddr, &s->src.ip);
		xaddr_from_ip(&id.sel.daddr, &s->dst.ip);
		id.sel.prefixlen_s = s->src.len;
		id.sel.prefixlen_d = s->dst.len;
		id.sel.family = (uint16_t)(family == AF_INET || family == AF_INET6 ? family : 0);
		id.sel.sport = htons(s->sport);
		id.sel.sport_mask = htons(s->sport_mask);
		id.sel.dport = htons(s->dport);
		id.sel.dport_mask = htons(s->dport_mask);
		id.sel.proto = s->proto;
		id.sel.ifindex = s->ifindex;
		id.sel.user = s->user;
	}
	id.dir = (uint8_t)pol->dir;
	msg = nlmsg_alloc_simple(type, flags);
	if (!msg)
		return -ENOMEM;
	if (nlmsg_append(msg, &id, sizeof(id), NLMSG_ALIGNTO) < 0)
		goto fail;
	if (pol->mark.mask) {
		struct xfrm_mark m = { .v = pol->mark.value, .m = pol->mark.mask };

		if (nla_put(msg, XFRMA_MARK, sizeof(m), &m) < 0)
			goto fail;
	}
	/* Without it the kernel looks for if_id 0 and answers ENOENT. */
	if (pol->if_id && nla_put_u32(msg, XFRMA_IF_ID, pol->if_id) < 0)
		goto fail;
	if (pol->type) {
		struct xfrm_userpolicy_type t = { .type = pol->type };

		if (nla_put(msg, XFRMA_POLICY_TYPE, sizeof(t), &t) < 0)
			goto fail;
	}
	*ret_msg = msg;
	return 0;
fail:
	nlmsg_free(msg);
	return -ENOMEM;
}

int ts_xfrm_policy_get(struct ts_xfrm_sock *sock, const struct ts_xfrm_policy *id,
		       struct ts_xfrm_policy *ret_policy)
{
	struct ts_xfrm_event ev;
	struct nl_msg *msg;
	int r;

	if (!sock || !id || !ret_policy)
		return -EINVAL;
	r = build_policy_id(XFRM_MSG_GETPOLICY, 0, id, id->index != 0, &msg);
	if (r < 0)
		return r;
	r = get_one(sock, msg, XFRM_MSG_NEWPOLICY, &ev);
	if (r == 0)
		*ret_policy = ev.policy;
	return r;
}

int ts_xfrm_policy_delete(struct ts_xfrm_sock *sock, const struct ts_xfrm_owner *owner,
			  const struct ts_xfrm_policy *pol)
{
	struct ts_xfrm_policy cur;
	struct nl_msg *msg;
	int r;

	if (!sock || !owner || !pol)
		return -EINVAL;
	r = ts_xfrm_owner_validate(owner);
	if (r < 0)
		return r;
	r = ts_xfrm_policy_get(sock, pol, &cur);
	if (r < 0)
		return r;
	if (!ts_xfrm_policy_owned(owner, &cur))
		return -EPERM;
	/* By index: exactly the object that was judged. */
	r = build_policy_id(XFRM_MSG_DELPOLICY, NLM_F_ACK, &cur, true, &msg);
	return r < 0 ? r : send_acked(sock, msg);
}

static int set_rcvbuf(int fd, size_t size)
{
	int v = size > INT32_MAX ? INT32_MAX : (int)size;

	/* FORCE needs CAP_NET_ADMIN and ignores rmem_max; fall back to the
	 * capped variant for an unprivileged observer. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0)
		return 0;
	return -errno;
}

int ts_xfrm_watch_open(size_t rcvbuf, struct ts_xfrm_watch **ret_watch)
{
	struct ts_xfrm_watch *w;
	int r;

	if (!ret_watch)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->buf = malloc(RECV_BUF_SIZE);
	if (!w->buf) {
		free(w);
		return -ENOMEM;
	}
	r = open_nl(&w->nl);
	if (r < 0)
		goto fail;
	r = set_rcvbuf(nl_socket_get_fd(w->nl), rcvbuf ? rcvbuf : TS_XFRM_WATCH_RCVBUF);
	if (r < 0)
		goto fail;
	r = nl_socket_add_memberships(w->nl, XFRMNLGRP_SA, XFRMNLGRP_POLICY, XFRMNLGRP_EXPIRE,
				      XFRMNLGRP_ACQUIRE, 0);
	if (r < 0) {
		r = nl_err(r);
		goto fail;
	}
	r = nl_socket_set_nonblocking(w->nl);
	if (r < 0) {
		r = nl_err(r);
		goto fail;
	}
	*ret_watch = w;
	return 0;
fail:
	ts_xfrm_watch_free(w);
	return r;
}

void ts_xfrm_watch_free(struct ts_xfrm_watch *watch)
{
	if (!watch)
		return;
	if (watch->nl)
		nl_socket_free(watch->nl);
	ts_wipe(watch->buf, RECV_BUF_SIZE);
	free(watch->buf);
	free(watch);
}

int ts_xfrm_watch_fd(const struct ts_xfrm_watch *watch)
{
	return watch ? nl_socket_get_fd(watch->nl) : -EINVAL;
}

int ts_xfrm_watch_drain(struct ts_xfrm_watch *watch, struct ts_xfrm_changes *ret_changes)
{
	struct ts_xfrm_changes ch = { 0 };
	size_t cap = 0;
	int fd, r = 0;

	if (!watch || !ret_changes)
		return -EINVAL;
	fd = nl_socket_get_fd(watch->nl);
	for (int i = 0; i < DRAIN_MAX_DATAGRAMS; i++) {
		ssize_t n = recv_datagram(fd, watch->buf, true);
		int len;

		if (n == -EAGAIN)
			break;
		if (n == -ENOBUFS) {
			/* Events were dropped; what is still queued is kept
			 * but cannot be trusted to be complete. */
			ch.resync = TS_XFRM_RESYNC_OVERFLOW;
			continue;
		}
		if (n < 0) {
			r = (int)n;
			break;
		}
		len = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)watch->buf; nlmsg_ok(h, len);
		     h = nlmsg_next(h, &len)) {
			enum ts_xfrm_resync resync = TS_XFRM_RESYNC_NONE;
			struct ts_xfrm_event ev;
			int p = ts_xfrm_parse_msg(h, h->nlmsg_len, &ev, &resync);

			if (p < 0)
				resync = TS_XFRM_RESYNC_BAD_MESSAGE;
			if (resync != TS_XFRM_RESYNC_NONE && ch.resync == TS_XFRM_RESYNC_NONE)
				ch.resync = resync;
			if (p > 0) {
				r = ts_xfrm_grow((void **)&ch.events, &cap, ch.n_events,
						 sizeof(*ch.events));
				if (r < 0)
					break;
				ch.events[ch.n_events++] = ev;
			}
		}
		if (len > 0 && ch.resync == TS_XFRM_RESYNC_NONE)
			ch.resync = TS_XFRM_RESYNC_BAD_MESSAGE; /* trailing garbage */
		ts_wipe(watch->buf, (size_t)n);
		if (r < 0)
			break;
	}
	if (r < 0) {
		ts_xfrm_changes_done(&ch);
		return r;
	}
	*ret_changes = ch;
	return (int)(ch.n_events > INT32_MAX ? INT32_MAX : ch.n_events);
}

void ts_xfrm_changes_done(struct ts_xfrm_changes *changes)
{
	if (!changes)
		return;
	free(changes->events);
	memset(changes, 0, sizeof(*changes));
}

int ts_xfrm_start(struct ts_xfrm_sock *sock, size_t rcvbuf, struct ts_xfrm_watch **ret_watch,
		  struct ts_xfrm_snapshot *ret_snapshot)
{
	struct ts_xfrm_watch *w = NULL;
	struct ts_xfrm_snapshot s;
	int r;

	if (!sock || !ret_watch || !ret_snapshot)
		return -EINVAL;
	r = ts_xfrm_watch_open(rcvbuf, &w);
	if (r < 0)
		return r;
	r = ts_xfrm_dump(sock, &s);
	if (r < 0) {
		ts_xfrm_watch_free(w);
		return r;
	}
	*ret_watch = w;
	*ret_snapshot = s;
	return 0;
}
