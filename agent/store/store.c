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

#define RECORD_MAGIC  "tunnelsync-record"
#define JOURNAL_MAGIC "tunnelsync-journal"
#define RECORDS_DIR   "records"
#define JOURNAL_DIR   "journal"
#define RECORD_EXT    ".rec"
#define JOURNAL_EXT   ".jnl"
/* Largest file we accept: the fields plus a hex key of TS_STORE_KEY_MAX. */
#define FILE_MAX (4096 + 2 * TS_STORE_KEY_MAX)

struct ts_store {
	char *dir;
	int lock_fd;
	bool readonly; /* no lock held: every write is -EROFS */
	char last_error[768];
};

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

static int file_path(const struct ts_store *s, const char *sub, const char *tunnel, const char *ext,
		     char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s/%s%s", s->dir, sub, tunnel, ext);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int set_error(struct ts_store *s, int error, const char *path, const char *fmt, ...)
	TS_PRINTF(4, 5);

static int set_error(struct ts_store *s, int error, const char *path, const char *fmt, ...)
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
		return set_error(s, -ENOTDIR, path, "not a directory");
	if (st.st_uid != geteuid())
		return set_error(s, -EPERM, path, "owned by uid %u, not by this agent",
				 (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return set_error(s, -EPERM, path,
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
			set_error(s, r, s->dir, "in use by another agent (pid %ld)", pid);
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
		return set_error(s, -ENOTDIR, dir, "not a directory");
	if (st.st_uid != geteuid())
		return set_error(s, -EPERM, dir, "owned by uid %u, not by this agent",
				 (unsigned)st.st_uid);
	if (st.st_mode & 077)
		return set_error(s, -EPERM, dir,
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

/* ---- serialization ---- */

/* A buffer that may hold a key in hex: wiped before it is freed. */
struct wbuf {
	char *s;
	size_t len, cap;
	int error;
};

static void wbuf_free(struct wbuf *b)
{
	if (b->s) {
		ts_wipe(b->s, b->cap);
		free(b->s);
	}
	b->s = NULL;
}

static void wbuf_add(struct wbuf *b, const char *fmt, ...) TS_PRINTF(2, 3);

static void wbuf_add(struct wbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->error)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	/* Sized up front from the key length: no growth, so no unwiped copy. */
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->error = -EOVERFLOW;
		return;
	}
	b->len += (size_t)n;
}

static void wbuf_add_hex(struct wbuf *b, const struct ts_secret *key)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)ts_secret_str(key);
	size_t n = ts_secret_len(key);

	if (b->error)
		return;
	if (b->len + 2 * n + 1 >= b->cap) {
		b->error = -EOVERFLOW;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		b->s[b->len++] = hex[p[i] >> 4];
		b->s[b->len++] = hex[p[i] & 0xf];
	}
	b->s[b->len] = '\0';
}

static int wbuf_init(struct wbuf *b, const struct ts_secret *key)
{
	memset(b, 0, sizeof(*b));
	b->cap = 2048 + (key ? 2 * ts_secret_len(key) : 0);
	b->s = calloc(1, b->cap);
	return b->s ? 0 : -ENOMEM;
}

static void wbuf_seal(struct wbuf *b)
{
	uint8_t digest[TS_SHA256_DIGEST_LEN];
	char hex[65];

	if (b->error)
		return;
	ts_sha256(b->s, b->len, digest);
	ts_sha256_hex(digest, hex);
	wbuf_add(b, "sha256=%s\n", hex);
}

static int check_key(const struct ts_secret *key)
{
	if (!key || ts_secret_len(key) == 0)
		return -EINVAL;
	if (ts_secret_len(key) > TS_STORE_KEY_MAX)
		return -EMSGSIZE;
	/* Keys are strings for Cloudflare and swanctl; a NUL or newline would
	 * be cut or split somewhere. */
	if (memchr(ts_secret_str(key), '\0', ts_secret_len(key)))
		return -EINVAL;
	return 0;
}

static int serialize_record(const struct ts_key_record *rec, struct wbuf *b)
{
	char fp[TS_FINGERPRINT_LEN];
	int r;

	r = wbuf_init(b, rec->key);
	if (r < 0)
		return r;
	ts_secret_fingerprint(rec->key, fp);
	wbuf_add(b, "%s %d\n", RECORD_MAGIC, TS_STORE_FORMAT_VERSION);
	wbuf_add(b, "tunnel=%s\ntunnel_id=%s\nsource=%s\ngeneration=%" PRIu64 "\n", rec->tunnel,
		 rec->tunnel_id, ts_psk_source_to_string(rec->source), rec->generation);
	wbuf_add(b, "fingerprint=%s\nlast_generated_on=%" PRId64 "\napplied_at=%" PRId64 "\n", fp,
		 rec->last_generated_on, rec->applied_at);
	wbuf_add(b, "key=");
	wbuf_add_hex(b, rec->key);
	wbuf_add(b, "\n");
	wbuf_seal(b);
	return b->error;
}

static int serialize_journal(const struct ts_journal_entry *e, struct wbuf *b)
{
	char fp[TS_FINGERPRINT_LEN] = "";
	int r;

	r = wbuf_init(b, e->new_key);
	if (r < 0)
		return r;
	if (e->new_key)
		ts_secret_fingerprint(e->new_key, fp);
	wbuf_add(b, "%s %d\n", JOURNAL_MAGIC, TS_STORE_FORMAT_VERSION);
	wbuf_add(b, "tunnel=%s\ntunnel_id=%s\nstep=%s\nsource=%s\nattempt=%" PRIu32 "\n", e->tunnel,
		 e->tunnel_id, ts_journal_step_to_string(e->step),
		 ts_psk_source_to_string(e->source), e->attempt);
	wbuf_add(b,
		 "generation=%" PRIu64 "\nstarted_at=%" PRId64 "\nlast_generated_on=%" PRId64
		 "\napplied_at=%" PRId64 "\n",
		 e->generation, e->started_at, e->last_generated_on, e->applied_at);
	wbuf_add(b, "old_fingerprint=%s\nnew_fingerprint=%s\n", e->old_fingerprint, fp);
	if (e->new_key) {
		wbuf_add(b, "key=");
		wbuf_add_hex(b, e->new_key);
		wbuf_add(b, "\n");
	}
	wbuf_seal(b);
	return b->error;
}

/* ---- parsing ---- */

/* Reads a whole private file into a buffer the caller wipes. Mode and
 * owner are checked on the open descriptor. */
static int read_private_file(struct ts_store *s, const char *path, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *buf;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return set_error(s, -EBADMSG, path, "not a regular file");
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return set_error(s, -EPERM, path,
				 "mode %04o owner %u: must be 0600 and this agent's",
				 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	if (st.st_size > FILE_MAX)
		return set_error(s, -EBADMSG, path, "too large (%lld bytes)",
				 (long long)st.st_size);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? -errno : -EIO;

			ts_wipe(buf, len);
			free(buf);
			return r;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* Checks the trailing checksum line and cuts it off; returns the length of
 * the covered text. */
static int verify_checksum(struct ts_store *s, const char *path, char *buf, size_t len)
{
	uint8_t digest[TS_SHA256_DIGEST_LEN];
	char hex[65];
	size_t start;

	if (len == 0)
		return set_error(s, -EBADMSG, path, "empty file");
	if (memchr(buf, '\0', len))
		return set_error(s, -EBADMSG, path, "contains a NUL byte");
	if (buf[len - 1] != '\n')
		return set_error(s, -EBADMSG, path, "truncated (no final newline)");
	start = len - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (len - start != 7 + 64 + 1 || strncmp(buf + start, "sha256=", 7) != 0)
		return set_error(s, -EBADMSG, path, "truncated (no checksum line)");
	ts_sha256(buf, start, digest);
	ts_sha256_hex(digest, hex);
	if (strncmp(buf + start + 7, hex, 64) != 0)
		return set_error(s, -EBADMSG, path, "checksum mismatch: file corrupted");
	buf[start] = '\0';
	return (int)start;
}

static int parse_header(struct ts_store *s, const char *path, char **pos, const char *magic)
{
	char *line = *pos, *nl = strchr(line, '\n');
	size_t mlen = strlen(magic);
	char *end;
	long v;

	if (!nl || strncmp(line, magic, mlen) != 0 || line[mlen] != ' ')
		return set_error(s, -EBADMSG, path, "not a %s file", magic);
	*nl = '\0';
	v = strtol(line + mlen + 1, &end, 10);
	if (*end != '\0' || end == line + mlen + 1)
		return set_error(s, -EBADMSG, path, "bad version field");
	if (v != TS_STORE_FORMAT_VERSION)
		return set_error(s, -EPROTONOSUPPORT, path,
				 "format version %ld, this agent reads version %d", v,
				 TS_STORE_FORMAT_VERSION);
	*pos = nl + 1;
	return 0;
}

/* Splits the next "key=value" line in place; 0 at the end, 1 for a line. */
static int next_field(char **pos, char **ret_key, char **ret_value)
{
	char *line = *pos, *nl, *eq;

	if (!*line)
		return 0;
	nl = strchr(line, '\n');
	if (!nl)
		return -EBADMSG;
	*nl = '\0';
	eq = strchr(line, '=');
	if (!eq)
		return -EBADMSG;
	*eq = '\0';
	*ret_key = line;
	*ret_value = eq + 1;
	*pos = nl + 1;
	return 1;
}

static int parse_i64(const char *v, int64_t *ret)
{
	char *end;
	long long x;

	if (!*v)
		return -EBADMSG;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (*end || errno)
		return -EBADMSG;
	*ret = x;
	return 0;
}

static int parse_u64(const char *v, uint64_t *ret)
{
	char *end;
	unsigned long long x;

	if (!*v || *v == '-')
		return -EBADMSG;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (*end || errno)
		return -EBADMSG;
	*ret = x;
	return 0;
}

static int parse_source(const char *v, enum ts_psk_source *ret)
{
	for (int i = 0; i < _TS_PSK_SOURCE_MAX; i++)
		if (ts_streq(v, ts_psk_source_names[i])) {
			*ret = (enum ts_psk_source)i;
			return 0;
		}
	return -EBADMSG;
}

static int parse_step(const char *v, enum ts_journal_step *ret)
{
	for (int i = 0; i < _TS_JOURNAL_STEP_MAX; i++)
		if (ts_streq(v, ts_journal_step_to_string((enum ts_journal_step)i))) {
			*ret = (enum ts_journal_step)i;
			return 0;
		}
	return -EBADMSG;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes straight into secret storage: the only other copy is the hex in
 * the file buffer, which the caller wipes. */
static int parse_key(const char *hex, struct ts_secret **ret_key)
{
	size_t n = strlen(hex);
	struct ts_secret *key;
	int r;

	if (n == 0 || n % 2 || n / 2 > TS_STORE_KEY_MAX)
		return -EBADMSG;
	r = ts_secret_new(n / 2, &key);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
		unsigned char byte;

		if (hi < 0 || lo < 0) {
			ts_secret_free(key);
			return -EBADMSG;
		}
		byte = (unsigned char)(hi << 4 | lo);
		r = ts_secret_append(key, &byte, 1);
		byte = 0;
		if (r < 0) {
			ts_secret_free(key);
			return r;
		}
	}
	*ret_key = key;
	return 0;
}

static int copy_field(char *dst, size_t size, const char *v)
{
	return ts_strlcpy(dst, v, size) < 0 ? -EBADMSG : 0;
}

static bool fingerprint_syntax_ok(const char *fp)
{
	if (strlen(fp) != TS_FINGERPRINT_LEN - 1 || strncmp(fp, "sha256:", 7) != 0)
		return false;
	for (const char *p = fp + 7; *p; p++)
		if (hexval(*p) < 0)
			return false;
	return true;
}

enum {
	F_TUNNEL = 1u << 0,
	F_TUNNEL_ID = 1u << 1,
	F_SOURCE = 1u << 2,
	F_GENERATION = 1u << 3,
	F_FINGERPRINT = 1u << 4,
	F_LGO = 1u << 5,
	F_APPLIED = 1u << 6,
	F_KEY = 1u << 7,
	F_STEP = 1u << 8,
	F_ATTEMPT = 1u << 9,
	F_STARTED = 1u << 10,
	F_OLD_FP = 1u << 11,
	F_NEW_FP = 1u << 12,
};

static int parse_record(struct ts_store *s, const char *path, const char *tunnel, char *buf,
			size_t len, struct ts_key_record *ret)
{
	struct ts_key_record rec = { 0 };
	unsigned seen = 0;
	char *pos = buf, *k, *v;
	char fp[TS_FINGERPRINT_LEN];
	int r;

	r = verify_checksum(s, path, buf, len);
	if (r < 0)
		return r;
	r = parse_header(s, path, &pos, RECORD_MAGIC);
	if (r < 0)
		return r;
	while ((r = next_field(&pos, &k, &v)) > 0) {
		unsigned bit;

		if (ts_streq(k, "tunnel"))
			bit = F_TUNNEL, r = copy_field(rec.tunnel, sizeof(rec.tunnel), v);
		else if (ts_streq(k, "tunnel_id"))
			bit = F_TUNNEL_ID, r = copy_field(rec.tunnel_id, sizeof(rec.tunnel_id), v);
		else if (ts_streq(k, "source"))
			bit = F_SOURCE, r = parse_source(v, &rec.source);
		else if (ts_streq(k, "generation"))
			bit = F_GENERATION, r = parse_u64(v, &rec.generation);
		else if (ts_streq(k, "fingerprint"))
			bit = F_FINGERPRINT,
			r = copy_field(rec.fingerprint, sizeof(rec.fingerprint), v);
		else if (ts_streq(k, "last_generated_on"))
			bit = F_LGO, r = parse_i64(v, &rec.last_generated_on);
		else if (ts_streq(k, "applied_at"))
			bit = F_APPLIED, r = parse_i64(v, &rec.applied_at);
		else if (ts_streq(k, "key"))
			bit = F_KEY, r = (seen & F_KEY) ? -EBADMSG : parse_key(v, &rec.key);
		else {
			r = set_error(s, -EBADMSG, path, "unknown field \"%.32s\"", k);
			goto fail;
		}
		if (r < 0 || (seen & bit)) {
			r = set_error(s, -EBADMSG, path, "bad or repeated field \"%s\"", k);
			goto fail;
		}
		seen |= bit;
	}
	if (r < 0) {
		r = set_error(s, -EBADMSG, path, "malformed line");
		goto fail;
	}
	if (seen != (F_TUNNEL | F_TUNNEL_ID | F_SOURCE | F_GENERATION | F_FINGERPRINT | F_LGO |
		     F_APPLIED | F_KEY)) {
		r = set_error(s, -EBADMSG, path, "missing fields");
		goto fail;
	}
	if (!ts_streq(rec.tunnel, tunnel)) {
		r = set_error(s, -EBADMSG, path, "record is for tunnel \"%s\"", rec.tunnel);
		goto fail;
	}
	ts_secret_fingerprint(rec.key, fp);
	if (!ts_streq(fp, rec.fingerprint)) {
		r = set_error(s, -EBADMSG, path, "fingerprint does not match the key");
		goto fail;
	}
	*ret = rec;
	return 0;
fail:
	ts_store_record_done(&rec);
	return r;
}

static int parse_journal(struct ts_store *s, const char *path, const char *tunnel, char *buf,
			 size_t len, struct ts_journal_entry *ret)
{
	struct ts_journal_entry e = { 0 };
	unsigned seen = 0;
	char *pos = buf, *k, *v;
	char fp[TS_FINGERPRINT_LEN];
	int r;

	r = verify_checksum(s, path, buf, len);
	if (r < 0)
		return r;
	r = parse_header(s, path, &pos, JOURNAL_MAGIC);
	if (r < 0)
		return r;
	while ((r = next_field(&pos, &k, &v)) > 0) {
		unsigned bit;
		uint64_t u;

		if (ts_streq(k, "tunnel"))
			bit = F_TUNNEL, r = copy_field(e.tunnel, sizeof(e.tunnel), v);
		else if (ts_streq(k, "tunnel_id"))
			bit = F_TUNNEL_ID, r = copy_field(e.tunnel_id, sizeof(e.tunnel_id), v);
		else if (ts_streq(k, "step"))
			bit = F_STEP, r = parse_step(v, &e.step);
		else if (ts_streq(k, "source"))
			bit = F_SOURCE, r = parse_source(v, &e.source);
		else if (ts_streq(k, "attempt")) {
			bit = F_ATTEMPT, r = parse_u64(v, &u);
			if (r >= 0 && u > UINT32_MAX)
				r = -EBADMSG;
			e.attempt = (uint32_t)u;
		} else if (ts_streq(k, "generation"))
			bit = F_GENERATION, r = parse_u64(v, &e.generation);
		else if (ts_streq(k, "started_at"))
			bit = F_STARTED, r = parse_i64(v, &e.started_at);
		else if (ts_streq(k, "last_generated_on"))
			bit = F_LGO, r = parse_i64(v, &e.last_generated_on);
		else if (ts_streq(k, "applied_at"))
			bit = F_APPLIED, r = parse_i64(v, &e.applied_at);
		else if (ts_streq(k, "old_fingerprint"))
			bit = F_OLD_FP,
			r = copy_field(e.old_fingerprint, sizeof(e.old_fingerprint), v);
		else if (ts_streq(k, "new_fingerprint"))
			bit = F_NEW_FP,
			r = copy_field(e.new_fingerprint, sizeof(e.new_fingerprint), v);
		else if (ts_streq(k, "key"))
			bit = F_KEY, r = (seen & F_KEY) ? -EBADMSG : parse_key(v, &e.new_key);
		else {
			r = set_error(s, -EBADMSG, path, "unknown field \"%.32s\"", k);
			goto fail;
		}
		if (r < 0 || (seen & bit)) {
			r = set_error(s, -EBADMSG, path, "bad or repeated field \"%s\"", k);
			goto fail;
		}
		seen |= bit;
	}
	if (r < 0) {
		r = set_error(s, -EBADMSG, path, "malformed line");
		goto fail;
	}
	if ((seen | F_KEY) !=
	    (F_TUNNEL | F_TUNNEL_ID | F_STEP | F_SOURCE | F_ATTEMPT | F_GENERATION | F_STARTED |
	     F_LGO | F_APPLIED | F_OLD_FP | F_NEW_FP | F_KEY)) {
		r = set_error(s, -EBADMSG, path, "missing fields");
		goto fail;
	}
	if (!ts_streq(e.tunnel, tunnel)) {
		r = set_error(s, -EBADMSG, path, "journal entry is for tunnel \"%s\"", e.tunnel);
		goto fail;
	}
	if (e.old_fingerprint[0] && !fingerprint_syntax_ok(e.old_fingerprint)) {
		r = set_error(s, -EBADMSG, path, "bad old_fingerprint");
		goto fail;
	}
	if (e.new_key) {
		ts_secret_fingerprint(e.new_key, fp);
		if (!ts_streq(fp, e.new_fingerprint)) {
			r = set_error(s, -EBADMSG, path, "fingerprint does not match the key");
			goto fail;
		}
	} else if (e.new_fingerprint[0] || e.step >= TS_JOURNAL_REMOTE) {
		r = set_error(s, -EBADMSG, path, "step %s without a key",
			      ts_journal_step_to_string(e.step));
		goto fail;
	}
	*ret = e;
	return 0;
fail:
	ts_store_journal_entry_done(&e);
	return r;
}

typedef int (*parse_fn)(struct ts_store *s, const char *path, const char *tunnel, char *buf,
			size_t len, void *ret);

static int read_and_parse(struct ts_store *s, const char *path, const char *tunnel, bool journal,
			  void *ret)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_private_file(s, path, &buf, &len);
	if (r < 0)
		return r;
	if (journal)
		r = parse_journal(s, path, tunnel, buf, len, ret);
	else
		r = parse_record(s, path, tunnel, buf, len, ret);
	ts_wipe(buf, len + 1);
	free(buf);
	return r;
}

/* ---- single-file operations ---- */

int ts_store_record_read(struct ts_store *s, const char *tunnel, struct ts_key_record *ret)
{
	char path[PATH_MAX];
	int r;

	if (!s || !ret || !ts_store_name_valid(tunnel))
		return -EINVAL;
	r = file_path(s, RECORDS_DIR, tunnel, RECORD_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	return read_and_parse(s, path, tunnel, false, ret);
}

int ts_store_journal_read(struct ts_store *s, const char *tunnel, struct ts_journal_entry *ret)
{
	char path[PATH_MAX];
	int r;

	if (!s || !ret || !ts_store_name_valid(tunnel))
		return -EINVAL;
	r = file_path(s, JOURNAL_DIR, tunnel, JOURNAL_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	return read_and_parse(s, path, tunnel, true, ret);
}

int ts_store_record_write(struct ts_store *s, const struct ts_key_record *rec)
{
	struct wbuf b;
	char path[PATH_MAX];
	int r;

	if (!s || !rec || !ts_store_name_valid(rec->tunnel) ||
	    (unsigned)rec->source >= _TS_PSK_SOURCE_MAX)
		return -EINVAL;
	if (s->readonly)
		return -EROFS;
	r = check_key(rec->key);
	if (r < 0)
		return r;
	r = file_path(s, RECORDS_DIR, rec->tunnel, RECORD_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	r = serialize_record(rec, &b);
	if (r >= 0)
		r = ts_file_write_atomic(path, b.s, b.len, 0600);
	wbuf_free(&b);
	return r;
}

static int write_journal(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct wbuf b;
	char path[PATH_MAX];
	int r;

	if (s->readonly)
		return -EROFS;
	r = file_path(s, JOURNAL_DIR, e->tunnel, JOURNAL_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	r = serialize_journal(e, &b);
	if (r >= 0)
		r = ts_file_write_atomic(path, b.s, b.len, 0600);
	wbuf_free(&b);
	return r;
}

static int check_entry(const struct ts_journal_entry *e)
{
	int r;

	if (!ts_store_name_valid(e->tunnel) || (unsigned)e->source >= _TS_PSK_SOURCE_MAX ||
	    (unsigned)e->step >= _TS_JOURNAL_STEP_MAX)
		return -EINVAL;
	if (e->old_fingerprint[0] && !fingerprint_syntax_ok(e->old_fingerprint))
		return -EINVAL;
	if (e->new_key) {
		r = check_key(e->new_key);
		if (r < 0)
			return r;
	} else if (e->step >= TS_JOURNAL_REMOTE) {
		return -EINVAL; /* past the remote step the key must be known */
	}
	return 0;
}

int ts_store_journal_begin(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct ts_journal_entry old = { 0 };
	struct ts_key_record rec = { 0 };
	int r;

	if (!s || !e)
		return -EINVAL;
	r = check_entry(e);
	if (r < 0)
		return r;
	if (e->step != TS_JOURNAL_PREPARED)
		return -EINVAL;
	/* The entry must continue the current record: a rotation is never
	 * started over a record that cannot be read (it may hold the only
	 * copy of the key Cloudflare has). */
	r = ts_store_record_read(s, e->tunnel, &rec);
	if (r == -ENOENT) {
		if (e->generation != 1 || e->old_fingerprint[0])
			return -EINVAL;
	} else if (r < 0) {
		return r;
	} else {
		bool follows = e->generation == rec.generation + 1 &&
			       ts_streq(e->old_fingerprint, rec.fingerprint);

		ts_store_record_done(&rec);
		if (!follows)
			return -EINVAL;
	}
	r = ts_store_journal_read(s, e->tunnel, &old);
	if (r >= 0) {
		ts_store_journal_entry_done(&old);
		return -EEXIST;
	}
	/* A journal that cannot be read is not "no journal": never overwrite it. */
	if (r != -ENOENT)
		return r;
	return write_journal(s, e);
}

int ts_store_journal_advance(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct ts_journal_entry old = { 0 };
	int r;

	if (!s || !e)
		return -EINVAL;
	r = check_entry(e);
	if (r < 0)
		return r;
	r = ts_store_journal_read(s, e->tunnel, &old);
	if (r < 0)
		return r;
	/* Only the step, the attempt, the key once known and the remote
	 * metadata may change; committed is for ts_store_journal_commit(). */
	if (e->step < old.step || e->step == TS_JOURNAL_COMMITTED ||
	    !ts_streq(e->tunnel_id, old.tunnel_id) || e->source != old.source ||
	    e->generation != old.generation || !ts_streq(e->old_fingerprint, old.old_fingerprint) ||
	    (old.new_key && !ts_secret_equal(old.new_key, e->new_key)))
		r = -EINVAL;
	else
		r = write_journal(s, e);
	ts_store_journal_entry_done(&old);
	return r;
}

static int unlink_journal(struct ts_store *s, const char *tunnel)
{
	char path[PATH_MAX];
	int r;

	if (s->readonly)
		return -EROFS;
	r = file_path(s, JOURNAL_DIR, tunnel, JOURNAL_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	return ts_fsync_parent(path);
}

int ts_store_journal_commit(struct ts_store *s, const char *tunnel, ts_usec_t applied_at,
			    struct ts_key_record *ret_record)
{
	struct ts_journal_entry e = { 0 };
	struct ts_key_record rec = { 0 };
	int r;

	if (!s)
		return -EINVAL;
	r = ts_store_journal_read(s, tunnel, &e);
	if (r < 0)
		return r;
	if (e.step < TS_JOURNAL_LOCAL) {
		r = -EINVAL;
		goto out;
	}
	if (e.step != TS_JOURNAL_COMMITTED) {
		e.step = TS_JOURNAL_COMMITTED;
		e.applied_at = applied_at;
		r = write_journal(s, &e);
		if (r < 0)
			goto out;
	}
	ts_crash_point("store:commit-after-journal");

	/* Everything comes from the entry, so a repeat writes the same record. */
	memcpy(rec.tunnel, e.tunnel, sizeof(rec.tunnel));
	memcpy(rec.tunnel_id, e.tunnel_id, sizeof(rec.tunnel_id));
	rec.key = e.new_key;
	rec.source = e.source;
	rec.last_generated_on = e.last_generated_on;
	rec.applied_at = e.applied_at;
	rec.generation = e.generation;
	ts_secret_fingerprint(rec.key, rec.fingerprint);
	r = ts_store_record_write(s, &rec);
	if (r < 0)
		goto out;
	ts_crash_point("store:commit-after-record");

	r = unlink_journal(s, tunnel);
	if (r < 0)
		goto out;
	if (ret_record) {
		e.new_key = NULL; /* ownership moves to the returned record */
		*ret_record = rec;
	}
out:
	ts_store_journal_entry_done(&e);
	return r;
}

int ts_store_journal_discard(struct ts_store *s, const char *tunnel)
{
	struct ts_journal_entry e = { 0 };
	int r;

	if (!s)
		return -EINVAL;
	r = ts_store_journal_read(s, tunnel, &e);
	if (r < 0)
		return r;
	r = e.step == TS_JOURNAL_PREPARED ? unlink_journal(s, tunnel) : -EINVAL;
	ts_store_journal_entry_done(&e);
	return r;
}

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
		s->last_error[0] = '\0';
		if (journal) {
			struct ts_journal_entry e = { 0 };
			struct ts_journal_entry *grown;

			r = ts_store_journal_read(s, tunnel, &e);
			if (r >= 0) {
				grown = realloc(st->journal, (st->n_journal + 1) * sizeof(*grown));
				if (!grown) {
					ts_store_journal_entry_done(&e);
					r = -ENOMEM;
					goto out;
				}
				st->journal = grown;
				st->journal[st->n_journal++] = e;
			}
		} else {
			struct ts_key_record rec = { 0 };
			struct ts_key_record *grown;

			r = ts_store_record_read(s, tunnel, &rec);
			if (r >= 0) {
				grown = realloc(st->records, (st->n_records + 1) * sizeof(*grown));
				if (!grown) {
					ts_store_record_done(&rec);
					r = -ENOMEM;
					goto out;
				}
				st->records = grown;
				st->records[st->n_records++] = rec;
			}
		}
		if (r == -ENOMEM)
			goto out;
		if (r < 0) {
			char msg[128];

			/* The message names the path already; keep the reason only. */
			const char *colon = strstr(s->last_error, ": ");

			snprintf(msg, sizeof(msg), "%s",
				 s->last_error[0] && colon ? colon + 2 : strerror(-r));
			r = add_problem(st, tunnel, path, r, msg);
			if (r < 0)
				goto out;
		}
		r = 0;
	}
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
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
	if (r < 0) {
		ts_store_state_free(st);
		return r;
	}
	if (st->n_problems) {
		const struct ts_store_problem *p = &st->problems[st->n_problems - 1];

		snprintf(s->last_error, sizeof(s->last_error), "%s: %s", p->path, p->message);
	}
	*ret_state = st;
	return 0;
}

void ts_store_state_free(struct ts_store_state *st)
{
	if (!st)
		return;
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
	for (size_t i = 0; st && i < st->n_records; i++)
		if (ts_streq(st->records[i].tunnel, tunnel))
			return &st->records[i];
	return NULL;
}

const struct ts_journal_entry *ts_store_state_journal(const struct ts_store_state *st,
						      const char *tunnel)
{
	for (size_t i = 0; st && i < st->n_journal; i++)
		if (ts_streq(st->journal[i].tunnel, tunnel))
			return &st->journal[i];
	return NULL;
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
