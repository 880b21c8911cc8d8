/*
 * clock.h — the schedule clock: fires every function's "schedules" at
 * their times. Owns, per function, each schedule's next fire time and the
 * invocation of its last firing; one timer for the earliest. What a firing
 * does (an asynchronous invocation), what is still running, the persisted
 * last firings and the wall clock all come through clock_ops, so the
 * decisions are tested with a fake clock and a fake queue (test_clock.c).
 */
#ifndef HEARTH_CLOCK_H
#define HEARTH_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "events/evstore.h"
#include "registry.h"

typedef struct evclock evclock;

typedef struct clock_ops {
    /* Submits the firing's event as an invocation of `function` (at the
     * schedule's `qualifier`, "" = the current version); 0 and its id, or a
     * negative errno (the firing is then skipped). */
    int (*fire)(void *ud, const char *function, const char *qualifier, const char *source,
                const json_t *event, char id[EV_ID_LEN + 1]);
    /* True while invocation `id` is queued, running or retrying. */
    bool (*pending)(void *ud, const char *id);
    /* The last firing of schedule `key` of `function`: 0, or -ENOENT. */
    int (*last)(void *ud, const char *function, const char *key, int64_t *fired_s,
                char id[EV_ID_LEN + 1]);
    /* Records a firing (the same batch as the invocation it made). */
    void (*fired)(void *ud, const char *function, const char *key, int64_t fired_s, const char *id);
    int64_t (*now_ms)(void *ud); /* the wall clock: cron times are wall-clock times */
    void *ud;
} clock_ops;

/* `loop` may be NULL (tests call clock_tick themselves). */
evclock *clock_new(uv_loop_t *loop, const clock_ops *ops);
void clock_close_handles(evclock *c); /* then run the loop, then clock_free */
void clock_free(evclock *c);          /* accepts NULL */

/* cfg's schedules replace the function's; a schedule whose time passed
 * since its last firing (since the deploy when it never fired) while
 * nothing fired it, as across a stop, fires once now. 0 or -ENOMEM. */
int clock_update(evclock *c, const fn_config *cfg);
void clock_remove(evclock *c, const char *function);

/* Fires what is due at now_ms() and re-arms the timer. Returns how many
 * fired. (The timer calls it; tests call it with a fake clock.) */
unsigned clock_tick(evclock *c);

/* The earliest next fire time (unix ms), or -1 when none. */
int64_t clock_next_ms(const evclock *c);

/* The schedule key for item `index`: stable across redeploys that keep
 * the same expression and zone at the same place. */
void clock_key(const json_t *item, size_t index, char *out, size_t cap);

#endif
