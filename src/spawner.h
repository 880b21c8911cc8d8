/*
 * spawner.h — privilege separation. At start, hearthd forks a small
 * privileged spawner that alone creates, signals and reaps sandboxes; the
 * rest of hearthd (HTTP, JSON, the registry) then drops to an
 * unprivileged user. They talk over a SOCK_SEQPACKET socketpair in typed,
 * size-checked messages; the worker's fds travel back as SCM_RIGHTS.
 *
 * With no spawner (hearthd not root), the same calls go straight to the
 * sandbox module, so the worker code has one path.
 */
#ifndef HEARTH_SPAWNER_H
#define HEARTH_SPAWNER_H

#include <stdbool.h>
#include <sys/types.h>

#include "sandbox.h"

typedef struct spawner spawner;

/* What the spawner enforces whatever the daemon asks: specs must name an
 * allowed interpreter, a code folder under code_root, a uid in the range,
 * and (when isolate) full isolation with the given cgroups and filter. */
typedef struct spawner_policy {
    const char *code_root;
    uid_t uid_base;
    unsigned uid_count;
    bool isolate;
    sandbox_cgroups *cgroups;
    const sandbox_filter *filter;
    const char *const *interpreters; /* NULL-terminated */
    bool templates;                  /* clone workers from the runtimes' templates (zygote.c) */
} spawner_policy;

/* Forks the spawner (which keeps running as root until the daemon's end
 * of the socket closes, then kills what is left and exits). The policy is
 * copied into the child by fork. Returns 0 or a negative errno. */
int spawner_start(const spawner_policy *policy, spawner **out);

/* Closes the daemon's end (the spawner then cleans up and exits) and
 * waits for it. Accepts NULL. */
void spawner_stop(spawner *sp);

/* The sandbox operations, through the spawner when sp is non-NULL.
 * spawner_reap also tells whether the OOM killer struck and forgets the
 * sandbox on the spawner's side (its cgroup is removed there). */
int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out);
void spawner_kill(spawner *sp, const sandbox_proc *proc);
int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom);
void spawner_release(spawner *sp, sandbox_proc *proc);

#endif
