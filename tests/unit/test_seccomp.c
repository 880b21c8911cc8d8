/*
 * test_seccomp.c — the worker's seccomp policy, checked for real: each
 * probe runs in a forked child that sets no_new_privs, installs the
 * prebuilt filter and makes the call; the result (a return value or
 * -errno) comes back through a pipe, or the child dies of SIGSYS. Then
 * Python, sh and (if present) Node run under the filter, as a worker would.
 *
 * Runs as root: without the filter most probes would succeed, which is
 * what makes a refusal meaningful. To stay harmless if the filter were
 * broken, each child first leaves the terminal (setsid, fd 0 = /dev/null)
 * and enters a private mount namespace, and no probe has an argument that
 * would change the host (no sethostname, no kexec_load, clocks set from
 * NULL pointers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox_seccomp.h"

#define X32_SYSCALL_BIT 0x40000000L
#define TIMEOUT_MS      20000
#define OUT_CAP         8192
#define HIGH_BITS       (1L << 32)

extern char **environ;

static sandbox_filter filter;
static char tmpdir[64];

static double ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s", "/tmp/hearth-seccomp-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int rc = sandbox_seccomp_build(&filter);
    printf("[ info ] sandbox_seccomp_build: %.2f ms, %u BPF instructions\n", ms_since(&start),
           filter.len);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    sandbox_seccomp_release(&filter);
    char path[96];
    snprintf(path, sizeof path, "%s/fifo", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/dev", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

/* ---- running one probe in a filtered child ---- */

typedef long (*probe_fn)(const void *arg); /* a result >= 0, or -errno */

struct outcome {
    bool reported; /* the child wrote a result */
    long value;
    int wstatus;
};

static void write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Off the terminal and (as root, the only case where a probe could
 * mount) out of the host's mount table, so that a broken filter could not
 * let a probe reach either. */
static int isolate_child(void)
{
    int null_fd = open("/dev/null", O_RDWR);
    if (setsid() < 0 || null_fd < 0 || dup2(null_fd, 0) < 0)
        return -1;
    close(null_fd);
    if (geteuid() != 0)
        return 0;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    return 0;
}

enum { CHILD_SETUP_FAILED = -100000 };

/* cmocka catches SIGSEGV and friends and longjmps back into the runner: a
 * child must die of them instead of running the rest of the suite. */
static void restore_fatal_signals(void)
{
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static _Noreturn void child_probe(int report_fd, bool filtered, probe_fn fn, const void *arg)
{
    long value = CHILD_SETUP_FAILED;
    restore_fatal_signals();
    if (isolate_child() == 0 && chdir(tmpdir) == 0 &&
        (!filtered || (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == 0 &&
                       sandbox_seccomp_install(&filter) == 0)))
        value = fn(arg);
    write_all(report_fd, &value, sizeof value);
    _exit(0); /* not exit: no atexit handlers (LeakSanitizer would ptrace) */
}

static struct outcome run_probe(bool filtered, probe_fn fn, const void *arg)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_probe(p[1], filtered, fn, arg);
    }
    close(p[1]);
    struct outcome o = {.value = 0};
    ssize_t n;
    do
        n = read(p[0], &o.value, sizeof o.value);
    while (n < 0 && errno == EINTR);
    o.reported = n == (ssize_t)sizeof o.value;
    close(p[0]);
    assert_int_equal(waitpid(pid, &o.wstatus, 0), pid);
    assert_false(o.reported && o.value == CHILD_SETUP_FAILED);
    return o;
}

/* ---- probes ---- */

struct call {
    const char *what;
    long nr;
    long a[6];
};

static long probe_syscall(const void *arg)
{
    const struct call *c = arg;
    long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
    return r < 0 ? -errno : r;
}

/* For calls that create a process when they succeed: the new process
 * leaves at once, the caller reports success as 1. */
static long probe_new_process(const void *arg)
{
    long r = probe_syscall(arg);
    if (r == 0)
        _exit(0);
    if (r > 0) {
        waitpid((pid_t)r, NULL, 0);
        return 1;
    }
    return r;
}

static long probe_fork(const void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    if (pid < 0)
        return -errno;
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -EIO;
}

static void *thread_body(void *arg)
{
    return arg;
}

static long probe_thread(const void *arg)
{
    (void)arg;
    pthread_t t;
    int marker = 42;
    void *got = NULL;
    int rc = pthread_create(&t, NULL, thread_body, &marker);
    if (rc != 0)
        return -rc;
    pthread_join(t, &got);
    return got == &marker ? 1 : -EIO;
}

/* getpid through the i386 entry point: eax = 20 (i386 __NR_getpid). */
static long probe_int80(const void *arg)
{
    (void)arg;
    long ret = 20;
    __asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory");
    return ret;
}

/* ---- expectations ---- */

static void expect_errno(const struct call *c, int err)
{
    struct outcome o = run_probe(true, probe_syscall, c);
    if (!o.reported || o.value != -err) {
        print_error("%s: expected -%d (%s), got reported=%d value=%ld status=0x%x\n", c->what, err,
                    strerror(err), o.reported, o.value, o.wstatus);
        fail();
    }
}

static void expect_success(const struct call *c)
{
    struct outcome o = run_probe(true, probe_syscall, c);
    if (!o.reported || o.value < 0) {
        print_error("%s: expected success, got reported=%d value=%ld status=0x%x\n", c->what,
                    o.reported, o.value, o.wstatus);
        fail();
    }
}

static void expect_killed_fn(const char *what, probe_fn fn, const void *arg)
{
    struct outcome o = run_probe(true, fn, arg);
    if (o.reported || !WIFSIGNALED(o.wstatus) || WTERMSIG(o.wstatus) != SIGSYS) {
        print_error("%s: expected death by SIGSYS, got reported=%d value=%ld status=0x%x\n", what,
                    o.reported, o.value, o.wstatus);
        fail();
    }
}

#define CALL(nr, ...)        ((struct call){#nr, nr, {__VA_ARGS__}})
#define CALLN(what, nr, ...) ((struct call){what, nr, {__VA_ARGS__}})

/* ---- tests ---- */

static void test_build_and_interface(void **state)
{
    (void)state;
    assert_non_null(filter.insns);
    assert_true(filter.len > 0 && filter.len <= 4096);
    assert_int_equal(sandbox_seccomp_install(NULL), -EINVAL);
    sandbox_filter empty = {0};
    assert_int_equal(sandbox_seccomp_install(&empty), -EINVAL);
    sandbox_seccomp_release(&empty);
    sandbox_seccomp_release(NULL);
    assert_int_equal(sandbox_seccomp_build(NULL), -EINVAL);
}

static void test_syscall_names(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(sandbox_seccomp_syscall_name(SYS_ptrace, buf, sizeof buf), "ptrace");
    assert_string_equal(sandbox_seccomp_syscall_name(SYS_mount, buf, sizeof buf), "mount");
    assert_string_equal(sandbox_seccomp_syscall_name(462, buf, sizeof buf), "mseal");
    assert_string_equal(sandbox_seccomp_syscall_name(999, buf, sizeof buf), "syscall 999");
    assert_string_equal(
        sandbox_seccomp_syscall_name((int)(X32_SYSCALL_BIT | SYS_getpid), buf, sizeof buf),
        "x32 syscall 39");
    char small[4];
    assert_string_equal(sandbox_seccomp_syscall_name(SYS_ptrace, small, sizeof small), "ptr");
    assert_string_equal(sandbox_seccomp_syscall_name(SYS_ptrace, NULL, 0), "?");
}

static void test_mount_and_namespaces_refused_with_eperm(void **state)
{
    (void)state;
    const long here = AT_FDCWD;
    const struct call calls[] = {
        CALL(SYS_mount, (long)"hearth", (long)tmpdir, (long)"tmpfs", 0, 0),
        CALL(SYS_umount2, (long)tmpdir, 0),
        CALL(SYS_pivot_root, (long)".", (long)"."),
        CALL(SYS_fsopen, (long)"tmpfs", 0),
        CALL(SYS_fsconfig, -1, 0, 0, 0, 0),
        CALL(SYS_fsmount, -1, 0, 0),
        CALL(SYS_fspick, here, (long)"/", 0),
        CALL(SYS_move_mount, -1, (long)"", -1, (long)"", 0),
        CALL(SYS_open_tree, here, (long)"/", 0),
        CALL(SYS_mount_setattr, -1, (long)"", 0, 0, 0),
        CALLN("open_tree_attr", 467, here, (long)"/", 0, 0, 0),
        CALLN("statmount", 457, 0, 0, 0, 0),
        CALLN("listmount", 458, 0, 0, 0, 0),
        CALL(SYS_chroot, (long)"/"),
        CALLN("unshare(CLONE_NEWUSER)", SYS_unshare, CLONE_NEWUSER),
        CALLN("unshare(CLONE_NEWNS)", SYS_unshare, CLONE_NEWNS),
        CALLN("unshare(CLONE_NEWNET)", SYS_unshare, CLONE_NEWNET),
        CALL(SYS_setns, -1, 0),
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        expect_errno(&calls[i], EPERM);
}

static void test_clone_with_namespace_flags_refused(void **state)
{
    (void)state;
    const long flags[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,   CLONE_NEWNET,
                          CLONE_NEWUTS, CLONE_NEWIPC,  CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct call c = CALLN("clone(CLONE_NEW*)", SYS_clone, flags[i] | SIGCHLD, 0, 0, 0, 0);
        struct outcome o = run_probe(true, probe_new_process, &c);
        assert_true(o.reported);
        assert_int_equal(o.value, -EPERM);
    }
}

static void test_clone3_reports_enosys(void **state)
{
    (void)state;
    uint64_t args[8] = {0}; /* struct clone_args, version 0 */
    args[4] = SIGCHLD;      /* exit_signal */
    struct call c = CALLN("clone3", SYS_clone3, (long)args, (long)sizeof args);
    struct outcome o = run_probe(true, probe_new_process, &c);
    assert_true(o.reported);
    assert_int_equal(o.value, -ENOSYS);
    /* Unfiltered, the same call creates a process: the ENOSYS is the filter's. */
    o = run_probe(false, probe_new_process, &c);
    assert_true(o.reported);
    assert_int_equal(o.value, 1);
}

static void test_fork_and_threads_work(void **state)
{
    (void)state;
    struct outcome o = run_probe(true, probe_fork, NULL);
    assert_true(o.reported);
    assert_int_equal(o.value, 7);
    o = run_probe(true, probe_thread, NULL);
    assert_true(o.reported);
    assert_int_equal(o.value, 1);
}

static void test_dangerous_calls_refused_with_eperm(void **state)
{
    (void)state;
    const long self = getpid();
    const struct call calls[] = {
        CALL(SYS_kcmp, self, self, 0 /* KCMP_FILE */, 0, 0),
        CALL(SYS_pidfd_getfd, -1, 0, 0),
        CALL(SYS_userfaultfd, 0),
        CALL(SYS_perf_event_open, 0, 0, -1, -1, 0),
        CALL(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session keyring */, 0),
        CALL(SYS_add_key, (long)"user", (long)"hearth", 0, 0, -2 /* process keyring */),
        CALL(SYS_request_key, (long)"user", (long)"hearth-none", 0, 0),
        CALL(SYS_io_uring_setup, 1, 0),
        CALL(SYS_io_uring_enter, -1, 0, 0, 0, 0, 0),
        CALL(SYS_io_uring_register, -1, 0, 0, 0),
        CALL(SYS_settimeofday, 0, 0),
        CALL(SYS_clock_settime, CLOCK_REALTIME, 0),
        CALL(SYS_clock_adjtime, CLOCK_REALTIME, 0),
        CALL(SYS_adjtimex, 0),
        CALL(SYS_acct, 0),
        CALL(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0),
        CALL(SYS_quotactl, 0, 0, 0, 0),
        CALL(SYS_lookup_dcookie, 0, 0, 0),
        CALL(SYS_vhangup),
        CALL(SYS_open_by_handle_at, -1, 0, 0),
        CALL(SYS_name_to_handle_at, AT_FDCWD, (long)"/", 0, 0, 0),
        CALL(SYS_modify_ldt, 0, 0, 0),
        CALL(SYS_process_madvise, -1, 0, 0, 0, 0),
        CALLN("prlimit64(other pid)", SYS_prlimit64, getppid(), RLIMIT_NOFILE, 0, 0),
        CALLN("personality(PER_LINUX32_3GB)", SYS_personality, 0x8000000),
        CALLN("personality(READ_IMPLIES_EXEC)", SYS_personality, 0x0400000),
        CALLN("personality(high bits)", SYS_personality, HIGH_BITS),
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        expect_errno(&calls[i], EPERM);
}

static void test_ioctl_tiocsti_and_tioclinux_refused_on_low_32_bits(void **state)
{
    (void)state;
    static char byte = 'x';
    const struct call refused[] = {
        CALLN("ioctl(TIOCSTI)", SYS_ioctl, 0, TIOCSTI, (long)&byte),
        CALLN("ioctl(TIOCSTI | 1<<32)", SYS_ioctl, 0, TIOCSTI | HIGH_BITS, (long)&byte),
        CALLN("ioctl(TIOCSTI | 0xffffffff<<32)", SYS_ioctl, 0,
              (long)(0xffffffff00000000UL | TIOCSTI), (long)&byte),
        CALLN("ioctl(TIOCLINUX)", SYS_ioctl, 0, TIOCLINUX, (long)&byte),
        CALLN("ioctl(TIOCLINUX | 1<<32)", SYS_ioctl, 0, TIOCLINUX | HIGH_BITS, (long)&byte),
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect_errno(&refused[i], EPERM);
    /* Neighbouring requests reach the driver (/dev/null: not a tty). */
    static struct winsize ws;
    const struct call tty_requests[] = {
        CALLN("ioctl(TIOCGWINSZ)", SYS_ioctl, 0, TIOCGWINSZ, (long)&ws),
        CALLN("ioctl(TIOCGWINSZ | 1<<32)", SYS_ioctl, 0, TIOCGWINSZ | HIGH_BITS, (long)&ws),
        CALLN("ioctl(TIOCSTI - 1)", SYS_ioctl, 0, TIOCSTI - 1, (long)&ws),
        CALLN("ioctl(TIOCLINUX + 1)", SYS_ioctl, 0, TIOCLINUX + 1, (long)&byte),
    };
    for (size_t i = 0; i < sizeof tty_requests / sizeof tty_requests[0]; i++)
        expect_errno(&tty_requests[i], ENOTTY);
    struct call cloexec = CALLN("ioctl(FIOCLEX)", SYS_ioctl, 0, FIOCLEX);
    expect_success(&cloexec);
}

static void test_socket_families(void **state)
{
    (void)state;
    static int sv[2];
    const struct call refused[] = {
        CALLN("socket(AF_NETLINK)", SYS_socket, AF_NETLINK, SOCK_RAW, 0),
        CALLN("socket(AF_PACKET)", SYS_socket, AF_PACKET, SOCK_RAW, 0),
        CALLN("socket(AF_UNSPEC)", SYS_socket, AF_UNSPEC, SOCK_STREAM, 0),
        CALLN("socket(AF_AX25)", SYS_socket, AF_AX25, SOCK_SEQPACKET, 0),
        CALLN("socket(AF_XDP)", SYS_socket, AF_XDP, SOCK_RAW, 0),
        CALLN("socket(AF_VSOCK)", SYS_socket, AF_VSOCK, SOCK_STREAM, 0),
        CALLN("socket(AF_INET | 1<<32)", SYS_socket, AF_INET | HIGH_BITS, SOCK_STREAM, 0),
        CALLN("socketpair(AF_NETLINK)", SYS_socketpair, AF_NETLINK, SOCK_RAW, 0, (long)sv),
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        expect_errno(&refused[i], EAFNOSUPPORT);
    const struct call allowed[] = {
        CALLN("socket(AF_INET)", SYS_socket, AF_INET, SOCK_STREAM, 0),
        CALLN("socket(AF_INET, SOCK_DGRAM)", SYS_socket, AF_INET, SOCK_DGRAM, 0),
        CALLN("socket(AF_UNIX)", SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
        CALLN("socketpair(AF_UNIX)", SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, (long)sv),
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        expect_success(&allowed[i]);
}

static void test_harmless_calls_allowed(void **state)
{
    (void)state;
    static struct rlimit rl;
    static char fifo[96];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    const struct call allowed[] = {
        CALLN("personality(0xffffffff)", SYS_personality, 0xffffffffL),
        CALLN("personality(PER_LINUX)", SYS_personality, 0),
        CALLN("personality(PER_LINUX32)", SYS_personality, 0x8),
        CALLN("personality(UNAME26)", SYS_personality, 0x20000),
        CALLN("prlimit64(0)", SYS_prlimit64, 0, RLIMIT_NOFILE, 0, (long)&rl),
        CALLN("mknodat(FIFO)", SYS_mknodat, AT_FDCWD, (long)fifo, S_IFIFO | 0600, 0),
        CALLN("fchmodat2", 452, AT_FDCWD, (long)tmpdir, 0700, 0),
        CALL(SYS_getrandom, (long)&rl, sizeof rl, 0),
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        expect_success(&allowed[i]);
    unlink(fifo);
    static char dev[96];
    snprintf(dev, sizeof dev, "%s/dev", tmpdir);
    struct call chardev =
        CALLN("mknodat(S_IFCHR)", SYS_mknodat, AT_FDCWD, (long)dev, S_IFCHR | 0600, makedev(1, 3));
    expect_errno(&chardev, EPERM);
    struct call chardev_old =
        CALLN("mknod(S_IFBLK)", SYS_mknod, (long)dev, S_IFBLK | 0600, makedev(7, 0));
    expect_errno(&chardev_old, EPERM);
}

static void test_syscalls_newer_than_policy_report_enosys(void **state)
{
    (void)state;
    const struct call calls[] = {
        CALLN("syscall 470", 470, 0),
        CALLN("syscall 511", 511, 0),
        CALLN("cachestat", 451, -1, 0, 0, 0),
        CALLN("map_shadow_stack", 453, 0, 0, 0),
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        expect_errno(&calls[i], ENOSYS);
}

static void test_attacker_only_calls_kill_the_process(void **state)
{
    (void)state;
    const long self = getpid();
    const struct call calls[] = {
        CALL(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0),
        CALL(SYS_process_vm_readv, self, 0, 0, 0, 0, 0),
        CALL(SYS_process_vm_writev, self, 0, 0, 0, 0, 0),
        CALL(SYS_bpf, -1, 0, 0),
        CALL(SYS_kexec_file_load, -1, -1, 0, (long)"", 0),
        CALL(SYS_init_module, 0, 0, (long)""),
        CALL(SYS_finit_module, -1, (long)"", 0),
        CALL(SYS_delete_module, (long)"hearth_none", O_NONBLOCK),
        CALL(SYS_iopl, 0),
        CALL(SYS_ioperm, 0x80, 1, 0),
        CALL(SYS_reboot, 0, 0, 0, 0),
        CALL(SYS_swapon, (long)"/nonexistent-hearth", 0),
        CALL(SYS_swapoff, (long)"/nonexistent-hearth"),
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        expect_killed_fn(calls[i].what, probe_syscall, &calls[i]);
}

static void test_x32_syscall_kills_the_process(void **state)
{
    (void)state;
    struct call x32 = CALLN("x32 getpid", X32_SYSCALL_BIT | SYS_getpid);
    expect_killed_fn(x32.what, probe_syscall, &x32);
}

static void test_i386_syscall_kills_the_process(void **state)
{
    (void)state;
    /* The i386 entry point exists only with IA32 emulation: check first. */
    struct outcome plain = run_probe(false, probe_int80, NULL);
    if (!plain.reported || plain.value <= 0) {
        print_message("[ skip ] no i386 entry point (int 0x80) on this kernel (status 0x%x)\n",
                      plain.wstatus);
        skip();
    }
    expect_killed_fn("int 0x80 getpid", probe_int80, NULL);
}

/* A classic-BPF interpreter for the opcodes libseccomp emits, so that the
 * program's verdict on inputs this machine cannot produce (an i386 entry
 * point, when the kernel has none) is still checked. Returns UINT32_MAX
 * for an instruction it does not know or a jump out of the program. */
static uint32_t bpf_verdict(const sandbox_filter *f, const struct seccomp_data *d)
{
    uint32_t acc = 0;
    for (size_t pc = 0; pc < f->len; pc++) {
        const struct sock_filter *in = &f->insns[pc];
        switch (in->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (in->k > sizeof *d - sizeof acc)
                return UINT32_MAX;
            memcpy(&acc, (const char *)d + in->k, sizeof acc);
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            acc &= in->k;
            break;
        case BPF_JMP | BPF_JA:
            pc += in->k;
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += acc == in->k ? in->jt : in->jf;
            break;
        case BPF_JMP | BPF_JGT | BPF_K:
            pc += acc > in->k ? in->jt : in->jf;
            break;
        case BPF_JMP | BPF_JGE | BPF_K:
            pc += acc >= in->k ? in->jt : in->jf;
            break;
        case BPF_JMP | BPF_JSET | BPF_K:
            pc += (acc & in->k) ? in->jt : in->jf;
            break;
        case BPF_RET | BPF_K:
            return in->k;
        default:
            return UINT32_MAX;
        }
    }
    return UINT32_MAX;
}

static void test_program_refuses_foreign_architectures(void **state)
{
    (void)state;
    struct seccomp_data d = {.nr = SYS_getpid, .arch = AUDIT_ARCH_X86_64};
    assert_int_equal(bpf_verdict(&filter, &d), SECCOMP_RET_ALLOW);
    d.nr = SYS_mount;
    assert_int_equal(bpf_verdict(&filter, &d), SECCOMP_RET_ERRNO | EPERM);
    d.nr = (int)(X32_SYSCALL_BIT | SYS_getpid);
    assert_int_equal(bpf_verdict(&filter, &d), SECCOMP_RET_KILL_PROCESS);
    d = (struct seccomp_data){.nr = 20 /* i386 getpid */, .arch = AUDIT_ARCH_I386};
    assert_int_equal(bpf_verdict(&filter, &d), SECCOMP_RET_KILL_PROCESS);
}

/* Runs argv under the filter with stdout+stderr captured; returns the wait status. */
static int exec_filtered(const char *const *argv, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        restore_fatal_signals();
        if (dup2(p[1], 1) >= 0 && dup2(p[1], 2) >= 0 &&
            prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == 0 &&
            sandbox_seccomp_install(&filter) == 0)
            execve(argv[0], (char *const *)argv, environ);
        _exit(127);
    }
    close(p[1]);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int left = TIMEOUT_MS - (int)ms_since(&start);
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(p[0], out + len, cap - 1 - len);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        if (n > 0)
            len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    out[len] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_runs(const char *const *argv, const char *expected)
{
    char out[OUT_CAP];
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status = exec_filtered(argv, out, sizeof out);
    printf("[ info ] %s under the filter: %.0f ms\n", argv[0], ms_since(&start));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !strstr(out, expected)) {
        print_error("%s: status 0x%x, output:\n%s\n", argv[0], status, out);
        fail();
    }
}

static void test_python_runs_under_the_filter(void **state)
{
    (void)state;
    const char *const argv[] = {
        "/usr/bin/python3", "-I", "-c",
        "import json, os, socket, threading, subprocess, tempfile, ssl, sqlite3, hashlib, time; "
        "t=threading.Thread(target=lambda: None); t.start(); t.join(); "
        "print(subprocess.run(['/bin/echo','ok'],capture_output=True).stdout); "
        "s=socket.socket(); s.close(); print('fine')",
        NULL};
    expect_runs(argv, "b'ok\\n'\nfine\n");
}

static void test_shell_runs_under_the_filter(void **state)
{
    (void)state;
    const char *const argv[] = {"/bin/sh", "-c", "ls / >/dev/null && echo ok", NULL};
    expect_runs(argv, "ok\n");
}

static void test_node_runs_under_the_filter(void **state)
{
    (void)state;
    if (access("/usr/bin/node", X_OK) != 0) {
        print_message("[ skip ] /usr/bin/node not installed\n");
        skip();
    }
    const char *const argv[] = {"/usr/bin/node", "-e", "console.log(1)", NULL};
    expect_runs(argv, "1\n");
}

/* Measured, not asserted: install runs once per worker spawn. */
static void test_install_cost(void **state)
{
    (void)state;
    enum { ROUNDS = 20 };
    double total = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            restore_fatal_signals();
            double ms = -1;
            if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) == 0) {
                struct timespec start;
                clock_gettime(CLOCK_MONOTONIC, &start);
                if (sandbox_seccomp_install(&filter) == 0)
                    ms = ms_since(&start);
            }
            write_all(p[1], &ms, sizeof ms);
            _exit(0);
        }
        close(p[1]);
        double ms = -1;
        assert_int_equal(read(p[0], &ms, sizeof ms), (ssize_t)sizeof ms);
        close(p[0]);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_true(ms >= 0);
        total += ms;
    }
    printf("[ info ] sandbox_seccomp_install: %.3f ms mean of %d\n", total / ROUNDS, ROUNDS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_interface),
        cmocka_unit_test(test_syscall_names),
        cmocka_unit_test(test_mount_and_namespaces_refused_with_eperm),
        cmocka_unit_test(test_clone_with_namespace_flags_refused),
        cmocka_unit_test(test_clone3_reports_enosys),
        cmocka_unit_test(test_fork_and_threads_work),
        cmocka_unit_test(test_dangerous_calls_refused_with_eperm),
        cmocka_unit_test(test_ioctl_tiocsti_and_tioclinux_refused_on_low_32_bits),
        cmocka_unit_test(test_socket_families),
        cmocka_unit_test(test_harmless_calls_allowed),
        cmocka_unit_test(test_syscalls_newer_than_policy_report_enosys),
        cmocka_unit_test(test_attacker_only_calls_kill_the_process),
        cmocka_unit_test(test_x32_syscall_kills_the_process),
        cmocka_unit_test(test_i386_syscall_kills_the_process),
        cmocka_unit_test(test_program_refuses_foreign_architectures),
        cmocka_unit_test(test_python_runs_under_the_filter),
        cmocka_unit_test(test_shell_runs_under_the_filter),
        cmocka_unit_test(test_node_runs_under_the_filter),
        cmocka_unit_test(test_install_cost),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
