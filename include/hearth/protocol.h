/*
 * hearth/protocol.h — the worker protocol: frames on the socket a runtime
 * inherits as fd 3. docs/protocol.md is the normative description; this
 * header is its C mirror and must never disagree with it.
 *
 * A frame is a 12-byte header followed by `meta_len` bytes of JSON metadata
 * (a UTF-8 object; 0 bytes means {}) and `body_len` raw body bytes. All
 * header integers are big-endian.
 *
 *   offset 0  u8   magic   'H' (0x48)
 *   offset 1  u8   type    HEARTH_FRAME_*
 *   offset 2  u16  flags   0 (receivers reject other values)
 *   offset 4  u32  meta_len
 *   offset 8  u32  body_len
 */
#ifndef HEARTH_PROTOCOL_H
#define HEARTH_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define HEARTH_FRAME_MAGIC       0x48
#define HEARTH_FRAME_HEADER_SIZE 12

/* Ceilings every receiver enforces before allocating. */
#define HEARTH_FRAME_MAX_META (1u << 20)          /* 1 MiB of JSON metadata */
#define HEARTH_FRAME_MAX_BODY (64u * 1024 * 1024) /* absolute cap; the daemon's is lower */

enum hearth_frame_type {
    HEARTH_FRAME_READY = 1,      /* runtime -> daemon: loaded, waiting for work */
    HEARTH_FRAME_INVOKE = 2,     /* daemon -> runtime: one event to handle */
    HEARTH_FRAME_RESULT = 3,     /* runtime -> daemon: the handler's answer */
    HEARTH_FRAME_ERROR = 4,      /* runtime -> daemon: the handler raised */
    HEARTH_FRAME_INIT_ERROR = 5, /* runtime -> daemon: user code failed to load; exits */
    /* daemon -> runtime, only to a pre-built runtime (started with
     * HEARTH_PREBUILT=1) and only as its first frame: meta {"env": ["K=V",
     * ...]} is the function's whole environment, flags and body_len 0. The
     * runtime replaces its environment with it, enters /var/task again and
     * starts as usual (READY or INIT_ERROR). A malformed one: exit 70. */
    HEARTH_FRAME_SPECIALIZE = 6,
};

typedef struct hearth_frame_header {
    uint8_t type;
    uint16_t flags;
    uint32_t meta_len;
    uint32_t body_len;
} hearth_frame_header;

/* Writes the 12-byte wire form of `h` into `out`. */
static inline void hearth_frame_encode(const hearth_frame_header *h,
                                       uint8_t out[HEARTH_FRAME_HEADER_SIZE])
{
    out[0] = HEARTH_FRAME_MAGIC;
    out[1] = h->type;
    out[2] = (uint8_t)(h->flags >> 8);
    out[3] = (uint8_t)h->flags;
    for (int i = 0; i < 4; i++) {
        out[4 + i] = (uint8_t)(h->meta_len >> (24 - 8 * i));
        out[8 + i] = (uint8_t)(h->body_len >> (24 - 8 * i));
    }
}

/* Parses a wire header. Returns 0, or -1 when the magic or flags are wrong
 * or a length exceeds the given ceilings; the caller must then drop the peer. */
static inline int hearth_frame_decode(const uint8_t in[HEARTH_FRAME_HEADER_SIZE], uint32_t max_meta,
                                      uint32_t max_body, hearth_frame_header *h)
{
    if (in[0] != HEARTH_FRAME_MAGIC)
        return -1;
    h->type = in[1];
    h->flags = (uint16_t)((in[2] << 8) | in[3]);
    h->meta_len = ((uint32_t)in[4] << 24) | ((uint32_t)in[5] << 16) | ((uint32_t)in[6] << 8) |
                  (uint32_t)in[7];
    h->body_len = ((uint32_t)in[8] << 24) | ((uint32_t)in[9] << 16) | ((uint32_t)in[10] << 8) |
                  (uint32_t)in[11];
    if (h->flags != 0 || h->meta_len > max_meta || h->body_len > max_body)
        return -1;
    if (h->type < HEARTH_FRAME_READY || h->type > HEARTH_FRAME_SPECIALIZE)
        return -1;
    return 0;
}

#endif
