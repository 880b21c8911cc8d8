/*
 * registry.h — the durable record of functions and their immutable
 * versions, in sqlite (WAL, synchronous=FULL: a put that returned 0
 * survives kill -9 and power loss). Owned by the loop thread.
 */
#ifndef HEARTH_REGISTRY_H
#define HEARTH_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "validate.h"

typedef struct registry registry;

#define FN_NAME_MAX    63
#define FN_RUNTIME_MAX 31
#define FN_HANDLER_MAX 255

/* One version of a function. `env` is an owned JSON object (string ->
 * string) or NULL; fn_config_release() drops it. */
typedef struct fn_config {
    char name[FN_NAME_MAX + 1];
    int64_t version;
    char runtime[FN_RUNTIME_MAX + 1];
    char handler[FN_HANDLER_MAX + 1];
    json_t *env;
    /* whole-number settings: fn_settings.c has their ranges and defaults */
    int64_t timeout_ms;
    int64_t memory_mb;
    int64_t max_concurrency;  /* workers of the current version at once */
    int64_t min_instances;    /* workers kept started, never reaped for idleness */
    int64_t max_queue;        /* calls waiting beyond capacity; FNSET_INHERIT = --max-queue */
    int64_t queue_timeout_ms; /* longest wait for a worker */
    int64_t init_timeout_ms;  /* longest start: spawn to READY */
    int64_t keep_alive_s;     /* idle time before a worker stops; FNSET_INHERIT = --keep-alive */
    bool host_network;        /* "network": "host" — the worker shares the host's network */
    bool adaptive_keep_alive; /* "keep_alive": "adaptive" — keepalive.c decides */
    /* "secrets": the names its workers read at /run/secrets/<name> */
    char secrets[VALIDATE_SECRETS_MAX][VALIDATE_SECRET_NAME_MAX + 1];
    unsigned nsecrets;
    int64_t created_ms; /* when the function was first created */
    int64_t updated_ms; /* when this version was deployed */
} fn_config;

void fn_config_release(fn_config *cfg);

/* Sets cfg's secrets from a list validate_secret_list accepted. */
void fn_config_set_secrets(fn_config *cfg, const json_t *list);

/* cfg's secrets as a new JSON array (NULL when out of memory). */
json_t *fn_config_secrets_json(const fn_config *cfg);

/* True when cfg lists the secret `name`. */
bool fn_config_lists_secret(const fn_config *cfg, const char *name);

/* Opens or creates the database at `path`, migrating its schema.
 * Returns 0 or a negative errno (-EIO for sqlite failures). */
int registry_open(const char *path, registry **out);
void registry_close(registry *reg); /* accepts NULL */

/* Current version of `name` into *out. -ENOENT when unknown. Caller
 * releases *out. */
int registry_get(registry *reg, const char *name, fn_config *out);

/* One specific version. -ENOENT when unknown. */
int registry_get_version(registry *reg, const char *name, int64_t version, fn_config *out);

/* Highest version ever assigned to `name` (0 when none). Versions are never
 * reused while the function exists. */
int registry_latest_version(registry *reg, const char *name, int64_t *out);

/* Records cfg as the new current version of cfg->name, creating the
 * function if needed, in one durable transaction. cfg->version must be
 * latest + 1 (-EEXIST otherwise); cfg->created_ms is filled in from the
 * existing function when there is one. Returns 0, -EEXIST, -EIO. */
int registry_put(registry *reg, fn_config *cfg);

typedef int (*registry_visit_fn)(const fn_config *cfg, void *ud);

/* Visits the current version of every function, ordered by name. The
 * config is borrowed for the call. Return non-zero to stop. */
int registry_list(registry *reg, registry_visit_fn visit, void *ud);

/* Deletes `name` and all its versions. Returns 0, -ENOENT, -EIO. */
int registry_delete(registry *reg, const char *name);

#endif
