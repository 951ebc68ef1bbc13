/* Secret buffers: the only place a PSK or API token lives in memory.
 *
 * Storage is page-aligned, excluded from core dumps (MADV_DONTDUMP), locked
 * in memory where the limit allows, and wiped on free. Every live secret is
 * registered so that the logger can redact its bytes from any line
 * (ts_secret_redact); there is deliberately no printf format for secrets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ts_secret;

/* "sha256:" + 16 hex digits of SHA-256 over the secret, NUL included. */
#define TS_FINGERPRINT_LEN 24
/* Length of keys the agent generates: Cloudflare's own are 32 alphanumerics. */
#define TS_PSK_GENERATED_LEN 32
/* Upper bound for any secret read from a file or an API response. */
#define TS_SECRET_MAX 4096

int ts_secret_new(size_t capacity, struct ts_secret **ret_secret);
int ts_secret_from_bytes(const void *data, size_t len, struct ts_secret **ret_secret);
/* Reads a whole file (at most TS_SECRET_MAX bytes) and strips one trailing
 * newline. An empty file is -ENODATA; a file readable by group or others is
 * accepted but *ret_loose_mode is set so that the caller can warn. */
int ts_secret_from_file(const char *path, struct ts_secret **ret_secret, bool *ret_loose_mode);
/* TS_PSK_GENERATED_LEN..len random characters from [A-Za-z0-9] (getrandom,
 * rejection sampling, no modulo bias). */
int ts_secret_random_alnum(size_t len, struct ts_secret **ret_secret);
struct ts_secret *ts_secret_dup(const struct ts_secret *s);

/* Appends bytes, growing the buffer (the old storage is wiped). */
int ts_secret_append(struct ts_secret *s, const void *data, size_t len);
void ts_secret_clear(struct ts_secret *s);

/* NUL-terminated view; valid until the secret changes or is freed. */
const char *ts_secret_str(const struct ts_secret *s);
size_t ts_secret_len(const struct ts_secret *s);
/* Constant time in the length of the shorter argument. */
bool ts_secret_equal(const struct ts_secret *a, const struct ts_secret *b);
void ts_secret_fingerprint(const struct ts_secret *s, char ret_fp[TS_FINGERPRINT_LEN]);
void ts_fingerprint_bytes(const void *data, size_t len, char ret_fp[TS_FINGERPRINT_LEN]);

/* Wipes and releases; accepts NULL. */
void ts_secret_free(struct ts_secret *s);
static inline void ts_secret_freep(struct ts_secret **s)
{
	ts_secret_free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(ts_secret_freep)))

/* Replaces, in the NUL-terminated text buf (capacity size), every occurrence
 * of a live secret of at least TS_SECRET_REDACT_MIN bytes by "[redacted]".
 * Returns the number of replacements. */
#define TS_SECRET_REDACT_MIN 6
int ts_secret_redact(char *buf, size_t size);

/* Wipes len bytes in a way the compiler cannot elide. */
void ts_wipe(void *p, size_t len);

/* Moves an environment variable into a secret: copies the value, removes
 * the variable and wipes its "NAME=value" bytes in place (also what
 * /proc/PID/environ shows). Returns 0 with *ret_secret NULL when it is not
 * set or empty. Not thread-safe (the environment is not): call it at start,
 * before any thread. */
int ts_secret_take_env(const char *name, struct ts_secret **ret_secret);

/* An allocator that wipes every block when it is released (realloc
 * always moves, wiping the old block), for libraries that copy secrets
 * into their own buffers: libcurl's request and header buffers get the
 * API token (curl_global_init_mem). Each block carries its size in a
 * 16-byte header. Only blocks from these functions may be passed to them. */
void *ts_wipe_malloc(size_t size);
void ts_wipe_free(void *p);
void *ts_wipe_realloc(void *p, size_t size);
char *ts_wipe_strdup(const char *s);
void *ts_wipe_calloc(size_t n, size_t size);
/* How many allocations of these functions have failed so far: tells a
 * library's "out of memory" that was a size limit from a real one. */
unsigned long ts_wipe_alloc_failures(void);

/* Makes the process non-dumpable and sets RLIMIT_CORE to 0. */
int ts_secret_harden_process(void);
