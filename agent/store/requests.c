/* Requested rotations (`tunnelsync rotate NAME`) that have not begun:
 * journal/NAME.req, one small file per tunnel. The file's existence is
 * the request; its content only says when it was made. A request is
 * removed once a rotation of the tunnel begins (the journal entry then
 * carries the work to its end) or when the operator cancels it. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "store/store_internal.h"

#define REQUEST_MAX 256

int ts_store_request_add(struct ts_store *s, const char *tunnel, ts_usec_t requested_at)
{
	char path[PATH_MAX], text[128];
	int r, n;

	if (!s || !ts_store_name_valid(tunnel))
		return -EINVAL;
	if (s->readonly)
		return -EROFS;
	r = store_file_path(s, JOURNAL_DIR, tunnel, REQUEST_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	if (access(path, F_OK) == 0)
		return 0; /* requested already: the first time stands */
	n = snprintf(text, sizeof(text), "%s %d\ntunnel=%s\nrequested_at=%" PRId64 "\n",
		     REQUEST_MAGIC, TS_STORE_FORMAT_VERSION, tunnel, (int64_t)requested_at);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	return ts_file_write_atomic(path, text, (size_t)n, 0600);
}

int ts_store_request_remove(struct ts_store *s, const char *tunnel)
{
	if (!s || !ts_store_name_valid(tunnel))
		return -EINVAL;
	return store_file_unlink(s, JOURNAL_DIR, tunnel, REQUEST_EXT);
}

static ts_usec_t read_requested_at(const char *path)
{
	char *text = NULL;
	const char *v;
	ts_usec_t t = 0;

	if (ts_file_read_all(path, REQUEST_MAX, &text, NULL) < 0)
		return 0;
	if (strncmp(text, REQUEST_MAGIC " ", strlen(REQUEST_MAGIC) + 1) == 0 &&
	    (v = strstr(text, "\nrequested_at=")))
		t = (ts_usec_t)strtoll(v + strlen("\nrequested_at="), NULL, 10);
	free(text);
	return t > 0 ? t : 0;
}

static int cmp_requests(const void *a, const void *b)
{
	return strcmp(((const struct ts_store_request *)a)->tunnel,
		      ((const struct ts_store_request *)b)->tunnel);
}

int store_load_requests(struct ts_store *s, struct ts_store_state *st)
{
	char dirpath[PATH_MAX];
	size_t ext_len = strlen(REQUEST_EXT);
	struct dirent *de;
	DIR *d;
	int r = 0;

	snprintf(dirpath, sizeof(dirpath), "%s/%s", s->dir, JOURNAL_DIR);
	d = opendir(dirpath);
	if (!d)
		return errno == ENOENT && s->readonly ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct ts_store_request *grown, *q;
		char path[PATH_MAX + 300];

		if (de->d_name[0] == '.' || len <= ext_len || len - ext_len > TS_NAME_MAX ||
		    strcmp(de->d_name + len - ext_len, REQUEST_EXT) != 0)
			continue;
		grown = realloc(st->requests, (st->n_requests + 1) * sizeof(*grown));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		st->requests = grown;
		q = &st->requests[st->n_requests];
		memset(q, 0, sizeof(*q));
		memcpy(q->tunnel, de->d_name, len - ext_len);
		if (!ts_store_name_valid(q->tunnel))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
		q->requested_at = read_requested_at(path);
		st->n_requests++;
	}
	closedir(d);
	if (st->n_requests)
		qsort(st->requests, st->n_requests, sizeof(*st->requests), cmp_requests);
	return r;
}

const struct ts_store_request *ts_store_state_request(const struct ts_store_state *st,
						      const char *tunnel)
{
	for (size_t i = 0; st && i < st->n_requests; i++)
		if (strcmp(st->requests[i].tunnel, tunnel) == 0)
			return &st->requests[i];
	return NULL;
}
