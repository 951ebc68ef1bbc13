/* The IKE plane's reading and writing of charon: classifying VICI events,
 * counting failures per connection, loading and unloading a tunnel's
 * connection and key, and observing every tunnel with three listings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "ike/ike.h"

#define MONITOR_MAX 4096

const char *const ts_ike_event_kind_names[_TS_IKE_EVENT_MAX] = {
	[TS_IKE_EVENT_OTHER] = "other",
	[TS_IKE_EVENT_IKE_UP] = "ike-up",
	[TS_IKE_EVENT_IKE_DOWN] = "ike-down",
	[TS_IKE_EVENT_CONNECT_FAILED] = "connect-failed",
	[TS_IKE_EVENT_AUTH_FAILED] = "auth-failed",
	[TS_IKE_EVENT_CHILD_UP] = "child-up",
	[TS_IKE_EVENT_CHILD_DOWN] = "child-down",
	[TS_IKE_EVENT_IKE_REKEY] = "ike-rekey",
	[TS_IKE_EVENT_CHILD_REKEY] = "child-rekey",
};

const char *ts_ike_event_kind_to_string(enum ts_ike_event_kind k)
{
	return (unsigned)k < _TS_IKE_EVENT_MAX ? ts_ike_event_kind_names[k] : "unknown";
}

/* The first section of an event body: the IKE SA, named after its
 * connection. */
static const struct ts_vici_node *first_section(const struct ts_vici_node *body)
{
	if (!body)
		return NULL;
	for (size_t i = 0; i < body->n_children; i++)
		if (body->children[i]->type == TS_VICI_SECTION)
			return body->children[i];
	return NULL;
}

static void event_from_sa(struct ts_ike_event *ev, const struct ts_vici_node *sa)
{
	uint32_t id;

	snprintf(ev->conn, sizeof(ev->conn), "%s", sa->name);
	if (ts_vici_get_u32(sa, "uniqueid", &id) == 0)
		ev->ike_unique_id = id;
	ev->state = ts_ike_sa_state_from_string(ts_vici_get_str(sa, "state"));
}

/* What charon 5.9.8 logs (level 1, group IKE) when an authentication fails:
 * the peer refused our AUTH, or our check of the peer's AUTH failed. */
static bool log_is_auth_failure(const char *msg)
{
	return msg && (strncmp(msg, "received AUTHENTICATION_FAILED notify error", 43) == 0 ||
		       strstr(msg, "but MAC mismatched") != NULL);
}

int ts_ike_event_parse(const char *event, const struct ts_vici_node *body,
		       struct ts_ike_event *ret_event)
{
	struct ts_ike_event ev = { .kind = TS_IKE_EVENT_OTHER, .state = TS_IKE_SA_NONE };
	const struct ts_vici_node *sa = first_section(body);

	if (!event)
		return -EINVAL;
	if (ts_streq(event, "log")) {
		const char *name = ts_vici_get_str(body, "ikesa-name");
		uint32_t id;

		if (log_is_auth_failure(ts_vici_get_str(body, "msg")) && name) {
			ev.kind = TS_IKE_EVENT_AUTH_FAILED;
			snprintf(ev.conn, sizeof(ev.conn), "%s", name);
			if (ts_vici_get_u32(body, "ikesa-uniqueid", &id) == 0)
				ev.ike_unique_id = id;
		}
		*ret_event = ev;
		return 0;
	}
	if (!sa) {
		*ret_event = ev;
		return 0;
	}
	event_from_sa(&ev, sa);
	if (ts_streq(event, "ike-updown")) {
		if (ts_vici_get_yes(body, "up"))
			ev.kind = TS_IKE_EVENT_IKE_UP;
		else if (ev.state == TS_IKE_SA_CONNECTING)
			ev.kind = TS_IKE_EVENT_CONNECT_FAILED;
		else
			ev.kind = TS_IKE_EVENT_IKE_DOWN;
	} else if (ts_streq(event, "child-updown")) {
		ev.kind = ts_vici_get_yes(body, "up") ? TS_IKE_EVENT_CHILD_UP
						      : TS_IKE_EVENT_CHILD_DOWN;
	} else if (ts_streq(event, "ike-rekey")) {
		const struct ts_vici_node *n = ts_vici_get_section(sa, "new");

		/* The new SA's id and state; the connection name is the outer one. */
		ev.kind = TS_IKE_EVENT_IKE_REKEY;
		if (n) {
			event_from_sa(&ev, n);
			snprintf(ev.conn, sizeof(ev.conn), "%s", sa->name);
		}
	} else if (ts_streq(event, "child-rekey")) {
		ev.kind = TS_IKE_EVENT_CHILD_REKEY;
	} else {
		memset(&ev, 0, sizeof(ev));
	}
	*ret_event = ev;
	return 0;
}

/* --- monitor ------------------------------------------------------------- */

struct monitor_entry {
	char conn[TS_VICI_NAME_MAX + 1];
	struct ts_ike_failures f;
};

struct ts_ike_monitor {
	struct monitor_entry *entries;
	size_t n, cap;
};

int ts_ike_monitor_new(struct ts_ike_monitor **ret_monitor)
{
	struct ts_ike_monitor *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*ret_monitor = m;
	return 0;
}

void ts_ike_monitor_free(struct ts_ike_monitor *m)
{
	if (!m)
		return;
	free(m->entries);
	free(m);
}

static struct monitor_entry *monitor_find(const struct ts_ike_monitor *m, const char *conn)
{
	for (size_t i = 0; i < m->n; i++)
		if (ts_streq(m->entries[i].conn, conn))
			return &m->entries[i];
	return NULL;
}

static struct monitor_entry *monitor_add(struct ts_ike_monitor *m, const char *conn)
{
	struct monitor_entry *e = monitor_find(m, conn);

	if (e)
		return e;
	/* Bounded: names come from charon, which may carry others' conns. */
	if (m->n == MONITOR_MAX)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct monitor_entry *n = reallocarray(m->entries, cap, sizeof(*n));

		if (!n)
			return NULL;
		m->entries = n;
		m->cap = cap;
	}
	e = &m->entries[m->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->conn, sizeof(e->conn), "%s", conn);
	return e;
}

void ts_ike_monitor_feed(struct ts_ike_monitor *m, const struct ts_ike_event *ev, ts_usec_t now)
{
	struct monitor_entry *e;

	if (!m || !ev || !ev->conn[0])
		return;
	if (ev->kind != TS_IKE_EVENT_AUTH_FAILED && ev->kind != TS_IKE_EVENT_CONNECT_FAILED)
		return;
	e = monitor_add(m, ev->conn);
	if (!e)
		return;
	if (ev->kind == TS_IKE_EVENT_AUTH_FAILED) {
		e->f.auth_failures++;
		e->f.last_auth_failure = now;
	} else {
		e->f.connect_failures++;
		e->f.last_connect_failure = now;
	}
}

void ts_ike_monitor_get(const struct ts_ike_monitor *m, const char *conn,
			struct ts_ike_failures *ret_failures)
{
	const struct monitor_entry *e = m ? monitor_find(m, conn) : NULL;

	if (e)
		*ret_failures = e->f;
	else
		memset(ret_failures, 0, sizeof(*ret_failures));
}

void ts_ike_monitor_reset(struct ts_ike_monitor *m, const char *conn)
{
	struct monitor_entry *e = m ? monitor_find(m, conn) : NULL;

	if (e)
		memset(&e->f, 0, sizeof(e->f));
}

/* --- applying ------------------------------------------------------------ */

int ts_ike_load(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
		const struct ts_secret *psk, char *err, size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *shared = NULL, *conn = NULL;
	int r;

	/* Render both before touching charon: all or nothing on bad input. */
	if ((r = ts_ike_render_shared(t, account_id, psk, &shared)) < 0 ||
	    (r = ts_ike_render_conn(t, account_id, &conn)) < 0)
		return r;
	/* The key first: a connection must never be usable without its key
	 * (start_action is none, but an initiate or DPD restart by anyone
	 * could follow the load at once). */
	r = ts_vici_load_shared(c, shared, err, err_size);
	if (r < 0)
		return r;
	return ts_vici_load_conn(c, conn, err, err_size);
}

int ts_ike_unload(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms)
{
	char name[TS_IKE_CONN_NAME_MAX];
	int r;

	r = ts_ike_conn_name(t, name, sizeof(name));
	if (r < 0)
		return r;
	/* -EIO: charon has nothing of that name, which is the goal. */
	r = ts_vici_unload_conn(c, name, NULL, 0);
	if (r < 0 && r != -EIO)
		return r;
	r = ts_vici_terminate(c, name, timeout_ms, NULL, 0);
	if (r < 0 && r != -EIO)
		return r;
	r = ts_vici_unload_shared(c, name, NULL, 0);
	if (r < 0 && r != -EIO)
		return r;
	return 0;
}

struct reauth_ctx {
	const char *conn;
	bool found;
	bool has_child;
};

static int on_reauth_sa(void *userdata, const struct ts_vici_node *event)
{
	struct reauth_ctx *ctx = userdata;
	const struct ts_vici_node *sa = ts_vici_get_section(event, ctx->conn);
	const struct ts_vici_node *children = ts_vici_get_section(sa, "child-sas");

	if (sa)
		ctx->found = true;
	if (children && children->n_children > 0)
		ctx->has_child = true;
	return 0;
}

static int reauth(struct ts_vici_client *c, const struct ts_tunnel *t, bool overlap, int timeout_ms,
		  char *err, size_t err_size)
{
	char name[TS_IKE_CONN_NAME_MAX];
	struct reauth_ctx ctx = { name, false, false };
	int r;

	r = ts_ike_conn_name(t, name, sizeof(name));
	if (r < 0)
		return r;
	r = ts_vici_list_sas(c, name, on_reauth_sa, &ctx);
	if (r < 0)
		return r;
	if (ctx.has_child && overlap)
		return ts_vici_rekey(c, name, true, err, err_size);
	/* charon 5.9.8 refuses to reauthenticate an IKE SA without CHILD SA
	 * ("no CHILD_SA to recreate") and just deletes it: make a new one. */
	if (ctx.found) {
		r = ts_vici_terminate(c, name, timeout_ms, err, err_size);
		if (r < 0 && r != -EIO)
			return r;
	}
	r = ts_vici_initiate(c, name, name, timeout_ms, err, err_size);
	/* -EIO: charon says the CHILD SA failed; the IKE SA may be up all the
	 * same. The caller confirms through events or observation. */
	return r == -EIO ? 0 : r;
}

int ts_ike_reauth(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms, char *err,
		  size_t err_size)
{
	return reauth(c, t, true, timeout_ms, err, err_size);
}

int ts_ike_reinitiate(struct ts_vici_client *c, const struct ts_tunnel *t, int timeout_ms,
		      char *err, size_t err_size)
{
	return reauth(c, t, false, timeout_ms, err, err_size);
}

/* --- updating a changed connection --------------------------------------- */

void ts_ike_update_needs(const struct ts_changes *c, bool *ret_key, bool *ret_reestablish)
{
	bool key = false, again = false;

	for (size_t i = 0; c && i < c->n; i++) {
		const char *f = c->items[i].field;

		if (ts_streq(f, "shared.owners") || ts_streq(f, "local.id") ||
		    ts_streq(f, "remote.id"))
			key = true;
		/* Unknown leaves (no record): charon's SAs were made from
		 * charon's config, which a reload of an equal one leaves alone. */
		if (!ts_streq(f, "unlisted-fields"))
			again = true;
	}
	*ret_key = key;
	*ret_reestablish = again;
}

struct sa_ids {
	const char *conn;
	struct ts_ike_update_sas *sas;
};

static int on_update_sa(void *userdata, const struct ts_vici_node *event)
{
	struct sa_ids *ids = userdata;
	struct ts_ike_update_sas *s = ids->sas;
	const struct ts_vici_node *sa = ts_vici_get_section(event, ids->conn);
	const struct ts_vici_node *sas = ts_vici_get_section(sa, "child-sas");
	uint32_t ike_id = 0;

	if (!sa || ts_vici_get_u32(sa, "uniqueid", &ike_id) < 0)
		return 0;
	if (s->n_ike < TS_ARRAY_SIZE(s->ike))
		s->ike[s->n_ike++] = ike_id;
	for (size_t i = 0; sas && i < sas->n_children; i++) {
		const struct ts_vici_node *ch = sas->children[i];
		enum ts_child_sa_state st;
		uint32_t id = 0;

		if (ch->type != TS_VICI_SECTION || ts_vici_get_u32(ch, "uniqueid", &id) < 0 ||
		    s->n_child == TS_ARRAY_SIZE(s->child))
			continue;
		st = ts_child_sa_state_from_string(ts_vici_get_str(ch, "state"));
		s->child[s->n_child].ike = ike_id;
		s->child[s->n_child].child = id;
		s->child[s->n_child].installed = st == TS_CHILD_SA_INSTALLED;
		s->n_child++;
	}
	return 0;
}

static int list_update_sas(struct ts_vici_client *c, const char *name,
			   struct ts_ike_update_sas *ret)
{
	struct sa_ids ids = { name, ret };

	memset(ret, 0, sizeof(*ret));
	return ts_vici_list_sas(c, name, on_update_sa, &ids);
}

bool ts_ike_request_detached(int r, const char *err)
{
	const char *after;
	char *end;

	if (r == -ETIMEDOUT)
		return true;
	if (r != -EIO || !err)
		return false;
	if (strstr(err, "timeout") || strstr(err, "timed out"))
		return true;
	/* "... not established after 500ms" */
	after = strstr(err, "not established after ");
	if (!after)
		return false;
	after += strlen("not established after ");
	(void)strtoul(after, &end, 10);
	return end != after && strncmp(end, "ms", 2) == 0;
}

bool ts_ike_update_sas_had_child(const struct ts_ike_update_sas *before, uint32_t id)
{
	for (size_t i = 0; before && i < before->n_child; i++)
		if (before->child[i].child == id)
			return true;
	return false;
}

int ts_ike_update_begin(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
			const struct ts_secret *psk, bool reestablish, bool break_first,
			int request_ms, struct ts_ike_update_sas *ret_before, char *err,
			size_t err_size)
{
	_cleanup_vici_ struct ts_vici_node *shared = NULL, *conn = NULL;
	char name[TS_IKE_CONN_NAME_MAX];
	struct ts_ike_update_sas *before = ret_before;
	int r;

	memset(before, 0, sizeof(*before));
	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (psk && (r = ts_ike_render_shared(t, account_id, psk, &shared)) < 0) ||
	    (r = ts_ike_render_conn(t, account_id, &conn)) < 0)
		return r;
	r = list_update_sas(c, name, before);
	if (r < 0)
		return r;
	/* New owners of the same key before the connection that needs them. */
	if (shared && (r = ts_vici_load_shared(c, shared, err, err_size)) < 0)
		return r;
	r = ts_vici_load_conn(c, conn, err, err_size);
	if (r < 0 || !reestablish || before->n_ike == 0)
		return r; /* nothing running: the next initiate uses the new config */
	/* Running SAs keep the config they were made from through rekeys and
	 * reauths (5.9.8: ike_sa.c reestablish() reuses the old peer config,
	 * child_rekey the old CHILD config). A new CHILD SA from the loaded
	 * config, then the old ones go: make before break. With an unchanged
	 * peer config charon adds it to the running IKE SA
	 * (checkout_by_config()), else it negotiates a new IKE SA. */
	if (break_first) {
		/* Blocking (the client's own timeout): the peer must have
		 * forgotten the old IKE SA before it takes the new one. */
		for (size_t i = 0; i < before->n_ike; i++) {
			r = ts_vici_terminate_id(c, false, before->ike[i], 0, NULL, 0);
			if (r < 0 && r != -EIO)
				return r;
		}
		before->n_child = 0; /* gone with their IKE SAs */
		before->n_ike = 0;
	}
	r = ts_vici_initiate(c, name, name, request_ms, err, err_size);
	if (ts_ike_request_detached(r, err))
		return 1; /* charon carries on: confirm, then finish */
	if (r < 0)
		return r == -EIO ? -EAGAIN : r; /* the old SAs (if kept) carry on */
	return 1;
}

int ts_ike_update_finish(struct ts_vici_client *c, const struct ts_tunnel *t,
			 const struct ts_ike_update_sas *before, int timeout_ms, char *err,
			 size_t err_size)
{
	char name[TS_IKE_CONN_NAME_MAX];
	struct ts_ike_update_sas after;
	uint32_t keep[TS_ARRAY_SIZE(after.child)];
	size_t n_keep = 0;
	int r;

	if ((r = ts_ike_conn_name(t, name, sizeof(name))) < 0 ||
	    (r = list_update_sas(c, name, &after)) < 0)
		return r;
	for (size_t i = 0; i < after.n_child; i++)
		if (after.child[i].installed &&
		    !ts_ike_update_sas_had_child(before, after.child[i].child))
			keep[n_keep++] = after.child[i].ike;
	if (n_keep == 0) {
		if (err && err_size)
			snprintf(err, err_size, "no new CHILD SA installed");
		return -EAGAIN;
	}
	for (size_t i = 0; i < before->n_ike; i++) {
		bool kept = false;

		for (size_t k = 0; k < n_keep; k++)
			kept = kept || keep[k] == before->ike[i];
		if (!kept) {
			r = ts_vici_terminate_id(c, false, before->ike[i], timeout_ms, NULL, 0);
			if (r < 0 && r != -EIO)
				return r;
		}
	}
	/* In a kept IKE SA, the CHILD SAs made from the old config. */
	for (size_t i = 0; i < before->n_child; i++) {
		bool in_kept = false;

		for (size_t k = 0; k < n_keep; k++)
			in_kept = in_kept || keep[k] == before->child[i].ike;
		if (!in_kept)
			continue;
		r = ts_vici_terminate_id(c, true, before->child[i].child, timeout_ms, NULL, 0);
		if (r < 0 && r != -EIO)
			return r;
	}
	return 0;
}

int ts_ike_update(struct ts_vici_client *c, const struct ts_tunnel *t, const char *account_id,
		  const struct ts_secret *psk, bool reestablish, bool break_first, int timeout_ms,
		  char *err, size_t err_size)
{
	struct ts_ike_update_sas before;
	int r = ts_ike_update_begin(c, t, account_id, psk, reestablish, break_first, timeout_ms,
				    &before, err, err_size);

	if (r == 1 && err && err_size)
		err[0] = '\0';
	return r == 1 ? ts_ike_update_finish(c, t, &before, timeout_ms, err, err_size) : r;
}

/* --- observing ----------------------------------------------------------- */

/* Up to this many tunnels, charon is asked about each by name. */
#define OBSERVE_BY_NAME_MAX 4

struct observe_ctx {
	const struct ts_tunnel *tunnels;
	size_t n;
	const char *account_id;
	struct ts_ike_observed *obs;
	int error;
	struct ts_ike_names *names; /* NULL: not collected */
};

static int names_add(char **buf, size_t *len, size_t *count, const char *name)
{
	size_t n = strlen(name) + 1;
	char *b = realloc(*buf, *len + n);

	if (!b)
		return -ENOMEM;
	memcpy(b + *len, name, n);
	*buf = b;
	*len += n;
	(*count)++;
	return 0;
}

void ts_ike_names_done(struct ts_ike_names *names)
{
	if (!names)
		return;
	free(names->conns);
	free(names->keys);
	*names = (struct ts_ike_names){ 0 };
}

static struct ts_ike_observed *obs_find(struct observe_ctx *ctx, const char *conn)
{
	size_t lo = 0, hi = ctx->n;

	if (strncmp(conn, TS_IKE_CONN_PREFIX, strlen(TS_IKE_CONN_PREFIX)) != 0)
		return NULL;
	/* The tunnels come sorted by name, so their names with the common
	 * prefix are sorted too: a binary search (every connection, SA and
	 * key of the daemon is looked up). A miss is confirmed by a scan, for
	 * a caller whose tunnels are not sorted. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ctx->obs[mid].conn_name, conn);

		if (c == 0)
			return &ctx->obs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < ctx->n; i++)
		if (ts_streq(ctx->obs[i].conn_name, conn))
			return &ctx->obs[i];
	return NULL;
}

static int on_conn(void *userdata, const struct ts_vici_node *event)
{
	struct observe_ctx *ctx = userdata;

	for (size_t i = 0; event && i < event->n_children; i++) {
		const struct ts_vici_node *conn = event->children[i];
		struct ts_ike_observed *o;
		int r, listed;

		if (conn->type != TS_VICI_SECTION)
			continue;
		if (ctx->names && ctx->error == 0)
			ctx->error = names_add(&ctx->names->conns, &ctx->names->conns_len,
					       &ctx->names->n_conns, conn->name);
		if (!(o = obs_find(ctx, conn->name)))
			continue;
		o->conn_loaded = true;
		ts_ike_leaves_done(&o->listed);
		ts_ike_leaves_done(&o->want);
		listed = ts_ike_leaves_listed(conn, o->conn_name, &o->listed);
		if (listed < 0 && ctx->error == 0)
			ctx->error = listed;
		/* ts_ike_conn_compare's result, from the leaves at hand; the
		 * rendering stays for the diff with the record (conn_diff.c). */
		o->conn_diff[0] = 0;
		r = ts_ike_leaves_render(&ctx->tunnels[o - ctx->obs], ctx->account_id, &o->want);
		if (r >= 0)
			r = listed < 0 ? listed
				       : ts_ike_leaves_compare(&o->want, &o->listed, o->conn_diff,
							       sizeof(o->conn_diff));
		if (r < 0)
			snprintf(o->conn_diff, sizeof(o->conn_diff), "cannot render: %s",
				 strerror(-r));
		o->conn_equal = r == 0;
	}
	return 0;
}

static int state_rank(enum ts_ike_sa_state s)
{
	switch (s) {
	case TS_IKE_SA_ESTABLISHED:
		return 6;
	case TS_IKE_SA_REKEYING:
		return 5;
	case TS_IKE_SA_CONNECTING:
		return 4;
	case TS_IKE_SA_CREATED:
	case TS_IKE_SA_PASSIVE:
		return 3;
	case TS_IKE_SA_REKEYED:
	case TS_IKE_SA_DELETING:
		return 2;
	case TS_IKE_SA_DESTROYING:
	case TS_IKE_SA_UNKNOWN:
		return 1;
	default:
		return 0;
	}
}

static uint32_t spi_parse(const char *s)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 16);
	return errno || *end || v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* An IKE SPI as list-sas prints it (16 hex digits): absent or all zeros
 * (the responder has not chosen one). */
static bool ike_spi_unset(const char *s)
{
	if (!s)
		return true;
	for (; *s; s++)
		if (*s != '0')
			return false;
	return true;
}

static int add_children(struct ts_ike_observed *o, const struct ts_vici_node *sa)
{
	const struct ts_vici_node *sas = ts_vici_get_section(sa, "child-sas");

	for (size_t i = 0; sas && i < sas->n_children; i++) {
		const struct ts_vici_node *ch = sas->children[i];
		struct ts_ike_child_sa *c, *arr;
		const char *name;

		if (ch->type != TS_VICI_SECTION)
			continue;
		arr = reallocarray(o->children, o->n_children + 1, sizeof(*arr));
		if (!arr)
			return -ENOMEM;
		o->children = arr;
		c = &arr[o->n_children++];
		memset(c, 0, sizeof(*c));
		name = ts_vici_get_str(ch, "name");
		snprintf(c->name, sizeof(c->name), "%s", name ? name : ch->name);
		(void)ts_vici_get_u32(ch, "uniqueid", &c->unique_id);
		(void)ts_vici_get_u32(ch, "reqid", &c->reqid);
		c->state = ts_child_sa_state_from_string(ts_vici_get_str(ch, "state"));
		c->spi_in = spi_parse(ts_vici_get_str(ch, "spi-in"));
		c->spi_out = spi_parse(ts_vici_get_str(ch, "spi-out"));
	}
	return 0;
}

static int on_sa(void *userdata, const struct ts_vici_node *event)
{
	struct observe_ctx *ctx = userdata;

	for (size_t i = 0; event && i < event->n_children; i++) {
		const struct ts_vici_node *sa = event->children[i];
		enum ts_ike_sa_state st;
		struct ts_ike_observed *o;
		uint32_t id = 0, est = 0;
		int r;

		if (sa->type != TS_VICI_SECTION || !(o = obs_find(ctx, sa->name)))
			continue;
		st = ts_ike_sa_state_from_string(ts_vici_get_str(sa, "state"));
		(void)ts_vici_get_u32(sa, "uniqueid", &id);
		(void)ts_vici_get_u32(sa, "established", &est);
		o->n_ike_sas++;
		if ((st == TS_IKE_SA_CREATED || st == TS_IKE_SA_CONNECTING) &&
		    ts_vici_get_yes(sa, "initiator")) {
			if (ike_spi_unset(ts_vici_get_str(sa, "responder-spi")))
				o->n_ike_unanswered++;
			else
				o->n_ike_answered++;
		}
		/* The best SA wins; among equals the newest (highest id). */
		if (state_rank(st) > state_rank(o->ike_state) ||
		    (state_rank(st) == state_rank(o->ike_state) && id > o->ike_unique_id)) {
			o->ike_state = st;
			o->ike_unique_id = id;
			o->ike_established_secs = est;
		}
		r = add_children(o, sa);
		if (r < 0 && ctx->error == 0)
			ctx->error = r;
	}
	return 0;
}

static _Thread_local struct ts_ike_observe_timing last_timing;

const struct ts_ike_observe_timing *ts_ike_observe_last_timing(void)
{
	return &last_timing;
}

static int observe(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
		   const char *account_id, const struct ts_ike_monitor *m, bool sas_only,
		   struct ts_ike_observed *ret_obs, struct ts_ike_names *ret_names)
{
	struct ts_ike_names names = { 0 };
	_cleanup_vici_ struct ts_vici_node *shared = NULL;
	struct ts_ike_observed *obs;
	struct observe_ctx ctx;
	const struct ts_vici_node *keys;
	int r;

	if (n == 0)
		return 0;
	if (!tunnels || !ret_obs)
		return -EINVAL;
	obs = calloc(n, sizeof(*obs));
	if (!obs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(obs[i].tunnel, sizeof(obs[i].tunnel), "%s", tunnels[i].name);
		r = ts_ike_conn_name(&tunnels[i], obs[i].conn_name, sizeof(obs[i].conn_name));
		if (r < 0)
			goto fail;
		obs[i].ike_state = TS_IKE_SA_NONE;
		snprintf(obs[i].conn_diff, sizeof(obs[i].conn_diff), "connection missing");
		ts_ike_monitor_get(m, obs[i].conn_name, &obs[i].failures);
	}
	ctx = (struct observe_ctx){
		tunnels, n, account_id, obs, 0, ret_names && n > OBSERVE_BY_NAME_MAX ? &names : NULL
	};
	r = 0;
	/* The timing is a whole observation's (not a wait's SAs alone). */
	if (!sas_only) {
		memset(&last_timing, 0, sizeof(last_timing));
		last_timing.by_name = n <= OBSERVE_BY_NAME_MAX;
	}
	if (n <= OBSERVE_BY_NAME_MAX) {
		/* A few tunnels (an event's scope): charon's lists filtered by
		 * name, so that the cost does not grow with the gateway. Each
		 * answer goes to that tunnel alone, so a peer that ignores the
		 * filter counts nothing twice. */
		for (size_t i = 0; i < n && r >= 0; i++) {
			struct observe_ctx one = { &tunnels[i], 1, account_id, &obs[i], 0, NULL };
			ts_usec_t t0 = ts_now_monotonic(), t1;

			if (!sas_only)
				r = ts_vici_list_conns(c, obs[i].conn_name, on_conn, &one);
			t1 = ts_now_monotonic();
			if (r >= 0)
				r = ts_vici_list_sas(c, obs[i].conn_name, on_sa, &one);
			if (!sas_only) {
				last_timing.conns_usec += t1 - t0;
				last_timing.sas_usec += ts_now_monotonic() - t1;
			}
			if (r >= 0 && one.error < 0)
				r = one.error;
		}
	} else {
		ts_usec_t t0 = ts_now_monotonic(), t1;

		if (!sas_only)
			r = ts_vici_list_conns(c, NULL, on_conn, &ctx);
		t1 = ts_now_monotonic();
		if (r >= 0)
			r = ts_vici_list_sas(c, NULL, on_sa, &ctx);
		if (!sas_only) {
			last_timing.conns_usec = t1 - t0;
			last_timing.sas_usec = ts_now_monotonic() - t1;
		}
		if (r >= 0 && ctx.error < 0)
			r = ctx.error;
	}
	if (r < 0)
		goto fail;
	if (sas_only)
		goto done;
	/* By name, the keys as the client knows them, when it does (its last
	 * get-shared on this connection, then its own loads and unloads):
	 * get-shared answers every key's id, however few tunnels are asked
	 * about. Blind to keys others loaded or unloaded since: the next
	 * whole observation (a scoped pass's full stage, milliseconds later)
	 * asks get-shared and sees them (agent/daemon/README.md). */
	if (n <= OBSERVE_BY_NAME_MAX && ts_vici_known_shared(c, obs[0].conn_name) >= 0) {
		for (size_t i = 0; i < n; i++)
			obs[i].key_loaded = ts_vici_known_shared(c, obs[i].conn_name) > 0;
		last_timing.keys_known = true;
		goto done;
	}
	{
		ts_usec_t t0 = ts_now_monotonic();

		r = ts_vici_get_shared(c, &shared);
		last_timing.shared_usec = ts_now_monotonic() - t0;
	}
	if (r < 0)
		goto fail;
	keys = ts_vici_get_list(shared, "keys");
	last_timing.n_keys = keys ? keys->n_children : 0;
	for (size_t k = 0; keys && k < keys->n_children; k++) {
		const char *id = ts_vici_node_str(keys->children[k]);
		struct ts_ike_observed *o = obs_find(&ctx, id ?: "");

		if (o)
			o->key_loaded = true;
		if (ctx.names && id) {
			r = names_add(&names.keys, &names.keys_len, &names.n_keys, id);
			if (r < 0)
				goto fail;
		}
	}
	if (ctx.names) {
		names.valid = true;
		*ret_names = names;
	}
done:
	memcpy(ret_obs, obs, n * sizeof(*obs));
	free(obs);
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		ts_ike_observed_done(&obs[i]);
	free(obs);
	ts_ike_names_done(&names);
	return r;
}

int ts_ike_observe(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
		   const char *account_id, const struct ts_ike_monitor *m,
		   struct ts_ike_observed *ret_obs)
{
	return observe(c, tunnels, n, account_id, m, false, ret_obs, NULL);
}

int ts_ike_observe_names(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
			 const char *account_id, const struct ts_ike_monitor *m,
			 struct ts_ike_observed *ret_obs, struct ts_ike_names *ret_names)
{
	if (!ret_names)
		return -EINVAL;
	*ret_names = (struct ts_ike_names){ 0 };
	return observe(c, tunnels, n, account_id, m, false, ret_obs, ret_names);
}

int ts_ike_observe_sas(struct ts_vici_client *c, const struct ts_tunnel *tunnels, size_t n,
		       struct ts_ike_observed *ret_obs)
{
	return observe(c, tunnels, n, NULL, NULL, true, ret_obs, NULL);
}
