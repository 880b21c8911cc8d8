/*
 * aws_lambda_fn.c — the Lambda operations on functions, versions and
 * aliases, translated to Hearth's: a Lambda request becomes a settings
 * document in the PUT body's shape and goes through the same deploy
 * (deploy_start_doc), so every check and limit of PUT applies; answers
 * take Lambda's shapes (FunctionConfiguration, AliasConfiguration).
 *
 * Owns: the mapping tables of docs/aws.md (runtimes, settings). Must
 * never: deploy what PUT would refuse, or show a function the key's glob
 * does not reach.
 */
#include "aws_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "deploy.h"
#include "dlog.h"
#include "qualifier.h"
#include "fn_settings.h"
#include "runtimes.h"
#include "timefmt.h"
#include "validate.h"

/* --- runtimes --- */

/* Lambda's runtime name to Hearth's, or NULL. */
static const char *hearth_runtime(const char *lambda)
{
    if (strncmp(lambda, "python3.", 8) == 0 || strcmp(lambda, "python3") == 0)
        return "python3";
    if (strncmp(lambda, "nodejs", 6) == 0)
        return "node";
    if (strncmp(lambda, "provided", 8) == 0)
        return "lambda";
    return NULL;
}

/* Hearth's runtime as Lambda names it, from the installed version:
 * python3 3.11.2 → python3.11, node 18.19.0 → nodejs18.x, lambda →
 * provided.al2023; any other (c, …) as it is. */
static void lambda_runtime(const char *hearth, char *out, size_t cap)
{
    const runtime_info *rt = runtimes_find(hearth);
    const char *v = rt ? rt->version : "";
    /* "3.11.2": the leading digits of the first two parts; 0 when none. */
    int major = (int)strtol(v, NULL, 10), minor = 0;
    const char *dot = strchr(v, '.');
    if (dot)
        minor = (int)strtol(dot + 1, NULL, 10);
    if (strcmp(hearth, "python3") == 0 && major == 3)
        snprintf(out, cap, "python3.%d", minor);
    else if (strcmp(hearth, "node") == 0 && major > 0)
        snprintf(out, cap, "nodejs%d.x", major);
    else if (strcmp(hearth, "lambda") == 0)
        snprintf(out, cap, "provided.al2023");
    else
        snprintf(out, cap, "%s", hearth);
}

/* --- FunctionConfiguration --- */

/* CodeSha256: the version's code digest (code_digest.h, over the unpacked
 * tree, so equal for a .zip and a .tar.gz of the same files; not the zip's
 * own hash as on AWS) as base64, as Lambda shows it; "" before digests. */
static void code_sha256(const fn_config *cfg, char *out, size_t cap)
{
    unsigned char bin[32];
    size_t n = 0;
    out[0] = '\0';
    if (strncmp(cfg->digest, "sha256:", 7) == 0 &&
        sodium_hex2bin(bin, sizeof bin, cfg->digest + 7, strlen(cfg->digest + 7), NULL, &n, NULL) ==
            0 &&
        n == sizeof bin && cap >= sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL))
        sodium_bin2base64(out, cap, bin, sizeof bin, sodium_base64_VARIANT_ORIGINAL);
}

json_t *aws_function_config(hearth *h, gw_request *req, const fn_config *cfg, const char *version)
{
    (void)h;
    char arn[256], runtime[48], modified[TIMEFMT_ISO_LEN], rev[32], ver[24], sha[48];
    aws_function_arn(req, cfg->name, version ? version : "", arn, sizeof arn);
    lambda_runtime(cfg->runtime, runtime, sizeof runtime);
    timefmt_iso_ms(cfg->updated_ms, modified);
    snprintf(rev, sizeof rev, "v%" PRId64 "-%" PRId64, cfg->version, cfg->updated_ms);
    snprintf(ver, sizeof ver, "%s", version ? version : "$LATEST");
    code_sha256(cfg, sha, sizeof sha);
    json_t *env = cfg->env ? json_deep_copy(cfg->env) : json_object();
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:{s:o},"
                     "s:[s],s:s}",
                     "FunctionName", cfg->name, "FunctionArn", arn, "Runtime", runtime, "Role",
                     "arn:aws:iam::" AWS_ACCOUNT ":role/hearth", "Handler", cfg->handler, "Timeout",
                     (json_int_t)((cfg->timeout_ms + 999) / 1000), "MemorySize",
                     (json_int_t)cfg->memory_mb, "LastModified", modified, "Version", ver, "State",
                     "Active", "LastUpdateStatus", "Successful", "PackageType", "Zip", "RevisionId",
                     rev, "Description", "", "CodeSize", (json_int_t)0, "Environment", "Variables",
                     env, "Architectures", "x86_64", "CodeSha256", sha);
}

/* Loads `name` for an operation: false having answered 404/500/403. */
static bool load_fn(hearth *h, gw_request *req, const char *name, fn_config *cfg)
{
    int rc = registry_get(h->reg, name, cfg);
    if (rc == -ENOENT)
        aws_error(req, 404, "ResourceNotFoundException", "Function not found: %s", name);
    else if (rc < 0)
        aws_error(req, 500, "ServiceException", "could not read the registry");
    return rc == 0;
}

/* The version a qualifier names: 0 for "" and $LATEST (the current one),
 * a number, or an alias's version. False having answered 404. */
static bool resolve_qualifier(hearth *h, gw_request *req, const char *name, const char *qual,
                              int64_t *version)
{
    *version = 0;
    if (!qual[0] || strcmp(qual, "$LATEST") == 0)
        return true;
    if (qual[0] >= '0' && qual[0] <= '9') {
        *version = strtoll(qual, NULL, 10);
        return true;
    }
    fn_alias a;
    if (registry_alias_get(h->reg, name, qual, &a) < 0) {
        aws_error(req, 404, "ResourceNotFoundException", "Alias not found: %s:%s", name, qual);
        return false;
    }
    *version = a.version;
    return true;
}

/* --- Get, List, Delete --- */

void aws_get_function(hearth *h, gw_request *req, const char *name, const char *qual, bool whole)
{
    int64_t version;
    fn_config cfg;
    if (!resolve_qualifier(h, req, name, qual, &version))
        return;
    int rc = version ? registry_get_version(h->reg, name, version, &cfg)
                     : registry_get(h->reg, name, &cfg);
    if (rc == -ENOENT) {
        aws_error(req, 404, "ResourceNotFoundException", "Function not found: %s%s%s", name,
                  qual[0] ? ":" : "", qual);
        return;
    }
    if (rc < 0) {
        aws_error(req, 500, "ServiceException", "could not read the registry");
        return;
    }
    char ver[24];
    snprintf(ver, sizeof ver, "%" PRId64, cfg.version);
    json_t *conf = aws_function_config(h, req, &cfg, version ? ver : NULL);
    fn_config_release(&cfg);
    if (whole)
        conf = json_pack("{s:o,s:{s:s,s:s}}", "Configuration", conf, "Code", "RepositoryType", "S3",
                         "Location", "");
    aws_respond(req, 200, conf);
}

static int list_visit(const fn_config *cfg, void *ud)
{
    void **ctx = ud;
    if (aws_may_reach(ctx[1], cfg->name))
        json_array_append_new(ctx[2], aws_function_config(ctx[0], ctx[1], cfg, NULL));
    return 0;
}

void aws_list_functions(hearth *h, gw_request *req)
{
    json_t *list = json_array();
    void *ctx[3] = {h, req, list};
    if (registry_list(h->reg, list_visit, ctx) < 0) {
        json_decref(list);
        aws_error(req, 500, "ServiceException", "could not read the registry");
        return;
    }
    aws_respond(req, 200, json_pack("{s:o}", "Functions", list));
}

void aws_delete_function(hearth *h, gw_request *req, const char *name, const char *qual)
{
    if (qual[0]) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "Hearth versions are deleted by --keep-versions, not one by one: delete the "
                  "function without a Qualifier");
        return;
    }
    fn_config cfg;
    if (!load_fn(h, req, name, &cfg))
        return;
    fn_config_release(&cfg);
    if (registry_delete(h->reg, name) < 0) {
        aws_error(req, 500, "ServiceException", "could not delete '%s'", name);
        return;
    }
    deploy_forget(h, name); /* what DELETE /v1/functions/{name} does after the row */
    api_audit(h, req, "delete", name);
    aws_respond(req, 204, NULL);
}

/* --- the settings document --- */

/* Hearth's settings of cfg, in the PUT body's shape (no package). */
static json_t *settings_doc(const fn_config *cfg)
{
    json_t *doc = json_pack("{s:s,s:s,s:o}", "runtime", cfg->runtime, "handler", cfg->handler,
                            "env", cfg->env ? json_deep_copy(cfg->env) : json_object());
    size_t n;
    const fnset_int *t = fnset_ints(&n);
    for (size_t i = 0; doc && i < n; i++) {
        int64_t v = fnset_value(cfg, &t[i]);
        if (v != FNSET_INHERIT)
            json_object_set_new(doc, t[i].name, json_integer(v));
    }
    const fnset_choice *c = fnset_choices(&n);
    for (size_t i = 0; doc && i < n; i++)
        json_object_set_new(doc, c[i].name, json_string(fnset_word(cfg, &c[i])));
    const fnset_json *js = fnset_jsons(&n);
    for (size_t i = 0; doc && i < n; i++)
        if (cfg->json_settings[i])
            json_object_set_new(doc, js[i].name, json_deep_copy(cfg->json_settings[i]));
    if (doc && cfg->nsecrets)
        json_object_set_new(doc, "secrets", fn_config_secrets_json(cfg));
    return doc;
}

/* Lambda's configuration fields onto doc: Runtime, Handler, Timeout,
 * MemorySize, Environment.Variables. False having answered 400. */
static bool apply_lambda_fields(gw_request *req, json_t *in, json_t *doc)
{
    json_t *v;
    if ((v = json_object_get(in, "Runtime"))) {
        const char *rt = json_is_string(v) ? hearth_runtime(json_string_value(v)) : NULL;
        if (!rt) {
            aws_error(req, 400, "InvalidParameterValueException",
                      "Runtime must be python3.*, nodejs* or provided* (Hearth's python3, node, "
                      "lambda)");
            return false;
        }
        json_object_set_new(doc, "runtime", json_string(rt));
    }
    if ((v = json_object_get(in, "Handler")))
        json_object_set(doc, "handler", v);
    if ((v = json_object_get(in, "Timeout"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 900) {
            aws_error(req, 400, "InvalidParameterValueException", "Timeout is 1 to 900 seconds");
            return false;
        }
        json_object_set_new(doc, "timeout_ms", json_integer(json_integer_value(v) * 1000));
    }
    if ((v = json_object_get(in, "MemorySize")))
        json_object_set(doc, "memory_mb", v); /* deploy checks the range */
    if ((v = json_object_get(in, "Environment"))) {
        json_t *vars = json_object_get(v, "Variables");
        if (!json_is_object(v) || (vars && !json_is_object(vars))) {
            aws_error(req, 400, "InvalidParameterValueException",
                      "Environment must be {\"Variables\": {NAME: value}}");
            return false;
        }
        json_object_set_new(doc, "env", vars ? json_deep_copy(vars) : json_object());
    }
    return true;
}

/* The request's JSON object, or NULL having answered 400. */
static json_t *body_object(gw_request *req)
{
    size_t len;
    const char *body = gw_body(req, &len);
    json_error_t jerr;
    json_t *in = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(in)) {
        json_decref(in);
        aws_error(req, 400, "InvalidRequestContentException", "the body must be a JSON object: %s",
                  jerr.text);
        return NULL;
    }
    return in;
}

/* --- deploys --- */

/* HTTP status of a refused deploy, as Lambda's error type. */
static const char *deploy_error_type(unsigned status, const char *code)
{
    if (status == 404)
        return "ResourceNotFoundException";
    if (status == 409)
        return "ResourceConflictException";
    if (status == 413 || (code && strcmp(code, "invalid_package") == 0))
        return status == 413 ? "RequestTooLargeException" : "InvalidParameterValueException";
    if (status >= 500)
        return "ServiceException";
    return "InvalidParameterValueException";
}

static void deploy_answer(hearth *h, gw_request *req, const fn_config *cfg, unsigned status,
                          const char *code, const char *message)
{
    if (!cfg) {
        aws_error(req, status >= 500 ? 500 : status, deploy_error_type(status, code), "%s",
                  message);
        return;
    }
    aws_respond(req, status, aws_function_config(h, req, cfg, NULL));
}

/* A deploy's end as Lambda answers it; success is audited as PUT's is. */
static void deploy_done(hearth *h, gw_request *req, const deploy_result *r, unsigned ok)
{
    if (r->cfg)
        api_audit(h, req, "deploy", r->cfg->name);
    deploy_answer(h, req, r->cfg, r->cfg ? ok : r->status, r->code, r->message);
}

static void on_created(hearth *h, void *ctx, const deploy_result *r)
{
    deploy_done(h, ctx, r, 201);
}

static void on_updated(hearth *h, void *ctx, const deploy_result *r)
{
    deploy_done(h, ctx, r, 200);
}

/* Code.ZipFile (base64, as the SDKs send a blob) into doc's archive. */
static bool take_zip(gw_request *req, json_t *zip, json_t *doc)
{
    if (!json_is_string(zip) || json_string_length(zip) == 0) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "Code.ZipFile (a base64 zip) is the only code source Hearth takes");
        return false;
    }
    json_object_set(doc, "archive", zip);
    return true;
}

void aws_create_function(hearth *h, gw_request *req)
{
    json_t *in = body_object(req);
    if (!in)
        return;
    const char *name = json_string_value(json_object_get(in, "FunctionName"));
    json_t *code = json_object_get(in, "Code");
    json_t *doc = json_object();
    fn_config old;
    if (!name || !validate_function_name(name)) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "FunctionName must match [a-z0-9][a-z0-9-]{0,62}");
    } else if (!aws_may_reach(req, name)) {
        aws_error(req, 403, "AccessDeniedException", "this key may not reach function '%s'", name);
    } else if (!doc) {
        aws_error(req, 500, "ServiceException", "out of memory");
    } else if (registry_get(h->reg, name, &old) == 0) {
        fn_config_release(&old);
        aws_error(req, 409, "ResourceConflictException", "Function already exist: %s", name);
    } else if (!json_object_get(in, "Runtime") || !json_object_get(in, "Handler")) {
        aws_error(req, 400, "InvalidParameterValueException", "Runtime and Handler are required");
    } else if (apply_lambda_fields(req, in, doc) &&
               take_zip(req, json_object_get(code, "ZipFile"), doc)) {
        char fn[FN_NAME_MAX + 1];
        snprintf(fn, sizeof fn, "%s", name);
        json_decref(in);
        deploy_start_doc(h, fn, doc, 0, on_created, req);
        return;
    }
    json_decref(doc);
    json_decref(in);
}

/* What an update edits in the function's settings document, from the
 * request body `in`: false, having answered, when the body is wrong. */
typedef bool (*doc_edit_fn)(gw_request *req, json_t *in, json_t *doc);

static bool take_code(gw_request *req, json_t *in, json_t *doc)
{
    return take_zip(req, json_object_get(in, "ZipFile"), doc);
}

/* UpdateFunctionCode and UpdateFunctionConfiguration: the current settings
 * as a document, edited by `edit`, deployed as a new version. With
 * keep_code the new version copies the current one's code, since the body
 * brought none. */
static void update_function(hearth *h, gw_request *req, const char *name, doc_edit_fn edit,
                            bool keep_code)
{
    fn_config cfg;
    json_t *in = body_object(req);
    if (!in)
        return;
    if (!load_fn(h, req, name, &cfg)) {
        json_decref(in);
        return;
    }
    json_t *doc = settings_doc(&cfg);
    int64_t code_from = keep_code ? cfg.version : 0;
    fn_config_release(&cfg);
    if (!doc)
        aws_error(req, 500, "ServiceException", "out of memory");
    else if (edit(req, in, doc)) { /* edit answers when it refuses */
        json_decref(in);
        deploy_start_doc(h, name, doc, code_from, on_updated, req);
        return;
    }
    json_decref(doc);
    json_decref(in);
}

void aws_update_code(hearth *h, gw_request *req, const char *name)
{
    update_function(h, req, name, take_code, false);
}

void aws_update_config(hearth *h, gw_request *req, const char *name)
{
    update_function(h, req, name, apply_lambda_fields, true);
}

/* Hearth's versions are immutable already: publishing names the current one. */
void aws_publish_version(hearth *h, gw_request *req, const char *name)
{
    fn_config cfg;
    if (!load_fn(h, req, name, &cfg))
        return;
    char ver[24];
    snprintf(ver, sizeof ver, "%" PRId64, cfg.version);
    aws_respond(req, 201, aws_function_config(h, req, &cfg, ver));
    fn_config_release(&cfg);
}

/* --- aliases --- */

static json_t *alias_json(gw_request *req, const fn_alias *a)
{
    char arn[256], ver[24], rev[32];
    aws_function_arn(req, a->function, a->name, arn, sizeof arn);
    snprintf(ver, sizeof ver, "%" PRId64, a->version);
    snprintf(rev, sizeof rev, "a%" PRId64, a->updated_ms);
    json_t *weights = json_object();
    for (unsigned i = 0; i < a->nextra; i++) {
        char k[24];
        snprintf(k, sizeof k, "%" PRId64, a->extra_version[i]);
        json_object_set_new(weights, k, json_real(a->extra_weight[i]));
    }
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:o}}", "AliasArn", arn, "Name", a->name,
                     "FunctionVersion", ver, "Description", "", "RevisionId", rev, "RoutingConfig",
                     "AdditionalVersionWeights", weights);
}

/* A version given as Lambda does ("3" or "$LATEST" = the current one). */
static bool take_version(hearth *h, gw_request *req, const char *name, json_t *v, int64_t *out)
{
    const char *s = json_string_value(v);
    fn_config cfg;
    if (s && strcmp(s, "$LATEST") == 0 && registry_get(h->reg, name, &cfg) == 0) {
        *out = cfg.version;
        fn_config_release(&cfg);
        return true;
    }
    if (s && qualifier_version(s, out))
        return true;
    aws_error(req, 400, "InvalidParameterValueException",
              "FunctionVersion must be a version number or $LATEST");
    return false;
}

/* RoutingConfig.AdditionalVersionWeights {"4": 0.1} onto a. */
static bool take_weights(gw_request *req, json_t *routing, fn_alias *a)
{
    json_t *w = json_object_get(routing, "AdditionalVersionWeights");
    if (!w)
        return true;
    const char *why = api_alias_weights(w, a);
    if (why)
        aws_error(req, 400, "InvalidParameterValueException", "AdditionalVersionWeights: %s", why);
    return !why;
}

static void alias_store(hearth *h, gw_request *req, fn_alias *a, unsigned status)
{
    int rc = api_alias_store(h, a);
    if (rc == -ENOENT)
        aws_error(req, 404, "ResourceNotFoundException", "Function not found: %s:%" PRId64,
                  a->function, a->version);
    else if (rc == -EINVAL)
        aws_error(req, 400, "InvalidParameterValueException",
                  "the alias's version and its AdditionalVersionWeights must differ");
    else if (rc < 0)
        aws_error(req, 500, "ServiceException", "could not store the alias");
    else {
        api_audit(h, req, "alias_put", a->function);
        aws_respond(req, status, alias_json(req, a));
    }
}

void aws_alias_create(hearth *h, gw_request *req, const char *name)
{
    json_t *in = body_object(req);
    if (!in)
        return;
    const char *alias = json_string_value(json_object_get(in, "Name"));
    fn_alias a = {0}, old;
    if (!alias || !aws_alias_name_valid(alias) || strlen(alias) > FN_ALIAS_MAX)
        aws_error(req, 400, "InvalidParameterValueException",
                  "Name must match [a-z][a-z0-9_-]{0,62}");
    else if (registry_alias_get(h->reg, name, alias, &old) == 0)
        aws_error(req, 409, "ResourceConflictException", "Alias already exists: %s:%s", name,
                  alias);
    else if (take_version(h, req, name, json_object_get(in, "FunctionVersion"), &a.version) &&
             take_weights(req, json_object_get(in, "RoutingConfig"), &a)) {
        snprintf(a.function, sizeof a.function, "%s", name);
        snprintf(a.name, sizeof a.name, "%s", alias);
        alias_store(h, req, &a, 201);
    }
    json_decref(in);
}

void aws_alias_update(hearth *h, gw_request *req, const char *name, const char *alias)
{
    json_t *in = body_object(req);
    if (!in)
        return;
    fn_alias a;
    json_t *v = json_object_get(in, "FunctionVersion");
    if (registry_alias_get(h->reg, name, alias, &a) < 0)
        aws_error(req, 404, "ResourceNotFoundException", "Alias not found: %s:%s", name, alias);
    else if ((!v || take_version(h, req, name, v, &a.version)) &&
             take_weights(req, json_object_get(in, "RoutingConfig"), &a))
        alias_store(h, req, &a, 200);
    json_decref(in);
}

void aws_alias_get(hearth *h, gw_request *req, const char *name, const char *alias)
{
    fn_alias a;
    if (registry_alias_get(h->reg, name, alias, &a) < 0)
        aws_error(req, 404, "ResourceNotFoundException", "Alias not found: %s:%s", name, alias);
    else
        aws_respond(req, 200, alias_json(req, &a));
}

static int alias_visit(const fn_alias *a, void *ud)
{
    void **ctx = ud;
    json_array_append_new(ctx[1], alias_json(ctx[0], a));
    return 0;
}

void aws_alias_list(hearth *h, gw_request *req, const char *name)
{
    fn_config cfg;
    if (!load_fn(h, req, name, &cfg))
        return;
    fn_config_release(&cfg);
    json_t *list = json_array();
    void *ctx[2] = {req, list};
    if (registry_alias_list(h->reg, name, alias_visit, ctx) < 0) {
        json_decref(list);
        aws_error(req, 500, "ServiceException", "could not read the aliases");
        return;
    }
    aws_respond(req, 200, json_pack("{s:o}", "Aliases", list));
}

void aws_alias_delete(hearth *h, gw_request *req, const char *name, const char *alias)
{
    int rc = registry_alias_delete(h->reg, name, alias);
    if (rc == -ENOENT) {
        aws_error(req, 404, "ResourceNotFoundException", "Alias not found: %s:%s", name, alias);
        return;
    }
    if (rc < 0) {
        aws_error(req, 500, "ServiceException", "could not delete the alias");
        return;
    }
    sched_versions_changed(h->sch, name);
    api_audit(h, req, "alias_delete", name);
    aws_respond(req, 204, NULL);
}
