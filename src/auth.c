/*
 * auth.c — bearer tokens: making them, checking them, revoking them.
 *
 * A token is "hth_" + base64url of 32 bytes from getrandom(2). Only its
 * BLAKE2b-256 hash (libsodium's crypto_generichash) is stored, in the
 * registry's tokens table, and cached here in memory, keyed by the hash:
 * a check parses the header, hashes the presented secret, looks the hash
 * up, and compares it with sodium_memcmp. Constant time by construction:
 * the secret itself is never compared with anything; the lookup works on
 * a hash, whose bytes an attacker cannot steer toward a stored one (that
 * would be a preimage), so the time a lookup takes tells nothing about
 * any stored secret. A cache miss re-reads the registry only when another
 * process (the offline `hearthd token create`) has changed it.
 *
 * Owns: the scope table, the token format, the in-memory cache, the rules
 * of a valid token spec, the first-start admin token file. Must never:
 * store, log or return a secret after auth_create/auth_bootstrap hand it
 * over; allocate or query sqlite on a check that succeeds; know HTTP.
 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlog.h"
#include "secrets.h"
#include "strmap.h"
#include "timefmt.h"

#define SECRET_BYTES 32
#define ID_BYTES     (REG_TOKEN_ID_LEN / 2)
#define HEADER_MAX   256 /* a longer Authorization value is no token of ours: not even hashed */
#define HASH_HEX     (REG_TOKEN_HASH_LEN * 2 + 1)

_Static_assert(sizeof AUTH_PREFIX - 1 +
                       sodium_base64_ENCODED_LEN(SECRET_BYTES,
                                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING) -
                       1 ==
                   AUTH_SECRET_LEN,
               "AUTH_SECRET_LEN does not match the encoding");

/* The scopes, by auth_scope: what docs/api.md lists. */
static const char *const scope_names[AUTH_SCOPE_COUNT] = {
    [AUTH_SCOPE_ADMIN] = "admin", [AUTH_SCOPE_DEPLOY] = "deploy", [AUTH_SCOPE_INVOKE] = "invoke",
    [AUTH_SCOPE_LOGS] = "logs",   [AUTH_SCOPE_READ] = "read",     [AUTH_SCOPE_METRICS] = "metrics",
};

#define ALL_SCOPES ((1u << AUTH_SCOPE_COUNT) - 1)

struct auth {
    registry *reg;
    bool off;
    unsigned char *sigv4_key; /* sodium_malloc'd AUTH_SIGV4_KEY_BYTES, or NULL: no sealing */
    strmap by_hash;           /* hex of the hash -> auth_token (owned) */
    int64_t data_version;     /* the registry's, when the cache was loaded */
};

/* --- scopes --- */

const char *auth_scope_name(auth_scope s)
{
    return (unsigned)s < AUTH_SCOPE_COUNT ? scope_names[s] : NULL;
}

int auth_scope_parse(const char *word, size_t len)
{
    for (int i = 0; i < AUTH_SCOPE_COUNT; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], word, len) == 0)
            return i;
    return -1;
}

void auth_scopes_format(unsigned scopes, char *dst, size_t cap)
{
    size_t n = 0;
    dst[0] = '\0';
    for (int i = 0; i < AUTH_SCOPE_COUNT; i++)
        if (scopes & (1u << i)) {
            int w = snprintf(dst + n, cap - n, "%s%s", n ? "," : "", scope_names[i]);
            if (w < 0 || (size_t)w >= cap - n)
                return;
            n += (size_t)w;
        }
}

/* The bit set of a stored "deploy,invoke"; unknown words are dropped (a
 * newer build's scope grants nothing here). */
static unsigned scopes_parse_list(const char *list)
{
    unsigned bits = 0;
    while (*list) {
        size_t n = strcspn(list, ",");
        int s = auth_scope_parse(list, n);
        if (s >= 0)
            bits |= 1u << s;
        list += n + (list[n] == ',');
    }
    return bits;
}

/* --- the rules of a spec --- */

bool auth_name_valid(const char *name)
{
    size_t n = strnlen(name, REG_TOKEN_NAME_MAX + 1);
    if (n == 0 || n > REG_TOKEN_NAME_MAX || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return false;
    return true;
}

/* A glob over function names: their characters ([a-z0-9-]) and fnmatch's
 * * ? [...] [!...]; every bracket closed and not empty. */
bool auth_glob_valid(const char *glob)
{
    size_t n = strnlen(glob, REG_TOKEN_GLOB_MAX + 1);
    if (n == 0 || n > REG_TOKEN_GLOB_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = glob[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '*' || c == '?')
            continue;
        if (c != '[')
            return false;
        size_t j = i + 1 + (glob[i + 1] == '!');
        size_t start = j;
        for (; j < n && glob[j] != ']'; j++)
            if (!((glob[j] >= 'a' && glob[j] <= 'z') || (glob[j] >= '0' && glob[j] <= '9') ||
                  glob[j] == '-'))
                return false;
        if (j == n || j == start)
            return false;
        i = j;
    }
    return true;
}

int auth_spec_check(const auth_spec *spec, char *err, size_t cap)
{
    const char *fns = spec->functions ? spec->functions : AUTH_ALL;
    if (!spec->name || !auth_name_valid(spec->name))
        snprintf(err, cap, "name must match [A-Za-z0-9][A-Za-z0-9._-]{0,%d}",
                 REG_TOKEN_NAME_MAX - 1);
    else if (spec->scopes == 0 || (spec->scopes & ~ALL_SCOPES))
        snprintf(err, cap,
                 "scopes must list one or more of admin, deploy, invoke, logs, read, "
                 "metrics");
    else if (!auth_glob_valid(fns))
        snprintf(err, cap,
                 "functions must be a glob over function names, at most %d characters "
                 "of [a-z0-9-] and * ? [...] [!...]",
                 REG_TOKEN_GLOB_MAX);
    else if ((spec->scopes & (1u << AUTH_SCOPE_ADMIN)) && strcmp(fns, AUTH_ALL) != 0)
        snprintf(err, cap,
                 "an admin token cannot be limited to some functions (it can make "
                 "tokens for any): leave functions out");
    else if (spec->expires && (spec->expires_in_s < 1 || spec->expires_in_s > AUTH_EXPIRES_MAX_S))
        snprintf(err, cap, "expires_in_s must be a whole number of seconds from 1 to %lld",
                 (long long)AUTH_EXPIRES_MAX_S);
    else
        return 0;
    return -EINVAL;
}

/* --- the cache --- */

static void hash_hex(const unsigned char hash[REG_TOKEN_HASH_LEN], char hex[HASH_HEX])
{
    sodium_bin2hex(hex, HASH_HEX, hash, REG_TOKEN_HASH_LEN);
}

static int free_token(const char *key, void *value, void *ud)
{
    (void)key, (void)ud;
    free(value);
    return 0;
}

static void cache_clear(strmap *m)
{
    strmap_each(m, free_token, NULL);
    strmap_release(m);
    strmap_init(m);
}

/* Puts a stored token into `m`. 0 or -ENOMEM. */
static int cache_put(strmap *m, const registry_token *rt)
{
    auth_token *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    memcpy(t->id, rt->id, sizeof t->id);
    memcpy(t->name, rt->name, sizeof t->name);
    memcpy(t->functions, rt->functions, sizeof t->functions);
    memcpy(t->hash, rt->hash, sizeof t->hash);
    t->has_sigv4 = rt->has_sigv4;
    memcpy(t->sigv4, rt->sigv4, sizeof t->sigv4);
    t->scopes = scopes_parse_list(rt->scopes);
    t->all_functions = strcmp(t->functions, AUTH_ALL) == 0;
    t->expires_ms = rt->expires_ms;
    char key[HASH_HEX];
    hash_hex(t->hash, key);
    if (strmap_put(m, key, t) < 0) {
        free(t);
        return -ENOMEM;
    }
    return 0;
}

static int load_visit(const registry_token *rt, void *ud)
{
    return cache_put(ud, rt);
}

int auth_reload(auth *a)
{
    strmap fresh;
    strmap_init(&fresh);
    int64_t version = 0;
    int rc = registry_data_version(a->reg, &version);
    if (rc == 0)
        rc = registry_token_list(a->reg, true, load_visit, &fresh);
    if (rc < 0) {
        cache_clear(&fresh);
        strmap_release(&fresh);
        return rc;
    }
    cache_clear(&a->by_hash);
    strmap_release(&a->by_hash);
    a->by_hash = fresh;
    a->data_version = version;
    return 0;
}

int auth_open(registry *reg, bool off, auth **out)
{
    *out = NULL;
    if (sodium_init() < 0)
        return -EIO;
    auth *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->reg = reg;
    a->off = off;
    strmap_init(&a->by_hash);
    int rc = auth_reload(a);
    if (rc < 0) {
        auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    cache_clear(&a->by_hash);
    strmap_release(&a->by_hash);
    sodium_free(a->sigv4_key);
    free(a);
}

bool auth_off(const auth *a)
{
    return a->off;
}

/* --- checking --- */

/* The token of an Authorization value "Bearer <token>" (scheme in any
 * case, RFC 7235), or NULL; *len its length. Only the format is checked:
 * prefix and length are public, so refusing on them early leaks nothing. */
static const char *bearer_token(const char *header, size_t *len)
{
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *p = header + 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strnlen(p, HEADER_MAX);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n != AUTH_SECRET_LEN || memcmp(p, AUTH_PREFIX, sizeof AUTH_PREFIX - 1) != 0)
        return NULL;
    *len = n;
    return p;
}

/* True when another process has changed the registry since the load. */
static bool registry_changed(auth *a)
{
    int64_t v;
    return registry_data_version(a->reg, &v) == 0 && v != a->data_version;
}

void auth_refresh(auth *a)
{
    if (registry_changed(a) && auth_reload(a) < 0)
        dlog_warn("tokens: could not re-read them from the registry; keeping those known");
}

static const auth_token *lookup(auth *a, const char *header)
{
    size_t len;
    const char *secret = bearer_token(header, &len);
    if (!secret)
        return NULL;
    unsigned char hash[REG_TOKEN_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)secret, len, NULL, 0);
    char key[HASH_HEX];
    hash_hex(hash, key);
    const auth_token *t = strmap_get(&a->by_hash, key);
    if (!t && registry_changed(a) && auth_reload(a) == 0)
        t = strmap_get(&a->by_hash, key);
    if (!t || sodium_memcmp(t->hash, hash, sizeof hash) != 0)
        return NULL;
    if (t->expires_ms && timefmt_now_ms() >= t->expires_ms)
        return NULL;
    return t;
}

bool auth_is_token_header(const char *header)
{
    if (!header || strncasecmp(header, "Bearer", 6) != 0)
        return false;
    const char *p = header + 6;
    while (*p == ' ' || *p == '\t')
        p++;
    return strncmp(p, AUTH_PREFIX, sizeof AUTH_PREFIX - 1) == 0;
}

bool auth_function_allowed(const auth_token *t, const char *function)
{
    if (t->all_functions || (t->scopes & (1u << AUTH_SCOPE_ADMIN)))
        return true;
    return fnmatch(t->functions, function, 0) == 0;
}

auth_verdict auth_check(auth *a, const char *header, auth_scope need, const char *function,
                        const auth_token **who)
{
    *who = NULL;
    if (a->off || need >= AUTH_SCOPE_PUBLIC)
        return AUTH_OK;
    if (!header)
        return AUTH_NO_TOKEN;
    const auth_token *t = lookup(a, header);
    if (!t)
        return AUTH_BAD_TOKEN;
    *who = t;
    return auth_check_token(t, need, function);
}

auth_verdict auth_check_token(const auth_token *t, auth_scope need, const char *function)
{
    if (need >= AUTH_SCOPE_PUBLIC)
        return AUTH_OK;
    if (t->scopes & (1u << AUTH_SCOPE_ADMIN))
        return AUTH_OK;
    if (need == AUTH_SCOPE_ADMIN || !(t->scopes & (1u << need)))
        return AUTH_NO_SCOPE;
    if (function && !auth_function_allowed(t, function))
        return AUTH_NO_FUNCTION;
    return AUTH_OK;
}

/* --- making and revoking --- */

/* Fills `buf` from getrandom(2) (blocks only until the kernel's pool is
 * first initialised, at boot). */
static int random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The additional data a sealed secret is bound to: its token's id and
 * hash, so a sealed blob copied onto another row does not open. */
static void seal_ad(const char *id, const unsigned char hash[REG_TOKEN_HASH_LEN],
                    unsigned char ad[REG_TOKEN_ID_LEN + REG_TOKEN_HASH_LEN])
{
    memcpy(ad, id, REG_TOKEN_ID_LEN);
    memcpy(ad + REG_TOKEN_ID_LEN, hash, REG_TOKEN_HASH_LEN);
}

/* Seals the new token's secret into rt->sigv4 when a key is loaded. */
static int seal_secret(const auth *a, const char *secret, registry_token *rt)
{
    if (!a->sigv4_key)
        return 0;
    unsigned char *nonce = rt->sigv4, ad[REG_TOKEN_ID_LEN + REG_TOKEN_HASH_LEN];
    int rc = random_bytes(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (rc < 0)
        return rc;
    seal_ad(rt->id, rt->hash, ad);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        rt->sigv4 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL,
        (const unsigned char *)secret, AUTH_SECRET_LEN, ad, sizeof ad, NULL, nonce, a->sigv4_key);
    rt->has_sigv4 = true;
    return 0;
}

/* A new secret and the record that stores its hash (and, with a SigV4
 * key, the secret sealed); nothing is stored. */
static int make_token(const auth *a, const auth_spec *spec, char secret[AUTH_SECRET_LEN + 1],
                      registry_token *rt)
{
    unsigned char raw[SECRET_BYTES], id[ID_BYTES];
    int rc = random_bytes(raw, sizeof raw);
    if (rc == 0)
        rc = random_bytes(id, sizeof id);
    if (rc < 0)
        return rc;
    memset(rt, 0, sizeof *rt);
    memcpy(secret, AUTH_PREFIX, sizeof AUTH_PREFIX - 1);
    sodium_bin2base64(secret + sizeof AUTH_PREFIX - 1, AUTH_SECRET_LEN + 2 - sizeof AUTH_PREFIX,
                      raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    crypto_generichash(rt->hash, sizeof rt->hash, (const unsigned char *)secret, AUTH_SECRET_LEN,
                       NULL, 0);
    sodium_bin2hex(rt->id, sizeof rt->id, id, sizeof id);
    snprintf(rt->name, sizeof rt->name, "%s", spec->name);
    auth_scopes_format(spec->scopes, rt->scopes, sizeof rt->scopes);
    snprintf(rt->functions, sizeof rt->functions, "%s",
             spec->functions ? spec->functions : AUTH_ALL);
    rt->created_ms = timefmt_now_ms();
    rt->expires_ms = spec->expires ? rt->created_ms + spec->expires_in_s * 1000 : 0;
    return seal_secret(a, secret, rt);
}

/* Stores and caches a made token. */
static int store_token(auth *a, const registry_token *rt)
{
    int rc = registry_token_add(a->reg, rt);
    if (rc == 0 && cache_put(&a->by_hash, rt) < 0)
        rc = auth_reload(a); /* stored but not cached: the registry is the truth */
    return rc;
}

int auth_create(auth *a, const auth_spec *spec, char secret[AUTH_SECRET_LEN + 1],
                registry_token *out)
{
    char err[256];
    if (auth_spec_check(spec, err, sizeof err) < 0)
        return -EINVAL;
    int rc = make_token(a, spec, secret, out);
    if (rc == 0)
        rc = store_token(a, out);
    if (rc < 0)
        sodium_memzero(secret, AUTH_SECRET_LEN + 1);
    return rc;
}

struct find_id {
    const char *id;
    char key[HASH_HEX];
};

static int find_id_visit(const char *key, void *value, void *ud)
{
    struct find_id *f = ud;
    if (strcmp(((auth_token *)value)->id, f->id) != 0)
        return 0;
    snprintf(f->key, sizeof f->key, "%s", key);
    return 1;
}

int auth_revoke(auth *a, const char *id)
{
    int rc = registry_token_revoke(a->reg, id, timefmt_now_ms());
    if (rc < 0)
        return rc;
    struct find_id f = {.id = id};
    if (strmap_each(&a->by_hash, find_id_visit, &f) == 1)
        free(strmap_remove(&a->by_hash, f.key));
    return 0;
}

/* --- AWS Signature Version 4: the secret, sealed --- */

_Static_assert(REG_TOKEN_SIGV4_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                          AUTH_SECRET_LEN +
                                          crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "REG_TOKEN_SIGV4_LEN does not match the sealing");
_Static_assert(AUTH_SIGV4_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "AUTH_SIGV4_KEY_BYTES does not match the cipher");

/* Creates the key file (0600, new, synced). 0 or -errno; -EEXIST when
 * another process made it first. */
static int create_key_file(const char *path)
{
    unsigned char key[AUTH_SIGV4_KEY_BYTES];
    int rc = random_bytes(key, sizeof key);
    int fd = rc == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (fd >= 0 && (fchmod(fd, 0600) < 0 || write(fd, key, sizeof key) != (ssize_t)sizeof key ||
                    fsync(fd) < 0))
        rc = errno ? -errno : -EIO;
    sodium_memzero(key, sizeof key);
    if (fd >= 0)
        close(fd);
    if (rc < 0 && rc != -EEXIST && fd >= 0)
        unlink(path);
    return rc;
}

int auth_sigv4_key_load(auth *a, const char *path)
{
    unsigned char *key = sodium_malloc(AUTH_SIGV4_KEY_BYTES);
    if (!key)
        return -ENOMEM;
    int rc = secrets_read_file(AT_FDCWD, path, key, AUTH_SIGV4_KEY_BYTES);
    if (rc == -ENOENT) {
        rc = create_key_file(path);
        if (rc == 0 || rc == -EEXIST)
            rc = secrets_read_file(AT_FDCWD, path, key, AUTH_SIGV4_KEY_BYTES);
    }
    if (rc < 0) {
        sodium_free(key);
        return rc;
    }
    sodium_mprotect_readonly(key);
    sodium_free(a->sigv4_key);
    a->sigv4_key = key;
    return 0;
}

struct by_id {
    const char *id;
    const auth_token *found;
};

static int by_id_visit(const char *key, void *value, void *ud)
{
    (void)key;
    struct by_id *b = ud;
    if (strcmp(((auth_token *)value)->id, b->id) != 0)
        return 0;
    b->found = value;
    return 1;
}

const auth_token *auth_find_id(auth *a, const char *id)
{
    struct by_id b = {.id = id};
    if (strlen(id) != REG_TOKEN_ID_LEN)
        return NULL;
    if (strmap_each(&a->by_hash, by_id_visit, &b) != 1 && registry_changed(a) &&
        auth_reload(a) == 0)
        strmap_each(&a->by_hash, by_id_visit, &b);
    const auth_token *t = b.found;
    if (t && t->expires_ms && timefmt_now_ms() >= t->expires_ms)
        return NULL;
    return t;
}

int auth_sigv4_secret(const auth *a, const auth_token *t, char secret[AUTH_SECRET_LEN + 1])
{
    if (!a->sigv4_key || !t->has_sigv4)
        return -ENOKEY;
    unsigned char ad[REG_TOKEN_ID_LEN + REG_TOKEN_HASH_LEN];
    seal_ad(t->id, t->hash, ad);
    unsigned long long n;
    const size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)secret, &n, NULL,
                                                   t->sigv4 + npub, REG_TOKEN_SIGV4_LEN - npub, ad,
                                                   sizeof ad, t->sigv4, a->sigv4_key) != 0 ||
        n != AUTH_SECRET_LEN) {
        sodium_memzero(secret, AUTH_SECRET_LEN + 1);
        return -EBADMSG;
    }
    secret[AUTH_SECRET_LEN] = '\0';
    /* The hash must match too: a key that opens another token's blob is
     * refused even if the AEAD binding were ever weakened. */
    unsigned char hash[REG_TOKEN_HASH_LEN];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)secret, AUTH_SECRET_LEN, NULL, 0);
    if (sodium_memcmp(hash, t->hash, sizeof hash) != 0) {
        sodium_memzero(secret, AUTH_SECRET_LEN + 1);
        return -EBADMSG;
    }
    return 0;
}

/* --- the first start --- */

struct live_count {
    int64_t now;
    unsigned n;
};

static int live_visit(const char *key, void *value, void *ud)
{
    (void)key;
    struct live_count *lc = ud;
    const auth_token *t = value;
    if (!t->expires_ms || t->expires_ms > lc->now)
        lc->n++;
    return 0;
}

/* Writes `secret` and a newline to path's temporary twin, mode 0600, synced. */
static int write_secret_file(const char *tmp, const char *secret)
{
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char line[AUTH_SECRET_LEN + 2];
    int n = snprintf(line, sizeof line, "%s\n", secret);
    int rc = 0;
    if (fchmod(fd, 0600) < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0)
        rc = errno ? -errno : -EIO;
    sodium_memzero(line, sizeof line);
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int auth_bootstrap(auth *a, const char *path)
{
    struct live_count lc = {.now = timefmt_now_ms()};
    strmap_each(&a->by_hash, live_visit, &lc);
    if (lc.n > 0)
        return 0;
    char tmp[4096], secret[AUTH_SECRET_LEN + 1], name[REG_TOKEN_NAME_MAX + 1] = "admin";
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return -ENAMETOOLONG;
    registry_token rt;
    auth_spec spec = {.name = name, .scopes = 1u << AUTH_SCOPE_ADMIN};
    int rc = make_token(a, &spec, secret, &rt);
    if (rc == 0)
        rc = write_secret_file(tmp, secret);
    sodium_memzero(secret, sizeof secret);
    if (rc < 0)
        return rc;
    rc = store_token(a, &rt);
    if (rc == -EEXIST) { /* an expired token still holds the name */
        snprintf(rt.name, sizeof rt.name, "admin-%s", rt.id);
        rc = store_token(a, &rt);
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        rc = -errno;
        auth_revoke(a, rt.id);
    }
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    char target[REG_AUDIT_TARGET_MAX + 1];
    snprintf(target, sizeof target, "%s (%s)", rt.name, rt.id);
    auth_audit(a, "hearthd", "", "token_create", target);
    return 1;
}

/* --- audit --- */

void auth_audit(auth *a, const char *actor, const char *token_id, const char *action,
                const char *target)
{
    registry_audit r = {.at_ms = timefmt_now_ms()};
    snprintf(r.actor, sizeof r.actor, "%s", actor);
    snprintf(r.token_id, sizeof r.token_id, "%s", token_id);
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.target, sizeof r.target, "%s", target);
    int rc = registry_audit_add(a->reg, &r);
    if (rc < 0)
        dlog_error("audit: could not record %s %s by %s: %s", action, target, actor, strerror(-rc));
}
