/*
 * test_failalloc.c — the failing allocator itself (tests/unit/failalloc.h),
 * and what it found first: a worker's environment (sched_launch.c) is all
 * or nothing, so a failed asprintf never starts a worker without its
 * HEARTH_HANDLER.
 */
/* Before cmocka.h, whose fail() macro would rename sched's fail(). */
#include "fn_settings.h"
#include "sched_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failalloc.h"

static void test_the_nth_allocation_fails(void **state)
{
    (void)state;
    failalloc_arm(2);
    void *a = malloc(8);
    char *b = strdup("x");
    char *c = NULL;
    int n = asprintf(&c, "%d", 3);
    bool hit = failalloc_fired();
    failalloc_arm(0);
    assert_non_null(a);
    assert_null(b);
    assert_int_equal(n, 1);
    assert_true(hit);
    free(a);
    free(c);
    json_t *j = json_object(); /* jansson's allocations count too */
    failalloc_arm(1);
    int rc = json_object_set_new(j, "k", json_string("v"));
    failalloc_arm(0);
    assert_int_equal(rc, -1);
    json_decref(j);
}

static const char *find(char **env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

typedef struct env_case {
    fn_config cfg;
    unsigned complete; /* runs that gave a whole environment */
} env_case;

/* Either no environment at all, or one with every variable. */
static int build_env_scenario(void *ud)
{
    env_case *e = ud;
    char **env = sched_worker_env(&e->cfg);
    if (!env)
        return -ENOMEM;
    bool whole = find(env, "HEARTH_HANDLER") && find(env, "HEARTH_FUNCTION_NAME") &&
                 find(env, "HEARTH_FUNCTION_VERSION") && find(env, "HEARTH_MEMORY_MB") &&
                 find(env, "PATH") && find(env, "GREETING") && find(env, "OTHER");
    const char *handler = find(env, "HEARTH_HANDLER");
    bool right = handler && strcmp(handler, "main.handler") == 0;
    sched_free_env(env);
    assert_true(whole);
    assert_true(right);
    e->complete++;
    return 0;
}

static void test_worker_env_is_all_or_nothing(void **state)
{
    (void)state;
    env_case e;
    memset(&e, 0, sizeof e);
    fnset_defaults(&e.cfg);
    snprintf(e.cfg.name, sizeof e.cfg.name, "fn");
    snprintf(e.cfg.handler, sizeof e.cfg.handler, "main.handler");
    e.cfg.version = 3;
    e.cfg.env = json_pack("{s:s,s:s}", "GREETING", "hi", "OTHER", "x");
    assert_non_null(e.cfg.env);
    unsigned long sites = failalloc_run("sched_worker_env", build_env_scenario, &e, 0);
    assert_true(sites >= 10);        /* the array, 4 fixed, 2 env, 4 HEARTH_* */
    assert_int_equal(e.complete, 1); /* only the run with nothing failing */
    fn_config_release(&e.cfg);
}

static int prebuilt_env_scenario(void *ud)
{
    (void)ud;
    char **env = sched_worker_env(NULL);
    if (!env)
        return -ENOMEM;
    bool ok = find(env, "HEARTH_PREBUILT") && find(env, "PATH");
    sched_free_env(env);
    assert_true(ok);
    return 0;
}

static void test_prebuilt_env_is_all_or_nothing(void **state)
{
    (void)state;
    assert_int_equal(failalloc_run("prebuilt env", prebuilt_env_scenario, NULL, 0), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_nth_allocation_fails),
        cmocka_unit_test(test_worker_env_is_all_or_nothing),
        cmocka_unit_test(test_prebuilt_env_is_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
