/*
 * timefmt.h — wall-clock time in milliseconds and its RFC 3339 form.
 */
#ifndef HEARTH_TIMEFMT_H
#define HEARTH_TIMEFMT_H

#include <stdint.h>

#define TIMEFMT_ISO_LEN 32

/* Milliseconds since the unix epoch (CLOCK_REALTIME). */
int64_t timefmt_now_ms(void);

/* Writes "2026-11-27T02:53:49.123Z" (UTC) into out; returns its length. */
int timefmt_iso_ms(int64_t ms, char out[TIMEFMT_ISO_LEN]);

/* Parses unix milliseconds ("1795748701234") or RFC 3339
 * ("2026-11-27T03:00:00Z", "…T03:00:00.5+01:00"). Returns 0 or -EINVAL. */
int timefmt_parse(const char *s, int64_t *ms);

#endif
