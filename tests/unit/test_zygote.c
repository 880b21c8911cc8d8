/*
 * test_zygote.c — what a worker cloned from a runtime template (zygote.c,
 * zygote_child.c) can rely on, without Python: the template is
 * tests/unit/zygote_template.c, whose path comes from the compile
 * definition ZYGOTE_TEMPLATE, and each worker it becomes reports what it
 * sees of itself on fd 3. Checked: the worker is as sandboxed as an
 * exec'd one (ids, pid namespace, cwd, capabilities, no_new_privs,
 * seccomp, fds, cgroup leaf), /proc shows the spec's argv and environment
 * and not the template's, it is the caller's child (CLONE_PARENT: reaped
 * through its pidfd), a second request sees nothing of the first, and a
 * template that dies or never comes up leaves workers exec'd as before.
 *
 * Needs root (every test is skipped otherwise). Each test reaps what it
 * started and stops its template; the teardown fails if a child or an fd
 * was left behind, the group teardown if a cgroup folder was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_helpers.h"
#include "sandbox.h"
#include "sandbox_cgroup.h"
#include "sandbox_seccomp.h"
#include "zygote.h"

#ifndef ZYGOTE_TEMPLATE
#error "build with -DZYGOTE_TEMPLATE=\"/path/to/zygote_template\""
#endif

#define WORKER_ID  400123
#define TIMEOUT_MS 5000
#define LINE_CAP   8192
#define MAX_PROCS  4
#define MIB        (UINT64_C(1) << 20)

/* Exec'able, so that a spawn that falls back to exec exits 0 at once. */
static const char *const worker_argv[] = {"/bin/sh", "-c", "exit 0", NULL};
static const char *const template_argv[] = {ZYGOTE_TEMPLATE, NULL};
static const char *const default_env[] = {"ZT_MARK=abc", "PATH=/usr/bin:/bin", NULL};

static sandbox_cgroups *g_cg;
static sandbox_filter g_filter;

struct fixture {
    char code_dir[64];
    int fds_before;
    sandbox_proc procs[MAX_PROCS]; /* pid -1 once finished */
    int nprocs;
};

/* ---- helpers ---- */

static sandbox_spec make_spec(const struct fixture *f, const char *const *envp)
{
    return (sandbox_spec){.argv = worker_argv,
                          .envp = envp,
                          .code_dir = f->code_dir,
                          .uid = WORKER_ID,
                          .gid = WORKER_ID,
                          .isolate = true,
                          .hostname = "zt",
                          .tmp_bytes = MIB,
                          .memory_bytes = 64 * MIB,
                          .pids_max = 16,
                          .cgroups = g_cg,
                          .filter = &g_filter};
}

/* zygote_spawn, the process kept in the fixture for the teardown to
 * collect should the test fail before it does. */
static sandbox_proc *spawn(struct fixture *f, const sandbox_spec *spec)
{
    assert_true(f->nprocs < MAX_PROCS);
    sandbox_proc *p = &f->procs[f->nprocs];
    int rc = zygote_spawn(spec, p);
    if (rc < 0)
        print_error("zygote_spawn: %s\n", strerror(-rc));
    assert_int_equal(rc, 0);
    f->nprocs++;
    return p;
}

/* Waits for the pidfd, then reaps: the wait status. */
static int wait_exit(sandbox_proc *p)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    int status = -1;
    assert_int_equal(sandbox_reap(p, &status), 1);
    return status;
}

/* Lets a template worker exit (it waits for one byte on fd 3), reaps and
 * releases it; its wait status. */
static int finish(sandbox_proc *p)
{
    assert_int_equal(send(p->ctl_fd, "x", 1, MSG_NOSIGNAL), 1);
    int status = wait_exit(p);
    sandbox_release(p);
    p->pid = -1;
    return status;
}

static long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Reads the non-blocking fd until a newline or EOF; NUL-terminates and
 * returns the length. Fails the test on timeout or overflow. */
static size_t read_line(int fd, char *buf, size_t cap)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t len = 0;
    buf[0] = '\0';
    for (;;) {
        assert_true(len < cap - 1);
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (memchr(buf, '\n', len))
                return len;
            continue;
        }
        if (n == 0)
            return len;
        assert_true(errno == EAGAIN || errno == EINTR);
        long left = TIMEOUT_MS - ms_since(&start);
        assert_true(left > 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, (int)left);
    }
}

/* The value of "\tkey=" in a report line; fails the test if absent. */
static const char *field(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\t%s=", key);
    const char *p = strstr(line, pat);
    if (!p)
        print_error("no %s in: %s\n", key, line);
    assert_non_null(p);
    p += strlen(pat);
    size_t n = strcspn(p, "\t\n");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static long field_long(const char *line, const char *key)
{
    char v[64];
    return strtol(field(line, key, v, sizeof v), NULL, 10);
}

/* A worker's report line, read from its control socket. */
static void read_report(const sandbox_proc *p, char *line, size_t cap)
{
    size_t n = read_line(p->ctl_fd, line, cap);
    assert_true(n > 0 && line[n - 1] == '\n');
}

/* Field `n` (1-based, proc(5)) of /proc/<pid>/stat, or -1. */
static long stat_field(pid_t pid, int n)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    if (n == 3)
        return p[2];
    p += 2;
    for (int f = 3; f < n && *p; p++)
        if (*p == ' ')
            f++;
    return strtol(p, NULL, 10);
}

/* Whether `pid` is listed in the cgroup.procs file of dir. */
static bool cgroup_lists(const char *dir, pid_t pid)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return false;
    long v;
    bool found = false;
    while (!found && fscanf(fp, "%ld", &v) == 1)
        found = v == pid;
    fclose(fp);
    return found;
}

/* Our children running the template binary in our own pid namespace:
 * the templates (cloned workers run it too, but in their own namespace). */
static int find_templates(pid_t *out, int cap)
{
    char want[PATH_MAX], self_ns[64], path[64], exe[PATH_MAX], ns[64];
    assert_non_null(realpath(ZYGOTE_TEMPLATE, want));
    ssize_t k = readlink("/proc/self/ns/pid", self_ns, sizeof self_ns - 1);
    assert_true(k > 0);
    self_ns[k] = '\0';
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid <= 0 || stat_field(pid, 4) != getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
        ssize_t a = readlink(path, exe, sizeof exe - 1);
        snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
        ssize_t b = readlink(path, ns, sizeof ns - 1);
        if (a <= 0 || b <= 0)
            continue;
        exe[a] = ns[b] = '\0';
        if (strcmp(exe, want) == 0 && strcmp(ns, self_ns) == 0)
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

static void hex_encode(const char *s, char *out, size_t cap)
{
    size_t len = 0;
    for (; *s && len + 3 <= cap; s++, len += 2)
        snprintf(out + len, cap - len, "%02x", (unsigned char)*s);
    out[len] = '\0';
}

/* A hearth-<pid> folder left in any of our cgroups (v1 or v2). */
static bool cgroup_folder_left(void)
{
    FILE *fp = fopen("/proc/self/cgroup", "re");
    if (!fp)
        return false;
    char line[1024], path[PATH_MAX];
    bool left = false;
    while (!left && fgets(line, sizeof line, fp)) {
        char *ctrl = strchr(line, ':'), *rel = ctrl ? strchr(ctrl + 1, ':') : NULL;
        if (!rel)
            continue;
        *rel++ = '\0';
        rel[strcspn(rel, "\n")] = '\0';
        ctrl++;
        char *save = NULL;
        const char *mount = *ctrl ? strtok_r(ctrl, ",", &save) : "";
        if (strcmp(rel, "/") == 0)
            rel = "";
        snprintf(path, sizeof path, "/sys/fs/cgroup%s%s%s/hearth-%ld", *mount ? "/" : "", mount,
                 rel, (long)getpid());
        struct stat st;
        left = stat(path, &st) == 0;
        if (left)
            print_error("left behind: %s\n", path);
    }
    fclose(fp);
    return left;
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0)
        return 0;
    int rc = sandbox_seccomp_build(&g_filter);
    if (rc < 0) {
        print_error("sandbox_seccomp_build: %s\n", strerror(-rc));
        return -1;
    }
    char report[2048];
    rc = sandbox_cgroup_open(&g_cg, report, sizeof report);
    if (rc < 0) {
        print_message("no cgroups (%s): workers run without\n", strerror(-rc));
        g_cg = NULL;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sandbox_cgroup_close(g_cg);
    g_cg = NULL;
    sandbox_seccomp_release(&g_filter);
    return geteuid() == 0 && cgroup_folder_left() ? -1 : 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    *state = f;
    if (geteuid() != 0)
        return 0;
    snprintf(f->code_dir, sizeof f->code_dir, "%s", "/tmp/hearth-zygote-XXXXXX");
    if (!mkdtemp(f->code_dir) || chmod(f->code_dir, 0755) < 0)
        return -1;
    f->fds_before = proc_count_fds(0);
    int rc = zygote_start(worker_argv, template_argv);
    if (rc < 0) {
        print_error("zygote_start %s: %s\n", ZYGOTE_TEMPLATE, strerror(-rc));
        zygote_stop_all();
        rmdir(f->code_dir);
        return -1;
    }
    return 0;
}

/* Collects whatever a failed test left running, then fails if a child or
 * an fd is still there. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->nprocs; i++) {
        sandbox_proc *p = &f->procs[i];
        if (p->pid <= 0)
            continue;
        sandbox_kill(p);
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        poll(&pfd, 1, TIMEOUT_MS);
        sandbox_reap(p, NULL);
        sandbox_release(p);
    }
    zygote_stop_all();
    bool leaked = geteuid() == 0 && (proc_count_fds(0) != f->fds_before || !proc_no_children());
    while (waitpid(-1, NULL, WNOHANG) > 0) /* keep one failure from failing the rest */
        ;
    if (f->code_dir[0])
        rmdir(f->code_dir);
    free(f);
    if (leaked)
        print_error("a child or an fd was left behind\n");
    return leaked ? -1 : 0;
}

#define SKIP_UNLESS_ROOT()                                                                         \
    do {                                                                                           \
        if (geteuid() != 0) {                                                                      \
            print_message("skipped: needs root\n");                                                \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- tests ---- */

/* Everything an exec'd isolated worker gets, a cloned one gets too, and
 * it is our child: its pidfd reaps it with the runtime's own status. */
static void test_cloned_worker_is_sandboxed_and_ours(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    assert_int_equal(zygote_count(), 1);
    sandbox_spec spec = make_spec(f, default_env);
    sandbox_proc *p = spawn(f, &spec);
    char line[LINE_CAP], v[512];
    read_report(p, line, sizeof line);
    print_message("worker: %s", line);

    assert_int_equal(field_long(line, "uid"), WORKER_ID);
    assert_int_equal(field_long(line, "gid"), WORKER_ID);
    assert_int_equal(field_long(line, "pid"), 2); /* the runtime, under the sandbox init */
    assert_int_equal(field_long(line, "ppid"), 1);
    assert_string_equal(field(line, "mark", v, sizeof v), "abc");
    assert_string_equal(field(line, "environ", v, sizeof v), "ZT_MARK=abc|PATH=/usr/bin:/bin|");
    assert_string_equal(field(line, "hzenv", v, sizeof v), "ZT_MARK=abc|PATH=/usr/bin:/bin|");
    assert_string_equal(field(line, "cmdline", v, sizeof v), "/bin/sh|-c|exit 0|");
    assert_string_equal(field(line, "cwd", v, sizeof v), "/var/task");
    assert_int_equal(field_long(line, "highfds"), 0);
    assert_string_equal(field(line, "capeff", v, sizeof v), "0000000000000000");
    assert_int_equal(field_long(line, "nnp"), 1);
    assert_int_equal(field_long(line, "seccomp"), 2);
    assert_int_equal(field_long(line, "dumpable"), 1); /* as after exec */

    /* From outside: the sandbox init is our child, and in the leaf; the
     * runtime's host pid (for audit records) is the init's child. */
    assert_int_equal(stat_field(p->pid, 4), getpid());
    assert_true(p->runtime > 0 && p->runtime != p->pid);
    assert_int_equal(stat_field(p->runtime, 4), p->pid);
    if (p->has_cgroup) {
        for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
            if (p->cgroup.path[i][0])
                assert_true(cgroup_lists(p->cgroup.path[i], p->pid));
    }

    int status = finish(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Without isolation the worker is our direct child, as an exec'd one. */
static void test_unisolated_worker_is_our_direct_child(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    sandbox_spec spec = make_spec(f, default_env);
    spec.isolate = false;
    sandbox_proc *p = spawn(f, &spec);
    char line[LINE_CAP], v[512];
    read_report(p, line, sizeof line);
    print_message("worker: %s", line);
    assert_int_equal(field_long(line, "pid"), p->pid);
    assert_int_equal(field_long(line, "ppid"), getpid());
    assert_int_equal(field_long(line, "uid"), WORKER_ID);
    assert_string_equal(field(line, "cwd", v, sizeof v), f->code_dir);
    /* An exec'd worker is dumpable again (exec resets it), so its /proc/self
     * files are its own; a clone must be too, or environ is unreadable. */
    assert_int_equal(field_long(line, "dumpable"), 1);
    assert_string_equal(field(line, "environ", v, sizeof v), "ZT_MARK=abc|PATH=/usr/bin:/bin|");
    assert_string_equal(field(line, "cmdline", v, sizeof v), "/bin/sh|-c|exit 0|");
    assert_int_equal(field_long(line, "highfds"), 0);
    assert_int_equal(field_long(line, "seccomp"), 2);
    int status = finish(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Two requests to one template, the first worker still alive: the second
 * sees its own environment only, and no copy of the first's secret
 * anywhere in its memory. The secret ends the first request and the
 * second is much shorter, so only the template's wipe of its buffer can
 * keep it out; the first worker finding its own copy proves the scan. */
static void test_second_worker_sees_only_its_own_request(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    static const char secret[] = "zt-first-5e1f";
    char scan[64], scan_env[80], secret_env[64], long_mark[160];
    hex_encode(secret, scan, sizeof scan);
    snprintf(scan_env, sizeof scan_env, "ZT_SCAN=%s", scan);
    snprintf(secret_env, sizeof secret_env, "ZT_SECRET=%s", secret);
    snprintf(long_mark, sizeof long_mark, "ZT_MARK=first%0128d", 0);

    const char *env1[] = {long_mark, scan_env, "PATH=/usr/bin:/bin", secret_env, NULL};
    sandbox_spec spec1 = make_spec(f, env1);
    sandbox_proc *p1 = spawn(f, &spec1);
    char line[LINE_CAP], v[512], want[256];
    read_report(p1, line, sizeof line);
    assert_string_equal(field(line, "mark", v, sizeof v), long_mark + strlen("ZT_MARK="));
    assert_true(field_long(line, "scan") >= 1);

    const char *env2[] = {"ZT_MARK=zt-second", scan_env, "PATH=/usr/bin:/bin", NULL};
    sandbox_spec spec2 = make_spec(f, env2);
    sandbox_proc *p2 = spawn(f, &spec2);
    read_report(p2, line, sizeof line);
    print_message("second worker: %s", line);
    assert_string_equal(field(line, "mark", v, sizeof v), "zt-second");
    snprintf(want, sizeof want, "ZT_MARK=zt-second|%s|PATH=/usr/bin:/bin|", scan_env);
    assert_string_equal(field(line, "environ", v, sizeof v), want);
    assert_string_equal(field(line, "hzenv", v, sizeof v), want);
    assert_null(strstr(line, secret));
    assert_null(strstr(line, "first"));
    assert_int_equal(field_long(line, "scan"), 0);

    assert_int_equal(finish(p1), 0);
    assert_int_equal(finish(p2), 0);
    assert_int_equal(zygote_count(), 1);
}

/* A worker that cannot start (its code is missing) fails that spawn with
 * the step's errno and leaves the template serving the next one. */
static void test_failed_worker_keeps_the_template(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    sandbox_spec spec = make_spec(f, default_env);
    spec.code_dir = "/nonexistent/hearth-zygote-test";
    sandbox_proc p;
    assert_int_equal(zygote_spawn(&spec, &p), -ENOENT);
    assert_int_equal(zygote_count(), 1);
    spec.code_dir = f->code_dir;
    sandbox_proc *ok = spawn(f, &spec);
    char line[LINE_CAP], v[64];
    read_report(ok, line, sizeof line);
    assert_string_equal(field(line, "mark", v, sizeof v), "abc");
    assert_int_equal(finish(ok), 0);
}

/* A spec whose argv is not the template's is exec'd, not cloned. */
static void test_other_argv_is_execd(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    const char *argv[] = {"/bin/sh", "-c", "echo execd >&3", NULL};
    sandbox_spec spec = make_spec(f, default_env);
    spec.argv = argv;
    sandbox_proc *p = spawn(f, &spec);
    char line[LINE_CAP];
    read_line(p->ctl_fd, line, sizeof line);
    assert_string_equal(line, "execd\n");
    int status = wait_exit(p);
    sandbox_release(p);
    p->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(zygote_count(), 1);
}

/* A template killed under us: the next spawn still works (exec'd, so
 * /bin/sh -c "exit 0" exits at once without a word on fd 3), and the
 * template is gone for good. */
static void test_dead_template_falls_back_to_exec(void **state)
{
    struct fixture *f = *state;
    SKIP_UNLESS_ROOT();
    assert_int_equal(zygote_count(), 1);
    pid_t tmpl[4];
    assert_int_equal(find_templates(tmpl, 4), 1);
    assert_int_equal(kill(tmpl[0], SIGKILL), 0);
    for (int tries = 0; tries < 500 && stat_field(tmpl[0], 3) != 'Z'; tries++)
        usleep(10 * 1000);
    assert_int_equal(stat_field(tmpl[0], 3), 'Z'); /* dead; zygote.c reaps it */

    sandbox_spec spec = make_spec(f, default_env);
    sandbox_proc *p = spawn(f, &spec);
    assert_int_equal(zygote_count(), 0);
    int status = wait_exit(p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char line[LINE_CAP];
    assert_int_equal(read_line(p->ctl_fd, line, sizeof line), 0);
    sandbox_release(p);
    p->pid = -1;
    assert_int_equal(kill(tmpl[0], 0), -1); /* reaped by zygote.c, not by us */
    assert_int_equal(find_templates(tmpl, 4), 0);
}

/* A template that never says it is ready is not kept. */
static void test_template_that_never_comes_up_is_dropped(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    zygote_stop_all();
    assert_int_equal(zygote_count(), 0);
    static const char *const broken[] = {"/bin/false", NULL};
    assert_true(zygote_start(worker_argv, broken) < 0);
    assert_int_equal(zygote_count(), 0);
    static const char *const missing[] = {"/nonexistent/zygote_template", NULL};
    assert_true(zygote_start(worker_argv, missing) < 0);
    assert_int_equal(zygote_count(), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    if (geteuid() != 0)
        print_message("test_zygote: not root, every test is skipped\n");
    const struct CMUnitTest tests[] = {
        T(test_cloned_worker_is_sandboxed_and_ours),
        T(test_unisolated_worker_is_our_direct_child),
        T(test_second_worker_sees_only_its_own_request),
        T(test_failed_worker_keeps_the_template),
        T(test_other_argv_is_execd),
        T(test_dead_template_falls_back_to_exec),
        T(test_template_that_never_comes_up_is_dropped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
