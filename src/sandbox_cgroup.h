/*
 * sandbox_cgroup.h — per-worker cgroup leaves for memory, pids and CPU.
 * One sandbox_cgroups per daemon says which controllers the machine offers
 * (v2 where enabled, else v1, per controller) and owns a "hearth-<pid>"
 * folder under the daemon's own cgroup in each; every worker gets a leaf
 * there, entered by the child between fork and exec and removed, with
 * everything still in it killed, when the worker ends.
 */
#ifndef HEARTH_SANDBOX_CGROUP_H
#define HEARTH_SANDBOX_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slots of sandbox_cgroup's arrays. */
enum { SANDBOX_CGROUP_MEMORY, SANDBOX_CGROUP_PIDS, SANDBOX_CGROUP_CPU, SANDBOX_CGROUP_COUNT };

typedef struct sandbox_cgroups sandbox_cgroups; /* what the machine offers; one per daemon */

typedef struct sandbox_cgroup { /* one worker's leaf, in every controller */
    /* open O_WRONLY|O_CLOEXEC cgroup.procs of the memory, pids, cpu leaves;
     * -1 = none, also when the slot shares an earlier slot's directory
     * (cgroup v2, or v1 controllers mounted together) */
    int procs_fd[SANDBOX_CGROUP_COUNT];
    char path[SANDBOX_CGROUP_COUNT][PATH_MAX]; /* leaf dirs ("" = controller unavailable) */
} sandbox_cgroup;

/*
 * Finds memory, pids and cpu: v2 (enabled in the daemon's cgroup's
 * subtree_control, enabling them there if possible) where available, else
 * v1, per controller. Creates "hearth-<pid>" under the daemon's own cgroup
 * in each and writes one line per controller into `report` (truncated to
 * `cap`). Returns 0 even when controllers are missing (they are then not
 * used); -errno only on a real failure (nothing is left behind). The caller
 * frees *out with sandbox_cgroup_close.
 */
int sandbox_cgroup_open(sandbox_cgroups **out, char *report, size_t cap);

/* `controller` is "memory", "pids" or "cpu". cg may be NULL (false). */
bool sandbox_cgroup_has(const sandbox_cgroups *cg, const char *controller);

/*
 * Creates the leaf `name` (one path component) in each available controller
 * and sets its limits: memory = memory_bytes with swap off and the OOM
 * killer on; pids.max = pids_max; a CPU quota of cpu_millis/1000 CPUs per
 * 100 ms period and a CPU share proportional to memory_bytes (1024 v1
 * shares / 100 v2 weight per 256 MiB). A limit of 0 leaves that limit
 * unset. Opens each leaf's cgroup.procs into leaf->procs_fd. Returns 0 or
 * -errno (-EEXIST if the leaf exists); on error nothing is left behind and
 * *leaf is empty (all fds -1, paths "").
 */
int sandbox_cgroup_create(sandbox_cgroups *cg, const char *name, uint64_t memory_bytes,
                          uint32_t pids_max, uint32_t cpu_millis, sandbox_cgroup *leaf);

/* Sets a live leaf's memory limit (swap off, as create does) and its CPU
 * share proportional to it, as sandbox_cgroup_create would have (one
 * implementation for both): for a pre-built sandbox claimed by a function.
 * Lowering below what the leaf uses makes the kernel reclaim, or OOM-kill
 * inside it. memory_bytes 0 is refused (-EINVAL). 0 or -errno. */
int sandbox_cgroup_set_memory(const sandbox_cgroup *leaf, uint64_t memory_bytes);

/*
 * Child side, between fork and exec, before dropping root or entering new
 * user/cgroup namespaces: moves the calling process into the leaf by
 * writing "0" to each procs_fd. Async-signal-safe. Returns 0 or -errno.
 */
int sandbox_cgroup_enter(const sandbox_cgroup *leaf);

/* True when the kernel OOM-killed something in the leaf's memory cgroup. */
bool sandbox_cgroup_oom_killed(const sandbox_cgroup *leaf);

/*
 * SIGKILLs every process left in the leaf (v2: cgroup.kill when present),
 * closes the fds and removes the leaf dirs, retrying for a bounded time
 * (about 2 s) while killed processes finish exiting; may block that long.
 * Returns 0, or -errno with the dirs it could not remove still in
 * leaf->path (destroy may be called again). Safe on an emptied leaf.
 */
int sandbox_cgroup_destroy(sandbox_cgroup *leaf);

/* Removes the hearth-<pid> folders (after every leaf is gone) and frees. Accepts NULL. */
void sandbox_cgroup_close(sandbox_cgroups *cg);

/* Frees the handle but leaves the folders: for a process that handed them
 * to another (the daemon, to its spawner). Accepts NULL. */
void sandbox_cgroup_forget(sandbox_cgroups *cg);

#endif
