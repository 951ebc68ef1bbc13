/* Owns the change list (model/change.h). */
#include "model/change.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int dup_or_null(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int ts_changes_add(struct ts_changes *c, const char *field, const char *old_value,
		   const char *new_value)
{
	struct ts_change ch = { 0 }, *grown;

	if (!c || !field)
		return -EINVAL;
	snprintf(ch.field, sizeof(ch.field), "%s", field);
	if (dup_or_null(old_value, &ch.old_value) < 0 || dup_or_null(new_value, &ch.new_value) < 0)
		goto nomem;
	grown = reallocarray(c->items, c->n + 1, sizeof(*grown));
	if (!grown)
		goto nomem;
	c->items = grown;
	c->items[c->n++] = ch;
	return 0;
nomem:
	free(ch.old_value);
	free(ch.new_value);
	return -ENOMEM;
}

int ts_changes_append(struct ts_changes *c, const struct ts_changes *from)
{
	for (size_t i = 0; from && i < from->n; i++) {
		const struct ts_change *ch = &from->items[i];
		int r = ts_changes_add(c, ch->field, ch->old_value, ch->new_value);

		if (r < 0)
			return r;
	}
	return 0;
}

const struct ts_change *ts_changes_find(const struct ts_changes *c, const char *field)
{
	for (size_t i = 0; c && i < c->n; i++)
		if (ts_streq(c->items[i].field, field))
			return &c->items[i];
	return NULL;
}

void ts_changes_done(struct ts_changes *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->items[i].old_value);
		free(c->items[i].new_value);
	}
	free(c->items);
	c->items = NULL;
	c->n = 0;
}
