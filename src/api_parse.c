/*
 * api_parse.c — the request path and query as the API reads them: the
 * pattern match of api.c's route table, the split of a path for the
 * functions' own routes, query values, and the logs parameters.
 *
 * Owns: nothing but the parsing. Must never: answer (api.c does), read
 * past the lengths it is given, or take a value up to a NUL it holds.
 * tests/fuzz/fuzz_http_path.c and fuzz_logs_query.c feed it anything.
 */
#include "api_parse.h"

#include <ctype.h>
#include <string.h>

#include "decimal.h"
#include "gateway.h"
#include "reqid.h"
#include "safetext.h"
#include "timefmt.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

bool api_route_match(const char *pattern, const char *path, struct route_match *m)
{
    const char *p = pattern, *s = path;
    *m = (struct route_match){.rest = "/"};
    while (*p) {
        if (strcmp(p, "/**") == 0) {
            if (*s != '\0' && *s != '/')
                return false;
            m->rest = *s ? s : "/";
            return true;
        }
        if (*p == '*') {
            size_t n = strcspn(s, "/");
            if (n == 0)
                return false;
            m->seg = s;
            m->seg_len = n;
            s += n;
            p++;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return *s == '\0';
}

enum routed_split api_split_routed_path(const char *raw, struct routed_path *rp)
{
    size_t len = strlen(raw);
    rp->n = 0;
    if (len > ROUTES_REQ_PATH_MAX)
        return SPLIT_TOO_LONG;
    if (raw[0] != '/')
        return SPLIT_INVALID;
    char *out = rp->text;
    for (const char *p = raw + 1; len > 1;) {
        size_t seg = strcspn(p, "/");
        if (rp->n == ROUTES_REQ_SEGMENTS)
            return SPLIT_TOO_LONG;
        ssize_t d = gw_unescape(p, seg, out, seg);
        if (d < 0 || memchr(out, '/', (size_t)d) || memchr(out, '\0', (size_t)d) ||
            !safetext_is_utf8(out, (size_t)d) || (d == 1 && out[0] == '.') ||
            (d == 2 && out[0] == '.' && out[1] == '.'))
            return SPLIT_INVALID;
        if (rp->n == 0 && routes_is_reserved(out, (size_t)d))
            return SPLIT_RESERVED;
        out[d] = '\0';
        rp->segs[rp->n++] = out;
        out += d + 1;
        if (!p[seg])
            break;
        p += seg + 1;
    }
    return SPLIT_OK;
}

bool api_query_value_ok(const char *v, size_t len)
{
    return !memchr(v, '\0', len) && safetext_is_utf8(v, len);
}

static bool valid_request_id(const char *s)
{
    size_t n = strnlen(s, REQID_LEN + 1);
    if (n == 0 || n > REQID_LEN)
        return false;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) && *s != '-')
            return false;
    return true;
}

/* Parameter `key` through get: *v its value, NULL when absent; false when
 * the value is not text (api_query_value_ok). */
static bool text(api_query_fn get, void *ud, const char *key, const char **v)
{
    size_t len = 0;
    *v = get(ud, key, &len);
    return !*v || api_query_value_ok(*v, len);
}

int api_logs_query_parse(api_query_fn get, void *ud, log_query *q, enum logs_format *format,
                         bool *follow, const char **why)
{
    const char *v;
    *follow = false;
    *why = "follow must be 1 or 0";
    if (!text(get, ud, "follow", &v))
        return -1;
    if (v) {
        if (strcmp(v, "1") && strcmp(v, "true") && strcmp(v, "0") && strcmp(v, "false"))
            return -1;
        *follow = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    }
    uint64_t tail = *follow ? LOGS_TAIL_FOLLOW_DEFAULT : LOGS_TAIL_DEFAULT;
    *why = "tail must be a whole number from 1 to " STR(LOGSTORE_TAIL_MAX);
    if (!text(get, ud, "tail", &v) ||
        (v && (!decimal_parse(v, LOGSTORE_TAIL_MAX, &tail) || tail == 0)))
        return -1;
    q->tail = (size_t)tail;
    *format = LOGS_TEXT;
    *why = "format must be text or ndjson";
    if (!text(get, ud, "format", &v))
        return -1; /* held a NUL: refused like any other unknown format */
    if (v && strcmp(v, "ndjson") == 0)
        *format = LOGS_NDJSON;
    else if (v && strcmp(v, "text") != 0)
        return -1;
    *why = "request_id is not a request id";
    if (!text(get, ud, "request_id", &q->request_id) ||
        (q->request_id && !valid_request_id(q->request_id)))
        return -1;
    q->since_ms = 0;
    *why = "since must be unix milliseconds or an RFC 3339 time";
    if (!text(get, ud, "since", &v) || (v && timefmt_parse(v, &q->since_ms) < 0))
        return -1;
    *why = NULL;
    return 0;
}
