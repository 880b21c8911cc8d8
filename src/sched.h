/*
 * sched.h — the scheduler: per-function pools of workers, the queue of
 * calls waiting for one, cold starts, deadlines, draining on update,
 * idle expiry. Everything runs on the loop thread.
 */
#ifndef HEARTH_SCHED_H
#define HEARTH_SCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <uv.h>

#include "logs.h"
#include "metrics.h"
#include "registry.h"
#include "reqid.h"
#include "sandbox_cgroup.h"
#include "sandbox_seccomp.h"
#include "spawner.h"

typedef struct sched sched;
struct spawner;
struct violations;

typedef struct sched_opts {
    uv_loop_t *loop;
    registry *reg;
    logs *lg;
    const char *code_root; /* <data>/code: versions live at <code_root>/<name>/<version> */
    uid_t uid;             /* workers' identity when we are root and no range is set */
    gid_t gid;
    uid_t uid_base;                /* as root: each worker runs as uid = gid = base + a free slot */
    unsigned uid_count;            /* size of that range (0 = uid/gid for every worker) */
    unsigned max_workers;          /* live workers across all functions */
    unsigned max_starting;         /* of those, starting at once (at least 1) */
    uint64_t memory_budget_mb;     /* sum of live workers' memory_mb (0 = no limit) */
    unsigned max_queue;            /* calls waiting beyond capacity, for functions not choosing */
    uint32_t max_response;         /* response body ceiling */
    uint64_t keep_alive_ms;        /* idle time before a worker stops, for functions not choosing */
    uint64_t adaptive_bin_ms;      /* "keep_alive": "adaptive": histogram bin width (0 = 60 s) */
    bool isolate;                  /* namespaces + minimal root for every worker */
    bool egress;                   /* "network": "egress" works here: pools for it too */
    bool egress_default;           /* --default-network egress: keep those pools filled */
    sandbox_cgroups *cgroups;      /* memory, pids, cpu limits per worker (NULL = none) */
    const spawner_limits *limits;  /* the policy's ceilings: what workers are started with */
    const sandbox_filter *filter;  /* seccomp allowlist for workers (NULL = none) */
    struct violations *violations; /* names seccomp kills in function logs (may be NULL) */
    struct spawner *spawner;       /* starts sandboxes, checked against the policy */
    metrics *metrics;              /* daemon-wide counters: spawns (may be NULL) */
    unsigned prebuilt_min;         /* pre-built sandboxes kept per runtime, at least */
    unsigned prebuilt_max;         /* and at most (0 = none: every cold start builds one) */
    uint64_t prebuilt_mb;          /* what one counts against --memory-budget until claimed */
} sched_opts;

/* How a call ended: either an answer from the function (code == NULL) or
 * an error to send as {"error":{…}}. */
typedef struct sched_result {
    unsigned status;
    const char *code;     /* snake_case error code, or NULL */
    char message[1024];   /* for errors */
    char error_type[128]; /* function_error: the exception type */
    char *body;           /* the function's answer; take it by setting NULL */
    size_t len;
    char content_type[256];
    json_t *headers;        /* http trigger: extra headers (borrowed) */
    bool cold;              /* this call waited for a worker started after it came */
    unsigned retry_after_s; /* 429: when to try again (Retry-After), 0 = no header */
    int64_t version;        /* the version that served it (0 if none) */
} sched_result;

typedef struct sched_call sched_call;
typedef void (*sched_done_fn)(sched_call *c, sched_result *res, void *ud);

/* A call, filled in by the caller before sched_invoke. */
struct sched_call {
    char function[FN_NAME_MAX + 1];
    int64_t version; /* 0 = the function's current version; else that kept version */
    char request_id[REQID_LEN + 1];
    const char *trigger; /* "invoke", "http" or "async" (static strings) */
    /* An asynchronous invocation's attempt: waits behind every synchronous
     * call of its pool and is never refused for a full queue (the event core
     * bounds how many it sends). */
    bool background;
    char invocation_id[REQID_LEN + 1]; /* "" for synchronous calls */
    unsigned attempt;                  /* 1 for the first */
    char content_type[256];            /* "" when the request had none */
    json_t *http;                      /* http trigger: owned by the call */
    const void *body;                  /* borrowed until done */
    size_t body_len;
    sched_done_fn done;
    void *ud;
    struct sched_call_impl *impl;
};

int sched_open(const sched_opts *opts, sched **out);
/* Frees the scheduler; sched_shutdown first and wait for sched_live == 0. */
void sched_close(sched *s);

/* A new call, or NULL on ENOMEM. Freed by the scheduler after `done`. */
sched_call *sched_call_new(void);

/* Runs `c`. `done` is called exactly once, possibly before this returns. */
void sched_invoke(sched *s, sched_call *c);

/* A new version of cfg->name is current (a deploy or a rollback): new
 * calls go to it, idle workers of other versions stop unless an alias
 * still names their version (they move to that version's own pool), busy
 * ones stop when they finish. Idle workers of the new version in its own
 * pool (a rollback to a version a canary kept warm) join the function's. */
void sched_update(sched *s, const fn_config *cfg);

/* The version a call of `name` with qualifier `qual` runs (qualifier.h's
 * qualifier_resolve on the scheduler's registry): 0, -ENOENT, -EIO. */
int sched_resolve(sched *s, const char *name, const char *qual, int64_t *version);

/* The aliases of `name` changed: idle workers of versions that are neither
 * current nor named by an alias stop (busy ones at their keep-alive). */
void sched_versions_changed(sched *s, const char *name);

/* The secret `secret` has a new value: every function that lists it
 * replaces its workers as on a new version (idle ones stop now, busy ones
 * after their call), so the next call sees the new value. */
void sched_secret_changed(sched *s, const char *secret);

/* A version of `name` was pruned: its own pool ends (waiting calls 404). */
void sched_version_pruned(sched *s, const char *name, int64_t version);

/* The function is gone: queued calls get 404, calls in flight 502. */
void sched_remove(sched *s, const char *name);

typedef struct sched_pool_state {
    unsigned starting, idle, busy, queued; /* workers of the current version; waiting calls */
    uint64_t cold_starts, warm_starts; /* calls since the daemon started (see sched_result.cold) */
    /* "keep_alive": "adaptive": the policy's last decision (keepalive.h) */
    const char *adaptive_reason; /* NULL when the function is not adaptive or not called yet */
    uint64_t prewarm_after_ms, window_ms;
} sched_pool_state;
void sched_pool_state_of(sched *s, const char *name, sched_pool_state *out);

/* Visits every function with a pool: called or pre-warmed since the start,
 * and not deleted. `name`, `m` and `st` are borrowed for the call; the
 * visitor must not call into the scheduler. A non-zero return stops the
 * walk and is returned. */
typedef int (*sched_pool_visit_fn)(const char *name, const metrics_fn *m,
                                   const sched_pool_state *st, void *ud);
int sched_each_pool(sched *s, sched_pool_visit_fn fn, void *ud);

/* A runtime's pool of pre-built sandboxes, for /metrics. */
typedef struct sched_prebuilt_state {
    bool egress; /* the pool of egress sandboxes (else isolated ones) */
    unsigned ready, starting, target;
    uint64_t claims, misses, evictions; /* since the daemon started */
} sched_prebuilt_state;
typedef int (*sched_prebuilt_visit_fn)(const char *runtime, const sched_prebuilt_state *st,
                                       void *ud);
/* Visits each runtime's pool (none when pre-building is off). */
int sched_each_prebuilt(sched *s, sched_prebuilt_visit_fn fn, void *ud);

/* The limits a reload may change (SIGHUP); each as in sched_opts. They
 * apply from the next decision: nothing running is stopped for them. */
typedef struct sched_limits {
    unsigned max_workers;
    unsigned max_starting;
    uint64_t memory_budget_mb;
    unsigned max_queue;
    uint64_t keep_alive_ms;
} sched_limits;
void sched_set_limits(sched *s, const sched_limits *lim);

/* The current config of `name` as the scheduler holds it (read from the
 * registry on first use, then kept up to date by sched_update), or NULL
 * when there is no such function. Borrowed until the next sched_update or
 * sched_remove of that name. */
const fn_config *sched_config(sched *s, const char *name);

/* Stops every worker and answers every call 503. */
void sched_shutdown(sched *s);
/* The same at once when the spawner died: every call, waiting or running,
 * is answered 503 "spawner_lost", and workers it cannot reap are let go.
 * A later sched_shutdown does nothing. */
void sched_spawner_lost(sched *s);
/* Workers not yet reaped. */
unsigned sched_live(const sched *s);

#endif
