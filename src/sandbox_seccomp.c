/*
 * sandbox_seccomp.c — the worker's seccomp policy (see sandbox_seccomp.h
 * and docs/security.md "## seccomp").
 *
 * Owns the policy tables, compiling them once with libseccomp into a BPF
 * program, and installing that program with a bare seccomp(2) call.
 *
 * Must never: call libseccomp, allocate or touch anything but the prebuilt
 * program in sandbox_seccomp_install (it runs between fork and exec);
 * allow an architecture other than x86_64; add an ERRNO(EPERM) rule (that
 * is the default action, and libseccomp rejects a rule equal to it — an
 * unconditional rule would also override every conditional rule of the
 * same syscall, which is why ioctl is allowed by a partition, below).
 *
 * Syscalls are named by their __NR_ numbers from the kernel headers, so a
 * typo is a compile error and the policy does not depend on how recent
 * libseccomp's own syscall table is.
 */
#include "sandbox_seccomp.h"

#include <fcntl.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define X32_SYSCALL_BIT 0x40000000

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Numbers newer than the kernel headers this builds against; x86_64
 * syscall numbers are ABI, so they are safe to spell out. */
enum {
    NR_cachestat = 451,
    NR_fchmodat2 = 452,
    NR_map_shadow_stack = 453,
    NR_futex_wake = 454,
    NR_futex_wait = 455,
    NR_futex_requeue = 456,
    NR_statmount = 457,
    NR_listmount = 458,
    NR_lsm_get_self_attr = 459,
    NR_lsm_set_self_attr = 460,
    NR_lsm_list_modules = 461,
    NR_mseal = 462,
    NR_setxattrat = 463,
    NR_getxattrat = 464,
    NR_listxattrat = 465,
    NR_removexattrat = 466,
    NR_open_tree_attr = 467,
    NR_file_getattr = 468,
    NR_file_setattr = 469,
    /* The newest number reviewed for this policy (Linux 6.17). Numbers
     * above it, up to the end of the native table, fail with ENOSYS. */
    POLICY_NEWEST_NR = NR_file_setattr,
    NATIVE_LAST_NR = 511,
};

enum verdict { ALLOW, FAIL_ENOSYS, FAIL_EPERM };

/* Syscalls added after libseccomp 2.5.4's table, reviewed one by one. Also
 * the names sandbox_seccomp_syscall_name falls back on. */
static const struct {
    int nr;
    enum verdict verdict;
    const char *name;
} newer_syscalls[] = {
    {NR_cachestat, FAIL_ENOSYS, "cachestat"}, /* page-cache probing */
    {NR_fchmodat2, ALLOW, "fchmodat2"},
    {NR_map_shadow_stack, FAIL_ENOSYS, "map_shadow_stack"},
    {NR_futex_wake, ALLOW, "futex_wake"},
    {NR_futex_wait, ALLOW, "futex_wait"},
    {NR_futex_requeue, ALLOW, "futex_requeue"},
    {NR_statmount, FAIL_EPERM, "statmount"}, /* mount API */
    {NR_listmount, FAIL_EPERM, "listmount"},
    {NR_lsm_get_self_attr, FAIL_ENOSYS, "lsm_get_self_attr"},
    {NR_lsm_set_self_attr, FAIL_ENOSYS, "lsm_set_self_attr"},
    {NR_lsm_list_modules, FAIL_ENOSYS, "lsm_list_modules"},
    {NR_mseal, ALLOW, "mseal"}, /* can only restrict the caller */
    {NR_setxattrat, ALLOW, "setxattrat"},
    {NR_getxattrat, ALLOW, "getxattrat"},
    {NR_listxattrat, ALLOW, "listxattrat"},
    {NR_removexattrat, ALLOW, "removexattrat"},
    {NR_open_tree_attr, FAIL_EPERM, "open_tree_attr"}, /* mount API */
    {NR_file_getattr, ALLOW, "file_getattr"},          /* = FS_IOC_FSGETXATTR */
    {NR_file_setattr, ALLOW, "file_setattr"},
};

#if defined(__x86_64__) && !defined(__ILP32__)

/* Allowed whatever their arguments. Modelled on Docker's default profile
 * minus what only a privileged or hostile program needs. */
static const int allowed_syscalls[] = {
    /* file I/O */
    __NR_read, __NR_write, __NR_readv, __NR_writev, __NR_pread64, __NR_pwrite64, __NR_preadv,
    __NR_pwritev, __NR_preadv2, __NR_pwritev2, __NR_lseek, __NR_open, __NR_openat, __NR_openat2,
    __NR_creat, __NR_close, __NR_close_range, __NR_dup, __NR_dup2, __NR_dup3, __NR_fcntl,
    __NR_flock, __NR_fsync, __NR_fdatasync, __NR_sync, __NR_syncfs, __NR_sync_file_range,
    __NR_truncate, __NR_ftruncate, __NR_fallocate, __NR_fadvise64, __NR_readahead, __NR_sendfile,
    __NR_splice, __NR_tee, __NR_vmsplice, __NR_copy_file_range, __NR_pipe, __NR_pipe2,
    __NR_memfd_create, __NR_io_setup, __NR_io_destroy, __NR_io_submit, __NR_io_cancel,
    __NR_io_getevents, __NR_io_pgetevents,
    /* file metadata and directories */
    __NR_stat, __NR_fstat, __NR_lstat, __NR_newfstatat, __NR_statx, __NR_statfs, __NR_fstatfs,
    __NR_access, __NR_faccessat, __NR_faccessat2, __NR_readlink, __NR_readlinkat, __NR_getdents,
    __NR_getdents64, __NR_getcwd, __NR_chdir, __NR_fchdir, __NR_mkdir, __NR_mkdirat, __NR_rmdir,
    __NR_unlink, __NR_unlinkat, __NR_rename, __NR_renameat, __NR_renameat2, __NR_link, __NR_linkat,
    __NR_symlink, __NR_symlinkat, __NR_chmod, __NR_fchmod, __NR_fchmodat, __NR_chown, __NR_fchown,
    __NR_lchown, __NR_fchownat, __NR_umask, __NR_utime, __NR_utimes, __NR_utimensat, __NR_futimesat,
    __NR_getxattr, __NR_lgetxattr, __NR_fgetxattr, __NR_listxattr, __NR_llistxattr, __NR_flistxattr,
    __NR_setxattr, __NR_lsetxattr, __NR_fsetxattr, __NR_removexattr, __NR_lremovexattr,
    __NR_fremovexattr, __NR_inotify_init, __NR_inotify_init1, __NR_inotify_add_watch,
    __NR_inotify_rm_watch,
    /* memory */
    __NR_brk, __NR_mmap, __NR_munmap, __NR_mremap, __NR_mprotect, __NR_madvise, __NR_mincore,
    __NR_msync, __NR_mlock, __NR_mlock2, __NR_munlock, __NR_mlockall, __NR_munlockall,
    __NR_membarrier, __NR_pkey_alloc, __NR_pkey_free, __NR_pkey_mprotect,
    /* processes and threads (clone is conditional, below) */
    __NR_fork, __NR_vfork, __NR_execve, __NR_execveat, __NR_exit, __NR_exit_group, __NR_wait4,
    __NR_waitid, __NR_kill, __NR_tkill, __NR_tgkill, __NR_pidfd_open, __NR_pidfd_send_signal,
    __NR_getpid, __NR_getppid, __NR_gettid, __NR_getpgid, __NR_getpgrp, __NR_setpgid, __NR_getsid,
    __NR_setsid, __NR_set_tid_address, __NR_set_robust_list, __NR_get_robust_list, __NR_rseq,
    __NR_arch_prctl, __NR_prctl, __NR_futex, __NR_futex_waitv, __NR_sched_yield,
    __NR_sched_getaffinity, __NR_sched_setaffinity, __NR_sched_getparam, __NR_sched_setparam,
    __NR_sched_getscheduler, __NR_sched_setscheduler, __NR_sched_get_priority_max,
    __NR_sched_get_priority_min, __NR_sched_rr_get_interval, __NR_sched_getattr, __NR_sched_setattr,
    __NR_getpriority, __NR_setpriority, __NR_ioprio_get, __NR_ioprio_set, __NR_getrusage,
    __NR_getrlimit, __NR_setrlimit, __NR_times, __NR_getcpu,
    /* self-restriction only: these can take rights away, never add them */
    __NR_capget, __NR_capset, __NR_seccomp, __NR_landlock_create_ruleset, __NR_landlock_add_rule,
    __NR_landlock_restrict_self,
    /* identity (without capabilities these can only drop) */
    __NR_getuid, __NR_geteuid, __NR_getgid, __NR_getegid, __NR_getresuid, __NR_getresgid,
    __NR_getgroups, __NR_setuid, __NR_setgid, __NR_setreuid, __NR_setregid, __NR_setresuid,
    __NR_setresgid, __NR_setgroups, __NR_setfsuid, __NR_setfsgid,
    /* signals */
    __NR_rt_sigaction, __NR_rt_sigprocmask, __NR_rt_sigreturn, __NR_rt_sigpending,
    __NR_rt_sigsuspend, __NR_rt_sigtimedwait, __NR_rt_sigqueueinfo, __NR_rt_tgsigqueueinfo,
    __NR_sigaltstack, __NR_signalfd, __NR_signalfd4, __NR_pause, __NR_alarm, __NR_getitimer,
    __NR_setitimer, __NR_restart_syscall,
    /* time (reading it; setting it is refused) */
    __NR_clock_gettime, __NR_clock_getres, __NR_clock_nanosleep, __NR_nanosleep, __NR_gettimeofday,
    __NR_time, __NR_timer_create, __NR_timer_settime, __NR_timer_gettime, __NR_timer_getoverrun,
    __NR_timer_delete, __NR_timerfd_create, __NR_timerfd_settime, __NR_timerfd_gettime,
    /* waiting for events */
    __NR_epoll_create, __NR_epoll_create1, __NR_epoll_ctl, __NR_epoll_wait, __NR_epoll_pwait,
    __NR_epoll_pwait2, __NR_poll, __NR_ppoll, __NR_select, __NR_pselect6, __NR_eventfd,
    __NR_eventfd2,
    /* socket operations (socket and socketpair are conditional, below) */
    __NR_bind, __NR_listen, __NR_accept, __NR_accept4, __NR_connect, __NR_getsockname,
    __NR_getpeername, __NR_getsockopt, __NR_setsockopt, __NR_sendto, __NR_recvfrom, __NR_sendmsg,
    __NR_recvmsg, __NR_sendmmsg, __NR_recvmmsg, __NR_shutdown,
    /* SysV and POSIX IPC (the worker's own ipc namespace) */
    __NR_shmget, __NR_shmat, __NR_shmdt, __NR_shmctl, __NR_semget, __NR_semop, __NR_semtimedop,
    __NR_semctl, __NR_msgget, __NR_msgsnd, __NR_msgrcv, __NR_msgctl, __NR_mq_open, __NR_mq_unlink,
    __NR_mq_timedsend, __NR_mq_timedreceive, __NR_mq_notify, __NR_mq_getsetattr,
    /* system information */
    __NR_uname, __NR_sysinfo, __NR_getrandom};

/* Calls no function has a use for: the process is killed (SIGSYS), which
 * the daemon reports as a sandbox violation. */
static const int killed_syscalls[] = {
    __NR_ptrace,      __NR_process_vm_readv, __NR_process_vm_writev,
    __NR_bpf,         __NR_kexec_load,       __NR_kexec_file_load,
    __NR_init_module, __NR_finit_module,     __NR_delete_module,
    __NR_iopl,        __NR_ioperm,           __NR_reboot,
    __NR_swapon,      __NR_swapoff,
};

/* ioctl requests refused, compared on the low 32 bits (the kernel's cmd is
 * an unsigned int, so higher bits must not smuggle them past). */
static const uint32_t refused_ioctls[] = {TIOCSTI, TIOCLINUX};

/* personality values a runtime may set; anything else (READ_IMPLIES_EXEC,
 * the 32-bit address-space personas…) is refused. 0xffffffff queries. */
static const uint32_t allowed_personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

static const int allowed_socket_families[] = {AF_UNIX, AF_INET, AF_INET6};

/* File types mknod may create: FIFOs, sockets, regular files (0 = regular). */
static const uint32_t allowed_mknod_types[] = {0, S_IFREG, S_IFIFO, S_IFSOCK};

#define CLONE_NAMESPACE_FLAGS                                                                      \
    (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |  \
     CLONE_NEWNET)

static int add_each(scmp_filter_ctx ctx, uint32_t action, const int *nrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, action, nrs[i], 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_newer_syscalls(scmp_filter_ctx ctx)
{
    int rc = 0;
    for (size_t i = 0; i < COUNT(newer_syscalls) && rc == 0; i++) {
        if (newer_syscalls[i].verdict == ALLOW)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, newer_syscalls[i].nr, 0);
        else if (newer_syscalls[i].verdict == FAIL_ENOSYS)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), newer_syscalls[i].nr, 0);
    }
    /* What the kernel may add after this policy was written: ENOSYS makes
     * libc fall back as on an older kernel, where EPERM would be an error. */
    for (int nr = POLICY_NEWEST_NR + 1; nr <= NATIVE_LAST_NR && rc == 0; nr++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    return rc;
}

/* Threads and fork, never a new namespace; clone3 hides its flags behind
 * a pointer, so it reports ENOSYS and glibc falls back to clone. */
static int add_process_rules(scmp_filter_ctx ctx)
{
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, __NR_clone, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACE_FLAGS, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), __NR_clone3, 0);
    if (rc == 0) /* pid 0: the caller itself */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, __NR_prlimit64, 1, SCMP_A0(SCMP_CMP_EQ, 0));
    for (size_t i = 0; i < COUNT(allowed_personalities) && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, __NR_personality, 1,
                              SCMP_A0(SCMP_CMP_EQ, allowed_personalities[i]));
    return rc;
}

static bool family_allowed(int family)
{
    for (size_t i = 0; i < COUNT(allowed_socket_families); i++)
        if (allowed_socket_families[i] == family)
            return true;
    return false;
}

/* AF_UNIX, AF_INET, AF_INET6; any other family answers EAFNOSUPPORT, as
 * a kernel without it would. libseccomp cannot test one argument twice,
 * so "other" is every smaller family one by one plus "greater than". */
static int add_socket_rules(scmp_filter_ctx ctx, int nr)
{
    int rc = 0;
    int highest = 0;
    for (size_t i = 0; i < COUNT(allowed_socket_families) && rc == 0; i++) {
        int family = allowed_socket_families[i];
        highest = family > highest ? family : highest;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, (uint64_t)family));
    }
    for (int family = 0; family < highest && rc == 0; family++)
        if (!family_allowed(family))
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                  SCMP_A0(SCMP_CMP_EQ, (uint64_t)family));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                              SCMP_A0(SCMP_CMP_GT, (uint64_t)highest));
    return rc;
}

/* The top `bits` bits of a 32-bit value. */
static uint32_t top_mask(unsigned bits)
{
    return bits == 0 ? 0 : UINT32_MAX << (32 - bits);
}

/*
 * Allows every ioctl whose request's low 32 bits start with the top `bits`
 * bits of `prefix` and are none of refused_ioctls[]. An unconditional
 * ALLOW would override any conditional refusal, so the allowed requests
 * are covered by masked-equality rules instead: walking the binary trie of
 * the refused values, every branch leading to none of them becomes one
 * rule (about 34 rules for two values).
 */
static int allow_ioctls_under(scmp_filter_ctx ctx, uint32_t prefix, unsigned bits)
{
    uint32_t mask = top_mask(bits);
    bool refused_below = false;
    for (size_t i = 0; i < COUNT(refused_ioctls); i++)
        if ((refused_ioctls[i] & mask) == (prefix & mask))
            refused_below = true;
    if (!refused_below)
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, __NR_ioctl, 1,
                                SCMP_A1(SCMP_CMP_MASKED_EQ, mask, prefix & mask));
    if (bits == 32)
        return 0; /* exactly a refused request: left to the default, EPERM */
    int rc = allow_ioctls_under(ctx, prefix, bits + 1);
    if (rc == 0)
        rc = allow_ioctls_under(ctx, prefix | (UINT32_C(1) << (31 - bits)), bits + 1);
    return rc;
}

/* mknod's mode is argument `arg`; only the file types listed pass. */
static int add_mknod_rules(scmp_filter_ctx ctx, int nr, unsigned arg)
{
    int rc = 0;
    for (size_t i = 0; i < COUNT(allowed_mknod_types) && rc == 0; i++) {
        struct scmp_arg_cmp cmp = {.arg = arg,
                                   .op = SCMP_CMP_MASKED_EQ,
                                   .datum_a = S_IFMT,
                                   .datum_b = allowed_mknod_types[i]};
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
    }
    return rc;
}

static int add_conditional_rules(scmp_filter_ctx ctx)
{
    int rc = add_process_rules(ctx);
    if (rc == 0)
        rc = add_socket_rules(ctx, __NR_socket);
    if (rc == 0)
        rc = add_socket_rules(ctx, __NR_socketpair);
    if (rc == 0)
        rc = allow_ioctls_under(ctx, 0, 0);
    if (rc == 0)
        rc = add_mknod_rules(ctx, __NR_mknod, 1);
    if (rc == 0)
        rc = add_mknod_rules(ctx, __NR_mknodat, 2);
    return rc;
}

/* x86_64 only (seccomp_init adds just the native arch; libseccomp's x86_64
 * filter also sends x32 numbers to the bad-arch action). The filter must
 * not set no_new_privs: that is the spawner's step. */
static int configure(scmp_filter_ctx ctx)
{
    if (seccomp_arch_native() != SCMP_ARCH_X86_64)
        return -EOPNOTSUPP;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc == 0) /* a binary tree of syscall numbers instead of a linear scan */
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    return rc;
}

static int add_policy(scmp_filter_ctx ctx)
{
    int rc = configure(ctx);
    if (rc == 0)
        rc = add_each(ctx, SCMP_ACT_ALLOW, allowed_syscalls, COUNT(allowed_syscalls));
    if (rc == 0)
        rc = add_each(ctx, SCMP_ACT_KILL_PROCESS, killed_syscalls, COUNT(killed_syscalls));
    if (rc == 0)
        rc = add_conditional_rules(ctx);
    if (rc == 0)
        rc = add_newer_syscalls(ctx);
    return rc;
}

/* Reads the whole program from fd into a new array. */
static int read_program(int fd, sandbox_filter *out)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0)
        return -errno;
    if (size == 0 || size % (off_t)sizeof(struct sock_filter) != 0)
        return -EIO;
    if (size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS)
        return -E2BIG;
    struct sock_filter *insns = malloc((size_t)size);
    if (!insns)
        return -ENOMEM;
    off_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (char *)insns + done, (size_t)(size - done), done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            free(insns);
            return -err;
        }
        done += n;
    }
    out->insns = insns;
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    return 0;
}

/* libseccomp 2.5 exports only to an fd; a memfd keeps it off the disk. */
static int export_program(scmp_filter_ctx ctx, sandbox_filter *out)
{
    int fd = memfd_create("hearth-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc == 0)
        rc = read_program(fd, out);
    close(fd);
    return rc < 0 ? rc : 0;
}

int sandbox_seccomp_build(sandbox_filter *out)
{
    if (!out)
        return -EINVAL;
    *out = (sandbox_filter){0};
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return -ENOMEM;
    int rc = add_policy(ctx);
    if (rc == 0)
        rc = export_program(ctx, out);
    seccomp_release(ctx);
    return rc;
}

#else /* not x86_64: the policy tables name x86_64 numbers */

int sandbox_seccomp_build(sandbox_filter *out)
{
    if (out)
        *out = (sandbox_filter){0};
    return -EOPNOTSUPP;
}

#endif

int sandbox_seccomp_install(const sandbox_filter *f)
{
    if (!f || !f->insns || f->len == 0)
        return -EINVAL;
    struct sock_fprog prog = {.len = f->len, .filter = f->insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0U, &prog) != 0)
        return -errno;
    return 0;
}

void sandbox_seccomp_release(sandbox_filter *f)
{
    if (!f)
        return;
    free(f->insns);
    *f = (sandbox_filter){0};
}

static const char *newer_syscall_name(int nr)
{
    for (size_t i = 0; i < COUNT(newer_syscalls); i++)
        if (newer_syscalls[i].nr == nr)
            return newer_syscalls[i].name;
    return NULL;
}

const char *sandbox_seccomp_syscall_name(int nr, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return "?";
    if (nr >= 0 && (nr & X32_SYSCALL_BIT)) {
        snprintf(buf, cap, "x32 syscall %d", nr & ~X32_SYSCALL_BIT);
        return buf;
    }
    char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr) : NULL;
    const char *known = name ? name : newer_syscall_name(nr);
    if (known)
        snprintf(buf, cap, "%s", known);
    else
        snprintf(buf, cap, "syscall %d", nr);
    free(name);
    return buf;
}

/* ---- naming the syscall of a kill, from the kernel's audit record ---- */

int sandbox_seccomp_audit_open(void)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    lseek(fd, 0, SEEK_END);
    return fd;
}

/* The number after " key=" in a record, or -1. */
static long audit_field(const char *rec, const char *key)
{
    const char *p = strstr(rec, key);
    if (!p)
        return -1;
    char *end;
    long v = strtol(p + strlen(key), &end, 10);
    return end == p + strlen(key) ? -1 : v;
}

void sandbox_seccomp_audit_read(int kmsg_fd, sandbox_audit_fn seen, void *ud)
{
    char rec[2048];
    for (int records = 0; kmsg_fd >= 0 && records < 4096; records++) {
        ssize_t n = read(kmsg_fd, rec, sizeof rec - 1);
        if (n < 0 && errno == EPIPE)
            continue; /* records were overwritten before we read them */
        if (n <= 0)
            break;
        rec[n] = '\0';
        long uid = audit_field(rec, " uid="), pid = audit_field(rec, " pid="),
             nr = audit_field(rec, " syscall=");
        if (!strstr(rec, "type=1326") || uid < 0 || pid <= 0 || nr < 0)
            continue;
        /* Only x86_64 numbers name x86_64 calls. */
        seen((uid_t)uid, (pid_t)pid, strstr(rec, " arch=c000003e ") ? (int)nr : -1, ud);
    }
}

/* ---- the daemon's own filter ---- */

static const int daemon_denied[] = {
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
#ifndef HEARTH_SANITIZE_BUILD /* LeakSanitizer stops the daemon's threads with ptrace */
    __NR_ptrace,
#endif
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_kexec_load,
    __NR_kexec_file_load,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_bpf,
    __NR_unshare,
    __NR_setns,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_iopl,
    __NR_ioperm,
    __NR_acct,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_open_by_handle_at,
    __NR_fsopen,
    __NR_fsmount,
    __NR_fsconfig,
    __NR_fspick,
    __NR_move_mount,
    __NR_open_tree,
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
    __NR_kcmp,
    __NR_pidfd_getfd,
    __NR_personality,
    __NR_syslog,
    __NR_vhangup,
};

int sandbox_seccomp_lock_daemon(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    static const uint64_t ns_flags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                        CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = add_each(ctx, SCMP_ACT_ERRNO(EPERM), daemon_denied, COUNT(daemon_denied));
    /* New namespaces through clone() too; threads (no CLONE_NEW*) stay allowed. */
    for (size_t i = 0; rc == 0 && i < COUNT(ns_flags); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), __NR_clone, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}
