/*
 * events_outcome.c — what a finished asynchronous invocation sends on: a
 * Lambda-shaped destination record to its function's "on_success" or
 * "on_failure" (an invocation of its own, depth-limited so two functions
 * naming each other cannot loop forever), and its record POSTed to the
 * caller's X-Callback-Url (callback.c does the HTTP).
 */
#include "events/events_internal.h"

#include "dlog.h"
#include "events/callback.h"
#include "events/invocation_json.h"
#include "fn_settings.h"
#include "qualifier.h"
#include "timefmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Lambda destination record of a finished invocation. */
static json_t *destination_record(const ev_record *r, const char *condition)
{
    char at[TIMEFMT_ISO_LEN], arn[FN_NAME_MAX + 64], version[24];
    timefmt_iso_ms(timefmt_now_ms(), at);
    snprintf(arn, sizeof arn, "hearth:function:%s:%" PRId64, r->function, r->version);
    snprintf(version, sizeof version, "%" PRId64, r->version);
    bool ok = r->status == EV_SUCCEEDED;
    json_t *resp = json_pack("{s:i,s:s}", "statusCode", ok ? 200 : 500, "executedVersion", version);
    if (resp && !ok)
        json_object_set_new(resp, "functionError", json_string("Unhandled"));
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:i},s:o,s:o,s:o}", "version", "1.0", "timestamp", at,
                     "requestContext", "requestId", r->id, "functionArn", arn, "condition",
                     condition, "approximateInvokeCount", (int)r->attempts, "requestPayload",
                     invocation_payload_json(r), "responseContext", resp ? resp : json_object(),
                     "responsePayload", invocation_outcome_json(r));
}

static void send_destination(events *ev, const ev_record *r, const fn_config *cfg,
                             const char *condition)
{
    json_t *target = fnset_json_value(cfg, r->status == EV_SUCCEEDED ? "on_success" : "on_failure");
    if (!target)
        return;
    if (r->depth + 1 >= EVENTS_MAX_DEPTH) {
        dlog_warn("events: %s: not sending a destination record past depth %d (a loop?)",
                  r->function, EVENTS_MAX_DEPTH);
        return;
    }
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    if (qualifier_split(json_string_value(target), name, qual) < 0)
        return; /* stored settings passed the same check */
    json_t *rec = destination_record(r, condition);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return;
    event_new e = {.function = name,
                   .qualifier = qual,
                   .payload = text,
                   .len = strlen(text),
                   .content_type = "application/json",
                   .source = "destination",
                   .depth = r->depth + 1};
    ev_submit_internal(ev, &e, NULL);
    free(text);
}

typedef struct evpost {
    events *ev;
    int64_t seq;
    char id[EV_ID_LEN + 1];
} evpost;

static void on_callback_done(void *ud, const callback_result *res)
{
    evpost *p = ud;
    if (!res->delivered && !p->ev->stopping)
        dlog_warn("events: the result callback of invocation %s failed after %u attempts: %s",
                  p->id, res->attempts, res->error ? res->error : "");
    if (!p->ev->stopping) { /* else it is sent again after the restart */
        evstore_set_callback(p->ev->st, p->seq,
                             res->delivered ? EV_CALLBACK_DELIVERED : EV_CALLBACK_FAILED);
        ev_batch_joined(p->ev);
    }
    free(p);
}

/* POSTs the finished record to its X-Callback-Url. It may leave before the
 * commit that records the outcome (GET can lag it by a loop turn; the body
 * carries the whole record); a crash in between sends it again after the
 * restart: callbacks are at least once, like the invocations. */
void ev_send_callback(events *ev, const ev_record *r)
{
    if (!r->callback_url[0] || !ev->o.callbacks)
        return;
    json_t *doc = invocation_json(r, true);
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    evpost *p = malloc(sizeof *p);
    char hid[EV_ID_LEN + 40], hst[64];
    snprintf(hid, sizeof hid, "X-Hearth-Invocation-Id: %s", r->id);
    snprintf(hst, sizeof hst, "X-Hearth-Status: %s", ev_status_name(r->status));
    const char *headers[] = {hid, hst, NULL};
    bool queued = false;
    if (body && p) {
        *p = (evpost){ev, r->seq, ""};
        snprintf(p->id, sizeof p->id, "%s", r->id);
        queued = callbacks_post(ev->o.callbacks, r->callback_url, "application/json", headers, body,
                                strlen(body), on_callback_done, p) == 0;
        if (queued)
            p = NULL;
    }
    if (!queued) { /* refused (too many held, out of memory): not sent, and said so */
        dlog_warn("events: the result callback of invocation %s could not be queued", r->id);
        evstore_set_callback(ev->st, r->seq, EV_CALLBACK_FAILED);
        ev_batch_joined(ev);
    }
    free(p);
    free(body);
}

void ev_finished(events *ev, evfn *f, ev_record *r, const fn_config *cfg, const char *condition)
{
    f->pending--;
    if (cfg)
        send_destination(ev, r, cfg, condition);
    ev_send_callback(ev, r);
}
