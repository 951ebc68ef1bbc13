/* Fuzz target for the XFRM dump and watch paths as a whole (agent/xfrm/
 * netlink.c): the request loop that reads multipart dumps datagram by
 * datagram until NLMSG_DONE (stale sequence numbers, NLM_F_DUMP_INTR and
 * its retries, NLMSG_ERROR, truncation, ENOBUFS), the watch drain, and the
 * matching of what was read against two declared tunnels.
 *
 * The kernel is replaced at the socket calls only: the link wraps
 * recvmsg, nl_send_auto and nl_socket_add_memberships (-Wl,--wrap), so the
 * agent's own receive code runs unchanged on datagrams taken from the
 * input, and no privilege is needed. Input:
 *   byte 0: bit 0 dump (else watch drain); bit 1 rewrite every message's
 *           sequence number to the request's (else the input's stand);
 *   then datagrams: u16 length (little endian), u8 flags (bit 0
 *   MSG_TRUNC, bit 1 fail with ENOBUFS, bit 2 sender not the kernel,
 *   bit 3 EINTR first), the bytes.
 * When the datagrams run out a dump's read fails (ECONNRESET) and a watch
 * has nothing more (EAGAIN). Requests get sequence numbers 1, 2, ... */
#include <errno.h>
#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "xfrm/xfrm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
ssize_t __wrap_recvmsg(int fd, struct msghdr *mh, int flags);
int __wrap_nl_send_auto(struct nl_sock *sk, struct nl_msg *msg);
int __wrap_nl_socket_add_memberships(struct nl_sock *sk, int group, ...);

static const uint8_t *in;
static size_t in_len, in_off;
static uint8_t mode;
static uint32_t next_seq, cur_seq;
static int eintr_pending;

int __wrap_nl_send_auto(struct nl_sock *sk, struct nl_msg *msg)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);

	(void)sk;
	h->nlmsg_seq = cur_seq = ++next_seq;
	return (int)h->nlmsg_len;
}

int __wrap_nl_socket_add_memberships(struct nl_sock *sk, int group, ...)
{
	(void)sk, (void)group;
	return 0;
}

static void rewrite_seq(uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= NLMSG_HDRLEN) {
		struct nlmsghdr h;
		size_t step;

		memcpy(&h, buf + off, sizeof(h));
		h.nlmsg_seq = cur_seq;
		memcpy(buf + off, &h, sizeof(h));
		step = ((size_t)h.nlmsg_len + NLMSG_ALIGNTO - 1) & ~(size_t)(NLMSG_ALIGNTO - 1);
		if (h.nlmsg_len < NLMSG_HDRLEN || step > len - off)
			break;
		off += step;
	}
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *mh, int flags)
{
	struct sockaddr_nl *sa = mh->msg_name;
	size_t len, n;
	uint8_t f;

	(void)fd;
	if (in_len - in_off < 3) {
		errno = (flags & MSG_DONTWAIT) ? EAGAIN : ECONNRESET;
		return -1;
	}
	len = (size_t)in[in_off] | (size_t)in[in_off + 1] << 8;
	f = in[in_off + 2];
	if ((f & 8) && !eintr_pending) {
		eintr_pending = 1;
		errno = EINTR;
		return -1;
	}
	eintr_pending = 0;
	in_off += 3;
	if (len > in_len - in_off)
		len = in_len - in_off;
	if (f & 2) {
		in_off += len;
		errno = ENOBUFS;
		return -1;
	}
	n = len < mh->msg_iov[0].iov_len ? len : mh->msg_iov[0].iov_len;
	memcpy(mh->msg_iov[0].iov_base, in + in_off, n);
	in_off += len;
	if (mode & 2)
		rewrite_seq(mh->msg_iov[0].iov_base, n);
	memset(sa, 0, sizeof(*sa));
	sa->nl_family = AF_NETLINK;
	sa->nl_pid = (f & 4) ? 4242 : 0;
	mh->msg_namelen = sizeof(*sa);
	mh->msg_flags = (f & 1) || n < len ? MSG_TRUNC : 0;
	return (ssize_t)n;
}

static void match(const struct ts_xfrm_snapshot *s, const struct ts_xfrm_event *ev, size_t n_ev)
{
	static const uint32_t if_ids[] = { 7, 9 };
	static const uint32_t reqids[] = { 1501 };
	static const struct ts_xfrm_mark marks[] = { { 0x10, 0xff } };
	static const struct ts_xfrm_owner owner = {
		.if_ids = if_ids,
		.n_if_ids = 2,
		.marks = marks,
		.n_marks = 1,
		.reqid_min = 1500,
		.reqid_max = 1503,
	};
	struct ts_xfrm_expect_policy pol[2] = { 0 };
	struct ts_xfrm_expect ex[2] = { 0 };
	struct ts_xfrm_match_result res;

	strcpy(ex[0].name, "t1");
	ts_ip_parse("192.0.2.1", &ex[0].local);
	ts_ip_parse("192.0.2.2", &ex[0].remote);
	ex[0].has_if_id = true;
	ex[0].if_id = 7;
	ex[0].reqids = reqids;
	ex[0].n_reqids = 1;
	ex[0].spi_in = 0x2001;
	strcpy(ex[1].name, "t2");
	ts_ip_parse("::1", &ex[1].local);
	ts_ip_parse("::1", &ex[1].remote);
	ex[1].has_mark = true;
	ex[1].mark = marks[0];
	ts_prefix_parse("198.51.100.0/24", &pol[0].src);
	ts_prefix_parse("203.0.113.0/24", &pol[0].dst);
	pol[1] = pol[0];
	pol[1].dir = TS_XFRM_DIR_OUT;
	ex[1].policies = pol;
	ex[1].n_policies = 2;
	if (ts_xfrm_match(s, ex, 2, &owner, ev, n_ev, &res) == 0) {
		if (res.n_tunnels != 2)
			abort();
		ts_xfrm_match_result_done(&res);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ts_xfrm_sock *sock;
	static struct ts_xfrm_watch *watch;

	if (!sock && (ts_xfrm_sock_open(&sock) < 0 || ts_xfrm_watch_open(4096, &watch) < 0))
		abort();
	if (size == 0)
		return 0;
	mode = data[0];
	in = data + 1;
	in_len = size - 1;
	in_off = 0;
	next_seq = cur_seq = 0;
	eintr_pending = 0;
	if (mode & 1) {
		struct ts_xfrm_snapshot s;

		if (ts_xfrm_dump(sock, &s) == 0) {
			if (!s.complete || (s.n_sas && !s.sas) || (s.n_policies && !s.policies))
				abort();
			match(&s, NULL, 0);
			ts_xfrm_snapshot_done(&s);
		}
	} else {
		struct ts_xfrm_changes ch;
		struct ts_xfrm_snapshot empty = { .complete = true };

		if (ts_xfrm_watch_drain(watch, &ch) >= 0) {
			match(&empty, ch.events, ch.n_events);
			ts_xfrm_changes_done(&ch);
		}
	}
	return 0;
}
