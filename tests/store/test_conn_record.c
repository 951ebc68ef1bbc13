/* Unit tests of the connection record (store/conn_record.h): round trip,
 * absence, corruption, a record of another tunnel, permissions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/util.h"
#include "store/conn_record.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/ts-conn-record.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void fill(struct ts_ike_leaves *l)
{
	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		l->values[i] = strdup(i % 3 ? "" : ts_ike_leaf_names[i]);
	free(l->values[TS_LEAF_CHILD_ESP_PROPOSALS]);
	l->values[TS_LEAF_CHILD_ESP_PROPOSALS] = strdup("aes256gcm16-ecp384-noesn,aes256-sha256");
}

static void test_round_trip(void **state)
{
	struct ts_ike_leaves a, b;
	char fp[TS_FINGERPRINT_LEN], want[TS_FINGERPRINT_LEN], path[PATH_MAX];
	struct stat st;

	fill(&a);
	assert_int_equal(ts_conn_record_read(dir, "fra1", &b, fp), -ENOENT);
	assert_int_equal(ts_conn_record_write(dir, "fra1", &a), 0);
	assert_int_equal(ts_conn_record_read(dir, "fra1", &b, fp), 0);
	for (unsigned i = 0; i < _TS_LEAF_MAX; i++)
		assert_string_equal(a.values[i], b.values[i]);
	ts_ike_leaves_fingerprint(&a, want);
	assert_string_equal(fp, want);
	snprintf(path, sizeof(path), "%s/conns/fra1.conn", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/conns", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	ts_ike_leaves_done(&b);
	assert_int_equal(ts_conn_record_remove(dir, "fra1"), 0);
	assert_int_equal(ts_conn_record_remove(dir, "fra1"), 0);
	assert_int_equal(ts_conn_record_read(dir, "fra1", &b, NULL), -ENOENT);
	ts_ike_leaves_done(&a);
}

static void test_unknown_leaves(void **state)
{
	struct ts_ike_leaves a = { 0 }, b;

	/* Only some leaves recorded (an older agent): the rest stay unknown. */
	a.values[TS_LEAF_DPD_DELAY] = strdup("10");
	assert_int_equal(ts_conn_record_write(dir, "t2", &a), 0);
	assert_int_equal(ts_conn_record_read(dir, "t2", &b, NULL), 0);
	assert_string_equal(b.values[TS_LEAF_DPD_DELAY], "10");
	assert_null(b.values[TS_LEAF_CHILD_ESP_PROPOSALS]);
	ts_ike_leaves_done(&a);
	ts_ike_leaves_done(&b);
}

static void test_corrupt(void **state)
{
	struct ts_ike_leaves a, b;
	char path[PATH_MAX], *data;
	size_t len;

	fill(&a);
	assert_int_equal(ts_conn_record_write(dir, "t3", &a), 0);
	snprintf(path, sizeof(path), "%s/conns/t3.conn", dir);
	assert_int_equal(ts_file_read_all(path, 1 << 16, &data, &len), 0);
	/* A flipped byte, a truncation, another tunnel's content. */
	data[30] ^= 1;
	assert_int_equal(ts_file_write_atomic(path, data, len, 0600), 0);
	assert_int_equal(ts_conn_record_read(dir, "t3", &b, NULL), -EBADMSG);
	data[30] ^= 1;
	assert_int_equal(ts_file_write_atomic(path, data, len / 2, 0600), 0);
	assert_int_equal(ts_conn_record_read(dir, "t3", &b, NULL), -EBADMSG);
	assert_int_equal(ts_file_write_atomic(path, data, len, 0600), 0);
	assert_int_equal(ts_conn_record_read(dir, "t3", &b, NULL), 0);
	ts_ike_leaves_done(&b);
	snprintf(path, sizeof(path), "%s/conns/t4.conn", dir);
	assert_int_equal(ts_file_write_atomic(path, data, len, 0600), 0);
	assert_int_equal(ts_conn_record_read(dir, "t4", &b, NULL), -EBADMSG);
	free(data);
	/* Bad input is refused, never written half. */
	free(a.values[0]);
	a.values[0] = strdup("two\nlines");
	assert_int_equal(ts_conn_record_write(dir, "t5", &a), -EINVAL);
	assert_int_equal(ts_conn_record_write(dir, "../x", &a), -EINVAL);
	assert_int_equal(ts_conn_record_read(dir, "t5", &b, NULL), -ENOENT);
	ts_ike_leaves_done(&a);
}

static void test_failing_mark(void **state)
{
	ts_usec_t since = 0;
	char path[128];

	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
	assert_int_equal(ts_conn_record_failing_write(dir, "t6", 1234567), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), 0);
	assert_int_equal(since, 1234567);
	assert_int_equal(ts_conn_record_failing_write(dir, "t6", 0), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
	/* Garbage is no mark. */
	snprintf(path, sizeof(path), "%s/conns/t6.failing", dir);
	assert_int_equal(ts_file_write_atomic(path, "since=x\n", 8, 0600), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
	/* Nor a sign (strtoull made "-5" a time before 1970), nor a time
	 * past what ts_usec_t holds. */
	assert_int_equal(ts_file_write_atomic(path, "since=-5\n", 9, 0600), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
	assert_int_equal(ts_file_write_atomic(path, "since=9223372036854775808\n", 26, 0600), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
	/* Removing the record removes the mark. */
	assert_int_equal(ts_conn_record_failing_write(dir, "t6", 99), 0);
	assert_int_equal(ts_conn_record_remove(dir, "t6"), 0);
	assert_int_equal(ts_conn_record_failing_read(dir, "t6", &since), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown_leaves),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_failing_mark),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
