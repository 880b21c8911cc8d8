/*
 * dlog.h — the daemon's own diagnostic log, one line per event on stderr.
 * (Functions' output is not this: see logs.h.)
 */
#ifndef HEARTH_DLOG_H
#define HEARTH_DLOG_H

enum dlog_level { DLOG_ERROR = 0, DLOG_WARN, DLOG_INFO, DLOG_DEBUG };

/* Returns the level named `name` (error, warn, info, debug) or -1. */
int dlog_parse_level(const char *name);
void dlog_set_level(int level);
int dlog_enabled(int level);

void dlog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dlog_error(...) dlog(DLOG_ERROR, __VA_ARGS__)
#define dlog_warn(...)  dlog(DLOG_WARN, __VA_ARGS__)
#define dlog_info(...)  dlog(DLOG_INFO, __VA_ARGS__)
#define dlog_debug(...)                                                                            \
    do {                                                                                           \
        if (dlog_enabled(DLOG_DEBUG))                                                              \
            dlog(DLOG_DEBUG, __VA_ARGS__);                                                         \
    } while (0)

#endif
