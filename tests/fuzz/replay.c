/* Replays every file of a corpus directory through a fuzz target, so that
 * the corpus is a regression suite under plain gcc, valgrind and ASan. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	struct dirent **names;
	int n, count = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	n = scandir(argv[1], &names, NULL, alphasort);
	if (n < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		char *data;
		size_t len;

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]->d_name);
			if (ts_file_read_all(path, 1 << 20, &data, &len) == 0) {
				LLVMFuzzerTestOneInput((const uint8_t *)data, len);
				free(data);
				count++;
			}
		}
		free(names[i]);
	}
	free(names);
	printf("replayed %d inputs from %s\n", count, argv[1]);
	return count > 0 ? 0 : 1;
}
