/*
 * validate.h — checks on client-supplied names and settings, shared by the
 * API and the registry. Pure functions; no allocation.
 */
#ifndef HEARTH_VALIDATE_H
#define HEARTH_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* [a-z0-9][a-z0-9-]{0,62}: safe as a path component and a hostname. */
bool validate_function_name(const char *name);

/* The error idiom of every validator: writes the sentence to err (when it
 * is not NULL) and returns -EINVAL. */
int validate_refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The longest function name and handler (validate_function_name,
 * validate_handler); the registry's columns and buffers are sized by
 * them. */
#define FN_NAME_MAX    63
#define FN_HANDLER_MAX 255

/* Secret names follow the function names' rule, which makes them safe
 * as one path component (no '/', no "." or "..", no NUL, no leading '.'). */
#define VALIDATE_SECRET_NAME_MAX FN_NAME_MAX
#define VALIDATE_SECRETS_MAX     16 /* secrets one function may list */
bool validate_secret_name(const char *name);

/* A function's "secrets": a JSON array of at most VALIDATE_SECRETS_MAX
 * distinct valid secret names. Returns 0 or -EINVAL with a sentence in
 * `err` (which may be NULL). */
int validate_secret_list(const json_t *list, char *err, size_t errlen);

/* The environment every worker starts with, before its function's own
 * (sched_launch.c); validate_env refuses a function's env that names one. */
#define VALIDATE_FIXED_ENV_COUNT 4
extern const char *const validate_fixed_env[VALIDATE_FIXED_ENV_COUNT];

/* env: a JSON object whose keys match [A-Za-z_][A-Za-z0-9_]{0,127}, are not
 * reserved (HEARTH_*, validate_fixed_env and the runtime's own), and whose values
 * are strings without NUL; at most 4 KiB of keys+values in all (Lambda's
 * limit). Returns 0 or -EINVAL with a sentence in `err`. */
int validate_env(const json_t *env, char *err, size_t errlen);

/* The first key of object `doc` that is neither one of the `n` names of
 * `known` nor accepted by `also` (which may be NULL), or NULL when every
 * key is known. The key is borrowed from doc. */
const char *validate_unknown_key(json_t *doc, const char *const *known, size_t n,
                                 bool (*also)(const char *key));

/* A handler: 1..255 printable ASCII bytes, no spaces, no leading '/', no
 * ".." component. Runtime-specific rules are checked by the runtime table. */
bool validate_handler(const char *handler);

#endif
