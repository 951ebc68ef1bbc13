/* Owns the Prometheus exposition of the agent's figures. Names follow the
 * conventions: one prefix, base units, _total for counters, _info for
 * build metadata. No key material, only fingerprints' absence or presence. */
#include "reconcile/agent_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "core/util.h"
#include "version.h"

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
	help(&t, "tunnelsync_info", "gauge", "Build information.");
	emit(&t, "tunnelsync_info{version=\"%s\"} 1\n", TUNNELSYNC_VERSION);
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
	help(&t, "tunnelsync_rotations_total", "counter", "Key rotations committed.");
	emit(&t, "tunnelsync_rotations_total %u\n", a->rotations);
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
	help(&t, "tunnelsync_pass_duration_seconds", "gauge", "Duration of the last pass.");
	emit(&t, "tunnelsync_pass_duration_seconds %.6f\n", seconds(a->last_pass_duration));
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
	return a->passes > 0 && a->last_pass_ok == a->last_pass && a->last_failed == 0;
}
