/*
 * auth.h — bearer tokens: who may do what. A token is a random secret
 * ("hth_" + 43 base64url characters, 256 bits from getrandom) of which
 * only a BLAKE2b hash is stored (registry_auth.c) and kept in memory here,
 * so that checking a request hashes its header and looks the hash up: no
 * sqlite, no allocation. api.c asks auth_check in front of every route.
 */
#ifndef HEARTH_AUTH_H
#define HEARTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* What a token may do. AUTH_SCOPE_ADMIN is zero on purpose: a route whose
 * table entry forgets its scope asks for admin (fails closed). */
typedef enum auth_scope {
    AUTH_SCOPE_ADMIN,   /* everything, and the only scope that manages tokens and reads the audit */
    AUTH_SCOPE_DEPLOY,  /* create, update, delete functions */
    AUTH_SCOPE_INVOKE,  /* /v1/functions/{name}/invoke and /fn/{name}/ */
    AUTH_SCOPE_LOGS,    /* read a function's logs */
    AUTH_SCOPE_READ,    /* list and show functions and runtimes */
    AUTH_SCOPE_METRICS, /* /metrics */
    AUTH_SCOPE_COUNT,
    AUTH_SCOPE_PUBLIC = AUTH_SCOPE_COUNT /* a route that needs no token (/healthz) */
} auth_scope;

#define AUTH_PREFIX     "hth_"
#define AUTH_SECRET_LEN 47 /* the prefix + base64url (no padding) of 32 random bytes */
#define AUTH_ALL        "*"

typedef struct auth auth;

/* A token as the request path sees it (borrowed from the cache: valid
 * until the next auth_create, auth_revoke or auth_reload). */
typedef struct auth_token {
    char id[REG_TOKEN_ID_LEN + 1];
    char name[REG_TOKEN_NAME_MAX + 1];
    unsigned scopes; /* bit (1u << auth_scope) per scope */
    char functions[REG_TOKEN_GLOB_MAX + 1];
    bool all_functions; /* functions is "*": no fnmatch needed */
    int64_t expires_ms; /* 0 = never */
    unsigned char hash[REG_TOKEN_HASH_LEN];
    bool has_sigv4; /* the secret is sealed in sigv4 (tokens made since the AWS API) */
    unsigned char sigv4[REG_TOKEN_SIGV4_LEN];
} auth_token;

/* Opens the token cache over `reg` (which must outlive it), loading every
 * live token. With `off` (--no-auth) every check passes. Returns 0 or a
 * negative errno. */
int auth_open(registry *reg, bool off, auth **out);
void auth_free(auth *a); /* accepts NULL */
bool auth_off(const auth *a);

/* Reloads the cache from the registry (tokens created offline, SIGHUP). */
int auth_reload(auth *a);

/* Reloads only when another process (hearthd token create/revoke) changed
 * the registry: one cheap pragma. The daemon calls it every second, so an
 * offline revoke takes effect within that. */
void auth_refresh(auth *a);

typedef enum auth_verdict {
    AUTH_OK,
    AUTH_NO_TOKEN,    /* no Authorization: Bearer header: 401 */
    AUTH_BAD_TOKEN,   /* not a live token (unknown, revoked, expired, malformed): 401 */
    AUTH_NO_SCOPE,    /* a live token without the scope: 403 */
    AUTH_NO_FUNCTION, /* a live token whose functions glob does not match: 403 */
} auth_verdict;

/* Checks the Authorization header value `header` (NULL when absent) for
 * `need` on `function` (NULL when the route names none). *who is the token
 * when one was found live (also for the 403 verdicts), else NULL. */
auth_verdict auth_check(auth *a, const char *header, auth_scope need, const char *function,
                        const auth_token **who);

/* The verdict for a token already found (auth_check's second half; the
 * AWS API finds its token by access key id). */
auth_verdict auth_check_token(const auth_token *t, auth_scope need, const char *function);

/* --- AWS Signature Version 4 (aws_lambda.c) ---
 * SigV4 needs the secret itself on the verifying side, and the registry
 * keeps only a hash. So each token made while a SigV4 key is loaded also
 * has its secret sealed (XChaCha20-Poly1305, bound to the token's id and
 * hash) with a 32-byte key that only the daemon's data dir holds
 * (<data-dir>/sigv4.key, 0600). docs/security.md weighs this. */
#define AUTH_SIGV4_KEY_BYTES 32
#define AUTH_SIGV4_KEY_FILE  "sigv4.key"

/* Loads the key at `path`, creating it (random, 0600) when missing; from
 * then on new tokens are sealed. 0 or -errno (-EINVAL: wrong size). */
int auth_sigv4_key_load(auth *a, const char *path);

/* The live, unexpired token with id `id` (the access key id), or NULL.
 * Borrowed like auth_check's. */
const auth_token *auth_find_id(auth *a, const char *id);

/* Opens t's sealed secret into `secret` (caller zeroes it after use).
 * 0, -ENOKEY (a token made before sealing, or no key loaded), -EBADMSG
 * (the blob does not open: another key, or tampered). */
int auth_sigv4_secret(const auth *a, const auth_token *t, char secret[AUTH_SECRET_LEN + 1]);

/* True when the Authorization value `header` carries something in the
 * format of a Hearth token (live or not): such a header is never passed
 * on to a function. */
bool auth_is_token_header(const char *header);

/* True when token `t` may reach `function` (its glob matches). */
bool auth_function_allowed(const auth_token *t, const char *function);

/* The scope's word ("deploy"), or NULL. */
const char *auth_scope_name(auth_scope s);
/* The scope called `word`, or -1. */
int auth_scope_parse(const char *word, size_t len);
/* The scope words of `scopes` (a bit set), comma-separated, into dst. */
void auth_scopes_format(unsigned scopes, char *dst, size_t cap);

/* What a new token is to be. */
typedef struct auth_spec {
    const char *name;
    unsigned scopes;
    const char *functions; /* a glob over function names; NULL = all */
    bool expires;          /* false: the token never expires */
    int64_t expires_in_s;  /* when it does: 1..AUTH_EXPIRES_MAX_S */
} auth_spec;

#define AUTH_EXPIRES_MAX_S (10ll * 365 * 86400)

/* Checks a spec: 0, or -EINVAL with a sentence for the client in err. */
int auth_spec_check(const auth_spec *spec, char *err, size_t cap);
/* Checks a token name / a functions glob alone (same rules). */
bool auth_name_valid(const char *name);
bool auth_glob_valid(const char *glob);

/* Creates a token: stores its hash and caches it. secret receives the
 * token (shown once; never stored), *out the stored record. Returns 0,
 * -EINVAL (spec; see auth_spec_check), -EEXIST (a live token has that
 * name), -EIO. */
int auth_create(auth *a, const auth_spec *spec, char secret[AUTH_SECRET_LEN + 1],
                registry_token *out);

/* Revokes token `id`: the very next check with it fails. Returns 0,
 * -ENOENT (unknown or already revoked), -EIO. */
int auth_revoke(auth *a, const char *id);

/* The first admin token's file, in the data dir (hearthd writes it,
 * hearthd check checks its mode). */
#define ADMIN_TOKEN_FILE "admin-token"

/* At first start, when no live token exists: creates an admin token and
 * writes it to `path` (mode 0600, owned by whoever runs this), replacing
 * the file atomically. Returns 1 when it wrote one, 0 when tokens existed,
 * or a negative errno. */
int auth_bootstrap(auth *a, const char *path);

/* Appends an audit record: `actor` (a token's name, or what acted without
 * one: "no-auth", "hearthd") with token `token_id` ("" for none) did
 * `action` on `target`, now. Failures are logged, not returned: the action
 * itself has happened. */
void auth_audit(auth *a, const char *actor, const char *token_id, const char *action,
                const char *target);

#endif
