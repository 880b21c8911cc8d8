/*
 * api_internal.h — what the REST API's files share: the handler shape and
 * the request helpers of api.c. Only api*.c and the other front ends that
 * answer on the gateway (stacks.c, aws_invoke.c) include this.
 */
#ifndef HEARTH_API_INTERNAL_H
#define HEARTH_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"
#include "hearth.h"

/* Reads query parameter `key`: *v is its value, or NULL when absent.
 * False when it decodes to a NUL byte or to bytes that are not UTF-8. */
bool api_query_text(gw_request *req, const char *key, const char **v);

/* With Content-Type application/json, the body must parse: false, having
 * answered 400 invalid_json, when it does not. */
bool api_check_json_body(gw_request *req);

/* Whether the token of the request being handled may reach `function`
 * (always, without auth). Valid only while a handler runs. */
bool api_caller_may_reach(const char *function);

/* --- api_events.c: asynchronous invocations and topics --- */

/* True when the request asks to be answered at once (Prefer: respond-async). */
bool api_prefers_async(gw_request *req);
/* POST /v1/functions/{name}/invoke with Prefer: respond-async. */
void api_invoke_async(hearth *h, gw_request *req, const char *name);

void api_invocation_get(hearth *h, gw_request *req, const char *id, const char *rest);
void api_invocation_cancel(hearth *h, gw_request *req, const char *id, const char *rest);
void api_invocation_retry(hearth *h, gw_request *req, const char *id, const char *rest);
void api_invocations_list(hearth *h, gw_request *req, const char *name, const char *rest);
void api_topic_publish(hearth *h, gw_request *req, const char *topic, const char *rest);
void api_topics_list(hearth *h, gw_request *req, const char *name, const char *rest);
void api_schedules_list(hearth *h, gw_request *req, const char *name, const char *rest);

/* --- api.c: qualified calls --- */

/* The request's Content-Type, to pass on with its body, or NULL when it is
 * longer than `max` bytes or holds a line break. */
const char *api_request_ctype(gw_request *req, size_t max);

/* A call of `name` (at `version`, 0: the current one) carrying the
 * request's id, Content-Type and body; the caller sets the trigger and the
 * completion. NULL when out of memory. */
sched_call *api_call_new(gw_request *req, const char *name, int64_t version);

/* The version a call of `name` with qualifier `qual` runs (0: current), or
 * false having answered 404 function_not_found / alias_not_found. */
bool api_resolve_qualifier(hearth *h, gw_request *req, const char *name, const char *qual,
                           int64_t *version);

/* --- api_versions.c: versions, rollback, aliases --- */

void api_versions_list(hearth *h, gw_request *req, const char *name, const char *rest);
void api_rollback(hearth *h, gw_request *req, const char *name, const char *rest);
void api_alias_get(hearth *h, gw_request *req, const char *name, const char *rest);
void api_alias_put(hearth *h, gw_request *req, const char *name, const char *rest);
void api_alias_delete(hearth *h, gw_request *req, const char *name, const char *rest);

#endif
