/*
 * test_keepalive.c — the hybrid histogram keep-alive policy: the windows
 * it computes for periodic and frequent functions, each fallback and its
 * boundary, bin edges, aging, and the window helpers the scheduler uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>

#include "keepalive.h"

#define MIN       60000ULL
#define FIXED_10M (10 * MIN)

/* Records calls whose idle times are idle[0..n-1] after a first call at t0;
 * returns the last arrival. */
static uint64_t feed(ka_state *st, const ka_params *p, uint64_t t0, const uint64_t *idle, int n)
{
    uint64_t t = t0;
    ka_record(st, p, t);
    for (int i = 0; i < n; i++) {
        t += idle[i];
        ka_record(st, p, t);
    }
    return t;
}

/* n calls, each `gap` after the previous one (n - 1 idle times). */
static void feed_every(ka_state *st, const ka_params *p, uint64_t gap, int n)
{
    uint64_t t = 1000;
    for (int i = 0; i < n; i++, t += gap)
        ka_record(st, p, t);
}

static void test_default_params_are_the_papers_and_valid(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    assert_int_equal(p.bin_ms, MIN);
    assert_int_equal(p.nbins, 240);
    assert_int_equal(p.head_permille, 50);
    assert_int_equal(p.tail_permille, 990);
    assert_int_equal(ka_params_check(&p), 0);
    assert_true(sizeof(ka_state) <= 2048);
}

static void test_unusable_params_are_refused(void **state)
{
    (void)state;
    ka_params ok, p;
    ka_params_default(&ok);
    p = ok, p.nbins = 0;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.nbins = KA_MAX_BINS + 1;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.bin_ms = 0;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.head_permille = 995;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.tail_permille = 1001;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.head_margin_pct = 100;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.cv_min = NAN;
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.halve_at = 15; /* halving would drop below min_samples = 10 */
    assert_int_equal(ka_params_check(&p), -EINVAL);
    p = ok, p.halve_at = 20;
    assert_int_equal(ka_params_check(&p), 0);
    p = ok, p.nbins = KA_MAX_BINS, p.bin_ms = 100;
    assert_int_equal(ka_params_check(&p), 0);
}

static void test_too_few_idle_times_fall_back_to_the_fixed_keep_alive(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_FEW_SAMPLES);
    feed_every(&st, &p, 30 * MIN, 10); /* 9 idle times */
    d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_FEW_SAMPLES);
    assert_int_equal(d.prewarm_after_ms, 0);
    assert_int_equal(d.keep_alive_ms, FIXED_10M);
    ka_record(&st, &p, st.last_ms + 30 * MIN); /* the 10th */
    d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM);
}

/* A half-hourly timer with a few seconds of jitter: idle times in bins 29
 * and 30. Pre-warm at 90% of 29 min, keep until 110% of 31 min. */
static void test_periodic_function_is_released_and_prewarmed(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    uint64_t idle[20];
    for (int i = 0; i < 20; i++)
        idle[i] = 30 * MIN + (i % 2 ? 3000 : -(uint64_t)3000);
    uint64_t last = feed(&st, &p, 5000, idle, 20);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM);
    assert_int_equal(d.prewarm_after_ms, 29 * MIN * 9 / 10);
    assert_int_equal(d.prewarm_after_ms + d.keep_alive_ms, 31 * MIN * 11 / 10);
    /* the next call, 30 min on, finds a worker; right after this one, none */
    assert_true(ka_wants_worker(&d, last, last + 30 * MIN));
    assert_false(ka_wants_worker(&d, last, last + 1000));
    assert_false(ka_wants_worker(&d, last, last + 31 * MIN * 11 / 10));
}

static void test_frequent_function_is_kept_until_its_tail(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    feed_every(&st, &p, 20000, 50); /* every 20 s: all in bin 0 */
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM);
    assert_int_equal(d.prewarm_after_ms, 0); /* head in bin 0: do not unload */
    assert_int_equal(d.keep_alive_ms, MIN * 11 / 10);
    uint64_t from, until;
    ka_window(&d, 7000, &from, &until);
    assert_int_equal(from, 7000);
    assert_int_equal(until, 7000 + 66000);
}

/* 5th percentile over 100 idle times: the 5th smallest. 99th: the 99th. */
static void test_percentiles_pick_the_right_bins(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    p.head_margin_pct = p.tail_margin_pct = 0;
    p.cap_at_fixed = false; /* the paper's window, as computed */
    ka_state st;
    uint64_t idle[100];

    ka_init(&st);
    for (int i = 0; i < 100; i++)
        idle[i] = i < 5 ? 2 * MIN + 1 : i < 99 ? 10 * MIN : 50 * MIN;
    feed(&st, &p, 0, idle, 100);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.prewarm_after_ms, 2 * MIN);                    /* bin 2, rounded down */
    assert_int_equal(d.prewarm_after_ms + d.keep_alive_ms, 11 * MIN); /* bin 10, rounded up */

    ka_init(&st);
    for (int i = 0; i < 100; i++)
        idle[i] = i < 4 ? 2 * MIN : i < 98 ? 10 * MIN : 50 * MIN;
    feed(&st, &p, 0, idle, 100);
    d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.prewarm_after_ms, 10 * MIN);                   /* only 4% below */
    assert_int_equal(d.prewarm_after_ms + d.keep_alive_ms, 51 * MIN); /* 2% at 50 min */
}

static void test_range_edge_is_out_of_bounds(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    uint64_t idle[2] = {240 * MIN - 1, 240 * MIN};
    feed(&st, &p, 0, idle, 2);
    assert_int_equal(st.bins[239], 1);
    assert_int_equal(st.n_in, 1);
    assert_int_equal(st.n_oob, 1);
}

static void test_mostly_out_of_range_falls_back(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    uint64_t idle[20];

    ka_init(&st);
    for (int i = 0; i < 20; i++)
        idle[i] = i < 10 ? 24 * 60 * MIN : 5 * MIN; /* half daily, half in bin 5 */
    feed(&st, &p, 0, idle, 20);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM); /* 50% is not more than 50% */

    ka_init(&st);
    for (int i = 0; i < 20; i++)
        idle[i] = i < 11 ? 24 * 60 * MIN : 5 * MIN;
    feed(&st, &p, 0, idle, 20);
    d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_OUT_OF_RANGE);
    assert_int_equal(d.prewarm_after_ms, 0);
    assert_int_equal(d.keep_alive_ms, FIXED_10M);

    ka_init(&st);
    feed_every(&st, &p, 24 * 60 * MIN, 12); /* a daily timer */
    d = ka_decide(&st, &p, 1234);
    assert_int_equal(d.reason, KA_OUT_OF_RANGE);
    assert_int_equal(d.keep_alive_ms, 1234);
}

/* 10 bins of 100 ms (the daemon's test setting). Counts {10,10,0,…}:
 * mean 2, variance 200/10 - 4 = 16, CV exactly 2: representative. One
 * more bin used ({10,10,1,0,…}, CV^2 = 10*201/441 - 1 < 4): spread. */
static void test_cv_boundary_with_short_bins(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    p.bin_ms = 100;
    p.nbins = 10;
    assert_int_equal(ka_params_check(&p), 0);
    ka_state st;
    uint64_t idle[21];
    for (int i = 0; i < 20; i++)
        idle[i] = i % 2 ? 150 : 50;
    idle[20] = 250;

    ka_init(&st);
    feed(&st, &p, 0, idle, 20);
    ka_decision d = ka_decide(&st, &p, 5000);
    assert_int_equal(d.reason, KA_HISTOGRAM);
    assert_int_equal(d.prewarm_after_ms, 0);
    assert_int_equal(d.keep_alive_ms, 220); /* bin 1's upper edge + 10% */

    ka_init(&st);
    feed(&st, &p, 0, idle, 21);
    d = ka_decide(&st, &p, 5000);
    assert_int_equal(d.reason, KA_SPREAD);
    assert_int_equal(d.keep_alive_ms, 5000);
}

/* Idle times spread evenly over the 4 hours say nothing about the next. */
static void test_uniform_idle_times_fall_back(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    uint64_t t = 0;
    for (int i = 0; i < 480; i++) {
        ka_record(&st, &p, t);
        t += (uint64_t)(i % 240) * MIN + 30000;
    }
    assert_int_equal(ka_decide(&st, &p, FIXED_10M).reason, KA_SPREAD);
}

static void test_clock_going_back_counts_as_zero_idle(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    ka_record(&st, &p, 10 * MIN);
    assert_int_equal(st.n_in + st.n_oob, 0); /* the first call has no idle time */
    ka_record(&st, &p, 5 * MIN);
    assert_int_equal(st.bins[0], 1);
    assert_int_equal(st.last_ms, 5 * MIN);
}

/* A function called 70,000 times a few seconds apart, then some calls 3
 * minutes apart: bin 0 is halved instead of wrapping to 0. */
static void test_counts_halve_instead_of_overflowing(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    feed_every(&st, &p, 2000, 70001);
    assert_true(st.bins[0] > 30000);
    assert_int_equal(st.n_in, st.bins[0]);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM);
    assert_int_equal(d.keep_alive_ms, 66000);
}

/* With halve_at, a function that changes its pattern is followed: after a
 * thousand calls 1 s apart, 300 calls 30 min apart move the head to 30 min.
 * Without it the thousand old idle times keep the head in bin 0. */
static void test_halve_at_lets_old_history_fade(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    p.cap_at_fixed = false;
    for (int aged = 0; aged < 2; aged++) {
        p.halve_at = aged ? 100 : 0;
        ka_state st;
        ka_init(&st);
        feed_every(&st, &p, 1000, 1000);
        assert_true(aged ? st.n_in < 100 : st.n_in == 999);
        uint64_t t = st.last_ms;
        for (int i = 0; i < 300; i++)
            ka_record(&st, &p, t += 30 * MIN);
        ka_decision d = ka_decide(&st, &p, FIXED_10M);
        assert_int_equal(d.reason, KA_HISTOGRAM);
        assert_int_equal(d.prewarm_after_ms, aged ? 30 * MIN * 9 / 10 : 0);
        assert_int_equal(d.prewarm_after_ms + d.keep_alive_ms, 31 * MIN * 11 / 10);
    }
}

/* Hearth's reading: the histogram may move the window and shorten it,
 * never make a worker idle longer at a stretch than the fixed keep-alive.
 * An hourly timer: unloaded after each call, back 54 min later, kept for
 * at most 10 min (the paper would keep it to 66 min). */
static void test_window_is_capped_at_the_fixed_keep_alive(void **state)
{
    (void)state;
    ka_params p;
    ka_params_default(&p);
    ka_state st;
    ka_init(&st);
    uint64_t idle[40];
    for (int i = 0; i < 40; i++)
        idle[i] = 60 * MIN;
    feed(&st, &p, 0, idle, 40);
    ka_decision d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.reason, KA_HISTOGRAM);
    assert_int_equal(d.prewarm_after_ms, 60 * MIN * 9 / 10);
    assert_int_equal(d.keep_alive_ms, FIXED_10M);
    p.cap_at_fixed = false;
    d = ka_decide(&st, &p, FIXED_10M);
    assert_int_equal(d.prewarm_after_ms + d.keep_alive_ms, 61 * MIN * 11 / 10);
}

static void test_window_saturates_instead_of_wrapping(void **state)
{
    (void)state;
    ka_decision d = {.prewarm_after_ms = 10, .keep_alive_ms = 100, .reason = KA_HISTOGRAM};
    uint64_t from, until;
    ka_window(&d, UINT64_MAX - 50, &from, &until);
    assert_true(from == UINT64_MAX - 40);
    assert_true(until == UINT64_MAX);
    assert_string_equal(ka_reason_name(KA_SPREAD), "spread");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_params_are_the_papers_and_valid),
        cmocka_unit_test(test_unusable_params_are_refused),
        cmocka_unit_test(test_too_few_idle_times_fall_back_to_the_fixed_keep_alive),
        cmocka_unit_test(test_periodic_function_is_released_and_prewarmed),
        cmocka_unit_test(test_frequent_function_is_kept_until_its_tail),
        cmocka_unit_test(test_percentiles_pick_the_right_bins),
        cmocka_unit_test(test_range_edge_is_out_of_bounds),
        cmocka_unit_test(test_mostly_out_of_range_falls_back),
        cmocka_unit_test(test_cv_boundary_with_short_bins),
        cmocka_unit_test(test_uniform_idle_times_fall_back),
        cmocka_unit_test(test_clock_going_back_counts_as_zero_idle),
        cmocka_unit_test(test_counts_halve_instead_of_overflowing),
        cmocka_unit_test(test_halve_at_lets_old_history_fade),
        cmocka_unit_test(test_window_is_capped_at_the_fixed_keep_alive),
        cmocka_unit_test(test_window_saturates_instead_of_wrapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
