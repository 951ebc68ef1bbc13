/* Owns the destructors and name tables of the observed Cloudflare structs. */
#include "model/cloudflare.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

const char *const ts_cf_psk_status_names[_TS_CF_PSK_STATUS_MAX] = {
	[TS_CF_PSK_APPLIED] = "applied",
	[TS_CF_PSK_UNAPPLIED] = "unapplied",
	[TS_CF_PSK_MISSING] = "missing",
};

const char *ts_cf_psk_status_to_string(enum ts_cf_psk_status s)
{
	return (unsigned)s < _TS_CF_PSK_STATUS_MAX ? ts_cf_psk_status_names[s] : "unknown";
}

void ts_cf_tunnel_done(struct ts_cf_tunnel *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->description);
	free(t->fqdn_id);
	memset(t, 0, sizeof(*t));
}

void ts_cf_tunnel_list_done(struct ts_cf_tunnel_list *l)
{
	if (!l)
		return;
	if (!l->strings)
		for (size_t i = 0; i < l->n_tunnels; i++)
			ts_cf_tunnel_done(&l->tunnels[i]);
	free(l->tunnels);
	free(l->by_id);
	free(l->strings);
	l->tunnels = NULL;
	l->by_id = NULL;
	l->strings = NULL;
	l->n_tunnels = 0;
}

static int cmp_by_id(const void *a, const void *b)
{
	return strcmp((*(const struct ts_cf_tunnel *const *)a)->id,
		      (*(const struct ts_cf_tunnel *const *)b)->id);
}

int ts_cf_tunnel_list_index(struct ts_cf_tunnel_list *l)
{
	const struct ts_cf_tunnel **v;

	free(l->by_id);
	l->by_id = NULL;
	v = calloc(l->n_tunnels ? l->n_tunnels : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_tunnels; i++)
		v[i] = &l->tunnels[i];
	qsort(v, l->n_tunnels, sizeof(*v), cmp_by_id);
	l->by_id = v;
	return 0;
}

void ts_cf_psk_set_result_done(struct ts_cf_psk_set_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_outcomes; i++)
		free(r->outcomes[i].reason);
	free(r->outcomes);
	memset(r, 0, sizeof(*r));
}

void ts_cf_psk_generated_done(struct ts_cf_psk_generated *g)
{
	if (!g)
		return;
	ts_secret_free(g->psk);
	memset(g, 0, sizeof(*g));
}

const struct ts_cf_tunnel *ts_cf_tunnel_list_find(const struct ts_cf_tunnel_list *l, const char *id)
{
	if (l && l->by_id && id) {
		struct ts_cf_tunnel key;
		const struct ts_cf_tunnel *k = &key, *const * hit;

		if (ts_strlcpy(key.id, id, sizeof(key.id)) < 0)
			return NULL;
		hit = bsearch(&k, l->by_id, l->n_tunnels, sizeof(*l->by_id), cmp_by_id);
		return hit ? *hit : NULL; /* the first of equal ids in API order: ids are unique */
	}
	for (size_t i = 0; l && i < l->n_tunnels; i++)
		if (ts_streq(l->tunnels[i].id, id))
			return &l->tunnels[i];
	return NULL;
}
