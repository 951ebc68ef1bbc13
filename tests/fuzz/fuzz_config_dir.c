/* Fuzz target for the config directory merge (agent/config): the input is
 * split at NUL bytes into up to six files of one directory (NN.json, or
 * NN.xml when a part starts with '<'; an empty part is an empty file),
 * loaded as CONFIG=DIR: every file parsed, merged, validated as one
 * datastore, converted, and errors located in the right file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 6

static char dir[] = "/tmp/ts-fuzz-config-dir-XXXXXX";
static char paths[MAX_FILES][FUZZ_PATH_MAX];

static void remove_dir(void)
{
	fuzz_remove_files(paths, MAX_FILES);
	rmdir(dir);
}

static void name(int i, int first, char *buf, size_t len)
{
	snprintf(buf, len, "%02d.%s", i, first == '<' ? "xml" : "json");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;

	if (!ready) {
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
		ts_log_set_level(TS_LOG_ERROR);
		ready = 1;
	}
	fuzz_split_files(dir, data, size, MAX_FILES, name, paths);
	if (ts_config_load(dir, NULL, &d, &err) == 0) {
		for (size_t i = 0; i < d->n_tunnels; i++)
			if (strlen(d->tunnels[i].id) != TS_CF_ID_LEN)
				abort();
		ts_desired_free(d);
	} else {
		char buf[1024];

		if (!err.message)
			abort();
		ts_config_error_format(&err, buf, sizeof(buf));
		ts_config_error_done(&err);
	}
	fuzz_remove_files(paths, MAX_FILES);
	return 0;
}
