/* strongswan.conf reading (agent/ike/swconf.c) over files in a temporary
 * folder, laid out as Debian ships them, and the make-before-break
 * decision from what was read, the version and charon's start time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ike/swconf.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *at(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test-swconf.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void get(const char *file, const char *key, struct ts_swconf_value *v)
{
	char err[256];
	int r = ts_swconf_get(at(file), key, v, err, sizeof(err));

	if (r != 0)
		fail_msg("%s: %s", file, err);
}

/* Debian's layout: the top file includes every strongswan.d file, where
 * charon.conf has the setting commented out; our snippet turns it on. */
static void test_debian_layout(void **state)
{
	struct ts_swconf_value v;

	(void)state;
	assert_int_equal(mkdir(at("strongswan.d"), 0755), 0);
	assert_int_equal(mkdir(at("strongswan.d/charon"), 0755), 0);
	put("strongswan.conf", "# strongswan.conf\n"
			       "charon {\n\tload_modular = yes\n\tplugins {\n"
			       "\t\tinclude strongswan.d/charon/*.conf\n\t}\n}\n\n"
			       "include strongswan.d/*.conf\n");
	put("strongswan.d/charon.conf", "charon {\n    # make_before_break = no\n"
					"    retransmit_timeout = 4.0\n}\n");
	put("strongswan.d/charon/vici.conf", "vici {\n  load = yes\n}\n");
	get("strongswan.conf", "charon.make_before_break", &v);
	assert_false(v.found);
	assert_int_equal(v.n_files, 3);
	/* Keys inside sections opened in an included file, under a section. */
	get("strongswan.conf", "charon.plugins.vici.load", &v);
	assert_true(v.found);
	assert_string_equal(v.value, "yes");
	get("strongswan.conf", "charon.retransmit_timeout", &v);
	assert_string_equal(v.value, "4.0");

	put("strongswan.d/tunnelsync.conf",
	    "charon {\n\t# comment\n\tmake_before_break = yes\n}\n");
	get("strongswan.conf", "charon.make_before_break", &v);
	assert_true(v.found);
	assert_string_equal(v.value, "yes");
	assert_string_equal(v.file, at("strongswan.d/tunnelsync.conf"));
	assert_int_equal(v.line, 3);
	assert_int_equal(v.n_files, 4);
	assert_true(v.newest_mtime > 0);
}

/* The last definition wins; values end at '#', '}' or the line's end;
 * quoted values; one-line sections; "include" as a plain key. */
static void test_syntax(void **state)
{
	struct ts_swconf_value v;
	char err[256];

	(void)state;
	put("a.conf", "charon { make_before_break = no }\n"
		      "charon {\n make_before_break = yes   # later wins\n}\n"
		      "x { y = \"a # b\" }\n"
		      "z { include = 3\n q : other { k = v } }\n");
	get("a.conf", "charon.make_before_break", &v);
	assert_string_equal(v.value, "yes");
	assert_int_equal(v.line, 3);
	get("a.conf", "x.y", &v);
	assert_string_equal(v.value, "a # b");
	get("a.conf", "z.include", &v);
	assert_string_equal(v.value, "3");
	get("a.conf", "z.q.k", &v);
	assert_string_equal(v.value, "v");
	/* Another section's key of the same name is not it. */
	get("a.conf", "make_before_break", &v);
	assert_false(v.found);

	/* Relative includes are relative to the including file. */
	assert_int_equal(mkdir(at("sub"), 0755), 0);
	put("sub/inner.conf", "include ../leaf.conf\n");
	put("leaf.conf", "charon-systemd { make_before_break = 1 }\n");
	put("top.conf", "include sub/inner.conf\ninclude nothing-matches-*.conf\n");
	get("top.conf", "charon-systemd.make_before_break", &v);
	assert_true(v.found);
	assert_string_equal(v.value, "1");

	/* Bad input: file and line. */
	put("bad.conf", "charon {\n make_before_break yes\n}\n");
	assert_int_equal(ts_swconf_get(at("bad.conf"), "charon.x", &v, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "bad.conf:2:"));
	put("open.conf", "charon {\n");
	assert_int_equal(ts_swconf_get(at("open.conf"), "charon.x", &v, err, sizeof(err)),
			 -EBADMSG);
	put("close.conf", "}\n");
	assert_int_equal(ts_swconf_get(at("close.conf"), "charon.x", &v, err, sizeof(err)),
			 -EBADMSG);
	put("loop.conf", "include loop.conf\n");
	assert_int_equal(ts_swconf_get(at("loop.conf"), "charon.x", &v, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "too deep"));
	/* No loop, but every file included 40 times by the one before: 2.5
	 * million reads, minutes, before the bound (fuzz_swconf's fixture
	 * crash-swconf-fanout). Refused with the place, at once. */
	{
		char name[16], text[40 * 16 + 1] = "";

		for (int i = 0; i < 4; i++) {
			text[0] = 0;
			for (int k = 0; k < 40; k++)
				snprintf(text + strlen(text), sizeof(text) - strlen(text),
					 "include f%d.conf\n", i + 1);
			snprintf(name, sizeof(name), "f%d.conf", i);
			put(name, text);
		}
		put("f4.conf", "charon { x = 1 }\n");
		assert_int_equal(ts_swconf_get(at("f0.conf"), "charon.x", &v, err, sizeof(err)),
				 -EBADMSG);
		/* The limit is met deep in the include chain, at some line of f1..f3. */
		assert_non_null(strstr(err, ".conf:"));
		assert_non_null(strstr(err, ": include: over 1000 files read"));
	}
	assert_int_equal(ts_swconf_get(at("missing.conf"), "charon.x", &v, err, sizeof(err)),
			 -ENOENT);
	/* A FIFO never blocks the agent: refused on top, skipped as include. */
	assert_int_equal(mkfifo(at("fifo.conf"), 0600), 0);
	assert_true(ts_swconf_get(at("fifo.conf"), "charon.x", &v, err, sizeof(err)) < 0);
	put("with-fifo.conf", "include fifo.conf\ncharon { x = 1 }\n");
	get("with-fifo.conf", "charon.x", &v);
	assert_string_equal(v.value, "1");
}

static void test_bool(void **state)
{
	(void)state;
	assert_int_equal(ts_swconf_bool("yes"), 1);
	assert_int_equal(ts_swconf_bool("Enabled"), 1);
	assert_int_equal(ts_swconf_bool("1"), 1);
	assert_int_equal(ts_swconf_bool("TRUE"), 1);
	assert_int_equal(ts_swconf_bool("no"), 0);
	assert_int_equal(ts_swconf_bool("disabled"), 0);
	assert_int_equal(ts_swconf_bool("0"), 0);
	assert_int_equal(ts_swconf_bool("maybe"), -EINVAL);
	assert_int_equal(ts_swconf_bool(""), -EINVAL);
}

static struct ts_swconf_value val(const char *value, ts_usec_t newest)
{
	struct ts_swconf_value v = { .found = value != NULL, .line = 3, .newest_mtime = newest };

	if (value)
		snprintf(v.value, sizeof(v.value), "%s", value);
	snprintf(v.file, sizeof(v.file), "/etc/strongswan.d/tunnelsync.conf");
	snprintf(v.newest_file, sizeof(v.newest_file), "/etc/strongswan.d/tunnelsync.conf");
	return v;
}

static void test_decide(void **state)
{
	const ts_usec_t start = 1700000000 * TS_USEC_PER_SEC;
	struct ts_swconf_value none = val(NULL, start - 10), yes = val("yes", start - 10),
			       no = val("no", start - 10),
			       later = val("yes", start + 10 * TS_USEC_PER_SEC),
			       junk = val("perhaps", start - 10);
	struct ts_mbb_check c;

	(void)state;
	/* Not set: 5.9 defaults to no, 6.0 to yes. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &none, "charon", "5.9.8", start, &c);
	assert_int_equal(c.state, TS_MBB_OFF);
	assert_non_null(strstr(c.reason, "defaults to no"));
	assert_non_null(strstr(c.reason, "contrib/strongswan/tunnelsync.conf"));
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &none, "charon", "6.0.1", start, &c);
	assert_int_equal(c.state, TS_MBB_ON);
	/* Set, files older than charon: on, naming where. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &yes, "charon", "5.9.8", start, &c);
	assert_int_equal(c.state, TS_MBB_ON);
	assert_non_null(strstr(c.reason, "tunnelsync.conf:3"));
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &no, "charon", "6.0.0", start, &c);
	assert_int_equal(c.state, TS_MBB_OFF);
	/* Set after charon started: charon may not have it. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &later, "charon", "5.9.8", start, &c);
	assert_int_equal(c.state, TS_MBB_UNVERIFIED);
	assert_non_null(strstr(c.reason, "restart charon"));
	/* Written within 2 s of charon's start (whole seconds, derived from
	 * its monotonic clock): read by it. */
	later.newest_mtime = start + 3 * TS_USEC_PER_SEC / 2;
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &later, "charon", "5.9.8", start, &c);
	assert_int_equal(c.state, TS_MBB_ON);
	later.newest_mtime = start + 10 * TS_USEC_PER_SEC;
	/* Start time unknown: trust the file. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &later, "charon", "5.9.8", 0, &c);
	assert_int_equal(c.state, TS_MBB_ON);
	/* charon-systemd's own section overrides charon's. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", &no, &yes, "charon-systemd", "5.9.8", start,
		      &c);
	assert_int_equal(c.state, TS_MBB_OFF);
	assert_non_null(strstr(c.reason, "tunnelsync.conf:3"));
	ts_mbb_decide(0, "", "/etc/strongswan.conf", &none, &yes, "charon-systemd", "5.9.8", start,
		      &c);
	assert_int_equal(c.state, TS_MBB_ON);
	/* Not a boolean; unreadable tree. */
	ts_mbb_decide(0, "", "/etc/strongswan.conf", NULL, &junk, "charon", "5.9.8", start, &c);
	assert_int_equal(c.state, TS_MBB_UNKNOWN);
	assert_non_null(strstr(c.reason, "not a boolean"));
	ts_mbb_decide(-ENOENT, "", "/etc/strongswan.conf", NULL, NULL, "charon", "5.9.8", start,
		      &c);
	assert_int_equal(c.state, TS_MBB_UNKNOWN);
	assert_non_null(strstr(c.reason, "/etc/strongswan.conf"));
	assert_string_equal(ts_mbb_state_to_string(TS_MBB_UNVERIFIED), "unverified");
	assert_string_equal(ts_mbb_state_to_string(_TS_MBB_MAX), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_debian_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_decide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
