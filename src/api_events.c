/*
 * api_events.c — the REST face of the event core: asynchronous invokes
 * (Prefer: respond-async, Idempotency-Key, X-Callback-Url), invocations
 * (show, list, retry, cancel) and topics (publish, list). Turns requests
 * into events.h calls and renders what they answer; decides nothing about
 * events itself.
 */
#include "api_internal.h"
#include "qualifier.h"
#include "decimal.h"

#include "events/callback.h"
#include "events/clock.h"
#include "events/schedule.h"
#include "events/events.h"
#include "events/invocation_json.h"
#include "fn_settings.h"
#include "safetext.h"
#include "timefmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INVOCATIONS_LIMIT_DEFAULT 50
#define INVOCATIONS_LIMIT_MAX     1000

/* --- Prefer: respond-async (RFC 7240) --- */

/* True when the comma-separated preferences hold the token respond-async
 * (a preference's parameters, after ';', do not matter). */
bool api_prefers_async(gw_request *req)
{
    const char *v = gw_header(req, "Prefer");
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",; \t=");
        if (n == strlen("respond-async") && strncasecmp(v, "respond-async", n) == 0)
            return true;
        v += strcspn(v, ",");
    }
    return false;
}

static void location_of(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "/v1/invocations/%s", id);
}

/* Answers an acknowledgement: the refusal, or the invocation's id and
 * status with its Location. */
static void respond_ack(gw_request *req, const event_ack *a, unsigned status, bool async)
{
    if (a->status) {
        gw_respond_error(req, a->status, a->code, "%s", a->message);
        return;
    }
    char loc[64];
    location_of(a->id, loc, sizeof loc);
    gw_add_header(req, "Location", loc);
    if (async)
        gw_add_header(req, "Preference-Applied", "respond-async");
    json_t *body = json_pack("{s:s,s:s}", "id", a->id, "status", ev_status_name(a->state));
    if (body && a->duplicate)
        json_object_set_new(body, "duplicate", json_true());
    gw_respond_json(req, status, body);
}

/* The answer to a submit, once durable. */
static void on_accepted(const event_ack *a, void *ud)
{
    respond_ack(ud, a, 202, true);
}

/* An Idempotency-Key: 1–255 printable ASCII characters. */
static bool key_valid(const char *k)
{
    size_t n = strnlen(k, EV_IDEM_KEY_MAX + 1);
    if (n == 0 || n > EV_IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return false;
    return true;
}

/* A qualified reference's parts, or false having answered: the qualifier
 * must address something now (404 otherwise); each attempt resolves it
 * again (an alias that moves takes its retries along). */
static bool split_checked(hearth *h, gw_request *req, const char *ref, char *name, char *qual)
{
    int64_t version = 0;
    if (qualifier_split(ref, name, qual) < 0) {
        gw_respond_error(req, 400, "invalid_name", "not a function reference");
        return false;
    }
    if (!qual[0] || !api_resolve_qualifier(h, req, name, qual, &version))
        return !qual[0];
    fn_config cfg;
    if (version && registry_get_version(h->reg, name, version, &cfg) != 0) {
        gw_respond_error(req, 404, "version_not_found", "'%s' keeps no version %" PRId64, name,
                         version);
        return false;
    }
    if (version)
        fn_config_release(&cfg);
    return true;
}

void api_invoke_async(hearth *h, gw_request *req, const char *ref)
{
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    if (!split_checked(h, req, ref, name, qual))
        return;
    const char *key = gw_header(req, "Idempotency-Key");
    const char *url = gw_header(req, "X-Callback-Url");
    const char *ct = api_request_ctype(req, EV_CTYPE_MAX);
    char err[256];
    if (key && !key_valid(key)) {
        gw_respond_error(req, 400, "invalid_header",
                         "Idempotency-Key must be 1-%d printable ASCII characters, no spaces",
                         EV_IDEM_KEY_MAX);
        return;
    }
    if (url && strcmp(gw_principal(req), "public") == 0) {
        /* "auth": "none" lets anyone invoke, not aim the daemon's POSTs. */
        gw_respond_error(req, 403, "forbidden",
                         "X-Callback-Url needs a token that may invoke '%s' (the function is "
                         "public, its callbacks are not)",
                         name);
        return;
    }
    if (url && callback_url_check(url, err, sizeof err) < 0) {
        gw_respond_error(req, 400, "invalid_header", "X-Callback-Url: %s", err);
        return;
    }
    size_t len;
    const void *body = gw_body(req, &len);
    event_new e = {.function = name,
                   .qualifier = qual,
                   .payload = body,
                   .len = len,
                   .content_type = ct,
                   .source = "invoke",
                   .idempotency_key = key,
                   .callback_url = url};
    events_submit(h->events, &e, on_accepted, req);
}

/* --- invocations --- */

/* Loads invocation `id` for a route; answers and returns false when it is
 * unknown or the token may not reach its function (told apart from
 * unknown only for a token that may). */
static bool load_invocation(hearth *h, gw_request *req, const char *id, ev_record *r)
{
    int rc = events_get(h->events, id, r);
    if (rc == 0 && api_caller_may_reach(r->function))
        return true;
    if (rc == 0)
        evrec_release(r);
    if (rc == 0 || rc == -ENOENT)
        gw_respond_error(req, 404, "invocation_not_found",
                         "no invocation '%s' (results are kept for --result-retention)", id);
    else
        gw_respond_error(req, 503, "storage_error", "the event store could not be read");
    return false;
}

void api_invocation_get(hearth *h, gw_request *req, const char *id, const char *rest)
{
    (void)rest;
    ev_record r;
    if (!load_invocation(h, req, id, &r))
        return;
    json_t *o = invocation_json(&r, true);
    evrec_release(&r);
    if (o)
        gw_respond_json(req, 200, o);
    else
        gw_respond_error(req, 500, "internal_error", "out of memory");
}

/* A redrive (202: it will run) or a cancel (200: done). */
static void on_changed(const event_ack *a, void *ud)
{
    respond_ack(ud, a, a->state == EV_QUEUED ? 202 : 200, false);
}

/* Retry and cancel act only on an invocation the token may reach. */
static bool reachable(hearth *h, gw_request *req, const char *id)
{
    ev_record r;
    if (!load_invocation(h, req, id, &r))
        return false;
    evrec_release(&r);
    return true;
}

void api_invocation_retry(hearth *h, gw_request *req, const char *id, const char *rest)
{
    (void)rest;
    if (reachable(h, req, id))
        events_redrive(h->events, id, on_changed, req);
}

void api_invocation_cancel(hearth *h, gw_request *req, const char *id, const char *rest)
{
    (void)rest;
    if (reachable(h, req, id))
        events_cancel(h->events, id, on_changed, req);
}

static int list_visit(ev_record *r, void *ud)
{
    json_t *o = invocation_json(r, false);
    return o ? json_array_append_new(ud, o) : -ENOMEM;
}

void api_invocations_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    const char *status, *limit;
    uint64_t n = INVOCATIONS_LIMIT_DEFAULT;
    int want = -1;
    if (!api_query_text(req, "status", &status) ||
        (status && (want = ev_status_parse(status)) < 0)) {
        gw_respond_error(req, 400, "invalid_query",
                         "status is one of queued, running, retrying, succeeded, dead, cancelled");
        return;
    }
    if (!api_query_text(req, "limit", &limit) ||
        (limit && (!decimal_parse(limit, INVOCATIONS_LIMIT_MAX, &n) || n == 0))) {
        gw_respond_error(req, 400, "invalid_query", "limit is a number from 1 to %d",
                         INVOCATIONS_LIMIT_MAX);
        return;
    }
    if (!sched_config(h->sch, name)) {
        gw_respond_error(req, 404, "function_not_found", "no function named '%s'", name);
        return;
    }
    json_t *list = json_array();
    if (!list || events_list(h->events, name, want, (unsigned)n, list_visit, list) < 0) {
        json_decref(list);
        gw_respond_error(req, 503, "storage_error", "the event store could not be read");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "invocations", list));
}

/* --- topics --- */

/* One publish: a delivery per subscriber, answered when each is durable
 * (or refused: a full queue refuses that subscriber's delivery only). */
typedef struct publish {
    gw_request *req;
    hearth *h;
    char topic[TOPIC_NAME_MAX + 1];
    unsigned waiting; /* acks still to come, plus one while offering */
    json_t *deliveries;
    const void *body;
    size_t len;
    const char *ct;
    const char *forbidden; /* a subscriber the token may not reach */
} publish;

/* One subscriber's delivery, named in the answer. */
typedef struct delivery {
    publish *p;
    char function[FN_NAME_MAX + 1];
} delivery;

static void publish_answer(publish *p)
{
    size_t n = json_array_size(p->deliveries);
    json_t *body = json_pack("{s:s,s:I,s:O}", "topic", p->topic, "subscribers", (json_int_t)n,
                             "deliveries", p->deliveries);
    if (body && n == 0)
        json_object_set_new(body, "message", json_string("no function subscribes to this topic"));
    gw_respond_json(p->req, 202, body);
    json_decref(p->deliveries);
    free(p);
}

static void publish_release(publish *p)
{
    if (--p->waiting == 0)
        publish_answer(p);
}

static void on_delivery(const event_ack *a, void *ud)
{
    delivery *d = ud;
    publish *p = d->p;
    json_t *entry = a->status ? json_pack("{s:s,s:{s:s,s:s}}", "function", d->function, "error",
                                          "code", a->code, "message", a->message)
                              : json_pack("{s:s,s:s}", "function", d->function, "id", a->id);
    json_array_append_new(p->deliveries, entry);
    free(d);
    publish_release(p);
}

static int check_subscriber(const char *function, void *ud)
{
    publish *p = ud;
    if (api_caller_may_reach(function))
        return 0;
    p->forbidden = function;
    return 1;
}

static int deliver(const char *function, void *ud)
{
    publish *p = ud;
    delivery *d = malloc(sizeof *d);
    if (!d)
        return -ENOMEM;
    d->p = p;
    snprintf(d->function, sizeof d->function, "%s", function);
    char source[EV_SOURCE_MAX + 1];
    snprintf(source, sizeof source, "topic:%s", p->topic);
    event_new e = {.function = function,
                   .payload = p->body,
                   .len = p->len,
                   .content_type = p->ct,
                   .source = source};
    p->waiting++;
    events_submit(p->h->events, &e, on_delivery, d);
    return 0;
}

void api_topic_publish(hearth *h, gw_request *req, const char *topic, const char *rest)
{
    (void)rest;
    if (!api_check_json_body(req))
        return;
    publish *p = calloc(1, sizeof *p);
    if (!p || !(p->deliveries = json_array())) {
        free(p);
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    p->req = req;
    p->h = h;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->body = gw_body(req, &p->len);
    p->ct = api_request_ctype(req, EV_CTYPE_MAX);
    const topics *tp = events_topics(h->events);
    if (topics_each_subscriber(tp, topic, check_subscriber, p)) {
        gw_respond_error(req, 403, "forbidden",
                         "the token may not invoke '%s', which subscribes to '%s'", p->forbidden,
                         topic);
        json_decref(p->deliveries);
        free(p);
        return;
    }
    /* One count held while offering, so that refusals answered at once do
     * not answer the request before every subscriber had its turn. */
    p->waiting = 1;
    topics_each_subscriber(tp, topic, deliver, p);
    publish_release(p);
}

static int topic_visit(const char *topic, const char *const *functions, size_t n, void *ud)
{
    void **ctx = ud;
    hearth *h = ctx[0];
    json_t *subs = json_array();
    char source[EV_SOURCE_MAX + 1];
    snprintf(source, sizeof source, "topic:%s", topic);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!api_caller_may_reach(functions[i])) /* a limited token sees its own functions */
            continue;
        int64_t backlog = 0;
        events_backlog(h->events, functions[i], source, &backlog);
        total += backlog;
        json_array_append_new(
            subs, json_pack("{s:s,s:I}", "function", functions[i], "backlog", (json_int_t)backlog));
    }
    if (json_array_size(subs) == 0) {
        json_decref(subs);
        return 0;
    }
    return json_array_append_new(ctx[1], json_pack("{s:s,s:o,s:I}", "topic", topic, "subscribers",
                                                   subs, "backlog", (json_int_t)total));
}

void api_topics_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)name, (void)rest;
    json_t *list = json_array();
    void *ctx[2] = {h, list};
    if (!list || topics_each(events_topics(h->events), topic_visit, ctx) < 0) {
        json_decref(list);
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:o}", "topics", list));
}

/* --- schedules --- */

/* One schedule: its declaration, next fire times and last firing. */
static json_t *schedule_json(hearth *h, const char *function, const json_t *item, size_t index,
                             int64_t now_s)
{
    int64_t times[SCHEDULE_NEXT_SHOWN];
    int n = schedule_next_times(item, now_s, times, SCHEDULE_NEXT_SHOWN);
    json_t *next = json_array();
    for (int i = 0; next && i < n; i++) {
        char at[64];
        if (schedule_format_time(item, times[i], at, sizeof at) > 0)
            json_array_append_new(next, json_string(at));
    }
    const json_t *event = schedule_item_event(item);
    json_t *o =
        json_pack("{s:I,s:s,s:s,s:s,s:o,s:o}", "index", (json_int_t)index, "cron",
                  schedule_item_cron(item), "timezone", schedule_item_timezone(item), "overlap",
                  schedule_item_overlap_skip(item) ? "skip" : "allow", "event",
                  event ? json_deep_copy(event) : json_null(), "next", next ? next : json_array());
    if (o && schedule_item_qualifier(item)[0])
        json_object_set_new(o, "qualifier", json_string(schedule_item_qualifier(item)));
    char key[200], id[EV_ID_LEN + 1];
    int64_t fired_s;
    clock_key(item, index, key, sizeof key);
    json_t *last = NULL;
    if (o && events_schedule_last(h->events, function, key, &fired_s, id) == 0) {
        char at[64];
        ev_record r;
        bool known = events_get(h->events, id, &r) == 0;
        schedule_format_time(item, fired_s, at, sizeof at);
        last = json_pack("{s:s,s:s,s:s}", "invocation_id", id, "fired_at", at, "status",
                         known ? ev_status_name(r.status) : "expired");
        if (known)
            evrec_release(&r);
    }
    if (o)
        json_object_set_new(o, "last", last ? last : json_null());
    return o;
}

void api_schedules_list(hearth *h, gw_request *req, const char *name, const char *rest)
{
    (void)rest;
    const fn_config *cfg = sched_config(h->sch, name);
    if (!cfg) {
        gw_respond_error(req, 404, "function_not_found", "no function named '%s'", name);
        return;
    }
    json_t *items = fnset_json_value(cfg, "schedules");
    json_t *list = json_array();
    int64_t now_s = timefmt_now_ms() / 1000;
    for (size_t i = 0; list && i < json_array_size(items); i++)
        json_array_append_new(list, schedule_json(h, name, json_array_get(items, i), i, now_s));
    if (!list) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    gw_respond_json(req, 200, json_pack("{s:s,s:o}", "function", name, "schedules", list));
}
