/*
 * decimal.c — whole decimal numbers from untrusted text (see decimal.h).
 *
 * strtoll and friends skip leading space, take a sign and a '+', and
 * stop at the first other byte; every caller had to remember errno, the
 * end pointer and the range. This reads the digits itself and checks the
 * ceiling before every multiply, so nothing can overflow.
 *
 * Owns: nothing but the rule. Must never: accept what is not all digits.
 */
#include "decimal.h"

#include <stddef.h>

bool decimal_parse(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10 || (v * 10 + d) > max)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool decimal_parse_positive(const char *s, uint64_t max, uint64_t *out)
{
    return s && s[0] >= '1' && s[0] <= '9' && decimal_parse(s, max, out);
}
