/*
 * sched_prebuilt.c — the pools of pre-built sandboxes: for each runtime,
 * a few workers whose whole sandbox is built and whose runtime is started,
 * with no function in them yet. A cold start claims one (sched_launch.c
 * specialises it: worker_specialize) instead of building a sandbox on the
 * call's path. A claimed worker is a function's for the rest of its life:
 * it never comes back here.
 *
 * A runtime has a pool of isolated sandboxes and, where egress works, one
 * of egress sandboxes (a sandbox's network is built with it and cannot
 * change at a claim). The egress pool holds none until the runtime's
 * first egress cold start, or from the start with --default-network
 * egress, so that hosts without egress functions do not pay for it.
 *
 * Sizing: a pool aims to hold as many sandboxes as its runtime had cold
 * starts in its busiest second of the last minute, between
 * --prebuilt-min and --prebuilt-max. Refills run from a timer, a moment
 * after a claim, so that building the next sandbox does not compete with
 * the call that claimed the last one. Pre-built sandboxes count like
 * workers against --max-workers and --memory-budget (prebuilt_mb each),
 * are only built when that leaves room, and are the first to go when a
 * function's worker needs the room (prebuilt_evict_one).
 *
 * Owns: the stem pools and their counters. Must never: hand one sandbox
 * to two functions, build one while a function waits for room, or block.
 */
#include "sched_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "burstwin.h"
#include "dlog.h"
#include "runtimes.h"

#define REFILL_MS       10    /* after a claim: let the claimed worker start first */
#define FAIL_BACKOFF_MS 2000  /* after a pre-build failed: do not spin on a broken runtime */
#define LOAD_MS         30000 /* a runtime that has not said it loaded by then never will */

/* A pre-built worker is on one of its pool's two lists (worker.next/prev)
 * until it is claimed or stopped: `loading` while it is built and its
 * runtime loads (state STARTING), `ready` once the runtime said so (state
 * IDLE). One that is stopped is taken off its list first. */
struct stem_list {
    worker *head; /* newest first */
    unsigned n;
};

struct stem_pool {
    sched *s;
    const char *runtime; /* static for the daemon's life (runtimes.c) */
    bool egress;         /* its sandboxes have "network": "egress" */
    bool wanted;         /* egress: a function has asked, so --prebuilt-min applies */
    struct stem_list loading, ready;
    burstwin cold_starts; /* its runtime's, by second */
    uint64_t not_before;  /* loop ms: no pre-build before (after a failure) */
    uint64_t claims, misses, evictions;
};

static uint64_t now_s(const sched *s)
{
    return uv_now(s->o.loop) / 1000;
}

static unsigned target_of(sched *s, stem_pool *st)
{
    unsigned busiest = burstwin_peak(&st->cold_starts, now_s(s));
    if (busiest < s->o.prebuilt_min && (!st->egress || st->wanted))
        busiest = s->o.prebuilt_min;
    return busiest > s->o.prebuilt_max ? s->o.prebuilt_max : busiest;
}

static stem_pool *stem_for(sched *s, const pool *p)
{
    if (p->cfg.network == FN_NET_HOST)
        return NULL; /* no sandbox is pre-built with the host's network */
    bool egress = p->cfg.network == FN_NET_EGRESS;
    for (size_t i = 0; i < s->nstems; i++)
        if (s->stems[i].egress == egress && strcmp(s->stems[i].runtime, p->cfg.runtime) == 0)
            return &s->stems[i];
    return NULL;
}

static void list_add(struct stem_list *l, worker *w)
{
    w->prev = NULL;
    w->next = l->head;
    if (l->head)
        l->head->prev = w;
    l->head = w;
    l->n++;
}

static void list_remove(struct stem_list *l, worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    l->n--;
}

static struct stem_list *list_of(stem_pool *st, const worker *w)
{
    return w->state == WORKER_IDLE ? &st->ready : &st->loading;
}

/* The oldest of a list: the ready one built first, the loading one
 * furthest along. */
static worker *oldest(const struct stem_list *l)
{
    worker *w = l->head;
    while (w && w->next)
        w = w->next;
    return w;
}

static void schedule_fill(sched *s, uint64_t in_ms)
{
    if (!s->nstems || s->shutting_down)
        return;
    uint64_t due = uv_now(s->o.loop) + in_ms;
    if (s->stem_fill_due && s->stem_fill_due <= due)
        return;
    s->stem_fill_due = due;
    uv_timer_start(&s->stem_timer, prebuilt_on_timer, in_ms, 0);
}

/* Takes w off its list and stops it; its exit only settles the counts. */
static void stop_stem(sched *s, stem_pool *st, worker *w)
{
    if (w->stopping)
        return;
    list_remove(list_of(st, w), w);
    w->stopping = true;
    s->ndying++;
    s->dying_mb += (uint64_t)w->memory_mb;
    worker_kill(w);
}

/* --- the pre-built workers' own events, until a claim --- */

/* Its runtime says READY {"prebuilt": true} once loaded: from then on a
 * claim costs only the function's own start. Anything else, or twice,
 * breaks the protocol. One stopped meanwhile stays "starting" until its
 * exit. */
static void on_stem_frame(worker *w, uint8_t type, json_t *meta, char *body, size_t len)
{
    (void)len;
    free(body);
    stem_pool *st = sw_of(w)->stem;
    if (type != HEARTH_FRAME_READY || w->state != WORKER_STARTING ||
        !json_is_true(json_object_get(meta, "prebuilt"))) {
        dlog_warn("pre-built worker %d sent frame %u before it was given a function: stopped",
                  (int)worker_pid(w), (unsigned)type);
        worker_kill(w);
        return;
    }
    if (w->stopping)
        return;
    list_remove(&st->loading, w);
    w->state = WORKER_IDLE;
    list_add(&st->ready, w);
    /* A function may have been waiting for the room this build held:
     * now it can claim the sandbox, or have it evicted. */
    if (st->s->nhungry)
        feed_waiting_pools(st->s);
}

/* Built; its runtime is loading. At shutdown it goes at once. */
static void on_stem_started(worker *w)
{
    stem_pool *st = sw_of(w)->stem;
    if (st->s->shutting_down)
        stop_stem(st->s, st, w);
}

static void on_stem_exit(worker *w, int wstatus, bool protocol_error)
{
    (void)wstatus;
    (void)protocol_error;
    stem_pool *st = sw_of(w)->stem;
    sched *s = st->s;
    if (!w->stopping)
        list_remove(list_of(st, w), w); /* it died on its own */
    s->nworkers--;
    s->memory_mb -= (uint64_t)w->memory_mb;
    if (w->stopping) {
        s->ndying--;
        s->dying_mb -= (uint64_t)w->memory_mb;
    }
    give_back_uid_slot(s, w);
    if (w->spawn_error) {
        dlog_warn("pre-built sandbox for %s: could not start (%s); trying again later", st->runtime,
                  strerror(-w->spawn_error));
        st->not_before = uv_now(s->o.loop) + FAIL_BACKOFF_MS;
        schedule_fill(s, FAIL_BACKOFF_MS);
    } else {
        schedule_fill(s, 0);
    }
    w->state = WORKER_DEAD;
    free(w->owner);
    w->owner = NULL;
    feed_waiting_pools(s);
}

static const worker_events stem_ev = {
    .on_frame = on_stem_frame, .on_exit = on_stem_exit, .on_started = on_stem_started};

/* --- filling and shrinking --- */

/* Room for one more without taking any from a function: no pool waits
 * for a slot or memory, and a worker, its memory and a uid are free. */
static bool room_for_one(sched *s)
{
    uint64_t budget = s->o.memory_budget_mb;
    return !s->shutting_down && s->nhungry == 0 && s->nworkers + 1 <= s->o.max_workers &&
           (!budget || s->memory_mb + s->o.prebuilt_mb <= budget) &&
           (!s->o.uid_count || uid_slot_free(s));
}

static int build_one(sched *s, stem_pool *st)
{
    int slot = -1;
    worker *w;
    int rc = spawn_sandbox(s, st->runtime, st->egress, &stem_ev, &slot, &w);
    metrics_spawned(s->o.metrics, rc == 0);
    if (rc < 0)
        return rc;
    sw_of(w)->stem = st;
    w->uid_slot = slot;
    w->memory_mb = (int64_t)s->o.prebuilt_mb;
    w->spawned_ms = uv_now(s->o.loop);
    s->nworkers++;
    s->memory_mb += s->o.prebuilt_mb;
    list_add(&st->loading, w);
    return 0;
}

static void fill_one_pool(sched *s, stem_pool *st)
{
    unsigned target = target_of(s, st);
    while (st->ready.n > target)
        stop_stem(s, st, oldest(&st->ready));
    worker *stuck = oldest(&st->loading);
    if (stuck && uv_now(s->o.loop) - stuck->spawned_ms > LOAD_MS) {
        dlog_warn("pre-built sandbox for %s: its runtime did not load in %d s; stopped",
                  st->runtime, LOAD_MS / 1000);
        stop_stem(s, st, stuck);
    }
    if (uv_now(s->o.loop) < st->not_before)
        return;
    while (st->ready.n + st->loading.n < target && room_for_one(s))
        if (build_one(s, st) < 0) {
            st->not_before = uv_now(s->o.loop) + FAIL_BACKOFF_MS;
            schedule_fill(s, FAIL_BACKOFF_MS);
            return;
        }
}

void prebuilt_on_timer(uv_timer_t *t)
{
    sched *s = t->data;
    s->stem_fill_due = 0;
    prebuilt_fill(s);
}

void prebuilt_fill(sched *s)
{
    for (size_t i = 0; i < s->nstems; i++)
        fill_one_pool(s, &s->stems[i]);
}

/* --- claims --- */

worker *prebuilt_take(sched *s, pool *p)
{
    stem_pool *st = stem_for(s, p);
    worker *w = st ? oldest(&st->ready) : NULL;
    if (!w)
        return NULL;
    list_remove(&st->ready, w);
    s->nworkers--;
    s->memory_mb -= (uint64_t)w->memory_mb;
    return w;
}

void prebuilt_untake(sched *s, worker *w)
{
    list_add(&((stem_pool *)sw_of(w)->stem)->ready, w);
    s->nworkers++;
    s->memory_mb += (uint64_t)w->memory_mb;
}

void prebuilt_note_start(sched *s, const pool *p, bool claimed)
{
    stem_pool *st = stem_for(s, p);
    if (!st)
        return;
    burstwin_note(&st->cold_starts, now_s(s));
    st->wanted = true;
    if (claimed)
        st->claims++;
    else
        st->misses++;
    schedule_fill(s, REFILL_MS);
}

void prebuilt_discard(sched *s, worker *w)
{
    stem_pool *st = sw_of(w)->stem;
    s->nworkers++;
    s->memory_mb += (uint64_t)w->memory_mb;
    list_add(&st->ready, w); /* as it was taken; stop_stem takes it off again */
    stop_stem(s, st, w);
}

/* The pool with the most ready (or, `loading`, loading) sandboxes, or
 * NULL when all of those lists are empty. */
static stem_pool *fullest(sched *s, bool loading)
{
    stem_pool *most = NULL;
    unsigned n = 0;
    for (size_t i = 0; i < s->nstems; i++) {
        stem_pool *st = &s->stems[i];
        unsigned here = loading ? st->loading.n : st->ready.n;
        if (here > n) {
            most = st;
            n = here;
        }
    }
    return most;
}

/* A ready sandbox goes first, else one still loading (it holds its room
 * all the same): a function's idle worker is never evicted while the
 * pools hold any. */
bool prebuilt_evict_one(sched *s)
{
    for (int loading = 0; loading <= 1; loading++) {
        stem_pool *st = fullest(s, loading);
        if (!st)
            continue;
        st->evictions++;
        stop_stem(s, st, oldest(loading ? &st->loading : &st->ready));
        return true;
    }
    return false;
}

/* --- life --- */

int prebuilt_open(sched *s)
{
    uv_timer_init(s->o.loop, &s->stem_timer);
    s->stem_timer.data = s;
    uv_unref((uv_handle_t *)&s->stem_timer);
    if (!s->o.isolate)
        return 0; /* without a mount namespace there is nowhere to attach code later */
    size_t n = runtimes_count();
    s->stems = calloc(n ? 2 * n : 1, sizeof *s->stems);
    if (!s->stems)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *rt = runtimes_at(i)->name;
        if (!runtimes_argv(rt))
            continue;
        s->stems[s->nstems++] = (stem_pool){.s = s, .runtime = rt};
        if (s->o.egress)
            s->stems[s->nstems++] =
                (stem_pool){.s = s, .runtime = rt, .egress = true, .wanted = s->o.egress_default};
    }
    schedule_fill(s, 0);
    return 0;
}

void prebuilt_shutdown(sched *s)
{
    uv_timer_stop(&s->stem_timer);
    for (size_t i = 0; i < s->nstems; i++) {
        stem_pool *st = &s->stems[i];
        while (st->ready.head)
            stop_stem(s, st, st->ready.head);
        while (st->loading.head)
            stop_stem(s, st, st->loading.head);
    }
}

void prebuilt_close(sched *s)
{
    free(s->stems);
    s->stems = NULL;
    s->nstems = 0;
}

int sched_each_prebuilt(sched *s, sched_prebuilt_visit_fn fn, void *ud)
{
    for (size_t i = 0; i < s->nstems; i++) {
        stem_pool *st = &s->stems[i];
        sched_prebuilt_state ps = {.egress = st->egress,
                                   .ready = st->ready.n,
                                   .starting = st->loading.n,
                                   .target = target_of(s, st),
                                   .claims = st->claims,
                                   .misses = st->misses,
                                   .evictions = st->evictions};
        int rc = fn(st->runtime, &ps, ud);
        if (rc)
            return rc;
    }
    return 0;
}
