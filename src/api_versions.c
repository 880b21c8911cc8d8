/*
 * api_versions.c — a function's kept versions, rollback and aliases:
 *
 *   GET    /v1/functions/{name}/versions
 *   POST   /v1/functions/{name}/rollback          {"version": N}
 *   GET    /v1/functions/{name}/aliases[/{alias}]
 *   PUT    /v1/functions/{name}/aliases/{alias}   {"version": 3, "weights": {"4": 0.1}}
 *   DELETE /v1/functions/{name}/aliases/{alias}
 *
 * Rollback moves the registry's current pointer: the kept code serves at
 * once, with that version's settings (its routes, schedules and
 * subscriptions too), nothing uploaded. Every write is audited. Alias
 * names and weights are a client's: checked here, and again by the
 * registry before they are stored.
 */
#include "api.h"
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlog.h"
#include "events/events.h"
#include "events/routes.h"
#include "fn_settings.h"
#include "qualifier.h"
#include "registry.h"
#include "sched.h"
#include "timefmt.h"

#define VERSION_NUM_MAX 9007199254740991LL /* what a JSON number carries exactly */

json_t *api_alias_json(const fn_alias *a)
{
    char created[TIMEFMT_ISO_LEN], updated[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(a->created_ms, created);
    timefmt_iso_ms(a->updated_ms, updated);
    json_t *weights = json_object();
    for (unsigned i = 0; weights && i < a->nextra; i++) {
        char key[24];
        snprintf(key, sizeof key, "%" PRId64, a->extra_version[i]);
        json_object_set_new(weights, key, json_real(a->extra_weight[i]));
    }
    return json_pack("{s:s,s:s,s:I,s:o,s:s,s:s}", "function", a->function, "name", a->name,
                     "version", (json_int_t)a->version, "weights", weights ? weights : json_null(),
                     "created", created, "updated", updated);
}

/* The keys of a function object that are not settings of its version. */
static const char *const not_settings[] = {"name",       "version",    "async",  "pool",
                                           "created_at", "updated_at", "digest", "stack"};

struct versions_ctx {
    hearth *h;
    json_t *list;
    int64_t current;
};

static int version_visit(const fn_config *cfg, void *ud)
{
    struct versions_ctx *x = ud;
    json_t *settings = api_function_json(x->h, cfg);
    for (size_t i = 0; settings && i < sizeof not_settings / sizeof not_settings[0]; i++)
        json_object_del(settings, not_settings[i]);
    char created[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(cfg->updated_ms, created);
    /* A version deployed before digests were kept has none: null. */
    json_t *v =
        json_pack("{s:I,s:o,s:s,s:I,s:b,s:o}", "version", (json_int_t)cfg->version, "digest",
                  cfg->digest[0] ? json_string(cfg->digest) : json_null(), "created", created,
                  "created_ms", (json_int_t)cfg->updated_ms, "current", cfg->version == x->current,
                  "settings", settings ? settings : json_object());
    return v && json_array_append_new(x->list, v) == 0 ? 0 : -ENOMEM;
}

/* The current version of `name` from the scheduler's copy (no registry
 * read), or 0 having answered 404. */
static int64_t current_version(hearth *h, gw_request *req, const char *name)
{
    const fn_config *cur = sched_config(h->sch, name);
    if (!cur)
        gw_respond_error(req, 404, "function_not_found", "no function named '%s'", name);
    return cur ? cur->version : 0;
}

void api_versions_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    int64_t current = current_version(h, req, name);
    if (!current)
        return;
    struct versions_ctx x = {h, json_array(), current};
    if (!x.list || registry_versions(h->reg, name, version_visit, &x) != 0) {
        json_decref(x.list);
        gw_respond_error(req, 500, "internal_error", "could not read the versions of '%s'", name);
        return;
    }
    gw_respond_json(req, 200,
                    json_pack("{s:s,s:I,s:o}", "function", name, "current", (json_int_t)x.current,
                              "versions", x.list));
}

/* The body as a JSON object, or NULL having answered 400. An empty body
 * is {} when `empty_ok`. */
static json_t *body_object(gw_request *req, bool empty_ok)
{
    size_t len;
    const char *body = gw_body(req, &len);
    if (len == 0 && empty_ok)
        return json_object();
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        gw_respond_error(req, 400, "invalid_json", "the body is not a JSON object: %s", jerr.text);
        return NULL;
    }
    return doc;
}

/* A version number field: a whole number from 1. */
static bool version_field(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > VERSION_NUM_MAX)
        return false;
    *out = json_integer_value(v);
    return true;
}

struct older {
    int64_t current, found;
};

static int find_older(const fn_config *cfg, void *ud)
{
    struct older *o = ud;
    if (cfg->version < o->current) {
        o->found = cfg->version;
        return 1; /* newest first: the first older one */
    }
    return 0;
}

void api_rollback(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    int64_t from = current_version(h, req, name), to = 0;
    if (!from)
        return;
    json_t *doc = body_object(req, true);
    if (!doc)
        return;
    json_t *v = json_object_get(doc, "version");
    bool ok = !v || version_field(v, &to);
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val) ok = ok && strcmp(key, "version") == 0;
    json_decref(doc);
    if (!ok) {
        gw_respond_error(req, 400, "invalid_field",
                         "the body is {\"version\": N} (a kept version number) or empty");
        return;
    }
    if (!v) {
        struct older o = {from, 0};
        if (registry_versions(h->reg, name, find_older, &o) < 0) {
            gw_respond_error(req, 500, "internal_error", "could not read the registry");
            return;
        }
        if (!o.found) {
            gw_respond_error(req, 404, "version_not_found",
                             "'%s' keeps no version older than %" PRId64, name, from);
            return;
        }
        to = o.found;
    }
    fn_config cfg;
    int rc = registry_get_version(h->reg, name, to, &cfg);
    if (rc == -ENOENT) {
        gw_respond_error(req, 404, "version_not_found",
                         "'%s' keeps no version %" PRId64 " (see its versions)", name, to);
        return;
    }
    if (rc < 0) {
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    /* The version's routes come back with it, checked against the other
     * functions' as a deploy's are, in the same turn as the registry. */
    routes_change *change;
    char err[400];
    rc =
        routes_prepare(h->routes, name, fnset_json_value(&cfg, "routes"), &change, err, sizeof err);
    if (rc == 0 && registry_set_current(h->reg, name, to) < 0) {
        routes_abort(h->routes, change);
        rc = -EIO;
    }
    if (rc == -EEXIST)
        gw_respond_error(req, 409, "route_conflict", "%s", err);
    else if (rc < 0)
        gw_respond_error(req, 500, "internal_error", "could not roll '%s' back", name);
    if (rc < 0) {
        fn_config_release(&cfg);
        return;
    }
    routes_commit(h->routes, change);
    sched_update(h->sch, &cfg);
    events_function_updated(h->events, &cfg);
    char target[REG_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof target, "%s:%" PRId64, name, to);
    api_audit(h, req, "rollback", target);
    dlog_info("rolled %s back from version %" PRId64 " to %" PRId64, name, from, to);
    gw_respond_json(req, 200, api_function_json(h, &cfg));
    fn_config_release(&cfg);
}

/* The alias segment of `rest` ("/prod"): false having answered when it is
 * not one alias name. An empty rest ("/") leaves alias "". */
static bool alias_segment(gw_request *req, const char *rest, char alias[FN_ALIAS_MAX + 1])
{
    alias[0] = '\0';
    const char *seg = rest[0] == '/' ? rest + 1 : rest;
    size_t n = strlen(seg);
    if (n == 0)
        return true;
    char decoded[FN_ALIAS_MAX + 1];
    ssize_t d = n <= 3 * FN_ALIAS_MAX ? gw_unescape(seg, n, decoded, FN_ALIAS_MAX) : -1;
    if (d >= 0) {
        decoded[d] = '\0';
        if (!memchr(decoded, '\0', (size_t)d) && registry_alias_name_valid(decoded)) {
            memcpy(alias, decoded, (size_t)d + 1);
            return true;
        }
    }
    gw_respond_error(req, 400, "invalid_name",
                     "alias names match [a-z][a-z0-9_-]{0,62} (one path segment)");
    return false;
}

static bool function_exists(hearth *h, gw_request *req, const char *name)
{
    return current_version(h, req, name) != 0;
}

static int alias_visit(const fn_alias *a, void *ud)
{
    json_t *o = api_alias_json(a);
    return o && json_array_append_new(ud, o) == 0 ? 0 : -ENOMEM;
}

void api_alias_get(hearth *h, gw_request *req, const char *name, const char *rest)
{
    char alias[FN_ALIAS_MAX + 1];
    if (!alias_segment(req, rest, alias) || !function_exists(h, req, name))
        return;
    if (!alias[0]) {
        json_t *list = json_array();
        if (!list || registry_alias_list(h->reg, name, alias_visit, list) != 0) {
            json_decref(list);
            gw_respond_error(req, 500, "internal_error", "could not read the aliases");
            return;
        }
        gw_respond_json(req, 200, json_pack("{s:o}", "aliases", list));
        return;
    }
    fn_alias a;
    int rc = registry_alias_get(h->reg, name, alias, &a);
    if (rc == -ENOENT)
        gw_respond_error(req, 404, "alias_not_found", "'%s' has no alias '%s'", name, alias);
    else if (rc < 0)
        gw_respond_error(req, 500, "internal_error", "could not read the aliases");
    else
        gw_respond_json(req, 200, api_alias_json(&a));
}

/* Fills a's versions and weights from the body, or answers 400. */
static bool alias_from_body(gw_request *req, json_t *doc, fn_alias *a)
{
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val)
    {
        if (strcmp(key, "version") != 0 && strcmp(key, "weights") != 0) {
            gw_respond_error(req, 400, "invalid_field",
                             "an alias takes \"version\" and \"weights\" only");
            return false;
        }
    }
    if (!version_field(json_object_get(doc, "version"), &a->version)) {
        gw_respond_error(req, 400, "invalid_field", "\"version\" must be a version number");
        return false;
    }
    const char *why = api_alias_weights(json_object_get(doc, "weights"), a);
    if (why) {
        gw_respond_error(req, 400, "invalid_field", "\"weights\": %s", why);
        return false;
    }
    return true;
}

const char *api_alias_weights(const json_t *w, fn_alias *a)
{
    a->nextra = 0;
    if (!w || json_is_null(w))
        return NULL;
    if (!json_is_object(w) || json_object_size(w) > FN_ALIAS_EXTRA_MAX)
        return "up to " FN_ALIAS_EXTRA_MAX_TEXT " other version numbers, each to its share";
    double sum = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)w, key, val)
    {
        int64_t v = 0;
        double x = json_is_number(val) ? json_number_value(val) : -1;
        if (!qualifier_version(key, &v) || v == a->version || !(x > 0 && x < 1) || !isfinite(x))
            return "each maps a version number other than the alias's own to a share between 0 "
                   "and 1 (exclusive)";
        a->extra_version[a->nextra] = v;
        a->extra_weight[a->nextra++] = x;
        sum += x;
    }
    return sum < 1 ? NULL : "the shares sum to less than 1 (the alias's version takes the rest)";
}

int api_alias_store(hearth *h, fn_alias *a)
{
    a->updated_ms = timefmt_now_ms();
    int rc = registry_alias_put(h->reg, a);
    if (rc == 0)
        sched_versions_changed(h->sch, a->function);
    return rc;
}

void api_alias_put(hearth *h, gw_request *req, const char *name, const char *rest)
{
    char alias[FN_ALIAS_MAX + 1];
    if (!alias_segment(req, rest, alias))
        return;
    if (!alias[0]) {
        gw_respond_error(req, 405, "method_not_allowed", "PUT an alias by its name");
        return;
    }
    if (!function_exists(h, req, name))
        return;
    json_t *doc = body_object(req, false);
    if (!doc)
        return;
    fn_alias a;
    memset(&a, 0, sizeof a);
    snprintf(a.function, sizeof a.function, "%s", name);
    snprintf(a.name, sizeof a.name, "%s", alias);
    bool ok = alias_from_body(req, doc, &a);
    json_decref(doc);
    if (!ok)
        return;
    fn_alias old;
    bool created = registry_alias_get(h->reg, name, alias, &old) != 0;
    int rc = api_alias_store(h, &a);
    if (rc == -ENOENT) {
        gw_respond_error(req, 404, "version_not_found",
                         "'%s' does not keep every version the alias names", name);
        return;
    }
    if (rc == -EINVAL) {
        gw_respond_error(req, 400, "invalid_field", "the alias's versions or weights are invalid");
        return;
    }
    if (rc < 0) {
        gw_respond_error(req, 500, "internal_error", "could not store the alias");
        return;
    }
    char target[REG_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof target, "%s:%s", name, alias);
    api_audit(h, req, created ? "alias_create" : "alias_update", target);
    gw_respond_json(req, created ? 201 : 200, api_alias_json(&a));
}

void api_alias_delete(hearth *h, gw_request *req, const char *name, const char *rest)
{
    char alias[FN_ALIAS_MAX + 1];
    if (!alias_segment(req, rest, alias))
        return;
    if (!alias[0]) {
        gw_respond_error(req, 405, "method_not_allowed", "DELETE an alias by its name");
        return;
    }
    if (!function_exists(h, req, name))
        return;
    int rc = registry_alias_delete(h->reg, name, alias);
    if (rc == -ENOENT) {
        gw_respond_error(req, 404, "alias_not_found", "'%s' has no alias '%s'", name, alias);
        return;
    }
    if (rc < 0) {
        gw_respond_error(req, 500, "internal_error", "could not delete the alias");
        return;
    }
    sched_versions_changed(h->sch, name);
    char target[REG_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof target, "%s:%s", name, alias);
    api_audit(h, req, "alias_delete", target);
    gw_respond(req, 204, NULL, NULL, 0);
}
