/* What the running charon will do on a reauthentication: reads the
 * strongswan.conf tree charon loads (the file and every include, as
 * strongSwan's own parser reads it) for charon.make_before_break, and
 * weighs it against the daemon's version and start time (VICI). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/timeutil.h"

struct ts_vici_client;

/* One setting as the file tree defines it: the last definition wins, as in
 * strongSwan. newest_* name the most recently modified file read, so that a
 * caller can tell a file changed after charon read it. */
struct ts_swconf_value {
	bool found;
	char value[256];
	char file[PATH_MAX];
	unsigned line;
	unsigned n_files;
	ts_usec_t newest_mtime; /* wall clock */
	char newest_file[PATH_MAX];
};

/* Looks KEY ("section.sub.key") up in the settings file PATH and its
 * includes (globs, relative to the including file; at most 10 deep).
 * 0 with ret->found false when the key is not set; -ENOENT when PATH is
 * missing; -EBADMSG on a syntax error (err: "file:line: what"). An include
 * that matches nothing or cannot be read is skipped, as charon does. */
int ts_swconf_get(const char *path, const char *key, struct ts_swconf_value *ret, char *err,
		  size_t err_size);

/* strongSwan's boolean values: 1/yes/true/enabled, 0/no/false/disabled
 * (any case). 1 true, 0 false, -EINVAL other. */
int ts_swconf_bool(const char *value);

enum ts_mbb_state {
	TS_MBB_UNKNOWN,	   /* the settings could not be read */
	TS_MBB_ON,	   /* set (or the default) and in force since charon started */
	TS_MBB_OFF,	   /* off: every reauthentication is break-before-make */
	TS_MBB_UNVERIFIED, /* set to yes, but the file changed after charon started */
	_TS_MBB_MAX,
};
extern const char *const ts_mbb_state_names[_TS_MBB_MAX];
const char *ts_mbb_state_to_string(enum ts_mbb_state s);

struct ts_mbb_check {
	enum ts_mbb_state state;
	char reason[1024];
};

/* Decides from what was read (pure, for tests). daemon_key: the daemon's
 * own section (e.g. "charon-systemd.make_before_break", may be NULL or
 * not found), charon_key: "charon.make_before_break" (its fallback);
 * version: the daemon's version ("5.9.8"; 6.0 and later default to yes);
 * started: when charon started (wall clock, 0 unknown). read_r: what
 * ts_swconf_get returned (< 0: the tree could not be read). */
void ts_mbb_decide(int read_r, const char *read_err, const char *conf_path,
		   const struct ts_swconf_value *daemon_key,
		   const struct ts_swconf_value *charon_key, const char *daemon_name,
		   const char *version, ts_usec_t started, struct ts_mbb_check *ret);

/* The whole check against a running charon: version and daemon name
 * (VICI version), start time (VICI stats), the settings in conf_path. */
int ts_mbb_check(struct ts_vici_client *c, const char *conf_path, struct ts_mbb_check *ret);
