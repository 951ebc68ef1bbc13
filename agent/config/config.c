/* Owns the load of a config: finding and reading its files through one
 * resolution of the (git-sync) path, parsing each with libyang, refusing
 * values that two files set differently, merging, validating, and turning
 * libyang's errors into file, line, YANG path and plain words. */
#include "config/config-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "core/log.h"

void ts_config_error_done(struct ts_config_error *e)
{
	if (!e)
		return;
	free(e->file);
	free(e->path);
	free(e->message);
	memset(e, 0, sizeof(*e));
}

int ts_config_error_format(const struct ts_config_error *e, char *buf, size_t size)
{
	char line[24] = "";

	if (e->file && e->line)
		snprintf(line, sizeof(line), ":%u", e->line);
	return snprintf(buf, size, "%s%s%s%s%s%s", e->file ? e->file : "", line,
			e->file ? ": " : "", e->path ? e->path : "", e->path ? ": " : "",
			e->message ? e->message : "invalid configuration");
}

static bool dir_has_module(const char *dir)
{
	_cleanup_free_ char *p = NULL;

	if (asprintf(&p, "%s/" TS_CONFIG_MODULE ".yang", dir) < 0)
		return false;
	return access(p, R_OK) == 0;
}

int ts_config_models_dir(const char *override, const char **ret_dir)
{
	struct stat st;

	if (override) {
		if (stat(override, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		*ret_dir = override;
		return 0;
	}
	if (dir_has_module(TS_CONFIG_INSTALL_MODELS_DIR)) {
		*ret_dir = TS_CONFIG_INSTALL_MODELS_DIR;
		return 0;
	}
	if (dir_has_module(TS_CONFIG_SOURCE_MODELS_DIR)) {
		*ret_dir = TS_CONFIG_SOURCE_MODELS_DIR;
		return 0;
	}
	return -ENOENT;
}

static TS_PRINTF(6, 0) int cfg_verror(struct cfg_load *L, const char *file, unsigned line,
				      const char *path, int r, const char *fmt, va_list ap)
{
	struct ts_config_error *e = L->err;

	if (!e || e->message)
		return r;
	if (vasprintf(&e->message, fmt, ap) < 0)
		e->message = NULL;
	e->file = file ? strdup(file) : NULL;
	e->path = path ? strdup(path) : NULL;
	e->line = line;
	return r;
}

int cfg_error(struct cfg_load *L, const char *file, unsigned line, const char *path, int r,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror(L, file, line, path, r, fmt, ap);
	va_end(ap);
	return r;
}

int cfg_error_at(struct cfg_load *L, const char *path, int r, const char *fmt, ...)
{
	const struct cfg_file *f;
	unsigned line = 0;
	va_list ap;

	f = cfg_locate(L, path, &line);
	va_start(ap, fmt);
	cfg_verror(L, f ? f->display : NULL, line, path, r, fmt, ap);
	va_end(ap);
	return r;
}

/* libyang's log goes to ours at debug level; errors are also stored in
 * the context, where the loader picks them up. */
static void ly_log_to_ts(LY_LOG_LEVEL level, const char *msg, const char *path)
{
	log_debug("libyang: %s%s%s", msg, path ? " at " : "", path ? path : "");
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int format_of(const char *name, LYD_FORMAT *ret_format)
{
	if (has_suffix(name, ".json")) {
		*ret_format = LYD_JSON;
		return 0;
	}
	if (has_suffix(name, ".xml")) {
		*ret_format = LYD_XML;
		return 0;
	}
	return -EINVAL;
}

/* Reads one regular file, relative to dfd. Non-blocking open so that a
 * FIFO named x.json cannot hang the agent. */
static int read_file_at(int dfd, const char *name, char **ret_data, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t)st.st_size > TS_CONFIG_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* truncated meanwhile: parse what is there */
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_data = TS_TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static const char *read_error_words(int r)
{
	switch (r) {
	case -EISDIR:
		return "is a directory, not a config file";
	case -EBADFD:
		return "is not a regular file";
	case -EFBIG:
		return "is larger than the 16 MiB a config file may have";
	default:
		return NULL;
	}
}

static int add_file(struct cfg_load *L, int dfd, const char *name, const char *display)
{
	struct cfg_file *f, *files;
	LYD_FORMAT format;
	int r;

	if (format_of(name, &format) < 0)
		return cfg_error(L, display, 0, NULL, -EINVAL,
				 "not a config file: the name must end in .json or .xml");
	files = reallocarray(L->files, L->n_files + 1, sizeof(*files));
	if (!files)
		return -ENOMEM;
	L->files = files;
	f = &L->files[L->n_files];
	memset(f, 0, sizeof(*f));
	f->format = format;
	f->display = strdup(display);
	f->name = strdup(name);
	L->n_files++;
	if (!f->display || !f->name)
		return -ENOMEM;
	r = read_file_at(dfd, name, &f->data, &f->len);
	if (r < 0) {
		const char *words = read_error_words(r);

		if (words)
			return cfg_error(L, display, 0, NULL, r, "%s", words);
		return cfg_error(L, display, 0, NULL, r, "cannot read: %s", strerror(-r));
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Every *.json and *.xml of the directory, in name order. Hidden files
 * (git-sync's .git, editors' swap files) are not config. */
static int read_dir(struct cfg_load *L, const char *resolved, const char *display)
{
	_cleanup_close_ int dfd = -1;
	char **names = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *de;
	int r = 0;

	dfd = open(resolved, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return cfg_error(L, display, 0, NULL, -errno, "cannot open directory: %s",
				 strerror(errno));
	/* List the very directory the files are opened from. */
	{
		int lfd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);

		d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d && lfd >= 0)
			close(lfd);
	}
	if (!d)
		return cfg_error(L, display, 0, NULL, -errno, "cannot list directory: %s",
				 strerror(errno));
	while ((errno = 0, de = readdir(d))) {
		LYD_FORMAT format;
		char **p;

		if (de->d_name[0] == '.' || format_of(de->d_name, &format) < 0)
			continue;
		p = reallocarray(names, n + 1, sizeof(*names));
		if (!p) {
			r = -ENOMEM;
			break;
		}
		names = p;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	if (r < 0) {
		free_names(names, n);
		return cfg_error(L, display, 0, NULL, r, "cannot list directory: %s", strerror(-r));
	}
	if (n == 0) {
		free(names);
		return cfg_error(L, display, 0, NULL, -ENOENT,
				 "no config files (*.json, *.xml) in this directory");
	}
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_free_ char *shown = NULL;

		if (asprintf(&shown, "%s%s%s", display, has_suffix(display, "/") ? "" : "/",
			     names[i]) < 0)
			r = -ENOMEM;
		else
			r = add_file(L, dfd, names[i], shown);
	}
	free_names(names, n);
	return r;
}

static const char *skip_prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* The first error libyang stored, split into message, data or schema path
 * and line. libyang 2.1 appends the location to the path text:
 * 'Data location "/m:a/b", line number 6.' */
struct ly_problem {
	char *msg;
	char *path;
	bool schema_path;
	unsigned line;
};

static void ly_problem_done(struct ly_problem *p)
{
	free(p->msg);
	free(p->path);
}

static void parse_location(const char *text, struct ly_problem *p)
{
	const char *s, *q;

	if (!text)
		return;
	if ((s = strstr(text, "Data location \"")))
		s += strlen("Data location \"");
	else if ((s = strstr(text, "Schema location \""))) {
		s += strlen("Schema location \"");
		p->schema_path = true;
	}
	if (s && !p->path && (q = strchr(s, '"')))
		p->path = strndup(s, (size_t)(q - s));
	if ((s = strcasestr(text, "line number ")))
		p->line = (unsigned)strtoul(s + strlen("line number "), NULL, 10);
}

static void ly_problem_get(const struct ly_ctx *ctx, struct ly_problem *p)
{
	const struct ly_err_item *e;
	const char *loc;

	memset(p, 0, sizeof(*p));
	for (e = ly_err_first(ctx); e; e = e->next)
		if (e->level == LY_LLERR)
			break;
	if (!e) {
		p->msg = strdup("libyang reported an error without a message");
		return;
	}
	parse_location(e->path, p);
	parse_location(e->msg, p);
	/* Some messages carry their location in the text: cut it off. */
	loc = e->msg ? strstr(e->msg, " (Data location") : NULL;
	if (!loc && e->msg)
		loc = strstr(e->msg, " (Schema location");
	if (!loc && e->msg)
		loc = strstr(e->msg, " (Line number");
	p->msg = e->msg ? strndup(e->msg, loc ? (size_t)(loc - e->msg) : strlen(e->msg)) : NULL;
}

/* Text between the n-th pair of double quotes of s (n from 0). */
static char *quoted(const char *s, int n)
{
	const char *a = s, *b;

	for (int i = 0;; i++) {
		a = strchr(a, '"');
		if (!a)
			return NULL;
		b = strchr(a + 1, '"');
		if (!b)
			return NULL;
		if (i == n)
			return strndup(a + 1, (size_t)(b - a - 1));
		a = b + 1;
	}
}

static const char *last_segment(const char *path)
{
	const char *s = path, *last = path;
	int depth = 0;

	for (; *s; s++) {
		if (*s == '[')
			depth++;
		else if (*s == ']')
			depth--;
		else if (*s == '/' && depth == 0)
			last = s + 1;
	}
	return last;
}

/* "mode/route-based/route-based/if-id" relative to a list in the schema
 * names choices and cases; a data path does not. */
static char *unique_data_suffix(const struct lysc_node *list, const char *spec)
{
	_cleanup_free_ char *copy = strdup(spec);
	const struct lysc_node *node = list;
	char *out = NULL, *save = NULL, *tok;
	size_t len = 0;
	FILE *f;

	if (!copy)
		return NULL;
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (tok = strtok_r(copy, "/", &save); tok && node; tok = strtok_r(NULL, "/", &save)) {
		const struct lysc_node *c;
		const char *name = strchr(tok, ':') ? strchr(tok, ':') + 1 : tok;

		for (c = lysc_node_child(node); c; c = c->next)
			if (strcmp(c->name, name) == 0)
				break;
		node = c;
		if (c && !(c->nodetype & (LYS_CHOICE | LYS_CASE)))
			fprintf(f, "/%s", name);
	}
	fclose(f);
	return out;
}

/* For an error libyang gives with a schema path only (a missing mandatory
 * node), finds the instance of the outermost list on the path that causes
 * it: validate copies that keep one entry at a time. Returns the data path
 * of that entry followed by the rest of the schema path, or NULL. */
static char *instance_of_schema_error(struct cfg_load *L, const char *schema_path, const char *msg)
{
	_cleanup_free_ char *prefix = NULL;
	struct ly_set *set = NULL;
	const char *rest = NULL;
	char *result = NULL;

	/* The shortest prefix of the path that selects list entries. */
	for (const char *s = schema_path + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		free(prefix);
		prefix = strndup(schema_path, (size_t)(s - schema_path));
		if (!prefix)
			return NULL;
		ly_set_free(set, NULL);
		set = NULL;
		if (lyd_find_xpath(L->tree, prefix, &set) == LY_SUCCESS && set->count &&
		    set->dnodes[0]->schema->nodetype == LYS_LIST) {
			rest = s;
			break;
		}
		if (*s == '\0')
			break;
	}
	ly_err_clean(L->ctx, NULL);
	if (!rest) {
		ly_set_free(set, NULL);
		return NULL;
	}
	for (uint32_t i = 0; i < set->count && !result; i++) {
		struct lyd_node *dup = NULL;
		struct ly_set *others = NULL;
		struct ly_problem p;

		if (lyd_dup_siblings(L->tree, NULL, LYD_DUP_RECURSIVE, &dup) != LY_SUCCESS)
			break;
		if (lyd_find_xpath(dup, prefix, &others) == LY_SUCCESS) {
			for (uint32_t j = 0; j < others->count; j++)
				if (j != i)
					lyd_free_tree(others->dnodes[j]);
		}
		ly_set_free(others, NULL);
		if (lyd_validate_all(&dup, L->ctx, 0, NULL) != LY_SUCCESS) {
			ly_problem_get(L->ctx, &p);
			if (ts_streq(p.msg, msg)) {
				char *entry = lyd_path(set->dnodes[i], LYD_PATH_STD, NULL, 0);

				if (entry && asprintf(&result, "%s%s", entry, rest) < 0)
					result = NULL;
				free(entry);
			}
			ly_problem_done(&p);
		}
		ly_err_clean(L->ctx, NULL);
		lyd_free_all(dup);
	}
	ly_set_free(set, NULL);
	return result;
}

/* "a, b, c": the values an enumeration leaf at a data path admits. */
static char *enum_values(struct cfg_load *L, const char *data_path)
{
	_cleanup_free_ char *schema_path = strdup(data_path);
	const struct lysc_node *node;
	const struct lysc_type_enum *type;
	char *out = NULL, *w, *r;
	size_t len = 0;
	int depth = 0;
	FILE *f;

	if (!schema_path)
		return NULL;
	/* Drop the predicates: a schema path. */
	for (r = w = schema_path; *r; r++) {
		if (*r == '[')
			depth++;
		else if (*r == ']')
			depth--;
		else if (depth == 0)
			*w++ = *r;
	}
	*w = '\0';
	node = lys_find_path(L->ctx, NULL, schema_path, 0);
	ly_err_clean(L->ctx, NULL);
	if (!node || !(node->nodetype & (LYS_LEAF | LYS_LEAFLIST)))
		return NULL;
	type = (const struct lysc_type_enum *)((const struct lysc_node_leaf *)node)->type;
	if (type->basetype != LY_TYPE_ENUM)
		return NULL;
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	for (LY_ARRAY_COUNT_TYPE i = 0; i < LY_ARRAY_COUNT(type->enums); i++)
		fprintf(f, "%s%s", i ? ", " : "", type->enums[i].name);
	fclose(f);
	return out;
}

/* libyang's schema paths, and some of its data paths, name choices and
 * cases (".../credentials/api-key/api-key-file"); data paths do not. The
 * last segment is kept even when it is a choice (a missing mandatory
 * choice is named by it). */
static char *without_choices(struct cfg_load *L, const char *path)
{
	const struct lys_module *mod = ly_ctx_get_module_implemented(L->ctx, TS_CONFIG_MODULE);
	const struct lysc_node *parent = NULL;
	const char *s = path;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (!mod || path[0] != '/')
		return NULL;
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	while (*s == '/') {
		const char *seg = s + 1, *name = seg, *end = seg, *pred;
		const struct lysc_node *c;
		int depth = 0;

		for (; *end && !(*end == '/' && depth == 0); end++)
			depth += *end == '[' ? 1 : *end == ']' ? -1 : 0;
		pred = memchr(seg, '[', (size_t)(end - seg));
		if (!pred)
			pred = end;
		for (const char *q = seg; q < pred; q++)
			if (*q == ':')
				name = q + 1;
		for (c = parent ? lysc_node_child(parent) : mod->compiled->data; c; c = c->next)
			if (strlen(c->name) == (size_t)(pred - name) &&
			    strncmp(c->name, name, (size_t)(pred - name)) == 0)
				break;
		if (!c || !(c->nodetype & (LYS_CHOICE | LYS_CASE)) || !*end)
			fprintf(f, "/%.*s", (int)(end - seg), seg);
		if (!c) {
			/* Unknown to the schema (an unknown member): keep the rest. */
			fputs(end, f);
			break;
		}
		parent = c;
		s = end;
	}
	fclose(f);
	return out;
}

/* libyang's messages in plain words, where they need it; some move the
 * path to the node concerned. Takes and returns ownership of both. */
static void rewrite_message(struct cfg_load *L, char **msgp, char **pathp)
{
	char *msg = *msgp, *path = *pathp;
	const char *s;

	if (msg && (s = skip_prefix(msg, "Unique data leaf(s) "))) {
		_cleanup_free_ char *spec = quoted(s, 0), *first = quoted(s, 1);
		_cleanup_free_ char *suffix = NULL;
		struct lyd_node *entry = NULL;
		char *m = NULL;

		if (path && lyd_find_path(L->tree, path, 0, &entry) == LY_SUCCESS)
			suffix = spec ? unique_data_suffix(entry->schema, spec) : NULL;
		ly_err_clean(L->ctx, NULL);
		if (spec && first &&
		    asprintf(&m, "%s must be unique, but %s has the same value", last_segment(spec),
			     last_segment(first)) >= 0) {
			free(msg);
			msg = m;
		}
		if (path && suffix) {
			char *full = NULL;

			if (asprintf(&full, "%s%s", path, suffix) >= 0) {
				free(path);
				path = full;
			}
		}
	} else if (msg && (s = skip_prefix(msg, "Mandatory node "))) {
		_cleanup_free_ char *name = quoted(s, 0);
		char *m = NULL;

		if (name && asprintf(&m, "\"%s\" is mandatory here but missing", name) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Mandatory choice "))) {
		_cleanup_free_ char *name = quoted(s, 0);
		char *m = NULL;

		if (name && strcmp(name, "mode") == 0)
			m = strdup("a tunnel needs \"route-based\" or \"policy-based\"");
		else if (name && asprintf(&m, "one case of \"%s\" is mandatory here", name) < 0)
			m = NULL;
		if (m) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Node ")) && strstr(s, "not found as a child")) {
		_cleanup_free_ char *name = quoted(s, 0), *parent = quoted(s, 1);
		char *m = NULL, *full = NULL;

		if (name && parent && strstr(s, "not found as a child") &&
		    asprintf(&m, "unknown \"%s\": \"%s\" has no such member in the model", name,
			     parent) >= 0) {
			free(msg);
			msg = m;
			if (path && asprintf(&full, "%s/%s", path, name) >= 0) {
				free(path);
				path = full;
			}
		}
	} else if (msg && (s = skip_prefix(msg, "Data for both cases "))) {
		_cleanup_free_ char *a = quoted(s, 0), *b = quoted(s, 1);
		char *m = NULL;

		if (a && b && path && strcmp(last_segment(path), "credentials") == 0)
			m = strdup(
				"give either api-token-file or email with api-key-file, not both");
		else if (a && b &&
			 asprintf(&m, "\"%s\" and \"%s\" exclude each other: give only one", a, b) <
				 0)
			m = NULL;
		if (m) {
			free(msg);
			msg = m;
		}
	} else if (msg && ((s = skip_prefix(msg, "No module named ")) ||
			   (s = skip_prefix(msg, "No module with namespace ")) ||
			   ((s = skip_prefix(msg, "Node ")) && strstr(s, "not found in the")))) {
		_cleanup_free_ char *v = quoted(s, 0);
		char *m = NULL;

		if (v && asprintf(&m,
				  "unknown \"%s\": the config must be a \"" TS_CONFIG_MODULE
				  ":tunnelsync\" object (JSON) or a <tunnelsync "
				  "xmlns=\"urn:tunnelsync:yang:tunnelsync\"> element (XML)",
				  v) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Invalid union value "))) {
		_cleanup_free_ char *v = quoted(s, 0);
		char *m = NULL;

		if (v && asprintf(&m, "\"%s\" is not a valid IP address or prefix", v) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Invalid enumeration value "))) {
		_cleanup_free_ char *v = quoted(s, 0),
				    *allowed = path ? enum_values(L, path) : NULL;
		char *m = NULL;

		if (v && allowed &&
		    asprintf(&m, "\"%s\" is not allowed here; choose from: %s", v, allowed) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Duplicate instance of "))) {
		_cleanup_free_ char *v = quoted(s, 0);
		char *m = NULL;

		if (v && asprintf(&m, "a \"%s\" with this key is given twice", v) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "Too few "))) {
		_cleanup_free_ char *v = quoted(s, 0);
		char *m = NULL;

		if (v && asprintf(&m, "at least one \"%s\" is needed", v) >= 0) {
			free(msg);
			msg = m;
		}
	} else if (msg && (s = skip_prefix(msg, "When condition "))) {
		_cleanup_free_ char *cond = quoted(s, 0);
		char *m = NULL;

		if (cond && path &&
		    asprintf(&m, "\"%s\" is not allowed here (its condition %s is false)",
			     last_segment(path), cond) >= 0) {
			free(msg);
			msg = m;
		}
	}

	*msgp = msg;
	*pathp = path;
}

/* Turns the stored libyang error into ours. f is the file being parsed,
 * or NULL for an error of the merged tree (validation). */
static int ly_to_error(struct cfg_load *L, struct cfg_file *f)
{
	_cleanup_free_ char *msg = NULL, *path = NULL, *orig_msg = NULL;
	struct ly_problem p;

	ly_problem_get(L->ctx, &p);
	ly_err_clean(L->ctx, NULL);
	orig_msg = p.msg ? strdup(p.msg) : NULL;
	msg = TS_TAKE_PTR(p.msg);
	path = TS_TAKE_PTR(p.path);

	rewrite_message(L, &msg, &path);
	if (path) {
		char *clean = without_choices(L, path);

		if (clean) {
			free(path);
			path = clean;
		}
	}
	if (p.schema_path && path && !f && orig_msg) {
		char *data_path = instance_of_schema_error(L, path, orig_msg);

		if (data_path) {
			free(path);
			path = data_path;
		}
	}
	if (f) {
		bool complete = false;
		unsigned line = path ? cfg_find_line_full(f, path, &complete) : 0;

		/* libyang's JSON parser counts the line of the token after a
		 * value (the '}' on the next line): where the node itself is
		 * found just before that, its line is the better one. For
		 * syntax errors the path is only the enclosing node: keep
		 * libyang's line then. */
		if (!complete || (p.line && (line > p.line || line + 2 < p.line)))
			line = p.line;
		return cfg_error(L, f->display, line, path, -EINVAL, "%s",
				 msg ? msg : "invalid data");
	}
	if (path)
		return cfg_error_at(L, path, -EINVAL, "%s", msg ? msg : "invalid data");
	return cfg_error(L, L->n_files == 1 ? L->files[0].display : NULL, 0, NULL, -EINVAL, "%s",
			 msg ? msg : "invalid data");
}

static char *value_text(const struct lyd_node *n)
{
	const char *v = lyd_get_value(n);

	return strdup(v ? v : "");
}

static bool leaflists_equal(const struct lyd_node *a_first, const struct lyd_node *b_parent_first,
			    const struct lysc_node *schema)
{
	const struct lyd_node *n, *m;
	size_t na = 0, nb = 0;

	LY_LIST_FOR(a_first, n)
	if (n->schema == schema)
		na++;
	LY_LIST_FOR(b_parent_first, m)
	if (m->schema == schema)
		nb++;
	if (na != nb)
		return false;
	LY_LIST_FOR(a_first, n)
	{
		bool found = false;

		if (n->schema != schema)
			continue;
		LY_LIST_FOR(b_parent_first, m)
		if (m->schema == schema && ts_streq(lyd_get_value(m), lyd_get_value(n)))
			found = true;
		if (!found)
			return false;
	}
	return true;
}

static int report_conflict(struct cfg_load *L, size_t earlier, size_t later, const char *path,
			   const char *there, const char *here)
{
	unsigned line_there = cfg_find_line(&L->files[earlier], path);
	unsigned line_here = cfg_find_line(&L->files[later], path);
	char where[40] = "";

	if (line_there)
		snprintf(where, sizeof(where), ":%u", line_there);
	return cfg_error(L, L->files[later].display, line_here, path, -EINVAL,
			 "conflicting values: \"%s\" here, \"%s\" in %s%s", here, there,
			 L->files[earlier].display, where);
}

/* The first file before i that holds the leaf at path with a value other
 * than n's (leaf), or the leaf-list schema under path with other values. */
static size_t conflicting_file(struct cfg_load *L, size_t i, const char *path,
			       const struct lyd_node *n)
{
	for (size_t j = 0; j < i; j++) {
		struct lyd_node *m = NULL;
		const struct lyd_node *mc;
		bool present = false;

		if (!L->files[j].tree || lyd_find_path(L->files[j].tree, path, 0, &m) != LY_SUCCESS)
			continue;
		if (n->schema->nodetype == LYS_LEAF) {
			if (lyd_compare_single(n, m, 0) != LY_SUCCESS)
				return j;
			continue;
		}
		LY_LIST_FOR(lyd_child(m), mc)
		if (mc->schema == n->schema)
			present = true;
		if (present && !leaflists_equal(lyd_child(lyd_parent(n)), lyd_child(m), n->schema))
			return j;
	}
	return SIZE_MAX;
}

/* Compares the siblings from one file with the same place in the merge of
 * the files before it (merged: its first sibling there, or NULL). All the
 * earlier files agree with each other (else the load failed before), so a
 * leaf of the merge has the value of every earlier file that sets it, and
 * a leaf-list there holds the values of each. One walk with hashed
 * look-ups: O(nodes), where a look-up per leaf in every earlier file was
 * O(nodes × files). */
static int conflicts_walk(struct cfg_load *L, size_t i, const struct lyd_node *first,
			  const struct lyd_node *merged)
{
	const struct lyd_node *n;
	int r = 0;

	LY_LIST_FOR(first, n)
	{
		struct lyd_node *m = NULL;
		uint16_t type = n->schema ? n->schema->nodetype : 0;

		if (!merged || !n->schema)
			break;
		if (type == LYS_LEAFLIST) {
			const struct lyd_node *mc;
			bool present = false;

			/* Compared as a whole, once, under the parent. */
			if (!n->parent ||
			    (n->prev != n && n->prev->schema == n->schema && n->prev->next))
				continue;
			for (mc = merged; mc; mc = mc->next)
				if (mc->schema == n->schema)
					present = true;
			if (present &&
			    !leaflists_equal(lyd_child(lyd_parent(n)), merged, n->schema)) {
				_cleanup_free_ char *path = lyd_path(lyd_parent(n), LYD_PATH_STD,
								     NULL, 0),
						    *full = NULL;
				size_t j = path ? conflicting_file(L, i, path, n) : SIZE_MAX;

				if (j != SIZE_MAX &&
				    asprintf(&full, "%s/%s", path, n->schema->name) >= 0)
					r = report_conflict(L, j, i, full, "another list of values",
							    "a different list");
			}
		} else if (type == LYS_LIST) {
			if (lyd_find_sibling_first(merged, n, &m) == LY_SUCCESS)
				r = conflicts_walk(L, i, lyd_child(n), lyd_child(m));
		} else if (lyd_find_sibling_val(merged, n->schema, NULL, 0, &m) == LY_SUCCESS) {
			if (type != LYS_LEAF) {
				r = conflicts_walk(L, i, lyd_child(n), lyd_child(m));
			} else if (lyd_compare_single(n, m, 0) != LY_SUCCESS) {
				_cleanup_free_ char *path = lyd_path(n, LYD_PATH_STD, NULL, 0);
				size_t j = path ? conflicting_file(L, i, path, n) : SIZE_MAX;

				if (j != SIZE_MAX) {
					_cleanup_free_ char *a = value_text(m), *b = value_text(n);

					r = report_conflict(L, j, i, path, a, b);
				}
			}
		}
		if (r < 0)
			break;
	}
	ly_err_clean(L->ctx, NULL);
	return r;
}

/* A leaf set in two files must have one value; a leaf-list set in two
 * files must hold the same values. libyang's merge would silently take the
 * last file's value. Runs before file i is merged into L->tree. */
static int check_conflicts(struct cfg_load *L, size_t i)
{
	if (i == 0 || !L->tree)
		return 0;
	return conflicts_walk(L, i, L->files[i].tree, L->tree);
}

static void load_done(struct cfg_load *L)
{
	for (size_t i = 0; i < L->n_files; i++) {
		struct cfg_file *f = &L->files[i];

		lyd_free_all(f->tree);
		cfg_text_index_free(f->index);
		free(f->display);
		free(f->name);
		free(f->data);
	}
	free(L->files);
	cfg_entry_map_free(L->entries);
	lyd_free_all(L->tree);
	ly_ctx_destroy(L->ctx);
}

static int load_once(const char *path, const char *models_dir, unsigned flags,
		     struct ts_desired **ret_desired, struct ts_config_error *err,
		     char **ret_resolved)
{
	_cleanup_free_ char *resolved = NULL;
	struct cfg_load L = { .err = err, .locate_tunnels = flags & TS_CONFIG_LOAD_SOURCES };
	struct ts_desired *d = NULL;
	struct stat st;
	bool is_dir;
	int r;

	resolved = realpath(path, NULL);
	if (!resolved)
		return cfg_error(&L, path, 0, NULL, -errno, "cannot resolve: %s", strerror(errno));
	if (stat(resolved, &st) < 0)
		return cfg_error(&L, path, 0, NULL, -errno, "cannot read: %s", strerror(errno));
	is_dir = S_ISDIR(st.st_mode);
	if (is_dir) {
		r = read_dir(&L, resolved, path);
	} else {
		_cleanup_free_ char *dir = strdup(resolved);
		_cleanup_close_ int dfd = -1;
		char *slash;

		if (!dir)
			return -ENOMEM;
		slash = strrchr(dir, '/');
		*slash = '\0';
		dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			r = cfg_error(&L, path, 0, NULL, -errno, "cannot read: %s",
				      strerror(errno));
		else
			r = add_file(&L, dfd, slash + 1, path);
	}
	if (r < 0)
		goto out;

	r = ly_ctx_new(models_dir, LY_CTX_DISABLE_SEARCHDIR_CWD | LY_CTX_NO_YANGLIBRARY, &L.ctx);
	if (r != LY_SUCCESS) {
		r = cfg_error(&L, NULL, 0, NULL, -ENOMEM, "cannot create a libyang context");
		goto out;
	}
	if (!ly_ctx_load_module(L.ctx, TS_CONFIG_MODULE, NULL, NULL)) {
		struct ly_problem p;

		ly_problem_get(L.ctx, &p);
		r = cfg_error(&L, NULL, 0, NULL, -ENOENT,
			      "cannot load the YANG module " TS_CONFIG_MODULE " from %s: %s",
			      models_dir, p.msg ? p.msg : "unknown error");
		ly_problem_done(&p);
		goto out;
	}

	for (size_t i = 0; i < L.n_files; i++) {
		struct cfg_file *f = &L.files[i];

		if (lyd_parse_data_mem(L.ctx, f->data, f->format,
				       LYD_PARSE_STRICT | LYD_PARSE_ONLY | LYD_PARSE_NO_STATE, 0,
				       &f->tree) != LY_SUCCESS) {
			r = ly_to_error(&L, f);
			goto out;
		}
		r = check_conflicts(&L, i);
		if (r < 0)
			goto out;
		/* One file is its own merge: moved, not copied (half the memory
		 * of a large config; cfg_locate needs no tree for one file). */
		if (L.n_files == 1) {
			L.tree = TS_TAKE_PTR(f->tree);
		} else if (f->tree && lyd_merge_siblings(&L.tree, f->tree, 0) != LY_SUCCESS) {
			r = ly_to_error(&L, f);
			goto out;
		}
	}
	if (lyd_validate_all(&L.tree, L.ctx, 0, NULL) != LY_SUCCESS) {
		r = ly_to_error(&L, NULL);
		goto out;
	}
	r = cfg_convert(&L, &d);
	if (r < 0)
		goto out;
	r = cfg_node_name(&L, &d->agent);
	if (r < 0) {
		ts_desired_free(d);
		goto out;
	}
	cfg_revision(resolved, is_dir, L.files, L.n_files, d->revision);
	*ret_desired = d;
	r = 0;
out:
	load_done(&L);
	if (r < 0 && ret_resolved)
		*ret_resolved = TS_TAKE_PTR(resolved);
	return r;
}

int ts_config_load(const char *path, const char *models_dir, struct ts_desired **ret_desired,
		   struct ts_config_error *err)
{
	return ts_config_load_flags(path, models_dir, 0, ret_desired, err);
}

int ts_config_load_flags(const char *path, const char *models_dir, unsigned flags,
			 struct ts_desired **ret_desired, struct ts_config_error *err)
{
	struct ts_config_error local = { 0 };
	uint32_t old_opts;
	int r;

	{
		r = ts_config_models_dir(models_dir, &models_dir);
		if (r < 0) {
			struct cfg_load L = { .err = err ? err : &local };

			if (models_dir)
				cfg_error(&L, models_dir, 0, NULL, r, "YANG models directory: %s",
					  strerror(-r));
			else
				cfg_error(
					&L, NULL, 0, NULL, r,
					"no YANG models directory found (give one with --models)");
			ts_config_error_done(&local);
			return r;
		}
	}

	ly_set_log_clb(ly_log_to_ts, 1);
	old_opts = ly_log_options(LY_LOLOG | LY_LOSTORE);
	/* git-sync may swap the link and delete the old checkout while we read
	 * it: an I/O error on a path that now resolves elsewhere is retried. */
	for (int attempt = 0;; attempt++) {
		_cleanup_free_ char *used = NULL, *now = NULL;

		ts_config_error_done(&local);
		r = load_once(path, models_dir, flags, ret_desired, &local, &used);
		if (r >= 0 || r == -EINVAL || attempt >= 2 || !used)
			break;
		now = realpath(path, NULL);
		if (!now || strcmp(now, used) == 0)
			break;
		log_debug("config: %s moved from %s to %s during the load; reading it again", path,
			  used, now);
	}
	ly_log_options(old_opts);
	/* libyang's trees are gone, but glibc keeps their pages: hand them
	 * back, or a daemon keeps the peak of every load (10,000 tunnels:
	 * 67 MB resident after the load, 41 MB after this; 1,000: 9.9 -> 7.2). */
	malloc_trim(0);
	if (r < 0 && err)
		*err = local;
	else
		ts_config_error_done(&local);
	return r;
}
