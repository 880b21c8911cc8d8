/*
 * options.h — the daemon's settings from its command line and its config
 * file, both read through one table of options (options.c).
 */
#ifndef HEARTH_OPTIONS_H
#define HEARTH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "hearth.h"

/* What the command line asked for, kept to be replayed over the file on
 * every load (the command line wins), and every string loaded so far. */
typedef struct options options;

/* Zeroes *set and gives every option its built-in default (the table's
 * `def` column: the same parser as the command line and the file). */
void options_defaults(hearth_settings *set);

/* Reads argv into a new `options` and, over the built-in defaults in
 * *set, the config file (--config FILE, else `default_config` when it is
 * not NULL and exists), then the command line again. --help, --version,
 * --check-config and every error end the process here: a usage error
 * exits 2 with "hearthd: ..." on stderr, a config file error exits 2 with
 * "FILE:LINE: what is wrong". Never returns NULL. */
options *options_parse(int argc, char **argv, const char *default_config, hearth_settings *set);

/* The file in use, or NULL when none is read. */
const char *options_config_path(const options *o);

/* SIGHUP: `*next` = `*defaults`, then the file again, then the command
 * line. Returns 0, or -1 with `err` ("FILE:LINE: what is wrong") and
 * `*next` unspecified. Strings in `*next` stay valid until options_free. */
int options_reload(options *o, const hearth_settings *defaults, hearth_settings *next, char *err,
                   size_t errlen);

/* What a reload may change while hearthd runs (docs/configuration.md has
 * the table). */
typedef enum { OPTIONS_RESTART = 0, OPTIONS_LIVE } options_when;

/* Calls fn once per option whose value differs between *a and *b, with
 * its name (the long option, the config key) and when it can apply. */
typedef void (*options_changed_fn)(const char *name, options_when when, void *ud);
void options_diff(const hearth_settings *a, const hearth_settings *b, options_changed_fn fn,
                  void *ud);

/* Frees `o` and every string it loaded. Accepts NULL. */
void options_free(options *o);

#endif
