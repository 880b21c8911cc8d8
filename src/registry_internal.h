/*
 * registry_internal.h — what the registry's own files share: the sqlite
 * connection of a registry. Only registry*.c include this.
 */
#ifndef HEARTH_REGISTRY_INTERNAL_H
#define HEARTH_REGISTRY_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "registry.h"

/* The connection (owned by the registry). */
sqlite3 *registry_sqlite(registry *reg);

/* True inside a registry_list visitor: writes must answer -EBUSY. */
bool registry_busy(const registry *reg);

/* Logs sqlite's account of a failure of `what` and returns -EIO. */
int registry_sql_fail(sqlite3 *db, const char *what);

/* A statement of the request path kept prepared for the registry's life
 * (`sql` a string constant), reset and unbound: the caller binds, steps,
 * then sqlite3_reset()s and sqlite3_clear_bindings() it. NULL when it
 * cannot be prepared or the few slots are taken (then prepare your own). */
sqlite3_stmt *registry_cached(registry *reg, const char *sql);

/* Copies text column `col` into a fixed field of `size` bytes: 0, or -EIO
 * when it is NULL or does not fit (corruption, not something to cut). */
int registry_copy_text(sqlite3_stmt *st, int col, char *dst, size_t size);

#endif
