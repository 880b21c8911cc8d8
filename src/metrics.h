/*
 * metrics.h — counters and histograms, rendered as Prometheus text
 * (exposition format 0.0.4) for GET /metrics.
 *
 * Per-function series live in a metrics_fn that the function's pool owns
 * and records into with the inline calls below: increments and one bucket
 * search, no allocation, no lock (everything runs on the loop thread), no
 * formatting. Daemon-wide counters live in one `metrics`. A scrape gathers
 * a view of every pool (metrics_scrape_add) and metrics_render writes the
 * text by walking one table of metric families (metrics.c).
 */
#ifndef HEARTH_METRICS_H
#define HEARTH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The exposition format's Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Ceiling of one rendered scrape: about 4 KiB per function, so 10,000
 * functions called since the start fit with room to spare. */
#define METRICS_MAX_TEXT (128u * 1024 * 1024)

/* Histogram buckets (seconds): 1 ms … 15 min, the longest timeout_ms.
 * Their bounds are listed once, in metrics.c. */
#define METRICS_BUCKETS 18

/* Distinct (trigger, status) pairs counted exactly per function; past
 * them a new status is counted under its class ("1xx" … "5xx"), so a
 * function answering many statuses cannot make the table grow. */
#define METRICS_CODES_MAX 16

/* Per-function events counted as they happen (rows of the family table). */
enum metrics_event {
    METRICS_COLD_STARTS,   /* calls that waited for a worker started after they came */
    METRICS_THROTTLED_429, /* refused: the queue was full */
    METRICS_THROTTLED_503, /* refused: no worker within queue_timeout_ms, or overloaded */
    METRICS_TIMEOUTS,      /* 504: timeout_ms or init_timeout_ms passed */
    METRICS_OOM_KILLS,     /* workers the kernel's OOM killer ended */
    METRICS_VIOLATIONS,    /* workers seccomp killed (SIGSYS) */
    METRICS_EVENT_COUNT
};

/* Triggers a call can come by; "other" for any not listed in metrics.c. */
enum metrics_trigger {
    METRICS_TRIGGER_INVOKE,
    METRICS_TRIGGER_HTTP,
    METRICS_TRIGGER_ASYNC, /* an attempt of an asynchronous invocation */
    METRICS_TRIGGER_OTHER,
    METRICS_TRIGGER_COUNT
};

typedef struct metrics_hist {
    uint64_t counts[METRICS_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t sum_us;
} metrics_hist;

typedef struct metrics_code {
    uint16_t status; /* 100-599 */
    uint8_t trigger; /* enum metrics_trigger */
    uint64_t n;
} metrics_code;

/* One function's series. Plain data: zero-initialise it (calloc). */
typedef struct metrics_fn {
    uint64_t events[METRICS_EVENT_COUNT];
    uint64_t warm_starts;  /* calls served by a worker already up (shown by the API) */
    metrics_hist duration; /* arrival at the scheduler to the answer */
    metrics_hist init;     /* a worker's spawn to its READY frame */
    metrics_code codes[METRICS_CODES_MAX];
    unsigned ncodes;
    uint64_t classes[METRICS_TRIGGER_COUNT][5]; /* [trigger][status / 100 - 1], past the slots */
} metrics_fn;

/* Upper bounds of the buckets in microseconds (metrics.c). */
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS];

static inline void metrics_hist_observe(metrics_hist *h, uint64_t us)
{
    unsigned i = 0;
    while (i < METRICS_BUCKETS && us > metrics_bucket_us[i])
        i++;
    h->counts[i]++;
    h->sum_us += us;
}

static inline void metrics_fn_event(metrics_fn *m, enum metrics_event ev)
{
    m->events[ev]++;
}

/* The trigger's index; `trigger` is one of the scheduler's static names. */
enum metrics_trigger metrics_trigger_of(const char *trigger);

/* A call of the function ended with `status`; `code` is the error code
 * (NULL for an answer from the function), `us` its time since arrival. */
void metrics_fn_call_done(metrics_fn *m, enum metrics_trigger trigger, unsigned status,
                          const char *code, uint64_t us);

/* --- daemon-wide --- */

typedef struct metrics metrics;

/* A new set of daemon counters; `version` is copied (build info). Returns
 * NULL on ENOMEM. Freed with metrics_free (accepts NULL). */
metrics *metrics_new(const char *version);
void metrics_free(metrics *m);

/* A worker start was asked of the sandbox: `ok` false when it failed.
 * Accepts NULL (no metrics). */
void metrics_spawned(metrics *m, bool ok);

/* --- a scrape --- */

/* One function at scrape time. `name` and `m` are borrowed for the scrape. */
typedef struct metrics_fn_view {
    const char *name;
    const metrics_fn *m;
    unsigned starting, idle, busy, queued;
} metrics_fn_view;

/* One runtime's pool of pre-built sandboxes at scrape time. */
typedef struct metrics_prebuilt_view {
    const char *runtime; /* borrowed for the scrape */
    const char *network; /* "isolated" or "egress" */
    uint64_t ready, starting, target, claims, misses, evictions;
} metrics_prebuilt_view;

#define METRICS_MAX_RUNTIMES 16
#define METRICS_MAX_POOLS    (2 * METRICS_MAX_RUNTIMES) /* an isolated and an egress pool each */

typedef struct metrics_scrape {
    metrics_fn_view *fns;
    size_t nfns, cap;
    uint64_t open_connections;
    metrics_prebuilt_view prebuilt[METRICS_MAX_POOLS];
    size_t nprebuilt;
} metrics_scrape;

/* Adds a copy of `v` to the scrape. Returns 0 or -ENOMEM. */
int metrics_scrape_add(metrics_scrape *sc, const metrics_fn_view *v);
/* Frees the list (not what the views point to). */
void metrics_scrape_release(metrics_scrape *sc);

/* Appends the whole exposition to `out`, functions in name order (the
 * list is sorted in place). Returns 0, -E2BIG past out's ceiling, or
 * -ENOMEM; on error `out` holds a partial text to be discarded. */
int metrics_render(const metrics *m, metrics_scrape *sc, buf *out);

/* Appends `s` escaped as a label value (\\, \", \n) to `out`. Returns 0
 * or buf_append's error. */
int metrics_escape_label(buf *out, const char *s);

#endif
