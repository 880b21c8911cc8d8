/*
 * safetext.h — printable copies of bytes someone else chose (a client's
 * request, a function's answer) for messages and logs. Pure; no allocation.
 */
#ifndef HEARTH_SAFETEXT_H
#define HEARTH_SAFETEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes one input byte can take in a copy ("\xHH"). */
#define SAFETEXT_EXPANSION 4

/* Copies `len` bytes of `src` (NULs included) into `dst` (`cap` > 3 bytes,
 * always NUL-terminated) as valid, printable UTF-8: printable ASCII and
 * well-formed UTF-8 sequences of printable characters are kept, every
 * other byte is written as \xHH. A copy that does not fit ends with "..."
 * and never splits a character. Returns `dst`. */
char *safetext_copy(char *dst, size_t cap, const void *src, size_t len);

#define SAFETEXT_ILL_FORMED UINT32_MAX

/* Measures the sequence at `s` (n >= 1 bytes). Well-formed UTF-8: returns
 * its length and sets *cp to its code point. Otherwise returns the length
 * of its maximal ill-formed prefix (>= 1; it becomes one U+FFFD, as Unicode
 * recommends) and sets *cp to SAFETEXT_ILL_FORMED. Overlongs, surrogates
 * and code points past U+10FFFF are ill-formed (jansson refuses them too). */
size_t safetext_utf8_next(const void *s, size_t n, uint32_t *cp);

/* Code points that end a line for many readers, or reorder what a terminal
 * shows, though they are not ASCII controls: C1 controls (U+0085 is NEXT
 * LINE, and a UTF-8 terminal may still act on CSI, U+009B), the line and
 * paragraph separators, and the bidi overrides and isolates. Quoted from
 * someone else, they could forge a line. */
bool safetext_breaks_lines(uint32_t cp);

/* True when `len` bytes of `s` are well-formed UTF-8 (NUL allowed): what a
 * JSON string can carry. */
bool safetext_is_utf8(const void *s, size_t len);

#endif
