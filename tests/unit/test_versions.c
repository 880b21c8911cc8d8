/*
 * test_versions.c — versions and aliases as the daemon relies on them:
 * the current pointer moves only to a kept version, aliases are checked
 * before they are stored and go with their function, pruning keeps the
 * newest, the current and every aliased version, and qualified references
 * split only into valid names and qualifiers. Each test gets its own
 * database in a fresh temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fn_settings.h"
#include "qualifier.h"
#include "registry.h"
#include "registry_fixture.h"

static int setup(void **state)
{
    return registry_fixture_setup(state, "/tmp/hearth-test-versions-XXXXXX");
}

static void put(registry *reg, const char *name, int64_t version)
{
    fn_config c;
    memset(&c, 0, sizeof c);
    fnset_defaults(&c);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.version = version;
    snprintf(c.runtime, sizeof c.runtime, "python3");
    snprintf(c.handler, sizeof c.handler, "main.v%d", (int)version);
    c.updated_ms = 1000 * version;
    assert_int_equal(registry_put(reg, &c), 0);
    fn_config_release(&c);
}

static int64_t current(registry *reg, const char *name)
{
    fn_config c;
    assert_int_equal(registry_get(reg, name, &c), 0);
    int64_t v = c.version;
    fn_config_release(&c);
    return v;
}

static int collect(const fn_config *cfg, void *ud)
{
    int64_t *out = ud;
    size_t n = (size_t)out[0];
    out[1 + n] = cfg->version;
    out[0] = (int64_t)n + 1;
    return 0;
}

/* The kept versions, newest first, as "5,4,1". */
static const char *kept(registry *reg, const char *name)
{
    static char text[128];
    int64_t v[64] = {0};
    assert_int_equal(registry_versions(reg, name, collect, v), 0);
    text[0] = '\0';
    for (int64_t i = 0; i < v[0]; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof text - used, "%s%lld", i ? "," : "", (long long)v[1 + i]);
    }
    return text;
}

/* An alias of `fn` named `name` at `version`, nothing else set. */
static void alias_init(fn_alias *a, const char *fn, const char *name, int64_t version)
{
    memset(a, 0, sizeof *a);
    snprintf(a->function, sizeof a->function, "%s", fn);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->version = version;
}

static void alias(registry *reg, const char *fn, const char *name, int64_t version, int want)
{
    fn_alias a;
    alias_init(&a, fn, name, version);
    a.updated_ms = 5000;
    assert_int_equal(registry_alias_put(reg, &a), want);
}

static void test_set_current_moves_the_pointer(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1);
    put(f->reg, "hello", 2);
    assert_int_equal(current(f->reg, "hello"), 2);
    assert_int_equal(registry_set_current(f->reg, "hello", 1), 0);
    assert_int_equal(current(f->reg, "hello"), 1);
    assert_int_equal(registry_set_current(f->reg, "hello", 7), -ENOENT);
    assert_int_equal(registry_set_current(f->reg, "nobody", 1), -ENOENT);
    assert_int_equal(current(f->reg, "hello"), 1);
    /* the next put is still latest + 1, and current again */
    put(f->reg, "hello", 3);
    assert_int_equal(current(f->reg, "hello"), 3);
    assert_string_equal(kept(f->reg, "hello"), "3,2,1");
}

static void test_alias_put_get_list_delete(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1);
    put(f->reg, "hello", 2);
    fn_alias a;
    alias_init(&a, "hello", "prod", 1);
    a.nextra = 1;
    a.extra_version[0] = 2;
    a.extra_weight[0] = 0.1;
    a.updated_ms = 5000;
    assert_int_equal(registry_alias_put(f->reg, &a), 0);
    assert_int_equal(a.created_ms, 5000);
    fn_alias got;
    assert_int_equal(registry_alias_get(f->reg, "hello", "prod", &got), 0);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.nextra, 1);
    assert_int_equal(got.extra_version[0], 2);
    assert_true(got.extra_weight[0] > 0.0999 && got.extra_weight[0] < 0.1001);
    assert_true(registry_version_aliased(f->reg, "hello", 2));
    /* a replacement keeps its creation time */
    a.nextra = 0;
    a.updated_ms = 6000;
    assert_int_equal(registry_alias_put(f->reg, &a), 0);
    assert_int_equal(a.created_ms, 5000);
    assert_false(registry_version_aliased(f->reg, "hello", 2));
    alias(f->reg, "hello", "beta", 2, 0);
    assert_int_equal(registry_alias_delete(f->reg, "hello", "prod"), 0);
    assert_int_equal(registry_alias_delete(f->reg, "hello", "prod"), -ENOENT);
    assert_int_equal(registry_alias_get(f->reg, "hello", "prod", &got), -ENOENT);
    assert_int_equal(registry_alias_get(f->reg, "hello", "beta", &got), 0);
    /* the function's delete takes its aliases */
    assert_int_equal(registry_delete(f->reg, "hello"), 0);
    put(f->reg, "hello", 1);
    assert_int_equal(registry_alias_get(f->reg, "hello", "beta", &got), -ENOENT);
}

static void test_alias_checks(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1);
    put(f->reg, "hello", 2);
    alias(f->reg, "hello", "prod", 3, -ENOENT);  /* not kept */
    alias(f->reg, "nobody", "prod", 1, -ENOENT); /* no function */
    alias(f->reg, "hello", "Prod", 1, -EINVAL);  /* the alphabet */
    alias(f->reg, "hello", "1prod", 1, -EINVAL); /* a letter first */
    alias(f->reg, "hello", "", 1, -EINVAL);
    alias(f->reg, "hello", "prod", 0, -EINVAL);
    fn_alias a;
    alias_init(&a, "hello", "prod", 1);
    a.nextra = 2;
    a.extra_version[0] = 2;
    a.extra_weight[0] = 0.6;
    a.extra_version[1] = 2; /* twice */
    a.extra_weight[1] = 0.1;
    assert_int_equal(registry_alias_put(f->reg, &a), -EINVAL);
    a.nextra = 1;
    a.extra_weight[0] = 1.0; /* the main version must keep a share */
    assert_int_equal(registry_alias_put(f->reg, &a), -EINVAL);
    a.extra_weight[0] = 0.0;
    assert_int_equal(registry_alias_put(f->reg, &a), -EINVAL);
    a.extra_version[0] = 1; /* the main version itself */
    a.extra_weight[0] = 0.5;
    assert_int_equal(registry_alias_put(f->reg, &a), -EINVAL);
    fn_alias got;
    assert_int_equal(registry_alias_get(f->reg, "hello", "prod", &got), -ENOENT);
    char name[FN_ALIAS_MAX + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_false(registry_alias_name_valid(name));
    name[FN_ALIAS_MAX] = '\0';
    assert_true(registry_alias_name_valid(name));
}

static void test_prune_keeps_newest_current_and_aliased(void **state)
{
    struct fixture *f = *state;
    for (int v = 1; v <= 6; v++)
        put(f->reg, "hello", v);
    alias(f->reg, "hello", "old", 2, 0);
    assert_int_equal(registry_set_current(f->reg, "hello", 1), 0);
    int64_t gone[16];
    size_t n;
    assert_int_equal(registry_prune(f->reg, "hello", 3, gone, 16, &n), 0);
    /* the current (1) counts among the 3: 6 and 5 stay, 2 is aliased */
    assert_string_equal(kept(f->reg, "hello"), "6,5,2,1");
    assert_int_equal(n, 2);
    assert_int_equal(gone[0], 4);
    assert_int_equal(gone[1], 3);
    /* nothing more to do */
    assert_int_equal(registry_prune(f->reg, "hello", 3, gone, 16, &n), 0);
    assert_int_equal(n, 0);
    /* a pruned version cannot be made current or aliased */
    assert_int_equal(registry_set_current(f->reg, "hello", 4), -ENOENT);
    alias(f->reg, "hello", "x", 3, -ENOENT);
    /* the alias gone, its version goes at the next prune */
    assert_int_equal(registry_alias_delete(f->reg, "hello", "old"), 0);
    assert_int_equal(registry_prune(f->reg, "hello", 3, gone, 16, &n), 0);
    assert_string_equal(kept(f->reg, "hello"), "6,5,1");
    /* versions are never reused */
    put(f->reg, "hello", 7);
    assert_int_equal(current(f->reg, "hello"), 7);
}

static void split_ok(const char *ref, const char *name, const char *qual)
{
    char n[FN_NAME_MAX + 1], q[FN_ALIAS_MAX + 1];
    assert_int_equal(qualifier_split(ref, n, q), 0);
    assert_string_equal(n, name);
    assert_string_equal(q, qual);
}

static void split_bad(const char *ref)
{
    char n[FN_NAME_MAX + 1], q[FN_ALIAS_MAX + 1];
    assert_int_equal(qualifier_split(ref, n, q), -EINVAL);
    assert_string_equal(n, "");
    assert_string_equal(q, "");
}

static void test_qualifier_split(void **state)
{
    (void)state;
    split_ok("hello", "hello", "");
    split_ok("hello:3", "hello", "3");
    split_ok("hello:prod", "hello", "prod");
    split_ok("hello:$LATEST", "hello", "$LATEST");
    split_ok("a-b:canary_2", "a-b", "canary_2");
    split_ok("f:9007199254740992", "f", "9007199254740992");
    split_bad(NULL);
    split_bad("");
    split_bad(":prod");
    split_bad("hello:");
    split_bad("hello:0");
    split_bad("hello:03");
    split_bad("hello:-1");
    split_bad("hello:Prod");
    split_bad("hello:a:b");
    split_bad("hello:../x");
    split_bad("hello:$latest");
    split_bad("hello:9007199254740993");
    split_bad("Hello:prod");
    split_bad("hello:p q");
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    split_bad(big);
    big[5] = ':';
    split_bad(big); /* a qualifier too long */
    char nul[] = "hello:\x01x";
    split_bad(nul);
    int64_t v;
    assert_int_equal(qualifier_kind_of("", &v), QUAL_CURRENT);
    assert_int_equal(qualifier_kind_of("$LATEST", &v), QUAL_CURRENT);
    assert_int_equal(qualifier_kind_of("12", &v), QUAL_VERSION);
    assert_int_equal(v, 12);
    assert_int_equal(qualifier_kind_of("prod", &v), QUAL_ALIAS);
}

static void test_qualifier_pick_and_resolve(void **state)
{
    struct fixture *f = *state;
    fn_alias a = {.version = 1, .nextra = 2};
    a.extra_version[0] = 2;
    a.extra_weight[0] = 0.1;
    a.extra_version[1] = 3;
    a.extra_weight[1] = 0.2;
    assert_int_equal(qualifier_pick(&a, 0.0), 2);
    assert_int_equal(qualifier_pick(&a, 0.0999), 2);
    assert_int_equal(qualifier_pick(&a, 0.1), 3);
    assert_int_equal(qualifier_pick(&a, 0.2999), 3);
    assert_int_equal(qualifier_pick(&a, 0.3001), 1);
    assert_int_equal(qualifier_pick(&a, 0.9999), 1);
    put(f->reg, "hello", 1);
    put(f->reg, "hello", 2);
    int64_t v = -1;
    assert_int_equal(qualifier_resolve(f->reg, "hello", "", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(qualifier_resolve(f->reg, "hello", "$LATEST", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(qualifier_resolve(f->reg, "hello", "7", &v), 0); /* the scheduler checks */
    assert_int_equal(v, 7);
    assert_int_equal(qualifier_resolve(f->reg, "hello", "prod", &v), -ENOENT);
    /* a weighted alias: over many picks both versions, roughly by weight */
    fn_alias w;
    memset(&w, 0, sizeof w);
    snprintf(w.function, sizeof w.function, "hello");
    snprintf(w.name, sizeof w.name, "prod");
    w.version = 1;
    w.nextra = 1;
    w.extra_version[0] = 2;
    w.extra_weight[0] = 0.5;
    assert_int_equal(registry_alias_put(f->reg, &w), 0);
    int twos = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(qualifier_resolve(f->reg, "hello", "prod", &v), 0);
        assert_true(v == 1 || v == 2);
        twos += v == 2;
    }
    assert_true(twos > 400 && twos < 600);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, registry_fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_set_current_moves_the_pointer),
        T(test_alias_put_get_list_delete),
        T(test_alias_checks),
        T(test_prune_keeps_newest_current_and_aliased),
        T(test_qualifier_split),
        T(test_qualifier_pick_and_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
