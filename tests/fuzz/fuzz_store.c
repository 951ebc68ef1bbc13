/* Fuzz target for the state directory's file parser (store/). The first
 * byte selects the mode: bit 0 seals the rest with a valid checksum line
 * (so that the parser behind the checksum is reached), bit 1 parses it as
 * a journal entry instead of a key record. The input goes through a real
 * file in a private temporary state directory, as the agent reads it. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"
#include "fuzz_files.h"
#include "core/sha256.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ts_store *store;
static char dir[64];
static char rec_path[128], jnl_path[128];

static void cleanup(void)
{
	ts_store_close(store);
	unlink(rec_path);
	unlink(jnl_path);
	fuzz_remove_store_dir(dir);
}

static int init(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ts-fuzz-store-XXXXXX");
	if (!mkdtemp(dir) || ts_store_open(dir, &store, NULL) < 0)
		return -1;
	snprintf(rec_path, sizeof(rec_path), "%s/records/f.rec", dir);
	snprintf(jnl_path, sizeof(jnl_path), "%s/journal/f.jnl", dir);
	atexit(cleanup);
	return 0;
}

static void put(const char *path, const uint8_t *data, size_t size, bool seal)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	if (seal) {
		uint8_t d[TS_SHA256_DIGEST_LEN];
		char line[80], hex[65];

		ts_sha256(data, size, d);
		ts_sha256_hex(d, hex);
		snprintf(line, sizeof(line), "sha256=%s\n", hex);
		if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			abort();
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode;

	if (!store && init() < 0)
		abort();
	if (size == 0)
		return 0;
	mode = data[0];
	data++, size--;
	if (mode & 2) {
		struct ts_journal_entry e = { 0 };

		put(jnl_path, data, size, mode & 1);
		if (ts_store_journal_read(store, "f", &e) == 0) {
			/* What parses must be consistent. */
			if (strcmp(e.tunnel, "f") != 0 ||
			    (e.step >= TS_JOURNAL_REMOTE && !e.new_key))
				abort();
			ts_store_journal_entry_done(&e);
		}
	} else {
		struct ts_key_record r = { 0 };

		put(rec_path, data, size, mode & 1);
		if (ts_store_record_read(store, "f", &r) == 0) {
			char fp[TS_FINGERPRINT_LEN];

			ts_secret_fingerprint(r.key, fp);
			if (strcmp(r.tunnel, "f") != 0 || strcmp(fp, r.fingerprint) != 0)
				abort();
			ts_store_record_done(&r);
		}
	}
	return 0;
}
