/* Fuzz target for the config loader: arbitrary bytes as a JSON file (or
 * XML when they start with '<'), through parsing, validation, conversion
 * and the error locator that searches the text for a YANG path. The loader
 * takes paths, so each input is written to a private temporary file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/ts-fuzz-config-XXXXXX";

static void remove_dir(void)
{
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct ts_config_error err = { 0 };
	struct ts_desired *d = NULL;
	char path[64];
	FILE *f;

	if (!ready) {
		if (!mkdtemp(dir))
			abort();
		atexit(remove_dir);
		ts_log_set_level(TS_LOG_ERROR);
		ready = 1;
	}
	snprintf(path, sizeof(path), "%s/input.%s", dir, size && data[0] == '<' ? "xml" : "json");
	f = fopen(path, "w");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();
	if (ts_config_load(path, NULL, &d, &err) == 0) {
		/* A loaded config is complete: every tunnel has its ids. */
		for (size_t i = 0; i < d->n_tunnels; i++)
			if (strlen(d->tunnels[i].id) != TS_CF_ID_LEN)
				abort();
		ts_desired_free(d);
	} else {
		char buf[1024];

		/* A refused one always says why. */
		if (!err.message)
			abort();
		ts_config_error_format(&err, buf, sizeof(buf));
		ts_config_error_done(&err);
	}
	unlink(path);
	return 0;
}
