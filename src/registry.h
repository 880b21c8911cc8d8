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

/* FN_NAME_MAX and FN_HANDLER_MAX: validate.h, with their rules. */
#define FN_RUNTIME_MAX 31
#define FNSET_JSON_MAX 8 /* slots for JSON-valued settings (fn_settings.h) */

/* One version of a function. `env` is an owned JSON object (string ->
 * string) or NULL; fn_config_release() drops it. */
/* "network": loopback only (the default), the host's own, or out through
 * NAT but never into the host (docs/security.md). fn_settings.c's words
 * are in this order. */
typedef enum fn_network { FN_NET_ISOLATED = 0, FN_NET_HOST = 1, FN_NET_EGRESS = 2 } fn_network;

typedef struct fn_config {
    char name[FN_NAME_MAX + 1];
    int64_t version;
    char runtime[FN_RUNTIME_MAX + 1];
    char handler[FN_HANDLER_MAX + 1];
    json_t *env;
    /* whole-number settings: fn_settings.c has their ranges and defaults */
    int64_t timeout_ms;
    int64_t memory_mb;
    int64_t max_concurrency;     /* workers of the current version at once */
    int64_t min_instances;       /* workers kept started, never reaped for idleness */
    int64_t max_queue;           /* calls waiting beyond capacity; FNSET_INHERIT = --max-queue */
    int64_t queue_timeout_ms;    /* longest wait for a worker */
    int64_t init_timeout_ms;     /* longest start: spawn to READY */
    int64_t keep_alive_s;        /* idle time before a worker stops; FNSET_INHERIT = --keep-alive */
    uint8_t network;             /* "network" (fn_network) */
    uint8_t adaptive_keep_alive; /* "keep_alive": "adaptive" — keepalive.c decides */
    /* "secrets": the names its workers read at /run/secrets/<name> */
    char secrets[VALIDATE_SECRETS_MAX][VALIDATE_SECRET_NAME_MAX + 1];
    unsigned nsecrets;
    uint8_t public_invoke; /* "auth": "none" — anyone may invoke it, without a token */
    /* asynchronous invocations (src/events/): whole numbers in fn_settings.c */
    int64_t async_retries;       /* attempts after the first */
    int64_t async_retry_base_ms; /* first backoff bound */
    int64_t async_max_age_s;     /* an event older than this is not tried again */
    int64_t async_max_queue;     /* events waiting or running at once */
    /* JSON-valued settings (fn_settings.c's fnset_json table), owned; NULL
     * when not set: "on_success", "on_failure" (strings), "subscriptions"
     * (array of topic names), "schedules" (array) */
    json_t *json_settings[FNSET_JSON_MAX];
    int64_t created_ms; /* when the function was first created */
    int64_t updated_ms; /* when this version was deployed */
    /* code_digest.h's "sha256:<hex>" of this version's unpacked code; ""
     * for versions deployed before digests existed */
    char digest[72];
    /* the stack that owns the function (POST /v1/stacks/{stack}), or "".
     * A function's, not a version's: registry_put never changes it. */
    char stack[FN_NAME_MAX + 1];
} fn_config;

void fn_config_release(fn_config *cfg);

/* After a struct copy (*dst = *src): takes references of the JSON values,
 * so dst and src are released apart. */
void fn_config_retain(fn_config *cfg);

/* Sets cfg's secrets from a list validate_secret_list accepted. */
void fn_config_set_secrets(fn_config *cfg, const json_t *list);

/* cfg's secrets as a new JSON array (NULL when out of memory). */
json_t *fn_config_secrets_json(const fn_config *cfg);

/* True when cfg lists the secret `name`. */
bool fn_config_lists_secret(const fn_config *cfg, const char *name);

/* Opens or creates the database at `path`, migrating its schema.
 * Returns 0 or a negative errno (-EIO for sqlite failures). */
int registry_open(const char *path, registry **out);

/* The user_version registry_open migrates to (hearthd check compares). */
int registry_schema_version(void);
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

/* The settings of `cfg` (everything but name, version, runtime, handler
 * and code) as canonical JSON text, keys sorted: two configs with equal
 * settings give equal text. malloc'd; NULL when out of memory. */
char *registry_encode_settings(const fn_config *cfg);

/* --- stacks --- */

/* One stack apply, in ONE durable transaction: puts[i] become new current
 * versions (as registry_put, each version latest + 1), every name in
 * `members` gets its stack set to `stack`, and every name in `deletes` is
 * deleted with its versions. Any failure rolls everything back. Returns 0,
 * -EEXIST (a version number moved under us), -EINVAL (a config
 * registry_put would refuse), -ENOENT (a delete of an unknown name),
 * -EBUSY, -ENOMEM, -EIO. puts[i]->created_ms is filled on success. */
int registry_stack_apply(registry *reg, const char *stack, fn_config *const *puts, size_t nputs,
                         const char *const *members, size_t nmembers, const char *const *deletes,
                         size_t ndeletes);

typedef int (*registry_stack_fn)(const char *stack, const char *function, void *ud);

/* Visits every function that belongs to a stack (only `stack`'s when not
 * NULL), ordered by stack then function name. Non-zero from the visitor
 * stops and is returned. */
int registry_stack_list(registry *reg, const char *stack, registry_stack_fn visit, void *ud);

/* --- versions, the current pointer and aliases (registry_versions.c) --- */

/* Makes `version` (a kept one) the current version of `name`: what an
 * unqualified call runs. Returns 0, -ENOENT (function or version), -EBUSY,
 * -EIO. */
int registry_set_current(registry *reg, const char *name, int64_t version);

/* Visits every kept version of `name`, newest first (configs borrowed for
 * the call; non-zero from the visitor stops and is returned). */
int registry_versions(registry *reg, const char *name, registry_visit_fn visit, void *ud);

/* Deletes the versions of `name` beyond the `keep` newest, except the
 * current one and any an alias points at. The deleted version numbers go
 * to deleted[] (at most `max`; the rest stay for the next prune), their
 * count to *ndeleted: the caller removes their code. 0, -EBUSY, -EIO. */
int registry_prune(registry *reg, const char *name, unsigned keep, int64_t *deleted, size_t max,
                   size_t *ndeleted);

#define FN_ALIAS_MAX            63
#define FN_ALIAS_EXTRA_MAX      4
#define FN_ALIAS_EXTRA_MAX_TEXT "4" /* for messages */

/* An alias: a name for a version of a function, with up to
 * FN_ALIAS_EXTRA_MAX other versions each taking a share of its calls
 * (0 < weight < 1, summed < 1; `version` takes the rest). */
typedef struct fn_alias {
    char function[FN_NAME_MAX + 1];
    char name[FN_ALIAS_MAX + 1];
    int64_t version;
    unsigned nextra;
    int64_t extra_version[FN_ALIAS_EXTRA_MAX];
    double extra_weight[FN_ALIAS_EXTRA_MAX];
    int64_t created_ms, updated_ms;
} fn_alias;

/* True for an alias name: [a-z][a-z0-9_-]{0,62}. */
bool registry_alias_name_valid(const char *name);

/* Creates or replaces a->name of a->function at a->updated_ms (created_ms
 * kept from the alias it replaces, else = updated_ms, filled in).
 * Returns 0, -ENOENT (the function or one of the versions is not kept),
 * -EINVAL (a bad name or weights), -EBUSY, -EIO. */
int registry_alias_put(registry *reg, fn_alias *a);
int registry_alias_get(registry *reg, const char *fn, const char *alias,
                       fn_alias *out);                                       /* 0, -ENOENT */
int registry_alias_delete(registry *reg, const char *fn, const char *alias); /* 0, -ENOENT */
typedef int (*registry_alias_fn)(const fn_alias *a, void *ud);
/* Visits the aliases of `fn` by name; non-zero from the visitor stops. */
int registry_alias_list(registry *reg, const char *fn, registry_alias_fn visit, void *ud);

/* True when some alias of `fn` points at `version` (its main version or a
 * weighted one), or when the aliases cannot be read (keep, to be safe). */
bool registry_version_aliased(registry *reg, const char *fn, int64_t version);

/* --- tokens and audit (registry_auth.c) --- */

#define REG_TOKEN_ID_LEN     16 /* hex */
#define REG_TOKEN_NAME_MAX   64
#define REG_TOKEN_HASH_LEN   32
#define REG_TOKEN_SCOPES_MAX 127 /* comma-separated scope words */
#define REG_TOKEN_GLOB_MAX   128
#define REG_TOKEN_SIGV4_LEN  (24 + 47 + 16) /* XChaCha20-Poly1305: nonce, a token, tag */

/* A bearer token as stored: never its secret, only a hash of it. Times in
 * unix ms; expires_ms and revoked_ms are 0 for never / not revoked. */
typedef struct registry_token {
    char id[REG_TOKEN_ID_LEN + 1];
    char name[REG_TOKEN_NAME_MAX + 1];
    unsigned char hash[REG_TOKEN_HASH_LEN];
    char scopes[REG_TOKEN_SCOPES_MAX + 1];
    char functions[REG_TOKEN_GLOB_MAX + 1];
    int64_t created_ms, expires_ms, revoked_ms;
    /* The secret sealed with the daemon's SigV4 key (auth.c; never the
     * secret itself): nonce, ciphertext, tag. has_sigv4 false for tokens
     * made before migration 3. */
    bool has_sigv4;
    unsigned char sigv4[REG_TOKEN_SIGV4_LEN];
} registry_token;

/* Stores a new token durably. Returns 0, -EEXIST when a token not revoked
 * already has its name (or its id or hash), -EBUSY, -EIO. */
int registry_token_add(registry *reg, const registry_token *t);

/* Marks token `id` revoked at `now_ms`. Returns 0, -ENOENT (unknown or
 * already revoked), -EBUSY, -EIO. */
int registry_token_revoke(registry *reg, const char *id, int64_t now_ms);

typedef int (*registry_token_fn)(const registry_token *t, void *ud);

/* Visits the tokens, oldest first (revoked ones too unless live_only).
 * The record is borrowed for the call; non-zero from the visitor stops and
 * is returned. */
int registry_token_list(registry *reg, bool live_only, registry_token_fn visit, void *ud);

#define REG_AUDIT_ACTION_MAX 31
#define REG_AUDIT_TARGET_MAX 127

/* One management action: who (a token's name and id), what, on what. */
typedef struct registry_audit {
    int64_t seq;   /* assigned when stored; grows with every record */
    int64_t at_ms; /* wall clock */
    char actor[REG_TOKEN_NAME_MAX + 1];
    char token_id[REG_TOKEN_ID_LEN + 1]; /* "" when no token did it */
    char action[REG_AUDIT_ACTION_MAX + 1];
    char target[REG_AUDIT_TARGET_MAX + 1];
} registry_audit;

/* Appends a record durably. Returns 0, -EBUSY, -EIO. */
int registry_audit_add(registry *reg, const registry_audit *a);

typedef int (*registry_audit_fn)(const registry_audit *a, void *ud);

/* Visits the `limit` newest records, newest first. */
int registry_audit_list(registry *reg, unsigned limit, registry_audit_fn visit, void *ud);

/* sqlite's PRAGMA data_version: changes when another connection (the
 * offline `hearthd token create`) commits. */
int registry_data_version(registry *reg, int64_t *out);

#endif
