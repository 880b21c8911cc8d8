/*
 * cron.c — the schedule expression language and fire-time arithmetic in
 * IANA time zones.
 *
 * Owns: cron_expr (bit sets of the allowed seconds, minutes, hours, days,
 * months and weekdays, or an @every interval) and the zone cache (TZif files
 * read once, kept until cron_tz_cache_clear). Must never: read a clock, touch
 * the process's TZ or call tzset()/localtime() (another thread may be using
 * them, and a zone per call would mean a tzset per call), trust a byte of a
 * zoneinfo file before bounds-checking it, or echo a byte of an expression
 * that is not printable ASCII.
 *
 * Time zones: RFC 8536 TZif files, version 2+ data (64-bit times) when
 * present, and the footer's POSIX TZ rule for instants past the last
 * transition. Zones with leap seconds ("right/...") are refused.
 *
 * Daylight saving (the rule of issue 11; docs/events.md states it for users):
 * cron fields are wall-clock times in the zone. Real time is cut into spans
 * of constant UTC offset; each span maps its instants one to one onto wall
 * times, and the spans are walked in order:
 * - A schedule whose hour field is "*" or "*" with a step, or lists every
 *   hour ("hour-wildcard"), fires at every real instant whose wall time
 *   matches: twice in an hour that is repeated, never in one that is skipped.
 * - Any other schedule ("fixed-hour") fires once per matching wall time: at
 *   its first occurrence when the wall time happens twice (a span's wall
 *   times below the highest wall time already passed are not matched again),
 *   and at the end of the gap (the first instant after it) when the wall
 *   time is skipped; several skipped wall times fire once there together.
 */
#include "events/cron.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timefmt.h"

#define DAY_S       86400LL
#define QUOTE_MAX   16 /* bytes of a bad value an error message quotes */
#define TZ_NAME_MAX 64
#define TZIF_MAX    (256 * 1024) /* the largest zoneinfo file read (real: < 4 KiB) */
#define OFFSET_MAX  (26 * 3600)  /* the largest |UTC offset| a zone may have */
/* Instants cron_next accepts: years 1900 to 9000, far from any overflow. */
#define T_MIN (-2208988800LL)
#define T_MAX (221845392000LL)

struct cron_expr {
    int64_t every_s; /* > 0: "@every"; the fields below are unused */
    uint64_t sec, min;
    uint32_t hour, dom; /* dom: bits 1..31 */
    uint16_t mon;       /* bits 1..12 */
    uint8_t dow;        /* bits 0..6, Sunday = 0 */
    bool dom_all, dow_all, hour_wild;
};

/* ---- civil calendar (proleptic Gregorian; H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int weekday(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    return (int)((days % 7 + 11) % 7);
}

/* ---- errors ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A bad value as an error message shows it: at most QUOTE_MAX bytes (the
 * text was checked to be printable ASCII before any field was read). */
static const char *quote(char out[QUOTE_MAX + 4], const char *s, size_t n)
{
    if (n > QUOTE_MAX) {
        memcpy(out, s, QUOTE_MAX);
        memcpy(out + QUOTE_MAX, "...", 4);
    } else {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* ---- parsing ---- */

typedef struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* 3-letter names for lo.., or NULL */
} field_def;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };
static const field_def fields[F_COUNT] = {
    [F_SEC] = {"second", 0, 59, NULL},       [F_MIN] = {"minute", 0, 59, NULL},
    [F_HOUR] = {"hour", 0, 23, NULL},        [F_DOM] = {"day-of-month", 1, 31, NULL},
    [F_MON] = {"month", 1, 12, month_names}, [F_DOW] = {"day-of-week", 0, 7, dow_names},
};

/* Reads a number (at most 4 digits) or, where the field has them, a name at
 * *p; advances *p. Returns 0, or -1 with a message. */
static int parse_value(const field_def *f, const char **p, const char *end, int *out, char *err,
                       size_t errlen)
{
    const char *s = *p;
    char q[QUOTE_MAX + 4];
    if (s < end && isdigit((unsigned char)*s)) {
        int v = 0, n = 0;
        while (s < end && isdigit((unsigned char)*s)) {
            if (++n > 4) {
                set_err(err, errlen, "field '%s': %s is out of range %d-%d", f->name,
                        quote(q, *p, (size_t)(end - *p)), f->lo, f->hi);
                return -1;
            }
            v = v * 10 + (*s++ - '0');
        }
        if (v < f->lo || v > f->hi) {
            set_err(err, errlen, "field '%s': %d is out of range %d-%d", f->name, v, f->lo, f->hi);
            return -1;
        }
        *p = s;
        *out = v;
        return 0;
    }
    size_t n = 0;
    while (s + n < end && isalpha((unsigned char)s[n]))
        n++;
    if (f->names && n == 3) {
        for (int i = 0; f->names[i]; i++) {
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *p = s + 3;
                *out = f->lo + i;
                return 0;
            }
        }
    }
    size_t bad = n ? n : 1;
    set_err(err, errlen, "field '%s': '%s' is not a %s", f->name, quote(q, s, bad),
            f->names ? "number or name" : "number");
    return -1;
}

/* Parses one field (items separated by ','; each "*", "v", "a-b", with an
 * optional "/step") into *bits. *star_step is set when the field is "*" or
 * "*" with a step. Returns 0, or -1 with a message. */
static int parse_field(const field_def *f, const char *s, size_t len, uint64_t *bits,
                       bool *star_step, char *err, size_t errlen)
{
    const char *end = s + len;
    char q[QUOTE_MAX + 4];
    *bits = 0;
    *star_step = len >= 1 && s[0] == '*' && (len == 1 || s[1] == '/');
    while (s < end) {
        const char *item = s;
        int a, b, step = 1;
        bool star = false;
        if (*s == '*') {
            star = true;
            a = f->lo;
            b = f->hi;
            s++;
        } else {
            if (parse_value(f, &s, end, &a, err, errlen) < 0)
                return -1;
            b = a;
            if (s < end && *s == '-') {
                s++;
                if (parse_value(f, &s, end, &b, err, errlen) < 0)
                    return -1;
                /* "FRI-SUN": Sunday as 7 ends a weekday range. */
                if (f == &fields[F_DOW] && b == 0 && a > 0)
                    b = 7;
                if (b < a) {
                    set_err(err, errlen, "field '%s': range %d-%d goes backwards", f->name, a, b);
                    return -1;
                }
            }
        }
        if (s < end && *s == '/') {
            s++;
            const char *st = s;
            step = 0;
            while (s < end && isdigit((unsigned char)*s) && s - st < 4)
                step = step * 10 + (*s++ - '0');
            if (s == st || (s < end && *s != ',') || step < 1 || step > f->hi) {
                const char *e2 = st;
                while (e2 < end && *e2 != ',')
                    e2++;
                set_err(err, errlen, "field '%s': step '%s' is not a number from 1 to %d", f->name,
                        quote(q, st, (size_t)(e2 - st)), f->hi);
                return -1;
            }
            /* "5/15" means 5-max/15, as in cronie and croniter. */
            if (!star && b == a)
                b = f->hi;
        }
        if (s < end && *s != ',') {
            const char *e2 = item;
            while (e2 < end && *e2 != ',')
                e2++;
            set_err(err, errlen, "field '%s': '%s' is not a value, range or step", f->name,
                    quote(q, item, (size_t)(e2 - item)));
            return -1;
        }
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << v;
        if (s < end) { /* the ',' */
            s++;
            if (s == end) {
                set_err(err, errlen, "field '%s': a list ends with ','", f->name);
                return -1;
            }
        }
    }
    return 0;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* "90s", "5m", "1h30m": units h, m, s, each at most once and in that order. */
static int parse_every(const char *s, cron_expr *e, char *err, size_t errlen)
{
    static const struct {
        char unit;
        int64_t secs;
    } units[] = {{'h', 3600}, {'m', 60}, {'s', 1}};
    char q[QUOTE_MAX + 4];
    const char *start = s;
    size_t next_unit = 0;
    int64_t total = 0;
    if (!*s) {
        set_err(err, errlen, "@every needs an interval such as 90s, 5m or 1h30m");
        return -1;
    }
    while (*s) {
        int64_t n = 0;
        const char *d = s;
        while (isdigit((unsigned char)*s) && s - d < 7)
            n = n * 10 + (*s++ - '0');
        size_t u = next_unit;
        while (u < 3 && units[u].unit != tolower((unsigned char)*s))
            u++;
        if (s == d || u == 3) {
            set_err(err, errlen, "@every: '%s' is not an interval such as 90s, 5m or 1h30m",
                    quote(q, start, strlen(start)));
            return -1;
        }
        total += n * units[u].secs;
        next_unit = u + 1;
        s++;
    }
    if (total < 1 || total > CRON_EVERY_MAX_S) {
        set_err(err, errlen, "@every: the interval must be from 1s to %lldh",
                (long long)(CRON_EVERY_MAX_S / 3600));
        return -1;
    }
    e->every_s = total;
    return 0;
}

/* Whether some selected month has some selected day (February: 29 days). */
static bool some_day_exists(const cron_expr *e)
{
    for (int m = 1; m <= 12; m++)
        if ((e->mon >> m) & 1)
            for (int d = 1; d <= timefmt_month_days(2000, m); d++)
                if ((e->dom >> d) & 1)
                    return true;
    return false;
}

static int parse_fields(const char *text, cron_expr *e, char *err, size_t errlen)
{
    const char *start[F_COUNT];
    size_t len[F_COUNT];
    int n = 0;
    for (const char *s = text; *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (n == F_COUNT) {
            n++;
            break;
        }
        start[n] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        len[n] = (size_t)(s - start[n]);
        n++;
    }
    if (n != 5 && n != 6) {
        if (n > F_COUNT)
            set_err(err, errlen, "expected 5 fields (or 6 with seconds first), got more than 6");
        else
            set_err(err, errlen, "expected 5 fields (or 6 with seconds first), got %d", n);
        return -1;
    }
    uint64_t bits[F_COUNT];
    bool star_step[F_COUNT];
    int first = n == 5 ? F_MIN : F_SEC;
    bits[F_SEC] = 1; /* five fields: second 0 */
    star_step[F_SEC] = false;
    for (int i = first; i < F_COUNT; i++) {
        int k = i - first;
        if (parse_field(&fields[i], start[k], len[k], &bits[i], &star_step[i], err, errlen) < 0)
            return -1;
    }
    e->sec = bits[F_SEC];
    e->min = bits[F_MIN];
    e->hour = (uint32_t)bits[F_HOUR];
    e->dom = (uint32_t)bits[F_DOM];
    e->mon = (uint16_t)bits[F_MON];
    e->dow = (uint8_t)((bits[F_DOW] | (bits[F_DOW] >> 7)) & 0x7f); /* 7 is Sunday */
    /* A field "is *" when it allows every value, as croniter reads it (Vixie
     * cron looks at the first character instead: see docs/events.md). */
    e->dom_all = e->dom == 0xfffffffeu;
    e->dow_all = e->dow == 0x7f;
    e->hour_wild = star_step[F_HOUR] || e->hour == 0xffffffu;
    if (e->dow_all && !some_day_exists(e)) {
        set_err(err, errlen, "field 'day-of-month': no selected month has that day");
        return -1;
    }
    return 0;
}

cron_expr *cron_parse(const char *text, char *err, size_t errlen)
{
    if (!text) {
        set_err(err, errlen, "no expression");
        return NULL;
    }
    size_t len = strnlen(text, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX) {
        set_err(err, errlen, "the expression is longer than %d characters", CRON_EXPR_MAX);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            set_err(err, errlen, "the expression may contain only printable ASCII");
            return NULL;
        }
    }
    char buf[CRON_EXPR_MAX + 1];
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (n == 0) {
        set_err(err, errlen, "the expression is empty");
        return NULL;
    }
    cron_expr *e = calloc(1, sizeof *e);
    if (!e) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    int rc;
    if (buf[0] == '@') {
        const char *word_end = buf + strcspn(buf, " \t");
        size_t wl = (size_t)(word_end - buf);
        const char *expr = NULL;
        for (size_t i = 0; i < sizeof macros / sizeof *macros; i++)
            if (strlen(macros[i].name) == wl && strncasecmp(buf, macros[i].name, wl) == 0)
                expr = macros[i].expr;
        if (wl == 6 && strncasecmp(buf, "@every", 6) == 0) {
            const char *arg = word_end + strspn(word_end, " \t");
            rc = parse_every(arg, e, err, errlen);
        } else if (expr && *word_end == '\0') {
            rc = parse_fields(expr, e, err, errlen);
        } else {
            char q[QUOTE_MAX + 4];
            set_err(err, errlen,
                    "'%s' is not one of @yearly @annually @monthly @weekly @daily @midnight "
                    "@hourly @every",
                    quote(q, buf, n));
            rc = -1;
        }
    } else {
        rc = parse_fields(buf, e, err, errlen);
    }
    if (rc < 0) {
        free(e);
        return NULL;
    }
    return e;
}

void cron_free(cron_expr *e)
{
    free(e);
}

/* ---- time zones ---- */

typedef struct tz_rule_date {
    char kind; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' (month.week.day) */
    int n, m, w, d;
    int32_t time; /* local seconds after midnight, -167h..167h */
} tz_rule_date;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_rule_date start, end;
} tz_rule;

typedef struct tz_zone {
    char name[TZ_NAME_MAX + 1];
    size_t ntrans, ntypes;
    int64_t *trans; /* ascending */
    uint8_t *idx;   /* type of each transition */
    int32_t *offs;  /* offset of each type */
    bool has_rule;  /* the footer: instants past the last transition */
    tz_rule rule;
    struct tz_zone *next;
} tz_zone;

static tz_zone utc_zone = {.name = "UTC"};
static pthread_mutex_t zone_lock = PTHREAD_MUTEX_INITIALIZER;
static tz_zone *zones; /* the cache: at most one entry per zoneinfo file */

/* A constant offset on [start, end). */
typedef struct tz_span {
    int32_t off;
    int64_t start, end; /* INT64_MIN / INT64_MAX: unbounded */
} tz_span;

/* POSIX TZ footer parsing (RFC 8536 section 3.3.1; POSIX TZ with the
 * extension of transition times from -167 to 167 hours). */
static bool posix_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        s++;
        while (*s && *s != '>')
            s++;
        if (*s != '>' || s - *p < 4)
            return false;
        *p = s + 1;
        return true;
    }
    while (isalpha((unsigned char)*s))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h; returns seconds. */
static bool posix_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0}, np = 0;
    for (; np < 3; np++) {
        if (!isdigit((unsigned char)*s))
            return false;
        int v = 0, nd = 0;
        while (isdigit((unsigned char)*s) && nd < 3) {
            v = v * 10 + (*s++ - '0');
            nd++;
        }
        part[np] = v;
        if (*s != ':')
            break;
        s++;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59)
        return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool posix_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, nd = 0;
    while (isdigit((unsigned char)*s) && nd < 4) {
        v = v * 10 + (*s++ - '0');
        nd++;
    }
    if (nd == 0 || v < lo || v > hi)
        return false;
    *out = v;
    *p = s;
    return true;
}

static bool posix_date(const char **p, tz_rule_date *r)
{
    const char *s = *p;
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!posix_num(&s, 1, 365, &r->n))
            return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!posix_num(&s, 1, 12, &r->m) || *s++ != '.' || !posix_num(&s, 1, 5, &r->w) ||
            *s++ != '.' || !posix_num(&s, 0, 6, &r->d))
            return false;
    } else {
        r->kind = 'D';
        if (!posix_num(&s, 0, 365, &r->n))
            return false;
    }
    r->time = 7200;
    if (*s == '/') {
        s++;
        if (!posix_hms(&s, 167, &r->time))
            return false;
    }
    *p = s;
    return true;
}

static bool posix_rule_parse(const char *s, tz_rule *r)
{
    int32_t off;
    memset(r, 0, sizeof *r);
    if (!posix_name(&s) || !posix_hms(&s, 24, &off))
        return false;
    r->std_off = -off;
    if (!*s)
        return true;
    if (!posix_name(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!posix_hms(&s, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (!*s) { /* no rule given: POSIX leaves it open; use the US one */
        r->start = (tz_rule_date){'M', 0, 3, 2, 0, 7200};
        r->end = (tz_rule_date){'M', 0, 11, 1, 0, 7200};
        return true;
    }
    if (*s++ != ',' || !posix_date(&s, &r->start) || *s++ != ',' || !posix_date(&s, &r->end))
        return false;
    return *s == '\0';
}

/* The local time (seconds since the epoch, as if UTC) a rule date means in
 * year y. */
static int64_t rule_local(const tz_rule_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1), day;
    if (r->kind == 'J')
        day = jan1 + r->n - 1 + (timefmt_leap_year(y) && r->n >= 60);
    else if (r->kind == 'D')
        day = jan1 + r->n;
    else {
        int64_t first = days_from_civil(y, r->m, 1);
        day = first + (r->d - weekday(first) + 7) % 7 + (r->w - 1) * 7;
        while (day >= first + timefmt_month_days(y, r->m))
            day -= 7;
    }
    return day * DAY_S + r->time;
}

/* The span of a footer rule around instant t. */
static void rule_span(const tz_rule *r, int64_t t, tz_span *sp)
{
    if (!r->has_dst) {
        *sp = (tz_span){r->std_off, INT64_MIN, INT64_MAX};
        return;
    }
    int64_t y0, yy;
    int m, d;
    civil_from_days(floor_div(t, DAY_S), &y0, &m, &d);
    /* Transitions of years y0-1..y0+1 in time order, each with the offset
     * it starts; a later year wins a tie (permanent DST: "J365/25"). */
    int64_t when[6];
    int32_t off[6];
    int n = 0;
    for (yy = y0 - 1; yy <= y0 + 1; yy++) {
        int64_t a = rule_local(&r->start, yy) - r->std_off;
        int64_t b = rule_local(&r->end, yy) - r->dst_off;
        int64_t first = a <= b ? a : b, second = a <= b ? b : a;
        when[n] = first;
        off[n++] = a <= b ? r->dst_off : r->std_off;
        when[n] = second;
        off[n++] = a <= b ? r->std_off : r->dst_off;
    }
    for (int i = 1; i < n; i++) /* insertion sort, stable */
        for (int j = i; j > 0 && when[j - 1] > when[j]; j--) {
            int64_t tw = when[j];
            when[j] = when[j - 1];
            when[j - 1] = tw;
            int32_t to = off[j];
            off[j] = off[j - 1];
            off[j - 1] = to;
        }
    int last = -1;
    for (int i = 0; i < n; i++)
        if (when[i] <= t)
            last = i;
    /* Before the first of these (never, as t is within year y0): standard. */
    sp->off = last >= 0 ? off[last] : (off[0] == r->dst_off ? r->std_off : r->dst_off);
    sp->start = last >= 0 ? when[last] : INT64_MIN;
    sp->end = last + 1 < n ? when[last + 1] : INT64_MAX;
}

static void zone_span(const tz_zone *z, int64_t t, tz_span *sp)
{
    if (z->ntrans == 0 || t < z->trans[0]) {
        if (z->ntrans == 0 && z->has_rule) {
            rule_span(&z->rule, t, sp);
            return;
        }
        sp->off = z->ntypes ? z->offs[0] : 0;
        sp->start = INT64_MIN;
        sp->end = z->ntrans ? z->trans[0] : INT64_MAX;
        return;
    }
    size_t lo = 0, hi = z->ntrans; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (hi < z->ntrans || !z->has_rule) {
        sp->off = z->offs[z->idx[lo]];
        sp->start = z->trans[lo];
        sp->end = hi < z->ntrans ? z->trans[hi] : INT64_MAX;
        return;
    }
    rule_span(&z->rule, t, sp);
    if (sp->start < z->trans[lo])
        sp->start = z->trans[lo];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void zone_free(tz_zone *z)
{
    if (z && z != &utc_zone) {
        free(z->trans);
        free(z->idx);
        free(z->offs);
        free(z);
    }
}

/* Parses a TZif file (RFC 8536) of `len` bytes. Returns a new zone, or NULL
 * when any count, index, offset or the footer is out of bounds. */
static tz_zone *tzif_parse(const unsigned char *buf, size_t len)
{
    const size_t hdr = 44;
    if (len < hdr || memcmp(buf, "TZif", 4) != 0)
        return NULL;
    bool v2 = buf[4] >= '2';
    const unsigned char *p = buf;
    size_t tsize = 4;
    for (int pass = 0; pass < (v2 ? 2 : 1); pass++) {
        if ((size_t)(p - buf) + hdr > len || memcmp(p, "TZif", 4) != 0)
            return NULL;
        uint32_t isut = be32(p + 20), isstd = be32(p + 24), leap = be32(p + 28);
        uint32_t timecnt = be32(p + 32), typecnt = be32(p + 36), charcnt = be32(p + 40);
        if (timecnt > 65536 || typecnt == 0 || typecnt > 256 || charcnt == 0 || charcnt > 65536 ||
            leap > 65536 || (isut != 0 && isut != typecnt) || (isstd != 0 && isstd != typecnt))
            return NULL;
        size_t body =
            timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (body > len - (size_t)(p - buf) - hdr)
            return NULL;
        if (v2 && pass == 0) {
            p += hdr + body;
            tsize = 8;
            continue;
        }
        if (leap != 0) /* "right/" zones count leap seconds; unix time does not */
            return NULL;
        tz_zone *z = calloc(1, sizeof *z);
        if (!z)
            return NULL;
        z->ntrans = timecnt;
        z->ntypes = typecnt;
        z->trans = calloc(timecnt ? timecnt : 1, sizeof *z->trans);
        z->idx = calloc(timecnt ? timecnt : 1, 1);
        z->offs = calloc(typecnt, sizeof *z->offs);
        if (!z->trans || !z->idx || !z->offs)
            goto fail;
        const unsigned char *q = p + hdr;
        for (size_t i = 0; i < timecnt; i++, q += tsize) {
            int64_t t = tsize == 8 ? (int64_t)((uint64_t)be32(q) << 32 | be32(q + 4))
                                   : (int64_t)(int32_t)be32(q);
            if (i > 0 && t <= z->trans[i - 1])
                goto fail;
            z->trans[i] = t;
        }
        for (size_t i = 0; i < timecnt; i++, q++) {
            if (*q >= typecnt)
                goto fail;
            z->idx[i] = *q;
        }
        for (size_t i = 0; i < typecnt; i++, q += 6) {
            int32_t off = (int32_t)be32(q);
            if (off < -OFFSET_MAX || off > OFFSET_MAX || q[4] > 1 || q[5] >= charcnt)
                goto fail;
            z->offs[i] = off;
        }
        if (v2) {
            const unsigned char *f = p + hdr + body, *end = buf + len;
            if (f >= end || *f != '\n')
                goto fail;
            const unsigned char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
            if (!nl || nl - f - 1 > 255)
                goto fail;
            char footer[256];
            memcpy(footer, f + 1, (size_t)(nl - f - 1));
            footer[nl - f - 1] = '\0';
            if (footer[0]) {
                if (!posix_rule_parse(footer, &z->rule))
                    goto fail;
                z->has_rule = true;
                if (z->rule.std_off < -OFFSET_MAX || z->rule.std_off > OFFSET_MAX ||
                    z->rule.dst_off < -OFFSET_MAX || z->rule.dst_off > OFFSET_MAX)
                    goto fail;
            }
        }
        return z;
    fail:
        zone_free(z);
        return NULL;
    }
    return NULL;
}

static bool tz_name_ok(const char *tz)
{
    size_t n = strnlen(tz, TZ_NAME_MAX + 1);
    if (n == 0 || n > TZ_NAME_MAX || tz[0] == '/' || tz[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tz[i];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '+' || c == '-' || c == '/'))
            return false;
        if (c == '/' && tz[i + 1] == '/')
            return false;
    }
    return true; /* no '.' at all: no "..", no hidden files, no "zone.tab" */
}

/* Reads and parses CRON_ZONEINFO_DIR/name, refusing anything that resolves
 * outside that folder, and "localtime" (Debian's link to /etc/localtime: the
 * host's zone, whatever that is, is not an IANA name). */
static tz_zone *zone_load(const char *name)
{
    if (strcmp(name, "localtime") == 0)
        return NULL;
    char path[sizeof CRON_ZONEINFO_DIR + TZ_NAME_MAX + 2], real[PATH_MAX], dir[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", CRON_ZONEINFO_DIR, name);
    if (!realpath(CRON_ZONEINFO_DIR, dir) || !realpath(path, real))
        return NULL;
    size_t dl = strlen(dir);
    if (strncmp(real, dir, dl) != 0 || real[dl] != '/')
        return NULL;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    tz_zone *z = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 44 && st.st_size <= TZIF_MAX &&
        (buf = malloc((size_t)st.st_size))) {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t r = read(fd, buf + got, want - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got == want)
            z = tzif_parse(buf, want);
    }
    free(buf);
    close(fd);
    if (z)
        snprintf(z->name, sizeof z->name, "%s", name);
    return z;
}

/* The zone named tz (NULL, "" and "UTC": UTC), from the cache or loaded
 * into it; NULL when unusable. The zone lives until cron_tz_cache_clear. */
static const tz_zone *zone_get(const char *tz)
{
    if (!tz || !*tz || strcmp(tz, "UTC") == 0)
        return &utc_zone;
    if (!tz_name_ok(tz))
        return NULL;
    pthread_mutex_lock(&zone_lock);
    tz_zone *z;
    for (z = zones; z; z = z->next)
        if (strcmp(z->name, tz) == 0)
            break;
    if (!z && (z = zone_load(tz))) {
        z->next = zones;
        zones = z;
    }
    pthread_mutex_unlock(&zone_lock);
    return z;
}

void cron_tz_cache_clear(void)
{
    pthread_mutex_lock(&zone_lock);
    while (zones) {
        tz_zone *n = zones->next;
        zone_free(zones);
        zones = n;
    }
    pthread_mutex_unlock(&zone_lock);
}

int cron_tz_check(const char *tz, char *err, size_t errlen)
{
    if (tz && *tz && !tz_name_ok(tz)) {
        set_err(err, errlen,
                "a time zone is an IANA name such as Europe/Helsinki: up to %d of "
                "A-Z a-z 0-9 _ + - /",
                TZ_NAME_MAX);
        return -EINVAL;
    }
    errno = 0;
    if (!zone_get(tz)) {
        if (errno == ENOMEM) { /* zone_load could not allocate: not the name's fault */
            set_err(err, errlen, "out of memory");
            return -ENOMEM;
        }
        set_err(err, errlen, "unknown time zone '%s'", tz);
        return -EINVAL;
    }
    return 0;
}

int cron_utc_offset(const char *tz, int64_t t, int32_t *off)
{
    const tz_zone *z = zone_get(tz);
    if (!z)
        return -EINVAL;
    tz_span sp;
    zone_span(z, t, &sp);
    *off = sp.off;
    return 0;
}

int cron_format_rfc3339(const char *tz, int64_t t, char out[CRON_TIME_LEN])
{
    int32_t off = 0;
    out[0] = '\0';
    if (tz && cron_utc_offset(tz, t, &off) < 0)
        return -EINVAL;
    off -= off % 60; /* RFC 3339 offsets are whole minutes; t stays exact */
    int64_t local = t + off, y;
    int64_t days = floor_div(local, DAY_S), sod = local - days * DAY_S;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return -EINVAL;
    int n = snprintf(out, CRON_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    if (!tz)
        return n + snprintf(out + n, CRON_TIME_LEN - (size_t)n, "Z");
    int a = off < 0 ? -off : off;
    return n + snprintf(out + n, CRON_TIME_LEN - (size_t)n, "%c%02d:%02d", off < 0 ? '-' : '+',
                        a / 3600, a / 60 % 60);
}

/* ---- fire times ---- */

static int next_bit(uint64_t bits, int from, int hi)
{
    for (int v = from; v <= hi; v++)
        if ((bits >> v) & 1)
            return v;
    return -1;
}

static bool day_matches(const cron_expr *e, int64_t days, int d)
{
    bool dom = (e->dom >> d) & 1, dow = (e->dow >> weekday(days)) & 1;
    if (e->dom_all || e->dow_all)
        return dom && dow;
    return dom || dow; /* both restricted: either one (Vixie cron) */
}

/* The first wall time (local seconds since the epoch, as if UTC) at or
 * after `from` that the fields match, or INT64_MAX when none is <= limit. */
static int64_t next_wall(const cron_expr *e, int64_t from, int64_t limit)
{
    int64_t days = floor_div(from, DAY_S), sod = from - days * DAY_S;
    int h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
    for (;;) {
        if (s > 59) {
            s = 0;
            mi++;
        }
        if (mi > 59) {
            mi = 0;
            h++;
        }
        if (h > 23) {
            h = 0;
            days++;
        }
        if (days * DAY_S > limit)
            return INT64_MAX;
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        if (!((e->mon >> m) & 1)) {
            days = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
            h = mi = s = 0;
            continue;
        }
        if (!day_matches(e, days, d)) {
            days++;
            h = mi = s = 0;
            continue;
        }
        int nh = next_bit(e->hour, h, 23);
        if (nh < 0) {
            h = 24;
            mi = s = 0;
            continue;
        }
        if (nh != h) {
            h = nh;
            mi = s = 0;
        }
        int nm = next_bit(e->min, mi, 59);
        if (nm < 0) {
            mi = 60;
            s = 0;
            continue;
        }
        if (nm != mi) {
            mi = nm;
            s = 0;
        }
        int ns = next_bit(e->sec, s, 59);
        if (ns < 0) {
            s = 60;
            continue;
        }
        int64_t w = days * DAY_S + h * 3600 + mi * 60 + ns;
        return w <= limit ? w : INT64_MAX;
    }
}

int64_t cron_next(const cron_expr *e, const char *tz, int64_t after_s)
{
    if (!e || after_s < T_MIN || after_s > T_MAX)
        return -1;
    if (e->every_s > 0) {
        int64_t t = (floor_div(after_s, e->every_s) + 1) * e->every_s;
        return t - after_s <= CRON_HORIZON_S ? t : -1;
    }
    const tz_zone *z = zone_get(tz);
    if (!z)
        return -1;
    int64_t limit = after_s + CRON_HORIZON_S;
    tz_span sp;
    zone_span(z, after_s, &sp);
    /* hw: the highest wall time already passed before this span's start. */
    int64_t hw = INT64_MIN, from = after_s + sp.off + 1;
    if (sp.start != INT64_MIN) {
        tz_span prev;
        zone_span(z, sp.start - 1, &prev);
        hw = sp.start + prev.off;
    }
    for (;;) {
        int64_t lo = from;
        if (!e->hour_wild && hw > lo)
            lo = hw; /* a repeated wall time fires at its first occurrence only */
        int64_t end_wall =
            sp.end == INT64_MAX || sp.end > limit ? limit + sp.off + 1 : sp.end + sp.off;
        int64_t w = next_wall(e, lo, end_wall - 1);
        if (w != INT64_MAX)
            return w - sp.off <= limit ? w - sp.off : -1;
        if (sp.end == INT64_MAX || sp.end > limit)
            return -1;
        int64_t T = sp.end;
        int32_t before = sp.off;
        if (sp.end + sp.off > hw)
            hw = sp.end + sp.off;
        zone_span(z, T, &sp);
        if (sp.off > before && !e->hour_wild) {
            /* Wall times [T+before, T+off) are skipped: they fire at T. */
            int64_t glo = T + before > hw ? T + before : hw;
            if (glo < T + sp.off && next_wall(e, glo, T + sp.off - 1) != INT64_MAX)
                return T;
        }
        from = T + sp.off;
    }
}
