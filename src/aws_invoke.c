/*
 * aws_invoke.c — Lambda's Invoke on Hearth's invocation paths:
 * RequestResponse through the scheduler as /invoke does, Event through
 * the durable async queue (202), DryRun only checks (204). A function's
 * own failure is Lambda's: 200 with X-Amz-Function-Error: Unhandled and
 * {"errorMessage", "errorType"}; the platform's are error shapes (429
 * TooManyRequestsException, …). X-Amz-Log-Type: Tail adds the last 4 KB
 * of that call's log lines, base64, in X-Amz-Log-Result.
 *
 * Owns: the translation of one invocation. Must never: hold the loop
 * (the log tail is read from the log store's memory after a short timer,
 * so lines the worker printed just before answering are in).
 */
#include "aws_internal.h"
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "buf.h"
#include "events/events.h"
#include "logstore.h"
#include "safetext.h"
#include "sched.h"

#define TAIL_BYTES    4096
#define TAIL_LINES    200
#define TAIL_DELAY_MS 50 /* the log collector reads the worker's pipe on the same loop */

/* A finished call waiting for its log tail. */
typedef struct aws_call {
    uv_timer_t timer;
    hearth *h;
    gw_request *req;
    char function[FN_NAME_MAX + 1];
    char request_id[REQID_LEN + 1];
    unsigned status;
    char *body;
    size_t len;
    char content_type[256];
    int64_t version;
    bool function_error;
} aws_call;

/* Codes of sched_result that are the function's own failure. */
static bool is_function_error(const char *code)
{
    static const char *const codes[] = {"function_error",    "function_crashed", "out_of_memory",
                                        "sandbox_violation", "invalid_response", "init_error",
                                        "init_timeout",      "timeout"};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

/* --- the log tail --- */

static int tail_visit(const log_record *rec, void *ud)
{
    char line[1024];
    size_t n = logstore_format_text(rec, line, sizeof line);
    buf *b = ud;
    buf_append(b, line, n < sizeof line ? n : sizeof line - 1);
    return 0;
}

/* Sets X-Amz-Log-Result: the last TAIL_BYTES of the call's lines, base64. */
static void add_log_result(aws_call *ac)
{
    buf lines;
    buf_init(&lines, TAIL_LINES * 1024);
    log_query q = {.tail = TAIL_LINES, .request_id = ac->request_id};
    logstore_query(ac->h->store, ac->function, &q, tail_visit, &lines);
    const char *p = lines.data ? lines.data : "";
    size_t n = lines.len;
    if (n > TAIL_BYTES) {
        p += n - TAIL_BYTES;
        n = TAIL_BYTES;
    }
    char b64[sodium_base64_ENCODED_LEN(TAIL_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)p, n, sodium_base64_VARIANT_ORIGINAL);
    gw_add_header(ac->req, "X-Amz-Log-Result", b64);
    buf_release(&lines);
}

static void answer(aws_call *ac, bool tail)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRId64, ac->version);
    gw_add_header(ac->req, "X-Amz-Executed-Version", ac->version ? v : "$LATEST");
    if (ac->function_error)
        gw_add_header(ac->req, "X-Amz-Function-Error", "Unhandled");
    if (tail)
        add_log_result(ac);
    gw_add_header(ac->req, "x-amzn-RequestId", ac->request_id);
    gw_respond(ac->req, ac->status, ac->content_type[0] ? ac->content_type : "application/json",
               ac->body, ac->len);
    ac->body = NULL;
}

static void call_free(uv_handle_t *t)
{
    aws_call *ac = t->data;
    free(ac->body);
    free(ac);
}

static void on_tail_timer(uv_timer_t *t)
{
    aws_call *ac = t->data;
    answer(ac, true);
    uv_close((uv_handle_t *)&ac->timer, call_free);
}

/* --- RequestResponse --- */

/* The function's failure as Lambda's body. */
static void function_error_body(aws_call *ac, const sched_result *res)
{
    char msg[sizeof res->message], type[sizeof res->error_type];
    safetext_copy(msg, sizeof msg, res->message, strlen(res->message));
    safetext_copy(type, sizeof type, res->error_type[0] ? res->error_type : res->code,
                  strlen(res->error_type[0] ? res->error_type : res->code));
    json_t *o = json_pack("{s:s,s:s}", "errorMessage", msg, "errorType", type);
    ac->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    ac->len = ac->body ? strlen(ac->body) : 0;
    json_decref(o);
    ac->status = 200;
    ac->function_error = true;
}

/* A refusal of the platform's, in Lambda's error shape. */
static void platform_error(gw_request *req, const sched_result *res)
{
    const char *type = res->status == 404   ? "ResourceNotFoundException"
                       : res->status == 429 ? "TooManyRequestsException"
                       : res->status == 400 ? "InvalidRequestContentException"
                                            : "ServiceException";
    unsigned status =
        res->status == 429 || res->status == 404 || res->status == 400 ? res->status : 500;
    if (res->status == 504) /* the queue timed out: Lambda's throttle */
        type = "TooManyRequestsException", status = 429;
    if (res->retry_after_s) {
        char v[16];
        snprintf(v, sizeof v, "%u", res->retry_after_s);
        gw_add_header(req, "Retry-After", v);
    }
    char msg[sizeof res->message];
    aws_error(req, status, type, "%s",
              safetext_copy(msg, sizeof msg, res->message, strlen(res->message)));
}

/* Frees ac, closing its timer first when it has one. */
static void finish(aws_call *ac)
{
    if (ac->timer.data)
        uv_close((uv_handle_t *)&ac->timer, call_free);
    else
        call_free((uv_handle_t *)&(uv_timer_t){.data = ac});
}

static void on_done(sched_call *c, sched_result *res, void *ud)
{
    (void)c;
    aws_call *ac = ud;
    if (res->code && !is_function_error(res->code)) {
        platform_error(ac->req, res);
        finish(ac);
        return;
    }
    ac->version = res->version;
    if (res->code) {
        function_error_body(ac, res);
    } else {
        ac->status = res->status;
        ac->body = res->body;
        ac->len = res->len;
        res->body = NULL;
        snprintf(ac->content_type, sizeof ac->content_type, "%s", res->content_type);
    }
    if (!ac->timer.data) {
        answer(ac, false);
        finish(ac);
        return;
    }
    uv_timer_start(&ac->timer, on_tail_timer, TAIL_DELAY_MS, 0);
}

static void invoke_sync(hearth *h, gw_request *req, const char *name, int64_t version, bool tail)
{
    aws_call *ac = calloc(1, sizeof *ac);
    sched_call *c = ac ? api_call_new(req, name, version) : NULL;
    if (!c) {
        free(ac);
        aws_error(req, 500, "ServiceException", "out of memory");
        return;
    }
    ac->h = h;
    ac->req = req;
    snprintf(ac->function, sizeof ac->function, "%s", name);
    snprintf(ac->request_id, sizeof ac->request_id, "%s", gw_request_id(req));
    if (tail) {
        uv_timer_init(h->loop, &ac->timer);
        ac->timer.data = ac;
    }
    c->trigger = "invoke";
    c->done = on_done;
    c->ud = ac;
    sched_invoke(h->sch, c);
}

/* --- Event --- */

static void on_accepted(const event_ack *a, void *ud)
{
    gw_request *req = ud;
    if (a->status) {
        unsigned s = a->status == 404 || a->status == 429 ? a->status : 500;
        aws_error(req, s,
                  s == 404   ? "ResourceNotFoundException"
                  : s == 429 ? "TooManyRequestsException"
                             : "ServiceException",
                  "%s", a->message);
        return;
    }
    gw_add_header(req, "X-Hearth-Invocation-Id", a->id);
    aws_respond(req, 202, NULL);
}

static void invoke_event(hearth *h, gw_request *req, const char *name, const char *qual)
{
    size_t len;
    const void *body = gw_body(req, &len);
    const char *ct = api_request_ctype(req, EV_CTYPE_MAX);
    event_new e = {.function = name,
                   .qualifier = qual,
                   .payload = body,
                   .len = len,
                   .content_type = ct,
                   .source = "invoke"};
    events_submit(h->events, &e, on_accepted, req);
}

/* --- Invoke --- */

void aws_invoke(hearth *h, gw_request *req, const char *name, const char *qual)
{
    const char *type = gw_header(req, "X-Amz-Invocation-Type");
    const char *log = gw_header(req, "X-Amz-Log-Type");
    if (type && strcmp(type, "RequestResponse") && strcmp(type, "Event") &&
        strcmp(type, "DryRun")) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "X-Amz-Invocation-Type is RequestResponse, Event or DryRun");
        return;
    }
    if (log && strcmp(log, "None") && strcmp(log, "Tail")) {
        aws_error(req, 400, "InvalidParameterValueException", "X-Amz-Log-Type is None or Tail");
        return;
    }
    /* The qualifier must address something now, as on /invoke; an Event
     * resolves it again at each attempt (qualifier.h). */
    int64_t version = 0;
    int rc = qual[0] ? sched_resolve(h->sch, name, qual, &version) : 0;
    if (rc == -ENOENT) {
        aws_error(req, 404, "ResourceNotFoundException", "Function not found: %s:%s", name, qual);
        return;
    }
    if (rc < 0) {
        aws_error(req, 500, "ServiceException", "could not read the registry");
        return;
    }
    if (type && strcmp(type, "DryRun") == 0) {
        if (!sched_config(h->sch, name)) { /* the scheduler's copy: no registry read */
            aws_error(req, 404, "ResourceNotFoundException", "Function not found: %s", name);
            return;
        }
        aws_respond(req, 204, NULL);
    } else if (type && strcmp(type, "Event") == 0) {
        invoke_event(h, req, name, qual[0] ? qual : NULL);
    } else {
        invoke_sync(h, req, name, version, log && strcmp(log, "Tail") == 0);
    }
}
