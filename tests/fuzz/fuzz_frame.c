/*
 * fuzz_frame.c — the worker frame decoder: what a sandboxed runtime
 * writes on its frame socket (include/hearth/protocol.h). The input is
 * the byte stream as worker.c's receive() reads it: 12-byte headers
 * checked by hearth_frame_decode against the daemon's ceilings before a
 * byte is allocated, then meta and body; each whole frame's meta parsed as
 * deliver_frame() does (a JSON object or the worker is killed), and the
 * fields the scheduler reads from a RESULT or ERROR meta (status,
 * content_type, headers, error_type, message) read back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <hearth/protocol.h>

/* The daemon's body ceiling for a frame is its --max-body; 6 MiB is the
 * default's order, and the decoder must hold any ceiling it is given. */
#define FUZZ_MAX_BODY (6u * 1024 * 1024)

static void read_meta(const json_t *meta)
{
    const json_t *st = json_object_get(meta, "status");
    if (json_is_integer(st))
        (void)json_integer_value(st);
    const char *keys[] = {"content_type", "error_type", "message"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = json_string_value(json_object_get(meta, keys[i]));
        if (v)
            (void)strlen(v);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(meta, "headers"), k, v)
    {
        if (json_string_value(v))
            (void)strlen(k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (size - off >= HEARTH_FRAME_HEADER_SIZE) {
        hearth_frame_header h;
        if (hearth_frame_decode(data + off, HEARTH_FRAME_MAX_META, FUZZ_MAX_BODY, &h))
            return 0; /* the daemon drops the worker */
        if (h.meta_len > HEARTH_FRAME_MAX_META || h.body_len > FUZZ_MAX_BODY ||
            h.type < HEARTH_FRAME_READY || h.type > HEARTH_FRAME_SPECIALIZE || h.flags)
            abort(); /* decode said yes to what the header forbids */
        off += HEARTH_FRAME_HEADER_SIZE;
        size_t want = (size_t)h.meta_len + h.body_len;
        if (size - off < want)
            return 0; /* the rest has not arrived */
        /* As worker.c holds it: meta, body and a NUL, in one allocation. */
        char *payload = malloc(want + 1);
        if (!payload)
            return 0;
        memcpy(payload, data + off, want);
        off += want;
        json_error_t jerr;
        json_t *meta =
            h.meta_len ? json_loadb(payload, h.meta_len, JSON_ALLOW_NUL, &jerr) : json_object();
        if (json_is_object(meta)) {
            memmove(payload, payload + h.meta_len, h.body_len);
            payload[h.body_len] = '\0';
            read_meta(meta);
        }
        int ok = json_is_object(meta);
        json_decref(meta);
        free(payload);
        if (!ok)
            return 0; /* "frame metadata is not a JSON object": killed */
    }
    return 0;
}
