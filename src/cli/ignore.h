/*
 * ignore.h — a .hearthignore: which files of a function's directory stay
 * out of its package. gitignore's rules, the common part: one pattern a
 * line; blank lines and lines starting with '#' are skipped (`\#` for a
 * literal '#'); `!` re-includes what an earlier pattern excluded; a
 * trailing '/' matches directories only; a pattern with a '/' at its start
 * or middle is relative to the directory, one without matches a name at any
 * depth; `*`, `?`, `[...]` match within a path segment and `**` across
 * them. The last pattern that matches decides. An excluded directory is not
 * entered, so nothing under it can be re-included (as in git).
 */
#ifndef HEARTH_CLI_IGNORE_H
#define HEARTH_CLI_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ignore_rule {
    char *pat;
    bool negate, dir_only, anchored;
} ignore_rule;

typedef struct ignore {
    ignore_rule *rules;
    size_t n;
} ignore;

/* Reads the rules of `path` (no file: no rules). Returns 0 or -errno. */
int ignore_load(ignore *ig, const char *path);

/* Adds one rule line (as in the file). Returns 0 or -ENOMEM. */
int ignore_add(ignore *ig, const char *line);

/* Whether `rel` (a path relative to the package root, '/'-separated) is
 * excluded. */
bool ignore_match(const ignore *ig, const char *rel, bool is_dir);

void ignore_release(ignore *ig);

#endif
