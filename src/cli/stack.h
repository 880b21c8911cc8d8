/*
 * stack.h — a stack file (hearth.yml) read with libyaml and turned into the
 * body of POST /v1/stacks/{stack}:
 *
 *   stack: shop                 # optional: the stack's name
 *   functions:
 *     hello:
 *       code: ./hello           # a directory, relative to the file, packed as deploy packs
 *       runtime: python3
 *       handler: main.handler
 *       env: {GREETING: hi}     # values become strings
 *       secrets: [db-password]
 *       schedules: ["@every 1m"]
 *       routes: [{method: GET, path: /hello}]
 *       subscriptions: [orders]
 *       memory_mb: 256          # any other deploy setting, by its API name
 *
 * Plain scalars are typed as YAML 1.2's core schema has them (null, true/false,
 * integers, floats, else strings); quoted ones are strings.
 */
#ifndef HEARTH_CLI_STACK_H
#define HEARTH_CLI_STACK_H

#include <jansson.h>

#define STACK_NAME_MAX 63

/* Reads `path`. On success returns 0, *body = {"functions": {...}} with
 * each `code` packed and base64-encoded, and name[] = the file's `stack:`
 * ("" when it has none). Else prints the reason and returns -1. */
int stack_load(const char *path, json_t **body, char name[STACK_NAME_MAX + 1]);

/* The YAML text as JSON (the whole document; tests and apply's converter).
 * Returns NULL with the reason in err[n]. */
json_t *stack_yaml_to_json(const char *text, size_t len, char *err, size_t n);

#endif
