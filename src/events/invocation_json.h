/*
 * invocation_json.h — an invocation as JSON: the object GET
 * /v1/invocations/{id} answers and a result callback carries, and the
 * pieces a destination record quotes. One shape, used everywhere.
 */
#ifndef HEARTH_INVOCATION_JSON_H
#define HEARTH_INVOCATION_JSON_H

#include <stdbool.h>
#include <jansson.h>

#include "events/evstore.h"

/* The invocation object of docs/api.md; with `whole`, the result or error
 * (lists leave them out). New reference, NULL on ENOMEM. */
json_t *invocation_json(const ev_record *r, bool whole);

/* The request payload: parsed when it is JSON, else a string (bytes that
 * are not UTF-8 are escaped). New reference. */
json_t *invocation_payload_json(const ev_record *r);

/* The function's answer when it succeeded, else {"errorMessage",
 * "errorType", "code"}. New reference. */
json_t *invocation_outcome_json(const ev_record *r);

#endif
