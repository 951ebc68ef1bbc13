/* Owns the Prometheus exposition of the agent's figures. Names follow the
 * conventions: one prefix, base units, _total for counters, _info for
 * build metadata. No key material, only fingerprints' absence or presence. */
#include "reconcile/agent_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/util.h"
#include "reconcile/plan.h"
#include "version.h"

static const char *const rotation_results[TS_AGENT_ROTATION_RESULTS] = { "committed", "pending",
									 "failed" };

struct text {
	char *buf;
	size_t len, cap;
	int error;
};

static void emit(struct text *t, const char *fmt, ...) TS_PRINTF(2, 3);
static void emit(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->error)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->error = -EINVAL;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		char *p = realloc(t->buf, t->cap * 2 + (size_t)n);

		if (!p) {
			t->error = -ENOMEM;
			return;
		}
		t->buf = p;
		t->cap = t->cap * 2 + (size_t)n;
	}
	t->len += (size_t)n;
}

static void help(struct text *t, const char *name, const char *type, const char *what)
{
	emit(t, "# HELP %s %s\n# TYPE %s %s\n", name, what, name, type);
}

static double seconds(ts_usec_t t)
{
	return (double)t / TS_USEC_PER_SEC;
}

int ts_agent_metrics_text(const struct ts_agent *a, char **ret_text)
{
	const struct ts_desired *d = a->desired;
	struct text t = { malloc(4096), 0, 4096, 0 };
	ts_usec_t now = ts_now_realtime();

	if (!t.buf)
		return -ENOMEM;
	help(&t, "tunnelsync_build_info", "gauge", "Build information (always 1).");
	emit(&t, "tunnelsync_build_info{version=\"%s\"} 1\n", TUNNELSYNC_VERSION);
	help(&t, "tunnelsync_info", "gauge",
	     "Build information (old name of tunnelsync_build_info).");
	emit(&t, "tunnelsync_info{version=\"%s\"} 1\n", TUNNELSYNC_VERSION);
	help(&t, "tunnelsync_tunnel_info", "gauge",
	     "Declared tunnels: Cloudflare id, redundancy group, key source (always 1).");
	for (size_t i = 0; i < d->n_tunnels; i++)
		emit(&t,
		     "tunnelsync_tunnel_info{tunnel=\"%s\",id=\"%s\",group=\"%s\",source=\"%s\"} 1\n",
		     d->tunnels[i].name, d->tunnels[i].id, d->tunnels[i].redundancy_group,
		     ts_psk_source_to_string(d->tunnels[i].psk.source));
	help(&t, "tunnelsync_tunnel_up", "gauge",
	     "1 when the tunnel's IKE SA and CHILD SA are up (and its kernel SA pair, if checked).");
	for (size_t i = 0; i < d->n_tunnels; i++)
		emit(&t, "tunnelsync_tunnel_up{tunnel=\"%s\"} %d\n", d->tunnels[i].name,
		     a->metrics[i].up);
	help(&t, "tunnelsync_psk_age_seconds", "gauge", "Age of the tunnel's current key.");
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (a->metrics[i].has_key && a->metrics[i].key_applied_at)
			emit(&t, "tunnelsync_psk_age_seconds{tunnel=\"%s\"} %.0f\n",
			     d->tunnels[i].name, seconds(now - a->metrics[i].key_applied_at));
	help(&t, "tunnelsync_psk_generation", "gauge", "Keys the tunnel has had (1 = first).");
	for (size_t i = 0; i < d->n_tunnels; i++)
		emit(&t, "tunnelsync_psk_generation{tunnel=\"%s\"} %llu\n", d->tunnels[i].name,
		     (unsigned long long)a->metrics[i].key_generation);
	help(&t, "tunnelsync_auth_failures", "gauge",
	     "IKE authentication failures since the tunnel was last up.");
	for (size_t i = 0; i < d->n_tunnels; i++)
		emit(&t, "tunnelsync_auth_failures{tunnel=\"%s\"} %u\n", d->tunnels[i].name,
		     a->metrics[i].auth_failures);
	help(&t, "tunnelsync_make_before_break", "gauge",
	     "1 for the state charon's reauthentication is in (on: make-before-break; off, "
	     "unverified, unknown: rotations may drop traffic).");
	for (int s = 0; a->mbb_checked && s < _TS_MBB_MAX; s++)
		emit(&t, "tunnelsync_make_before_break{state=\"%s\"} %d\n",
		     ts_mbb_state_to_string((enum ts_mbb_state)s),
		     a->mbb.state == (enum ts_mbb_state)s);
	help(&t, "tunnelsync_store_problems", "gauge",
	     "Record or journal files the last pass could not use (Stalled until repaired).");
	emit(&t, "tunnelsync_store_problems %u\n", a->last_store_problems);
	help(&t, "tunnelsync_rotations_total", "counter",
	     "Key rotations by cause (reason) and outcome (committed, pending, failed).");
	for (int c = 0; c < _TS_CAUSE_MAX; c++)
		for (int res = 0; res < TS_AGENT_ROTATION_RESULTS; res++)
			if (a->counters.rotations[c][res])
				emit(&t,
				     "tunnelsync_rotations_total{reason=\"%s\",result=\"%s\"} %llu\n",
				     ts_plan_cause_to_string((enum ts_plan_cause)c),
				     rotation_results[res],
				     (unsigned long long)a->counters.rotations[c][res]);
	help(&t, "tunnelsync_rotations_committed_total", "counter", "Key rotations committed.");
	emit(&t, "tunnelsync_rotations_committed_total %u\n", a->rotations);
	help(&t, "tunnelsync_api_requests_total", "counter",
	     "Cloudflare API requests sent, by operation and HTTP status (0: no answer).");
	for (size_t i = 0; i < a->counters.n_api; i++)
		emit(&t, "tunnelsync_api_requests_total{operation=\"%s\",code=\"%ld\"} %llu\n",
		     a->counters.api[i].operation, a->counters.api[i].code,
		     (unsigned long long)a->counters.api[i].n);
	if (ts_agent_cf(a)) {
		struct ts_cf_client_state cs;

		ts_cf_client_state_get(ts_agent_cf(a), &cs);
		help(&t, "tunnelsync_api_rate_limited_until_timestamp_seconds", "gauge",
		     "No API request before this time (Cloudflare's Retry-After); 0: none.");
		emit(&t, "tunnelsync_api_rate_limited_until_timestamp_seconds %.0f\n",
		     cs.rate_limited ? seconds(cs.hold_until) : 0.0);
		help(&t, "tunnelsync_api_backoff_until_timestamp_seconds", "gauge",
		     "No API request before this time (backoff after failed calls); 0: none.");
		emit(&t, "tunnelsync_api_backoff_until_timestamp_seconds %.0f\n",
		     !cs.rate_limited ? seconds(cs.hold_until) : 0.0);
		help(&t, "tunnelsync_api_budget_available", "gauge",
		     "Requests the local budget allows now.");
		emit(&t, "tunnelsync_api_budget_available %u\n",
		     ts_cf_client_budget_available(ts_agent_cf(a)));
	}
	help(&t, "tunnelsync_api_errors_total", "counter", "Failed Cloudflare API calls.");
	emit(&t, "tunnelsync_api_errors_total %u\n", a->api_errors);
	help(&t, "tunnelsync_api_rate_limited_total", "counter",
	     "Cloudflare API calls answered 429 after retries.");
	emit(&t, "tunnelsync_api_rate_limited_total %u\n", a->api_429);
	help(&t, "tunnelsync_passes_total", "counter", "Reconciliation passes run.");
	emit(&t, "tunnelsync_passes_total %u\n", a->passes);
	help(&t, "tunnelsync_last_pass_timestamp_seconds", "gauge", "When the last pass ended.");
	emit(&t, "tunnelsync_last_pass_timestamp_seconds %.3f\n", seconds(a->last_pass));
	help(&t, "tunnelsync_last_successful_pass_timestamp_seconds", "gauge",
	     "When the last pass that read every plane and failed nothing ended.");
	emit(&t, "tunnelsync_last_successful_pass_timestamp_seconds %.3f\n",
	     seconds(a->last_pass_ok));
	help(&t, "tunnelsync_last_pass_duration_seconds", "gauge", "Duration of the last pass.");
	emit(&t, "tunnelsync_last_pass_duration_seconds %.6f\n", seconds(a->last_pass_duration));
	help(&t, "tunnelsync_pass_duration_seconds", "histogram", "Duration of passes.");
	{
		uint64_t cum = 0;

		for (size_t i = 0; i < TS_AGENT_PASS_BUCKETS; i++) {
			cum += a->counters.pass_bucket[i];
			emit(&t, "tunnelsync_pass_duration_seconds_bucket{le=\"%g\"} %llu\n",
			     ts_agent_pass_buckets[i], (unsigned long long)cum);
		}
		emit(&t, "tunnelsync_pass_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		     (unsigned long long)a->counters.pass_count);
		emit(&t, "tunnelsync_pass_duration_seconds_sum %.6f\n", a->counters.pass_sum);
		emit(&t, "tunnelsync_pass_duration_seconds_count %llu\n",
		     (unsigned long long)a->counters.pass_count);
	}
	help(&t, "tunnelsync_actions_pending", "gauge", "Actions the last pass left for later.");
	emit(&t, "tunnelsync_actions_pending %u\n", a->last_pending);
	if (t.error) {
		free(t.buf);
		return t.error;
	}
	*ret_text = t.buf;
	return 0;
}

bool ts_agent_ready(const struct ts_agent *a)
{
	return a->passes > 0 && a->last_pass_ok == a->last_pass && a->last_failed == 0 &&
	       a->last_store_problems == 0;
}

bool ts_agent_ready_reason(const struct ts_agent *a, char *buf, size_t size)
{
	struct ts_cf_client_state cs = { 0 };
	char until[40] = "";
	size_t n;

	buf[0] = '\0';
	if (ts_agent_cf(a))
		ts_cf_client_state_get(ts_agent_cf(a), &cs);
	if (cs.hold_until)
		(void)ts_time_format_rfc3339(cs.hold_until, until, sizeof(until));
	if (ts_agent_ready(a))
		return true;
	if (a->passes == 0)
		snprintf(buf, size, "no pass has completed yet");
	else if (a->last_store_problems)
		snprintf(buf, size,
			 "%u damaged state files (tunnelsync status; README, Repairing "
			 "the state directory)",
			 a->last_store_problems);
	else if (a->last_failed)
		snprintf(buf, size, "the last pass failed %u actions (tunnelsync status)",
			 a->last_failed);
	else
		snprintf(buf, size, "the last pass could not read every plane (tunnelsync status)");
	n = strlen(buf);
	if (cs.hold_until && n < size)
		snprintf(buf + n, size - n, "; %s until %s",
			 cs.rate_limited ? "rate-limited by Cloudflare" : "API backing off", until);
	return false;
}

const double ts_agent_pass_buckets[TS_AGENT_PASS_BUCKETS] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1,
							      2.5,  5,	  10,  30,   60,  120 };

void ts_agent_count_pass(struct ts_agent *a, ts_usec_t duration)
{
	double s = seconds(duration);

	for (size_t i = 0; i < TS_AGENT_PASS_BUCKETS; i++)
		if (s <= ts_agent_pass_buckets[i]) {
			a->counters.pass_bucket[i]++;
			break;
		}
	a->counters.pass_count++;
	a->counters.pass_sum += s;
}

void ts_agent_count_rotation(struct ts_agent *a, enum ts_plan_cause cause,
			     enum ts_agent_rotation_result result)
{
	if ((unsigned)cause < _TS_CAUSE_MAX && (unsigned)result < TS_AGENT_ROTATION_RESULTS)
		a->counters.rotations[cause][result]++;
}

void ts_agent_count_request(void *agent, const char *operation, long http_status)
{
	struct ts_agent_counters *c = &((struct ts_agent *)agent)->counters;
	size_t i;

	for (i = 0; i < c->n_api; i++)
		if (c->api[i].code == http_status && strcmp(c->api[i].operation, operation) == 0)
			break;
	if (i == c->n_api) {
		if (c->n_api == TS_ARRAY_SIZE(c->api))
			return; /* bounded label set: odd statuses beyond it are not counted */
		snprintf(c->api[i].operation, sizeof(c->api[i].operation), "%s", operation);
		c->api[i].code = http_status;
		c->n_api++;
	}
	c->api[i].n++;
}

struct ts_agent_carry {
	struct ts_agent_counters counters;
	unsigned api_errors, api_429, rotations, passes, passes_ok;
	ts_usec_t last_pass, last_pass_ok, last_pass_duration;
	bool has_cf;
	struct ts_cf_client_state cf;
};

struct ts_agent_carry *ts_agent_carry_take(const struct ts_agent *a)
{
	struct ts_agent_carry *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->counters = a->counters;
	c->api_errors = a->api_errors;
	c->api_429 = a->api_429;
	c->rotations = a->rotations;
	c->passes = a->passes;
	c->passes_ok = a->passes_ok;
	c->last_pass = a->last_pass;
	c->last_pass_ok = a->last_pass_ok;
	c->last_pass_duration = a->last_pass_duration;
	if (ts_agent_cf(a)) {
		c->has_cf = true;
		ts_cf_client_state_get(ts_agent_cf(a), &c->cf);
	}
	return c;
}

void ts_agent_carry_give(struct ts_agent *a, struct ts_agent_carry *c)
{
	if (!c)
		return;
	a->counters = c->counters;
	a->api_errors = c->api_errors;
	a->api_429 = c->api_429;
	a->rotations = c->rotations;
	/* Not passes: readiness is the new revision's to earn. */
	a->last_pass_duration = c->last_pass_duration;
	if (ts_agent_cf(a) && c->has_cf)
		ts_cf_client_state_set(ts_agent_cf(a), &c->cf);
	free(c);
}
