/*
 * safetext.c — printable copies of untrusted bytes.
 *
 * Messages that quote what a client or a function sent must stay valid
 * UTF-8 (jansson refuses anything else, and an answer built from a refused
 * string loses its body) and must not carry control bytes into a log line
 * or a header. Everything that quotes foreign bytes goes through here.
 *
 * Owns: the UTF-8 well-formedness rule, the code points that break lines,
 * and the \xHH escape. Must never:
 * allocate, or read past the length it is given.
 */
#include "safetext.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t safetext_utf8_next(const void *src, size_t n, uint32_t *cp)
{
    const unsigned char *s = src;
    unsigned char b = s[0], lo = 0x80, hi = 0xbf; /* bounds for the second byte */
    size_t need;
    *cp = SAFETEXT_ILL_FORMED;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 1;
    }
    if (n < 2 || s[1] < lo || s[1] > hi)
        return 1;
    size_t i = 2;
    while (i <= need && i < n && s[i] >= 0x80 && s[i] <= 0xbf)
        i++;
    if (i != need + 1)
        return i; /* the maximal ill-formed prefix */
    static const unsigned char lead_mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t v = b & lead_mask[i];
    for (size_t k = 1; k < i; k++)
        v = v << 6 | (s[k] & 0x3f);
    *cp = v;
    return i;
}

bool safetext_breaks_lines(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

bool safetext_is_utf8(const void *s, size_t len)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += safetext_utf8_next(p + i, len - i, &cp);
        if (cp == SAFETEXT_ILL_FORMED)
            return false;
    }
    return true;
}

/* How many bytes of `p` are kept as they are: 0 when the byte at `p` must
 * be escaped (a control byte, ill-formed UTF-8, or a code point of
 * safetext_breaks_lines). */
static size_t printable_seq(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return p[0] >= 0x20 && p[0] < 0x7f ? 1 : 0;
    uint32_t cp;
    size_t k = safetext_utf8_next(p, n, &cp);
    return cp == SAFETEXT_ILL_FORMED || safetext_breaks_lines(cp) ? 0 : k;
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
