/* Fuzz target for the XFRM netlink message parser (agent/xfrm/parse.c):
 * the input is read as a datagram of netlink messages, as a watch socket
 * would receive it, and each message is parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/netlink.h>

#include "xfrm/xfrm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (size - off >= NLMSG_HDRLEN) {
		struct ts_xfrm_event ev;
		enum ts_xfrm_resync rs;
		struct nlmsghdr h;
		size_t step;

		/* The parser must cope with any length the header claims. */
		(void)ts_xfrm_parse_msg(data + off, size - off, &ev, &rs);
		memcpy(&h, data + off, sizeof(h));
		/* In size_t: NLMSG_ALIGN of a length near 2^32 wraps to 0. */
		step = ((size_t)h.nlmsg_len + NLMSG_ALIGNTO - 1) & ~(size_t)(NLMSG_ALIGNTO - 1);
		if (h.nlmsg_len < NLMSG_HDRLEN || step > size - off)
			break;
		off += step;
	}
	return 0;
}
