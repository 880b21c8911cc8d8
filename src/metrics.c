/*
 * metrics.c — Hearth's numbers as Prometheus text.
 *
 * One table, `families`, lists every metric family: its name, type, help
 * and labels, and where its samples come from (the daemon's values, or
 * each function's metrics_fn and pool state). metrics_render walks it; a
 * new metric is a new row. Per-function series belong to the pools
 * (sched.c owns one metrics_fn per pool and records into it), so a
 * deleted function's series go with its pool and recording never looks a
 * name up. A function appears once it has a pool, that is once it was
 * called (or pre-warmed) since the daemon started; a histogram once it
 * has an observation.
 *
 * The text is built with plain appends (no printf, no floating point):
 * times are kept in whole micro- or milliseconds and printed as decimal
 * seconds, so a scrape of 10,000 functions stays a few tens of ms.
 *
 * Owns: the family table, the bucket bounds, the daemon-wide counters,
 * the text format (escaping included). Must never: speak HTTP (api.c
 * sends the text), look at scheduler internals (it gets views), or
 * allocate, lock or format on the recording calls.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "timefmt.h"

/* --- buckets and triggers --- */

const uint64_t metrics_bucket_us[METRICS_BUCKETS] = {
    1000,    2500,    5000,    10000,    25000,    50000,    100000,    250000,    500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 120000000, 300000000, 900000000,
};

/* The same bounds as `le` label values, then +Inf. */
static const char *const bucket_le[METRICS_BUCKETS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",  "1",
    "2.5",   "5",      "10",    "30",   "60",    "120",  "300", "900",  "+Inf",
};

static const char *const trigger_names[METRICS_TRIGGER_COUNT] = {
    [METRICS_TRIGGER_INVOKE] = "invoke",
    [METRICS_TRIGGER_HTTP] = "http",
    [METRICS_TRIGGER_ASYNC] = "async",
    [METRICS_TRIGGER_OTHER] = "other",
};

enum metrics_trigger metrics_trigger_of(const char *trigger)
{
    for (unsigned i = 0; i < METRICS_TRIGGER_OTHER; i++)
        if (trigger == trigger_names[i] || strcmp(trigger, trigger_names[i]) == 0)
            return (enum metrics_trigger)i;
    return METRICS_TRIGGER_OTHER;
}

/* --- recording --- */

/* Error codes that are events of their own besides their status. */
static const struct {
    const char *code;
    enum metrics_event ev;
} error_events[] = {
    {"queue_full", METRICS_THROTTLED_429}, {"queue_timeout", METRICS_THROTTLED_503},
    {"overloaded", METRICS_THROTTLED_503}, {"timeout", METRICS_TIMEOUTS},
    {"init_timeout", METRICS_TIMEOUTS},
};

/* Counts `status` for `trigger`: in its exact slot (found or added), or
 * under its class once every slot is taken. */
static void count_status(metrics_fn *m, enum metrics_trigger trigger, unsigned status)
{
    for (unsigned i = 0; i < m->ncodes; i++) {
        if (m->codes[i].status == status && m->codes[i].trigger == trigger) {
            m->codes[i].n++;
            return;
        }
    }
    if (m->ncodes < METRICS_CODES_MAX) {
        m->codes[m->ncodes++] =
            (metrics_code){.status = (uint16_t)status, .trigger = trigger, .n = 1};
        return;
    }
    unsigned cls = status >= 100 && status < 600 ? status / 100 : 5;
    m->classes[trigger][cls - 1]++;
}

void metrics_fn_call_done(metrics_fn *m, enum metrics_trigger trigger, unsigned status,
                          const char *code, uint64_t us)
{
    metrics_hist_observe(&m->duration, us);
    count_status(m, trigger, status);
    if (!code)
        return;
    for (size_t i = 0; i < sizeof error_events / sizeof *error_events; i++) {
        if (strcmp(code, error_events[i].code) == 0) {
            m->events[error_events[i].ev]++;
            return;
        }
    }
}

/* --- the daemon --- */

struct metrics {
    char version[64];
    int64_t start_ms;  /* wall clock, for hearth_start_time_seconds */
    uint64_t start_ns; /* monotonic, for hearth_uptime_seconds */
    uint64_t spawns, spawn_failures;
};

metrics *metrics_new(const char *version)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->version, sizeof m->version, "%s", version);
    m->start_ms = timefmt_now_ms();
    m->start_ns = uv_hrtime();
    return m;
}

void metrics_free(metrics *m)
{
    free(m);
}

void metrics_spawned(metrics *m, bool ok)
{
    if (!m)
        return;
    if (ok)
        m->spawns++;
    else
        m->spawn_failures++;
}

/* --- the family table --- */

enum family_kind {
    FK_BUILD_INFO, /* 1, labelled with the version */
    FK_DAEMON,     /* one sample: daemon value `src` */
    FK_FN,         /* per function: one sample per entry of `series` */
    FK_FN_CODES,   /* per function: one sample per (status, trigger) seen */
    FK_FN_HIST,    /* per function: histogram `src`, once it has an observation */
    FK_RUNTIME,    /* per runtime with a pre-built pool: field `src` of its view */
};

enum unit { U_COUNT, U_MICROS, U_MILLIS }; /* the last two print as seconds */

/* Daemon values, read at scrape time. */
enum { D_START_MS, D_UPTIME_US, D_CONNECTIONS, D_SPAWNS, D_SPAWN_FAILURES, D_RSS, D_COUNT };
#define D_UNKNOWN UINT64_MAX /* a value that could not be read: no sample */

/* Per-function sources: the events, then the pool's state. */
enum { S_STARTING = METRICS_EVENT_COUNT, S_IDLE, S_BUSY, S_QUEUED };
enum { H_DURATION, H_INIT };
/* Fields of metrics_prebuilt_view. */
enum { P_READY, P_STARTING, P_TARGET, P_CLAIMS, P_MISSES, P_EVICTIONS };

struct series {
    const char *value; /* of the family's extra label (NULL: it has none) */
    int src;
};

struct family {
    const char *name, *type, *help;
    const char *label; /* FK_FN: the label besides `function`, or NULL */
    enum family_kind kind;
    int src; /* FK_DAEMON: a D_ value; FK_FN_HIST: an H_ histogram */
    enum unit unit;
    const struct series *series; /* FK_FN */
    size_t nseries;
};

#define ONE(src) (const struct series[]){{NULL, src}}, 1
#define SERIES(...)                                                                                \
    (const struct series[]){__VA_ARGS__},                                                          \
        sizeof((const struct series[]){__VA_ARGS__}) / sizeof(struct series)

static const struct family families[] = {
    {"hearth_build_info", "gauge", "Always 1; the version label says which hearthd this is.", NULL,
     FK_BUILD_INFO, 0, U_COUNT, NULL, 0},
    {"hearth_start_time_seconds", "gauge", "When hearthd started, in seconds since the Unix epoch.",
     NULL, FK_DAEMON, D_START_MS, U_MILLIS, NULL, 0},
    {"hearth_uptime_seconds", "gauge", "Seconds since hearthd started (monotonic clock).", NULL,
     FK_DAEMON, D_UPTIME_US, U_MICROS, NULL, 0},
    {"hearth_open_connections", "gauge", "HTTP connections open now.", NULL, FK_DAEMON,
     D_CONNECTIONS, U_COUNT, NULL, 0},
    {"hearth_spawns_total", "counter", "Workers started in a sandbox.", NULL, FK_DAEMON, D_SPAWNS,
     U_COUNT, NULL, 0},
    {"hearth_spawn_failures_total", "counter",
     "Worker starts that failed before the runtime ran (sandbox or uid range refused).", NULL,
     FK_DAEMON, D_SPAWN_FAILURES, U_COUNT, NULL, 0},
    {"hearth_resident_memory_bytes", "gauge", "Resident memory of the hearthd process.", NULL,
     FK_DAEMON, D_RSS, U_COUNT, NULL, 0},
    {"hearth_prebuilt_ready", "gauge",
     "Pre-built sandboxes ready to be claimed, by runtime and network.", NULL, FK_RUNTIME, P_READY,
     U_COUNT, NULL, 0},
    {"hearth_prebuilt_starting", "gauge",
     "Pre-built sandboxes being built, by runtime and network.", NULL, FK_RUNTIME, P_STARTING,
     U_COUNT, NULL, 0},
    {"hearth_prebuilt_target", "gauge", "How many pre-built sandboxes the pool aims to hold.", NULL,
     FK_RUNTIME, P_TARGET, U_COUNT, NULL, 0},
    {"hearth_prebuilt_claims_total", "counter", "Cold starts served by a pre-built sandbox.", NULL,
     FK_RUNTIME, P_CLAIMS, U_COUNT, NULL, 0},
    {"hearth_prebuilt_misses_total", "counter",
     "Cold starts that found no pre-built sandbox ready and built one.", NULL, FK_RUNTIME, P_MISSES,
     U_COUNT, NULL, 0},
    {"hearth_prebuilt_evictions_total", "counter",
     "Pre-built sandboxes stopped to make room for a function's worker.", NULL, FK_RUNTIME,
     P_EVICTIONS, U_COUNT, NULL, 0},
    {"hearth_invocations_total", "counter",
     "Calls of a function that reached its pool, by HTTP status and trigger.", NULL, FK_FN_CODES, 0,
     U_COUNT, NULL, 0},
    {"hearth_invocation_duration_seconds", "histogram",
     "Time from a call's arrival at the scheduler to its answer, queueing included.", NULL,
     FK_FN_HIST, H_DURATION, U_MICROS, NULL, 0},
    {"hearth_cold_starts_total", "counter",
     "Calls that waited for a worker started after they arrived.", NULL, FK_FN, 0, U_COUNT,
     ONE(METRICS_COLD_STARTS)},
    {"hearth_init_duration_seconds", "histogram",
     "Time from a worker's spawn to its runtime being ready (a cold start's cost).", NULL,
     FK_FN_HIST, H_INIT, U_MICROS, NULL, 0},
    {"hearth_queue_depth", "gauge", "Calls waiting for a worker now.", NULL, FK_FN, 0, U_COUNT,
     ONE(S_QUEUED)},
    {"hearth_workers", "gauge", "Workers of the current version, by state.", "state", FK_FN, 0,
     U_COUNT, SERIES({"starting", S_STARTING}, {"idle", S_IDLE}, {"busy", S_BUSY})},
    {"hearth_throttled_total", "counter",
     "Calls refused for want of capacity: 429 queue full, 503 queue timeout or overloaded.", "code",
     FK_FN, 0, U_COUNT, SERIES({"429", METRICS_THROTTLED_429}, {"503", METRICS_THROTTLED_503})},
    {"hearth_timeouts_total", "counter",
     "Calls answered 504: timeout_ms or init_timeout_ms passed.", NULL, FK_FN, 0, U_COUNT,
     ONE(METRICS_TIMEOUTS)},
    {"hearth_oom_kills_total", "counter", "Workers killed for using more than their memory_mb.",
     NULL, FK_FN, 0, U_COUNT, ONE(METRICS_OOM_KILLS)},
    {"hearth_sandbox_violations_total", "counter",
     "Workers killed for a forbidden system call (seccomp).", NULL, FK_FN, 0, U_COUNT,
     ONE(METRICS_VIOLATIONS)},
};

/* --- writing --- */

/* Text is staged in `stage` and appended to the buffer a few KiB at a
 * time: one buf_append per piece would cost more than the formatting. */
struct out {
    buf *b;
    int err; /* the first append that failed */
    size_t n;
    char stage[4096];
};

static void flush(struct out *o)
{
    if (!o->err && o->n)
        o->err = buf_append(o->b, o->stage, o->n);
    o->n = 0;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (n > sizeof o->stage - o->n) {
        flush(o);
        if (n > sizeof o->stage) {
            if (!o->err)
                o->err = buf_append(o->b, s, n);
            return;
        }
    }
    memcpy(o->stage + o->n, s, n);
    o->n += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, p, (size_t)(tmp + sizeof tmp - p));
}

/* `v` in the unit's sub-second steps, as decimal seconds. */
static void put_value(struct out *o, uint64_t v, enum unit unit)
{
    if (unit == U_COUNT) {
        put_u64(o, v);
        return;
    }
    uint64_t per = unit == U_MICROS ? 1000000 : 1000;
    put_u64(o, v / per);
    char frac[8];
    unsigned digits = unit == U_MICROS ? 6 : 3;
    uint64_t f = v % per;
    for (unsigned i = digits; i-- > 0; f /= 10)
        frac[i] = (char)('0' + f % 10);
    put(o, ".", 1);
    put(o, frac, digits);
}

static void put_label_value(struct out *o, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        put(o, run, (size_t)(s - run));
        put(o, esc, 2);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

int metrics_escape_label(buf *out, const char *s)
{
    struct out o = {.b = out};
    put_label_value(&o, s);
    flush(&o);
    return o.err;
}

static void put_header(struct out *o, const struct family *f)
{
    puts_(o, "# HELP ");
    puts_(o, f->name);
    put(o, " ", 1);
    puts_(o, f->help); /* the table's own text: no '\\' or newline to escape */
    puts_(o, "\n# TYPE ");
    puts_(o, f->name);
    put(o, " ", 1);
    puts_(o, f->type);
    put(o, "\n", 1);
}

/* `name{function="fn"` — the caller adds more labels and the closing brace. */
static void put_fn_start(struct out *o, const char *name, const char *suffix, const char *fn)
{
    puts_(o, name);
    puts_(o, suffix);
    puts_(o, "{function=\"");
    put_label_value(o, fn);
    put(o, "\"", 1);
}

static void put_sample_end(struct out *o, uint64_t v, enum unit unit)
{
    put(o, "} ", 2);
    put_value(o, v, unit);
    put(o, "\n", 1);
}

static uint64_t fn_value(const metrics_fn_view *v, int src)
{
    switch (src) {
    case S_STARTING:
        return v->starting;
    case S_IDLE:
        return v->idle;
    case S_BUSY:
        return v->busy;
    case S_QUEUED:
        return v->queued;
    default:
        return v->m->events[src];
    }
}

static void render_fn(struct out *o, const struct family *f, const metrics_fn_view *v)
{
    for (size_t i = 0; i < f->nseries; i++) {
        put_fn_start(o, f->name, "", v->name);
        if (f->label) {
            put(o, ",", 1);
            puts_(o, f->label);
            puts_(o, "=\"");
            put_label_value(o, f->series[i].value);
            put(o, "\"", 1);
        }
        put_sample_end(o, fn_value(v, f->series[i].src), f->unit);
    }
}

/* One invocations sample: code is `status`, or the class `cls` when set. */
static void put_code_sample(struct out *o, const struct family *f, const metrics_fn_view *v,
                            unsigned status, const char *cls, unsigned trigger, uint64_t n)
{
    put_fn_start(o, f->name, "", v->name);
    puts_(o, ",code=\"");
    if (cls)
        puts_(o, cls);
    else
        put_u64(o, status);
    puts_(o, "\",trigger=\"");
    puts_(o, trigger_names[trigger < METRICS_TRIGGER_COUNT ? trigger : METRICS_TRIGGER_OTHER]);
    put(o, "\"", 1);
    put_sample_end(o, n, U_COUNT);
}

static void render_codes(struct out *o, const struct family *f, const metrics_fn_view *v)
{
    static const char *const classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (unsigned i = 0; i < v->m->ncodes; i++)
        put_code_sample(o, f, v, v->m->codes[i].status, NULL, v->m->codes[i].trigger,
                        v->m->codes[i].n);
    for (unsigned t = 0; t < METRICS_TRIGGER_COUNT; t++)
        for (unsigned c = 0; c < 5; c++)
            if (v->m->classes[t][c])
                put_code_sample(o, f, v, 0, classes[c], t, v->m->classes[t][c]);
}

static void render_hist(struct out *o, const struct family *f, const metrics_fn_view *v)
{
    const metrics_hist *h = f->src == H_INIT ? &v->m->init : &v->m->duration;
    uint64_t total = 0;
    for (unsigned i = 0; i <= METRICS_BUCKETS; i++)
        total += h->counts[i];
    if (!total)
        return;
    uint64_t cum = 0;
    for (unsigned i = 0; i <= METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        put_fn_start(o, f->name, "_bucket", v->name);
        puts_(o, ",le=\"");
        puts_(o, bucket_le[i]);
        put(o, "\"", 1);
        put_sample_end(o, cum, U_COUNT);
    }
    put_fn_start(o, f->name, "_sum", v->name);
    put_sample_end(o, h->sum_us, U_MICROS);
    put_fn_start(o, f->name, "_count", v->name);
    put_sample_end(o, total, U_COUNT);
}

/* Resident bytes of this process, from /proc/self/statm. */
static uint64_t resident_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return D_UNKNOWN;
    char text[128];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return D_UNKNOWN;
    text[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2)
        return D_UNKNOWN;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void render_daemon(struct out *o, const struct family *f, const metrics *m,
                          const uint64_t *dv)
{
    if (f->kind == FK_BUILD_INFO) {
        puts_(o, f->name);
        puts_(o, "{version=\"");
        put_label_value(o, m->version);
        puts_(o, "\"} 1\n");
        return;
    }
    if (dv[f->src] == D_UNKNOWN)
        return;
    puts_(o, f->name);
    put(o, " ", 1);
    put_value(o, dv[f->src], f->unit);
    put(o, "\n", 1);
}

static void render_runtimes(struct out *o, const struct family *f, const metrics_scrape *sc)
{
    for (size_t i = 0; i < sc->nprebuilt; i++) {
        const metrics_prebuilt_view *v = &sc->prebuilt[i];
        const uint64_t fields[] = {
            [P_READY] = v->ready,   [P_STARTING] = v->starting, [P_TARGET] = v->target,
            [P_CLAIMS] = v->claims, [P_MISSES] = v->misses,     [P_EVICTIONS] = v->evictions};
        puts_(o, f->name);
        puts_(o, "{runtime=\"");
        put_label_value(o, v->runtime);
        puts_(o, "\",network=\"");
        put_label_value(o, v->network);
        puts_(o, "\"} ");
        put_value(o, fields[f->src], f->unit);
        put(o, "\n", 1);
    }
}

/* How a per-function family writes one function's samples. */
static void (*const fn_renderers[])(struct out *, const struct family *,
                                    const metrics_fn_view *) = {
    [FK_FN] = render_fn,
    [FK_FN_CODES] = render_codes,
    [FK_FN_HIST] = render_hist,
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const metrics_fn_view *)a)->name, ((const metrics_fn_view *)b)->name);
}

int metrics_render(const metrics *m, metrics_scrape *sc, buf *out)
{
    if (sc->nfns > 1)
        qsort(sc->fns, sc->nfns, sizeof *sc->fns, by_name);
    uint64_t dv[D_COUNT] = {
        [D_START_MS] = (uint64_t)m->start_ms,   [D_UPTIME_US] = (uv_hrtime() - m->start_ns) / 1000,
        [D_CONNECTIONS] = sc->open_connections, [D_SPAWNS] = m->spawns,
        [D_SPAWN_FAILURES] = m->spawn_failures, [D_RSS] = resident_bytes(),
    };
    struct out o = {.b = out};
    for (size_t i = 0; i < sizeof families / sizeof *families && !o.err; i++) {
        const struct family *f = &families[i];
        put_header(&o, f);
        if (f->kind == FK_BUILD_INFO || f->kind == FK_DAEMON) {
            render_daemon(&o, f, m, dv);
            continue;
        }
        if (f->kind == FK_RUNTIME) {
            render_runtimes(&o, f, sc);
            continue;
        }
        for (size_t j = 0; j < sc->nfns && !o.err; j++)
            fn_renderers[f->kind](&o, f, &sc->fns[j]);
    }
    flush(&o);
    return o.err;
}

/* --- scrapes --- */

int metrics_scrape_add(metrics_scrape *sc, const metrics_fn_view *v)
{
    if (sc->nfns == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        metrics_fn_view *p = realloc(sc->fns, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        sc->fns = p;
        sc->cap = cap;
    }
    sc->fns[sc->nfns++] = *v;
    return 0;
}

void metrics_scrape_release(metrics_scrape *sc)
{
    free(sc->fns);
    sc->fns = NULL;
    sc->nfns = sc->cap = 0;
}
