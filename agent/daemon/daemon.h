/* The daemon (`tunnelsync run`): an event loop that never waits on a pass.
 * Passes run on a worker thread; the loop keeps handling signals, inotify
 * (config, and the VICI socket's folder), the agent's events, the systemd
 * watchdog and the HTTP board while one runs (agent/daemon/README.md).
 * Passes at start, on config changes, on drift events (at once when idle,
 * coalesced into one follow-up when a pass is running), on SIGHUP, when a
 * key falls due, and on the resync timer. Invalid config never replaces
 * the last good one; a revision whose agent cannot open (e.g. an unusable
 * state directory) does not either. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/timeutil.h"

struct ts_desired;

struct ts_daemon_options {
	const char *config;
	const char *models_dir; /* NULL: default lookup */
	const char *state_dir;	/* NULL: the config's */
	ts_usec_t debounce;	/* settle time after a config file event; 0: 100 ms */
	ts_usec_t retry;	/* pass again this soon while work is pending; 0: 30 s */
	ts_usec_t stop_grace;	/* SIGTERM: wait this long for a pass to stop; 0: 5 s */
};

/* What the loop learns from one pass. */
struct ts_daemon_pass {
	int error; /* < 0: the pass could not run */
	size_t n_actions;
	unsigned n_applied, n_pending, n_failed;
	bool planes_ok, changes;
	ts_usec_t next_due; /* wall clock; 0: none */
	/* A scoped pass planned and applied its tunnels first (false: full). */
	bool scoped;
	unsigned n_scoped_applied;
	/* The agent took the events read during the pass: settled, the state
	 * it left plans nothing; events_unsettled, some were read and it does
	 * not (the loop passes again at once). */
	bool settled, events_unsettled;
};

/* The agent as the loop sees it: the real one (ts_daemon_agent_ops) or a
 * test's fake. Every call but pass() is made on the loop's thread, and
 * never while a pass runs; pass() runs on the worker thread. */
struct ts_daemon_ops {
	/* Loads and validates the config; errors into errbuf (file:line). */
	int (*load)(void *ctx, const char *config, const char *models_dir,
		    struct ts_desired **ret_desired, char *errbuf, size_t errsize);
	int (*open)(void *ctx, const struct ts_desired *desired, const char *state_dir,
		    void **ret_agent);
	void (*close)(void *ctx, void *agent);
	/* What a reload carries from the old agent to the new one (counters,
	 * the API client's budget and holds): taken before the old one
	 * closes, given to the next one opened (which frees it). */
	void *(*carry_take)(void *ctx, void *agent);
	void (*carry_give)(void *ctx, void *agent, void *carry);
	/* names (n > 0): a scoped pass, those tunnels first (and their
	 * redundancy groups), then the whole gateway; NULL: a full pass. */
	int (*pass)(void *ctx, void *agent, const char *const *names, size_t n,
		    struct ts_daemon_pass *ret_pass);
	void (*fds)(void *ctx, void *agent, int *ret_ike_fd, int *ret_xfrm_fd);
	/* 1: something a pass should look at happened. */
	int (*process_events)(void *ctx, void *agent);
	/* After process_events said 1: the tunnels those events name (1, the
	 * caller frees each name and the array) or 0 (a full pass: charon
	 * restarted, an XFRM resync, an object of no tunnel). NULL: full. */
	int (*event_scope)(void *ctx, void *agent, char ***ret_names, size_t *ret_n);
	int (*metrics)(void *ctx, void *agent, char **ret_text);
	/* true when ready; else why into buf. */
	bool (*ready)(void *ctx, void *agent, char *buf, size_t size);
	/* After a pass: none is scheduled for quiet (usec; events may still
	 * start one sooner). NULL: nothing to do. */
	void (*idle)(void *ctx, void *agent, ts_usec_t quiet);
};

extern const struct ts_daemon_ops ts_daemon_agent_ops;

/* Runs until SIGTERM or SIGINT (0), or a fatal error (-errno): no valid
 * config at start, or its agent cannot open. */
int ts_daemon_run(const struct ts_daemon_options *options);
int ts_daemon_run_with(const struct ts_daemon_options *options, const struct ts_daemon_ops *ops,
		       void *ctx);
