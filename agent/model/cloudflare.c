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
	free(t->description);
	memset(t, 0, sizeof(*t));
}

void ts_cf_tunnel_list_done(struct ts_cf_tunnel_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_tunnels; i++)
		ts_cf_tunnel_done(&l->tunnels[i]);
	free(l->tunnels);
	l->tunnels = NULL;
	l->n_tunnels = 0;
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
	for (size_t i = 0; l && i < l->n_tunnels; i++)
		if (ts_streq(l->tunnels[i].id, id))
			return &l->tunnels[i];
	return NULL;
}
