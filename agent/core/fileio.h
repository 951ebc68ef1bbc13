/* Files: whole-file reads with a size bound, and atomic replacement
 * (temporary file, fsync, rename, fsync of the directory) so that a crash
 * leaves either the old or the new content, never a mix. Test builds have
 * crash points (core/crashpoint.h) at each step: file:mid-tmp-write,
 * file:after-tmp-write, file:before-rename, file:after-rename. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A project error code beyond the errno range (returned negated): the path
 * names a FIFO, socket, device or directory where a regular file is read. */
#define TS_ENOTREG 10002

/* strerror() that also knows TS_ENOTREG; r may be negative or positive. */
const char *ts_file_strerror(int r);

/* Opens a file to read without ever blocking in open() (O_NONBLOCK: a FIFO
 * with no writer would otherwise wait forever) and refuses anything but a
 * regular file (-TS_ENOTREG), checked on the open descriptor. nofollow
 * also refuses a symbolic link (-ELOOP). Returns the descriptor (CLOEXEC)
 * and, when ret_st is not NULL, its fstat(). */
int ts_file_open_regular(const char *path, bool nofollow, struct stat *ret_st);

/* Reads at most max bytes of a regular file (ts_file_open_regular: never
 * blocks on a FIFO); a larger file is -EFBIG. The buffer is NUL-terminated
 * (not counted in *ret_len). */
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
