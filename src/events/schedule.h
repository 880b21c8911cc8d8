/*
 * schedule.h — a function's "schedules" setting as the API declares it, and
 * the pure decisions about it: what fires when, whether a run was missed
 * while the daemon was down, and the event a firing delivers.
 *
 * An item is a string (an expression, see cron.h) or an object
 * {"cron": "...", "timezone": "Europe/Helsinki", "event": {...},
 *  "overlap": "skip" | "allow"}. Items are borrowed, never kept.
 */
#ifndef HEARTH_SCHEDULE_H
#define HEARTH_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define SCHEDULES_MAX         16   /* items one function may declare */
#define SCHEDULE_EVENT_MAX    8192 /* bytes of an item's "event", compact JSON */
#define SCHEDULE_NEXT_SHOWN   5    /* fire times GET .../schedules shows */
#define SCHEDULE_SOURCE       "hearth.schedule"
#define SCHEDULE_DETAIL_TYPE  "Scheduled Event"
#define SCHEDULE_DEFAULT_ZONE "UTC"

/* 0 when `v` is a valid "schedules" setting: an array of at most
 * SCHEDULES_MAX items, each a valid expression or object (no unknown keys,
 * a usable zone, an object "event" of at most SCHEDULE_EVENT_MAX bytes that
 * sets none of the keys Hearth fills in). Otherwise -EINVAL with a sentence
 * in `err` such as "schedules[1]: cron: field 'hour': 25 is out of range
 * 0-23" (err may be NULL). */
int schedules_validate(const json_t *v, char *err, size_t errlen);

/* The same check of one item; `index` only names it in the message. */
int schedule_item_validate(const json_t *item, size_t index, char *err, size_t errlen);

/* An item's parts, borrowed from it: the expression, the zone name
 * (SCHEDULE_DEFAULT_ZONE when absent) and the "event" object (NULL when
 * absent). NULL for an item that is neither a string nor an object. */
const char *schedule_item_cron(const json_t *item);
const char *schedule_item_timezone(const json_t *item);
const json_t *schedule_item_event(const json_t *item);

/* True unless the item says "overlap": "allow": then a firing does not
 * start while the previous one of the same schedule is queued or running. */
bool schedule_item_overlap_skip(const json_t *item);
/* The item's "qualifier" (the version or alias it invokes), "" when none. */
const char *schedule_item_qualifier(const json_t *item);

/* The first fire time of `item` strictly after `after_s`, or -1 (none
 * within CRON_HORIZON_S, or an invalid item). */
int64_t schedule_next(const json_t *item, int64_t after_s);

/* Writes up to n next fire times after `after_s` into out, ascending.
 * Returns how many (fewer than n when the horizon ends first), or -EINVAL
 * for an invalid item. */
int schedule_next_times(const json_t *item, int64_t after_s, int64_t *out, size_t n);

/* Writes fire time t as RFC 3339 with the UTC offset the item's zone has
 * then ("2026-03-29T03:00:00+03:00"). Returns its length or -EINVAL. */
int schedule_format_time(const json_t *item, int64_t t, char *out, size_t cap);

/* The missed-run rule. True when a fire time t with base < t <= now_s
 * exists, base being last_s (the last firing, unix s), or created_s when
 * last_s is 0 (never fired). The caller, starting up, then fires once, now,
 * however many runs were missed, and arms its timer at schedule_next(now).
 * False for an invalid item, or when neither time is set. */
bool schedule_missed(const json_t *item, int64_t last_s, int64_t created_s, int64_t now_s);

/* The event of a firing at fire_s, shaped like an EventBridge "Scheduled
 * Event":
 *   {"version": "0", "id": id, "detail-type": "Scheduled Event",
 *    "source": "hearth.schedule", "account": "", "time": "<UTC, Z>",
 *    "region": "local", "resources": ["hearth:schedule:<function>/<index>"],
 *    "detail": {}}
 * and then every key of the item's "event" added, replacing a default of
 * the same name; the keys Hearth fills in for the firing (id, time, source,
 * detail-type, resources) are never replaced (validation refuses them).
 * Returns a new reference (the caller owns it) or NULL when out of memory. */
json_t *schedule_event(const char *function, size_t index, const json_t *item, int64_t fire_s,
                       const char *id);

#endif
