/*
 * test_sandbox.c — what a worker can rely on when sandbox_spawn starts it,
 * checked by running real programs (/bin/sh, env, grep, cat) and reading
 * what they report. Uid assertions run only as root. Every test reaps its
 * children and the teardown fails if a child or an fd was left behind.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_helpers.h"
#include "sandbox.h"

#define NOBODY     65534
#define TIMEOUT_MS 5000
#define OUT_CAP    8192

static const char *const empty_env[] = {NULL};

struct fixture {
    char code_dir[64];
    int fds_before;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->code_dir, sizeof f->code_dir, "%s", "/tmp/hearth-sandbox-XXXXXX");
    if (!mkdtemp(f->code_dir) || chmod(f->code_dir, 0755) < 0) {
        free(f);
        return -1;
    }
    f->fds_before = proc_count_fds(0);
    *state = f;
    return 0;
}

/* Fails the test if it leaked an fd or left a child unreaped. */
static int teardown(void **state)
{
    struct fixture *f = *state;
    int leaked = proc_count_fds(0) != f->fds_before || !proc_no_children();
    while (waitpid(-1, NULL, WNOHANG) > 0) /* keep one failure from failing the rest */
        ;
    rmdir(f->code_dir);
    free(f);
    return leaked ? -1 : 0;
}

static sandbox_spec make_spec(const struct fixture *f, const char *const *argv)
{
    return (sandbox_spec){.argv = argv,
                          .envp = empty_env,
                          .code_dir = f->code_dir,
                          .uid = NOBODY,
                          .gid = NOBODY,
                          .max_open_files = 256};
}

static long ms_left(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long spent = (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
    return TIMEOUT_MS - spent;
}

/* Reads a non-blocking fd until EOF (stop_at_newline=0) or the first
 * newline; NUL-terminates. Fails the test on timeout or overflow. */
static size_t read_fd(int fd, char *buf, size_t cap, int stop_at_newline)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t len = 0;
    for (;;) {
        assert_true(len < cap - 1);
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            buf[len] = '\0';
            if (stop_at_newline && memchr(buf, '\n', len))
                return len;
            continue;
        }
        if (n == 0)
            break;
        assert_true(errno == EAGAIN || errno == EINTR);
        long left = ms_left(&start);
        assert_true(left > 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, (int)left);
    }
    buf[len] = '\0';
    return len;
}

/* Waits for the pidfd to become readable, then reaps; returns the wait status. */
static int wait_exit(sandbox_proc *p)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    int status = -1;
    assert_int_equal(sandbox_reap(p, &status), 1);
    return status;
}

/* Runs spec to completion; returns its stdout; asserts a clean exit 0. */
static void run_capture(const sandbox_spec *spec, char *out, size_t cap)
{
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(spec, &p), 0);
    read_fd(p.out_fd, out, cap, 0);
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Returns the text after "Name:" on its line in `text`, whitespace-trimmed. */
static void field(const char *text, const char *name, char *val, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "%s:", name);
    const char *p = text;
    while (p && strncmp(p, key, strlen(key)) != 0) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    assert_non_null(p);
    p += strlen(key);
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, "\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    assert_true(n < cap);
    memcpy(val, p, n);
    val[n] = '\0';
}

static void test_child_has_exactly_fds_0_to_3(void **state)
{
    struct fixture *f = *state;
    /* Non-CLOEXEC fds in the parent, one at a high number: must not leak. */
    int leak = open("/dev/null", O_RDONLY);
    assert_true(leak >= 0);
    assert_int_equal(dup2(leak, 200), 200);
    const char *argv[] = {"/bin/sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/0", NULL};
    sandbox_spec spec = make_spec(f, argv);
    char out[OUT_CAP];
    run_capture(&spec, out, sizeof out);
    close(leak);
    close(200);
    assert_string_equal(out, "0\n1\n2\n3\n/dev/null\n");
}

static void test_environment_is_exactly_the_specs(void **state)
{
    struct fixture *f = *state;
    setenv("HEARTH_TEST_LEAK", "1", 1);
    const char *argv[] = {"/usr/bin/env", NULL};
    const char *envp[] = {"A=1", "HEARTH_FN=two words", NULL};
    sandbox_spec spec = make_spec(f, argv);
    spec.envp = envp;
    char out[OUT_CAP];
    run_capture(&spec, out, sizeof out);
    unsetenv("HEARTH_TEST_LEAK");
    assert_string_equal(out, "A=1\nHEARTH_FN=two words\n");
}

static void test_identity_is_dropped_and_no_new_privs(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/cat", "/proc/self/status", NULL};
    sandbox_spec spec = make_spec(f, argv);
    char out[OUT_CAP], v[256];
    run_capture(&spec, out, sizeof out);
    field(out, "NoNewPrivs", v, sizeof v);
    assert_string_equal(v, "1");
    if (geteuid() != 0)
        return;
    field(out, "Uid", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    field(out, "Gid", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    field(out, "Groups", v, sizeof v);
    assert_string_equal(v, "");
    field(out, "CapEff", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
    field(out, "CapPrm", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
}

static void test_root_identity_is_refused(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *argv[] = {"/bin/true", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    spec.uid = 0;
    assert_int_equal(sandbox_spawn(&spec, &p), -EINVAL);
    spec.uid = NOBODY;
    spec.gid = 0;
    assert_int_equal(sandbox_spawn(&spec, &p), -EINVAL);
    assert_int_equal(p.pid, -1);
}

static void test_signals_are_reset(void **state)
{
    struct fixture *f = *state;
    /* A daemon typically ignores SIGPIPE; exec would keep that and the mask. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t usr1, old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old_mask);
    const char *argv[] = {"/bin/cat", "/proc/self/status", NULL};
    sandbox_spec spec = make_spec(f, argv);
    char out[OUT_CAP], v[64];
    run_capture(&spec, out, sizeof out);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    field(out, "SigIgn", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
    field(out, "SigBlk", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
}

static void test_cwd_is_code_dir(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "pwd -P", NULL};
    sandbox_spec spec = make_spec(f, argv);
    char out[OUT_CAP], want[PATH_MAX + 2];
    run_capture(&spec, out, sizeof out);
    assert_non_null(realpath(f->code_dir, want));
    size_t wl = strlen(want);
    snprintf(want + wl, sizeof want - wl, "\n");
    assert_string_equal(out, want);
}

/* Returns the "soft hard" pair of a /proc/<pid>/limits row. */
static void limit_row(const char *limits, const char *name, char *soft, char *hard)
{
    const char *p = strstr(limits, name);
    assert_non_null(p);
    assert_int_equal(sscanf(p + strlen(name), "%31s %31s", soft, hard), 2);
}

static void test_rlimits_are_applied(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/cat", "/proc/self/limits", NULL};
    sandbox_spec spec = make_spec(f, argv);
    spec.memory_bytes = 512ull << 20;
    spec.max_file_size = 1 << 20;
    spec.max_open_files = 64;
    char out[OUT_CAP], soft[32], hard[32];
    run_capture(&spec, out, sizeof out);
    limit_row(out, "Max core file size", soft, hard);
    assert_string_equal(soft, "0");
    assert_string_equal(hard, "0");
    limit_row(out, "Max address space", soft, hard);
    assert_string_equal(soft, "536870912");
    assert_string_equal(hard, "536870912");
    limit_row(out, "Max file size", soft, hard);
    assert_string_equal(soft, "1048576");
    assert_string_equal(hard, "1048576");
    limit_row(out, "Max open files", soft, hard);
    assert_string_equal(soft, "64");
    assert_string_equal(hard, "64");
}

static void test_child_leads_its_own_session(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/cat", "/proc/self/stat", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    char out[OUT_CAP];
    read_fd(p.out_fd, out, sizeof out, 0);
    pid_t pid = p.pid;
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* pid (comm) state ppid pgrp session … */
    const char *after_comm = strrchr(out, ')');
    assert_non_null(after_comm);
    char st;
    int ppid, pgrp, sid;
    assert_int_equal(sscanf(after_comm + 1, " %c %d %d %d", &st, &ppid, &pgrp, &sid), 4);
    assert_int_equal(ppid, getpid());
    assert_int_equal(pgrp, pid);
    assert_int_equal(sid, pid);
}

static void test_fd3_and_log_pipes_are_connected(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sh", "-c",
                          "echo hello >&3; read line <&3; echo \"got:$line\"; echo oops >&2", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    char buf[OUT_CAP];
    read_fd(p.ctl_fd, buf, sizeof buf, 1);
    assert_string_equal(buf, "hello\n");
    assert_int_equal(write(p.ctl_fd, "ping\n", 5), 5);
    read_fd(p.out_fd, buf, sizeof buf, 0);
    assert_string_equal(buf, "got:ping\n");
    read_fd(p.err_fd, buf, sizeof buf, 0);
    assert_string_equal(buf, "oops\n");
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void assert_spawn_fails(const sandbox_spec *spec, int want)
{
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(spec, &p), want);
    assert_int_equal(p.pid, -1);
    assert_int_equal(p.pidfd, -1);
    assert_int_equal(p.ctl_fd, -1);
    assert_int_equal(p.out_fd, -1);
    assert_int_equal(p.err_fd, -1);
    assert_true(proc_no_children()); /* the failed child was reaped: no zombie */
}

static void test_exec_of_missing_program_fails_with_enoent(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/nonexistent/hearth-runtime", NULL};
    sandbox_spec spec = make_spec(f, argv);
    assert_spawn_fails(&spec, -ENOENT);
}

static void test_missing_code_dir_fails_with_enoent(void **state)
{
    struct fixture *f = *state;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing", f->code_dir);
    const char *argv[] = {"/bin/true", NULL};
    sandbox_spec spec = make_spec(f, argv);
    spec.code_dir = missing;
    assert_spawn_fails(&spec, -ENOENT);
}

/* The data dir may live under a folder the worker uid cannot search
 * (/root/...): the code dir is entered before the identity drop, and the
 * worker reads its code through relative paths. */
static void test_code_dir_under_unsearchable_parent_works(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    char inner[PATH_MAX], probe[PATH_MAX + 8];
    snprintf(inner, sizeof inner, "%s/inner", f->code_dir);
    assert_int_equal(mkdir(inner, 0755), 0);
    snprintf(probe, sizeof probe, "%s/probe", inner);
    FILE *fp = fopen(probe, "w");
    assert_non_null(fp);
    fputs("hello\n", fp);
    fclose(fp);
    chmod(probe, 0644);
    assert_int_equal(chmod(f->code_dir, 0700), 0);
    const char *argv[] = {"/bin/sh", "-c", "cat ./probe", NULL};
    sandbox_spec spec = make_spec(f, argv);
    spec.code_dir = inner;
    char out[OUT_CAP];
    run_capture(&spec, out, sizeof out);
    assert_string_equal(out, "hello\n");
    unlink(probe);
    rmdir(inner);
}

static void test_bad_spec_is_rejected(void **state)
{
    struct fixture *f = *state;
    const char *relative[] = {"bin/sh", NULL};
    sandbox_spec spec = make_spec(f, relative);
    assert_spawn_fails(&spec, -EINVAL);
    const char *argv[] = {"/bin/true", NULL};
    spec = make_spec(f, argv);
    spec.envp = NULL;
    assert_spawn_fails(&spec, -EINVAL);
    assert_spawn_fails(NULL, -EINVAL);
}

/* Waits for an orphan reparented to us (we are a subreaper); returns its status. */
static int reap_orphan(pid_t pid)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && ms_left(&start) > 0)
        usleep(2000);
    assert_int_equal(r, pid);
    return status;
}

static void test_kill_reaches_the_whole_group(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L), 0);
    const char *argv[] = {"/bin/sh", "-c", "sleep 100 & echo $! >&3; wait", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    char buf[64];
    read_fd(p.ctl_fd, buf, sizeof buf, 1);
    pid_t grandchild = (pid_t)strtol(buf, NULL, 10);
    assert_true(grandchild > 0);
    assert_int_equal(kill(grandchild, 0), 0);

    sandbox_kill(&p);
    int status = wait_exit(&p);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    int gstatus = reap_orphan(grandchild);
    assert_true(WIFSIGNALED(gstatus));
    assert_int_equal(WTERMSIG(gstatus), SIGKILL);
    assert_int_equal(kill(grandchild, 0), -1);
    assert_int_equal(errno, ESRCH);
    sandbox_kill(&p); /* again, with nobody left: harmless */
    sandbox_release(&p);
    prctl(PR_SET_CHILD_SUBREAPER, 0L, 0L, 0L, 0L);
}

static void assert_flags(int fd, int want_nonblock)
{
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    if (want_nonblock)
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

static void test_pidfd_signals_exit_and_reap_returns_code(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "read x <&3; exit 7", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    assert_flags(p.pidfd, 1);
    assert_flags(p.ctl_fd, 1);
    assert_flags(p.out_fd, 1);
    assert_flags(p.err_fd, 1);

    int status = -1;
    struct pollfd pfd = {.fd = p.pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(sandbox_reap(&p, &status), 0);

    assert_int_equal(write(p.ctl_fd, "go\n", 3), 3);
    status = wait_exit(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
    assert_int_equal(sandbox_reap(&p, &status), -ECHILD);
    sandbox_release(&p);
    assert_int_equal(p.pidfd, -1);
    assert_int_equal(p.ctl_fd, -1);
    assert_int_equal(p.out_fd, -1);
    assert_int_equal(p.err_fd, -1);
    sandbox_release(&p); /* twice is harmless */
}

static void test_worker_dies_with_the_daemon(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L), 0);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t daemon = fork();
    assert_true(daemon >= 0);
    if (daemon == 0) {
        const char *argv[] = {"/bin/sleep", "100", NULL};
        sandbox_spec spec = make_spec(f, argv);
        sandbox_proc p;
        pid_t pid = sandbox_spawn(&spec, &p) == 0 ? p.pid : -1;
        ssize_t n = write(pp[1], &pid, sizeof pid);
        _exit(n == sizeof pid ? 0 : 1);
    }
    close(pp[1]);
    pid_t worker = -1;
    assert_int_equal(read(pp[0], &worker, sizeof worker), sizeof worker);
    close(pp[0]);
    assert_true(worker > 0);
    int status;
    assert_int_equal(waitpid(daemon, &status, 0), daemon);
    status = reap_orphan(worker);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    prctl(PR_SET_CHILD_SUBREAPER, 0L, 0L, 0L, 0L);
}

static void test_release_returns_every_fd(void **state)
{
    struct fixture *f = *state;
    int before = proc_count_fds(0);
    const char *argv[] = {"/bin/true", NULL};
    sandbox_spec spec = make_spec(f, argv);
    for (int i = 0; i < 3; i++) {
        char out[16];
        run_capture(&spec, out, sizeof out);
    }
    assert_int_equal(proc_count_fds(0), before);
}

/* ---- the split spawn: begin, poll, finish ---- */

/* Polls a begun spawn's status socket until finish says something but -EAGAIN. */
static int finish_polling(sandbox_proc *p)
{
    int rc;
    while ((rc = sandbox_spawn_finish(p)) == -EAGAIN) {
        struct pollfd pfd = {.fd = p->status_fd, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    }
    return rc;
}

static void test_begin_finish_matches_spawn(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "echo split", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn_begin(&spec, &p, NULL, NULL), 0);
    assert_true(p.pid > 0);
    assert_flags(p.status_fd, 1);
    assert_int_equal(p.pidfd, -1);
    assert_int_equal(finish_polling(&p), 0);
    assert_int_equal(p.status_fd, -1); /* not isolated: closed */
    assert_int_equal(p.runtime, p.pid);
    assert_flags(p.pidfd, 1);
    char out[OUT_CAP];
    read_fd(p.out_fd, out, sizeof out, 0);
    assert_string_equal(out, "split\n");
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_begin_finish_reports_exec_failure(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/nonexistent/hearth-runtime", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn_begin(&spec, &p, NULL, NULL), 0);
    assert_int_equal(finish_polling(&p), -ENOENT);
    assert_int_equal(p.pid, -1);
    assert_int_equal(p.pidfd, -1);
    assert_int_equal(p.ctl_fd, -1);
    assert_int_equal(p.status_fd, -1);
    assert_true(proc_no_children());
}

/* Several begun before any is finished, finished in reverse order. */
static void test_several_begun_before_any_finished(void **state)
{
    struct fixture *f = *state;
    const char *ok[] = {"/bin/sh", "-c", "read x <&3; exit 5", NULL};
    const char *missing[] = {"/nonexistent/hearth-runtime", NULL};
    sandbox_spec spec[3] = {make_spec(f, ok), make_spec(f, missing), make_spec(f, ok)};
    if (geteuid() == 0) {
        spec[2].isolate = true;
        spec[2].hostname = "fn-split";
        spec[2].tmp_bytes = 1 << 20;
    }
    sandbox_proc p[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(sandbox_spawn_begin(&spec[i], &p[i], NULL, NULL), 0);
    for (int i = 2; i >= 0; i--)
        assert_int_equal(finish_polling(&p[i]), i == 1 ? -ENOENT : 0);
    assert_int_equal(p[2].status_fd >= 0, spec[2].isolate); /* isolated: kept for the status */
    for (int i = 0; i < 3; i += 2) {
        assert_int_equal(write(p[i].ctl_fd, "go\n", 3), 3);
        int status = wait_exit(&p[i]);
        sandbox_release(&p[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 5);
    }
}

static void test_abort_kills_and_releases_a_begun_spawn(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sleep", "100", NULL};
    sandbox_spec spec = make_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn_begin(&spec, &p, NULL, NULL), 0);
    pid_t pid = p.pid;
    sandbox_spawn_abort(&p);
    assert_int_equal(p.pid, -1);
    assert_int_equal(p.status_fd, -1);
    assert_int_equal(p.ctl_fd, -1);
    assert_int_equal(kill(pid, 0), -1);
    assert_true(proc_no_children());
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- isolated workers (namespaces and a minimal root; root only) ---- */

/* Whether the space-separated `list` holds `word`. */
static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

static sandbox_spec isolated_spec(const struct fixture *f, const char *const *argv)
{
    sandbox_spec spec = make_spec(f, argv);
    spec.isolate = true;
    spec.hostname = "fn-under-test";
    spec.tmp_bytes = 1 << 20;
    return spec;
}

static void test_isolated_worker_sees_only_its_own_world(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *argv[] = {
        "/bin/sh", "-c",
        "echo host:$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname); "
        "echo cwd:$(pwd); echo root:$(ls / | tr '\\n' ' '); "
        "echo procs:$(ls /proc | grep -c '^[0-9]'); "
        "echo net:$(ls /sys/class/net 2>/dev/null | wc -l)/$(grep -c : /proc/net/dev); "
        "touch /var/task/x 2>/dev/null && echo task:writable || echo task:readonly; "
        "touch /tmp/x && echo tmp:writable; "
        "touch /x 2>/dev/null && echo slash:writable || echo slash:readonly",
        NULL};
    sandbox_spec spec = isolated_spec(f, argv);
    char out[OUT_CAP], v[256];
    run_capture(&spec, out, sizeof out);
    field(out, "cwd", v, sizeof v);
    assert_string_equal(v, "/var/task");
    field(out, "root", v, sizeof v);
    for (const char *const *d =
             (const char *const[]){"dev", "etc", "proc", "tmp", "usr", "var", NULL};
         *d; d++)
        assert_true(has_word(v, *d));
    for (const char *const *d = (const char *const[]){"root", "home", "work", "opt", "srv", "mnt",
                                                      "boot", "sys", "run", NULL};
         *d; d++)
        assert_false(has_word(v, *d));
    field(out, "procs", v, sizeof v);
    assert_true(strtol(v, NULL, 10) < 10); /* init, sh and its pipeline: no host process */
    field(out, "net", v, sizeof v);
    assert_string_equal(v, "0/1"); /* no /sys; in /proc/net/dev only lo has a colon */
    field(out, "task", v, sizeof v);
    assert_string_equal(v, "readonly");
    field(out, "tmp", v, sizeof v);
    assert_string_equal(v, "writable");
    field(out, "slash", v, sizeof v);
    assert_string_equal(v, "readonly");
}

static void test_isolated_hostname_is_the_function(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *argv[] = {"/bin/hostname", NULL};
    sandbox_spec spec = isolated_spec(f, argv);
    char out[OUT_CAP];
    run_capture(&spec, out, sizeof out);
    assert_string_equal(out, "fn-under-test\n");
}

/* The daemon learns the runtime's own exit status, not its init's. */
static void test_isolated_exit_status_is_the_runtimes(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *exit3[] = {"/bin/sh", "-c", "exit 3", NULL};
    sandbox_spec spec = isolated_spec(f, exit3);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    const char *segv[] = {"/bin/sh", "-c", "kill -SEGV $$", NULL};
    spec = isolated_spec(f, segv);
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* The line of /proc/<pid>/status that starts with `key`, its value in out. */
static void status_line(pid_t pid, const char *key, char *out, size_t cap)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    out[0] = '\0';
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, key, strlen(key)) == 0)
            snprintf(out, cap, "%s", line + strlen(key));
    fclose(fp);
}

/* The host pid of the runtime (what the kernel's audit records show) is
 * reported: the init's child, pid 2 of the sandbox. Unisolated, the
 * process is the runtime. */
static void test_runtime_pid_is_the_host_pid(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *argv[] = {"/bin/sleep", "30", NULL};
    sandbox_spec spec = isolated_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    assert_true(p.runtime > 0 && p.runtime != p.pid);
    char v[128], want[64];
    status_line(p.runtime, "PPid:", v, sizeof v);
    assert_int_equal(strtol(v, NULL, 10), p.pid);
    status_line(p.runtime, "NSpid:", v, sizeof v);
    snprintf(want, sizeof want, "\t%d\t2\n", (int)p.runtime);
    assert_string_equal(v, want);
    sandbox_kill(&p);
    wait_exit(&p);
    sandbox_release(&p);
    spec.isolate = false;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    assert_int_equal(p.runtime, p.pid);
    sandbox_kill(&p);
    wait_exit(&p);
    sandbox_release(&p);
}

/* Appends the host pids of every descendant of `pid` to `out`. */
static void collect_descendants(pid_t pid, pid_t *out, int *n, int cap)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    size_t len = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    for (char *p = buf, *end; *n < cap; p = end) {
        long child = strtol(p, &end, 10);
        if (end == p)
            break;
        out[(*n)++] = (pid_t)child;
        collect_descendants((pid_t)child, out, n, cap);
    }
}

/* Killing the sandbox's init takes the whole pid namespace down, a child
 * that left the process group (setsid) included. */
static void test_isolated_kill_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0)
        skip();
    const char *argv[] = {"/bin/sh", "-c", "setsid sleep 100 & sleep 100", NULL};
    sandbox_spec spec = isolated_spec(f, argv);
    sandbox_proc p;
    assert_int_equal(sandbox_spawn(&spec, &p), 0);
    pid_t inside[16];
    int n = 0;
    for (int tries = 0; tries < 100 && n < 3; tries++) { /* sh and both sleeps */
        usleep(10 * 1000);
        n = 0;
        collect_descendants(p.pid, inside, &n, 16);
    }
    assert_true(n >= 3);
    sandbox_kill(&p);
    int status = wait_exit(&p);
    sandbox_release(&p);
    assert_true(WIFSIGNALED(status));
    for (int i = 0; i < n; i++) {
        int tries = 0;
        while (kill(inside[i], 0) == 0 && tries++ < 100)
            usleep(10 * 1000);
        assert_int_equal(kill(inside[i], 0), -1);
    }
}

/* ---- pre-built sandboxes: built without a function, then ATTACHed ---- */

/* A code root holding fn-a/1/handler.txt, and fn-a/escape -> "/". */
struct code_root {
    char dir[64], fn[96], version[128], file[160], link[128];
};

static void code_root_make(struct code_root *r)
{
    snprintf(r->dir, sizeof r->dir, "%s", "/tmp/hearth-coderoot-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    assert_int_equal(chmod(r->dir, 0755), 0);
    snprintf(r->fn, sizeof r->fn, "%s/fn-a", r->dir);
    snprintf(r->version, sizeof r->version, "%s/1", r->fn);
    snprintf(r->file, sizeof r->file, "%s/handler.txt", r->version);
    snprintf(r->link, sizeof r->link, "%s/escape", r->fn);
    assert_int_equal(mkdir(r->fn, 0755), 0);
    assert_int_equal(mkdir(r->version, 0755), 0);
    FILE *fp = fopen(r->file, "w");
    assert_non_null(fp);
    fputs("the function's code\n", fp);
    fclose(fp);
    assert_int_equal(chmod(r->file, 0644), 0);
    assert_int_equal(symlink("/", r->link), 0);
}

static void code_root_remove(const struct code_root *r)
{
    unlink(r->link);
    unlink(r->file);
    rmdir(r->version);
    rmdir(r->fn);
    rmdir(r->dir);
}

/* A bundle of one secret, as the spawner makes them (sandbox_root.h). */
static int make_bundle(const char *name, const char *value)
{
    int fd = memfd_create("bundle", MFD_CLOEXEC);
    assert_true(fd >= 0);
    unsigned char nlen = (unsigned char)strlen(name);
    uint32_t vlen = (uint32_t)strlen(value);
    assert_int_equal(write(fd, &nlen, 1), 1);
    assert_int_equal(write(fd, name, nlen), nlen);
    assert_int_equal(write(fd, &vlen, sizeof vlen), sizeof vlen);
    assert_int_equal(write(fd, value, vlen), vlen);
    return fd;
}

/* What a pre-built runtime reports: its fds and /var/task before the
 * ATTACH (on fd 3, then it waits for a line there), then what it sees. */
static const char prebuilt_script[] =
    "echo before:$(ls -A /var/task | wc -l) >&3; "
    "read go <&3; cd /var/task; "
    "echo code:$(cat handler.txt); "
    "(: > /var/task/x) 2>&1 | grep -q 'Read-only' && echo task:readonly; "
    "echo host:$(hostname) hosts:$(grep -c ' fn-a$' /etc/hosts); "
    "echo secret:$(cat /run/secrets/db-pass 2>/dev/null); "
    "echo stage:$(grep -c /var/.hearth /proc/self/mountinfo); "
    "echo as:$(grep 'Max address space' /proc/$$/limits | tr -s ' ' | cut -d' ' -f4,5)";

static sandbox_spec prebuilt_spec(const struct code_root *r, const char *const *argv)
{
    uid_t uid = geteuid() == 0 ? NOBODY : geteuid();
    gid_t gid = geteuid() == 0 ? NOBODY : getegid();
    return (sandbox_spec){.argv = argv,
                          .envp = empty_env,
                          .code_dir = r->dir,
                          .uid = uid,
                          .gid = gid,
                          .max_open_files = 256,
                          .isolate = true,
                          .prebuilt = true,
                          .hostname = "hearth",
                          .tmp_bytes = 1 << 20};
}

/* Waits for the ATTACH answer (-EAGAIN is never returned). */
static int attach_result_polling(sandbox_proc *p)
{
    int rc;
    while ((rc = sandbox_attach_result(p)) == -EAGAIN) {
        struct pollfd pfd = {.fd = p->status_fd, .events = POLLIN};
        if (poll(&pfd, 1, TIMEOUT_MS) != 1)
            return -ETIMEDOUT;
    }
    return rc;
}

/* How many fds of process `pid` are neither /dev/null, a pipe nor a
 * socket: the worker's channels are all a runtime may hold (not the
 * init's clone of the code root, in particular). */
static int odd_fds(pid_t pid)
{
    char dir[64], path[64 + 256 + 2], target[PATH_MAX];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int odd = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        odd += strcmp(target, "/dev/null") != 0 && strncmp(target, "pipe:", 5) != 0 &&
               strncmp(target, "socket:", 7) != 0;
    }
    closedir(d);
    return odd;
}

/* Without cmocka's asserts (it also runs in a forked rootless child):
 * pre-builds, reads the "before" line, attaches fn-a/1 (with the bundle,
 * if any, and a 1 GiB address space), lets the runtime go and collects
 * its output and wait status into out and *status. Returns the attach
 * result, or another -errno for a step that failed first. */
static int prebuilt_flow(const struct code_root *r, int bundle, char *before, char *out, size_t cap,
                         int *status)
{
    const char *argv[] = {"/bin/sh", "-c", prebuilt_script, NULL};
    sandbox_spec spec = prebuilt_spec(r, argv);
    sandbox_proc p;
    int rc = sandbox_spawn(&spec, &p);
    if (rc < 0)
        return rc;
    ssize_t n = 0;
    struct pollfd pfd = {.fd = p.ctl_fd, .events = POLLIN};
    if (poll(&pfd, 1, TIMEOUT_MS) == 1)
        n = read(p.ctl_fd, before, cap - 1);
    before[n > 0 ? n : 0] = '\0';
    snprintf(before + strlen(before), cap - strlen(before), "odd:%d", odd_fds(p.runtime));
    sandbox_attach a = {.code_rel = "fn-a/1",
                        .hostname = "fn-a",
                        .as_bytes = UINT64_C(1) << 30,
                        .secrets_fd = bundle};
    rc = sandbox_attach_send(&p, &a);
    if (rc == 0)
        rc = attach_result_polling(&p);
    if (rc == 0 && write(p.ctl_fd, "go\n", 3) != 3)
        rc = -EIO;
    if (rc < 0)
        sandbox_kill(&p);
    size_t len = 0;
    for (;;) {
        pfd = (struct pollfd){.fd = p.out_fd, .events = POLLIN};
        if (poll(&pfd, 1, TIMEOUT_MS) != 1)
            break;
        n = read(p.out_fd, out + len, cap - 1 - len);
        if (n <= 0 || (len += (size_t)n) >= cap - 1)
            break;
    }
    out[len] = '\0';
    pfd = (struct pollfd){.fd = p.pidfd, .events = POLLIN};
    poll(&pfd, 1, TIMEOUT_MS);
    *status = -1;
    sandbox_reap(&p, status);
    sandbox_release(&p);
    return rc;
}

static void assert_attached_world(const char *before, const char *out, bool secret)
{
    assert_string_equal(before, "before:0\nodd:0"); /* empty; no code root fd */
    char v[256];
    field(out, "code", v, sizeof v);
    assert_string_equal(v, "the function's code");
    field(out, "task", v, sizeof v);
    assert_string_equal(v, "readonly");
    field(out, "host", v, sizeof v);
    assert_string_equal(v, "fn-a hosts:1");
    field(out, "secret", v, sizeof v);
    assert_string_equal(v, secret ? "s3cr3t" : "");
    field(out, "stage", v, sizeof v);
    assert_string_equal(v, "0"); /* the code root is mounted nowhere */
    field(out, "as", v, sizeof v);
    assert_string_equal(v, "1073741824 1073741824");
}

static void test_prebuilt_attaches_code_hostname_secrets(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct code_root r;
    code_root_make(&r);
    int bundle = make_bundle("db-pass", "s3cr3t");
    char before[256], out[OUT_CAP];
    int status;
    int rc = prebuilt_flow(&r, bundle, before, out, sizeof out, &status);
    close(bundle);
    code_root_remove(&r);
    assert_int_equal(rc, 0);
    assert_attached_world(before, out, true);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* And without secrets: no /run/secrets. */
    code_root_make(&r);
    rc = prebuilt_flow(&r, -1, before, out, sizeof out, &status);
    code_root_remove(&r);
    assert_int_equal(rc, 0);
    assert_attached_world(before, out, false);
}

/* Rootless: the init holds every capability of a user namespace that
 * clone made, the host's mounts are locked there (hence the recursive
 * clone of the code root). A forked child as nobody runs the same flow. */
static void test_prebuilt_attaches_rootless(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* needs root to become nobody */
    struct code_root r;
    code_root_make(&r);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(pp[0]);
        static char before[256], out[OUT_CAP];
        int status = -1, rc = -EPERM;
        int bundle = make_bundle("db-pass", "s3cr3t");
        /* Dumpable again, as a daemon exec'd as nobody is: else its /proc
         * files stay root's, and the sandbox cannot write its id maps. */
        if (setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0 &&
            prctl(PR_SET_DUMPABLE, 1L, 0L, 0L, 0L) == 0)
            rc = prebuilt_flow(&r, bundle, before, out, sizeof out, &status);
        bool ok = write(pp[1], &rc, sizeof rc) == sizeof rc &&
                  write(pp[1], &status, sizeof status) == sizeof status &&
                  write(pp[1], before, sizeof before) == sizeof before &&
                  write(pp[1], out, sizeof out) == sizeof out;
        _exit(ok ? 0 : 1);
    }
    close(pp[1]);
    static char before[256], out[OUT_CAP];
    int rc = 0, status = 0;
    FILE *fp = fdopen(pp[0], "r");
    assert_non_null(fp);
    bool got = fread(&rc, sizeof rc, 1, fp) == 1 && fread(&status, sizeof status, 1, fp) == 1 &&
               fread(before, sizeof before, 1, fp) == 1 && fread(out, sizeof out, 1, fp) == 1;
    fclose(fp);
    int cst;
    assert_int_equal(waitpid(child, &cst, 0), child);
    code_root_remove(&r);
    assert_true(got);
    if (rc == -EPERM || rc == -EINVAL || rc == -ENOSPC) {
        print_message("rootless sandboxes unavailable here (%s)\n", strerror(-rc));
        skip();
    }
    assert_int_equal(rc, 0);
    assert_attached_world(before, out, true);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A pre-built sandbox for the tests below, its runtime waiting on fd 3. */
static void prebuilt_waiting(const struct code_root *r, sandbox_proc *p, const char *script)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    sandbox_spec spec = prebuilt_spec(r, argv);
    assert_int_equal(sandbox_spawn(&spec, p), 0);
    assert_true(p->status_fd >= 0);
}

static int wait_gone(sandbox_proc *p)
{
    int status = wait_exit(p);
    sandbox_release(p);
    return status;
}

/* The request as sandbox.c lays it out: what a buggy or hostile spawner
 * could send past sandbox_attach_send's own checks. */
struct raw_attach {
    uint32_t type, has_secrets;
    uint64_t as_bytes;
    char code_rel[256];
    char hostname[64];
};

static void send_raw_attach(const sandbox_proc *p, const char *code_rel)
{
    struct raw_attach m;
    memset(&m, 0, sizeof m);
    m.type = 0x48415454u;
    snprintf(m.code_rel, sizeof m.code_rel, "%s", code_rel);
    snprintf(m.hostname, sizeof m.hostname, "fn-a");
    assert_int_equal(write(p->status_fd, &m, sizeof m), sizeof m);
}

/* Paths outside "<name>/<version>" are refused by the sender, and by
 * the init (which then ends the sandbox); so is a folder that escapes
 * the code root through a symlink, or does not exist. */
static void test_prebuilt_refuses_bad_code_rel(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct code_root r;
    code_root_make(&r);
    const char *bad[] = {"../x",    "a",     "a/b/c",       "/fn-a/1",
                         "fn-a/..", "fn-a/", "fn-a/escape", "fn-a/404"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sandbox_proc p;
        prebuilt_waiting(&r, &p, "read x <&3; exit 9");
        sandbox_attach a = {.code_rel = bad[i], .hostname = "fn-a", .secrets_fd = -1};
        int syntax = sandbox_attach_send(&p, &a);
        if (i < 6)
            assert_int_equal(syntax, -EINVAL);
        else
            assert_int_equal(syntax, 0);
        if (syntax < 0)
            send_raw_attach(&p, bad[i]);
        int rc = attach_result_polling(&p);
        assert_true(rc < 0 && rc != -ETIMEDOUT);
        if (i == 6)
            assert_int_equal(rc, -EXDEV); /* RESOLVE_BENEATH */
        if (i == 7)
            assert_int_equal(rc, -ENOENT);
        int status = wait_gone(&p); /* the sandbox ended by itself */
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 127);
    }
    sandbox_proc p;
    prebuilt_waiting(&r, &p, "read x <&3; exit 9");
    sandbox_attach a = {.code_rel = "fn-a/1", .hostname = "Not_A_Name", .secrets_fd = -1};
    assert_int_equal(sandbox_attach_send(&p, &a), -EINVAL);
    sandbox_kill(&p);
    wait_gone(&p);
    code_root_remove(&r);
}

/* After an ATTACH the init runs as nobody with no capability and reads
 * no further request: a second one goes unanswered and changes nothing. */
static void test_prebuilt_second_attach_is_impossible(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct code_root r;
    code_root_make(&r);
    sandbox_proc p;
    prebuilt_waiting(&r, &p, "read x <&3; echo host:$(hostname); exit 6");
    sandbox_attach a = {.code_rel = "fn-a/1", .hostname = "fn-a", .secrets_fd = -1};
    assert_int_equal(sandbox_attach_send(&p, &a), 0);
    assert_int_equal(attach_result_polling(&p), 0);
    char v[128];
    status_line(p.pid, "Uid:", v, sizeof v);
    assert_string_equal(v, "\t65534\t65534\t65534\t65534\n");
    status_line(p.pid, "CapEff:", v, sizeof v);
    assert_string_equal(v, "\t0000000000000000\n");
    a.hostname = "fn-b";
    assert_int_equal(sandbox_attach_send(&p, &a), 0);
    struct pollfd pfd = {.fd = p.status_fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 300), 0);
    assert_int_equal(sandbox_attach_result(&p), -EAGAIN);
    assert_int_equal(write(p.ctl_fd, "go\n", 3), 3);
    char out[OUT_CAP];
    read_fd(p.out_fd, out, sizeof out, 0);
    assert_string_equal(out, "host:fn-a\n");
    int status = wait_gone(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 6); /* the runtime's, after the unread request */
    code_root_remove(&r);
}

/* Unclaimed: the runtime's death ends the sandbox with its status; the
 * spawner giving up (closing the status socket) ends it too. */
static void test_prebuilt_dies_before_attach(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct code_root r;
    code_root_make(&r);
    sandbox_proc p;
    prebuilt_waiting(&r, &p, "read x <&3; exit 4");
    assert_int_equal(write(p.ctl_fd, "die\n", 4), 4);
    struct pollfd pfd = {.fd = p.pidfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, TIMEOUT_MS), 1);
    assert_int_equal(sandbox_attach_result(&p), -ESRCH); /* a wait status, left for the reap */
    int status = wait_gone(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 4);

    prebuilt_waiting(&r, &p, "sleep 100");
    close(p.status_fd);
    p.status_fd = -1;
    status = wait_gone(&p);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* the init's: it ended the sandbox */
    code_root_remove(&r);
}

/* Pre-built needs isolation, and takes its secrets with the ATTACH. */
static void test_prebuilt_spec_is_checked(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/true", NULL};
    sandbox_spec spec = make_spec(f, argv);
    spec.prebuilt = true;
    assert_spawn_fails(&spec, -EINVAL);
    spec = isolated_spec(f, argv);
    spec.prebuilt = true;
    spec.has_secrets = true;
    spec.secrets_fd = 0;
    assert_spawn_fails(&spec, -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_child_has_exactly_fds_0_to_3),
        T(test_environment_is_exactly_the_specs),
        T(test_identity_is_dropped_and_no_new_privs),
        T(test_root_identity_is_refused),
        T(test_signals_are_reset),
        T(test_cwd_is_code_dir),
        T(test_rlimits_are_applied),
        T(test_child_leads_its_own_session),
        T(test_fd3_and_log_pipes_are_connected),
        T(test_exec_of_missing_program_fails_with_enoent),
        T(test_missing_code_dir_fails_with_enoent),
        T(test_code_dir_under_unsearchable_parent_works),
        T(test_bad_spec_is_rejected),
        T(test_kill_reaches_the_whole_group),
        T(test_pidfd_signals_exit_and_reap_returns_code),
        T(test_worker_dies_with_the_daemon),
        T(test_release_returns_every_fd),
        T(test_begin_finish_matches_spawn),
        T(test_begin_finish_reports_exec_failure),
        T(test_several_begun_before_any_finished),
        T(test_abort_kills_and_releases_a_begun_spawn),
        T(test_isolated_worker_sees_only_its_own_world),
        T(test_isolated_hostname_is_the_function),
        T(test_isolated_exit_status_is_the_runtimes),
        T(test_runtime_pid_is_the_host_pid),
        T(test_isolated_kill_leaves_nothing),
        T(test_prebuilt_attaches_code_hostname_secrets),
        T(test_prebuilt_attaches_rootless),
        T(test_prebuilt_refuses_bad_code_rel),
        T(test_prebuilt_second_attach_is_impossible),
        T(test_prebuilt_dies_before_attach),
        T(test_prebuilt_spec_is_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
