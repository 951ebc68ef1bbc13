/* The daemon (`tunnelsync run`): passes at start, on config changes
 * (inotify, including git-sync's symlink swap), on XFRM and IKE events
 * (debounced), on SIGHUP, when a key falls due, and on the resync timer.
 * Invalid config never replaces the last good one. */
#pragma once

#include "core/timeutil.h"

struct ts_daemon_options {
	const char *config;
	const char *models_dir; /* NULL: default lookup */
	const char *state_dir;	/* NULL: the config's */
	ts_usec_t debounce;	/* quiet time after an event; 0: 1 s */
	ts_usec_t retry;	/* pass again this soon while work is pending; 0: 30 s */
};

/* Runs until SIGTERM or SIGINT (0), or a fatal error (-errno): no valid
 * config at start, state directory held by another agent. */
int ts_daemon_run(const struct ts_daemon_options *options);
