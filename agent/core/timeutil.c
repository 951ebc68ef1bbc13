/* Owns clock reads and RFC 3339 conversion. */
#include "core/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

static ts_usec_t clock_usec(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (ts_usec_t)ts.tv_sec * TS_USEC_PER_SEC + ts.tv_nsec / 1000;
}

ts_usec_t ts_now_realtime(void)
{
	return clock_usec(CLOCK_REALTIME);
}

ts_usec_t ts_now_monotonic(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

static int digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)**p))
			return -EINVAL;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*ret = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

int ts_time_parse_rfc3339(const char *s, ts_usec_t *ret_usec)
{
	return ts_time_parse_rfc3339_unit(s, ret_usec, NULL);
}

int ts_time_parse_rfc3339_unit(const char *s, ts_usec_t *ret_usec, ts_usec_t *ret_unit)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, usec = 0, scale = 100000;
	ts_usec_t unit = TS_USEC_PER_SEC;
	long offset = 0;
	time_t t;

	if (!s)
		return -EINVAL;
	if (digits(&s, 4, &y) < 0 || expect(&s, '-') < 0 || digits(&s, 2, &mo) < 0 ||
	    expect(&s, '-') < 0 || digits(&s, 2, &d) < 0)
		return -EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	if (digits(&s, 2, &h) < 0 || expect(&s, ':') < 0 || digits(&s, 2, &mi) < 0 ||
	    expect(&s, ':') < 0 || digits(&s, 2, &sec) < 0)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		for (; isdigit((unsigned char)*s); s++) {
			usec += (*s - '0') * scale;
			scale /= 10;
			if (unit > 1)
				unit /= 10;
		}
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1, oh, om;

		s++;
		if (digits(&s, 2, &oh) < 0 || expect(&s, ':') < 0 || digits(&s, 2, &om) < 0)
			return -EINVAL;
		offset = sign * (oh * 3600L + om * 60L);
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret_usec = ((ts_usec_t)t - offset) * TS_USEC_PER_SEC + usec;
	if (ret_unit)
		*ret_unit = unit;
	return 0;
}

static ts_usec_t unit_or_usec(ts_usec_t unit)
{
	return unit > 1 ? unit : 1;
}

/* Floor division (times before 1970 stay ordered). */
static ts_usec_t in_units(ts_usec_t t, ts_usec_t unit)
{
	return t >= 0 ? t / unit : -((-t + unit - 1) / unit);
}

bool ts_time_later_beyond_precision(ts_usec_t later, ts_usec_t later_unit, ts_usec_t base,
				    ts_usec_t base_unit)
{
	ts_usec_t u = unit_or_usec(later_unit) > unit_or_usec(base_unit) ? unit_or_usec(later_unit)
									 : unit_or_usec(base_unit);

	return in_units(later, u) > in_units(base, u) + 1;
}

int ts_time_format_rfc3339(ts_usec_t t, char *buf, size_t size)
{
	time_t sec = (time_t)(t / TS_USEC_PER_SEC);
	long usec = (long)(t % TS_USEC_PER_SEC);
	struct tm tm;

	if (usec < 0) {
		usec += TS_USEC_PER_SEC;
		sec--;
	}
	if (!gmtime_r(&sec, &tm))
		return -EINVAL;
	/* The common case by hand (status.json holds three times per tunnel:
	 * snprintf was a tenth of its write); the same digits as below. */
	if (tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999 && size >= 28) {
		const int f[6] = { tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
				   tm.tm_hour,	      tm.tm_min,     tm.tm_sec };
		char *p = buf;

		for (int i = 0; i < 6; i++) {
			int v = f[i];

			if (i == 0) {
				*p++ = (char)('0' + v / 1000);
				*p++ = (char)('0' + v / 100 % 10);
			}
			*p++ = (char)('0' + v / 10 % 10);
			*p++ = (char)('0' + v % 10);
			*p++ = "--T::."[i];
		}
		for (long d = 100000; d > 0; d /= 10)
			*p++ = (char)('0' + usec / d % 10);
		*p++ = 'Z';
		*p = '\0';
		return 0;
	}
	if ((size_t)snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     usec) >= size)
		return -ENOBUFS;
	return 0;
}
