/* Logging: one line per event, text or JSON, to stderr or a sink set by
 * the caller. Every line passes through the secret redactor (secret.h):
 * the bytes of any live secret are replaced before the line leaves. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/util.h"

enum ts_log_level {
	TS_LOG_ERROR,
	TS_LOG_WARN,
	TS_LOG_INFO,
	TS_LOG_DEBUG,
	TS_LOG_TRACE,
};

enum ts_log_format {
	TS_LOG_TEXT,
	TS_LOG_JSON,
};

/* The sink receives each finished (redacted) line without its newline. */
typedef void (*ts_log_sink_fn)(enum ts_log_level level, const char *line, void *userdata);

void ts_log_set_level(enum ts_log_level level);
enum ts_log_level ts_log_get_level(void);
void ts_log_set_format(enum ts_log_format format);
/* NULL restores stderr. */
void ts_log_set_sink(ts_log_sink_fn sink, void *userdata);

int ts_log_level_from_string(const char *s, enum ts_log_level *ret_level);
int ts_log_format_from_string(const char *s, enum ts_log_format *ret_format);
const char *ts_log_level_to_string(enum ts_log_level level);

static inline bool ts_log_enabled(enum ts_log_level level)
{
	return level <= ts_log_get_level();
}

/* plane and tunnel may be NULL. Returns 0, so that callers can write
 * `return ts_log(...), -EINVAL;` patterns without a temporary. */
void ts_logf(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt, ...)
	TS_PRINTF(4, 5);
void ts_logv(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt,
	     va_list ap) TS_PRINTF(4, 0);

/* Facts a line carries as fields of their own (JSON keys)
 * besides plane and tunnel; NULL / 0 = absent. cause overrides the pass's
 * cause set with ts_log_set_cause(). */
struct ts_log_fields {
	const char *cause;
	const char *fingerprint; /* a key's fingerprint, never the key */
	uint64_t generation;
};
void ts_log_fields(enum ts_log_level level, const char *plane, const char *tunnel,
		   const struct ts_log_fields *fields, const char *fmt, ...) TS_PRINTF(5, 6);
void ts_log_fieldsv(enum ts_log_level level, const char *plane, const char *tunnel,
		    const struct ts_log_fields *fields, const char *fmt, va_list ap)
	TS_PRINTF(5, 0);
/* Context of every later line (JSON "revision", "cause"); NULL clears. */
void ts_log_set_revision(const char *revision);
void ts_log_set_cause(const char *cause);
/* True when stderr is the journal's stream (JOURNAL_STREAM matches it):
 * lines then start with the syslog priority "<N>" journald reads. */
bool ts_log_stderr_is_journal(void);

#define log_error(...) ts_logf(TS_LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define log_warn(...)  ts_logf(TS_LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_info(...)  ts_logf(TS_LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...)                                                  \
	do {                                                            \
		if (ts_log_enabled(TS_LOG_DEBUG))                       \
			ts_logf(TS_LOG_DEBUG, NULL, NULL, __VA_ARGS__); \
	} while (0)
#define log_trace(...)                                                  \
	do {                                                            \
		if (ts_log_enabled(TS_LOG_TRACE))                       \
			ts_logf(TS_LOG_TRACE, NULL, NULL, __VA_ARGS__); \
	} while (0)
