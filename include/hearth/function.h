/*
 * hearth/function.h — the public API of a native C function for Hearth's
 * `c` runtime (runtimes/c/README.md).
 *
 * A function is a shared object that exports hearth_handler (and, if it
 * wants them, hearth_init and hearth_shutdown). The runtime loads it once
 * per worker and calls hearth_handler once per request, one request at a
 * time, from one thread.
 *
 * Ownership, for every buffer:
 * - Everything in a hearth_request belongs to the runtime, and is valid
 *   only until hearth_handler returns. Copy what you keep.
 * - hearth_request only grows, by fields added at its end, so a function
 *   built against an older header keeps working. A function that reads a
 *   newer field needs a runner at least as new: the field's comment names
 *   the runner version (`GET /v1/runtimes`, runtime "c") that fills it.
 * - hearth_response starts zeroed (status 0 means 200). The buffers you
 *   point it at (body, content_type, error_type) are yours; they must stay
 *   valid until hearth_handler returns, and the runtime copies them out
 *   before it calls you again. If free_body is set, the runtime calls it
 *   with body once the answer is sent: use it to hand over a malloc'd body.
 */
#ifndef HEARTH_FUNCTION_H
#define HEARTH_FUNCTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hearth_request {
    const char *request_id;   /* the request's id, as in X-Request-Id */
    const char *function;     /* the function's name */
    const char *trigger;      /* "invoke", "http" behind /fn/{name}, or "async" */
    const char *content_type; /* the request's Content-Type, "" when none */
    const char *http;         /* "http" trigger: the request as JSON (method, path, query,
                                 headers); NULL otherwise */
    const void *body;         /* the event: the request body, as bytes, followed by a NUL
                                 byte (not counted) so that text can be used as a C string */
    size_t body_len;
    int64_t deadline_ms; /* unix time in ms after which the call answers 504 */
    int64_t memory_mb;   /* the function's memory_mb */
    /* Since runner 1.1. Asynchronous invocations are delivered at least once:
     * after a failure, or a daemon restart in the middle of an attempt, the
     * same invocation runs again, so key side effects on invocation_id. */
    const char *invocation_id; /* the asynchronous invocation's id, the same in every
                                  attempt; "" for a synchronous call */
    unsigned attempt;          /* 1 for the first attempt (and for a synchronous call),
                                  2 for the first retry, … */
} hearth_request;

typedef struct hearth_response {
    int status;               /* "http" trigger: the HTTP status (200-599; 0 = 200) */
    const char *content_type; /* NULL = application/octet-stream */
    const void *body;         /* the answer (or, with error_type, the error's message) */
    size_t body_len;
    void (*free_body)(void *body); /* called with body after sending, when set */
    const char *error_type;        /* set: the call failed: 500 function_error of this type */
} hearth_response;

/* Optional: once, before the first request. Non-zero: the function cannot
 * start (500 init_error for the call that waited for it). */
int hearth_init(void);

/* Required: answers one request into *resp. Returning non-zero fails the
 * call (500 function_error, type "HandlerError", unless error_type says
 * otherwise). */
int hearth_handler(const hearth_request *req, hearth_response *resp);

/* Optional: once, when the worker stops (the daemon closed the protocol). */
void hearth_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif
