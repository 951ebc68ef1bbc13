/* Loading the whole state directory: every record and journal entry,
 * with the files that could not be used listed as problems. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/crashpoint.h"
#include "core/fileio.h"
#include "core/secret.h"
#include "core/sha256.h"
#include "core/util.h"

#include "store/store_internal.h"

/* ---- loading everything ---- */

static int add_problem(struct ts_store_state *st, const char *tunnel, const char *path, int error,
		       const char *message)
{
	struct ts_store_problem *p;
	struct ts_store_problem *grown =
		realloc(st->problems, (st->n_problems + 1) * sizeof(*st->problems));

	if (!grown)
		return -ENOMEM;
	st->problems = grown;
	p = &st->problems[st->n_problems++];
	memset(p, 0, sizeof(*p));
	snprintf(p->tunnel, sizeof(p->tunnel), "%s", tunnel);
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->error = error;
	snprintf(p->message, sizeof(p->message), "%s", message);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends one element of size bytes to the array *arr of *n elements; the
 * array's room doubles whenever *n reaches a power of two (no capacity to
 * keep: it follows from *n), so a state directory of N files costs
 * O(log N) reallocations, not N. */
static int append(void *arr, size_t *n, const void *elem, size_t size)
{
	void **base = arr;
	size_t k = *n;

	if (k == 0 || (k & (k - 1)) == 0) {
		void *grown = realloc(*base, (k ? 2 * k : 1) * size);

		if (!grown)
			return -ENOMEM;
		*base = grown;
	}
	memcpy((char *)*base + k * size, elem, size);
	*n = k + 1;
	return 0;
}

/* Reads one tunnel's record or journal entry into st; an unusable file
 * is a problem (0). absent_ok: a file that is not there is no entry (a
 * look-up by name); else it is a problem (it was listed a moment ago). */
static int load_one(struct ts_store *s, struct ts_store_state *st, bool journal, const char *tunnel,
		    const char *path, bool absent_ok)
{
	int r;

	s->last_error[0] = '\0';
	if (journal) {
		struct ts_journal_entry e = { 0 };

		r = ts_store_journal_read(s, tunnel, &e);
		if (r >= 0 && append(&st->journal, &st->n_journal, &e, sizeof(e)) < 0) {
			ts_store_journal_entry_done(&e);
			return -ENOMEM;
		}
	} else {
		struct ts_key_record rec = { 0 };

		r = ts_store_record_read(s, tunnel, &rec);
		if (r >= 0 && append(&st->records, &st->n_records, &rec, sizeof(rec)) < 0) {
			ts_store_record_done(&rec);
			return -ENOMEM;
		}
	}
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT && absent_ok)
		return 0;
	if (r < 0) {
		char msg[128];

		/* The message names the path already; keep the reason only. */
		const char *colon = strstr(s->last_error, ": ");

		snprintf(msg, sizeof(msg), "%s",
			 s->last_error[0] && colon ? colon + 2 : strerror(-r));
		return add_problem(st, tunnel, path, r, msg);
	}
	return 0;
}

static int load_dir(struct ts_store *s, struct ts_store_state *st, bool journal)
{
	const char *sub = journal ? JOURNAL_DIR : RECORDS_DIR;
	const char *ext = journal ? JOURNAL_EXT : RECORD_EXT;
	size_t ext_len = strlen(ext), n_names = 0, cap = 0;
	char **names = NULL;
	char dirpath[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/%s", s->dir, sub);
	d = opendir(dirpath);
	if (!d)
		return errno == ENOENT && s->readonly ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= ext_len ||
		    strcmp(de->d_name + len - ext_len, ext) != 0)
			continue;
		if (n_names == cap) {
			char **grown = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));

			if (!grown) {
				r = -ENOMEM;
				goto out;
			}
			names = grown;
		}
		names[n_names] = strndup(de->d_name, len - ext_len);
		if (!names[n_names]) {
			r = -ENOMEM;
			goto out;
		}
		n_names++;
	}
	if (n_names)
		qsort(names, n_names, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n_names; i++) {
		const char *tunnel = names[i];
		char path[PATH_MAX];

		if (snprintf(path, sizeof(path), "%s/%s%s", dirpath, tunnel, ext) >=
		    (int)sizeof(path))
			continue; /* cannot be: the name came from this directory */
		if (!ts_store_name_valid(tunnel)) {
			r = add_problem(st, "", path, -EBADMSG, "not a valid tunnel name");
			if (r < 0)
				goto out;
			continue;
		}
		r = load_one(s, st, journal, tunnel, path, false);
		if (r < 0)
			goto out;
	}
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}

static int cmp_record(const void *a, const void *b)
{
	return strcmp(((const struct ts_key_record *)a)->tunnel,
		      ((const struct ts_key_record *)b)->tunnel);
}

static int cmp_journal(const void *a, const void *b)
{
	return strcmp(((const struct ts_journal_entry *)a)->tunnel,
		      ((const struct ts_journal_entry *)b)->tunnel);
}

/* Sorted by tunnel for look-ups by name (one per tunnel per pass). */
static void load_finish(struct ts_store *s, struct ts_store_state *st)
{
	/* qsort(NULL, 0, ...) is undefined (UBSan says so): an empty store. */
	if (st->n_records)
		qsort(st->records, st->n_records, sizeof(*st->records), cmp_record);
	if (st->n_journal)
		qsort(st->journal, st->n_journal, sizeof(*st->journal), cmp_journal);
	if (st->n_problems) {
		const struct ts_store_problem *p = &st->problems[st->n_problems - 1];

		snprintf(s->last_error, sizeof(s->last_error), "%s: %s", p->path, p->message);
	}
}

int ts_store_load(struct ts_store *s, struct ts_store_state **ret_state)
{
	struct ts_store_state *st;
	int r;

	if (!s || !ret_state)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	r = load_dir(s, st, false);
	if (r >= 0)
		r = load_dir(s, st, true);
	if (r >= 0)
		r = store_load_requests(s, st);
	if (r < 0) {
		ts_store_state_free(st);
		return r;
	}
	load_finish(s, st);
	*ret_state = st;
	return 0;
}

int ts_store_load_names(struct ts_store *s, const char *const *names, size_t n,
			struct ts_store_state **ret_state)
{
	struct ts_store_state *st;
	int r = 0;

	if (!s || !ret_state || (n && !names))
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++) {
		char path[PATH_MAX];

		/* A name no file can have: nothing recorded (ts_store_load
		 * lists no such file under a declared tunnel's name either). */
		if (!ts_store_name_valid(names[i]))
			continue;
		for (int journal = 0; journal < 2 && r >= 0; journal++) {
			r = store_file_path(s, journal ? JOURNAL_DIR : RECORDS_DIR, names[i],
					    journal ? JOURNAL_EXT : RECORD_EXT, path, sizeof(path));
			if (r >= 0)
				r = load_one(s, st, journal, names[i], path, true);
		}
	}
	if (r >= 0)
		r = store_load_requests(s, st);
	if (r < 0) {
		ts_store_state_free(st);
		return r;
	}
	load_finish(s, st);
	*ret_state = st;
	return 0;
}

void ts_store_state_free(struct ts_store_state *st)
{
	if (!st)
		return;
	free(st->requests);
	for (size_t i = 0; i < st->n_records; i++)
		ts_store_record_done(&st->records[i]);
	for (size_t i = 0; i < st->n_journal; i++)
		ts_store_journal_entry_done(&st->journal[i]);
	free(st->records);
	free(st->journal);
	free(st->problems);
	free(st);
}

const struct ts_key_record *ts_store_state_record(const struct ts_store_state *st,
						  const char *tunnel)
{
	struct ts_key_record key;

	if (!st || !st->n_records || !tunnel ||
	    ts_strlcpy(key.tunnel, tunnel, sizeof(key.tunnel)) < 0)
		return NULL;
	return bsearch(&key, st->records, st->n_records, sizeof(key), cmp_record);
}

const struct ts_journal_entry *ts_store_state_journal(const struct ts_store_state *st,
						      const char *tunnel)
{
	struct ts_journal_entry key;

	if (!st || !st->n_journal || !tunnel ||
	    ts_strlcpy(key.tunnel, tunnel, sizeof(key.tunnel)) < 0)
		return NULL;
	return bsearch(&key, st->journal, st->n_journal, sizeof(key), cmp_journal);
}

const struct ts_store_problem *ts_store_state_problem(const struct ts_store_state *st,
						      const char *tunnel)
{
	for (size_t i = 0; st && i < st->n_problems; i++)
		if (ts_streq(st->problems[i].tunnel, tunnel))
			return &st->problems[i];
	return NULL;
}

void ts_store_state_observe(const struct ts_store_state *st, const char *tunnel,
			    struct ts_obs_store *ret_obs)
{
	ret_obs->ok = !ts_store_state_problem(st, tunnel);
	ret_obs->record = ts_store_state_record(st, tunnel);
	ret_obs->journal = ts_store_state_journal(st, tunnel);
}
