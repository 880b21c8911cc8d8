/*
 * sandbox.c — starts worker processes: the only place hearthd forks.
 *
 * Owns the parent side of a spawn (channels, fork, learning whether exec
 * succeeded, the pidfd) and the child side between fork and exec, written
 * as two ordered tables of steps, so that reading them tells the whole
 * isolation policy: setup_steps[] (signals, ids, cgroup, session, network,
 * the private root, fds), run by the sandbox's init when isolated, and
 * runtime_steps[] (rlimits, code dir, capabilities, identity, user
 * namespace, seccomp, exec), run by the runtime it forks.
 *
 * Must never: run anything but async-signal-safe code between fork and
 * exec (everything the child needs is prepared before fork and nothing is
 * allocated there); search PATH; leave a child, a zombie or an fd behind
 * when a spawn fails; log or touch state owned by other modules.
 *
 * "Spawned" means "exec succeeded": the child reports a failing step's
 * errno over a close-on-exec socket, so any failure before exec (chdir,
 * setuid, execve itself…) is returned by sandbox_spawn as a negative errno
 * after the child has been reaped. Once exec succeeded, whatever the
 * program does (including dying at once) is the caller's to observe via
 * the pidfd and sandbox_reap. A spawn also comes in three calls
 * (sandbox_spawn_begin, then sandbox_spawn_finish whenever the status
 * socket is readable, or sandbox_spawn_abort) so that a poll loop never
 * blocks on a child; sandbox_spawn_via is those with a blocking poll.
 * Isolated, the sandbox's init says "started"
 * instead, naming the runtime's pid (the one the kernel's audit records
 * show), and later reports the runtime's wait status on the same socket.
 *
 * A pre-built sandbox (spec->prebuilt) is started without a function: its
 * init keeps its privileges and a detached clone of the code root after
 * "started", until the spawner's ATTACH (sandbox_attach_send) names the
 * function; the init then mounts its code (sandbox_root_attach), lowers
 * the runtime's RLIMIT_AS, drops its privileges and answers with a tagged
 * int that no wait status can be mistaken for. The runtime never holds
 * the code root's clone.
 *
 * Call sandbox_spawn from the daemon's long-lived loop thread: the
 * parent-death signal fires when the *thread* that forked exits. SIGCHLD
 * must not be SIG_IGN in the daemon (children would be auto-reaped).
 */
#include "sandbox.h"

#include <linux/capability.h>
#include <linux/prctl.h>
#include <sched.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox_root.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

/* The fd numbers the worker protocol gives the child. */
enum { CHILD_STDIN = 0, CHILD_STDOUT = 1, CHILD_STDERR = 2, CHILD_CTL = 3, CHILD_FIRST_FREE = 4 };

/* Every fd a spawn creates. [0] of each pair is the parent's end. */
struct channels {
    int ctl[2];
    int out[2];
    int err[2];
    int status[2]; /* child writes a failing step's errno; EOF means exec happened.
                    * A socket, so that an init's "started" carries its runtime's pid. */
    int devnull;
};

/* What the child needs, all prepared before fork. */
struct child_ctx {
    const sandbox_spec *spec;
    const sandbox_root_plan *root; /* when isolated */
    int devnull, out_w, err_w, ctl, status_w;
    int tree_fd; /* pre-built: the init's detached clone of the code root, or -1 */
    pid_t parent;
    bool drop_ids;                /* root: the worker gets spec->uid/gid */
    bool rootless;                /* isolated without root: clone made a user namespace too */
    bool from_template;           /* cloned from a zygote: the runtime returns instead of exec */
    bool memory_cgroup;           /* a memory cgroup counts its memory (no RLIMIT_AS then) */
    const sandbox_cgroup *cgroup; /* NULL = no cgroup limits */
};

/* Every isolated worker gets these; CLONE_NEWNET too unless it opted out,
 * and CLONE_NEWUSER when we are not root (rootless). */
#define ISOLATE_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- child side: async-signal-safe only, each step returns -1 with errno set ---- */

/* Effective, permitted and inheritable sets to zero. */
static int clear_all_caps(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    return (int)syscall(SYS_capset, &hdr, none);
}

/* Exec keeps SIG_IGN and the signal mask, so the daemon's (e.g. ignored
 * SIGPIPE, and the all-blocked mask set around fork) must not leak in. */
static int step_reset_signals(struct child_ctx *c)
{
    (void)c;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    }
    /* glibc refuses sigaction() on the two real-time signals it reserves
     * (32, 33), yet an ignored disposition of theirs inherited from whoever
     * started the daemon would survive exec: reset them with the syscall. */
    struct kernel_sigaction {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } kdfl = {.handler = SIG_DFL};
    for (int sig = SIGRTMIN - 2; sig < SIGRTMIN; sig++)
        if (sig >= 32)
            syscall(SYS_rt_sigaction, sig, &kdfl, NULL, sizeof kdfl.mask);
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Rootless: clone made a user namespace owning all the others, and in it
 * we hold every capability; mapping our one outer uid and gid (to the
 * same numbers) is all an unprivileged process may do, and all we need. */
static int step_map_own_ids(struct child_ctx *c)
{
    return c->rootless ? sandbox_root_map_ids(c->root) : 0;
}

/* Into the worker's cgroup leaf first, so everything after is counted;
 * then, isolated, a cgroup namespace rooted at that leaf (created here,
 * not by clone, so that its root is the leaf and not the daemon's). */
static int step_enter_cgroup(struct child_ctx *c)
{
    if (c->cgroup) {
        int rc = sandbox_cgroup_enter(c->cgroup);
        if (rc < 0) {
            errno = -rc;
            return -1;
        }
    }
    return c->root ? unshare(CLONE_NEWCGROUP) : 0;
}

/* Egress: nothing of the sandbox may run before its network is what the
 * rules expect, so wait for the byte that says it is (EOF: it never will). */
static int step_await_network(struct child_ctx *c)
{
    if (!c->root || !c->spec->egress)
        return 0;
    char go;
    ssize_t n;
    do
        n = read(c->spec->net_wait_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    close(c->spec->net_wait_fd);
    if (n == 1)
        return 0;
    errno = ENETUNREACH;
    return -1;
}

/* Own session and process group, so sandbox_kill reaches everything it forks. */
static int step_new_session(struct child_ctx *c)
{
    (void)c;
    return setsid() < 0 ? -1 : 0;
}

/* Moves *fd to CHILD_FIRST_FREE or above so installing 0..3 cannot clobber it. */
static int raise_fd(int *fd)
{
    if (*fd >= CHILD_FIRST_FREE)
        return 0;
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, CHILD_FIRST_FREE);
    if (moved < 0)
        return -1;
    *fd = moved;
    return 0;
}

/* fd 0 = /dev/null, 1/2 = the log pipes, 3 = the control socket. dup2
 * clears close-on-exec on the targets; the sources keep it. */
static int step_install_fds(struct child_ctx *c)
{
    int *src[] = {&c->devnull, &c->out_w, &c->err_w, &c->ctl, &c->status_w, &c->tree_fd};
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        if (*src[i] >= 0 && raise_fd(src[i]) < 0)
            return -1;
    }
    if (dup2(c->devnull, CHILD_STDIN) < 0 || dup2(c->out_w, CHILD_STDOUT) < 0 ||
        dup2(c->err_w, CHILD_STDERR) < 0 || dup2(c->ctl, CHILD_CTL) < 0)
        return -1;
    return 0;
}

static int parse_fd_name(const char *s)
{
    int v = 0;
    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (1 << 27))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The fds from CHILD_FIRST_FREE up that the child keeps past
 * step_close_other_fds: the status socket (it closes itself at exec) and,
 * pre-built, the init's code root (which its runtime closes at once). */
struct kept_fds {
    int fd[2]; /* ascending; -1 = none */
};

static struct kept_fds kept_of(const struct child_ctx *c)
{
    int a = c->status_w, b = c->tree_fd;
    struct kept_fds k = {{a, b}};
    if (b >= 0 && b < a) {
        k.fd[0] = b;
        k.fd[1] = a;
    }
    return k;
}

static bool is_kept(const struct kept_fds *k, int fd)
{
    return fd == k->fd[0] || fd == k->fd[1];
}

/* Fallback for kernels without close_range: walks /proc/self/fd with raw
 * getdents64 (opendir would allocate). Returns -1 if /proc is unusable. */
static int close_fds_by_proc(const struct kept_fds *keep)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    _Alignas(8) char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            int fd = parse_fd_name(d->d_name);
            if (fd >= CHILD_FIRST_FREE && !is_kept(keep, fd) && fd != dir)
                close(fd);
            off += d->d_reclen;
        }
    }
    close(dir);
    return n < 0 ? -1 : 0;
}

/* Last resort: every number below the fd limit. */
static int close_fds_by_limit(const struct kept_fds *keep)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    for (rlim_t fd = CHILD_FIRST_FREE; fd < rl.rlim_cur && fd <= (rlim_t)INT32_MAX; fd++) {
        if (!is_kept(keep, (int)fd))
            close((int)fd);
    }
    return 0;
}

/* close_range over the gaps between the kept fds. -1 when the kernel has none. */
static int close_fds_by_range(const struct kept_fds *keep)
{
    unsigned from = CHILD_FIRST_FREE;
    for (int i = 0; i < 2; i++) {
        if (keep->fd[i] < 0)
            continue;
        unsigned k = (unsigned)keep->fd[i]; /* >= CHILD_FIRST_FREE after install */
        if (k > from && syscall(SYS_close_range, from, k - 1, 0) < 0)
            return -1;
        from = k + 1;
    }
    return (int)syscall(SYS_close_range, from, ~0U, 0);
}

/* Closes everything from fd 4 up but the kept fds: the parent's
 * non-CLOEXEC fds must not reach the worker. */
static int step_close_other_fds(struct child_ctx *c)
{
    struct kept_fds keep = kept_of(c);
    if (close_fds_by_range(&keep) == 0)
        return 0;
    if (close_fds_by_proc(&keep) == 0)
        return 0;
    return close_fds_by_limit(&keep);
}

static int set_limit(int resource, uint64_t value)
{
    struct rlimit rl = {.rlim_cur = (rlim_t)value, .rlim_max = (rlim_t)value};
    return setrlimit(resource, &rl);
}

/* Soft = hard, so the worker cannot raise them. 0 in the spec = inherit. */
static int step_set_rlimits(struct child_ctx *c)
{
    const sandbox_spec *s = c->spec;
    if (set_limit(RLIMIT_CORE, 0) < 0)
        return -1;
    /* A memory cgroup counts what is used; the address-space cap is only
     * the fallback without one (it also trips runtimes that reserve). */
    if (s->memory_bytes && !c->memory_cgroup &&
        set_limit(RLIMIT_AS, s->memory_bytes + s->vm_reserve) < 0)
        return -1;
    if (s->max_file_size && set_limit(RLIMIT_FSIZE, s->max_file_size) < 0)
        return -1;
    if (s->max_open_files && set_limit(RLIMIT_NOFILE, s->max_open_files) < 0)
        return -1;
    /* The second wall behind the pids cgroup: the uid is the worker's own. */
    /* Rootless, the count is per user namespace: the worker's own. */
    if (s->pids_max && (c->drop_ids || c->rootless) && set_limit(RLIMIT_NPROC, s->pids_max) < 0)
        return -1;
    if (set_limit(RLIMIT_MEMLOCK, 64 * 1024) < 0 || set_limit(RLIMIT_MSGQUEUE, 64 * 1024) < 0)
        return -1;
    return 0;
}

/* Groups first (needs root), then gid, then uid; then proves root is gone. */
static int step_drop_identity(struct child_ctx *c)
{
    if (!c->drop_ids)
        return 0;
    uid_t uid = c->spec->uid;
    gid_t gid = c->spec->gid;
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
        return -1;
    if (setuid(0) == 0 || setgid(0) == 0 || getuid() != uid || geteuid() != uid ||
        getgid() != gid || getegid() != gid) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* Before dropping identity: the data dir's ancestors (say /root/...) need
 * not be searchable by the worker uid; it reaches its code relative to
 * this cwd. The code dir itself is 0755. Isolated, the root step already
 * entered /var/task. */
static int step_enter_code_dir(struct child_ctx *c)
{
    return c->root ? 0 : chdir(c->spec->code_dir);
}

/* Mount, pid, network, ipc, uts namespaces were made by clone(); this
 * builds the filesystem inside them (sandbox_root.c). */
static int step_enter_root(struct child_ctx *c)
{
    return c->root ? sandbox_root_enter(c->root, &c->tree_fd) : 0;
}

/* While still root (or, rootless, capable in our user namespace): empty
 * the bounding and ambient sets, so nothing exec'd later can regain a
 * capability (file caps, setuid-root binaries). */
static int step_drop_bounding_caps(struct child_ctx *c)
{
    if (!c->drop_ids && !c->rootless)
        return 0;
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0L, 0L, 0L) == 0)
            continue;
        if (errno == EINVAL)
            break; /* past the kernel's last capability */
        return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L) < 0 && errno != EINVAL)
        return -1;
    return 0;
}

/* A new user namespace starts with a full bounding set: empty it again. */
static int step_enter_user_ns(struct child_ctx *c)
{
    if (!c->root)
        return 0;
    return sandbox_root_enter_user_ns(c->root) < 0 ? -1 : step_drop_bounding_caps(c);
}

/* After the identity change: effective, permitted and inheritable to zero
 * (setuid cleared the first two already; this makes it explicit). */
static int step_clear_caps(struct child_ctx *c)
{
    (void)c;
    return clear_all_caps();
}

static int step_forbid_new_privs(struct child_ctx *c)
{
    (void)c;
    return prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L);
}

/* Must follow the identity change, which clears the death signal. The
 * getppid check closes the race where the daemon died before prctl.
 * Isolated, the runtime's parent is the sandbox init, whose death takes
 * the whole pid namespace down. */
static int step_die_with_parent(struct child_ctx *c)
{
    if (c->root)
        return 0;
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L) < 0)
        return -1;
    if (getppid() != c->parent) {
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* Field `n` (1-based, as proc(5) numbers them) of /proc/self/stat. */
static unsigned long stat_field(const char *stat, int n)
{
    const char *p = stat, *close = NULL;
    for (const char *q = stat; *q; q++)
        if (*q == ')')
            close = q; /* the name may hold ')' itself */
    if (!close)
        return 0;
    p = close + 2; /* field 3 */
    for (int f = 3; f < n && *p; p++)
        if (*p == ' ')
            f++;
    unsigned long v = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    return v;
}

/* [first string, end of the last one) when the strings of v lie one after
 * another; false otherwise. */
static bool contiguous(const char *const *v, unsigned long *start, unsigned long *end)
{
    if (!v[0])
        return false;
    const char *next = v[0];
    for (size_t i = 0; v[i]; i++) {
        if (v[i] != next)
            return false;
        next = v[i] + strlen(v[i]) + 1;
    }
    *start = (unsigned long)v[0];
    *end = (unsigned long)next;
    return true;
}

/* A worker cloned from a template would show the template's command line
 * and environment in /proc/<pid>/cmdline and environ, which name the
 * memory exec once filled: point both at the spec's strings instead (the
 * template keeps each vector contiguous, in anonymous memory, as the
 * kernel requires). PR_SET_MM_MAP wants the whole map, read back here. */
static int step_show_spec_strings(struct child_ctx *c)
{
    if (!c->from_template)
        return 0;
    /* The uid change cleared "dumpable", which hands /proc/self to root;
     * exec would have set it again (isolated, entering the user namespace
     * already did). */
    if (prctl(PR_SET_DUMPABLE, 1L, 0L, 0L, 0L) < 0)
        return -1;
    char stat[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, stat, sizeof stat - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    stat[n] = '\0';
    struct prctl_mm_map map = {
        .start_code = stat_field(stat, 26),
        .end_code = stat_field(stat, 27),
        .start_stack = stat_field(stat, 28),
        .start_data = stat_field(stat, 45),
        .end_data = stat_field(stat, 46),
        .start_brk = stat_field(stat, 47),
        .brk = (unsigned long)syscall(SYS_brk, 0L),
        .exe_fd = (unsigned)-1,
    };
    unsigned long arg_start, arg_end, env_start, env_end;
    if (!contiguous(c->spec->argv, &arg_start, &arg_end) ||
        !contiguous(c->spec->envp, &env_start, &env_end)) {
        errno = EINVAL;
        return -1;
    }
    map.arg_start = arg_start;
    map.arg_end = arg_end;
    map.env_start = env_start;
    map.env_end = env_end;
    return prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&map, sizeof map, 0L);
}

/* Last before exec: from here on the allowlist decides (sandbox_seccomp.c);
 * everything above may still mount, unshare and setuid. */
static int step_install_seccomp(struct child_ctx *c)
{
    if (!c->spec->filter)
        return 0;
    int rc = sandbox_seccomp_install(c->spec->filter);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

extern char **environ;

/* Returns only on failure; or, in a worker cloned from a template (a
 * zygote), once every step above has run: that process goes on as the
 * runtime, so the status socket closes here as exec would have closed it,
 * and the environment becomes the spec's. */
static int step_exec(struct child_ctx *c)
{
    if (c->from_template) {
        environ = (char **)c->spec->envp;
        close(c->status_w);
        c->status_w = -1;
        return 0;
    }
    /* Isolated, argv[0] may be bound elsewhere (sandbox_root_plan_program). */
    const char *path = c->root ? c->root->program_in : c->spec->argv[0];
    execve(path, (char *const *)c->spec->argv, (char *const *)c->spec->envp);
    return -1;
}

typedef int (*child_step)(struct child_ctx *);

/* The sandbox policy, in order; each step may rely on those above it.
 * Isolated, the first table runs in the process that becomes the
 * sandbox's init (pid 1 of its pid namespace), the second in the runtime
 * it forks; otherwise one process runs both. */
static const child_step setup_steps[] = {
    step_reset_signals,   /* default dispositions, nothing blocked */
    step_map_own_ids,     /* rootless: our uid and gid mapped in our user ns */
    step_enter_cgroup,    /* memory, pids, cpu limits; isolated: cgroup namespace */
    step_new_session,     /* own session and process group */
    step_await_network,   /* egress: until the veth (or slirp4netns) is up */
    step_enter_root,      /* isolated: tmpfs root, binds, /proc, pivot_root */
    step_install_fds,     /* 0 /dev/null, 1-2 log pipes, 3 control socket */
    step_close_other_fds, /* nothing of the daemon's from fd 4 up */
};

static const child_step runtime_steps[] = {
    step_set_rlimits,        /* CORE 0, AS, FSIZE, NOFILE */
    step_enter_code_dir,     /* cwd = the code, entered while still root */
    step_drop_bounding_caps, /* bounding and ambient sets emptied */
    step_drop_identity,      /* no groups, spec gid/uid, root unrecoverable */
    step_enter_user_ns,      /* isolated: a user namespace mapping only that uid */
    step_clear_caps,         /* effective, permitted, inheritable: none */
    step_forbid_new_privs,   /* no setuid binaries, no file capabilities */
    step_die_with_parent,    /* SIGKILL when the daemon goes */
    step_show_spec_strings,  /* from a template: /proc shows the spec's argv and env */
    step_install_seccomp,    /* the syscall allowlist */
    step_exec,               /* argv[0] as given, exactly spec->envp */
};

static void report_errno(int fd, int err)
{
    ssize_t n;
    do
        n = write(fd, &err, sizeof err);
    while (n < 0 && errno == EINTR);
}

/* The init's "started" (0): SCM_CREDENTIALS carry the runtime's pid, which
 * the kernel translates into the reader's pid namespace — the host pid the
 * kernel's audit records show, which nobody outside could learn otherwise.
 * Naming another process's pid needs CAP_SYS_ADMIN over our pid namespace:
 * the init still has it here. Without it, a bare 0 (the pid unknown). */
static void report_started(int fd, pid_t rt)
{
    int ok = 0;
    struct iovec iov = {.iov_base = &ok, .iov_len = sizeof ok};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred cred = {.pid = rt, .uid = getuid(), .gid = getgid()};
    memcpy(CMSG_DATA(c), &cred, sizeof cred);
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        report_errno(fd, 0);
}

/* Runs steps until one fails; reports its errno on status_w. Returns -1
 * on failure (exec, the last step, never returns on success). */
static int run_steps(struct child_ctx *c, const child_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (steps[i](c) < 0) {
            report_errno(c->status_w, errno ? errno : EIO);
            return -1;
        }
    }
    return 0;
}

#define RUN_STEPS(c, table) run_steps((c), (table), sizeof(table) / sizeof((table)[0]))

/* Returns only in a worker cloned from a template, ready to serve. */
static void run_runtime(struct child_ctx *c)
{
    if (RUN_STEPS(c, runtime_steps) < 0 || !c->from_template)
        _exit(127);
}

/* The init only reaps and reports from here on: it needs no privilege.
 * nobody (not the worker's uid) keeps it out of the runtime's sight
 * (/proc is hidepid) and out of its reach. Rootless, nobody is not mapped
 * and the init keeps the worker's uid: then no capabilities and not
 * dumpable keep the runtime from ptracing it or opening its /proc files.
 * Best effort: it already holds nothing the runtime could use. */
static void drop_init_privileges(void)
{
    const uid_t nobody = 65534;
    if (setgroups(0, NULL) == 0 && setresgid(nobody, nobody, nobody) == 0)
        setresuid(nobody, nobody, nobody);
    clear_all_caps();
    prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
    /* The uid change cleared the death signal: without it the init, and
     * the runtime in its pid namespace, outlived a killed spawner. */
    prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
}

/* ---- ATTACH: a pre-built sandbox's init and its spawner ---- */

/* The request, one fixed-size message on the status socket (a bundle fd,
 * when has_secrets, as SCM_RIGHTS), and the init's answer: an int tagged
 * so that no wait status (0..0xffff) reads as one — a runtime that died
 * before the request was read has its status on the socket instead. */
#define ATTACH_REQUEST 0x48415454u /* "HATT" */
#define ATTACH_REPLY   0x41540000
#define ATTACH_ERR     0xffff
#define ATTACH_MAX_REL 256

struct attach_msg {
    uint32_t type;        /* ATTACH_REQUEST */
    uint32_t has_secrets; /* 0 or 1 */
    uint64_t as_bytes;
    char code_rel[ATTACH_MAX_REL];
    char hostname[64];
};

static bool is_attach_reply(int v)
{
    return (v & ~ATTACH_ERR) == ATTACH_REPLY;
}

/* Both strings NUL-terminated inside their arrays, and acceptable. */
static bool attach_msg_ok(const struct attach_msg *m, int nfds)
{
    return m->type == ATTACH_REQUEST && m->has_secrets <= 1 && (int)m->has_secrets == nfds &&
           memchr(m->code_rel, '\0', sizeof m->code_rel) &&
           memchr(m->hostname, '\0', sizeof m->hostname) && sandbox_root_code_rel_ok(m->code_rel) &&
           sandbox_root_hostname_ok(m->hostname);
}

/* Reads the request: 1 with *secrets (or -1), 0 at EOF (the spawner gave
 * up on the sandbox), or -1 with errno for a malformed one. Blocking. */
static int read_attach(int fd, struct attach_msg *m, int *secrets)
{
    *secrets = -1;
    struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    int nfds = 0, bad = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (nfds++ == 0) {
                *secrets = got;
            } else {
                close(got); /* one bundle at most */
                bad = 1;
            }
        }
    }
    /* A stream: the rest of the request may come apart from its start. */
    for (ssize_t more = 1; n > 0 && (size_t)n < sizeof *m && more > 0; n += more > 0 ? more : 0) {
        do
            more = read(fd, (char *)m + n, sizeof *m - (size_t)n);
        while (more < 0 && errno == EINTR);
    }
    if (n == 0 && nfds == 0)
        return 0;
    if (n != (ssize_t)sizeof *m || bad || !attach_msg_ok(m, nfds)) {
        errno = n < 0 ? errno : EPROTO;
        return -1;
    }
    return 1;
}

static int set_address_space(pid_t rt, uint64_t as_bytes)
{
    struct rlimit old;
    if (prlimit(rt, RLIMIT_AS, NULL, &old) < 0)
        return -1;
    rlim_t v = (rlim_t)as_bytes < old.rlim_max ? (rlim_t)as_bytes : old.rlim_max;
    struct rlimit rl = {.rlim_cur = v, .rlim_max = v};
    return prlimit(rt, RLIMIT_AS, &rl, NULL);
}

/* The runtime's address space: soft = hard = as_bytes, never raised.
 * prlimit on another process wants CAP_SYS_RESOURCE over it (which a
 * container may withhold from root) or its ids as our real ones: then
 * the init takes them for the call, 0 staying its saved uid and gid to
 * come back to. Rootless, the init has the runtime's ids already. */
static int lower_address_space(const struct child_ctx *c, pid_t rt, uint64_t as_bytes)
{
    if (set_address_space(rt, as_bytes) == 0)
        return 0;
    if (errno != EPERM || !c->drop_ids)
        return -1;
    if (setresgid(c->spec->gid, c->spec->gid, 0) < 0 ||
        setresuid(c->spec->uid, c->spec->uid, 0) < 0)
        return -1;
    int rc = set_address_space(rt, as_bytes), err = errno;
    if (setresuid(0, 0, 0) < 0 || setresgid(0, 0, 0) < 0)
        _exit(127); /* half ourselves: no state to carry on in */
    prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L); /* the switch cleared it */
    errno = err;
    return rc;
}

/* The whole ATTACH, as the privileged init: 0 or a positive errno. */
static int attach(struct child_ctx *c, const struct attach_msg *m, int secrets, pid_t rt)
{
    if (sandbox_root_attach(c->root, c->tree_fd, m->code_rel, m->hostname, secrets) < 0 ||
        (m->as_bytes && lower_address_space(c, rt, m->as_bytes) < 0))
        return errno ? errno : EIO;
    return 0;
}

/* A pre-built sandbox's init, privileged, between "started" and the
 * reap loop: waits for the ATTACH (or the runtime's death, reported as at
 * the end of the reap loop, or EOF: the sandbox ends), carries it out,
 * drops its privileges and says so; on failure, says why and ends the
 * sandbox. */
static void await_attach(struct child_ctx *c, int outer, pid_t rt, int rt_pidfd)
{
    struct pollfd p[2] = {{.fd = outer, .events = POLLIN}, {.fd = rt_pidfd, .events = POLLIN}};
    while (!p[0].revents) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            _exit(127);
        int st;
        if (!p[0].revents && p[1].revents && waitpid(rt, &st, 0) == rt) {
            report_errno(outer, st);
            _exit(0);
        }
    }
    struct attach_msg m;
    int secrets;
    int got = read_attach(outer, &m, &secrets);
    if (got == 0)
        _exit(0);
    int err = got < 0 ? (errno ? errno : EPROTO) : attach(c, &m, secrets, rt);
    explicit_bzero(&m, sizeof m);
    if (secrets >= 0)
        close(secrets);
    close(rt_pidfd);
    if (err) {
        report_errno(outer, ATTACH_REPLY | (err & ATTACH_ERR));
        _exit(127);
    }
    drop_init_privileges();
    report_errno(outer, ATTACH_REPLY);
    /* After the answer: the last close of the detached code root tears the
     * whole tree down, which can take milliseconds. Nothing of the sandbox
     * can reach the init's fds meanwhile, and its privileges are gone. */
    close(c->tree_fd);
    c->tree_fd = -1;
}

/* pid 1 of the sandbox: starts the runtime, tells the daemon whether its
 * exec worked (0 or an errno on status_w), pre-built waits for its ATTACH
 * (await_attach), reaps every orphan the function leaves, and when the
 * runtime ends reports its exact wait status on status_w and exits —
 * which makes the kernel kill whatever is left. Returns only in the
 * runtime of a worker cloned from a template. */
static void run_init(struct child_ctx *c)
{
    int inner[2];
    if (pipe2(inner, O_CLOEXEC) < 0) {
        report_errno(c->status_w, errno);
        _exit(127);
    }
    int outer = c->status_w;
    pid_t rt = fork();
    if (rt == 0) {
        close(outer);
        close(inner[0]);
        if (c->tree_fd >= 0)
            close(c->tree_fd); /* the init's alone: it holds the whole code root */
        c->tree_fd = -1;
        c->status_w = inner[1];
        run_runtime(c);
        return;
    }
    close(inner[1]);
    for (int fd = CHILD_STDIN; fd <= CHILD_CTL; fd++)
        close(fd); /* only the runtime holds the worker's channels */
    int err = 0;
    ssize_t n = rt < 0 ? -1 : read(inner[0], &err, sizeof err);
    close(inner[0]);
    if (rt < 0 || n != 0) {
        report_errno(outer, rt < 0 ? errno : (n == (ssize_t)sizeof err ? err : EIO));
        _exit(127);
    }
    /* Pre-built: the runtime's death must end the wait for an ATTACH. */
    int rt_pidfd = c->spec->prebuilt ? (int)syscall(SYS_pidfd_open, rt, 0) : -1;
    if (c->spec->prebuilt && rt_pidfd < 0) {
        report_errno(outer, errno);
        _exit(127);
    }
    report_started(outer, rt);
    if (c->spec->prebuilt)
        await_attach(c, outer, rt, rt_pidfd);
    else
        drop_init_privileges();
    for (;;) {
        int st;
        pid_t who = waitpid(-1, &st, 0);
        if (who == rt) {
            report_errno(outer, st);
            _exit(0);
        }
        if (who < 0 && errno != EINTR)
            _exit(0);
    }
}

/* Returns only in the runtime of a worker cloned from a template. */
static void child_run(struct child_ctx *c)
{
    if (c->root)
        prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
    if (RUN_STEPS(c, setup_steps) < 0)
        _exit(127);
    if (c->root)
        run_init(c);
    else
        run_runtime(c);
}

/* ---- parent side ---- */

static void channels_init(struct channels *ch)
{
    ch->ctl[0] = ch->ctl[1] = ch->out[0] = ch->out[1] = -1;
    ch->err[0] = ch->err[1] = ch->status[0] = ch->status[1] = -1;
    ch->devnull = -1;
}

static void channels_close_child_ends(struct channels *ch)
{
    close_fd(&ch->ctl[1]);
    close_fd(&ch->out[1]);
    close_fd(&ch->err[1]);
    close_fd(&ch->status[1]);
    close_fd(&ch->devnull);
}

static void channels_close(struct channels *ch)
{
    channels_close_child_ends(ch);
    close_fd(&ch->ctl[0]);
    close_fd(&ch->out[0]);
    close_fd(&ch->err[0]);
    close_fd(&ch->status[0]);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Creates every fd, all close-on-exec; the parent's ends non-blocking.
 * On error nothing stays open. */
static int channels_open(struct channels *ch)
{
    channels_init(ch);
    int rc = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch->ctl) < 0 ||
        pipe2(ch->out, O_CLOEXEC) < 0 || pipe2(ch->err, O_CLOEXEC) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch->status) < 0 ||
        (ch->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        rc = -errno;
    int on = 1;
    if (rc == 0 && setsockopt(ch->status[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
        rc = -errno;
    if (rc == 0)
        rc = set_nonblock(ch->ctl[0]);
    if (rc == 0)
        rc = set_nonblock(ch->out[0]);
    if (rc == 0)
        rc = set_nonblock(ch->err[0]);
    if (rc < 0)
        channels_close(ch);
    return rc;
}

static int check_spec(const sandbox_spec *spec, bool root)
{
    if (!spec || !spec->argv || !spec->argv[0] || spec->argv[0][0] != '/' || !spec->envp ||
        !spec->code_dir)
        return -EINVAL;
    /* /run/secrets lives in the private root: without one there is no
     * place for it that other processes could not read. */
    if (spec->has_secrets && !spec->isolate)
        return -EOPNOTSUPP;
    /* Pre-built: a private root to attach into; secrets come with the ATTACH. */
    if (spec->prebuilt && (!spec->isolate || spec->has_secrets))
        return -EINVAL;
    /* Egress: a network namespace of its own, and someone to say it is up. */
    if (spec->egress && (!spec->isolate || spec->host_network || spec->net_wait_fd < 0))
        return -EINVAL;
    /* A worker never runs as root, nor with an id that setuid reads as "unchanged". */
    if (root &&
        (spec->uid == 0 || spec->gid == 0 || spec->uid == (uid_t)-1 || spec->gid == (gid_t)-1))
        return -EINVAL;
    return 0;
}

/* Blocks until the child is gone; for children we know are exiting or were killed. */
static void reap_blocking(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Reads one report from the status socket, with the sender's credentials
 * (*from: its pid, or 0 when none came). Returns what read() would. */
static ssize_t read_status(int status_r, int *err, pid_t *from)
{
    struct iovec iov = {.iov_base = err, .iov_len = sizeof *err};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t n;
    do
        n = recvmsg(status_r, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    *from = 0;
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
        c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
        struct ucred cred;
        memcpy(&cred, CMSG_DATA(c), sizeof cred);
        *from = cred.pid;
    }
    return n;
}

/* Kills the child and whatever it started, and waits for it: for a
 * spawn that failed or was given up on (so it is dying). */
static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    kill(-pid, SIGKILL); /* ESRCH before its setsid: then the first reached it */
    reap_blocking(pid);
}

/* Reads one report from the (non-blocking) status socket: 0 when exec
 * closed it or a sandbox init said "started" (*started then, and *runtime
 * the runtime's pid: the child's own once it exec'd, or the one the init
 * named, 0 if it could not); -EAGAIN when nothing came yet; a step's
 * -errno (or -EIO for a garbled report) after killing and reaping the
 * child. */
static int read_exec_report(int status_r, pid_t pid, pid_t *runtime, bool *started)
{
    int err = 0;
    pid_t from;
    ssize_t n = read_status(status_r, &err, &from);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -EAGAIN;
    *started = n == (ssize_t)sizeof err && err == 0;
    *runtime = n == 0 ? pid : (from != pid ? from : 0); /* the init's own: no name given */
    if (n == 0 || *started)
        return 0; /* EOF: exec closed the socket; 0: the sandbox init says so */
    int rc = n == (ssize_t)sizeof err && err > 0 ? -err : -EIO;
    if (n != (ssize_t)sizeof err)
        kill_and_reap(pid);
    else
        reap_blocking(pid); /* it reported its failure and is exiting */
    return rc;
}

/* Forks with every signal blocked, so no daemon handler (libuv's signal
 * pipe) can run in the child before it resets dispositions. From a
 * template, CLONE_PARENT makes the worker a child of the template's parent
 * (the spawner), which reaps it as one of its own. *pid is 0 in the
 * runtime of a template worker, the only child that returns. */
static int fork_child(struct child_ctx *ctx, pid_t *pid)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    /* Isolated: clone with the namespace flags, so the child is pid 1 of
     * its new pid namespace. Without a stack argument it forks like fork(). */
    unsigned long flags = ctx->root ? ISOLATE_FLAGS | (ctx->spec->host_network ? 0 : CLONE_NEWNET) |
                                          (ctx->rootless ? CLONE_NEWUSER : 0)
                                    : 0;
    flags |= ctx->from_template ? CLONE_PARENT : 0;
    pid_t p = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    if (p == 0) {
        child_run(ctx);
        *pid = 0;
        return 0;
    }
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (p < 0)
        return -err;
    *pid = p;
    return 0;
}

static int open_pidfd(pid_t pid)
{
    /* Our unreaped child: its pid cannot have been reused. Always CLOEXEC. */
    int fd = (int)syscall(SYS_pidfd_open, pid, PIDFD_NONBLOCK);
    if (fd < 0 && errno == EINVAL) {
        fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0 && set_nonblock(fd) < 0) {
            close(fd);
            return -EIO;
        }
    }
    return fd < 0 ? -errno : fd;
}

static void plan_for(const sandbox_spec *spec, sandbox_root_plan *plan)
{
    sandbox_root_plan_init(plan, spec->code_dir, spec->hostname ? spec->hostname : "hearth",
                           spec->tmp_bytes ? spec->tmp_bytes : 64u << 20, spec->uid, spec->gid,
                           spec->host_network);
    sandbox_root_plan_program(plan, spec->argv[0]);
    if (spec->egress)
        sandbox_root_plan_resolver(plan, spec->resolver);
    plan->prebuilt = spec->prebuilt;
    if (spec->has_secrets)
        sandbox_root_plan_secrets(plan, spec->secrets_fd);
}

/* What the child needs, from the spec and the fds it is to get. `leaf`
 * holds the cgroup.procs fds for the child to enter. */
static void ctx_init(struct child_ctx *ctx, const sandbox_spec *spec, const sandbox_root_plan *plan,
                     const sandbox_child_fds *fds, sandbox_cgroup *leaf)
{
    bool root = geteuid() == 0, any_cgroup = false;
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        leaf->procs_fd[i] = fds->cgroup_procs[i];
        leaf->path[i][0] = '\0';
        any_cgroup |= fds->cgroup_procs[i] >= 0;
    }
    *ctx = (struct child_ctx){
        .cgroup = any_cgroup ? leaf : NULL,
        .memory_cgroup = fds->memory_cgroup,
        .spec = spec,
        .root = spec->isolate ? plan : NULL,
        .devnull = fds->devnull,
        .out_w = fds->out,
        .err_w = fds->err,
        .ctl = fds->ctl,
        .status_w = fds->status,
        .tree_fd = -1,
        .parent = getpid(),
        .drop_ids = root,
        .rootless = spec->isolate && !root,
    };
}

static sandbox_child_fds child_fds_of(const struct channels *ch, const sandbox_proc *out)
{
    sandbox_child_fds fds = {.devnull = ch->devnull,
                             .out = ch->out[1],
                             .err = ch->err[1],
                             .ctl = ch->ctl[1],
                             .status = ch->status[1],
                             .memory_cgroup =
                                 out->has_cgroup && out->cgroup.path[SANDBOX_CGROUP_MEMORY][0]};
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
        fds.cgroup_procs[i] = out->has_cgroup ? out->cgroup.procs_fd[i] : -1;
    return fds;
}

/* Clones here, or has `start` clone (a template). 0 with *pid, or -errno. */
static int start_child(const sandbox_spec *spec, const struct channels *ch, const sandbox_proc *out,
                       sandbox_starter start, void *ud, pid_t *pid)
{
    sandbox_child_fds fds = child_fds_of(ch, out);
    if (start)
        return start(spec, &fds, pid, ud);
    sandbox_root_plan plan;
    if (spec->isolate)
        plan_for(spec, &plan);
    struct child_ctx ctx;
    sandbox_cgroup leaf;
    ctx_init(&ctx, spec, &plan, &fds, &leaf);
    int rc = fork_child(&ctx, pid);
    if (rc == 0 && *pid == 0)
        _exit(127); /* only a template's runtime returns, and this is none */
    return rc;
}

static void proc_init(sandbox_proc *out)
{
    *out = (sandbox_proc){
        .pid = -1, .pidfd = -1, .ctl_fd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
}

static int make_leaf(const sandbox_spec *spec, sandbox_proc *out)
{
    static unsigned long leaves;
    char name[32];
    snprintf(name, sizeof name, "w-%lu", ++leaves);
    int rc = sandbox_cgroup_create(spec->cgroups, name, spec->memory_bytes, spec->pids_max,
                                   spec->cpu_millis, &out->cgroup);
    out->has_cgroup = rc == 0;
    return rc;
}

int sandbox_spawn_begin(const sandbox_spec *spec, sandbox_proc *out, sandbox_starter start,
                        void *ud)
{
    if (!out)
        return -EINVAL;
    proc_init(out);
    int rc = check_spec(spec, geteuid() == 0);
    if (rc == 0 && spec->cgroups)
        rc = make_leaf(spec, out);
    if (rc < 0)
        return rc;
    struct channels ch;
    rc = channels_open(&ch);
    if (rc == 0)
        rc = set_nonblock(ch.status[0]);
    pid_t pid = -1;
    if (rc == 0)
        rc = start_child(spec, &ch, out, start, ud, &pid);
    channels_close_child_ends(&ch);
    if (rc < 0) {
        channels_close(&ch);
        sandbox_release(out);
        return rc;
    }
    out->pid = pid;
    out->ctl_fd = ch.ctl[0];
    out->out_fd = ch.out[0];
    out->err_fd = ch.err[0];
    out->status_fd = ch.status[0];
    return 0;
}

/* Everything of a begun spawn released; the child already reaped. */
static void forget_child(sandbox_proc *out)
{
    out->pid = -1;
    sandbox_release(out);
}

int sandbox_spawn_finish(sandbox_proc *out)
{
    if (!out || out->pid <= 0 || out->status_fd < 0 || out->pidfd >= 0)
        return -EINVAL;
    pid_t runtime = 0;
    bool started = false;
    int rc = read_exec_report(out->status_fd, out->pid, &runtime, &started);
    if (rc == -EAGAIN)
        return rc;
    if (rc == 0) {
        out->pidfd = open_pidfd(out->pid);
        if (out->pidfd < 0) {
            rc = out->pidfd;
            kill_and_reap(out->pid);
        }
    }
    if (rc < 0) {
        forget_child(out);
        return rc;
    }
    /* Only an isolated sandbox's init says "started", and it reports the
     * runtime's wait status on the socket later: keep it then. */
    if (!started)
        close_fd(&out->status_fd);
    out->runtime = runtime;
    return 0;
}

void sandbox_spawn_abort(sandbox_proc *out)
{
    if (!out)
        return;
    if (out->pid > 0 && out->pidfd < 0) {
        kill_and_reap(out->pid);
    } else if (out->pid > 0) { /* finished after all: through the pidfd, never a recycled pid */
        sandbox_kill(out);
        syscall(SYS_pidfd_send_signal, out->pidfd, SIGKILL, NULL, 0);
        siginfo_t si;
        while (waitid((idtype_t)P_PIDFD, (id_t)out->pidfd, &si, WEXITED) < 0 && errno == EINTR)
            ;
    }
    forget_child(out);
}

/* The blocking form: waits for the report that begin's caller would poll for. */
int sandbox_spawn_via(const sandbox_spec *spec, sandbox_proc *out, sandbox_starter start, void *ud)
{
    int rc = sandbox_spawn_begin(spec, out, start, ud);
    if (rc < 0)
        return rc;
    while ((rc = sandbox_spawn_finish(out)) == -EAGAIN) {
        struct pollfd p = {.fd = out->status_fd, .events = POLLIN};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            rc = -errno;
            sandbox_spawn_abort(out);
            break;
        }
    }
    return rc;
}

int sandbox_spawn(const sandbox_spec *spec, sandbox_proc *out)
{
    return sandbox_spawn_via(spec, out, NULL, NULL);
}

pid_t sandbox_clone_template(const sandbox_spec *spec, const sandbox_child_fds *fds)
{
    int rc = spec && spec->egress ? -EINVAL : check_spec(spec, geteuid() == 0);
    if (rc < 0)
        return rc;
    static sandbox_root_plan plan; /* the runtime returns with pointers into it */
    static sandbox_cgroup leaf;
    static struct child_ctx ctx;
    if (spec->isolate)
        plan_for(spec, &plan);
    ctx_init(&ctx, spec, &plan, fds, &leaf);
    ctx.from_template = true;
    ctx.parent = getppid(); /* CLONE_PARENT: the worker is our parent's child */
    pid_t pid = -1;
    rc = fork_child(&ctx, &pid);
    return rc < 0 ? rc : pid;
}

/* The group id cannot be recycled while any member lives, so after the
 * leader is reaped this still reaches leftover members, or nobody. A
 * member that called setsid() has left the group: a pid namespace (later
 * issue) closes that gap. */
void sandbox_kill(const sandbox_proc *proc)
{
    if (proc && proc->pid > 0)
        kill(-proc->pid, SIGKILL); /* ESRCH: already gone */
}

/* Rebuilds the waitpid-style status from waitid's siginfo. */
static int wstatus_from_siginfo(const siginfo_t *si)
{
    switch (si->si_code) {
    case CLD_EXITED:
        return W_EXITCODE(si->si_status & 0xff, 0);
    case CLD_DUMPED:
        return W_EXITCODE(0, si->si_status) | WCOREFLAG;
    default:
        return W_EXITCODE(0, si->si_status);
    }
}

/* Waits through the pidfd when there is one, so a recycled pid can never
 * be reaped by mistake; a second reap returns -ECHILD. */
int sandbox_reap(sandbox_proc *proc, int *wstatus)
{
    if (!proc || proc->pid <= 0)
        return -EINVAL;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do {
        if (proc->pidfd >= 0)
            r = waitid((idtype_t)P_PIDFD, (id_t)proc->pidfd, &si, WEXITED | WNOHANG);
        else
            r = waitid(P_PID, (id_t)proc->pid, &si, WEXITED | WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EAGAIN ? 0 : -errno;
    if (si.si_pid == 0)
        return 0;
    if (wstatus)
        *wstatus = wstatus_from_siginfo(&si);
    /* Isolated: the init wrote the runtime's own status before exiting
     * (after an ATTACH answer nobody collected, when it was given up on). */
    int runtime_status;
    for (int i = 0; wstatus && proc->status_fd >= 0 && i < 2; i++) {
        if (read(proc->status_fd, &runtime_status, sizeof runtime_status) !=
            (ssize_t)sizeof runtime_status)
            break;
        if (!is_attach_reply(runtime_status)) {
            *wstatus = runtime_status;
            break;
        }
    }
    return 1;
}

void sandbox_release(sandbox_proc *proc)
{
    if (!proc)
        return;
    close_fd(&proc->pidfd);
    close_fd(&proc->ctl_fd);
    close_fd(&proc->out_fd);
    close_fd(&proc->err_fd);
    close_fd(&proc->status_fd);
    if (proc->has_cgroup) {
        sandbox_cgroup_destroy(&proc->cgroup);
        proc->has_cgroup = false;
    }
}

bool sandbox_oom_killed(const sandbox_proc *proc)
{
    return proc->has_cgroup && sandbox_cgroup_oom_killed(&proc->cgroup);
}

int sandbox_attach_send(const sandbox_proc *proc, const sandbox_attach *a)
{
    if (!proc || proc->status_fd < 0 || !a || !sandbox_root_code_rel_ok(a->code_rel) ||
        !sandbox_root_hostname_ok(a->hostname) || strlen(a->code_rel) >= ATTACH_MAX_REL)
        return -EINVAL;
    struct attach_msg m;
    memset(&m, 0, sizeof m);
    m.type = ATTACH_REQUEST;
    m.has_secrets = a->secrets_fd >= 0;
    m.as_bytes = a->as_bytes;
    memcpy(m.code_rel, a->code_rel, strlen(a->code_rel) + 1);
    memcpy(m.hostname, a->hostname, strlen(a->hostname) + 1);
    struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (a->secrets_fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &a->secrets_fd, sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(proc->status_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof m ? 0 : n < 0 ? -errno : -EIO;
}

/* Peeks first: what waits may be the runtime's wait status instead (it
 * died before the init read the request), which sandbox_reap must find. */
int sandbox_attach_result(sandbox_proc *proc)
{
    if (!proc || proc->status_fd < 0)
        return -EINVAL;
    int v;
    ssize_t n = recv(proc->status_fd, &v, sizeof v, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
    if (n == 0)
        return -EPIPE; /* the init is gone without an answer */
    if (n < (ssize_t)sizeof v)
        return -EAGAIN;
    if (!is_attach_reply(v))
        return -ESRCH;
    if (recv(proc->status_fd, &v, sizeof v, MSG_DONTWAIT) != (ssize_t)sizeof v)
        return -EIO;
    int err = v & ATTACH_ERR;
    return err ? -err : 0;
}
