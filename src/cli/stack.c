/*
 * stack.c — hearth.yml to JSON (see stack.h), with libyaml's document API.
 *
 * Owns: typing YAML scalars, the file's shape (top-level keys, one mapping
 * per function), packing each function's code directory.
 * Must never: expand aliases without bound (a "billion laughs" file): the
 * converted tree is limited to STACK_NODES_MAX nodes and STACK_DEPTH_MAX
 * levels.
 */
#include "stack.h"
#include "cli.h"
#include "pack.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define STACK_FILE_MAX  (1u << 20)
#define STACK_NODES_MAX 100000
#define STACK_DEPTH_MAX 64

typedef struct conv {
    yaml_document_t *doc;
    size_t nodes;
    char *err;
    size_t errn;
} conv;

static bool matches(const char *s, const char *re)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static json_t *scalar(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(s) != len)
        return json_stringn(s, len);
    if (len == 0 || strcmp(s, "~") == 0 || matches(s, "^(null|Null|NULL)$"))
        return json_null();
    if (matches(s, "^(true|True|TRUE)$"))
        return json_true();
    if (matches(s, "^(false|False|FALSE)$"))
        return json_false();
    if (matches(s, "^[-+]?[0-9]+$")) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    if (matches(s, "^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$"))
        return json_real(strtod(s, NULL));
    return json_stringn(s, len);
}

static json_t *convert(conv *cv, const yaml_node_t *n, int depth)
{
    if (!n || depth > STACK_DEPTH_MAX || ++cv->nodes > STACK_NODES_MAX) {
        snprintf(cv->err, cv->errn, "the document is nested too deep or has too many nodes");
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        json_t *j = scalar(n);
        if (!j)
            snprintf(cv->err, cv->errn, "line %lu: text that is not UTF-8",
                     (unsigned long)n->start_mark.line + 1);
        return j;
    }
    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *v = convert(cv, yaml_document_get_node(cv->doc, *it), depth + 1);
            if (!v || json_array_append_new(arr, v) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        json_t *obj = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const yaml_node_t *k = yaml_document_get_node(cv->doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                snprintf(cv->err, cv->errn, "line %lu: a key that is not a plain word",
                         (unsigned long)n->start_mark.line + 1);
                json_decref(obj);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (json_object_get(obj, key)) {
                snprintf(cv->err, cv->errn, "line %lu: '%s' is given twice",
                         (unsigned long)k->start_mark.line + 1, key);
                json_decref(obj);
                return NULL;
            }
            json_t *v = convert(cv, yaml_document_get_node(cv->doc, p->value), depth + 1);
            if (!v || json_object_set_new(obj, key, v) != 0) {
                if (v == NULL && !cv->err[0])
                    snprintf(cv->err, cv->errn, "line %lu: a bad key",
                             (unsigned long)k->start_mark.line + 1);
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    default:
        snprintf(cv->err, cv->errn, "an empty document");
        return NULL;
    }
}

json_t *stack_yaml_to_json(const char *text, size_t len, char *err, size_t n)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, n, "line %lu: %s", (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "not YAML");
        yaml_parser_delete(&parser);
        return NULL;
    }
    conv cv = {.doc = &doc, .err = err, .errn = n};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *j = root ? convert(&cv, root, 0) : NULL;
    if (!root)
        snprintf(err, n, "the file is empty");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return j;
}

/* env values are strings for the API: YAML's 8080 or true become "8080", "true". */
static void stringify_env(json_t *env)
{
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (json_is_string(v) || json_is_object(v) || json_is_array(v))
            continue;
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        if (s)
            json_object_set_new(env, k, json_string(json_is_null(v) ? "" : s));
        free(s);
    }
}

/* True when `dir`, symlinks resolved, is `base` or below it. A stack file
 * may come from someone else (a cloned repository): its `code` must not
 * reach ~/.ssh or /etc and upload them to a function that could send them
 * on. */
static bool inside_base(const char *dir, const char *base)
{
    char rdir[PATH_MAX], rbase[PATH_MAX];
    if (!realpath(dir, rdir) || !realpath(base, rbase))
        return false;
    size_t n = strlen(rbase);
    if (n == 1) /* the file sits in / */
        return true;
    return strncmp(rdir, rbase, n) == 0 && (rdir[n] == '\0' || rdir[n] == '/');
}

static int load_function(const char *fname, json_t *fn, const char *base)
{
    if (!json_is_object(fn))
        return cli_fail(-1, "%s: a function is a mapping of settings", fname);
    json_t *env = json_object_get(fn, "env");
    if (json_is_object(env))
        stringify_env(env);
    json_t *code = json_object_get(fn, "code");
    if (!json_is_string(code))
        return cli_fail(-1, "%s: `code` is needed: the function's directory", fname);
    const char *rel = json_string_value(code);
    char dir[PATH_MAX];
    int w = rel[0] == '/' ? snprintf(dir, sizeof(dir), "%s", rel)
                          : snprintf(dir, sizeof(dir), "%s/%s", base, rel);
    if (w < 0 || (size_t)w >= sizeof(dir))
        return cli_fail(-1, "%s: the code path is too long", fname);
    if (!inside_base(dir, base))
        return cli_fail(-1, "%s: code %s is not a folder inside the stack file's folder %s", fname,
                        rel, base);
    buf pkg;
    if (pack_dir(dir, &pkg) != 0) {
        buf_release(&pkg);
        return cli_fail(-1, "%s: cannot pack %s", fname, dir);
    }
    char *b64 = pack_base64(pkg.data ? pkg.data : "", pkg.len);
    buf_release(&pkg);
    if (!b64 || json_object_set_new(fn, "code", json_string(b64)) != 0) {
        free(b64);
        return cli_fail(-1, "out of memory");
    }
    free(b64);
    return 0;
}

int stack_load(const char *path, json_t **body, char name[STACK_NAME_MAX + 1])
{
    *body = NULL;
    name[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return cli_fail(-1, "%s: %s", path, strerror(errno));
    buf text;
    buf_init(&text, STACK_FILE_MAX);
    char chunk[65536];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&text, chunk, got) != 0)
            rc = cli_fail(-1, "%s: over %u KiB", path, STACK_FILE_MAX >> 10);
    fclose(f);
    char err[512];
    json_t *doc = NULL;
    if (rc == 0) {
        doc = stack_yaml_to_json(text.data ? text.data : "", text.len, err, sizeof(err));
        if (!doc)
            rc = cli_fail(-1, "%s: %s", path, err);
    }
    buf_release(&text);
    if (rc == 0 && !json_is_object(doc))
        rc = cli_fail(-1, "%s: the file is a mapping with `functions:`", path);
    const char *key;
    json_t *v;
    if (rc == 0) {
        json_object_foreach(doc, key, v)
        {
            if (strcmp(key, "functions") != 0 && strcmp(key, "stack") != 0) {
                rc = cli_fail(-1, "%s: unknown key '%s' (the file has `stack:` and `functions:`)",
                              path, key);
                break;
            }
        }
    }
    json_t *fns = json_object_get(doc, "functions");
    if (rc == 0 && !json_is_object(fns))
        rc = cli_fail(-1, "%s: `functions:` is needed: a mapping of function name to settings",
                      path);
    json_t *sname = json_object_get(doc, "stack");
    if (rc == 0 && sname) {
        if (!json_is_string(sname) || json_string_length(sname) > STACK_NAME_MAX ||
            json_string_length(sname) == 0)
            rc = cli_fail(-1, "%s: `stack:` is a name of 1 to %d characters", path, STACK_NAME_MAX);
        else
            snprintf(name, STACK_NAME_MAX + 1, "%s", json_string_value(sname));
    }
    char real[PATH_MAX];
    if (rc == 0 && !realpath(path, real))
        rc = cli_fail(-1, "%s: %s", path, strerror(errno));
    if (rc == 0) {
        const char *base = dirname(real);
        json_object_foreach(fns, key, v)
        {
            if ((rc = load_function(key, v, base)) != 0)
                break;
        }
    }
    if (rc == 0) {
        *body = json_pack("{sO}", "functions", fns);
        if (!*body)
            rc = cli_fail(-1, "out of memory");
    }
    json_decref(doc);
    return rc;
}
