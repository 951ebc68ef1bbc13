/* Small helpers every module uses: cleanup attributes, array sizes,
 * bounded string copies. Header-only. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _cleanup_(f)	 __attribute__((cleanup(f)))
#define TS_UNUSED	 __attribute__((unused))
#define TS_PRINTF(a, b)	 __attribute__((format(printf, a, b)))

static inline void ts_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(ts_freep)

static inline void ts_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(ts_closep)

static inline void ts_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(ts_fclosep)

/* Copies src into dst of size n, always terminated. Returns -ENAMETOOLONG
 * (and copies nothing) when src does not fit: a truncated name or address
 * must never be used silently. */
static inline int ts_strlcpy(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (n == 0 || len >= n)
		return -ENAMETOOLONG;
	memcpy(dst, src, len + 1);
	return 0;
}

static inline bool ts_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Takes the value out of a pointer variable, leaving NULL (ownership
 * transfer to a ret_ parameter). */
#define TS_TAKE_PTR(p)                     \
	({                                 \
		__typeof__(p) _ptr_ = (p); \
		(p) = NULL;                \
		_ptr_;                     \
	})
