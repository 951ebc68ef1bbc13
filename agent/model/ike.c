/* Owns the IKE observation's name tables and destructor. */
#include "model/ike.h"

#include <stdlib.h>

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

void ts_ike_observed_done(struct ts_ike_observed *o)
{
	if (!o)
		return;
	free(o->children);
	o->children = NULL;
	o->n_children = 0;
}
