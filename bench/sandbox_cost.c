/*
 * sandbox_cost.c — what each piece of the worker sandbox costs: times
 * sandbox_spawn() → exec → the program exits → pidfd readable → reaped →
 * sandbox_release(), N times per configuration (the full sandbox, then
 * each piece off in turn, then nothing), against plain posix_spawn and
 * fork+exec floors, in one run; also the seccomp build and a cgroup leaf
 * create+destroy alone, and a Python cold start with and without the
 * sandbox. Prints a plain-text report on stdout; progress on stderr.
 *
 * Owns a temp code dir and the hearth-<pid> cgroup folders it opens; it
 * must never leave either behind (Ctrl-C stops it between spawns, then it
 * cleans up), and never runs anything but /bin/true and python3.
 *
 * Usage: sandbox_cost [N [PY_N]]   defaults 200 and 30. As root, workers
 * run as uid 400000; as another user, rootless (an unprivileged user
 * namespace, the caller's uid, cgroups only where delegated).
 * Exit status: 0, 1 if a case failed (its row says why), 2 on set-up failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox.h"
#include "sandbox_cgroup.h"
#include "sandbox_seccomp.h"

#define DEFAULT_N      200
#define DEFAULT_PY_N   30
#define MAX_N          100000
#define WARMUP         5    /* unmeasured rounds first: page cache, first cgroup dirs */
#define EXIT_WAIT_MS   5000 /* a program that has not exited by then is a failure */
#define WORKER_UID     400000
#define SECCOMP_REPEAT 20

enum kind { KIND_SANDBOX, KIND_POSIX_SPAWN, KIND_FORK_EXEC };

struct config {
    const char *name;
    enum kind kind;
    bool isolate, host_network, cgroups, filter;
    /* measured, ms: total; spawn() alone (returns once exec'd); its end to
     * reaped (the program runs and exits, the pidfd fires); release() */
    double *total, *to_exec, *to_reaped, *release;
    int n;
    int err; /* first failure (errno), 0 = none; a failed case is not run again */
};

#define SANDBOXED(nm, iso, hostnet, cgs, filt)                                                     \
    {                                                                                              \
        .name = (nm), .kind = KIND_SANDBOX, .isolate = (iso), .host_network = (hostnet),           \
        .cgroups = (cgs), .filter = (filt)                                                         \
    }

struct env {
    sandbox_cgroups *cg;
    sandbox_filter filter;
    char code_dir[64];
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *const child_env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};

static sandbox_spec spec_for(const struct config *c, const struct env *e, const char *const *argv)
{
    return (sandbox_spec){
        .argv = argv,
        .envp = child_env,
        .code_dir = e->code_dir,
        .uid = geteuid() == 0 ? WORKER_UID : geteuid(),
        .gid = geteuid() == 0 ? WORKER_UID : getegid(),
        .memory_bytes = 128u << 20,
        .max_open_files = 1024,
        .isolate = c->isolate,
        .hostname = "bench",
        .host_network = c->host_network,
        .tmp_bytes = 64u << 20,
        .cgroups = c->cgroups ? e->cg : NULL,
        .pids_max = 64,
        .cpu_millis = 1000,
        .filter = c->filter ? &e->filter : NULL,
    };
}

/* Waits for the pidfd to become readable; on timeout kills the sandbox
 * and waits again. Returns 0, or -ETIMEDOUT after the kill. */
static int await_exit(sandbox_proc *p)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    int r;
    do
        r = poll(&pfd, 1, EXIT_WAIT_MS);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return 0;
    sandbox_kill(p);
    do
        r = poll(&pfd, 1, EXIT_WAIT_MS);
    while (r < 0 && errno == EINTR);
    return -ETIMEDOUT;
}

/* Shows what a program that did not exit 0 said, for the failure note. */
static void print_stderr_of(const sandbox_proc *p, const char *name)
{
    char buf[512];
    ssize_t n = read(p->err_fd, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        fprintf(stderr, "sandbox_cost: %s: stderr: %s\n", name, buf);
    }
}

/* One sandboxed run, timed into ms[4] (the four parts of struct config).
 * Returns 0 or -errno (-EPROTO when the program ran but did not exit 0). */
static int run_sandbox(const struct config *c, const struct env *e, const char *const *argv,
                       double *ms)
{
    sandbox_spec spec = spec_for(c, e, argv);
    sandbox_proc p;
    double t0 = now_ms();
    int rc = sandbox_spawn(&spec, &p);
    if (rc < 0)
        return rc;
    double t1 = now_ms();
    rc = await_exit(&p);
    int ws = 0;
    int reaped = sandbox_reap(&p, &ws);
    if (rc == 0 && reaped != 1)
        rc = reaped < 0 ? reaped : -ECHILD;
    if (rc == 0 && (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)) {
        fprintf(stderr, "sandbox_cost: %s: wait status 0x%x\n", c->name, (unsigned)ws);
        print_stderr_of(&p, c->name);
        rc = -EPROTO;
    }
    double t2 = now_ms();
    sandbox_release(&p);
    double t3 = now_ms();
    ms[0] = t3 - t0;
    ms[1] = t1 - t0;
    ms[2] = t2 - t1;
    ms[3] = t3 - t2;
    return rc;
}

static int wait_child(pid_t pid)
{
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : -EPROTO;
}

/* The floors: the cheapest ways to start and reap a process from C. */
static int run_floor(enum kind kind, const char *const *argv, double *total)
{
    double t0 = now_ms();
    pid_t pid;
    if (kind == KIND_POSIX_SPAWN) {
        int rc =
            posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, (char *const *)child_env);
        if (rc != 0)
            return -rc;
    } else {
        pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0) {
            execve(argv[0], (char *const *)argv, (char *const *)child_env);
            _exit(127);
        }
    }
    int rc = wait_child(pid);
    *total = now_ms() - t0;
    return rc;
}

static void run_one(struct config *c, const struct env *e, const char *const *argv, bool keep)
{
    if (c->err)
        return;
    double ms[4] = {0, 0, 0, 0};
    int rc = c->kind == KIND_SANDBOX ? run_sandbox(c, e, argv, ms) : run_floor(c->kind, argv, ms);
    if (rc < 0) {
        c->err = -rc;
        fprintf(stderr, "sandbox_cost: %s: %s\n", c->name, strerror(-rc));
        return;
    }
    if (!keep)
        return;
    c->total[c->n] = ms[0];
    c->to_exec[c->n] = ms[1];
    c->to_reaped[c->n] = ms[2];
    c->release[c->n] = ms[3];
    c->n++;
}

/* Round-robin over the cases, so drift on a shared machine hits all alike. */
static void run_cases(struct config *cs, size_t ncs, const struct env *e, const char *const *argv,
                      int n)
{
    for (int i = 0; i < WARMUP + n && !stop_requested; i++)
        for (size_t k = 0; k < ncs; k++)
            run_one(&cs[k], e, argv, i >= WARMUP);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct stats {
    double p50, p99, mean;
};

/* Sorts v in place. Nearest-rank percentiles. */
static struct stats stats_of(double *v, int n)
{
    struct stats s = {0, 0, 0};
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    int i99 = (int)((99L * n + 99) / 100) - 1;
    s.p50 = v[(n - 1) / 2];
    s.p99 = v[i99 < 0 ? 0 : i99];
    s.mean = sum / n;
    return s;
}

static void print_table(const char *title, struct config *cs, size_t ncs)
{
    printf("\n%s\n", title);
    printf("%-44s %8s %8s %8s %8s %8s %8s %8s %8s\n", "case (ms)", "p50", "p99", "mean", "d-p50",
           "d-mean", "spawn", "run+reap", "release");
    struct stats full = stats_of(cs[0].total, cs[0].n);
    for (size_t k = 0; k < ncs; k++) {
        struct config *c = &cs[k];
        if (c->err || c->n == 0) {
            printf("%-44s failed: %s\n", c->name, c->err ? strerror(c->err) : "not run");
            continue;
        }
        struct stats t = stats_of(c->total, c->n);
        printf("%-44s %8.3f %8.3f %8.3f", c->name, t.p50, t.p99, t.mean);
        if (k == 0)
            printf(" %8s %8s", "-", "-");
        else
            printf(" %+8.3f %+8.3f", t.p50 - full.p50, t.mean - full.mean);
        if (c->kind == KIND_SANDBOX)
            printf(" %8.3f %8.3f %8.3f\n", stats_of(c->to_exec, c->n).p50,
                   stats_of(c->to_reaped, c->n).p50, stats_of(c->release, c->n).p50);
        else
            printf(" %8s %8s %8s\n", "-", "-", "-");
    }
}

static int alloc_samples(struct config *cs, size_t ncs, int n)
{
    for (size_t k = 0; k < ncs; k++) {
        cs[k].total = calloc((size_t)n, sizeof(double));
        cs[k].to_exec = calloc((size_t)n, sizeof(double));
        cs[k].to_reaped = calloc((size_t)n, sizeof(double));
        cs[k].release = calloc((size_t)n, sizeof(double));
        if (!cs[k].total || !cs[k].to_exec || !cs[k].to_reaped || !cs[k].release)
            return -ENOMEM;
    }
    return 0;
}

static void free_samples(struct config *cs, size_t ncs)
{
    for (size_t k = 0; k < ncs; k++) {
        free(cs[k].total);
        free(cs[k].to_exec);
        free(cs[k].to_reaped);
        free(cs[k].release);
    }
}

static bool any_failed(const struct config *cs, size_t ncs)
{
    for (size_t k = 0; k < ncs; k++)
        if (cs[k].err)
            return true;
    return false;
}

/* The first build (what the daemon pays once) and the median of more. */
static int time_seccomp_build(unsigned short *len)
{
    double v[SECCOMP_REPEAT + 1];
    for (int i = 0; i <= SECCOMP_REPEAT; i++) {
        sandbox_filter f;
        double t0 = now_ms();
        int rc = sandbox_seccomp_build(&f);
        v[i] = now_ms() - t0;
        if (rc < 0)
            return rc;
        *len = f.len;
        sandbox_seccomp_release(&f);
    }
    double first = v[0];
    struct stats s = stats_of(v + 1, SECCOMP_REPEAT);
    printf("seccomp filter build (%u BPF instructions, done once per daemon): first %.3f ms, "
           "p50 of %d more %.3f ms\n",
           (unsigned)*len, first, SECCOMP_REPEAT, s.p50);
    return 0;
}

/* A leaf in every controller with the full sandbox's limits, then removed. */
static int time_cgroup_leaf(sandbox_cgroups *cg, int n)
{
    if (!sandbox_cgroup_has(cg, "memory") && !sandbox_cgroup_has(cg, "pids") &&
        !sandbox_cgroup_has(cg, "cpu")) {
        printf("cgroup leaf alone: no controller usable here\n");
        return 0;
    }
    double *c = calloc((size_t)n, sizeof(double));
    double *d = calloc((size_t)n, sizeof(double));
    double *t = calloc((size_t)n, sizeof(double));
    int rc = c && d && t ? 0 : -ENOMEM, done = 0;
    for (int i = 0; rc == 0 && i < n && !stop_requested; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-%d", i);
        sandbox_cgroup leaf;
        double t0 = now_ms();
        rc = sandbox_cgroup_create(cg, name, 128u << 20, 64, 1000, &leaf);
        if (rc < 0)
            break;
        double t1 = now_ms();
        rc = sandbox_cgroup_destroy(&leaf);
        double t2 = now_ms();
        c[i] = t1 - t0;
        d[i] = t2 - t1;
        t[i] = t2 - t0;
        done++;
    }
    if (rc == 0 && done > 0) {
        struct stats sc = stats_of(c, done), sd = stats_of(d, done), st = stats_of(t, done);
        printf("cgroup leaf alone, n=%d (ms): create p50 %.3f, destroy p50 %.3f, "
               "create+destroy p50 %.3f p99 %.3f mean %.3f\n",
               done, sc.p50, sd.p50, st.p50, st.p99, st.mean);
    }
    free(c);
    free(d);
    free(t);
    return rc;
}

static int parse_count(const char *s, int fallback)
{
    if (!s)
        return fallback;
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v <= MAX_N ? (int)v : -1;
}

static int env_open(struct env *e)
{
    e->cg = NULL;
    e->filter = (sandbox_filter){NULL, 0};
    snprintf(e->code_dir, sizeof e->code_dir, "/tmp/hearth-sbench.XXXXXX");
    if (!mkdtemp(e->code_dir)) {
        e->code_dir[0] = '\0';
        return -errno;
    }
    if (chmod(e->code_dir, 0755) < 0)
        return -errno;
    char report[2048] = "";
    int rc = sandbox_cgroup_open(&e->cg, report, sizeof report);
    if (rc < 0)
        return rc;
    printf("cgroups:\n%s", report);
    if (report[0] && report[strlen(report) - 1] != '\n')
        putchar('\n');
    return 0;
}

static void env_close(struct env *e)
{
    sandbox_cgroup_close(e->cg);
    e->cg = NULL;
    sandbox_seccomp_release(&e->filter);
    if (e->code_dir[0] && rmdir(e->code_dir) < 0)
        fprintf(stderr, "sandbox_cost: rmdir %s: %s\n", e->code_dir, strerror(errno));
}

static int run_all(struct env *e, int n, int py_n)
{
    static const char *const true_argv[] = {"/bin/true", NULL};
    static const char *const py_argv[] = {"/usr/bin/python3", "-I", "-S", "-c", "pass", NULL};
    unsigned short len = 0;
    int rc = time_seccomp_build(&len);
    if (rc == 0)
        rc = sandbox_seccomp_build(&e->filter);
    if (rc == 0)
        rc = time_cgroup_leaf(e->cg, n);
    if (rc < 0) {
        fprintf(stderr, "sandbox_cost: set-up: %s\n", strerror(-rc));
        return 2;
    }
    struct config cs[] = {
        SANDBOXED("(1) full sandbox", true, false, true, true),
        SANDBOXED("(2) - seccomp", true, false, true, false),
        SANDBOXED("(3) - cgroups", true, false, false, true),
        SANDBOXED("(4) - network namespace (host_network)", true, true, true, true),
        SANDBOXED("(5) - namespaces and root (isolate=false)", false, false, true, true),
        SANDBOXED("(6) nothing (fork+exec as uid, rlimits)", false, false, false, false),
        {.name = "(7) floor: posix_spawn + waitpid", .kind = KIND_POSIX_SPAWN},
        {.name = "(8) floor: fork + execve + waitpid", .kind = KIND_FORK_EXEC},
    };
    struct config py[] = {
        SANDBOXED("(1) full sandbox", true, false, true, true),
        SANDBOXED("(6) nothing (fork+exec as uid, rlimits)", false, false, false, false),
        {.name = "(7) floor: posix_spawn + waitpid", .kind = KIND_POSIX_SPAWN},
    };
    const size_t ncs = sizeof cs / sizeof cs[0], npy = sizeof py / sizeof py[0];
    int status = 0;
    if (alloc_samples(cs, ncs, n) < 0 || alloc_samples(py, npy, py_n) < 0) {
        status = 2;
    } else {
        fprintf(stderr, "sandbox_cost: %zu cases x %d spawns of /bin/true...\n", ncs, n);
        run_cases(cs, ncs, e, true_argv, n);
        fprintf(stderr, "sandbox_cost: %zu cases x %d spawns of python3...\n", npy, py_n);
        run_cases(py, npy, e, py_argv, py_n);
        print_table("/bin/true: sandbox_spawn -> exec'd -> exited -> pidfd readable -> reaped -> "
                    "released",
                    cs, ncs);
        print_table("python3 -I -S -c pass: the same", py, npy);
        printf("\nd-p50, d-mean: minus the full sandbox's. The last three are p50s of the parts: "
               "spawn = sandbox_spawn() (returns once exec succeeded), run+reap = from there to "
               "pidfd readable and reaped, release = sandbox_release() (closes fds, removes the "
               "cgroup leaf). Cases run round-robin after %d unmeasured rounds.\n",
               WARMUP);
        status = any_failed(cs, ncs) || any_failed(py, npy) ? 1 : 0;
    }
    free_samples(cs, ncs);
    free_samples(py, npy);
    return status;
}

int main(int argc, char **argv)
{
    int n = parse_count(argc > 1 ? argv[1] : NULL, DEFAULT_N);
    int py_n = parse_count(argc > 2 ? argv[2] : NULL, DEFAULT_PY_N);
    if (n < 0 || py_n < 0) {
        fprintf(stderr, "usage: sandbox_cost [N [PY_N]]  (1..%d)\n", MAX_N);
        return 2;
    }
    if (geteuid() != 0)
        printf("rootless: uid %d, workers in an unprivileged user namespace\n", (int)geteuid());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct env e;
    int rc = env_open(&e);
    int status = 2;
    if (rc < 0)
        fprintf(stderr, "sandbox_cost: set-up: %s\n", strerror(-rc));
    else
        status = run_all(&e, n, py_n);
    env_close(&e);
    if (stop_requested)
        status = 130;
    return status;
}
