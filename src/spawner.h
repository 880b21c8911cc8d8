/*
 * spawner.h — privilege separation. At start, hearthd forks a small
 * privileged spawner that alone creates, signals and reaps sandboxes; the
 * rest of hearthd (HTTP, JSON, the registry) then drops to an
 * unprivileged user. They talk over a SOCK_SEQPACKET socketpair in typed,
 * size-checked messages; the worker's fds travel back as SCM_RIGHTS.
 *
 * Rootless the spawner is forked all the same (it then keeps our own
 * identity): one protocol, and spawns never run on the daemon's loop.
 */
#ifndef HEARTH_SPAWNER_H
#define HEARTH_SPAWNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "sandbox.h"

typedef struct spawner spawner;

/* The most a worker may get, field for field of sandbox_spec: a limit the
 * daemon asks above its ceiling, or asks to be none (0), is lowered to
 * the ceiling; vm_reserve is an amount, so 0 stays 0. host_network says
 * whether a worker may share the host's network at all ("network":
 * "host"; off with --no-host-network): when false, asking is refused;
 * egress likewise (on when egress_host_start found it usable).
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
    bool egress; /* "network": "egress" can work here (egress.h) */
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
    /* The host's egress state (main.c's, copied by fork): the spawner
     * connects egress sandboxes with it. NULL when limits.egress is off. */
    struct egress_host *egress;
} spawner_policy;

/* Forks the spawner (which keeps running until the daemon's end of the
 * socket closes, then kills what is left and exits). The policy is copied
 * into the child by fork. As root the spawner keeps root; rootless it
 * runs as we do, and the separation is the same, so the daemon has one
 * way to start sandboxes. Returns 0, -EINVAL for a policy with a zero
 * ceiling, or a negative errno. */
int spawner_start(const spawner_policy *policy, spawner **out);

/* Closes the daemon's end (the spawner then cleans up and exits) and
 * waits for it. Requests still in flight are dropped: their callbacks
 * never run. Accepts NULL. */
void spawner_stop(spawner *sp);

/* Holds spec to the policy, in place: limits are lowered to their
 * ceilings, and isolation, cgroups and filter replaced by the policy's.
 * Returns 0, or -EPERM when it asks for what the policy does not grant
 * (an interpreter, code folder, uid or host network) or names an invalid
 * hostname or secret, or -EOPNOTSUPP for secrets without isolation. A
 * bundle of secrets is never the asker's: has_secrets is cleared. The
 * spawner calls it on every spawn and every claim. */
int spawner_check(const spawner_policy *policy, sandbox_spec *spec);

/*
 * The requests. Many may be in flight: each answer is matched to its
 * request by id and handed to its callback from the loop given to
 * spawner_watch (never before the call that asked returns). The daemon
 * never waits on the spawner: a request that cannot be written yet waits
 * in a queue until the socket takes it.
 */

/* A sandbox (rc 0, *proc filled: its fds are the callee's), or -errno. */
typedef void (*spawner_spawned_fn)(void *ud, int rc, const sandbox_proc *proc);
/* A pre-built sandbox now holds the function's code (rc 0), or -errno. */
typedef void (*spawner_claimed_fn)(void *ud, int rc);
/* rc 1: reaped (wstatus, oom set; the spawner forgot the sandbox);
 * 0: still running; -errno. */
typedef void (*spawner_reaped_fn)(void *ud, int rc, int wstatus, bool oom);

/* Starts reading answers on `loop`. When the spawner is gone (it died, or
 * broke the protocol) every request in flight is answered -EPIPE, then
 * on_lost(ud) runs once: nothing can be started any more. */
void spawner_watch(spawner *sp, uv_loop_t *loop, void (*on_lost)(void *ud), void *ud);

/* True once the spawner is lost: no KILL or REAP can be answered. */
bool spawner_is_lost(const spawner *sp);
/* Stops reading (before the loop closes); requests in flight are dropped. */
void spawner_unwatch(spawner *sp);

/* A sandbox for spec. spec->prebuilt asks for a pre-built one: the
 * spawner then builds it with no function's code, at the policy's code
 * root, and spec->code_dir, hostname and secrets are ignored. 0 when
 * asked, or -errno (then `done` is never called). */
int spawner_spawn_async(spawner *sp, const sandbox_spec *spec, spawner_spawned_fn done, void *ud);

/* Specialises the pre-built sandbox `proc` for spec (checked like a
 * spawn; its argv and uid must be the ones it was built with): the code
 * read-only at /var/task, the memory limit, secrets, hostname. A sandbox
 * is claimed once: a second claim, or a claim of one that was not
 * pre-built, is refused. 0 when asked, or -errno. */
int spawner_claim_async(spawner *sp, const sandbox_proc *proc, const sandbox_spec *spec,
                        spawner_claimed_fn done, void *ud);

/* Reaps proc once its pidfd is readable. 0 when asked, or -errno. */
int spawner_reap_async(spawner *sp, const sandbox_proc *proc, spawner_reaped_fn done, void *ud);

/* SIGKILLs the sandbox's whole process group; there is no answer. */
void spawner_kill(spawner *sp, const sandbox_proc *proc);

/* Closes the daemon's fds of a reaped sandbox. */
void spawner_release(spawner *sp, sandbox_proc *proc);

/* The same requests, waiting for their answer (for tools and tests: the
 * daemon's loop never calls these). Same results as the callbacks'. */
int spawner_spawn(spawner *sp, const sandbox_spec *spec, sandbox_proc *out);
int spawner_claim(spawner *sp, const sandbox_proc *proc, const sandbox_spec *spec);
int spawner_reap(spawner *sp, sandbox_proc *proc, int *wstatus, bool *oom);

/* The daemon's end of the socket, for tests that speak the protocol by
 * hand, and the spawner's pid. */
int spawner_socket(const spawner *sp);
pid_t spawner_pid(const spawner *sp);

#endif
