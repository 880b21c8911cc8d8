/*
 * violations.h — telling a function's log which system call got its worker
 * killed by the sandbox's seccomp filter.
 */
#ifndef HEARTH_VIOLATIONS_H
#define HEARTH_VIOLATIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "logs.h"

typedef struct violations violations;

/* The worker a report is about. Only an audit record of its own runtime
 * (uid and host pid), read since it was started, can name its call. */
typedef struct violations_worker {
    bool has_uid;
    uid_t uid;
    pid_t pid;         /* its runtime's host pid; 0 = unknown: nothing is named */
    uint64_t since_ms; /* loop time it was started */
} violations_worker;

/* Reads the kernel's audit records from `kmsg_fd` (/dev/kmsg, opened at
 * its end; -1 = none, kills are then reported without a name) as they
 * come. Takes ownership of the fd. Returns NULL on ENOMEM or when the fd
 * cannot be watched (the fd is closed then). `loop` may be NULL when
 * kmsg_fd is -1 (tests). */
violations *violations_open(uv_loop_t *loop, logs *lg, int kmsg_fd);
/* Stops reading the kernel's log (reports already pending still end).
 * Call at shutdown, before the loop drains. Accepts NULL. */
void violations_stop(violations *v);
/* Closes the fd and frees, once no report is pending (call after the loop
 * has drained). Accepts NULL. */
void violations_close(violations *v);

/* Worker `w` of `function` was killed by seccomp: write a line to the
 * function's log, naming the call once its audit record arrives (best
 * effort, within half a second). Accepts v == NULL. */
void violations_report(violations *v, const char *function, int64_t version, const char *request_id,
                       const violations_worker *w);

/* `function` was deleted: its pending reports end without a line, so a
 * later function of that name never gets one. Accepts v == NULL. */
void violations_forget(violations *v, const char *function);

/* The matching, apart from the kernel's log (also for tests). _seen keeps
 * a record read at loop time `seen_ms`; _claim takes the record of `w`'s
 * kill: true and *nr (-1: another architecture) when there is one. A
 * record of w's uid read before w started is left by an earlier holder of
 * that uid: _claim drops it. */
void violations_seen(violations *v, uid_t uid, pid_t pid, int nr, uint64_t seen_ms);
bool violations_claim(violations *v, const violations_worker *w, int *nr);

#endif
