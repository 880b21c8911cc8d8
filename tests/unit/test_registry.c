/*
 * test_registry.c — the registry as the daemon relies on it: versions are
 * assigned strictly in order, a failed put changes nothing, deletes take
 * every version, and what was put is there after a reopen or a crash.
 * Each test gets its own database in a fresh temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "failalloc.h"
#include "fn_settings.h"
#include "registry.h"
#include "registry_fixture.h"
#include "registry_internal.h"

static int setup(void **state)
{
    return registry_fixture_setup(state, "/tmp/hearth-test-registry-XXXXXX");
}

/* Fills *c with a version of `name`; `env_json` NULL means no env. The
 * caller releases c. */
static void make_cfg(fn_config *c, const char *name, int64_t version, const char *handler,
                     int64_t updated_ms, const char *env_json)
{
    memset(c, 0, sizeof *c);
    fnset_defaults(c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->version = version;
    snprintf(c->runtime, sizeof c->runtime, "python3");
    snprintf(c->handler, sizeof c->handler, "%s", handler);
    c->timeout_ms = 5000;
    c->memory_mb = 256;
    c->updated_ms = updated_ms;
    c->created_ms = -1; /* must be overwritten by a successful put only */
    if (env_json) {
        c->env = json_loads(env_json, 0, NULL);
        assert_non_null(c->env);
    }
}

/* Puts a version and expects `want`. */
static void put(registry *reg, const char *name, int64_t version, const char *handler,
                int64_t updated_ms, const char *env_json, int want)
{
    fn_config c;
    make_cfg(&c, name, version, handler, updated_ms, env_json);
    assert_int_equal(registry_put(reg, &c), want);
    fn_config_release(&c);
}

/* Runs SQL on the database file through a separate connection, as another
 * process (or an older/newer hearthd) would. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int64_t latest(registry *reg, const char *name)
{
    int64_t v = -1;
    assert_int_equal(registry_latest_version(reg, name, &v), 0);
    return v;
}

static void test_put_then_get(void **state)
{
    struct fixture *f = *state;
    fn_config c;
    make_cfg(&c, "hello", 1, "main.handler", 1000, "{\"GREETING\": \"hi\"}");
    assert_int_equal(registry_put(f->reg, &c), 0);
    assert_int_equal(c.created_ms, 1000); /* a new function is created by its first put */

    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_string_equal(got.name, "hello");
    assert_int_equal(got.version, 1);
    assert_string_equal(got.runtime, "python3");
    assert_string_equal(got.handler, "main.handler");
    assert_int_equal(got.timeout_ms, 5000);
    assert_int_equal(got.memory_mb, 256);
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.updated_ms, 1000);
    assert_true(json_equal(got.env, c.env));
    assert_true(got.env != c.env); /* the caller owns its own copy */
    fn_config_release(&got);
    assert_null(got.env);
    fn_config_release(&c);

    assert_int_equal(latest(f->reg, "hello"), 1);
    assert_int_equal(latest(f->reg, "nope"), 0);
    assert_int_equal(registry_get(f->reg, "nope", &got), -ENOENT);
}

static void test_put_without_env_reads_empty_env(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "noenv", 1, "main.handler", 1000, NULL, 0);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "noenv", &got), 0);
    assert_true(json_is_object(got.env));
    assert_int_equal(json_object_size(got.env), 0);
    fn_config_release(&got);
}

static void test_put_v2_keeps_created(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, NULL, 0);
    fn_config c;
    make_cfg(&c, "hello", 2, "main.v2", 2000, "{\"A\": \"b\"}");
    assert_int_equal(registry_put(f->reg, &c), 0);
    assert_int_equal(c.created_ms, 1000); /* filled in from the existing function */
    fn_config_release(&c);

    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.handler, "main.v2");
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.updated_ms, 2000);
    assert_string_equal(json_string_value(json_object_get(got.env, "A")), "b");
    fn_config_release(&got);
    assert_int_equal(latest(f->reg, "hello"), 2);
}

static void test_wrong_version_changes_nothing(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, NULL, 0);

    fn_config c;
    make_cfg(&c, "hello", 1, "main.again", 2000, NULL); /* a reused version */
    assert_int_equal(registry_put(f->reg, &c), -EEXIST);
    assert_int_equal(c.created_ms, -1);
    fn_config_release(&c);
    put(f->reg, "hello", 3, "main.skip", 3000, NULL, -EEXIST); /* a skipped version */
    put(f->reg, "other", 2, "main.v2", 3000, NULL, -EEXIST);   /* a new function not at 1 */

    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.handler, "main.v1");
    assert_int_equal(got.updated_ms, 1000);
    fn_config_release(&got);
    assert_int_equal(latest(f->reg, "hello"), 1);
    assert_int_equal(registry_get_version(f->reg, "hello", 3, &got), -ENOENT);
    assert_int_equal(registry_get(f->reg, "other", &got), -ENOENT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 1);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM functions"), 1);
}

/* A put that fails half-way (here: the version insert) must not leave the
 * function row pointing at a version that does not exist. */
static void test_failed_put_rolls_back(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, NULL, 0);
    raw_exec(f->path, "CREATE TRIGGER fail_insert BEFORE INSERT ON versions "
                      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");

    fn_config c;
    make_cfg(&c, "hello", 2, "main.v2", 2000, NULL);
    assert_int_equal(registry_put(f->reg, &c), -EIO);
    assert_int_equal(c.created_ms, -1);
    fn_config_release(&c);
    put(f->reg, "fresh", 1, "main.v1", 2000, NULL, -EIO);

    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.updated_ms, 1000);
    fn_config_release(&got);
    assert_int_equal(latest(f->reg, "hello"), 1);
    assert_int_equal(latest(f->reg, "fresh"), 0);
    assert_int_equal(raw_int(f->path, "SELECT updated_ms FROM functions WHERE name='hello'"), 1000);

    /* No transaction was left open: once the fault is gone, puts work. */
    raw_exec(f->path, "DROP TRIGGER fail_insert");
    put(f->reg, "hello", 2, "main.v2", 2000, NULL, 0);
    assert_int_equal(latest(f->reg, "hello"), 2);
}

static void test_put_rejects_invalid_config(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "Bad", 1, "main.handler", 1000, NULL, -EINVAL);
    put(f->reg, "ok", 1, "/etc/passwd", 1000, NULL, -EINVAL);
    put(f->reg, "ok", 1, "main.handler", 1000, "{\"LD_PRELOAD\": \"/x.so\"}", -EINVAL);
    put(f->reg, "ok", 0, "main.handler", 1000, NULL, -EINVAL);
    fn_config c;
    make_cfg(&c, "ok", 1, "main.handler", 1000, NULL);
    c.runtime[0] = '\0';
    assert_int_equal(registry_put(f->reg, &c), -EINVAL);
    assert_int_equal(latest(f->reg, "ok"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM functions"), 0);
}

struct seen {
    int count;
    int stop_after;
    char names[8][FN_NAME_MAX + 1];
    int64_t versions[8];
    char handlers[8][FN_HANDLER_MAX + 1];
    int inner_list_rc;
    int inner_get_rc;
    int inner_put_rc;
    int inner_delete_rc;
    registry *reg;
};

static int no_visit(const fn_config *cfg, void *ud)
{
    (void)cfg;
    (void)ud;
    return 0;
}

static int record(const fn_config *cfg, void *ud)
{
    struct seen *s = ud;
    assert_true(s->count < 8);
    snprintf(s->names[s->count], sizeof s->names[0], "%s", cfg->name);
    snprintf(s->handlers[s->count], sizeof s->handlers[0], "%s", cfg->handler);
    s->versions[s->count] = cfg->version;
    assert_true(json_is_object(cfg->env));
    s->count++;
    if (s->reg) {
        fn_config other;
        s->inner_list_rc = registry_list(s->reg, no_visit, NULL);
        s->inner_get_rc = registry_get(s->reg, "beta", &other);
        if (s->inner_get_rc == 0)
            fn_config_release(&other);
        fn_config c;
        make_cfg(&c, "delta", 1, "d.v1", 1000, NULL);
        s->inner_put_rc = registry_put(s->reg, &c);
        fn_config_release(&c);
        s->inner_delete_rc = registry_delete(s->reg, "beta");
    }
    return s->stop_after && s->count == s->stop_after ? 7 : 0;
}

static void test_list(void **state)
{
    struct fixture *f = *state;
    struct seen s = {0};
    assert_int_equal(registry_list(f->reg, record, &s), 0);
    assert_int_equal(s.count, 0);

    put(f->reg, "gamma", 1, "g.v1", 1000, NULL, 0);
    put(f->reg, "beta", 1, "b.v1", 1000, "{\"X\": \"1\"}", 0);
    put(f->reg, "alpha", 1, "a.v1", 1000, NULL, 0);
    put(f->reg, "alpha", 2, "a.v2", 2000, NULL, 0);

    memset(&s, 0, sizeof s);
    assert_int_equal(registry_list(f->reg, record, &s), 0);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.names[0], "alpha");
    assert_int_equal(s.versions[0], 2); /* only the current version */
    assert_string_equal(s.handlers[0], "a.v2");
    assert_string_equal(s.names[1], "beta");
    assert_string_equal(s.handlers[1], "b.v1");
    assert_string_equal(s.names[2], "gamma");
    assert_string_equal(s.handlers[2], "g.v1");

    /* A non-zero return stops the walk and is passed back. */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    assert_int_equal(registry_list(f->reg, record, &s), 7);
    assert_int_equal(s.count, 1);

    /* A visitor may read but not list again or write; the outer walk is
     * unharmed. */
    memset(&s, 0, sizeof s);
    s.reg = f->reg;
    assert_int_equal(registry_list(f->reg, record, &s), 0);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.inner_list_rc, -EBUSY);
    assert_int_equal(s.inner_get_rc, 0);
    assert_int_equal(s.inner_put_rc, -EBUSY);
    assert_int_equal(s.inner_delete_rc, -EBUSY);
    assert_int_equal(latest(f->reg, "delta"), 0);
    /* And the walk can run again afterwards. */
    memset(&s, 0, sizeof s);
    assert_int_equal(registry_list(f->reg, record, &s), 0);
    assert_int_equal(s.count, 3);
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, NULL, 0);
    put(f->reg, "hello", 2, "main.v2", 2000, NULL, 0);
    put(f->reg, "keep", 1, "main.v1", 1000, NULL, 0);

    assert_int_equal(registry_delete(f->reg, "hello"), 0);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), -ENOENT);
    assert_int_equal(registry_get_version(f->reg, "hello", 1, &got), -ENOENT);
    assert_int_equal(registry_get_version(f->reg, "hello", 2, &got), -ENOENT);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions WHERE name='hello'"), 0);
    assert_int_equal(latest(f->reg, "hello"), 0);
    assert_int_equal(registry_delete(f->reg, "hello"), -ENOENT);
    assert_int_equal(registry_delete(f->reg, "never"), -ENOENT);

    assert_int_equal(registry_get(f->reg, "keep", &got), 0);
    fn_config_release(&got);
}

/* Decision: a deleted function's name is free again, and a function created
 * under it starts over at version 1 with a new created_ms. Versions are
 * unique only while the function exists (registry.h); nothing of the old
 * function survives a delete (its code and logs go with it, docs/api.md), so
 * there is no old "v2" a new "v2" could be confused with. */
static void test_recreate_after_delete_starts_at_1(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, NULL, 0);
    put(f->reg, "hello", 2, "main.v2", 2000, NULL, 0);
    assert_int_equal(registry_delete(f->reg, "hello"), 0);

    put(f->reg, "hello", 3, "main.v3", 5000, NULL, -EEXIST);
    fn_config c;
    make_cfg(&c, "hello", 1, "main.new", 5000, NULL);
    assert_int_equal(registry_put(f->reg, &c), 0);
    assert_int_equal(c.created_ms, 5000);
    fn_config_release(&c);

    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.handler, "main.new");
    assert_int_equal(got.created_ms, 5000);
    fn_config_release(&got);
    assert_int_equal(registry_get_version(f->reg, "hello", 2, &got), -ENOENT);
}

static void test_get_version_of_old_version(void **state)
{
    struct fixture *f = *state;
    fn_config c;
    make_cfg(&c, "hello", 1, "main.v1", 1000, "{\"WHICH\": \"one\"}");
    c.timeout_ms = 1000;
    assert_int_equal(registry_put(f->reg, &c), 0);
    fn_config_release(&c);
    put(f->reg, "hello", 2, "main.v2", 2000, "{\"WHICH\": \"two\"}", 0);

    fn_config got;
    assert_int_equal(registry_get_version(f->reg, "hello", 1, &got), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.handler, "main.v1");
    assert_int_equal(got.timeout_ms, 1000);
    assert_string_equal(json_string_value(json_object_get(got.env, "WHICH")), "one");
    assert_int_equal(got.created_ms, 1000);
    assert_int_equal(got.updated_ms, 1000); /* when that version was deployed */
    fn_config_release(&got);

    assert_int_equal(registry_get_version(f->reg, "hello", 2, &got), 0);
    assert_string_equal(json_string_value(json_object_get(got.env, "WHICH")), "two");
    fn_config_release(&got);
    assert_int_equal(registry_get_version(f->reg, "hello", 0, &got), -ENOENT);
    assert_int_equal(registry_get_version(f->reg, "hello", 3, &got), -ENOENT);
    assert_int_equal(registry_get_version(f->reg, "nope", 1, &got), -ENOENT);

    /* Reading an old version does not change which one is current. */
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 2);
    fn_config_release(&got);
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "hello", 1, "main.v1", 1000, "{\"K\": \"v\"}", 0);
    put(f->reg, "hello", 2, "main.v2", 2000, NULL, 0);
    registry_close(f->reg);
    f->reg = NULL;

    assert_int_equal(registry_open(f->path, &f->reg), 0);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "hello", &got), 0);
    assert_int_equal(got.version, 2);
    assert_int_equal(got.created_ms, 1000);
    fn_config_release(&got);
    assert_int_equal(registry_get_version(f->reg, "hello", 1, &got), 0);
    assert_string_equal(json_string_value(json_object_get(got.env, "K")), "v");
    fn_config_release(&got);
    /* Versions continue where they were, and reopening did not re-migrate. */
    put(f->reg, "hello", 3, "main.v3", 3000, NULL, 0);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 5);
    /* WAL is a property of the file: any other opener sees it. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A put that returned 0 is on disk even if the process dies right after,
 * without closing anything (no atexit, no checkpoint). */
static void test_put_survives_process_exit(void **state)
{
    struct fixture *f = *state;
    registry_close(f->reg); /* the child must be the only writer */
    f->reg = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        registry *reg;
        fn_config c;
        memset(&c, 0, sizeof c);
        fnset_defaults(&c);
        snprintf(c.name, sizeof c.name, "durable");
        snprintf(c.runtime, sizeof c.runtime, "python3");
        snprintf(c.handler, sizeof c.handler, "main.handler");
        c.version = 1;
        c.timeout_ms = 100;
        c.memory_mb = 64;
        c.updated_ms = 4242;
        if (registry_open(f->path, &reg) != 0 || registry_put(reg, &c) != 0)
            _exit(1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_int_equal(registry_open(f->path, &f->reg), 0);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "durable", &got), 0);
    assert_int_equal(got.version, 1);
    assert_int_equal(got.updated_ms, 4242);
    assert_int_equal(got.timeout_ms, 100);
    fn_config_release(&got);
}

static void write_file(const char *path, const char *text, size_t repeat)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < repeat; i++)
        fputs(text, fp);
    fclose(fp);
}

static void test_unusable_database_is_an_error(void **state)
{
    struct fixture *f = *state;
    char path[256];
    registry *reg = (registry *)&reg; /* must be reset to NULL on failure */

    snprintf(path, sizeof path, "%s/garbage.db", f->dir);
    write_file(path, "this is not a sqlite database, just some text.\n", 100);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    int rc = registry_open(path, &reg);
    assert_true(rc < 0);
    assert_null(reg);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size); /* left as it was */

    snprintf(path, sizeof path, "%s/no/such/dir/registry.db", f->dir);
    assert_int_equal(registry_open(path, &reg), -ENOENT);
    assert_null(reg);

    assert_true(registry_open(f->dir, &reg) < 0); /* a directory */
    assert_null(reg);

    registry_close(NULL);
}

static void test_newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    char path[256];
    registry *reg;
    snprintf(path, sizeof path, "%s/future.db", f->dir);
    raw_exec(path, "PRAGMA user_version = 99");
    assert_int_equal(registry_open(path, &reg), -ENOTSUP);
    assert_null(reg);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 99);
}

/* Settings are JSON so later issues can add keys without a migration:
 * older rows lacking a key read as its default, unknown keys are kept out
 * of the way, and a row that is not JSON is an error, not a crash. */
static void test_scheduling_settings_round_trip(void **state)
{
    struct fixture *f = *state;
    fn_config c;
    make_cfg(&c, "tuned", 1, "main.handler", 1000, NULL);
    c.max_concurrency = 8;
    c.min_instances = 2;
    c.max_queue = 500;
    c.queue_timeout_ms = 250;
    assert_int_equal(c.keep_alive_s, FNSET_INHERIT); /* the daemon's --keep-alive */
    assert_int_equal(registry_put(f->reg, &c), 0);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "tuned", &got), 0);
    assert_int_equal(got.max_concurrency, 8);
    assert_int_equal(got.min_instances, 2);
    assert_int_equal(got.max_queue, 500);
    assert_int_equal(got.queue_timeout_ms, 250);
    assert_int_equal(got.keep_alive_s, FNSET_INHERIT);
    fn_config_release(&got);

    /* The registry is the last gate: out of range, or at odds, is refused. */
    c.version = 2;
    c.min_instances = 9; /* more than max_concurrency */
    assert_int_equal(registry_put(f->reg, &c), -EINVAL);
    c.min_instances = 0;
    c.max_concurrency = 0;
    assert_int_equal(registry_put(f->reg, &c), -EINVAL);
    c.max_concurrency = 1;
    c.max_queue = FNSET_INHERIT - 1;
    assert_int_equal(registry_put(f->reg, &c), -EINVAL);
    c.max_queue = FNSET_INHERIT;
    c.queue_timeout_ms = FNSET_INHERIT; /* only some settings inherit */
    assert_int_equal(registry_put(f->reg, &c), -EINVAL);
    assert_int_equal(latest(f->reg, "tuned"), 1);
    fn_config_release(&c);
}

static void test_settings_defaults_and_corruption(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "old", 1, "main.handler", 1000, "{\"A\": \"b\"}", 0);
    put(f->reg, "newer", 1, "main.handler", 1000, NULL, 0);
    raw_exec(f->path, "UPDATE versions SET settings = '{}' WHERE name = 'old';"
                      "UPDATE versions SET settings = "
                      "'{\"env\": {\"Z\": \"z\"}, \"timeout_ms\": 7, \"future\": [1]}' "
                      "WHERE name = 'newer'");
    fn_config got;
    assert_int_equal(registry_get(f->reg, "old", &got), 0);
    assert_int_equal(got.timeout_ms, 30000);
    assert_int_equal(got.memory_mb, 128);
    assert_int_equal(got.max_concurrency, 10); /* rows older than a setting take its default */
    assert_int_equal(got.min_instances, 0);
    assert_int_equal(got.max_queue, FNSET_INHERIT);
    assert_true(json_is_object(got.env));
    assert_int_equal(json_object_size(got.env), 0);
    fn_config_release(&got);
    assert_int_equal(registry_get(f->reg, "newer", &got), 0);
    assert_int_equal(got.timeout_ms, 7);
    assert_int_equal(got.memory_mb, 128);
    assert_string_equal(json_string_value(json_object_get(got.env, "Z")), "z");
    fn_config_release(&got);

    raw_exec(f->path, "UPDATE versions SET settings = 'not json' WHERE name = 'old'");
    got.env = NULL;
    assert_int_equal(registry_get(f->reg, "old", &got), -EIO);
    struct seen s = {0};
    assert_int_equal(registry_list(f->reg, record, &s), -EIO);
    raw_exec(f->path, "UPDATE versions SET settings = '{\"timeout_ms\": \"soon\"}' "
                      "WHERE name = 'old'");
    assert_int_equal(registry_get(f->reg, "old", &got), -EIO);
}

static int stack_visit(const char *stack, const char *function, void *ud)
{
    char *out = ud;
    size_t used = strlen(out);
    snprintf(out + used, 256 - used, "%s/%s ", stack, function);
    return 0;
}

/* A stack apply is one transaction: new versions, membership and deletes
 * all land, or (one delete of an unknown name) none of them. */
static void test_stack_apply_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    put(f->reg, "old", 1, "main.v1", 1000, NULL, 0);
    put(f->reg, "loner", 1, "main.v1", 1000, NULL, 0);
    fn_config a, b;
    make_cfg(&a, "a", 1, "main.a", 2000, NULL);
    make_cfg(&b, "old", 2, "main.v2", 2000, NULL);
    snprintf(a.digest, sizeof a.digest, "sha256:%064d", 1);
    fn_config *puts[] = {&a, &b};
    const char *members[] = {"a", "old"};
    const char *bad_deletes[] = {"nosuch"};
    assert_int_equal(registry_stack_apply(f->reg, "s", puts, 2, members, 2, bad_deletes, 1),
                     -ENOENT);
    fn_config got;
    assert_int_equal(registry_get(f->reg, "a", &got), -ENOENT);
    assert_int_equal(registry_get(f->reg, "old", &got), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.stack, "");
    fn_config_release(&got);

    const char *deletes[] = {"loner"};
    assert_int_equal(registry_stack_apply(f->reg, "s", puts, 2, members, 2, deletes, 1), 0);
    assert_int_equal(registry_get(f->reg, "a", &got), 0);
    assert_string_equal(got.stack, "s");
    assert_string_equal(got.digest, a.digest);
    fn_config_release(&got);
    assert_int_equal(registry_get(f->reg, "old", &got), 0);
    assert_int_equal(got.version, 2);
    assert_string_equal(got.stack, "s");
    fn_config_release(&got);
    assert_int_equal(registry_get(f->reg, "loner", &got), -ENOENT);
    char listed[256] = "";
    assert_int_equal(registry_stack_list(f->reg, NULL, stack_visit, listed), 0);
    assert_string_equal(listed, "s/a s/old ");
    /* a plain put keeps the function in its stack */
    put(f->reg, "a", 2, "main.a2", 3000, NULL, 0);
    assert_int_equal(registry_get(f->reg, "a", &got), 0);
    assert_string_equal(got.stack, "s");
    assert_string_equal(got.digest, "");
    fn_config_release(&got);
    fn_config_release(&a);
    fn_config_release(&b);
}

/* --- out of memory (tests/unit/failalloc.h) --- */

static int count_visit(const fn_config *cfg, void *ud)
{
    (void)cfg;
    (*(int *)ud)++;
    return 0;
}

static int enomem(int rc)
{
    return rc == -ENOMEM ? rc : (assert_int_equal(rc, 0), 0);
}

/* A read: jansson reports a failed allocation inside its lexer as a
 * syntax error, so decoding a stored row then says -EIO (unreadable),
 * a clean error all the same. */
static int read_error(int rc)
{
    return rc == -EIO && failalloc_fired() ? -ENOMEM : rc;
}

/* Put two versions, read them back, list, encode, delete, on one open
 * registry: the delete (or, after a failure, the clean-up) leaves it empty
 * for the next run. */
static int registry_scenario(void *ud)
{
    registry *reg = ud;
    json_t *env = json_pack("{s:s}", "A", "b");
    if (!env)
        return -ENOMEM;
    fn_config c, got;
    make_cfg(&c, "hello", 1, "main.handler", 1000, NULL);
    c.env = env;
    int rc = registry_put(reg, &c);
    if (rc == 0) {
        c.version = 2;
        rc = registry_put(reg, &c);
    }
    if (rc == 0 && (rc = read_error(registry_get(reg, "hello", &got))) == 0) {
        assert_int_equal(got.version, 2);
        assert_string_equal(json_string_value(json_object_get(got.env, "A")), "b");
        fn_config_release(&got);
    }
    if (rc == 0 && (rc = read_error(registry_get_version(reg, "hello", 1, &got))) == 0)
        fn_config_release(&got);
    int n = 0;
    if (rc == 0 && (rc = read_error(registry_list(reg, count_visit, &n))) == 0)
        assert_int_equal(n, 1);
    if (rc == 0) {
        char *text = registry_encode_settings(&c);
        rc = text ? 0 : -ENOMEM;
        free(text);
    }
    if (rc == 0)
        rc = registry_delete(reg, "hello");
    else
        registry_delete(reg, "hello"); /* the one failure is spent: this works */
    fn_config_release(&c);
    return enomem(rc);
}

static int open_scenario(void *ud)
{
    const char *path = ud;
    registry *reg = NULL;
    int rc = registry_open(path, &reg);
    registry_close(reg);
    return enomem(rc);
}

static void test_out_of_memory(void **state)
{
    struct fixture *f = *state;
    assert_true(failalloc_run("registry_open", open_scenario, f->path, 0) > 0);
    /* Every put is an fsync; none is needed to count allocations. */
    assert_int_equal(
        sqlite3_exec(registry_sqlite(f->reg), "PRAGMA synchronous = OFF", NULL, NULL, NULL),
        SQLITE_OK);
    assert_true(failalloc_run("registry", registry_scenario, f->reg, 0) > 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, registry_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_then_get),
        T(test_put_without_env_reads_empty_env),
        T(test_put_v2_keeps_created),
        T(test_wrong_version_changes_nothing),
        T(test_failed_put_rolls_back),
        T(test_put_rejects_invalid_config),
        T(test_list),
        T(test_delete),
        T(test_recreate_after_delete_starts_at_1),
        T(test_get_version_of_old_version),
        T(test_reopen_keeps_data),
        T(test_stack_apply_all_or_nothing),
        T(test_put_survives_process_exit),
        T(test_unusable_database_is_an_error),
        T(test_newer_schema_is_refused),
        T(test_scheduling_settings_round_trip),
        T(test_settings_defaults_and_corruption),
        T(test_out_of_memory),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
