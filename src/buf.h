/*
 * buf.h — a growable byte buffer with a ceiling fixed at creation
 * (curl's dynbuf discipline): exceeding the ceiling is an error, never a
 * silent realloc past it.
 */
#ifndef HEARTH_BUF_H
#define HEARTH_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* the ceiling for len */
} buf;

/* Sets up an empty buffer that may grow to `max` bytes. Allocates nothing. */
void buf_init(buf *b, size_t max);

/* Appends n bytes. Returns 0, -E2BIG past the ceiling (nothing appended),
 * or -ENOMEM. */
int buf_append(buf *b, const void *p, size_t n);

/* Drops the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);

/* Empties the buffer, keeping its memory. */
void buf_reset(buf *b);

/* Frees the contents; the buffer is empty and reusable afterwards. */
void buf_release(buf *b);

/* Hands the contents to the caller (who frees them) and empties the
 * buffer. Returns NULL for an empty buffer that never allocated. */
char *buf_detach(buf *b, size_t *len);

#endif
