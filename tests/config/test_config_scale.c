/* Unit tests of config/ at scale: a thousand tunnels in one file (JSON
 * and XML) or one file per tunnel still get every tunnel's source line
 * right, and errors found across tunnels or files still name the same
 * tunnel, file, line and peer that a comparison of every pair would (the
 * loader finds them through an index and sorted keys, not by scanning).
 * Each test works in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>

#include "config/config.h"
#include "core/util.h"

#define MODELS "" TS_SOURCE_MODELS_DIR
#define N_JSON 1000
#define N_XML  300

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/ts-config-scale-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	*state = dir;
	return 0;
}

static int teardown_dir(void **state)
{
	char *dir = *state;

	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
	return 0;
}

/* A text being written, with the number of its current line. */
struct out {
	char *text;
	size_t len;
	FILE *f;
	unsigned line;
};

static void out_open(struct out *o)
{
	memset(o, 0, sizeof(*o));
	o->f = open_memstream(&o->text, &o->len);
	assert_non_null(o->f);
	o->line = 1;
}

static TS_PRINTF(2, 3) void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	for (const char *p = s; *p; p++)
		o->line += *p == '\n';
	fputs(s, o->f);
	free(s);
}

static char *out_close(struct out *o)
{
	assert_int_equal(fclose(o->f), 0);
	return o->text;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = NULL;
	FILE *f;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void json_head(struct out *o)
{
	put(o, "{\n  \"tunnelsync:tunnelsync\": {\n"
	       "    \"cloudflare\": { \"account-id\": \"023e105f4ecef8ad9ca31a8372d0c353\" },\n"
	       "    \"tunnels\": {\n      \"tunnel\": [\n");
}

/* What a generated tunnel may differ in. */
struct tun_opts {
	const char *iface;    /* interface-address, default from i */
	const char *identity; /* ike/local-identity, default fqdn */
	const char *edge;     /* cloudflare-endpoint, default from i */
	unsigned mark, mask;  /* a mark-only tunnel when mark != 0 */
};

/* Tunnel i as JSON; the line of its "name" member goes to *ret_line.
 * Members in varying order, so that the key is not always first, and
 * names that are prefixes of each other (t1, t10, t100). */
static void json_tunnel(struct out *o, unsigned i, bool comma, const struct tun_opts *x,
			unsigned *ret_line)
{
	char iface[32];

	snprintf(iface, sizeof(iface), "10.%u.%u.%u/31", (2 * i) >> 16, ((2 * i) >> 8) & 255,
		 (2 * i) & 255);
	put(o, "        %s{\n", comma ? "," : "");
	if (i % 3 == 1)
		put(o, "          \"id\": \"%032x\",\n", i);
	*ret_line = o->line;
	put(o, "          \"name\": \"t%u\",\n", i);
	if (i % 3 != 1)
		put(o, "          \"id\": \"%032x\",\n", i);
	if (i % 5 == 0)
		put(o, "\n");
	put(o, "          \"cloudflare-endpoint\": \"%s\",\n",
	    x && x->edge ? x->edge : "198.51.100.1");
	put(o, "          \"customer-endpoint\": \"203.0.113.10\",\n");
	put(o, "          \"interface-address\": \"%s\",\n", x && x->iface ? x->iface : iface);
	if (x && x->identity)
		put(o, "          \"ike\": { \"local-identity\": \"%s\" },\n", x->identity);
	if (x && x->mark)
		put(o, "          \"route-based\": { \"mark\": %u, \"mark-mask\": %u }\n", x->mark,
		    x->mask);
	else
		put(o, "          \"route-based\": { \"if-id\": %u }\n", 1000 + i);
	put(o, "        }\n");
}

static void json_tail(struct out *o)
{
	put(o, "      ]\n    }\n  }\n}\n");
}

/* Writes n tunnels with opts[i] (may be NULL) to dir/name; lines[i] gets
 * each tunnel's line. */
static char *write_json(const char *dir, const char *name, unsigned n,
			const struct tun_opts *const *opts, unsigned *lines)
{
	struct out o;
	char *text, *path = NULL;

	out_open(&o);
	json_head(&o);
	for (unsigned i = 0; i < n; i++)
		json_tunnel(&o, i, i > 0, opts ? opts[i] : NULL, &lines[i]);
	json_tail(&o);
	text = out_close(&o);
	write_file(dir, name, text);
	free(text);
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	return path;
}

static const struct ts_tunnel *find_tunnel(const struct ts_desired *d, const char *name)
{
	for (size_t i = 0; i < d->n_tunnels; i++)
		if (strcmp(d->tunnels[i].name, name) == 0)
			return &d->tunnels[i];
	fail_msg("tunnel %s not loaded", name);
	return NULL;
}

static void expect_lines(const struct ts_desired *d, unsigned n, const unsigned *lines,
			 const char *file)
{
	assert_int_equal(d->n_tunnels, n);
	for (unsigned i = 0; i < n; i++) {
		char name[16];
		const struct ts_tunnel *t;

		snprintf(name, sizeof(name), "t%u", i);
		t = find_tunnel(d, name);
		assert_string_equal(t->source_file, file);
		if (t->source_line != lines[i])
			fail_msg("%s: line %u, expected %u", name, t->source_line, lines[i]);
	}
}

static void test_lines_json(void **state)
{
	unsigned *lines = calloc(N_JSON, sizeof(*lines));
	_cleanup_free_ char *path = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;

	assert_non_null(lines);
	path = write_json(*state, "big.json", N_JSON, NULL, lines);
	if (ts_config_load_flags(path, MODELS, TS_CONFIG_LOAD_SOURCES, &d, &err) != 0)
		fail_msg("%s:%u: %s", err.file, err.line, err.message);
	expect_lines(d, N_JSON, lines, path);
	ts_desired_free(d);
	free(lines);
}

/* XML with comments and CDATA that look like tunnels: the index skips them. */
static void test_lines_xml(void **state)
{
	unsigned *lines = calloc(N_XML, sizeof(*lines));
	_cleanup_free_ char *path = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	struct out o;
	char *text;

	assert_non_null(lines);
	out_open(&o);
	put(&o, "<?xml version=\"1.0\"?>\n<tunnelsync xmlns=\"urn:tunnelsync:yang:tunnelsync\">\n"
		"  <cloudflare><account-id>023e105f4ecef8ad9ca31a8372d0c353</account-id>"
		"</cloudflare>\n  <tunnels>\n");
	for (unsigned i = 0; i < N_XML; i++) {
		put(&o, "    <!-- <tunnel><name>t%u</name></tunnel> -->\n", N_XML - 1 - i);
		put(&o, "    <tunnel>\n");
		if (i % 2)
			put(&o, "      <id>%032x</id>\n", i);
		lines[i] = o.line;
		put(&o, "      <name>t%u</name>\n", i);
		if (!(i % 2))
			put(&o, "      <id>%032x</id>\n", i);
		put(&o,
		    "      <cloudflare-endpoint>198.51.100.1</cloudflare-endpoint>\n"
		    "      <interface-address>10.0.%u.%u/31</interface-address>\n"
		    "      <route-based><if-id>%u</if-id></route-based>\n    </tunnel>\n",
		    (2 * i) >> 8, (2 * i) & 255, 1000 + i);
	}
	put(&o, "  </tunnels>\n</tunnelsync>\n");
	text = out_close(&o);
	write_file(*state, "big.xml", text);
	free(text);
	assert_true(asprintf(&path, "%s/big.xml", (char *)*state) > 0);
	if (ts_config_load_flags(path, MODELS, TS_CONFIG_LOAD_SOURCES, &d, &err) != 0)
		fail_msg("%s:%u: %s", err.file, err.line, err.message);
	expect_lines(d, N_XML, lines, path);
	ts_desired_free(d);
	free(lines);
}

/* Loads dir/big.json of N_JSON tunnels with opts and expects the error at
 * tunnel bad's line + offset with path leaf and message part msg. */
static void expect_cross_error(const char *dir, const struct tun_opts *const *opts, unsigned bad,
			       const char *leaf, const char *msg)
{
	unsigned *lines = calloc(N_JSON, sizeof(*lines));
	_cleanup_free_ char *path = NULL, *want_path = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;

	assert_non_null(lines);
	path = write_json(dir, "big.json", N_JSON, opts, lines);
	assert_int_equal(ts_config_load(path, MODELS, &d, &err), -EINVAL);
	assert_null(d);
	assert_string_equal(err.file, path);
	assert_true(asprintf(&want_path, "/tunnelsync:tunnelsync/tunnels/tunnel[name='t%u']/%s",
			     bad, leaf) > 0);
	assert_string_equal(err.path, want_path);
	/* The leaf's line: after the name line, within the tunnel. */
	if (err.line <= lines[bad] || err.line > lines[bad] + 9)
		fail_msg("line %u, tunnel t%u starts at %u: %s", err.line, bad, lines[bad],
			 err.message);
	if (!strstr(err.message, msg))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, msg);
	ts_config_error_done(&err);
	free(lines);
}

/* Tunnels are checked in name order (t0, t1, t10, t100, ...): of several
 * conflicts, the one of the first tunnel in that order is reported, and
 * against the first tunnel it conflicts with. */
static void test_cross_tunnel_errors(void **state)
{
	const struct tun_opts **opts = calloc(N_JSON, sizeof(*opts));
	struct tun_opts same_iface = { .iface = "10.0.0.11/31" };
	struct tun_opts other_iface = { .iface = "10.0.0.13/31" }; /* t6's /31 */
	struct tun_opts v4 = { .identity = "ipv4", .edge = "198.51.100.7" };
	struct tun_opts fq = { .identity = "fqdn", .edge = "198.51.100.7" };
	struct tun_opts m1 = { .mark = 0x10, .mask = 0xff };
	struct tun_opts m2 = { .mark = 0x1010, .mask = 0xffff };
	struct tun_opts m3 = { .mark = 0x20, .mask = 0xff };
	struct tun_opts m4 = { .mark = 0x120, .mask = 0xff };

	assert_non_null(opts);
	/* t5 is 10.0.0.10/31, t6 10.0.0.12/31; t150 falls into the first,
	 * t999 into the second. In name order t150 < t5 < t6 < t999: the
	 * error is t5's, against t150. */
	opts[999] = &other_iface;
	opts[150] = &same_iface;
	expect_cross_error(*state, opts, 5, "interface-address", "tunnel \"t150\"");

	/* Endpoint pairs: only IPv4 identities need them unique. t300 and
	 * t600 share one with fqdn (fine); t900 (ipv4) then conflicts with
	 * the first of them, and the error is on the ipv4 tunnel. */
	memset(opts, 0, N_JSON * sizeof(*opts));
	opts[300] = &fq;
	opts[600] = &fq;
	opts[900] = &v4;
	expect_cross_error(*state, opts, 900, "ike/local-identity",
			   "tunnels \"t300\" and \"t900\"");
	/* An fqdn tunnel after an ipv4 one: the error is still on the ipv4. */
	opts[900] = &fq;
	opts[600] = &v4;
	expect_cross_error(*state, opts, 600, "ike/local-identity",
			   "tunnels \"t300\" and \"t600\"");

	/* Marks without an if-id, under differing masks (compared pairwise):
	 * 0x1010/0xffff matches 0x10/0xff under the common 0xff. */
	memset(opts, 0, N_JSON * sizeof(*opts));
	opts[100] = &m1;
	opts[800] = &m2;
	expect_cross_error(*state, opts, 800, "route-based/mark", "tunnel \"t100\"");
	/* Under one mask (keyed); t170 < t400 in name order. */
	opts[800] = NULL;
	opts[400] = &m3;
	opts[170] = &m4;
	opts[100] = NULL;
	expect_cross_error(*state, opts, 400, "route-based/mark", "tunnel \"t170\"");

	/* And a clean config with the same shapes loads. */
	memset(opts, 0, N_JSON * sizeof(*opts));
	opts[300] = &fq;
	opts[600] = &fq;
	opts[100] = &m1;
	opts[400] = &m3;
	{
		unsigned *lines = calloc(N_JSON, sizeof(*lines));
		_cleanup_free_ char *path = write_json(*state, "big.json", N_JSON, opts, lines);
		struct ts_config_error err = { 0 };
		struct ts_desired *d = NULL;

		if (ts_config_load(path, MODELS, &d, &err) != 0)
			fail_msg("%s:%u: %s: %s", err.file, err.line, err.path, err.message);
		ts_desired_free(d);
		free(lines);
	}
	free(opts);
}

/* One file per tunnel: each tunnel names its own file; a leaf set again
 * with another value in a later file names both files and lines. */
static void test_file_per_tunnel(void **state)
{
	const unsigned n = 200;
	unsigned lines[200];
	_cleanup_free_ char *want = NULL, *later = NULL, *earlier = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	struct out o;
	char *text, name[32];

	for (unsigned i = 0; i < n; i++) {
		out_open(&o);
		json_head(&o);
		json_tunnel(&o, i, false, NULL, &lines[i]);
		json_tail(&o);
		text = out_close(&o);
		snprintf(name, sizeof(name), "t-%04u.json", i);
		write_file(*state, name, text);
		free(text);
	}
	if (ts_config_load_flags(*state, MODELS, TS_CONFIG_LOAD_SOURCES, &d, &err) != 0)
		fail_msg("%s:%u: %s: %s", err.file, err.line, err.path, err.message);
	assert_int_equal(d->n_tunnels, n);
	for (unsigned i = 0; i < n; i += 37) {
		_cleanup_free_ char *file = NULL;

		snprintf(name, sizeof(name), "t%u", i);
		assert_true(asprintf(&file, "%s/t-%04u.json", (char *)*state, i) > 0);
		assert_string_equal(find_tunnel(d, name)->source_file, file);
		assert_int_equal(find_tunnel(d, name)->source_line, lines[i]);
	}
	ts_desired_free(d);
	d = NULL;

	/* zz-again.json (read last) sets t17's if-id again, differently. */
	write_file(*state, "zz-again.json",
		   "{ \"tunnelsync:tunnelsync\": { \"tunnels\": { \"tunnel\": [\n"
		   "  { \"name\": \"t17\",\n    \"route-based\": {\n"
		   "      \"if-id\": 4242 } } ] } } }\n");
	assert_true(asprintf(&later, "%s/zz-again.json", (char *)*state) > 0);
	assert_true(asprintf(&earlier, "%s/t-0017.json", (char *)*state) > 0);
	assert_int_equal(ts_config_load(*state, MODELS, &d, &err), -EINVAL);
	assert_null(d);
	assert_string_equal(err.file, later);
	assert_int_equal(err.line, 4);
	assert_string_equal(err.path, "/tunnelsync:tunnelsync/tunnels/tunnel[name='t17']/"
				      "route-based/if-id");
	/* In t-0017.json the if-id is on the "route-based" line, the fifth
	 * after the name (17 % 3 == 2: name first; 17 % 5: no blank line). */
	assert_true(asprintf(&want, "conflicting values: \"4242\" here, \"1017\" in %s:%u", earlier,
			     lines[17] + 5) > 0);
	assert_string_equal(err.message, want);
	ts_config_error_done(&err);
}

/* agent/rotation: the leaves reach the agent's config; out of range is
 * refused at its line. */
static void test_rotation_leaves(void **state)
{
	_cleanup_free_ char *path = NULL;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	static const char head[] =
		"{ \"tunnelsync:tunnelsync\": {\n"
		"  \"agent\": { \"rotation\": {\n"
		"    \"max-in-flight\": 250,\n"
		"    \"bulk-batch-size\": %s,\n"
		"    \"max-age-jitter\": 25 } },\n"
		"  \"cloudflare\": { \"account-id\": \"023e105f4ecef8ad9ca31a8372d0c353\" } } }\n";
	char text[512];

	assert_true(asprintf(&path, "%s/r.json", (char *)*state) > 0);
	snprintf(text, sizeof(text), head, "50");
	write_file(*state, "r.json", text);
	if (ts_config_load(path, MODELS, &d, &err) != 0)
		fail_msg("%s:%u: %s", err.file, err.line, err.message);
	assert_int_equal(d->agent.rotation_max_in_flight, 250);
	assert_int_equal(d->agent.rotation_bulk_batch_size, 50);
	assert_int_equal(d->agent.rotation_max_age_jitter, 25);
	assert_int_equal(d->agent.max_rotations_per_pass, 0);
	ts_desired_free(d);
	d = NULL;

	snprintf(text, sizeof(text), head, "1001");
	write_file(*state, "r.json", text);
	assert_int_equal(ts_config_load(path, MODELS, &d, &err), -EINVAL);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 4);
	assert_string_equal(err.path, "/tunnelsync:tunnelsync/agent/rotation/bulk-batch-size");
	assert_non_null(strstr(err.message, "must be between 1 and 1000"));
	ts_config_error_done(&err);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DIR_TEST(test_lines_json),	    DIR_TEST(test_lines_xml),
		DIR_TEST(test_cross_tunnel_errors), DIR_TEST(test_file_per_tunnel),
		DIR_TEST(test_rotation_leaves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
