/* The store's file format (store.h): serialization, parsing with
 * checksum and version checks, and single-file reads and writes. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/crashpoint.h"
#include "core/fileio.h"
#include "core/secret.h"
#include "core/sha256.h"
#include "core/util.h"

#include "store/store_internal.h"

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

int store_check_key(const struct ts_secret *key)
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

/* The unit last_generated_on was written in by Cloudflare (a write
 * answer may use another precision than the list): only when coarser than
 * 1 us, so that files with microsecond times stay as earlier versions
 * wrote and read them. */
static void add_unit(struct wbuf *b, ts_usec_t unit)
{
	if (unit > 1)
		wbuf_add(b, "last_generated_unit=%" PRId64 "\n", unit);
}

static bool unit_ok(ts_usec_t unit)
{
	for (ts_usec_t u = 1; u <= TS_USEC_PER_SEC; u *= 10)
		if (unit == u)
			return true;
	return unit == 0;
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
	add_unit(b, rec->last_generated_unit);
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
	add_unit(b, e->last_generated_unit);
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
		return store_set_error(s, -EBADMSG, path, "not a regular file");
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		return store_set_error(s, -EPERM, path,
				       "mode %04o owner %u: must be 0600 and this agent's",
				       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
	if (st.st_size > FILE_MAX)
		return store_set_error(s, -EBADMSG, path, "too large (%lld bytes)",
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
		return store_set_error(s, -EBADMSG, path, "empty file");
	if (memchr(buf, '\0', len))
		return store_set_error(s, -EBADMSG, path, "contains a NUL byte");
	if (buf[len - 1] != '\n')
		return store_set_error(s, -EBADMSG, path, "truncated (no final newline)");
	start = len - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (len - start != 7 + 64 + 1 || strncmp(buf + start, "sha256=", 7) != 0)
		return store_set_error(s, -EBADMSG, path, "truncated (no checksum line)");
	ts_sha256(buf, start, digest);
	ts_sha256_hex(digest, hex);
	if (strncmp(buf + start + 7, hex, 64) != 0)
		return store_set_error(s, -EBADMSG, path, "checksum mismatch: file corrupted");
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
		return store_set_error(s, -EBADMSG, path, "not a %s file", magic);
	*nl = '\0';
	v = strtol(line + mlen + 1, &end, 10);
	if (*end != '\0' || end == line + mlen + 1)
		return store_set_error(s, -EBADMSG, path, "bad version field");
	if (v != TS_STORE_FORMAT_VERSION)
		return store_set_error(s, -EPROTONOSUPPORT, path,
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

bool store_fingerprint_syntax_ok(const char *fp)
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
	F_LGU = 1u << 13, /* optional: absent = 1 us */
};

/* One field of a record or journal file: its name, its bit in the "seen"
 * set, how its value is parsed, and where it goes in the struct. */
enum field_kind {
	FK_STR,
	FK_SOURCE,
	FK_STEP,
	FK_U32,
	FK_U64,
	FK_I64,
	FK_KEY
};

struct field {
	const char *name;
	unsigned bit;
	enum field_kind kind;
	size_t offset, size;
};

#define FIELD(name, bit, kind, type, member)                                         \
	{                                                                            \
		name, bit, kind, offsetof(type, member), sizeof(((type *)0)->member) \
	}

static const struct field record_fields[] = {
	FIELD("tunnel", F_TUNNEL, FK_STR, struct ts_key_record, tunnel),
	FIELD("tunnel_id", F_TUNNEL_ID, FK_STR, struct ts_key_record, tunnel_id),
	FIELD("source", F_SOURCE, FK_SOURCE, struct ts_key_record, source),
	FIELD("generation", F_GENERATION, FK_U64, struct ts_key_record, generation),
	FIELD("fingerprint", F_FINGERPRINT, FK_STR, struct ts_key_record, fingerprint),
	FIELD("last_generated_on", F_LGO, FK_I64, struct ts_key_record, last_generated_on),
	FIELD("last_generated_unit", F_LGU, FK_I64, struct ts_key_record, last_generated_unit),
	FIELD("applied_at", F_APPLIED, FK_I64, struct ts_key_record, applied_at),
	FIELD("key", F_KEY, FK_KEY, struct ts_key_record, key),
};

static const struct field journal_fields[] = {
	FIELD("tunnel", F_TUNNEL, FK_STR, struct ts_journal_entry, tunnel),
	FIELD("tunnel_id", F_TUNNEL_ID, FK_STR, struct ts_journal_entry, tunnel_id),
	FIELD("step", F_STEP, FK_STEP, struct ts_journal_entry, step),
	FIELD("source", F_SOURCE, FK_SOURCE, struct ts_journal_entry, source),
	FIELD("attempt", F_ATTEMPT, FK_U32, struct ts_journal_entry, attempt),
	FIELD("generation", F_GENERATION, FK_U64, struct ts_journal_entry, generation),
	FIELD("started_at", F_STARTED, FK_I64, struct ts_journal_entry, started_at),
	FIELD("last_generated_on", F_LGO, FK_I64, struct ts_journal_entry, last_generated_on),
	FIELD("last_generated_unit", F_LGU, FK_I64, struct ts_journal_entry, last_generated_unit),
	FIELD("applied_at", F_APPLIED, FK_I64, struct ts_journal_entry, applied_at),
	FIELD("old_fingerprint", F_OLD_FP, FK_STR, struct ts_journal_entry, old_fingerprint),
	FIELD("new_fingerprint", F_NEW_FP, FK_STR, struct ts_journal_entry, new_fingerprint),
	FIELD("key", F_KEY, FK_KEY, struct ts_journal_entry, new_key),
};

_Static_assert(offsetof(struct ts_key_record, tunnel) == 0, "a record starts with its tunnel");
_Static_assert(offsetof(struct ts_journal_entry, tunnel) == 0,
	       "a journal entry starts with its tunnel");

static int parse_value(const struct field *f, const char *v, void *obj)
{
	char *p = (char *)obj + f->offset;
	uint64_t u;
	int r;

	switch (f->kind) {
	case FK_STR:
		return copy_field(p, f->size, v);
	case FK_SOURCE:
		return parse_source(v, (enum ts_psk_source *)(void *)p);
	case FK_STEP:
		return parse_step(v, (enum ts_journal_step *)(void *)p);
	case FK_U32:
		r = parse_u64(v, &u);
		if (r >= 0 && u > UINT32_MAX)
			r = -EBADMSG;
		*(uint32_t *)(void *)p = (uint32_t)u;
		return r;
	case FK_U64:
		return parse_u64(v, (uint64_t *)(void *)p);
	case FK_I64:
		return parse_i64(v, (int64_t *)(void *)p);
	case FK_KEY:
		return parse_key(v, (struct ts_secret **)(void *)p);
	}
	return -EBADMSG;
}

/* What a file holds: its header, its fields, those it must have (all but
 * optional), and what it is called in errors. Its struct starts with the
 * tunnel's name. */
struct file_kind {
	const char *magic, *what;
	const struct field *fields;
	size_t n_fields;
	unsigned optional;
};

static const struct file_kind record_kind = { RECORD_MAGIC, "record", record_fields,
					      TS_ARRAY_SIZE(record_fields), F_LGU };
static const struct file_kind journal_kind = { JOURNAL_MAGIC, "journal entry", journal_fields,
					       TS_ARRAY_SIZE(journal_fields), F_KEY | F_LGU };

/* The checksum, the header line, then one KEY=VALUE line per field into
 * obj: an unknown, repeated or unparsable field is an error naming it, so
 * is a missing one or another tunnel's file. On error obj may hold what
 * was parsed so far (the caller frees it). */
static int parse_fields(struct ts_store *s, const char *path, const char *tunnel, char *buf,
			size_t len, const struct file_kind *fk, void *obj)
{
	const struct field *fields = fk->fields;
	size_t n_fields = fk->n_fields;
	unsigned all = 0;
	unsigned seen = 0;
	char *pos = buf, *k, *v;
	int r;

	r = verify_checksum(s, path, buf, len);
	if (r < 0)
		return r;
	r = parse_header(s, path, &pos, fk->magic);
	if (r < 0)
		return r;
	while ((r = next_field(&pos, &k, &v)) > 0) {
		const struct field *f = NULL;

		for (size_t i = 0; i < n_fields && !f; i++)
			if (ts_streq(k, fields[i].name))
				f = &fields[i];
		if (!f)
			return store_set_error(s, -EBADMSG, path, "unknown field \"%.32s\"", k);
		/* A repeated key is refused before it is parsed (no leak). */
		if ((seen & f->bit) || parse_value(f, v, obj) < 0)
			return store_set_error(s, -EBADMSG, path, "bad or repeated field \"%s\"",
					       k);
		seen |= f->bit;
	}
	if (r < 0)
		return store_set_error(s, -EBADMSG, path, "malformed line");
	for (size_t i = 0; i < n_fields; i++)
		all |= fields[i].bit;
	if ((seen | fk->optional) != all)
		return store_set_error(s, -EBADMSG, path, "missing fields");
	if (!ts_streq((const char *)obj, tunnel))
		return store_set_error(s, -EBADMSG, path, "%s is for tunnel \"%s\"", fk->what,
				       (const char *)obj);
	return 0;
}

static int parse_record(struct ts_store *s, const char *path, const char *tunnel, char *buf,
			size_t len, struct ts_key_record *ret)
{
	struct ts_key_record rec = { 0 };
	char fp[TS_FINGERPRINT_LEN];
	int r;

	r = parse_fields(s, path, tunnel, buf, len, &record_kind, &rec);
	if (r < 0)
		goto fail;
	ts_secret_fingerprint(rec.key, fp);
	if (!ts_streq(fp, rec.fingerprint)) {
		r = store_set_error(s, -EBADMSG, path, "fingerprint does not match the key");
		goto fail;
	}
	if (!unit_ok(rec.last_generated_unit)) {
		r = store_set_error(s, -EBADMSG, path, "bad last_generated_unit");
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
	char fp[TS_FINGERPRINT_LEN];
	int r;

	r = parse_fields(s, path, tunnel, buf, len, &journal_kind, &e);
	if (r < 0)
		goto fail;
	if (e.old_fingerprint[0] && !store_fingerprint_syntax_ok(e.old_fingerprint)) {
		r = store_set_error(s, -EBADMSG, path, "bad old_fingerprint");
		goto fail;
	}
	if (!unit_ok(e.last_generated_unit)) {
		r = store_set_error(s, -EBADMSG, path, "bad last_generated_unit");
		goto fail;
	}
	if (e.new_key) {
		ts_secret_fingerprint(e.new_key, fp);
		if (!ts_streq(fp, e.new_fingerprint)) {
			r = store_set_error(s, -EBADMSG, path,
					    "fingerprint does not match the key");
			goto fail;
		}
	} else if (e.new_fingerprint[0] || e.step >= TS_JOURNAL_REMOTE) {
		r = store_set_error(s, -EBADMSG, path, "step %s without a key",
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

int store_read_and_parse(struct ts_store *s, const char *path, const char *tunnel, bool journal,
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

static int read_one(struct ts_store *s, const char *tunnel, bool journal, void *ret)
{
	char path[PATH_MAX];
	int r;

	if (!s || !ret || !ts_store_name_valid(tunnel))
		return -EINVAL;
	r = store_file_path(s, journal ? JOURNAL_DIR : RECORDS_DIR, tunnel,
			    journal ? JOURNAL_EXT : RECORD_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	return store_read_and_parse(s, path, tunnel, journal, ret);
}

int ts_store_record_read(struct ts_store *s, const char *tunnel, struct ts_key_record *ret)
{
	return read_one(s, tunnel, false, ret);
}

int ts_store_journal_read(struct ts_store *s, const char *tunnel, struct ts_journal_entry *ret)
{
	return read_one(s, tunnel, true, ret);
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
	r = store_check_key(rec->key);
	if (r < 0)
		return r;
	r = store_file_path(s, RECORDS_DIR, rec->tunnel, RECORD_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	r = serialize_record(rec, &b);
	if (r >= 0)
		r = ts_file_write_atomic(path, b.s, b.len, 0600);
	wbuf_free(&b);
	return r;
}

int store_write_journal(struct ts_store *s, const struct ts_journal_entry *e)
{
	struct wbuf b;
	char path[PATH_MAX];
	int r;

	if (s->readonly)
		return -EROFS;
	r = store_file_path(s, JOURNAL_DIR, e->tunnel, JOURNAL_EXT, path, sizeof(path));
	if (r < 0)
		return r;
	r = serialize_journal(e, &b);
	if (r >= 0)
		r = ts_file_write_atomic(path, b.s, b.len, 0600);
	wbuf_free(&b);
	return r;
}
