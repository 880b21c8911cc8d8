/*
 * api_parse.h — what the REST API reads from a request's path and query,
 * as pure functions of bytes: no gw_request, no answer. api.c calls them
 * and answers; tests/fuzz feeds them anything.
 */
#ifndef HEARTH_API_PARSE_H
#define HEARTH_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events/routes.h"
#include "logs.h"
#include "logstore.h"

/* --- the API's own route table: patterns against the path as sent --- */

/* What a path matched: the `*` segment as sent (seg, seg_len; NULL when
 * the pattern has none) and what `**` covers (with its leading '/'; "/"
 * when empty). */
struct route_match {
    const char *seg;
    size_t seg_len;
    const char *rest;
};

/* Matches the path as sent against `pattern`: `*` is one non-empty
 * segment, a trailing slash and two stars the rest of the path. */
bool api_route_match(const char *pattern, const char *path, struct route_match *m);

/* --- the functions' own routes (events/routes.h) --- */

/* A request path as the route table takes it: each segment percent-decoded
 * on its own (so an encoded '/' never splits one) and NUL-terminated in
 * `text`; decoding never grows a segment, so `text` always has room. */
struct routed_path {
    const char *segs[ROUTES_REQ_SEGMENTS];
    size_t n;
    char text[ROUTES_REQ_PATH_MAX + 1];
};

enum routed_split {
    SPLIT_OK,
    SPLIT_TOO_LONG, /* over ROUTES_REQ_PATH_MAX bytes or ROUTES_REQ_SEGMENTS segments */
    SPLIT_INVALID,  /* a segment decodes to '/', NUL, '.', '..' or bytes that are not UTF-8 */
    SPLIT_RESERVED, /* under one of Hearth's own prefixes (any case, any encoding) */
};

/* Splits `raw`, the path as sent, into rp. */
enum routed_split api_split_routed_path(const char *raw, struct routed_path *rp);

/* --- query values --- */

/* False when a query value (len bytes) holds a NUL byte or bytes that are
 * not UTF-8: no parameter takes either, and reading up to the NUL would
 * take "5%00junk" for 5. */
bool api_query_value_ok(const char *v, size_t len);

/* --- GET /v1/functions/{name}/logs --- */

#define LOGS_TAIL_DEFAULT        100
#define LOGS_TAIL_FOLLOW_DEFAULT 10

/* A query parameter by name: its decoded value (len bytes, NULs kept), or
 * NULL when the request has none. */
typedef const char *(*api_query_fn)(void *ud, const char *key, size_t *len);

/* Reads the logs query parameters (follow, tail, format, request_id,
 * since) through `get`. Returns 0, or -1 with *why the sentence of the 400
 * invalid_query answer. q->request_id points into what `get` returned. */
int api_logs_query_parse(api_query_fn get, void *ud, log_query *q, enum logs_format *format,
                         bool *follow, const char **why);

#endif
