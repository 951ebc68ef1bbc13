/* Owns finding where a YANG data path is written: which file of a merged
 * config holds it, and on which line. libyang keeps no line numbers in
 * data trees, so errors found after the merge (must, unique, mandatory,
 * checks across tunnels) and every tunnel's source line are placed by a
 * textual search: members or elements in path order, list entries by
 * their key values.
 *
 * The search runs over an index of each file built once, on the first
 * look-up in it: every JSON member / XML element (by local name) and
 * every member with a scalar value (by name and value), with its offset
 * and line. A look-up is then a few binary searches, so locating all N
 * tunnels of a file costs O(N log N) instead of a scan of the text per
 * tunnel (which made loading cubic: 4,000 tunnels took a minute). The
 * plain scan stays as the fallback when the index cannot be built. */
#include "config/config-internal.h"

#include <ctype.h>
#include <stdint.h>

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

struct cfg_occ {
	uint32_t hash; /* of the local name, or of name and value */
	uint32_t pos;  /* offset of the member's '"' or the element's '<' */
	uint32_t line;
};

struct cfg_text_index {
	struct cfg_occ *names; /* every member or element */
	size_t n_names;
	struct cfg_occ *pairs; /* those with a scalar value */
	size_t n_pairs;
};

/* What a search runs over. */
struct text {
	const char *text, *end;
	LYD_FORMAT format;
	const struct cfg_text_index *ix;
};

/* A JSON member or XML element as the index sees it. */
struct member {
	const char *name; /* local name: without a module prefix */
	size_t name_len;
	const char *value; /* scalar value (not unescaped), or NULL */
	size_t value_len;
	size_t next; /* offset where the scan goes on (>= the start) */
};

#define FNV_BASIS 2166136261u

static uint32_t fnv(uint32_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t name_hash(const char *name, size_t len)
{
	return fnv(FNV_BASIS, name, len);
}

static uint32_t pair_hash(const char *name, size_t len, const char *value, size_t value_len)
{
	return fnv(fnv(name_hash(name, len), "", 1), value, value_len);
}

static size_t skip_ws_at(const struct text *t, size_t i)
{
	size_t len = (size_t)(t->end - t->text);

	while (i < len && isspace((unsigned char)t->text[i]))
		i++;
	return i;
}

/* Offset of the '"' closing the JSON string opened at i, or the length. */
static size_t json_string_end(const struct text *t, size_t i)
{
	size_t len = (size_t)(t->end - t->text);

	for (i++; i < len; i++) {
		if (t->text[i] == '\\')
			i++;
		else if (t->text[i] == '"')
			return i;
	}
	return len;
}

static void strip_prefix(struct member *m)
{
	const char *colon = memchr(m->name, ':', m->name_len);

	if (colon) {
		m->name_len -= (size_t)(colon + 1 - m->name);
		m->name = colon + 1;
	}
}

/* The JSON member whose name string opens at pos. */
static bool json_member_at(const struct text *t, size_t pos, struct member *m)
{
	size_t len = (size_t)(t->end - t->text), e = json_string_end(t, pos), k, v, ve;
	const char *s = t->text;

	memset(m, 0, sizeof(*m));
	m->next = e;
	if (e >= len)
		return false;
	k = skip_ws_at(t, e + 1);
	if (k >= len || s[k] != ':')
		return false; /* a value, not a member name */
	m->name = s + pos + 1;
	m->name_len = e - pos - 1;
	strip_prefix(m);
	v = skip_ws_at(t, k + 1);
	if (v < len && s[v] == '"') {
		ve = json_string_end(t, v);
		if (ve < len)
			m->value = s + v + 1, m->value_len = ve - v - 1;
	} else if (v < len && s[v] != '{' && s[v] != '[') {
		for (ve = v; ve < len && !isspace((unsigned char)s[ve]) && s[ve] != ',' &&
			     s[ve] != '}' && s[ve] != ']';
		     ve++)
			;
		if (ve > v)
			m->value = s + v, m->value_len = ve - v;
	}
	return true;
}

/* The XML start tag at pos (a '<'); comments, CDATA, declarations and
 * end tags are skipped. */
static bool xml_element_at(const struct text *t, size_t pos, struct member *m)
{
	size_t len = (size_t)(t->end - t->text), q, g, v, ve;
	const char *s = t->text, *close = NULL;
	char quote = 0;

	memset(m, 0, sizeof(*m));
	m->next = len;
	if (pos + 1 >= len)
		return false;
	if (len - pos >= 4 && memcmp(s + pos, "<!--", 4) == 0)
		close = memmem(s + pos + 4, len - pos - 4, "-->", 3);
	else if (len - pos >= 9 && memcmp(s + pos, "<![CDATA[", 9) == 0)
		close = memmem(s + pos + 9, len - pos - 9, "]]>", 3);
	else if (s[pos + 1] == '!' || s[pos + 1] == '?' || s[pos + 1] == '/')
		close = memchr(s + pos, '>', len - pos);
	else
		goto element;
	m->next = close ? (size_t)(close - s) : len;
	return false;
element:
	for (q = pos + 1; q < len && !isspace((unsigned char)s[q]) && s[q] != '>' && s[q] != '/';
	     q++)
		;
	/* The end of the tag: attribute values may hold '>'. */
	for (g = q; g < len; g++) {
		if (quote) {
			if (s[g] == quote)
				quote = 0;
		} else if (s[g] == '"' || s[g] == '\'') {
			quote = s[g];
		} else if (s[g] == '>') {
			break;
		}
	}
	m->next = g;
	if (q == pos + 1 || g >= len)
		return false;
	m->name = s + pos + 1;
	m->name_len = q - pos - 1;
	strip_prefix(m);
	if (s[g - 1] != '/') {
		v = skip_ws_at(t, g + 1);
		for (ve = v; ve < len && s[ve] != '<'; ve++)
			;
		while (ve > v && isspace((unsigned char)s[ve - 1]))
			ve--;
		if (ve > v && ve < len)
			m->value = s + v, m->value_len = ve - v;
	}
	return true;
}

static bool member_at(const struct text *t, size_t pos, struct member *m)
{
	return t->format == LYD_JSON ? json_member_at(t, pos, m) : xml_element_at(t, pos, m);
}

struct occ_vec {
	struct cfg_occ *v;
	size_t n, cap;
};

static int occ_push(struct occ_vec *a, uint32_t hash, size_t pos, unsigned line)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct cfg_occ *v = reallocarray(a->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = (struct cfg_occ){ .hash = hash, .pos = (uint32_t)pos, .line = line };
	return 0;
}

static int cmp_occ(const void *a, const void *b)
{
	const struct cfg_occ *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void cfg_text_index_free(struct cfg_text_index *ix)
{
	if (!ix)
		return;
	free(ix->names);
	free(ix->pairs);
	free(ix);
}

/* One pass over the text: every member or element with its line. */
static int index_build(const struct text *t, struct cfg_text_index **ret_ix)
{
	size_t len = (size_t)(t->end - t->text), scanned = 0;
	char lead = t->format == LYD_JSON ? '"' : '<';
	struct occ_vec names = { 0 }, pairs = { 0 };
	struct cfg_text_index *ix;
	unsigned line = 1;
	int r = -ENOMEM;

	if (len >= UINT32_MAX)
		return -EFBIG;
	for (size_t i = 0; i < len;) {
		const char *p = memchr(t->text + i, lead, len - i);
		struct member m;

		if (!p)
			break;
		i = (size_t)(p - t->text);
		if (member_at(t, i, &m)) {
			for (const char *nl = t->text + scanned;
			     (nl = memchr(nl, '\n', i - (size_t)(nl - t->text))); nl++)
				line++;
			scanned = i;
			if (occ_push(&names, name_hash(m.name, m.name_len), i, line) < 0 ||
			    (m.value &&
			     occ_push(&pairs, pair_hash(m.name, m.name_len, m.value, m.value_len),
				      i, line) < 0))
				goto fail;
		}
		i = m.next + 1;
	}
	ix = calloc(1, sizeof(*ix));
	if (!ix)
		goto fail;
	/* qsort(NULL, 0, ...) is undefined (UBSan, found by fuzzing). */
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_occ);
	if (pairs.n)
		qsort(pairs.v, pairs.n, sizeof(*pairs.v), cmp_occ);
	*ix = (struct cfg_text_index){
		.names = names.v, .n_names = names.n, .pairs = pairs.v, .n_pairs = pairs.n
	};
	*ret_ix = ix;
	return 0;
fail:
	free(names.v);
	free(pairs.v);
	return r;
}

/* The first entry with hash at or after offset from. */
static const struct cfg_occ *occ_first(const struct cfg_occ *v, size_t n, uint32_t hash,
				       size_t from)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].hash < hash || (v[mid].hash == hash && v[mid].pos < from))
			lo = mid + 1;
		else
			hi = mid;
	}
	return &v[lo];
}

/* Position of the member or element named name at or after from (JSON:
 * its opening '"'; XML: its '<'); *ret_line its line. */
static const char *find_name(const struct text *t, const char *from, const char *name, size_t len,
			     unsigned *ret_line)
{
	const struct cfg_occ *o, *end;
	uint32_t h = name_hash(name, len);

	if (!t->ix->n_names)
		return NULL; /* names is NULL: no pointer arithmetic on it */
	end = t->ix->names + t->ix->n_names;
	for (o = occ_first(t->ix->names, t->ix->n_names, h, (size_t)(from - t->text));
	     o < end && o->hash == h; o++) {
		struct member m;

		if (member_at(t, o->pos, &m) && m.name_len == len &&
		    memcmp(m.name, name, len) == 0) {
			*ret_line = o->line;
			return t->text + o->pos;
		}
	}
	return NULL;
}

/* Position of the list entry whose key key has value value, searching
 * from from: the position of the key's member or element. */
static const char *find_key(const struct text *t, const char *from, const char *key, size_t key_len,
			    const char *value, size_t value_len, unsigned *ret_line)
{
	const struct cfg_occ *o, *end;
	const char *p = from;
	uint32_t h;

	{
		const char *colon = memchr(key, ':', key_len);

		if (colon) {
			key_len -= (size_t)(colon + 1 - key);
			key = colon + 1;
		}
	}
	if (key_len == 1 && key[0] == '.') {
		/* A leaf-list value: "v" in JSON, >v< in XML; rare (errors only):
		 * a scan, its line counted by the caller. */
		if (value_len == 0)
			return NULL;
		*ret_line = 0;
		for (; p < t->end && (p = memmem(p, (size_t)(t->end - p), value, value_len)); p++) {
			char before = p > t->text ? p[-1] : 0, after = p[value_len];

			if (t->format == LYD_JSON && before == '"' && after == '"')
				return p - 1;
			if (t->format == LYD_XML && before == '>' && after == '<')
				return p;
		}
		return NULL;
	}
	if (!t->ix->n_pairs)
		return NULL;
	h = pair_hash(key, key_len, value, value_len);
	end = t->ix->pairs + t->ix->n_pairs;
	for (o = occ_first(t->ix->pairs, t->ix->n_pairs, h, (size_t)(from - t->text));
	     o < end && o->hash == h; o++) {
		struct member m;

		if (member_at(t, o->pos, &m) && m.name_len == key_len &&
		    memcmp(m.name, key, key_len) == 0 && m.value && m.value_len == value_len &&
		    memcmp(m.value, value, value_len) == 0) {
			*ret_line = o->line;
			return t->text + o->pos;
		}
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

unsigned cfg_find_line(struct cfg_file *f, const char *path)
{
	return cfg_find_line_full(f, path, NULL);
}

unsigned cfg_find_line_full(struct cfg_file *f, const char *path, bool *ret_complete)
{
	const char *s = path, *pos, *found = NULL;
	bool more = true; /* a segment was left unfound */
	unsigned found_line = 0;
	struct text t;
	struct seg g;

	if (ret_complete)
		*ret_complete = false;
	if (!f || !f->data || !path)
		return 0;
	/* Without an index (no memory, a file over 4 GiB) the line is
	 * unknown; the message keeps its file and path. */
	if (!f->index) {
		t = (struct text){ .text = f->data, .end = f->data + f->len, .format = f->format };
		if (index_build(&t, &f->index) < 0)
			return 0;
	}
	t = (struct text){
		.text = f->data, .end = f->data + f->len, .format = f->format, .ix = f->index
	};
	pos = t.text;
	while ((more = next_seg(&s, &g))) {
		unsigned line = 0;
		const char *p = find_name(&t, pos, g.name, g.name_len, &line);

		if (!p)
			break;
		for (int i = 0; i < g.n_pred && p; i++)
			/* The entry starts before its key; the key line is close
			 * enough and unambiguous. */
			p = find_key(&t, p, g.pred[i].key, g.pred[i].key_len, g.pred[i].value,
				     g.pred[i].value_len, &line);
		if (!p)
			break;
		found = pos = p;
		found_line = line;
	}
	if (ret_complete)
		*ret_complete = found && !more;
	if (!found)
		return 0;
	return found_line ? found_line : line_of(t.text, found);
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

/* Every list entry of every file: a hash of its data path and the file,
 * sorted, so that the file of a tunnel is found without asking each file
 * (which made a directory of one file per tunnel quadratic). */
struct cfg_entry_map {
	struct cfg_entry {
		uint64_t hash;
		size_t file;
	} * v;
	size_t n;
};

static uint64_t path_hash(const char *path)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull;
	}
	return h;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct cfg_entry *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->file > y->file) - (x->file < y->file);
}

void cfg_entry_map_free(struct cfg_entry_map *map)
{
	if (!map)
		return;
	free(map->v);
	free(map);
}

static int entry_map_build(struct cfg_load *L, struct cfg_entry_map **ret_map)
{
	struct cfg_entry_map *map = calloc(1, sizeof(*map));
	size_t cap = 0;
	int r = 0;

	if (!map)
		return -ENOMEM;
	for (size_t i = 0; i < L->n_files && r == 0; i++) {
		struct lyd_node *root, *n;

		LY_LIST_FOR(L->files[i].tree, root)
		{
			LYD_TREE_DFS_BEGIN(root, n)
			{
				if (r == 0 && n->schema && n->schema->nodetype == LYS_LIST) {
					_cleanup_free_ char *path =
						lyd_path(n, LYD_PATH_STD, NULL, 0);

					if (map->n == cap) {
						size_t c = cap ? cap * 2 : 64;
						struct cfg_entry *v =
							reallocarray(map->v, c, sizeof(*v));

						if (!v)
							r = -ENOMEM;
						else
							map->v = v, cap = c;
					}
					if (!path)
						r = -ENOMEM;
					if (r == 0)
						map->v[map->n++] =
							(struct cfg_entry){ .hash = path_hash(path),
									    .file = i };
				}
				LYD_TREE_DFS_END(root, n);
			}
		}
	}
	if (r < 0) {
		cfg_entry_map_free(map);
		return r;
	}
	if (map->n) /* qsort(NULL, 0, ...) is undefined (found by fuzz_config_dir) */
		qsort(map->v, map->n, sizeof(*map->v), cmp_entry);
	*ret_map = map;
	return 0;
}

/* The first file that holds the list entry at path, or NULL (not a list
 * entry, or in no file, or no memory for the map). */
static struct cfg_file *locate_entry(struct cfg_load *L, const char *path)
{
	uint64_t h = path_hash(path);
	size_t lo = 0, hi;

	if (!L->entries && entry_map_build(L, &L->entries) < 0)
		return NULL;
	hi = L->entries->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (L->entries->v[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Sorted by file within a hash: the first file that really holds it
	 * (a hash shared by another path is skipped). */
	for (; lo < L->entries->n && L->entries->v[lo].hash == h; lo++) {
		struct cfg_file *f = &L->files[L->entries->v[lo].file];
		struct lyd_node *m = NULL;

		if (lyd_find_path(f->tree, path, 0, &m) == LY_SUCCESS)
			return f;
		ly_err_clean(L->ctx, NULL);
	}
	return NULL;
}

const struct cfg_file *cfg_locate(struct cfg_load *L, const char *path, unsigned *ret_line)
{
	struct cfg_file *best = NULL;
	int best_depth = 0;

	if (!path)
		return NULL;
	/* A list entry held whole by a file: that file has the longest
	 * prefix, and the first such file wins as below. */
	if (L->n_files > 1)
		best = locate_entry(L, path);
	for (size_t i = 0; i < L->n_files && !best; i++) {
		int depth = existing_depth(L, L->files[i].tree, path);

		if (depth > best_depth) {
			best_depth = depth;
			best = &L->files[i];
		}
	}
	if (!best && L->n_files == 1)
		best = &L->files[0];
	if (best && ret_line)
		*ret_line = cfg_find_line(best, path);
	return best;
}
