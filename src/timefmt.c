/*
 * timefmt.c — wall-clock milliseconds (and a steady variant for durations), RFC 3339
 * formatting/parsing, always in UTC, without touching the process's TZ or locale.
 */
#include "timefmt.h"

#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decimal.h"

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t steady_offset_ms; /* wall minus monotonic at the first call */
static pthread_once_t steady_once = PTHREAD_ONCE_INIT;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void steady_anchor(void)
{
    steady_offset_ms = timefmt_now_ms() - mono_ms();
}

int64_t timefmt_steady_ms(void)
{
    pthread_once(&steady_once, steady_anchor);
    return mono_ms() + steady_offset_ms;
}

int timefmt_iso_ms(int64_t ms, char out[TIMEFMT_ISO_LEN])
{
    /* Floor division: times before 1970 keep a positive millisecond part. */
    int64_t rem = ms % 1000;
    if (rem < 0)
        rem += 1000;
    time_t secs = (time_t)((ms - rem) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return snprintf(out, TIMEFMT_ISO_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

/* Parses the fraction and zone after "YYYY-MM-DDTHH:MM:SS". */
static int parse_tail(const char *p, int64_t *frac_ms, int64_t *offset_s)
{
    *frac_ms = 0;
    if (*p == '.') {
        p++;
        int64_t scale = 100;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        for (; isdigit((unsigned char)*p); p++, scale /= 10)
            *frac_ms += (*p - '0') * scale;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *offset_s = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return -EINVAL;
    int sign = *p == '-' ? -1 : 1, hh, mm;
    p++;
    if (parse_digits(&p, 2, &hh) || expect(&p, ':') || parse_digits(&p, 2, &mm) || *p)
        return -EINVAL;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return 0;
}

bool timefmt_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int timefmt_month_days(int64_t y, int m)
{
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && timefmt_leap_year(y) ? 29 : days[m];
}

static int parse_rfc3339(const char *p, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, s;
    if (parse_digits(&p, 4, &y) || expect(&p, '-') || parse_digits(&p, 2, &mo) || expect(&p, '-') ||
        parse_digits(&p, 2, &d))
        return -EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || expect(&p, ':') || parse_digits(&p, 2, &mi) || expect(&p, ':') ||
        parse_digits(&p, 2, &s))
        return -EINVAL;
    /* timegm would roll 2026-02-30 into March: refuse it instead */
    if (mo < 1 || mo > 12 || d < 1 || d > timefmt_month_days(y, mo) || h > 23 || mi > 59 || s > 60)
        return -EINVAL;
    int64_t frac, offset;
    if (parse_tail(p, &frac, &offset))
        return -EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *ms = ((int64_t)timegm(&tm) - offset) * 1000 + frac;
    return 0;
}

int timefmt_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -EINVAL;
    if (strchr(s, '-') == NULL) {
        uint64_t v;
        if (!decimal_parse(s, INT64_MAX, &v))
            return -EINVAL;
        *ms = (int64_t)v;
        return 0;
    }
    return parse_rfc3339(s, ms);
}
