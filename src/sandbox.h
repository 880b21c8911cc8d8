/*
 * sandbox.h — the one seam through which worker processes are started.
 * The scheduler describes what to run (sandbox_spec) and gets back a
 * running process with its fds (sandbox_proc); how the process is
 * isolated is this module's business alone.
 */
#ifndef HEARTH_SANDBOX_H
#define HEARTH_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox_cgroup.h"
#include "sandbox_seccomp.h"

typedef struct sandbox_spec {
    const char *const *argv; /* argv[0] is an absolute path; NULL-terminated */
    const char *const *envp; /* the complete environment; NULL-terminated */
    const char *code_dir;    /* the function's code; becomes the cwd */
    uid_t uid;               /* identity the process runs as when we are root */
    gid_t gid;
    uint64_t memory_bytes;   /* the memory cgroup's limit, or else RLIMIT_AS; 0 = none */
    uint64_t vm_reserve;     /* address space the runtime reserves beyond what it uses
                                (V8's), added to memory_bytes for RLIMIT_AS */
    uint64_t max_file_size;  /* RLIMIT_FSIZE; 0 = none */
    uint64_t max_open_files; /* RLIMIT_NOFILE */
    /* Namespaces and a minimal root (needs root): new mount, pid, network,
     * ipc, uts and cgroup namespaces; the code at /var/task, read-only. */
    bool isolate;
    const char *hostname; /* the uts name when isolated */
    bool host_network;    /* isolated but sharing the host's network (opt-in) */
    /* Isolated, "network": "egress" (egress.h): the sandbox waits before
     * it builds its root until one byte arrives on net_wait_fd (the
     * spawner's, or slirp4netns', "your network is up"); its resolv.conf
     * names `resolver` (network order). Never from a template. */
    bool egress;
    int net_wait_fd;
    uint32_t resolver;
    uint64_t tmp_bytes; /* size of the private /tmp when isolated */
    /* Resource limits through cgroups (NULL = none): memory_bytes with swap
     * off, pids_max processes, cpu_millis thousandths of a CPU. */
    sandbox_cgroups *cgroups;
    uint32_t pids_max;
    uint32_t cpu_millis;
    /* The syscall allowlist, installed last before exec (NULL = none). */
    const sandbox_filter *filter;
    /* Isolated only: the secrets the worker reads at /run/secrets/<name>
     * (NULL-terminated, or NULL = none), as the daemon asks for them; and
     * the bundle of their values that the spawner made after its check
     * (secret_bundle.h), when has_secrets. */
    const char *const *secrets;
    bool has_secrets;
    int secrets_fd;
    /* Isolated only: a pre-built sandbox, everything but the function.
     * code_dir is then the CODE ROOT (holding <name>/<version> folders),
     * /var/task an empty directory (the runtime's cwd), and the sandbox's
     * init keeps its privileges until sandbox_attach_send's ATTACH makes
     * one function's code visible there. No secrets (they come with the
     * ATTACH). */
    bool prebuilt;
} sandbox_spec;

typedef struct sandbox_proc {
    pid_t pid;      /* also its process group and session id */
    pid_t runtime;  /* the runtime's pid, as the kernel's audit records show it
                     * (isolated: its sandbox init's child); 0 = unknown */
    int pidfd;      /* readable once the process has exited */
    int ctl_fd;     /* our end of the socket the process has as fd 3 */
    int out_fd;     /* read end of its stdout */
    int err_fd;     /* read end of its stderr */
    int status_fd;  /* isolated: the sandbox init reports the runtime's wait status here */
    int spawner_id; /* the privileged spawner's name for it (spawner.c) */
    bool has_cgroup;
    sandbox_cgroup cgroup; /* its leaf, removed by sandbox_release */
} sandbox_proc;

/*
 * Starts the process described by `spec`. The child gets: its own session
 * and process group; fd 0 = /dev/null, 1/2 = pipes, 3 = a SOCK_STREAM
 * socketpair end; every other fd closed; exactly spec->envp; cwd =
 * code_dir; rlimits (CORE 0 and the spec's); uid/gid dropped (with
 * supplementary groups cleared) when the caller is root; no_new_privs.
 * All fds in *out are non-blocking and close-on-exec in the parent.
 * Returns 0, or a negative errno (and nothing is left running or open).
 * A failure before exec (chdir, setuid, execve itself…) is returned as its
 * negative errno after the child has been reaped: success means exec
 * succeeded. As root, uid/gid 0 are refused (-EINVAL).
 */
int sandbox_spawn(const sandbox_spec *spec, sandbox_proc *out);

/* The child's ends of a spawn's channels, and its cgroup leaf's
 * cgroup.procs fds (-1 = none), as handed to whoever clones the worker. */
typedef struct sandbox_child_fds {
    int devnull, out, err, ctl, status;
    int cgroup_procs[SANDBOX_CGROUP_COUNT];
    bool memory_cgroup; /* a memory cgroup limits it (so no RLIMIT_AS) */
} sandbox_child_fds;

/* Clones the worker for sandbox_spawn_via, elsewhere (a zygote): the new
 * process must be a child of the caller (CLONE_PARENT). 0 with *pid, or
 * -errno. The fds stay the caller's to close. */
typedef int (*sandbox_starter)(const sandbox_spec *spec, const sandbox_child_fds *fds, pid_t *pid,
                               void *ud);

/* sandbox_spawn, with the clone done by `start` (NULL: here, then exec). */
int sandbox_spawn_via(const sandbox_spec *spec, sandbox_proc *out, sandbox_starter start, void *ud);

/*
 * sandbox_spawn_via in three calls, so that the caller never blocks on the
 * child (the spawner's poll loop). sandbox_spawn_begin does everything up
 * to and including the clone (or `start`): cgroup leaf, channels, child
 * started. On 0, out->pid is the child and out->status_fd is the
 * (non-blocking) read end of the status socket: poll it for readable,
 * then call sandbox_spawn_finish. Nothing is left behind on error.
 */
int sandbox_spawn_begin(const sandbox_spec *spec, sandbox_proc *out, sandbox_starter start,
                        void *ud);

/* When out->status_fd is readable: 0 = spawned (exactly as
 * sandbox_spawn_via's success: pidfd open, runtime pid known, status_fd
 * kept only when isolated, else closed), -EAGAIN = not yet (poll again),
 * any other -errno = failed (child reaped, everything closed and
 * released). */
int sandbox_spawn_finish(sandbox_proc *out);

/* Gives up on a begun spawn: kills the child's group, reaps it (it is
 * dying, so this blocks only briefly), releases all. */
void sandbox_spawn_abort(sandbox_proc *out);

/*
 * Template (zygote) side: clones the calling process into a worker with
 * every isolation step of sandbox_spawn, except that the runtime does not
 * exec spec->argv: it returns 0 from this call once sandboxed, with fds
 * 0-3 installed, every other fd but those closed, and environ =
 * spec->envp (pointing into spec, which must stay valid). In the caller
 * it returns the worker's pid, a child of the caller's parent
 * (CLONE_PARENT), or -errno; the caller then closes `fds`.
 */
pid_t sandbox_clone_template(const sandbox_spec *spec, const sandbox_child_fds *fds);

/* SIGKILLs the process's whole process group. Safe to call repeatedly. */
void sandbox_kill(const sandbox_proc *proc);

/* Collects the exit status once pidfd is readable. Returns 1 and sets
 * *wstatus when reaped, 0 if still running, negative errno on error. When
 * isolated, *wstatus is the runtime's own (not its init's) whenever the
 * init could report it. */
int sandbox_reap(sandbox_proc *proc, int *wstatus);

/* True when the kernel's OOM killer struck inside the worker's cgroup. */
bool sandbox_oom_killed(const sandbox_proc *proc);

/* Closes every fd in *proc and removes its cgroup leaf, killing anything
 * still in it (call after the reap). Fds already -1 are skipped. */
void sandbox_release(sandbox_proc *proc);

/* ---- pre-built sandboxes (spec->prebuilt) ---- */

typedef struct sandbox_attach {
    const char
        *code_rel; /* "<name>/<version>" under the code root the sandbox was pre-built with */
    const char *hostname; /* a valid function name */
    uint64_t as_bytes;    /* the runtime's RLIMIT_AS, 0 = leave it */
    int secrets_fd;       /* a bundle (secret_bundle.h format) or -1 */
} sandbox_attach;

/* Sends ATTACH to a pre-built sandbox's init over proc->status_fd (with
 * the bundle fd as SCM_RIGHTS; the caller keeps and closes its own).
 * Only once the spawn finished. 0 or -errno (-EINVAL: a code_rel or
 * hostname the init would refuse). Non-blocking: the message is small. */
int sandbox_attach_send(const sandbox_proc *proc, const sandbox_attach *a);

/* When proc->status_fd is readable after sandbox_attach_send: 0 attached
 * (the code is at /var/task, the init dropped its privileges), -EAGAIN
 * not yet, -errno failed (the caller kills the sandbox); -ESRCH: the
 * runtime had died before the init read the request (its wait status is
 * left for sandbox_reap), -EPIPE: the init is gone without an answer. */
int sandbox_attach_result(sandbox_proc *proc);

#endif
