/*
 * safetext.h — printable copies of bytes someone else chose (a client's
 * request, a function's answer) for messages and logs. Pure; no allocation.
 */
#ifndef HEARTH_SAFETEXT_H
#define HEARTH_SAFETEXT_H

#include <stdbool.h>
#include <stddef.h>

/* The most bytes one input byte can take in a copy ("\xHH"). */
#define SAFETEXT_EXPANSION 4

/* Copies `len` bytes of `src` (NULs included) into `dst` (`cap` > 3 bytes,
 * always NUL-terminated) as valid, printable UTF-8: printable ASCII and
 * well-formed UTF-8 sequences of printable characters are kept, every
 * other byte is written as \xHH. A copy that does not fit ends with "..."
 * and never splits a character. Returns `dst`. */
char *safetext_copy(char *dst, size_t cap, const void *src, size_t len);

/* True when `len` bytes of `s` are well-formed UTF-8 (NUL allowed): what a
 * JSON string can carry. */
bool safetext_is_utf8(const void *s, size_t len);

#endif
