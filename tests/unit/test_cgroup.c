/*
 * test_cgroup.c — what a worker's cgroup leaf guarantees, checked with real
 * processes in real cgroups: a child that enters is inside the leaf, a
 * memory bomb is OOM-killed, a fork bomb stops at pids.max, the CPU quota
 * is written, destroy leaves no process and no directory, close removes
 * the hearth-<pid> folders. Needs root and at least one controller;
 * otherwise every test is skipped with the reason. Each test's leaves are
 * destroyed in its teardown, the folders in the group teardown, so a
 * failing test leaves no cgroup behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox_cgroup.h"

#define MIB           (UINT64_C(1) << 20)
#define WATCHDOG_S    30
#define OUT_CAP       8192
#define NLEAVES       3
#define EXIT_NO_ENTER 99

static const char *const names[SANDBOX_CGROUP_COUNT] = {"memory", "pids", "cpu"};

static sandbox_cgroups *g_cg;
static char g_report[2048];
static const char *g_skip; /* why every test is skipped, or NULL */

struct fixture {
    sandbox_cgroup leaf[NLEAVES];
    pid_t stray; /* a background process a test started, until it is reaped */
};

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Test-side cleanup for when the module under test fails to: SIGKILLs
 * what cgroup.procs lists until `dir` can be removed. */
static void force_remove(const char *dir)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    for (int k = 0; k < 200 && rmdir(dir) < 0 && errno == EBUSY; k++) {
        FILE *f = fopen(p, "re");
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1)
            kill(pid, SIGKILL);
        if (f)
            fclose(f);
        usleep(10000);
    }
}

/* The hearth-<pid> folders named in the report ("<ctrl>: cgroup vN at <dir>"). */
static int report_bases(char bases[][PATH_MAX], int cap)
{
    int n = 0;
    for (const char *line = g_report; line && *line && n < cap;) {
        const char *eol = strchr(line, '\n');
        const char *at = strstr(line, " at ");
        if (at && eol && at < eol)
            snprintf(bases[n++], PATH_MAX, "%.*s", (int)(eol - at - 4), at + 4);
        line = eol ? eol + 1 : NULL;
    }
    return n;
}

static void reap_all(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        g_skip = "not root";
        return 0;
    }
    /* Orphans of our children (a leftover `sleep &`) come back to us, so
     * the tests can see them die and reap them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) < 0)
        return -1;
    int rc = sandbox_cgroup_open(&g_cg, g_report, sizeof g_report);
    if (rc < 0) {
        print_error("sandbox_cgroup_open: %s\n", strerror(-rc));
        return -1;
    }
    print_message("%s", g_report);
    if (!sandbox_cgroup_has(g_cg, "memory") && !sandbox_cgroup_has(g_cg, "pids") &&
        !sandbox_cgroup_has(g_cg, "cpu"))
        g_skip = "no cgroup controller found";
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char bases[SANDBOX_CGROUP_COUNT][PATH_MAX];
    int nb = report_bases(bases, SANDBOX_CGROUP_COUNT);
    sandbox_cgroup_close(g_cg);
    g_cg = NULL;
    int rc = 0;
    for (int k = 0; k < nb; k++) {
        if (exists(bases[k])) {
            print_error("close left %s behind\n", bases[k]);
            force_remove(bases[k]);
            rc = -1;
        }
    }
    reap_all();
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    for (int k = 0; k < NLEAVES; k++)
        for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
            f->leaf[k].procs_fd[i] = -1;
    alarm(WATCHDOG_S);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = 0;
    for (int k = 0; k < NLEAVES; k++) {
        if (sandbox_cgroup_destroy(&f->leaf[k]) < 0) {
            rc = -1;
            for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
                if (f->leaf[k].path[i][0])
                    force_remove(f->leaf[k].path[i]);
        }
    }
    if (f->stray > 0 && kill(f->stray, SIGKILL) == 0)
        waitpid(f->stray, NULL, 0);
    reap_all();
    alarm(0);
    free(f);
    return rc;
}

#define REQUIRE(ctrl)                                                                              \
    do {                                                                                           \
        if (g_skip || !g_cg) {                                                                     \
            print_message("skipped: %s\n", g_skip ? g_skip : "cgroups closed");                    \
            skip();                                                                                \
        }                                                                                          \
        if ((ctrl) && !sandbox_cgroup_has(g_cg, (ctrl))) {                                         \
            print_message("skipped: no %s controller\n", (const char *)(ctrl));                    \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static int slot_of(const char *ctrl)
{
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++)
        if (strcmp(names[i], ctrl) == 0)
            return i;
    return -1;
}

/* Reads dir/file (trailing newline dropped); "" when unreadable. */
static const char *read_knob(const char *dir, const char *file)
{
    static char buf[1024];
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    buf[0] = '\0';
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* Forks a child that enters the leaf and runs fn; returns its wait status. */
static int run_in_leaf(const sandbox_cgroup *leaf, void (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sandbox_cgroup_enter(leaf) < 0)
            _exit(EXIT_NO_ENTER);
        fn(arg);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

/* ---- open ---- */

static void test_open_reports_controllers(void **state)
{
    (void)state;
    REQUIRE(NULL);
    char own[64];
    snprintf(own, sizeof own, "/hearth-%ld", (long)getpid());
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        char head[32];
        snprintf(head, sizeof head, "%s: ", names[i]);
        const char *line = strstr(g_report, head);
        assert_non_null(line);
        const char *at = strstr(line, " at ");
        const char *eol = strchr(line, '\n');
        bool listed = at && eol && at < eol && strncmp(line + strlen(head), "cgroup v", 8) == 0;
        assert_int_equal(listed, sandbox_cgroup_has(g_cg, names[i]));
        if (!listed)
            continue;
        char base[PATH_MAX];
        snprintf(base, sizeof base, "%.*s", (int)(eol - at - 4), at + 4);
        assert_non_null(strstr(base, own));
        assert_true(exists(base));
        assert_string_not_equal(base, "/sys/fs/cgroup");
    }
    assert_false(sandbox_cgroup_has(g_cg, "cpuset"));
    assert_false(sandbox_cgroup_has(NULL, "memory"));
}

/* ---- create ---- */

static void test_create_sets_limits(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    sandbox_cgroup *l = &f->leaf[0];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-limits", 64 * MIB, 16, 500, l), 0);
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        assert_int_equal(l->path[i][0] != '\0', sandbox_cgroup_has(g_cg, names[i]));
        if (l->path[i][0])
            assert_true(exists(l->path[i]));
    }
    int m = slot_of("memory"), p = slot_of("pids"), c = slot_of("cpu");
    if (l->path[m][0]) {
        const char *dir = l->path[m];
        if (read_knob(dir, "memory.limit_in_bytes")[0]) { /* v1 */
            assert_string_equal(read_knob(dir, "memory.limit_in_bytes"), "67108864");
            assert_string_equal(read_knob(dir, "memory.swappiness"), "0");
            assert_non_null(strstr(read_knob(dir, "memory.oom_control"), "oom_kill_disable 0"));
            const char *memsw = read_knob(dir, "memory.memsw.limit_in_bytes");
            assert_true(memsw[0] == '\0' || strcmp(memsw, "67108864") == 0);
        } else {
            assert_string_equal(read_knob(dir, "memory.max"), "67108864");
            const char *swap = read_knob(dir, "memory.swap.max");
            assert_true(swap[0] == '\0' || strcmp(swap, "0") == 0);
        }
    }
    if (l->path[p][0])
        assert_string_equal(read_knob(l->path[p], "pids.max"), "16");
    if (l->path[c][0]) {
        const char *dir = l->path[c];
        if (read_knob(dir, "cpu.cfs_quota_us")[0]) {
            assert_string_equal(read_knob(dir, "cpu.cfs_quota_us"), "50000");
            assert_string_equal(read_knob(dir, "cpu.cfs_period_us"), "100000");
            assert_string_equal(read_knob(dir, "cpu.shares"), "256"); /* 64 MiB of 256 */
        } else {
            assert_string_equal(read_knob(dir, "cpu.max"), "50000 100000");
            assert_string_equal(read_knob(dir, "cpu.weight"), "25");
        }
    }
}

/* The memory limit (and memory+swap, v1) and the CPU share that follows it. */
static void assert_memory_knobs(const sandbox_cgroup *l, uint64_t bytes, const char *v1_shares,
                                const char *v2_weight)
{
    char want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)bytes);
    const char *dir = l->path[slot_of("memory")];
    if (dir[0] && read_knob(dir, "memory.limit_in_bytes")[0]) {
        assert_string_equal(read_knob(dir, "memory.limit_in_bytes"), want);
        const char *memsw = read_knob(dir, "memory.memsw.limit_in_bytes");
        assert_true(memsw[0] == '\0' || strcmp(memsw, want) == 0);
    } else if (dir[0]) {
        assert_string_equal(read_knob(dir, "memory.max"), want);
        const char *swap = read_knob(dir, "memory.swap.max");
        assert_true(swap[0] == '\0' || strcmp(swap, "0") == 0);
    }
    dir = l->path[slot_of("cpu")];
    if (dir[0] && read_knob(dir, "cpu.shares")[0])
        assert_string_equal(read_knob(dir, "cpu.shares"), v1_shares);
    else if (dir[0])
        assert_string_equal(read_knob(dir, "cpu.weight"), v2_weight);
}

/* A pre-built sandbox's leaf gets the claiming function's memory: raised
 * (v1 wants memory+swap first then) and lowered, the CPU share along. */
static void test_set_memory_changes_limit_and_share(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    if (!sandbox_cgroup_has(g_cg, "memory") && !sandbox_cgroup_has(g_cg, "cpu"))
        skip();
    sandbox_cgroup *l = &f->leaf[0];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-setmem", 64 * MIB, 16, 500, l), 0);
    assert_memory_knobs(l, 64 * MIB, "256", "25");
    assert_int_equal(sandbox_cgroup_set_memory(l, 512 * MIB), 0);
    assert_memory_knobs(l, 512 * MIB, "2048", "200");
    assert_int_equal(sandbox_cgroup_set_memory(l, 32 * MIB), 0);
    assert_memory_knobs(l, 32 * MIB, "128", "12");
    assert_int_equal(sandbox_cgroup_set_memory(l, 0), -EINVAL);
    assert_int_equal(sandbox_cgroup_set_memory(NULL, 32 * MIB), -EINVAL);
}

static void test_create_refuses_and_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    sandbox_cgroup *a = &f->leaf[0], *b = &f->leaf[1];
    const char *bad[] = {"", ".", "..", "a/b"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_int_equal(sandbox_cgroup_create(g_cg, bad[k], 0, 0, 0, b), -EINVAL);
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-dup", 64 * MIB, 16, 500, a), 0);
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-dup", 64 * MIB, 16, 500, b), -EEXIST);
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        assert_int_equal(b->procs_fd[i], -1);
        assert_string_equal(b->path[i], "");
        if (a->path[i][0]) /* the failed create did not take the existing leaf */
            assert_true(exists(a->path[i]));
    }
}

/* ---- enter ---- */

static void exec_cat_cgroup(void *arg)
{
    int *out = arg;
    dup2(out[1], 1);
    execl("/bin/sh", "sh", "-c", "cat /proc/self/cgroup", (char *)NULL);
    _exit(98);
}

/* True when a line of /proc/<pid>/cgroup text puts controller `ctrl` (or
 * the v2 hierarchy) at a path that is the tail of `leaf_path`. */
static bool listed_in(const char *text, const char *ctrl, const char *leaf_path)
{
    char copy[OUT_CAP], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        char padded[256];
        snprintf(padded, sizeof padded, ",%s,", ctrls);
        char want[64];
        snprintf(want, sizeof want, ",%s,", ctrl);
        bool ours = ctrls[0] == '\0' || strstr(padded, want);
        size_t pl = strlen(path), ll = strlen(leaf_path);
        if (ours && pl > 1 && pl <= ll && strcmp(leaf_path + ll - pl, path) == 0)
            return true;
    }
    return false;
}

static void test_enter_moves_child_into_leaf(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    sandbox_cgroup *l = &f->leaf[0];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-enter", 64 * MIB, 16, 500, l), 0);
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sandbox_cgroup_enter(l) < 0)
            _exit(EXIT_NO_ENTER);
        exec_cat_cgroup(out);
    }
    close(out[1]);
    char text[OUT_CAP];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof text - 1 && (n = read(out[0], text + got, sizeof text - 1 - got)) > 0)
        got += (size_t)n;
    text[got] = '\0';
    close(out[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        if (!l->path[i][0])
            continue;
        if (!listed_in(text, names[i], l->path[i]))
            print_error("%s leaf %s not in:\n%s", names[i], l->path[i], text);
        assert_true(listed_in(text, names[i], l->path[i]));
    }
}

/* ---- memory ---- */

static void touch_200_mib(void *arg)
{
    (void)arg;
    size_t len = 200 * MIB;
    volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(97);
    for (size_t off = 0; off < len; off += 4096)
        p[off] = 1;
    _exit(0);
}

static void do_nothing(void *arg)
{
    (void)arg;
}

static void test_memory_bomb_is_oom_killed(void **state)
{
    struct fixture *f = *state;
    REQUIRE("memory");
    sandbox_cgroup *small = &f->leaf[0], *calm = &f->leaf[1];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-oom", 32 * MIB, 16, 1000, small), 0);
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-calm", 64 * MIB, 16, 1000, calm), 0);
    int st = run_in_leaf(small, touch_200_mib, NULL);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_true(sandbox_cgroup_oom_killed(small));
    st = run_in_leaf(calm, do_nothing, NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_false(sandbox_cgroup_oom_killed(calm));
}

/* ---- pids ---- */

/* Forks until refused; each extra process waits for its parent to die.
 * Exits with the number of successful forks (90 + errno class if the
 * refusal was not EAGAIN). */
static void fork_until_refused(void *arg)
{
    (void)arg;
    pid_t self = getpid();
    int ok = 0;
    for (; ok < 16; ok++) {
        pid_t p = fork();
        if (p < 0)
            _exit(errno == EAGAIN ? ok : 90);
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL, 0L, 0L, 0L);
            if (getppid() == self)
                pause();
            _exit(0);
        }
    }
    _exit(ok);
}

static void test_fork_bomb_stops_at_pids_max(void **state)
{
    struct fixture *f = *state;
    REQUIRE("pids");
    sandbox_cgroup *l = &f->leaf[0];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-pids", 64 * MIB, 8, 1000, l), 0);
    int st = run_in_leaf(l, fork_until_refused, NULL);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7); /* 8 processes with the child itself */
}

/* ---- destroy ---- */

static void test_destroy_kills_leftovers_and_removes_dirs(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    sandbox_cgroup *l = &f->leaf[0];
    assert_int_equal(sandbox_cgroup_create(g_cg, "w-left", 64 * MIB, 16, 500, l), 0);
    char paths[SANDBOX_CGROUP_COUNT][PATH_MAX];
    memcpy(paths, l->path, sizeof paths);
    int out[2];
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (sandbox_cgroup_enter(l) < 0)
            _exit(EXIT_NO_ENTER);
        dup2(out[1], 1);
        execl("/bin/sh", "sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!", (char *)NULL);
        _exit(98);
    }
    close(out[1]);
    char text[64] = {0};
    ssize_t n = read(out[0], text, sizeof text - 1);
    close(out[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(n > 0);
    pid_t left = (pid_t)strtol(text, NULL, 10);
    assert_true(left > 1);
    f->stray = left;
    assert_int_equal(kill(left, 0), 0); /* the shell is gone, its child is not */

    assert_int_equal(sandbox_cgroup_destroy(l), 0);

    /* We are its subreaper: it must turn up dead by SIGKILL, then be gone. */
    pid_t got = 0;
    for (int k = 0; k < 2000 && got == 0; k++) {
        got = waitpid(left, &st, WNOHANG);
        if (got == 0)
            usleep(1000);
    }
    assert_int_equal(got, left);
    f->stray = 0;
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_int_equal(kill(left, 0), -1);
    assert_int_equal(errno, ESRCH);
    for (int i = 0; i < SANDBOX_CGROUP_COUNT; i++) {
        assert_int_equal(l->procs_fd[i], -1);
        assert_string_equal(l->path[i], "");
        if (paths[i][0])
            assert_false(exists(paths[i]));
    }
    assert_int_equal(sandbox_cgroup_destroy(l), 0); /* again: nothing to do */
}

/* ---- cost ---- */

static void test_measure_create_destroy(void **state)
{
    struct fixture *f = *state;
    REQUIRE(NULL);
    enum { ROUNDS = 50 };
    double total = 0, worst = 0;
    for (int k = 0; k < ROUNDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "w-bench-%d", k);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(sandbox_cgroup_create(g_cg, name, 64 * MIB, 16, 500, &f->leaf[0]), 0);
        assert_int_equal(sandbox_cgroup_destroy(&f->leaf[0]), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double us = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
        total += us;
        if (us > worst)
            worst = us;
    }
    print_message("create+destroy (empty leaf, all controllers): mean %.1f us, worst %.1f us "
                  "over %d rounds\n",
                  total / ROUNDS, worst, ROUNDS);
}

/* ---- close (last: it ends the shared instance) ---- */

static void test_close_removes_parents(void **state)
{
    (void)state;
    REQUIRE(NULL);
    char bases[SANDBOX_CGROUP_COUNT][PATH_MAX];
    int nb = report_bases(bases, SANDBOX_CGROUP_COUNT);
    assert_true(nb > 0);
    for (int k = 0; k < nb; k++)
        assert_true(exists(bases[k]));
    sandbox_cgroup_close(g_cg);
    g_cg = NULL;
    for (int k = 0; k < nb; k++)
        assert_false(exists(bases[k]));
    sandbox_cgroup_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_reports_controllers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_sets_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refuses_and_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_memory_changes_limit_and_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enter_moves_child_into_leaf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_bomb_is_oom_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fork_bomb_stops_at_pids_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_kills_leftovers_and_removes_dirs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_measure_create_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_removes_parents, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
