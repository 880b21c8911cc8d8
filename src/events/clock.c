/*
 * clock.c — the schedule clock. Each function with schedules has a small
 * record: its items (a reference to the deployed JSON), each one's next
 * fire time and last invocation. One uv timer wakes at the earliest fire
 * time, or after CLOCK_RECHECK_MS at the latest, so that a step of the
 * wall clock (cron times are wall-clock times) is noticed within that
 * long rather than at a deadline computed from the old time.
 */
#include "events/clock.h"

#include "dlog.h"
#include "events/schedule.h"
#include "fn_settings.h"
#include "reqid.h"
#include "strmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_RECHECK_MS 30000
#define CRON_KEY_MAX     200 /* clock_key's "<index>:<expression>@<zone>" */

typedef struct fn_clock {
    char name[FN_NAME_MAX + 1];
    json_t *items; /* the "schedules" array (a reference) */
    size_t n;
    int64_t next_s[SCHEDULES_MAX]; /* -1: never again */
    char last_id[SCHEDULES_MAX][EV_ID_LEN + 1];
} fn_clock;

struct evclock {
    clock_ops ops;
    uv_loop_t *loop;
    uv_timer_t timer;
    strmap fns;
};

void clock_key(const json_t *item, size_t index, char *out, size_t cap)
{
    snprintf(out, cap, "%zu:%.120s@%.60s", index, schedule_item_cron(item),
             schedule_item_timezone(item));
}

static void on_timer(uv_timer_t *t)
{
    clock_tick(t->data);
}

evclock *clock_new(uv_loop_t *loop, const clock_ops *ops)
{
    evclock *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ops = *ops;
    c->loop = loop;
    strmap_init(&c->fns);
    if (loop) {
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
    }
    return c;
}

void clock_close_handles(evclock *c)
{
    if (c && c->loop)
        uv_close((uv_handle_t *)&c->timer, NULL);
}

static void fn_free(fn_clock *f)
{
    if (f) {
        json_decref(f->items);
        free(f);
    }
}

static int free_one(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    fn_free(value);
    return 0;
}

void clock_free(evclock *c)
{
    if (!c)
        return;
    strmap_each(&c->fns, free_one, NULL);
    strmap_release(&c->fns);
    free(c);
}

static int64_t now_s(const evclock *c)
{
    return c->ops.now_ms(c->ops.ud) / 1000;
}

/* Fires item i of f for fire time `at` (unix s), unless the schedule's
 * previous firing is still pending and it skips overlaps. */
static void fire_one(evclock *c, fn_clock *f, size_t i, int64_t at)
{
    const json_t *item = json_array_get(f->items, i);
    char key[CRON_KEY_MAX];
    clock_key(item, i, key, sizeof key);
    if (schedule_item_overlap_skip(item) && f->last_id[i][0] &&
        c->ops.pending(c->ops.ud, f->last_id[i])) {
        dlog_info("schedule %s/%zu: the firing of %lld is skipped: the previous one (%s) has not "
                  "finished (\"overlap\": \"skip\")",
                  f->name, i, (long long)at, f->last_id[i]);
        return;
    }
    char event_id[REQID_LEN + 1], id[EV_ID_LEN + 1], source[EV_SOURCE_MAX + 1];
    reqid_new(event_id);
    json_t *event = schedule_event(f->name, i, item, at, event_id);
    snprintf(source, sizeof source, "schedule:%zu", i);
    int rc = event
                 ? c->ops.fire(c->ops.ud, f->name, schedule_item_qualifier(item), source, event, id)
                 : -ENOMEM;
    json_decref(event);
    if (rc < 0) {
        dlog_warn("schedule %s/%zu: the firing of %lld could not be queued: %s", f->name, i,
                  (long long)at, strerror(-rc));
        return;
    }
    snprintf(f->last_id[i], sizeof f->last_id[i], "%s", id);
    c->ops.fired(c->ops.ud, f->name, key, at, id);
}

static void arm(evclock *c)
{
    if (!c->loop)
        return;
    int64_t next = clock_next_ms(c);
    if (next < 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    int64_t wait = next - c->ops.now_ms(c->ops.ud);
    if (wait < 0)
        wait = 0;
    if (wait > CLOCK_RECHECK_MS)
        wait = CLOCK_RECHECK_MS;
    uv_timer_start(&c->timer, on_timer, (uint64_t)wait, 0);
}

struct tick {
    evclock *c;
    int64_t now;
    unsigned fired;
};

static int tick_fn(const char *name, void *value, void *ud)
{
    (void)name;
    struct tick *t = ud;
    fn_clock *f = value;
    for (size_t i = 0; i < f->n; i++) {
        if (f->next_s[i] < 0 || f->next_s[i] > t->now)
            continue;
        fire_one(t->c, f, i, f->next_s[i]);
        t->fired++;
        /* After the clock jumped ahead, the runs in between fire once. */
        f->next_s[i] = schedule_next(json_array_get(f->items, i), t->now);
    }
    return 0;
}

unsigned clock_tick(evclock *c)
{
    struct tick t = {c, now_s(c), 0};
    strmap_each(&c->fns, tick_fn, &t);
    arm(c);
    return t.fired;
}

struct earliest {
    int64_t at;
};

static int earliest_fn(const char *name, void *value, void *ud)
{
    (void)name;
    struct earliest *e = ud;
    const fn_clock *f = value;
    for (size_t i = 0; i < f->n; i++)
        if (f->next_s[i] >= 0 && (e->at < 0 || f->next_s[i] < e->at))
            e->at = f->next_s[i];
    return 0;
}

int64_t clock_next_ms(const evclock *c)
{
    struct earliest e = {-1};
    strmap_each(&c->fns, earliest_fn, &e);
    return e.at < 0 ? -1 : e.at * 1000;
}

/* Loads item i's last firing, and fires it now if a run was missed. */
static void catch_up(evclock *c, fn_clock *f, size_t i, int64_t deployed_s, int64_t now)
{
    const json_t *item = json_array_get(f->items, i);
    char key[CRON_KEY_MAX];
    clock_key(item, i, key, sizeof key);
    int64_t last = 0;
    if (c->ops.last(c->ops.ud, f->name, key, &last, f->last_id[i]) < 0) {
        last = 0;
        f->last_id[i][0] = '\0';
    }
    if (schedule_missed(item, last, deployed_s, now)) {
        dlog_info("schedule %s/%zu: a run was due while hearthd was stopped: firing once now",
                  f->name, i);
        fire_one(c, f, i, now);
    }
    f->next_s[i] = schedule_next(item, now);
}

int clock_update(evclock *c, const fn_config *cfg)
{
    json_t *items = fnset_json_value(cfg, "schedules");
    fn_free(strmap_remove(&c->fns, cfg->name));
    size_t n = json_array_size(items);
    if (n == 0) {
        arm(c);
        return 0;
    }
    fn_clock *f = calloc(1, sizeof *f);
    if (!f || strmap_put(&c->fns, cfg->name, f) != 0) {
        free(f);
        return -ENOMEM;
    }
    snprintf(f->name, sizeof f->name, "%s", cfg->name);
    f->items = json_incref(items);
    f->n = n < SCHEDULES_MAX ? n : SCHEDULES_MAX;
    int64_t now = now_s(c);
    for (size_t i = 0; i < f->n; i++)
        catch_up(c, f, i, cfg->updated_ms / 1000, now);
    arm(c);
    return 0;
}

void clock_remove(evclock *c, const char *function)
{
    fn_free(strmap_remove(&c->fns, function));
    arm(c);
}
