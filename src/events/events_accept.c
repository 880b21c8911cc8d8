/*
 * events_accept.c — taking events in: the checks of a submit (function,
 * queue bound, idempotency key), its write into the turn's batch, and the
 * group commit at the end of the loop turn, after which (and only after
 * which) each waiting acknowledgement is answered and its invocation joins
 * its function's heap. Redrive and cancel go the same way.
 */
#include "events/events_internal.h"

#include "dlog.h"
#include "timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ack_now(events_ack_fn done, void *ud, unsigned status, const char *code,
                    const char *fmt, const char *arg)
{
    event_ack a = {.status = status, .code = code};
    snprintf(a.message, sizeof a.message, fmt, arg);
    done(&a, ud);
}

/* Queues the acknowledgement for after the commit. */
static void ack_after_commit(events *ev, evack *k)
{
    *ev->acks_tail = k;
    ev->acks_tail = &k->next;
    ev_batch_joined(ev);
}

/* The commit went through (ok) or was rolled back: settle each waiting
 * acknowledgement's counts, then answer it. */
static void settle(events *ev, evack *k, bool ok)
{
    if (k->fn && !ok)
        k->fn->pending = (unsigned)((int)k->fn->pending - k->reserved);
    if (k->fn && ok && k->seq && ev_heap_push(ev, k->fn, k->seq, ev_now_loop(ev)) < 0)
        k->fn->pending--; /* durable all the same: it runs after a restart */
    if (!ok) {
        k->ack.status = 503;
        k->ack.code = "storage_error";
        snprintf(k->ack.message, sizeof k->ack.message,
                 "the event store could not write to disk; nothing was recorded");
    }
    if (k->done)
        k->done(&k->ack, k->ud);
}

void ev_on_commit(uv_check_t *h)
{
    events *ev = h->data;
    ev->armed = false;
    uv_idle_stop(&ev->kick);
    uv_check_stop(&ev->commit);
    bool ok = evstore_commit(ev->st) == 0;
    evack *k = ev->acks;
    ev->acks = NULL;
    ev->acks_tail = &ev->acks;
    while (k) {
        evack *next = k->next;
        settle(ev, k, ok);
        free(k);
        k = next;
    }
    ev_pump(ev);
}

/* Fills a new record from e. -EINVAL when a field cannot be kept. */
static int new_record(const event_new *e, ev_record *r)
{
    memset(r, 0, sizeof *r);
    reqid_new(r->id);
    snprintf(r->function, sizeof r->function, "%s", e->function);
    snprintf(r->source, sizeof r->source, "%s", e->source ? e->source : "invoke");
    r->depth = e->depth;
    r->created_ms = r->run_at_ms = timefmt_steady_ms();
    const char *ct = e->content_type ? e->content_type : "";
    const char *url = e->callback_url ? e->callback_url : "";
    const char *key = e->idempotency_key ? e->idempotency_key : "";
    const char *qual = e->qualifier ? e->qualifier : "";
    if (strlen(qual) >= sizeof r->qualifier)
        return -EINVAL;
    snprintf(r->qualifier, sizeof r->qualifier, "%s", qual);
    if (strlen(ct) >= sizeof r->content_type || strlen(url) >= sizeof r->callback_url ||
        strlen(key) >= sizeof r->idem_key)
        return -EINVAL;
    snprintf(r->content_type, sizeof r->content_type, "%s", ct);
    snprintf(r->callback_url, sizeof r->callback_url, "%s", url);
    snprintf(r->idem_key, sizeof r->idem_key, "%s", key);
    r->callback = url[0] ? EV_CALLBACK_PENDING : EV_CALLBACK_NONE;
    r->payload = (char *)e->payload; /* borrowed for the insert */
    r->payload_len = e->len;
    return 0;
}

/* True (and *a filled) when an earlier call with e's idempotency key is
 * still known. A key whose invocation was forgotten (--result-retention
 * shorter than a day) no longer holds: the call is a new invocation. */
static bool is_duplicate(events *ev, const event_new *e, event_ack *a)
{
    ev_record old;
    if (!e->idempotency_key || !e->idempotency_key[0] ||
        evstore_find_key(ev->st, e->function, e->idempotency_key,
                         timefmt_steady_ms() - EVENTS_IDEMPOTENCY_MS, a->id) < 0 ||
        evstore_get(ev->st, a->id, &old) < 0)
        return false;
    a->duplicate = true;
    a->state = old.status;
    evrec_release(&old);
    return true;
}

/* The checks and the write of a submit; *k is filled for the commit.
 * Returns 0, or answers (through k->ack) and returns -1. */
static int accept_event(events *ev, const event_new *e, evack *k)
{
    const fn_config *cfg = sched_config(ev->o.sch, e->function);
    event_ack *a = &k->ack;
    if (!cfg) {
        *a = (event_ack){.status = 404, .code = "function_not_found"};
        snprintf(a->message, sizeof a->message, "no function named '%s'", e->function);
        return -1;
    }
    if (is_duplicate(ev, e, a))
        return 0;
    evfn *f = ev_fn_get(ev, e->function);
    if (!f) {
        *a = (event_ack){.status = 503, .code = "storage_error"};
        snprintf(a->message, sizeof a->message, "out of memory");
        return -1;
    }
    if (f->pending >= (unsigned)cfg->async_max_queue) {
        *a = (event_ack){.status = 429, .code = "queue_full"};
        snprintf(a->message, sizeof a->message,
                 "'%s' already has %u asynchronous invocations waiting (async_max_queue)",
                 e->function, f->pending);
        return -1;
    }
    ev_record r;
    int rc = new_record(e, &r);
    if (rc == 0)
        rc = evstore_enqueue(ev->st, &r);
    if (rc < 0) {
        *a = (event_ack){.status = rc == -EINVAL ? 400 : 503,
                         .code = rc == -EINVAL ? "invalid_request" : "storage_error"};
        snprintf(a->message, sizeof a->message, "%s",
                 rc == -EINVAL ? "a header of the call is too long to keep"
                               : "the event store could not take the event");
        return -1;
    }
    f->pending++;
    k->fn = f;
    k->seq = r.seq;
    k->reserved = 1;
    snprintf(a->id, sizeof a->id, "%s", r.id);
    a->state = EV_QUEUED;
    return 0;
}

void events_submit(events *ev, const event_new *e, events_ack_fn done, void *ud)
{
    if (ev->draining) {
        ack_now(done, ud, 503, "overloaded", "%s", "the daemon is shutting down");
        return;
    }
    evack *k = calloc(1, sizeof *k);
    if (!k) {
        ack_now(done, ud, 503, "storage_error", "%s", "out of memory");
        return;
    }
    k->done = done;
    k->ud = ud;
    if (accept_event(ev, e, k) < 0) {
        done(&k->ack, ud);
        free(k);
        return;
    }
    ack_after_commit(ev, k);
}

/* A submit from inside the core (destinations, schedules): nobody waits
 * for the acknowledgement. 0 and the new id, or a negative errno. */
int ev_submit_internal(events *ev, const event_new *e, char id[EV_ID_LEN + 1])
{
    if (ev->draining)
        return -ESHUTDOWN;
    evack *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    if (accept_event(ev, e, k) < 0) {
        dlog_warn("events: could not send an event to '%s': %s", e->function, k->ack.message);
        int rc = k->ack.status == 429 ? -ENOBUFS : k->ack.status == 404 ? -ENOENT : -EIO;
        free(k);
        return rc;
    }
    if (id)
        snprintf(id, EV_ID_LEN + 1, "%s", k->ack.id);
    ack_after_commit(ev, k);
    return 0;
}

/* Redrive and cancel: one store change on a known invocation. */
static void change_one(events *ev, const char *id, bool redrive, events_ack_fn done, void *ud)
{
    ev_record r;
    int rc = evstore_get(ev->st, id, &r);
    if (rc < 0) {
        if (rc == -ENOENT)
            ack_now(done, ud, 404, "invocation_not_found", "no invocation '%.40s'", id);
        else
            ack_now(done, ud, 503, "storage_error", "%s", "the event store could not be read");
        return;
    }
    evrec_release(&r);
    evfn *f = ev_fn_get(ev, r.function);
    int64_t now = timefmt_steady_ms();
    rc = !f        ? -ENOMEM
         : redrive ? evstore_redrive(ev->st, r.seq, now)
                   : evstore_cancel(ev->st, r.seq, now);
    ev_batch_joined(ev);
    if (rc < 0) {
        if (rc == -ESTALE)
            ack_now(done, ud, 409, redrive ? "not_dead" : "not_cancellable",
                    redrive ? "the invocation is %s: only a dead one can be retried"
                            : "the invocation is %s: only a queued or retrying one can be "
                              "cancelled",
                    ev_status_name(r.status));
        else
            ack_now(done, ud, 503, "storage_error", "%s", "the event store could not be written");
        return;
    }
    evack *k = calloc(1, sizeof *k);
    if (!k) {
        ack_now(done, ud, 503, "storage_error", "%s", "out of memory");
        return;
    }
    *k = (evack){
        .done = done, .ud = ud, .fn = f, .seq = redrive ? r.seq : 0, .reserved = redrive ? 1 : -1};
    snprintf(k->ack.id, sizeof k->ack.id, "%s", r.id);
    k->ack.state = redrive ? EV_QUEUED : EV_CANCELLED;
    f->pending = (unsigned)((int)f->pending + k->reserved);
    ack_after_commit(ev, k);
}

void events_redrive(events *ev, const char *id, events_ack_fn done, void *ud)
{
    change_one(ev, id, true, done, ud);
}

void events_cancel(events *ev, const char *id, events_ack_fn done, void *ud)
{
    change_one(ev, id, false, done, ud);
}
