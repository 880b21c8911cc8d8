/*
 * cron_next_cli.c — a test-only front end to cron_next, for
 * test_cron_reference.py: reads queries from stdin, one a line,
 *   <expression> TAB <zone> TAB <after, unix s> TAB <n>
 * and answers each with one line: "ok t1 t2 ..." (the next n fire times,
 * unix s; fewer when the horizon ends) or "error <message>".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/cron.h"

int main(void)
{
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL;
        char *expr = strtok_r(line, "\t", &save), *tz = strtok_r(NULL, "\t", &save),
             *after = strtok_r(NULL, "\t", &save), *count = strtok_r(NULL, "\t", &save);
        if (!expr || !tz || !after || !count) {
            printf("error bad query\n");
            continue;
        }
        char err[200];
        cron_expr *e = cron_parse(expr, err, sizeof err);
        if (!e || cron_tz_check(tz, err, sizeof err) < 0) {
            printf("error %s\n", err);
            cron_free(e);
            continue;
        }
        int64_t t = strtoll(after, NULL, 10);
        long n = strtol(count, NULL, 10);
        printf("ok");
        for (long i = 0; i < n && (t = cron_next(e, tz, t)) >= 0; i++)
            printf(" %" PRId64, t);
        printf("\n");
        fflush(stdout);
        cron_free(e);
    }
    cron_tz_cache_clear();
    return 0;
}
