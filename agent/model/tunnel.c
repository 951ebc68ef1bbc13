/* Owns the desired-state structs' name tables and destructors. */
#include "model/tunnel.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

const char *const ts_identity_type_names[_TS_IDENTITY_MAX] = {
	[TS_IDENTITY_FQDN] = "fqdn",
	[TS_IDENTITY_USER_FQDN] = "user-fqdn",
	[TS_IDENTITY_KEY_ID] = "key-id",
	[TS_IDENTITY_IPV4] = "ipv4",
};

const char *const ts_psk_source_names[_TS_PSK_SOURCE_MAX] = {
	[TS_PSK_SOURCE_RANDOM] = "random",
	[TS_PSK_SOURCE_GENERATE] = "generate",
	[TS_PSK_SOURCE_FILE] = "file",
};

const char *const ts_tunnel_mode_names[_TS_MODE_MAX] = {
	[TS_MODE_ROUTE] = "route-based",
	[TS_MODE_POLICY] = "policy-based",
};

const char *ts_identity_type_to_string(enum ts_identity_type t)
{
	return (unsigned)t < _TS_IDENTITY_MAX ? ts_identity_type_names[t] : "unknown";
}

const char *ts_psk_source_to_string(enum ts_psk_source s)
{
	return (unsigned)s < _TS_PSK_SOURCE_MAX ? ts_psk_source_names[s] : "unknown";
}

const char *ts_tunnel_mode_to_string(enum ts_tunnel_mode m)
{
	return (unsigned)m < _TS_MODE_MAX ? ts_tunnel_mode_names[m] : "unknown";
}

void ts_tunnel_done(struct ts_tunnel *t)
{
	if (!t)
		return;
	free(t->routing.selectors);
	free(t->routes.route);
	free(t->psk.file);
	free(t->cf.description);
	free(t->source_file);
	memset(t, 0, sizeof(*t));
}

void ts_desired_free(struct ts_desired *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_tunnels; i++)
		ts_tunnel_done(&d->tunnels[i]);
	free(d->tunnels);
	free(d->agent.state_dir);
	free(d->agent.vici_socket);
	free(d->agent.strongswan_conf);
	free(d->agent.metrics_listen);
	free(d->cloudflare.api_base_url);
	free(d->cloudflare.token_file);
	free(d->cloudflare.email);
	free(d->cloudflare.key_file);
	free(d->cloudflare.ca_file);
	free(d);
}

const struct ts_tunnel *ts_desired_find(const struct ts_desired *d, const char *name)
{
	size_t lo = 0, hi = d->n_tunnels;

	/* Sorted by name (the loader's contract): a binary search, since
	 * every action of a pass looks its tunnel up. A miss is confirmed by
	 * a scan (misses are rare: undeclared names), so that a desired state
	 * built unsorted in code can never hide a declared tunnel. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->tunnels[mid].name, name);

		if (c == 0)
			return &d->tunnels[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (strcmp(d->tunnels[i].name, name) == 0)
			return &d->tunnels[i];
	return NULL;
}

const struct ts_tunnel *ts_desired_find_id(const struct ts_desired *d, const char *id)
{
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (strcmp(d->tunnels[i].id, id) == 0)
			return &d->tunnels[i];
	return NULL;
}

bool ts_tunnel_is_local(const struct ts_tunnel *t, const char *node)
{
	return t->gateway[0] == '\0' || (node && strcmp(t->gateway, node) == 0);
}

uint64_t ts_tunnel_key_due_age(const struct ts_tunnel *t, uint32_t jitter_percent)
{
	uint64_t h = 14695981039346656037ull, window;

	if (!t->psk.max_age || !jitter_percent)
		return t->psk.max_age;
	for (const unsigned char *p = (const unsigned char *)t->id; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	/* FNV alone barely moves its top bits for ids that differ at the
	 * end: a finalizer (MurmurHash3's fmix64) spreads them. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	/* 1/65536 steps of the window. */
	window = t->psk.max_age * (jitter_percent > 100 ? 100 : jitter_percent) / 100;
	return t->psk.max_age - window * (h >> 48) / 65536;
}
