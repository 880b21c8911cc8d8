/*
 * deploy.c — turning a PUT into a new version.
 *
 * On the threadpool (deploy_work): parse and check the settings, decode
 * and unpack the package into a private staging folder, fsync it. On the
 * loop (deploy_after): pick the next version number, rename the staging
 * folder to <code>/<name>/<version>, record the version in the registry
 * (the durable commit point: only then is the client answered) together
 * with its routes in the route table (a route another function holds
 * refuses the deploy, 409, before anything is recorded), and tell the
 * scheduler. Any failure before the registry commit removes what was
 * written, so the previous version keeps serving.
 *
 * Owns: staging folders, code folders. Must never: touch the registry or
 * the scheduler from the threadpool.
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

#include "api.h"
#include "dlog.h"
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

typedef struct deploy_job {
    uv_work_t work;
    hearth *h;
    gw_request *req;
    char name[FN_NAME_MAX + 1];
    const char *body; /* borrowed: the request waits for us */
    size_t len;
    bool raw;
    char *owned_body;    /* deploy_start_doc: the document, serialized */
    int64_t code_from;   /* deploy_start_doc: copy this version's code (0: none) */
    deploy_done_fn done; /* deploy_start_doc: how to answer */
    /* raw-body settings, copied from the query on the loop */
    char *q_runtime, *q_handler, *q_secrets;
    char *q_choice[FNSET_CHOICE_COUNT]; /* the two-word settings, by table index */
    char *q_int[FNSET_INT_COUNT];       /* the whole-number settings, by table index */
    char unknown_query[64];
    char bad_query[64]; /* a query parameter with a NUL byte, printable */
    /* results */
    fn_config cfg;
    char staging[PATH_MAX];
    unsigned status;
    const char *code; /* NULL on success */
    char message[512];
} deploy_job;

static int refuse(deploy_job *j, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records an error for the client. Returns -1 so callers can `return refuse(…)`. */
static int refuse(deploy_job *j, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof j->message, fmt, ap);
    va_end(ap);
    j->status = status;
    j->code = code;
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

static int check_runtime(deploy_job *j, const char *runtime, const char *handler)
{
    if (!runtime || !*runtime)
        return refuse(j, 400, "invalid_field", "runtime is required (see GET /v1/runtimes)");
    const runtime_info *rt = runtimes_find(runtime);
    if (!rt)
        return refuse(j, 400, "unsupported_runtime",
                      "unknown runtime '%.40s'; GET /v1/runtimes lists them", runtime);
    if (!rt->usable)
        return refuse(j, 400, "unsupported_runtime", "runtime %s cannot run here: %s", rt->name,
                      rt->reason);
    char err[256];
    if (!handler || !validate_handler(handler))
        return refuse(j, 400, "invalid_field",
                      "handler is required: printable, no spaces, no '..', e.g. main.handler");
    if (runtimes_check_handler(runtime, handler, err, sizeof err) < 0)
        return refuse(j, 400, "invalid_field", "%s", err);
    snprintf(j->cfg.runtime, sizeof j->cfg.runtime, "%s", runtime);
    snprintf(j->cfg.handler, sizeof j->cfg.handler, "%s", handler);
    return 0;
}

static int check_range(deploy_job *j, const char *field, json_int_t v, json_int_t lo, json_int_t hi,
                       int64_t *out)
{
    if (v < lo || v > hi)
        return refuse(j, 400, "invalid_field", "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int check_int_field(deploy_job *j, json_t *v, const char *field, json_int_t lo,
                           json_int_t hi, int64_t *out)
{
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return refuse(j, 400, "invalid_field", "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    return check_range(j, field, json_integer_value(v), lo, hi, out);
}

static int check_query_int(deploy_job *j, const char *s, const char *field, json_int_t lo,
                           json_int_t hi, int64_t *out)
{
    if (!s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return refuse(j, 400, "invalid_field", "%s must be a whole number from %lld to %lld", field,
                      (long long)lo, (long long)hi);
    return check_range(j, field, v, lo, hi, out);
}

/* Every two-word setting given (network, keep_alive), from the JSON body
 * or, without one, the query. */
static int check_choices(deploy_job *j, json_t *doc)
{
    size_t n;
    const fnset_choice *t = fnset_choices(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = doc ? json_object_get(doc, t[i].name) : NULL;
        const char *word = doc ? json_string_value(v) : j->q_choice[i];
        if ((doc && !v) || (!doc && !word))
            continue;
        if (!word || fnset_choose(&j->cfg, &t[i], word) < 0) {
            char words[128];
            fnset_words_phrase(&t[i], words, sizeof words);
            return refuse(j, 400, "invalid_field", "%s must be %s", t[i].name, words);
        }
    }
    return 0;
}

/* Every JSON-valued setting given (on_success, subscriptions, routes, ...),
 * each checked by its row's own rule; whether "routes" collide with another
 * function's is checked on the loop, at the commit (install). JSON bodies
 * only: a query cannot carry a list. A null value is the same as leaving
 * the setting out. */
static int check_json_settings(deploy_job *j, json_t *doc)
{
    size_t n;
    const fnset_json *t = fnset_jsons(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(doc, t[i].name);
        char err[512] = "";
        if (!v || json_is_null(v))
            continue;
        if (t[i].check(v, err, sizeof err) < 0) /* a message may name the field itself */
            return strncmp(err, t[i].name, strlen(t[i].name)) == 0
                       ? refuse(j, 400, "invalid_field", "%s", err)
                       : refuse(j, 400, "invalid_field", "%s: %s", t[i].name, err);
        j->cfg.json_settings[i] = json_deep_copy(v);
        if (!j->cfg.json_settings[i])
            return refuse(j, 500, "internal_error", "out of memory");
    }
    return 0;
}

/* --- packages --- */

static int make_staging(deploy_job *j)
{
    if (path_format(j->staging, sizeof j->staging, "%s/deploy-XXXXXX", j->h->staging_root) ||
        !mkdtemp(j->staging)) {
        j->staging[0] = '\0';
        return refuse(j, 500, "internal_error", "could not create a staging folder: %s",
                      strerror(errno));
    }
    return 0;
}

static int package_result(deploy_job *j, int rc, const char *err)
{
    if (rc == -EINVAL)
        return refuse(j, 400, "invalid_package", "%s", err[0] ? err : "the package is invalid");
    if (rc < 0)
        return refuse(j, 500, "internal_error", "could not store the package: %s", strerror(-rc));
    return 0;
}

static int unpack_bytes(deploy_job *j, const void *data, size_t len)
{
    if (len > PACKAGE_MAX_COMPRESSED)
        return refuse(j, 400, "invalid_package",
                      "the package is %zu bytes; at most %u are accepted", len,
                      PACKAGE_MAX_COMPRESSED);
    if (make_staging(j) < 0)
        return -1;
    package_limits lim;
    package_limits_default(&lim);
    char err[512] = "";
    int rc = package_unpack_archive(data, len, j->staging, &lim, err, sizeof err);
    return package_result(j, rc, err);
}

static int unpack_json_package(deploy_job *j, json_t *files, json_t *archive)
{
    if (!files == !archive)
        return refuse(j, 400, "invalid_field", "give exactly one of files or archive");
    if (files) {
        if (!json_is_object(files))
            return refuse(j, 400, "invalid_field", "files must be an object of path to text");
        if (make_staging(j) < 0)
            return -1;
        package_limits lim;
        package_limits_default(&lim);
        char err[512] = "";
        return package_result(j, package_write_files(files, j->staging, &lim, err, sizeof err),
                              err);
    }
    if (!json_is_string(archive))
        return refuse(j, 400, "invalid_field", "archive must be a base64 string");
    unsigned char *bytes;
    size_t n;
    int rc =
        deploy_base64_decode(json_string_value(archive), json_string_length(archive), &bytes, &n);
    if (rc == -EINVAL)
        return refuse(j, 400, "invalid_package", "archive is not valid base64");
    if (rc < 0)
        return refuse(j, 500, "internal_error", "out of memory");
    rc = unpack_bytes(j, bytes, n);
    free(bytes);
    return rc;
}

/* The package of a version already installed, copied (deploy_start_doc). */
static int copy_code(deploy_job *j)
{
    char src[PATH_MAX];
    if (path_format(src, sizeof src, "%s/%s/%" PRId64, j->h->code_root, j->name, j->code_from))
        return refuse(j, 500, "internal_error", "the data dir path is too long");
    if (make_staging(j) < 0)
        return -1;
    int rc = package_copy_tree(src, j->staging);
    if (rc < 0)
        return refuse(j, 500, "internal_error",
                      "could not copy the code of version %" PRId64 ": %s", j->code_from,
                      strerror(-rc));
    return 0;
}

/* Every whole-number setting the body gives, checked against its range;
 * then the settings against each other. */
static int check_int_fields(deploy_job *j, json_t *doc)
{
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; i < n; i++) {
        const char *name = t[i].name;
        int rc = doc ? check_int_field(j, json_object_get(doc, name), name, t[i].min, t[i].max,
                                       fnset_field(&j->cfg, &t[i]))
                     : check_query_int(j, j->q_int[i], name, t[i].min, t[i].max,
                                       fnset_field(&j->cfg, &t[i]));
        if (rc < 0)
            return rc;
    }
    char err[160];
    if (fnset_check_together(&j->cfg, err, sizeof err) < 0)
        return refuse(j, 400, "invalid_field", "%s", err);
    return 0;
}

/* The "secrets" list, names only: whether each exists is checked on the
 * loop, at the commit (secrets_missing), where DELETE cannot slip in. */
static int take_secrets(deploy_job *j, const json_t *list)
{
    char err[160];
    if (validate_secret_list(list, err, sizeof err) < 0)
        return refuse(j, 400, "invalid_field", "%s", err);
    fn_config_set_secrets(&j->cfg, list);
    return 0;
}

/* ?secrets=a,b (the raw-archive form): the same list, comma-separated. */
static int take_query_secrets(deploy_job *j)
{
    json_t *list = json_array();
    char *copy = strdup(j->q_secrets), *save = NULL;
    int rc = list && copy ? 0 : refuse(j, 500, "internal_error", "out of memory");
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; rc == 0 && t;
         t = strtok_r(NULL, ",", &save))
        json_array_append_new(list, json_string_nocheck(t));
    if (rc == 0)
        rc = take_secrets(j, list);
    free(copy);
    json_decref(list);
    return rc;
}

static bool is_setting(const char *key)
{
    return fnset_find(key) || fnset_find_choice(key) || fnset_json_index(key) >= 0;
}

static int parse_json_body(deploy_job *j)
{
    static const char *const known[] = {"runtime", "handler", "files", "archive", "env", "secrets"};
    json_error_t jerr;
    json_t *doc = json_loadb(j->body, j->len, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return refuse(j, 400, "invalid_json", "the body is not a JSON object: %s", jerr.text);
    }
    int rc = 0;
    const char *key = validate_unknown_key(doc, known, sizeof known / sizeof *known, is_setting);
    if (key) {
        rc = refuse(j, 400, "unknown_field", "unknown field '%.60s'", key);
        goto out;
    }
    rc = check_runtime(j, json_string_value(json_object_get(doc, "runtime")),
                       json_string_value(json_object_get(doc, "handler")));
    if (rc == 0)
        rc = check_int_fields(j, doc);
    if (rc == 0)
        rc = check_choices(j, doc);
    if (rc == 0)
        rc = check_json_settings(j, doc);
    json_t *env = json_object_get(doc, "env");
    if (rc == 0 && env) {
        char err[256] = "";
        if (validate_env(env, err, sizeof err) < 0)
            rc = refuse(j, 400, "invalid_field", "%s", err);
        else
            j->cfg.env = json_deep_copy(env);
    }
    json_t *secrets = json_object_get(doc, "secrets");
    if (rc == 0 && secrets)
        rc = take_secrets(j, secrets);
    if (rc == 0 && j->code_from > 0)
        rc = copy_code(j);
    else if (rc == 0)
        rc = unpack_json_package(j, json_object_get(doc, "files"), json_object_get(doc, "archive"));
out:
    json_decref(doc);
    return rc;
}

static int parse_raw_body(deploy_job *j)
{
    if (j->bad_query[0])
        return refuse(j, 400, "invalid_query", "query parameter '%s' holds a NUL byte",
                      j->bad_query);
    if (j->unknown_query[0])
        return refuse(j, 400, "unknown_field", "unknown query parameter '%s'", j->unknown_query);
    int rc = check_runtime(j, j->q_runtime, j->q_handler);
    if (rc == 0)
        rc = check_int_fields(j, NULL);
    if (rc == 0)
        rc = check_choices(j, NULL);
    if (rc == 0 && j->q_secrets)
        rc = take_query_secrets(j);
    if (rc == 0)
        rc = unpack_bytes(j, j->body, j->len);
    return rc;
}

/* Makes the staged code readable by workers and durable. */
static int seal_staging(deploy_job *j)
{
    if (chmod(j->staging, 0755) < 0)
        return refuse(j, 500, "internal_error", "could not seal the package: %s", strerror(errno));
    int fd = open(j->staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return refuse(j, 500, "internal_error", "could not sync the package: %s", strerror(err));
    }
    close(fd);
    return 0;
}

static void deploy_work(uv_work_t *w)
{
    deploy_job *j = w->data;
    fnset_defaults(&j->cfg);
    j->cfg.network = j->h->set.default_network; /* a RESTART option: not changed under us */
    int rc = j->raw ? parse_raw_body(j) : parse_json_body(j);
    if (rc == 0)
        rc = seal_staging(j);
    if (rc < 0 && j->staging[0]) {
        package_remove_tree(j->staging);
        j->staging[0] = '\0';
    }
    if (!j->cfg.env)
        j->cfg.env = json_object();
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
static int secrets_missing(deploy_job *j)
{
    int64_t ms;
    for (unsigned i = 0; i < j->cfg.nsecrets; i++)
        if (secrets_updated_ms(j->h->secrets, j->cfg.secrets[i], &ms) < 0)
            return refuse(j, 400, "unknown_secret",
                          "secret '%s' does not exist; create it first with PUT /v1/secrets/%s",
                          j->cfg.secrets[i], j->cfg.secrets[i]);
    return 0;
}

/* 400 for a network its workers could never get: "host" on a daemon
 * started with --no-host-network, "egress" where egress cannot work. The
 * spawner would refuse every worker, so say so at deploy. */
static int network_refused(deploy_job *j)
{
    if (j->cfg.network == FN_NET_HOST && j->h->set.no_host_network)
        return refuse(j, 400, "invalid_field",
                      "\"network\": \"host\" is not allowed: this daemon runs with "
                      "--no-host-network");
    if (j->cfg.network == FN_NET_EGRESS && !j->h->egress.usable)
        return refuse(j, 400, "invalid_field",
                      "\"network\": \"egress\" cannot work on this host: %s", j->h->egress.why);
    return 0;
}

static int install(deploy_job *j, bool *created)
{
    hearth *h = j->h;
    if (network_refused(j) < 0 || secrets_missing(j) < 0)
        return -1;
    int64_t latest;
    fn_config old;
    if (registry_latest_version(h->reg, j->name, &latest) < 0)
        return refuse(j, 500, "internal_error", "could not read the registry");
    *created = registry_get(h->reg, j->name, &old) != 0;
    if (!*created)
        fn_config_release(&old);
    char dir[PATH_MAX], target[PATH_MAX];
    if (path_format(dir, sizeof dir, "%s/%s", h->code_root, j->name) ||
        path_format(target, sizeof target, "%s/%" PRId64, dir, latest + 1))
        return refuse(j, 500, "internal_error", "the data dir path is too long");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return refuse(j, 500, "internal_error", "could not create %s: %s", dir, strerror(errno));
    package_remove_tree(target); /* left by a crash between rename and commit */
    if (rename(j->staging, target) < 0)
        return refuse(j, 500, "internal_error", "could not install the package: %s",
                      strerror(errno));
    j->staging[0] = '\0';
    fsync_dir(dir);
    snprintf(j->cfg.name, sizeof j->cfg.name, "%s", j->name);
    j->cfg.version = latest + 1;
    j->cfg.updated_ms = timefmt_now_ms();
    /* The routes table changes with the registry or not at all: both on
     * this thread, in this turn, so two deploys cannot both claim a route. */
    routes_change *routes;
    char err[400];
    int rc = routes_prepare(h->routes, j->name, fnset_json_value(&j->cfg, "routes"), &routes, err,
                            sizeof err);
    if (rc == 0 && registry_put(h->reg, &j->cfg) < 0) {
        routes_abort(h->routes, routes);
        rc = -EIO;
    }
    if (rc < 0) {
        package_remove_tree(target);
        if (rc == -EEXIST)
            return refuse(j, 409, "route_conflict", "%s", err);
        if (rc == -EINVAL)
            return refuse(j, 400, "invalid_field", "%s", err);
        return refuse(j, 500, "internal_error", "could not record the new version");
    }
    routes_commit(h->routes, routes);
    return 0;
}

static void job_free(deploy_job *j)
{
    if (j->staging[0])
        package_remove_tree(j->staging);
    fn_config_release(&j->cfg);
    free(j->q_runtime);
    free(j->q_handler);
    free(j->q_secrets);
    free(j->owned_body);
    for (size_t i = 0; i < FNSET_CHOICE_COUNT; i++)
        free(j->q_choice[i]);
    for (size_t i = 0; i < FNSET_INT_COUNT; i++)
        free(j->q_int[i]);
    free(j);
}

static void deploy_after(uv_work_t *w, int status)
{
    deploy_job *j = w->data;
    bool created = false;
    if (status < 0)
        refuse(j, 500, "internal_error", "the deploy was cancelled");
    if (!j->code && install(j, &created) == 0) {
        sched_update(j->h->sch, &j->cfg);
        events_function_updated(j->h->events, &j->cfg);
        dlog_info("deployed %s version %" PRId64, j->name, j->cfg.version);
        api_audit(j->h, j->req, "deploy", j->name);
        if (j->done)
            j->done(j->h, j->req, &j->cfg, created, created ? 201 : 200, NULL, "");
        else
            gw_respond_json(j->req, created ? 201 : 200, api_function_json(j->h, &j->cfg));
    } else if (j->done) {
        j->done(j->h, j->req, NULL, false, j->status, j->code, j->message);
    } else {
        gw_respond_error(j->req, j->status, j->code, "%s", j->message);
    }
    job_free(j);
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

static void note_query(const gw_pair *p, void *ud)
{
    deploy_job *j = ud;
    const char *name = p->name, *value = p->value;
    /* Read up to a decoded %00, "python3%00junk" would pass for python3. */
    if (memchr(name, '\0', p->name_len) || memchr(value, '\0', p->value_len)) {
        if (!j->bad_query[0])
            safetext_copy(j->bad_query, sizeof j->bad_query, name, p->name_len);
        return;
    }
    size_t n, m;
    const fnset_int *t = fnset_ints(&n), *s = fnset_find(name);
    const fnset_choice *ct = fnset_choices(&m), *c = fnset_find_choice(name);
    char **slot = strcmp(name, "runtime") == 0   ? &j->q_runtime
                  : strcmp(name, "handler") == 0 ? &j->q_handler
                  : strcmp(name, "secrets") == 0 ? &j->q_secrets
                  : s                            ? &j->q_int[s - t]
                  : c                            ? &j->q_choice[c - ct]
                                                 : NULL;
    if (!slot) {
        if (!j->unknown_query[0])
            snprintf(j->unknown_query, sizeof j->unknown_query, "%s", name);
        return;
    }
    free(*slot);
    *slot = strdup(value);
}

void deploy_start(hearth *h, gw_request *req, const char *name)
{
    deploy_job *j = calloc(1, sizeof *j);
    if (!j) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    j->h = h;
    j->req = req;
    snprintf(j->name, sizeof j->name, "%s", name);
    const char *ct = gw_header(req, "Content-Type");
    if (!is_archive_type(ct) && !is_json_body_type(ct)) {
        gw_respond_error(req, 415, "unsupported_media_type",
                         "send the settings as application/json, or a package as "
                         "application/gzip, application/x-tar or application/zip");
        free(j);
        return;
    }
    j->body = gw_body(req, &j->len);
    j->raw = is_archive_type(ct);
    if (j->raw)
        gw_each_query(req, note_query, j);
    j->work.data = j;
    int rc = uv_queue_work(h->loop, &j->work, deploy_work, deploy_after);
    if (rc < 0) {
        gw_respond_error(req, 500, "internal_error", "could not queue the deploy");
        job_free(j);
    }
}

void deploy_start_doc(hearth *h, gw_request *req, const char *name, json_t *doc, int64_t code_from,
                      deploy_done_fn done)
{
    deploy_job *j = calloc(1, sizeof *j);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!j || !text) {
        free(j);
        free(text);
        done(h, req, NULL, false, 500, "internal_error", "out of memory");
        return;
    }
    j->h = h;
    j->req = req;
    snprintf(j->name, sizeof j->name, "%s", name);
    j->owned_body = text;
    j->body = text;
    j->len = strlen(text);
    j->code_from = code_from;
    j->done = done;
    j->work.data = j;
    if (uv_queue_work(h->loop, &j->work, deploy_work, deploy_after) < 0) {
        done(h, req, NULL, false, 500, "internal_error", "could not queue the deploy");
        job_free(j);
    }
}

/* --- removal --- */

typedef struct removal {
    uv_work_t work;
    char path[PATH_MAX];
} removal;

static void removal_work(uv_work_t *w)
{
    removal *r = w->data;
    package_remove_tree(r->path);
}

static void removal_after(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

int deploy_remove_code(hearth *h, const char *name)
{
    char dir[PATH_MAX];
    removal *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    char id[REQID_LEN + 1];
    reqid_new(id);
    if (path_format(dir, sizeof dir, "%s/%s", h->code_root, name) ||
        path_format(r->path, sizeof r->path, "%s/trash-%s-%s", h->staging_root, name, id)) {
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
        package_remove_tree(r->path);
        free(r);
    }
    return 0;
}
