/* What the agent last loaded into the IKE daemon for each tunnel: the
 * rendered connection's leaves (model/ike.h), so that the leaves charon's
 * list-conns does not report (proposals, if_id, marks, replay window, ...)
 * can still be diffed against the declared state (agent/ike/README.md).
 *
 * Layout: STATE_DIR/conns/NAME.conn (0600, directory 0700), replaced
 * atomically after every successful load-conn. No secret is in it. Format
 * (version 1): a header line, "tunnel=NAME", "fingerprint=sha256:…" (over
 * the leaves), one "LEAF=VALUE" line per leaf, then "sha256=HEX64" over
 * every byte before it. A missing, torn or corrupt file only means "not
 * known": the connection is reloaded (a no-op in charon when equal), no
 * key is involved. */
#pragma once

#include "core/timeutil.h"
#include "model/ike.h"

#define TS_CONN_RECORD_DIR "conns"

/* -ENOENT: no record; -EBADMSG: unusable (corrupt, wrong tunnel, bad
 * format). Leaves absent from the file stay NULL (unknown). */
int ts_conn_record_read(const char *state_dir, const char *tunnel, struct ts_ike_leaves *ret_leaves,
			char ret_fingerprint[TS_FINGERPRINT_LEN]);
/* Creates STATE_DIR/conns when needed; -EINVAL for a value with a newline
 * or a tunnel name that is no file name. */
int ts_conn_record_write(const char *state_dir, const char *tunnel,
			 const struct ts_ike_leaves *leaves);
/* Missing is not an error (the failing mark goes too). */
int ts_conn_record_remove(const char *state_dir, const char *tunnel);

/* STATE_DIR/conns/NAME.failing: since when an update's new SAs have not
 * come up (wall clock, microseconds), so that a later pass, in this or
 * another process, can fall back to break-before-make. -ENOENT: none (an
 * unreadable mark counts as none). since 0 removes the mark. */
int ts_conn_record_failing_read(const char *state_dir, const char *tunnel, ts_usec_t *ret_since);
int ts_conn_record_failing_write(const char *state_dir, const char *tunnel, ts_usec_t since);
