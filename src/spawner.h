/*
 * spawner.h — privilege separation. At start, hearthd forks a small
 * privileged spawner that alone creates, signals and reaps sandboxes; the
 * rest of hearthd (HTTP, JSON, the registry) then drops to an
 * unprivileged user. They talk over a SOCK_SEQPACKET socketpair in typed,
 * size-checked messages; the worker's fds travel back as SCM_RIGHTS.
 *
 * Rootless, there is nothing to separate: a local spawner runs the same
 * calls, and the same policy check, in the daemon itself.
 */
#ifndef HEARTH_SPAWNER_H
#define HEARTH_SPAWNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox.h"

typedef struct spawner spawner;

/* The most a worker may get, field for field of sandbox_spec: a limit the
 * daemon asks above its ceiling, or asks to be none (0), is lowered to
 * the ceiling; vm_reserve is an amount, so 0 stays 0. host_network says
 * whether a worker may share the host's network at all ("network":
 * "host"; off with --no-host-network): when false, asking is refused.
 * Every ceiling must be non-zero. */
typedef struct spawner_limits {
    uint64_t memory_bytes;
    uint64_t vm_reserve;
    uint64_t max_file_size;
    uint64_t max_open_files;
    uint64_t tmp_bytes;
    uint32_t pids_max;
    uint32_t cpu_millis;
    bool host_network;
} spawner_limits;

/* What the spawner enforces whatever the daemon asks, built once at start
 * from the command line (main.c). Specs must name an allowed interpreter,
 * a code folder under code_root, a uid in the range (uid_count 0: not
 * root, so the sandbox cannot change identity and uid/gid are not
 * checked), and a hostname that is a function name; their limits are
 * held to `limits`; isolation, cgroups and filter are the policy's own. */
typedef struct spawner_policy {
    const char *code_root; /* an absolute, resolved path */
    uid_t uid_base;
    unsigned uid_count;
    bool isolate;
    sandbox_cgroups *cgroups;
    const sandbox_filter *filter;
    const char *const *interpreters; /* NULL-terminated */
    bool templates;                  /* clone workers from the runtimes' templates (zygote.c) */
    /* The data dir's secrets folder and private key file (secrets.h),
     * relative to the cwd; NULL: no worker gets secrets. */
    const char *secrets_dir, *secrets_key;
    spawner_limits limits;
} spawner_policy;

/* Forks the spawner (which keeps running as root until the daemon's end
 * of the socket closes, then kills what is left and exits). The policy is
 * copied into the child by fork. Returns 0, -EINVAL for a policy with a
 * zero ceiling, or a negative errno. */
int spawner_start(const spawner_policy *policy, spawner **out);

/* Rootless: a spawner with no process, whose calls check specs against
 * the policy (copied; what it points to must outlive the spawner) and
 * then spawn here. Starts the templates when policy->templates. Returns
 * 0, -EINVAL for a policy with a zero ceiling, or -ENOMEM. */
int spawner_open_local(const spawner_policy *policy, spawner **out);

/* Closes the daemon's end (the spawner then cleans up and exits) and
 * waits for it; a local one is only freed. Accepts NULL. */
void spawner_stop(spawner *sp);

/* Holds spec to the policy, in place: limits are lowered to their
 * ceilings, and isolation, cgroups and filter replaced by the policy's.
 * Returns 0, or -EPERM when it asks for what the policy does not grant
 * (an interpreter, code folder, uid or host network) or names an invalid
 * hostname or secret, or -EOPNOTSUPP for secrets without isolation. A
 * bundle of secrets is never the asker's: has_secrets is cleared. Both kinds of spawner call it on
 * every spawn. */
int spawner_check(const spawner_policy *policy, sandbox_spec *spec);

/* The sandbox operations, through the spawner (forked or local: there
 * is no unchecked path). spawner_reap also tells whether the OOM killer struck and forgets the
 * sandbox on the spawner's side (its cgroup is removed there). */
int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out);
void spawner_kill(spawner *sp, const sandbox_proc *proc);
int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom);
void spawner_release(spawner *sp, sandbox_proc *proc);

/* The daemon's end of the socket of a forked spawner (-1 for a local
 * one), for tests that speak the protocol by hand. */
int spawner_socket(const spawner *sp);

#endif
