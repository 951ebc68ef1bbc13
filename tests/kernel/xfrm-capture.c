/* Fixture recorder (test tool, not part of the agent): writes raw XFRM
 * netlink messages to files, one message per file, exactly as the kernel
 * sent them. Deliberately independent of agent/xfrm (plain sockets, no
 * libnl) so that the fixtures do not inherit our parser's assumptions.
 *
 *   xfrm-capture dump-sa PREFIX       XFRM_MSG_GETSA dump → PREFIX-NN.bin
 *   xfrm-capture dump-policy PREFIX   XFRM_MSG_GETPOLICY dump
 *   xfrm-capture events PREFIX READY SECONDS COUNT
 *        subscribes to the SA, policy, expire groups, creates the file
 *        READY, then records up to COUNT notifications for SECONDS, named
 *        PREFIX-NN-<type>.bin. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char buf[65536];

static int write_msg(const char *prefix, int n, const char *tag, const struct nlmsghdr *h)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s-%02d%s%s.bin", prefix, n, tag ? "-" : "", tag ? tag : "");
	f = fopen(path, "wb");
	if (!f || fwrite(h, 1, h->nlmsg_len, f) != h->nlmsg_len || fclose(f) != 0) {
		perror(path);
		return -1;
	}
	printf("wrote %s (%u bytes)\n", path, h->nlmsg_len);
	return 0;
}

static const char *type_name(int t)
{
	switch (t) {
	case XFRM_MSG_NEWSA:
		return "newsa";
	case XFRM_MSG_UPDSA:
		return "updsa";
	case XFRM_MSG_DELSA:
		return "delsa";
	case XFRM_MSG_EXPIRE:
		return "expire";
	case XFRM_MSG_NEWPOLICY:
		return "newpolicy";
	case XFRM_MSG_UPDPOLICY:
		return "updpolicy";
	case XFRM_MSG_DELPOLICY:
		return "delpolicy";
	case XFRM_MSG_POLEXPIRE:
		return "polexpire";
	case XFRM_MSG_FLUSHSA:
		return "flushsa";
	case XFRM_MSG_FLUSHPOLICY:
		return "flushpolicy";
	case XFRM_MSG_ACQUIRE:
		return "acquire";
	default:
		return "other";
	}
}

static int dump(int type, const char *prefix)
{
	struct {
		struct nlmsghdr h;
		char pad[4];
	} req = { 0 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM), n = 0;

	if (fd < 0)
		return perror("socket"), 1;
	req.h.nlmsg_len = NLMSG_HDRLEN;
	req.h.nlmsg_type = (unsigned short)type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return perror("send"), 1;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		int left = (int)len;

		if (len < 0)
			return perror("recv"), 1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return close(fd), 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return fprintf(stderr, "dump error\n"), 1;
			if (write_msg(prefix, n++, NULL, h) < 0)
				return 1;
		}
	}
}

static int events(const char *prefix, const char *ready, int seconds, int count)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM), n = 0;
	time_t end = time(NULL) + seconds;
	FILE *f;

	if (fd < 0)
		return perror("socket"), 1;
	sa.nl_groups = XFRMGRP_SA | XFRMGRP_POLICY | XFRMGRP_EXPIRE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return perror("bind"), 1;
	f = fopen(ready, "w");
	if (!f || fclose(f) != 0)
		return perror(ready), 1;
	while (n < count && time(NULL) < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t len;
		int left;

		if (poll(&p, 1, 200) <= 0)
			continue;
		len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0)
			return perror("recv"), 1;
		left = (int)len;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left) && n < count;
		     h = NLMSG_NEXT(h, left))
			if (write_msg(prefix, n++, type_name(h->nlmsg_type), h) < 0)
				return 1;
	}
	close(fd);
	return n == count ? 0 : (fprintf(stderr, "only %d of %d events\n", n, count), 1);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "dump-sa") == 0)
		return dump(XFRM_MSG_GETSA, argv[2]);
	if (argc == 3 && strcmp(argv[1], "dump-policy") == 0)
		return dump(XFRM_MSG_GETPOLICY, argv[2]);
	if (argc == 6 && strcmp(argv[1], "events") == 0)
		return events(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr,
		"usage: xfrm-capture dump-sa|dump-policy PREFIX | events PREFIX READY SECONDS COUNT\n");
	return 2;
}
