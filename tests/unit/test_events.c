/*
 * test_events.c — the event core without a daemon: the retry policy as a
 * pure function of made-up times; the sqlite store's transitions, batch
 * and recovery; and the dispatcher driven by fake workers (this file
 * defines the scheduler functions events.c calls, so no process starts):
 * acknowledgement only after the commit, the per-function and global
 * shares, retries to dead, throttling that costs no attempt, cancel,
 * queue bounds, destinations, and recovery of a cut-off attempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events/events.h"
#include "events/invocation_json.h"
#include "failalloc.h"
#include "events/retry.h"
#include "fn_settings.h"
#include "sched.h"

/* --- the fake scheduler --- */

#define MAX_FNS   4
#define MAX_CALLS 64

static fn_config fns[MAX_FNS];
static size_t nfns;
static sched_call *calls[MAX_CALLS]; /* handed over, not yet answered */
static size_t ncalls;

sched_call *sched_call_new(void)
{
    return calloc(1, sizeof(sched_call));
}

void sched_invoke(sched *s, sched_call *c)
{
    (void)s;
    assert_true(c->background);
    assert_string_equal(c->trigger, "async");
    assert_true(ncalls < MAX_CALLS);
    calls[ncalls++] = c;
}

const fn_config *sched_config(sched *s, const char *name)
{
    (void)s;
    for (size_t i = 0; i < nfns; i++)
        if (strcmp(fns[i].name, name) == 0)
            return &fns[i];
    return NULL;
}

/* Qualified invocations: "v<N>" stands for version N, anything else is
 * an unknown alias. */
int sched_resolve(sched *s, const char *name, const char *qual, int64_t *version)
{
    (void)s, (void)name;
    if (qual[0] != 'v')
        return -ENOENT;
    *version = atoi(qual + 1);
    return 0;
}

static fn_config *add_fn(const char *name, int64_t max_concurrency, int64_t retries)
{
    fn_config *f = &fns[nfns++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    fnset_defaults(f);
    f->version = 1;
    f->max_concurrency = max_concurrency;
    f->async_retries = retries;
    f->async_retry_base_ms = 1;
    return f;
}

/* Answers handed-over call i: success (code NULL) or an error code. */
static void answer(size_t i, const char *code, const char *body)
{
    sched_call *c = calls[i];
    memmove(&calls[i], &calls[i + 1], (ncalls - i - 1) * sizeof *calls);
    ncalls--;
    sched_result res = {.status = code ? 500 : 200, .code = code, .version = 1};
    if (body) {
        res.body = strdup(body);
        res.len = strlen(body);
        snprintf(res.content_type, sizeof res.content_type, "application/json");
    }
    c->done(c, &res, c->ud);
    free(res.body);
    free(c);
}

/* --- a dispatcher on a real loop and a temporary store --- */

static char dir[64];
static uv_loop_t loop;

static events *open_events(unsigned max_workers)
{
    char path[128];
    snprintf(path, sizeof path, "%s/events.db", dir);
    evstore *st;
    assert_int_equal(evstore_open(path, &st), 0);
    events_opts o = {
        .loop = &loop, .store = st, .result_retention_ms = 3600000, .max_workers = max_workers};
    events *ev;
    assert_int_equal(events_open(&o, NULL, &ev), 0);
    return ev;
}

/* A stop, as main.c does it: the scheduler answers what it holds 503. */
static void close_events(events *ev)
{
    events_shutdown(ev);
    while (ncalls)
        answer(0, "overloaded", NULL);
    events_close_handles(ev);
    uv_run(&loop, UV_RUN_NOWAIT);
    events_close(ev);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hearth-test-events-XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    nfns = ncalls = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    while (ncalls)
        free(calls[--ncalls]);
    uv_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

/* Runs loop turns until pred holds or 2 s pass. */
static void turn_until(bool (*pred)(void))
{
    for (int i = 0; i < 2000 && !pred(); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static event_ack last_ack;
static unsigned acks;

static void on_ack(const event_ack *a, void *ud)
{
    (void)ud;
    last_ack = *a;
    acks++;
}

static void submit(events *ev, const char *fn, const char *payload)
{
    event_new e = {.function = fn,
                   .payload = payload,
                   .len = strlen(payload),
                   .content_type = "application/json",
                   .source = "invoke"};
    events_submit(ev, &e, on_ack, NULL);
}

static size_t want_calls;
static bool enough_calls(void)
{
    return ncalls >= want_calls;
}

/* Asserts invocation `id`'s status, attempts and last error code ("" for none). */
static void assert_record(events *ev, const char *id, ev_status status, unsigned attempts,
                          const char *code)
{
    ev_record r;
    assert_int_equal(events_get(ev, id, &r), 0);
    assert_int_equal(r.status, status);
    assert_int_equal(r.attempts, attempts);
    assert_string_equal(r.err_code, code);
    evrec_release(&r);
}

/* --- the retry policy: a pure function --- */

static void test_backoff_is_bounded_exponential_full_jitter(void **state)
{
    (void)state;
    for (unsigned f = 1; f <= 20; f++) {
        uint64_t bound = 1000ull << (f - 1 > 20 ? 20 : f - 1);
        if (bound > RETRY_CAP_MS)
            bound = RETRY_CAP_MS;
        assert_int_equal(retry_backoff_ms(f, 1000, RETRY_CAP_MS, 0), 0);
        assert_true(retry_backoff_ms(f, 1000, RETRY_CAP_MS, UINT32_MAX) <= bound);
        assert_true(retry_backoff_ms(f, 1000, RETRY_CAP_MS, (uint32_t)bound) == bound);
    }
    assert_int_equal(retry_backoff_ms(30, 1000, RETRY_CAP_MS, RETRY_CAP_MS), RETRY_CAP_MS);
}

static void test_decisions(void **state)
{
    (void)state;
    retry_policy p = {.retries = 2, .base_ms = 100, .max_age_ms = 60000};
    assert_int_equal(retry_decide(&p, RETRY_SUCCEEDED, 1, 0, 7).verdict, RETRY_DONE);
    retry_decision d = retry_decide(&p, RETRY_FAILED, 1, 0, 50);
    assert_int_equal(d.verdict, RETRY_AGAIN);
    assert_int_equal(d.delay_ms, 50);
    assert_int_equal(retry_decide(&p, RETRY_FAILED, 2, 0, 7).verdict, RETRY_AGAIN);
    assert_int_equal(retry_decide(&p, RETRY_FAILED, 3, 0, 7).verdict, RETRY_EXHAUSTED);
    /* The age limit: a retry that would start past it is not made. */
    assert_int_equal(retry_decide(&p, RETRY_FAILED, 1, 59990, 50).verdict, RETRY_TOO_OLD);
    assert_int_equal(retry_decide(&p, RETRY_FATAL, 1, 0, 7).verdict, RETRY_GONE);
    /* Throttled: waits, whatever the attempts, until too old. */
    assert_int_equal(retry_decide(&p, RETRY_THROTTLED, 9, 0, 7).verdict, RETRY_WAIT);
    assert_int_equal(retry_decide(&p, RETRY_THROTTLED, 1, 60001, 7).verdict, RETRY_TOO_OLD);
    retry_policy none = {.retries = 0, .base_ms = 100, .max_age_ms = 60000};
    assert_int_equal(retry_decide(&none, RETRY_FAILED, 1, 0, 7).verdict, RETRY_EXHAUSTED);
    assert_true(retry_may_start(&p, 60000));
    assert_false(retry_may_start(&p, 60001));
}

/* --- the store --- */

static evstore *open_store(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/events.db", dir);
    evstore *st;
    assert_int_equal(evstore_open(path, &st), 0);
    return st;
}

static int64_t put(evstore *st, const char *id, const char *fn, const char *key)
{
    ev_record r = {0};
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.function, sizeof r.function, "%s", fn);
    snprintf(r.source, sizeof r.source, "invoke");
    snprintf(r.idem_key, sizeof r.idem_key, "%s", key ? key : "");
    r.created_ms = r.run_at_ms = 1000;
    r.payload = "{}";
    r.payload_len = 2;
    assert_int_equal(evstore_enqueue(st, &r), 0);
    return r.seq;
}

static int count_visit(ev_record *r, void *ud)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static void test_store_transitions(void **state)
{
    (void)state;
    evstore *st = open_store();
    int64_t a = put(st, "a", "f", "k1"), b = put(st, "b", "f", NULL);
    assert_true(evstore_dirty(st));
    assert_int_equal(evstore_commit(st), 0);
    char id[EV_ID_LEN + 1];
    assert_int_equal(evstore_find_key(st, "f", "k1", 0, id), 0);
    assert_string_equal(id, "a");
    assert_int_equal(evstore_find_key(st, "f", "k1", 2000, id), -ENOENT); /* too old */
    assert_int_equal(evstore_find_key(st, "g", "k1", 0, id), -ENOENT);
    ev_record r;
    assert_int_equal(evstore_claim(st, a, 3, 2000, &r), 0);
    assert_int_equal(r.status, EV_RUNNING);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.version, 3);
    assert_memory_equal(r.payload, "{}", 2);
    evrec_release(&r);
    assert_int_equal(evstore_claim(st, a, 3, 2000, &r), -ESTALE); /* running already */
    /* A cut-off attempt goes back without counting. */
    assert_int_equal(evstore_requeue(st, a, 2500), 0);
    assert_int_equal(evstore_get(st, "a", &r), 0);
    assert_int_equal(r.status, EV_QUEUED);
    assert_int_equal(r.attempts, 0);
    evrec_release(&r);
    assert_int_equal(evstore_claim(st, a, 3, 3000, &r), 0);
    evrec_release(&r);
    ev_error err = {"function_error", "boom", "ValueError"};
    assert_int_equal(evstore_retry_at(st, a, 9000, &err), 0);
    assert_int_equal(evstore_get(st, "a", &r), 0);
    assert_int_equal(r.status, EV_RETRYING);
    assert_string_equal(r.err_type, "ValueError");
    assert_int_equal(r.run_at_ms, 9000);
    evrec_release(&r);
    assert_int_equal(evstore_claim(st, a, 3, 9000, &r), 0);
    evrec_release(&r);
    assert_int_equal(evstore_dead(st, a, &err, 9500), 0);
    assert_int_equal(evstore_cancel(st, a, 9600), -ESTALE); /* dead: not cancellable */
    assert_int_equal(evstore_redrive(st, a, 9700), 0);
    assert_int_equal(evstore_get(st, "a", &r), 0);
    assert_int_equal(r.status, EV_QUEUED);
    assert_int_equal(r.attempts, 0);
    evrec_release(&r);
    assert_int_equal(evstore_redrive(st, a, 9700), -ESTALE); /* not dead */
    assert_int_equal(evstore_cancel(st, b, 9800), 0);
    assert_int_equal(evstore_claim(st, b, 1, 9900, &r), -ESTALE);
    assert_int_equal(evstore_claim(st, a, 1, 9900, &r), 0);
    evrec_release(&r);
    assert_int_equal(evstore_complete(st, a, "42", 2, "application/json", 10000), 0);
    assert_int_equal(evstore_commit(st), 0);
    assert_int_equal(evstore_get(st, "a", &r), 0);
    assert_int_equal(r.status, EV_SUCCEEDED);
    assert_int_equal(r.result_len, 2);
    evrec_release(&r);
    int n = 0;
    assert_int_equal(evstore_list(st, "f", EV_CANCELLED, 10, count_visit, &n), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(evstore_each_pending(st, count_visit, &n), 0);
    assert_int_equal(n, 0);
    /* Retention: finished before the cutoff are forgotten. */
    assert_int_equal(evstore_expire(st, 20000, 0), 0);
    assert_int_equal(evstore_commit(st), 0);
    assert_int_equal(evstore_get(st, "a", &r), -ENOENT);
    evstore_close(st);
}

/* What the daemon does at start and hearthd check --repair does: every
 * running invocation back to waiting, its cut-off attempt not counted. */
static void test_store_requeue_running(void **state)
{
    (void)state;
    evstore *st = open_store();
    int64_t a = put(st, "a", "f", NULL), b = put(st, "b", "f", NULL);
    put(st, "c", "f", NULL);
    ev_record r;
    assert_int_equal(evstore_claim(st, a, 1, 2000, &r), 0);
    evrec_release(&r);
    assert_int_equal(evstore_claim(st, b, 1, 2000, &r), 0);
    evrec_release(&r);
    ev_error err = {"function_error", "boom", "ValueError"};
    assert_int_equal(evstore_retry_at(st, b, 3000, &err), 0);
    assert_int_equal(evstore_claim(st, b, 1, 3000, &r), 0);
    evrec_release(&r);
    assert_int_equal(evstore_requeue_running(st, 7000), 0);
    assert_int_equal(evstore_commit(st), 0);
    assert_int_equal(evstore_get(st, "a", &r), 0);
    assert_int_equal(r.status, EV_QUEUED);
    assert_int_equal(r.attempts, 0);
    assert_int_equal(r.run_at_ms, 7000);
    evrec_release(&r);
    assert_int_equal(evstore_get(st, "b", &r), 0);
    assert_int_equal(r.status, EV_RETRYING);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.run_at_ms, 7000);
    evrec_release(&r);
    assert_int_equal(evstore_get(st, "c", &r), 0); /* was not running: untouched */
    assert_int_equal(r.status, EV_QUEUED);
    assert_int_equal(r.run_at_ms, 1000);
    evrec_release(&r);
    assert_int_equal(evstore_requeue_running(st, 8000), 0); /* none left: fine */
    assert_int_equal(evstore_commit(st), 0);
    evstore_close(st);
}

static void test_store_uncommitted_batch_is_lost(void **state)
{
    (void)state;
    evstore *st = open_store();
    put(st, "kept", "f", NULL);
    assert_int_equal(evstore_commit(st), 0);
    put(st, "lost", "f", NULL);
    evstore_close(st); /* no commit: as a crash before the fsync */
    st = open_store();
    ev_record r;
    assert_int_equal(evstore_get(st, "kept", &r), 0);
    evrec_release(&r);
    assert_int_equal(evstore_get(st, "lost", &r), -ENOENT);
    int64_t fired;
    char id[EV_ID_LEN + 1];
    assert_int_equal(evstore_schedule_last(st, "f", "0", &fired, id), -ENOENT);
    assert_int_equal(evstore_schedule_fired(st, "f", "0", 1234, "kept"), 0);
    assert_int_equal(evstore_commit(st), 0);
    assert_int_equal(evstore_schedule_last(st, "f", "0", &fired, id), 0);
    assert_int_equal(fired, 1234);
    evstore_close(st);
}

/* --- the dispatcher with fake workers --- */

static bool acked(void)
{
    return acks > 0;
}

static void test_ack_waits_for_the_commit_and_shares_hold(void **state)
{
    (void)state;
    add_fn("f", 3, 0); /* async may use 2 of its 3 workers */
    events *ev = open_events(64);
    acks = 0;
    for (int i = 0; i < 5; i++)
        submit(ev, "f", "{}");
    assert_int_equal(acks, 0); /* nothing is durable before the loop's turn ends */
    assert_int_equal(ncalls, 0);
    turn_until(acked);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(acks, 5);
    assert_int_equal(last_ack.status, 0);
    assert_int_equal(ncalls, 2);
    events_state es;
    events_state_of(ev, "f", &es);
    assert_int_equal(es.running, 2);
    assert_int_equal(es.waiting, 3);
    answer(0, NULL, "{\"ok\":1}");
    assert_int_equal(ncalls, 2); /* the next one started at once */
    assert_int_equal(calls[1]->attempt, 1);
    assert_string_equal(calls[1]->invocation_id, calls[1]->request_id);
    while (ncalls)
        answer(0, NULL, "1");
    events_state_of(ev, "f", &es);
    assert_int_equal(es.running + es.waiting, 0);
    close_events(ev);
}

static void test_global_share_is_half_the_workers(void **state)
{
    (void)state;
    add_fn("f", 10, 0);
    add_fn("g", 10, 0);
    events *ev = open_events(4); /* 2 async attempts across all functions */
    for (int i = 0; i < 4; i++) {
        submit(ev, "f", "{}");
        submit(ev, "g", "{}");
    }
    want_calls = 2;
    turn_until(enough_calls);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(ncalls, 2);
    assert_string_not_equal(calls[0]->function, calls[1]->function); /* one each: fair */
    while (ncalls)
        answer(0, NULL, "1");
    close_events(ev);
}

static void test_retries_until_dead_and_throttling_is_free(void **state)
{
    (void)state;
    add_fn("f", 2, 2);
    events *ev = open_events(64);
    acks = 0;
    submit(ev, "f", "{}");
    want_calls = 1;
    turn_until(enough_calls);
    char id[EV_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", last_ack.id);
    answer(0, "queue_timeout", NULL); /* throttled: not an attempt */
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        turn_until(enough_calls);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0]->attempt, attempt);
        answer(0, "function_error", NULL);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_record(ev, id, EV_DEAD, 3, "function_error");
    close_events(ev);
}

static void test_queue_bound_and_unknown_function(void **state)
{
    (void)state;
    fn_config *f = add_fn("f", 1, 0);
    f->async_max_queue = 2;
    events *ev = open_events(64);
    acks = 0;
    submit(ev, "f", "{}");
    submit(ev, "f", "{}");
    submit(ev, "f", "{}");
    assert_int_equal(acks, 1); /* the refusal is at once */
    assert_int_equal(last_ack.status, 429);
    assert_string_equal(last_ack.code, "queue_full");
    submit(ev, "nobody", "{}");
    assert_int_equal(last_ack.status, 404);
    turn_until(acked);
    want_calls = 1;
    turn_until(enough_calls);
    while (ncalls)
        answer(0, NULL, "1");
    close_events(ev);
}

static bool two_acks(void)
{
    return acks >= 2;
}

static void test_cancel_and_destination(void **state)
{
    (void)state;
    fn_config *f = add_fn("f", 1, 0);
    add_fn("sink", 1, 0);
    f->json_settings[fnset_json_index("on_success")] = json_string("sink");
    events *ev = open_events(64);
    acks = 0;
    submit(ev, "f", "{\"n\":1}");
    submit(ev, "f", "{\"n\":2}");
    turn_until(two_acks);
    char second[EV_ID_LEN + 1];
    snprintf(second, sizeof second, "%s", last_ack.id);
    want_calls = 1;
    turn_until(enough_calls);
    acks = 0;
    events_cancel(ev, second, on_ack, NULL);
    turn_until(acked);
    assert_int_equal(last_ack.status, 0);
    assert_int_equal(last_ack.state, EV_CANCELLED);
    answer(0, NULL, "{\"r\":1}"); /* f's first: its record goes to sink */
    want_calls = 1;
    turn_until(enough_calls);
    assert_int_equal(ncalls, 1);
    assert_string_equal(calls[0]->function, "sink"); /* and not f's cancelled second */
    json_t *rec = json_loadb(calls[0]->body, calls[0]->body_len, 0, NULL);
    assert_non_null(rec);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "requestContext"), "condition")),
        "Success");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rec, "requestPayload"), "n")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rec, "responsePayload"), "r")), 1);
    json_decref(rec);
    answer(0, NULL, "1");
    close_events(ev);
    json_decref(f->json_settings[fnset_json_index("on_success")]);
}

static void test_cut_off_attempt_runs_again_after_restart(void **state)
{
    (void)state;
    add_fn("f", 2, 0);
    events *ev = open_events(64);
    submit(ev, "f", "{}");
    want_calls = 1;
    turn_until(enough_calls);
    uv_run(&loop, UV_RUN_NOWAIT); /* the claim is committed */
    char id[EV_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", calls[0]->invocation_id);
    close_events(ev); /* as a stop: the attempt is left "running" */
    ev = open_events(64);
    turn_until(enough_calls);
    assert_int_equal(ncalls, 1);
    assert_string_equal(calls[0]->invocation_id, id);
    assert_int_equal(calls[0]->attempt, 1); /* the cut-off attempt was not counted */
    answer(0, NULL, "1");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_record(ev, id, EV_SUCCEEDED, 1, "");
    close_events(ev);
}

static void test_too_old_to_start_dies_without_an_attempt(void **state)
{
    (void)state;
    fn_config *f = add_fn("f", 1, 2);
    f->async_max_age_s = 1;
    events *ev = open_events(64);
    acks = 0;
    submit(ev, "f", "{}");
    submit(ev, "f", "{}");
    turn_until(two_acks);
    char second[EV_ID_LEN + 1];
    snprintf(second, sizeof second, "%s", last_ack.id);
    want_calls = 1;
    turn_until(enough_calls);
    usleep(1100 * 1000); /* the second waits past async_max_age_s */
    answer(0, NULL, "1");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(ncalls, 0); /* it never reached a worker */
    assert_record(ev, second, EV_DEAD, 0, "event_too_old");
    close_events(ev);
}

/* --- out of memory (tests/unit/failalloc.h): an async invocation's life
 * in the store, and its JSON, on a store of its own each run --- */

static int events_scenario(void *ud)
{
    (void)ud;
    char path[128];
    snprintf(path, sizeof path, "%s/oom.db", dir);
    unlink(path);
    evstore *st = NULL;
    int rc = evstore_open(path, &st);
    if (rc < 0)
        return rc;
    ev_record r = {0};
    snprintf(r.id, sizeof r.id, "oom-1");
    snprintf(r.function, sizeof r.function, "f");
    snprintf(r.source, sizeof r.source, "invoke");
    snprintf(r.idem_key, sizeof r.idem_key, "key");
    snprintf(r.content_type, sizeof r.content_type, "application/json");
    r.created_ms = r.run_at_ms = 1000;
    r.payload = "{\"a\": 1}";
    r.payload_len = strlen(r.payload);
    rc = evstore_enqueue(st, &r);
    if (rc == 0)
        rc = evstore_commit(st);
    ev_record got;
    if (rc == 0 && (rc = evstore_claim(st, r.seq, 1, 2000, &got)) == 0)
        evrec_release(&got);
    if (rc == 0)
        rc = evstore_complete(st, r.seq, "{\"ok\":1}", 8, "application/json", 3000);
    if (rc == 0 && (rc = evstore_get(st, "oom-1", &got)) == 0) {
        json_t *j = invocation_json(&got, true);
        json_t *out = j ? invocation_outcome_json(&got) : NULL;
        if (!j || !out)
            rc = -ENOMEM;
        else
            assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
        json_decref(j);
        json_decref(out);
        evrec_release(&got);
    }
    if (rc == 0)
        rc = evstore_commit(st);
    evstore_close(st);
    return rc;
}

static void test_store_out_of_memory(void **state)
{
    (void)state;
    assert_true(failalloc_run("events", events_scenario, NULL, 0) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_is_bounded_exponential_full_jitter),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test_setup_teardown(test_store_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_requeue_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_uncommitted_batch_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_waits_for_the_commit_and_shares_hold, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_global_share_is_half_the_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_until_dead_and_throttling_is_free, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound_and_unknown_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_off_attempt_runs_again_after_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_too_old_to_start_dies_without_an_attempt, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
