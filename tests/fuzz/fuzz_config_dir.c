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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 6

static char dir[] = "/tmp/ts-fuzz-config-dir-XXXXXX";
static char paths[MAX_FILES][80];

static void remove_files(void)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (paths[i][0]) {
			unlink(paths[i]);
			paths[i][0] = 0;
		}
}

static void remove_dir(void)
{
	remove_files();
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	size_t off = 0;

	if (!ready) {
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
		ts_log_set_level(TS_LOG_ERROR);
		ready = 1;
	}
	for (int i = 0; i < MAX_FILES && off <= size; i++) {
		const uint8_t *end = size > off ? memchr(data + off, 0, size - off) : NULL;
		size_t len = (end ? (size_t)(end - data) : size) - off;
		FILE *f;

		snprintf(paths[i], sizeof(paths[i]), "%s/%02d.%s", dir, i,
			 len && data[off] == '<' ? "xml" : "json");
		f = fopen(paths[i], "w");
		if (!f || (len && fwrite(data + off, 1, len, f) != len) || fclose(f) != 0)
			abort();
		off += len + 1;
		if (!end)
			break;
	}
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
	remove_files();
	return 0;
}
