/*
 * test_protocol.c — the frame header of include/hearth/protocol.h: the
 * wire layout of docs/protocol.md and the checks a receiver relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <hearth/protocol.h>

#include "buf.h"
#include "failalloc.h"

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

/* --- out of memory (tests/unit/failalloc.h): frames as a receiver takes
 * them, the allocations worker.c makes (a payload per frame, its
 * metadata parsed by jansson) behind a growable receive buffer --- */

static int frames_scenario(void *ud)
{
    (void)ud;
    static const char *const metas[] = {"{\"status\": 200, \"headers\": {\"a\": \"b\"}}",
                                        "{\"log\": \"x\"}", ""};
    buf in;
    buf_init(&in, 1 << 20);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        hearth_frame_header h = {
            .type = HEARTH_FRAME_RESULT, .meta_len = (uint32_t)strlen(metas[i]), .body_len = 5};
        uint8_t w[HEARTH_FRAME_HEADER_SIZE];
        hearth_frame_encode(&h, w);
        rc = buf_append(&in, w, sizeof w);
        if (rc == 0)
            rc = buf_append(&in, metas[i], h.meta_len);
        if (rc == 0)
            rc = buf_append(&in, "hello", 5);
    }
    while (rc == 0 && in.len >= HEARTH_FRAME_HEADER_SIZE) {
        hearth_frame_header h = {0};
        assert_int_equal(hearth_frame_decode((const uint8_t *)in.data, 1 << 20, 1 << 20, &h), 0);
        assert_true(in.len >= HEARTH_FRAME_HEADER_SIZE + h.meta_len + h.body_len);
        char *payload = malloc((size_t)h.meta_len + h.body_len + 1);
        if (!payload) {
            rc = -ENOMEM;
            break;
        }
        memcpy(payload, in.data + HEARTH_FRAME_HEADER_SIZE, (size_t)h.meta_len + h.body_len);
        json_error_t jerr;
        json_t *meta =
            h.meta_len ? json_loadb(payload, h.meta_len, JSON_ALLOW_NUL, &jerr) : json_object();
        if (!meta) /* worker.c drops the worker: a 502 for its call, never a crash */
            rc = -ENOMEM;
        else
            assert_true(json_is_object(meta));
        json_decref(meta);
        free(payload);
        buf_consume(&in, HEARTH_FRAME_HEADER_SIZE + h.meta_len + h.body_len);
    }
    buf_release(&in);
    return rc;
}

static void test_frames_out_of_memory(void **state)
{
    (void)state;
    assert_true(failalloc_run("frames", frames_scenario, NULL, 0) > 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_wire_layout_is_big_endian),
        cmocka_unit_test(test_decode_refuses_what_a_peer_must_not_send),
        cmocka_unit_test(test_frames_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
