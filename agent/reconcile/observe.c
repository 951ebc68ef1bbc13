/* Observation glue: reads every plane through its adapter and maps what it
 * found into the planner's plane-neutral summary (model/observed.h). Flags
 * are set honestly: a plane that could not be read is "not complete", and
 * the planner then decides nothing from absence there. */
#include "reconcile/agent_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "ike/ike.h"
#include "xfrm/xfrm.h"

void ts_observation_done(struct ts_observation *o)
{
	if (!o)
		return;
	if (!o->cf_borrowed)
		ts_cf_tunnel_list_done(&o->cf_list);
	for (size_t i = 0; o->ike && i < o->n_tunnels; i++)
		ts_ike_observed_done(&o->ike[i]);
	free(o->ike);
	ts_xfrm_match_result_done(&o->match);
	ts_xfrm_snapshot_done(&o->snapshot);
	ts_store_state_free(o->store);
	free(o->tunnels);
	for (size_t i = 0; o->conn_changes && i < o->n_tunnels; i++)
		ts_changes_done(&o->conn_changes[i]);
	free(o->conn_changes);
	free(o->stale);
	free(o->stale_ref);
	memset(o, 0, sizeof(*o));
}

static int add_stale(struct ts_observation *o, enum ts_stale_kind kind, const char *tunnel,
		     const char *object, size_t ref)
{
	struct ts_stale_object *s;
	size_t *refs;

	s = realloc(o->stale, (o->n_stale + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	o->stale = s;
	refs = realloc(o->stale_ref, (o->n_stale + 1) * sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	o->stale_ref = refs;
	s = &o->stale[o->n_stale];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	snprintf(s->tunnel, sizeof(s->tunnel), "%s", tunnel ? tunnel : "");
	snprintf(s->object, sizeof(s->object), "%s", object);
	s->owned = true;
	refs[o->n_stale] = ref;
	o->n_stale++;
	return 0;
}

static bool is_declared_conn(const struct ts_desired *d, const char *conn)
{
	size_t plen = strlen(TS_IKE_CONN_PREFIX);

	if (strncmp(conn, TS_IKE_CONN_PREFIX, plen) != 0)
		return true; /* not ours: never stale */
	return ts_desired_find(d, conn + plen) != NULL;
}

/* Connections and keys named with our prefix that no declared tunnel
 * claims. Foreign names are never listed. */
static int on_ike_name(void *userdata, enum ts_ike_name_kind kind, const char *name)
{
	struct ts_observation *o = userdata;

	if (is_declared_conn(o->desired, name))
		return 0;
	return add_stale(o, kind == TS_IKE_NAME_CONN ? TS_STALE_IKE_CONN : TS_STALE_IKE_KEY,
			 name + strlen(TS_IKE_CONN_PREFIX), name, 0);
}

static enum ts_obs_sa_state map_sa_state(enum ts_ike_sa_state s)
{
	switch (s) {
	case TS_IKE_SA_ESTABLISHED:
	case TS_IKE_SA_REKEYING:
	case TS_IKE_SA_REKEYED:
		return TS_OBS_SA_ESTABLISHED;
	case TS_IKE_SA_CREATED:
	case TS_IKE_SA_CONNECTING:
	case TS_IKE_SA_PASSIVE:
		return TS_OBS_SA_CONNECTING;
	default:
		return TS_OBS_SA_NONE;
	}
}

const struct ts_ike_child_sa *ts_agent_installed_child(const struct ts_ike_observed *io)
{
	for (size_t i = 0; io && i < io->n_children; i++)
		if (io->children[i].state == TS_CHILD_SA_INSTALLED ||
		    io->children[i].state == TS_CHILD_SA_REKEYING ||
		    io->children[i].state == TS_CHILD_SA_REKEYED)
			return &io->children[i];
	return NULL;
}

/* The scoped tunnels only, each into its own slot of o->ike. */
static int observe_ike_scoped(const struct ts_agent *a, struct ts_observation *o)
{
	const struct ts_desired *d = o->desired;
	struct ts_tunnel *sub = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*sub));
	struct ts_ike_observed *got = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*got));
	size_t k = 0;
	int r = -ENOMEM;

	if (sub && got) {
		for (size_t i = 0; i < d->n_tunnels; i++)
			if (o->scope[i])
				sub[k++] = d->tunnels[i]; /* a shallow copy: read only */
		r = TS_PLANES(a)->ike_observe(TS_PLANES_CTX(a), sub, k, got);
		for (size_t i = 0, j = 0; i < d->n_tunnels && j < k; i++)
			if (o->scope[i])
				o->ike[i] = got[j++]; /* moved: o frees it */
	}
	free(sub);
	free(got);
	return r;
}

static void observe_ike(const struct ts_agent *a, struct ts_observation *o)
{
	const struct ts_desired *d = o->desired;
	int r;

	o->ike = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*o->ike));
	if (!o->ike)
		return;
	/* ts_observation_done() frees this many entries (their CHILD SAs). */
	o->n_tunnels = d->n_tunnels;
	r = o->scope
		    ? observe_ike_scoped(a, o)
		    : TS_PLANES(a)->ike_observe(TS_PLANES_CTX(a), d->tunnels, d->n_tunnels, o->ike);
	if (r == -ENOTCONN)
		return;
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "ike", NULL, "cannot read the IKE daemon (%s): %s",
			d->agent.vici_socket, strerror(-r));
		return;
	}
	/* Stale connections and keys are a full observation's business. */
	if (!o->scope)
		r = TS_PLANES(a)->ike_names(TS_PLANES_CTX(a), on_ike_name, o);
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "ike", NULL, "cannot list the IKE daemon's connections: %s",
			strerror(-r));
		return;
	}
	o->ike_ok = true;
}

void ts_agent_fill_expect(const struct ts_tunnel *t, const struct ts_ike_observed *io,
			  struct ts_xfrm_expect *e)
{
	const struct ts_ike_child_sa *child = ts_agent_installed_child(io);

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", t->name);
	e->local = t->customer_endpoint;
	e->remote = t->cloudflare_endpoint;
	e->has_if_id = t->routing.has_if_id;
	e->if_id = t->routing.if_id;
	e->has_mark = t->routing.has_mark;
	e->mark = (struct ts_xfrm_mark){ t->routing.mark, t->routing.mark_mask };
	if (child) {
		e->spi_in = child->spi_in;
		e->spi_out = child->spi_out;
	}
}

static int kernel_match(const struct ts_agent *a, const bool *scope,
			const struct ts_ike_observed *ike, struct ts_xfrm_snapshot *snap,
			struct ts_xfrm_match_result *res)
{
	const struct ts_desired *d = a->desired;
	struct ts_xfrm_expect *expect;
	int r;

	size_t k = 0;

	expect = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*expect));
	if (!expect)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (!scope || scope[i])
			ts_agent_fill_expect(&d->tunnels[i], ike ? &ike[i] : NULL, &expect[k++]);
	r = TS_PLANES(a)->kernel_match(TS_PLANES_CTX(a), expect, k, snap, res);
	free(expect);
	if (r < 0 || !scope)
		return r;
	/* Scoped: every scoped tunnel's status into its own slot; what the
	 * other tunnels own is not stale, only not looked at. */
	{
		struct ts_xfrm_tunnel_status *all =
			calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*all));

		if (!all)
			return -ENOMEM;
		for (size_t i = 0, j = 0; i < d->n_tunnels && j < res->n_tunnels; i++)
			if (scope[i])
				all[i] = res->tunnels[j++];
		free(res->tunnels);
		res->tunnels = all;
		res->n_tunnels = d->n_tunnels;
		res->stale_valid = false;
	}
	return 0;
}

static void observe_kernel(const struct ts_agent *a, struct ts_observation *o)
{
	int r;

	if (!a->desired->agent.kernel_xfrm) {
		o->kernel_ok = true; /* nothing to check: charon does ESP in user space */
		return;
	}
	r = kernel_match(a, o->scope, o->ike_ok ? o->ike : NULL, &o->snapshot, &o->match);
	if (r == -ENOTCONN)
		return;
	if (r < 0) {
		ts_logf(TS_LOG_WARN, "kernel", NULL, "cannot read the kernel's XFRM state: %s",
			strerror(-r));
		return;
	}
	o->kernel_ok = o->snapshot.complete;
	if (!o->match.stale_valid)
		return;
	for (size_t i = 0; i < o->match.n_stale; i++) {
		const struct ts_xfrm_stale *s = &o->match.stale[i];
		char what[96], src[64], dst[64];

		if (s->kind == TS_XFRM_OBJECT_SA)
			snprintf(what, sizeof(what), "sa spi 0x%08x %s->%s", s->sa.spi,
				 ts_ip_format(&s->sa.src, src, sizeof(src)),
				 ts_ip_format(&s->sa.dst, dst, sizeof(dst)));
		else
			snprintf(what, sizeof(what), "policy %s index %u",
				 ts_xfrm_dir_to_string(s->policy.dir), s->policy.index);
		r = add_stale(o,
			      s->kind == TS_XFRM_OBJECT_SA ? TS_STALE_KERNEL_SA
							   : TS_STALE_KERNEL_POLICY,
			      "", what, i);
		if (r < 0) {
			o->kernel_ok = false;
			return;
		}
	}
}

static void observe_cloudflare(const struct ts_agent *a, struct ts_observation *o)
{
	struct ts_cf_error err = { 0 };
	char buf[512];
	int r;

	o->cf_read_at = TS_PLANES(a)->now_monotonic(TS_PLANES_CTX(a));
	if (a->yield.active && a->yield.full == o && TS_PLANES(a)->cf_list_watch) {
		/* A daemon's full pass: drift events that come while the list
		 * is read are acted on meanwhile (ts_agent_yield_during_list). */
		struct ts_agent *owned = (struct ts_agent *)a; /* the pass's thread owns a */

		owned->yield.cf_listing = true;
		owned->yield.list_paused = 0;
		r = TS_PLANES(a)->cf_list_watch(TS_PLANES_CTX(a), ts_agent_yield_during_list, owned,
						&o->cf_list, &err);
		owned->yield.cf_listing = false;
	} else {
		r = TS_PLANES(a)->cf_list(TS_PLANES_CTX(a), &o->cf_list, &err);
	}
	if (r >= 0)
		(void)ts_cf_tunnel_list_index(&o->cf_list); /* else find scans */
	if (r == -ENOTCONN) {
		ts_logf(TS_LOG_WARN, "cloudflare", NULL, "%s", err.detail);
	} else if (r < 0) {
		ts_logf(TS_LOG_WARN, "cloudflare", NULL, "cannot list the IPsec tunnels: %s",
			ts_cf_error_format(&err, buf, sizeof(buf)));
		o->cf_api_error = true;
		o->cf_http_status = err.kind == TS_CF_ERR_HTTP ? err.http_status : 0;
	} else {
		o->cf_ok = true;
	}
	ts_cf_error_done(&err);
}

static void observe_store(const struct ts_agent *a, struct ts_observation *o)
{
	const struct ts_planes_ops *ops = TS_PLANES(a);
	int r;

	if (o->scope && ops->store_load_names) {
		/* The scope's records only: the same view of each of them as a
		 * whole load (ts_store_load_names), whatever the directory holds. */
		const struct ts_desired *d = o->desired;
		const char **names = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*names));
		size_t k = 0;

		if (!names) {
			r = -ENOMEM;
		} else {
			for (size_t i = 0; i < d->n_tunnels; i++)
				if (o->scope[i])
					names[k++] = d->tunnels[i].name;
			r = ops->store_load_names(TS_PLANES_CTX(a), names, k, &o->store);
			free(names);
		}
	} else {
		r = ops->store_load(TS_PLANES_CTX(a), &o->store);
	}
	if (r == -ENODEV) {
		/* Read-only and no state directory yet: nothing recorded, which
		 * is a complete answer. */
		o->store_ok = a->options.readonly || a->options.dry_run;
		return;
	}
	if (r < 0) {
		ts_logf(TS_LOG_ERROR, "store", NULL, "cannot read the state directory %s: %s",
			TS_PLANES(a)->store_dir(TS_PLANES_CTX(a)), strerror(-r));
		return;
	}
	o->store_ok = true;
}

/* Maps everything read into the planner's summary. */
static int summarize(const struct ts_agent *a, struct ts_observation *o)
{
	const struct ts_desired *d = o->desired;

	o->tunnels = calloc(d->n_tunnels ? d->n_tunnels : 1, sizeof(*o->tunnels));
	if (!o->tunnels)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_tunnels; i++) {
		const struct ts_tunnel *t = &d->tunnels[i];
		struct ts_observed_tunnel *ot = &o->tunnels[i];

		snprintf(ot->name, sizeof(ot->name), "%s", t->name);
		if (!ts_observation_in_scope(o, i))
			continue; /* not read: nothing is known of it */
		if (o->cf_ok) {
			const struct ts_cf_tunnel *ct = ts_cf_tunnel_list_find(&o->cf_list, t->id);

			ot->cf.ok = true;
			ot->cf.present = ct != NULL;
			if (ct) {
				ot->cf.customer_endpoint = ct->customer_endpoint;
				ot->cf.cloudflare_endpoint = ct->cloudflare_endpoint;
				ot->cf.tunnel = ct; /* every declared property is diffed */
				ot->cf.last_generated_on =
					ct->has_psk_generated_on ? ct->psk_generated_on : 0;
				ot->cf.last_generated_unit = ct->psk_generated_unit;
			}
		}
		if (o->ike_ok) {
			const struct ts_ike_observed *io = &o->ike[i];
			const struct ts_agent_tunnel_memory *mem = &a->memory[i];

			ot->ike.ok = true;
			ot->ike.conn_loaded = io->conn_loaded;
			ot->ike.conn_equal = io->conn_equal;
			ot->ike.key_loaded = io->key_loaded;
			ot->ike.sa_state = map_sa_state(io->ike_state);
			ot->ike.child_up = ts_agent_installed_child(io) != NULL;
			/* Failures seen by earlier runs (status file) plus this
			 * process's; an established SA proves the key and clears
			 * them (memory does, after the observation). */
			if (ot->ike.sa_state != TS_OBS_SA_ESTABLISHED) {
				ot->ike.auth_failures =
					mem->auth_failures_base + io->failures.auth_failures;
				ot->ike.last_auth_failure =
					io->failures.last_auth_failure > mem->last_auth_failure
						? io->failures.last_auth_failure
						: mem->last_auth_failure;
			}
		}
		if (o->kernel_ok) {
			ot->kernel.ok = true;
			if (!d->agent.kernel_xfrm) {
				ot->kernel.sa_pair_ok = true;
				ot->kernel.policies_ok = true;
				ot->kernel.traffic_both_ways = true;
			} else if (i < o->match.n_tunnels) {
				const struct ts_xfrm_tunnel_status *ks = &o->match.tunnels[i];

				ot->kernel.sa_pair_ok = ks->sa_in_alive && ks->sa_out_alive;
				ot->kernel.policies_ok = ks->policy_in && ks->policy_out;
				ot->kernel.hard_expired = ks->hard_expire_seen;
				ot->kernel.traffic_both_ways =
					ot->kernel.sa_pair_ok && ks->packets_in && ks->packets_out;
			}
		}
		if (t->psk.source == TS_PSK_SOURCE_FILE && t->psk.file) {
			_cleanup_secret_ struct ts_secret *k = NULL;

			if (ts_secret_from_file(t->psk.file, &k, NULL) == 0) {
				ot->keyfile.ok = true;
				ts_secret_fingerprint(k, ot->keyfile.fingerprint);
			}
		}
		if (o->store_ok)
			ts_store_state_observe(o->store, t->name, &ot->store);
	}
	o->observed = (struct ts_observed){
		.cf_complete = o->cf_ok,
		.ike_complete = o->ike_ok,
		.kernel_complete = o->kernel_ok,
		.store_complete = o->store_ok,
		.tunnels = o->tunnels,
		.n_tunnels = d->n_tunnels,
		.stale = o->stale,
		.n_stale = o->n_stale,
	};
	return 0;
}

/* Where an observation's time went (debug): what grows with the gateway. */
static void log_timing(const struct ts_observation *o, const ts_usec_t *t)
{
	const struct ts_ike_observe_timing *it = ts_ike_observe_last_timing();

	if (!ts_log_enabled(TS_LOG_DEBUG))
		return;
	ts_logf(TS_LOG_DEBUG, NULL, NULL,
		"observed%s: cloudflare %.1f ms%s, store %.1f ms, ike %.1f ms (list-conns %.1f, "
		"list-sas %.1f, get-shared %.1f ms, %zu keys%s), kernel %.1f ms",
		o->scope ? " (scoped)" : "", (double)(t[1] - t[0]) / 1000.0,
		o->cf_borrowed ? " (a list read before)" : "", (double)(t[3] - t[2]) / 1000.0,
		(double)(t[4] - t[3]) / 1000.0, (double)it->conns_usec / 1000.0,
		(double)it->sas_usec / 1000.0, (double)it->shared_usec / 1000.0, it->n_keys,
		it->by_name ? (it->keys_known ? ", by name, keys known" : ", by name") : "",
		(double)(t[5] - t[4]) / 1000.0);
}

/* Between the planes of a daemon's full observation (not the one after
 * apply): Cloudflare is read, the state directory, charon and the kernel
 * not yet, so a nested scope's actions (none writes to Cloudflare) are
 * seen by those reads: the full plan decides from a newer view than the
 * nested one (and no object it made can look stale to the kernel's
 * match). The nested scope plans with this observation's list. */
static void yield(const struct ts_agent *a, const struct ts_observation *o, const char *where)
{
	if (a->yield.active && a->yield.full == o)
		ts_agent_yield((struct ts_agent *)a, where); /* the pass's thread owns a */
}

static int observe_all(const struct ts_agent *a, const bool *scope, struct ts_observation *o,
		       struct ts_observation *reuse_cf, const struct ts_cf_tunnel_list *cf_last,
		       ts_usec_t cf_last_at)
{
	int r;

	ts_usec_t t[6];

	memset(o, 0, sizeof(*o));
	o->desired = a->desired;
	o->scope = scope;
	/* Cloudflare first: in a daemon's full observation, a nested scope
	 * may act on an event there (ts_agent_yield), and every plane read
	 * after it is then newer than what it did. */
	t[0] = ts_now_monotonic();
	if (reuse_cf && !reuse_cf->cf_borrowed) {
		/* After apply: the local planes again, Cloudflare as it was
		 * read (a second list would only spend request budget). */
		o->cf_ok = reuse_cf->cf_ok;
		o->cf_list = reuse_cf->cf_list;
		o->cf_read_at = reuse_cf->cf_read_at;
		memset(&reuse_cf->cf_list, 0, sizeof(reuse_cf->cf_list));
	} else if (cf_last) {
		/* A scoped stage: the last pass's list (agent.c says when). */
		o->cf_ok = true;
		o->cf_list = *cf_last;
		o->cf_read_at = cf_last_at;
		o->cf_borrowed = true;
	} else {
		observe_cloudflare(a, o);
	}
	t[1] = ts_now_monotonic();
	yield(a, o, "observation: after Cloudflare");
	t[2] = ts_now_monotonic();
	observe_store(a, o);
	t[3] = ts_now_monotonic();
	observe_ike(a, o);
	t[4] = ts_now_monotonic();
	observe_kernel(a, o);
	t[5] = ts_now_monotonic();
	log_timing(o, t);
	r = summarize(a, o);
	return r < 0 ? r : ts_agent_diff_conns(a, o);
}

int ts_agent_observe(const struct ts_agent *a, struct ts_observation *o,
		     struct ts_observation *reuse_cf)
{
	return observe_all(a, NULL, o, reuse_cf, NULL, 0);
}

int ts_agent_observe_scoped(const struct ts_agent *a, const bool *scope, struct ts_observation *o,
			    const struct ts_cf_tunnel_list *cf_last, ts_usec_t cf_last_at)
{
	return observe_all(a, scope, o, NULL, cf_last, cf_last_at);
}
