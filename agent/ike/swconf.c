/* Reads settings from the strongswan.conf tree the way strongSwan's own
 * parser does (libstrongswan/settings: sections "name { }", "key = value"
 * up to the end of the line, '#' or '}', quoted values, "include PATTERN"
 * at any level, relative to the including file), and decides from
 * charon.make_before_break, the daemon's version and its start time
 * whether a reauthentication will be make-before-break. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/util.h"
#include "ike/swconf.h"
#include "ike/vici.h"

#define MAX_DEPTH 10
/* Files read for one lookup: a tree far larger than any real one (Debian
 * 12's has about 50). Without it a few includes of a file that includes
 * the next many times each (40 lines in each of 4 files: 2.5 million
 * reads) would hold the agent for minutes. */
#define MAX_FILES_READ 1000
#define MAX_FILE_SIZE  (1024 * 1024)
#define SECTION_MAX    1024

const char *const ts_mbb_state_names[_TS_MBB_MAX] = {
	[TS_MBB_UNKNOWN] = "unknown",
	[TS_MBB_ON] = "on",
	[TS_MBB_OFF] = "off",
	[TS_MBB_UNVERIFIED] = "unverified",
};

const char *ts_mbb_state_to_string(enum ts_mbb_state s)
{
	return (unsigned)s < _TS_MBB_MAX ? ts_mbb_state_names[s] : "unknown";
}

struct parser {
	const char *key;
	struct ts_swconf_value *out;
	char section[SECTION_MAX]; /* "a.b" of the sections open now */
	size_t lens[64];	   /* section's length before each open one */
	unsigned n_open;
	char *err;
	size_t err_size;
};

static int fail(struct parser *p, const char *file, unsigned line, const char *what)
{
	if (p->err && p->err_size)
		snprintf(p->err, p->err_size, "%s:%u: %s", file, line, what);
	return -EBADMSG;
}

static bool name_char(char c)
{
	return c && !strchr("#{}=\"\r\n\t ", c);
}

static int parse_file(struct parser *p, const char *path, unsigned depth);

/* include PATTERN: every file it matches, in order, at this point. */
static int include(struct parser *p, const char *from, unsigned line, const char *pattern,
		   unsigned depth)
{
	char full[PATH_MAX];
	glob_t g;
	int r = 0;

	if (pattern[0] == '/') {
		r = ts_strlcpy(full, pattern, sizeof(full));
	} else {
		const char *slash = strrchr(from, '/');
		int dir = slash ? (int)(slash - from) : 1;
		int n = snprintf(full, sizeof(full), "%.*s/%s", dir, slash ? from : ".", pattern);

		r = n < 0 || (size_t)n >= sizeof(full) ? -ENAMETOOLONG : 0;
	}
	if (r < 0)
		return 0;
	if (glob(full, 0, NULL, &g) != 0)
		return 0; /* nothing matched: charon skips it too */
	for (size_t i = 0; i < g.gl_pathc && r >= 0; i++) {
		if (p->out->n_files >= MAX_FILES_READ) {
			r = fail(p, from, line,
				 "include: over 1000 files read (files included many times over)");
			break;
		}
		r = parse_file(p, g.gl_pathv[i], depth + 1);
	}
	globfree(&g);
	return r;
}

static void define(struct parser *p, const char *file, unsigned line, const char *name,
		   const char *value)
{
	char full[SECTION_MAX + 256];

	snprintf(full, sizeof(full), "%s%s%s", p->section, p->section[0] ? "." : "", name);
	if (strcmp(full, p->key) != 0)
		return;
	p->out->found = true;
	snprintf(p->out->value, sizeof(p->out->value), "%s", value);
	snprintf(p->out->file, sizeof(p->out->file), "%s", file);
	p->out->line = line;
}

/* A quoted value: escapes as strongSwan reads them. */
static const char *quoted(const char *s, unsigned *line, char *buf, size_t size, bool *ok)
{
	size_t n = 0;

	*ok = false;
	for (s++; *s && *s != '"'; s++) {
		char c = *s;

		if (c == '\\' && s[1]) {
			s++;
			c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : *s;
		}
		if (c == '\n')
			(*line)++;
		if (n + 1 < size)
			buf[n++] = c;
	}
	buf[n] = 0;
	if (*s != '"')
		return s;
	*ok = true;
	return s + 1;
}

static int parse_text(struct parser *p, const char *file, const char *s, unsigned depth)
{
	unsigned line = 1, open_here = 0;
	char name[256], value[256];
	int r;

	while (*s) {
		size_t n = 0;

		if (*s == ' ' || *s == '\t' || *s == '\r') {
			s++;
			continue;
		}
		if (*s == '\n') {
			line++;
			s++;
			continue;
		}
		if (*s == '#') {
			s += strcspn(s, "\n");
			continue;
		}
		if (*s == '}') {
			if (open_here == 0)
				return fail(p, file, line, "'}' without a section");
			open_here--;
			p->section[p->lens[--p->n_open]] = 0;
			s++;
			continue;
		}
		if (!name_char(*s))
			return fail(p, file, line, "a name was expected");
		while (name_char(s[n]))
			n++;
		if (n >= sizeof(name))
			return fail(p, file, line, "name too long");
		memcpy(name, s, n);
		name[n] = 0;
		s += n;
		/* "include PATTERN" (not "include = value", a plain key). */
		if (strcmp(name, "include") == 0 && (*s == ' ' || *s == '\t') &&
		    s[strspn(s, " \t")] != '=') {
			bool ok = true;

			s += strspn(s, " \t");
			if (*s == '"') {
				s = quoted(s, &line, value, sizeof(value), &ok);
			} else {
				n = strcspn(s, "#}\r\n\t ");
				snprintf(value, sizeof(value), "%.*s", (int)n, s);
				s += n;
			}
			if (!ok)
				return fail(p, file, line, "unterminated string");
			if (depth + 1 > MAX_DEPTH)
				return fail(p, file, line, "includes nested too deep");
			r = include(p, file, line, value, depth);
			if (r < 0)
				return r;
			continue;
		}
		s += strspn(s, " \t\r");
		if (*s == '=') {
			bool ok = true;

			s++;
			s += strspn(s, " \t\r");
			if (*s == '"') {
				s = quoted(s, &line, value, sizeof(value), &ok);
				if (!ok)
					return fail(p, file, line, "unterminated string");
			} else {
				n = strcspn(s, "#}\n");
				while (n &&
				       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
					n--;
				snprintf(value, sizeof(value), "%.*s", (int)n, s);
				s += strcspn(s, "#}\n");
			}
			define(p, file, line, name, value);
			continue;
		}
		/* A section: "name {" or "name : references {". */
		if (*s == ':') {
			s += strcspn(s, "{\n#=");
		}
		if (*s != '{')
			return fail(p, file, line, "'=' or '{' expected after a name");
		s++;
		{
			char *colon = strchr(name, ':');
			size_t len = strlen(p->section);

			if (colon)
				*colon = 0;
			if (len + strlen(name) + 2 > sizeof(p->section) ||
			    p->n_open == TS_ARRAY_SIZE(p->lens))
				return fail(p, file, line, "sections nested too deep");
			p->lens[p->n_open++] = len;
			snprintf(p->section + len, sizeof(p->section) - len, "%s%s", len ? "." : "",
				 name);
		}
		open_here++;
	}
	if (open_here)
		return fail(p, file, line, "section not closed at the end of the file");
	return 0;
}

static int parse_file(struct parser *p, const char *path, unsigned depth)
{
	struct stat st;
	char *text;
	size_t n = 0;
	int fd, r;

	/* Never blocks on a FIFO, refuses what is not a regular file. */
	fd = ts_file_open_regular(path, false, &st);
	if (fd < 0)
		return depth == 0 ? fd : 0; /* an unreadable include: skipped */
	if (st.st_size > MAX_FILE_SIZE) {
		close(fd);
		return depth == 0 ? -EFBIG : 0;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, text + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	text[n] = 0;
	p->out->n_files++;
	{
		ts_usec_t m = (ts_usec_t)st.st_mtim.tv_sec * TS_USEC_PER_SEC +
			      (ts_usec_t)st.st_mtim.tv_nsec / 1000;

		if (m > p->out->newest_mtime) {
			p->out->newest_mtime = m;
			snprintf(p->out->newest_file, sizeof(p->out->newest_file), "%s", path);
		}
	}
	r = parse_text(p, path, text, depth);
	free(text);
	return r;
}

int ts_swconf_get(const char *path, const char *key, struct ts_swconf_value *ret, char *err,
		  size_t err_size)
{
	struct ts_swconf_value v = { 0 };
	struct parser p = { .key = key, .out = &v, .err = err, .err_size = err_size };
	int r;

	if (!path || !key || !*key || !ret)
		return -EINVAL;
	if (err && err_size)
		err[0] = 0;
	r = parse_file(&p, path, 0);
	if (r < 0) {
		if (err && err_size && !err[0])
			snprintf(err, err_size, "%s: %s", path, ts_file_strerror(r));
		return r;
	}
	*ret = v;
	return 0;
}

int ts_swconf_bool(const char *v)
{
	static const char *const yes[] = { "1", "yes", "true", "enabled" };
	static const char *const no[] = { "0", "no", "false", "disabled" };

	if (!v)
		return -EINVAL;
	for (size_t i = 0; i < TS_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -EINVAL;
}

static void fmt_time(ts_usec_t t, char *buf, size_t size)
{
	time_t s = (time_t)(t / TS_USEC_PER_SEC);
	struct tm tm;

	if (!gmtime_r(&s, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "?");
}

void ts_mbb_decide(int read_r, const char *read_err, const char *conf_path,
		   const struct ts_swconf_value *daemon_key,
		   const struct ts_swconf_value *charon_key, const char *daemon_name,
		   const char *version, ts_usec_t started, struct ts_mbb_check *ret)
{
	const struct ts_swconf_value *v = NULL;
	const char *section = "charon";
	char where[384], t_file[32], t_start[32];
	int on;

	memset(ret, 0, sizeof(*ret));
	if (read_r < 0) {
		ret->state = TS_MBB_UNKNOWN;
		snprintf(
			ret->reason, sizeof(ret->reason),
			"cannot read %.300s (%.300s): whether reauthentications are make-before-break "
			"is unknown",
			conf_path, read_err && *read_err ? read_err : strerror(-read_r));
		return;
	}
	if (daemon_key && daemon_key->found) {
		v = daemon_key;
		section = daemon_name;
	} else if (charon_key && charon_key->found) {
		v = charon_key;
	}
	if (v) {
		snprintf(where, sizeof(where), "%.300s:%u", v->file, v->line);
		on = ts_swconf_bool(v->value);
		if (on < 0) {
			ret->state = TS_MBB_UNKNOWN;
			snprintf(ret->reason, sizeof(ret->reason),
				 "%s: %.32s.make_before_break = '%.64s' is not a boolean", where,
				 section, v->value);
			return;
		}
	} else {
		/* strongSwan 6.0 made it the default. */
		on = version && atoi(version) >= 6;
		snprintf(where, sizeof(where),
			 "not set in %.300s (strongSwan %.16s defaults to %s)", conf_path,
			 version && *version ? version : "?", on ? "yes" : "no");
	}
	if (!on) {
		ret->state = TS_MBB_OFF;
		snprintf(ret->reason, sizeof(ret->reason),
			 "make_before_break is off (%s): every reauthentication, hence every key "
			 "rotation, deletes the old SAs before the new ones are up and traffic "
			 "stops meanwhile; install contrib/strongswan/tunnelsync.conf and restart "
			 "charon",
			 where);
		return;
	}
	/* started is whole seconds, computed by charon from its monotonic
	 * clock (off by up to a second more): a file written within 2 s of
	 * the start counts as read. */
	if (v && started && charon_key &&
	    charon_key->newest_mtime >= started + 2 * TS_USEC_PER_SEC) {
		fmt_time(charon_key->newest_mtime, t_file, sizeof(t_file));
		fmt_time(started, t_start, sizeof(t_start));
		ret->state = TS_MBB_UNVERIFIED;
		snprintf(ret->reason, sizeof(ret->reason),
			 "make_before_break = yes (%s), but %.300s changed at %s, after charon "
			 "started at %s: charon may not use it (reload-settings is not enough); "
			 "restart charon",
			 where, charon_key->newest_file, t_file, t_start);
		return;
	}
	ret->state = TS_MBB_ON;
	snprintf(ret->reason, sizeof(ret->reason), "make_before_break = yes (%s)", where);
}

/* charon's start (VICI stats: uptime.since, "Dec 01 22:18:21 2026", local
 * time). 0 when unknown. */
static ts_usec_t charon_started(struct ts_vici_client *c)
{
	_cleanup_vici_ struct ts_vici_node *resp = NULL;
	const char *since;
	struct tm tm = { 0 };
	time_t t;

	if (ts_vici_call(c, "stats", NULL, NULL, NULL, NULL, 0, &resp) < 0)
		return 0;
	since = ts_vici_get_str(ts_vici_get_section(resp, "uptime"), "since");
	if (!since || !strptime(since, "%b %d %H:%M:%S %Y", &tm))
		return 0;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	return t == (time_t)-1 ? 0 : (ts_usec_t)t * TS_USEC_PER_SEC;
}

int ts_mbb_check(struct ts_vici_client *c, const char *conf_path, struct ts_mbb_check *ret)
{
	struct ts_vici_version ver = { 0 };
	struct ts_swconf_value own = { 0 }, base = { 0 };
	char key[64], err[512] = "";
	int r;

	if (!c || !conf_path || !ret)
		return -EINVAL;
	r = ts_vici_version(c, &ver);
	if (r < 0)
		return r;
	if (!ver.daemon[0])
		snprintf(ver.daemon, sizeof(ver.daemon), "charon");
	r = ts_swconf_get(conf_path, "charon.make_before_break", &base, err, sizeof(err));
	/* charon-systemd and others read their own section, then charon's. */
	if (r == 0 && strcmp(ver.daemon, "charon") != 0) {
		snprintf(key, sizeof(key), "%s.make_before_break", ver.daemon);
		r = ts_swconf_get(conf_path, key, &own, err, sizeof(err));
	}
	ts_mbb_decide(r, err, conf_path, &own, &base, ver.daemon, ver.version, charon_started(c),
		      ret);
	return 0;
}
