/*
 * events.h — the event core: asynchronous invocations accepted durably,
 * run on their function's pool behind its synchronous calls, retried,
 * dead-lettered, redriven or cancelled, with destinations and result
 * callbacks. Schedules and topics submit through it. Knows nothing of
 * HTTP: api.c turns requests into event_new and answers from event_ack.
 */
#ifndef HEARTH_EVENTS_H
#define HEARTH_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "events/evstore.h"
#include "events/topics.h"
#include "registry.h"
#include "sched.h"

typedef struct events events;
struct callbacks;

typedef struct events_opts {
    uv_loop_t *loop;
    sched *sch;
    evstore *store;               /* taken: closed by events_close, also on failure */
    uint64_t result_retention_ms; /* finished invocations are forgotten after this */
    unsigned max_workers;         /* async attempts use at most half of them */
    struct callbacks *callbacks;  /* X-Callback-Url sender (NULL: callbacks refused) */
} events_opts;

#define EVENTS_IDEMPOTENCY_MS (24 * 3600 * 1000LL) /* how long a key is remembered */
#define EVENTS_MAX_DEPTH      16 /* destinations of destinations: a loop stops here */

/* Opens the store and picks up what a previous run left: waiting
 * invocations, unsent callbacks, and (from `reg`) every function's
 * subscriptions. */
int events_open(const events_opts *o, registry *reg, events **out);
/* A stop begins: no new attempt starts and nothing new is accepted (503);
 * attempts running go on and their outcomes are recorded. */
void events_drain(events *ev);
/* Attempts handed to the scheduler and not yet answered. */
unsigned events_running(const events *ev);
/* From now on nothing is recorded: attempts still running stay "running"
 * in the store and run again after the next start. */
void events_shutdown(events *ev);
/* Commits what is left and frees; call after the loop ran the closes. */
void events_close(events *ev);
/* Closes the loop handles (then run the loop before events_close). */
void events_close_handles(events *ev);

/* A new invocation, as a caller asks for it. */
typedef struct event_new {
    const char *function;
    const char *qualifier; /* NULL or "" = the current version; checked by the caller */
    const void *payload;
    size_t len;
    const char *content_type;    /* NULL or "" when none */
    const char *source;          /* "invoke", "topic:<name>", "schedule:…", "destination" */
    const char *idempotency_key; /* NULL or "" when none */
    const char *callback_url;    /* NULL or "" when none (checked by the caller) */
    unsigned depth;
} event_new;

/* The answer to a submit, a redrive or a cancel. status 0 = done, else an
 * HTTP-like status with a snake_case code and a message. */
typedef struct event_ack {
    unsigned status;
    const char *code;
    char message[256];
    char id[EV_ID_LEN + 1];
    ev_status state; /* the invocation's status once acknowledged */
    bool duplicate;  /* an earlier call with the same idempotency key */
} event_ack;

typedef void (*events_ack_fn)(const event_ack *ack, void *ud);

/* Accepts `e` (copied). `done` is called once: after the commit that makes
 * it durable, or at once when refused (404 function_not_found, 429
 * queue_full, 503 storage_error). */
void events_submit(events *ev, const event_new *e, events_ack_fn done, void *ud);

/* A dead invocation runs again from its first attempt (409 not_dead when
 * it is not dead, 404 invocation_not_found). */
void events_redrive(events *ev, const char *id, events_ack_fn done, void *ud);
/* A queued or retrying invocation will not run (409 not_cancellable). */
void events_cancel(events *ev, const char *id, events_ack_fn done, void *ud);

/* Reads, for the API (see evstore.h). */
int events_get(events *ev, const char *id, ev_record *out);
int events_list(events *ev, const char *function, int status, unsigned limit, evstore_visit_fn fn,
                void *ud);
int events_backlog(events *ev, const char *function, const char *source, int64_t *out);
int events_schedule_last(events *ev, const char *function, const char *key, int64_t *fired_s,
                         char id[EV_ID_LEN + 1]);

/* A function's config changed (deploy) or it is gone (delete). */
void events_function_updated(events *ev, const fn_config *cfg);
void events_function_removed(events *ev, const char *name);
const topics *events_topics(const events *ev);

/* Live counts for the API and /metrics. */
typedef struct events_state {
    unsigned waiting, running; /* of one function */
} events_state;
void events_state_of(events *ev, const char *function, events_state *out);

#endif
