/*
 * stacks.c — a stack apply: every function of an application, deployed
 * all or nothing.
 *
 * On the threadpool (stack_work): parse the body, then run each
 * function's settings and code through the very step a PUT uses
 * (deploy_unit_from_json: checks, unpack, seal, digest), stopping at the
 * first refusal. On the loop (stack_after): the token may reach every
 * function touched; no function belongs to another stack; every unit
 * passes the loop's checks; the plan compares each with its current
 * version (same digest, same runtime, handler and settings = unchanged, no
 * new version); every route list is prepared as one set; only then is new
 * code placed and ONE registry transaction (registry_stack_apply) records
 * every new version, the stack's membership and every delete. The routes
 * set is committed right after, in the same loop turn, and the scheduler
 * and events are told per function. Any failure before the registry
 * commit takes away what was placed and aborts the routes: nothing
 * changes. A dry run stops after the plan, having placed nothing.
 *
 * Owns: the stack body's shape, the plan. Must never: delete a function
 * that is not this stack's, or touch the registry off the loop.
 */
#include "stacks.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_internal.h"
#include "auth.h"
#include "deploy.h"
#include "dlog.h"
#include "events/routes.h"
#include "fn_settings.h"
#include "safetext.h"
#include "validate.h"

enum action { ACT_CREATE, ACT_UPDATE, ACT_UNCHANGED, ACT_DELETE };
static const char *const action_names[] = {"create", "update", "unchanged", "delete"};

typedef struct stack_fn {
    deploy_unit u;
    fn_config old; /* the current version, when has_old */
    bool has_old;
    enum action action;
    bool new_version; /* the apply records u.cfg as a new version */
    json_t *changes;  /* what differs from the current version */
} stack_fn;

typedef struct stack_job {
    uv_work_t work;
    hearth *h;
    gw_request *req;
    char stack[FN_NAME_MAX + 1];
    const char *body; /* borrowed: the request waits for us */
    size_t len;
    bool dry_run;
    stack_fn *fns; /* sorted by name */
    size_t n;
    char (*deletes)[FN_NAME_MAX + 1]; /* this stack's functions the body leaves out */
    size_t ndeletes;
    /* the error */
    unsigned status;
    const char *code; /* NULL while all is well */
    char function[FN_NAME_MAX + 1];
    char message[600];
} stack_job;

static int fail(stack_job *j, const char *function, unsigned status, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records the error, naming the function it is about (or none). Returns -1. */
static int fail(stack_job *j, const char *function, unsigned status, const char *code,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(j->function, sizeof j->function, "%s", function ? function : "");
    if (function)
        snprintf(j->message, sizeof j->message, "%s: %s", function, msg);
    else
        snprintf(j->message, sizeof j->message, "%s", msg);
    j->status = status;
    j->code = code;
    return -1;
}

/* A unit's own refusal, named. */
static int fail_unit(stack_job *j, const deploy_unit *u)
{
    return fail(j, u->name, u->status, u->code, "%s", u->message);
}

/* --- the threadpool: parse, then each function as a PUT would --- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const stack_fn *)a)->u.name, ((const stack_fn *)b)->u.name);
}

static int parse_body(stack_job *j, json_t **functions)
{
    json_error_t jerr;
    json_t *doc = json_loadb(j->body, j->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(j, NULL, 400, "invalid_json", "the body is not a JSON object: %s", jerr.text);
    }
    static const char *const known[] = {"functions", "dry_run"};
    const char *key = validate_unknown_key(doc, known, 2, NULL);
    json_t *fns = json_object_get(doc, "functions"), *dry = json_object_get(doc, "dry_run");
    int rc = 0;
    if (key)
        rc = fail(j, NULL, 400, "unknown_field", "unknown field '%.60s'", key);
    else if (dry && !json_is_boolean(dry))
        rc = fail(j, NULL, 400, "invalid_field", "dry_run must be true or false");
    else if (!json_is_object(fns))
        rc = fail(j, NULL, 400, "invalid_field",
                  "functions must be an object of function name to settings");
    else if (json_object_size(fns) > STACK_FUNCTIONS_MAX)
        rc = fail(j, NULL, 400, "invalid_field", "a stack holds at most %d functions",
                  STACK_FUNCTIONS_MAX);
    if (rc == 0 && json_is_true(dry))
        j->dry_run = true;
    *functions = rc == 0 ? json_incref(fns) : NULL;
    json_decref(doc);
    return rc;
}

static void stack_work(uv_work_t *w)
{
    stack_job *j = w->data;
    json_t *fns;
    if (parse_body(j, &fns) < 0)
        return;
    j->fns = calloc(json_object_size(fns) + 1, sizeof *j->fns);
    if (!j->fns) {
        fail(j, NULL, 500, "internal_error", "out of memory");
        json_decref(fns);
        return;
    }
    const char *name;
    json_t *v;
    json_object_foreach(fns, name, v)
    {
        if (!validate_function_name(name)) {
            char shown[96];
            safetext_copy(shown, sizeof shown, name, strlen(name));
            fail(j, NULL, 400, "invalid_name",
                 "function names match [a-z0-9][a-z0-9-]{0,62}; '%s' does not", shown);
            break;
        }
        deploy_unit_init(&j->fns[j->n++].u, j->h, name);
    }
    if (!j->code)
        qsort(j->fns, j->n, sizeof *j->fns, name_cmp);
    uint64_t used = 0;
    for (size_t i = 0; !j->code && i < j->n; i++) {
        deploy_unit *u = &j->fns[i].u;
        if (STACK_MAX_UNPACKED - used < u->lim.max_unpacked)
            u->lim.max_unpacked = (size_t)(STACK_MAX_UNPACKED - used);
        if (deploy_unit_from_json(u, json_object_get(fns, u->name), true) < 0)
            fail_unit(j, u);
        used += u->unpacked;
    }
    json_decref(fns);
}

/* --- the loop: who may, who owns, the plan --- */

/* The token that sent the request may still deploy `function`: checked
 * here, after the body is read, since the route names a stack. */
static int check_token(stack_job *j, const char *function)
{
    const auth_token *who;
    auth_verdict v = auth_check(j->h->auth, gw_header(j->req, "Authorization"), AUTH_SCOPE_DEPLOY,
                                function, &who);
    if (v == AUTH_OK)
        return 0;
    if (v == AUTH_NO_FUNCTION)
        return fail(j, function, 403, "forbidden",
                    "the token '%s' may only reach functions matching '%s'; '%s' does not",
                    who->name, who->functions, function);
    return fail(j, function, 401, "unauthorized", "the bearer token is no longer valid");
}

static int note_member(const char *stack, const char *function, void *ud)
{
    (void)stack;
    stack_job *j = ud;
    stack_fn key;
    snprintf(key.u.name, sizeof key.u.name, "%s", function);
    if (bsearch(&key, j->fns, j->n, sizeof *j->fns, name_cmp))
        return 0;
    void *grown = realloc(j->deletes, (j->ndeletes + 1) * sizeof *j->deletes);
    if (!grown)
        return -ENOMEM;
    j->deletes = grown;
    snprintf(j->deletes[j->ndeletes++], sizeof *j->deletes, "%s", function);
    return 0;
}

/* Adds the name of each settings key whose value differs between two
 * encodings (registry_encode_settings) to `changes`. */
static int diff_settings(const fn_config *a, const fn_config *b, json_t *changes)
{
    char *ta = registry_encode_settings(a), *tb = registry_encode_settings(b);
    json_t *oa = ta ? json_loads(ta, 0, NULL) : NULL, *ob = tb ? json_loads(tb, 0, NULL) : NULL;
    int rc = oa && ob ? 0 : -ENOMEM;
    const char *key;
    json_t *v;
    if (rc == 0) {
        json_object_foreach(oa, key, v)
        {
            if (!json_equal(v, json_object_get(ob, key)))
                json_array_append_new(changes, json_string(key));
        }
        json_object_foreach(ob, key, v)
        {
            if (!json_object_get(oa, key))
                json_array_append_new(changes, json_string(key));
        }
    }
    json_decref(oa);
    json_decref(ob);
    free(ta);
    free(tb);
    return rc;
}

/* What the apply does to f: create, update (a new version, or only the
 * adoption of a stack-less function) or nothing. */
static int plan_one(stack_job *j, stack_fn *f)
{
    f->changes = json_array();
    if (!f->changes)
        return fail(j, f->u.name, 500, "internal_error", "out of memory");
    int rc = registry_get(j->h->reg, f->u.name, &f->old);
    if (rc == -ENOENT) {
        f->action = ACT_CREATE;
        f->new_version = true;
        return 0;
    }
    if (rc < 0)
        return fail(j, f->u.name, 500, "internal_error", "could not read the registry");
    f->has_old = true;
    if (f->old.stack[0] && strcmp(f->old.stack, j->stack) != 0)
        return fail(j, f->u.name, 409, "stack_conflict",
                    "the function belongs to stack '%s'; delete it there first", f->old.stack);
    const fn_config *n = &f->u.cfg, *o = &f->old;
    if (!o->digest[0] || strcmp(n->digest, o->digest) != 0)
        json_array_append_new(f->changes, json_string("code"));
    if (strcmp(n->runtime, o->runtime) != 0)
        json_array_append_new(f->changes, json_string("runtime"));
    if (strcmp(n->handler, o->handler) != 0)
        json_array_append_new(f->changes, json_string("handler"));
    if (diff_settings(n, o, f->changes) < 0)
        return fail(j, f->u.name, 500, "internal_error", "out of memory");
    f->new_version = json_array_size(f->changes) > 0;
    if (!o->stack[0]) /* adopted: listed in the plan, even with nothing else new */
        json_array_append_new(f->changes, json_string("stack"));
    f->action = json_array_size(f->changes) ? ACT_UPDATE : ACT_UNCHANGED;
    return 0;
}

static int make_plan(stack_job *j)
{
    for (size_t i = 0; i < j->n; i++)
        if (check_token(j, j->fns[i].u.name) < 0)
            return -1;
    if (registry_stack_list(j->h->reg, j->stack, note_member, j) < 0)
        return fail(j, NULL, 500, "internal_error", "could not read the registry");
    for (size_t i = 0; i < j->ndeletes; i++)
        if (check_token(j, j->deletes[i]) < 0)
            return -1;
    for (size_t i = 0; i < j->n; i++) {
        stack_fn *f = &j->fns[i];
        if (plan_one(j, f) < 0)
            return -1;
        if (f->new_version && deploy_unit_check(&f->u) < 0)
            return fail_unit(j, &f->u);
    }
    return 0;
}

/* Every route list of the stack as one set: the new versions' lists, and
 * none for the functions deleted. */
static int prepare_routes(stack_job *j, routes_set **out)
{
    size_t cap = j->n + j->ndeletes;
    const char **names = calloc(cap + 1, sizeof *names);
    const json_t **lists = calloc(cap + 1, sizeof *lists);
    size_t n = 0, bad = 0;
    int rc = names && lists ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        if (j->fns[i].new_version) {
            names[n] = j->fns[i].u.name;
            lists[n++] = fnset_json_value(&j->fns[i].u.cfg, "routes");
        }
    for (size_t i = 0; rc == 0 && i < j->ndeletes; i++) {
        names[n] = j->deletes[i];
        lists[n++] = NULL;
    }
    char err[400] = "";
    if (rc == 0)
        rc = routes_prepare_set(j->h->routes, names, lists, n, out, &bad, err, sizeof err);
    const char *who = rc < 0 && n ? names[bad] : NULL;
    if (rc == -EEXIST)
        fail(j, who, 409, "route_conflict", "%s", err);
    else if (rc == -EINVAL)
        fail(j, who, 400, "invalid_field", "%s", err);
    else if (rc < 0)
        fail(j, who, 500, "internal_error", "out of memory");
    free(names);
    free(lists);
    return rc < 0 ? -1 : 0;
}

/* Places the new versions' code and records everything in one registry
 * transaction. On failure, what was placed is taken away. */
static int commit(stack_job *j)
{
    hearth *h = j->h;
    size_t cap = j->n + 1;
    fn_config **puts = calloc(cap, sizeof *puts);
    const char **members = calloc(cap, sizeof *members);
    const char **deletes = calloc(j->ndeletes + 1, sizeof *deletes);
    size_t nputs = 0;
    int rc = puts && members && deletes ? 0 : fail(j, NULL, 500, "internal_error", "out of memory");
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        stack_fn *f = &j->fns[i];
        members[i] = f->u.name;
        if (!f->new_version)
            continue;
        int64_t latest;
        if (registry_latest_version(h->reg, f->u.name, &latest) < 0)
            rc = fail(j, f->u.name, 500, "internal_error", "could not read the registry");
        else if (deploy_unit_place(&f->u, latest + 1) < 0)
            rc = fail_unit(j, &f->u);
        else
            puts[nputs++] = &f->u.cfg;
    }
    for (size_t i = 0; rc == 0 && i < j->ndeletes; i++)
        deletes[i] = j->deletes[i];
    if (rc == 0) {
        int r = registry_stack_apply(h->reg, j->stack, puts, nputs, members, j->n, deletes,
                                     j->ndeletes);
        if (r == -EEXIST || r == -ENOENT)
            rc = fail(j, NULL, 409, "conflict",
                      "a function of the stack changed during the apply; apply again");
        else if (r < 0)
            rc = fail(j, NULL, 500, "internal_error", "could not record the stack");
    }
    if (rc < 0)
        for (size_t i = 0; i < j->n; i++)
            deploy_unit_unplace(&j->fns[i].u);
    free(puts);
    free(members);
    free(deletes);
    return rc;
}

static json_t *plan_json(const stack_job *j)
{
    json_t *plan = json_array();
    for (size_t i = 0; plan && i < j->n; i++) {
        const stack_fn *f = &j->fns[i];
        int64_t version = f->has_old ? f->old.version : 0, latest = 0;
        if (f->new_version && !j->dry_run)
            version = f->u.cfg.version;
        else if (f->new_version && registry_latest_version(j->h->reg, f->u.name, &latest) == 0)
            version = latest + 1; /* what the apply would give it */
        json_array_append_new(plan, json_pack("{s:s,s:s,s:I,s:O}", "function", f->u.name, "action",
                                              action_names[f->action], "version",
                                              (json_int_t)version, "changes", f->changes));
    }
    for (size_t i = 0; plan && i < j->ndeletes; i++)
        json_array_append_new(plan,
                              json_pack("{s:s,s:s,s:n,s:[]}", "function", j->deletes[i], "action",
                                        action_names[ACT_DELETE], "version", "changes"));
    return json_pack("{s:s,s:b,s:o}", "stack", j->stack, "dry_run", j->dry_run, "plan", plan);
}

/* After the registry commit: everyone else learns of it, per function. */
static void announce(stack_job *j)
{
    hearth *h = j->h;
    for (size_t i = 0; i < j->n; i++) {
        stack_fn *f = &j->fns[i];
        if (f->new_version)
            deploy_announce(h, &f->u.cfg);
        if (f->action != ACT_UNCHANGED)
            api_audit(h, j->req, "deploy", f->u.name);
    }
    for (size_t i = 0; i < j->ndeletes; i++) {
        deploy_forget(h, j->deletes[i]);
        api_audit(h, j->req, "delete", j->deletes[i]);
    }
    api_audit(h, j->req, "stack_apply", j->stack);
    dlog_info("applied stack %s: %zu functions, %zu deleted", j->stack, j->n, j->ndeletes);
}

static void respond_error(stack_job *j)
{
    char safe[sizeof j->message];
    safetext_copy(safe, sizeof safe, j->message, strlen(j->message));
    json_t *err = json_pack("{s:s,s:s}", "code", j->code, "message", safe);
    if (err && j->function[0])
        json_object_set_new(err, "function", json_string(j->function));
    gw_respond_json(j->req, j->status, json_pack("{s:o}", "error", err));
}

static void job_free(stack_job *j)
{
    for (size_t i = 0; j->fns && i < j->n; i++) {
        deploy_unit_release(&j->fns[i].u);
        if (j->fns[i].has_old)
            fn_config_release(&j->fns[i].old);
        json_decref(j->fns[i].changes);
    }
    free(j->fns);
    free(j->deletes);
    free(j);
}

static void stack_after(uv_work_t *w, int status)
{
    stack_job *j = w->data;
    if (status < 0)
        fail(j, NULL, 500, "internal_error", "the apply was cancelled");
    routes_set *routes = NULL;
    if (!j->code && make_plan(j) == 0 && prepare_routes(j, &routes) == 0) {
        if (j->dry_run) {
            routes_abort_set(j->h->routes, routes);
        } else if (commit(j) < 0) {
            routes_abort_set(j->h->routes, routes);
        } else {
            routes_commit_set(j->h->routes, routes); /* same turn as the registry commit */
            announce(j);
        }
    }
    if (j->code)
        respond_error(j);
    else
        gw_respond_json(j->req, 200, plan_json(j));
    job_free(j);
}

/* --- the routes --- */

void api_stack_apply(hearth *h, gw_request *req, const char *stack, const char *rest)
{
    (void)rest;
    const char *dry;
    if (!api_query_text(req, "dry_run", &dry) ||
        (dry && strcmp(dry, "true") && strcmp(dry, "false") && strcmp(dry, "1") &&
         strcmp(dry, "0"))) {
        gw_respond_error(req, 400, "invalid_query", "dry_run must be true or false");
        return;
    }
    const char *ct = gw_header(req, "Content-Type");
    if (ct && *ct && strncasecmp(ct, "application/json", 16) != 0) {
        gw_respond_error(req, 415, "unsupported_media_type",
                         "send the stack as application/json (each function's code is base64 "
                         "in its \"code\")");
        return;
    }
    stack_job *j = calloc(1, sizeof *j);
    if (!j) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    j->h = h;
    j->req = req;
    snprintf(j->stack, sizeof j->stack, "%s", stack);
    j->dry_run = dry && (strcmp(dry, "true") == 0 || strcmp(dry, "1") == 0);
    j->body = gw_body(req, &j->len);
    j->work.data = j;
    if (uv_queue_work(h->loop, &j->work, stack_work, stack_after) < 0) {
        gw_respond_error(req, 500, "internal_error", "could not queue the apply");
        free(j);
    }
}

/* Builds {"name": s, "functions": [...]} objects in a list, hiding the
 * functions the token may not reach (and a stack left with none). */
typedef struct stack_listing {
    json_t *list;
    json_t *cur; /* the current stack's object, in list */
} stack_listing;

static int list_visit(const char *stack, const char *function, void *ud)
{
    stack_listing *l = ud;
    if (!api_caller_may_reach(function))
        return 0;
    if (!l->cur || strcmp(json_string_value(json_object_get(l->cur, "name")), stack) != 0) {
        l->cur = json_pack("{s:s,s:[]}", "name", stack, "functions");
        if (!l->cur || json_array_append_new(l->list, l->cur) < 0)
            return -ENOMEM;
    }
    return json_array_append_new(json_object_get(l->cur, "functions"), json_string(function));
}

void api_stacks_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    stack_listing l = {.list = json_array()};
    if (!l.list || registry_stack_list(h->reg, NULL, list_visit, &l) != 0) {
        json_decref(l.list);
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "stacks", l.list));
}

void api_stack_show(hearth *h, gw_request *req, const char *stack, const char *rest)
{
    (void)rest;
    stack_listing l = {.list = json_array()};
    if (!l.list || registry_stack_list(h->reg, stack, list_visit, &l) != 0) {
        json_decref(l.list);
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    if (!json_array_size(l.list)) {
        json_decref(l.list);
        gw_respond_error(req, 404, "stack_not_found", "no stack named '%s'", stack);
        return;
    }
    gw_respond_json(req, 200, json_incref(json_array_get(l.list, 0)));
    json_decref(l.list);
}
