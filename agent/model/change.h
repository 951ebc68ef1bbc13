/* One declared value against the one a plane holds, for the plan's
 * "field: old -> new" lines: a connection leaf, a Cloudflare tunnel
 * property, a key fingerprint. Plain data; no secrets ever (keys appear
 * as fingerprints only). */
#pragma once

#include <stddef.h>

#define TS_CHANGE_FIELD_MAX 40

struct ts_change {
	char field[TS_CHANGE_FIELD_MAX]; /* "child.esp_proposals", "interface_address", ... */
	char *old_value;		 /* owned; NULL: not known (not recorded, not listed) */
	char *new_value;		 /* owned; NULL: not known yet (e.g. a random key) */
};

struct ts_changes {
	struct ts_change *items; /* owned */
	size_t n;
};

/* Appends a change; values are copied ("" = none, NULL = unknown).
 * Returns 0 or -ENOMEM (c unchanged then). */
int ts_changes_add(struct ts_changes *c, const char *field, const char *old_value,
		   const char *new_value);
/* Appends copies of every change of from. */
int ts_changes_append(struct ts_changes *c, const struct ts_changes *from);
/* The change of that field, NULL when absent. */
const struct ts_change *ts_changes_find(const struct ts_changes *c, const char *field);
/* Frees what the struct owns and zeroes it; accepts NULL. */
void ts_changes_done(struct ts_changes *c);
