/*
 * output.h — how answers are shown: aligned tables with a header for a
 * person at a terminal, tab-separated rows without one for a pipe, and the
 * API's own JSON for --json.
 *
 * Owns: column layout, the JSON printer.
 */
#ifndef HEARTH_CLI_OUTPUT_H
#define HEARTH_CLI_OUTPUT_H

#include "cli.h"

#include <jansson.h>

#define TABLE_COLS_MAX 8

typedef struct table {
    size_t ncols;
    const char *head[TABLE_COLS_MAX];
    size_t nrows, cap;
    char **cells; /* nrows * ncols, owned */
} table;

/* Sets up a table with the given column titles (NULL-terminated). */
void table_init(table *t, ...);

/* Adds a row of ncols strings (copied; NULL shows as "-"). Returns 0 or -ENOMEM. */
int table_add(table *t, ...);

/* Prints it (see above) and frees its contents. */
void table_flush(table *t, const cli *c);

/* Fills a table from an API answer: table_init, then a table_add a row. */
typedef void (*out_table_fn)(table *t, json_t *ans);

/* GETs `path` and shows the answer: as it came with --json, else as the
 * table `to_table` makes of it. Returns CLI_OK or CLI_FAIL (reason printed). */
int out_get(const cli *c, const char *path, out_table_fn to_table);

/* Replaces, in place, what would drive a terminal with '?': C0 and C1
 * controls, DEL, bytes that are not UTF-8, and safetext_breaks_lines()'s
 * separators and bidi overrides; newline and tab stay when keep_lines.
 * Returns the new length (never longer). */
size_t out_defang(char *s, size_t len, bool keep_lines);

/* Writes a function's bytes (an answer, log lines) to stdout: as they are
 * on a pipe; on a terminal with every control character but newline and
 * tab shown as '?', so that what a function (or whatever answers at
 * HEARTH_URL) wrote cannot move the cursor, retitle the terminal or
 * overwrite a line. Returns 0 or -1 (stdout failed). */
int out_write(const cli *c, const char *p, size_t len);

/* A function's answer: out_write, and on a terminal a newline after it
 * when it has none, so the prompt starts on a line of its own. */
void out_answer(const cli *c, const char *p, size_t len);

/* Prints a JSON value on stdout, indented on a terminal, one line on a pipe. */
void out_json(const cli *c, const json_t *j);

/* A member as text for a table cell: strings as they are, numbers and
 * booleans formatted, null/absent as NULL, arrays of strings joined with
 * ",", other values compact JSON. Returns a pointer into `tmp` or the value. */
const char *out_field(const json_t *obj, const char *key, char *tmp, size_t n);

#endif
