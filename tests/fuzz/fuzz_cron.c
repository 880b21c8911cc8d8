/*
 * fuzz_cron.c — cron parsing: a schedule's "cron" expression and "tz" as a
 * deploy gives them (src/events/cron.c). Input: the time zone name, a
 * newline, the expression. A parsed expression's next fire times are
 * computed from a few instants (the epoch, leap days, far future), each
 * later than the last; tz names are looked up under /usr/share/zoneinfo,
 * whose TZif files are then parsed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0; /* deploy bounds a settings body long before this */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *expr = strchr(text, '\n');
    const char *tz = NULL;
    if (expr) {
        *expr++ = '\0';
        tz = text;
    } else {
        expr = text;
    }
    char err[256];
    if (tz && cron_tz_check(tz, err, sizeof err) < 0)
        tz = NULL; /* deploy refuses it; the expression is still worth parsing */
    cron_expr *e = cron_parse(expr, err, sizeof err);
    if (e) {
        static const int64_t from[] = {0, 951782400 /* 2000-02-29 */, 1774746000 /* a DST day */,
                                       253402300799 /* 9999-12-31 */};
        for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
            int64_t next = cron_next(e, tz, from[i]);
            if (next != -1 && next <= from[i])
                abort(); /* "strictly after" */
            char out[CRON_TIME_LEN];
            if (next > 0)
                cron_format_rfc3339(tz, next, out);
        }
        cron_free(e);
    }
    free(text);
    return 0;
}
