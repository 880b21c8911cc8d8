/*
 * events_internal.h — what the event core's own files share: its state
 * (struct events, each function's waiting invocations, the acknowledgements
 * waiting for a commit) and the functions they call across files. Only
 * src/events/events*.c include this.
 *
 *   events.c          functions' heaps, dispatch, attempts and their outcome
 *                     as the retry policy decides it, start and stop
 *   events_accept.c   submits, idempotency, the group commit and the
 *                     acknowledgements after it; redrive and cancel
 *   events_outcome.c  what a finished invocation sends on: destination
 *                     records and result callbacks
 */
#ifndef HEARTH_EVENTS_INTERNAL_H
#define HEARTH_EVENTS_INTERNAL_H

#include "events/clock.h"
#include "events/events.h"
#include "strmap.h"

typedef struct evwait {
    uint64_t due; /* loop time (ms) from which it may run */
    int64_t seq;
} evwait;

typedef struct evfn {
    char name[FN_NAME_MAX + 1];
    evwait *heap; /* min-heap by (due, seq) */
    size_t n, cap;
    unsigned running;                       /* attempts handed to the scheduler */
    unsigned pending;                       /* waiting + running + accepted but not yet committed */
    struct evfn *next_active, *prev_active; /* in ev->active while n > 0 */
    bool active;
} evfn;

/* An acknowledgement that waits for the commit of its batch. */
typedef struct evack {
    struct evack *next;
    events_ack_fn done;
    void *ud;
    event_ack ack;
    evfn *fn;     /* the function whose counts the commit settles */
    int64_t seq;  /* to add to fn's heap once durable (0: none) */
    int reserved; /* pending count taken before the commit (+1 submit, -1 cancel) */
} evack;

/* One attempt in flight. */
typedef struct evcall {
    events *ev;
    evfn *fn;
    ev_record rec;
} evcall;

struct events {
    events_opts o;
    evstore *st;
    strmap fns;   /* name → evfn */
    evfn *active; /* functions with waiting invocations */
    topics *tp;
    evclock *clock; /* the schedules */
    unsigned running;
    uv_check_t commit; /* ends the turn's batch */
    uv_idle_t kick;    /* keeps the loop from sleeping on an open batch */
    uv_timer_t wake;   /* the earliest waiting invocation's time */
    uv_timer_t sweep;  /* result retention */
    bool armed, draining, stopping;
    evack *acks, **acks_tail;
    uint64_t rnd;
};

/* events.c */
uint64_t ev_now_loop(events *ev);
/* The store took a write: it is committed at the end of this loop turn. */
void ev_batch_joined(events *ev);
/* The in-memory record of `name`, made on first use; NULL on ENOMEM. */
evfn *ev_fn_get(events *ev, const char *name);
/* Adds invocation `seq` to f's waiting heap, to run from loop time `due`. */
int ev_heap_push(events *ev, evfn *f, int64_t seq, uint64_t due);
/* Starts every invocation that may start now. */
void ev_pump(events *ev);

/* events_accept.c */
/* The check handle's callback: commits the batch, then acknowledges. */
void ev_on_commit(uv_check_t *h);
/* A submit from inside the core (destinations, schedules): nobody waits
 * for the acknowledgement. 0 and the new id, or a negative errno. */
int ev_submit_internal(events *ev, const event_new *e, char id[EV_ID_LEN + 1]);

/* events_outcome.c */
/* r finished (succeeded or dead): its destination record and callback. */
void ev_finished(events *ev, evfn *f, ev_record *r, const fn_config *cfg, const char *condition);
/* POSTs r to its X-Callback-Url, if it has one. */
void ev_send_callback(events *ev, const ev_record *r);

#endif
