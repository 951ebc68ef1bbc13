/* Owns the process-wide log settings and the line formatter. */
#include "core/log.h"

#include <pthread.h>
#include <time.h>

#include "core/secret.h"

static enum ts_log_level log_level = TS_LOG_INFO;
static enum ts_log_format log_format = TS_LOG_TEXT;
static ts_log_sink_fn log_sink;
static void *log_sink_userdata;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
	[TS_LOG_ERROR] = "error", [TS_LOG_WARN] = "warn",   [TS_LOG_INFO] = "info",
	[TS_LOG_DEBUG] = "debug", [TS_LOG_TRACE] = "trace",
};

void ts_log_set_level(enum ts_log_level level)
{
	log_level = level;
}

enum ts_log_level ts_log_get_level(void)
{
	return log_level;
}

void ts_log_set_format(enum ts_log_format format)
{
	log_format = format;
}

void ts_log_set_sink(ts_log_sink_fn sink, void *userdata)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_userdata = userdata;
	pthread_mutex_unlock(&log_lock);
}

const char *ts_log_level_to_string(enum ts_log_level level)
{
	if ((size_t)level >= TS_ARRAY_SIZE(level_names))
		return "unknown";
	return level_names[level];
}

int ts_log_level_from_string(const char *s, enum ts_log_level *ret_level)
{
	for (size_t i = 0; i < TS_ARRAY_SIZE(level_names); i++) {
		if (ts_streq(s, level_names[i])) {
			*ret_level = (enum ts_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int ts_log_format_from_string(const char *s, enum ts_log_format *ret_format)
{
	if (ts_streq(s, "text")) {
		*ret_format = TS_LOG_TEXT;
		return 0;
	}
	if (ts_streq(s, "json")) {
		*ret_format = TS_LOG_JSON;
		return 0;
	}
	return -EINVAL;
}

/* Appends s to buf as a JSON string body (no quotes). */
static void json_escape(char *buf, size_t size, size_t *pos, const char *s)
{
	for (; *s && *pos + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = (char)c;
		} else if (c == '\n') {
			buf[(*pos)++] = '\\';
			buf[(*pos)++] = 'n';
		} else if (c < 0x20) {
			*pos += (size_t)snprintf(buf + *pos, size - *pos, "\\u%04x", c);
		} else {
			buf[(*pos)++] = (char)c;
		}
	}
	buf[*pos] = '\0';
}

static void append(char *buf, size_t size, size_t *pos, const char *s)
{
	size_t len = strlen(s);

	if (*pos + len >= size)
		len = size - *pos - 1;
	memcpy(buf + *pos, s, len);
	*pos += len;
	buf[*pos] = '\0';
}

void ts_logv(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt,
	     va_list ap)
{
	char msg[2048], line[4096], stamp[64];
	size_t pos = 0;
	struct timespec ts;
	struct tm tm;

	if (!ts_log_enabled(level))
		return;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Redact before anything else sees the text. */
	ts_secret_redact(msg, sizeof(msg));

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	line[0] = '\0';
	if (log_format == TS_LOG_JSON) {
		append(line, sizeof(line), &pos, "{\"time\":\"");
		append(line, sizeof(line), &pos, stamp);
		append(line, sizeof(line), &pos, "\",\"level\":\"");
		append(line, sizeof(line), &pos, ts_log_level_to_string(level));
		append(line, sizeof(line), &pos, "\"");
		if (plane) {
			append(line, sizeof(line), &pos, ",\"plane\":\"");
			json_escape(line, sizeof(line), &pos, plane);
			append(line, sizeof(line), &pos, "\"");
		}
		if (tunnel) {
			append(line, sizeof(line), &pos, ",\"tunnel\":\"");
			json_escape(line, sizeof(line), &pos, tunnel);
			append(line, sizeof(line), &pos, "\"");
		}
		append(line, sizeof(line), &pos, ",\"msg\":\"");
		json_escape(line, sizeof(line), &pos, msg);
		append(line, sizeof(line), &pos, "\"}");
	} else {
		append(line, sizeof(line), &pos, stamp);
		append(line, sizeof(line), &pos, " ");
		append(line, sizeof(line), &pos, ts_log_level_to_string(level));
		if (plane) {
			append(line, sizeof(line), &pos, " [");
			append(line, sizeof(line), &pos, plane);
			append(line, sizeof(line), &pos, "]");
		}
		if (tunnel) {
			append(line, sizeof(line), &pos, " tunnel=");
			append(line, sizeof(line), &pos, tunnel);
		}
		append(line, sizeof(line), &pos, ": ");
		append(line, sizeof(line), &pos, msg);
	}
	/* The plane and tunnel names are config text; redact the whole line too. */
	ts_secret_redact(line, sizeof(line));
	explicit_bzero(msg, sizeof(msg));

	pthread_mutex_lock(&log_lock);
	if (log_sink)
		log_sink(level, line, log_sink_userdata);
	else
		fprintf(stderr, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
	explicit_bzero(line, sizeof(line));
}

void ts_logf(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts_logv(level, plane, tunnel, fmt, ap);
	va_end(ap);
}
