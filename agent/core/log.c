/* Owns the process-wide log settings and the line formatter. */
#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

	if (*pos + 1 >= size)
		return;
	if (*pos + len >= size)
		len = size - *pos - 1;
	memcpy(buf + *pos, s, len);
	*pos += len;
	buf[*pos] = '\0';
}

/* Appends s with control characters as \xNN: a config value or a peer's
 * text cannot start a forged line of its own. */
static void text_escape(char *buf, size_t size, size_t *pos, const char *s)
{
	for (; *s && *pos + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			*pos += (size_t)snprintf(buf + *pos, size - *pos, "\\x%02x", c);
		else
			buf[(*pos)++] = (char)c;
	}
	buf[*pos] = '\0';
}

static void json_field(char *buf, size_t size, size_t *pos, const char *key, const char *value)
{
	if (!value || !value[0])
		return;
	append(buf, size, pos, ",\"");
	append(buf, size, pos, key);
	append(buf, size, pos, "\":\"");
	json_escape(buf, size, pos, value);
	append(buf, size, pos, "\"");
}

static void text_field(char *buf, size_t size, size_t *pos, const char *key, const char *value)
{
	if (!value || !value[0])
		return;
	append(buf, size, pos, " ");
	append(buf, size, pos, key);
	append(buf, size, pos, "=");
	text_escape(buf, size, pos, value);
}

/* Context every line carries (set by the daemon): the config revision in
 * force and why the running pass runs. Under log_lock. */
static char ctx_revision[80], ctx_cause[32];

void ts_log_set_revision(const char *revision)
{
	pthread_mutex_lock(&log_lock);
	snprintf(ctx_revision, sizeof(ctx_revision), "%s", revision ? revision : "");
	pthread_mutex_unlock(&log_lock);
}

void ts_log_set_cause(const char *cause)
{
	pthread_mutex_lock(&log_lock);
	snprintf(ctx_cause, sizeof(ctx_cause), "%s", cause ? cause : "");
	pthread_mutex_unlock(&log_lock);
}

/* stderr is the journal when JOURNAL_STREAM names its device and inode
 * (systemd.exec(5)); then each line starts with <N>, the syslog priority
 * journald reads (sd-daemon(3)). */
bool ts_log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* Checked per line (one fstat): stderr may be redirected later. */
	return env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int syslog_priority(enum ts_log_level level)
{
	switch (level) {
	case TS_LOG_ERROR:
		return 3;
	case TS_LOG_WARN:
		return 4;
	case TS_LOG_INFO:
		return 6;
	default:
		return 7;
	}
}

void ts_log_fieldsv(enum ts_log_level level, const char *plane, const char *tunnel,
		    const struct ts_log_fields *f, const char *fmt, va_list ap)
{
	char msg[2048], line[4096], stamp[64], gen[24] = "";
	const struct ts_log_fields none = { 0 };
	size_t pos = 0;
	struct timespec ts;
	struct tm tm;

	if (!ts_log_enabled(level))
		return;
	if (!f)
		f = &none;
	if (f->generation)
		snprintf(gen, sizeof(gen), "%llu", (unsigned long long)f->generation);

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Redact before anything else sees the text. */
	ts_secret_redact(msg, sizeof(msg));

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	pthread_mutex_lock(&log_lock);
	line[0] = '\0';
	if (log_sink == NULL && ts_log_stderr_is_journal()) {
		line[pos++] = '<';
		line[pos++] = (char)('0' + syslog_priority(level));
		line[pos++] = '>';
		line[pos] = '\0';
	}
	if (log_format == TS_LOG_JSON) {
		append(line, sizeof(line), &pos, "{\"time\":\"");
		append(line, sizeof(line), &pos, stamp);
		append(line, sizeof(line), &pos, "\",\"level\":\"");
		append(line, sizeof(line), &pos, ts_log_level_to_string(level));
		append(line, sizeof(line), &pos, "\"");
		json_field(line, sizeof(line), &pos, "plane", plane);
		json_field(line, sizeof(line), &pos, "tunnel", tunnel);
		json_field(line, sizeof(line), &pos, "cause", f->cause ? f->cause : ctx_cause);
		json_field(line, sizeof(line), &pos, "fingerprint", f->fingerprint);
		json_field(line, sizeof(line), &pos, "generation", gen);
		json_field(line, sizeof(line), &pos, "revision", ctx_revision);
		append(line, sizeof(line), &pos, ",\"msg\":\"");
		json_escape(line, sizeof(line), &pos, msg);
		append(line, sizeof(line), &pos, "\"}");
	} else {
		append(line, sizeof(line), &pos, stamp);
		append(line, sizeof(line), &pos, " ");
		append(line, sizeof(line), &pos, ts_log_level_to_string(level));
		if (plane) {
			append(line, sizeof(line), &pos, " [");
			text_escape(line, sizeof(line), &pos, plane);
			append(line, sizeof(line), &pos, "]");
		}
		text_field(line, sizeof(line), &pos, "tunnel", tunnel);
		/* fingerprint and generation are JSON fields; the message
		 * says them already for a reader. */
		append(line, sizeof(line), &pos, ": ");
		text_escape(line, sizeof(line), &pos, msg);
	}
	/* The plane and tunnel names are config text; redact the whole line too. */
	ts_secret_redact(line, sizeof(line));
	explicit_bzero(msg, sizeof(msg));

	if (log_sink)
		log_sink(level, line, log_sink_userdata);
	else
		fprintf(stderr, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
	explicit_bzero(line, sizeof(line));
}

void ts_logv(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt,
	     va_list ap)
{
	ts_log_fieldsv(level, plane, tunnel, NULL, fmt, ap);
}

void ts_log_fields(enum ts_log_level level, const char *plane, const char *tunnel,
		   const struct ts_log_fields *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts_log_fieldsv(level, plane, tunnel, fields, fmt, ap);
	va_end(ap);
}

void ts_logf(enum ts_log_level level, const char *plane, const char *tunnel, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts_logv(level, plane, tunnel, fmt, ap);
	va_end(ap);
}
