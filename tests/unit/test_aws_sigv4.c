/*
 * test_aws_sigv4.c — Signature Version 4 against published values: the
 * worked example of AWS's documentation ("Create a signed AWS API
 * request": IAM ListUsers, secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 * signature 5d672d79…, reproduced with Python's hmac/hashlib), and a
 * Lambda request signed by botocore's SigV4Auth (python3-botocore 1.43:
 * double-encoded path, sorted re-encoded query, a signed x-amz header).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "aws_sigv4.h"

struct hdr {
    const char *name, *value;
};

static const char *get_header(const char *name, void *ud)
{
    for (const struct hdr *h = ud; h->name; h++)
        if (strcmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

static void hex_of(const unsigned char sig[32], char out[65])
{
    sodium_bin2hex(out, 65, sig, 32);
}

static void test_aws_documented_example(void **state)
{
    (void)state;
    const char *authz =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    aws_sigv4_auth a;
    char err[160];
    assert_int_equal(aws_sigv4_parse(authz, &a, err, sizeof err), 0);
    assert_string_equal(a.akid, "AKIDEXAMPLE");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "iam");
    assert_int_equal(a.nheaders, 3);
    struct hdr hs[] = {{"content-type", "application/x-www-form-urlencoded;   charset=utf-8"},
                       {"host", "  iam.amazonaws.com "},
                       {"x-amz-date", "20150830T123600Z"},
                       {NULL, NULL}};
    aws_sigv4_param ps[] = {{"Version", "2010-05-08", 7, 10}, {"Action", "ListUsers", 6, 9}};
    char hash[65];
    aws_sigv4_sha256_hex("", 0, hash);
    aws_sigv4_request r = {"GET", "/", ps, 2, get_header, hs, hash};
    buf b;
    buf_init(&b, 4096);
    assert_int_equal(aws_sigv4_canonical(&r, &a, &b), 0);
    assert_string_equal(b.data, "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
                                "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
                                "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                "content-type;host;x-amz-date\n"
                                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char creq_hash[65];
    aws_sigv4_sha256_hex(b.data, b.len, creq_hash);
    assert_string_equal(creq_hash,
                        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    unsigned char sig[32];
    const char *secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    aws_sigv4_sign(secret, strlen(secret), &a, "20150830T123600Z", b.data, b.len, sig);
    char hex[65];
    hex_of(sig, hex);
    assert_string_equal(hex, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    assert_true(aws_sigv4_equal(&a, sig));
    sig[31] ^= 1;
    assert_false(aws_sigv4_equal(&a, sig));
    buf_release(&b);
}

static void test_botocore_lambda_request(void **state)
{
    (void)state;
    const char *authz =
        "AWS4-HMAC-SHA256 Credential=0123456789abcdef/20261204/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-invocation-type, "
        "Signature=baf5eb50086147879f86bf94d37dcbe085bfd334e4bcba73d364dffee0c5d0d0";
    aws_sigv4_auth a;
    char err[160];
    assert_int_equal(aws_sigv4_parse(authz, &a, err, sizeof err), 0);
    struct hdr hs[] = {{"host", "127.0.0.1:8080"},
                       {"x-amz-date", "20261204T131857Z"},
                       {"x-amz-invocation-type", "Event"},
                       {NULL, NULL}};
    aws_sigv4_param ps[] = {{"Qualifier", "a b", 9, 3}, {"Z", "1", 1, 1}, {"A", "2", 1, 1}};
    const char *body = "{\"x\": 1}";
    char hash[65];
    aws_sigv4_sha256_hex(body, strlen(body), hash);
    aws_sigv4_request r = {
        "POST", "/2015-03-31/functions/f%3Aprod/invocations", ps, 3, get_header, hs, hash};
    buf b;
    buf_init(&b, 4096);
    assert_int_equal(aws_sigv4_canonical(&r, &a, &b), 0);
    assert_non_null(strstr(b.data, "\n/2015-03-31/functions/f%253Aprod/invocations\n"
                                   "A=2&Qualifier=a%20b&Z=1\n"));
    unsigned char sig[32];
    aws_sigv4_sign("hth_secret", 10, &a, "20261204T131857Z", b.data, b.len, sig);
    assert_true(aws_sigv4_equal(&a, sig));
    /* The body swapped after signing: another payload hash, another signature. */
    buf_reset(&b);
    aws_sigv4_sha256_hex("{\"x\": 2}", 8, hash);
    assert_int_equal(aws_sigv4_canonical(&r, &a, &b), 0);
    aws_sigv4_sign("hth_secret", 10, &a, "20261204T131857Z", b.data, b.len, sig);
    assert_false(aws_sigv4_equal(&a, sig));
    /* A signed header that is not there. */
    hs[2].name = NULL;
    buf_reset(&b);
    assert_int_equal(aws_sigv4_canonical(&r, &a, &b), -ENOENT);
    buf_release(&b);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Bearer hth_x",
        "AWS4-HMAC-SHA256 Credential=K/20261204/us-east-1/lambda/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=" /* no host */
        "baf5eb50086147879f86bf94d37dcbe085bfd334e4bcba73d364dffee0c5d0d0",
        "AWS4-HMAC-SHA256 Credential=K/20261204/us-east-1/lambda/aws4_request, "
        "SignedHeaders=x-amz-date;host, Signature=" /* not sorted */
        "baf5eb50086147879f86bf94d37dcbe085bfd334e4bcba73d364dffee0c5d0d0",
        "AWS4-HMAC-SHA256 Credential=K/20261204/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=baf5", /* short */
        "AWS4-HMAC-SHA256 Credential=K/2026124/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=" /* a bad date */
        "baf5eb50086147879f86bf94d37dcbe085bfd334e4bcba73d364dffee0c5d0d0",
        "AWS4-HMAC-SHA256 Credential=K/20261204/us-east-1/lambda/aws4_request, "
        "SignedHeaders=host", /* no signature */
    };
    aws_sigv4_auth a;
    char err[160];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(aws_sigv4_parse(bad[i], &a, err, sizeof err), -EINVAL);
}

static void test_date_skew(void **state)
{
    (void)state;
    aws_sigv4_auth a = {.date = "20261204"};
    int64_t at = 1796390337; /* 2026-12-04T13:18:57Z */
    assert_int_equal(aws_sigv4_check_date("20261204T131857Z", &a, at), 0);
    assert_int_equal(aws_sigv4_check_date("20261204T131857Z", &a, at + 15 * 60), 0);
    assert_int_equal(aws_sigv4_check_date("20261204T131857Z", &a, at + 15 * 60 + 1), -ERANGE);
    assert_int_equal(aws_sigv4_check_date("20261204T131857Z", &a, at - 3600), -ERANGE);
    assert_int_equal(aws_sigv4_check_date("20261205T001857Z", &a, at), -EINVAL);
    assert_int_equal(aws_sigv4_check_date("20261204 131857Z", &a, at), -EINVAL);
    assert_int_equal(aws_sigv4_check_date(NULL, &a, at), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_documented_example),
        cmocka_unit_test(test_botocore_lambda_request),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_date_skew),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
