/*
 * sandbox_root.c — builds a worker's root filesystem, bubblewrap-style.
 *
 * In the worker's own mount namespace (propagation private, so nothing
 * leaks back to the host): a small tmpfs becomes the new root; /usr and
 * the host's top-level library folders are bound read-only (merged-/usr
 * symlinks are recreated); /etc holds only the loader cache, Debian's
 * alternatives links and generated passwd/group/hosts; the function's
 * code is bound read-only at /var/task;
 * /dev has null, zero, full, random and urandom; /tmp is a size-limited
 * tmpfs; for a function that lists secrets, /run/secrets is a tmpfs of
 * this worker alone, filled from the spawner's bundle and made read-only;
 * /proc is a fresh procfs of the worker's pid namespace with the
 * kernel's knobs and the host-wide counters masked. pivot_root then detaches the host's root: no
 * path in the sandbox leads back to it. There is no /sys.
 *
 * A pre-built root has everything but the function: /var/task is empty,
 * /run exists, and the sandbox's init keeps a detached read-only clone of
 * the whole code root (taken before pivot_root, while the host's tree is
 * still visible: a bind from another namespace is refused). On ATTACH the
 * init mounts it at the empty /var/.hearth, binds the function's folder
 * onto /var/task, detaches /var/.hearth again, and writes /etc/hosts and
 * /run/secrets in a short read-write window of "/".
 *
 * Must never: allocate or format with libc in the child (sandbox_root_enter
 * runs between fork and exec, sandbox_root_attach in an init forked from a
 * possibly threaded daemon), bind anything writable but /tmp, leave a
 * secret's file writable, or readable by any uid but the worker's, or
 * leave the code root visible once attached.
 */
#include "sandbox_root.h"

#include <arpa/inet.h>

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "secrets.h"
#include "validate.h"

/* Where the new root is assembled inside the worker's mount namespace. Any
 * existing folder works: the mount is private to the worker. The code
 * folder is reached through code_fd, so it may live below this path. */
#define NEWROOT "/tmp"

#define RO_BIND_FLAGS (MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)

static const char *const top_level_candidates[] = {"bin",   "sbin",  "lib",
                                                   "lib32", "lib64", "libx32"};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom"};

/* What of the fresh /proc a worker has no business reading. Files are
 * covered by /dev/null, folders by an empty read-only tmpfs; an entry this
 * kernel lacks is skipped. What stays visible, and why: docs/security.md. */
#define NEWPROC NEWROOT "/proc"
static const char *const proc_masked_files[] = {
    /* Kernel memory and knobs (as Docker masks them). */
    NEWPROC "/kcore", NEWPROC "/keys", NEWPROC "/timer_list", NEWPROC "/sysrq-trigger",
    NEWPROC "/sched_debug", NEWPROC "/kallsyms", NEWPROC "/latency_stats", NEWPROC "/timer_stats",
    /* Host-wide counters that move with other tenants' work: forks, CPU
     * time, load, run queues, interrupts, memory, paging, disk traffic,
     * cgroups made, keys held per uid. */
    NEWPROC "/stat", NEWPROC "/loadavg", NEWPROC "/uptime", NEWPROC "/schedstat",
    NEWPROC "/interrupts", NEWPROC "/softirqs", NEWPROC "/meminfo", NEWPROC "/vmstat",
    NEWPROC "/zoneinfo", NEWPROC "/buddyinfo", NEWPROC "/swaps", NEWPROC "/diskstats",
    NEWPROC "/cgroups", NEWPROC "/key-users",
    /* The host's boot line, kernel build and disks. */
    NEWPROC "/cmdline", NEWPROC "/config.gz", NEWPROC "/partitions"};
/* pressure: host-wide CPU, memory and I/O stall times. */
static const char *const proc_masked_dirs[] = {
    NEWPROC "/sys", NEWPROC "/acpi",   NEWPROC "/scsi",   NEWPROC "/bus",     NEWPROC "/fs",
    NEWPROC "/irq", NEWPROC "/asound", NEWPROC "/driver", NEWPROC "/pressure"};

/* ---- text, without snprintf (the init formats too, see above) ---- */

/* Appends s to the string at out (cap bytes in all), truncating. */
static void append(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out), k = strlen(s);
    if (n + k >= cap)
        k = cap - 1 - n;
    memcpy(out + n, s, k);
    out[n + k] = '\0';
}

static void append_u64(char *out, size_t cap, uint64_t v)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    char text[24];
    for (int i = 0; i < n; i++)
        text[i] = digits[n - 1 - i];
    text[n] = '\0';
    append(out, cap, text);
}

/* The sandbox's /etc/hosts: the function's name is its own host. */
static void format_hosts(char *out, size_t cap, const char *hostname)
{
    out[0] = '\0';
    append(out, cap, "127.0.0.1 localhost ");
    append(out, cap, hostname);
    append(out, cap, "\n::1 localhost\n");
}

/* The options of a /run/secrets tmpfs for the bundle `fd`: room for its
 * bytes (each file rounds up to whole pages; the folder takes one too). */
static void format_secrets_opts(char *out, size_t cap, int fd, uid_t uid, gid_t gid)
{
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
    size += (VALIDATE_SECRETS_MAX + 1) * 4096ull;
    out[0] = '\0';
    append(out, cap, "size=");
    append_u64(out, cap, size);
    append(out, cap, ",nr_inodes=");
    append_u64(out, cap, VALIDATE_SECRETS_MAX + 2);
    append(out, cap, ",mode=0500,uid=");
    append_u64(out, cap, uid);
    append(out, cap, ",gid=");
    append_u64(out, cap, gid);
}

void sandbox_root_plan_init(sandbox_root_plan *plan, const char *code_dir, const char *hostname,
                            uint64_t tmp_bytes, uid_t uid, gid_t gid, bool host_network)
{
    memset(plan, 0, sizeof *plan);
    plan->secrets_fd = -1;
    plan->uid = uid;
    plan->gid = gid;
    plan->host_network = host_network;
    plan->code_dir = code_dir;
    snprintf(plan->tmp_opts, sizeof plan->tmp_opts, "size=%llu,mode=1777",
             (unsigned long long)tmp_bytes);
    plan->hostname = hostname;
    for (size_t i = 0; i < sizeof top_level_candidates / sizeof *top_level_candidates; i++) {
        const char *name = top_level_candidates[i];
        char host[32];
        snprintf(host, sizeof host, "/%s", name);
        struct stat st;
        if (lstat(host, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n =
                readlink(host, plan->link_target[plan->nlinks], sizeof plan->link_target[0] - 1);
            if (n <= 0)
                continue;
            plan->link_target[plan->nlinks][n] = '\0';
            snprintf(plan->link_name[plan->nlinks++], sizeof plan->link_name[0], "%s", name);
        } else if (S_ISDIR(st.st_mode)) {
            snprintf(plan->dir_name[plan->ndirs++], sizeof plan->dir_name[0], "%s", name);
        }
    }
    snprintf(plan->passwd, sizeof plan->passwd,
             "root:x:0:0:root:/:/usr/sbin/nologin\nsbx_user:x:%u:%u:function:/tmp:/usr/sbin/"
             "nologin\n",
             (unsigned)uid, (unsigned)gid);
    snprintf(plan->uid_map, sizeof plan->uid_map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    snprintf(plan->gid_map, sizeof plan->gid_map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    snprintf(plan->group, sizeof plan->group, "root:x:0:\nsbx_user:x:%u:\n", (unsigned)gid);
    format_hosts(plan->hosts, sizeof plan->hosts, hostname);
}

void sandbox_root_plan_resolver(sandbox_root_plan *plan, uint32_t resolver)
{
    char addr[INET_ADDRSTRLEN];
    struct in_addr a = {.s_addr = resolver};
    if (!inet_ntop(AF_INET, &a, addr, sizeof addr))
        return;
    snprintf(plan->resolv, sizeof plan->resolv,
             "nameserver %s\noptions edns0 timeout:2 attempts:2\n", addr);
}

void sandbox_root_plan_secrets(sandbox_root_plan *plan, int fd)
{
    plan->secrets_fd = fd;
    format_secrets_opts(plan->secrets_opts, sizeof plan->secrets_opts, fd, plan->uid, plan->gid);
}

/* True when `path` lies in a folder the sandbox binds anyway. */
static bool under_bound_folder(const char *path)
{
    static const char *const folders[] = {"/usr/",   "/bin/",   "/sbin/",  "/lib/",
                                          "/lib64/", "/lib32/", "/libx32/"};
    for (size_t i = 0; i < sizeof folders / sizeof *folders; i++)
        if (strncmp(path, folders[i], strlen(folders[i])) == 0)
            return true;
    return false;
}

void sandbox_root_plan_program(sandbox_root_plan *plan, const char *program)
{
    const char *base = strrchr(program, '/');
    if (under_bound_folder(program) || !base ||
        snprintf(plan->program_in, sizeof plan->program_in, "%s%s", SANDBOX_ROOT_RUNTIME, base) >=
            (int)sizeof plan->program_in ||
        snprintf(plan->program, sizeof plan->program, "%s", program) >= (int)sizeof plan->program) {
        plan->program[0] = '\0';
        snprintf(plan->program_in, sizeof plan->program_in, "%s", program);
    }
}

/* ---- child side: async-signal-safe, -1 with errno on failure ---- */

static int bind_ro(const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    return mount(NULL, dst, NULL, RO_BIND_FLAGS, NULL);
}

/* Joins NEWROOT, "/" and name into out (cap 64); no snprintf in the child. */
static const char *under_root(char out[64], const char *name)
{
    size_t a = sizeof NEWROOT - 1, b = strlen(name);
    if (a + 1 + b >= 64)
        b = 63 - a - 1;
    memcpy(out, NEWROOT, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b);
    out[a + 1 + b] = '\0';
    return out;
}

static int touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -1;
}

static int make_dirs(const sandbox_root_plan *p)
{
    static const char *const dirs[] = {NEWROOT "/usr",      NEWROOT "/etc", NEWROOT "/var",
                                       NEWROOT "/var/task", NEWROOT "/tmp", NEWROOT "/dev",
                                       NEWROOT "/proc"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (mkdir(dirs[i], 0755) < 0)
            return -1;
    /* Pre-built: /run for the /run/secrets an ATTACH may bring, and the
     * mountpoint of the code root during an ATTACH, which nobody but the
     * init may enter (and "/" is read-only then: no chmod). */
    if (p->prebuilt &&
        (mkdir(NEWROOT "/run", 0755) < 0 || mkdir(NEWROOT SANDBOX_ROOT_STAGE, 0) < 0))
        return -1;
    return 0;
}

static int bind_system(const sandbox_root_plan *p)
{
    char dst[64], src[64];
    if (bind_ro("/usr", NEWROOT "/usr") < 0)
        return -1;
    for (int i = 0; i < p->nlinks; i++)
        if (symlink(p->link_target[i], under_root(dst, p->link_name[i])) < 0)
            return -1;
    for (int i = 0; i < p->ndirs; i++) {
        src[0] = '/';
        memcpy(src + 1, p->dir_name[i], strlen(p->dir_name[i]) + 1);
        if (mkdir(under_root(dst, p->dir_name[i]), 0755) < 0 || bind_ro(src, dst) < 0)
            return -1;
    }
    return 0;
}

static void fd_path(char out[32], int fd);

/* The runtime program from outside the bound folders, read-only, from
 * the fd opened before the root tmpfs hid its path (it may lie below
 * NEWROOT, as a build in /tmp does). */
static int bind_program(const sandbox_root_plan *p, int program_fd)
{
    if (program_fd < 0)
        return 0;
    char src[32], dst[sizeof NEWROOT + PATH_MAX];
    fd_path(src, program_fd);
    size_t a = sizeof NEWROOT - 1, b = strlen(p->program_in);
    memcpy(dst, NEWROOT, a);
    memcpy(dst + a, p->program_in, b + 1);
    int rc =
        mkdir(NEWROOT SANDBOX_ROOT_RUNTIME, 0755) < 0 || touch(dst) < 0 ? -1 : bind_ro(src, dst);
    close(program_fd);
    return rc;
}

static int make_etc(const sandbox_root_plan *p)
{
    if (write_file(NEWROOT "/etc/passwd", p->passwd) < 0 ||
        write_file(NEWROOT "/etc/group", p->group) < 0 ||
        write_file(NEWROOT "/etc/hosts", p->hosts) < 0 ||
        write_file(NEWROOT "/etc/nsswitch.conf",
                   p->resolv[0] ? "passwd: files\ngroup: files\nhosts: files dns\n"
                                : "passwd: files\ngroup: files\nhosts: files\n") < 0 ||
        (p->resolv[0] && write_file(NEWROOT "/etc/resolv.conf", p->resolv) < 0))
        return -1;
    if (access("/etc/ld.so.cache", R_OK) == 0 &&
        (touch(NEWROOT "/etc/ld.so.cache") < 0 ||
         bind_ro("/etc/ld.so.cache", NEWROOT "/etc/ld.so.cache") < 0))
        return -1;
    /* Debian's commands are often links through /etc/alternatives
     * (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk): without it
     * they do not exist. Its links lead into /usr, bound anyway; one to
     * anywhere else leads nowhere in the sandbox. */
    struct stat st;
    if (stat("/etc/alternatives", &st) == 0 && S_ISDIR(st.st_mode) &&
        (mkdir(NEWROOT "/etc/alternatives", 0755) < 0 ||
         bind_ro("/etc/alternatives", NEWROOT "/etc/alternatives") < 0))
        return -1;
    return 0;
}

static int make_dev(void)
{
    char dst[64], src[32];
    if (mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0)
        return -1;
    for (size_t i = 0; i < sizeof dev_nodes / sizeof *dev_nodes; i++) {
        size_t n = strlen(dev_nodes[i]);
        memcpy(src, "/dev/", 5);
        memcpy(src + 5, dev_nodes[i], n + 1);
        memcpy(dst, NEWROOT "/dev/", sizeof NEWROOT + 4);
        memcpy(dst + sizeof NEWROOT + 4, dev_nodes[i], n + 1);
        if (touch(dst) < 0 || mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return -1;
    }
    if (symlink("/proc/self/fd", NEWROOT "/dev/fd") < 0 ||
        symlink("/proc/self/fd/0", NEWROOT "/dev/stdin") < 0 ||
        symlink("/proc/self/fd/1", NEWROOT "/dev/stdout") < 0 ||
        symlink("/proc/self/fd/2", NEWROOT "/dev/stderr") < 0)
        return -1;
    return mount(NULL, NEWROOT "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                 "size=64k,mode=0755");
}

/* One file of a /run/secrets: len bytes of the bundle from `off`, the
 * worker's own, read-only. */
static int write_secret(const char *path, int bundle, off_t off, uint32_t len, uid_t uid, gid_t gid)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0)
        return -1;
    char buf[4096];
    int rc = 0;
    for (uint32_t done = 0; rc == 0 && done < len;) {
        size_t want = len - done < sizeof buf ? len - done : sizeof buf;
        ssize_t n = pread(bundle, buf, want, off + (off_t)done);
        rc = n > 0 && write(fd, buf, (size_t)n) == n ? 0 : -1;
        done += n > 0 ? (uint32_t)n : 0;
    }
    explicit_bzero(buf, sizeof buf);
    if (rc == 0)
        rc = fchown(fd, uid, gid);
    close(fd);
    return rc;
}

/* validate_function_name's rule, which secret names share (validate.c is
 * not linked into the zygote library): one safe path component, a
 * hostname. */
static bool name_ok(const char *name, size_t len)
{
    if (len == 0 || len > VALIDATE_SECRET_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return false;
    return true;
}

/* Reads the bundle's record at *off: its name into `name` (room for
 * VALIDATE_SECRET_NAME_MAX + 1), its value's length into *len. 1, 0 at
 * the end, -1 with errno for a malformed bundle. */
static int next_record(int bundle, off_t *off, char *name, uint32_t *len)
{
    unsigned char nlen;
    ssize_t n = pread(bundle, &nlen, 1, *off);
    if (n == 0)
        return 0;
    errno = EPROTO;
    if (n != 1 || nlen == 0 || nlen > VALIDATE_SECRET_NAME_MAX ||
        pread(bundle, name, nlen, *off + 1) != nlen || !name_ok(name, nlen) ||
        pread(bundle, len, sizeof *len, *off + 1 + nlen) != (ssize_t)sizeof *len ||
        *len > SECRETS_VALUE_MAX)
        return -1;
    name[nlen] = '\0';
    *off += 1 + nlen + (off_t)sizeof *len;
    return 1;
}

#define SECRETS_DIR_MAX 48 /* the longest `dir` of fill_secrets, NUL included */

/* `dir` (its parent exists, and is writable now): a tmpfs of this worker
 * alone (0500, its uid) with `opts`, one file per record of the bundle
 * (0400, its uid), then read-only. The one implementation for a root
 * being built and for an ATTACH. */
static int fill_secrets(const char *dir, int bundle, const char *opts, uid_t uid, gid_t gid)
{
    size_t dl = strlen(dir);
    if (dl + 1 >= SECRETS_DIR_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (mkdir(dir, 0500) < 0 ||
        mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
        return -1;
    char path[SECRETS_DIR_MAX + VALIDATE_SECRET_NAME_MAX + 2];
    memcpy(path, dir, dl);
    path[dl] = '/';
    off_t off = 0;
    uint32_t len;
    int more;
    while ((more = next_record(bundle, &off, path + dl + 1, &len)) > 0) {
        if (write_secret(path, bundle, off, len, uid, gid) < 0)
            return -1;
        off += len;
    }
    if (more < 0)
        return -1;
    return mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, opts);
}

/* A root being built: /run/secrets when the worker lists secrets. */
static int make_secrets(const sandbox_root_plan *p)
{
    if (p->secrets_fd < 0)
        return 0;
    if (mkdir(NEWROOT "/run", 0755) < 0)
        return -1;
    return fill_secrets(NEWROOT SANDBOX_SECRETS_PATH, p->secrets_fd, p->secrets_opts, p->uid,
                        p->gid);
}

/* Only loopback, and up: a function may talk to itself, to nothing else. */
static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    return rc;
}

static int pivot(void)
{
    if (chdir(NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return -1;
    /* The old root is stacked under the new one at "/": detach it. */
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return -1;
    return 0;
}

/* Before pivot_root: without root, the kernel mounts a new procfs only
 * while a fully visible one is in the mount namespace (the host's, about
 * to be detached). */
static int mount_proc(void)
{
    /* hidepid=invisible: the runtime sees only processes of its own uid, not
     * the sandbox's init (which is a copy of the daemon, arguments and all). */
    if (mount("proc", NEWPROC, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") < 0)
        return -1;
    for (size_t i = 0; i < sizeof proc_masked_files / sizeof *proc_masked_files; i++)
        if (mount("/dev/null", proc_masked_files[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
            return -1;
    for (size_t i = 0; i < sizeof proc_masked_dirs / sizeof *proc_masked_dirs; i++)
        if (mount("tmpfs", proc_masked_dirs[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                  "size=0") < 0 &&
            errno != ENOENT)
            return -1;
    return 0;
}

/* "/proc/self/fd/<fd>" without snprintf (not async-signal-safe). */
static void fd_path(char out[32], int fd)
{
    char digits[12];
    int n = 0;
    do
        digits[n++] = (char)('0' + fd % 10);
    while ((fd /= 10) > 0);
    memcpy(out, "/proc/self/fd/", 14);
    for (int i = 0; i < n; i++)
        out[14 + i] = digits[n - 1 - i];
    out[14 + n] = '\0';
}

/* The code folder may lie below NEWROOT, which the root tmpfs is about to
 * cover, and a bind source must be a mount of this namespace: so it is
 * opened here, in the new namespace, before anything is mounted. */
static int bind_code(int code_fd, const char *dst)
{
    char src[32];
    fd_path(src, code_fd);
    int rc = bind_ro(src, dst);
    close(code_fd);
    return rc;
}

int sandbox_root_map_ids(const sandbox_root_plan *p)
{
    if (write_file("/proc/self/uid_map", p->uid_map) < 0 ||
        write_file("/proc/self/setgroups", "deny") < 0 ||
        write_file("/proc/self/gid_map", p->gid_map) < 0)
        return -1;
    return 0;
}

int sandbox_root_enter_user_ns(const sandbox_root_plan *p)
{
    /* The uid change made us non-dumpable, which hands /proc/self to root:
     * become dumpable again to write our own maps (exec resets it anyway). */
    if (prctl(PR_SET_DUMPABLE, 1L, 0L, 0L, 0L) < 0 || unshare(CLONE_NEWUSER) < 0)
        return -1;
    return sandbox_root_map_ids(p);
}

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
struct mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#endif

/* Pre-built: a detached clone of the whole code root, every mount of it
 * read-only, nosuid, nodev. Recursive, because rootless the host's mounts
 * below it are locked to their parents in our user namespace. */
static int take_code_root(const char *code_root)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, code_root,
                          OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return -1;
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                              .propagation = MS_PRIVATE};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* The function's folder, found beneath `dir` only (an absolute or
 * escaping symlink is refused): an O_PATH fd, or -1 with errno. */
static int open_code_beneath(int dir, const char *code_rel)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dir, code_rel, &how, sizeof how);
}

/* The function's folder bound read-only onto /var/task, from the code
 * root mounted at the stage. */
static int bind_attached_code(const char *code_rel)
{
    int stage = open(SANDBOX_ROOT_STAGE, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (stage < 0)
        return -1;
    int code = open_code_beneath(stage, code_rel);
    int err = errno;
    close(stage);
    if (code < 0) {
        errno = err;
        return -1;
    }
    return bind_code(code, SANDBOX_ROOT_TASK);
}

/* Kernels since 6.15 clone a folder straight out of a detached tree: a
 * read-only copy of the function's folder alone, moved onto /var/task,
 * with no stage mounted and nothing to detach after (the detach waits for
 * RCU). -1 with errno EINVAL where the kernel refuses the clone. */
static int clone_attached_code(int tree_fd, const char *code_rel)
{
    int code = open_code_beneath(tree_fd, code_rel);
    if (code < 0)
        return -1;
    int copy = (int)syscall(SYS_open_tree, code, "",
                            OPEN_TREE_CLONE | AT_EMPTY_PATH | AT_RECURSIVE | OPEN_TREE_CLOEXEC);
    int err = errno;
    close(code);
    if (copy < 0) {
        errno = err;
        return -1;
    }
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    int rc =
        (int)syscall(SYS_mount_setattr, copy, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
    if (rc == 0)
        rc = (int)syscall(SYS_move_mount, copy, "", AT_FDCWD, SANDBOX_ROOT_TASK,
                          MOVE_MOUNT_F_EMPTY_PATH);
    err = errno;
    close(copy);
    errno = err;
    return rc;
}

/* Attaches the function's folder: cloned out of the tree where the kernel
 * can, else through the code root mounted at the stage just long enough
 * to bind the folder out of it. The tree fd stays the caller's. */
static int attach_code(int tree_fd, const char *code_rel)
{
    if (clone_attached_code(tree_fd, code_rel) == 0)
        return 0;
    if (errno != EINVAL)
        return -1;
    if (syscall(SYS_move_mount, tree_fd, "", AT_FDCWD, SANDBOX_ROOT_STAGE,
                MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return -1;
    int rc = bind_attached_code(code_rel);
    int err = errno;
    if (umount2(SANDBOX_ROOT_STAGE, MNT_DETACH) < 0)
        return -1;
    errno = err;
    return rc;
}

/* /etc/hosts and /run/secrets, while "/" is writable for a moment. */
static int write_attached_files(const sandbox_root_plan *p, const char *hostname, int secrets_fd)
{
    char hosts[sizeof p->hosts], opts[sizeof p->secrets_opts];
    format_hosts(hosts, sizeof hosts, hostname);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL) < 0)
        return -1;
    int rc = write_file("/etc/hosts", hosts);
    if (rc == 0 && secrets_fd >= 0) {
        format_secrets_opts(opts, sizeof opts, secrets_fd, p->uid, p->gid);
        rc = fill_secrets(SANDBOX_SECRETS_PATH, secrets_fd, opts, p->uid, p->gid);
    }
    int err = errno;
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return -1;
    errno = err;
    return rc;
}

bool sandbox_root_code_rel_ok(const char *rel)
{
    const char *slash = rel ? strchr(rel, '/') : NULL;
    if (!slash || !name_ok(rel, (size_t)(slash - rel)))
        return false;
    const char *version = slash + 1;
    size_t n = strlen(version);
    if (n == 0 || n > NAME_MAX || strchr(version, '/') || strcmp(version, ".") == 0 ||
        strcmp(version, "..") == 0)
        return false;
    return true;
}

bool sandbox_root_hostname_ok(const char *name)
{
    return name && name_ok(name, strnlen(name, VALIDATE_SECRET_NAME_MAX + 1));
}

int sandbox_root_attach(const sandbox_root_plan *p, int tree_fd, const char *code_rel,
                        const char *hostname, int secrets_fd)
{
    if (!sandbox_root_code_rel_ok(code_rel) || !sandbox_root_hostname_ok(hostname) || tree_fd < 0) {
        errno = EINVAL;
        return -1;
    }
    if (attach_code(tree_fd, code_rel) < 0 || write_attached_files(p, hostname, secrets_fd) < 0)
        return -1;
    return sethostname(hostname, strlen(hostname));
}

int sandbox_root_enter(const sandbox_root_plan *p, int *tree_fd)
{
    *tree_fd = -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    /* Pre-built: the code root, not a function's folder, and only kept. */
    int code_fd = p->prebuilt ? take_code_root(p->code_dir)
                              : open(p->code_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int program_fd = p->program[0] ? open(p->program, O_PATH | O_CLOEXEC) : -1;
    if (code_fd < 0 || (p->program[0] && program_fd < 0) ||
        mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
        return -1; /* the fds close with the process, which ends here */
    if (p->prebuilt)
        *tree_fd = code_fd;
    if (make_dirs(p) < 0 || (!p->prebuilt && bind_code(code_fd, NEWROOT SANDBOX_ROOT_TASK) < 0))
        return -1;
    if (bind_system(p) < 0 || bind_program(p, program_fd) < 0 || make_etc(p) < 0 ||
        make_dev() < 0 || make_secrets(p) < 0)
        return -1;
    if (sethostname(p->hostname, strlen(p->hostname)) < 0 ||
        (!p->host_network && loopback_up() < 0))
        return -1;
    if (mount_proc() < 0 || pivot() < 0)
        return -1;
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, p->tmp_opts) < 0)
        return -1;
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return -1;
    return chdir(SANDBOX_ROOT_TASK);
}
