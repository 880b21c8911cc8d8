/*
 * check.h — `hearthd check --data-dir DIR [--repair] [--json]`: verifies
 * the data directory a stopped hearthd left (docs/operations.md).
 */
#ifndef HEARTH_CHECK_H
#define HEARTH_CHECK_H

#include <stdbool.h>
#include <stdio.h>

/* What check_run found. */
enum {
    CHECK_CLEAN = 0,    /* nothing wrong (leftovers of an unclean stop do not count) */
    CHECK_PROBLEMS = 1, /* at least one problem (even if --repair fixed it) */
    CHECK_FAILED = 2,   /* could not check: no data dir, a live hearthd holds it, ... */
};

/* Checks (and with `repair`, repairs what is safe in) the data dir `dir`,
 * printing one line per finding and a summary to `out` (one JSON object
 * with `json`). Returns CHECK_CLEAN, CHECK_PROBLEMS or CHECK_FAILED. The
 * working directory is the same on return. */
int check_run(const char *dir, bool repair, bool json, FILE *out);

/* The subcommand: argv[0] is "check". Returns the exit status. */
int check_main(int argc, char **argv);

#endif
