/*
 * logs.h — the log collector: turns the bytes a worker writes on stdout
 * and stderr into stamped lines attributed to the request in flight,
 * stores them (logstore) and fans them out to followers
 * (`GET …/logs?follow=1`).
 */
#ifndef HEARTH_LOGS_H
#define HEARTH_LOGS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "buf.h"
#include "logstore.h"
#include "registry.h"
#include "reqid.h"

#define LOGS_MAX_LINE (16 * 1024) /* longer lines are split */
/* Lines stored in one loop turn, all workers together, and by one source at
 * one wake-up: a function printing short lines as fast as it can slows
 * itself, not the loop. */
#define LOGS_TURN_LINES  2048
#define LOGS_SLICE_LINES 256

typedef struct logs logs;

enum logs_format { LOGS_TEXT = 0, LOGS_NDJSON = 1 };

/* What one worker writes: its partial lines and who is printing now. */
typedef struct log_source log_source;
struct log_source {
    logs *lg;
    char function[FN_NAME_MAX + 1];
    int64_t version;
    char request_id[REQID_LEN + 1]; /* "" outside a request */
    buf partial[2];                 /* stdout, stderr */
    bool muted;                     /* its function was deleted: output is dropped */
    /* waiting for the next loop turn's lines (logs_source_wait_turn) */
    void (*on_turn)(log_source *src);
    log_source *turn_next;
    bool turn_waiting;
};

/* Creates the collector over `store` (borrowed; must outlive it), with a
 * handle on `loop` that starts each turn's line budget. */
int logs_open(uv_loop_t *loop, logstore *store, logs **out);
/* Closes the loop handle once no source waits for a turn (sources that
 * wait keep the loop running until they have gone on); the loop must run
 * until then, before logs_close. */
void logs_stop(logs *lg);
/* Ends every follower and frees the collector. Accepts NULL. */
void logs_close(logs *lg);

/* Lines a source may store at this wake-up: LOGS_SLICE_LINES, or what is
 * left of this turn's LOGS_TURN_LINES. 0 means wait for the next turn. */
unsigned logs_allowance(const logs *lg);
/* Calls `on_turn` once at the start of the next loop turn, when the
 * budget is fresh. Waiting twice is once. Returns false when there will be
 * no more turns (the collector is stopped and its handle closed): the
 * caller then goes on without waiting. */
bool logs_source_wait_turn(log_source *src, void (*on_turn)(log_source *src));
/* Forgets a wait: on_turn will not be called. */
void logs_source_cancel_turn(log_source *src);

void logs_source_init(log_source *src, logs *lg, const char *function, int64_t version);
/* Attributes what follows to `request_id` ("" for none). */
void logs_source_set_request(log_source *src, const char *request_id);
/* Feeds raw bytes of `stream` (LOG_STDOUT/LOG_STDERR); complete lines are
 * stored and sent to followers at once, at most *allowance of them (it is
 * decreased, and so is the turn's budget). Returns the bytes consumed: less
 * than `n` when the allowance ran out, and the rest must be fed again. */
size_t logs_source_feed(log_source *src, int stream, const char *data, size_t n,
                        unsigned *allowance);
/* Emits any unterminated line as a line of its own. */
void logs_source_flush(log_source *src);
/* Drops everything the source is fed from now on, and its partial lines:
 * its function was deleted, and a later function of the same name must
 * never show this worker's output as its own. */
void logs_source_mute(log_source *src);
/* Frees its buffers and cancels a wait for the next turn. */
void logs_source_release(log_source *src);

/* Adds one line that Hearth itself records for a function (e.g. why a
 * worker died), on stderr, attributed to `request_id`. */
void logs_note(logs *lg, const char *function, int64_t version, const char *request_id,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Where a follower's bytes go, implemented by whoever shows them (api.c:
 * a chunked HTTP stream). The collector never writes to it: it calls
 * wake(ctx) when lines are waiting or the follow has ended, and the sink
 * then takes them with logs_follower_pull. */
typedef struct logs_sink {
    void (*wake)(void *ctx);
    void *ctx;
} logs_sink;

typedef struct logs_follower logs_follower;

/* Starts following `function`: the lines matching `q` already stored are
 * waiting at once, and new matching lines are added as they come until
 * the sink leaves (logs_follower_closed). Returns NULL when out of memory. */
logs_follower *logs_follow(logs *lg, const char *function, const log_query *q,
                           enum logs_format format, logs_sink sink);
/* Moves up to `max` waiting bytes to `dst`. Returns how many, 0 when none
 * wait yet (a wake will follow), or -1 when the follow has ended. */
ssize_t logs_follower_pull(logs_follower *f, char *dst, size_t max);
/* The sink is gone: frees the follower (f is invalid afterwards). */
void logs_follower_closed(logs_follower *f);
/* The content type of `format`'s lines. */
const char *logs_content_type(enum logs_format format);

/* Ends the followers of one function (it was deleted), or of all. */
void logs_end_function(logs *lg, const char *function);
void logs_end_all(logs *lg);

/* Formats `rec` in `format` and appends it to `out`. Returns 0 or -E2BIG /
 * -ENOMEM. */
int logs_format(const log_record *rec, enum logs_format format, buf *out);

#endif
