/*
 * validate.c — the rules for client-supplied function names, environment
 * variables and handlers. Pure checks: no allocation, no I/O, no state; it
 * must never trust a length it did not bound itself (every scan is capped).
 */
#include "validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ENV_KEY_MAX_LEN 128
#define ENV_TOTAL_MAX   4096
#define QUOTED_KEY_MAX  64 /* how much of a bad key an error message shows */

const char *const validate_fixed_env[VALIDATE_FIXED_ENV_COUNT] = {
    "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp", "TZ=UTC"};

/* Besides validate_fixed_env, variables the runtimes set for themselves:
 * a user value would break the runtime or, for the loader's LD_*
 * variables, subvert it. */
static const char *const reserved_names[] = {
    "LC_ALL", "PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "LAMBDA_TASK_ROOT",
};
/* LD_ covers LD_AUDIT and the other loader knobs beyond the two above. */
static const char *const reserved_prefixes[] = {"HEARTH_", "AWS_LAMBDA_", "LD_"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool validate_function_name(const char *name)
{
    if (!name)
        return false;
    size_t len = strnlen(name, FN_NAME_MAX + 1);
    if (len == 0 || len > FN_NAME_MAX || !is_lower_alnum((unsigned char)name[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_lower_alnum((unsigned char)name[i]) && name[i] != '-')
            return false;
    return true;
}

bool validate_secret_name(const char *name)
{
    return validate_function_name(name);
}

int validate_refuse(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int validate_secret_list(const json_t *list, char *err, size_t errlen)
{
    if (!json_is_array(list))
        return validate_refuse(err, errlen, "secrets must be an array of secret names");
    size_t n = json_array_size(list);
    if (n > VALIDATE_SECRETS_MAX)
        return validate_refuse(err, errlen, "a function lists at most %d secrets, not %zu",
                               VALIDATE_SECRETS_MAX, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        const char *name = json_string_value(v);
        if (!name || strlen(name) != json_string_length(v) || !validate_secret_name(name))
            return validate_refuse(
                err, errlen, "secrets[%zu] is not a secret name ([a-z0-9][a-z0-9-]{0,62})", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(name, json_string_value(json_array_get(list, k))) == 0)
                return validate_refuse(err, errlen, "secret '%s' is listed twice", name);
    }
    return 0;
}

static int is_key_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_key_char(int c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

/* `len` is the key's true length, which exceeds strlen() when it holds a NUL. */
static bool env_key_well_formed(const char *key, size_t len)
{
    if (len == 0 || len > ENV_KEY_MAX_LEN || !is_key_start((unsigned char)key[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_key_char((unsigned char)key[i]))
            return false;
    return true;
}

static bool env_key_reserved(const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < VALIDATE_FIXED_ENV_COUNT; i++)
        if (strncmp(key, validate_fixed_env[i], klen) == 0 && validate_fixed_env[i][klen] == '=')
            return true;
    for (size_t i = 0; i < COUNT(reserved_names); i++)
        if (strcmp(key, reserved_names[i]) == 0)
            return true;
    for (size_t i = 0; i < COUNT(reserved_prefixes); i++)
        if (strncmp(key, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return true;
    return false;
}

/* Copies a client-chosen key into `out` for an error message: at most
 * QUOTED_KEY_MAX bytes, anything unprintable shown as '?', so a message can
 * never carry control bytes or be cut mid-character into invalid UTF-8. */
static void quote_key(char out[QUOTED_KEY_MAX + 4], const char *key, size_t len)
{
    size_t n = len < QUOTED_KEY_MAX ? len : QUOTED_KEY_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Checks one entry; `key_len` and the value's length come from jansson, so
 * an embedded NUL shows up as a length longer than strlen(). */
static int check_env_entry(const char *key, size_t key_len, const json_t *value, char *err,
                           size_t errlen)
{
    char quoted[QUOTED_KEY_MAX + 4];
    quote_key(quoted, key, key_len);
    if (!env_key_well_formed(key, key_len))
        return validate_refuse(err, errlen, "env name '%s' must match [A-Za-z_][A-Za-z0-9_]{0,127}",
                               quoted);
    if (env_key_reserved(key))
        return validate_refuse(err, errlen, "env name '%s' is reserved for the runtime", quoted);
    if (!json_is_string(value))
        return validate_refuse(err, errlen, "env value of '%s' must be a string", quoted);
    if (memchr(json_string_value(value), '\0', json_string_length(value)))
        return validate_refuse(err, errlen, "env value of '%s' must not contain a NUL byte",
                               quoted);
    return 0;
}

/* NULL is accepted as "no env": env is optional wherever it appears. */
int validate_env(const json_t *env, char *err, size_t errlen)
{
    if (!env)
        return 0;
    if (!json_is_object(env))
        return validate_refuse(err, errlen, "env must be a JSON object of strings");
    json_t *obj = (json_t *)env; /* jansson's iterators take non-const */
    size_t total = 0;
    for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t key_len = json_object_iter_key_len(it);
        const json_t *value = json_object_iter_value(it);
        int rc = check_env_entry(key, key_len, value, err, errlen);
        if (rc)
            return rc;
        total += key_len + json_string_length(value);
        if (total > ENV_TOTAL_MAX)
            return validate_refuse(err, errlen, "env is larger than %d bytes of names and values",
                                   ENV_TOTAL_MAX);
    }
    return 0;
}

/* True when `h` has ".." as a whole '/'-separated component. */
static bool has_dotdot_component(const char *h, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || h[i] == '/') {
            if (i - start == 2 && h[start] == '.' && h[start + 1] == '.')
                return true;
            start = i + 1;
        }
    }
    return false;
}

bool validate_handler(const char *handler)
{
    if (!handler)
        return false;
    size_t len = strnlen(handler, FN_HANDLER_MAX + 1);
    if (len == 0 || len > FN_HANDLER_MAX || handler[0] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)handler[i];
        if (c <= 0x20 || c >= 0x7f) /* printable ASCII without the space */
            return false;
    }
    return !has_dotdot_component(handler, len);
}

const char *validate_unknown_key(json_t *doc, const char *const *known, size_t n,
                                 bool (*also)(const char *key))
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        bool ok = also && also(key);
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok)
            return key;
    }
    return NULL;
}
