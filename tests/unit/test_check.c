/*
 * test_check.c — `hearthd check` (src/check.c) on a fixture data dir: a
 * registry with one function of two versions and their code, an event
 * store, a log segment and an admin token, built the way hearthd builds
 * them; each test then breaks one thing and reads the verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "code_digest.h"
#include "events/evstore.h"
#include "fn_settings.h"
#include "fsutil.h"
#include "registry.h"

typedef struct fx {
    char dir[64];
    char *out; /* what the last run printed */
    size_t outlen;
} fx;

static void write_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
}

static void make_dir(const char *dir, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

/* Version `v` of "fn": its code folder and its registry row with digest. */
static void put_version(registry *reg, const char *dir, int64_t v)
{
    char rel[64], path[256], text[64];
    snprintf(rel, sizeof rel, "code/fn/%lld", (long long)v);
    make_dir(dir, rel);
    snprintf(rel, sizeof rel, "code/fn/%lld/main.py", (long long)v);
    snprintf(text, sizeof text, "V = %lld\n", (long long)v);
    write_file(dir, rel, text, 0644);
    fn_config c;
    memset(&c, 0, sizeof c);
    fnset_defaults(&c);
    snprintf(c.name, sizeof c.name, "fn");
    c.version = v;
    snprintf(c.runtime, sizeof c.runtime, "python3");
    snprintf(c.handler, sizeof c.handler, "main.handler");
    c.updated_ms = 1000 * v;
    snprintf(path, sizeof path, "%s/code/fn/%lld", dir, (long long)v);
    assert_int_equal(code_digest_tree(path, c.digest, NULL), 0);
    assert_int_equal(registry_put(reg, &c), 0);
    fn_config_release(&c);
}

static void sql(const char *dir, const char *db, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, db);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, text, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/hearth-test-check-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char p[256];
    snprintf(p, sizeof p, "%s/hearth.db", f->dir);
    registry *reg = NULL;
    assert_int_equal(registry_open(p, &reg), 0);
    make_dir(f->dir, "code");
    make_dir(f->dir, "code/fn");
    make_dir(f->dir, "staging");
    put_version(reg, f->dir, 1);
    put_version(reg, f->dir, 2);
    registry_close(reg);
    snprintf(p, sizeof p, "%s/events.db", f->dir);
    evstore *ev = NULL;
    assert_int_equal(evstore_open(p, &ev), 0);
    evstore_close(ev);
    sql(f->dir, "events.db",
        "INSERT INTO invocations (id, function, status, attempts, source, created_ms, run_at_ms, "
        "content_type, payload, finished_ms) VALUES "
        "('a', 'fn', 3, 1, 'invoke', 1, 1, 'application/json', x'7b7d', 5), "
        "('b', 'fn', 1, 1, 'invoke', 1, 1, 'application/json', x'7b7d', 0), "
        "('c', 'fn', 0, 0, 'invoke', 1, 1, 'application/json', x'7b7d', 0)");
    make_dir(f->dir, "logs");
    make_dir(f->dir, "logs/fn");
    write_file(f->dir, "logs/fn/00000000000000000001.ndjson", "{\"message\":\"hi\"}\n", 0600);
    write_file(f->dir, "admin-token", "hth_x\n", 0600);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    fsutil_remove_tree(f->dir);
    free(f->out);
    free(f);
    return 0;
}

/* Runs the check; its output is in f->out. */
static int run(fx *f, bool repair)
{
    free(f->out);
    f->out = NULL;
    FILE *m = open_memstream(&f->out, &f->outlen);
    assert_non_null(m);
    int rc = check_run(f->dir, repair, false, m);
    fclose(m);
    return rc;
}

static bool said(const fx *f, const char *what)
{
    if (!strstr(f->out, what)) {
        print_error("expected \"%s\" in:\n%s", what, f->out);
        return false;
    }
    return true;
}

static bool exists(const fx *f, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->dir, rel);
    return access(p, F_OK) == 0;
}

static void test_clean_dir(void **state)
{
    fx *f = *state;
    /* a 'running' row is a leftover of a crash, not a problem */
    assert_int_equal(run(f, false), CHECK_CLEAN);
    assert_true(said(f, "leftover: events: 1 invocation(s) were running"));
    assert_true(said(f, "clean: 0 problem(s)"));
}

static void test_missing_code_is_a_problem(void **state)
{
    fx *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/code/fn/1", f->dir);
    assert_int_equal(fsutil_remove_tree(p), 0);
    assert_int_equal(run(f, true), CHECK_PROBLEMS);
    assert_true(said(f, "problem: code: fn version 1: its code code/fn/1 is missing"));
}

static void test_changed_code_is_a_problem(void **state)
{
    fx *f = *state;
    write_file(f->dir, "code/fn/2/main.py", "V = 3\n", 0644);
    assert_int_equal(run(f, false), CHECK_PROBLEMS);
    assert_true(said(f, "problem: code: fn version 2: code/fn/2 has digest sha256:"));
}

static void test_repair_removes_leftovers_only(void **state)
{
    fx *f = *state;
    make_dir(f->dir, "code/fn/3"); /* a crash between rename and commit */
    make_dir(f->dir, "code/gone"); /* a deleted function's */
    make_dir(f->dir, "staging/deploy-abc");
    write_file(f->dir, "admin-token.tmp", "x", 0600);
    assert_int_equal(run(f, false), CHECK_CLEAN);
    assert_true(said(f, "leftover: code: code/fn/3: no such version"));
    assert_true(said(f, "leftover: code: code/gone: no such function"));
    assert_true(said(f, "leftover: files: staging/deploy-abc"));
    assert_true(said(f, "leftover: files: admin-token.tmp"));
    assert_int_equal(run(f, true), CHECK_CLEAN);
    assert_true(said(f, "repaired: events: requeued 1 invocation(s)"));
    char p[256];
    snprintf(p, sizeof p, "%s/events.db", f->dir);
    evstore *ev = NULL;
    assert_int_equal(evstore_open(p, &ev), 0);
    ev_record r;
    assert_int_equal(evstore_get(ev, "b", &r), 0);
    assert_int_equal(r.status, EV_QUEUED); /* its one attempt not counted */
    assert_int_equal(r.attempts, 0);
    assert_true(r.run_at_ms > 1); /* may run from now on, as the daemon's requeue sets */
    evrec_release(&r);
    evstore_close(ev);
    assert_false(exists(f, "code/fn/3"));
    assert_false(exists(f, "code/gone"));
    assert_false(exists(f, "staging/deploy-abc"));
    assert_false(exists(f, "admin-token.tmp"));
    assert_true(exists(f, "code/fn/1") && exists(f, "code/fn/2")); /* acknowledged: kept */
    assert_int_equal(run(f, false), CHECK_CLEAN);
    assert_true(said(f, "0 leftover(s)"));
}

static void test_secret_modes(void **state)
{
    fx *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/admin-token", f->dir);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(run(f, false), CHECK_PROBLEMS);
    assert_true(said(f, "problem: files: admin-token is mode 0644"));
    assert_int_equal(run(f, true), CHECK_PROBLEMS);
    assert_true(said(f, "repaired: files: made admin-token mode 0600"));
    assert_int_equal(run(f, false), CHECK_CLEAN);
}

static void test_bad_rows(void **state)
{
    fx *f = *state;
    sql(f->dir, "events.db", "UPDATE invocations SET status = 9 WHERE id = 'c'");
    sql(f->dir, "hearth.db", "UPDATE functions SET current_version = 7");
    assert_int_equal(run(f, true), CHECK_PROBLEMS);
    assert_true(said(f, "problem: events: invocation c: unknown status 9"));
    assert_true(said(f, "problem: registry: function fn: its current version 7 is not kept"));
}

static void test_newer_schema(void **state)
{
    fx *f = *state;
    sql(f->dir, "hearth.db", "PRAGMA user_version = 99");
    assert_int_equal(run(f, false), CHECK_PROBLEMS);
    assert_true(said(f, "schema version 99 is newer"));
}

static void test_broken_log_line(void **state)
{
    fx *f = *state;
    write_file(f->dir, "logs/fn/00000000000000000001.ndjson", "nope\n{\"message\":\"half", 0600);
    assert_int_equal(run(f, false), CHECK_PROBLEMS);
    assert_true(said(f, "1 line(s) are not log records"));
    assert_true(said(f, "leftover: logs: logs/fn/00000000000000000001.ndjson: a partial"));
}

static void test_not_a_data_dir(void **state)
{
    fx *f = *state;
    char p[256];
    snprintf(p, sizeof p, "%s/hearth.db", f->dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(run(f, false), CHECK_FAILED);
}

/* A process with hearth.db open, as a live hearthd has: refused. */
static void test_live_daemon_refused(void **state)
{
    fx *f = *state;
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char p[256];
        snprintf(p, sizeof p, "%s/hearth.db", f->dir);
        registry *reg = NULL;
        if (registry_open(p, &reg) == 0 && write(ready[1], "x", 1) == 1)
            pause();
        _exit(1);
    }
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    int rc = run(f, true);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    assert_int_equal(rc, CHECK_FAILED);
    assert_true(exists(f, "code/fn/1"));
}

static void test_command_line(void **state)
{
    (void)state;
    char *no_dir[] = {"check", NULL};
    assert_int_equal(check_main(1, no_dir), CHECK_FAILED);
    char *bad[] = {"check", "--data-dir", "/nonexistent/hearth", NULL};
    assert_int_equal(check_main(3, bad), CHECK_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clean_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_code_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_code_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_removes_leftovers_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_log_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_daemon_refused, setup, teardown),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
