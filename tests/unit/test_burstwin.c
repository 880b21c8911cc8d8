/*
 * test_burstwin.c — the busiest second of the last minute, which sizes the
 * pools of pre-built sandboxes: a burst raises it at once, it holds for a
 * minute, and then it ages out second by second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "burstwin.h"

static void test_a_burst_is_its_peak_at_once(void **state)
{
    (void)state;
    burstwin w = {0};
    assert_int_equal(burstwin_peak(&w, 1000), 0);
    for (int i = 0; i < 6; i++)
        burstwin_note(&w, 1000);
    burstwin_note(&w, 1001);
    assert_int_equal(burstwin_peak(&w, 1001), 6);
}

static void test_the_peak_holds_for_a_minute_then_ages_out(void **state)
{
    (void)state;
    burstwin w = {0};
    for (int i = 0; i < 5; i++)
        burstwin_note(&w, 2000);
    for (int i = 0; i < 2; i++)
        burstwin_note(&w, 2030);
    assert_int_equal(burstwin_peak(&w, 2059), 5); /* 59 s later: still in the window */
    assert_int_equal(burstwin_peak(&w, 2060), 2); /* the burst's second left it */
    assert_int_equal(burstwin_peak(&w, 2089), 2);
    assert_int_equal(burstwin_peak(&w, 2090), 0);
}

static void test_a_long_silence_clears_every_second(void **state)
{
    (void)state;
    burstwin w = {0};
    for (uint64_t t = 3000; t < 3060; t++)
        burstwin_note(&w, t);
    assert_int_equal(burstwin_peak(&w, 3059), 1);
    burstwin_note(&w, 100000); /* far past the window: nothing old survives */
    assert_int_equal(burstwin_peak(&w, 100000), 1);
    assert_int_equal(burstwin_peak(&w, 100001), 1);
}

static void test_counts_saturate(void **state)
{
    (void)state;
    burstwin w = {0};
    for (int i = 0; i < 70000; i++)
        burstwin_note(&w, 5);
    assert_int_equal(burstwin_peak(&w, 5), UINT16_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_is_its_peak_at_once),
        cmocka_unit_test(test_the_peak_holds_for_a_minute_then_ages_out),
        cmocka_unit_test(test_a_long_silence_clears_every_second),
        cmocka_unit_test(test_counts_saturate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
