/* Time: microseconds since the epoch (wall clock) or since boot
 * (monotonic), and RFC 3339 timestamps as Cloudflare writes them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef int64_t ts_usec_t;

#define TS_USEC_PER_SEC ((ts_usec_t)1000000)

ts_usec_t ts_now_realtime(void);
ts_usec_t ts_now_monotonic(void);

/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)". */
int ts_time_parse_rfc3339(const char *s, ts_usec_t *ret_usec);
/* Writes "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"; buf needs 32 bytes. */
int ts_time_format_rfc3339(ts_usec_t t, char *buf, size_t size);
