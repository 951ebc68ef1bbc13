/* The kernel plane: reads XFRM SAs and policies over netlink into the
 * plain structs of model/xfrm.h, watches the kernel's XFRM events, matches
 * what it sees to declared tunnels, and deletes objects the agent owns.
 *
 * Sockets are opened in the calling thread's network namespace at the
 * time of the call; setns() first to work in another one. Key material is
 * never copied out of the kernel's messages, and every receive buffer that
 * held one is wiped before it is reused or freed.
 *
 * Start-up order that loses no event: ts_xfrm_start() (watch socket
 * subscribed, then a full dump), then poll ts_xfrm_watch_fd() and call
 * ts_xfrm_watch_drain(); on a resync request, ts_xfrm_dump() again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/xfrm.h"

/* A request socket: dumps, lookups and deletes. */
struct ts_xfrm_sock;

int ts_xfrm_sock_open(struct ts_xfrm_sock **ret_sock);
void ts_xfrm_sock_free(struct ts_xfrm_sock *sock);

/* Times a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is
 * started again before ts_xfrm_dump() gives up with -EAGAIN. */
#define TS_XFRM_DUMP_RETRIES 5

/* Dumps all SAs and policies (per-socket policies skipped) into
 * *ret_snapshot, which the caller releases with ts_xfrm_snapshot_done().
 * -EAGAIN: every attempt was interrupted; nothing is returned, because an
 * incomplete view must never lead to a deletion. */
int ts_xfrm_dump(struct ts_xfrm_sock *sock, struct ts_xfrm_snapshot *ret_snapshot);
int ts_xfrm_dump_sas(struct ts_xfrm_sock *sock, struct ts_xfrm_sa **ret_sas, size_t *ret_n);
int ts_xfrm_dump_policies(struct ts_xfrm_sock *sock, struct ts_xfrm_policy **ret_policies,
			  size_t *ret_n);
/* Frees what the snapshot owns and zeroes it; accepts NULL. */
void ts_xfrm_snapshot_done(struct ts_xfrm_snapshot *snapshot);

/* The event socket. */
struct ts_xfrm_watch;

/* Default receive buffer of a watch socket (SO_RCVBUFFORCE when allowed). */
#define TS_XFRM_WATCH_RCVBUF (8u << 20)

/* Opens a non-blocking, close-on-exec socket subscribed to the SA, policy,
 * expire and acquire groups. rcvbuf 0 = TS_XFRM_WATCH_RCVBUF. */
int ts_xfrm_watch_open(size_t rcvbuf, struct ts_xfrm_watch **ret_watch);
void ts_xfrm_watch_free(struct ts_xfrm_watch *watch);
/* For poll/epoll (readable = events pending). Owned by the watch. */
int ts_xfrm_watch_fd(const struct ts_xfrm_watch *watch);
/* Reads every pending message without blocking. *ret_changes (released
 * with ts_xfrm_changes_done) lists the events in arrival order and says
 * whether a full resync is needed (flush, ENOBUFS, unknown or bad
 * message). Returns the number of events. */
int ts_xfrm_watch_drain(struct ts_xfrm_watch *watch, struct ts_xfrm_changes *ret_changes);
void ts_xfrm_changes_done(struct ts_xfrm_changes *changes);

/* Opens a watch, subscribes, then dumps through sock: any change after the
 * dump's start is also in the watch's queue. On failure nothing is
 * returned (and the watch is closed). */
int ts_xfrm_start(struct ts_xfrm_sock *sock, size_t rcvbuf, struct ts_xfrm_watch **ret_watch,
		  struct ts_xfrm_snapshot *ret_snapshot);

/* Ownership, per the rules documented at struct ts_xfrm_owner. */
bool ts_xfrm_sa_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_sa *sa);
bool ts_xfrm_policy_owned(const struct ts_xfrm_owner *owner, const struct ts_xfrm_policy *pol);
/* -EINVAL when the spec is malformed (reqid range reversed or starting at 0,
 * a mark with mask 0, if_id 0). */
int ts_xfrm_owner_validate(const struct ts_xfrm_owner *owner);

/* Per-tunnel kernel status and stale owned objects. events (may be NULL)
 * are those drained since the snapshot: expiries are reported per tunnel
 * and an SA hard-expired since is not alive. */
int ts_xfrm_match(const struct ts_xfrm_snapshot *snapshot, const struct ts_xfrm_expect *expect,
		  size_t n_expect, const struct ts_xfrm_owner *owner,
		  const struct ts_xfrm_event *events, size_t n_events,
		  struct ts_xfrm_match_result *ret_result);
void ts_xfrm_match_result_done(struct ts_xfrm_match_result *result);
/* Whether an SA / policy belongs to a tunnel expectation (endpoints and
 * the identifiers the expectation declares). */
bool ts_xfrm_expect_claims_sa(const struct ts_xfrm_expect *e, const struct ts_xfrm_sa *sa);
bool ts_xfrm_expect_claims_policy(const struct ts_xfrm_expect *e, const struct ts_xfrm_policy *pol);

/* Deletes the SA identified by (dst, spi, proto, mark) of sa. The kernel's
 * current copy is read first and must be owned: -EPERM (nothing deleted)
 * for a foreign SA, -ENOENT when there is none. */
int ts_xfrm_sa_delete(struct ts_xfrm_sock *sock, const struct ts_xfrm_owner *owner,
		      const struct ts_xfrm_sa *sa);
/* Deletes the policy identified by index (when ≠ 0) or by (selector, dir),
 * with its mark and if_id. Same ownership check and errors. */
int ts_xfrm_policy_delete(struct ts_xfrm_sock *sock, const struct ts_xfrm_owner *owner,
			  const struct ts_xfrm_policy *pol);
/* Reads one SA / policy from the kernel by the same identities. */
int ts_xfrm_sa_get(struct ts_xfrm_sock *sock, const struct ts_xfrm_sa *id,
		   struct ts_xfrm_sa *ret_sa);
int ts_xfrm_policy_get(struct ts_xfrm_sock *sock, const struct ts_xfrm_policy *id,
		       struct ts_xfrm_policy *ret_policy);

/* Parses one netlink message of the XFRM family (a dump reply or a
 * notification) from buf. Returns 1 and fills *ret_event for an SA,
 * policy, expire or acquire message; 0 for a message that carries no
 * object (ret_resync says whether it asks for a resync: flushes and
 * unknown types do); -EBADMSG for a malformed one. Per-socket policies
 * return 0 without resync. Never keeps a reference to buf. */
int ts_xfrm_parse_msg(const void *buf, size_t len, struct ts_xfrm_event *ret_event,
		      enum ts_xfrm_resync *ret_resync);

extern const char *const ts_xfrm_mode_names[_TS_XFRM_MODE_MAX];
extern const char *const ts_xfrm_dir_names[_TS_XFRM_DIR_MAX];
extern const char *const ts_xfrm_event_type_names[_TS_XFRM_EVENT_MAX];
extern const char *const ts_xfrm_resync_names[_TS_XFRM_RESYNC_MAX];
extern const char *const ts_xfrm_object_kind_names[_TS_XFRM_OBJECT_MAX];
const char *ts_xfrm_mode_to_string(enum ts_xfrm_mode m);
const char *ts_xfrm_dir_to_string(enum ts_xfrm_dir d);
const char *ts_xfrm_event_type_to_string(enum ts_xfrm_event_type t);
const char *ts_xfrm_resync_to_string(enum ts_xfrm_resync r);
const char *ts_xfrm_object_kind_to_string(enum ts_xfrm_object_kind k);
