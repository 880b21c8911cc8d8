/*
 * test_protocol.c — the frame header of include/hearth/protocol.h: the
 * wire layout of docs/protocol.md and the checks a receiver relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <hearth/protocol.h>

static void test_header_wire_layout_is_big_endian(void **state)
{
    (void)state;
    hearth_frame_header h = {.type = HEARTH_FRAME_INVOKE, .meta_len = 0x0102, .body_len = 5};
    uint8_t w[HEARTH_FRAME_HEADER_SIZE];
    hearth_frame_encode(&h, w);
    const uint8_t want[] = {0x48, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 5};
    assert_memory_equal(w, want, sizeof want);
    hearth_frame_header back;
    assert_int_equal(hearth_frame_decode(w, 1 << 20, 1 << 20, &back), 0);
    assert_int_equal(back.type, HEARTH_FRAME_INVOKE);
    assert_int_equal(back.meta_len, 0x0102);
    assert_int_equal(back.body_len, 5);
}

static void test_decode_refuses_what_a_peer_must_not_send(void **state)
{
    (void)state;
    hearth_frame_header h = {.type = HEARTH_FRAME_RESULT, .meta_len = 10, .body_len = 100};
    uint8_t w[HEARTH_FRAME_HEADER_SIZE], bad[HEARTH_FRAME_HEADER_SIZE];
    hearth_frame_header out;
    hearth_frame_encode(&h, w);
    memcpy(bad, w, sizeof w);
    bad[0] = 'X';
    assert_int_equal(hearth_frame_decode(bad, 1 << 20, 1 << 20, &out), -1); /* magic */
    memcpy(bad, w, sizeof w);
    bad[3] = 1;
    assert_int_equal(hearth_frame_decode(bad, 1 << 20, 1 << 20, &out), -1); /* flags */
    memcpy(bad, w, sizeof w);
    bad[1] = 9;
    assert_int_equal(hearth_frame_decode(bad, 1 << 20, 1 << 20, &out), -1); /* type */
    assert_int_equal(hearth_frame_decode(w, 1 << 20, 99, &out), -1);        /* body cap */
    assert_int_equal(hearth_frame_decode(w, 9, 1 << 20, &out), -1);         /* meta cap */
    assert_int_equal(hearth_frame_decode(w, 10, 100, &out), 0);             /* at the caps */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_wire_layout_is_big_endian),
        cmocka_unit_test(test_decode_refuses_what_a_peer_must_not_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
