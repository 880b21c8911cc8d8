/*
 * routes.c — HTTP routes: the "routes" setting's rules, and the table of
 * every function's routes.
 *
 * The table is a trie keyed by path segment. Each node has a hash map of
 * literal children (strmap), one parameter child, and two sets of
 * endpoints, one slot per method: routes that end at the node, and greedy
 * routes (`{name+}`) that take every segment left from there. A lookup
 * walks the request's segments, trying at each one the literal child, then
 * the parameter child, then the greedy endpoints, and backs up when a
 * branch finds nothing deeper; each trie node sits at one depth, so no node
 * is visited twice. Its cost follows the path's length (and the number of
 * templates that differ only in literal-versus-parameter at the same
 * places), never the number of routes.
 *
 * Each function's routes are also listed under its name, so that replacing
 * or removing them costs their own number. A replacement is prepared (every
 * node and entry allocated, conflicts checked) and then committed without
 * any allocation, so the deployer can put the registry's commit between
 * the two (routes.h).
 *
 * Owns: the routes rules (templates, reserved prefixes, conflicts), the
 * table. Must never: decode a request (api.c hands it decoded segments),
 * know about HTTP answers, or be touched off the loop thread.
 */
#include "events/routes.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dlog.h"
#include "fn_settings.h"
#include "qualifier.h"
#include "strmap.h"
#include "validate.h"

#define PARAM_NAME_MAX 64

/* --- methods and reserved prefixes --- */

static const char *const method_names[ROUTES_METHODS] = {
    [ROUTES_GET] = "GET",         [ROUTES_POST] = "POST",     [ROUTES_PUT] = "PUT",
    [ROUTES_PATCH] = "PATCH",     [ROUTES_DELETE] = "DELETE", [ROUTES_HEAD] = "HEAD",
    [ROUTES_OPTIONS] = "OPTIONS", [ROUTES_ANY] = "ANY",
};

const char *routes_method_name(enum routes_method m)
{
    return (unsigned)m < ROUTES_METHODS ? method_names[m] : "?";
}

/* The method named exactly `s` (case matters, as in HTTP), or -1. */
static int method_parse(const char *s)
{
    for (int i = 0; i < ROUTES_METHODS; i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}

/* The top-level segments Hearth serves: the one home of this list. */
static const struct {
    const char *seg;
    const char *shown; /* as a prefix, for messages */
} reserved[] = {
    {"v1", "/v1/"},          {"fn", "/fn/"},
    {"healthz", "/healthz"}, {"metrics", "/metrics"},
    {"ui", "/ui/"},          {"2015-03-31", "/2015-03-31/"}, /* the AWS Lambda API (aws_lambda.h) */
};

bool routes_is_reserved(const char *seg, size_t len)
{
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i].seg) == len && strncasecmp(seg, reserved[i].seg, len) == 0)
            return true;
    return false;
}

const char *routes_reserved_text(void)
{
    return "/v1/, /fn/, /healthz, /metrics, /ui/";
}

static const char *reserved_shown(const char *seg, size_t len)
{
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i].seg) == len && strncasecmp(seg, reserved[i].seg, len) == 0)
            return reserved[i].shown;
    return "";
}

/* --- templates --- */

enum seg_kind { SEG_LITERAL, SEG_PARAM, SEG_GREEDY };

typedef struct tseg {
    enum seg_kind kind;
    const char *s; /* the literal, or the parameter's name (without braces or '+') */
    size_t len;
} tseg;

typedef struct tmpl {
    tseg seg[ROUTES_SEGMENTS_MAX];
    size_t n;
} tmpl;

/* RFC 3986 pchar without percent-encoding: what a literal segment may hold. */
static bool literal_char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("-._~!$&'()*+,;=:@", c));
}

static bool param_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > PARAM_NAME_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* Parses one segment `s` (len bytes) into *out; `why` gets the reason it is
 * not one. */
static int parse_segment(const char *s, size_t len, tseg *out, char *why, size_t whylen)
{
    if (len == 0)
        return validate_refuse(why, whylen, "has an empty segment ('//' or a trailing '/')");
    if (s[0] == '{') {
        if (s[len - 1] != '}')
            return validate_refuse(why, whylen,
                                   "a parameter is a whole segment: {name} or {name+}");
        bool greedy = len >= 3 && s[len - 2] == '+';
        const char *name = s + 1;
        size_t n = len - 2 - (greedy ? 1 : 0);
        if (!param_name_ok(name, n))
            return validate_refuse(
                why, whylen, "parameter names match [A-Za-z_][A-Za-z0-9_]{0,63}; '%.*s' does not",
                (int)len, s);
        *out = (tseg){greedy ? SEG_GREEDY : SEG_PARAM, name, n};
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (!literal_char(s[i])) {
            char what[16];
            unsigned char c = (unsigned char)s[i];
            snprintf(what, sizeof what, c > 0x20 && c < 0x7f ? "'%c'" : "byte 0x%02x", c);
            return validate_refuse(why, whylen,
                                   "holds %s: literal segments are letters, digits and "
                                   "-._~!$&'()*+,;=:@ (a parameter is a whole segment)",
                                   what);
        }
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return validate_refuse(why, whylen, "'.' and '..' are not segments a route may have");
    *out = (tseg){SEG_LITERAL, s, len};
    return 0;
}

/* Parses the template `path` (len bytes, no NUL) into *t. */
static int tmpl_parse(const char *path, size_t len, tmpl *t, char *why, size_t whylen)
{
    t->n = 0;
    if (len == 0 || path[0] != '/')
        return validate_refuse(why, whylen, "must start with '/'");
    if (len > ROUTES_PATH_MAX)
        return validate_refuse(why, whylen, "is longer than %d bytes", ROUTES_PATH_MAX);
    if (len == 1)
        return 0; /* "/": the root, zero segments */
    const char *p = path + 1, *end = path + len;
    while (p <= end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        if (t->n == ROUTES_SEGMENTS_MAX)
            return validate_refuse(why, whylen, "has more than %d segments", ROUTES_SEGMENTS_MAX);
        tseg *s = &t->seg[t->n];
        if (parse_segment(p, (size_t)(e - p), s, why, whylen) < 0)
            return -EINVAL;
        if (t->n > 0 && t->seg[t->n - 1].kind == SEG_GREEDY)
            return validate_refuse(why, whylen, "a greedy {%.*s+} must be the last segment",
                                   (int)t->seg[t->n - 1].len, t->seg[t->n - 1].s);
        for (size_t i = 0; i < t->n; i++)
            if (t->seg[i].kind != SEG_LITERAL && s->kind != SEG_LITERAL &&
                t->seg[i].len == s->len && memcmp(t->seg[i].s, s->s, s->len) == 0)
                return validate_refuse(why, whylen, "names the parameter '%.*s' twice", (int)s->len,
                                       s->s);
        t->n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (t->seg[0].kind == SEG_LITERAL && routes_is_reserved(t->seg[0].s, t->seg[0].len))
        return validate_refuse(why, whylen, "is under the reserved prefix %s",
                               reserved_shown(t->seg[0].s, t->seg[0].len));
    return 0;
}

/* True when two templates have the same shape: the same literals at the
 * same places, parameters (of any name) where the other has parameters. */
static bool same_shape(const tmpl *a, const tmpl *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->seg[i].kind != b->seg[i].kind)
            return false;
        if (a->seg[i].kind == SEG_LITERAL &&
            (a->seg[i].len != b->seg[i].len || memcmp(a->seg[i].s, b->seg[i].s, a->seg[i].len)))
            return false;
    }
    return true;
}

static bool methods_overlap(int a, int b)
{
    return a == b || a == ROUTES_ANY || b == ROUTES_ANY;
}

/* One item of a routes list, parsed; `path` borrowed from the JSON. */
typedef struct parsed_route {
    int method;
    const char *path;
    const char *qualifier; /* "" = the current version */
    tmpl t;
} parsed_route;

/* Parses and checks item `i` of a routes list. */
static int parse_item(json_t *item, size_t i, parsed_route *out, char *err, size_t errlen)
{
    static const char *const known[] = {"method", "path", "qualifier"};
    if (!json_is_object(item))
        return validate_refuse(err, errlen,
                               "routes[%zu] must be an object {\"method\": ..., \"path\": ...}", i);
    const char *key = validate_unknown_key(item, known, 3, NULL);
    if (key)
        return validate_refuse(err, errlen,
                               "routes[%zu]: unknown field '%.60s' (a route has method, path and "
                               "optionally qualifier)",
                               i, key);
    json_t *q = json_object_get(item, "qualifier");
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1], ref[FN_QUALIFIED_MAX + 2];
    out->qualifier = q ? json_string_value(q) : "";
    if (q &&
        (!json_is_string(q) || json_string_length(q) == 0 || json_string_length(q) > FN_ALIAS_MAX ||
         snprintf(ref, sizeof ref, "f:%s", out->qualifier) < 0 ||
         qualifier_split(ref, name, qual) < 0 || strcmp(qual, out->qualifier) != 0))
        return validate_refuse(err, errlen,
                               "routes[%zu].qualifier must be a version number, an alias name "
                               "([a-z][a-z0-9_-]{0,62}) or $LATEST",
                               i);
    json_t *m = json_object_get(item, "method"), *p = json_object_get(item, "path");
    out->method = json_is_string(m) && json_string_length(m) == strlen(json_string_value(m))
                      ? method_parse(json_string_value(m))
                      : -1;
    if (out->method < 0)
        return validate_refuse(
            err, errlen,
            "routes[%zu].method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, "
            "OPTIONS, ANY",
            i);
    if (!json_is_string(p))
        return validate_refuse(err, errlen, "routes[%zu].path must be a string starting with '/'",
                               i);
    out->path = json_string_value(p);
    size_t len = json_string_length(p);
    char why[200], shown[96];
    if (len != strlen(out->path))
        return validate_refuse(err, errlen, "routes[%zu].path holds a NUL", i);
    if (tmpl_parse(out->path, len, &out->t, why, sizeof why) < 0) {
        /* The path is the client's: quote it printable (ASCII here unless
         * it fails the character rule, which names the byte anyway). */
        size_t k = 0;
        for (size_t j = 0; j < len && k + 4 < sizeof shown; j++)
            shown[k++] = (out->path[j] >= 0x20 && out->path[j] < 0x7f) ? out->path[j] : '?';
        shown[k] = '\0';
        return validate_refuse(err, errlen, "routes[%zu].path: '%s' %s", i, shown, why);
    }
    return 0;
}

/* Parses a whole list into `out` (room for ROUTES_MAX), checking that its
 * routes do not collide with each other. *n is the count. */
static int parse_list(const json_t *v, parsed_route *out, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (!v)
        return 0; /* none (routes_prepare's NULL) */
    if (!json_is_array(v))
        return validate_refuse(
            err, errlen, "routes must be an array of {\"method\": ..., \"path\": ...} objects");
    size_t count = json_array_size(v);
    if (count > ROUTES_MAX)
        return validate_refuse(err, errlen, "routes lists %zu routes; at most %d are allowed",
                               count, ROUTES_MAX);
    for (size_t i = 0; i < count; i++) {
        if (parse_item(json_array_get(v, i), i, &out[i], err, errlen) < 0)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (methods_overlap(out[i].method, out[j].method) && same_shape(&out[i].t, &out[j].t))
                return validate_refuse(err, errlen,
                                       "routes[%zu]: %s %s collides with routes[%zu] (%s %s)", i,
                                       method_names[out[i].method], out[i].path, j,
                                       method_names[out[j].method], out[j].path);
    }
    *n = count;
    return 0;
}

int routes_validate(const json_t *v, char *err, size_t errlen)
{
    parsed_route *list = malloc(ROUTES_MAX * sizeof *list);
    if (!list) {
        validate_refuse(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n;
    int rc = parse_list(v, list, &n, err, errlen);
    free(list);
    return rc;
}

/* --- the table --- */

typedef struct rnode rnode;
typedef struct rfunc rfunc;

typedef struct rentry {
    enum routes_method method;
    bool greedy; /* in node->greedy[], else node->here[] */
    rnode *node;
    rfunc *owner;
    char *path;                       /* the template */
    char qualifier[FN_ALIAS_MAX + 1]; /* the version or alias it calls ("" = current) */
    char **pnames;                    /* the parameters' names, in path order (one allocation) */
    unsigned nparams;
} rentry;

struct rnode {
    rnode *parent;
    char *lit;   /* this node's key in parent->kids; NULL for a parameter child and the root */
    strmap kids; /* literal segment -> rnode */
    rnode *param;
    rentry *here[ROUTES_METHODS];
    rentry *greedy[ROUTES_METHODS];
    unsigned pending; /* entries of a prepared change that will land here */
};

struct rfunc {
    char *name;
    rentry **entries;
    size_t n;
};

struct routes_table {
    rnode root;
    strmap funcs; /* function name -> rfunc */
    size_t count;
};

struct routes_change {
    rfunc *fn;
    bool new_fn; /* fn was made (and mapped) by the prepare */
    rentry **entries;
    size_t n;
};

routes_table *routes_table_new(void)
{
    routes_table *t = calloc(1, sizeof *t);
    if (t) {
        strmap_init(&t->root.kids);
        strmap_init(&t->funcs);
    }
    return t;
}

static void entry_free(rentry *e)
{
    if (!e)
        return;
    free(e->path);
    free(e->pnames);
    free(e);
}

static int free_node_visit(const char *key, void *value, void *ud);

static void node_free_tree(rnode *n)
{
    strmap_each(&n->kids, free_node_visit, NULL);
    strmap_release(&n->kids);
    if (n->param) {
        node_free_tree(n->param);
        free(n->param);
    }
    free(n->lit);
}

static int free_node_visit(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    node_free_tree(value);
    free(value);
    return 0;
}

static int free_func_visit(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    rfunc *f = value;
    for (size_t i = 0; i < f->n; i++)
        entry_free(f->entries[i]);
    free(f->entries);
    free(f->name);
    free(f);
    return 0;
}

void routes_table_free(routes_table *t)
{
    if (!t)
        return;
    strmap_each(&t->funcs, free_func_visit, NULL);
    strmap_release(&t->funcs);
    node_free_tree(&t->root);
    free(t);
}

size_t routes_count(const routes_table *t)
{
    return t->count;
}

static bool node_empty(const rnode *n)
{
    if (n->kids.count || n->param || n->pending)
        return false;
    for (int m = 0; m < ROUTES_METHODS; m++)
        if (n->here[m] || n->greedy[m])
            return false;
    return true;
}

/* Frees `n` and each parent left empty by it, up to the root. */
static void prune_up(routes_table *t, rnode *n)
{
    while (n != &t->root && node_empty(n)) {
        rnode *parent = n->parent;
        if (parent->param == n)
            parent->param = NULL;
        else
            strmap_remove(&parent->kids, n->lit);
        strmap_release(&n->kids);
        free(n->lit);
        free(n);
        n = parent;
    }
}

/* The node where a template of shape `tp` ends (for a greedy one: the node
 * its greedy endpoints hang on), or NULL when the trie has none. With
 * `create`, missing nodes are made (NULL only when out of memory). */
static rnode *walk(routes_table *t, const tmpl *tp, bool create)
{
    rnode *n = &t->root;
    char key[ROUTES_PATH_MAX + 1];
    for (size_t i = 0; i < tp->n; i++) {
        const tseg *s = &tp->seg[i];
        if (s->kind == SEG_GREEDY)
            break;
        rnode **param = s->kind == SEG_PARAM ? &n->param : NULL;
        rnode *next;
        if (param) {
            next = *param;
        } else {
            memcpy(key, s->s, s->len);
            key[s->len] = '\0';
            next = strmap_get(&n->kids, key);
        }
        if (!next && create) {
            next = calloc(1, sizeof *next);
            if (!next)
                return NULL;
            strmap_init(&next->kids);
            next->parent = n;
            if (param) {
                *param = next;
            } else if (!(next->lit = strdup(key)) || strmap_put(&n->kids, key, next) < 0) {
                free(next->lit);
                free(next);
                return NULL;
            }
        }
        if (!next)
            return NULL;
        n = next;
    }
    return n;
}

static bool is_greedy(const tmpl *tp)
{
    return tp->n && tp->seg[tp->n - 1].kind == SEG_GREEDY;
}

/* Functions whose routes a prepare disregards: `fn` itself, and for a set
 * (routes_prepare_set) every function of the set. */
typedef struct owners {
    const char *fn;
    const char *const *set;
    size_t nset;
} owners;

static bool is_disregarded(const owners *o, const char *name)
{
    if (strcmp(name, o->fn) == 0)
        return true;
    for (size_t i = 0; i < o->nset; i++)
        if (strcmp(name, o->set[i]) == 0)
            return true;
    return false;
}

/* The route of a function outside `o` that `r` collides with, or NULL. */
static const rentry *collision(routes_table *t, const owners *o, const parsed_route *r)
{
    rnode *n = walk(t, &r->t, false);
    if (!n)
        return NULL;
    rentry *const *slots = is_greedy(&r->t) ? n->greedy : n->here;
    for (int m = 0; m < ROUTES_METHODS; m++)
        if (slots[m] && methods_overlap(m, r->method) && !is_disregarded(o, slots[m]->owner->name))
            return slots[m];
    return NULL;
}

static rentry *entry_new(const parsed_route *r)
{
    rentry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->method = (enum routes_method)r->method;
    e->greedy = is_greedy(&r->t);
    snprintf(e->qualifier, sizeof e->qualifier, "%s", r->qualifier ? r->qualifier : "");
    e->path = strdup(r->path);
    size_t names = 0;
    for (size_t i = 0; i < r->t.n; i++)
        if (r->t.seg[i].kind != SEG_LITERAL) {
            e->nparams++;
            names += r->t.seg[i].len + 1;
        }
    /* The pointers, then the names they point at, in one block. */
    e->pnames = malloc(e->nparams * sizeof *e->pnames + names + 1);
    if (!e->path || !e->pnames) {
        entry_free(e);
        return NULL;
    }
    char *text = (char *)(e->pnames + e->nparams);
    unsigned k = 0;
    for (size_t i = 0; i < r->t.n; i++)
        if (r->t.seg[i].kind != SEG_LITERAL) {
            e->pnames[k++] = text;
            memcpy(text, r->t.seg[i].s, r->t.seg[i].len);
            text[r->t.seg[i].len] = '\0';
            text += r->t.seg[i].len + 1;
        }
    return e;
}

void routes_abort(routes_table *t, routes_change *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        rnode *n = c->entries[i]->node;
        entry_free(c->entries[i]);
        if (n) {
            n->pending--;
            prune_up(t, n);
        }
    }
    if (c->new_fn) {
        strmap_remove(&t->funcs, c->fn->name);
        free(c->fn->name);
        free(c->fn);
    }
    free(c->entries);
    free(c);
}

static int prepare_one(routes_table *t, const owners *o, const json_t *routes, routes_change **out,
                       char *err, size_t errlen)
{
    const char *function = o->fn;
    *out = NULL;
    parsed_route *list = malloc(ROUTES_MAX * sizeof *list);
    if (!list) {
        validate_refuse(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t n;
    int rc = parse_list(routes, list, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const rentry *other = collision(t, o, &list[i]);
        if (other) {
            validate_refuse(err, errlen, "%s %s collides with %s %s of function '%s'",
                            method_names[list[i].method], list[i].path, method_names[other->method],
                            other->path, other->owner->name);
            rc = -EEXIST;
        }
    }
    routes_change *c = rc == 0 ? calloc(1, sizeof *c) : NULL;
    if (rc == 0 && (!c || !(c->entries = calloc(n ? n : 1, sizeof *c->entries))))
        rc = -ENOMEM;
    if (rc == 0 && !(c->fn = strmap_get(&t->funcs, function))) {
        c->fn = calloc(1, sizeof *c->fn);
        if (c->fn && (c->fn->name = strdup(function)) &&
            strmap_put(&t->funcs, function, c->fn) == 0) {
            c->new_fn = true;
        } else {
            if (c->fn)
                free(c->fn->name);
            free(c->fn);
            c->fn = NULL;
            rc = -ENOMEM;
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rentry *e = entry_new(&list[i]);
        if (!e) {
            rc = -ENOMEM;
            break;
        }
        c->entries[c->n++] = e;
        e->owner = c->fn;
        if (!(e->node = walk(t, &list[i].t, true))) {
            rc = -ENOMEM;
            break;
        }
        e->node->pending++;
    }
    free(list);
    if (rc == -ENOMEM)
        validate_refuse(err, errlen, "out of memory");
    if (rc < 0) {
        if (c && c->fn)
            routes_abort(t, c);
        else if (c) {
            free(c->entries);
            free(c);
        }
        return rc;
    }
    *out = c;
    return 0;
}

int routes_prepare(routes_table *t, const char *function, const json_t *routes, routes_change **out,
                   char *err, size_t errlen)
{
    owners o = {.fn = function};
    return prepare_one(t, &o, routes, out, err, errlen);
}

/* Takes `e` out of its slot and frees it, with the nodes it leaves empty. */
static void entry_unlink(routes_table *t, rentry *e)
{
    rnode *n = e->node;
    (e->greedy ? n->greedy : n->here)[e->method] = NULL;
    entry_free(e);
    t->count--;
    prune_up(t, n);
}

/* Commit, first half: takes the function's current routes out. */
static void unlink_old(routes_table *t, routes_change *c)
{
    rfunc *f = c->fn;
    for (size_t i = 0; i < f->n; i++)
        entry_unlink(t, f->entries[i]);
    free(f->entries);
    f->entries = NULL;
    f->n = 0;
}

/* Commit, second half: puts the new routes in their slots; frees c. */
static void place_new(routes_table *t, routes_change *c)
{
    rfunc *f = c->fn;
    for (size_t i = 0; i < c->n; i++) {
        rentry *e = c->entries[i];
        e->node->pending--;
        (e->greedy ? e->node->greedy : e->node->here)[e->method] = e;
        t->count++;
    }
    f->entries = c->entries;
    f->n = c->n;
    if (f->n == 0) {
        strmap_remove(&t->funcs, f->name);
        free(f->entries);
        free(f->name);
        free(f);
    }
    free(c);
}

void routes_commit(routes_table *t, routes_change *c)
{
    unlink_old(t, c);
    place_new(t, c);
}

struct routes_set {
    size_t n;
    routes_change **c;
};

void routes_abort_set(routes_table *t, routes_set *s)
{
    if (!s)
        return;
    for (size_t i = s->n; i-- > 0;) /* newest first: each undoes only its own */
        routes_abort(t, s->c[i]);
    free(s->c);
    free(s);
}

/* The set's lists against each other, in a table of their own: what
 * routes_prepare finds there is a collision inside the set. */
static int check_within(const char *const *fns, const json_t *const *lists, size_t n, size_t *bad,
                        char *err, size_t errlen)
{
    routes_table *scratch = routes_table_new();
    if (!scratch) {
        validate_refuse(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        routes_change *c;
        rc = routes_prepare(scratch, fns[i], lists[i], &c, err, errlen);
        if (rc == 0)
            routes_commit(scratch, c);
        else
            *bad = i;
    }
    routes_table_free(scratch);
    return rc;
}

int routes_prepare_set(routes_table *t, const char *const *functions, const json_t *const *lists,
                       size_t n, routes_set **out, size_t *bad, char *err, size_t errlen)
{
    *out = NULL;
    *bad = 0;
    int rc = check_within(functions, lists, n, bad, err, errlen);
    if (rc < 0)
        return rc;
    routes_set *s = calloc(1, sizeof *s);
    if (!s || !(s->c = calloc(n ? n : 1, sizeof *s->c))) {
        free(s);
        validate_refuse(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        owners o = {.fn = functions[i], .set = functions, .nset = n};
        rc = prepare_one(t, &o, lists[i], &s->c[i], err, errlen);
        if (rc < 0) {
            *bad = i;
            routes_abort_set(t, s);
            return rc;
        }
        s->n++;
    }
    *out = s;
    return 0;
}

/* Every old route of the set out before any new one goes in: a route may
 * move from one function of the set to another. */
void routes_commit_set(routes_table *t, routes_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        unlink_old(t, s->c[i]);
    for (size_t i = 0; i < s->n; i++)
        place_new(t, s->c[i]);
    free(s->c);
    free(s);
}

void routes_remove_function(routes_table *t, const char *function)
{
    rfunc *f = strmap_remove(&t->funcs, function);
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        entry_unlink(t, f->entries[i]);
    free(f->entries);
    free(f->name);
    free(f);
}

static int load_visit(const fn_config *cfg, void *ud)
{
    routes_table *t = ud;
    const json_t *routes = fnset_json_value(cfg, "routes");
    if (json_array_size(routes) == 0)
        return 0;
    routes_change *c;
    char err[512];
    int rc = routes_prepare(t, cfg->name, routes, &c, err, sizeof err);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        dlog_warn("function %s is served without its routes: %s", cfg->name, err);
        return 0;
    }
    routes_commit(t, c);
    return 0;
}

int routes_load(routes_table *t, registry *reg)
{
    int rc = registry_list(reg, load_visit, t);
    return rc > 0 ? 0 : rc;
}

/* --- lookup --- */

typedef struct search {
    int method; /* -1: a method no route names (only ANY takes it) */
    const char *const *segs;
    size_t n;
    size_t caps[ROUTES_SEGMENTS_MAX]; /* segment index of each parameter so far */
    const rentry *found;
    size_t greedy_from; /* for a greedy entry: where its segments start */
    unsigned allowed;
} search;

/* The entry of `slots` for the method: exact first, then ANY. Records the
 * methods there for a 405 when none fits. */
static const rentry *pick(search *s, rentry *const *slots)
{
    if (s->method >= 0 && slots[s->method])
        return slots[s->method];
    if (slots[ROUTES_ANY])
        return slots[ROUTES_ANY];
    for (int m = 0; m < ROUTES_ANY; m++)
        if (slots[m])
            s->allowed |= 1u << m;
    return NULL;
}

/* Depth-first from `node` at segment `i` with `ncap` parameters taken.
 * True when s->found is set. Depth is bounded by the trie's. */
static bool descend(search *s, const rnode *node, size_t i, size_t ncap)
{
    if (i == s->n) {
        s->found = pick(s, node->here);
        return s->found != NULL;
    }
    const rnode *lit = strmap_get(&node->kids, s->segs[i]);
    if (lit && descend(s, lit, i + 1, ncap))
        return true;
    if (node->param && ncap < ROUTES_SEGMENTS_MAX) {
        s->caps[ncap] = i;
        if (descend(s, node->param, i + 1, ncap + 1))
            return true;
    }
    s->found = pick(s, node->greedy);
    if (s->found)
        s->greedy_from = i;
    return s->found != NULL;
}

/* The params object of a match; NULL when out of memory. */
static json_t *params_of(const search *s)
{
    const rentry *e = s->found;
    json_t *o = json_object();
    unsigned plain = e->nparams - (e->greedy ? 1 : 0);
    for (unsigned k = 0; o && k < plain; k++) {
        const char *v = s->segs[s->caps[k]];
        if (json_object_set_new_nocheck(o, e->pnames[k], json_stringn(v, strlen(v))) < 0) {
            json_decref(o);
            o = NULL;
        }
    }
    if (o && e->greedy) {
        size_t len = 0;
        for (size_t i = s->greedy_from; i < s->n; i++)
            len += strlen(s->segs[i]) + 1;
        char *joined = malloc(len);
        char *p = joined;
        for (size_t i = s->greedy_from; joined && i < s->n; i++) {
            size_t l = strlen(s->segs[i]);
            memcpy(p, s->segs[i], l);
            p += l;
            *p++ = '/';
        }
        if (!joined ||
            json_object_set_new_nocheck(o, e->pnames[plain], json_stringn(joined, len - 1)) < 0) {
            json_decref(o);
            o = NULL;
        }
        free(joined);
    }
    return o;
}

int routes_lookup(const routes_table *t, const char *method, const char *const *segs, size_t n,
                  routes_match *m)
{
    *m = (routes_match){0};
    for (size_t i = 0; i < n; i++)
        if (!segs[i][0])
            return -ENOENT; /* "//" or a trailing '/': no route has an empty segment */
    search *s = &(search){.method = method_parse(method), .segs = segs, .n = n};
    if (s->method == ROUTES_ANY)
        s->method = -1; /* a request whose method is "ANY" is just an unknown method */
    if (!descend(s, &t->root, 0, 0)) {
        m->allowed = s->allowed;
        return s->allowed ? ROUTES_NO_METHOD : -ENOENT;
    }
    m->function = s->found->owner->name;
    m->resource = s->found->path;
    m->qualifier = s->found->qualifier;
    if (s->found->nparams && !(m->params = params_of(s)))
        return -ENOMEM;
    return ROUTES_FOUND;
}

/* --- listing --- */

typedef struct list_ctx {
    routes_item *items;
    size_t n;
} list_ctx;

static int list_visit(const char *key, void *value, void *ud)
{
    (void)key;
    list_ctx *lc = ud;
    const rfunc *f = value;
    for (size_t i = 0; i < f->n; i++)
        lc->items[lc->n++] = (routes_item){f->entries[i]->method, f->entries[i]->path, f->name,
                                           f->entries[i]->qualifier};
    return 0;
}

static int item_cmp(const void *a, const void *b)
{
    const routes_item *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(method_names[x->method], method_names[y->method]);
}

int routes_list(const routes_table *t, routes_item **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (t->count == 0)
        return 0;
    list_ctx lc = {.items = malloc(t->count * sizeof *lc.items)};
    if (!lc.items)
        return -ENOMEM;
    strmap_each(&t->funcs, list_visit, &lc);
    qsort(lc.items, lc.n, sizeof *lc.items, item_cmp);
    *out = lc.items;
    *n = lc.n;
    return 0;
}
