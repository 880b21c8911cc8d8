/*
 * fuzz_logs_query.c — the log query parameters of
 * GET /v1/functions/{name}/logs (follow, tail, format, request_id, since),
 * read by api_logs_query_parse as api.c does. Input: the query string;
 * it is split on '&' and '=' and percent-decoded with the values' true
 * lengths (libmicrohttpd does this in the daemon; gw_unescape stands in),
 * the first value of a name winning as with MHD's lookup. A query that is
 * taken must make a query the log store can run: tail 1..10000, a request
 * id of hex digits and '-', a since within what timefmt can print.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_parse.h"
#include "decimal.h"
#include "gateway.h"
#include "timefmt.h"

#define PAIRS_MAX 32

struct pair {
    char *name, *value;
    size_t value_len;
};

struct query {
    struct pair p[PAIRS_MAX];
    size_t n;
};

static const char *get(void *ud, const char *key, size_t *len)
{
    struct query *q = ud;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->p[i].name, key) == 0) {
            *len = q->p[i].value_len;
            return q->p[i].value;
        }
    return NULL;
}

static char *decoded(const char *s, size_t len, size_t *out_len)
{
    char *d = malloc(len + 1);
    if (!d)
        abort();
    ssize_t n = gw_unescape(s, len, d, len);
    if (n < 0)
        abort();
    d[n] = '\0';
    *out_len = (size_t)n;
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    struct query q = {.n = 0};
    const char *s = (const char *)data, *end = s + size;
    while (s < end && q.n < PAIRS_MAX) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(stop - s));
        size_t nlen;
        struct pair *p = &q.p[q.n++];
        p->name = decoded(s, (size_t)((eq ? eq : stop) - s), &nlen);
        p->value = eq ? decoded(eq + 1, (size_t)(stop - eq - 1), &p->value_len) : NULL;
        if (!p->value)
            p->value = decoded("", 0, &p->value_len);
        s = amp ? amp + 1 : end;
    }
    log_query lq;
    enum logs_format format;
    bool follow;
    const char *why;
    if (api_logs_query_parse(get, &q, &lq, &format, &follow, &why) == 0) {
        if (lq.tail < 1 || lq.tail > LOGSTORE_TAIL_MAX ||
            (format != LOGS_TEXT && format != LOGS_NDJSON))
            abort();
        if (lq.request_id &&
            (strlen(lq.request_id) == 0 || strlen(lq.request_id) > 36 ||
             strspn(lq.request_id, "0123456789abcdefABCDEF-") != strlen(lq.request_id)))
            abort();
        char iso[TIMEFMT_ISO_LEN];
        if (lq.since_ms)
            timefmt_iso_ms(lq.since_ms, iso);
    } else if (!why || !*why) {
        abort(); /* a 400 without its sentence */
    }
    for (size_t i = 0; i < q.n; i++) {
        free(q.p[i].name);
        free(q.p[i].value);
    }
    return 0;
}
