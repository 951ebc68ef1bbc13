/* Helpers of the fuzz targets that lay their input out as files. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_PATH_MAX 80

/* Writes the input split at NUL bytes into up to max files of dir, named
 * by name(i, first byte of the part or -1 when empty); paths[i] is set
 * for each file written (an empty part is an empty file). */
static inline void fuzz_split_files(const char *dir, const uint8_t *data, size_t size, int max,
				    void (*name)(int i, int first, char *buf, size_t len),
				    char paths[][FUZZ_PATH_MAX])
{
	size_t off = 0;

	for (int i = 0; i < max && off <= size; i++) {
		const uint8_t *end = size > off ? memchr(data + off, 0, size - off) : NULL;
		size_t len = (end ? (size_t)(end - data) : size) - off;
		char base[32];
		FILE *f;

		name(i, len ? data[off] : -1, base, sizeof(base));
		snprintf(paths[i], FUZZ_PATH_MAX, "%s/%s", dir, base);
		f = fopen(paths[i], "w");
		if (!f || (len && fwrite(data + off, 1, len, f) != len) || fclose(f) != 0)
			abort();
		off += len + 1;
		if (!end)
			break;
	}
}

static inline void fuzz_remove_files(char paths[][FUZZ_PATH_MAX], int n)
{
	for (int i = 0; i < n; i++)
		if (paths[i][0]) {
			unlink(paths[i]);
			paths[i][0] = 0;
		}
}

/* Removes what ts_store_open made in dir (lock, records/, journal/), then
 * dir itself. */
static inline void fuzz_remove_store_dir(const char *dir)
{
	static const char *const made[] = { "lock", "records", "journal" };
	char path[FUZZ_PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		if (unlink(path) < 0)
			rmdir(path);
	}
	rmdir(dir);
}
