/* Owns the state directory: lock, key records, rotation journal, and their
 * checksummed line format (see store.h for the crash-safety argument). */
#include "store/store.h"

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

/* ---- names, paths, errors ---- */

bool ts_store_name_valid(const char *tunnel)
{
	size_t len;

	if (!tunnel)
		return false;
	len = strlen(tunnel);
	if (len == 0 || len > TS_NAME_MAX || tunnel[0] == '.')
		return false;
	for (const char *p = tunnel; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int store_file_path(const struct ts_store *s, const char *sub, const char *tunnel, const char *ext,
		    char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s/%s%s", s->dir, sub, tunnel, ext);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int store_file_unlink(struct ts_store *s, const char *sub, const char *tunnel, const char *ext)
{
	char path[PATH_MAX];
	int r;

	if (s->readonly)
		return -EROFS;
	r = store_file_path(s, sub, tunnel, ext, path, sizeof(path));
	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	return ts_fsync_parent(path);
}

int store_set_error(struct ts_store *s, int error, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s)
		snprintf(s->last_error, sizeof(s->last_error), "%s: %s", path, msg);
	return error;
}

const char *ts_store_dir(const struct ts_store *store)
{
	return store->dir;
}

const char *ts_store_last_error(const struct ts_store *store)
{
	return store ? store->last_error : "";
}

/* ---- directory, lock ---- */

/* created NULL: check only, never create. */
static int check_private_dir(struct ts_store *s, const char *path, bool *created)
{
	struct stat st;

	if (created) {
		if (mkdir(path, 0700) == 0)
			*created = true;
		else if (errno != EEXIST)
			return -errno;
	}
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return store_set_error(s, -ENOTDIR, path, "not a directory");
	if (st.st_uid != geteuid())
		return store_set_error(s, -EPERM, path, "owned by uid %u, not by this agent",
				       (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return store_set_error(
			s, -EPERM, path,
			"mode %04o: group or others have access; keys may have leaked "
			"(check, then chmod 0700)",
			(unsigned)(st.st_mode & 07777));
	return 0;
}

static int take_lock(struct ts_store *s, pid_t *holder_pid, bool *created)
{
	_cleanup_free_ char *path = NULL;
	char buf[32];
	int fd, n;

	if (asprintf(&path, "%s/lock", s->dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (fd >= 0)
		*created = true;
	else if (errno == EEXIST)
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : -errno;

		if (r == -EBUSY) {
			ssize_t len = pread(fd, buf, sizeof(buf) - 1, 0);
			long pid = 0;

			if (len > 0) {
				buf[len] = '\0';
				pid = strtol(buf, NULL, 10);
			}
			if (pid <= 0 || pid > INT32_MAX)
				pid = 0;
			if (holder_pid)
				*holder_pid = (pid_t)pid;
			store_set_error(s, r, s->dir, "in use by another agent (pid %ld)", pid);
		}
		close(fd);
		return r;
	}
	/* The pid is informative only: the flock is what excludes. */
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int r = -errno;

		close(fd);
		return r ? r : -EIO;
	}
	s->lock_fd = fd;
	return 0;
}

/* A crashed atomic write leaves NAME.ext.tmp.PID; under the lock nobody
 * else is writing, so every such file is garbage. Tunnel names may contain
 * dots, so only a name ending in ".tmp." and digits qualifies. */
static bool is_temporary(const char *name)
{
	const char *tmp = strstr(name, ".tmp.");
	const char *next;

	while (tmp && (next = strstr(tmp + 1, ".tmp.")))
		tmp = next;
	if (!tmp || !tmp[5])
		return false;
	for (const char *p = tmp + 5; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

static int remove_temporaries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool removed = false;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!is_temporary(de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
		removed = true;
	}
	if (removed && r == 0 && fsync(dirfd(d)) < 0)
		r = -errno;
	closedir(d);
	return r;
}

static _Thread_local char open_error[768];

const char *ts_store_open_error(void)
{
	return open_error;
}

static int check_top_dir(struct ts_store *s, const char *dir)
{
	struct stat st;

	/* The top directory may be a symlink (a volume mount): check its target. */
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return store_set_error(s, -ENOTDIR, dir, "not a directory");
	if (st.st_uid != geteuid())
		return store_set_error(s, -EPERM, dir, "owned by uid %u, not by this agent",
				       (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return store_set_error(
			s, -EPERM, dir,
			"mode %04o: group or others have access; keys may have leaked "
			"(check, then chmod 0700)",
			(unsigned)(st.st_mode & 07777));
	return 0;
}

static int store_open(const char *dir, bool readonly, struct ts_store **ret_store,
		      pid_t *holder_pid)
{
	bool created = false, created_top = false;
	struct ts_store *s;
	char sub[PATH_MAX];
	int r;

	open_error[0] = '\0';
	if (!dir || !dir[0] || !ret_store)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->lock_fd = -1;
	s->readonly = readonly;
	s->dir = strdup(dir);
	if (!s->dir) {
		r = -ENOMEM;
		goto fail;
	}
	if (!readonly) {
		if (access(dir, F_OK) < 0 && errno == ENOENT)
			created_top = true;
		r = ts_mkdir_p(dir, 0700);
		if (r < 0)
			goto fail;
	}
	r = check_top_dir(s, dir);
	if (r < 0)
		goto fail;
	if (!readonly) {
		r = take_lock(s, holder_pid, &created);
		if (r < 0)
			goto fail;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, i ? JOURNAL_DIR : RECORDS_DIR);
		if (readonly) {
			struct stat st;

			/* Nothing written yet: an empty store, not an error. */
			if (lstat(sub, &st) < 0 && errno == ENOENT)
				continue;
			r = check_private_dir(s, sub, NULL);
		} else {
			r = check_private_dir(s, sub, &created);
			if (r >= 0)
				r = remove_temporaries(sub);
		}
		if (r < 0)
			goto fail;
	}
	/* New subdirectories and the lock file: make their entries durable,
	 * and the state directory's own entry in its parent. */
	if (created)
		r = ts_fsync_parent(sub);
	if (r >= 0 && created_top)
		r = ts_fsync_parent(dir);
	if (r < 0)
		goto fail;
	*ret_store = s;
	return 0;
fail:
	if (s->last_error[0])
		snprintf(open_error, sizeof(open_error), "%s", s->last_error);
	else
		snprintf(open_error, sizeof(open_error), "%s: %s", dir, strerror(-r));
	ts_store_close(s);
	return r;
}

int ts_store_open(const char *dir, struct ts_store **ret_store, pid_t *holder_pid)
{
	return store_open(dir, false, ret_store, holder_pid);
}

int ts_store_open_readonly(const char *dir, struct ts_store **ret_store)
{
	return store_open(dir, true, ret_store, NULL);
}

void ts_store_close(struct ts_store *s)
{
	if (!s)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s->dir);
	free(s);
}

/* ---- record and journal destructors ---- */

void ts_store_record_done(struct ts_key_record *r)
{
	if (!r)
		return;
	ts_secret_free(r->key);
	memset(r, 0, sizeof(*r));
}

void ts_store_journal_entry_done(struct ts_journal_entry *e)
{
	if (!e)
		return;
	ts_secret_free(e->new_key);
	memset(e, 0, sizeof(*e));
}
