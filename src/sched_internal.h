/*
 * sched_internal.h — what the scheduler's files share: its structs (the
 * scheduler, a pool, a call's private half) and the functions one of
 * sched.c, sched_admit.c and sched_launch.c calls in another.
 *
 * Private to the scheduler: only sched*.c include it; everything else uses
 * sched.h. Each function's contract is the comment at its definition.
 */
#ifndef HEARTH_SCHED_INTERNAL_H
#define HEARTH_SCHED_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "keepalive.h"
#include "metrics.h"
#include "registry.h"
#include "sched.h"
#include "strmap.h"
#include "worker.h"

typedef struct pool pool;
typedef struct stem_pool stem_pool;

struct pool {
    sched *s;
    fn_config cfg;
    worker *workers; /* every live worker, any version */
    sched_call *qhead, *qtail;
    sched_call *qlast_sync; /* every synchronous call waits ahead of every background one */
    unsigned qlen;
    unsigned bg_queued; /* of qlen, background calls (bounded by the event core, not here) */
    unsigned nworkers;
    unsigned nstarting; /* its workers holding a start slot, any version */
    bool deleted;
    bool pinned;                 /* a kept version other than the current one ("name@V") */
    bool removed;                /* deleted through the API: nothing more reaches its log */
    metrics_fn m;                /* its series for /metrics (cold and warm starts among them) */
    uint64_t prewarm_not_before; /* loop time; a failing start pushes it back */
    uint64_t prewarm_backoff_ms;
    double cold_cost_ms;  /* moving average of spawn → READY, 0 = none measured */
    uint64_t secrets_gen; /* bumped when a secret it lists changes: older workers are stale */
    /* "keep_alive": "adaptive": idle times, and the decision after the last call */
    ka_state ka;
    ka_decision ka_dec;
    uint64_t ka_last; /* loop time (monotonic ms) of the last call, 0 = none yet */
    /* on the scheduler's list of pools waiting for a slot or memory */
    bool hungry;
    pool *hungry_prev, *hungry_next;
};

/* What the scheduler keeps of a worker behind its opaque owner pointer
 * (worker.h): allocated with the worker (launch), freed by its on_exit. */
typedef struct sched_worker {
    pool *pool;       /* its function's pool; NULL while a pre-built sandbox */
    sched_call *call; /* the call in flight */
    stem_pool *stem;  /* the pre-built pool it belongs to until claimed */
} sched_worker;

static inline sched_worker *sw_of(const worker *w)
{
    return w->owner;
}

struct sched_call_impl {
    sched_call *call;
    sched *s;
    pool *p;
    worker *w;
    sched_call *qnext;
    uv_timer_t timer;
    uint64_t deadline;   /* loop time (monotonic): a wall-clock step cannot move it */
    uint64_t arrived;    /* loop time */
    uint64_t arrived_ns; /* uv_hrtime(), for the duration histogram */
    bool cold;           /* waited for a worker that became ready after it arrived */
    bool queue_timer;    /* the timer is armed for queue_timeout_ms, not the deadline */
    bool queued;
    bool finished;
};

struct sched {
    sched_opts o;
    strmap pools;
    unsigned nworkers;               /* spawned and not yet reaped */
    unsigned nstarting;              /* of those, holding a start slot (--max-starting) */
    worker *starting;                /* the slot holders (worker.start_next) */
    unsigned ndemand;                /* pools starting workers or waiting to */
    uv_timer_t init_timer;           /* the earliest init_timeout_ms deadline */
    int open_handles;                /* sweep and init_timer, until closed */
    unsigned ndying;                 /* of those, killed on purpose */
    uint64_t memory_mb;              /* their memory_mb, summed */
    uint64_t dying_mb;               /* of that, the killed ones' */
    double clock;                    /* Greedy-Dual: the priority of the last eviction */
    ka_params ka;                    /* the adaptive keep-alive's parameters, shared by all pools */
    pool *hungry_head, *hungry_tail; /* pools that need a worker --max-workers or
                                        --memory-budget holds back, oldest first */
    unsigned nhungry;
    worker *idle_head, *idle_tail;
    bool *uid_used; /* uid_count slots */
    /* pre-built sandboxes, one pool per runtime (sched_prebuilt.c) */
    struct stem_pool *stems;
    size_t nstems;
    uv_timer_t stem_timer;  /* the next refill */
    uint64_t stem_fill_due; /* loop ms it is due, 0 = not armed */
    uv_timer_t sweep;
    bool shutting_down;
};

/* sched.c: calls, the idle list, pools and their workers, frames */
void fail(sched_call *c, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* fail, with the error's `type` too (an init_error's, as a function_error has). */
void fail_typed(sched_call *c, unsigned status, const char *code, const char *type, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
const char *meta_str(json_t *meta, const char *key, const char *dflt);
void idle_remove(sched *s, worker *w);
void stop_worker(sched *s, worker *w);
void pool_link(pool *p, worker *w);
void pool_unlink(pool *p, worker *w);
void pool_free(pool *p);
bool is_current(const pool *p, const worker *w);
metrics_fn *pool_metrics(pool *p);
unsigned count_current(const pool *p, int state);
bool kept_for_min(const pool *p, const worker *w);
void delay_prewarm(sched *s, pool *p);
bool wants_prewarm(const sched *s, const pool *p, unsigned live);
void on_frame(worker *w, uint8_t type, json_t *meta, char *body, size_t len);

/* sched_admit.c: start slots, eviction, the pools held back */
void take_start_slot(sched *s, worker *w);
void release_start_slot(sched *s, worker *w);
void expire_starts(sched *s);
void set_hungry(sched *s, pool *p, bool hungry);
void pool_fill(sched *s, pool *p);
void feed_waiting_pools(sched *s);

/* sched_launch.c: starting a worker */
/* Why every call answers 503 when the spawner is gone (sched_spawner_lost). */
#define SPAWNER_LOST_WHY                                                                           \
    "the sandbox spawner died; hearthd is stopping so that it can be started again"
/* Answers c for a worker that could not be started (rc < 0): 503
 * spawner_lost when the spawner is gone, 503 overloaded when out of file
 * descriptors (that passes), otherwise 500 (a fault of ours). */
void fail_spawn_error(sched *s, sched_call *c, int rc);
int spawn_worker(sched *s, pool *p, worker *stem);
/* A worker's environment ("KEY=VALUE", NULL-ended) for cfg, or (NULL) a
 * pre-built sandbox's: NULL when out of memory, never a partial one. */
char **sched_worker_env(const fn_config *cfg);
void sched_free_env(char **env); /* accepts NULL */

int spawn_sandbox(sched *s, const char *runtime, bool egress, const worker_events *ev, int *slot,
                  worker **out);
bool uid_slot_free(const sched *s);
void give_back_uid_slot(sched *s, worker *w);

/* sched_prebuilt.c: the pools of pre-built sandboxes */
int prebuilt_open(sched *s);
void prebuilt_on_timer(uv_timer_t *t);
void prebuilt_fill(sched *s);
worker *prebuilt_take(sched *s, pool *p);
void prebuilt_untake(sched *s, worker *w);
void prebuilt_discard(sched *s, worker *w);
void prebuilt_note_start(sched *s, const pool *p, bool claimed);
bool prebuilt_evict_one(sched *s);
void prebuilt_shutdown(sched *s);
void prebuilt_close(sched *s);

#endif
