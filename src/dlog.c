/*
 * dlog.c — the daemon's diagnostic log: timestamped, levelled lines on
 * stderr, written with one write() each so lines from the spawner and the
 * daemon never interleave mid-line. Never logs function output.
 */
#include "dlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "timefmt.h"

static int current_level = DLOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int dlog_parse_level(const char *name)
{
    for (int i = 0; i <= DLOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void dlog_set_level(int level)
{
    current_level = level;
}

int dlog_enabled(int level)
{
    return level <= current_level;
}

void dlog(int level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[2048];
    char stamp[TIMEFMT_ISO_LEN];
    timefmt_iso_ms(timefmt_now_ms(), stamp);
    int n = snprintf(line, sizeof line, "%s %-5s ", stamp, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
