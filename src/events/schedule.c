/*
 * schedule.c — a function's "schedules" setting: its validation, its fire
 * times, the missed-run rule and the event of a firing.
 *
 * Owns: nothing but the JSON it returns. Must never: read a clock (every
 * time is the caller's), keep a pointer to an item past a call, store or
 * queue anything (the event core fires; this file only decides), or know
 * about HTTP (the API renders the messages written here as 400s).
 */
#include "events/schedule.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/cron.h"
#include "qualifier.h"
#include "validate.h"

#define COUNT(a)  (sizeof(a) / sizeof((a)[0]))
#define QUOTE_MAX 32 /* how much of a bad key or value a message quotes */

static const char *const item_keys[] = {"cron", "timezone", "event", "overlap", "qualifier"};

/* The keys of an event that belong to the firing, not to the schedule. */
static const char *const fixed_event_keys[] = {"id", "time", "source", "detail-type", "resources"};

static bool is_fixed_event_key(const char *key)
{
    for (size_t i = 0; i < COUNT(fixed_event_keys); i++)
        if (strcmp(key, fixed_event_keys[i]) == 0)
            return true;
    return false;
}

static int fail(char *err, size_t errlen, size_t index, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "schedules[%zu]: ", index);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

/* A key someone else chose, fit for a message: printable ASCII, cut short,
 * anything else as '?' (JSON keys may hold any character). */
static const char *quote_key(char out[QUOTE_MAX + 4], const char *key)
{
    size_t i = 0;
    for (; key[i] && i < QUOTE_MAX; i++)
        out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
    memcpy(out + i, key[i] ? "..." : "", key[i] ? 4 : 1);
    return out;
}

const char *schedule_item_cron(const json_t *item)
{
    if (json_is_string(item))
        return json_string_value(item);
    return json_string_value(json_object_get(item, "cron"));
}

const char *schedule_item_timezone(const json_t *item)
{
    const char *tz = json_string_value(json_object_get(item, "timezone"));
    return tz ? tz : SCHEDULE_DEFAULT_ZONE;
}

const json_t *schedule_item_event(const json_t *item)
{
    const json_t *ev = json_object_get(item, "event");
    return json_is_object(ev) ? ev : NULL;
}

const char *schedule_item_qualifier(const json_t *item)
{
    const char *q = json_string_value(json_object_get(item, "qualifier"));
    return q ? q : "";
}

bool schedule_item_overlap_skip(const json_t *item)
{
    const char *o = json_string_value(json_object_get(item, "overlap"));
    return !(o && strcmp(o, "allow") == 0);
}

int schedule_item_validate(const json_t *item, size_t index, char *err, size_t errlen)
{
    char cerr[160], q[QUOTE_MAX + 4];
    if (json_is_string(item)) {
        errno = 0;
        cron_expr *e = cron_parse(json_string_value(item), cerr, sizeof cerr);
        if (!e) /* out of memory is not the client's mistake: never a 400 */
            return errno == ENOMEM ? -ENOMEM : fail(err, errlen, index, "%s", cerr);
        cron_free(e);
        return 0;
    }
    if (!json_is_object(item))
        return fail(err, errlen, index, "must be a string or an object");
    const char *key = validate_unknown_key((json_t *)item, item_keys, COUNT(item_keys), NULL);
    if (key)
        return fail(err, errlen, index,
                    "unknown key '%s' (known: cron, timezone, event, overlap, qualifier)",
                    quote_key(q, key));
    const json_t *cron = json_object_get(item, "cron");
    if (!json_is_string(cron))
        return fail(err, errlen, index, "cron: must be a string");
    errno = 0;
    cron_expr *e = cron_parse(json_string_value(cron), cerr, sizeof cerr);
    if (!e)
        return errno == ENOMEM ? -ENOMEM : fail(err, errlen, index, "cron: %s", cerr);
    cron_free(e);
    const json_t *tz = json_object_get(item, "timezone");
    if (tz && !json_is_string(tz))
        return fail(err, errlen, index, "timezone: must be a string");
    int rc = tz ? cron_tz_check(json_string_value(tz), cerr, sizeof cerr) : 0;
    if (rc < 0)
        return rc == -ENOMEM ? rc : fail(err, errlen, index, "timezone: %s", cerr);
    const json_t *ov = json_object_get(item, "overlap");
    if (ov && !(json_is_string(ov) && (strcmp(json_string_value(ov), "skip") == 0 ||
                                       strcmp(json_string_value(ov), "allow") == 0)))
        return fail(err, errlen, index, "overlap: must be \"skip\" or \"allow\"");
    const json_t *qv = json_object_get(item, "qualifier");
    char fname[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1], ref[FN_QUALIFIED_MAX + 2];
    if (qv && (!json_is_string(qv) || json_string_length(qv) == 0 ||
               json_string_length(qv) > FN_ALIAS_MAX ||
               snprintf(ref, sizeof ref, "f:%s", json_string_value(qv)) < 0 ||
               qualifier_split(ref, fname, qual) < 0 || strcmp(qual, json_string_value(qv)) != 0))
        return fail(err, errlen, index,
                    "qualifier: must be a version number, an alias name or $LATEST");
    const json_t *ev = json_object_get(item, "event");
    if (ev) {
        if (!json_is_object(ev))
            return fail(err, errlen, index, "event: must be an object");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)ev, k, v)
        {
            if (is_fixed_event_key(k))
                return fail(err, errlen, index,
                            "event: '%s' is set by Hearth for each firing and cannot be given", k);
        }
        /* JSON_COMPACT: the size the event has on the queue. */
        char *text = json_dumps(ev, JSON_COMPACT);
        size_t len = text ? strlen(text) : SIZE_MAX;
        free(text);
        if (len > SCHEDULE_EVENT_MAX)
            return fail(err, errlen, index, "event: larger than %d bytes", SCHEDULE_EVENT_MAX);
    }
    return 0;
}

int schedules_validate(const json_t *v, char *err, size_t errlen)
{
    if (!json_is_array(v)) {
        if (err && errlen)
            snprintf(err, errlen, "schedules: must be an array");
        return -EINVAL;
    }
    if (json_array_size(v) > SCHEDULES_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "schedules: at most %d items", SCHEDULES_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        int rc = schedule_item_validate(json_array_get(v, i), i, err, errlen);
        if (rc < 0)
            return rc == -ENOMEM ? rc : -EINVAL;
    }
    return 0;
}

int schedule_next_times(const json_t *item, int64_t after_s, int64_t *out, size_t n)
{
    cron_expr *e = cron_parse(schedule_item_cron(item), NULL, 0);
    const char *tz = schedule_item_timezone(item);
    if (!e || cron_tz_check(tz, NULL, 0) < 0) {
        cron_free(e);
        return -EINVAL;
    }
    size_t got = 0;
    int64_t t = after_s;
    while (got < n && (t = cron_next(e, tz, t)) >= 0)
        out[got++] = t;
    cron_free(e);
    return (int)got;
}

int64_t schedule_next(const json_t *item, int64_t after_s)
{
    int64_t t;
    return schedule_next_times(item, after_s, &t, 1) == 1 ? t : -1;
}

int schedule_format_time(const json_t *item, int64_t t, char *out, size_t cap)
{
    char buf[CRON_TIME_LEN];
    int n = cron_format_rfc3339(schedule_item_timezone(item), t, buf);
    if (n < 0 || (size_t)n >= cap)
        return -EINVAL;
    memcpy(out, buf, (size_t)n + 1);
    return n;
}

bool schedule_missed(const json_t *item, int64_t last_s, int64_t created_s, int64_t now_s)
{
    int64_t base = last_s > 0 ? last_s : created_s;
    if (base <= 0 || base >= now_s)
        return false;
    int64_t t = schedule_next(item, base);
    return t > 0 && t <= now_s;
}

json_t *schedule_event(const char *function, size_t index, const json_t *item, int64_t fire_s,
                       const char *id)
{
    char when[CRON_TIME_LEN], res[160];
    if (cron_format_rfc3339(NULL, fire_s, when) < 0)
        when[0] = '\0';
    snprintf(res, sizeof res, "hearth:schedule:%s/%zu", function, index);
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:{}}", "version", "0", "id",
                  id ? id : "", "detail-type", SCHEDULE_DETAIL_TYPE, "source", SCHEDULE_SOURCE,
                  "account", "", "time", when, "region", "local", "resources", res, "detail");
    if (!ev)
        return NULL;
    const json_t *extra = schedule_item_event(item);
    const char *k;
    json_t *v;
    if (extra)
        json_object_foreach((json_t *)extra, k, v)
        {
            /* A copy: the event must not share objects with the item. */
            if (!is_fixed_event_key(k) && json_object_set_new(ev, k, json_deep_copy(v)) < 0) {
                json_decref(ev);
                return NULL;
            }
        }
    return ev;
}
