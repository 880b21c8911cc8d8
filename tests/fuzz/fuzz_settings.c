/*
 * fuzz_settings.c — deploy-settings validation: the JSON body of
 * PUT /v1/functions/{name}. deploy.c's deploy_unit_from_json is not linked
 * (it pulls in the API, the registry writes and the scheduler); this
 * target makes the calls it makes, in its order, through the same tables:
 * validate_unknown_key over the known fields and fn_settings.c's,
 * runtimes_check_handler and validate_handler, each whole-number setting's
 * range (fnset_ints), each word setting (fnset_choose), each JSON setting's
 * own check (fnset_jsons: on_success/on_failure, subscriptions, schedules
 * with their cron and tz, routes), the settings together, validate_env
 * and validate_secret_list (then fn_config_set_secrets). Every refusal
 * must come with a sentence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fn_settings.h"
#include "registry.h"
#include "runtimes.h"
#include "validate.h"

static bool is_setting(const char *key)
{
    return fnset_find(key) || fnset_find_choice(key) || fnset_json_index(key) >= 0;
}

static void refused(const char *err)
{
    if (!err[0])
        abort(); /* the client would get no reason */
}

static int check_ints(json_t *doc, fn_config *cfg)
{
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        if (!v)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < t[i].min ||
            json_integer_value(v) > t[i].max)
            return -1;
        *fnset_field(cfg, &t[i]) = json_integer_value(v);
        if (!fnset_storable(&t[i], json_integer_value(v)))
            abort(); /* in range but the registry would refuse it */
    }
    char err[160] = "";
    if (fnset_check_together(cfg, err, sizeof err) < 0) {
        refused(err);
        return -1;
    }
    return 0;
}

static int check_choices(json_t *doc, fn_config *cfg)
{
    size_t n;
    const fnset_choice *t = fnset_choices(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        if (!v)
            continue;
        const char *word = json_string_value(v);
        if (!word || fnset_choose(cfg, &t[i], word) < 0) {
            char words[128];
            fnset_words_phrase(&t[i], words, sizeof words);
            return -1;
        }
        if (strcmp(fnset_word(cfg, &t[i]), word) != 0)
            abort(); /* stored a different word than was given */
    }
    return 0;
}

static int check_jsons(json_t *doc)
{
    size_t n;
    const fnset_json *t = fnset_jsons(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        char err[512] = "";
        if (!v || json_is_null(v))
            continue;
        if (t[i].check(v, err, sizeof err) < 0) {
            refused(err);
            return -1;
        }
    }
    return 0;
}

static void check(json_t *doc)
{
    static const char *const known[] = {"runtime", "handler", "files", "archive", "env", "secrets"};
    if (validate_unknown_key(doc, known, sizeof known / sizeof *known, is_setting))
        return;
    const char *runtime = json_string_value(json_object_get(doc, "runtime"));
    const char *handler = json_string_value(json_object_get(doc, "handler"));
    char err[512] = "";
    if (runtime && handler && runtimes_check_handler(runtime, handler, err, sizeof err) < 0) {
        refused(err);
        return;
    }
    if (handler && !validate_handler(handler))
        return;
    fn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    fnset_defaults(&cfg);
    if (check_ints(doc, &cfg) < 0 || check_choices(doc, &cfg) < 0 || check_jsons(doc) < 0)
        return;
    json_t *env = json_object_get(doc, "env");
    err[0] = '\0';
    if (env && validate_env(env, err, sizeof err) < 0) {
        refused(err);
        return;
    }
    json_t *secrets = json_object_get(doc, "secrets");
    err[0] = '\0';
    if (secrets && validate_secret_list(secrets, err, sizeof err) < 0) {
        refused(err);
        return;
    }
    if (secrets) {
        fn_config_set_secrets(&cfg, secrets);
        if (cfg.nsecrets != json_array_size(secrets))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(doc))
        check(doc);
    json_decref(doc);
    return 0;
}
