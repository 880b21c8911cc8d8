/*
 * sqlitedb.h — opening one of the daemon's sqlite databases the one way
 * they are all opened: owner-only files, WAL with synchronous=FULL (a
 * commit that returned survives kill -9 and power loss), and a schema
 * brought up to date by append-only migrations keyed by user_version.
 * Used by the registry (hearth.db) and the event store (events.db).
 */
#ifndef HEARTH_SQLITEDB_H
#define HEARTH_SQLITEDB_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Opens or creates the database at `path` and migrates it: migrations[i]
 * takes the schema from user_version i to i + 1. `who` names the database
 * in log lines. Returns 0 or a negative errno (-EIO for sqlite failures,
 * -ENOTSUP for a schema newer than this build); *out is NULL on failure. */
int sqlitedb_open(const char *path, const char *who, const char *const *migrations, size_t count,
                  sqlite3 **out);

/* Runs `sql` (one or more statements, no rows wanted). 0 or, as
 * sqlitedb_errno, a negative errno. */
int sqlitedb_exec(sqlite3 *db, const char *who, const char *sql);

/* The last failure on `db` as a negative errno: -EBUSY (locked by another
 * connection past the busy timeout), -ENOSPC (disk full), -ENOMEM, else
 * -EIO; so that callers can answer 503 or 507 rather than 500. */
int sqlitedb_errno(sqlite3 *db);

/* Logs sqlite's account of a failure of `what` and returns sqlitedb_errno. */
int sqlitedb_fail(sqlite3 *db, const char *who, const char *what);

#endif
