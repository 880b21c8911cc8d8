/*
 * sandbox_seccomp.h — the worker's system-call policy: an x86_64 allowlist
 * built once with libseccomp at daemon start, kept as plain BPF, and
 * installed in each worker between fork and exec without libseccomp.
 *
 * The policy (docs/security.md, "## seccomp", is the long form):
 *  - Architecture pinned to x86_64: i386 (int 0x80) and x32 (numbers with
 *    bit 0x40000000) kill the process.
 *  - Allowed: what Python, Node and C programs need — file I/O and
 *    metadata, the mmap family, futex, epoll/poll/select, signals, timers,
 *    SysV/POSIX IPC, socket operations, fork/vfork, clone without any
 *    CLONE_NEW* flag, execve/execveat, wait*, prlimit64 on the calling
 *    process only (pid 0), getrandom, clock reads.
 *  - Conditional: socket/socketpair only for AF_UNIX, AF_INET, AF_INET6
 *    (other families fail with EAFNOSUPPORT); ioctl except TIOCSTI and
 *    TIOCLINUX compared on the low 32 bits (EPERM); personality only 0x0,
 *    0x8, 0x20000, 0x20008, 0xffffffff; mknod/mknodat only for FIFOs,
 *    sockets and regular files.
 *  - clone3 fails with ENOSYS, so libc falls back to clone, whose flags
 *    can be checked. Syscall numbers newer than this policy (above 469,
 *    and the reviewed new ones not allowed) fail with ENOSYS too, so that
 *    libc falls back as it does on an older kernel.
 *  - Killed (SIGSYS): ptrace, process_vm_readv/writev, bpf, kexec_load,
 *    kexec_file_load, init/finit/delete_module, iopl, ioperm, reboot,
 *    swapon, swapoff — calls only an attacker makes inside a function.
 *  - Everything else — mount and the new mount API, unshare, setns,
 *    keyctl, io_uring, userfaultfd, perf_event_open, … — fails with EPERM.
 * No-new-privs is the caller's job (the filter does not set it).
 */
#ifndef HEARTH_SANDBOX_SECCOMP_H
#define HEARTH_SANDBOX_SECCOMP_H

#include <stddef.h>
#include <sys/types.h>

struct sock_filter;

typedef struct sandbox_filter {
    struct sock_filter *insns; /* owned; freed by sandbox_seccomp_release */
    unsigned short len;        /* number of instructions */
} sandbox_filter;

/* Builds the worker policy (libseccomp rules exported as BPF) into *out,
 * which the caller releases with sandbox_seccomp_release. Call once, at
 * daemon start. Returns 0 or a negative errno (-EOPNOTSUPP when not
 * running on x86_64); on error *out is empty and nothing is left open. */
int sandbox_seccomp_build(sandbox_filter *out);

/* Installs *f in the calling thread (a forked, single-threaded child).
 * Async-signal-safe: one seccomp(2) call, no libseccomp, no allocation.
 * The caller must have set PR_SET_NO_NEW_PRIVS (or hold CAP_SYS_ADMIN).
 * Returns 0 or a negative errno. */
int sandbox_seccomp_install(const sandbox_filter *f);

/* Frees the program; *f becomes empty. Safe on an empty or NULL filter. */
void sandbox_seccomp_release(sandbox_filter *f);

/* Writes the x86_64 name of syscall `nr` (e.g. "ptrace"), or a fallback
 * such as "syscall 999" or "x32 syscall 39", into buf (truncated to cap)
 * and returns buf; returns "?" if buf is NULL or cap is 0. Allocates
 * (not for use between fork and exec). */
const char *sandbox_seccomp_syscall_name(int nr, char *buf, size_t cap);

/*
 * Naming the call that got a worker killed: the kernel writes an audit
 * record ("type=1326 ... uid=U ... pid=P ... syscall=N") to its log for every
 * seccomp kill, asynchronously. sandbox_seccomp_audit_open() opens
 * /dev/kmsg positioned at its end (root only; -errno otherwise).
 * sandbox_seccomp_audit_read() hands each seccomp kill recorded since the
 * last read to `seen`, oldest first. Never blocks.
 */
int sandbox_seccomp_audit_open(void);

/* The daemon's own filter, once it has dropped to --user: everything it
 * does stays allowed; what only an attacker who took over the HTTP side
 * would call (mount, ptrace, namespaces, bpf, modules, kexec, keyrings,
 * io_uring, ...) fails with EPERM. Applies to the calling process's
 * threads (TSYNC). Returns 0 or a negative errno. */
int sandbox_seccomp_lock_daemon(void);
/* `pid` is the killed process's, in the initial pid namespace (the
 * kernel's view, not the sandbox's); syscall_nr is -1 when the record is
 * of another architecture (an i386 or x32 entry point, whose numbers mean
 * other calls). */
typedef void (*sandbox_audit_fn)(uid_t uid, pid_t pid, int syscall_nr, void *ud);
void sandbox_seccomp_audit_read(int kmsg_fd, sandbox_audit_fn seen, void *ud);

#endif
