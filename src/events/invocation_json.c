/*
 * invocation_json.c — renders invocation records. Bodies are the caller's
 * and the function's bytes: JSON when they parse as JSON, otherwise text
 * with every byte that is not printable UTF-8 escaped (safetext.h), never
 * raw.
 */
#include "events/invocation_json.h"

#include "safetext.h"
#include "timefmt.h"

#include <stdlib.h>
#include <string.h>

/* Bytes as JSON: the value they encode, or a safe string of them. */
static json_t *bytes_json(const char *p, size_t len)
{
    if (!p)
        return json_null();
    json_t *v = len ? json_loadb(p, len, JSON_DECODE_ANY, NULL) : NULL;
    if (v)
        return v;
    size_t cap = len * 4 + 1;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    v = json_string(safetext_copy(text, cap, p, len));
    free(text);
    return v;
}

json_t *invocation_payload_json(const ev_record *r)
{
    return bytes_json(r->payload, r->payload_len);
}

static json_t *error_json(const ev_record *r)
{
    json_t *e = json_pack("{s:s,s:s}", "code", r->err_code, "message", r->err_message);
    if (e && r->err_type[0])
        json_object_set_new(e, "type", json_string(r->err_type));
    return e;
}

json_t *invocation_outcome_json(const ev_record *r)
{
    if (r->status == EV_SUCCEEDED)
        return bytes_json(r->result, r->result_len);
    return json_pack("{s:s,s:s,s:s}", "errorMessage", r->err_message, "errorType",
                     r->err_type[0] ? r->err_type : r->err_code, "code", r->err_code);
}

/* An RFC 3339 time, or null for "not yet". */
static json_t *time_json(int64_t ms)
{
    char at[TIMEFMT_ISO_LEN];
    if (ms <= 0)
        return json_null();
    timefmt_iso_ms(ms, at);
    return json_string(at);
}

json_t *invocation_json(const ev_record *r, bool whole)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:i,s:s,s:o,s:o,s:o}", "id", r->id, "function",
                          r->function, "version", (json_int_t)r->version, "status",
                          ev_status_name(r->status), "attempts", (int)r->attempts, "source",
                          r->source, "created_at", time_json(r->created_ms), "started_at",
                          time_json(r->started_ms), "finished_at", time_json(r->finished_ms));
    if (!o)
        return NULL;
    if (r->status == EV_RETRYING)
        json_object_set_new(o, "next_attempt_at", time_json(r->run_at_ms));
    if (r->callback != EV_CALLBACK_NONE)
        json_object_set_new(o, "callback",
                            json_string(r->callback == EV_CALLBACK_PENDING     ? "pending"
                                        : r->callback == EV_CALLBACK_DELIVERED ? "delivered"
                                                                               : "failed"));
    if (r->err_code[0])
        json_object_set_new(o, "error", error_json(r));
    if (whole && r->status == EV_SUCCEEDED) {
        json_object_set_new(o, "result", bytes_json(r->result, r->result_len));
        if (r->result_type[0])
            json_object_set_new(o, "result_content_type", json_string(r->result_type));
    }
    return o;
}
