/*
 * gateway.h — the HTTP listener. libmicrohttpd driven from the libuv loop
 * (its epoll fd polled by uv, MHD_run() never blocks), so every request
 * is handled on the loop thread without locks. The gateway reads and
 * bounds request bodies, hands complete requests to one handler, and
 * sends answers — immediately, later (the connection is suspended
 * meanwhile), or as an open-ended chunked stream.
 */
#ifndef HEARTH_GATEWAY_H
#define HEARTH_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <uv.h>

#include "reqid.h"

typedef struct gateway gateway;
struct tls_certs;
typedef struct gw_request gw_request;

/* Called once per request when its body is complete (or refused). The
 * handler answers with one of the gw_respond* calls, now or later. */
typedef void (*gw_handler_fn)(gw_request *req, void *ud);

/* The body ceiling for a request, chosen from its method, path and headers
 * before any body byte is read (gw_method, gw_path, gw_header work). */
typedef size_t (*gw_body_limit_fn)(gw_request *req, void *ud);

typedef struct gateway_opts {
    const char *listen; /* "HOST:PORT" or "[V6]:PORT" */
    gw_handler_fn handler;
    gw_body_limit_fn body_limit;
    void *ud;
    struct tls_certs *tls; /* HTTPS with these (tls.h), or NULL for plain HTTP */
    /* Hostile and slow clients (docs/configuration.md); 0 = no limit. */
    unsigned max_connections;   /* open at once: the longest idle makes room, else 503 */
    uint64_t header_timeout_ms; /* accept or previous answer -> complete head, else 408 */
    uint64_t body_timeout_ms;   /* complete head -> complete body, else 408 */
    uint64_t idle_timeout_ms;   /* no byte either way: closed (MHD's own timeout) */
} gateway_opts;

/* Binds and starts serving on `loop`. Returns 0 or a negative errno
 * (-EADDRINUSE, -EINVAL for a bad address, -ENOTSUP when opts->tls is set
 * and libmicrohttpd was built without HTTPS). */
int gateway_start(uv_loop_t *loop, const gateway_opts *opts, gateway **out);

/* The port actually bound (useful with port 0). */
uint16_t gateway_port(const gateway *gw);

/* Stops accepting new connections; existing ones are still served. */
void gateway_quiesce(gateway *gw);

/* Requests received and not yet answered (streams excluded). */
unsigned gateway_pending(const gateway *gw);

/* Client connections open now (idle keep-alive ones included). */
unsigned gateway_connections(const gateway *gw);

/* Stops the daemon and frees everything; every suspended request must have
 * been answered first. Accepts NULL. */
void gateway_stop(gateway *gw);

/* --- the request --- */
const char *gw_method(const gw_request *req);
/* The path as the client sent it: percent-encoded, any bytes, no query.
 * Split it on '/' before decoding a segment with gw_unescape. */
const char *gw_path(const gw_request *req);
const char *gw_request_id(const gw_request *req);
const char *gw_header(gw_request *req, const char *name); /* case-insensitive */
/* The decoded value of query parameter `name`, or NULL when absent; *len is
 * its true length (a %00 makes it longer than strlen). */
const char *gw_query(gw_request *req, const char *name, size_t *len);
const void *gw_body(const gw_request *req, size_t *len); /* NUL-terminated */
/* True when the body exceeded its limit (the handler should answer 413). */
bool gw_body_too_large(const gw_request *req);

/* A header or a decoded query parameter, with true lengths (NUL-terminated
 * too, but a decoded %00 may come before the end). */
typedef struct gw_pair {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gw_pair;
typedef void (*gw_pair_fn)(const gw_pair *pair, void *ud);
void gw_each_header(gw_request *req, gw_pair_fn fn, void *ud);
void gw_each_query(gw_request *req, gw_pair_fn fn, void *ud);

/* Percent-decodes `len` bytes of `in` into `out` (at most `cap` bytes, not
 * NUL-terminated); a '%' not followed by two hex digits stays as it is.
 * Returns the decoded length (which may include NULs), or -1 when it
 * exceeds `cap`. */
ssize_t gw_unescape(const char *in, size_t len, char *out, size_t cap);

/* Who the handler decided the request comes from (a token's name and id,
 * copied, truncated to fit), for those who act on it later (an audit
 * record written when a deploy completes). "" until set. */
#define GW_PRINCIPAL_MAX 64
void gw_set_principal(gw_request *req, const char *name, const char *id);
const char *gw_principal(const gw_request *req);
const char *gw_principal_id(const gw_request *req);

/* True when `listen` ("HOST:PORT") resolves only to loopback addresses. */
bool gateway_listen_is_loopback(const char *listen);

/* --- answering (exactly one of these per request) --- */

/* Adds a header to the answer (before a gw_respond* call). Copies both. */
void gw_add_header(gw_request *req, const char *name, const char *value);

/* Answers with `body` (malloc'd; ownership passes to the gateway, which
 * frees it — also on failure). `content_type` may be NULL. */
void gw_respond(gw_request *req, unsigned status, const char *content_type, char *body, size_t len);

/* Answers with `json` (reference stolen). */
void gw_respond_json(gw_request *req, unsigned status, json_t *json);

/* Answers {"error":{"code":…,"message":…}}. The formatted message is made
 * printable UTF-8 (safetext_copy), so it may quote what a client sent. */
void gw_respond_error(gw_request *req, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Streaming: `pull` copies up to `max` bytes into `dst` and returns the
 * count, 0 when it has nothing now (the gateway waits for
 * gw_stream_wake), or -1 to end the stream. `closed` is called exactly once
 * when the connection ends for any reason (client gone, stream ended,
 * daemon stopping); after it `req` must not be used. */
typedef ssize_t (*gw_pull_fn)(void *ud, char *dst, size_t max);
typedef void (*gw_closed_fn)(void *ud);
void gw_respond_stream(gw_request *req, unsigned status, const char *content_type, gw_pull_fn pull,
                       gw_closed_fn closed, void *ud);
/* Tells a waiting stream that pull has data (or wants to end). */
void gw_stream_wake(gw_request *req);

#endif
