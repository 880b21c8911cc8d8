/*
 * safetext.c — printable copies of untrusted bytes.
 *
 * Messages that quote what a client or a function sent must stay valid
 * UTF-8 (jansson refuses anything else, and an answer built from a refused
 * string loses its body) and must not carry control bytes into a log line
 * or a header. Everything that quotes foreign bytes goes through here.
 *
 * Owns: the UTF-8 well-formedness rule and the \xHH escape. Must never:
 * allocate, or read past the length it is given.
 */
#include "safetext.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The length (1..4) of the well-formed UTF-8 sequence at `s`, or 0 when the
 * bytes there are not one (Unicode 15, table 3-7: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds for the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

bool safetext_is_utf8(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* How many bytes of `p` are kept as they are: 0 when the byte at `p` must
 * be escaped (a control byte, C1 controls U+0080..U+009F, ill-formed). */
static size_t printable_seq(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return p[0] >= 0x20 && p[0] < 0x7f ? 1 : 0;
    size_t k = utf8_seq(p, n);
    if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0)
        return 0;
    return k;
}

char *safetext_copy(char *dst, size_t cap, const void *src, size_t len)
{
    const unsigned char *p = src;
    size_t o = 0, room = cap - 4; /* keep space for "..." and the NUL */
    size_t i = 0;
    while (i < len) {
        size_t k = printable_seq(p + i, len - i);
        size_t need = k ? k : SAFETEXT_EXPANSION;
        if (o + need > room)
            break;
        if (k)
            memcpy(dst + o, p + i, k);
        else
            snprintf(dst + o, SAFETEXT_EXPANSION + 1, "\\x%02x", p[i]);
        o += need;
        i += k ? k : 1;
    }
    if (i < len) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}
