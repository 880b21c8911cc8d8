/*
 * api.c — the routes of docs/api.md.
 *
 * A table maps method + path pattern to a handler; `*` matches one path
 * segment (a function name) and `**` the rest of the path. Routing works
 * on the path as sent, so an encoded '/' (%2f) never splits a segment; the
 * name segment is then percent-decoded with its true length and must be a
 * valid name (400 invalid_name on every route) before any handler runs.
 * Each entry names the scope it needs; one check in front of every
 * handler asks auth.c (401 without a live token, 403 naming the missing
 * scope or function), and lets anyone through to a function deployed with
 * "auth": "none" on the routes that invoke. Handlers check what the client
 * sent, then answer directly or hand over to the scheduler (invoke), the
 * deployer, or the log collector.
 *
 * A request no entry takes, outside the reserved prefixes of
 * events/routes.h, is looked up in the functions' routes: its path split
 * and each segment decoded here (a segment that decodes to '/', NUL, '.',
 * '..' or bytes that are not UTF-8 is 400), and a match invoked as /fn/
 * is, under the same check, with the route's template and parameters
 * added to the event.
 *
 * Route tables: an entry starts with its method (a string, or NULL for
 * any) and its path pattern, `{"GET", "/v1/topics", ...}`, on one line.
 * tests/e2e/test_openapi.py reads every such entry in src/ (this table
 * and any other, e.g. an AWS or dashboard file's; not the CLI's src/cli/)
 * and checks that docs/openapi.json describes it with the same scope: a
 * new route table keeps that shape, and a new route is described there.
 * (src/aws_lambda.c's operation table is read by its own shape, method,
 * OP_ kind, scope, AWS name, and matched on x-aws-operation.)
 *
 * Owns: the HTTP shape of everything. Must never: block (queries that
 * read logs are bounded by retention), or trust a header, a query value or
 * a function's answer without checking it.
 */
#include "api.h"
#include "api_internal.h"
#include "api_parse.h"
#include "qualifier.h"
#include "events/events.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth.h"
#include "aws_lambda.h"
#include "deploy.h"
#include "decimal.h"
#include "events/routes.h"
#include "fn_settings.h"
#include "dlog.h"
#include "metrics.h"
#include "openapi.h"
#include "runtimes.h"
#include "safetext.h"
#include "secrets.h"
#include "stacks.h"
#include "timefmt.h"
#include "ui.h"
#include "validate.h"

#define LOGS_RESPONSE_MAX (64u * 1024 * 1024)

/* `name` is a valid function name (or "" on routes without one; on a
 * ROUTE_QUALIFIED route possibly `name:qualifier`); `rest`
 * is what `**` covers, still percent-encoded. */
typedef void (*route_fn)(hearth *h, gw_request *req, const char *name, const char *rest);

/* What a route's `*` segment is, for the token's functions glob. */
enum route_flags {
    ROUTE_FN_SEGMENT = 0,         /* a function name: the glob applies */
    ROUTE_OTHER_SEGMENT = 1 << 0, /* not a function (a token id): no glob */
    ROUTE_PUBLIC_FN = 1 << 1,     /* open to anyone when the function is "auth": "none" */
    ROUTE_TOPIC_SEGMENT = ROUTE_OTHER_SEGMENT | 1 << 2, /* a topic name (topics.h's rule) */
    ROUTE_ID_SEGMENT = ROUTE_OTHER_SEGMENT | 1 << 3,    /* an invocation id */
    /* a function name, optionally `name:qualifier` (qualifier.h): only where
     * a call is made; the glob applies to the name, never the qualifier */
    ROUTE_QUALIFIED = 1 << 4,
};

struct route {
    const char *method; /* NULL = any */
    const char *pattern;
    route_fn fn;
    auth_scope scope; /* left out: admin only (AUTH_SCOPE_ADMIN is 0) */
    unsigned flags;
};

/* The token of the request being dispatched: set by api_handle around the
 * handler call, so valid only while a handler runs synchronously (a revoke
 * frees it; what outlives the call is the principal copied onto the
 * request). NULL for --no-auth, public routes and "auth": "none" calls. */
static const auth_token *caller;

/* --- matching --- */

/* --- small helpers --- */

static void respond_fn_not_found(gw_request *req, const char *name)
{
    gw_respond_error(req, 404, "function_not_found", "no function named '%s'", name);
}

/* What a route's `*` segment must decode to, and how a refusal says so. */
struct segment_rule {
    bool (*valid)(const char *decoded);
    const char *code;
    const char *rule; /* "...; '<as sent>' does not" */
};

static const struct segment_rule function_segment = {
    validate_function_name, "invalid_name", "function names match [a-z0-9][a-z0-9-]{0,62}"};
/* Invocation ids (UUIDs) are in the function-name alphabet: the same check. */
static const struct segment_rule id_segment = {validate_function_name, "invalid_id",
                                               "ids are lowercase hex digits and '-'"};
static const struct segment_rule topic_segment = {
    topic_name_valid, "invalid_name",
    "topic names are 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"};
_Static_assert(TOPIC_NAME_MAX == FN_NAME_MAX, "a topic name fits the segment buffer");

static bool qualified_name_valid(const char *decoded)
{
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    return qualifier_split(decoded, name, qual) == 0;
}

static const struct segment_rule qualified_segment = {
    qualified_name_valid, "invalid_name",
    "function names match [a-z0-9][a-z0-9-]{0,62}, optionally followed by ':' and a version "
    "number, an alias ([a-z][a-z0-9_-]{0,62}) or $LATEST"};

/* Decodes the route's `*` segment into `out`. Returns false, having answered
 * 400, unless every decoded byte (a %00 included: the check runs on the
 * decoded length, not up to a NUL) passes the route's rule. */
static bool decode_segment(gw_request *req, const struct route *r, const char *seg, size_t seg_len,
                           char out[FN_QUALIFIED_MAX + 1])
{
    const struct segment_rule *rule =
        (r->flags & ROUTE_ID_SEGMENT) == ROUTE_ID_SEGMENT         ? &id_segment
        : (r->flags & ROUTE_TOPIC_SEGMENT) == ROUTE_TOPIC_SEGMENT ? &topic_segment
        : (r->flags & ROUTE_QUALIFIED)                            ? &qualified_segment
                                                                  : &function_segment;
    ssize_t n = gw_unescape(seg, seg_len, out,
                            (r->flags & ROUTE_QUALIFIED) ? FN_QUALIFIED_MAX : FN_NAME_MAX);
    if (n >= 0) {
        out[n] = '\0';
        if (!memchr(out, '\0', (size_t)n) && rule->valid(out))
            return true;
    }
    char shown[96];
    safetext_copy(shown, sizeof shown, seg, seg_len); /* as sent: what the client typed */
    gw_respond_error(req, 400, rule->code, "%s; '%s' does not", rule->rule, shown);
    return false;
}

/* Reads query parameter `key`: *v is its value, or NULL when absent.
 * Returns false when the value decodes to a NUL byte or to bytes that are
 * not UTF-8: no parameter takes either, and reading up to the NUL would
 * take "5%00junk" for 5. */
bool api_query_text(gw_request *req, const char *key, const char **v)
{
    size_t len = 0;
    *v = gw_query(req, key, &len);
    return !*v || api_query_value_ok(*v, len);
}

static json_t *pool_json(hearth *h, const char *name)
{
    sched_pool_state ps;
    sched_pool_state_of(h->sch, name, &ps);
    json_t *o =
        json_pack("{s:i,s:i,s:i,s:i,s:I,s:I}", "starting", (int)ps.starting, "idle", (int)ps.idle,
                  "busy", (int)ps.busy, "queued", (int)ps.queued, "cold_starts",
                  (json_int_t)ps.cold_starts, "warm_starts", (json_int_t)ps.warm_starts);
    if (o && ps.adaptive_reason)
        json_object_set_new(o, "adaptive",
                            json_pack("{s:s,s:I,s:I}", "decided_by", ps.adaptive_reason,
                                      "prewarm_after_ms", (json_int_t)ps.prewarm_after_ms,
                                      "window_ms", (json_int_t)ps.window_ms));
    return o;
}

json_t *api_function_json(hearth *h, const fn_config *cfg)
{
    char created[TIMEFMT_ISO_LEN], updated[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(cfg->created_ms, created);
    timefmt_iso_ms(cfg->updated_ms, updated);
    json_t *env = cfg->env ? json_deep_copy(cfg->env) : json_object();
    json_t *o =
        json_pack("{s:s,s:I,s:s,s:s,s:o}", "name", cfg->name, "version", (json_int_t)cfg->version,
                  "runtime", cfg->runtime, "handler", cfg->handler, "env", env);
    /* What an inherited setting follows: the daemon's options. */
    const int64_t daemon[FNSET_DAEMON_COUNT] = {
        [FNSET_DAEMON_MAX_QUEUE] = (int64_t)h->set.max_queue,
        [FNSET_DAEMON_KEEP_ALIVE_S] = (int64_t)(h->set.keep_alive_ms / 1000),
    };
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, t[i].name, json_integer(fnset_effective(cfg, &t[i], daemon)));
    const fnset_choice *c = fnset_choices(&n);
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, c[i].name, json_string(fnset_word(cfg, &c[i])));
    const fnset_json *js = fnset_jsons(&n);
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, js[i].name,
                            cfg->json_settings[i] ? json_deep_copy(cfg->json_settings[i])
                                                  : json_null());
    events_state es;
    events_state_of(h->events, cfg->name, &es);
    if (o)
        json_object_set_new(o, "async",
                            json_pack("{s:I,s:I}", "waiting", (json_int_t)es.waiting, "running",
                                      (json_int_t)es.running));
    const json_t *routes = fnset_json_value(cfg, "routes");
    json_t *rest = json_pack(
        "{s:o,s:o,s:s,s:s,s:o,s:o,s:o}", "secrets", fn_config_secrets_json(cfg), "routes",
        routes ? json_deep_copy(routes) : json_array(), "created_at", created, "updated_at",
        updated, "pool", pool_json(h, cfg->name), "digest",
        cfg->digest[0] ? json_string(cfg->digest) : json_null(), /* null: deployed before digests */
        "stack", cfg->stack[0] ? json_string(cfg->stack) : json_null());
    if (!o || json_object_update(o, rest) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(rest);
    return o;
}

/* --- service routes --- */

static void route_healthz(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)h, (void)name, (void)rest;
    gw_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void route_runtimes(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)h, (void)name, (void)rest;
    json_t *list = json_array();
    for (size_t i = 0; i < runtimes_count(); i++) {
        const runtime_info *rt = runtimes_at(i);
        json_t *o = json_pack("{s:s,s:s,s:b}", "name", rt->name, "version", rt->version, "usable",
                              rt->usable);
        if (!rt->usable)
            json_object_set_new(o, "reason", json_string(rt->reason));
        json_array_append_new(list, o);
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "runtimes", list));
}

/* GET /v1/openapi.json: this API described (openapi.c). */
static void route_openapi(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)h, (void)name, (void)rest;
    openapi_serve(req);
}

static int scrape_visit(const char *name, const metrics_fn *m, const sched_pool_state *st, void *ud)
{
    metrics_fn_view v = {.name = name,
                         .m = m,
                         .starting = st->starting,
                         .idle = st->idle,
                         .busy = st->busy,
                         .queued = st->queued};
    return metrics_scrape_add(ud, &v);
}

static int prebuilt_visit(const char *runtime, const sched_prebuilt_state *st, void *ud)
{
    metrics_scrape *sc = ud;
    if (sc->nprebuilt < METRICS_MAX_POOLS)
        sc->prebuilt[sc->nprebuilt++] =
            (metrics_prebuilt_view){.runtime = runtime,
                                    .network = st->egress ? "egress" : "isolated",
                                    .ready = st->ready,
                                    .starting = st->starting,
                                    .target = st->target,
                                    .claims = st->claims,
                                    .misses = st->misses,
                                    .evictions = st->evictions};
    return 0;
}

/* The Prometheus text: the pools' views, rendered by metrics.c, all
 * within this loop turn (the views borrow the pools). */
static void route_metrics(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    metrics_scrape sc = {.open_connections = gateway_connections(h->gw)};
    buf out;
    buf_init(&out, METRICS_MAX_TEXT);
    int rc = sched_each_pool(h->sch, scrape_visit, &sc);
    if (rc == 0)
        rc = sched_each_prebuilt(h->sch, prebuilt_visit, &sc);
    if (rc == 0)
        rc = metrics_render(h->metrics, &sc, &out);
    metrics_scrape_release(&sc);
    if (rc < 0) {
        buf_release(&out);
        gw_respond_error(req, 500, "internal_error", "could not render the metrics: %s",
                         strerror(-rc));
        return;
    }
    size_t len;
    char *text = buf_detach(&out, &len);
    gw_respond(req, 200, METRICS_CONTENT_TYPE, text, len);
}

/* --- function routes --- */

bool api_caller_may_reach(const char *function)
{
    return !caller || auth_function_allowed(caller, function);
}

/* A token limited to some functions sees only those in the list. */
static int list_visit(const fn_config *cfg, void *ud)
{
    void **ctx = ud;
    if (api_caller_may_reach(cfg->name))
        json_array_append_new(ctx[1], api_function_json(ctx[0], cfg));
    return 0;
}

static void route_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    json_t *list = json_array();
    void *ctx[2] = {h, list};
    if (registry_list(h->reg, list_visit, ctx) < 0) {
        json_decref(list);
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "functions", list));
}

/* Loads the current config of `name`, answering 404/500 when there is
 * none. Returns true when *cfg is loaded (caller releases it). */
static bool load_function(hearth *h, gw_request *req, const char *name, fn_config *cfg)
{
    int rc = registry_get(h->reg, name, cfg);
    if (rc == -ENOENT)
        respond_fn_not_found(req, name);
    else if (rc < 0)
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
    return rc == 0;
}

static void route_show(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    fn_config cfg;
    if (!load_function(h, req, name, &cfg))
        return;
    gw_respond_json(req, 200, api_function_json(h, &cfg));
    fn_config_release(&cfg);
}

/* How a PUT ends: the function object, or deploy's error. */
static void put_done(hearth *h, void *ctx, const deploy_result *r)
{
    gw_request *req = ctx;
    if (!r->cfg) {
        gw_respond_error(req, r->status, r->code, "%s", r->message);
        return;
    }
    api_audit(h, req, "deploy", r->cfg->name);
    gw_respond_json(req, r->status, api_function_json(h, r->cfg));
}

static void put_param(const gw_pair *p, void *ud)
{
    deploy_param(ud, p->name, p->name_len, p->value, p->value_len);
}

static void route_put(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    size_t len;
    const char *body = gw_body(req, &len);
    deploy_job *j = deploy_new(h, name, gw_header(req, "Content-Type"), body, len, put_done, req);
    if (!j)
        return;
    gw_each_query(req, put_param, j);
    deploy_run(j);
}

static void route_delete(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    fn_config cfg;
    if (!load_function(h, req, name, &cfg))
        return;
    fn_config_release(&cfg);
    if (registry_delete(h->reg, name) < 0) {
        gw_respond_error(req, 500, "internal_error", "could not delete '%s'", name);
        return;
    }
    deploy_forget(h, name); /* its stack goes with its row: a redeploy is stack-less */
    api_audit(h, req, "delete", name);
    gw_respond(req, 204, NULL, NULL, 0);
}

/* --- invoking --- */

static bool is_json_type(const char *ct)
{
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

static bool token_char(char c)
{
    return isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* Hop-by-hop and framing headers are the gateway's, never the function's. */
static bool header_allowed(const char *name, const char *value)
{
    static const char *const reserved[] = {
        "content-length", "transfer-encoding", "connection", "content-type", "x-request-id",
        "keep-alive",     "upgrade",           "te",         "trailer"};
    if (!*name || strlen(name) > 256 || strpbrk(value, "\r\n"))
        return false;
    for (const char *p = name; *p; p++)
        if (!token_char(*p))
            return false;
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return false;
    return strncasecmp(name, "x-hearth-", 9) != 0;
}

static void on_call_done(sched_call *c, sched_result *res, void *ud)
{
    gw_request *req = ud;
    char v[24];
    if (res->version) {
        snprintf(v, sizeof v, "%" PRId64, res->version);
        gw_add_header(req, "X-Hearth-Function-Version", v);
    }
    if (res->cold)
        gw_add_header(req, "X-Hearth-Cold-Start", "1");
    if (res->retry_after_s) {
        snprintf(v, sizeof v, "%u", res->retry_after_s);
        gw_add_header(req, "Retry-After", v);
    }
    if (res->code) {
        /* The message and type may quote the function: printable UTF-8 only. */
        char msg[sizeof res->message], type[sizeof res->error_type];
        safetext_copy(msg, sizeof msg, res->message, strlen(res->message));
        json_t *err = json_pack("{s:s,s:s}", "code", res->code, "message", msg);
        if (res->error_type[0])
            json_object_set_new(err, "type",
                                json_string(safetext_copy(type, sizeof type, res->error_type,
                                                          strlen(res->error_type))));
        gw_respond_json(req, res->status, json_pack("{s:o}", "error", err));
        return;
    }
    const char *k;
    json_t *val;
    json_object_foreach(res->headers, k, val)
    {
        const char *s = json_string_value(val);
        if (s && header_allowed(k, s))
            gw_add_header(req, k, s);
    }
    (void)c;
    gw_respond(req, res->status, res->content_type, res->body, res->len);
    res->body = NULL;
}

/* Adds name: value (`len` bytes, NULs kept) to `obj`, joining a repeated
 * name with ",". Bytes that are not UTF-8 are dropped by jansson. */
static void add_joined(json_t *obj, const char *name, size_t name_len, const char *value,
                       size_t len)
{
    json_t *old = json_object_getn(obj, name, name_len);
    if (!old) {
        json_object_setn_new(obj, name, name_len, json_stringn(value, len));
        return;
    }
    size_t old_len = json_string_length(old);
    char *joined = malloc(old_len + 1 + len);
    if (!joined)
        return;
    memcpy(joined, json_string_value(old), old_len);
    joined[old_len] = ',';
    memcpy(joined + old_len + 1, value, len);
    json_object_setn_new(obj, name, name_len, json_stringn(joined, old_len + 1 + len));
    free(joined);
}

/* Every header but one carrying a Hearth token (a function must never
 * see its caller's token; a webhook's own Authorization passes). */
static void collect_header(const gw_pair *p, void *ud)
{
    char lower[256];
    if (p->name_len >= sizeof lower)
        return;
    if (p->name_len == 13 && strncasecmp(p->name, "Authorization", 13) == 0 &&
        auth_is_token_header(p->value))
        return;
    for (size_t i = 0; i < p->name_len; i++)
        lower[i] = (char)tolower((unsigned char)p->name[i]);
    add_joined(ud, lower, p->name_len, p->value, p->value_len);
}

struct query_event {
    json_t *obj;
    bool bad; /* a name or value that no JSON string can carry */
};

static void collect_query(const gw_pair *p, void *ud)
{
    struct query_event *qe = ud;
    if (!safetext_is_utf8(p->name, p->name_len) || !safetext_is_utf8(p->value, p->value_len)) {
        qe->bad = true;
        return;
    }
    add_joined(qe->obj, p->name, p->name_len, p->value, p->value_len);
}

/* The event of an HTTP call, or NULL having answered 400 when the path or
 * the query does not decode to UTF-8 (a JSON string can carry any code
 * point, NUL included, but not arbitrary bytes). */
static json_t *http_event(gw_request *req, const char *rest)
{
    size_t raw = strlen(rest);
    char *path = malloc(raw + 1);
    ssize_t n = path ? gw_unescape(rest, raw, path, raw) : -1;
    if (n < 0 || !safetext_is_utf8(path, (size_t)n)) {
        free(path);
        if (n < 0)
            gw_respond_error(req, 500, "internal_error", "out of memory");
        else
            gw_respond_error(req, 400, "invalid_path", "the path must decode to UTF-8");
        return NULL;
    }
    struct query_event qe = {.obj = json_object()};
    gw_each_query(req, collect_query, &qe);
    if (qe.bad) {
        free(path);
        json_decref(qe.obj);
        gw_respond_error(req, 400, "invalid_query", "query names and values must decode to UTF-8");
        return NULL;
    }
    json_t *headers = json_object();
    gw_each_header(req, collect_header, headers);
    json_t *ev = json_pack("{s:s,s:s%,s:o,s:o}", "method", gw_method(req), "path", path, (size_t)n,
                           "query", qe.obj, "headers", headers);
    free(path);
    return ev;
}

/* The version a call of `name` with `qual` runs (0: the current one), or
 * false having answered 404 (an unknown function or alias; an unknown
 * version number is the scheduler's 404). */
bool api_resolve_qualifier(hearth *h, gw_request *req, const char *name, const char *qual,
                           int64_t *version)
{
    int rc = qualifier_resolve(h->reg, name, qual, version);
    if (rc == 0)
        return true;
    if (!sched_config(h->sch, name))
        respond_fn_not_found(req, name);
    else if (rc == -ENOENT)
        gw_respond_error(req, 404, "alias_not_found", "'%s' has no alias '%s'", name, qual);
    else
        gw_respond_error(req, 500, "internal_error", "could not read the aliases of '%s'", name);
    return false;
}

/* A Content-Type that does not fit is dropped rather than cut (a cut media
 * type would misname the body), and one with a line break is dropped since
 * the value is written out again as a header. */
const char *api_request_ctype(gw_request *req, size_t max)
{
    const char *ct = gw_header(req, "Content-Type");
    return ct && strlen(ct) <= max && !strpbrk(ct, "\r\n") ? ct : NULL;
}

sched_call *api_call_new(gw_request *req, const char *name, int64_t version)
{
    sched_call *c = sched_call_new();
    if (!c)
        return NULL;
    snprintf(c->function, sizeof c->function, "%s", name);
    c->version = version;
    snprintf(c->request_id, sizeof c->request_id, "%s", gw_request_id(req));
    const char *ct = api_request_ctype(req, sizeof c->content_type - 1);
    if (ct)
        snprintf(c->content_type, sizeof c->content_type, "%s", ct);
    c->body = gw_body(req, &c->body_len);
    return c;
}

/* `ref` is `name` or `name:qualifier` (checked by the route's rule). */
static void start_call(hearth *h, gw_request *req, const char *ref, const char *trigger,
                       json_t *http)
{
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    int64_t version = 0;
    if (qualifier_split(ref, name, qual) < 0) {
        json_decref(http);
        gw_respond_error(req, 400, "invalid_name", "not a function reference");
        return;
    }
    if (qual[0] && !api_resolve_qualifier(h, req, name, qual, &version)) {
        json_decref(http);
        return;
    }
    sched_call *c = api_call_new(req, name, version);
    if (!c) {
        json_decref(http);
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    c->trigger = trigger;
    c->http = http;
    c->done = on_call_done;
    c->ud = req;
    sched_invoke(h->sch, c);
}

bool api_check_json_body(gw_request *req)
{
    size_t len;
    const char *body = gw_body(req, &len);
    if (!is_json_type(gw_header(req, "Content-Type")))
        return true;
    json_error_t jerr;
    json_t *parsed = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!parsed) {
        gw_respond_error(req, 400, "invalid_json",
                         "the body is sent as application/json but is not JSON: %s "
                         "(line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
        return false;
    }
    json_decref(parsed);
    return true;
}

static void route_invoke(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    if (!api_check_json_body(req))
        return;
    if (api_prefers_async(req))
        api_invoke_async(h, req, name);
    else
        start_call(h, req, name, "invoke", NULL);
}

static void route_fn_http(hearth *h, gw_request *req, const char *name, const char *rest)
{
    json_t *event = http_event(req, rest);
    if (event)
        start_call(h, req, name, "http", event);
}

/* --- the functions' own routes (events/routes.h) --- */

/* Looks the request up in the route table: what routes_lookup returns when
 * *sp is SPLIT_OK; otherwise the path could not be looked up (-EINVAL). */
static int routed_lookup(hearth *h, gw_request *req, routes_match *m, enum routed_split *sp)
{
    struct routed_path rp;
    *m = (routes_match){0};
    *sp = api_split_routed_path(gw_path(req), &rp);
    return *sp == SPLIT_OK ? routes_lookup(h->routes, gw_method(req), rp.segs, rp.n, m) : -EINVAL;
}

/* GET /v1/routes: the whole table, sorted by path then method; a token
 * limited to some functions sees their routes only. */
static void route_routes(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    routes_item *items;
    size_t n;
    if (routes_list(h->routes, &items, &n) < 0) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        if (!caller || auth_function_allowed(caller, items[i].function)) {
            json_t *o = json_pack("{s:s,s:s,s:s}", "method", routes_method_name(items[i].method),
                                  "path", items[i].path, "function", items[i].function);
            if (o && items[i].qualifier && items[i].qualifier[0])
                json_object_set_new(o, "qualifier", json_string(items[i].qualifier));
            json_array_append_new(list, o);
        }
    free(items);
    gw_respond_json(req, 200, json_pack("{s:o}", "routes", list));
}

/* --- logs --- */

struct logs_reply {
    buf out;
    enum logs_format format;
    bool truncated;
};

static int logs_visit(const log_record *rec, void *ud)
{
    struct logs_reply *lr = ud;
    if (logs_format(rec, lr->format, &lr->out) < 0) {
        lr->truncated = true;
        return 1;
    }
    return 0;
}

static const char *query_of(void *req, const char *key, size_t *len)
{
    return gw_query(req, key, len);
}

/* Reads the logs query parameters (api_parse.c). Answers 400 and returns
 * false when one is wrong. */
static bool parse_logs_query(gw_request *req, log_query *q, enum logs_format *format, bool *follow)
{
    const char *why;
    if (api_logs_query_parse(query_of, req, q, format, follow, &why) == 0)
        return true;
    gw_respond_error(req, 400, "invalid_query", "%s", why);
    return false;
}

/* A log follow is a chunked stream: the gateway pulls what the
 * collector's follower holds, and the follower wakes the stream. */
static void follow_wake(void *ctx)
{
    gw_stream_wake(ctx);
}

static ssize_t follow_pull(void *ud, char *dst, size_t max)
{
    return logs_follower_pull(ud, dst, max);
}

static void follow_closed(void *ud)
{
    logs_follower_closed(ud);
}

static void follow_logs(hearth *h, gw_request *req, const char *name, const log_query *q,
                        enum logs_format format)
{
    logs_follower *f = logs_follow(h->lg, name, q, format, (logs_sink){follow_wake, req});
    if (!f) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    gw_respond_stream(req, 200, logs_content_type(format), follow_pull, follow_closed, f);
}

static void route_logs(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    fn_config cfg;
    if (!load_function(h, req, name, &cfg))
        return;
    fn_config_release(&cfg);
    log_query q;
    enum logs_format format;
    bool follow;
    if (!parse_logs_query(req, &q, &format, &follow))
        return;
    if (follow) {
        follow_logs(h, req, name, &q, format);
        return;
    }
    struct logs_reply lr = {.format = format};
    buf_init(&lr.out, LOGS_RESPONSE_MAX);
    if (logstore_query(h->store, name, &q, logs_visit, &lr) < 0) {
        buf_release(&lr.out);
        gw_respond_error(req, 500, "internal_error", "could not read the logs");
        return;
    }
    size_t len;
    char *text = buf_detach(&lr.out, &len);
    gw_respond(req, 200, logs_content_type(format), text, len);
}

/* --- secrets: names and times out, values only in --- */

static int secret_visit(const char *name, int64_t updated_ms, void *ud)
{
    char at[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(updated_ms, at);
    return json_array_append_new(ud, json_pack("{s:s,s:s}", "name", name, "updated_at", at));
}

static void route_secrets_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    json_t *list = json_array();
    if (!list || secrets_list(h->secrets, secret_visit, list) != 0) {
        json_decref(list);
        gw_respond_error(req, 500, "internal_error", "could not read the secrets");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "secrets", list));
}

static void route_secret_put(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    size_t len;
    const char *value = gw_body(req, &len);
    bool created;
    int rc = secrets_put(h->secrets, name, value, len, &created);
    int64_t ms = 0;
    if (rc == -ENOSPC)
        gw_respond_error(req, 429, "too_many_secrets", "the data dir holds %d secrets already",
                         SECRETS_STORE_MAX);
    else if (rc == -E2BIG)
        gw_respond_error(req, 413, "payload_too_large", "a secret holds at most %u bytes",
                         SECRETS_VALUE_MAX);
    else if (rc < 0 || secrets_updated_ms(h->secrets, name, &ms) < 0)
        gw_respond_error(req, 500, "internal_error", "could not store secret '%s': %s", name,
                         strerror(rc < 0 ? -rc : EIO));
    if (rc < 0 || ms == 0)
        return;
    sched_secret_changed(h->sch, name);
    api_audit(h, req, created ? "secret_create" : "secret_update", name);
    dlog_info("secret %s %s (%zu bytes)", name, created ? "created" : "updated", len);
    char at[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(ms, at);
    gw_respond_json(req, created ? 201 : 200,
                    json_pack("{s:s,s:s}", "name", name, "updated_at", at));
}

/* Collects the functions whose current version lists a secret. */
struct secret_users {
    const char *secret;
    char names[512];
    unsigned count;
};

static int users_visit(const fn_config *cfg, void *ud)
{
    struct secret_users *u = ud;
    if (!fn_config_lists_secret(cfg, u->secret))
        return 0;
    size_t at = strlen(u->names);
    if (at + strlen(cfg->name) + 8 < sizeof u->names)
        snprintf(u->names + at, sizeof u->names - at, "%s%s", u->count ? ", " : "", cfg->name);
    u->count++;
    return 0;
}

/* Refused (409) while a function lists the secret: its next worker could
 * not start. Deploy it without the secret first. */
static void route_secret_delete(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    struct secret_users u = {.secret = name};
    int64_t ms;
    if (secrets_updated_ms(h->secrets, name, &ms) < 0) {
        gw_respond_error(req, 404, "secret_not_found", "no secret named '%s'", name);
        return;
    }
    if (registry_list(h->reg, users_visit, &u) < 0) {
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    if (u.count) {
        gw_respond_error(req, 409, "secret_in_use",
                         "secret '%s' is listed by %u function(s): %s; deploy them without it "
                         "first",
                         name, u.count, u.names);
        return;
    }
    int rc = secrets_delete(h->secrets, name);
    if (rc < 0) {
        gw_respond_error(req, rc == -ENOENT ? 404 : 500,
                         rc == -ENOENT ? "secret_not_found" : "internal_error",
                         "could not delete secret '%s': %s", name, strerror(-rc));
        return;
    }
    api_audit(h, req, "secret_delete", name);
    dlog_info("secret %s deleted", name);
    gw_respond(req, 204, NULL, NULL, 0);
}

/* --- tokens and audit --- */

void api_audit(hearth *h, gw_request *req, const char *action, const char *target)
{
    const char *who = gw_principal(req);
    auth_audit(h->auth, who[0] ? who : "-", gw_principal_id(req), action, target);
}

static json_t *time_or_null(int64_t ms)
{
    char iso[TIMEFMT_ISO_LEN];
    if (!ms)
        return json_null();
    timefmt_iso_ms(ms, iso);
    return json_string(iso);
}

/* ["deploy","invoke"] from a stored "deploy,invoke". */
static json_t *scopes_json(const char *list)
{
    json_t *a = json_array();
    while (*list) {
        size_t n = strcspn(list, ",");
        json_array_append_new(a, json_stringn(list, n));
        list += n + (list[n] == ',');
    }
    return a;
}

/* A token as listed: never its secret (the record has none, only a hash,
 * and the hash is not shown either). */
static json_t *token_json(const registry_token *t)
{
    const char *state = t->revoked_ms                                        ? "revoked"
                        : t->expires_ms && timefmt_now_ms() >= t->expires_ms ? "expired"
                                                                             : "live";
    return json_pack("{s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:o}", "id", t->id, "name", t->name, "scopes",
                     scopes_json(t->scopes), "functions", t->functions, "state", state,
                     "created_at", time_or_null(t->created_ms), "expires_at",
                     time_or_null(t->expires_ms), "revoked_at", time_or_null(t->revoked_ms));
}

/* The scopes array of a token request into a bit set; answers 400 and
 * returns false when it is not a non-empty array of known, distinct words. */
static bool spec_scopes(gw_request *req, json_t *v, unsigned *out)
{
    size_t i;
    json_t *w;
    *out = 0;
    if (!json_is_array(v) || json_array_size(v) == 0)
        goto bad;
    json_array_foreach(v, i, w)
    {
        int s =
            json_is_string(w) ? auth_scope_parse(json_string_value(w), json_string_length(w)) : -1;
        if (s < 0) {
            char shown[64] = "";
            if (json_is_string(w))
                safetext_copy(shown, sizeof shown, json_string_value(w), json_string_length(w));
            gw_respond_error(req, 400, "invalid_field",
                             "unknown scope '%s': scopes are admin, deploy, invoke, logs, read, "
                             "metrics",
                             shown);
            return false;
        }
        if (*out & (1u << s)) {
            gw_respond_error(req, 400, "invalid_field", "scope '%s' is listed twice",
                             auth_scope_name(s));
            return false;
        }
        *out |= 1u << s;
    }
    return true;
bad:
    gw_respond_error(req, 400, "invalid_field", "scopes must be a non-empty array of scope names");
    return false;
}

/* The body of POST /v1/tokens into *spec (strings borrowed from doc).
 * Answers 400 and returns false on any field that is wrong or unknown. */
static bool token_spec(gw_request *req, json_t *doc, auth_spec *spec)
{
    static const char *const known[] = {"name", "scopes", "functions", "expires_in_s"};
    const char *key = validate_unknown_key(doc, known, sizeof known / sizeof *known, NULL);
    if (key) {
        gw_respond_error(req, 400, "unknown_field", "unknown field '%.60s'", key);
        return false;
    }
    json_t *name = json_object_get(doc, "name"), *fns = json_object_get(doc, "functions"),
           *exp = json_object_get(doc, "expires_in_s");
    if (!json_is_string(name) || (fns && !json_is_string(fns)) || (exp && !json_is_integer(exp))) {
        gw_respond_error(req, 400, "invalid_field",
                         "name (a string) and scopes are required; functions is a string, "
                         "expires_in_s a whole number of seconds");
        return false;
    }
    *spec = (auth_spec){.name = json_string_value(name),
                        .functions = fns ? json_string_value(fns) : NULL,
                        .expires = exp != NULL,
                        .expires_in_s = exp ? json_integer_value(exp) : 0};
    if (!spec_scopes(req, json_object_get(doc, "scopes"), &spec->scopes))
        return false;
    char err[256];
    /* A string with a NUL in it would be checked only up to the NUL. */
    if ((json_string_length(name) != strlen(spec->name) ||
         (fns && json_string_length(fns) != strlen(spec->functions)))) {
        gw_respond_error(req, 400, "invalid_field", "name and functions may not hold a NUL");
        return false;
    }
    if (auth_spec_check(spec, err, sizeof err) < 0) {
        gw_respond_error(req, 400, "invalid_field", "%s", err);
        return false;
    }
    return true;
}

static void route_token_create(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    size_t len;
    const char *body = gw_body(req, &len);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    auth_spec spec;
    if (!json_is_object(doc)) {
        gw_respond_error(req, 400, "invalid_json", "the body is not a JSON object: %s", jerr.text);
    } else if (token_spec(req, doc, &spec)) {
        char secret[AUTH_SECRET_LEN + 1];
        registry_token t;
        int rc = auth_create(h->auth, &spec, secret, &t);
        if (rc == -EEXIST) {
            gw_respond_error(req, 409, "token_exists",
                             "a token named '%s' exists; revoke it or choose another name",
                             spec.name);
        } else if (rc < 0) {
            gw_respond_error(req, 500, "internal_error", "could not store the token");
        } else {
            json_t *o = token_json(&t);
            json_object_set_new(o, "token", json_string(secret));
            sodium_memzero(secret, sizeof secret);
            char target[REG_AUDIT_TARGET_MAX + 1];
            snprintf(target, sizeof target, "%s (%s)", t.name, t.id);
            api_audit(h, req, "token_create", target);
            dlog_info("token %s (%s) created with scopes %s for functions %s by %s", t.name, t.id,
                      t.scopes, t.functions, gw_principal(req));
            gw_respond_json(req, 201, o);
        }
    }
    json_decref(doc);
}

static int token_list_visit(const registry_token *t, void *ud)
{
    json_array_append_new(ud, token_json(t));
    return 0;
}

static void route_token_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    json_t *list = json_array();
    if (registry_token_list(h->reg, false, token_list_visit, list) < 0) {
        json_decref(list);
        gw_respond_error(req, 500, "internal_error", "could not read the registry");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "tokens", list));
}

static void route_token_revoke(hearth *h, gw_request *req, const char *id, const char *rest)
{
    (void)rest;
    char target[REG_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof target, "%s", id);
    int rc = auth_revoke(h->auth, id); /* the caller's own token may be gone from here on */
    if (rc == -ENOENT) {
        gw_respond_error(req, 404, "token_not_found", "no live token with id '%s'", id);
        return;
    }
    if (rc < 0) {
        gw_respond_error(req, 500, "internal_error", "could not revoke the token");
        return;
    }
    api_audit(h, req, "token_revoke", target);
    dlog_info("token %s revoked by %s", id, gw_principal(req));
    gw_respond(req, 204, NULL, NULL, 0);
}

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX     1000

static int audit_visit(const registry_audit *a, void *ud)
{
    char at[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(a->at_ms, at);
    json_array_append_new(ud, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)a->seq,
                                        "at", at, "actor", a->actor, "token_id", a->token_id,
                                        "action", a->action, "target", a->target));
    return 0;
}

static void route_audit(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    const char *v;
    uint64_t limit = AUDIT_LIMIT_DEFAULT;
    if (!api_query_text(req, "limit", &v) ||
        (v && (!decimal_parse(v, AUDIT_LIMIT_MAX, &limit) || limit == 0))) {
        gw_respond_error(req, 400, "invalid_query", "limit must be a whole number from 1 to %d",
                         AUDIT_LIMIT_MAX);
        return;
    }
    json_t *list = json_array();
    if (registry_audit_list(h->reg, (unsigned)limit, audit_visit, list) < 0) {
        json_decref(list);
        gw_respond_error(req, 500, "internal_error", "could not read the audit");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "audit", list));
}

/* GET /ui and /ui/<file>: the dashboard's files, open to anyone (ui.c). */
static void route_ui(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)h, (void)name;
    ui_serve(req, rest);
}

/* --- dispatch --- */

static const struct route routes[] = {
    {"GET", "/healthz", route_healthz, AUTH_SCOPE_PUBLIC, 0},
    {"GET", "/v1/openapi.json", route_openapi, AUTH_SCOPE_PUBLIC, 0},
    {"GET", "/v1/runtimes", route_runtimes, AUTH_SCOPE_READ, 0},
    {"GET", "/v1/functions", route_list, AUTH_SCOPE_READ, 0},
    {"GET", "/v1/functions/*", route_show, AUTH_SCOPE_READ, 0},
    {"PUT", "/v1/functions/*", route_put, AUTH_SCOPE_DEPLOY, 0},
    {"DELETE", "/v1/functions/*", route_delete, AUTH_SCOPE_DEPLOY, 0},
    {"POST", "/v1/functions/*/invoke", route_invoke, AUTH_SCOPE_INVOKE,
     ROUTE_PUBLIC_FN | ROUTE_QUALIFIED},
    {"GET", "/v1/functions/*/versions", api_versions_list, AUTH_SCOPE_READ, 0},
    {"POST", "/v1/functions/*/rollback", api_rollback, AUTH_SCOPE_DEPLOY, 0},
    {"GET", "/v1/functions/*/aliases/**", api_alias_get, AUTH_SCOPE_READ, 0},
    {"PUT", "/v1/functions/*/aliases/**", api_alias_put, AUTH_SCOPE_DEPLOY, 0},
    {"DELETE", "/v1/functions/*/aliases/**", api_alias_delete, AUTH_SCOPE_DEPLOY, 0},
    {"GET", "/v1/functions/*/logs", route_logs, AUTH_SCOPE_LOGS, 0},
    {"GET", "/v1/functions/*/invocations", api_invocations_list, AUTH_SCOPE_INVOKE, 0},
    {"GET", "/v1/functions/*/schedules", api_schedules_list, AUTH_SCOPE_READ, 0},
    {"GET", "/v1/invocations/*", api_invocation_get, AUTH_SCOPE_INVOKE, ROUTE_ID_SEGMENT},
    {"DELETE", "/v1/invocations/*", api_invocation_cancel, AUTH_SCOPE_INVOKE, ROUTE_ID_SEGMENT},
    {"POST", "/v1/invocations/*/retry", api_invocation_retry, AUTH_SCOPE_INVOKE, ROUTE_ID_SEGMENT},
    {"GET", "/v1/topics", api_topics_list, AUTH_SCOPE_READ, 0},
    {"POST", "/v1/topics/*", api_topic_publish, AUTH_SCOPE_INVOKE, ROUTE_TOPIC_SEGMENT},
    {"GET", "/v1/secrets", route_secrets_list, AUTH_SCOPE_DEPLOY, ROUTE_OTHER_SEGMENT},
    {"PUT", "/v1/secrets/*", route_secret_put, AUTH_SCOPE_DEPLOY, ROUTE_OTHER_SEGMENT},
    {"DELETE", "/v1/secrets/*", route_secret_delete, AUTH_SCOPE_DEPLOY, ROUTE_OTHER_SEGMENT},
    {NULL, "/fn/*/**", route_fn_http, AUTH_SCOPE_INVOKE, ROUTE_PUBLIC_FN | ROUTE_QUALIFIED},
    {"POST", "/v1/tokens", route_token_create, AUTH_SCOPE_ADMIN, 0},
    {"GET", "/v1/tokens", route_token_list, AUTH_SCOPE_ADMIN, 0},
    {"DELETE", "/v1/tokens/*", route_token_revoke, AUTH_SCOPE_ADMIN, ROUTE_OTHER_SEGMENT},
    {"GET", "/v1/audit", route_audit, AUTH_SCOPE_ADMIN, 0},
    {"GET", "/v1/routes", route_routes, AUTH_SCOPE_READ, 0},
    {"GET", "/v1/stacks", api_stacks_list, AUTH_SCOPE_READ, 0},
    /* the segment is a stack: each function of the body is checked against
     * the token's glob once the body is read (stacks.c) */
    {"GET", "/v1/stacks/*", api_stack_show, AUTH_SCOPE_READ, ROUTE_OTHER_SEGMENT},
    {"POST", "/v1/stacks/*", api_stack_apply, AUTH_SCOPE_DEPLOY, ROUTE_OTHER_SEGMENT},
    {"GET", "/metrics", route_metrics, AUTH_SCOPE_METRICS, 0}, /* Prometheus text, not JSON */
    {"GET", "/ui/**", route_ui, AUTH_SCOPE_PUBLIC, 0},         /* /ui too: it redirects to /ui/ */
};

#define NROUTES (sizeof routes / sizeof routes[0])

/* A path the table above serves outside routes.c's reserved list, or NULL:
 * every top-level segment here must be reserved, or a function's route
 * could take it (tests/unit/test_routes.c asks). */
const char *api_route_outside_reserved(void)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const char *seg = routes[i].pattern + 1;
        if (!routes_is_reserved(seg, strcspn(seg, "/")))
            return routes[i].pattern;
    }
    return NULL;
}

/* The route for the request, or NULL; *path_known says whether the path
 * matched some route under another method. */
static const struct route *find_route(const char *method, const char *path, struct route_match *m,
                                      bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!api_route_match(routes[i].pattern, path, m))
            continue;
        *path_known = true;
        if (!routes[i].method || strcmp(routes[i].method, method) == 0)
            return &routes[i];
    }
    return NULL;
}

/* A deploy body, or a whole stack's, may be 70 MiB: only a token that may
 * deploy gets that much buffered; anyone else is answered (401) after
 * 64 KiB at most. */
static bool may_send_deploy_body(hearth *h, gw_request *req)
{
    const auth_token *who;
    auth_verdict v =
        auth_check(h->auth, gw_header(req, "Authorization"), AUTH_SCOPE_DEPLOY, NULL, &who);
    return v == AUTH_OK;
}

size_t api_body_limit(gw_request *req, void *ud)
{
    hearth *h = ud;
    if (aws_lambda_owns(gw_path(req)))
        return aws_lambda_body_limit(h, req);
    struct route_match m;
    bool known;
    const struct route *r = find_route(gw_method(req), gw_path(req), &m, &known);
    if (r && (r->fn == route_put || r->fn == api_stack_apply))
        return may_send_deploy_body(h, req) ? HEARTH_MAX_DEPLOY_BODY : HEARTH_MAX_OTHER_BODY;
    if (r && r->fn == route_secret_put)
        return SECRETS_VALUE_MAX;
    if (r && (r->fn == route_invoke || r->fn == route_fn_http || r->fn == api_topic_publish))
        return h->set.max_body;
    routes_match rm;
    enum routed_split sp;
    if (!r && !known && routed_lookup(h, req, &rm, &sp) == ROUTES_FOUND) {
        json_decref(rm.params);
        return h->set.max_body;
    }
    return HEARTH_MAX_OTHER_BODY;
}

/* The 401 and 403 answers: RFC 6750's WWW-Authenticate with the error
 * shape; the message names what is missing, never the token sent. */
static void refuse(gw_request *req, auth_verdict v, const auth_token *who, auth_scope need,
                   const char *function)
{
    char www[160];
    switch (v) {
    case AUTH_NO_TOKEN:
    case AUTH_BAD_TOKEN:
        gw_add_header(req, "WWW-Authenticate",
                      v == AUTH_NO_TOKEN ? "Bearer realm=\"hearth\""
                                         : "Bearer realm=\"hearth\", error=\"invalid_token\"");
        gw_respond_error(req, 401, "unauthorized", "%s",
                         v == AUTH_NO_TOKEN
                             ? "this needs a token: send Authorization: Bearer TOKEN (the first "
                               "admin token is in <data-dir>/admin-token)"
                             : "the bearer token is not valid: unknown, revoked, expired or "
                               "malformed");
        return;
    case AUTH_NO_SCOPE:
        snprintf(www, sizeof www,
                 "Bearer realm=\"hearth\", error=\"insufficient_scope\", scope=\"%s\"",
                 auth_scope_name(need));
        gw_add_header(req, "WWW-Authenticate", www);
        gw_respond_error(req, 403, "forbidden", "the token '%s' lacks the '%s' scope", who->name,
                         auth_scope_name(need));
        return;
    case AUTH_NO_FUNCTION:
        gw_respond_error(req, 403, "forbidden",
                         "the token '%s' may only reach functions matching '%s'; '%s' does not",
                         who->name, who->functions, function);
        return;
    case AUTH_OK:
        return;
    }
}

/* True when a function exists and was deployed with "auth": "none". */
static bool function_is_public(hearth *h, const char *name)
{
    const fn_config *cfg = name[0] ? sched_config(h->sch, name) : NULL;
    return cfg && cfg->public_invoke;
}

/* The one check in front of every handler. Returns true when the request
 * may go on (caller and the principal set), false having answered it. A
 * function deployed with "auth": "none" is asked about only when the token
 * check fails, so a warm call with a token costs a hash and a lookup. */
static bool authorize(hearth *h, gw_request *req, const struct route *r, const char *name)
{
    caller = NULL;
    if (r->scope >= AUTH_SCOPE_PUBLIC)
        return true;
    if (auth_off(h->auth)) {
        gw_set_principal(req, "no-auth", "");
        return true;
    }
    const char *fn = (r->flags & ROUTE_OTHER_SEGMENT) || !name[0] ? NULL : name;
    const auth_token *who;
    auth_verdict v = auth_check(h->auth, gw_header(req, "Authorization"), r->scope, fn, &who);
    if (v == AUTH_OK) {
        caller = who;
        gw_set_principal(req, who->name, who->id);
        return true;
    }
    if ((r->flags & ROUTE_PUBLIC_FN) && function_is_public(h, name)) {
        gw_set_principal(req, "public", "");
        return true;
    }
    refuse(req, v, who, r->scope, fn);
    return false;
}

/* A function's route: invoked as /fn/{name}/ would be, with the same
 * checks in the same order, under the function's own "auth". */
static const struct route routed = {NULL, "(a function's route)", NULL, AUTH_SCOPE_INVOKE,
                                    ROUTE_PUBLIC_FN};

/* The Allow header for a 405: the methods the path's routes take. */
static void add_allow(gw_request *req, unsigned allowed)
{
    char allow[80] = "";
    for (int m = 0; m < ROUTES_ANY; m++)
        if (allowed & (1u << m)) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
                     routes_method_name(m));
        }
    gw_add_header(req, "Allow", allow);
}

/* The Allow header for a 405 on one of Hearth's own paths (RFC 9110
 * requires one): every method of the table's routes for that path. */
static void add_own_allow(gw_request *req, const char *path)
{
    char allow[128] = "";
    struct route_match m;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!routes[i].method || !api_route_match(routes[i].pattern, path, &m))
            continue;
        size_t used = strlen(allow), n = strlen(routes[i].method);
        bool seen = false; /* a method twice (two patterns take the path) is listed once */
        for (const char *p = allow; (p = strstr(p, routes[i].method)); p += n)
            seen |= (p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0');
        if (!seen)
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
    }
    gw_add_header(req, "Allow", allow);
}

/* A request no fixed route takes: a function's route, or 404/405. */
static void serve_routed(hearth *h, gw_request *req)
{
    routes_match m;
    enum routed_split sp;
    int rc = routed_lookup(h, req, &m, &sp);
    if (sp == SPLIT_RESERVED) {
        gw_respond_error(req, 404, "not_found", "no route for %.200s", gw_path(req));
    } else if (sp == SPLIT_TOO_LONG) {
        gw_respond_error(req, 414, "uri_too_long",
                         "a routed path has at most %d bytes and %d segments", ROUTES_REQ_PATH_MAX,
                         ROUTES_REQ_SEGMENTS);
    } else if (sp == SPLIT_INVALID) { /* no route can take it: nothing is there */
        gw_respond_error(req, 404, "not_found",
                         "no route for %.200s (each path segment must decode to UTF-8 without "
                         "'/', NUL, '.' or '..')",
                         gw_path(req));
    } else if (rc == -ENOENT) {
        gw_respond_error(req, 404, "not_found", "no route for %.200s", gw_path(req));
    } else if (rc == ROUTES_NO_METHOD) {
        add_allow(req, m.allowed);
        gw_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %.200s",
                         gw_method(req), gw_path(req));
    } else if (rc != ROUTES_FOUND) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
    } else if (h->stopping) {
        gw_respond_error(req, 503, "overloaded", "the daemon is shutting down");
    } else if (authorize(h, req, &routed, m.function)) {
        if (gw_body_too_large(req)) {
            gw_respond_error(req, 413, "payload_too_large", "the body is larger than %zu bytes",
                             api_body_limit(req, h));
        } else {
            json_t *event = http_event(req, gw_path(req));
            if (event) {
                json_object_set_new(event, "resource", json_string(m.resource));
                json_object_set_new(event, "pathParameters",
                                    m.params ? json_incref(m.params) : json_null());
                char ref[FN_QUALIFIED_MAX + 1];
                snprintf(ref, sizeof ref, "%s%s%s", m.function, m.qualifier[0] ? ":" : "",
                         m.qualifier);
                start_call(h, req, ref, "http", event);
            }
        }
        caller = NULL;
    }
    json_decref(m.params);
}

void api_handle(gw_request *req, void *ud)
{
    hearth *h = ud;
    if (aws_lambda_owns(gw_path(req))) { /* signed with SigV4, not a bearer token: its own door */
        aws_lambda_handle(h, req);
        return;
    }
    struct route_match m;
    bool known;
    const struct route *r = find_route(gw_method(req), gw_path(req), &m, &known);
    if (!r) {
        if (known) {
            add_own_allow(req, gw_path(req));
            gw_respond_error(req, 405, "method_not_allowed", "%s is not allowed on %.200s",
                             gw_method(req), gw_path(req));
        } else
            serve_routed(h, req);
        return;
    }
    if (h->stopping && r->fn != route_healthz) {
        gw_respond_error(req, 503, "overloaded", "the daemon is shutting down");
        return;
    }
    char name[FN_QUALIFIED_MAX + 1] = "";
    if (m.seg && !decode_segment(req, r, m.seg, m.seg_len, name))
        return;
    /* A token's functions glob and "auth": "none" are the function's: a
     * qualifier never widens (nor narrows) who may call it. */
    char bare[FN_QUALIFIED_MAX + 1], qual[FN_ALIAS_MAX + 1]; /* bare: room for the copy below */
    if ((r->flags & ROUTE_QUALIFIED) && name[0])
        qualifier_split(name, bare, qual); /* checked by decode_segment */
    else
        snprintf(bare, sizeof bare, "%s", name);
    if (!authorize(h, req, r, bare))
        return;
    if (gw_body_too_large(req)) {
        gw_respond_error(req, 413, "payload_too_large", "the body is larger than %zu bytes",
                         api_body_limit(req, h));
        return;
    }
    if (dlog_enabled(DLOG_DEBUG)) {
        char shown[512]; /* the path as sent may hold any byte: not raw into the log */
        dlog_debug("%s %s", gw_method(req),
                   safetext_copy(shown, sizeof shown, gw_path(req), strlen(gw_path(req))));
    }
    r->fn(h, req, name, m.rest);
    caller = NULL;
}
