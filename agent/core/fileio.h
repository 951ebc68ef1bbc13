/* Files: whole-file reads with a size bound, and atomic replacement
 * (temporary file, fsync, rename, fsync of the directory) so that a crash
 * leaves either the old or the new content, never a mix. Test builds have
 * crash points (core/crashpoint.h) at each step: file:mid-tmp-write,
 * file:after-tmp-write, file:before-rename, file:after-rename. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Reads at most max bytes; a larger file is -EFBIG. The buffer is
 * NUL-terminated (not counted in *ret_len). */
int ts_file_read_all(const char *path, size_t max, char **ret_data, size_t *ret_len);

/* Writes data to path atomically with the given mode (e.g. 0600). The
 * temporary file is created next to path with O_EXCL and that mode from
 * the start, so the content is never visible with wider permissions. */
int ts_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* fsync()s the directory that holds path. */
int ts_fsync_parent(const char *path);

/* mkdir -p with mode for every created component; an existing directory is
 * accepted as it is. */
int ts_mkdir_p(const char *path, mode_t mode);
