/*
 * sched.c — pools, queues and deadlines.
 *
 * A pool per function holds its current config (cached from the registry
 * so the invoke path makes no sqlite query), its workers of every version
 * still alive, and a FIFO of calls waiting for a worker. A call goes to an
 * idle worker of the current version, most recently used first (warm
 * caches); otherwise it waits and the pool starts workers until every
 * waiting call has one starting for it. Whichever worker frees first
 * takes the oldest call. A worker that fails to start fails one waiting
 * call — the one it was started for — so a broken function cannot spin.
 *
 * Each pool runs at most max_concurrency workers of its current version
 * and keeps min_instances of them started whatever the traffic (restarted
 * with a backoff when they fail to start). A call that finds no idle
 * worker waits; past max_queue calls beyond capacity it is refused (429).
 *
 * At most --max-starting workers start at once: starts are CPU-bound, and
 * a few started first answer a burst sooner than many sharing the CPUs.
 * Each function holds at most its fair share of those slots (all of them
 * while no other function wants one); a function over its share gives
 * back its youngest start when another needs a slot. Every start has a
 * deadline, init_timeout_ms: past it the worker is stopped, its slot
 * freed, and the calls that were waiting for it answer 504, so code that
 * never finishes loading cannot hold the slots of every function.
 *
 * Workers of all functions share --max-workers and --memory-budget (the
 * sum of their memory_mb). When a new worker does not fit, idle workers of
 * other functions are evicted in Greedy-Dual order (FaasCache): each idle
 * worker's priority is clock + calls × cold-start cost / memory, the
 * lowest goes first and the clock rises to its priority, so functions
 * called often, slow to start or small stay warm, and a worker that has
 * waited long enough loses to newer ones. If nothing can go, calls wait.
 *
 * Every call has a deadline timer from the moment it arrives; past it the
 * call answers 504 and its worker, if it had one, is killed. While it
 * waits for a worker the timer is the shorter queue_timeout_ms (503).
 *
 * This file holds the pools, the calls and their queue, dispatch, the
 * workers' frames and the public operations. sched_admit.c decides when
 * a pool may start a worker (start slots, eviction, the memory budget,
 * the pools held back); sched_launch.c starts one and handles its exit.
 * They share sched_internal.h.
 *
 * Owns: pools, calls, the idle list. Must never: block, parse HTTP, or
 * touch a worker's fds (worker.c does).
 */
#include "sched.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "fn_settings.h"
#include "keepalive.h"
#include "metrics.h"
#include "qualifier.h"
#include "sched_internal.h"
#include "strmap.h"
#include "timefmt.h"
#include "violations.h"
#include "worker.h"

#define IDLE_SWEEP_MS       1000
#define PREWARM_BACKOFF_MS  1000 /* first wait after a pre-warmed worker fails to start */
#define PREWARM_BACKOFF_MAX 60000
#define COLD_COST_GUESS_MS  50.0 /* a pool's cold-start cost before one was measured */

/* --- calls --- */

sched_call *sched_call_new(void)
{
    sched_call *c = calloc(1, sizeof *c);
    struct sched_call_impl *im = calloc(1, sizeof *im);
    if (!c || !im) {
        free(c);
        free(im);
        return NULL;
    }
    c->impl = im;
    im->call = c;
    return c;
}

static void call_free(uv_handle_t *h)
{
    struct sched_call_impl *im = h->data;
    json_decref(im->call->http);
    free(im->call);
    free(im);
}

static void queue_remove(pool *p, sched_call *c)
{
    sched_call **pp = &p->qhead, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->impl->qnext) {
        if (*pp != c)
            continue;
        *pp = c->impl->qnext;
        if (p->qtail == c)
            p->qtail = prev;
        if (p->qlast_sync == c)
            p->qlast_sync = prev; /* the calls before a synchronous one are synchronous */
        p->qlen--;
        if (c->background)
            p->bg_queued--;
        c->impl->queued = false;
        c->impl->qnext = NULL;
        return;
    }
}

/* Queues c: a background call at the tail, a synchronous one after the
 * last synchronous call, so async floods never delay a waiting request. */
static void queue_push(pool *p, sched_call *c)
{
    sched_call *after = c->background ? p->qtail : p->qlast_sync;
    sched_call **link = after ? &after->impl->qnext : &p->qhead;
    c->impl->qnext = *link;
    *link = c;
    if (p->qtail == after)
        p->qtail = c;
    if (!c->background)
        p->qlast_sync = c;
    else
        p->bg_queued++;
    c->impl->queued = true;
    p->qlen++;
}

static sched_call *queue_pop(pool *p)
{
    sched_call *c = p->qhead;
    if (c)
        queue_remove(p, c);
    return c;
}

/* Answers `c` once and releases it (after its timer handle closes). */
static void finish(sched_call *c, sched_result *res)
{
    struct sched_call_impl *im = c->impl;
    if (im->finished)
        return;
    im->finished = true;
    if (im->queued)
        queue_remove(im->p, c);
    if (im->w) {
        sw_of(im->w)->call = NULL;
        im->w = NULL;
    }
    if (im->p)
        metrics_fn_call_done(pool_metrics(im->p), metrics_trigger_of(c->trigger), res->status,
                             res->code, (uv_hrtime() - im->arrived_ns) / 1000);
    c->done(c, res, c->ud);
    free(res->body);
    res->body = NULL;
    if (im->s) {
        uv_timer_stop(&im->timer);
        uv_close((uv_handle_t *)&im->timer, call_free);
    } else {
        json_decref(c->http);
        free(c);
        free(im);
    }
}

/* An error always says something: an exception raised without text
 * (Python's MemoryError(), `raise ValueError()`) is named by its type. */
static void message_or_type(sched_result *res)
{
    if (!res->message[0] && res->error_type[0])
        snprintf(res->message, sizeof res->message, "%s", res->error_type);
}

static void vfail(sched_call *c, unsigned status, const char *code, const char *type,
                  const char *fmt, va_list ap)
{
    sched_result res = {.status = status, .code = code};
    if (c->impl->p)
        res.version = c->impl->p->cfg.version;
    if (type)
        snprintf(res.error_type, sizeof res.error_type, "%s", type);
    vsnprintf(res.message, sizeof res.message, fmt, ap);
    message_or_type(&res);
    finish(c, &res);
}

void fail(sched_call *c, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, status, code, NULL, fmt, ap);
    va_end(ap);
}

void fail_typed(sched_call *c, unsigned status, const char *code, const char *type, const char *fmt,
                ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(c, status, code, type, fmt, ap);
    va_end(ap);
}

/* --- the idle list (oldest first; eviction and expiry take from the head) --- */

static void idle_push(sched *s, worker *w)
{
    w->idle_prev = s->idle_tail;
    w->idle_next = NULL;
    if (s->idle_tail)
        s->idle_tail->idle_next = w;
    else
        s->idle_head = w;
    s->idle_tail = w;
}

void idle_remove(sched *s, worker *w)
{
    if (w->idle_prev)
        w->idle_prev->idle_next = w->idle_next;
    else if (s->idle_head == w)
        s->idle_head = w->idle_next;
    else
        return; /* not on the list */
    if (w->idle_next)
        w->idle_next->idle_prev = w->idle_prev;
    else
        s->idle_tail = w->idle_prev;
    w->idle_prev = w->idle_next = NULL;
}

/* --- workers --- */

void stop_worker(sched *s, worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    s->ndying++;
    s->dying_mb += (uint64_t)w->memory_mb;
    idle_remove(s, w);
    release_start_slot(s, w); /* a killed start spends no more CPU */
    worker_kill(w);
}

void pool_link(pool *p, worker *w)
{
    sw_of(w)->pool = p;
    w->prev = NULL;
    w->next = p->workers;
    if (p->workers)
        p->workers->prev = w;
    p->workers = w;
    p->nworkers++;
}

void pool_unlink(pool *p, worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        p->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    p->nworkers--;
}

void pool_free(pool *p)
{
    fn_config_release(&p->cfg);
    free(p);
}

static uint64_t pool_keep_alive_ms(const sched *s, const pool *p)
{
    return p->cfg.keep_alive_s == FNSET_INHERIT ? s->o.keep_alive_ms
                                                : (uint64_t)p->cfg.keep_alive_s * 1000;
}

static unsigned pool_max_queue(const sched *s, const pool *p)
{
    return p->cfg.max_queue == FNSET_INHERIT ? s->o.max_queue : (unsigned)p->cfg.max_queue;
}

/* A worker of the current version holding the current secrets: one that
 * may take new calls. */
bool is_current(const pool *p, const worker *w)
{
    return w->version == p->cfg.version && w->secrets_gen == p->secrets_gen;
}

/* The series a pool's calls count in: a version's own pool counts in its
 * function's (metrics stay per function). */
metrics_fn *pool_metrics(pool *p)
{
    pool *main = p->pinned ? strmap_get(&p->s->pools, p->cfg.name) : NULL;
    return main ? &main->m : &p->m;
}

/* Workers of the current version not on their way out; `state` < 0: any. */
unsigned count_current(const pool *p, int state)
{
    unsigned n = 0;
    for (worker *w = p->workers; w; w = w->next)
        if (is_current(p, w) && !w->stopping && (state < 0 || (int)w->state == state))
            n++;
    return n;
}

/* True for a worker the pool must keep to have min_instances started. */
bool kept_for_min(const pool *p, const worker *w)
{
    return !p->deleted && is_current(p, w) &&
           count_current(p, -1) <= (unsigned)p->cfg.min_instances;
}

/* A pre-warmed start failed: wait before the next, doubling up to a minute,
 * so a function that cannot start does not spin. */
void delay_prewarm(sched *s, pool *p)
{
    uint64_t b = p->prewarm_backoff_ms;
    p->prewarm_backoff_ms =
        b ? (b * 2 < PREWARM_BACKOFF_MAX ? b * 2 : PREWARM_BACKOFF_MAX) : PREWARM_BACKOFF_MS;
    p->prewarm_not_before = uv_now(s->o.loop) + p->prewarm_backoff_ms;
}

/* Cold-start cost for Greedy-Dual: a moving average, new starts weigh 1/4. */
static void note_cold_cost(pool *p, double ms)
{
    p->cold_cost_ms = p->cold_cost_ms > 0 ? p->cold_cost_ms * 0.75 + ms * 0.25 : ms;
}

/* Adaptive keep-alive: a call arrived; learn its idle time, decide anew. */
static void note_arrival(sched *s, pool *p)
{
    if (!p->cfg.adaptive_keep_alive)
        return;
    uint64_t now = uv_now(s->o.loop);
    ka_record(&p->ka, &s->ka, now);
    p->ka_dec = ka_decide(&p->ka, &s->ka, pool_keep_alive_ms(s, p));
    p->ka_last = now;
}

/* True while the adaptive policy wants a worker of `p` alive. */
static bool ka_window_open(const pool *p, uint64_t now)
{
    return p->ka_last && ka_wants_worker(&p->ka_dec, p->ka_last, now);
}

/* Workers to keep started whatever the calls: min_instances, or one
 * while the adaptive policy has a pre-warm window open. */
static unsigned prewarm_target(const sched *s, const pool *p)
{
    unsigned n = (unsigned)p->cfg.min_instances;
    if (p->cfg.adaptive_keep_alive && p->ka_dec.prewarm_after_ms > 0 && n < 1 &&
        ka_window_open(p, uv_now(s->o.loop)))
        n = 1;
    return n;
}

bool wants_prewarm(const sched *s, const pool *p, unsigned live)
{
    return live < prewarm_target(s, p) && uv_now(s->o.loop) >= p->prewarm_not_before;
}

/* Builds the INVOKE metadata for `c` on pool `p`. Caller frees. */
static char *invoke_meta(pool *p, sched_call *c, size_t *len)
{
    /* The worker reads its deadline against its own wall clock: convert
     * the monotonic deadline at the moment the call is handed over. */
    int64_t left = (int64_t)(c->impl->deadline - uv_now(p->s->o.loop));
    json_t *m = json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "request_id", c->request_id, "function",
                          p->cfg.name, "version", (json_int_t)p->cfg.version, "deadline_ms",
                          (json_int_t)(timefmt_now_ms() + left), "memory_mb",
                          (json_int_t)p->cfg.memory_mb, "trigger", c->trigger);
    if (!m)
        return NULL;
    if (c->content_type[0])
        json_object_set_new(m, "content_type", json_string(c->content_type));
    if (c->http)
        json_object_set(m, "http", c->http);
    if (c->invocation_id[0]) {
        json_object_set_new(m, "invocation_id", json_string(c->invocation_id));
        json_object_set_new(m, "attempt", json_integer(c->attempt));
    }
    char *text = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (text)
        *len = strlen(text);
    return text;
}

static void on_deadline(uv_timer_t *t);

/* From here on only the call's own deadline counts, not the queue's. */
static void arm_deadline(sched_call *c)
{
    struct sched_call_impl *im = c->impl;
    int64_t left = (int64_t)(im->deadline - uv_now(im->s->o.loop));
    im->queue_timer = false;
    uv_timer_start(&im->timer, on_deadline, left > 0 ? (uint64_t)left : 1, 0);
}

static void dispatch(sched *s, worker *w, sched_call *c)
{
    pool *p = sw_of(w)->pool;
    c->impl->cold = w->served == 0 && w->ready_ms >= c->impl->arrived;
    metrics_fn *m = pool_metrics(p);
    if (c->impl->cold)
        metrics_fn_event(m, METRICS_COLD_STARTS);
    else
        m->warm_starts++;
    if (m != &p->m && c->impl->cold) /* a version's own counts rank its workers for eviction */
        p->m.events[METRICS_COLD_STARTS]++;
    else if (m != &p->m)
        p->m.warm_starts++;
    arm_deadline(c);
    idle_remove(s, w);
    w->state = WORKER_BUSY;
    sw_of(w)->call = c;
    c->impl->w = w;
    size_t meta_len = 0;
    char *meta = invoke_meta(p, c, &meta_len);
    int rc = meta ? worker_invoke(w, c->request_id, meta, meta_len, c->body, c->body_len) : -ENOMEM;
    free(meta);
    if (rc < 0) {
        /* The worker died under us; its exit fails the call as a crash. */
        dlog_warn("could not send a request to worker %d: %s", (int)worker_pid(w), strerror(-rc));
        worker_kill(w);
    }
}

/* A worker is free: give it the oldest waiting call, or park it. */
static void worker_free_now(sched *s, worker *w)
{
    pool *p = sw_of(w)->pool;
    w->state = WORKER_IDLE;
    w->last_used_ms = uv_now(s->o.loop);
    if (p->deleted || s->shutting_down || !is_current(p, w)) {
        stop_worker(s, w);
        pool_fill(s, p);
        return;
    }
    sched_call *c = queue_pop(p);
    if (c) {
        dispatch(s, w, c);
        return;
    }
    w->priority = s->clock + (double)(p->m.events[METRICS_COLD_STARTS] + p->m.warm_starts) *
                                 (p->cold_cost_ms > 0 ? p->cold_cost_ms : COLD_COST_GUESS_MS) /
                                 (double)(w->memory_mb > 0 ? w->memory_mb : 1);
    idle_push(s, w);
    feed_waiting_pools(s);
}

/* --- frames --- */

const char *meta_str(json_t *meta, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(meta, key));
    return v ? v : dflt;
}

static bool header_safe(const char *v)
{
    return strpbrk(v, "\r\n") == NULL;
}

static void answer_result(sched_call *c, worker *w, json_t *meta, char *body, size_t len)
{
    sched_result res = {.status = 200, .body = body, .len = len, .version = w->version};
    res.cold = c->impl->cold;
    const char *ct = meta_str(meta, "content_type", "application/octet-stream");
    bool http = strcmp(c->trigger, "http") == 0;
    json_t *st = json_object_get(meta, "status");
    if (!header_safe(ct) || strlen(ct) >= sizeof res.content_type ||
        (http && st &&
         (!json_is_integer(st) || json_integer_value(st) < 200 || json_integer_value(st) > 599))) {
        res.body = NULL;
        free(body);
        res.status = 502;
        res.code = "invalid_response";
        snprintf(res.message, sizeof res.message,
                 "the function's answer has an invalid status or content type");
        finish(c, &res);
        return;
    }
    snprintf(res.content_type, sizeof res.content_type, "%s", ct);
    if (http && st)
        res.status = (unsigned)json_integer_value(st);
    if (http && json_is_object(json_object_get(meta, "headers")))
        res.headers = json_object_get(meta, "headers");
    finish(c, &res);
}

static void answer_error(sched_call *c, worker *w, json_t *meta)
{
    sched_result res = {.status = 500, .code = "function_error", .version = w->version};
    res.cold = c->impl->cold;
    /* The type travels in its own field, the message as the runtime gave
     * it: {"type": "ValueError", "message": "boom"}, as docs/api.md shows. */
    snprintf(res.error_type, sizeof res.error_type, "%s", meta_str(meta, "error_type", "Error"));
    snprintf(res.message, sizeof res.message, "%s", meta_str(meta, "message", ""));
    message_or_type(&res);
    finish(c, &res);
}

void on_frame(worker *w, uint8_t type, json_t *meta, char *body, size_t len)
{
    pool *p = sw_of(w)->pool;
    sched_call *c = sw_of(w)->call;
    if (w->stopping) {
        free(body); /* on its way out: it has no call, and must take none */
        return;
    }
    if (type == HEARTH_FRAME_READY && w->state == WORKER_STARTING) {
        free(body);
        w->ready_ms = uv_now(p->s->o.loop);
        p->prewarm_backoff_ms = 0;
        note_cold_cost(p, (double)(w->ready_ms - w->spawned_ms));
        metrics_hist_observe(&pool_metrics(p)->init, (uv_hrtime() - w->spawned_ns) / 1000);
        release_start_slot(p->s, w);
        worker_free_now(p->s, w);
        feed_waiting_pools(p->s); /* a start may have been held back for this one */
        return;
    }
    if (type == HEARTH_FRAME_INIT_ERROR && w->state == WORKER_STARTING) {
        free(body);
        json_decref(w->init_error);
        w->init_error = json_incref(meta);
        return; /* the runtime exits next; its exit fails a waiting call */
    }
    if ((type == HEARTH_FRAME_RESULT || type == HEARTH_FRAME_ERROR) && w->state == WORKER_BUSY) {
        if (c && type == HEARTH_FRAME_RESULT)
            answer_result(c, w, meta, body, len);
        else if (c)
            answer_error(c, w, meta);
        if (!c || type == HEARTH_FRAME_ERROR)
            free(body);
        w->served++;
        worker_free_now(p->s, w);
        return;
    }
    free(body);
    dlog_warn("worker %d of %s sent an unexpected frame (type %u); killing it", (int)worker_pid(w),
              p->cfg.name, type);
    worker_kill(w);
}

/* --- the public operations --- */

static void on_deadline(uv_timer_t *t)
{
    struct sched_call_impl *im = t->data;
    sched_call *c = im->call;
    worker *w = im->w;
    if (im->queue_timer) {
        /* A start whose deadline falls due with this one goes first, so the
         * calls that waited for it learn why (504 init_timeout). */
        expire_starts(im->s);
        if (im->finished)
            return;
        fail(c, 503, "queue_timeout", "no worker of '%s' was free within %" PRId64 " ms",
             im->p->cfg.name, im->p->cfg.queue_timeout_ms);
        return;
    }
    if (w) {
        sw_of(w)->call = NULL;
        im->w = NULL;
        logs_note(im->s->o.lg, im->p->cfg.name, w->version, c->request_id,
                  "hearth: timed out after %" PRId64 " ms; worker stopped", im->p->cfg.timeout_ms);
        stop_worker(im->s, w);
    }
    fail(c, 504, "timeout", "the function did not answer within %" PRId64 " ms",
         im->p->cfg.timeout_ms);
}

/* A new pool for cfg (copied; its JSON values shared). NULL on ENOMEM. */
static pool *pool_add(sched *s, const fn_config *cfg)
{
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = *cfg;
    fn_config_retain(&p->cfg);
    p->s = s;
    if (strmap_put(&s->pools, cfg->name, p) != 0) {
        pool_free(p);
        return NULL;
    }
    return p;
}

/* The pool of `name`, made from the registry on first use. */
static pool *pool_get(sched *s, const char *name)
{
    pool *p = strmap_get(&s->pools, name);
    if (p)
        return p;
    fn_config cfg;
    if (registry_get(s->o.reg, name, &cfg) != 0)
        return NULL;
    p = pool_add(s, &cfg);
    fn_config_release(&cfg);
    return p;
}

const fn_config *sched_config(sched *s, const char *name)
{
    pool *p = pool_get(s, name);
    return p && !p->deleted ? &p->cfg : NULL;
}

/* The key of version `version`'s own pool: "name@V" ('@' is in no
 * function name, so it never meets a function's pool). */
static void pinned_key(char *key, size_t size, const char *name, int64_t version)
{
    snprintf(key, size, "%s@%" PRId64, name, version);
}

/* The pool of a kept version of `name` other than the current one, made
 * from the registry on first use; NULL when that version is not kept.
 * Its config is that version's: never pre-warmed (min_instances 0), its
 * idle workers stop after its keep-alive like any. */
static pool *pool_get_version(sched *s, const char *name, int64_t version)
{
    char key[FN_NAME_MAX + 24];
    pinned_key(key, sizeof key, name, version);
    pool *p = strmap_get(&s->pools, key);
    if (p)
        return p;
    fn_config cfg;
    if (registry_get_version(s->o.reg, name, version, &cfg) != 0)
        return NULL;
    cfg.min_instances = 0;
    p = calloc(1, sizeof *p);
    if (p) {
        p->cfg = cfg;
        p->s = s;
        p->pinned = true;
        if (strmap_put(&s->pools, key, p) == 0)
            return p;
        free(p);
    }
    fn_config_release(&cfg);
    return NULL;
}

/* Moves an idle worker to another pool of its function (its version's own
 * pool, or the function's when its version becomes current again). */
static void move_idle(pool *from, pool *to, worker *w)
{
    bool fresh = w->secrets_gen == from->secrets_gen;
    pool_unlink(from, w);
    pool_link(to, w);
    w->secrets_gen = fresh ? to->secrets_gen : to->secrets_gen - 1;
}

static worker *idle_worker(pool *p)
{
    worker *best = NULL;
    for (worker *w = p->workers; w; w = w->next)
        if (w->state == WORKER_IDLE && !w->stopping && is_current(p, w) &&
            (!best || w->last_used_ms > best->last_used_ms))
            best = w;
    return best;
}

/* Workers the pool may still add for calls: max_concurrency minus busy. */
static unsigned spare_capacity(const pool *p)
{
    unsigned busy = count_current(p, WORKER_BUSY), cap = (unsigned)p->cfg.max_concurrency;
    return busy < cap ? cap - busy : 0;
}

static void refuse_queue_full(sched_call *c, const pool *p)
{
    sched_result res = {.status = 429, .code = "queue_full", .retry_after_s = 1};
    snprintf(res.message, sizeof res.message,
             "the queue of '%s' is full (max_queue %u requests wait for its busy workers)",
             p->cfg.name, pool_max_queue(p->s, p));
    finish(c, &res);
}

void sched_invoke(sched *s, sched_call *c)
{
    if (s->shutting_down) {
        fail(c, 503, "overloaded", "the daemon is shutting down");
        return;
    }
    pool *p = pool_get(s, c->function);
    if (!p) {
        fail(c, 404, "function_not_found", "no function named '%s'", c->function);
        return;
    }
    if (c->version && c->version != p->cfg.version) {
        pool *v = pool_get_version(s, c->function, c->version);
        if (!v) {
            fail(c, 404, "version_not_found", "'%s' has no version %" PRId64 " (it may be pruned)",
                 c->function, c->version);
            return;
        }
        p = v;
    }
    struct sched_call_impl *im = c->impl;
    im->p = p; /* from here on the call counts in the pool's metrics */
    im->arrived_ns = uv_hrtime();
    note_arrival(s, p);
    worker *w = idle_worker(p);
    if (!w && !c->background &&
        p->qlen - p->bg_queued >= pool_max_queue(s, p) + spare_capacity(p)) {
        refuse_queue_full(c, p);
        return;
    }
    im->s = s;
    im->arrived = uv_now(s->o.loop);
    im->deadline = im->arrived + (uint64_t)p->cfg.timeout_ms;
    uv_timer_init(s->o.loop, &im->timer);
    im->timer.data = im;
    if (w) {
        dispatch(s, w, c);
        return;
    }
    im->queue_timer = p->cfg.queue_timeout_ms < p->cfg.timeout_ms;
    uv_timer_start(&im->timer, on_deadline,
                   (uint64_t)(im->queue_timer ? p->cfg.queue_timeout_ms : p->cfg.timeout_ms), 0);
    queue_push(p, c);
    pool_fill(s, p);
}

void sched_update(sched *s, const fn_config *cfg)
{
    pool *p = strmap_get(&s->pools, cfg->name);
    if (!p) {
        /* Otherwise made from the registry on first call. */
        if (cfg->min_instances > 0 && (p = pool_add(s, cfg)))
            pool_fill(s, p);
        return;
    }
    fn_config_release(&p->cfg);
    p->cfg = *cfg;
    fn_config_retain(&p->cfg);
    p->prewarm_backoff_ms = p->prewarm_not_before = 0; /* the new code may start */
    char key[FN_NAME_MAX + 24];
    pinned_key(key, sizeof key, cfg->name, cfg->version);
    pool *was = strmap_get(&s->pools, key); /* a rollback to a version kept warm */
    worker *next;
    for (worker *w = was ? was->workers : NULL; w; w = next) {
        next = w->next;
        if (w->state == WORKER_IDLE && !w->stopping)
            move_idle(was, p, w);
    }
    for (worker *w = p->workers; w; w = next) {
        next = w->next;
        if (w->version == cfg->version || w->state == WORKER_BUSY || w->stopping)
            continue;
        pool *own =
            w->state == WORKER_IDLE && registry_version_aliased(s->o.reg, cfg->name, w->version)
                ? pool_get_version(s, cfg->name, w->version)
                : NULL;
        if (own)
            move_idle(p, own, w);
        else
            stop_worker(s, w);
    }
    sched_versions_changed(s, cfg->name);
    pool_fill(s, p);
}

struct pinned_walk {
    const char *name;
    size_t name_len;
    pool *found[64];
    size_t n;
};

/* Collects the version pools of one function (the map cannot change
 * while it is walked). */
static int collect_pinned(const char *key, void *value, void *ud)
{
    struct pinned_walk *pw = ud;
    pool *p = value;
    if (p->pinned && strncmp(key, pw->name, pw->name_len) == 0 && key[pw->name_len] == '@' &&
        pw->n < sizeof pw->found / sizeof pw->found[0])
        pw->found[pw->n++] = p;
    return 0;
}

static void find_pinned(sched *s, const char *name, struct pinned_walk *pw)
{
    pw->name = name;
    pw->name_len = strlen(name);
    pw->n = 0;
    strmap_each(&s->pools, collect_pinned, pw);
}

int sched_resolve(sched *s, const char *name, const char *qual, int64_t *version)
{
    return qualifier_resolve(s->o.reg, name, qual, version);
}

void sched_versions_changed(sched *s, const char *name)
{
    struct pinned_walk pw;
    find_pinned(s, name, &pw);
    pool *main = strmap_get(&s->pools, name);
    for (size_t i = 0; i < pw.n; i++) {
        pool *p = pw.found[i];
        if (main && p->cfg.version != main->cfg.version &&
            registry_version_aliased(s->o.reg, name, p->cfg.version))
            continue;
        for (worker *w = p->workers; w; w = w->next)
            if (w->state == WORKER_IDLE && !w->stopping)
                stop_worker(s, w);
    }
}

/* A pool whose function lists the secret: its workers started before
 * now hold the old value. Idle and starting ones stop at once, busy ones
 * after their call (worker_free_now), as on a deploy. */
static int refresh_pool(const char *key, void *value, void *ud)
{
    (void)key;
    pool *p = value;
    const char *secret = ud;
    if (p->deleted || !fn_config_lists_secret(&p->cfg, secret))
        return 0;
    p->secrets_gen++;
    for (worker *w = p->workers; w; w = w->next)
        if (!is_current(p, w) && w->state != WORKER_BUSY)
            stop_worker(p->s, w);
    p->prewarm_backoff_ms = p->prewarm_not_before = 0; /* a fixed secret may start */
    pool_fill(p->s, p);
    return 0;
}

void sched_secret_changed(sched *s, const char *secret)
{
    strmap_each(&s->pools, refresh_pool, (void *)secret);
}

/* Ends everything of `p`: waiting calls get `status`/`code`, calls in
 * flight too, and every worker stops. The pool frees itself once its last
 * worker is reaped. */
static void pool_end(sched *s, pool *p, unsigned status, const char *code, const char *why)
{
    p->deleted = true;
    set_hungry(s, p, false);
    sched_call *c;
    while ((c = queue_pop(p)))
        fail(c, status, code, "%s", why);
    for (worker *w = p->workers; w; w = w->next) {
        if (sw_of(w)->call)
            fail(sw_of(w)->call, status == 404 ? 502 : status,
                 status == 404 ? "function_crashed" : code, "%s", why);
        stop_worker(s, w);
    }
    if (p->nworkers == 0)
        pool_free(p);
}

/* Ends every version pool of `name`. A walk finds at most 64 at a time:
 * it walks again until none is left. */
static void end_pinned(sched *s, const char *name)
{
    struct pinned_walk pw;
    do {
        find_pinned(s, name, &pw);
        for (size_t i = 0; i < pw.n; i++) {
            char key[FN_NAME_MAX + 24];
            pool *p = pw.found[i];
            pinned_key(key, sizeof key, name, p->cfg.version);
            strmap_remove(&s->pools, key);
            p->removed = true;
            for (worker *w = p->workers; w; w = w->next)
                worker_mute_logs(w);
            pool_end(s, p, 404, "function_not_found", "the function was deleted");
        }
    } while (pw.n > 0);
}

void sched_version_pruned(sched *s, const char *name, int64_t version)
{
    char key[FN_NAME_MAX + 24];
    pinned_key(key, sizeof key, name, version);
    pool *p = strmap_remove(&s->pools, key);
    if (p)
        pool_end(s, p, 404, "version_not_found", "the version was pruned");
}

void sched_remove(sched *s, const char *name)
{
    end_pinned(s, name);
    pool *p = strmap_remove(&s->pools, name);
    if (!p)
        return;
    /* Its logs are deleted with it; what its workers still print, even
     * drained at their exit, must not bring them back under a new
     * function of the same name. */
    p->removed = true;
    for (worker *w = p->workers; w; w = w->next)
        worker_mute_logs(w);
    violations_forget(s->o.violations, name);
    pool_end(s, p, 404, "function_not_found", "the function was deleted");
}

static void pool_state(const pool *p, sched_pool_state *out)
{
    memset(out, 0, sizeof *out);
    for (const worker *w = p->workers; w; w = w->next) {
        if (w->stopping)
            continue;
        if (w->state == WORKER_STARTING)
            out->starting++;
        else if (w->state == WORKER_IDLE)
            out->idle++;
        else if (w->state == WORKER_BUSY)
            out->busy++;
    }
    out->queued = p->qlen;
    out->cold_starts = p->m.events[METRICS_COLD_STARTS];
    out->warm_starts = p->m.warm_starts;
    if (p->cfg.adaptive_keep_alive && p->ka_last) {
        out->adaptive_reason = ka_reason_name(p->ka_dec.reason);
        out->prewarm_after_ms = p->ka_dec.prewarm_after_ms;
        out->window_ms = p->ka_dec.keep_alive_ms;
    }
}

void sched_pool_state_of(sched *s, const char *name, sched_pool_state *out)
{
    pool *p = strmap_get(&s->pools, name);
    if (p)
        pool_state(p, out);
    else
        memset(out, 0, sizeof *out);
}

struct each_pool {
    sched_pool_visit_fn fn;
    void *ud;
};

static int visit_pool(const char *name, void *value, void *ud)
{
    struct each_pool *ep = ud;
    const pool *p = value;
    if (p->pinned) /* its calls count in its function's series */
        return 0;
    sched_pool_state st;
    pool_state(p, &st);
    return ep->fn(name, &p->m, &st, ep->ud);
}

int sched_each_pool(sched *s, sched_pool_visit_fn fn, void *ud)
{
    struct each_pool ep = {fn, ud};
    return strmap_each(&s->pools, visit_pool, &ep);
}

struct pool_ending {
    sched *s;
    const char *code, *why;
};

static int end_pool(const char *name, void *value, void *ud)
{
    (void)name;
    struct pool_ending *e = ud;
    pool_end(e->s, value, 503, e->code, e->why);
    return 0;
}

static void end_all(sched *s, const char *code, const char *why)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    uv_timer_stop(&s->sweep);
    uv_timer_stop(&s->init_timer);
    prebuilt_shutdown(s);
    struct pool_ending e = {s, code, why};
    strmap_each(&s->pools, end_pool, &e);
    strmap_release(&s->pools);
}

void sched_shutdown(sched *s)
{
    end_all(s, "overloaded", "the daemon is shutting down");
}

void sched_spawner_lost(sched *s)
{
    end_all(s, "spawner_lost", SPAWNER_LOST_WHY);
}

unsigned sched_live(const sched *s)
{
    return s->nworkers;
}

/* An idle worker's time is up: keep_alive_s since its last call, or,
 * adaptive, outside the window the policy predicts for the next call. */
static bool idle_expired(const sched *s, const pool *p, const worker *w, uint64_t now)
{
    if (p->cfg.adaptive_keep_alive && p->ka_last)
        return !ka_window_open(p, now);
    return now - w->last_used_ms >= pool_keep_alive_ms(s, p);
}

/* Scale to zero: each pool's keep-alive, min_instances excepted. */
static void stop_expired_idle(sched *s)
{
    uint64_t now = uv_now(s->o.loop);
    worker *next;
    for (worker *w = s->idle_head; w; w = next) {
        next = w->idle_next;
        if (!idle_expired(s, sw_of(w)->pool, w, now) || kept_for_min(sw_of(w)->pool, w))
            continue;
        dlog_debug("worker %d idle for %" PRIu64 " ms; stopping it", (int)worker_pid(w),
                   now - w->last_used_ms);
        stop_worker(s, w);
    }
}

static int top_up(const char *name, void *value, void *ud)
{
    (void)name;
    pool *p = value;
    if (p->cfg.min_instances > 0 || p->cfg.adaptive_keep_alive)
        pool_fill(ud, p);
    return 0;
}

static void on_sweep(uv_timer_t *t)
{
    sched *s = t->data;
    stop_expired_idle(s);
    strmap_each(&s->pools, top_up, s); /* pre-warms held back by a failed start */
    prebuilt_fill(s);                  /* a pool shrinks as its busiest second ages out */
}

/* After a restart: the pre-warmed workers of every function that has them. */
static int prewarm_from_registry(const fn_config *cfg, void *ud)
{
    sched *s = ud;
    pool *p;
    if (cfg->min_instances > 0 && !strmap_get(&s->pools, cfg->name) && (p = pool_add(s, cfg)))
        pool_fill(s, p);
    return 0;
}

/* Often enough for the shortest keep-alive and for the adaptive policy's
 * windows, which are whole bins. */
static void start_sweep(sched *s)
{
    uint64_t every = IDLE_SWEEP_MS;
    if (s->o.keep_alive_ms && s->o.keep_alive_ms < every)
        every = s->o.keep_alive_ms;
    if (s->ka.bin_ms < every)
        every = s->ka.bin_ms;
    uv_timer_start(&s->sweep, on_sweep, every ? every : 1, every ? every : 1);
}

void sched_set_limits(sched *s, const sched_limits *lim)
{
    s->o.max_workers = lim->max_workers;
    s->o.max_starting = lim->max_starting ? lim->max_starting : 1;
    s->o.memory_budget_mb = lim->memory_budget_mb;
    s->o.max_queue = lim->max_queue;
    s->o.keep_alive_ms = lim->keep_alive_ms;
    start_sweep(s);
}

int sched_open(const sched_opts *opts, sched **out)
{
    sched *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->o = *opts;
    if (opts->uid_count && !(s->uid_used = calloc(opts->uid_count, sizeof *s->uid_used))) {
        free(s);
        return -ENOMEM;
    }
    ka_params_default(&s->ka);
    if (opts->adaptive_bin_ms)
        s->ka.bin_ms = opts->adaptive_bin_ms;
    strmap_init(&s->pools);
    uv_timer_init(opts->loop, &s->sweep);
    s->sweep.data = s;
    start_sweep(s);
    uv_unref((uv_handle_t *)&s->sweep);
    uv_timer_init(opts->loop, &s->init_timer);
    s->init_timer.data = s;
    uv_unref((uv_handle_t *)&s->init_timer);
    s->open_handles = 3;
    if (prebuilt_open(s) < 0) {
        sched_close(s);
        return -ENOMEM;
    }
    registry_list(opts->reg, prewarm_from_registry, s);
    *out = s;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    sched *s = h->data;
    if (--s->open_handles > 0)
        return;
    prebuilt_close(s);
    free(s->uid_used);
    free(s);
}

void sched_close(sched *s)
{
    if (!s)
        return;
    strmap_release(&s->pools);
    uv_close((uv_handle_t *)&s->sweep, on_timer_closed);
    uv_close((uv_handle_t *)&s->init_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->stem_timer, on_timer_closed);
}
