/*
 * fuzz_http_path.c — the HTTP path and query handling: a request target
 * as a client sends it, taken apart as the gateway and api.c take it.
 * Input: the target ("/path?query"), as gateway.c's on_uri keeps it (the
 * path up to the first '?', never decoded as a whole). Then:
 *  - api_route_match against the patterns of api.c's route table (a copy
 *    of their shapes: the table itself holds the handlers), and the `*`
 *    segment decoded as api.c's decode_segment does (gw_unescape with the
 *    true length, then the rule of a function name, a qualified name or a
 *    topic);
 *  - api_split_routed_path, the split for the functions' own routes: each
 *    segment must come out NUL-free UTF-8 without '/', never '.' or '..';
 *  - the query: pairs split on '&' and '=' and percent-decoded (libmicrohttpd
 *    does this in the daemon: here gw_unescape stands in for it), each value
 *    checked by api_query_value_ok, numbers by decimal_parse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_parse.h"
#include "decimal.h"
#include "events/topics.h"
#include "gateway.h"
#include "qualifier.h"
#include "registry.h"
#include "safetext.h"
#include "validate.h"

/* The shapes of api.c's patterns (one of each kind). */
static const char *const patterns[] = {
    "/healthz",
    "/v1/functions",
    "/v1/functions/*",
    "/v1/functions/*/invoke",
    "/v1/functions/*/logs",
    "/v1/functions/*/versions/*",
    "/v1/topics/*/publish",
    "/v1/invocations/*",
    "/fn/*/**",
    "/ui/**",
};

static void decode_segment(const struct route_match *m)
{
    char out[FN_QUALIFIED_MAX + 1];
    ssize_t n = gw_unescape(m->seg, m->seg_len, out, FN_QUALIFIED_MAX);
    if (n < 0)
        return;
    if (n > FN_QUALIFIED_MAX)
        abort();
    out[n] = '\0';
    if (memchr(out, '\0', (size_t)n))
        return; /* a %00: api.c refuses it before any rule */
    char name[FN_NAME_MAX + 1], qual[FN_ALIAS_MAX + 1];
    if (validate_function_name(out) && strlen(out) > FN_NAME_MAX)
        abort();
    if (qualifier_split(out, name, qual) == 0 && !validate_function_name(name))
        abort(); /* a qualified name whose name part is not one */
    (void)topic_name_valid(out);
}

static void check_split(const char *path)
{
    static struct routed_path rp;
    if (api_split_routed_path(path, &rp) != SPLIT_OK)
        return;
    for (size_t i = 0; i < rp.n; i++) {
        size_t len = strlen(rp.segs[i]);
        if (strchr(rp.segs[i], '/') || !safetext_is_utf8(rp.segs[i], len) ||
            strcmp(rp.segs[i], ".") == 0 || strcmp(rp.segs[i], "..") == 0)
            abort();
        if (rp.segs[i] < rp.text || rp.segs[i] + len > rp.text + sizeof rp.text - 1)
            abort();
    }
}

static void check_query(const char *q)
{
    while (*q) {
        size_t pair = strcspn(q, "&");
        size_t name = strcspn(q, "=");
        if (name > pair)
            name = pair;
        const char *value = name < pair ? q + name + 1 : q + pair;
        size_t vlen = name < pair ? pair - name - 1 : 0;
        char *dec = malloc(vlen + 1);
        if (!dec)
            abort();
        ssize_t n = gw_unescape(value, vlen, dec, vlen);
        if (n < 0 || (size_t)n > vlen)
            abort(); /* decoding never grows a value */
        dec[n] = '\0';
        uint64_t v;
        if (api_query_value_ok(dec, (size_t)n) && decimal_parse(dec, 10000, &v) && v > 10000)
            abort();
        free(dec);
        q += pair;
        if (*q == '&')
            q++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0; /* past the gateway's request-line limit */
    char *target = malloc(size + 1);
    if (!target)
        return 0;
    memcpy(target, data, size);
    target[size] = '\0'; /* MHD hands the target over as a C string */
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        struct route_match m;
        if (!api_route_match(patterns[i], target, &m))
            continue;
        if (m.seg && (m.seg < target || m.seg + m.seg_len > target + strlen(target)))
            abort();
        if (m.seg)
            decode_segment(&m);
    }
    check_split(target);
    if (query)
        check_query(query);
    free(target);
    return 0;
}
