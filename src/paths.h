/*
 * paths.h — building file paths that never silently truncate.
 */
#ifndef HEARTH_PATHS_H
#define HEARTH_PATHS_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

/* snprintf into out; -ENAMETOOLONG (and out = "") when it does not fit. */
static inline int path_format(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline int path_format(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

#endif
