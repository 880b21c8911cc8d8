/*
 * sqlitedb.c — opening a sqlite database the daemon's way: file modes,
 * connection settings that must take, and schema migrations in one
 * transaction. What is stored, and how, belongs to the database's owner
 * (registry.c, events/evstore_sqlite.c).
 */
#include "sqlitedb.h"

#include "dlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000
#define DB_FILE_MODE    0600

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Connection settings, applied in order at open. A non-NULL `expect` is the
 * value the statement must return, so a pragma sqlite silently ignores (WAL
 * unavailable, foreign keys compiled out) fails the open instead. */
static const struct {
    const char *sql;
    const char *expect;
} connection_setup[] = {
    {"PRAGMA journal_mode=WAL", "wal"}, /* readers never block the writer */
    {"PRAGMA synchronous=FULL", NULL},  /* in WAL, only FULL survives power loss */
    {"PRAGMA synchronous", "2"},
    {"PRAGMA foreign_keys=ON", NULL}, /* registry_delete relies on ON DELETE CASCADE */
    {"PRAGMA foreign_keys", "1"},
};

int sqlitedb_errno(sqlite3 *db)
{
    switch (sqlite3_errcode(db) & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY; /* another process holds the lock: try again later */
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

int sqlitedb_fail(sqlite3 *db, const char *who, const char *what)
{
    dlog_error("%s: %s: %s", who, what, sqlite3_errmsg(db));
    return sqlitedb_errno(db);
}

int sqlitedb_exec(sqlite3 *db, const char *who, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    dlog_error("%s: %.60s: %s", who, sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return sqlitedb_errno(db);
}

/* Runs a one-row query and compares its first column, as text and ignoring
 * case, with `expect`; with `expect` NULL only success is required. */
static int exec_expect(sqlite3 *db, const char *who, const char *sql, const char *expect)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlitedb_fail(db, who, sql);
    int step = sqlite3_step(st);
    int rc = 0;
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sqlitedb_fail(db, who, sql);
    } else if (expect) {
        const char *got = step == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (!got || strcasecmp(got, expect) != 0) {
            dlog_error("%s: %s gave '%s', need '%s'", who, sql, got ? got : "nothing", expect);
            rc = -EIO;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_int(sqlite3 *db, const char *who, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlitedb_fail(db, who, sql);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = sqlitedb_fail(db, who, sql);
    sqlite3_finalize(st);
    return rc;
}

/* Makes the database file (creating it empty: sqlite takes an empty file for
 * a new database) and any WAL, shared-memory or journal file left by an
 * earlier run owner-only. sqlite gives the -wal and -shm files it creates
 * the mode of the database file, whatever the umask: a database made 0644
 * by an older hearthd or by hand would hand its WAL, and the env values in
 * it, to every local user. Returns 0 or a negative errno. */
static int restrict_db_files(const char *path)
{
    if (strcmp(path, ":memory:") == 0)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, DB_FILE_MODE);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, DB_FILE_MODE) < 0 ? -errno : 0;
    close(fd);
    static const char *const sidecars[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; rc == 0 && i < COUNT(sidecars); i++) {
        char side[4096];
        if ((size_t)snprintf(side, sizeof side, "%s%s", path, sidecars[i]) >= sizeof side)
            return -ENAMETOOLONG;
        fd = open(side, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
            return -errno;
        if (fd >= 0) {
            rc = fchmod(fd, DB_FILE_MODE) < 0 ? -errno : 0;
            close(fd);
        }
    }
    return rc;
}

/* A path that cannot be opened reports the OS's reason (-ENOENT, -EACCES,
 * ...) when sqlite knows it; everything else is -EIO. */
static int open_db(const char *path, const char *who, sqlite3 **db)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    int rc = sqlite3_open_v2(path, db, flags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(*db, 1);
        sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
        return 0;
    }
    int sys = *db ? sqlite3_system_errno(*db) : 0;
    dlog_error("%s: open %s: %s", who, path, *db ? sqlite3_errmsg(*db) : "out of memory");
    if (!*db)
        return -ENOMEM;
    return (rc & 0xff) == SQLITE_CANTOPEN && sys > 0 ? -sys : -EIO;
}

static int configure(sqlite3 *db, const char *who)
{
    for (size_t i = 0; i < COUNT(connection_setup); i++) {
        int rc = exec_expect(db, who, connection_setup[i].sql, connection_setup[i].expect);
        if (rc)
            return rc;
    }
    return 0;
}

/* Brings the schema to the newest version in one transaction, so two
 * processes opening a fresh file cannot both apply a migration. A schema
 * newer than this binary knows is -ENOTSUP: running on it could corrupt it. */
static int migrate(sqlite3 *db, const char *who, const char *const *migrations, size_t count)
{
    const int64_t target = (int64_t)count;
    int rc = sqlitedb_exec(db, who, "BEGIN IMMEDIATE");
    if (rc)
        return rc;
    int64_t have = 0;
    rc = query_int(db, who, "PRAGMA user_version", &have);
    if (rc == 0 && (have < 0 || have > target)) {
        dlog_error("%s: schema version %lld is not one this build knows (up to %lld)", who,
                   (long long)have, (long long)target);
        rc = -ENOTSUP;
    }
    for (int64_t v = have; rc == 0 && v < target; v++)
        rc = sqlitedb_exec(db, who, migrations[v]);
    if (rc == 0 && have < target) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)target);
        rc = sqlitedb_exec(db, who, sql);
    }
    if (rc == 0)
        rc = sqlitedb_exec(db, who, "COMMIT");
    if (rc && !sqlite3_get_autocommit(db))
        sqlitedb_exec(db, who, "ROLLBACK");
    return rc;
}

int sqlitedb_open(const char *path, const char *who, const char *const *migrations, size_t count,
                  sqlite3 **out)
{
    *out = NULL;
    sqlite3 *db = NULL;
    int rc = restrict_db_files(path);
    if (rc < 0)
        dlog_error("%s: cannot make %s owner-only: %s", who, path, strerror(-rc));
    if (rc == 0)
        rc = open_db(path, who, &db);
    if (rc == 0)
        rc = configure(db, who);
    if (rc == 0)
        rc = migrate(db, who, migrations, count);
    if (rc) {
        if (db)
            sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}
