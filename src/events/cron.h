/*
 * cron.h — schedule expressions (cron, @macros, @every) and their fire
 * times in IANA time zones, across daylight-saving changes.
 *
 * Times are unix seconds (int64_t). Everything here is pure but for the
 * zone cache: zones are read from the zoneinfo tree once and kept.
 * Thread-safe.
 */
#ifndef HEARTH_CRON_H
#define HEARTH_CRON_H

#include <stddef.h>
#include <stdint.h>

/* The longest expression accepted, and the largest @every interval. */
#define CRON_EXPR_MAX    128
#define CRON_EVERY_MAX_S (366LL * 86400)
/* cron_next looks this far past `after_s` before it answers -1. */
#define CRON_HORIZON_S (5LL * 366 * 86400)
/* "2026-03-29T03:00:00+03:00" and its NUL, with room to spare. */
#define CRON_TIME_LEN 40
/* Where the zones are read from. */
#define CRON_ZONEINFO_DIR "/usr/share/zoneinfo"

typedef struct cron_expr cron_expr;

/* Parses a 5-field cron expression (minute hour day-of-month month
 * day-of-week), a 6-field one (seconds first), @yearly @annually @monthly
 * @weekly @daily @midnight @hourly, or "@every 90s" / "@every 1h30m".
 * Returns a new expression (free it with cron_free), or NULL with a short
 * sentence in `err` (may be NULL) that names the field and quotes at most a
 * few printable ASCII bytes of the value. */
cron_expr *cron_parse(const char *text, char *err, size_t errlen);

/* Frees an expression; accepts NULL. */
void cron_free(cron_expr *e);

/* 0 when `tz` names a usable zone: NULL, "" and "UTC" are UTC; any other
 * name must be [A-Za-z0-9_+-/] components naming a TZif file under
 * CRON_ZONEINFO_DIR. Otherwise -EINVAL with a sentence in `err`. */
int cron_tz_check(const char *tz, char *err, size_t errlen);

/* The first fire time strictly after `after_s`, or -1 when there is none
 * within CRON_HORIZON_S (or `tz` is not a usable zone). Cron fields are
 * wall-clock times in `tz`; docs/events.md ("Daylight saving") states the
 * rule. @every fires at the multiples of its interval since the unix epoch,
 * whatever the zone. */
int64_t cron_next(const cron_expr *e, const char *tz, int64_t after_s);

/* The zone's UTC offset (seconds east) at instant t into *off. 0, or
 * -EINVAL for an unusable zone. */
int cron_utc_offset(const char *tz, int64_t t, int32_t *off);

/* Writes instant t as RFC 3339 into out: "2026-03-29T03:00:00+03:00" with
 * the offset of `tz` at that instant (whole minutes), or, when tz is NULL,
 * in UTC as "2026-03-29T00:00:00Z". Returns the length, or -EINVAL for an
 * unusable zone or a year outside 0000-9999 (out is then ""). */
int cron_format_rfc3339(const char *tz, int64_t t, char out[CRON_TIME_LEN]);

/* Frees the zone cache (at exit, so that leak checkers stay quiet). No
 * other cron call may run at the same time or after it. */
void cron_tz_cache_clear(void);

#endif
