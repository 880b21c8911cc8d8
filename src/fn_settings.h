/*
 * fn_settings.h — the whole-number settings of a function (timeout_ms,
 * memory_mb, max_concurrency, …): name, range and default of each, in one
 * table that deploy (validation), the registry (storage) and the API
 * (display) all walk, so that a new setting is one line of fn_settings.c.
 */
#ifndef HEARTH_FN_SETTINGS_H
#define HEARTH_FN_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "registry.h"

/* A default that the daemon's command line decides (--max-queue,
 * --keep-alive), stored as this value so a later change of the option
 * reaches functions that never chose. */
#define FNSET_INHERIT (-1)

/* Where an inherited default comes from: one of the daemon's options. */
typedef enum fnset_daemon {
    FNSET_OWN = 0,             /* not inherited: the row's dflt */
    FNSET_DAEMON_MAX_QUEUE,    /* --max-queue */
    FNSET_DAEMON_KEEP_ALIVE_S, /* --keep-alive, in seconds */
    FNSET_DAEMON_COUNT
} fnset_daemon;

typedef struct fnset_int {
    const char *name;
    int64_t min, max;
    int64_t dflt;          /* or FNSET_INHERIT */
    fnset_daemon inherits; /* FNSET_OWN, or the option an FNSET_INHERIT dflt follows */
    size_t offset;         /* of its int64_t field in fn_config */
} fnset_int;

#define FNSET_INT_COUNT 12 /* entries in the table */

/* A setting with a few words for values, kept as a uint8_t of fn_config:
 * the index of its word (the first word, 0, is the default). */
#define FNSET_CHOICE_WORDS 3
typedef struct fnset_choice {
    const char *name;
    const char *words[FNSET_CHOICE_WORDS]; /* NULL after the last */
    size_t offset;                         /* of its uint8_t field in fn_config */
} fnset_choice;

#define FNSET_CHOICE_COUNT 3

/* The word settings ("network", "keep_alive", "auth"), FNSET_CHOICE_COUNT of them. */
const fnset_choice *fnset_choices(size_t *count);
const fnset_choice *fnset_find_choice(const char *name);

/* The word for the choice's value in cfg. */
const char *fnset_word(const fn_config *cfg, const fnset_choice *c);

/* Sets the choice from its word: 0, or -1 for any other word. */
int fnset_choose(fn_config *cfg, const fnset_choice *c, const char *word);

/* The index of `word` among c's words, or -1. */
int fnset_word_index(const fnset_choice *c, const char *word);

/* Its words as one phrase for an error: "\"a\", \"b\" or \"c\"". */
void fnset_words_phrase(const fnset_choice *c, char *buf, size_t cap);

/* The table, and its length (FNSET_INT_COUNT) in *count. */
const fnset_int *fnset_ints(size_t *count);

/* The setting called `name`, or NULL. */
const fnset_int *fnset_find(const char *name);

/* Its field in cfg. */
int64_t *fnset_field(fn_config *cfg, const fnset_int *s);
int64_t fnset_value(const fn_config *cfg, const fnset_int *s);
/* The value the daemon applies: cfg's own, or for an inherited setting
 * that cfg left unset, daemon[s->inherits] (the daemon's options, indexed
 * by fnset_daemon). */
int64_t fnset_effective(const fn_config *cfg, const fnset_int *s,
                        const int64_t daemon[FNSET_DAEMON_COUNT]);

/* A setting whose value is JSON (a list, an object, a function's name),
 * kept in fn_config.json_settings at its index in the table; NULL when the
 * deploy did not set it. `check` returns 0, -ENOMEM (out of memory: not
 * the value's fault), or another negative value with a sentence in err
 * (err may be NULL). */
typedef struct fnset_json {
    const char *name;
    int (*check)(const json_t *v, char *err, size_t cap);
} fnset_json;

/* The JSON-valued settings, and their count in *count. */
const fnset_json *fnset_jsons(size_t *count);
/* Its index in the table, or -1. */
int fnset_json_index(const char *name);
/* The value of `name` in cfg (borrowed), or NULL when unset. */
json_t *fnset_json_value(const fn_config *cfg, const char *name);

/* Every whole-number setting of cfg to its default. */
void fnset_defaults(fn_config *cfg);

/* True when v may be stored for s: in range, or FNSET_INHERIT where s
 * inherits. */
bool fnset_storable(const fnset_int *s, int64_t v);

/* Checks the settings against each other (min_instances <= max_concurrency).
 * Returns 0, or -1 with a sentence in err (which may be NULL). */
int fnset_check_together(const fn_config *cfg, char *err, size_t cap);

#endif
