/*
 * registry_auth.c — the registry's tokens and audit tables (migration 2 of
 * registry.c): store, revoke and list bearer tokens, append and read the
 * audit trail.
 *
 * Owns the SQL of those two tables. Must never: store or return a token's
 * secret (only its hash, and the secret sealed by auth.c with a key this
 * file never sees, ever reach it), run on a request's hot
 * path (auth.c caches the tokens in memory), or leave a half-written row.
 * Statements are prepared per call: these are management actions, rare.
 */
#include "registry.h"
#include "registry_internal.h"

#include <errno.h>
#include <string.h>

#include "dlog.h"

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : registry_sql_fail(db, sql);
}

int registry_token_add(registry *reg, const registry_token *t)
{
    if (registry_busy(reg))
        return -EBUSY;
    sqlite3 *db = registry_sqlite(reg);
    static const char sql[] = "INSERT INTO tokens (id, name, hash, scopes, functions, created_ms, "
                              "expires_ms, sigv4) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    sqlite3_stmt *st;
    int rc = prepare(db, sql, &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, t->hash, REG_TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->scopes, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->functions, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, t->created_ms);
    sqlite3_bind_int64(st, 7, t->expires_ms);
    if (t->has_sigv4)
        sqlite3_bind_blob(st, 8, t->sigv4, REG_TOKEN_SIGV4_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        rc = 0;
    else if ((step & 0xff) == SQLITE_CONSTRAINT)
        rc = -EEXIST;
    else
        rc = registry_sql_fail(db, "insert token");
    sqlite3_finalize(st);
    return rc;
}

int registry_token_revoke(registry *reg, const char *id, int64_t now_ms)
{
    if (registry_busy(reg))
        return -EBUSY;
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db, "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms = 0", &st);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms > 0 ? now_ms : 1);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = registry_sql_fail(db, "revoke token");
    else if (sqlite3_changes(db) == 0)
        rc = -ENOENT;
    sqlite3_finalize(st);
    return rc;
}

static int decode_token(sqlite3_stmt *st, registry_token *t)
{
    memset(t, 0, sizeof *t);
    if (registry_copy_text(st, 0, t->id, sizeof t->id) ||
        registry_copy_text(st, 1, t->name, sizeof t->name) ||
        registry_copy_text(st, 3, t->scopes, sizeof t->scopes) ||
        registry_copy_text(st, 4, t->functions, sizeof t->functions) ||
        sqlite3_column_bytes(st, 2) != REG_TOKEN_HASH_LEN)
        return -EIO;
    memcpy(t->hash, sqlite3_column_blob(st, 2), REG_TOKEN_HASH_LEN);
    t->created_ms = sqlite3_column_int64(st, 5);
    t->expires_ms = sqlite3_column_int64(st, 6);
    t->revoked_ms = sqlite3_column_int64(st, 7);
    t->has_sigv4 = sqlite3_column_bytes(st, 8) == REG_TOKEN_SIGV4_LEN;
    if (t->has_sigv4)
        memcpy(t->sigv4, sqlite3_column_blob(st, 8), REG_TOKEN_SIGV4_LEN);
    return 0;
}

int registry_token_list(registry *reg, bool live_only, registry_token_fn visit, void *ud)
{
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc =
        prepare(db,
                "SELECT id, name, hash, scopes, functions, created_ms, expires_ms, revoked_ms, "
                "sigv4 "
                "FROM tokens WHERE ?1 = 0 OR revoked_ms = 0 ORDER BY created_ms, rowid",
                &st);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, live_only);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        registry_token t;
        rc = decode_token(st, &t);
        if (rc)
            dlog_error("registry: a stored token is unreadable");
        else
            rc = visit(&t, ud);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = registry_sql_fail(db, "list tokens");
    sqlite3_finalize(st);
    return rc;
}

int registry_audit_add(registry *reg, const registry_audit *a)
{
    if (registry_busy(reg))
        return -EBUSY;
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "INSERT INTO audit (at_ms, actor, token_id, action, target) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a->at_ms);
    sqlite3_bind_text(st, 2, a->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->token_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->target, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = registry_sql_fail(db, "append to the audit");
    sqlite3_finalize(st);
    return rc;
}

int registry_audit_list(registry *reg, unsigned limit, registry_audit_fn visit, void *ud)
{
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db,
                     "SELECT seq, at_ms, actor, token_id, action, target FROM audit "
                     "ORDER BY seq DESC LIMIT ?1",
                     &st);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, limit);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        registry_audit a = {.seq = sqlite3_column_int64(st, 0),
                            .at_ms = sqlite3_column_int64(st, 1)};
        if (registry_copy_text(st, 2, a.actor, sizeof a.actor) ||
            registry_copy_text(st, 3, a.token_id, sizeof a.token_id) ||
            registry_copy_text(st, 4, a.action, sizeof a.action) ||
            registry_copy_text(st, 5, a.target, sizeof a.target)) {
            dlog_error("registry: an audit record is unreadable");
            rc = -EIO;
            break;
        }
        rc = visit(&a, ud);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = registry_sql_fail(db, "read the audit");
    sqlite3_finalize(st);
    return rc;
}

int registry_data_version(registry *reg, int64_t *out)
{
    sqlite3 *db = registry_sqlite(reg);
    sqlite3_stmt *st;
    int rc = prepare(db, "PRAGMA data_version", &st);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = registry_sql_fail(db, "PRAGMA data_version");
    sqlite3_finalize(st);
    return rc;
}
