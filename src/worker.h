/*
 * worker.h — one runtime process: started through the sandbox, spoken to
 * in frames on fd 3, its stdout/stderr fed to the log collector.
 * States: starting -> idle <-> busy -> dead.
 */
#ifndef HEARTH_WORKER_H
#define HEARTH_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include <hearth/protocol.h>

#include "logs.h"
#include "sandbox.h"

typedef enum worker_state {
    WORKER_STARTING,
    WORKER_IDLE,
    WORKER_BUSY,
    WORKER_DEAD,
} worker_state;

typedef struct worker worker;
struct spawner;

typedef struct worker_events {
    /* A frame from the runtime. `meta` is borrowed; `body` (malloc'd,
     * NUL-terminated) passes to the callee, who frees it. Output the
     * runtime wrote before the frame has already been logged. */
    void (*on_frame)(worker *w, uint8_t type, json_t *meta, char *body, size_t len);
    /* The process is gone (reaped). `protocol_error` says the daemon killed
     * it for breaking the protocol. The worker is freed after this returns. */
    void (*on_exit)(worker *w, int wstatus, bool protocol_error);
    /* Optional: the spawner answered, the process exists (before READY). */
    void (*on_started)(worker *w);
} worker_events;

struct worker {
    /* Owned by the scheduler. */
    worker_state state;
    int64_t version;
    uint64_t secrets_gen;            /* its pool's secrets_gen when it started */
    uint64_t served;                 /* requests answered */
    uint64_t last_used_ms;           /* loop time it last went idle (monotonic) */
    uint64_t ready_ms;               /* loop time of its READY frame (0 while starting) */
    uint64_t spawned_ms;             /* loop time it was started */
    uint64_t spawned_ns;             /* uv_hrtime() then, for the init-duration histogram */
    int64_t memory_mb;               /* what it counts against --memory-budget */
    double priority;                 /* Greedy-Dual: the lowest idle one is evicted first */
    void *owner;                     /* the scheduler's own state of this worker */
    bool stopping;                   /* killed on purpose: its exit fails no request */
    bool start_slot;                 /* holds one of --max-starting's slots */
    int uid_slot;                    /* its own uid from the range, or -1 */
    json_t *init_error;              /* what INIT_ERROR said, until the exit */
    int spawn_error;                 /* -errno: the sandbox never started (then on_exit) */
    bool prebuilt;                   /* a pre-built sandbox with no function yet */
    worker *prev, *next;             /* the pool's list */
    worker *idle_prev, *idle_next;   /* the scheduler's idle list, oldest first */
    worker *start_prev, *start_next; /* the scheduler's list of slot holders */
    /* Owned by worker.c. */
    struct worker_impl *impl;
};

/* Starts a worker for `function`/`version` through the spawner `sp`,
 * without waiting: the worker is STARTING at once and its process
 * arrives later. A spawn that fails ends the worker through ev->on_exit,
 * with spawn_error set. spec->prebuilt asks for a pre-built sandbox
 * (function "" until worker_specialize). Frames from it carry at most
 * `max_body` body bytes. Returns 0, or -errno when it could not be asked. */
int worker_spawn(uv_loop_t *loop, struct spawner *sp, logs *lg, const sandbox_spec *spec,
                 const char *function, int64_t version, uint32_t max_body, const worker_events *ev,
                 worker **out);

/* Gives a pre-built worker (spec->prebuilt at worker_spawn) its function:
 * the spawner attaches the code (spec is checked like a spawn's), then
 * the runtime gets a SPECIALIZE frame with spec->envp and answers READY
 * like a new worker. From now on `ev` gets its frames and its exit, and
 * its output goes to function/version's log. A failed claim kills it
 * (on_exit follows). Returns 0, or -errno (then nothing changed). */
int worker_specialize(worker *w, const sandbox_spec *spec, const char *function, int64_t version,
                      const worker_events *ev);

/* Sends one INVOKE frame. `meta` is JSON text; `body` is borrowed and must
 * stay valid until the worker answers or dies. Output the worker writes
 * from now on is attributed to `request_id`. Returns 0 or -EPIPE. */
int worker_invoke(worker *w, const char *request_id, const char *meta, size_t meta_len,
                  const void *body, size_t body_len);

/* From now on the worker's output is read and dropped, never logged. */
void worker_mute_logs(worker *w);

/* Kills the process (its whole group). on_exit follows. */
void worker_kill(worker *w);

pid_t worker_pid(const worker *w);
/* The runtime's host pid, as the kernel's audit records show it; 0 when
 * the sandbox could not tell. */
pid_t worker_runtime_pid(const worker *w);

/* True when the kernel's OOM killer struck in the worker's cgroup. Valid
 * until on_exit returns. */
bool worker_oom_killed(const worker *w);

#endif
