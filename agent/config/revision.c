/* Owns the config revision: the commit a git-sync link points to (its
 * target directory is named by the commit hash), else the HEAD of the git
 * checkout that holds the config (read from .git without running git),
 * else a SHA-256 over the files' names and contents. */
#include "config/config-internal.h"

#include <ctype.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/sha256.h"

#define HASH_LEN 40

static bool is_commit_hash(const char *s, size_t len)
{
	if (len != HASH_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* The deepest component of the resolved path that is a commit hash:
 * git-sync's link points to <root>/<hash> (v3) or <root>/.worktrees/<hash>
 * (v4), and the config may be a file or directory below it. */
static bool revision_from_path(const char *resolved, char ret[72])
{
	const char *end = resolved + strlen(resolved);

	while (end > resolved) {
		const char *start = end;

		while (start > resolved && start[-1] != '/')
			start--;
		if (is_commit_hash(start, (size_t)(end - start))) {
			memcpy(ret, start, HASH_LEN);
			ret[HASH_LEN] = '\0';
			return true;
		}
		end = start > resolved ? start - 1 : resolved;
	}
	return false;
}

static char *read_small(const char *dir, const char *name)
{
	_cleanup_free_ char *p = NULL;
	char *data = NULL;
	size_t len;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	if (ts_file_read_all(p, 64 * 1024, &data, &len) < 0)
		return NULL;
	while (len && isspace((unsigned char)data[len - 1]))
		data[--len] = '\0';
	return data;
}

/* gitdir as named by a ".git" file ("gitdir: <path>", relative to dir). */
static char *gitdir_of(const char *dir)
{
	_cleanup_free_ char *dotgit = NULL, *content = NULL;
	struct stat st;
	char *out = NULL;

	if (asprintf(&dotgit, "%s/.git", dir) < 0)
		return NULL;
	if (stat(dotgit, &st) < 0)
		return NULL;
	if (S_ISDIR(st.st_mode))
		return TS_TAKE_PTR(dotgit);
	content = read_small(dir, ".git");
	if (!content || strncmp(content, "gitdir: ", 8) != 0)
		return NULL;
	if (content[8] == '/')
		out = strdup(content + 8);
	else if (asprintf(&out, "%s/%s", dir, content + 8) < 0)
		out = NULL;
	return out;
}

static bool lookup_ref(const char *gitdir, const char *ref, char ret[72])
{
	_cleanup_free_ char *common = NULL, *commondir = NULL, *loose = NULL, *packed = NULL;
	const char *dirs[2];

	/* A linked worktree keeps HEAD itself and refs in the common dir. */
	commondir = read_small(gitdir, "commondir");
	if (commondir) {
		if (commondir[0] == '/')
			common = strdup(commondir);
		else if (asprintf(&common, "%s/%s", gitdir, commondir) < 0)
			common = NULL;
	}
	dirs[0] = gitdir;
	dirs[1] = common;
	for (size_t i = 0; i < 2; i++) {
		if (!dirs[i])
			continue;
		free(loose);
		loose = read_small(dirs[i], ref);
		if (loose && is_commit_hash(loose, strlen(loose))) {
			memcpy(ret, loose, HASH_LEN + 1);
			return true;
		}
	}
	for (size_t i = 0; i < 2; i++) {
		char *line, *save = NULL;

		if (!dirs[i])
			continue;
		free(packed);
		packed = read_small(dirs[i], "packed-refs");
		for (line = packed ? strtok_r(packed, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (strlen(line) > HASH_LEN + 1 && line[HASH_LEN] == ' ' &&
			    strcmp(line + HASH_LEN + 1, ref) == 0 &&
			    is_commit_hash(line, HASH_LEN)) {
				memcpy(ret, line, HASH_LEN);
				ret[HASH_LEN] = '\0';
				return true;
			}
		}
	}
	return false;
}

/* HEAD of the nearest enclosing checkout: .git is a directory, or a file
 * naming the gitdir (linked worktrees, submodules). */
static bool revision_from_git(char *dir, char ret[72])
{
	for (;;) {
		_cleanup_free_ char *gitdir = gitdir_of(dir);
		char *slash;

		if (gitdir) {
			_cleanup_free_ char *head = read_small(gitdir, "HEAD");

			if (!head)
				return false;
			if (is_commit_hash(head, strlen(head))) {
				memcpy(ret, head, HASH_LEN + 1);
				return true;
			}
			if (strncmp(head, "ref: ", 5) == 0)
				return lookup_ref(gitdir, head + 5, ret);
			return false;
		}
		if (strcmp(dir, "/") == 0)
			return false;
		slash = strrchr(dir, '/');
		if (!slash)
			return false;
		if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
	}
}

void cfg_revision(const char *resolved, bool is_dir, const struct cfg_file *files, size_t n_files,
		  char ret[72])
{
	_cleanup_free_ char *dir = strdup(resolved);
	struct ts_sha256_ctx ctx;
	uint8_t digest[TS_SHA256_DIGEST_LEN];
	char hex[65];

	if (revision_from_path(resolved, ret))
		return;
	if (dir && !is_dir) {
		char *slash = strrchr(dir, '/');

		if (slash)
			slash[slash == dir ? 1 : 0] = '\0';
	}
	if (dir && revision_from_git(dir, ret))
		return;
	ts_sha256_init(&ctx);
	for (size_t i = 0; i < n_files; i++) {
		ts_sha256_update(&ctx, files[i].name, strlen(files[i].name) + 1);
		ts_sha256_update(&ctx, files[i].data, files[i].len + 1);
	}
	ts_sha256_final(&ctx, digest);
	ts_sha256_hex(digest, hex);
	snprintf(ret, 72, "sha256:%s", hex);
}
