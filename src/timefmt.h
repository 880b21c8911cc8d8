/*
 * timefmt.h — wall-clock time in milliseconds and its RFC 3339 form.
 */
#ifndef HEARTH_TIMEFMT_H
#define HEARTH_TIMEFMT_H

#include <stdbool.h>
#include <stdint.h>

#define TIMEFMT_ISO_LEN 32

/* Milliseconds since the unix epoch (CLOCK_REALTIME). For what a person
 * reads and for cron times only: a step of the wall clock moves it. */
int64_t timefmt_now_ms(void);

/* Steady wall time: the wall clock read once, at the first call, then
 * advanced by CLOCK_MONOTONIC. Equal to timefmt_now_ms() until the wall
 * clock is stepped; after a step it keeps the old pace, so ages and
 * "run at" times stored in the async queue neither jump nor stall. A
 * restart re-reads the wall clock. (DESIGN.md §8: monotonic durations.) */
int64_t timefmt_steady_ms(void);

/* Writes "2026-11-27T02:53:49.123Z" (UTC) into out; returns its length. */
int timefmt_iso_ms(int64_t ms, char out[TIMEFMT_ISO_LEN]);

/* Parses unix milliseconds ("1795748701234") or RFC 3339
 * ("2026-11-27T03:00:00Z", "…T03:00:00.5+01:00"). Returns 0 or -EINVAL. */
int timefmt_parse(const char *s, int64_t *ms);

/* The proleptic Gregorian calendar, for the date parsers (RFC 3339 here,
 * cron's day fields): whether `y` is a leap year, and the days of month
 * `m` (1-12) of year `y`. */
bool timefmt_leap_year(int64_t y);
int timefmt_month_days(int64_t y, int m);

#endif
