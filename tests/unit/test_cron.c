/*
 * test_cron.c — schedule expressions and the schedule planner: every syntax
 * and every error of cron_parse, zone names, fire times in UTC and across
 * daylight-saving changes (north, south, a 30-minute shift, none, and past
 * the zone table where the POSIX footer rule applies), the "schedules"
 * setting's validation, the missed-run rule and the event of a firing.
 * Deterministic: every time is given, no clock is read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events/cron.h"
#include "events/schedule.h"

/* Unix seconds of a wall time at a given UTC offset (hours east). */
static int64_t at(int y, int mo, int d, int h, int mi, int s, double off_h)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) - (int64_t)(off_h * 3600);
}

#define UTC(y, mo, d, h, mi, s) at(y, mo, d, h, mi, s, 0)

/* The next fire time of `text` in `tz` after `after`. */
static int64_t next(const char *text, const char *tz, int64_t after)
{
    char err[200] = "";
    cron_expr *e = cron_parse(text, err, sizeof err);
    if (!e)
        fail_msg("%s: %s", text, err);
    int64_t t = cron_next(e, tz, after);
    cron_free(e);
    return t;
}

/* The n fire times after `after` into out. */
static void nexts(const char *text, const char *tz, int64_t after, int64_t *out, int n)
{
    cron_expr *e = cron_parse(text, NULL, 0);
    assert_non_null(e);
    for (int i = 0; i < n; i++)
        out[i] = after = cron_next(e, tz, after);
    cron_free(e);
}

/* Asserts the first two fire times of `text` in `tz` after `after`. */
static void two(const char *text, const char *tz, int64_t after, int64_t want0, int64_t want1)
{
    int64_t t[2];
    nexts(text, tz, after, t, 2);
    assert_int_equal(t[0], want0);
    assert_int_equal(t[1], want1);
}

/* Asserts that `text` is refused with a message containing `want`. */
static void refused(const char *text, const char *want)
{
    char err[200] = "";
    cron_expr *e = cron_parse(text, err, sizeof err);
    if (e)
        fail_msg("accepted: %s", text);
    if (!strstr(err, want))
        fail_msg("%s: message '%s' lacks '%s'", text, err, want);
}

/* ---- parsing ---- */

static void test_every_syntax_parses(void **state)
{
    (void)state;
    const char *ok[] = {
        "* * * * *",    "0 0 * * *",      "*/5 * * * *",     "0 9-17 * * MON-FRI",
        "0 0 1,15 * *", "5/15 * * * *",   "0 0 * JAN,jul *", "0 0 * * sun",
        "0 0 * * 7",    "0 0 * * 0-7",    "0 0 * * FRI-SUN", "1-10/3 */2 1-31 1-12 *",
        "0 30 2 * * *", "*/10 * * * * *", "  0  0\t* * *  ", "@hourly",
        "@daily",       "@weekly",        "@monthly",        "@yearly",
        "@annually",    "@midnight",      "@DAILY",          "@every 90s",
        "@every 5m",    "@every 1h30m",   "@every 2h",       "@every 1s",
        "@every 8784h", "@every   10m",   "0 0 29 2 *",      "0 0 31 * *",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char err[200] = "";
        cron_expr *e = cron_parse(ok[i], err, sizeof err);
        if (!e)
            fail_msg("refused %s: %s", ok[i], err);
        cron_free(e);
    }
}

static void test_every_error_names_field_and_value(void **state)
{
    (void)state;
    refused("61 * * * *", "field 'minute': 61 is out of range 0-59");
    refused("0 25 * * *", "field 'hour': 25 is out of range 0-23");
    refused("0 0 0 * *", "field 'day-of-month': 0 is out of range 1-31");
    refused("0 0 32 * *", "field 'day-of-month': 32 is out of range 1-31");
    refused("0 0 * 13 *", "field 'month': 13 is out of range 1-12");
    refused("0 0 * * 8", "field 'day-of-week': 8 is out of range 0-7");
    refused("60 0 0 * * *", "field 'second': 60 is out of range 0-59");
    refused("99999 * * * *", "field 'minute': 99999 is out of range 0-59");
    refused("0 0 * FOO *", "field 'month': 'FOO' is not a number or name");
    refused("0 0 * * MONDAY", "field 'day-of-week': 'MONDAY' is not a number or name");
    refused("0 0 * MON *", "field 'month': 'MON' is not a number or name");
    refused("x * * * *", "field 'minute': 'x' is not a number");
    refused("0 0 L * *", "field 'day-of-month': 'L' is not a number");
    refused("0 0 ? * *", "field 'day-of-month': '?' is not a number");
    refused("0 0 * * 1#2", "field 'day-of-week': '1#2' is not a value, range or step");
    refused("5-1 * * * *", "field 'minute': range 5-1 goes backwards");
    refused("*/0 * * * *", "field 'minute': step '0' is not a number from 1 to 59");
    refused("*/x * * * *", "field 'minute': step 'x' is not a number");
    refused("*/ * * * *", "field 'minute': step '' is not a number");
    refused("1, * * * *", "field 'minute': a list ends with ','");
    refused("1-2-3 * * * *", "field 'minute': '1-2-3' is not a value, range or step");
    refused("0 0 30 2 *", "field 'day-of-month': no selected month has that day");
    refused("0 0 31 4,6 *", "no selected month has that day");
    refused("* * * *", "expected 5 fields (or 6 with seconds first), got 4");
    refused("* * * * * * *", "got more than 6");
    refused("", "empty");
    refused("   ", "empty");
    refused("@reboot", "'@reboot' is not one of @yearly");
    refused("@daily 5", "is not one of");
    refused("@every", "@every needs an interval");
    refused("@every 0s", "the interval must be from 1s to 8784h");
    refused("@every 8785h", "the interval must be from 1s to 8784h");
    refused("@every 10", "'10' is not an interval");
    refused("@every 5d", "'5d' is not an interval");
    refused("@every 30m1h", "'30m1h' is not an interval");
    refused("@every 1m1m", "is not an interval");
    refused("0 0 * * \xc3\xa9", "only printable ASCII");
    refused("0 0\n* * *", "only printable ASCII");
    char err[200];
    assert_null(cron_parse(NULL, err, sizeof err));
    assert_null(cron_parse("61 * * * *", NULL, 0)); /* no message wanted */
}

static void test_error_quotes_little_and_long_input_is_refused(void **state)
{
    (void)state;
    char err[200];
    assert_null(cron_parse("0 0 * ABCDEFGHIJKLMNOPQRSTUVWXYZ *", err, sizeof err));
    assert_non_null(strstr(err, "'ABCDEFGHIJKLMNOP...'"));
    assert_null(strstr(err, "QRS"));
    char big[CRON_EXPR_MAX + 2];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_null(cron_parse(big, err, sizeof err));
    assert_non_null(strstr(err, "longer than 128"));
    char tiny[8]; /* a short buffer is cut, never overrun */
    assert_null(cron_parse("0 25 * * *", tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_tz_names(void **state)
{
    (void)state;
    char err[200];
    assert_int_equal(cron_tz_check(NULL, err, sizeof err), 0);
    assert_int_equal(cron_tz_check("", err, sizeof err), 0);
    assert_int_equal(cron_tz_check("UTC", err, sizeof err), 0);
    assert_int_equal(cron_tz_check("Europe/Helsinki", err, sizeof err), 0);
    assert_int_equal(cron_tz_check("America/Argentina/Buenos_Aires", err, sizeof err), 0);
    assert_int_equal(cron_tz_check("Etc/GMT+5", err, sizeof err), 0);
    assert_int_equal(cron_tz_check("US/Eastern", err, sizeof err), 0); /* a link */
    assert_int_equal(cron_tz_check("Europe/Nowhere", err, sizeof err), -EINVAL);
    assert_string_equal(err, "unknown time zone 'Europe/Nowhere'");
    const char *bad[] = {"../../etc/passwd", "/etc/passwd", "Europe/../UTC",    "zone.tab",
                         "Europe//Helsinki", "Europe/",     "Europe/Hel sinki", "Europe/Helsinki\n",
                         "Ευρώπη/Αθήνα",     ".hidden"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(cron_tz_check(bad[i], err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "IANA name"));
    }
    /* Names that pass the charset but are not zones: a folder, the link
     * to /etc/localtime (outside the zoneinfo tree), a non-TZif file. */
    assert_int_equal(cron_tz_check("Europe", err, sizeof err), -EINVAL);
    assert_int_equal(cron_tz_check("localtime", err, sizeof err), -EINVAL);
    assert_int_equal(cron_tz_check("leapseconds", err, sizeof err), -EINVAL);
    char longname[80];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cron_tz_check(longname, err, sizeof err), -EINVAL);
}

/* ---- fire times in UTC ---- */

static void test_next_in_utc(void **state)
{
    (void)state;
    int64_t t0 = UTC(2026, 1, 1, 11, 0, 0); /* a Thursday */
    assert_int_equal(next("* * * * *", NULL, t0), t0 + 60);
    assert_int_equal(next("* * * * *", "UTC", t0 + 59), t0 + 60); /* strictly after */
    assert_int_equal(next("0 0 * * *", NULL, t0), UTC(2026, 1, 2, 0, 0, 0));
    assert_int_equal(next("*/15 * * * *", NULL, t0 + 1), t0 + 900);
    assert_int_equal(next("30 */6 * * *", NULL, t0), UTC(2026, 1, 1, 12, 30, 0));
    assert_int_equal(next("0 9-17/4 * * *", NULL, t0), UTC(2026, 1, 1, 13, 0, 0));
    assert_int_equal(next("0 0 1 * *", NULL, t0), UTC(2026, 2, 1, 0, 0, 0));
    assert_int_equal(next("0 0 31 * *", NULL, UTC(2026, 4, 1, 0, 0, 0)), UTC(2026, 5, 31, 0, 0, 0));
    assert_int_equal(next("0 0 29 2 *", NULL, t0), UTC(2028, 2, 29, 0, 0, 0));
    assert_int_equal(next("0 12 * JUN *", NULL, t0), UTC(2026, 6, 1, 12, 0, 0));
    assert_int_equal(next("0 0 * * SUN", NULL, t0), UTC(2026, 1, 4, 0, 0, 0));
    assert_int_equal(next("0 0 * * 7", NULL, t0), UTC(2026, 1, 4, 0, 0, 0)); /* 7 = Sunday */
    assert_int_equal(next("0 0 * * FRI-SUN", NULL, t0), UTC(2026, 1, 2, 0, 0, 0));
    assert_int_equal(next("@weekly", NULL, t0), UTC(2026, 1, 4, 0, 0, 0));
    assert_int_equal(next("@monthly", NULL, t0), UTC(2026, 2, 1, 0, 0, 0));
    assert_int_equal(next("@yearly", NULL, t0), UTC(2027, 1, 1, 0, 0, 0));
    assert_int_equal(next("@hourly", NULL, t0), UTC(2026, 1, 1, 12, 0, 0));
    /* Six fields: seconds first. */
    assert_int_equal(next("30 0 12 * * *", NULL, t0), UTC(2026, 1, 1, 12, 0, 30));
    assert_int_equal(next("*/20 * * * * *", NULL, t0), t0 + 20);
    /* Day of month and day of week both restricted: either matches. */
    assert_int_equal(next("0 0 15 * MON", NULL, t0), UTC(2026, 1, 5, 0, 0, 0));
    assert_int_equal(next("0 0 2 * MON", NULL, t0), UTC(2026, 1, 2, 0, 0, 0));
    /* One of them "*": both must match (the "*" one always does). */
    assert_int_equal(next("0 0 * 3 MON", NULL, t0), UTC(2026, 3, 2, 0, 0, 0));
    assert_int_equal(next("0 0 13 * *", NULL, t0), UTC(2026, 1, 13, 0, 0, 0));
    /* A range that covers every weekday counts as "*", as in croniter. */
    assert_int_equal(next("0 0 13 * 0-6", NULL, t0), UTC(2026, 1, 13, 0, 0, 0));
}

static void test_every_is_anchored_at_the_epoch(void **state)
{
    (void)state;
    assert_int_equal(next("@every 90s", NULL, 100), 180);
    assert_int_equal(next("@every 90s", NULL, 179), 180);
    assert_int_equal(next("@every 90s", NULL, 180), 270);
    assert_int_equal(next("@every 1h30m", NULL, 0), 5400);
    int64_t t = UTC(2026, 3, 29, 0, 59, 0);
    /* Zone-independent: the same instants in any zone, across a change. */
    assert_int_equal(next("@every 5m", "Europe/Helsinki", t), UTC(2026, 3, 29, 1, 0, 0));
    assert_int_equal(next("@every 5m", NULL, t), UTC(2026, 3, 29, 1, 0, 0));
    assert_int_equal(next("@every 1s", NULL, -5), -4);
}

static void test_horizon_and_bad_arguments(void **state)
{
    (void)state;
    /* Feb 29 on a Monday... with "*" day of week: the next leap days are
     * 2096 then 2104, over five years apart. */
    assert_int_equal(next("0 0 29 2 *", NULL, UTC(2096, 3, 1, 0, 0, 0)), -1);
    assert_int_equal(next("0 0 * * *", "Europe/Nowhere", 0), -1);
    assert_int_equal(next("0 0 * * *", NULL, INT64_MAX), -1);
    assert_int_equal(next("0 0 * * *", NULL, INT64_MIN), -1);
    assert_int_equal(cron_next(NULL, NULL, 0), -1);
}

/* ---- daylight saving ---- */

static void test_helsinki_spring_forward_and_fall_back(void **state)
{
    (void)state;
    /* 2026-03-29: 03:00 EET (+2) becomes 04:00 EEST (+3). */
    int64_t before = at(2026, 3, 28, 12, 0, 0, 2);
    /* Once, when the gap ends; the next day as usual. */
    two("30 3 * * *", "Europe/Helsinki", before, at(2026, 3, 29, 4, 0, 0, 3),
        at(2026, 3, 30, 3, 30, 0, 3));
    /* Several skipped wall times fire once, together. */
    two("*/20 3 * * *", "Europe/Helsinki", before, at(2026, 3, 29, 4, 0, 0, 3),
        at(2026, 3, 30, 3, 0, 0, 3));
    /* Hourly: the skipped hour has no instant, so nothing extra. */
    two("30 * * * *", "Europe/Helsinki", at(2026, 3, 29, 2, 45, 0, 2), at(2026, 3, 29, 4, 30, 0, 3),
        at(2026, 3, 29, 5, 30, 0, 3));
    /* 2026-10-25: 04:00 EEST (+3) becomes 03:00 EET (+2); 03:xx twice:
     * the first fires, the second does not. */
    two("30 3 * * *", "Europe/Helsinki", at(2026, 10, 24, 12, 0, 0, 3),
        at(2026, 10, 25, 3, 30, 0, 3), at(2026, 10, 26, 3, 30, 0, 2));
    /* Asked from inside the second pass: the next day. */
    assert_int_equal(next("30 3 * * *", "Europe/Helsinki", at(2026, 10, 25, 3, 10, 0, 2)),
                     at(2026, 10, 26, 3, 30, 0, 2));
}

static void test_new_york_0230_daily_and_wildcards(void **state)
{
    (void)state;
    /* 2024-03-10: 02:00 EST becomes 03:00 EDT. */
    int64_t t[10];
    nexts("30 2 * * *", "America/New_York", at(2024, 3, 9, 12, 0, 0, -5), t, 3);
    assert_int_equal(t[0], at(2024, 3, 10, 3, 0, 0, -4));
    assert_int_equal(t[1], at(2024, 3, 11, 2, 30, 0, -4));
    assert_int_equal(t[2], at(2024, 3, 12, 2, 30, 0, -4));
    /* 03:00 itself is due and the skipped 02:00 joins it: once. */
    two("0 2,3 * * *", "America/New_York", at(2024, 3, 10, 1, 0, 0, -5),
        at(2024, 3, 10, 3, 0, 0, -4), at(2024, 3, 11, 2, 0, 0, -4));
    /* One second before the gap ends. */
    assert_int_equal(next("30 2 * * *", "America/New_York", at(2024, 3, 10, 1, 59, 59, -5)),
                     at(2024, 3, 10, 3, 0, 0, -4));
    /* 2024-11-03: 02:00 EDT becomes 01:00 EST. Fixed hour: once. */
    two("30 1 * * *", "America/New_York", at(2024, 11, 2, 12, 0, 0, -4),
        at(2024, 11, 3, 1, 30, 0, -4), at(2024, 11, 4, 1, 30, 0, -5));
    /* Wildcard hour: every real quarter hour, the repeated ones too. */
    nexts("*/15 * * * *", "America/New_York", at(2024, 11, 3, 0, 50, 0, -4), t, 10);
    int64_t q = at(2024, 11, 3, 1, 0, 0, -4);
    for (int i = 0; i < 10; i++)
        assert_int_equal(t[i], q + i * 900);
    /* "0 * * * *" through the change: one hour apart each time. */
    nexts("0 * * * *", "America/New_York", at(2024, 11, 3, 0, 30, 0, -4), t, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(t[i], at(2024, 11, 3, 1, 0, 0, -4) + i * 3600);
    /* Fixed hour with a minute step: the first pass only. */
    nexts("*/15 1 * * *", "America/New_York", at(2024, 11, 3, 0, 50, 0, -4), t, 5);
    assert_int_equal(t[3], at(2024, 11, 3, 1, 45, 0, -4));
    assert_int_equal(t[4], at(2024, 11, 4, 1, 0, 0, -5));
}

static void test_sydney_southern_hemisphere(void **state)
{
    (void)state;
    /* 2026-10-04: 02:00 AEST (+10) becomes 03:00 AEDT (+11). */
    assert_int_equal(next("30 2 * * *", "Australia/Sydney", at(2026, 10, 3, 12, 0, 0, 10)),
                     at(2026, 10, 4, 3, 0, 0, 11));
    /* 2026-04-05: 03:00 AEDT becomes 02:00 AEST; 02:xx twice. */
    two("30 2 * * *", "Australia/Sydney", at(2026, 4, 4, 12, 0, 0, 11),
        at(2026, 4, 5, 2, 30, 0, 11), at(2026, 4, 6, 2, 30, 0, 10));
    /* Midsummer is DST: +11 in January. */
    assert_int_equal(next("0 9 * * *", "Australia/Sydney", at(2026, 1, 10, 0, 0, 0, 11)),
                     at(2026, 1, 10, 9, 0, 0, 11));
}

static void test_lord_howe_half_hour_shift_and_kolkata(void **state)
{
    (void)state;
    /* 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11). */
    assert_int_equal(next("15 2 * * *", "Australia/Lord_Howe", at(2026, 10, 3, 12, 0, 0, 10.5)),
                     at(2026, 10, 4, 2, 30, 0, 11));
    assert_int_equal(next("45 2 * * *", "Australia/Lord_Howe", at(2026, 10, 3, 12, 0, 0, 10.5)),
                     at(2026, 10, 4, 2, 45, 0, 11));
    /* 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30); 01:30-02:00 twice. */
    two("45 1 * * *", "Australia/Lord_Howe", at(2026, 4, 4, 12, 0, 0, 11),
        at(2026, 4, 5, 1, 45, 0, 11), at(2026, 4, 6, 1, 45, 0, 10.5));
    /* No DST at all: +05:30 all year. */
    assert_int_equal(next("30 2 * * *", "Asia/Kolkata", at(2026, 3, 29, 0, 0, 0, 5.5)),
                     at(2026, 3, 29, 2, 30, 0, 5.5));
    assert_int_equal(next("30 2 * * *", "Asia/Kolkata", at(2026, 10, 25, 0, 0, 0, 5.5)),
                     at(2026, 10, 25, 2, 30, 0, 5.5));
}

static void test_far_future_uses_the_footer_rule(void **state)
{
    (void)state;
    /* Past the zone table (2037), the POSIX rule: second Sunday of March
     * 2090 is the 12th. */
    assert_int_equal(next("30 2 * * *", "America/New_York", at(2090, 3, 11, 12, 0, 0, -5)),
                     at(2090, 3, 12, 3, 0, 0, -4));
    /* Last Sunday of October 2090 is the 29th, in Helsinki at 04:00. */
    two("30 3 * * *", "Europe/Helsinki", at(2090, 10, 28, 12, 0, 0, 3),
        at(2090, 10, 29, 3, 30, 0, 3), at(2090, 10, 30, 3, 30, 0, 2));
    /* Southern hemisphere past the table: Sydney, first Sunday of April. */
    int32_t off;
    assert_int_equal(cron_utc_offset("Australia/Sydney", at(2090, 1, 1, 0, 0, 0, 11), &off), 0);
    assert_int_equal(off, 11 * 3600);
    assert_int_equal(cron_utc_offset("Australia/Sydney", at(2090, 7, 1, 0, 0, 0, 10), &off), 0);
    assert_int_equal(off, 10 * 3600);
}

static void test_rfc3339_with_the_zone_offset(void **state)
{
    (void)state;
    char out[CRON_TIME_LEN];
    int64_t t = at(2026, 3, 29, 4, 0, 0, 3);
    assert_int_equal(cron_format_rfc3339("Europe/Helsinki", t, out), 25);
    assert_string_equal(out, "2026-03-29T04:00:00+03:00");
    cron_format_rfc3339("Europe/Helsinki", t - 1, out);
    assert_string_equal(out, "2026-03-29T02:59:59+02:00");
    cron_format_rfc3339("America/New_York", t, out);
    assert_string_equal(out, "2026-03-28T21:00:00-04:00");
    cron_format_rfc3339("Asia/Kolkata", t, out);
    assert_string_equal(out, "2026-03-29T06:30:00+05:30");
    cron_format_rfc3339("UTC", t, out);
    assert_string_equal(out, "2026-03-29T01:00:00+00:00");
    cron_format_rfc3339(NULL, t, out);
    assert_string_equal(out, "2026-03-29T01:00:00Z");
    assert_int_equal(cron_format_rfc3339("Europe/Nowhere", t, out), -EINVAL);
    assert_string_equal(out, "");
}

/* ---- the planner ---- */

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("bad test JSON: %s", je.text);
    return v;
}

/* Asserts validate's verdict on `text` and, when refused, its message. */
static void check_schedules(const char *text, const char *want)
{
    json_t *v = js(text);
    char err[300] = "";
    int rc = schedules_validate(v, err, sizeof err);
    json_decref(v);
    if (!want) {
        if (rc != 0)
            fail_msg("%s refused: %s", text, err);
        return;
    }
    assert_int_equal(rc, -EINVAL);
    if (strcmp(err, want) != 0)
        fail_msg("%s: got '%s', want '%s'", text, err, want);
}

static void test_schedules_validate(void **state)
{
    (void)state;
    check_schedules("[]", NULL);
    check_schedules("[\"@every 90s\", \"0 9 * * MON-FRI\", {\"cron\": \"30 2 * * *\", "
                    "\"timezone\": \"Europe/Helsinki\", \"event\": {\"detail\": {\"a\": 1}}, "
                    "\"overlap\": \"allow\"}, {\"cron\": \"@hourly\", \"overlap\": \"skip\"}]",
                    NULL);
    check_schedules("{}", "schedules: must be an array");
    check_schedules("[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "schedules: at most 16 items");
    check_schedules("[\"@daily\", 5]", "schedules[1]: must be a string or an object");
    check_schedules("[\"@daily\", {\"cron\": \"0 25 * * *\"}]",
                    "schedules[1]: cron: field 'hour': 25 is out of range 0-23");
    check_schedules("[\"0 25 * * *\"]", "schedules[0]: field 'hour': 25 is out of range 0-23");
    check_schedules("[{\"timezone\": \"UTC\"}]", "schedules[0]: cron: must be a string");
    check_schedules(
        "[{\"cron\": \"@daily\", \"tz\": \"UTC\"}]",
        "schedules[0]: unknown key 'tz' (known: cron, timezone, event, overlap, qualifier)");
    check_schedules(
        "[{\"cron\": \"@daily\", \"x\\u0007\\u00e9\": 1}]",
        "schedules[0]: unknown key 'x?\?\?' (known: cron, timezone, event, overlap, qualifier)");
    check_schedules("[{\"cron\": \"@daily\", \"timezone\": \"Mars/Olympus\"}]",
                    "schedules[0]: timezone: unknown time zone 'Mars/Olympus'");
    check_schedules("[{\"cron\": \"@daily\", \"timezone\": 3}]",
                    "schedules[0]: timezone: must be a string");
    check_schedules("[{\"cron\": \"@daily\", \"overlap\": \"queue\"}]",
                    "schedules[0]: overlap: must be \"skip\" or \"allow\"");
    check_schedules("[{\"cron\": \"@daily\", \"event\": [1]}]",
                    "schedules[0]: event: must be an object");
    check_schedules("[{\"cron\": \"@daily\", \"event\": {\"time\": \"x\"}}]",
                    "schedules[0]: event: 'time' is set by Hearth for each firing and cannot "
                    "be given");
    /* An event of more than 8 KiB. */
    size_t n = SCHEDULE_EVENT_MAX + 100;
    char *big = malloc(n + 100);
    int k = snprintf(big, n + 100, "[{\"cron\": \"@daily\", \"event\": {\"detail\": \"");
    memset(big + k, 'a', SCHEDULE_EVENT_MAX);
    memcpy(big + k + SCHEDULE_EVENT_MAX, "\"}}]", 5);
    check_schedules(big, "schedules[0]: event: larger than 8192 bytes");
    free(big);
}

static void test_next_times_and_their_format(void **state)
{
    (void)state;
    json_t *item = js("{\"cron\": \"30 3 * * *\", \"timezone\": \"Europe/Helsinki\"}");
    int64_t t[SCHEDULE_NEXT_SHOWN];
    assert_int_equal(schedule_next_times(item, at(2026, 3, 28, 12, 0, 0, 2), t, 5), 5);
    const char *want[] = {"2026-03-29T04:00:00+03:00", "2026-03-30T03:30:00+03:00",
                          "2026-03-31T03:30:00+03:00", "2026-04-01T03:30:00+03:00",
                          "2026-04-02T03:30:00+03:00"};
    char out[CRON_TIME_LEN];
    for (int i = 0; i < 5; i++) {
        assert_true(schedule_format_time(item, t[i], out, sizeof out) > 0);
        assert_string_equal(out, want[i]);
    }
    char small[10];
    assert_int_equal(schedule_format_time(item, t[0], small, sizeof small), -EINVAL);
    assert_int_equal(schedule_next(item, at(2026, 3, 28, 12, 0, 0, 2)), t[0]);
    assert_string_equal(schedule_item_cron(item), "30 3 * * *");
    assert_string_equal(schedule_item_timezone(item), "Europe/Helsinki");
    assert_true(schedule_item_overlap_skip(item));
    json_decref(item);

    json_t *s = json_string("@every 90s");
    assert_int_equal(schedule_next_times(s, 0, t, 3), 3);
    assert_int_equal(t[2], 270);
    assert_string_equal(schedule_item_timezone(s), "UTC");
    schedule_format_time(s, t[0], out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:01:30+00:00");
    json_decref(s);

    /* Fewer than asked when the horizon ends; invalid items refused. */
    json_t *leap = json_string("0 0 29 2 *");
    assert_int_equal(schedule_next_times(leap, UTC(2090, 1, 1, 0, 0, 0), t, 5), 2);
    json_decref(leap);
    json_t *bad = json_string("0 25 * * *");
    assert_int_equal(schedule_next_times(bad, 0, t, 5), -EINVAL);
    assert_int_equal(schedule_next(bad, 0), -1);
    json_decref(bad);
    json_t *allow = js("{\"cron\": \"@daily\", \"overlap\": \"allow\"}");
    assert_false(schedule_item_overlap_skip(allow));
    json_decref(allow);
}

static void test_missed_run_rule(void **state)
{
    (void)state;
    json_t *daily = js("{\"cron\": \"0 9 * * *\", \"timezone\": \"Europe/Helsinki\"}");
    int64_t created = at(2026, 5, 1, 8, 0, 0, 3);
    int64_t fired = at(2026, 5, 1, 9, 0, 0, 3);
    /* Down from 09:30 to 10:00 the same day: nothing was due. */
    assert_false(schedule_missed(daily, fired, created, fired + 3600));
    /* Down over the next 09:00: missed (once, however many). */
    assert_true(schedule_missed(daily, fired, created, at(2026, 5, 2, 9, 0, 1, 3)));
    assert_true(schedule_missed(daily, fired, created, at(2026, 5, 9, 12, 0, 0, 3)));
    /* Exactly at the fire time: due now, so the caller fires at start. */
    assert_true(schedule_missed(daily, fired, created, at(2026, 5, 2, 9, 0, 0, 3)));
    assert_false(schedule_missed(daily, fired, created, at(2026, 5, 2, 8, 59, 59, 3)));
    /* Never fired: counted from its creation. */
    assert_false(schedule_missed(daily, 0, created, created + 1800));
    assert_true(schedule_missed(daily, 0, created, created + 7200));
    /* Neither time known, a clock behind the last firing, a bad item. */
    assert_false(schedule_missed(daily, 0, 0, fired));
    assert_false(schedule_missed(daily, fired, created, fired - 10));
    json_t *bad = json_string("nope");
    assert_false(schedule_missed(bad, fired, created, fired + 86400 * 3));
    json_decref(bad);
    json_decref(daily);

    json_t *every = json_string("@every 5m");
    assert_false(schedule_missed(every, 600, 0, 899));
    assert_true(schedule_missed(every, 600, 0, 900));
    json_decref(every);
}

static void test_event_shape(void **state)
{
    (void)state;
    int64_t fire = at(2026, 3, 29, 4, 0, 0, 3);
    json_t *item = json_string("@daily");
    json_t *ev = schedule_event("report", 2, item, fire, "inv-1");
    json_t *want = js("{\"version\": \"0\", \"id\": \"inv-1\", \"detail-type\": \"Scheduled "
                      "Event\", \"source\": \"hearth.schedule\", \"account\": \"\", \"time\": "
                      "\"2026-03-29T01:00:00Z\", \"region\": \"local\", \"resources\": "
                      "[\"hearth:schedule:report/2\"], \"detail\": {}}");
    assert_true(json_equal(ev, want));
    json_decref(ev);
    json_decref(item);

    /* The item's event adds keys and replaces defaults, but not the keys
     * of the firing (validation refuses those; this is the second guard). */
    item = js("{\"cron\": \"@daily\", \"event\": {\"detail\": {\"kind\": \"nightly\"}, "
              "\"region\": \"eu-north\", \"extra\": [1, 2], \"id\": \"forged\", \"time\": 0}}");
    ev = schedule_event("report", 0, item, fire, "inv-2");
    json_object_set_new(want, "id", json_string("inv-2"));
    json_object_set_new(want, "resources", json_pack("[s]", "hearth:schedule:report/0"));
    json_object_set_new(want, "detail", json_pack("{s:s}", "kind", "nightly"));
    json_object_set_new(want, "region", json_string("eu-north"));
    json_object_set_new(want, "extra", json_pack("[i,i]", 1, 2));
    assert_true(json_equal(ev, want));
    /* A copy: changing the event leaves the item alone. */
    json_object_set_new(json_object_get(ev, "detail"), "kind", json_string("changed"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(schedule_item_event(item), "detail"), "kind")),
                        "nightly");
    json_decref(ev);
    json_decref(want);
    json_decref(item);
}

static int teardown_cache(void **state)
{
    (void)state;
    cron_tz_cache_clear();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_syntax_parses),
        cmocka_unit_test(test_every_error_names_field_and_value),
        cmocka_unit_test(test_error_quotes_little_and_long_input_is_refused),
        cmocka_unit_test(test_tz_names),
        cmocka_unit_test(test_next_in_utc),
        cmocka_unit_test(test_every_is_anchored_at_the_epoch),
        cmocka_unit_test(test_horizon_and_bad_arguments),
        cmocka_unit_test(test_helsinki_spring_forward_and_fall_back),
        cmocka_unit_test(test_new_york_0230_daily_and_wildcards),
        cmocka_unit_test(test_sydney_southern_hemisphere),
        cmocka_unit_test(test_lord_howe_half_hour_shift_and_kolkata),
        cmocka_unit_test(test_far_future_uses_the_footer_rule),
        cmocka_unit_test(test_rfc3339_with_the_zone_offset),
        cmocka_unit_test(test_schedules_validate),
        cmocka_unit_test(test_next_times_and_their_format),
        cmocka_unit_test(test_missed_run_rule),
        cmocka_unit_test(test_event_shape),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_cache);
}
