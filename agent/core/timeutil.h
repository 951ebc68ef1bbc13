/* Time: microseconds since the epoch (wall clock) or since boot
 * (monotonic), and RFC 3339 timestamps as Cloudflare writes them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t ts_usec_t;

#define TS_USEC_PER_SEC ((ts_usec_t)1000000)

ts_usec_t ts_now_realtime(void);
ts_usec_t ts_now_monotonic(void);

/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)". */
int ts_time_parse_rfc3339(const char *s, ts_usec_t *ret_usec);
/* The same, and *ret_unit (NULL: not wanted) the unit of the text's last
 * digit: 1 s without a fraction, 100 ms for one digit, ... 1 us for six or
 * more (the finest kept). A writer that drops trailing zeros makes the
 * unit look coarser than its clock; that only widens the comparison below. */
int ts_time_parse_rfc3339_unit(const char *s, ts_usec_t *ret_usec, ts_usec_t *ret_unit);
/* Whether `later` (written in later_unit) is a later instant than `base`
 * (in base_unit) beyond what two writings of one instant can differ by:
 * both truncated to the coarser unit U, later more than one U after base.
 * One writer may truncate and the other round, so one instant can be
 * written one U apart; an instant less than 2 U after base (3 U when a
 * writer rounds) may therefore be taken for it. A unit of 0 (not known)
 * counts as 1 us. */
bool ts_time_later_beyond_precision(ts_usec_t later, ts_usec_t later_unit, ts_usec_t base,
				    ts_usec_t base_unit);
/* Writes "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"; buf needs 32 bytes. */
int ts_time_format_rfc3339(ts_usec_t t, char *buf, size_t size);
