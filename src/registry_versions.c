/*
 * registry_versions.c — aliases and the pruning of old versions, in the
 * registry's database (schema in registry.c, migration 3).
 *
 * An alias names one version of a function and, optionally, up to
 * FN_ALIAS_EXTRA_MAX others that take a weighted share of its calls; the
 * weights are stored as a JSON object {"4": 0.1}. Pruning keeps the
 * newest versions, the current one and every version an alias names, so
 * nothing a caller can still address ever loses its code.
 *
 * Management operations only (deploy, alias writes, qualified calls'
 * alias lookups): statements are prepared per call, not cached. Must never
 * store an alias whose versions are not kept, nor weights that do not
 * leave the main version a share.
 */
#include "registry.h"
#include "registry_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "validate.h"

#define WEIGHTS_MAX 1024 /* a weights column larger than this is corrupt */

bool registry_alias_name_valid(const char *name)
{
    if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    size_t i = 1;
    for (; name[i]; i++) {
        char c = name[i];
        if (i >= FN_ALIAS_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool fn_fits(const char *fn)
{
    return fn && strnlen(fn, FN_NAME_MAX + 1) <= FN_NAME_MAX;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : registry_sql_fail(db, sql);
}

/* Runs a statement that returns no rows, then finalizes it. */
static int exec_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : registry_sql_fail(db, sqlite3_sql(st));
    sqlite3_finalize(st);
    return rc;
}

/* Weights as stored: sorted by version so equal aliases are equal text. */
static char *encode_weights(const fn_alias *a)
{
    json_t *w = json_object();
    for (unsigned i = 0; w && i < a->nextra; i++) {
        char key[24];
        snprintf(key, sizeof key, "%" PRId64, a->extra_version[i]);
        if (json_object_set_new(w, key, json_real(a->extra_weight[i])) < 0) {
            json_decref(w);
            w = NULL;
        }
    }
    char *text = w ? json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(w);
    return text;
}

static int decode_weights(const char *text, size_t len, fn_alias *a)
{
    if (!text || len > WEIGHTS_MAX)
        return -EIO;
    json_t *w = json_loadb(text, len, 0, NULL);
    const char *key;
    json_t *v;
    int rc = json_is_object(w) && json_object_size(w) <= FN_ALIAS_EXTRA_MAX ? 0 : -EIO;
    a->nextra = 0;
    json_object_foreach(w, key, v)
    {
        uint64_t ver;
        if (rc || !decimal_parse_positive(key, INT64_MAX, &ver) || !json_is_number(v)) {
            rc = -EIO;
            break;
        }
        a->extra_version[a->nextra] = ver;
        a->extra_weight[a->nextra++] = json_number_value(v);
    }
    json_decref(w);
    return rc;
}

#define ALIAS_SELECT "SELECT function, name, version, weights, created_ms, updated_ms FROM aliases "

static int decode_alias(sqlite3_stmt *st, fn_alias *out)
{
    fn_alias a;
    memset(&a, 0, sizeof a);
    int rc = registry_copy_text(st, 0, a.function, sizeof a.function);
    if (rc == 0)
        rc = registry_copy_text(st, 1, a.name, sizeof a.name);
    if (rc == 0)
        rc = decode_weights((const char *)sqlite3_column_text(st, 3),
                            (size_t)sqlite3_column_bytes(st, 3), &a);
    if (rc)
        return rc;
    a.version = sqlite3_column_int64(st, 2);
    a.created_ms = sqlite3_column_int64(st, 4);
    a.updated_ms = sqlite3_column_int64(st, 5);
    *out = a;
    return 0;
}

/* The checks of an alias as stored: a valid name, distinct versions, each
 * weight in (0, 1) and their sum under 1. */
static int check_alias(const fn_alias *a)
{
    if (!fn_fits(a->function) || !validate_function_name(a->function) ||
        !registry_alias_name_valid(a->name) || a->version < 1 || a->nextra > FN_ALIAS_EXTRA_MAX)
        return -EINVAL;
    double sum = 0;
    for (unsigned i = 0; i < a->nextra; i++) {
        double w = a->extra_weight[i];
        if (!(w > 0 && w < 1) || a->extra_version[i] < 1 || a->extra_version[i] == a->version)
            return -EINVAL;
        for (unsigned j = 0; j < i; j++)
            if (a->extra_version[j] == a->extra_version[i])
                return -EINVAL;
        sum += w;
    }
    return sum < 1 ? 0 : -EINVAL;
}

static int version_kept(sqlite3 *db, const char *fn, int64_t version, bool *kept)
{
    sqlite3_stmt *st;
    int rc = prepare(db, "SELECT 1 FROM versions WHERE name = ?1 AND version = ?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, fn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    int step = sqlite3_step(st);
    *kept = step == SQLITE_ROW;
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : registry_sql_fail(db, sqlite3_sql(st));
    sqlite3_finalize(st);
    return rc;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : registry_sql_fail(db, sql);
}

static void rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* One transaction: the versions are checked and the alias written
 * together, so a prune cannot slip between. */
int registry_alias_put(registry *reg, fn_alias *a)
{
    if (registry_busy(reg))
        return -EBUSY;
    int rc = check_alias(a);
    if (rc)
        return rc;
    char *weights = encode_weights(a);
    if (!weights)
        return -ENOMEM;
    sqlite3 *db = registry_sqlite(reg);
    rc = exec_sql(db, "BEGIN IMMEDIATE");
    for (unsigned i = 0; rc == 0 && i <= a->nextra; i++) {
        bool kept = false;
        rc = version_kept(db, a->function, i == 0 ? a->version : a->extra_version[i - 1], &kept);
        if (rc == 0 && !kept)
            rc = -ENOENT;
    }
    int64_t created = a->updated_ms;
    fn_alias old;
    if (rc == 0 && registry_alias_get(reg, a->function, a->name, &old) == 0)
        created = old.created_ms;
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = prepare(db,
                     "INSERT INTO aliases (function, name, version, weights, created_ms, "
                     "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (function, name) DO "
                     "UPDATE SET version = excluded.version, weights = excluded.weights, "
                     "updated_ms = excluded.updated_ms",
                     &st);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, a->function, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, a->version);
        sqlite3_bind_text(st, 4, weights, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, created);
        sqlite3_bind_int64(st, 6, a->updated_ms);
        rc = exec_done(db, st);
    }
    if (rc == 0)
        rc = exec_sql(db, "COMMIT");
    if (rc)
        rollback(db);
    else
        a->created_ms = created;
    free(weights);
    return rc;
}

int registry_alias_get(registry *reg, const char *fn, const char *alias, fn_alias *out)
{
    if (!fn_fits(fn) || !registry_alias_name_valid(alias))
        return -ENOENT;
    /* On every call of name:alias: kept prepared (a prepare costs more
     * than the lookup). */
    sqlite3 *db = registry_sqlite(reg);
    static const char sql[] = ALIAS_SELECT "WHERE function = ?1 AND name = ?2";
    sqlite3_stmt *st = registry_cached(reg, sql);
    if (!st)
        return -EIO;
    int rc = 0;
    sqlite3_bind_text(st, 1, fn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = decode_alias(st, out);
    else if (step == SQLITE_DONE)
        rc = -ENOENT;
    else
        rc = registry_sql_fail(db, sqlite3_sql(st));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int registry_alias_delete(registry *reg, const char *fn, const char *alias)
{
    if (registry_busy(reg))
        return -EBUSY;
    if (!fn_fits(fn) || !registry_alias_name_valid(alias))
        return -ENOENT;
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db, "DELETE FROM aliases WHERE function = ?1 AND name = ?2", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, fn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, alias, -1, SQLITE_STATIC);
    rc = exec_done(db, st);
    if (rc == 0 && sqlite3_changes(db) == 0)
        rc = -ENOENT;
    return rc;
}

int registry_alias_list(registry *reg, const char *fn, registry_alias_fn visit, void *ud)
{
    if (!fn_fits(fn))
        return 0;
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db, ALIAS_SELECT "WHERE function = ?1 ORDER BY name", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, fn, -1, SQLITE_STATIC);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        fn_alias a;
        rc = decode_alias(st, &a);
        if (rc == 0)
            rc = visit(&a, ud);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = registry_sql_fail(db, sqlite3_sql(st));
    sqlite3_finalize(st);
    return rc;
}

struct aliased {
    int64_t version;
    bool found;
};

static int note_aliased(const fn_alias *a, void *ud)
{
    struct aliased *x = ud;
    bool hit = a->version == x->version;
    for (unsigned i = 0; i < a->nextra; i++)
        hit = hit || a->extra_version[i] == x->version;
    if (hit)
        x->found = true;
    return hit ? 1 : 0;
}

bool registry_version_aliased(registry *reg, const char *fn, int64_t version)
{
    struct aliased x = {version, false};
    /* A read that fails says "aliased": pruning then keeps the version
     * rather than delete one an alias may still name. */
    return registry_alias_list(reg, fn, note_aliased, &x) < 0 || x.found;
}

int registry_prune(registry *reg, const char *name, unsigned keep, int64_t *deleted, size_t max,
                   size_t *ndeleted)
{
    *ndeleted = 0;
    if (registry_busy(reg))
        return -EBUSY;
    if (!fn_fits(name))
        return 0;
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    /* The candidates: every version past the `keep` newest but the current. */
    int rc = prepare(db,
                     "SELECT v.version FROM versions v JOIN functions f ON f.name = v.name "
                     "WHERE v.name = ?1 AND v.version != f.current_version "
                     "ORDER BY v.version DESC LIMIT -1 OFFSET ?2",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, keep > 0 ? keep - 1 : 0); /* the current one is among the kept */
    int64_t cand[256];
    size_t n = 0;
    int step;
    while (n < sizeof cand / sizeof cand[0] && (step = sqlite3_step(st)) == SQLITE_ROW)
        cand[n++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    rc = exec_sql(db, "BEGIN IMMEDIATE");
    for (size_t i = 0; rc == 0 && i < n && *ndeleted < max; i++) {
        if (registry_version_aliased(reg, name, cand[i]))
            continue;
        rc = prepare(db, "DELETE FROM versions WHERE name = ?1 AND version = ?2", &st);
        if (rc)
            break;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, cand[i]);
        rc = exec_done(db, st);
        if (rc == 0)
            deleted[(*ndeleted)++] = cand[i];
    }
    if (rc == 0)
        rc = exec_sql(db, "COMMIT");
    if (rc) {
        rollback(db);
        *ndeleted = 0;
    }
    return rc;
}
