/* Fuzz target for the strongswan.conf reader (agent/ike/swconf.c) that
 * tells whether charon reauthenticates make-before-break: the input is
 * split at NUL bytes into up to six files, 0.conf (the file the agent is
 * given) to 5.conf, in one private directory, so that "include" patterns
 * (relative, globs) reach the others and themselves. Looked up: the
 * daemon's section and charon's, then the decision over what was read.
 *
 * Inputs whose include pattern could leave the directory are skipped: an
 * absolute pattern or "..". The reader follows those as charon does, but
 * the fuzzer is not to parse the machine's files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "ike/swconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 6

static char dir[] = "/tmp/ts-fuzz-swconf-XXXXXX";
static char paths[MAX_FILES][FUZZ_PATH_MAX];

static void remove_dir(void)
{
	fuzz_remove_files(paths, MAX_FILES);
	rmdir(dir);
}

static void name(int i, int first, char *buf, size_t len)
{
	(void)first;
	snprintf(buf, len, "%d.conf", i);
}

/* A pattern that starts with '/' follows whitespace or a quote (also
 * escaped: "\/"); ".." may be spelt with escapes (".\."). */
static bool escapes_dir(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 1 < size; i++) {
		uint8_t c = data[i], d = data[i + 1];

		if ((c == '.' && d == '.') || (c == '\\' && (d == '.' || d == '/')) ||
		    (d == '/' && (c == ' ' || c == '\t' || c == '"')))
			return true;
	}
	return size && data[0] == '/';
}

static void check(const struct ts_swconf_value *v, int r, const char *err)
{
	if (r == 0 && v->found && (!v->file[0] || v->line == 0 || !v->n_files))
		abort();
	if (r < 0 && !err[0])
		abort(); /* an error always says what and where */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ts_swconf_value dk = { 0 }, ck = { 0 };
	struct ts_mbb_check m;
	char err[512], err2[512];
	int r1, r2;

	if (!ready) {
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
		ready = 1;
	}
	if (escapes_dir(data, size))
		return -1; /* not added to the corpus */
	fuzz_split_files(dir, data, size, MAX_FILES, name, paths);
	r1 = ts_swconf_get(paths[0], "charon-systemd.make_before_break", &dk, err, sizeof(err));
	check(&dk, r1, err);
	r2 = ts_swconf_get(paths[0], "charon.make_before_break", &ck, err2, sizeof(err2));
	check(&ck, r2, err2);
	if (r1 != r2)
		abort(); /* the same tree reads the same way whatever the key */
	if (r2 == 0 && ck.found)
		(void)ts_swconf_bool(ck.value);
	ts_mbb_decide(r2, err2, paths[0], r1 == 0 ? &dk : NULL, r2 == 0 ? &ck : NULL,
		      "charon-systemd", size & 1 ? "5.9.8" : "6.0.0", 1700000000000000LL, &m);
	if (m.state >= _TS_MBB_MAX || !memchr(m.reason, 0, sizeof(m.reason)))
		abort();
	fuzz_remove_files(paths, MAX_FILES);
	return 0;
}
