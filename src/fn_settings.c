/*
 * fn_settings.c — the tables of a function's settings: whole numbers,
 * two-word choices, and JSON values with their checks.
 *
 * Owns the names, ranges and defaults (docs/api.md lists the same). Must
 * never hold state: the table is read-only and every caller shares it.
 */
#include "fn_settings.h"
#include "qualifier.h"

#include "events/schedule.h"
#include "events/routes.h"
#include "events/topics.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

#define FIELD(f) offsetof(fn_config, f)

/* A row's default: its own, or FROM the daemon option it inherits. */
#define OWN(d)  (d), FNSET_OWN
#define FROM(o) FNSET_INHERIT, (o)

static const fnset_int table[] = {
    {"timeout_ms", 1, 900000, OWN(30000), FIELD(timeout_ms)},
    {"memory_mb", 64, 10240, OWN(128), FIELD(memory_mb)},
    {"max_concurrency", 1, 1000, OWN(10), FIELD(max_concurrency)},
    {"min_instances", 0, 100, OWN(0), FIELD(min_instances)},
    {"max_queue", 0, 10000, FROM(FNSET_DAEMON_MAX_QUEUE), FIELD(max_queue)},
    {"queue_timeout_ms", 1, 900000, OWN(10000), FIELD(queue_timeout_ms)},
    {"keep_alive_s", 0, 86400, FROM(FNSET_DAEMON_KEEP_ALIVE_S), FIELD(keep_alive_s)},
    {"init_timeout_ms", 1, 900000, OWN(10000), FIELD(init_timeout_ms)},
    {"async_retries", 0, 10, OWN(2), FIELD(async_retries)},
    {"async_retry_base_ms", 1, 300000, OWN(1000), FIELD(async_retry_base_ms)},
    {"async_max_age_s", 1, 21600, OWN(21600), FIELD(async_max_age_s)},
    {"async_max_queue", 1, 100000, OWN(10000), FIELD(async_max_queue)},
};

_Static_assert(sizeof table / sizeof *table == FNSET_INT_COUNT, "FNSET_INT_COUNT is stale");

static const fnset_choice choices[] = {
    /* The order of "network"'s words is fn_network's. */
    {"network", {"isolated", "host", "egress"}, FIELD(network)},
    {"keep_alive", {"fixed", "adaptive"}, FIELD(adaptive_keep_alive)},
    {"auth", {"token", "none"}, FIELD(public_invoke)},
};

_Static_assert(sizeof choices / sizeof *choices == FNSET_CHOICE_COUNT, "FNSET_CHOICE_COUNT stale");

const fnset_choice *fnset_choices(size_t *count)
{
    *count = FNSET_CHOICE_COUNT;
    return choices;
}

const fnset_choice *fnset_find_choice(const char *name)
{
    for (size_t i = 0; i < FNSET_CHOICE_COUNT; i++)
        if (strcmp(choices[i].name, name) == 0)
            return &choices[i];
    return NULL;
}

static uint8_t *field_of(fn_config *cfg, const fnset_choice *c)
{
    return (uint8_t *)cfg + c->offset;
}

const char *fnset_word(const fn_config *cfg, const fnset_choice *c)
{
    uint8_t v = *((const uint8_t *)cfg + c->offset);
    return v < FNSET_CHOICE_WORDS && c->words[v] ? c->words[v] : c->words[0];
}

int fnset_word_index(const fnset_choice *c, const char *word)
{
    for (int i = 0; i < FNSET_CHOICE_WORDS && c->words[i]; i++)
        if (strcmp(word, c->words[i]) == 0)
            return i;
    return -1;
}

int fnset_choose(fn_config *cfg, const fnset_choice *c, const char *word)
{
    int i = fnset_word_index(c, word);
    if (i < 0)
        return -1;
    *field_of(cfg, c) = (uint8_t)i;
    return 0;
}

void fnset_words_phrase(const fnset_choice *c, char *buf, size_t cap)
{
    size_t n = 0;
    while (n < FNSET_CHOICE_WORDS && c->words[n])
        n++;
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + at, cap - at, "%s\"%s\"", sep, c->words[i]);
        at += w > 0 ? (size_t)w : 0;
    }
}

const fnset_int *fnset_ints(size_t *count)
{
    *count = sizeof table / sizeof *table;
    return table;
}

const fnset_int *fnset_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

int64_t *fnset_field(fn_config *cfg, const fnset_int *s)
{
    return (int64_t *)(void *)((char *)cfg + s->offset);
}

int64_t fnset_value(const fn_config *cfg, const fnset_int *s)
{
    return *(const int64_t *)(const void *)((const char *)cfg + s->offset);
}

int64_t fnset_effective(const fn_config *cfg, const fnset_int *s,
                        const int64_t daemon[FNSET_DAEMON_COUNT])
{
    int64_t v = fnset_value(cfg, s);
    return v == FNSET_INHERIT && s->inherits != FNSET_OWN ? daemon[s->inherits] : v;
}

void fnset_defaults(fn_config *cfg)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        *fnset_field(cfg, &table[i]) = table[i].dflt;
}

bool fnset_storable(const fnset_int *s, int64_t v)
{
    return (v >= s->min && v <= s->max) || (v == FNSET_INHERIT && s->dflt == FNSET_INHERIT);
}

int fnset_check_together(const fn_config *cfg, char *err, size_t cap)
{
    if (cfg->min_instances > cfg->max_concurrency) {
        if (err)
            snprintf(err, cap, "min_instances (%lld) must not exceed max_concurrency (%lld)",
                     (long long)cfg->min_instances, (long long)cfg->max_concurrency);
        return -1;
    }
    return 0;
}

/* "on_success" / "on_failure": another function's name. Whether it exists
 * is checked when a record is sent, as Lambda does (it may be deployed
 * later, or deleted since). */
static int check_destination(const json_t *v, char *err, size_t cap)
{
    const char *ref = json_string_value(v);
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    if (ref && qualifier_split(ref, name, qual) == 0)
        return 0;
    if (err)
        snprintf(err, cap,
                 "must be the name of a function (lowercase letters, digits, '-'), optionally "
                 "with ':' and a version, an alias or $LATEST");
    return -1;
}

static const fnset_json json_table[] = {
    {"on_success", check_destination},
    {"on_failure", check_destination},
    {"subscriptions", topics_check_subscriptions},
    {"schedules", schedules_validate},
    {"routes", routes_validate},
};

_Static_assert(sizeof json_table / sizeof *json_table <= FNSET_JSON_MAX,
               "FNSET_JSON_MAX too small");

const fnset_json *fnset_jsons(size_t *count)
{
    *count = sizeof json_table / sizeof *json_table;
    return json_table;
}

int fnset_json_index(const char *name)
{
    for (size_t i = 0; i < sizeof json_table / sizeof *json_table; i++)
        if (strcmp(json_table[i].name, name) == 0)
            return (int)i;
    return -1;
}

json_t *fnset_json_value(const fn_config *cfg, const char *name)
{
    int i = fnset_json_index(name);
    return i < 0 ? NULL : cfg->json_settings[i];
}
