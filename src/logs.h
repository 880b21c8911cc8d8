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

#include "buf.h"
#include "gateway.h"
#include "logstore.h"
#include "registry.h"

#define LOGS_MAX_LINE (16 * 1024) /* longer lines are split */

typedef struct logs logs;

enum logs_format { LOGS_TEXT = 0, LOGS_NDJSON = 1 };

/* What one worker writes: its partial lines and who is printing now. */
typedef struct log_source {
    logs *lg;
    char function[FN_NAME_MAX + 1];
    int64_t version;
    char request_id[REQID_LEN + 1]; /* "" outside a request */
    buf partial[2];                 /* stdout, stderr */
    bool muted;                     /* its function was deleted: output is dropped */
} log_source;

/* Creates the collector over `store` (borrowed; must outlive it). */
int logs_open(logstore *store, logs **out);
/* Ends every follower and frees the collector. Accepts NULL. */
void logs_close(logs *lg);

void logs_source_init(log_source *src, logs *lg, const char *function, int64_t version);
/* Attributes what follows to `request_id` ("" for none). */
void logs_source_set_request(log_source *src, const char *request_id);
/* Feeds raw bytes of `stream` (LOG_STDOUT/LOG_STDERR); complete lines are
 * stored and sent to followers at once. */
void logs_source_feed(log_source *src, int stream, const char *data, size_t n);
/* Emits any unterminated line as a line of its own. */
void logs_source_flush(log_source *src);
/* Drops everything the source is fed from now on, and its partial lines:
 * its function was deleted, and a later function of the same name must
 * never show this worker's output as its own. */
void logs_source_mute(log_source *src);
void logs_source_release(log_source *src);

/* Adds one line that Hearth itself records for a function (e.g. why a
 * worker died), on stderr, attributed to `request_id`. */
void logs_note(logs *lg, const char *function, int64_t version, const char *request_id,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answers `req` with the lines of `function` matching `q`, then keeps the
 * response open and streams new matching lines until the client leaves. */
void logs_follow(logs *lg, gw_request *req, const char *function, const log_query *q,
                 enum logs_format format);

/* Ends the followers of one function (it was deleted), or of all. */
void logs_end_function(logs *lg, const char *function);
void logs_end_all(logs *lg);

/* Formats `rec` in `format` and appends it to `out`. Returns 0 or -E2BIG /
 * -ENOMEM. */
int logs_format(const log_record *rec, enum logs_format format, buf *out);

#endif
