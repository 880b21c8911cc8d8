/*
 * test_metrics.c — metrics.c without a daemon: label escaping, histogram
 * buckets and their cumulative text, status slots and their classes, the
 * error codes that count as events, the order and ceiling of a render.
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

#include "buf.h"
#include "metrics.h"

/* Renders `n` views of `fns` with a fresh daemon; the caller frees. */
static char *render(metrics_fn_view *views, size_t n, int *rc_out)
{
    metrics *m = metrics_new("1.2.3-\"test\"");
    assert_non_null(m);
    metrics_scrape sc = {.open_connections = 7};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(metrics_scrape_add(&sc, &views[i]), 0);
    buf out;
    buf_init(&out, METRICS_MAX_TEXT);
    int rc = metrics_render(m, &sc, &out);
    if (rc_out)
        *rc_out = rc;
    else
        assert_int_equal(rc, 0);
    metrics_scrape_release(&sc);
    metrics_free(m);
    return buf_detach(&out, NULL);
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 1024);
    assert_int_equal(metrics_escape_label(&b, "a\"b\\c\nd"), 0);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    buf_reset(&b);
    assert_int_equal(metrics_escape_label(&b, "plain-name"), 0);
    assert_string_equal(b.data, "plain-name");
    buf_release(&b);

    /* In a render: the version label and a function name alike. */
    metrics_fn fn = {0};
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 200, NULL, 10);
    metrics_fn_view v = {.name = "we\"ird\\fn\nx", .m = &fn};
    char *text = render(&v, 1, NULL);
    assert_true(has_line(text, "hearth_build_info{version=\"1.2.3-\\\"test\\\"\"} 1"));
    assert_true(has_line(text, "hearth_invocations_total{function=\"we\\\"ird\\\\fn\\nx\",code="
                               "\"200\",trigger=\"invoke\"} 1"));
    free(text);
}

static void test_histogram_buckets_are_cumulative_and_inclusive(void **state)
{
    (void)state;
    metrics_fn fn = {0};
    metrics_hist_observe(&fn.duration, 1000);       /* exactly 1 ms: in le="0.001" */
    metrics_hist_observe(&fn.duration, 1001);       /* just over: le="0.0025" */
    metrics_hist_observe(&fn.duration, 1500000);    /* 1.5 s: le="2.5" */
    metrics_hist_observe(&fn.duration, 3600000000); /* an hour: only +Inf */
    metrics_fn_view v = {.name = "h", .m = &fn};
    char *text = render(&v, 1, NULL);
    const char *want[] = {
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"0.001\"} 1",
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"0.0025\"} 2",
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"1\"} 2",
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"2.5\"} 3",
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"900\"} 3",
        "hearth_invocation_duration_seconds_bucket{function=\"h\",le=\"+Inf\"} 4",
        "hearth_invocation_duration_seconds_sum{function=\"h\"} 3601.502001",
        "hearth_invocation_duration_seconds_count{function=\"h\"} 4",
        "# TYPE hearth_invocation_duration_seconds histogram",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_true(has_line(text, want[i]));
    /* No observation yet: the init histogram has no sample at all. */
    assert_null(strstr(text, "hearth_init_duration_seconds_bucket"));
    assert_non_null(strstr(text, "# TYPE hearth_init_duration_seconds histogram"));
    /* Bucket counts never fall from one le to the next. */
    uint64_t last = 0;
    for (const char *p = text; (p = strstr(p, "duration_seconds_bucket{function=\"h\"")); p++) {
        uint64_t n = strtoull(strchr(p, '}') + 2, NULL, 10);
        assert_true(n >= last);
        last = n;
    }
    assert_int_equal(last, 4);
    free(text);
}

static void test_statuses_past_the_slots_count_under_their_class(void **state)
{
    (void)state;
    metrics_fn fn = {0};
    for (unsigned s = 200; s < 200 + METRICS_CODES_MAX; s++)
        metrics_fn_call_done(&fn, METRICS_TRIGGER_HTTP, s, NULL, 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_HTTP, 200, NULL, 1); /* has a slot */
    metrics_fn_call_done(&fn, METRICS_TRIGGER_HTTP, 418, NULL, 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_HTTP, 451, NULL, 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 200, NULL, 1);
    assert_int_equal(fn.ncodes, METRICS_CODES_MAX);
    metrics_fn_view v = {.name = "c", .m = &fn};
    char *text = render(&v, 1, NULL);
    assert_true(
        has_line(text, "hearth_invocations_total{function=\"c\",code=\"200\",trigger=\"http\"} 2"));
    assert_true(
        has_line(text, "hearth_invocations_total{function=\"c\",code=\"4xx\",trigger=\"http\"} 2"));
    /* The 17th pair (200, invoke) found every slot taken: its class. */
    assert_true(has_line(
        text, "hearth_invocations_total{function=\"c\",code=\"2xx\",trigger=\"invoke\"} 1"));
    free(text);
}

static void test_error_codes_count_as_their_events(void **state)
{
    (void)state;
    metrics_fn fn = {0};
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 429, "queue_full", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 503, "queue_timeout", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 503, "overloaded", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 504, "timeout", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_HTTP, 504, "init_timeout", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 500, "function_error", 1);
    metrics_fn_call_done(&fn, METRICS_TRIGGER_INVOKE, 502, "out_of_memory", 1);
    assert_int_equal(fn.events[METRICS_THROTTLED_429], 1);
    assert_int_equal(fn.events[METRICS_THROTTLED_503], 2);
    assert_int_equal(fn.events[METRICS_TIMEOUTS], 2);
    assert_int_equal(fn.events[METRICS_OOM_KILLS], 0); /* a worker's exit counts those */
    assert_int_equal(fn.duration.counts[0], 7);
    assert_int_equal(metrics_trigger_of("invoke"), METRICS_TRIGGER_INVOKE);
    assert_int_equal(metrics_trigger_of("http"), METRICS_TRIGGER_HTTP);
    assert_int_equal(metrics_trigger_of("cron"), METRICS_TRIGGER_OTHER);
}

static void test_render_orders_functions_and_reads_pool_state(void **state)
{
    (void)state;
    metrics_fn a = {0}, b = {0};
    b.events[METRICS_OOM_KILLS] = 3;
    metrics_fn_view v[] = {
        {.name = "zeta", .m = &a, .busy = 2, .queued = 5},
        {.name = "alpha", .m = &b, .starting = 1, .idle = 4},
    };
    char *text = render(v, 2, NULL);
    assert_true(has_line(text, "hearth_queue_depth{function=\"zeta\"} 5"));
    assert_true(has_line(text, "hearth_workers{function=\"zeta\",state=\"busy\"} 2"));
    assert_true(has_line(text, "hearth_workers{function=\"alpha\",state=\"starting\"} 1"));
    assert_true(has_line(text, "hearth_workers{function=\"alpha\",state=\"idle\"} 4"));
    assert_true(has_line(text, "hearth_oom_kills_total{function=\"alpha\"} 3"));
    assert_true(has_line(text, "hearth_open_connections 7"));
    assert_true(strstr(text, "hearth_queue_depth{function=\"alpha\"") <
                strstr(text, "hearth_queue_depth{function=\"zeta\""));
    /* Every family: HELP then TYPE, once. */
    assert_non_null(strstr(text, "# HELP hearth_oom_kills_total "));
    assert_non_null(strstr(text, "# TYPE hearth_oom_kills_total counter\n"));
    free(text);
}

static void test_render_stops_at_the_ceiling_and_scales(void **state)
{
    (void)state;
    enum { N = 10000 };
    metrics_fn *fns = calloc(N, sizeof *fns);
    metrics_fn_view *views = calloc(N, sizeof *views);
    static char names[N][24];
    assert_non_null(fns);
    assert_non_null(views);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "function-%05zu", i);
        metrics_fn_call_done(&fns[i], METRICS_TRIGGER_INVOKE, 200, NULL, 1234);
        metrics_hist_observe(&fns[i].init, 20000);
        views[i] = (metrics_fn_view){.name = names[i], .m = &fns[i]};
    }
    char *text = render(views, N, NULL);
    size_t len = strlen(text);
    assert_true(len < METRICS_MAX_TEXT);
    assert_true(len / N < 8192); /* what METRICS_MAX_TEXT is sized for */
    free(text);

    metrics *m = metrics_new("x");
    metrics_scrape sc = {0};
    assert_int_equal(metrics_scrape_add(&sc, &views[0]), 0);
    buf small;
    buf_init(&small, 512);
    assert_int_equal(metrics_render(m, &sc, &small), -E2BIG);
    assert_true(small.len <= 512);
    buf_release(&small);
    metrics_scrape_release(&sc);
    metrics_free(m);
    free(views);
    free(fns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_and_inclusive),
        cmocka_unit_test(test_statuses_past_the_slots_count_under_their_class),
        cmocka_unit_test(test_error_codes_count_as_their_events),
        cmocka_unit_test(test_render_orders_functions_and_reads_pool_state),
        cmocka_unit_test(test_render_stops_at_the_ceiling_and_scales),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
