/*
 * evstore_sqlite.c — the event store on one sqlite file (<data>/events.db,
 * its own file so that its per-turn batch never waits on the registry's
 * writes). Owns the schema of invocations, idempotency keys and schedule
 * state, and the batch: the first write of a loop turn opens a
 * transaction, evstore_commit() ends it with one fsync (WAL,
 * synchronous=FULL), however many events it holds.
 */
#include "events/evstore.h"

#include "dlog.h"
#include "sqlitedb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHO      "events"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const migrations[] = {
    /* 1: invocations, newest by seq; the keys of Idempotency-Key; the last
     * firing of each schedule. */
    "CREATE TABLE invocations ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL DEFAULT 0,"
    "  status INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  depth INTEGER NOT NULL DEFAULT 0,"
    "  source TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  run_at_ms INTEGER NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  payload BLOB NOT NULL,"
    "  result BLOB,"
    "  result_type TEXT NOT NULL DEFAULT '',"
    "  err_code TEXT NOT NULL DEFAULT '',"
    "  err_message TEXT NOT NULL DEFAULT '',"
    "  err_type TEXT NOT NULL DEFAULT '',"
    "  callback_url TEXT NOT NULL DEFAULT '',"
    "  callback INTEGER NOT NULL DEFAULT 0,"
    "  idem_key TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX invocations_fn ON invocations (function, seq);"
    "CREATE INDEX invocations_pending ON invocations (status, seq) WHERE status IN (0, 1, 2);"
    "CREATE INDEX invocations_finished ON invocations (finished_ms) WHERE finished_ms > 0;"
    "CREATE TABLE idempotency ("
    "  function TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (function, key));"
    "CREATE TABLE schedule_state ("
    "  function TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  fired_s INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  PRIMARY KEY (function, key));",
    /* 2: the qualifier an invocation was made with (issue 14: "prod", "3",
     * "" for the current version), resolved again at each attempt. */
    "ALTER TABLE invocations ADD COLUMN qualifier TEXT NOT NULL DEFAULT '';",
};

/* Every query that reads a record selects these columns, in this order
 * (read_record() depends on it); the payload and result come last so that
 * lists can leave them out. */
#define REC_COLS                                                                                   \
    "seq, id, function, version, status, attempts, depth, source, created_ms, started_ms, "        \
    "finished_ms, run_at_ms, content_type, result_type, err_code, err_message, err_type, "         \
    "callback_url, callback, idem_key, qualifier"
#define REC_NCOLS 21

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_KEY_PUT,
    ST_KEY_GET,
    ST_CLAIM,
    ST_COMPLETE,
    ST_RETRY,
    ST_REQUEUE,
    ST_DEAD,
    ST_CANCEL,
    ST_REDRIVE,
    ST_CALLBACK,
    ST_VERSION,
    ST_GET,
    ST_GET_SEQ,
    ST_LIST,
    ST_LIST_STATUS,
    ST_PENDING,
    ST_UNSENT,
    ST_BACKLOG,
    ST_EXPIRE,
    ST_EXPIRE_KEYS,
    ST_SCHED_GET,
    ST_SCHED_PUT,
    ST_COUNT
};

/* Back to waiting at ?2, the attempt that was cut short not counted:
 * one invocation (ST_REQUEUE) or every running one
 * (evstore_requeue_running_db). */
#define REQUEUE_SET                                                                                \
    "status = CASE WHEN attempts > 1 THEN 2 ELSE 0 END, attempts = MAX(attempts - 1, 0), "         \
    "run_at_ms = ?2"
#define REQUEUE_RUNNING_SQL "UPDATE invocations SET " REQUEUE_SET " WHERE status = 1"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT INTO invocations (id, function, status, depth, source, created_ms, "
                  "run_at_ms, content_type, payload, callback_url, callback, idem_key, qualifier) "
                  "VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_KEY_PUT] = "INSERT OR REPLACE INTO idempotency (function, key, id, created_ms) "
                   "VALUES (?1, ?2, ?3, ?4)",
    [ST_KEY_GET] = "SELECT id FROM idempotency WHERE function = ?1 AND key = ?2 "
                   "AND created_ms >= ?3",
    [ST_CLAIM] = "UPDATE invocations SET status = 1, attempts = attempts + 1, started_ms = ?3, "
                 "version = ?2 WHERE seq = ?1 AND status IN (0, 2)",
    [ST_COMPLETE] = "UPDATE invocations SET status = 3, result = ?2, result_type = ?3, "
                    "finished_ms = ?4, err_code = '', err_message = '', err_type = '' "
                    "WHERE seq = ?1",
    [ST_RETRY] = "UPDATE invocations SET status = 2, run_at_ms = ?2, err_code = ?3, "
                 "err_message = ?4, err_type = ?5 WHERE seq = ?1",
    [ST_REQUEUE] = "UPDATE invocations SET " REQUEUE_SET " WHERE seq = ?1 AND status = 1",
    [ST_DEAD] = "UPDATE invocations SET status = 4, finished_ms = ?2, err_code = ?3, "
                "err_message = ?4, err_type = ?5 WHERE seq = ?1",
    [ST_CANCEL] = "UPDATE invocations SET status = 5, finished_ms = ?2, "
                  "callback = CASE WHEN callback = 1 THEN 0 ELSE callback END "
                  "WHERE seq = ?1 AND status IN (0, 2)",
    [ST_REDRIVE] =
        "UPDATE invocations SET status = 0, attempts = 0, finished_ms = 0, "
        "created_ms = ?2, run_at_ms = ?2, callback = CASE WHEN callback_url = '' THEN 0 ELSE 1 END "
        "WHERE seq = ?1 AND status = 4",
    [ST_CALLBACK] = "UPDATE invocations SET callback = ?2 WHERE seq = ?1",
    [ST_VERSION] = "UPDATE invocations SET version = ?2 WHERE seq = ?1",
    [ST_GET] = "SELECT " REC_COLS ", payload, result FROM invocations WHERE id = ?1",
    [ST_GET_SEQ] = "SELECT " REC_COLS ", payload, result FROM invocations WHERE seq = ?1",
    [ST_LIST] = "SELECT " REC_COLS " FROM invocations WHERE function = ?1 "
                "ORDER BY seq DESC LIMIT ?2",
    [ST_LIST_STATUS] = "SELECT " REC_COLS " FROM invocations WHERE function = ?1 AND status = ?3 "
                       "ORDER BY seq DESC LIMIT ?2",
    [ST_PENDING] = "SELECT " REC_COLS " FROM invocations WHERE status IN (0, 1, 2) ORDER BY seq",
    [ST_UNSENT] = "SELECT " REC_COLS " FROM invocations WHERE callback = 1 AND status IN (3, 4) "
                  "ORDER BY seq",
    [ST_BACKLOG] = "SELECT count(*) FROM invocations WHERE status IN (0, 1, 2) "
                   "AND function = ?1 AND source = ?2",
    [ST_EXPIRE] = "DELETE FROM invocations WHERE finished_ms > 0 AND finished_ms < ?1 "
                  "AND status IN (3, 4, 5) AND callback != 1",
    [ST_EXPIRE_KEYS] = "DELETE FROM idempotency WHERE created_ms < ?1",
    [ST_SCHED_GET] = "SELECT fired_s, id FROM schedule_state WHERE function = ?1 AND key = ?2",
    [ST_SCHED_PUT] = "INSERT OR REPLACE INTO schedule_state (function, key, fired_s, id) "
                     "VALUES (?1, ?2, ?3, ?4)",
};

struct evstore {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    bool batch; /* a transaction is open */
};

static const char *const status_names[EV_STATUS_COUNT] = {
    "queued", "running", "retrying", "succeeded", "dead", "cancelled",
};

const char *ev_status_name(ev_status s)
{
    return (unsigned)s < EV_STATUS_COUNT ? status_names[s] : "unknown";
}

int ev_status_parse(const char *word)
{
    for (int i = 0; i < EV_STATUS_COUNT; i++)
        if (strcmp(word, status_names[i]) == 0)
            return i;
    return -1;
}

bool ev_status_pending(ev_status s)
{
    return s == EV_QUEUED || s == EV_RUNNING || s == EV_RETRYING;
}

void evrec_release(ev_record *r)
{
    free(r->payload);
    free(r->result);
    r->payload = r->result = NULL;
    r->payload_len = r->result_len = 0;
}

static int fail(evstore *st, enum stmt_id id)
{
    return sqlitedb_fail(st->db, WHO, stmt_sql[id]);
}

static sqlite3_stmt *stmt(evstore *st, enum stmt_id id)
{
    sqlite3_stmt *s = st->stmt[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Steps a statement that returns no rows; *changed gets the rows it
 * touched when asked. */
static int run(evstore *st, enum stmt_id id, int *changed)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(st, id);
    if (changed)
        *changed = sqlite3_changes(st->db);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* The first write of a turn opens the batch evstore_commit ends. */
static int join_batch(evstore *st)
{
    if (st->batch)
        return 0;
    int rc = run(st, ST_BEGIN, NULL);
    if (rc == 0)
        st->batch = true;
    return rc;
}

/* A write: joins the batch, runs, and tells -ESTALE when no row matched. */
static int write_one(evstore *st, enum stmt_id id)
{
    int rc = join_batch(st);
    int changed = 0;
    if (rc == 0)
        rc = run(st, id, &changed);
    else
        sqlite3_reset(st->stmt[id]);
    return rc ? rc : changed ? 0 : -ESTALE;
}

int evstore_commit(evstore *st)
{
    if (!st->batch)
        return 0;
    st->batch = false;
    int rc = run(st, ST_COMMIT, NULL);
    if (rc && !sqlite3_get_autocommit(st->db))
        run(st, ST_ROLLBACK, NULL);
    return rc;
}

bool evstore_dirty(const evstore *st)
{
    return st->batch;
}

int evstore_schema_version(void)
{
    return (int)COUNT(migrations);
}

int evstore_open(const char *path, evstore **out)
{
    *out = NULL;
    evstore *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    int rc = sqlitedb_open(path, WHO, migrations, COUNT(migrations), &st->db);
    for (int i = 0; rc == 0 && i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK)
            rc = fail(st, i);
    if (rc) {
        evstore_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void evstore_close(evstore *st)
{
    if (!st)
        return;
    if (st->batch && !sqlite3_get_autocommit(st->db))
        run(st, ST_ROLLBACK, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db)
        sqlite3_close(st->db);
    free(st);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v ? v : "", -1, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *s, int i, const void *v, size_t len)
{
    sqlite3_bind_blob64(s, i, len ? v : "", len, SQLITE_STATIC);
}

static void bind_error(sqlite3_stmt *s, int first, const ev_error *err)
{
    bind_text(s, first, err ? err->code : "");
    bind_text(s, first + 1, err ? err->message : "");
    bind_text(s, first + 2, err ? err->type : "");
}

int evstore_enqueue(evstore *st, ev_record *r)
{
    sqlite3_stmt *s = stmt(st, ST_INSERT);
    bind_text(s, 1, r->id);
    bind_text(s, 2, r->function);
    sqlite3_bind_int(s, 3, (int)r->depth);
    bind_text(s, 4, r->source);
    sqlite3_bind_int64(s, 5, r->created_ms);
    sqlite3_bind_int64(s, 6, r->run_at_ms);
    bind_text(s, 7, r->content_type);
    bind_blob(s, 8, r->payload, r->payload_len);
    bind_text(s, 9, r->callback_url);
    sqlite3_bind_int(s, 10, r->callback);
    bind_text(s, 11, r->idem_key);
    bind_text(s, 12, r->qualifier);
    int rc = write_one(st, ST_INSERT);
    if (rc)
        return rc;
    r->seq = sqlite3_last_insert_rowid(st->db);
    r->status = EV_QUEUED;
    if (!r->idem_key[0])
        return 0;
    s = stmt(st, ST_KEY_PUT);
    bind_text(s, 1, r->function);
    bind_text(s, 2, r->idem_key);
    bind_text(s, 3, r->id);
    sqlite3_bind_int64(s, 4, r->created_ms);
    return write_one(st, ST_KEY_PUT);
}

/* Copies a text column into a fixed field, cut to fit. */
static void col_text(sqlite3_stmt *s, int col, char *dst, size_t size)
{
    const unsigned char *p = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", p ? (const char *)p : "");
}

static char *col_blob(sqlite3_stmt *s, int col, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(s, col);
    const void *p = sqlite3_column_blob(s, col);
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return NULL;
    char *copy = malloc(*len + 1);
    if (copy) {
        if (*len)
            memcpy(copy, p, *len);
        copy[*len] = '\0';
    }
    return copy;
}

/* Fills r from a row of REC_COLS (then payload and result when `whole`). */
static int read_record(sqlite3_stmt *s, ev_record *r, bool whole)
{
    memset(r, 0, sizeof *r);
    r->seq = sqlite3_column_int64(s, 0);
    col_text(s, 1, r->id, sizeof r->id);
    col_text(s, 2, r->function, sizeof r->function);
    r->version = sqlite3_column_int64(s, 3);
    int status = sqlite3_column_int(s, 4);
    r->status = status >= 0 && status < EV_STATUS_COUNT ? (ev_status)status : EV_DEAD;
    r->attempts = (unsigned)sqlite3_column_int(s, 5);
    r->depth = (unsigned)sqlite3_column_int(s, 6);
    col_text(s, 7, r->source, sizeof r->source);
    r->created_ms = sqlite3_column_int64(s, 8);
    r->started_ms = sqlite3_column_int64(s, 9);
    r->finished_ms = sqlite3_column_int64(s, 10);
    r->run_at_ms = sqlite3_column_int64(s, 11);
    col_text(s, 12, r->content_type, sizeof r->content_type);
    col_text(s, 13, r->result_type, sizeof r->result_type);
    col_text(s, 14, r->err_code, sizeof r->err_code);
    col_text(s, 15, r->err_message, sizeof r->err_message);
    col_text(s, 16, r->err_type, sizeof r->err_type);
    col_text(s, 17, r->callback_url, sizeof r->callback_url);
    r->callback = (ev_callback)sqlite3_column_int(s, 18);
    col_text(s, 19, r->idem_key, sizeof r->idem_key);
    col_text(s, 20, r->qualifier, sizeof r->qualifier);
    if (!whole)
        return 0;
    r->payload = col_blob(s, REC_NCOLS, &r->payload_len);
    r->result = col_blob(s, REC_NCOLS + 1, &r->result_len);
    if (!r->payload) {
        evrec_release(r);
        return -ENOMEM;
    }
    return 0;
}

/* Runs a one-record query: 0, -ENOENT, -ENOMEM, -EIO. */
static int get_one(evstore *st, enum stmt_id id, ev_record *out)
{
    sqlite3_stmt *s = st->stmt[id];
    int step = sqlite3_step(s);
    int rc = step == SQLITE_ROW    ? read_record(s, out, true)
             : step == SQLITE_DONE ? -ENOENT
                                   : fail(st, id);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int evstore_find_key(evstore *st, const char *function, const char *key, int64_t since_ms,
                     char id[EV_ID_LEN + 1])
{
    sqlite3_stmt *s = stmt(st, ST_KEY_GET);
    bind_text(s, 1, function);
    bind_text(s, 2, key);
    sqlite3_bind_int64(s, 3, since_ms);
    int step = sqlite3_step(s);
    int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : fail(st, ST_KEY_GET);
    if (rc == 0)
        col_text(s, 0, id, EV_ID_LEN + 1);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int evstore_claim(evstore *st, int64_t seq, int64_t version, int64_t now_ms, ev_record *out)
{
    sqlite3_stmt *s = stmt(st, ST_CLAIM);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, version);
    sqlite3_bind_int64(s, 3, now_ms);
    int rc = write_one(st, ST_CLAIM);
    if (rc)
        return rc;
    sqlite3_bind_int64(stmt(st, ST_GET_SEQ), 1, seq);
    return get_one(st, ST_GET_SEQ, out);
}

int evstore_complete(evstore *st, int64_t seq, const char *result, size_t len,
                     const char *result_type, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, ST_COMPLETE);
    sqlite3_bind_int64(s, 1, seq);
    bind_blob(s, 2, result, len);
    bind_text(s, 3, result_type);
    sqlite3_bind_int64(s, 4, now_ms);
    return write_one(st, ST_COMPLETE);
}

int evstore_retry_at(evstore *st, int64_t seq, int64_t run_at_ms, const ev_error *err)
{
    sqlite3_stmt *s = stmt(st, ST_RETRY);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, run_at_ms);
    bind_error(s, 3, err);
    return write_one(st, ST_RETRY);
}

int evstore_requeue(evstore *st, int64_t seq, int64_t run_at_ms)
{
    sqlite3_stmt *s = stmt(st, ST_REQUEUE);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, run_at_ms);
    return write_one(st, ST_REQUEUE);
}

int evstore_requeue_running_db(sqlite3 *db, int64_t run_at_ms)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, REQUEUE_RUNNING_SQL, -1, &s, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(s, 2, run_at_ms);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : -EIO;
}

int evstore_requeue_running(evstore *st, int64_t run_at_ms)
{
    int rc = join_batch(st);
    if (rc == 0 && evstore_requeue_running_db(st->db, run_at_ms) < 0)
        rc = sqlitedb_fail(st->db, WHO, REQUEUE_RUNNING_SQL);
    return rc;
}

int evstore_dead(evstore *st, int64_t seq, const ev_error *err, int64_t now_ms)
{
    sqlite3_stmt *s = stmt(st, ST_DEAD);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, now_ms);
    bind_error(s, 3, err);
    return write_one(st, ST_DEAD);
}

/* The statements that take (seq, a number) and change one row. */
static int seq_value(evstore *st, enum stmt_id id, int64_t seq, int64_t value)
{
    sqlite3_stmt *s = stmt(st, id);
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int64(s, 2, value);
    return write_one(st, id);
}

int evstore_cancel(evstore *st, int64_t seq, int64_t now_ms)
{
    return seq_value(st, ST_CANCEL, seq, now_ms);
}

int evstore_redrive(evstore *st, int64_t seq, int64_t now_ms)
{
    return seq_value(st, ST_REDRIVE, seq, now_ms);
}

int evstore_set_callback(evstore *st, int64_t seq, ev_callback state)
{
    return seq_value(st, ST_CALLBACK, seq, (int64_t)state);
}

int evstore_set_version(evstore *st, int64_t seq, int64_t version)
{
    return seq_value(st, ST_VERSION, seq, version);
}

int evstore_get(evstore *st, const char *id, ev_record *out)
{
    bind_text(stmt(st, ST_GET), 1, id);
    return get_one(st, ST_GET, out);
}

/* Visits every row of a prepared, bound statement of REC_COLS. */
static int visit_rows(evstore *st, enum stmt_id id, evstore_visit_fn fn, void *ud)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        ev_record r;
        read_record(s, &r, false);
        rc = fn(&r, ud);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail(st, id);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int evstore_list(evstore *st, const char *function, int status, unsigned limit, evstore_visit_fn fn,
                 void *ud)
{
    enum stmt_id id = status < 0 ? ST_LIST : ST_LIST_STATUS;
    sqlite3_stmt *s = stmt(st, id);
    bind_text(s, 1, function);
    sqlite3_bind_int64(s, 2, limit);
    if (status >= 0)
        sqlite3_bind_int(s, 3, status);
    return visit_rows(st, id, fn, ud);
}

int evstore_each_pending(evstore *st, evstore_visit_fn fn, void *ud)
{
    stmt(st, ST_PENDING);
    return visit_rows(st, ST_PENDING, fn, ud);
}

int evstore_each_unsent_callback(evstore *st, evstore_visit_fn fn, void *ud)
{
    stmt(st, ST_UNSENT);
    return visit_rows(st, ST_UNSENT, fn, ud);
}

int evstore_backlog(evstore *st, const char *function, const char *source, int64_t *out)
{
    sqlite3_stmt *s = stmt(st, ST_BACKLOG);
    bind_text(s, 1, function);
    bind_text(s, 2, source);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : fail(st, ST_BACKLOG);
    *out = rc == 0 ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int evstore_expire(evstore *st, int64_t before_ms, int64_t keys_before_ms)
{
    sqlite3_bind_int64(stmt(st, ST_EXPIRE), 1, before_ms);
    int rc = write_one(st, ST_EXPIRE);
    if (rc && rc != -ESTALE)
        return rc;
    sqlite3_bind_int64(stmt(st, ST_EXPIRE_KEYS), 1, keys_before_ms);
    rc = write_one(st, ST_EXPIRE_KEYS);
    return rc == -ESTALE ? 0 : rc;
}

int evstore_schedule_last(evstore *st, const char *function, const char *key, int64_t *fired_s,
                          char id[EV_ID_LEN + 1])
{
    sqlite3_stmt *s = stmt(st, ST_SCHED_GET);
    bind_text(s, 1, function);
    bind_text(s, 2, key);
    int step = sqlite3_step(s);
    int rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -ENOENT : fail(st, ST_SCHED_GET);
    if (rc == 0) {
        *fired_s = sqlite3_column_int64(s, 0);
        col_text(s, 1, id, EV_ID_LEN + 1);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

int evstore_schedule_fired(evstore *st, const char *function, const char *key, int64_t fired_s,
                           const char *id)
{
    sqlite3_stmt *s = stmt(st, ST_SCHED_PUT);
    bind_text(s, 1, function);
    bind_text(s, 2, key);
    sqlite3_bind_int64(s, 3, fired_s);
    bind_text(s, 4, id);
    return write_one(st, ST_SCHED_PUT);
}
