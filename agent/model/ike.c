/* Owns the IKE observation's name tables and destructor. */
#include "model/ike.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "core/util.h"

const char *const ts_ike_sa_state_names[_TS_IKE_SA_STATE_MAX] = {
	[TS_IKE_SA_NONE] = "NONE",
	[TS_IKE_SA_CREATED] = "CREATED",
	[TS_IKE_SA_CONNECTING] = "CONNECTING",
	[TS_IKE_SA_ESTABLISHED] = "ESTABLISHED",
	[TS_IKE_SA_PASSIVE] = "PASSIVE",
	[TS_IKE_SA_REKEYING] = "REKEYING",
	[TS_IKE_SA_REKEYED] = "REKEYED",
	[TS_IKE_SA_DELETING] = "DELETING",
	[TS_IKE_SA_DESTROYING] = "DESTROYING",
	[TS_IKE_SA_UNKNOWN] = "UNKNOWN",
};

const char *const ts_child_sa_state_names[_TS_CHILD_SA_STATE_MAX] = {
	[TS_CHILD_SA_CREATED] = "CREATED",	 [TS_CHILD_SA_ROUTED] = "ROUTED",
	[TS_CHILD_SA_INSTALLING] = "INSTALLING", [TS_CHILD_SA_INSTALLED] = "INSTALLED",
	[TS_CHILD_SA_UPDATING] = "UPDATING",	 [TS_CHILD_SA_REKEYING] = "REKEYING",
	[TS_CHILD_SA_REKEYED] = "REKEYED",	 [TS_CHILD_SA_RETRYING] = "RETRYING",
	[TS_CHILD_SA_DELETING] = "DELETING",	 [TS_CHILD_SA_DELETED] = "DELETED",
	[TS_CHILD_SA_DESTROYING] = "DESTROYING", [TS_CHILD_SA_UNKNOWN] = "UNKNOWN",
};

const char *ts_ike_sa_state_to_string(enum ts_ike_sa_state s)
{
	return (unsigned)s < _TS_IKE_SA_STATE_MAX ? ts_ike_sa_state_names[s] : "UNKNOWN";
}

const char *ts_child_sa_state_to_string(enum ts_child_sa_state s)
{
	return (unsigned)s < _TS_CHILD_SA_STATE_MAX ? ts_child_sa_state_names[s] : "UNKNOWN";
}

enum ts_ike_sa_state ts_ike_sa_state_from_string(const char *s)
{
	/* NONE and UNKNOWN are ours, not charon's. */
	for (unsigned i = TS_IKE_SA_CREATED; i < TS_IKE_SA_UNKNOWN; i++)
		if (ts_streq(s, ts_ike_sa_state_names[i]))
			return (enum ts_ike_sa_state)i;
	return TS_IKE_SA_UNKNOWN;
}

enum ts_child_sa_state ts_child_sa_state_from_string(const char *s)
{
	for (unsigned i = 0; i < TS_CHILD_SA_UNKNOWN; i++)
		if (ts_streq(s, ts_child_sa_state_names[i]))
			return (enum ts_child_sa_state)i;
	return TS_CHILD_SA_UNKNOWN;
}

const char *const ts_ike_leaf_names[_TS_LEAF_MAX] = {
	[TS_LEAF_VERSION] = "version",
	[TS_LEAF_LOCAL_ADDRS] = "local_addrs",
	[TS_LEAF_REMOTE_ADDRS] = "remote_addrs",
	[TS_LEAF_PROPOSALS] = "proposals",
	[TS_LEAF_KEYINGTRIES] = "keyingtries",
	[TS_LEAF_MOBIKE] = "mobike",
	[TS_LEAF_REKEY_TIME] = "rekey_time",
	[TS_LEAF_OVER_TIME] = "over_time",
	[TS_LEAF_RAND_TIME] = "rand_time",
	[TS_LEAF_REAUTH_TIME] = "reauth_time",
	[TS_LEAF_DPD_DELAY] = "dpd_delay",
	[TS_LEAF_LOCAL_AUTH] = "local.auth",
	[TS_LEAF_LOCAL_ID] = "local.id",
	[TS_LEAF_REMOTE_AUTH] = "remote.auth",
	[TS_LEAF_REMOTE_ID] = "remote.id",
	[TS_LEAF_CHILDREN] = "children",
	[TS_LEAF_CHILD_MODE] = "child.mode",
	[TS_LEAF_CHILD_ESP_PROPOSALS] = "child.esp_proposals",
	[TS_LEAF_CHILD_LOCAL_TS] = "child.local_ts",
	[TS_LEAF_CHILD_REMOTE_TS] = "child.remote_ts",
	[TS_LEAF_CHILD_REKEY_TIME] = "child.rekey_time",
	[TS_LEAF_CHILD_LIFE_TIME] = "child.life_time",
	[TS_LEAF_CHILD_RAND_TIME] = "child.rand_time",
	[TS_LEAF_CHILD_START_ACTION] = "child.start_action",
	[TS_LEAF_CHILD_DPD_ACTION] = "child.dpd_action",
	[TS_LEAF_CHILD_CLOSE_ACTION] = "child.close_action",
	[TS_LEAF_CHILD_REPLAY_WINDOW] = "child.replay_window",
	[TS_LEAF_CHILD_IF_ID_IN] = "child.if_id_in",
	[TS_LEAF_CHILD_IF_ID_OUT] = "child.if_id_out",
	[TS_LEAF_CHILD_MARK_IN] = "child.mark_in",
	[TS_LEAF_CHILD_MARK_OUT] = "child.mark_out",
	[TS_LEAF_CHILD_MARK_IN_SA] = "child.mark_in_sa",
	[TS_LEAF_CHILD_REQID] = "child.reqid",
	[TS_LEAF_SHARED_OWNERS] = "shared.owners",
};

/* vici_query.c list_conns() of 5.9.8: addresses, version, reauth_time,
 * rekey_time, dpd_delay (when not 0), the auth rounds (class, id), and per
 * CHILD config mode, rekey_time, dpd_action, close_action and selectors.
 * Not: proposals, over/rand times, keyingtries, mobike, life_time,
 * start_action, replay_window, if_id, marks, reqid; get-shared lists key
 * ids only, not owners. */
const bool ts_ike_leaf_listed[_TS_LEAF_MAX] = {
	[TS_LEAF_VERSION] = true,
	[TS_LEAF_LOCAL_ADDRS] = true,
	[TS_LEAF_REMOTE_ADDRS] = true,
	[TS_LEAF_REKEY_TIME] = true,
	[TS_LEAF_REAUTH_TIME] = true,
	[TS_LEAF_DPD_DELAY] = true,
	[TS_LEAF_LOCAL_AUTH] = true,
	[TS_LEAF_LOCAL_ID] = true,
	[TS_LEAF_REMOTE_AUTH] = true,
	[TS_LEAF_REMOTE_ID] = true,
	[TS_LEAF_CHILDREN] = true,
	[TS_LEAF_CHILD_MODE] = true,
	[TS_LEAF_CHILD_LOCAL_TS] = true,
	[TS_LEAF_CHILD_REMOTE_TS] = true,
	[TS_LEAF_CHILD_REKEY_TIME] = true,
	[TS_LEAF_CHILD_DPD_ACTION] = true,
	[TS_LEAF_CHILD_CLOSE_ACTION] = true,
};

const char *ts_ike_leaf_to_string(enum ts_ike_leaf l)
{
	return (unsigned)l < _TS_LEAF_MAX ? ts_ike_leaf_names[l] : "unknown";
}

enum ts_ike_leaf ts_ike_leaf_from_string(const char *name)
{
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		if (ts_streq(name, ts_ike_leaf_names[i]))
			return (enum ts_ike_leaf)i;
	return _TS_LEAF_MAX;
}

void ts_ike_leaves_done(struct ts_ike_leaves *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++) {
		free(l->values[i]);
		l->values[i] = NULL;
	}
}

void ts_ike_leaves_fingerprint(const struct ts_ike_leaves *l, char ret_fp[TS_FINGERPRINT_LEN])
{
	struct ts_sha256_ctx ctx;
	uint8_t digest[TS_SHA256_DIGEST_LEN];
	char hex[65];

	ts_sha256_init(&ctx);
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++) {
		const char *v = l->values[i] ? l->values[i] : "";

		ts_sha256_update(&ctx, ts_ike_leaf_names[i], strlen(ts_ike_leaf_names[i]));
		ts_sha256_update(&ctx, "=", 1);
		ts_sha256_update(&ctx, v, strlen(v));
		ts_sha256_update(&ctx, "\n", 1);
	}
	ts_sha256_final(&ctx, digest);
	ts_sha256_hex(digest, hex);
	snprintf(ret_fp, TS_FINGERPRINT_LEN, "sha256:%.16s", hex);
}

void ts_ike_observed_done(struct ts_ike_observed *o)
{
	if (!o)
		return;
	ts_ike_leaves_done(&o->listed);
	ts_ike_leaves_done(&o->want);
	free(o->children);
	o->children = NULL;
	o->n_children = 0;
}
