/*
 * events.c — the dispatcher of asynchronous invocations.
 *
 * Owns, in memory, each function's waiting invocations (a heap of store
 * sequence numbers ordered by when they may run, in loop time) and the
 * counts that bound them; hands attempts to the scheduler and applies the
 * retry policy's decision on each outcome; recovers at start, drains at
 * stop. Taking events in is events_accept.c, sending outcomes on is
 * events_outcome.c. The store (evstore.h) is the truth: whatever is in
 * memory is rebuilt from it at start.
 *
 * The rule against starvation (docs/events.md): a function's async
 * attempts hold at most max_concurrency - 1 of its workers (1 when it has
 * one), all functions' async attempts at most half of --max-workers, and
 * in a pool's queue every synchronous call waits ahead of them (sched.c).
 */
#include "events/events_internal.h"

#include "dlog.h"
#include "events/clock.h"
#include "events/retry.h"
#include "fn_settings.h"
#include "strmap.h"
#include "timefmt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* --- small pieces --- */

static uint32_t jitter(events *ev)
{
    /* xorshift64: the spread of retries needs no secrecy */
    uint64_t x = ev->rnd;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ev->rnd = x;
    return (uint32_t)(x >> 32);
}

uint64_t ev_now_loop(events *ev)
{
    return uv_now(ev->o.loop);
}

static void on_kick(uv_idle_t *h)
{
    (void)h;
}

/* The store took a write, or an acknowledgement waits (a duplicate's,
 * which writes nothing): both go out at the end of this loop turn. The
 * idle handle keeps the loop from sleeping if they came after this turn's
 * check phase. */
void ev_batch_joined(events *ev)
{
    if (ev->armed || (!evstore_dirty(ev->st) && !ev->acks))
        return;
    ev->armed = true;
    uv_idle_start(&ev->kick, on_kick);
    uv_check_start(&ev->commit, ev_on_commit);
}

evfn *ev_fn_get(events *ev, const char *name)
{
    evfn *f = strmap_get(&ev->fns, name);
    if (f)
        return f;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    snprintf(f->name, sizeof f->name, "%s", name);
    if (strmap_put(&ev->fns, name, f) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

static bool before(const evwait *a, const evwait *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void set_active(events *ev, evfn *f, bool on)
{
    if (f->active == on)
        return;
    f->active = on;
    if (on) {
        f->prev_active = NULL;
        f->next_active = ev->active;
        if (ev->active)
            ev->active->prev_active = f;
        ev->active = f;
        return;
    }
    if (f->prev_active)
        f->prev_active->next_active = f->next_active;
    else
        ev->active = f->next_active;
    if (f->next_active)
        f->next_active->prev_active = f->prev_active;
    f->next_active = f->prev_active = NULL;
}

int ev_heap_push(events *ev, evfn *f, int64_t seq, uint64_t due)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        evwait *h = realloc(f->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        f->heap = h;
        f->cap = cap;
    }
    size_t i = f->n++;
    f->heap[i] = (evwait){due, seq};
    while (i > 0 && before(&f->heap[i], &f->heap[(i - 1) / 2])) {
        evwait t = f->heap[i];
        f->heap[i] = f->heap[(i - 1) / 2];
        f->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    set_active(ev, f, true);
    return 0;
}

static int64_t heap_pop(events *ev, evfn *f)
{
    int64_t seq = f->heap[0].seq;
    f->heap[0] = f->heap[--f->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->n && before(&f->heap[l], &f->heap[m]))
            m = l;
        if (r < f->n && before(&f->heap[r], &f->heap[m]))
            m = r;
        if (m == i)
            break;
        evwait t = f->heap[i];
        f->heap[i] = f->heap[m];
        f->heap[m] = t;
        i = m;
    }
    if (f->n == 0)
        set_active(ev, f, false);
    return seq;
}

/* --- limits --- */

static unsigned global_cap(const events *ev)
{
    return ev->o.max_workers / 2 ? ev->o.max_workers / 2 : 1;
}

static unsigned fn_cap(const fn_config *cfg)
{
    return cfg->max_concurrency > 1 ? (unsigned)cfg->max_concurrency - 1 : 1;
}

static retry_policy policy_of(const fn_config *cfg)
{
    return (retry_policy){(unsigned)cfg->async_retries, (uint64_t)cfg->async_retry_base_ms,
                          (uint64_t)cfg->async_max_age_s * 1000};
}

/* --- attempts --- */

static retry_outcome classify(const sched_result *res)
{
    if (!res->code)
        return RETRY_SUCCEEDED;
    if (strcmp(res->code, "function_not_found") == 0 || strcmp(res->code, "alias_not_found") == 0 ||
        strcmp(res->code, "version_not_found") == 0)
        return RETRY_FATAL;
    if (strcmp(res->code, "queue_full") == 0 || strcmp(res->code, "queue_timeout") == 0 ||
        strcmp(res->code, "overloaded") == 0)
        return RETRY_THROTTLED;
    return RETRY_FAILED;
}

static const char *dead_condition(retry_verdict v)
{
    return v == RETRY_TOO_OLD ? "EventAgeExceeded" : "RetriesExhausted";
}

static void record_failure(ev_record *r, const sched_result *res)
{
    snprintf(r->err_code, sizeof r->err_code, "%s", res->code);
    snprintf(r->err_message, sizeof r->err_message, "%s", res->message);
    snprintf(r->err_type, sizeof r->err_type, "%s", res->error_type);
}

static void apply_decision(events *ev, evcall *x, const sched_result *res, retry_decision d)
{
    ev_record *r = &x->rec;
    evfn *f = x->fn;
    const fn_config *cfg = sched_config(ev->o.sch, r->function);
    int64_t now = timefmt_steady_ms();
    ev_error err = {res->code, res->message, res->error_type};
    switch (d.verdict) {
    case RETRY_DONE:
        evstore_complete(ev->st, r->seq, res->body, res->len, res->content_type, now);
        r->status = EV_SUCCEEDED;
        r->finished_ms = now;
        r->result = res->body ? malloc(res->len + 1) : NULL;
        if (r->result) {
            memcpy(r->result, res->body, res->len);
            r->result[res->len] = '\0';
            r->result_len = res->len;
        }
        snprintf(r->result_type, sizeof r->result_type, "%s", res->content_type);
        ev_finished(ev, f, r, cfg, "Success");
        return;
    case RETRY_AGAIN:
    case RETRY_WAIT:
        if (d.verdict == RETRY_AGAIN)
            evstore_retry_at(ev->st, r->seq, now + (int64_t)d.delay_ms, &err);
        else
            evstore_requeue(ev->st, r->seq, now + (int64_t)d.delay_ms);
        if (ev_heap_push(ev, f, r->seq, ev_now_loop(ev) + d.delay_ms) < 0)
            f->pending--; /* in the store still: it runs after a restart */
        return;
    case RETRY_EXHAUSTED:
    case RETRY_TOO_OLD:
    case RETRY_GONE:
        evstore_dead(ev->st, r->seq, &err, now);
        r->status = EV_DEAD;
        r->finished_ms = now;
        record_failure(r, res);
        ev_finished(ev, f, r, cfg, dead_condition(d.verdict));
        return;
    }
}

static void on_attempt_done(sched_call *c, sched_result *res, void *ud)
{
    (void)c;
    evcall *x = ud;
    events *ev = x->ev;
    x->fn->running--;
    ev->running--;
    if (!ev->stopping) {
        const fn_config *cfg = sched_config(ev->o.sch, x->rec.function);
        retry_outcome out = cfg ? classify(res) : RETRY_FATAL;
        if (res->version && res->version != x->rec.version)
            evstore_set_version(ev->st, x->rec.seq, res->version);
        if (res->version)
            x->rec.version = res->version;
        retry_policy pol = cfg ? policy_of(cfg) : (retry_policy){0, 0, 0};
        int64_t age = timefmt_steady_ms() - x->rec.created_ms;
        retry_decision d =
            retry_decide(&pol, out, x->rec.attempts, age > 0 ? (uint64_t)age : 0, jitter(ev));
        apply_decision(ev, x, res, d);
        ev_batch_joined(ev);
    }
    evrec_release(&x->rec);
    free(x);
    if (!ev->stopping)
        ev_pump(ev);
}

/* An invocation that may not start (too old, or its function is gone). */
static void give_up_before_start(events *ev, evcall *x, const char *code, const char *message,
                                 retry_verdict why)
{
    /* It was claimed to be read: that claim was no attempt. */
    if (evstore_requeue(ev->st, x->rec.seq, timefmt_steady_ms()) == 0 && x->rec.attempts > 0)
        x->rec.attempts--;
    sched_result res = {.status = 500, .code = code};
    snprintf(res.message, sizeof res.message, "%s", message);
    apply_decision(ev, x, &res, (retry_decision){why, 0});
    evrec_release(&x->rec);
    free(x);
}

/* Hands a claimed invocation to the scheduler as a background call. */
static void hand_to_sched(events *ev, evcall *x)
{
    /* A qualified invocation runs the version its qualifier names now: an
     * alias moved between attempts moves its retries too. */
    int64_t version = 0;
    if (x->rec.qualifier[0] &&
        sched_resolve(ev->o.sch, x->fn->name, x->rec.qualifier, &version) < 0) {
        sched_result res = {.status = 404, .code = "alias_not_found"};
        snprintf(res.message, sizeof res.message, "'%s' has no alias '%s'", x->fn->name,
                 x->rec.qualifier);
        x->fn->running++; /* as a started attempt, which on_attempt_done ends */
        ev->running++;
        on_attempt_done(NULL, &res, x);
        return;
    }
    sched_call *c = sched_call_new();
    if (!c) {
        x->fn->pending--; /* "running" in the store: runs again after a restart */
        evrec_release(&x->rec);
        free(x);
        return;
    }
    snprintf(c->function, sizeof c->function, "%s", x->fn->name);
    c->version = version;
    snprintf(c->request_id, sizeof c->request_id, "%s", x->rec.id);
    snprintf(c->invocation_id, sizeof c->invocation_id, "%s", x->rec.id);
    snprintf(c->content_type, sizeof c->content_type, "%s", x->rec.content_type);
    c->trigger = "async";
    c->background = true;
    c->attempt = x->rec.attempts;
    c->body = x->rec.payload;
    c->body_len = x->rec.payload_len;
    c->done = on_attempt_done;
    c->ud = x;
    x->fn->running++;
    ev->running++;
    sched_invoke(ev->o.sch, c);
}

static void start_one(events *ev, evfn *f)
{
    int64_t seq = heap_pop(ev, f);
    const fn_config *cfg = sched_config(ev->o.sch, f->name);
    evcall *x = calloc(1, sizeof *x);
    if (!x) {
        f->pending--; /* stays in the store: runs after a restart */
        return;
    }
    x->ev = ev;
    x->fn = f;
    int rc = evstore_claim(ev->st, seq, cfg ? cfg->version : 0, timefmt_steady_ms(), &x->rec);
    ev_batch_joined(ev);
    if (rc < 0) {
        if (rc != -ESTALE) /* -ESTALE: cancelled, and counted then */
            f->pending--;
        free(x);
        return;
    }
    int64_t age = timefmt_steady_ms() - x->rec.created_ms;
    retry_policy pol = cfg ? policy_of(cfg) : (retry_policy){0, 0, 0};
    if (!cfg)
        give_up_before_start(ev, x, "function_not_found", "the function no longer exists",
                             RETRY_GONE);
    else if (!retry_may_start(&pol, age > 0 ? (uint64_t)age : 0))
        give_up_before_start(ev, x, "event_too_old",
                             "the event is older than the function's async_max_age_s",
                             RETRY_TOO_OLD);
    else
        hand_to_sched(ev, x);
}

static bool may_start(const events *ev, const evfn *f, uint64_t now, const fn_config **cfg)
{
    if (!f->n || f->heap[0].due > now || ev->running >= global_cap(ev))
        return false;
    *cfg = sched_config(ev->o.sch, f->name);
    return !*cfg || f->running < fn_cap(*cfg);
}

static void on_wake(uv_timer_t *t)
{
    ev_pump(t->data);
}

static void arm_wake(events *ev, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (evfn *f = ev->active; f; f = f->next_active)
        if (f->heap[0].due > now && f->heap[0].due < next)
            next = f->heap[0].due;
    if (next == UINT64_MAX)
        uv_timer_stop(&ev->wake);
    else
        uv_timer_start(&ev->wake, on_wake, next - now, 0);
}

/* Starts every invocation that may start now, one per function per round
 * so that one function's backlog does not hold back the others. */
void ev_pump(events *ev)
{
    if (ev->draining)
        return;
    uint64_t now = ev_now_loop(ev);
    bool progress = true;
    while (progress && ev->running < global_cap(ev)) {
        progress = false;
        evfn *next;
        for (evfn *f = ev->active; f && ev->running < global_cap(ev); f = next) {
            next = f->next_active; /* start_one may take f off the list */
            const fn_config *cfg;
            if (may_start(ev, f, now, &cfg)) {
                start_one(ev, f);
                progress = true;
            }
        }
    }
    arm_wake(ev, now);
}

/* --- the schedule clock's view of the core (clock.h) --- */

static int clock_fire(void *ud, const char *function, const char *qualifier, const char *source,
                      const json_t *event, char id[EV_ID_LEN + 1])
{
    char *text = json_dumps(event, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    event_new e = {.function = function,
                   .qualifier = qualifier,
                   .payload = text,
                   .len = strlen(text),
                   .content_type = "application/json",
                   .source = source};
    int rc = ev_submit_internal(ud, &e, id);
    free(text);
    return rc;
}

static bool clock_pending(void *ud, const char *id)
{
    events *ev = ud;
    ev_record r;
    if (evstore_get(ev->st, id, &r) < 0)
        return false;
    bool pending = ev_status_pending(r.status);
    evrec_release(&r);
    return pending;
}

static int clock_last(void *ud, const char *function, const char *key, int64_t *fired_s,
                      char id[EV_ID_LEN + 1])
{
    events *ev = ud;
    return evstore_schedule_last(ev->st, function, key, fired_s, id);
}

static void clock_fired(void *ud, const char *function, const char *key, int64_t fired_s,
                        const char *id)
{
    events *ev = ud;
    if (evstore_schedule_fired(ev->st, function, key, fired_s, id) < 0)
        dlog_warn("events: could not record the firing of %s's schedule %s", function, key);
    ev_batch_joined(ev);
}

static int64_t clock_now(void *ud)
{
    (void)ud;
    return timefmt_now_ms();
}

/* --- reads --- */

int events_get(events *ev, const char *id, ev_record *out)
{
    return evstore_get(ev->st, id, out);
}

int events_list(events *ev, const char *function, int status, unsigned limit, evstore_visit_fn fn,
                void *ud)
{
    return evstore_list(ev->st, function, status, limit, fn, ud);
}

int events_backlog(events *ev, const char *function, const char *source, int64_t *out)
{
    return evstore_backlog(ev->st, function, source, out);
}

int events_schedule_last(events *ev, const char *function, const char *key, int64_t *fired_s,
                         char id[EV_ID_LEN + 1])
{
    return evstore_schedule_last(ev->st, function, key, fired_s, id);
}

void events_state_of(events *ev, const char *function, events_state *out)
{
    const evfn *f = strmap_get(&ev->fns, function);
    out->running = f ? f->running : 0;
    out->waiting = f ? f->pending - f->running : 0;
}

const topics *events_topics(const events *ev)
{
    return ev->tp;
}

void events_function_updated(events *ev, const fn_config *cfg)
{
    if (topics_update(ev->tp, cfg) < 0 || clock_update(ev->clock, cfg) < 0)
        dlog_error("events: out of memory taking the subscriptions and schedules of '%s'",
                   cfg->name);
    ev_pump(ev); /* a higher max_concurrency may let more start */
}

void events_function_removed(events *ev, const char *name)
{
    topics_remove(ev->tp, name);
    clock_remove(ev->clock, name);
    ev_pump(ev); /* its waiting invocations die as function_not_found */
}

/* --- start, retention, stop --- */

/* A waiting invocation found at start (recover has put those that were
 * running back to waiting). */
static int recover_one(ev_record *r, void *ud)
{
    events *ev = ud;
    evfn *f = ev_fn_get(ev, r->function);
    if (!f)
        return -ENOMEM;
    int64_t wait = r->run_at_ms - timefmt_steady_ms();
    f->pending++;
    return ev_heap_push(ev, f, r->seq, ev_now_loop(ev) + (uint64_t)(wait > 0 ? wait : 0));
}

static int resend_callback(ev_record *r, void *ud)
{
    ev_send_callback(ud, r);
    return 0;
}

/* Subscriptions and schedules of every function, at start (a schedule
 * whose time passed while the daemon was stopped fires once here). */
static int index_function(const fn_config *cfg, void *ud)
{
    events *ev = ud;
    int rc = topics_update(ev->tp, cfg);
    return rc ? rc : clock_update(ev->clock, cfg);
}

static void on_sweep(uv_timer_t *t)
{
    events *ev = t->data;
    int64_t now = timefmt_steady_ms();
    if (evstore_expire(ev->st, now - (int64_t)ev->o.result_retention_ms,
                       now - EVENTS_IDEMPOTENCY_MS) == 0)
        ev_batch_joined(ev);
}

static int recover(events *ev, registry *reg)
{
    /* Those running when the daemon stopped go back to waiting, their
     * attempt not counted (hearthd check --repair does the same). */
    int rc = evstore_requeue_running(ev->st, timefmt_steady_ms());
    if (rc == 0)
        rc = evstore_each_pending(ev->st, recover_one, ev);
    if (rc == 0)
        rc = evstore_commit(ev->st);
    if (rc == 0)
        rc = evstore_each_unsent_callback(ev->st, resend_callback, ev);
    if (rc == 0 && reg)
        rc = registry_list(reg, index_function, ev);
    return rc;
}

int events_open(const events_opts *o, registry *reg, events **out)
{
    *out = NULL;
    events *ev = calloc(1, sizeof *ev);
    if (!ev) {
        evstore_close(o->store);
        return -ENOMEM;
    }
    ev->o = *o;
    strmap_init(&ev->fns);
    ev->acks_tail = &ev->acks;
    if (getrandom(&ev->rnd, sizeof ev->rnd, 0) != sizeof ev->rnd || !ev->rnd)
        ev->rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)timefmt_now_ms();
    ev->st = o->store;
    ev->tp = topics_new();
    clock_ops cops = {clock_fire, clock_pending, clock_last, clock_fired, clock_now, ev};
    ev->clock = clock_new(o->loop, &cops);
    int rc = ev->tp && ev->clock ? 0 : -ENOMEM;
    if (rc == 0) {
        uv_check_init(o->loop, &ev->commit);
        uv_idle_init(o->loop, &ev->kick);
        uv_timer_init(o->loop, &ev->wake);
        uv_timer_init(o->loop, &ev->sweep);
        ev->commit.data = ev->kick.data = ev->wake.data = ev->sweep.data = ev;
        rc = recover(ev, reg);
        if (rc < 0) {
            events_close_handles(ev);
            uv_run(o->loop, UV_RUN_NOWAIT);
        }
    } else if (ev->clock) {
        clock_close_handles(ev->clock);
        uv_run(o->loop, UV_RUN_NOWAIT);
    }
    if (rc < 0) {
        events_close(ev);
        return rc;
    }
    uint64_t every = o->result_retention_ms / 2;
    every = every < 100 ? 100 : every > 60000 ? 60000 : every;
    uv_timer_start(&ev->sweep, on_sweep, every, every);
    ev_pump(ev);
    *out = ev;
    return 0;
}

void events_drain(events *ev)
{
    if (!ev)
        return;
    ev->draining = true;
    uv_timer_stop(&ev->wake);
}

unsigned events_running(const events *ev)
{
    return ev ? ev->running : 0;
}

void events_shutdown(events *ev)
{
    ev->draining = ev->stopping = true;
    uv_timer_stop(&ev->wake);
    uv_timer_stop(&ev->sweep);
}

void events_close_handles(events *ev)
{
    if (!ev)
        return;
    uv_close((uv_handle_t *)&ev->commit, NULL);
    uv_close((uv_handle_t *)&ev->kick, NULL);
    uv_close((uv_handle_t *)&ev->wake, NULL);
    uv_close((uv_handle_t *)&ev->sweep, NULL);
    clock_close_handles(ev->clock);
}

static int free_fn(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    evfn *f = value;
    free(f->heap);
    free(f);
    return 0;
}

void events_close(events *ev)
{
    if (!ev)
        return;
    if (ev->st && evstore_commit(ev->st) < 0)
        dlog_error("events: the last batch could not be committed");
    for (evack *k = ev->acks, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    evstore_close(ev->st);
    topics_free(ev->tp);
    clock_free(ev->clock);
    strmap_each(&ev->fns, free_fn, NULL);
    strmap_release(&ev->fns);
    free(ev);
}
