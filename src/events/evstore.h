/*
 * evstore.h — the durable store of asynchronous invocations: the narrow
 * interface the event core (events.c, schedules, topics) talks to, so that
 * sqlite serves one machine (evstore_sqlite.c) and another backend
 * (PostgreSQL with FOR UPDATE SKIP LOCKED) can serve several.
 * docs/architecture.md describes the contract.
 *
 * Group commit: every write joins the batch of the current loop turn;
 * evstore_commit() makes the batch durable in one transaction, one fsync.
 * A write is durable only once the commit that follows it returned 0.
 * Times are wall-clock unix ms: they must mean the same after a restart.
 */
#ifndef HEARTH_EVSTORE_H
#define HEARTH_EVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "reqid.h"

typedef struct evstore evstore;

/* An invocation's life: queued → running → succeeded, or → retrying →
 * running … → dead; queued or retrying → cancelled (DELETE). */
typedef enum ev_status {
    EV_QUEUED,
    EV_RUNNING,
    EV_RETRYING,
    EV_SUCCEEDED,
    EV_DEAD,
    EV_CANCELLED,
    EV_STATUS_COUNT
} ev_status;

const char *ev_status_name(ev_status s);
/* The status called `word`, or -1. */
int ev_status_parse(const char *word);
/* Still to run (queued, running, retrying). */
bool ev_status_pending(ev_status s);

/* A result callback's state. */
typedef enum ev_callback {
    EV_CALLBACK_NONE,
    EV_CALLBACK_PENDING,   /* to be sent once the invocation finishes */
    EV_CALLBACK_DELIVERED, /* a 2xx came back */
    EV_CALLBACK_FAILED,    /* every attempt failed */
} ev_callback;

#define EV_ID_LEN          REQID_LEN
#define EV_SOURCE_MAX      80 /* "invoke", "schedule:<i>", "topic:<name>", "destination" */
#define EV_CTYPE_MAX       255
#define EV_ERR_CODE_MAX    63
#define EV_ERR_MESSAGE_MAX 1023
#define EV_ERR_TYPE_MAX    127
#define EV_URL_MAX         2048
#define EV_IDEM_KEY_MAX    255

/* One invocation. The payload and result are owned by the record when it
 * comes from the store (evrec_release frees them). */
typedef struct ev_record {
    int64_t seq; /* the store's order of arrival */
    char id[EV_ID_LEN + 1];
    char function[FN_NAME_MAX + 1];
    int64_t version; /* the version of the last attempt (0: none yet) */
    ev_status status;
    unsigned attempts;
    unsigned depth; /* destinations: how many records led to this one */
    char source[EV_SOURCE_MAX + 1];
    int64_t created_ms, started_ms, finished_ms, run_at_ms; /* 0 = not yet */
    char content_type[EV_CTYPE_MAX + 1];
    char *payload;
    size_t payload_len;
    char *result; /* the function's answer (succeeded) */
    size_t result_len;
    char result_type[EV_CTYPE_MAX + 1];
    char err_code[EV_ERR_CODE_MAX + 1]; /* the last failure ("" when none) */
    char err_message[EV_ERR_MESSAGE_MAX + 1];
    char err_type[EV_ERR_TYPE_MAX + 1];
    char callback_url[EV_URL_MAX + 1];
    ev_callback callback;
    char idem_key[EV_IDEM_KEY_MAX + 1];
    char qualifier[FN_ALIAS_MAX + 1]; /* "" = the current version (qualifier.h) */
} ev_record;

void evrec_release(ev_record *r);

/* Opens (creating) the store at `path`. 0 or a negative errno. */
int evstore_open(const char *path, evstore **out);

/* The user_version evstore_open migrates to (hearthd check compares). */
int evstore_schema_version(void);
void evstore_close(evstore *st); /* accepts NULL; rolls back an open batch */

/* Makes every write since the last commit durable. 0, or -EIO having
 * rolled the batch back (then none of its writes happened). */
int evstore_commit(evstore *st);
/* True when writes wait for a commit. */
bool evstore_dirty(const evstore *st);

/* Adds a new invocation (status queued; seq is filled in). With an
 * idempotency key, remembers (function, key) → id until forgotten. */
int evstore_enqueue(evstore *st, ev_record *r);

/* The id an earlier call with this idempotency key got, if it came at or
 * after since_ms: 0 and the id, or -ENOENT. */
int evstore_find_key(evstore *st, const char *function, const char *key, int64_t since_ms,
                     char id[EV_ID_LEN + 1]);

/* Claims invocation `seq` for an attempt: queued or retrying → running,
 * attempts + 1, started_ms = now, version recorded. Fills *out with the
 * whole record (payload included). -ESTALE when it is no longer waiting
 * (cancelled, already finished). */
int evstore_claim(evstore *st, int64_t seq, int64_t version, int64_t now_ms, ev_record *out);

/* The attempt succeeded: status succeeded, the answer kept. */
int evstore_complete(evstore *st, int64_t seq, const char *result, size_t len,
                     const char *result_type, int64_t now_ms);

/* The error of an attempt (code, message, type), as the record keeps it. */
typedef struct ev_error {
    const char *code, *message, *type;
} ev_error;

/* The attempt failed and another comes at run_at_ms: status retrying. */
int evstore_retry_at(evstore *st, int64_t seq, int64_t run_at_ms, const ev_error *err);

/* No attempt came: back to queued, the attempt count as it was (a
 * throttled call, or one the daemon stopped). */
int evstore_requeue(evstore *st, int64_t seq, int64_t run_at_ms);

/* Every invocation still 'running' (the daemon stopped during its
 * attempt) back to waiting at run_at_ms, the attempt not counted, as
 * evstore_requeue does for one: what the daemon does at start. Joins the
 * batch evstore_commit ends. Returns 0 or a negative errno. */
int evstore_requeue_running(evstore *st, int64_t run_at_ms);

/* The same on `db`, an events.db opened without evstore_open (hearthd
 * check, which must not migrate it). Returns the number of invocations
 * requeued, or -EIO (sqlite3_errmsg(db) says why). */
struct sqlite3;
int evstore_requeue_running_db(struct sqlite3 *db, int64_t run_at_ms);

/* No more attempts: status dead, with its last error. */
int evstore_dead(evstore *st, int64_t seq, const ev_error *err, int64_t now_ms);

/* Queued or retrying → cancelled; its callback, if any, is not sent (the
 * caller cancelled it). -ESTALE when it is neither. */
int evstore_cancel(evstore *st, int64_t seq, int64_t now_ms);

/* Dead → queued again, attempts from zero, its age from now (a redrive is
 * a new delivery: async_max_age_s counts again). -ESTALE otherwise. */
int evstore_redrive(evstore *st, int64_t seq, int64_t now_ms);

/* Records the callback's state. */
int evstore_set_callback(evstore *st, int64_t seq, ev_callback state);
/* The version that served the attempt, when not the one claimed (a
 * qualified invocation runs its qualifier's version). */
int evstore_set_version(evstore *st, int64_t seq, int64_t version);

/* One invocation by id: 0, -ENOENT. */
int evstore_get(evstore *st, const char *id, ev_record *out);

typedef int (*evstore_visit_fn)(ev_record *r, void *ud); /* r borrowed; non-zero stops */

/* A function's invocations, newest first, at most `limit`, only those of
 * `status` unless it is -1. Payloads and results are not loaded. */
int evstore_list(evstore *st, const char *function, int status, unsigned limit, evstore_visit_fn fn,
                 void *ud);

/* Every invocation still to run, oldest first (payloads not loaded). Used
 * at start: a running one was cut off by a stop and runs again. */
int evstore_each_pending(evstore *st, evstore_visit_fn fn, void *ud);

/* Every finished invocation whose callback is still pending. */
int evstore_each_unsent_callback(evstore *st, evstore_visit_fn fn, void *ud);

/* How many invocations of `function` from `source` are still to run. */
int evstore_backlog(evstore *st, const char *function, const char *source, int64_t *out);

/* Forgets finished invocations that finished before `before_ms`, and
 * idempotency keys older than `keys_before_ms`. */
int evstore_expire(evstore *st, int64_t before_ms, int64_t keys_before_ms);

/* A schedule's last firing (schedule.c's missed-run rule needs it across
 * restarts): 0, or -ENOENT when it never fired. `key` names the schedule. */
int evstore_schedule_last(evstore *st, const char *function, const char *key, int64_t *fired_s,
                          char id[EV_ID_LEN + 1]);
int evstore_schedule_fired(evstore *st, const char *function, const char *key, int64_t fired_s,
                           const char *id);

#endif
