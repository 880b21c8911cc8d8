/*
 * deploy.c — turning a PUT into a new version.
 *
 * On the threadpool (deploy_work): parse and check the settings, decode
 * and unpack the package into a private staging folder, fsync it and
 * digest it (code_digest.h). That step is a deploy_unit's, shared with a
 * stack apply (stacks.c), which runs it once per function. On the
 * loop (deploy_after): pick the next version number, rename the staging
 * folder to <code>/<name>/<version>, record the version in the registry
 * (the durable commit point: only then is the client answered) together
 * with its routes in the route table (a route another function holds
 * refuses the deploy, 409, before anything is recorded), and tell the
 * scheduler. Any failure before the registry commit removes what was
 * written, so the previous version keeps serving.
 *
 * Owns: staging folders, code folders. Must never: touch the registry or
 * the scheduler from the threadpool, nor know HTTP: it takes the body and
 * parameters as bytes and ends in a deploy_result its caller renders.
 */
#include "deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "code_digest.h"
#include "decimal.h"
#include "dlog.h"
#include "fsutil.h"
#include "events/events.h"
#include "events/routes.h"
#include "package.h"
#include "fn_settings.h"
#include "paths.h"
#include "runtimes.h"
#include "safetext.h"
#include "secrets.h"
#include "timefmt.h"
#include "validate.h"

/* The settings of a raw-archive PUT, copied from the query on the loop. */
typedef struct deploy_query {
    char *runtime, *handler, *secrets;
    char *choice[FNSET_CHOICE_COUNT]; /* the two-word settings, by table index */
    char *ints[FNSET_INT_COUNT];      /* the whole-number settings, by table index */
    char unknown[64];
    char bad[64];  /* a query parameter with a NUL byte, printable */
    char json[64]; /* a JSON deploy's first query parameter: it would be ignored */
    bool oom;      /* a setting could not be copied: the deploy fails, 500 */
} deploy_query;

struct deploy_job {
    uv_work_t work;
    void *ctx;        /* the caller's, handed to done */
    const char *body; /* borrowed: the caller keeps it until done */
    size_t len;
    bool raw;
    deploy_query q;
    deploy_unit u;
    json_t *doc;         /* deploy_start_doc: the settings document (owned) */
    deploy_done_fn done; /* how the caller answers */
};

static int refuse(deploy_unit *u, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records an error for the client. Returns -1 so callers can `return refuse(…)`. */
static int refuse(deploy_unit *u, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->message, sizeof u->message, fmt, ap);
    va_end(ap);
    u->status = status;
    u->code = code;
    return -1;
}

/* --- base64 --- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int deploy_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
    unsigned char *o = malloc(len / 4 * 3 + 3);
    if (!o)
        return -ENOMEM;
    size_t n = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            free(o);
            return -EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6) {
        free(o);
        return -EINVAL;
    }
    *out = o;
    *outlen = n;
    return 0;
}

/* --- settings --- */

/* A wrong setting is a wrong field of a JSON body, or a wrong query
 * parameter of a raw-archive deploy, as docs/api.md's table names them. */
static const char *bad_setting(const deploy_unit *u)
{
    return u->from_query ? "invalid_query" : "invalid_field";
}

static int check_runtime(deploy_unit *u, const char *runtime, const char *handler)
{
    if (!runtime || !*runtime)
        return refuse(u, 400, bad_setting(u), "runtime is required (see GET /v1/runtimes)");
    const runtime_info *rt = runtimes_find(runtime);
    if (!rt)
        return refuse(u, 400, "unsupported_runtime",
                      "unknown runtime '%.40s'; GET /v1/runtimes lists them", runtime);
    if (!rt->usable)
        return refuse(u, 400, "unsupported_runtime", "runtime %s cannot run here: %s", rt->name,
                      rt->reason);
    char err[512];
    if (!handler || !*handler)
        return refuse(u, 400, bad_setting(u), "handler is required: for %s, %s", rt->name,
                      rt->handler_hint);
    /* The runtime's own rule first: it says what the handler should be
     * (exec's "/bin/sh" is told to ship a script, not that it is missing). */
    if (runtimes_check_handler(runtime, handler, err, sizeof err) < 0)
        return refuse(u, 400, bad_setting(u), "%s", err);
    if (!validate_handler(handler))
        return refuse(u, 400, bad_setting(u),
                      "handler must be printable ASCII without spaces, with no leading '/' and no "
                      "'..' part: for %s, %s",
                      rt->name, rt->handler_hint);
    snprintf(u->cfg.runtime, sizeof u->cfg.runtime, "%s", runtime);
    snprintf(u->cfg.handler, sizeof u->cfg.handler, "%s", handler);
    return 0;
}

static int check_range(deploy_unit *u, const char *field, json_int_t v, json_int_t lo,
                       json_int_t hi, int64_t *out)
{
    if (v < lo || v > hi)
        return refuse(u, 400, bad_setting(u), "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int check_int_field(deploy_unit *u, json_t *v, const char *field, json_int_t lo,
                           json_int_t hi, int64_t *out)
{
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return refuse(u, 400, "invalid_field", "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    return check_range(u, field, json_integer_value(v), lo, hi, out);
}

static int check_query_int(deploy_unit *u, const char *s, const char *field, json_int_t lo,
                           json_int_t hi, int64_t *out)
{
    if (!s)
        return 0;
    /* No setting is negative: a sign is as wrong as any other byte. */
    uint64_t v;
    if (!decimal_parse(s, INT64_MAX, &v))
        return refuse(u, 400, "invalid_query", "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    return check_range(u, field, (json_int_t)v, lo, hi, out);
}

/* Every two-word setting given (network, keep_alive), from the JSON body
 * or, without one, the query. */
static int check_choices(deploy_unit *u, json_t *doc, const deploy_query *q)
{
    size_t n;
    const fnset_choice *t = fnset_choices(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = doc ? json_object_get(doc, t[i].name) : NULL;
        const char *word = doc ? json_string_value(v) : q->choice[i];
        if ((doc && !v) || (!doc && !word))
            continue;
        if (!word || fnset_choose(&u->cfg, &t[i], word) < 0) {
            char words[128];
            fnset_words_phrase(&t[i], words, sizeof words);
            return refuse(u, 400, bad_setting(u), "%s must be %s", t[i].name, words);
        }
    }
    return 0;
}

/* Every JSON-valued setting given (on_success, subscriptions, routes, ...),
 * each checked by its row's own rule; whether "routes" collide with another
 * function's is checked on the loop, at the commit (install). JSON bodies
 * only: a query cannot carry a list. A null value is the same as leaving
 * the setting out. */
static int check_json_settings(deploy_unit *u, json_t *doc)
{
    size_t n;
    const fnset_json *t = fnset_jsons(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        char err[512] = "";
        if (!v || json_is_null(v))
            continue;
        int rc = t[i].check(v, err, sizeof err);
        if (rc == -ENOMEM)
            return refuse(u, 500, "internal_error", "out of memory");
        if (rc < 0) /* a message may name the field itself */
            return strncmp(err, t[i].name, strlen(t[i].name)) == 0
                       ? refuse(u, 400, "invalid_field", "%s", err)
                       : refuse(u, 400, "invalid_field", "%s: %s", t[i].name, err);
        u->cfg.json_settings[i] = json_deep_copy(v);
        if (!u->cfg.json_settings[i])
            return refuse(u, 500, "internal_error", "out of memory");
    }
    return 0;
}

/* --- packages --- */

static int make_staging(deploy_unit *u)
{
    if (path_format(u->staging, sizeof u->staging, "%s/deploy-XXXXXX", u->h->staging_root) ||
        !mkdtemp(u->staging)) {
        u->staging[0] = '\0';
        return refuse(u, 500, "internal_error", "could not create a staging folder: %s",
                      strerror(errno));
    }
    return 0;
}

static int package_result(deploy_unit *u, int rc, const char *err)
{
    if (rc == -EINVAL)
        return refuse(u, 400, "invalid_package", "%s", err[0] ? err : "the package is invalid");
    if (rc == -ENOSPC || rc == -EDQUOT)
        return refuse(u, 507, "insufficient_storage",
                      "the data directory is full: the package was not stored");
    if (rc < 0)
        return refuse(u, 500, "internal_error", "could not store the package: %s", strerror(-rc));
    return 0;
}

static int unpack_bytes(deploy_unit *u, const void *data, size_t len)
{
    if (len > PACKAGE_MAX_COMPRESSED)
        return refuse(u, 400, "invalid_package",
                      "the package is %zu bytes; at most %u are accepted", len,
                      PACKAGE_MAX_COMPRESSED);
    if (make_staging(u) < 0)
        return -1;
    char err[512] = "";
    int rc = package_unpack_archive(data, len, u->staging, &u->lim, err, sizeof err);
    return package_result(u, rc, err);
}

static int unpack_json_package(deploy_unit *u, json_t *files, json_t *archive, bool stack)
{
    if (stack && !archive)
        return refuse(u, 400, "invalid_field",
                      "code is required: a base64 .tar.gz or .zip of the function's folder");
    if (!files == !archive)
        return refuse(u, 400, "invalid_field", "give exactly one of files or archive");
    if (files) {
        if (!json_is_object(files))
            return refuse(u, 400, "invalid_field", "files must be an object of path to text");
        if (make_staging(u) < 0)
            return -1;
        char err[512] = "";
        return package_result(u, package_write_files(files, u->staging, &u->lim, err, sizeof err),
                              err);
    }
    const char *field = stack ? "code" : "archive";
    if (!json_is_string(archive))
        return refuse(u, 400, "invalid_field", "%s must be a base64 string", field);
    unsigned char *bytes;
    size_t n;
    int rc =
        deploy_base64_decode(json_string_value(archive), json_string_length(archive), &bytes, &n);
    if (rc == -EINVAL)
        return refuse(u, 400, "invalid_package", "%s is not valid base64", field);
    if (rc < 0)
        return refuse(u, 500, "internal_error", "out of memory");
    rc = unpack_bytes(u, bytes, n);
    free(bytes);
    return rc;
}

/* Every whole-number setting the body gives, checked against its range;
 * then the settings against each other. */
static int check_int_fields(deploy_unit *u, json_t *doc, const deploy_query *q)
{
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++) {
        const char *name = t[i].name;
        int rc = doc ? check_int_field(u, json_object_get(doc, name), name, t[i].min, t[i].max,
                                       fnset_field(&u->cfg, &t[i]))
                     : check_query_int(u, q->ints[i], name, t[i].min, t[i].max,
                                       fnset_field(&u->cfg, &t[i]));
        if (rc < 0)
            return rc;
    }
    char err[160];
    if (fnset_check_together(&u->cfg, err, sizeof err) < 0)
        return refuse(u, 400, bad_setting(u), "%s", err);
    return 0;
}

/* The "secrets" list, names only: whether each exists is checked on the
 * loop, at the commit (secrets_missing), where DELETE cannot slip in. */
static int take_secrets(deploy_unit *u, const json_t *list)
{
    char err[160];
    if (validate_secret_list(list, err, sizeof err) < 0)
        return refuse(u, 400, bad_setting(u), "%s", err);
    fn_config_set_secrets(&u->cfg, list);
    return 0;
}

/* ?secrets=a,b (the raw-archive form): the same list, comma-separated. */
static int take_query_secrets(deploy_unit *u, const deploy_query *q)
{
    json_t *list = json_array();
    char *copy = strdup(q->secrets), *save = NULL;
    int rc = list && copy ? 0 : refuse(u, 500, "internal_error", "out of memory");
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && t;
         t = strtok_r(NULL, ",", &save))
        json_array_append_new(list, json_string_nocheck(t));
    if (rc == 0)
        rc = take_secrets(u, list);
    free(copy);
    json_decref(list);
    return rc;
}

static bool is_setting(const char *key)
{
    return fnset_find(key) || fnset_find_choice(key) || fnset_json_index(key) >= 0;
}

/* Makes the staged code readable by workers and durable, and digests it. */
static int seal_staging(deploy_unit *u)
{
    if (chmod(u->staging, 0755) < 0)
        return refuse(u, 500, "internal_error", "could not seal the package: %s", strerror(errno));
    int rc = code_digest_tree(u->staging, u->cfg.digest, &u->unpacked);
    if (rc == -EINVAL) /* package.c never writes a device or a fifo */
        return refuse(u, 400, "invalid_package", "the package holds an entry of an odd type");
    if (rc < 0)
        return refuse(u, 500, "internal_error", "could not digest the package: %s", strerror(-rc));
    int fd = open(u->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return refuse(u, 500, "internal_error", "could not sync the package: %s", strerror(err));
    }
    close(fd);
    return 0;
}

/* The defaults every deploy starts from; after a failure, the staging
 * folder removed. */
void deploy_unit_init(deploy_unit *u, hearth *h, const char *name)
{
    memset(u, 0, sizeof *u);
    u->h = h;
    snprintf(u->name, sizeof u->name, "%s", name);
    package_limits_default(&u->lim);
    fnset_defaults(&u->cfg);
    u->cfg.network = h->set.default_network; /* a RESTART option: not changed under us */
}

/* Seals and digests after a successful parse; removes the staging folder
 * after a failure; env is always an object. */
static int unit_finish(deploy_unit *u, int rc)
{
    if (rc == 0)
        rc = seal_staging(u);
    if (rc < 0 && u->staging[0]) {
        fsutil_remove_tree(u->staging);
        u->staging[0] = '\0';
    }
    if (!u->cfg.env)
        u->cfg.env = json_object();
    if (rc == 0 && !u->cfg.env)
        rc = refuse(u, 500, "internal_error", "out of memory");
    return rc;
}

/* The package of a version already installed, copied (deploy_start_doc). */
static int copy_code(deploy_unit *u)
{
    char src[PATH_MAX];
    if (path_format(src, sizeof src, "%s/%s/%" PRId64, u->h->code_root, u->name, u->code_from))
        return refuse(u, 500, "internal_error", "the data dir path is too long");
    if (make_staging(u) < 0)
        return -1;
    int rc = package_copy_tree(src, u->staging);
    if (rc < 0)
        return refuse(u, 500, "internal_error",
                      "could not copy the code of version %" PRId64 ": %s", u->code_from,
                      strerror(-rc));
    return 0;
}

int deploy_unit_from_json(deploy_unit *u, json_t *doc, bool stack)
{
    static const char *const known[] = {"runtime", "handler", "files", "archive", "env", "secrets"};
    static const char *const known_in_stack[] = {"runtime", "handler", "code", "env", "secrets"};
    if (!json_is_object(doc))
        return unit_finish(u, refuse(u, 400, "invalid_field", "the settings must be an object"));
    const char *key =
        stack ? validate_unknown_key(doc, known_in_stack,
                                     sizeof known_in_stack / sizeof *known_in_stack, is_setting)
              : validate_unknown_key(doc, known, sizeof known / sizeof *known, is_setting);
    if (key)
        return unit_finish(u, refuse(u, 400, "unknown_field", "unknown field '%.60s'", key));
    int rc = check_runtime(u, json_string_value(json_object_get(doc, "runtime")),
                           json_string_value(json_object_get(doc, "handler")));
    if (rc == 0)
        rc = check_int_fields(u, doc, NULL);
    if (rc == 0)
        rc = check_choices(u, doc, NULL);
    if (rc == 0)
        rc = check_json_settings(u, doc);
    json_t *env = json_object_get(doc, "env");
    if (rc == 0 && env) {
        char err[256] = "";
        if (validate_env(env, err, sizeof err) < 0)
            rc = refuse(u, 400, "invalid_field", "%s", err);
        else
            u->cfg.env = json_deep_copy(env);
    }
    json_t *secrets = json_object_get(doc, "secrets");
    if (rc == 0 && secrets)
        rc = take_secrets(u, secrets);
    if (rc == 0 && u->code_from > 0)
        rc = copy_code(u);
    else if (rc == 0)
        rc = stack ? unpack_json_package(u, NULL, json_object_get(doc, "code"), true)
                   : unpack_json_package(u, json_object_get(doc, "files"),
                                         json_object_get(doc, "archive"), false);
    return unit_finish(u, rc);
}

/* The Content-Type a body that is not JSON should have come with, when it
 * starts like an archive (curl --data-binary @f.tar.gz without -H sends
 * application/x-www-form-urlencoded, which reads as JSON), or NULL. */
static const char *archive_type_of(const char *body, size_t len)
{
    const unsigned char *b = (const unsigned char *)body;
    if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return "application/gzip";
    if (len >= 4 && b[0] == 'P' && b[1] == 'K' && (b[2] == 3 || b[2] == 5) && b[3] == b[2] + 1)
        return "application/zip";
    if (len >= 262 && memcmp(b + 257, "ustar", 5) == 0)
        return "application/x-tar";
    return NULL;
}

static int parse_raw_body(deploy_job *j)
{
    deploy_unit *u = &j->u;
    const deploy_query *q = &j->q;
    if (q->oom)
        return refuse(u, 500, "internal_error", "out of memory");
    if (q->bad[0])
        return refuse(u, 400, "invalid_query", "query parameter '%s' holds a NUL byte", q->bad);
    const char *k = q->unknown;
    if (*k && (strcmp(k, "env") == 0 || strcmp(k, "files") == 0 || strcmp(k, "archive") == 0 ||
               fnset_json_index(k) >= 0))
        return refuse(u, 400, "invalid_query",
                      "%s cannot be a query parameter: send a JSON body (Content-Type: "
                      "application/json) with \"%s\" and the package as \"archive\", its "
                      "base64 (docs/api.md)",
                      k, k);
    if (*k)
        return refuse(u, 400, "invalid_query",
                      "unknown query parameter '%s'; a package deploy takes runtime, handler, "
                      "secrets and the settings of docs/api.md",
                      k);
    int rc = check_runtime(u, q->runtime, q->handler);
    if (rc == 0)
        rc = check_int_fields(u, NULL, q);
    if (rc == 0)
        rc = check_choices(u, NULL, q);
    if (rc == 0 && q->secrets)
        rc = take_query_secrets(u, q);
    if (rc == 0)
        rc = unpack_bytes(u, j->body, j->len);
    return rc;
}

static void deploy_work(uv_work_t *w)
{
    deploy_job *j = w->data;
    if (j->doc) {
        deploy_unit_from_json(&j->u, j->doc, false);
        return;
    }
    if (j->raw) {
        unit_finish(&j->u, parse_raw_body(j));
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(j->body, j->len, 0, &jerr);
    const char *type = json_is_object(doc) ? NULL : archive_type_of(j->body, j->len);
    if (type)
        unit_finish(&j->u, refuse(&j->u, 400, "invalid_json",
                                  "the body is an archive, but came without its Content-Type, so "
                                  "it was read as JSON settings: send it with -H 'Content-Type: "
                                  "%s' and the settings as query parameters "
                                  "(?runtime=...&handler=...)",
                                  type));
    else if (!json_is_object(doc))
        unit_finish(&j->u, refuse(&j->u, 400, "invalid_json", "the body is not a JSON object: %s",
                                  jerr.text));
    else if (j->q.json[0])
        unit_finish(&j->u, refuse(&j->u, 400, "invalid_query",
                                  "query parameter '%s' on a JSON deploy: the settings go in the "
                                  "JSON body; query parameters are for a package sent as "
                                  "application/gzip, application/x-tar or application/zip",
                                  j->q.json));
    else
        deploy_unit_from_json(&j->u, doc, false);
    json_decref(doc);
}

/* --- the commit, on the loop --- */

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* 400 naming the first secret the new version lists that does not exist:
 * a worker could not start without it. */
static int secrets_missing(deploy_unit *u)
{
    int64_t ms;
    for (unsigned i = 0; i < u->cfg.nsecrets; i++)
        if (secrets_updated_ms(u->h->secrets, u->cfg.secrets[i], &ms) < 0)
            return refuse(u, 400, "unknown_secret",
                          "secret '%s' does not exist; create it first with PUT /v1/secrets/%s",
                          u->cfg.secrets[i], u->cfg.secrets[i]);
    return 0;
}

/* 400 for a network its workers could never get: "host" on a daemon
 * started with --no-host-network, "egress" where egress cannot work. The
 * spawner would refuse every worker, so say so at deploy. */
static int network_refused(deploy_unit *u)
{
    if (u->cfg.network == FN_NET_HOST && u->h->set.no_host_network)
        return refuse(u, 400, bad_setting(u),
                      "\"network\": \"host\" is not allowed: this daemon runs with "
                      "--no-host-network");
    if (u->cfg.network == FN_NET_EGRESS && !u->h->egress.usable)
        return refuse(u, 400, bad_setting(u),
                      "\"network\": \"egress\" cannot work on this host: %s", u->h->egress.why);
    return 0;
}

int deploy_unit_check(deploy_unit *u)
{
    return network_refused(u) < 0 || secrets_missing(u) < 0 ? -1 : 0;
}

int deploy_unit_place(deploy_unit *u, int64_t version)
{
    hearth *h = u->h;
    char dir[PATH_MAX];
    if (path_format(dir, sizeof dir, "%s/%s", h->code_root, u->name) ||
        path_format(u->placed, sizeof u->placed, "%s/%" PRId64, dir, version)) {
        u->placed[0] = '\0';
        return refuse(u, 500, "internal_error", "the data dir path is too long");
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        u->placed[0] = '\0';
        return refuse(u, 500, "internal_error", "could not create %s: %s", dir, strerror(errno));
    }
    fsutil_remove_tree(u->placed); /* left by a crash between rename and commit */
    if (rename(u->staging, u->placed) < 0) {
        u->placed[0] = '\0';
        return refuse(u, 500, "internal_error", "could not install the package: %s",
                      strerror(errno));
    }
    u->staging[0] = '\0';
    fsync_dir(dir);
    snprintf(u->cfg.name, sizeof u->cfg.name, "%s", u->name);
    u->cfg.version = version;
    u->cfg.updated_ms = timefmt_now_ms();
    return 0;
}

void deploy_unit_unplace(deploy_unit *u)
{
    if (u->placed[0])
        fsutil_remove_tree(u->placed);
    u->placed[0] = '\0';
}

void deploy_unit_release(deploy_unit *u)
{
    if (u->staging[0])
        fsutil_remove_tree(u->staging);
    u->staging[0] = '\0';
    fn_config_release(&u->cfg);
}

void deploy_announce(hearth *h, const fn_config *cfg)
{
    sched_update(h->sch, cfg);
    events_function_updated(h->events, cfg);
    deploy_prune(h, cfg->name);
    dlog_info("deployed %s version %" PRId64, cfg->name, cfg->version);
}

void deploy_forget(hearth *h, const char *name)
{
    sched_remove(h->sch, name);
    events_function_removed(h->events, name);
    routes_remove_function(h->routes, name);
    logs_end_function(h->lg, name);
    logstore_remove(h->store, name);
    int rc = deploy_remove_code(h, name);
    if (rc < 0)
        dlog_warn("could not remove the code of %s: %s", name, strerror(-rc));
    dlog_info("deleted function %s", name);
}

static int install(deploy_unit *u, bool *created)
{
    hearth *h = u->h;
    if (deploy_unit_check(u) < 0)
        return -1;
    int64_t latest;
    fn_config old;
    if (registry_latest_version(h->reg, u->name, &latest) < 0)
        return refuse(u, 500, "internal_error", "could not read the registry");
    *created = registry_get(h->reg, u->name, &old) != 0;
    if (!*created)
        fn_config_release(&old);
    if (deploy_unit_place(u, latest + 1) < 0)
        return -1;
    /* The routes table changes with the registry or not at all: both on
     * this thread, in this turn, so two deploys cannot both claim a route. */
    routes_change *routes;
    char err[400];
    int rc = routes_prepare(h->routes, u->name, fnset_json_value(&u->cfg, "routes"), &routes, err,
                            sizeof err);
    if (rc == 0 && (rc = registry_put(h->reg, &u->cfg)) < 0) {
        routes_abort(h->routes, routes);
        rc = rc == -EBUSY || rc == -ENOSPC ? rc : -EIO;
    }
    if (rc < 0) {
        deploy_unit_unplace(u);
        if (rc == -EEXIST)
            return refuse(u, 409, "route_conflict", "%s", err);
        if (rc == -EINVAL)
            return refuse(u, 400, "invalid_field", "%s", err);
        if (rc == -EBUSY)
            return refuse(u, 503, "storage_busy",
                          "the registry is locked by another process; try again");
        if (rc == -ENOSPC)
            return refuse(u, 507, "insufficient_storage",
                          "the data directory is full: the new version was not recorded");
        return refuse(u, 500, "internal_error", "could not record the new version");
    }
    routes_commit(h->routes, routes);
    return 0;
}

static void job_free(deploy_job *j)
{
    deploy_unit_release(&j->u);
    free(j->q.runtime);
    free(j->q.handler);
    free(j->q.secrets);
    for (size_t i = 0; i < FNSET_CHOICE_COUNT; i++)
        free(j->q.choice[i]);
    for (size_t i = 0; i < FNSET_INT_COUNT; i++)
        free(j->q.ints[i]);
    json_decref(j->doc);
    free(j);
}

static void deploy_after(uv_work_t *w, int status)
{
    deploy_job *j = w->data;
    deploy_unit *u = &j->u;
    bool created = false;
    if (status < 0)
        refuse(u, 500, "internal_error", "the deploy was cancelled");
    if (!u->code && install(u, &created) == 0) {
        deploy_announce(u->h, &u->cfg);
        deploy_result r = {&u->cfg, created, created ? 201 : 200, NULL, ""};
        j->done(u->h, j->ctx, &r);
    } else {
        deploy_result r = {NULL, false, u->status, u->code, u->message};
        j->done(u->h, j->ctx, &r);
    }
    job_free(j);
}

/* Ends a job that never ran: its caller hears the error at once. */
static void refuse_now(hearth *h, deploy_done_fn done, void *ctx, unsigned status, const char *code,
                       const char *message)
{
    deploy_result r = {NULL, false, status, code, message};
    done(h, ctx, &r);
}

/* --- entry points --- */

static bool type_in(const char *ct, const char *const *types, size_t ntypes)
{
    size_t n = strcspn(ct, "; ");
    for (size_t i = 0; i < ntypes; i++)
        if (strlen(types[i]) == n && strncasecmp(ct, types[i], n) == 0)
            return true;
    return false;
}

static bool is_archive_type(const char *ct)
{
    static const char *const types[] = {"application/gzip", "application/x-gzip",
                                        "application/x-tar", "application/zip",
                                        "application/x-zip-compressed"};
    return ct && type_in(ct, types, sizeof types / sizeof *types);
}

/* JSON, or what curl -d sends when nobody says: the settings document. */
static bool is_json_body_type(const char *ct)
{
    static const char *const types[] = {"application/json", "application/x-www-form-urlencoded"};
    return !ct || !*ct || type_in(ct, types, sizeof types / sizeof *types);
}

/* A raw-archive deploy's settings come from the query. */
static void note_query(deploy_query *q, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    /* Read up to a decoded %00, "python3%00junk" would pass for python3. */
    if (memchr(name, '\0', name_len) || memchr(value, '\0', value_len)) {
        if (!q->bad[0])
            safetext_copy(q->bad, sizeof q->bad, name, name_len);
        return;
    }
    size_t n, m;
    const fnset_int *t = fnset_ints(&n), *s = fnset_find(name);
    const fnset_choice *ct = fnset_choices(&m), *c = fnset_find_choice(name);
    char **slot = strcmp(name, "runtime") == 0   ? &q->runtime
                  : strcmp(name, "handler") == 0 ? &q->handler
                  : strcmp(name, "secrets") == 0 ? &q->secrets
                  : s                            ? &q->ints[s - t]
                  : c                            ? &q->choice[c - ct]
                                                 : NULL;
    if (!slot) {
        if (!q->unknown[0])
            safetext_copy(q->unknown, sizeof q->unknown, name, name_len);
        return;
    }
    free(*slot);
    *slot = strdup(value);
    /* Not dropped in silence: the deploy would go on with the default. */
    if (!*slot)
        q->oom = true;
}

void deploy_param(deploy_job *j, const char *name, size_t name_len, const char *value,
                  size_t value_len)
{
    if (j->raw)
        note_query(&j->q, name, name_len, value, value_len);
    /* A JSON deploy takes no query parameter: ?timeout_ms=5000 beside a
     * JSON body would otherwise be dropped without a word. */
    else if (!j->q.json[0])
        safetext_copy(j->q.json, sizeof j->q.json, name, name_len);
}

deploy_job *deploy_new(hearth *h, const char *name, const char *ctype, const char *body, size_t len,
                       deploy_done_fn done, void *ctx)
{
    if (!is_archive_type(ctype) && !is_json_body_type(ctype)) {
        refuse_now(h, done, ctx, 415, "unsupported_media_type",
                   "send the settings as application/json, or a package as "
                   "application/gzip, application/x-tar or application/zip");
        return NULL;
    }
    deploy_job *j = calloc(1, sizeof *j);
    if (!j) {
        refuse_now(h, done, ctx, 500, "internal_error", "out of memory");
        return NULL;
    }
    j->ctx = ctx;
    j->done = done;
    deploy_unit_init(&j->u, h, name);
    j->body = body;
    j->len = len;
    j->raw = is_archive_type(ctype);
    j->u.from_query = j->raw;
    return j;
}

void deploy_run(deploy_job *j)
{
    hearth *h = j->u.h;
    j->work.data = j;
    if (uv_queue_work(h->loop, &j->work, deploy_work, deploy_after) < 0) {
        refuse_now(h, j->done, j->ctx, 500, "internal_error", "could not queue the deploy");
        job_free(j);
    }
}

void deploy_start_doc(hearth *h, const char *name, json_t *doc, int64_t code_from,
                      deploy_done_fn done, void *ctx)
{
    deploy_job *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(doc);
        refuse_now(h, done, ctx, 500, "internal_error", "out of memory");
        return;
    }
    j->ctx = ctx;
    j->done = done;
    deploy_unit_init(&j->u, h, name);
    j->u.code_from = code_from;
    j->doc = doc;
    deploy_run(j);
}

/* --- removal --- */

typedef struct removal {
    uv_work_t work;
    char path[PATH_MAX];
} removal;

static void removal_work(uv_work_t *w)
{
    removal *r = w->data;
    fsutil_remove_tree(r->path);
}

static void removal_after(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

/* Moves `dir` (of function `name`) aside into the staging dir at once,
 * and deletes it there on the threadpool. */
static int remove_dir(hearth *h, const char *name, const char *dir)
{
    removal *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    char id[REQID_LEN + 1];
    reqid_new(id);
    if (path_format(r->path, sizeof r->path, "%s/trash-%s-%s", h->staging_root, name, id)) {
        free(r);
        return -ENAMETOOLONG;
    }
    if (rename(dir, r->path) < 0) {
        int err = errno;
        free(r);
        return err == ENOENT ? 0 : -err;
    }
    r->work.data = r;
    if (uv_queue_work(h->loop, &r->work, removal_work, removal_after) < 0) {
        fsutil_remove_tree(r->path);
        free(r);
    }
    return 0;
}

int deploy_remove_code(hearth *h, const char *name)
{
    char dir[PATH_MAX];
    if (path_format(dir, sizeof dir, "%s/%s", h->code_root, name))
        return -ENAMETOOLONG;
    return remove_dir(h, name, dir);
}

int deploy_remove_version(hearth *h, const char *name, int64_t version)
{
    char dir[PATH_MAX];
    if (path_format(dir, sizeof dir, "%s/%s/%" PRId64, h->code_root, name, version))
        return -ENAMETOOLONG;
    return remove_dir(h, name, dir);
}

/* --keep-versions: the registry forgets the oldest versions nothing
 * addresses, then their code goes. A failure only leaves them for the
 * next deploy. */
void deploy_prune(hearth *h, const char *name)
{
    int64_t gone[64];
    size_t n = 0;
    unsigned keep = h->set.keep_versions ? h->set.keep_versions : 10;
    if (registry_prune(h->reg, name, keep, gone, sizeof gone / sizeof gone[0], &n) < 0) {
        dlog_warn("could not prune the old versions of %s", name);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        sched_version_pruned(h->sch, name, gone[i]);
        int rc = deploy_remove_version(h, name, gone[i]);
        if (rc < 0)
            dlog_warn("could not remove the code of %s version %" PRId64 ": %s", name, gone[i],
                      strerror(-rc));
        else
            dlog_info("pruned %s version %" PRId64 " (--keep-versions %u)", name, gone[i], keep);
    }
}
