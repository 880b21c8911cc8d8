/*
 * registry.c — the durable record of functions and their versions, in one
 * sqlite database. Owns the connection, the schema (migrations keyed by
 * PRAGMA user_version) and the prepared statements of the request path.
 *
 * It must never leave a half-applied put, delete or migration behind (each
 * is one transaction, rolled back on any failure), never store a config that
 * fails validate.h, and never be used from two threads or across fork():
 * the connection belongs to the loop thread of the process that opened it.
 * The database holds functions' env values (secrets): its files are 0600.
 */
#include "registry.h"
#include "registry_internal.h"

#include "dlog.h"
#include "sqlitedb.h"
#include "fn_settings.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTINGS_MAX (64 * 1024) /* a settings column larger than this is corrupt */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* migrations[i] takes the schema from user_version i to i + 1. Append only:
 * a migration that has shipped is never edited. */
static const char *const migrations[] = {
    /* 1: functions and their immutable versions. settings is a JSON object
     * (env, timeout_ms, memory_mb, ...) so new settings need no migration. */
    "CREATE TABLE functions ("
    "  name TEXT PRIMARY KEY,"
    "  current_version INTEGER NOT NULL,"
    "  latest_version INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE TABLE versions ("
    "  name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL,"
    "  runtime TEXT NOT NULL,"
    "  handler TEXT NOT NULL,"
    "  settings TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (name, version));",
    /* 2: bearer tokens (only a hash of each secret) and the audit trail of
     * management actions. A revoked token keeps its row (revoked_ms != 0)
     * so the list and the audit can still name it; names are unique among
     * the tokens not revoked. */
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  scopes TEXT NOT NULL,"
    "  functions TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_ms = 0;"
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at_ms INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  token_id TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL);",
    /* 3: each version's code digest (code_digest.h; '' before this), and
     * the stack that owns a function ('' for none), for stack applies. */
    "ALTER TABLE versions ADD COLUMN digest TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE functions ADD COLUMN stack TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX functions_stack ON functions (stack, name) WHERE stack != '';",
    /* 4: aliases (issue 14): a name for a version of a function, with the
     * weighted extra versions as a JSON object {"4": 0.1}. They go with the
     * function; a version an alias points at is never pruned
     * (registry_versions.c checks, as weights are JSON). */
    "CREATE TABLE aliases ("
    "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  weights TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (function, name));",
    /* 5: a token's secret sealed with the daemon's SigV4 key (auth.c), for
     * the AWS API's signatures; NULL for tokens made before, which cannot
     * sign AWS requests. */
    "ALTER TABLE tokens ADD COLUMN sigv4 BLOB;",
};

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_GET,
    ST_GET_VERSION,
    ST_LIST,
    ST_LATEST,
    ST_UPSERT_FUNCTION,
    ST_INSERT_VERSION,
    ST_DELETE,
    ST_SET_STACK,
    ST_STACK_LIST,
    ST_STACK_LIST_ONE,
    ST_COUNT
};

/* Every query that reads a config selects these columns, in this order
 * (decode_config() depends on it). */
#define CONFIG_SELECT                                                                              \
    "SELECT v.name, v.version, v.runtime, v.handler, v.settings, f.created_ms, v.created_ms, "     \
    "v.digest, f.stack FROM functions f JOIN versions v ON v.name = f.name "

enum {
    COL_NAME,
    COL_VERSION,
    COL_RUNTIME,
    COL_HANDLER,
    COL_SETTINGS,
    COL_FN_CREATED,
    COL_CREATED,
    COL_DIGEST,
    COL_STACK
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET] = CONFIG_SELECT "AND v.version = f.current_version WHERE f.name = ?1",
    [ST_GET_VERSION] = CONFIG_SELECT "WHERE f.name = ?1 AND v.version = ?2",
    [ST_LIST] = CONFIG_SELECT "AND v.version = f.current_version ORDER BY f.name",
    [ST_LATEST] = "SELECT latest_version, created_ms FROM functions WHERE name = ?1",
    [ST_UPSERT_FUNCTION] =
        "INSERT INTO functions (name, current_version, latest_version, created_ms, updated_ms) "
        "VALUES (?1, ?2, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET "
        "current_version = excluded.current_version, latest_version = excluded.latest_version, "
        "updated_ms = excluded.updated_ms",
    [ST_INSERT_VERSION] = "INSERT INTO versions (name, version, runtime, handler, settings, "
                          "created_ms, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_DELETE] = "DELETE FROM functions WHERE name = ?1",
    [ST_SET_STACK] = "UPDATE functions SET stack = ?2 WHERE name = ?1",
    [ST_STACK_LIST] = "SELECT stack, name FROM functions WHERE stack != '' ORDER BY stack, name",
    [ST_STACK_LIST_ONE] = "SELECT stack, name FROM functions WHERE stack = ?1 ORDER BY name",
};

#define REG_CACHED_MAX 8

struct registry {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int listing; /* inside registry_list: its statement is busy */
    /* registry_cached(): the other files' statements of the request path */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cached[REG_CACHED_MAX];
};

void fn_config_release(fn_config *cfg)
{
    if (!cfg)
        return;
    json_decref(cfg->env);
    cfg->env = NULL;
    for (size_t i = 0; i < FNSET_JSON_MAX; i++) {
        json_decref(cfg->json_settings[i]);
        cfg->json_settings[i] = NULL;
    }
}

void fn_config_retain(fn_config *cfg)
{
    json_incref(cfg->env);
    for (size_t i = 0; i < FNSET_JSON_MAX; i++)
        json_incref(cfg->json_settings[i]);
}

void fn_config_set_secrets(fn_config *cfg, const json_t *list)
{
    size_t n = json_array_size(list);
    cfg->nsecrets = 0;
    for (size_t i = 0; i < n && i < VALIDATE_SECRETS_MAX; i++)
        snprintf(cfg->secrets[cfg->nsecrets++], sizeof cfg->secrets[0], "%s",
                 json_string_value(json_array_get(list, i)));
}

json_t *fn_config_secrets_json(const fn_config *cfg)
{
    json_t *list = json_array();
    for (unsigned i = 0; list && i < cfg->nsecrets; i++)
        if (json_array_append_new(list, json_string(cfg->secrets[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    return list;
}

bool fn_config_lists_secret(const fn_config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->nsecrets; i++)
        if (strcmp(cfg->secrets[i], name) == 0)
            return true;
    return false;
}

int registry_sql_fail(sqlite3 *db, const char *what)
{
    return sqlitedb_fail(db, "registry", what);
}

/* Returns a cached statement to its idle state. Clearing the bindings
 * drops pointers into caller memory bound with SQLITE_STATIC. */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a cached statement that returns no rows. */
static int stmt_exec(registry *reg, enum stmt_id id)
{
    sqlite3_stmt *st = reg->stmt[id];
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : registry_sql_fail(reg->db, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

/* Ends an open transaction without applying it; a no-op when sqlite has
 * already rolled back by itself (some errors do). */
static void rollback(registry *reg)
{
    if (!sqlite3_get_autocommit(reg->db))
        stmt_exec(reg, ST_ROLLBACK);
}

static int prepare_statements(registry *reg)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(reg->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &reg->stmt[i],
                               NULL) != SQLITE_OK)
            return registry_sql_fail(reg->db, stmt_sql[i]);
    }
    return 0;
}

int registry_schema_version(void)
{
    return (int)COUNT(migrations);
}

int registry_open(const char *path, registry **out)
{
    *out = NULL;
    registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return -ENOMEM;
    int rc = sqlitedb_open(path, "registry", migrations, COUNT(migrations), &reg->db);
    if (rc == 0)
        rc = prepare_statements(reg);
    if (rc) {
        registry_close(reg);
        return rc;
    }
    *out = reg;
    return 0;
}

sqlite3 *registry_sqlite(registry *reg)
{
    return reg->db;
}

bool registry_busy(const registry *reg)
{
    return reg->listing != 0;
}

void registry_close(registry *reg)
{
    if (!reg)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(reg->stmt[i]);
    for (int i = 0; i < REG_CACHED_MAX; i++)
        sqlite3_finalize(reg->cached[i].st);
    if (reg->db && sqlite3_close(reg->db) != SQLITE_OK)
        dlog_error("registry: close: %s", sqlite3_errmsg(reg->db));
    free(reg);
}

sqlite3_stmt *registry_cached(registry *reg, const char *sql)
{
    for (int i = 0; i < REG_CACHED_MAX; i++) {
        if (reg->cached[i].sql && strcmp(reg->cached[i].sql, sql) == 0)
            return reg->cached[i].st;
        if (!reg->cached[i].sql) {
            if (sqlite3_prepare_v3(reg->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &reg->cached[i].st,
                                   NULL) != SQLITE_OK) {
                registry_sql_fail(reg->db, sql);
                return NULL;
            }
            reg->cached[i].sql = sql;
            return reg->cached[i].st;
        }
    }
    return NULL;
}

int registry_copy_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!p || n >= size)
        return -EIO;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* A missing key takes its default (older rows predate it); a present key of
 * the wrong type is corruption. */
static int settings_int(json_t *settings, const char *key, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(settings, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return -EIO;
    *out = json_integer_value(v);
    return 0;
}

/* Every two-word setting: a missing one is its default, an unknown word
 * corruption. */
/* The JSON-valued settings; absent keys stay NULL (rows from before a
 * setting existed), a stored value that fails its check is corruption. */
static int decode_json_settings(json_t *settings, fn_config *cfg)
{
    size_t n;
    const fnset_json *js = fnset_jsons(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(settings, js[i].name);
        if (!v)
            continue;
        int rc = js[i].check(v, NULL, 0);
        if (rc < 0)
            return rc == -ENOMEM ? rc : -EIO;
        cfg->json_settings[i] = json_incref(v);
    }
    return 0;
}

static int decode_choices(json_t *settings, fn_config *cfg)
{
    size_t n;
    const fnset_choice *t = fnset_choices(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(settings, t[i].name);
        if (v && (!json_is_string(v) || fnset_choose(cfg, &t[i], json_string_value(v)) < 0))
            return -EIO;
    }
    return 0;
}

/* Every whole-number setting of fn_settings.c from the settings object. */
static int decode_ints(json_t *settings, fn_config *cfg)
{
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++) {
        int rc = settings_int(settings, t[i].name, t[i].dflt, fnset_field(cfg, &t[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Fills env, network and the whole-number settings of `cfg` from a
 * settings column. env is always an object (empty when none was stored),
 * owned by cfg. */
static int decode_settings(sqlite3_stmt *st, fn_config *cfg)
{
    const char *text = (const char *)sqlite3_column_text(st, COL_SETTINGS);
    size_t len = (size_t)sqlite3_column_bytes(st, COL_SETTINGS);
    if (!text || len > SETTINGS_MAX)
        return -EIO;
    /* Out of memory is not corruption, when jansson can tell (a failed
     * allocation in its lexer reads as a syntax error: then -EIO). */
    json_error_t jerr;
    json_t *settings = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!settings)
        return json_error_code(&jerr) == json_error_out_of_memory ? -ENOMEM : -EIO;
    if (!json_is_object(settings)) {
        json_decref(settings);
        return -EIO;
    }
    int rc = decode_ints(settings, cfg);
    json_t *env = json_object_get(settings, "env");
    if (rc == 0 && env && !json_is_object(env))
        rc = -EIO;
    json_t *secrets = json_object_get(settings, "secrets"); /* absent before issue 10 */
    if (rc == 0 && secrets && validate_secret_list(secrets, NULL, 0) < 0)
        rc = -EIO;
    if (rc == 0 && secrets)
        fn_config_set_secrets(cfg, secrets);
    if (rc == 0)
        rc = decode_choices(settings, cfg);
    if (rc == 0)
        rc = decode_json_settings(settings, cfg);
    if (rc == 0)
        cfg->env = env ? json_incref(env) : json_object();
    if (rc == 0 && !cfg->env)
        rc = -ENOMEM;
    json_decref(settings);
    return rc;
}

/* Decodes the current row (CONFIG_SELECT columns) into *out, which is
 * written only on success. */
static int decode_config(sqlite3_stmt *st, fn_config *out)
{
    fn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = registry_copy_text(st, COL_NAME, cfg.name, sizeof cfg.name);
    if (rc == 0)
        rc = registry_copy_text(st, COL_RUNTIME, cfg.runtime, sizeof cfg.runtime);
    if (rc == 0)
        rc = registry_copy_text(st, COL_HANDLER, cfg.handler, sizeof cfg.handler);
    if (rc == 0)
        rc = registry_copy_text(st, COL_DIGEST, cfg.digest, sizeof cfg.digest);
    if (rc == 0)
        rc = registry_copy_text(st, COL_STACK, cfg.stack, sizeof cfg.stack);
    if (rc == 0)
        rc = decode_settings(st, &cfg);
    if (rc) {
        fn_config_release(&cfg); /* what decode_settings took before failing */
        const char *name = (const char *)sqlite3_column_text(st, COL_NAME);
        if (rc == -ENOMEM)
            dlog_error("registry: out of memory reading function '%.*s'", FN_NAME_MAX,
                       name ? name : "?");
        else
            dlog_error("registry: stored function '%.*s' is unreadable (%s)", FN_NAME_MAX,
                       name ? name : "?", strerror(-rc));
        return rc;
    }
    cfg.version = sqlite3_column_int64(st, COL_VERSION);
    cfg.created_ms = sqlite3_column_int64(st, COL_FN_CREATED);
    cfg.updated_ms = sqlite3_column_int64(st, COL_CREATED);
    *out = cfg;
    return 0;
}

/* A name longer than any stored one cannot match; skip the query. */
static bool name_fits(const char *name)
{
    return name && strnlen(name, FN_NAME_MAX + 1) <= FN_NAME_MAX;
}

/* Steps a bound single-config query and decodes its row. */
static int fetch_one(registry *reg, enum stmt_id id, fn_config *out)
{
    sqlite3_stmt *st = reg->stmt[id];
    int step = sqlite3_step(st);
    int rc;
    if (step == SQLITE_ROW)
        rc = decode_config(st, out);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = registry_sql_fail(reg->db, stmt_sql[id]);
    stmt_done(st);
    return rc;
}

int registry_get(registry *reg, const char *name, fn_config *out)
{
    if (!name_fits(name))
        return -ENOENT;
    sqlite3_bind_text(reg->stmt[ST_GET], 1, name, -1, SQLITE_STATIC);
    return fetch_one(reg, ST_GET, out);
}

int registry_get_version(registry *reg, const char *name, int64_t version, fn_config *out)
{
    if (!name_fits(name))
        return -ENOENT;
    sqlite3_stmt *st = reg->stmt[ST_GET_VERSION];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    return fetch_one(reg, ST_GET_VERSION, out);
}

/* Latest version and creation time of `name`; both 0 when it is unknown. */
static int read_latest(registry *reg, const char *name, int64_t *latest, int64_t *created_ms)
{
    sqlite3_stmt *st = reg->stmt[ST_LATEST];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int rc = 0;
    *latest = 0;
    *created_ms = 0;
    if (step == SQLITE_ROW) {
        *latest = sqlite3_column_int64(st, 0);
        *created_ms = sqlite3_column_int64(st, 1);
    } else if (step != SQLITE_DONE) {
        rc = registry_sql_fail(reg->db, stmt_sql[ST_LATEST]);
    }
    stmt_done(st);
    return rc;
}

int registry_latest_version(registry *reg, const char *name, int64_t *out)
{
    int64_t created_ms;
    if (!name_fits(name)) {
        *out = 0;
        return 0;
    }
    return read_latest(reg, name, out, &created_ms);
}

/* The registry is the last gate before disk: nothing that validate.h
 * rejects, and no unterminated field, is ever stored. */
static int check_config(const fn_config *cfg)
{
    if (!validate_function_name(cfg->name) || !validate_handler(cfg->handler))
        return -EINVAL;
    size_t rlen = strnlen(cfg->runtime, sizeof cfg->runtime);
    if (rlen == 0 || rlen == sizeof cfg->runtime)
        return -EINVAL;
    if (cfg->version < 1)
        return -EINVAL;
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++)
        if (!fnset_storable(&t[i], fnset_value(cfg, &t[i])))
            return -EINVAL;
    if (fnset_check_together(cfg, NULL, 0) < 0)
        return -EINVAL;
    if (cfg->env && validate_env(cfg->env, NULL, 0) != 0)
        return -EINVAL;
    if (cfg->nsecrets > VALIDATE_SECRETS_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < cfg->nsecrets; i++)
        if (!validate_secret_name(cfg->secrets[i]))
            return -EINVAL;
    return 0;
}

/* Adds key: value (taken) to *obj; a failure drops *obj to NULL. */
static void put_or_drop(json_t **obj, const char *key, json_t *value)
{
    if (!*obj) {
        json_decref(value);
        return;
    }
    if (json_object_set_new(*obj, key, value) < 0) { /* it took value anyway */
        json_decref(*obj);
        *obj = NULL;
    }
}

/* The settings column for `cfg`, as a malloc'd string the caller frees;
 * NULL when out of memory. Keys are sorted so equal settings are equal text. */
char *registry_encode_settings(const fn_config *cfg)
{
    json_t *settings = json_object();
    put_or_drop(&settings, "env", cfg->env ? json_incref(cfg->env) : json_object());
    put_or_drop(&settings, "secrets", fn_config_secrets_json(cfg));
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++)
        put_or_drop(&settings, t[i].name, json_integer((json_int_t)fnset_value(cfg, &t[i])));
    const fnset_choice *c = fnset_choices(&n);
    for (size_t i = 0; i < n; i++)
        put_or_drop(&settings, c[i].name, json_string(fnset_word(cfg, &c[i])));
    const fnset_json *js = fnset_jsons(&n);
    for (size_t i = 0; i < n; i++)
        if (cfg->json_settings[i])
            put_or_drop(&settings, js[i].name, json_incref(cfg->json_settings[i]));
    char *text = settings ? json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(settings);
    return text;
}

static int write_function(registry *reg, const fn_config *cfg, int64_t created_ms)
{
    sqlite3_stmt *st = reg->stmt[ST_UPSERT_FUNCTION];
    sqlite3_bind_text(st, 1, cfg->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cfg->version);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int64(st, 4, cfg->updated_ms);
    return stmt_exec(reg, ST_UPSERT_FUNCTION);
}

static int write_version(registry *reg, const fn_config *cfg, const char *settings)
{
    sqlite3_stmt *st = reg->stmt[ST_INSERT_VERSION];
    sqlite3_bind_text(st, 1, cfg->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, cfg->version);
    sqlite3_bind_text(st, 3, cfg->runtime, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, cfg->handler, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, settings, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, cfg->updated_ms);
    sqlite3_bind_text(st, 7, cfg->digest, -1, SQLITE_STATIC);
    return stmt_exec(reg, ST_INSERT_VERSION);
}

/* The checks of a put (check_config, and a digest that fits). */
static int check_put(const fn_config *cfg)
{
    int rc = check_config(cfg);
    if (rc == 0 && strnlen(cfg->digest, sizeof cfg->digest) == sizeof cfg->digest)
        rc = -EINVAL;
    return rc;
}

/* Writes cfg as the new current version inside an open transaction;
 * *created_ms is the function's creation time. */
static int put_in_transaction(registry *reg, const fn_config *cfg, const char *settings,
                              int64_t *created_ms)
{
    int64_t latest = 0;
    int rc = read_latest(reg, cfg->name, &latest, created_ms);
    if (rc == 0 && cfg->version != latest + 1)
        rc = -EEXIST;
    if (rc == 0 && latest == 0)
        *created_ms = cfg->updated_ms;
    if (rc == 0)
        rc = write_function(reg, cfg, *created_ms);
    if (rc == 0)
        rc = write_version(reg, cfg, settings);
    return rc;
}

/* Also -EINVAL for a config validate.h rejects, -ENOMEM, and -EBUSY from
 * inside a registry_list visitor; on any error neither the database nor
 * *cfg changes. */
int registry_put(registry *reg, fn_config *cfg)
{
    if (reg->listing)
        return -EBUSY;
    int rc = check_put(cfg);
    if (rc)
        return rc;
    char *settings = registry_encode_settings(cfg);
    if (!settings)
        return -ENOMEM;
    int64_t created_ms = 0;
    rc = stmt_exec(reg, ST_BEGIN);
    if (rc == 0) {
        rc = put_in_transaction(reg, cfg, settings, &created_ms);
        if (rc == 0)
            rc = stmt_exec(reg, ST_COMMIT);
        if (rc)
            rollback(reg);
    }
    free(settings);
    if (rc == 0)
        cfg->created_ms = created_ms;
    return rc;
}

/* Hands each CONFIG_SELECT row of `st` (of text `sql`) to `visit`, decoded,
 * until one returns non-zero. Returns that value, 0 after the last row, or
 * the failure of a step. The caller resets or finalizes `st`. */
static int visit_configs(registry *reg, sqlite3_stmt *st, const char *sql, registry_visit_fn visit,
                         void *ud)
{
    int rc = 0, step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        fn_config cfg;
        rc = decode_config(st, &cfg);
        if (rc == 0) {
            rc = visit(&cfg, ud);
            fn_config_release(&cfg);
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = registry_sql_fail(reg->db, sql);
    return rc;
}

/* Returns 0 after the last function, or the visitor's non-zero value when
 * it stops early (as strmap_each does). -EBUSY when called from inside a
 * visitor; a visitor may read (registry_get*) but not write (-EBUSY). */
int registry_list(registry *reg, registry_visit_fn visit, void *ud)
{
    if (reg->listing)
        return -EBUSY;
    sqlite3_stmt *st = reg->stmt[ST_LIST];
    reg->listing = 1;
    int rc = visit_configs(reg, st, stmt_sql[ST_LIST], visit, ud);
    stmt_done(st);
    reg->listing = 0;
    return rc;
}

/* The delete itself, without the listing check: registry_stack_apply runs
 * it inside its own transaction. */
static int delete_function(registry *reg, const char *name)
{
    if (!name_fits(name))
        return -ENOENT;
    sqlite3_stmt *st = reg->stmt[ST_DELETE];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = stmt_exec(reg, ST_DELETE);
    if (rc == 0 && sqlite3_changes(reg->db) == 0)
        rc = -ENOENT;
    return rc;
}

/* One statement: the versions go with the function through ON DELETE
 * CASCADE (foreign keys are checked on at open), atomically. -EBUSY from
 * inside a registry_list visitor. */
int registry_delete(registry *reg, const char *name)
{
    if (reg->listing)
        return -EBUSY;
    return delete_function(reg, name);
}

/* --- stacks --- */

static int set_stack(registry *reg, const char *name, const char *stack)
{
    sqlite3_stmt *st = reg->stmt[ST_SET_STACK];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stack, -1, SQLITE_STATIC);
    int rc = stmt_exec(reg, ST_SET_STACK);
    if (rc == 0 && sqlite3_changes(reg->db) == 0)
        rc = -ENOENT;
    return rc;
}

/* Rollback: the pointer moves, nothing is copied. The version must be kept
 * (a pruned one has no code any more). */
int registry_set_current(registry *reg, const char *name, int64_t version)
{
    if (reg->listing)
        return -EBUSY;
    if (!name_fits(name))
        return -ENOENT;
    sqlite3_stmt *st;
    const char *sql = "UPDATE functions SET current_version = ?2 WHERE name = ?1 AND EXISTS "
                      "(SELECT 1 FROM versions WHERE name = ?1 AND version = ?2)";
    if (sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL) != SQLITE_OK)
        return registry_sql_fail(reg->db, sql);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : registry_sql_fail(reg->db, sql);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(reg->db) == 0)
        rc = -ENOENT;
    return rc;
}

/* Every check and every settings text first, so that the transaction
 * itself fails only on the database. */
int registry_stack_apply(registry *reg, const char *stack, fn_config *const *puts, size_t nputs,
                         const char *const *members, size_t nmembers, const char *const *deletes,
                         size_t ndeletes)
{
    if (reg->listing)
        return -EBUSY;
    if (!validate_function_name(stack))
        return -EINVAL;
    char **settings = calloc(nputs ? nputs : 1, sizeof *settings);
    int64_t *created = calloc(nputs ? nputs : 1, sizeof *created);
    int rc = settings && created ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < nputs; i++) {
        rc = check_put(puts[i]);
        if (rc == 0 && !(settings[i] = registry_encode_settings(puts[i])))
            rc = -ENOMEM;
    }
    if (rc == 0 && (rc = stmt_exec(reg, ST_BEGIN)) == 0) {
        for (size_t i = 0; rc == 0 && i < nputs; i++)
            rc = put_in_transaction(reg, puts[i], settings[i], &created[i]);
        for (size_t i = 0; rc == 0 && i < nmembers; i++)
            rc = set_stack(reg, members[i], stack);
        for (size_t i = 0; rc == 0 && i < ndeletes; i++)
            rc = delete_function(reg, deletes[i]);
        if (rc == 0)
            rc = stmt_exec(reg, ST_COMMIT);
        if (rc)
            rollback(reg);
    }
    for (size_t i = 0; rc == 0 && i < nputs; i++)
        puts[i]->created_ms = created[i];
    for (size_t i = 0; settings && i < nputs; i++)
        free(settings[i]);
    free(settings);
    free(created);
    return rc;
}

int registry_stack_list(registry *reg, const char *stack, registry_stack_fn visit, void *ud)
{
    if (reg->listing)
        return -EBUSY;
    enum stmt_id id = stack ? ST_STACK_LIST_ONE : ST_STACK_LIST;
    sqlite3_stmt *st = reg->stmt[id];
    if (stack)
        sqlite3_bind_text(st, 1, stack, -1, SQLITE_STATIC);
    int rc = 0, step = SQLITE_DONE;
    reg->listing = 1;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        const char *f = (const char *)sqlite3_column_text(st, 1);
        rc = s && f ? visit(s, f, ud) : -EIO;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = registry_sql_fail(reg->db, stmt_sql[id]);
    stmt_done(st);
    reg->listing = 0;
    return rc;
}

int registry_versions(registry *reg, const char *name, registry_visit_fn visit, void *ud)
{
    if (!name_fits(name))
        return 0;
    sqlite3_stmt *st;
    const char *sql = CONFIG_SELECT "WHERE f.name = ?1 ORDER BY v.version DESC";
    if (sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL) != SQLITE_OK)
        return registry_sql_fail(reg->db, sql);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = visit_configs(reg, st, sql, visit, ud);
    sqlite3_finalize(st);
    return rc;
}
