/* Owns the agent's handles on every plane and the pass: observe, plan,
 * apply, record. */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "xfrm/xfrm.h"

#define VICI_TIMEOUT_MS 10000

struct ts_agent_tunnel_memory *ts_agent_memory(struct ts_agent *a, const char *tunnel)
{
	for (size_t i = 0; i < a->n_memory; i++)
		if (strcmp(a->memory[i].name, tunnel) == 0)
			return &a->memory[i];
	return NULL;
}

static void on_event(void *userdata, const char *event, const struct ts_vici_node *body)
{
	struct ts_agent *a = userdata;
	struct ts_ike_event ev;

	if (ts_ike_event_parse(event, body, &ev) < 0)
		return;
	ts_ike_monitor_feed(a->monitor, &ev, ts_now_realtime());
	if (ev.kind == TS_IKE_EVENT_AUTH_FAILED) {
		size_t plen = strlen(TS_IKE_CONN_PREFIX);

		if (strncmp(ev.conn, TS_IKE_CONN_PREFIX, plen) == 0)
			ts_logf(TS_LOG_WARN, "ike", ev.conn + plen,
				"authentication failed (key mismatch?)");
	}
}

void ts_agent_drain_events(struct ts_agent *a)
{
	int r;

	if (!a->events)
		return;
	r = ts_vici_events_connect(a->events);
	if (r < 0)
		return;
	if (r == 1) /* charon restarted: it read its settings again */
		ts_agent_recheck_mbb(a);
	r = ts_vici_events_drain(a->events, on_event, a);
	if (r == -ECONNRESET || r == -EBADMSG) {
		ts_agent_recheck_mbb(a);
		(void)ts_vici_events_connect(a->events);
	}
	if (a->log_events && ts_vici_events_connect(a->log_events) >= 0)
		(void)ts_vici_events_drain(a->log_events, on_event, a);
}

int ts_agent_open(const struct ts_desired *desired, const struct ts_agent_options *options,
		  struct ts_agent **ret_agent)
{
	struct ts_agent *a;
	struct ts_cf_error err = { 0 };
	pid_t holder = 0;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->desired = desired;
	if (options)
		a->options = *options;
	a->state_dir =
		strdup(a->options.state_dir ? a->options.state_dir : desired->agent.state_dir);
	if (!a->state_dir) {
		r = -ENOMEM;
		goto fail;
	}
	a->options.state_dir = a->state_dir;
	a->n_memory = desired->n_tunnels;
	a->memory = calloc(a->n_memory ? a->n_memory : 1, sizeof(*a->memory));
	if (!a->memory) {
		r = -ENOMEM;
		goto fail;
	}
	a->metrics = calloc(a->n_memory ? a->n_memory : 1, sizeof(*a->metrics));
	if (!a->metrics) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < a->n_memory; i++)
		snprintf(a->memory[i].name, sizeof(a->memory[i].name), "%s",
			 desired->tunnels[i].name);

	/* A dry run changes nothing local either: not even the directory. */
	if (a->options.readonly || a->options.dry_run) {
		r = ts_store_open_readonly(a->state_dir, &a->store);
		if (r == -ENOENT) {
			/* Nothing recorded yet: every tunnel reads as "no record". */
			a->store = NULL;
		} else if (r < 0) {
			ts_logf(TS_LOG_ERROR, "store", NULL, "%s", ts_store_open_error());
			goto fail;
		}
	} else {
		r = ts_store_open(a->state_dir, &a->store, &holder);
		if (r == -EBUSY) {
			ts_logf(TS_LOG_ERROR, "store", NULL,
				"state directory %s is in use by another agent (pid %d)",
				a->state_dir, (int)holder);
			goto fail;
		}
		if (r < 0) {
			ts_logf(TS_LOG_ERROR, "store", NULL, "%s", ts_store_open_error());
			goto fail;
		}
	}
	/* plan reads the failure counts too, so that it shows what once does. */
	(void)ts_agent_status_load_memory(a);

	if (a->options.cf_options)
		a->cf_options = *a->options.cf_options;
	a->cf_options.on_request = ts_agent_count_request;
	a->cf_options.on_request_userdata = a;
	r = ts_cf_client_new(&desired->cloudflare, &a->cf_options, &a->cf, &err);
	if (r < 0) {
		ts_cf_error_format(&err, a->cf_error, sizeof(a->cf_error));
		ts_logf(TS_LOG_ERROR, "cloudflare", NULL, "cannot set up the API client: %s",
			a->cf_error);
		a->cf = NULL;
	}
	ts_cf_error_done(&err);
	/* Retry-After, backoff and budget from earlier processes. */
	if (a->cf)
		(void)ts_agent_api_state_load(a);

	r = ts_ike_monitor_new(&a->monitor);
	if (r < 0)
		goto fail;
	r = ts_vici_client_new(desired->agent.vici_socket, VICI_TIMEOUT_MS, &a->vici);
	if (r < 0)
		goto fail;
	/* No "log" here: ts_agent_want_log() adds it only while needed. */
	r = ts_vici_events_new(desired->agent.vici_socket, ts_vici_state_events,
			       TS_ARRAY_SIZE(ts_vici_state_events), VICI_TIMEOUT_MS, &a->events);
	if (r < 0)
		a->events = NULL;

	if (desired->agent.kernel_xfrm) {
		r = ts_xfrm_sock_open(&a->xfrm);
		if (r < 0) {
			ts_logf(TS_LOG_WARN, "kernel", NULL,
				"cannot open an XFRM netlink socket: %s", strerror(-r));
			a->xfrm = NULL;
		}
		/* Subscribed now, before any pass dumps: no change is missed. */
		if (a->xfrm && a->options.watch && (r = ts_xfrm_watch_open(0, &a->watch)) < 0) {
			ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot watch XFRM events: %s",
				strerror(-r));
			a->watch = NULL;
		}
	}
	r = ts_agent_build_owner(a);
	if (r < 0)
		goto fail;
	*ret_agent = a;
	return 0;
fail:
	ts_agent_free(a);
	return r;
}

void ts_agent_free(struct ts_agent *a)
{
	if (!a)
		return;
	ts_xfrm_watch_free(a->watch);
	ts_xfrm_sock_free(a->xfrm);
	ts_vici_events_free(a->events);
	ts_vici_events_free(a->log_events);
	ts_vici_client_free(a->vici);
	ts_ike_monitor_free(a->monitor);
	ts_cf_client_free(a->cf);
	ts_store_close(a->store);
	free(a->owner_if_ids);
	free(a->owner_marks);
	free(a->memory);
	free(a->metrics);
	free(a->state_dir);
	free(a);
}

void ts_pass_result_done(struct ts_pass_result *r)
{
	if (!r)
		return;
	ts_plan_free(r->plan);
	memset(r, 0, sizeof(*r));
}

/* Failures the pass's own initiations and reauthentications met (after
 * observe) go into the memory the status file carries, so that a run of
 * one-shot `once` passes still reaches the authentication-failure
 * threshold. Same sum as observe: base from the file + this process's. */
static void fold_failures(struct ts_agent *a)
{
	const struct ts_desired *d = a->desired;

	ts_agent_drain_events(a);
	for (size_t i = 0; i < d->n_tunnels; i++) {
		struct ts_agent_tunnel_memory *mem = ts_agent_memory(a, d->tunnels[i].name);
		struct ts_ike_failures f;
		char conn[TS_IKE_CONN_NAME_MAX];

		if (!mem || ts_ike_conn_name(&d->tunnels[i], conn, sizeof(conn)) < 0)
			continue;
		ts_ike_monitor_get(a->monitor, conn, &f);
		if (f.auth_failures == 0)
			continue;
		mem->auth_failures = mem->auth_failures_base + f.auth_failures;
		if (f.last_auth_failure > mem->last_auth_failure)
			mem->last_auth_failure = f.last_auth_failure;
	}
}

int ts_agent_pass(struct ts_agent *a, const char *const *forced, size_t n_forced,
		  struct ts_pass_result *ret_result)
{
	struct ts_observation o;
	struct ts_pass_result result = { 0 };
	struct ts_plan_input in;
	ts_usec_t started = ts_now_monotonic();
	int r;

	ts_agent_check_mbb(a);
	r = ts_agent_observe(a, &o, NULL);
	if (r < 0) {
		ts_observation_done(&o);
		return r;
	}
	result.planes_ok = o.cf_ok && o.ike_ok && o.kernel_ok && o.store_ok;
	a->next_due = 0;
	for (size_t i = 0; o.store && i < a->desired->n_tunnels; i++) {
		const struct ts_tunnel *t = &a->desired->tunnels[i];
		const struct ts_key_record *rec = ts_store_state_record(o.store, t->name);
		ts_usec_t due;

		if (!rec || !t->psk.max_age || !rec->applied_at)
			continue;
		due = rec->applied_at + (ts_usec_t)t->psk.max_age * TS_USEC_PER_SEC;
		if (!a->next_due || due < a->next_due)
			a->next_due = due;
	}
	in = (struct ts_plan_input){
		.desired = a->desired,
		.observed = &o.observed,
		.now = ts_now_realtime(),
		.api_budget = a->cf ? ts_cf_client_budget_available(a->cf) : 0,
		.forced = forced,
		.n_forced = n_forced,
	};
	r = ts_plan_compute(&in, &result.plan);
	if (r < 0) {
		ts_observation_done(&o);
		return r;
	}
	if (!a->options.readonly) {
		ts_agent_want_log(a, ts_agent_log_needed(&o, result.plan));
		r = ts_agent_apply(a, &o, result.plan, &result);
		if (r < 0)
			ts_logf(TS_LOG_ERROR, NULL, NULL, "apply stopped: %s", strerror(-r));
		if (!a->options.dry_run)
			fold_failures(a);
		if (!a->options.dry_run && result.n_applied > 0) {
			/* Record the state the pass left, not the one it found. */
			struct ts_observation after;

			if (ts_agent_observe(a, &after, &o) == 0)
				(void)ts_agent_status_write(a, &after, &result);
			ts_observation_done(&after);
		} else if (!a->options.dry_run) {
			(void)ts_agent_status_write(a, &o, &result);
		}
	}
	ts_observation_done(&o);
	a->passes++;
	a->last_pass = ts_now_realtime();
	a->last_pass_duration = ts_now_monotonic() - started;
	ts_agent_count_pass(a, a->last_pass_duration);
	if (!a->options.readonly && !a->options.dry_run && a->cf)
		(void)ts_agent_api_state_save(a);
	a->last_pending = result.n_pending;
	a->last_failed = result.n_failed;
	if (result.planes_ok && !result.n_failed) {
		a->passes_ok++;
		a->last_pass_ok = a->last_pass;
	}
	*ret_result = result;
	return 0;
}

void ts_agent_fds(struct ts_agent *a, int *ret_ike_fd, int *ret_xfrm_fd)
{
	*ret_ike_fd = a->events ? ts_vici_events_fd(a->events) : -1;
	*ret_xfrm_fd = a->watch ? ts_xfrm_watch_fd(a->watch) : -1;
}

struct event_scan {
	struct ts_agent *a;
	bool relevant;
};

static void on_event_scan(void *userdata, const char *event, const struct ts_vici_node *body)
{
	struct event_scan *sc = userdata;

	on_event(sc->a, event, body);
	/* SAs coming and going matter; log lines only feed the counters. */
	if (strcmp(event, "log") != 0)
		sc->relevant = true;
}

static bool xfrm_event_owned(const struct ts_agent *a, const struct ts_xfrm_event *ev)
{
	switch (ev->type) {
	case TS_XFRM_EVENT_SA_NEW:
	case TS_XFRM_EVENT_SA_UPD:
	case TS_XFRM_EVENT_SA_DEL:
	case TS_XFRM_EVENT_SA_EXPIRE_SOFT:
	case TS_XFRM_EVENT_SA_EXPIRE_HARD:
		return ts_xfrm_sa_owned(&a->owner, &ev->sa);
	case TS_XFRM_EVENT_ACQUIRE:
		return ts_xfrm_policy_owned(&a->owner, &ev->acquire.policy);
	default:
		return ts_xfrm_policy_owned(&a->owner, &ev->policy);
	}
}

int ts_agent_process_events(struct ts_agent *a)
{
	struct event_scan sc = { a, false };
	int r;

	if (a->events) {
		r = ts_vici_events_connect(a->events);
		if (r == 1) {
			ts_logf(TS_LOG_WARN, "ike", NULL,
				"reconnected to the IKE daemon: it restarted and forgot our keys");
			ts_agent_recheck_mbb(a);
			sc.relevant = true;
		} else if (r == 2) {
			sc.relevant = true;
		}
		if (r >= 0) {
			r = ts_vici_events_drain(a->events, on_event_scan, &sc);
			if (r == -ECONNRESET || r == -EBADMSG) {
				ts_logf(TS_LOG_WARN, "ike", NULL,
					"lost the IKE daemon's event stream");
				ts_agent_recheck_mbb(a);
				sc.relevant = true;
			}
		}
	}
	if (a->watch) {
		struct ts_xfrm_changes ch = { 0 };

		r = ts_xfrm_watch_drain(a->watch, &ch);
		/* Only the agent's own objects (struct ts_xfrm_owner) ask for a
		 * pass: another IKE daemon's or an operator's SAs do not. */
		for (size_t i = 0; r > 0 && i < ch.n_events; i++)
			if (xfrm_event_owned(a, &ch.events[i]))
				sc.relevant = true;
		if (ch.resync != TS_XFRM_RESYNC_NONE)
			sc.relevant = true;
		if (ch.resync != TS_XFRM_RESYNC_NONE)
			ts_logf(TS_LOG_DEBUG, "kernel", NULL, "XFRM events ask for a resync (%s)",
				ts_xfrm_resync_to_string(ch.resync));
		ts_xfrm_changes_done(&ch);
	}
	return sc.relevant ? 1 : 0;
}

ts_usec_t ts_agent_next_due(const struct ts_agent *a)
{
	return a->next_due;
}
