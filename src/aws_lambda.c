/*
 * aws_lambda.c — the AWS Lambda API's front door: which operation a path
 * names, who signed it, and Lambda's error shape.
 *
 * Every request is verified before anything else reads it: its
 * Authorization header (AWS4-HMAC-SHA256) names an access key id, which is
 * a Hearth token's id; the token's sealed secret (auth.h) is opened and
 * the signature recomputed over the request as it arrived (aws_sigv4.c),
 * body hash included. Then the token's scopes and functions glob apply as
 * for a bearer call: read for the Get/List operations, deploy for the
 * writes, invoke for Invoke. Presigned URLs (the query form) are refused.
 *
 * Owns: the operation table, the SigV4 check against tokens, the error
 * shape. Must never: accept an unsigned or badly signed request (unless
 * the daemon runs --no-auth), say which part of a signature was wrong
 * beyond what AWS says, or keep an opened secret past the check.
 */
#include "aws_lambda.h"
#include "aws_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth.h"
#include "aws_sigv4.h"
#include "dlog.h"
#include "safetext.h"
#include "timefmt.h"
#include "validate.h"

#define CANONICAL_MAX (64u * 1024)
#define PARAMS_MAX    32

/* The token of the request being dispatched (NULL with --no-auth): valid
 * while a handler runs synchronously, as api.c's `caller`. */
static const auth_token *aws_caller;

/* --- answers --- */

void aws_respond(gw_request *req, unsigned status, json_t *body)
{
    gw_add_header(req, "x-amzn-RequestId", gw_request_id(req));
    if (!body) {
        gw_respond(req, status, NULL, NULL, 0);
        return;
    }
    gw_respond_json(req, status, body);
}

void aws_error(gw_request *req, unsigned status, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_add_header(req, "X-Amzn-ErrorType", type);
    aws_respond(req, status,
                json_pack("{s:s,s:s}", "Type", status >= 500 ? "Service" : "User", "message", msg));
}

const char *aws_region(gw_request *req)
{
    static char region[AWS_SIGV4_SCOPE_MAX + 1];
    aws_sigv4_auth a;
    char err[8];
    if (aws_sigv4_parse(gw_header(req, "Authorization"), &a, err, sizeof err) < 0)
        return "us-east-1";
    snprintf(region, sizeof region, "%s", a.region);
    return region;
}

void aws_function_arn(gw_request *req, const char *name, const char *qual, char *out, size_t cap)
{
    snprintf(out, cap, "arn:aws:lambda:%s:" AWS_ACCOUNT ":function:%s%s%s", aws_region(req), name,
             qual[0] ? ":" : "", qual);
}

bool aws_may_reach(gw_request *req, const char *name)
{
    (void)req;
    return !aws_caller || auth_function_allowed(aws_caller, name);
}

/* --- names --- */

bool aws_alias_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FN_ALIAS_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

static bool all_digits(const char *s)
{
    if (!*s || strlen(s) > 18)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

bool aws_qualifier_valid(const char *q)
{
    return strcmp(q, "$LATEST") == 0 || all_digits(q) || aws_alias_name_valid(q);
}

/* FunctionName as Lambda takes it: "name", "name:qual", or an ARN
 * "arn:aws:lambda:REGION:ACCOUNT:function:name[:qual]" (decoded). */
static bool split_function_name(const char *in, char name[FN_NAME_MAX + 1],
                                char qual[AWS_QUAL_MAX + 1])
{
    const char *p = in;
    if (strncmp(p, "arn:", 4) == 0) {
        const char *f = strstr(p, ":function:");
        if (!f)
            return false;
        p = f + 10;
    }
    const char *colon = strchr(p, ':');
    size_t n = colon ? (size_t)(colon - p) : strlen(p);
    if (n == 0 || n > FN_NAME_MAX)
        return false;
    memcpy(name, p, n);
    name[n] = '\0';
    qual[0] = '\0';
    if (colon) {
        if (strlen(colon + 1) > AWS_QUAL_MAX)
            return false;
        snprintf(qual, AWS_QUAL_MAX + 1, "%s", colon + 1);
        if (!aws_qualifier_valid(qual))
            return false;
    }
    return validate_function_name(name);
}

/* --- the operation table --- */

enum aws_op_kind {
    OP_FUNCTIONS,   /* /functions */
    OP_FUNCTION,    /* /functions/{name} */
    OP_CONFIG,      /* …/configuration */
    OP_CODE,        /* …/code */
    OP_INVOCATIONS, /* …/invocations */
    OP_VERSIONS,    /* …/versions */
    OP_ALIASES,     /* …/aliases */
    OP_ALIAS,       /* …/aliases/{alias} */
};

struct aws_op {
    const char *method;
    enum aws_op_kind kind;
    auth_scope scope;
    const char *name; /* for logs */
};

static const struct aws_op ops[] = {
    {"POST", OP_FUNCTIONS, AUTH_SCOPE_DEPLOY, "CreateFunction"},
    {"GET", OP_FUNCTIONS, AUTH_SCOPE_READ, "ListFunctions"},
    {"GET", OP_FUNCTION, AUTH_SCOPE_READ, "GetFunction"},
    {"DELETE", OP_FUNCTION, AUTH_SCOPE_DEPLOY, "DeleteFunction"},
    {"GET", OP_CONFIG, AUTH_SCOPE_READ, "GetFunctionConfiguration"},
    {"PUT", OP_CONFIG, AUTH_SCOPE_DEPLOY, "UpdateFunctionConfiguration"},
    {"PUT", OP_CODE, AUTH_SCOPE_DEPLOY, "UpdateFunctionCode"},
    {"POST", OP_INVOCATIONS, AUTH_SCOPE_INVOKE, "Invoke"},
    {"POST", OP_VERSIONS, AUTH_SCOPE_DEPLOY, "PublishVersion"},
    {"POST", OP_ALIASES, AUTH_SCOPE_DEPLOY, "CreateAlias"},
    {"GET", OP_ALIASES, AUTH_SCOPE_READ, "ListAliases"},
    {"GET", OP_ALIAS, AUTH_SCOPE_READ, "GetAlias"},
    {"PUT", OP_ALIAS, AUTH_SCOPE_DEPLOY, "UpdateAlias"},
    {"DELETE", OP_ALIAS, AUTH_SCOPE_DEPLOY, "DeleteAlias"},
};

/* What the path names: the kind, and its raw name and alias segments. */
struct aws_path {
    enum aws_op_kind kind;
    const char *fn, *alias;
    size_t fn_len, alias_len;
};

/* Splits "/2015-03-31/functions[/{fn}[/{what}[/{alias}]]]" (a trailing
 * '/' allowed, as botocore sends ListFunctions). False for anything else. */
static bool parse_path(const char *path, struct aws_path *p)
{
    static const char base[] = AWS_LAMBDA_PREFIX "functions";
    memset(p, 0, sizeof *p);
    if (strncmp(path, base, sizeof base - 1) != 0)
        return false;
    const char *s = path + sizeof base - 1;
    p->kind = OP_FUNCTIONS;
    if (*s == '\0' || strcmp(s, "/") == 0)
        return true;
    if (*s++ != '/')
        return false;
    p->fn = s;
    p->fn_len = strcspn(s, "/");
    s += p->fn_len;
    p->kind = OP_FUNCTION;
    if (p->fn_len == 0)
        return false;
    if (*s == '\0')
        return true;
    s++;
    size_t n = strcspn(s, "/");
    static const struct {
        const char *word;
        enum aws_op_kind kind;
    } tails[] = {{"configuration", OP_CONFIG},
                 {"code", OP_CODE},
                 {"invocations", OP_INVOCATIONS},
                 {"versions", OP_VERSIONS},
                 {"aliases", OP_ALIASES}};
    bool found = false;
    for (size_t i = 0; i < sizeof tails / sizeof *tails && !found; i++)
        if (strlen(tails[i].word) == n && strncmp(s, tails[i].word, n) == 0) {
            p->kind = tails[i].kind;
            found = true;
        }
    if (!found)
        return false;
    s += n;
    if (*s == '\0' || (s[0] == '/' && s[1] == '\0'))
        return true;
    if (p->kind != OP_ALIASES)
        return false;
    p->alias = s + 1;
    p->alias_len = strcspn(p->alias, "/");
    p->kind = OP_ALIAS;
    return p->alias_len > 0 && p->alias[p->alias_len] == '\0';
}

bool aws_lambda_owns(const char *path)
{
    return strncmp(path, AWS_LAMBDA_PREFIX, sizeof AWS_LAMBDA_PREFIX - 1) == 0 ||
           strcmp(path, "/" AWS_LAMBDA_SEGMENT) == 0;
}

static const struct aws_op *find_op(const char *method, enum aws_op_kind kind, bool *known)
{
    *known = false;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        if (ops[i].kind != kind)
            continue;
        *known = true;
        if (strcmp(ops[i].method, method) == 0)
            return &ops[i];
    }
    return NULL;
}

/* --- signatures --- */

/* The request's headers by lowercase name, repeats joined with ','. */
struct header_set {
    gw_request *req;
    const char *want;
    buf joined;
    bool found;
};

static void header_visit(const gw_pair *p, void *ud)
{
    struct header_set *hs = ud;
    if (strlen(hs->want) != p->name_len || strncasecmp(p->name, hs->want, p->name_len) != 0)
        return;
    if (hs->found)
        buf_append(&hs->joined, ",", 1);
    buf_append(&hs->joined, p->value, p->value_len);
    hs->found = true;
}

static const char *header_get(const char *name, void *ud)
{
    struct header_set *hs = ud;
    buf_reset(&hs->joined);
    hs->want = name;
    hs->found = false;
    gw_each_header(hs->req, header_visit, hs);
    if (!hs->found)
        return NULL;
    if (buf_append(&hs->joined, "", 0) < 0 || !hs->joined.data)
        return "";
    return hs->joined.data;
}

struct param_set {
    aws_sigv4_param p[PARAMS_MAX];
    size_t n;
    bool too_many, presigned;
};

static void param_visit(const gw_pair *pr, void *ud)
{
    struct param_set *ps = ud;
    if (pr->name_len >= 6 && strncasecmp(pr->name, "X-Amz-", 6) == 0)
        ps->presigned = true;
    if (ps->n == PARAMS_MAX) {
        ps->too_many = true;
        return;
    }
    ps->p[ps->n++] = (aws_sigv4_param){pr->name, pr->value, pr->name_len, pr->value_len};
}

/* Every x-amz-* header sent must be signed (AWS's rule): otherwise
 * X-Amz-Invocation-Type, say, could be changed on the way. */
struct unsigned_check {
    const aws_sigv4_auth *a;
    char name[AWS_SIGV4_HEADER_NAME + 1];
    bool found;
};

static void unsigned_visit(const gw_pair *p, void *ud)
{
    struct unsigned_check *uc = ud;
    if (uc->found || p->name_len < 6 || strncasecmp(p->name, "x-amz-", 6) != 0)
        return;
    for (unsigned i = 0; i < uc->a->nheaders; i++)
        if (strlen(uc->a->headers[i]) == p->name_len &&
            strncasecmp(uc->a->headers[i], p->name, p->name_len) == 0)
            return;
    uc->found = true;
    safetext_copy(uc->name, sizeof uc->name, p->name, p->name_len);
}

static bool all_amz_signed(gw_request *req, const aws_sigv4_auth *a)
{
    struct unsigned_check uc = {.a = a};
    gw_each_header(req, unsigned_visit, &uc);
    if (uc.found)
        aws_error(req, 403, "InvalidSignatureException",
                  "header %s is sent but not signed: list it in SignedHeaders", uc.name);
    return !uc.found;
}

/* The body's SHA-256, checked against x-amz-content-sha256 when sent. */
static bool payload_hash(gw_request *req, char hex[AWS_SIGV4_HEX_LEN + 1])
{
    size_t len;
    const void *body = gw_body(req, &len);
    aws_sigv4_sha256_hex(body, len, hex);
    const char *claimed = gw_header(req, "x-amz-content-sha256");
    if (!claimed)
        return true;
    if (strcmp(claimed, hex) == 0)
        return true;
    aws_error(req, 403, "InvalidSignatureException",
              strcmp(claimed, "UNSIGNED-PAYLOAD") == 0
                  ? "UNSIGNED-PAYLOAD is not accepted: sign the body's SHA-256"
                  : "x-amz-content-sha256 does not match the body");
    return false;
}

/* Recomputes the signature with `secret`: true when it is the one sent.
 * Answers 403 when a signed header is missing or the request too odd. */
static bool signature_matches(gw_request *req, const aws_sigv4_auth *a, const char *secret,
                              const char *amz_date, const struct param_set *ps, const char *hash)
{
    struct header_set hs = {.req = req};
    buf_init(&hs.joined, 8192);
    aws_sigv4_request r = {.method = gw_method(req),
                           .path = gw_path(req),
                           .params = ps->p,
                           .nparams = ps->n,
                           .header = header_get,
                           .header_ud = &hs,
                           .payload_hash = hash};
    buf canon;
    buf_init(&canon, CANONICAL_MAX);
    int rc = aws_sigv4_canonical(&r, a, &canon);
    buf_release(&hs.joined);
    bool ok = false;
    if (rc == 0) {
        unsigned char sig[32];
        aws_sigv4_sign(secret, strlen(secret), a, amz_date, canon.data, canon.len, sig);
        ok = aws_sigv4_equal(a, sig);
        sodium_memzero(sig, sizeof sig);
    }
    buf_release(&canon);
    if (rc == -ENOENT)
        aws_error(req, 403, "InvalidSignatureException",
                  "a header listed in SignedHeaders is not in the request");
    else if (rc < 0)
        aws_error(req, 403, "InvalidSignatureException", "the request is too large to sign");
    else if (!ok)
        aws_error(req, 403, "InvalidSignatureException",
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method.");
    return rc == 0 && ok;
}

/* Parses the Authorization header and finds its key's token: NULL having
 * answered when either fails. */
static const auth_token *find_key(hearth *h, gw_request *req, aws_sigv4_auth *a)
{
    char err[160];
    const char *value = gw_header(req, "Authorization");
    if (!value) {
        aws_error(req, 403, "MissingAuthenticationTokenException",
                  "sign the request with AWS Signature Version 4: the access key id is a Hearth "
                  "token's id, the secret access key the token");
        return NULL;
    }
    if (aws_sigv4_parse(value, a, err, sizeof err) < 0) {
        aws_error(req, 403, "InvalidSignatureException", "%s", err);
        return NULL;
    }
    if (strcmp(a->service, "lambda") != 0) {
        aws_error(req, 403, "InvalidSignatureException",
                  "the credential scope's service must be lambda");
        return NULL;
    }
    const auth_token *t = auth_find_id(h->auth, a->akid);
    if (!t)
        aws_error(req, 403, "UnrecognizedClientException",
                  "The security token included in the request is invalid: no live Hearth token "
                  "has this access key id");
    return t;
}

/* The signature's checks in order: the form, the date, the key, the body,
 * then the signature itself. The token found, or NULL having answered. */
static const auth_token *authenticate(hearth *h, gw_request *req)
{
    struct param_set ps = {.n = 0};
    gw_each_query(req, param_visit, &ps);
    if (ps.presigned) {
        aws_error(req, 403, "InvalidSignatureException",
                  "presigned requests (X-Amz-* in the query) are not supported: sign the "
                  "Authorization header");
        return NULL;
    }
    if (ps.too_many) {
        aws_error(req, 400, "InvalidParameterValueException", "too many query parameters");
        return NULL;
    }
    aws_sigv4_auth a;
    const auth_token *t = find_key(h, req, &a);
    if (!t)
        return NULL;
    const char *amz_date = gw_header(req, "X-Amz-Date");
    int rc = aws_sigv4_check_date(amz_date, &a, timefmt_now_ms() / 1000);
    if (rc < 0) {
        aws_error(req, 403, "InvalidSignatureException",
                  rc == -ERANGE
                      ? "Signature expired: X-Amz-Date is more than 15 minutes from "
                        "the server's time"
                      : "X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z' on the credential's date");
        return NULL;
    }
    char hash[AWS_SIGV4_HEX_LEN + 1], secret[AUTH_SECRET_LEN + 1];
    if (!all_amz_signed(req, &a) || !payload_hash(req, hash))
        return NULL;
    rc = auth_sigv4_secret(h->auth, t, secret);
    if (rc < 0) {
        aws_error(req, 403, "UnrecognizedClientException",
                  rc == -ENOKEY ? "token '%s' was made before Hearth kept secrets for AWS "
                                  "signatures: create a new token to sign AWS requests"
                                : "token '%s' cannot sign AWS requests (its sealed secret does "
                                  "not open with this daemon's key): create a new token",
                  t->name);
        return NULL;
    }
    bool ok = signature_matches(req, &a, secret, amz_date, &ps, hash);
    sodium_memzero(secret, sizeof secret);
    return ok ? t : NULL;
}

static bool verify(hearth *h, gw_request *req, const struct aws_op *op, const char *fn)
{
    aws_caller = NULL;
    if (auth_off(h->auth)) {
        gw_set_principal(req, "no-auth", "");
        return true;
    }
    const auth_token *t = authenticate(h, req);
    if (!t)
        return false;
    gw_set_principal(req, t->name, t->id);
    auth_verdict v = auth_check_token(t, op->scope, fn);
    if (v == AUTH_NO_SCOPE) {
        aws_error(req, 403, "AccessDeniedException", "the token '%s' lacks the '%s' scope for %s",
                  t->name, auth_scope_name(op->scope), op->name);
        return false;
    }
    if (v == AUTH_NO_FUNCTION) {
        aws_error(req, 403, "AccessDeniedException",
                  "the token '%s' may only reach functions matching '%s'; '%s' does not", t->name,
                  t->functions, fn);
        return false;
    }
    aws_caller = t;
    return true;
}

size_t aws_lambda_body_limit(hearth *h, gw_request *req)
{
    struct aws_path p;
    bool known;
    const struct aws_op *op =
        parse_path(gw_path(req), &p) ? find_op(gw_method(req), p.kind, &known) : NULL;
    if (op && op->kind == OP_INVOCATIONS)
        return h->set.max_body;
    if (!op || (op->kind != OP_FUNCTIONS && op->kind != OP_CODE) || op->scope != AUTH_SCOPE_DEPLOY)
        return HEARTH_MAX_OTHER_BODY;
    if (auth_off(h->auth))
        return HEARTH_MAX_DEPLOY_BODY;
    /* Only a live key that may deploy gets a package's worth buffered; the
     * signature over it is checked once it is in. */
    aws_sigv4_auth a;
    char err[8];
    if (aws_sigv4_parse(gw_header(req, "Authorization"), &a, err, sizeof err) < 0)
        return HEARTH_MAX_OTHER_BODY;
    const auth_token *t = auth_find_id(h->auth, a.akid);
    return t && auth_check_token(t, AUTH_SCOPE_DEPLOY, NULL) == AUTH_OK ? HEARTH_MAX_DEPLOY_BODY
                                                                        : HEARTH_MAX_OTHER_BODY;
}

/* --- dispatch --- */

static void run_op(hearth *h, gw_request *req, const struct aws_op *op, const char *name,
                   const char *qual, const char *alias)
{
    switch (op->kind) {
    case OP_FUNCTIONS:
        if (strcmp(op->method, "POST") == 0)
            aws_create_function(h, req);
        else
            aws_list_functions(h, req);
        return;
    case OP_FUNCTION:
        if (strcmp(op->method, "GET") == 0)
            aws_get_function(h, req, name, qual, true);
        else
            aws_delete_function(h, req, name, qual);
        return;
    case OP_CONFIG:
        if (strcmp(op->method, "GET") == 0)
            aws_get_function(h, req, name, qual, false);
        else
            aws_update_config(h, req, name);
        return;
    case OP_CODE:
        aws_update_code(h, req, name);
        return;
    case OP_INVOCATIONS:
        aws_invoke(h, req, name, qual);
        return;
    case OP_VERSIONS:
        aws_publish_version(h, req, name);
        return;
    case OP_ALIASES:
        if (strcmp(op->method, "POST") == 0)
            aws_alias_create(h, req, name);
        else
            aws_alias_list(h, req, name);
        return;
    case OP_ALIAS:
        if (strcmp(op->method, "GET") == 0)
            aws_alias_get(h, req, name, alias);
        else if (strcmp(op->method, "PUT") == 0)
            aws_alias_update(h, req, name, alias);
        else
            aws_alias_delete(h, req, name, alias);
        return;
    }
}

/* Percent-decodes a path segment into out (cap bytes, NUL-terminated):
 * false when it does not decode, does not fit, or holds a NUL byte. */
static bool decode_segment(const char *seg, size_t len, char *out, size_t cap)
{
    ssize_t n = gw_unescape(seg, len, out, cap - 1);
    if (n < 0 || memchr(out, '\0', (size_t)n))
        return false;
    out[n] = '\0';
    return true;
}

/* The Qualifier query parameter onto qual: it must agree with one given
 * in FunctionName. False having answered 400. */
static bool take_qualifier(gw_request *req, char qual[AWS_QUAL_MAX + 1])
{
    size_t len = 0;
    const char *q = gw_query(req, "Qualifier", &len);
    if (!q)
        return true;
    if (len != strlen(q) || len > AWS_QUAL_MAX || !aws_qualifier_valid(q) ||
        (qual[0] && strcmp(qual, q) != 0)) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "Qualifier must be $LATEST, a version number or an alias name, and agree with "
                  "the one in FunctionName");
        return false;
    }
    memcpy(qual, q, len + 1);
    return true;
}

/* Decodes the name segment (and ?Qualifier=) into name and qual, and the
 * alias segment into alias. False having answered 400. */
static bool take_names(gw_request *req, const struct aws_path *p, char name[FN_NAME_MAX + 1],
                       char qual[AWS_QUAL_MAX + 1], char alias[FN_ALIAS_MAX + 1])
{
    char raw[256];
    name[0] = qual[0] = alias[0] = '\0';
    if (!p->fn)
        return true;
    if (!decode_segment(p->fn, p->fn_len, raw, sizeof raw) ||
        !split_function_name(raw, name, qual)) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "FunctionName must be a Hearth function name ([a-z0-9][a-z0-9-]{0,62}), "
                  "optionally with :QUALIFIER, or its ARN");
        return false;
    }
    if (!take_qualifier(req, qual))
        return false;
    if (p->alias && (!decode_segment(p->alias, p->alias_len, raw, FN_ALIAS_MAX + 1) ||
                     !aws_alias_name_valid(raw))) {
        aws_error(req, 400, "InvalidParameterValueException",
                  "alias names match [a-z][a-z0-9_-]{0,62}");
        return false;
    }
    if (p->alias)
        memcpy(alias, raw, strlen(raw) + 1);
    return true;
}

void aws_lambda_handle(hearth *h, gw_request *req)
{
    struct aws_path p;
    if (!parse_path(gw_path(req), &p)) {
        aws_error(req, 404, "ResourceNotFoundException", "no Lambda operation at this path");
        return;
    }
    bool known;
    const struct aws_op *op = find_op(gw_method(req), p.kind, &known);
    if (!op) {
        aws_error(req, known ? 405 : 404,
                  known ? "InvalidRequestContentException" : "ResourceNotFoundException",
                  "%s is not supported on this path", gw_method(req));
        return;
    }
    if (h->stopping) {
        aws_error(req, 503, "ServiceException", "the daemon is shutting down");
        return;
    }
    /* Too large first: a cut body could never match its signature. */
    if (gw_body_too_large(req)) {
        aws_error(req, 413, "RequestTooLargeException", "the body is larger than %zu bytes",
                  aws_lambda_body_limit(h, req));
        return;
    }
    char name[FN_NAME_MAX + 1], qual[AWS_QUAL_MAX + 1], alias[FN_ALIAS_MAX + 1];
    if (!take_names(req, &p, name, qual, alias) || !verify(h, req, op, name[0] ? name : NULL))
        return;
    dlog_debug("aws %s %s", op->name, name);
    run_op(h, req, op, name, qual, alias);
    aws_caller = NULL;
}
