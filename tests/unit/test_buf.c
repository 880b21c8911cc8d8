/*
 * test_buf.c — the ceiling of buf, strmap's map behaviour, and timefmt's
 * parsing, safetext's printable copies: the small utilities everything
 * else leans on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "decimal.h"
#include "deploy.h"
#include "reqid.h"
#include "safetext.h"
#include "strmap.h"
#include "timefmt.h"

static void test_decimal_takes_digits_only_and_no_overflow(void **state)
{
    (void)state;
    uint64_t v = 42;
    assert_true(decimal_parse("0", 10, &v) && v == 0);
    assert_true(decimal_parse("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
    assert_false(decimal_parse("18446744073709551616", UINT64_MAX, &v));
    assert_true(decimal_parse("10", 10, &v) && v == 10);
    assert_false(decimal_parse("11", 10, &v));
    v = 42;
    const char *bad[] = {"", " 5", "+5", "-5", "5 ", "1.5", "5x", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(decimal_parse(bad[i], UINT64_MAX, &v));
    assert_false(decimal_parse(NULL, 10, &v));
    assert_int_equal(v, 42); /* a refusal leaves *out alone */
    assert_true(decimal_parse_positive("7", 10, &v) && v == 7);
    assert_false(decimal_parse_positive("07", 10, &v));
    assert_false(decimal_parse_positive("0", 10, &v));
}

static void test_buf_refuses_past_its_ceiling(void **state)
{
    (void)state;
    buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345", 5), 0);
    assert_int_equal(buf_append(&b, "6789", 4), -E2BIG);
    assert_int_equal(b.len, 5); /* nothing of the refused append */
    assert_int_equal(buf_append(&b, "678", 3), 0);
    assert_string_equal(b.data, "12345678");
    buf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    size_t len;
    char *p = buf_detach(&b, &len);
    assert_int_equal(len, 5);
    assert_null(b.data);
    free(p);
}

static void test_strmap_put_get_remove_and_grow(void **state)
{
    (void)state;
    strmap m;
    strmap_init(&m);
    static int values[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "fn-%d", i);
        assert_int_equal(strmap_put(&m, key, &values[i]), 0);
    }
    assert_int_equal(m.count, 2000);
    for (int i = 0; i < 2000; i += 2) {
        snprintf(key, sizeof key, "fn-%d", i);
        assert_ptr_equal(strmap_remove(&m, key), &values[i]);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "fn-%d", i);
        assert_ptr_equal(strmap_get(&m, key), i % 2 ? &values[i] : NULL);
    }
    assert_null(strmap_get(&m, "absent"));
    strmap_release(&m);
}

static void test_timefmt_round_trip_and_parse(void **state)
{
    (void)state;
    char s[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(1795748701234, s);
    assert_string_equal(s, "2026-11-27T03:05:01.234Z");
    timefmt_iso_ms(-1, s);
    assert_string_equal(s, "1969-12-31T23:59:59.999Z");
    int64_t ms;
    assert_int_equal(timefmt_parse("2026-11-27T03:05:01.234Z", &ms), 0);
    assert_int_equal(ms, 1795748701234);
    assert_int_equal(timefmt_parse("2026-11-27T04:05:01+01:00", &ms), 0);
    assert_int_equal(ms, 1795748701000);
    assert_int_equal(timefmt_parse("1795748701234", &ms), 0);
    assert_int_equal(ms, 1795748701234);
    assert_int_equal(timefmt_parse("yesterday", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2026-13-01T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2026-02-29T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2026-04-31T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2100-02-29T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2028-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(timefmt_parse("2000-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(timefmt_parse("", &ms), -EINVAL);
}

static void test_base64_decodes_and_refuses_garbage(void **state)
{
    (void)state;
    unsigned char *out;
    size_t n;
    assert_int_equal(deploy_base64_decode("aGVs\nbG8=", 9, &out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(deploy_base64_decode("aGVsbG8", 7, &out, &n), 0); /* unpadded */
    assert_int_equal(n, 5);
    free(out);
    assert_int_equal(deploy_base64_decode("aGV*bG8=", 8, &out, &n), -EINVAL);
    assert_int_equal(deploy_base64_decode("aG=Vs", 5, &out, &n), -EINVAL);
}

static void test_request_ids_are_uuid4_and_distinct(void **state)
{
    (void)state;
    char a[REQID_LEN + 1], b[REQID_LEN + 1];
    reqid_new(a);
    reqid_new(b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

static void test_safetext_escapes_what_is_not_printable_utf8(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(safetext_copy(out, sizeof out, "zz\0junk", 7), "zz\\x00junk");
    assert_string_equal(safetext_copy(out, sizeof out, "\xff\xfe", 2), "\\xff\\xfe");
    assert_string_equal(safetext_copy(out, sizeof out, "a\r\nb\x7f", 5), "a\\x0d\\x0ab\\x7f");
    /* overlong '/', a surrogate, a C1 control, a cut sequence: all escaped */
    assert_string_equal(safetext_copy(out, sizeof out, "\xc0\xaf", 2), "\\xc0\\xaf");
    assert_string_equal(safetext_copy(out, sizeof out, "\xed\xa0\x80", 3), "\\xed\\xa0\\x80");
    assert_string_equal(safetext_copy(out, sizeof out, "\xc2\x85", 2), "\\xc2\\x85");
    assert_string_equal(safetext_copy(out, sizeof out, "\xc3", 1), "\\xc3");
    /* well-formed UTF-8 is kept as it is */
    assert_string_equal(safetext_copy(out, sizeof out, "caf\xc3\xa9 \xf0\x9f\x94\xa5", 10),
                        "caf\xc3\xa9 \xf0\x9f\x94\xa5");
    assert_true(safetext_is_utf8("a\0\xc3\xa9", 4));
    assert_false(safetext_is_utf8("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(safetext_is_utf8("\xe0\x80\xaf", 3));     /* overlong */
}

static void test_safetext_cuts_with_dots_and_never_mid_character(void **state)
{
    (void)state;
    char out[8]; /* room for 4 bytes, "..." and the NUL */
    assert_string_equal(safetext_copy(out, sizeof out, "abcd", 4), "abcd");
    assert_string_equal(safetext_copy(out, sizeof out, "abcde", 5), "abcd...");
    assert_string_equal(safetext_copy(out, sizeof out, "ab\xe2\x82\xac", 5), "ab...");
    assert_string_equal(safetext_copy(out, sizeof out, "a\x01", 2), "a...");
    assert_string_equal(safetext_copy(out, sizeof out, "\x01", 1), "\\x01");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_refuses_past_its_ceiling),
        cmocka_unit_test(test_decimal_takes_digits_only_and_no_overflow),
        cmocka_unit_test(test_strmap_put_get_remove_and_grow),
        cmocka_unit_test(test_timefmt_round_trip_and_parse),
        cmocka_unit_test(test_base64_decodes_and_refuses_garbage),
        cmocka_unit_test(test_request_ids_are_uuid4_and_distinct),
        cmocka_unit_test(test_safetext_escapes_what_is_not_printable_utf8),
        cmocka_unit_test(test_safetext_cuts_with_dots_and_never_mid_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
