/* Owns file reading and crash-safe replacement. */
#include "core/fileio.h"

#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#include "core/crashpoint.h"
#include "core/util.h"

const char *ts_file_strerror(int r)
{
	if (r < 0)
		r = -r;
	return r == TS_ENOTREG ? "not a regular file (a FIFO, socket or device is never read)"
			       : strerror(r);
}

int ts_file_open_regular(const char *path, bool nofollow, struct stat *ret_st)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -TS_ENOTREG;
	}
	if (ret_st)
		*ret_st = st;
	return fd;
}

int ts_file_read_all(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 4096;
	struct stat st;

	fd = ts_file_open_regular(path, false, &st);
	if (fd < 0)
		return fd;
	if ((size_t)st.st_size > max)
		return -EFBIG;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *p;

			if (cap >= max + 1)
				return -EFBIG;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			p = realloc(buf, cap + 1);
			if (!p)
				return -ENOMEM;
			buf = p;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max)
		return -EFBIG;
	buf[len] = '\0';
	*ret_data = TS_TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int ts_fsync_parent(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int fd = -1;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

static int write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ts_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	_cleanup_free_ char *tmp = NULL;
	int fd, r;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* The umask may have narrowed mode; set it exactly. */
	if (fchmod(fd, mode) < 0) {
		r = -errno;
		goto fail;
	}
	if (ts_crash_armed("file:mid-tmp-write")) {
		/* A torn temporary file, as a crash during write() leaves it. */
		(void)write_full(fd, data, len / 2);
		ts_crash_now("file:mid-tmp-write");
	}
	r = write_full(fd, data, len);
	if (r < 0)
		goto fail;
	ts_crash_point("file:after-tmp-write");
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	ts_crash_point("file:before-rename");
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	ts_crash_point("file:after-rename");
	return ts_fsync_parent(path);
fail:
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	return r;
}

int ts_mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);
	struct stat st;

	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return -errno;
	if (stat(copy, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
