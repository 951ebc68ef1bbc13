/* Unit tests of core/: SHA-256, secret buffers and redaction, atomic files,
 * RFC 3339 time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/sha256.h"
#include "core/timeutil.h"
#include "core/util.h"

static void test_sha256_vectors(void **state)
{
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	uint8_t d[TS_SHA256_DIGEST_LEN];
	char hex[65];

	for (size_t i = 0; i < TS_ARRAY_SIZE(v); i++) {
		ts_sha256(v[i].in, strlen(v[i].in), d);
		ts_sha256_hex(d, hex);
		assert_string_equal(hex, v[i].hex);
	}
	/* A million 'a's, fed in odd-sized pieces, crosses many block edges. */
	{
		struct ts_sha256_ctx ctx;
		char chunk[997];

		memset(chunk, 'a', sizeof(chunk));
		ts_sha256_init(&ctx);
		for (size_t left = 1000000; left;) {
			size_t n = left < sizeof(chunk) ? left : sizeof(chunk);

			ts_sha256_update(&ctx, chunk, n);
			left -= n;
		}
		ts_sha256_final(&ctx, d);
		ts_sha256_hex(d, hex);
		assert_string_equal(
			hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	}
}

/* The SHA extensions' path (where this CPU has them) and the portable
 * one agree on every length from 0 to 1,100 bytes, fed whole and in
 * pieces of every size from 1 to 130; the vectors above ran on the
 * default path, so both are checked against FIPS 180-4. */
static void test_sha256_paths_agree(void **state)
{
	static uint8_t buf[1100];
	bool accel = ts_sha256_accel(-1);
	uint32_t x = 2463534242u;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (uint8_t)x;
	}
	printf("sha256: SHA extensions %s\n",
	       accel ? "present: both paths compared" : "absent: the portable path only");
	for (size_t len = 0; len <= sizeof(buf); len++) {
		uint8_t d[2][TS_SHA256_DIGEST_LEN];

		for (int path = 0; path < 2; path++) {
			struct ts_sha256_ctx ctx;
			size_t piece = 1 + (len * 7 + (size_t)path) % 130;

			(void)ts_sha256_accel(path);
			ts_sha256_init(&ctx);
			for (size_t off = 0; off < len; off += piece)
				ts_sha256_update(&ctx, buf + off,
						 len - off < piece ? len - off : piece);
			ts_sha256_final(&ctx, d[path]);
			if (path == 0) {
				uint8_t whole[TS_SHA256_DIGEST_LEN];

				ts_sha256(buf, len, whole);
				assert_memory_equal(whole, d[0], sizeof(whole));
			}
		}
		assert_memory_equal(d[0], d[1], sizeof(d[0]));
	}
	(void)ts_sha256_accel(1);
	{
		static const char v[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
		uint8_t d[TS_SHA256_DIGEST_LEN];
		char hex[65];

		for (int path = 0; path < 2; path++) {
			(void)ts_sha256_accel(path);
			ts_sha256(v, strlen(v), d);
			ts_sha256_hex(d, hex);
			assert_string_equal(
				hex,
				"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
		}
	}
	(void)ts_sha256_accel(1);
}

static void test_secret_random(void **state)
{
	struct ts_secret *a = NULL, *b = NULL;
	int counts[128] = { 0 };

	assert_int_equal(ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &a), 0);
	assert_int_equal(ts_secret_random_alnum(TS_PSK_GENERATED_LEN, &b), 0);
	assert_int_equal(ts_secret_len(a), 32);
	assert_int_equal(strlen(ts_secret_str(a)), 32);
	for (const char *p = ts_secret_str(a); *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9'));
	assert_false(ts_secret_equal(a, b));
	ts_secret_free(a);
	ts_secret_free(b);

	/* Every character of the alphabet shows up over many draws. */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(ts_secret_random_alnum(64, &a), 0);
		for (const char *p = ts_secret_str(a); *p; p++)
			counts[(int)*p]++;
		ts_secret_free(a);
	}
	for (int c = '0'; c <= 'z'; c++)
		if ((c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a'))
			assert_true(counts[c] > 0);
}

static void test_secret_append_equal_fingerprint(void **state)
{
	_cleanup_secret_ struct ts_secret *s = NULL;
	_cleanup_secret_ struct ts_secret *t = NULL;
	_cleanup_secret_ struct ts_secret *u = NULL;
	char fp[TS_FINGERPRINT_LEN], fp2[TS_FINGERPRINT_LEN];
	char big[5000];

	assert_int_equal(ts_secret_new(4, &s), 0);
	/* Growing past the first page moves the bytes and keeps them. */
	memset(big, 'k', 4000);
	assert_int_equal(ts_secret_append(s, "abc", 3), 0);
	assert_int_equal(ts_secret_append(s, big, 4000), 0);
	assert_int_equal(ts_secret_len(s), 4003);
	assert_memory_equal(ts_secret_str(s), "abckkk", 6);
	assert_int_equal(ts_secret_append(s, big, 200), -EMSGSIZE);

	assert_int_equal(ts_secret_from_bytes("samekey123", 10, &t), 0);
	assert_int_equal(ts_secret_from_bytes("samekey123", 10, &u), 0);
	assert_true(ts_secret_equal(t, u));
	ts_secret_fingerprint(t, fp);
	ts_secret_fingerprint(u, fp2);
	assert_string_equal(fp, fp2);
	assert_int_equal(strlen(fp), TS_FINGERPRINT_LEN - 1);
	assert_memory_equal(fp, "sha256:", 7);
	ts_secret_clear(u);
	assert_int_equal(ts_secret_len(u), 0);
	assert_false(ts_secret_equal(t, u));
}

struct captured {
	char lines[8][4096];
	int n;
};

static void capture_sink(enum ts_log_level level, const char *line, void *userdata)
{
	struct captured *c = userdata;

	if (c->n < 8)
		snprintf(c->lines[c->n++], sizeof(c->lines[0]), "%s", line);
}

static void test_log_redacts_live_secrets(void **state)
{
	struct captured cap = { 0 };
	struct ts_secret *s = NULL;

	ts_log_set_sink(capture_sink, &cap);
	assert_int_equal(ts_secret_from_bytes("Sup3rS3cretPSK", 14, &s), 0);
	log_error("key is %s and again %s!", ts_secret_str(s), "Sup3rS3cretPSK");
	assert_int_equal(cap.n, 1);
	assert_null(strstr(cap.lines[0], "Sup3rS3cretPSK"));
	assert_non_null(strstr(cap.lines[0], "key is [redacted] and again [redacted]!"));

	/* Also in the structured fields and in JSON. */
	ts_log_set_format(TS_LOG_JSON);
	ts_logf(TS_LOG_WARN, "cloudflare", "Sup3rS3cretPSK", "x");
	assert_null(strstr(cap.lines[1], "Sup3rS3cretPSK"));
	assert_non_null(strstr(cap.lines[1], "\"plane\":\"cloudflare\""));
	assert_non_null(strstr(cap.lines[1], "\"level\":\"warn\""));
	ts_log_set_format(TS_LOG_TEXT);

	/* Below the level: nothing. */
	log_debug("debug %s", "hidden");
	assert_int_equal(cap.n, 2);

	/* Once freed, the text is no longer a secret (and nothing crashes). */
	ts_secret_free(s);
	log_info("public Sup3rS3cretPSK");
	assert_non_null(strstr(cap.lines[2], "public Sup3rS3cretPSK"));
	ts_log_set_sink(NULL, NULL);
}

static void test_redact_edges(void **state)
{
	_cleanup_secret_ struct ts_secret *s = NULL;
	_cleanup_secret_ struct ts_secret *t = NULL;
	char buf[16];

	assert_int_equal(ts_secret_from_bytes("9abcde", 6, &s), 0);
	/* A secret near the end of a full buffer: the mark is longer than it. */
	assert_int_equal(ts_secret_from_bytes("bcdef", 5, &t), 0); /* too short to redact */
	memcpy(buf, "0123456789abcde", 16);
	assert_true(ts_secret_redact(buf, sizeof(buf)) >= 1);
	assert_null(strstr(buf, "9abcde"));
	assert_true(strlen(buf) < sizeof(buf));
	assert_int_equal(ts_secret_redact(buf, sizeof(buf)), 0);

	memcpy(buf, "9abcde9abcde", 13);
	assert_int_equal(ts_secret_redact(buf, sizeof(buf)), 1);
	assert_string_equal(buf, "[redacted]");
	{
		char big[64] = "x 9abcde y 9abcde z";

		assert_int_equal(ts_secret_redact(big, sizeof(big)), 2);
		assert_string_equal(big, "x [redacted] y [redacted] z");
	}
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ts-core-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The variable is gone from the environment and its bytes are wiped where
 * they were (what /proc/PID/environ would show). */
static void test_secret_take_env(void **state)
{
	struct ts_secret *s = NULL;
	char *entry;

	(void)state;
	assert_int_equal(setenv("TS_TEST_TOKEN", "tok-0123456789abcdef", 1), 0);
	entry = getenv("TS_TEST_TOKEN") - strlen("TS_TEST_TOKEN=");
	assert_int_equal(ts_secret_take_env("TS_TEST_TOKEN", &s), 0);
	assert_non_null(s);
	assert_string_equal(ts_secret_str(s), "tok-0123456789abcdef");
	assert_null(getenv("TS_TEST_TOKEN"));
	for (size_t i = 0; i < strlen("TS_TEST_TOKEN=tok-0123456789abcdef"); i++)
		assert_int_equal(entry[i], 0);
	ts_secret_free(s);
	assert_int_equal(ts_secret_take_env("TS_TEST_TOKEN", &s), 0);
	assert_null(s);
}

/* The wiping allocator keeps contents across realloc, zeroes calloc, and
 * refuses overflowing sizes. (That freed blocks are wiped is what the
 * gcore-secrets test checks on a real daemon.) */
static void test_wipe_alloc(void **state)
{
	char *p, *q;

	(void)state;
	p = ts_wipe_strdup("secret-bytes");
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 16, 0);
	q = ts_wipe_realloc(p, 4096);
	assert_non_null(q);
	assert_string_equal(q, "secret-bytes");
	q = ts_wipe_realloc(q, 4);
	assert_memory_equal(q, "secr", 4);
	ts_wipe_free(q);
	p = ts_wipe_calloc(8, 8);
	for (int i = 0; i < 64; i++)
		assert_int_equal(p[i], 0);
	ts_wipe_free(p);
	assert_null(ts_wipe_calloc(SIZE_MAX / 2, 4));
	assert_null(ts_wipe_malloc(SIZE_MAX - 8));
	ts_wipe_free(NULL);
}

static void test_secret_from_file(void **state)
{
	char path[128];
	struct ts_secret *s = NULL;
	bool loose = true;

	snprintf(path, sizeof(path), "%s/key", tmpdir);
	assert_int_equal(ts_file_write_atomic(path, "filekey-1234\n", 13, 0600), 0);
	assert_int_equal(ts_secret_from_file(path, &s, &loose), 0);
	assert_string_equal(ts_secret_str(s), "filekey-1234");
	assert_false(loose);
	ts_secret_free(s);

	chmod(path, 0644);
	assert_int_equal(ts_secret_from_file(path, &s, &loose), 0);
	assert_true(loose);
	ts_secret_free(s);

	assert_int_equal(ts_file_write_atomic(path, "\n", 1, 0600), 0);
	assert_int_equal(ts_secret_from_file(path, &s, NULL), -ENODATA);
	assert_int_equal(ts_file_write_atomic(path, "two\nlines", 9, 0600), 0);
	assert_int_equal(ts_secret_from_file(path, &s, NULL), -EBADMSG);
	assert_int_equal(ts_secret_from_file("/nonexistent/key", &s, NULL), -ENOENT);
	assert_int_equal(ts_secret_from_file(tmpdir, &s, NULL), -EISDIR);
}

/* A FIFO (no writer) where a file is read: refused at once with
 * TS_ENOTREG, never a blocked open(). alarm() turns a hang into a failure. */
static void test_fifo_never_blocks(void **state)
{
	char path[128], *data = NULL;
	struct ts_secret *s = NULL;

	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(5);
	assert_int_equal(ts_file_read_all(path, 100, &data, NULL), -TS_ENOTREG);
	assert_int_equal(ts_secret_from_file(path, &s, NULL), -TS_ENOTREG);
	assert_int_equal(ts_file_open_regular(path, true, NULL), -TS_ENOTREG);
	alarm(0);
	assert_null(data);
	assert_null(s);
	assert_non_null(strstr(ts_file_strerror(-TS_ENOTREG), "not a regular file"));
	assert_string_equal(ts_file_strerror(-ENOENT), strerror(ENOENT));
	unlink(path);
	/* nofollow refuses a link; without it the target is read */
	snprintf(path, sizeof(path), "%s/link", tmpdir);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_int_equal(ts_file_open_regular(path, true, NULL), -ELOOP);
	unlink(path);
}

static void test_atomic_write(void **state)
{
	char path[128], *data = NULL;
	struct stat st;
	size_t len;
	mode_t old = umask(0);

	snprintf(path, sizeof(path), "%s/record", tmpdir);
	assert_int_equal(ts_file_write_atomic(path, "one", 3, 0600), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ts_file_write_atomic(path, "two!", 4, 0600), 0);
	assert_int_equal(ts_file_read_all(path, 100, &data, &len), 0);
	assert_int_equal(len, 4);
	assert_string_equal(data, "two!");
	free(data);
	assert_int_equal(ts_file_read_all(path, 3, &data, &len), -EFBIG);
	assert_int_equal(ts_file_read_all(tmpdir, 3, &data, &len), -EISDIR);
	umask(old);

	/* No temporary file is left behind. */
	{
		char tmp[160];

		snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
		assert_int_equal(access(tmp, F_OK), -1);
	}
	snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
	assert_int_equal(ts_mkdir_p(path, 0700), 0);
	assert_int_equal(ts_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void test_rfc3339(void **state)
{
	ts_usec_t t;
	char buf[40];

	assert_int_equal(ts_time_parse_rfc3339("2017-06-14T00:00:00Z", &t), 0);
	assert_int_equal(t, (ts_usec_t)1497398400 * TS_USEC_PER_SEC);
	assert_int_equal(ts_time_parse_rfc3339("2014-01-01T05:20:00.12345Z", &t), 0);
	assert_int_equal(t, (ts_usec_t)1388553600 * TS_USEC_PER_SEC + 123450);
	assert_int_equal(ts_time_parse_rfc3339("2014-01-01T07:20:00+02:00", &t), 0);
	assert_int_equal(t, (ts_usec_t)1388553600 * TS_USEC_PER_SEC);
	assert_int_equal(ts_time_format_rfc3339(t, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2014-01-01T05:20:00.000000Z");
	assert_int_equal(ts_time_parse_rfc3339("2014-13-01T05:20:00Z", &t), -EINVAL);
	assert_int_equal(ts_time_parse_rfc3339("2014-01-01 05:20:00", &t), -EINVAL);
	assert_int_equal(ts_time_parse_rfc3339("2014-01-01T05:20:00Zjunk", &t), -EINVAL);
	assert_int_equal(ts_time_parse_rfc3339("", &t), -EINVAL);
	assert_int_equal(ts_time_parse_rfc3339(NULL, &t), -EINVAL);
	assert_int_equal(ts_time_format_rfc3339(t, buf, 8), -ENOBUFS);
	assert_int_equal(ts_time_format_rfc3339(t, buf, 27), -ENOBUFS);
	assert_int_equal(ts_time_format_rfc3339(t, buf, 28), 0);

	/* The digits written by hand are snprintf's, from year 0 to 9999
	 * (and past it, where snprintf itself writes them), before 1970 too. */
	{
		static const ts_usec_t edges[] = {
			0,
			1,
			-1,
			999999,
			1000000,
			-62167219200000000, /* 0000-01-01 */
			253402300799999999, /* 9999-12-31T23:59:59.999999 */
			253402300800000000, /* 10000-01-01 */
		};
		uint64_t x = 88172645463325252ull;

		for (size_t i = 0; i < TS_ARRAY_SIZE(edges) + 2000; i++) {
			ts_usec_t v;
			time_t sec;
			long usec;
			struct tm tm;
			char want[64];

			if (i < TS_ARRAY_SIZE(edges)) {
				v = edges[i];
			} else {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				v = (ts_usec_t)(x % 300000000000000000ull) - 62167219200000000;
			}
			sec = (time_t)(v / TS_USEC_PER_SEC);
			usec = (long)(v % TS_USEC_PER_SEC);
			if (usec < 0)
				usec += TS_USEC_PER_SEC, sec--;
			assert_non_null(gmtime_r(&sec, &tm));
			snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				 tm.tm_min, tm.tm_sec, usec);
			assert_int_equal(ts_time_format_rfc3339(v, buf, sizeof(buf)), 0);
			assert_string_equal(buf, want);
		}
	}
}

/* Issue 12: the unit of a time's text, and "later" across two texts of
 * other precisions (a write answer and a list). */
static void test_rfc3339_unit(void **state)
{
	static const struct {
		const char *s;
		ts_usec_t unit;
	} units[] = {
		{ "2026-12-03T07:00:00Z", TS_USEC_PER_SEC },
		{ "2026-12-03T07:00:00.5Z", 100000 },
		{ "2026-12-03T07:00:00.120Z", 1000 },
		{ "2026-12-03T07:00:00.123456Z", 1 },
		{ "2026-12-03T07:00:00.123456789Z", 1 },
		{ "2026-12-03T08:00:00.12+01:00", 10000 },
	};
	const ts_usec_t S = TS_USEC_PER_SEC, base = (ts_usec_t)1800000000 * TS_USEC_PER_SEC;
	ts_usec_t t, u, t2;

	(void)state;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		assert_int_equal(ts_time_parse_rfc3339_unit(units[i].s, &t, &u), 0);
		assert_int_equal(u, units[i].unit);
		assert_int_equal(ts_time_parse_rfc3339(units[i].s, &t2), 0);
		assert_int_equal(t, t2);
	}
	assert_int_equal(ts_time_parse_rfc3339_unit("2026-12-03T07:00:00.Z", &t, &u), -EINVAL);
	/* One instant in two texts: never later, whichever truncates or rounds. */
	assert_false(ts_time_later_beyond_precision(base + 999999, 1, base, S));
	assert_false(
		ts_time_later_beyond_precision(base + S, S, base + 999999, 1)); /* rounded up */
	assert_false(ts_time_later_beyond_precision(base + 124000, 1000, base + 123456, 0));
	assert_false(ts_time_later_beyond_precision(base, 0, base, 0));
	/* Later instants: two units of the coarser text, or more. */
	assert_true(ts_time_later_beyond_precision(base + 2, 0, base, 0));
	assert_false(ts_time_later_beyond_precision(base + 1, 0, base, 0));
	assert_true(ts_time_later_beyond_precision(base + 2 * S, S, base + 999999, 1));
	assert_false(ts_time_later_beyond_precision(base + S + 999999, 1, base, S));
	assert_true(ts_time_later_beyond_precision(base + 2 * S, 1, base, S));
	assert_true(ts_time_later_beyond_precision(base + 3000, 1000, base + 999, 1));
	/* Never earlier ones, nor before 1970 out of order. */
	assert_false(ts_time_later_beyond_precision(base, 0, base + 5 * S, S));
	assert_true(ts_time_later_beyond_precision(-S, S, -4 * S, S));
	assert_false(ts_time_later_beyond_precision(-4 * S, S, -S, S));
}

/* journald: "<N>" priority prefix when stderr is JOURNAL_STREAM's; JSON
 * fields; control characters escaped in text and JSON. */
static void test_log_journal_fields_escapes(void **state)
{
	char path[128], buf[4096], env[64];
	struct stat st;
	int fd, saved = dup(STDERR_FILENO);
	ssize_t n;

	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	ts_log_set_format(TS_LOG_TEXT);
	ts_logf(TS_LOG_ERROR, "ike", "t\n1", "bad\nline\x1b[31m");
	ts_logf(TS_LOG_INFO, NULL, NULL, "plain");
	ts_log_set_format(TS_LOG_JSON);
	ts_log_set_revision("sha256:abc");
	ts_log_fields(TS_LOG_WARN, "store", "t1",
		      &(struct ts_log_fields){ .fingerprint = "sha256:0011", .generation = 7 },
		      "q\"uote\x01");
	ts_log_set_revision(NULL);
	ts_log_set_format(TS_LOG_TEXT);
	unsetenv("JOURNAL_STREAM");
	ts_logf(TS_LOG_ERROR, NULL, NULL, "not the journal");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "<3>"));
	assert_non_null(strstr(buf, "error [ike] tunnel=t\\x0a1: bad\\x0aline\\x1b[31m\n"));
	assert_non_null(strstr(buf, "\n<6>"));
	assert_non_null(strstr(buf, "\n<4>{"));
	assert_non_null(strstr(buf,
			       "\"plane\":\"store\",\"tunnel\":\"t1\",\"fingerprint\":"
			       "\"sha256:0011\",\"generation\":\"7\",\"revision\":\"sha256:abc\""));
	assert_non_null(strstr(buf, "\"msg\":\"q\\\"uote\\u0001\"}"));
	/* not the journal: the last line has no prefix */
	{
		char *last = strstr(buf, "not the journal");

		assert_non_null(last);
		while (last > buf && last[-1] != '\n')
			last--;
		assert_true(last[0] == '2'); /* the timestamp, not "<3>" */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha256_paths_agree),
		cmocka_unit_test(test_secret_random),
		cmocka_unit_test(test_secret_append_equal_fingerprint),
		cmocka_unit_test(test_log_redacts_live_secrets),
		cmocka_unit_test(test_redact_edges),
		cmocka_unit_test(test_secret_from_file),
		cmocka_unit_test(test_secret_take_env),
		cmocka_unit_test(test_wipe_alloc),
		cmocka_unit_test(test_fifo_never_blocks),
		cmocka_unit_test(test_log_journal_fields_escapes),
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_rfc3339_unit),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
