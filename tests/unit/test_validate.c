/*
 * test_validate.c — the rules a client's names, env and handlers must pass
 * before anything is stored or run.
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

#include "failalloc.h"
#include "fn_settings.h"
#include "registry.h"
#include "validate.h"

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(validate_function_name("hello"));
    assert_true(validate_function_name("a"));
    assert_true(validate_function_name("0"));
    assert_true(validate_function_name("my-func-2"));
    assert_true(validate_function_name("9lives"));
    char max[64];
    memset(max, 'a', 63);
    max[63] = '\0';
    assert_true(validate_function_name(max));
}

static void test_name_invalid(void **state)
{
    (void)state;
    assert_false(validate_function_name(NULL));
    assert_false(validate_function_name(""));
    char too_long[65];
    memset(too_long, 'a', 64);
    too_long[64] = '\0';
    assert_false(validate_function_name(too_long));
    assert_false(validate_function_name("Hello"));
    assert_false(validate_function_name("helloA"));
    assert_false(validate_function_name("-hello"));
    assert_false(validate_function_name("a/b"));
    assert_false(validate_function_name("../etc"));
    assert_false(validate_function_name("a.b"));
    assert_false(validate_function_name("."));
    assert_false(validate_function_name(".."));
    assert_false(validate_function_name("caf\xc3\xa9"));
    assert_false(validate_function_name("a_b"));
    assert_false(validate_function_name("a b"));
    assert_false(validate_function_name("a\nb"));
}

/* Runs validate_env on `text` (a JSON document) and returns its result,
 * leaving the message in `err`. */
static int env_check(const char *text, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *env = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    assert_non_null(env);
    int rc = validate_env(env, err, errlen);
    json_decref(env);
    return rc;
}

static void test_env_ok(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(validate_env(NULL, err, sizeof err), 0);
    assert_int_equal(env_check("{}", err, sizeof err), 0);
    assert_int_equal(
        env_check("{\"GREETING\": \"hi\", \"_x\": \"\", \"a1_B2\": \"v=1\"}", err, sizeof err), 0);
    /* Names only look like reserved ones: exact names and prefixes only. */
    assert_int_equal(
        env_check("{\"MYPATH\": \"x\", \"PATH2\": \"x\", \"HEARTH\": \"x\"}", err, sizeof err), 0);
    assert_int_equal(env_check("{\"UNICODE\": \"caf\\u00e9\"}", err, sizeof err), 0);
    /* A 128-byte name is the longest allowed. */
    char doc[256];
    char key[129];
    memset(key, 'K', 128);
    key[128] = '\0';
    snprintf(doc, sizeof doc, "{\"%s\": \"v\"}", key);
    assert_int_equal(env_check(doc, err, sizeof err), 0);
}

static void test_env_not_object(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(env_check("[]", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "object"));
    assert_int_equal(env_check("\"A=b\"", err, sizeof err), -EINVAL);
    assert_int_equal(env_check("null", err, sizeof err), -EINVAL);
}

static void test_env_non_string_value(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(env_check("{\"OK\": \"x\", \"COUNT\": 3}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'COUNT'"));
    assert_int_equal(env_check("{\"FLAG\": true}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'FLAG'"));
    assert_int_equal(env_check("{\"N\": null}", err, sizeof err), -EINVAL);
    assert_int_equal(env_check("{\"O\": {}}", err, sizeof err), -EINVAL);
}

static void test_env_bad_key(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(env_check("{\"MY-VAR\": \"x\"}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'MY-VAR'"));
    assert_int_equal(env_check("{\"1ABC\": \"x\"}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'1ABC'"));
    assert_int_equal(env_check("{\"\": \"x\"}", err, sizeof err), -EINVAL);
    assert_int_equal(env_check("{\"A B\": \"x\"}", err, sizeof err), -EINVAL);
    assert_int_equal(env_check("{\"A=B\": \"x\"}", err, sizeof err), -EINVAL);
    assert_int_equal(env_check("{\"CAF\\u00c9\": \"x\"}", err, sizeof err), -EINVAL);
    /* A NUL inside a name would truncate it in the environment. */
    json_t *env = json_object();
    assert_int_equal(json_object_setn_new(env, "A\0B", 3, json_string("x")), 0);
    assert_int_equal(validate_env(env, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'A?B'"));
    json_decref(env);
    /* The message never carries a control byte from the key. */
    assert_int_equal(env_check("{\"A\\nB\": \"x\"}", err, sizeof err), -EINVAL);
    assert_null(strchr(err, '\n'));
    assert_non_null(strstr(err, "'A?B'"));
    /* 129 bytes is one too many. */
    char doc[256];
    char key[130];
    memset(key, 'K', 129);
    key[129] = '\0';
    snprintf(doc, sizeof doc, "{\"%s\": \"v\"}", key);
    assert_int_equal(env_check(doc, err, sizeof err), -EINVAL);
}

static void test_env_reserved_key(void **state)
{
    (void)state;
    static const char *const reserved[] = {
        "HEARTH_",
        "HEARTH_SOCKET",
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "PYTHONPATH",
        "PYTHONHOME",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LAMBDA_TASK_ROOT",
        "AWS_LAMBDA_X",
        "AWS_LAMBDA_FUNCTION_NAME",
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        char doc[128], err[256] = "", quoted[64];
        snprintf(doc, sizeof doc, "{\"OK\": \"x\", \"%s\": \"v\"}", reserved[i]);
        snprintf(quoted, sizeof quoted, "'%s'", reserved[i]);
        assert_int_equal(env_check(doc, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, quoted));
        assert_non_null(strstr(err, "reserved"));
    }
}

static void test_env_nul_in_value(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(env_check("{\"SECRET\": \"abc\\u0000def\"}", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'SECRET'"));
    assert_non_null(strstr(err, "NUL"));
}

/* Builds {"K": "<n bytes>"}: key 1 byte + value n bytes. */
static json_t *env_of_size(size_t total)
{
    char *value = malloc(total);
    assert_non_null(value);
    memset(value, 'v', total - 1);
    value[total - 1] = '\0';
    json_t *env = json_pack("{s:s}", "K", value);
    free(value);
    assert_non_null(env);
    return env;
}

static void test_env_size_limit(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *env = env_of_size(4096); /* exactly 4 KiB of key + value */
    assert_int_equal(validate_env(env, err, sizeof err), 0);
    json_decref(env);
    env = env_of_size(4097);
    assert_int_equal(validate_env(env, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "4096"));
    json_decref(env);
    /* The limit is over all entries together, not per entry. */
    env = json_object();
    char key[16], value[1024];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "K%d", i);
        json_object_set_new(env, key, json_string(value));
    }
    assert_int_equal(validate_env(env, err, sizeof err), -EINVAL);
    json_decref(env);
}

static void test_env_err_buffer(void **state)
{
    (void)state;
    /* No buffer, or a tiny one: still an error, never an overflow. */
    assert_int_equal(env_check("{\"PATH\": \"x\"}", NULL, 0), -EINVAL);
    char tiny[8];
    memset(tiny, 'X', sizeof tiny);
    assert_int_equal(env_check("{\"PATH\": \"x\"}", tiny, sizeof tiny), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    /* A long bad name is shortened in the message. */
    char doc[600], key[300], err[512];
    memset(key, 'K', sizeof key - 2);
    key[0] = '-';
    key[sizeof key - 2] = '\0';
    snprintf(doc, sizeof doc, "{\"%s\": \"v\"}", key);
    assert_int_equal(env_check(doc, err, sizeof err), -EINVAL);
    assert_true(strlen(err) < 200);
    assert_non_null(strstr(err, "..."));
}

static void test_handler(void **state)
{
    (void)state;
    assert_true(validate_handler("main.handler"));
    assert_true(validate_handler("pkg/mod.fn"));
    assert_true(validate_handler("a"));
    assert_true(validate_handler("a..b")); /* ".." only matters as a whole component */
    assert_true(validate_handler("./main.handler"));
    char max[256];
    memset(max, 'h', 255);
    max[255] = '\0';
    assert_true(validate_handler(max));

    assert_false(validate_handler(NULL));
    assert_false(validate_handler(""));
    char too_long[257];
    memset(too_long, 'h', 256);
    too_long[256] = '\0';
    assert_false(validate_handler(too_long));
    assert_false(validate_handler("/etc/passwd"));
    assert_false(validate_handler(".."));
    assert_false(validate_handler("../x.fn"));
    assert_false(validate_handler("a/../b.fn"));
    assert_false(validate_handler("a/.."));
    assert_false(validate_handler("main handler"));
    assert_false(validate_handler("main.handler "));
    assert_false(validate_handler("main\thandler"));
    assert_false(validate_handler("main\nhandler"));
    assert_false(validate_handler("main\x7fhandler"));
    assert_false(validate_handler("caf\xc3\xa9.fn"));
}

/* --- out of memory (tests/unit/failalloc.h): a deploy's settings, from
 * the JSON text to the canonical settings the registry stores --- */

static const char settings_doc[] =
    "{\"env\": {\"A\": \"1\", \"B_2\": \"two\"}, \"secrets\": [\"db-pass\", \"key\"],"
    " \"on_success\": \"audit:prod\", \"subscriptions\": [\"orders\"],"
    " \"schedules\": [\"@every 1m\", {\"cron\": \"*/5 * * * *\", \"timezone\": "
    "\"Europe/Paris\"}], \"routes\": [{\"method\": \"GET\", \"path\": \"/shop/{id}\"}]}";

static int settings_scenario(void *ud)
{
    (void)ud;
    json_error_t jerr;
    json_t *doc = json_loads(settings_doc, 0, &jerr);
    if (!doc)
        return -ENOMEM; /* jansson says "out of memory" only as text */
    fn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    fnset_defaults(&cfg);
    char err[256] = "";
    int rc = validate_env(json_object_get(doc, "env"), err, sizeof err);
    if (rc == 0)
        rc = validate_secret_list(json_object_get(doc, "secrets"), err, sizeof err);
    size_t n;
    const fnset_json *t = fnset_jsons(&n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        if (!v)
            continue;
        int crc = t[i].check(v, err, sizeof err);
        if (crc < 0)
            rc = crc == -ENOMEM ? crc : -EINVAL;
        else if (!(cfg.json_settings[i] = json_deep_copy(v)))
            rc = -ENOMEM;
    }
    if (rc == 0) {
        fn_config_set_secrets(&cfg, json_object_get(doc, "secrets"));
        cfg.env = json_incref(json_object_get(doc, "env"));
        json_t *secrets = fn_config_secrets_json(&cfg);
        char *text = secrets ? registry_encode_settings(&cfg) : NULL;
        rc = text ? 0 : -ENOMEM;
        if (text)
            assert_non_null(strstr(text, "Europe/Paris"));
        free(text);
        json_decref(secrets);
    }
    /* An allocation that fails inside a check must not read as a refusal
     * of valid settings (a 400 telling the client its settings are bad). */
    if (rc == -EINVAL)
        print_error("refused under a failed allocation: %s\n", err);
    fn_config_release(&cfg);
    json_decref(doc);
    return rc;
}

static void test_settings_out_of_memory(void **state)
{
    (void)state;
    assert_true(failalloc_run("settings", settings_scenario, NULL, 0) > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),       cmocka_unit_test(test_settings_out_of_memory),
        cmocka_unit_test(test_name_invalid),     cmocka_unit_test(test_env_ok),
        cmocka_unit_test(test_env_not_object),   cmocka_unit_test(test_env_non_string_value),
        cmocka_unit_test(test_env_bad_key),      cmocka_unit_test(test_env_reserved_key),
        cmocka_unit_test(test_env_nul_in_value), cmocka_unit_test(test_env_size_limit),
        cmocka_unit_test(test_env_err_buffer),   cmocka_unit_test(test_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
