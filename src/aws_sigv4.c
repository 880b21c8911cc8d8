/*
 * aws_sigv4.c — verifying AWS Signature Version 4 (the Authorization
 * header form), per docs.aws.amazon.com "Create a signed AWS API request".
 *
 * The canonical request is rebuilt from what arrived, never from what the
 * client says it signed: method, the path as sent encoded once more (every
 * service but S3 double-encodes), the query re-encoded and sorted, the
 * signed headers' values trimmed with inner runs of spaces collapsed, the
 * signed header list, and the payload's hash. The signing key is the HMAC
 * chain "AWS4"+secret → date → region → service → "aws4_request".
 *
 * Owns: the format rules. Must never: compare a signature in variable
 * time, quote a signature in an error, or accept a header list without
 * host.
 */
#include "aws_sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define CRED_PREFIX "Credential="
#define SH_PREFIX   "SignedHeaders="
#define SIG_PREFIX  "Signature="

static int fail(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "%s", msg);
    return -EINVAL;
}

/* Copies the `len` bytes at s into dst (cap bytes) when they fit and are
 * in the allowed alphabet (lowercase letters, digits, '-'). */
static bool take_word(char *dst, size_t cap, const char *s, size_t len)
{
    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
            return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* The access key id: printable ASCII, no '/', no spaces. */
static bool take_akid(char *dst, size_t cap, const char *s, size_t len)
{
    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/')
            return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* Credential=AKID/YYYYMMDD/region/service/aws4_request */
static int parse_credential(const char *s, size_t len, aws_sigv4_auth *a, char *err, size_t cap)
{
    const char *parts[5];
    size_t lens[5], n = 0;
    const char *p = s, *end = s + len;
    while (n < 5) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        parts[n] = p;
        lens[n] = slash ? (size_t)(slash - p) : (size_t)(end - p);
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (n != 5 || parts[4] + lens[4] != end)
        return fail(err, cap, "Credential must be AKID/DATE/REGION/SERVICE/aws4_request");
    if (!take_akid(a->akid, sizeof a->akid, parts[0], lens[0]))
        return fail(err, cap, "the access key id in Credential is malformed");
    if (lens[1] != 8 || !take_word(a->date, sizeof a->date, parts[1], 8))
        return fail(err, cap, "the date in Credential must be YYYYMMDD");
    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)a->date[i]))
            return fail(err, cap, "the date in Credential must be YYYYMMDD");
    if (!take_word(a->region, sizeof a->region, parts[2], lens[2]) ||
        !take_word(a->service, sizeof a->service, parts[3], lens[3]))
        return fail(err, cap, "the region or service in Credential is malformed");
    if (lens[4] != 12 || memcmp(parts[4], "aws4_request", 12) != 0)
        return fail(err, cap, "Credential must end in aws4_request");
    return 0;
}

/* SignedHeaders=a;b;c: lowercase, strictly sorted (so unique), host among them. */
static int parse_signed_headers(const char *s, size_t len, aws_sigv4_auth *a, char *err, size_t cap)
{
    bool host = false;
    a->nheaders = 0;
    const char *p = s, *end = s + len;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t n = semi ? (size_t)(semi - p) : (size_t)(end - p);
        if (a->nheaders == AWS_SIGV4_HEADERS_MAX || n == 0 || n > AWS_SIGV4_HEADER_NAME)
            return fail(err, cap, "SignedHeaders is malformed or too long");
        char *dst = a->headers[a->nheaders];
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!(islower(c) || isdigit(c) || c == '-' || c == '_'))
                return fail(err, cap, "SignedHeaders names must be lowercase header names");
            dst[i] = (char)c;
        }
        dst[n] = '\0';
        if (a->nheaders && strcmp(a->headers[a->nheaders - 1], dst) >= 0)
            return fail(err, cap, "SignedHeaders must be sorted and unique");
        host |= strcmp(dst, "host") == 0;
        a->nheaders++;
        if (!semi)
            break;
        p = semi + 1;
    }
    if (!host)
        return fail(err, cap, "SignedHeaders must include host");
    return 0;
}

static int parse_signature(const char *s, size_t len, aws_sigv4_auth *a, char *err, size_t cap)
{
    if (len != AWS_SIGV4_HEX_LEN)
        return fail(err, cap, "Signature must be 64 hex digits");
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return fail(err, cap, "Signature must be 64 lowercase hex digits");
    size_t bin_len;
    if (sodium_hex2bin(a->signature, sizeof a->signature, s, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != sizeof a->signature)
        return fail(err, cap, "Signature must be 64 hex digits");
    return 0;
}

int aws_sigv4_parse(const char *value, aws_sigv4_auth *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    size_t alg = sizeof AWS_SIGV4_ALGORITHM - 1;
    if (!value || strncmp(value, AWS_SIGV4_ALGORITHM, alg) != 0 || value[alg] != ' ')
        return fail(err, cap, "the Authorization header must use AWS4-HMAC-SHA256");
    bool seen[3] = {false, false, false};
    const char *p = value + alg;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ", ");
        int rc;
        if (n > 11 && strncmp(p, CRED_PREFIX, 11) == 0 && !seen[0]) {
            rc = parse_credential(p + 11, n - 11, out, err, cap);
            seen[0] = true;
        } else if (n > 14 && strncmp(p, SH_PREFIX, 14) == 0 && !seen[1]) {
            rc = parse_signed_headers(p + 14, n - 14, out, err, cap);
            seen[1] = true;
        } else if (n > 10 && strncmp(p, SIG_PREFIX, 10) == 0 && !seen[2]) {
            rc = parse_signature(p + 10, n - 10, out, err, cap);
            seen[2] = true;
        } else {
            rc = fail(err, cap, "the Authorization header has an unknown or repeated part");
        }
        if (rc < 0)
            return rc;
        p += n;
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return fail(err, cap,
                    "the Authorization header needs Credential, SignedHeaders and "
                    "Signature");
    return 0;
}

int aws_sigv4_check_date(const char *d, const aws_sigv4_auth *a, int64_t now_s)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z' || memcmp(d, a->date, 8) != 0)
        return -EINVAL;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return -EINVAL;
    int v[6];
    static const int off[6] = {0, 4, 6, 9, 11, 13}, len[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        v[i] = 0; /* digits, checked above */
        for (int k = 0; k < len[i]; k++)
            v[i] = v[i] * 10 + (d[off[i] + k] - '0');
    }
    struct tm tm = {.tm_year = v[0] - 1900,
                    .tm_mon = v[1] - 1,
                    .tm_mday = v[2],
                    .tm_hour = v[3],
                    .tm_min = v[4],
                    .tm_sec = v[5]};
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return -EINVAL;
    int64_t t = (int64_t)timegm(&tm);
    int64_t skew = t > now_s ? t - now_s : now_s - t;
    return skew > AWS_SIGV4_MAX_SKEW_S ? -ERANGE : 0;
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int aws_sigv4_uri_encode(buf *out, const char *s, size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = buf_append(out, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(out, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The encoded parameters, sorted by name then value (byte order). */
struct enc_param {
    char *name, *value;
};

static int enc_cmp(const void *x, const void *y)
{
    const struct enc_param *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : strcmp(a->value, b->value);
}

static char *encoded(const char *s, size_t len)
{
    buf b;
    buf_init(&b, 3 * len + 1);
    if (aws_sigv4_uri_encode(&b, s, len, false) < 0 || buf_append(&b, "", 0) < 0) {
        buf_release(&b);
        return NULL;
    }
    size_t n;
    char *d = buf_detach(&b, &n);
    return d ? d : strdup("");
}

static int append_query(buf *out, const aws_sigv4_request *r)
{
    struct enc_param *ps = calloc(r->nparams ? r->nparams : 1, sizeof *ps);
    int rc = ps ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < r->nparams; i++) {
        ps[i].name = encoded(r->params[i].name, r->params[i].name_len);
        ps[i].value = encoded(r->params[i].value, r->params[i].value_len);
        if (!ps[i].name || !ps[i].value)
            rc = -ENOMEM;
    }
    if (rc == 0)
        qsort(ps, r->nparams, sizeof *ps, enc_cmp);
    for (size_t i = 0; rc == 0 && i < r->nparams; i++) {
        if (i)
            rc = buf_append(out, "&", 1);
        if (rc == 0)
            rc = buf_append(out, ps[i].name, strlen(ps[i].name));
        if (rc == 0)
            rc = buf_append(out, "=", 1);
        if (rc == 0)
            rc = buf_append(out, ps[i].value, strlen(ps[i].value));
    }
    for (size_t i = 0; ps && i < r->nparams; i++) {
        free(ps[i].name);
        free(ps[i].value);
    }
    free(ps);
    return rc;
}

/* name:value\n, the value trimmed and inner runs of spaces made one. */
static int append_header_line(buf *out, const char *name, const char *value)
{
    int rc = buf_append(out, name, strlen(name));
    if (rc == 0)
        rc = buf_append(out, ":", 1);
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    bool space = false;
    for (; rc == 0 && *p; p++) {
        if (*p == ' ' || *p == '\t') {
            space = true;
            continue;
        }
        if (space)
            rc = buf_append(out, " ", 1);
        space = false;
        if (rc == 0)
            rc = buf_append(out, p, 1);
    }
    return rc == 0 ? buf_append(out, "\n", 1) : rc;
}

int aws_sigv4_canonical(const aws_sigv4_request *r, const aws_sigv4_auth *a, buf *out)
{
    int rc = buf_append(out, r->method, strlen(r->method));
    if (rc == 0)
        rc = buf_append(out, "\n", 1);
    if (rc == 0)
        rc = aws_sigv4_uri_encode(out, r->path, strlen(r->path), true);
    if (rc == 0)
        rc = buf_append(out, "\n", 1);
    if (rc == 0)
        rc = append_query(out, r);
    if (rc == 0)
        rc = buf_append(out, "\n", 1);
    for (unsigned i = 0; rc == 0 && i < a->nheaders; i++) {
        const char *v = r->header(a->headers[i], r->header_ud);
        rc = v ? append_header_line(out, a->headers[i], v) : -ENOENT;
    }
    if (rc == 0)
        rc = buf_append(out, "\n", 1);
    for (unsigned i = 0; rc == 0 && i < a->nheaders; i++) {
        if (i)
            rc = buf_append(out, ";", 1);
        if (rc == 0)
            rc = buf_append(out, a->headers[i], strlen(a->headers[i]));
    }
    if (rc == 0)
        rc = buf_append(out, "\n", 1);
    if (rc == 0)
        rc = buf_append(out, r->payload_hash, strlen(r->payload_hash));
    return rc == -E2BIG ? -ENOMEM : rc;
}

void aws_sigv4_sha256_hex(const void *data, size_t len, char hex[AWS_SIGV4_HEX_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(hex, AWS_SIGV4_HEX_LEN + 1, h, sizeof h);
}

static void hmac(unsigned char out[32], const unsigned char *key, size_t key_len, const char *msg,
                 size_t msg_len)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msg_len);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void aws_sigv4_sign(const char *secret, size_t secret_len, const aws_sigv4_auth *a,
                    const char *amz_date, const char *canonical, size_t canonical_len,
                    unsigned char sig[32])
{
    /* The string to sign: algorithm, time, scope, hash of the canonical request. */
    char creq_hex[AWS_SIGV4_HEX_LEN + 1], sts[512];
    aws_sigv4_sha256_hex(canonical, canonical_len, creq_hex);
    int n = snprintf(sts, sizeof sts, "%s\n%s\n%s/%s/%s/aws4_request\n%s", AWS_SIGV4_ALGORITHM,
                     amz_date, a->date, a->region, a->service, creq_hex);
    unsigned char key[4 + 128], k[32];
    size_t klen = secret_len < 128 ? secret_len : 128;
    memcpy(key, "AWS4", 4);
    memcpy(key + 4, secret, klen);
    hmac(k, key, 4 + klen, a->date, strlen(a->date));
    hmac(k, k, sizeof k, a->region, strlen(a->region));
    hmac(k, k, sizeof k, a->service, strlen(a->service));
    hmac(k, k, sizeof k, "aws4_request", 12);
    hmac(sig, k, sizeof k, sts, (size_t)n < sizeof sts ? (size_t)n : sizeof sts - 1);
    sodium_memzero(key, sizeof key);
    sodium_memzero(k, sizeof k);
}

bool aws_sigv4_equal(const aws_sigv4_auth *a, const unsigned char sig[32])
{
    return sodium_memcmp(a->signature, sig, 32) == 0;
}
