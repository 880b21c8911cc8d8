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

/* Reads the kernel's audit records from `kmsg_fd` (/dev/kmsg, opened at
 * its end; -1 = none, kills are then reported without a name). Takes
 * ownership of the fd. Returns NULL on ENOMEM. */
violations *violations_open(uv_loop_t *loop, logs *lg, int kmsg_fd);
/* Closes the fd and frees, once no report is pending (call after the loop
 * has drained). Accepts NULL. */
void violations_close(violations *v);

/* A worker running as `uid` (when has_uid) was killed by seccomp: write a
 * line to the function's log, naming the call once its audit record
 * arrives (best effort, within half a second). Accepts v == NULL. */
void violations_report(violations *v, const char *function, int64_t version, const char *request_id,
                       bool has_uid, uid_t uid);

#endif
