/*
 * sched_admit.c — admission and eviction: when a pool may start a worker.
 *
 * Start slots: --max-starting, each pool's fair share of them, reclaiming
 * the youngest start of a pool over its share, and the init_timeout_ms
 * deadline of every start, kept by one timer. Eviction: idle workers of
 * other functions go in Greedy-Dual order to make room under
 * --max-workers and --memory-budget. Pools those limits hold back wait on
 * the hungry list and try again, oldest first, whenever a slot or memory
 * frees. pool_fill applies all of it; sched.c's opening comment gives the
 * policy in full.
 *
 * Owns: the start-slot list and its timer, the hungry list, the
 * Greedy-Dual clock's rise. Must never: block, parse HTTP, or touch a
 * worker's fds (worker.c does).
 */
#include "sched_internal.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "dlog.h"
#include "metrics.h"

/* --- start slots: --max-starting, each pool's fair share, init_timeout_ms --- */

static bool wants_start_slots(const pool *p)
{
    return p->nstarting > 0 || p->hungry;
}

/* Keeps s->ndemand in step after `p` changed; `before` is what
 * wants_start_slots said before the change. */
static void note_demand(sched *s, const pool *p, bool before)
{
    bool now = wants_start_slots(p);
    if (now && !before)
        s->ndemand++;
    else if (before && !now)
        s->ndemand--;
}

/* The slots each pool may hold: --max-starting shared among the pools that
 * want some, `joining` included, rounded up (one pool alone takes them
 * all). */
static unsigned start_share(const sched *s, const pool *joining)
{
    unsigned n = s->ndemand + (wants_start_slots(joining) ? 0 : 1);
    return (s->o.max_starting + n - 1) / n;
}

static uint64_t start_deadline(const worker *w)
{
    const pool *p = sw_of(w)->pool;
    return w->spawned_ms + (uint64_t)p->cfg.init_timeout_ms;
}

static void on_init_timer(uv_timer_t *t);

/* One timer for every start: it fires at the earliest deadline. The list
 * holds at most --max-starting workers, so a scan is cheap. */
static void arm_init_timer(sched *s)
{
    if (!s->starting) {
        uv_timer_stop(&s->init_timer);
        return;
    }
    uint64_t first = UINT64_MAX, now = uv_now(s->o.loop);
    for (worker *w = s->starting; w; w = w->start_next)
        if (start_deadline(w) < first)
            first = start_deadline(w);
    uv_timer_start(&s->init_timer, on_init_timer, first > now ? first - now : 0, 0);
}

void take_start_slot(sched *s, worker *w)
{
    pool *p = sw_of(w)->pool;
    bool before = wants_start_slots(p);
    w->start_slot = true;
    w->start_prev = NULL;
    w->start_next = s->starting;
    if (s->starting)
        s->starting->start_prev = w;
    s->starting = w;
    s->nstarting++;
    p->nstarting++;
    note_demand(s, p, before);
    arm_init_timer(s);
}

/* Gives back the slot `w` holds, if any: it became ready, stopped or died. */
void release_start_slot(sched *s, worker *w)
{
    if (!w->start_slot)
        return;
    pool *p = sw_of(w)->pool;
    bool before = wants_start_slots(p);
    w->start_slot = false;
    if (w->start_prev)
        w->start_prev->start_next = w->start_next;
    else
        s->starting = w->start_next;
    if (w->start_next)
        w->start_next->start_prev = w->start_prev;
    w->start_prev = w->start_next = NULL;
    s->nstarting--;
    p->nstarting--;
    note_demand(s, p, before);
    arm_init_timer(s);
}

/* Frees a slot for `for_pool` from a pool holding more than its share: its
 * youngest start, which has the least work to lose, stops (the calls it
 * was for keep waiting). Returns true if one stopped. */
static bool reclaim_start_slot(sched *s, const pool *for_pool)
{
    worker *victim = NULL;
    for (worker *w = s->starting; w; w = w->start_next) {
        const pool *q = sw_of(w)->pool;
        if (q != for_pool && q->nstarting > start_share(s, for_pool) &&
            (!victim || w->spawned_ms > victim->spawned_ms))
            victim = w;
    }
    if (!victim)
        return false;
    dlog_debug("stopping a start of %s (over its share of --max-starting) for %s",
               ((pool *)sw_of(victim)->pool)->cfg.name, for_pool->cfg.name);
    stop_worker(s, victim);
    return true;
}

/* True when `p` may start one more worker now, reclaiming a slot from a
 * pool over its share if that is what it takes. */
static bool start_slot_free(sched *s, pool *p)
{
    if (p->nstarting >= start_share(s, p))
        return false;
    if (s->nstarting >= s->o.max_starting)
        reclaim_start_slot(s, p);
    return s->nstarting < s->o.max_starting;
}

/* The calls that waited for `w`: the oldest, and every other that had
 * arrived when it began to start. Later ones get a start of their own. */
static void fail_init_timeout(pool *p, const worker *w)
{
    sched_call *next;
    for (sched_call *c = p->qhead; c; c = next) {
        next = c->impl->qnext;
        if (c == p->qhead || c->impl->arrived <= w->spawned_ms)
            fail(c, 504, "init_timeout",
                 "the function did not finish starting within its init_timeout_ms of %" PRId64
                 " ms",
                 p->cfg.init_timeout_ms);
    }
}

static void stop_late_start(sched *s, worker *w)
{
    pool *p = sw_of(w)->pool;
    logs_note(s->o.lg, p->cfg.name, w->version, "",
              "hearth: the worker did not finish starting within init_timeout_ms (%" PRId64
              " ms); stopped",
              p->cfg.init_timeout_ms);
    stop_worker(s, w);
    if (is_current(p, w))
        fail_init_timeout(p, w);
    delay_prewarm(s, p);
}

/* Stops every start whose deadline has come, at loop time. */
void expire_starts(sched *s)
{
    uint64_t now = uv_now(s->o.loop);
    bool any = false;
    worker *next;
    for (worker *w = s->starting; w; w = next) {
        next = w->start_next;
        if (start_deadline(w) <= now) {
            stop_late_start(s, w);
            any = true;
        }
    }
    if (any)
        feed_waiting_pools(s); /* the freed slots */
}

static void on_init_timer(uv_timer_t *t)
{
    sched *s = t->data;
    expire_starts(s);
    arm_init_timer(s);
}

/* --- eviction, --memory-budget and the pools held back --- */

/* The idle worker of another function with the lowest Greedy-Dual
 * priority, never one kept for min_instances; NULL when there is none. */
static worker *pick_victim(sched *s, const pool *for_pool)
{
    worker *best = NULL;
    for (worker *w = s->idle_head; w; w = w->idle_next)
        if (sw_of(w)->pool != for_pool && !kept_for_min(sw_of(w)->pool, w) &&
            (!best || w->priority < best->priority))
            best = w;
    return best;
}

/* Stops the victim, if any, and raises the clock to its priority, which
 * ages every worker that was idle beside it. Returns true if one goes. */
static bool evict_one(sched *s, pool *for_pool)
{
    if (prebuilt_evict_one(s))
        return true; /* the pre-built sandboxes give way first */
    worker *w = pick_victim(s, for_pool);
    if (!w)
        return false;
    if (w->priority > s->clock)
        s->clock = w->priority;
    dlog_debug("evicting idle worker %d of %s (priority %.1f) for %s", (int)worker_pid(w),
               ((pool *)sw_of(w)->pool)->cfg.name, w->priority, for_pool->cfg.name);
    stop_worker(s, w);
    return true;
}

/* True when a worker of `p` fits under --memory-budget once the workers
 * already stopping are gone; evicts idle ones until it does, if it can. */
static bool memory_fits(sched *s, pool *p)
{
    uint64_t budget = s->o.memory_budget_mb, need = (uint64_t)p->cfg.memory_mb;
    while (budget && s->memory_mb - s->dying_mb + need > budget)
        if (!evict_one(s, p))
            break;
    return !budget || s->memory_mb + need <= budget;
}

/* True when a new worker can have a uid of its own, or when none will
 * free (the start then fails as it would have). Every worker holds one,
 * so one that is stopping frees one; else a pre-built sandbox gives its
 * up. */
static bool uid_fits(sched *s)
{
    if (!s->o.uid_count || uid_slot_free(s))
        return true;
    return s->ndying == 0 && !prebuilt_evict_one(s);
}

/* A function bigger than the whole budget can never start: say so. */
static void fail_too_big(sched *s, pool *p)
{
    while (p->qhead)
        fail(p->qhead, 503, "overloaded",
             "memory_mb %" PRId64 " of '%s' is more than the daemon's --memory-budget of %" PRIu64
             " MB",
             p->cfg.memory_mb, p->cfg.name, s->o.memory_budget_mb);
}

/* Puts `p` on the list of pools held back by the global limits (at the
 * tail), or takes it off. */
static void link_hungry(sched *s, pool *p, bool hungry)
{
    p->hungry = hungry;
    if (hungry) {
        p->hungry_prev = s->hungry_tail;
        p->hungry_next = NULL;
        if (s->hungry_tail)
            s->hungry_tail->hungry_next = p;
        else
            s->hungry_head = p;
        s->hungry_tail = p;
        s->nhungry++;
        return;
    }
    if (p->hungry_prev)
        p->hungry_prev->hungry_next = p->hungry_next;
    else
        s->hungry_head = p->hungry_next;
    if (p->hungry_next)
        p->hungry_next->hungry_prev = p->hungry_prev;
    else
        s->hungry_tail = p->hungry_prev;
    p->hungry_prev = p->hungry_next = NULL;
    s->nhungry--;
}

void set_hungry(sched *s, pool *p, bool hungry)
{
    if (p->hungry == hungry)
        return;
    bool before = wants_start_slots(p);
    link_hungry(s, p, hungry);
    note_demand(s, p, before);
}

/* Starts workers until every waiting call of `p` has one starting, and
 * min_instances are up, within max_concurrency and --max-workers. Held
 * back by the global limits, the pool waits on the hungry list, and one
 * idle worker of another function is evicted for each pool waiting
 * there, so no pool starves while others take every freed slot. */
void pool_fill(sched *s, pool *p)
{
    if (p->deleted || s->shutting_down) {
        set_hungry(s, p, false);
        return;
    }
    unsigned live = count_current(p, -1), starting = count_current(p, WORKER_STARTING);
    bool held_back = false;
    while (live < (unsigned)p->cfg.max_concurrency &&
           (p->qlen > starting || wants_prewarm(s, p, live))) {
        if (s->o.memory_budget_mb && (uint64_t)p->cfg.memory_mb > s->o.memory_budget_mb) {
            fail_too_big(s, p);
            break;
        }
        /* A pre-built sandbox is taken off its pool first, so that making
         * room below never evicts the one this start is about to claim. */
        worker *stem = prebuilt_take(s, p);
        held_back = s->nworkers >= s->o.max_workers || !start_slot_free(s, p) ||
                    !memory_fits(s, p) || (!stem && !uid_fits(s));
        if (held_back) {
            if (stem)
                prebuilt_untake(s, stem);
            break; /* a slot or memory frees when a worker exits */
        }
        int rc = spawn_worker(s, p, stem);
        if (rc < 0) {
            dlog_error("could not start a worker for %s: %s", p->cfg.name, strerror(-rc));
            if (!p->qhead) {
                delay_prewarm(s, p);
                return;
            }
            fail_spawn_error(s, p->qhead, rc);
            continue;
        }
        starting++;
        live++;
    }
    set_hungry(s, p, held_back);
    if (held_back && s->nworkers >= s->o.max_workers && s->ndying < s->nhungry)
        evict_one(s, p);
}

/* A slot or memory may have freed, or an idle worker become evictable:
 * each pool waiting for one tries again, oldest first (a pool still held
 * back goes to the tail). */
void feed_waiting_pools(sched *s)
{
    for (unsigned n = s->nhungry; n > 0 && s->hungry_head && !s->shutting_down; n--) {
        pool *p = s->hungry_head;
        set_hungry(s, p, false);
        pool_fill(s, p);
    }
}
