/* Owns STATE_DIR/conns/NAME.conn (see conn_record.h). */
#include "store/conn_record.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/sha256.h"
#include "core/util.h"
#include "store/store.h"

#define MAGIC	   "tunnelsync-conn 1"
#define RECORD_MAX (64 * 1024)

static int record_path(const char *state_dir, const char *tunnel, char *buf, size_t size)
{
	int n;

	if (!state_dir || !ts_store_name_valid(tunnel))
		return -EINVAL;
	n = snprintf(buf, size, "%s/" TS_CONN_RECORD_DIR "/%s.conn", state_dir, tunnel);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void checksum(const char *data, size_t len, char hex[65])
{
	uint8_t digest[TS_SHA256_DIGEST_LEN];

	ts_sha256(data, len, digest);
	ts_sha256_hex(digest, hex);
}

int ts_conn_record_write(const char *state_dir, const char *tunnel,
			 const struct ts_ike_leaves *leaves)
{
	char path[PATH_MAX], dir[PATH_MAX], fp[TS_FINGERPRINT_LEN], hex[65];
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f;
	int r;

	if (!leaves)
		return -EINVAL;
	r = record_path(state_dir, tunnel, path, sizeof(path));
	if (r < 0)
		return r;
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		if (leaves->values[i] && strchr(leaves->values[i], '\n'))
			return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/" TS_CONN_RECORD_DIR, state_dir);
	r = ts_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	f = open_memstream(&buf, &cap);
	if (!f)
		return -errno;
	ts_ike_leaves_fingerprint(leaves, fp);
	fprintf(f, MAGIC "\ntunnel=%s\nfingerprint=%s\n", tunnel, fp);
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		if (leaves->values[i])
			fprintf(f, "%s=%s\n", ts_ike_leaf_names[i], leaves->values[i]);
	if (fclose(f) != 0)
		return -ENOMEM;
	len = strlen(buf);
	checksum(buf, len, hex);
	{
		_cleanup_free_ char *out = malloc(len + 7 + 64 + 2);

		if (!out)
			return -ENOMEM;
		memcpy(out, buf, len);
		len += (size_t)sprintf(out + len, "sha256=%s\n", hex);
		return ts_file_write_atomic(path, out, len, 0600);
	}
}

int ts_conn_record_read(const char *state_dir, const char *tunnel, struct ts_ike_leaves *ret_leaves,
			char ret_fingerprint[TS_FINGERPRINT_LEN])
{
	struct ts_ike_leaves l = { 0 };
	char path[PATH_MAX], hex[65], fp[TS_FINGERPRINT_LEN] = "";
	_cleanup_free_ char *data = NULL;
	char *line, *next, *sum;
	unsigned hint = 0;
	size_t len;
	int r;

	r = record_path(state_dir, tunnel, path, sizeof(path));
	if (r < 0)
		return r;
	r = ts_file_read_all(path, RECORD_MAX, &data, &len);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	/* The checksum line is the last one and covers every byte before it. */
	if (len < 7 + 64 + 1 || data[len - 1] != '\n')
		return -EBADMSG;
	sum = data + len - (7 + 64 + 1);
	if (strncmp(sum, "sha256=", 7) != 0 || (sum > data && sum[-1] != '\n'))
		return -EBADMSG;
	checksum(data, (size_t)(sum - data), hex);
	if (strncmp(sum + 7, hex, 64) != 0)
		return -EBADMSG;
	*sum = 0;
	if (strncmp(data, MAGIC "\n", strlen(MAGIC) + 1) != 0)
		return -EBADMSG;
	for (line = data + strlen(MAGIC) + 1; *line; line = next) {
		char *eq;
		enum ts_ike_leaf leaf;

		next = strchr(line, '\n');
		if (!next) {
			r = -EBADMSG;
			goto fail;
		}
		*next++ = 0;
		eq = strchr(line, '=');
		if (!eq) {
			r = -EBADMSG;
			goto fail;
		}
		*eq++ = 0;
		if (ts_streq(line, "tunnel")) {
			if (!ts_streq(eq, tunnel)) {
				r = -EBADMSG;
				goto fail;
			}
			continue;
		}
		if (ts_streq(line, "fingerprint")) {
			snprintf(fp, sizeof(fp), "%s", eq);
			continue;
		}
		/* Written in the leaves' order: the one after the last is
		 * tried first (a look-up by name per line was a fifth of a
		 * record's read). */
		if (hint < _TS_LEAF_MAX && ts_streq(line, ts_ike_leaf_names[hint]))
			leaf = (enum ts_ike_leaf)hint;
		else
			leaf = ts_ike_leaf_from_string(line);
		hint = (unsigned)leaf + 1;
		if (leaf == _TS_LEAF_MAX)
			continue; /* a leaf of a later version: not ours to judge */
		free(l.values[leaf]);
		l.values[leaf] = strdup(eq);
		if (!l.values[leaf]) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret_leaves = l;
	if (ret_fingerprint)
		snprintf(ret_fingerprint, TS_FINGERPRINT_LEN, "%s", fp);
	return 0;
fail:
	ts_ike_leaves_done(&l);
	return r;
}

static int failing_path(const char *state_dir, const char *tunnel, char *buf, size_t size)
{
	int n;

	if (!state_dir || !ts_store_name_valid(tunnel))
		return -EINVAL;
	n = snprintf(buf, size, "%s/" TS_CONN_RECORD_DIR "/%s.failing", state_dir, tunnel);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int ts_conn_record_failing_read(const char *state_dir, const char *tunnel, ts_usec_t *ret_since)
{
	char path[PATH_MAX], *end;
	_cleanup_free_ char *data = NULL;
	unsigned long long v;
	size_t len;
	int r;

	r = failing_path(state_dir, tunnel, path, sizeof(path));
	if (r < 0)
		return r;
	r = ts_file_read_all(path, 64, &data, &len);
	if (r < 0)
		return r == -ENOENT ? r : -ENOENT;
	/* Digits only: strtoull takes "-5" as 2^64 - 5, a time before 1970
	 * once cast (fuzz_state_files, fixture crash-failing-negative). */
	if (strncmp(data, "since=", 6) != 0 || data[6] < '0' || data[6] > '9')
		return -ENOENT;
	errno = 0;
	v = strtoull(data + 6, &end, 10);
	if (errno || (*end && *end != '\n') || v == 0 || v > INT64_MAX)
		return -ENOENT;
	*ret_since = (ts_usec_t)v;
	return 0;
}

int ts_conn_record_failing_write(const char *state_dir, const char *tunnel, ts_usec_t since)
{
	char path[PATH_MAX], dir[PATH_MAX], text[40];
	int r;

	r = failing_path(state_dir, tunnel, path, sizeof(path));
	if (r < 0)
		return r;
	if (since == 0)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	snprintf(dir, sizeof(dir), "%s/" TS_CONN_RECORD_DIR, state_dir);
	r = ts_mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "since=%llu\n", (unsigned long long)since);
	return ts_file_write_atomic(path, text, strlen(text), 0600);
}

int ts_conn_record_remove(const char *state_dir, const char *tunnel)
{
	char path[PATH_MAX];
	int r = record_path(state_dir, tunnel, path, sizeof(path));

	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return ts_conn_record_failing_write(state_dir, tunnel, 0);
}
