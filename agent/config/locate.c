/* Owns finding where a YANG data path is written: which file of a merged
 * config holds it, and on which line. libyang keeps no line numbers in
 * data trees, so errors found after the merge (must, unique, mandatory,
 * checks across tunnels) are placed by a textual search: members or
 * elements in path order, list entries by their key values. */
#include "config/config-internal.h"

#include <ctype.h>

#define MAX_PREDS 4

struct seg {
	const char *name;
	size_t name_len;
	struct {
		const char *key;
		size_t key_len;
		const char *value;
		size_t value_len;
	} pred[MAX_PREDS];
	int n_pred;
};

/* Parses the next segment of path at *s (after its '/'); returns false at
 * the end or on a malformed path. */
static bool next_seg(const char **s, struct seg *g)
{
	const char *p = *s, *colon;

	memset(g, 0, sizeof(*g));
	if (*p == '/')
		p++;
	if (!*p)
		return false;
	g->name = p;
	while (*p && *p != '/' && *p != '[')
		p++;
	g->name_len = (size_t)(p - g->name);
	colon = memchr(g->name, ':', g->name_len);
	if (colon) {
		g->name_len -= (size_t)(colon + 1 - g->name);
		g->name = colon + 1;
	}
	while (*p == '[') {
		const char *k = ++p;
		char q;

		while (*p && *p != '=' && *p != ']')
			p++;
		if (*p != '=') {
			/* A position ([1]): not usable for a search. */
			while (*p && *p != ']')
				p++;
			if (*p == ']')
				p++;
			continue;
		}
		if (g->n_pred < MAX_PREDS) {
			g->pred[g->n_pred].key = k;
			g->pred[g->n_pred].key_len = (size_t)(p - k);
		}
		p++;
		q = *p;
		if (q != '\'' && q != '"')
			return false;
		p++;
		if (g->n_pred < MAX_PREDS)
			g->pred[g->n_pred].value = p;
		while (*p && *p != q)
			p++;
		if (!*p)
			return false;
		if (g->n_pred < MAX_PREDS)
			g->pred[g->n_pred].value_len = (size_t)(p - g->pred[g->n_pred].value),
			g->n_pred++;
		p++;
		if (*p != ']')
			return false;
		p++;
	}
	*s = p;
	return true;
}

static const char *skip_ws(const char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static bool strip_prefix_len(const char **k, size_t *len)
{
	const char *colon = memchr(*k, ':', *len);

	if (colon) {
		*len -= (size_t)(colon + 1 - *k);
		*k = colon + 1;
	}
	return true;
}

/* Position of the member or element named name at or after from. JSON:
 * "name": or "module:name":. XML: <name or <prefix:name followed by a
 * space, '>' or '/'. */
static const char *find_name(const char *text, const char *from, LYD_FORMAT format,
			     const char *name, size_t len)
{
	if (len == 0)
		return NULL;
	for (const char *p = from; *p && (p = memmem(p, strlen(p), name, len)); p++) {
		const char *b = p;
		char c = p[len];

		if (b == text)
			continue;
		if (format == LYD_JSON) {
			if (c != '"' || (b[-1] != '"' && b[-1] != ':'))
				continue;
			if (*skip_ws(p + len + 1) != ':')
				continue;
			while (b > text && b[-1] != '"')
				b--;
			return b > text ? b - 1 : b;
		}
		if (!(c == '>' || c == '/' || isspace((unsigned char)c)))
			continue;
		if (b[-1] == ':')
			while (b > text && b[-1] != '<' && !isspace((unsigned char)b[-1]))
				b--;
		if (b > text && b[-1] == '<')
			return b - 1;
	}
	return NULL;
}

/* Position of the list entry whose key key has value value, searching
 * from from: the position of the key's member or element. */
static const char *find_key(const char *text, const char *from, LYD_FORMAT format, const char *key,
			    size_t key_len, const char *value, size_t value_len)
{
	const char *p = from;

	strip_prefix_len(&key, &key_len);
	if (key_len == 1 && key[0] == '.') {
		/* A leaf-list value: "v" in JSON, >v< in XML. */
		if (value_len == 0)
			return NULL;
		for (; *p && (p = memmem(p, strlen(p), value, value_len)); p++) {
			char before = p > text ? p[-1] : 0, after = p[value_len];

			if (format == LYD_JSON && before == '"' && after == '"')
				return p - 1;
			if (format == LYD_XML && before == '>' && after == '<')
				return p;
		}
		return NULL;
	}
	while ((p = find_name(text, p, format, key, key_len))) {
		const char *v;

		if (format == LYD_JSON) {
			v = strchr(p + 1, '"');
			v = v ? skip_ws(v + 1) : NULL;
			if (v && *v == ':')
				v = skip_ws(v + 1);
			if (v && *v == '"')
				v++;
		} else {
			v = strchr(p, '>');
			v = v ? skip_ws(v + 1) : NULL;
		}
		if (v && strncmp(v, value, value_len) == 0 &&
		    (v[value_len] == '"' || v[value_len] == '<' || v[value_len] == ',' ||
		     v[value_len] == '}' || isspace((unsigned char)v[value_len])))
			return p;
		p += key_len + 1; /* past this member: find_name returns its start */
	}
	return NULL;
}

static unsigned line_of(const char *text, const char *pos)
{
	unsigned line = 1;

	for (const char *p = text; p < pos; p++)
		if (*p == '\n')
			line++;
	return line;
}

unsigned cfg_find_line(const char *text, LYD_FORMAT format, const char *path)
{
	return cfg_find_line_full(text, format, path, NULL);
}

unsigned cfg_find_line_full(const char *text, LYD_FORMAT format, const char *path,
			    bool *ret_complete)
{
	const char *s = path, *pos = text, *found = NULL;
	bool more = true; /* a segment was left unfound */
	struct seg g;

	if (!text || !path)
		return 0;
	while ((more = next_seg(&s, &g))) {
		const char *p = find_name(text, pos, format, g.name, g.name_len);

		if (!p)
			break;
		for (int i = 0; i < g.n_pred && p; i++) {
			const char *k = find_key(text, p, format, g.pred[i].key, g.pred[i].key_len,
						 g.pred[i].value, g.pred[i].value_len);

			/* The entry starts before its key; the key line is close
			 * enough and unambiguous. */
			if (!k)
				p = NULL;
			else
				p = k;
		}
		if (!p)
			break;
		found = pos = p;
	}
	if (ret_complete)
		*ret_complete = found && !more;
	return found ? line_of(text, found) : 0;
}

/* Depth (number of segments) of the longest prefix of path that exists in
 * tree. */
static int existing_depth(struct cfg_load *L, const struct lyd_node *tree, const char *path)
{
	int depth = 0, best = 0;
	size_t len = strlen(path);
	_cleanup_free_ char *copy = strdup(path);

	if (!tree || !copy)
		return 0;
	for (size_t i = 1, bracket = 0; i <= len; i++) {
		if (path[i] == '[')
			bracket++;
		else if (path[i] == ']')
			bracket--;
		if ((path[i] == '/' && bracket == 0) || path[i] == '\0') {
			struct lyd_node *m = NULL;

			depth++;
			copy[i] = '\0';
			if (lyd_find_path(tree, copy, 0, &m) == LY_SUCCESS)
				best = depth;
			else
				break;
			copy[i] = path[i];
		}
	}
	ly_err_clean(L->ctx, NULL);
	return best;
}

const struct cfg_file *cfg_locate(struct cfg_load *L, const char *path, unsigned *ret_line)
{
	const struct cfg_file *best = NULL;
	int best_depth = 0;

	if (!path)
		return NULL;
	for (size_t i = 0; i < L->n_files; i++) {
		int depth = existing_depth(L, L->files[i].tree, path);

		if (depth > best_depth) {
			best_depth = depth;
			best = &L->files[i];
		}
	}
	if (!best && L->n_files == 1)
		best = &L->files[0];
	if (best && ret_line)
		*ret_line = cfg_find_line(best->data, best->format, path);
	return best;
}
