/*
 * test_clock.c — the schedule clock with a fake wall clock and a fake
 * queue: what fires when, one firing after the clock jumps ahead, overlap
 * skip, and the missed-run rule across a restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "events/clock.h"
#include "fn_settings.h"

static int64_t now_ms;
static unsigned fires;
static json_t *last_event;
static bool busy;
static int64_t saved_s;
static char saved_id[EV_ID_LEN + 1];

static int fake_fire(void *ud, const char *function, const char *qualifier, const char *source,
                     const json_t *event, char id[EV_ID_LEN + 1])
{
    (void)ud, (void)function, (void)qualifier, (void)source;
    fires++;
    json_decref(last_event);
    last_event = json_deep_copy(event);
    snprintf(id, EV_ID_LEN + 1, "inv-%u", fires);
    return 0;
}

static bool fake_pending(void *ud, const char *id)
{
    (void)ud, (void)id;
    return busy;
}

static int fake_last(void *ud, const char *function, const char *key, int64_t *fired_s,
                     char id[EV_ID_LEN + 1])
{
    (void)ud, (void)function, (void)key;
    if (!saved_s)
        return -ENOENT;
    *fired_s = saved_s;
    snprintf(id, EV_ID_LEN + 1, "%s", saved_id);
    return 0;
}

static void fake_fired(void *ud, const char *function, const char *key, int64_t fired_s,
                       const char *id)
{
    (void)ud, (void)function, (void)key;
    saved_s = fired_s;
    snprintf(saved_id, sizeof saved_id, "%s", id);
}

static int64_t fake_now(void *ud)
{
    (void)ud;
    return now_ms;
}

static const clock_ops ops = {fake_fire, fake_pending, fake_last, fake_fired, fake_now, NULL};

static void config(fn_config *cfg, const char *schedules_json, int64_t deployed_s)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->name, sizeof cfg->name, "f");
    cfg->updated_ms = deployed_s * 1000;
    cfg->json_settings[fnset_json_index("schedules")] = json_loads(schedules_json, 0, NULL);
}

static int setup(void **state)
{
    (void)state;
    now_ms = 1000000;
    fires = 0;
    busy = false;
    saved_s = 0;
    saved_id[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(last_event);
    last_event = NULL;
    return 0;
}

static void test_fires_at_its_times_and_once_after_a_jump(void **state)
{
    (void)state;
    fn_config cfg;
    config(&cfg, "[\"@every 10s\"]", 1000);
    evclock *c = clock_new(NULL, &ops);
    assert_int_equal(clock_update(c, &cfg), 0);
    assert_int_equal(fires, 0); /* deployed now: nothing was missed */
    assert_int_equal(clock_next_ms(c), 1010000);
    now_ms = 1009999;
    assert_int_equal(clock_tick(c), 0);
    now_ms = 1010000;
    assert_int_equal(clock_tick(c), 1);
    assert_string_equal(json_string_value(json_object_get(last_event, "source")),
                        "hearth.schedule");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(last_event, "resources"), 0)),
        "hearth:schedule:f/0");
    assert_int_equal(saved_s, 1010);
    /* The wall clock jumps 95 s ahead: one firing, not nine. */
    now_ms = 1105000;
    assert_int_equal(clock_tick(c), 1);
    assert_int_equal(clock_next_ms(c), 1110000);
    clock_free(c);
    fn_config_release(&cfg);
}

static void test_overlap_skip_and_allow(void **state)
{
    (void)state;
    fn_config cfg;
    config(&cfg, "[\"@every 10s\", {\"cron\": \"@every 10s\", \"overlap\": \"allow\"}]", 1000);
    evclock *c = clock_new(NULL, &ops);
    assert_int_equal(clock_update(c, &cfg), 0);
    now_ms = 1010000;
    assert_int_equal(clock_tick(c), 2);
    busy = true; /* both earlier firings still run */
    now_ms = 1020000;
    clock_tick(c);
    assert_int_equal(fires, 3); /* the "skip" one did not fire, "allow" did */
    busy = false;
    now_ms = 1030000;
    clock_tick(c);
    assert_int_equal(fires, 5);
    clock_free(c);
    fn_config_release(&cfg);
}

static void test_missed_runs_fire_once_at_start(void **state)
{
    (void)state;
    fn_config cfg;
    config(&cfg, "[\"*/5 * * * *\"]", 1000);
    saved_s = 1200; /* the last firing before a stop */
    snprintf(saved_id, sizeof saved_id, "old");
    now_ms = 1200 * 1000 + 3600 * 1000; /* an hour later: twelve runs passed */
    evclock *c = clock_new(NULL, &ops);
    assert_int_equal(clock_update(c, &cfg), 0);
    assert_int_equal(fires, 1);
    /* Its next time is the next real one, not a backlog. */
    assert_int_equal(clock_next_ms(c), (4800 + 300) * 1000);
    assert_int_equal(clock_tick(c), 0);
    /* Nothing missed: nothing fires at start. */
    clock_remove(c, "f");
    assert_int_equal(clock_next_ms(c), -1);
    saved_s = 4800;
    fires = 0;
    assert_int_equal(clock_update(c, &cfg), 0);
    assert_int_equal(fires, 0);
    clock_free(c);
    fn_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fires_at_its_times_and_once_after_a_jump, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlap_skip_and_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missed_runs_fire_once_at_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
