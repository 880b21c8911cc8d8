/*
 * logstore.h — durable per-function log lines with bounded retention.
 * Each function's lines live in append-only segment files of NDJSON under
 * <dir>/<function>/; the oldest segment is deleted once the function's total
 * exceeds its retention. Owned by the loop thread; not thread-safe.
 */
#ifndef HEARTH_LOGSTORE_H
#define HEARTH_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct logstore logstore;

enum log_stream { LOG_STDOUT = 1, LOG_STDERR = 2 };

/* One line. Strings are borrowed for the duration of the call. */
typedef struct log_record {
    int64_t time_ms;        /* unix epoch milliseconds */
    int stream;             /* enum log_stream */
    int64_t version;        /* function version that printed it */
    const char *request_id; /* "" when printed outside a request */
    const char *msg;        /* the line without its newline; may hold any bytes */
    size_t msg_len;
} log_record;

/* The longest line a segment holds; a longer one on disk is corrupt and
 * skipped (by queries, and counted by hearthd check). */
#define LOGSTORE_LINE_MAX (1024 * 1024)

/* The most lines a query may ask for by `tail` (the API's ceiling too). */
#define LOGSTORE_TAIL_MAX 10000

typedef struct log_query {
    size_t tail;      /* last N matching lines (at most LOGSTORE_TAIL_MAX); 0 = all retained */
    int64_t since_ms; /* only lines with time_ms >= since_ms; 0 = no bound */
    const char *request_id; /* only this request; NULL = any */
} log_query;

/* Called oldest to newest. Return non-zero to stop early. */
typedef int (*log_visit_fn)(const log_record *rec, void *ud);

/* Opens (creating) the store rooted at `dir`. `retention_bytes` bounds each
 * function's stored bytes. Returns 0 or a negative errno; *out owned by caller,
 * freed with logstore_close(). */
int logstore_open(const char *dir, size_t retention_bytes, logstore **out);

/* A new retention (SIGHUP): each function's oldest lines go at its next
 * write when it now holds more. */
void logstore_set_retention(logstore *ls, size_t retention_bytes);

/* Flushes every buffer and frees the store. Accepts NULL. */
void logstore_close(logstore *ls);

/* Appends one line for `function` (a validated name). Buffered: visible to
 * logstore_query at once, on disk after logstore_flush or when the buffer
 * fills. Returns 0 or a negative errno. */
int logstore_append(logstore *ls, const char *function, const log_record *rec);

/* Writes out buffered lines of every function. Returns 0 or first error. */
int logstore_flush(logstore *ls);

/* Visits the lines of `function` matching `q`. An unknown function visits
 * nothing and returns 0. Returns 0 or a negative errno. */
int logstore_query(logstore *ls, const char *function, const log_query *q, log_visit_fn visit,
                   void *ud);

/* Deletes every line of `function`. Returns 0 or a negative errno. */
int logstore_remove(logstore *ls, const char *function);

/* Formats `rec` as one text line "2026-11-27T02:53:49.123Z <request_id|-> v<ver> <stream>
 * <msg>\n" into `out` (at most `cap` bytes, truncated msg keeps the newline).
 * Returns the length written. */
size_t logstore_format_text(const log_record *rec, char *out, size_t cap);

/* Formats `rec` as one NDJSON line {"time":"…","time_ms":…,"stream":"stdout",
 * "version":N,"request_id":"…","message":"…"}\n. Invalid UTF-8 in msg is
 * replaced with U+FFFD. Returns a malloc'd string (caller frees) or NULL. */
char *logstore_format_ndjson(const log_record *rec, size_t *len);

#endif
