/*
 * aws_sigv4.h — AWS Signature Version 4, the verifying side: parsing the
 * Authorization header, building the canonical request exactly as the
 * spec does, and computing the signature with libsodium's SHA-256 and
 * HMAC-SHA256. Knows nothing of HTTP servers or tokens: the caller hands
 * in the request's parts and the secret (aws_lambda.c).
 */
#ifndef HEARTH_AWS_SIGV4_H
#define HEARTH_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define AWS_SIGV4_ALGORITHM   "AWS4-HMAC-SHA256"
#define AWS_SIGV4_AKID_MAX    64
#define AWS_SIGV4_SCOPE_MAX   63 /* region and service */
#define AWS_SIGV4_HEADERS_MAX 32 /* signed headers */
#define AWS_SIGV4_HEADER_NAME 64
#define AWS_SIGV4_MAX_SKEW_S  (15 * 60)
#define AWS_SIGV4_HEX_LEN     64

/* The parts of an Authorization header:
 * AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request,
 *   SignedHeaders=host;x-amz-date, Signature=<64 hex> */
typedef struct aws_sigv4_auth {
    char akid[AWS_SIGV4_AKID_MAX + 1];
    char date[9]; /* YYYYMMDD */
    char region[AWS_SIGV4_SCOPE_MAX + 1];
    char service[AWS_SIGV4_SCOPE_MAX + 1];
    char headers[AWS_SIGV4_HEADERS_MAX][AWS_SIGV4_HEADER_NAME + 1]; /* lowercase, sorted */
    unsigned nheaders;
    unsigned char signature[32];
} aws_sigv4_auth;

/* Parses `value`. 0, or -EINVAL with a sentence in err (never quoting the
 * signature). Signed headers must be lowercase, sorted, unique, and
 * include host. */
int aws_sigv4_parse(const char *value, aws_sigv4_auth *out, char *err, size_t cap);

/* Checks an X-Amz-Date ("20150830T123600Z") against the credential's date
 * and `now_s` (unix seconds): 0, -EINVAL (malformed or another day than
 * the scope's), -ERANGE (more than AWS_SIGV4_MAX_SKEW_S away). */
int aws_sigv4_check_date(const char *amz_date, const aws_sigv4_auth *a, int64_t now_s);

/* Appends UriEncode(s) per the spec: A-Z a-z 0-9 - _ . ~ as they are,
 * every other byte as %XX (uppercase); '/' kept when keep_slash. */
int aws_sigv4_uri_encode(buf *out, const char *s, size_t len, bool keep_slash);

/* The canonical request's header lines: `get` returns the value of a
 * lowercase header name (NULL when absent; repeated headers joined with
 * ','). -ENOENT when a signed header is absent. */
typedef const char *(*aws_sigv4_header_fn)(const char *name, void *ud);

/* One query parameter, decoded. */
typedef struct aws_sigv4_param {
    const char *name, *value;
    size_t name_len, value_len;
} aws_sigv4_param;

/* What the canonical request is built from. `path` is the path as sent
 * (still percent-encoded; it is encoded once more, as for every service
 * but S3), the query parameters decoded (any order), the payload hash as
 * lowercase hex. */
typedef struct aws_sigv4_request {
    const char *method;
    const char *path;
    const aws_sigv4_param *params;
    size_t nparams;
    aws_sigv4_header_fn header;
    void *header_ud;
    const char *payload_hash; /* 64 lowercase hex */
} aws_sigv4_request;

/* Writes the canonical request into out. 0, -ENOENT (a signed header is
 * absent), -ENOMEM. */
int aws_sigv4_canonical(const aws_sigv4_request *r, const aws_sigv4_auth *a, buf *out);

/* The signature of `canonical` with `secret` at `amz_date` under a's
 * scope. */
void aws_sigv4_sign(const char *secret, size_t secret_len, const aws_sigv4_auth *a,
                    const char *amz_date, const char *canonical, size_t canonical_len,
                    unsigned char sig[32]);

/* Lowercase hex SHA-256 of data, into hex[65]. */
void aws_sigv4_sha256_hex(const void *data, size_t len, char hex[AWS_SIGV4_HEX_LEN + 1]);

/* True when a's signature equals sig (constant time). */
bool aws_sigv4_equal(const aws_sigv4_auth *a, const unsigned char sig[32]);

#endif
