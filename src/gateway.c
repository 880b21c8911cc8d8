/*
 * gateway.c — libmicrohttpd inside the libuv loop.
 *
 * MHD runs without threads of its own (MHD_USE_EPOLL, external polling):
 * uv polls MHD's epoll fd and a timer follows MHD_get_timeout(), and each
 * wake-up calls the non-blocking MHD_run(). DESIGN.md §7 measured this
 * mode as the fastest here and free of the 128-connection stall of MHD's
 * internal epoll thread. A request waiting for a worker is suspended
 * (MHD_suspend_connection) and resumed when its answer is ready.
 *
 * The request target is taken as sent (MHD_OPTION_URI_LOG_CALLBACK), before
 * MHD decodes it in place and a %00 cuts it; gw_unescape decodes a piece
 * of it with its true length. Query values come with their lengths too.
 *
 * HTTPS (opts.tls): the same mode with MHD_USE_TLS; GnuTLS asks tls.c for
 * the certificate at each handshake (MHD_OPTION_HTTPS_CERT_CALLBACK), so a
 * reload reaches the next connection and none is dropped. Without TLS
 * none of this is set up: the plain path is unchanged.
 *
 * Connection limits and the header/body deadlines live in
 * gateway_conn.c; this file tells it each connection's open and close
 * (MHD_OPTION_NOTIFY_CONNECTION, for plain HTTP too) and each phase of a
 * request.
 *
 * Owns: connections, the request target and percent-decoding, request
 * bodies (bounded per route), answers (every error it builds itself has
 * the JSON error shape), chunked streams. Must never: block, interpret a
 * route, touch scheduler state, or put a client's bytes into JSON or a
 * log line without making them printable (safetext).
 */
#include "gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "dlog.h"
#include "gateway_conn.h"
#include "safetext.h"
#include "tls.h"

#define GW_MAX_EXTRA_HEADERS 32
#define GW_LINE_MAX          (128 * 1024) /* MHD's per-connection memory: no line is longer */
/* The answer when no other can be built (out of memory): still the error shape. */
#define GW_INTERNAL_ERROR                                                                          \
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"the answer could not be built\"}}\n"

struct gateway {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    gateway_opts opts;
    gw_conns *conns;
    unsigned pending;
    unsigned immediate_runs; /* MHD_run()s in a row that asked for another at once */
    uint16_t port;
    int handles_open;
};

struct gw_header {
    char *name;
    char *value;
};

struct gw_request {
    gateway *gw;
    struct MHD_Connection *conn;
    gw_conn *limits; /* its connection's deadlines (NULL: untracked) */
    char method[16];
    char *path;          /* as sent: still percent-encoded, without the query */
    bool started;        /* on_access has seen it (method and body limit known) */
    bool target_cut;     /* a raw NUL byte ended the target before its end */
    uintptr_t target_at; /* where MHD holds the target, to find such a cut */
    size_t target_len;   /* strlen of the target when MHD handed it over */
    char id[REQID_LEN + 1];
    char principal[GW_PRINCIPAL_MAX + 1];
    char principal_id[GW_PRINCIPAL_MAX + 1];
    buf body;
    bool too_big;
    bool handled;   /* given to the handler */
    bool answered;  /* a gw_respond* call happened */
    bool suspended; /* MHD_suspend_connection in effect */
    struct MHD_Response *resp;
    unsigned status;
    struct gw_header headers[GW_MAX_EXTRA_HEADERS];
    unsigned nheaders;
    /* streams */
    bool streaming;
    bool client_gone;
    gw_pull_fn pull;
    gw_closed_fn closed;
    void *stream_ud;
    uv_poll_t hup; /* watches the socket for a hang-up while suspended */
    bool hup_init;
};

static void gw_run(gateway *gw);
static void on_timer(uv_timer_t *t);

/* A resumed connection is only picked up by the next MHD_run(); make sure
 * one happens on this loop iteration rather than at the next socket event. */
static void resume(gw_request *r)
{
    r->suspended = false;
    MHD_resume_connection(r->conn);
    uv_timer_start(&r->gw->timer, on_timer, 0, 0);
}

/* --- MHD callbacks --- */

static void request_free(gw_request *r)
{
    buf_release(&r->body);
    for (unsigned i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    if (r->resp)
        MHD_destroy_response(r->resp);
    free(r->path);
    free(r);
}

static void on_hup_closed(uv_handle_t *h)
{
    request_free(h->data);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the one place that sees the request target
 * before MHD percent-decodes it in place (and a %00 cuts it). The path is
 * kept as sent, so that routing splits segments on real '/' and each
 * segment is decoded with its true length (gw_unescape). The request is
 * freed by on_completed even when MHD refuses it before on_access. */
/* RFC 9112 §3.2.2: a server must accept the absolute-form
 * (http://host/path) that proxies send; the path is what follows the
 * authority ("/" when none does). Other targets are returned as they are. */
static const char *origin_form(const char *uri)
{
    size_t scheme = strncasecmp(uri, "http://", 7) == 0    ? 7
                    : strncasecmp(uri, "https://", 8) == 0 ? 8
                                                           : 0;
    if (!scheme)
        return uri;
    const char *path = uri + scheme + strcspn(uri + scheme, "/?");
    return *path == '/' ? path : "/";
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    gw_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    const char *target = origin_form(uri);
    r->path = strndup(target, strcspn(target, "?"));
    if (!r->path) {
        free(r);
        return NULL;
    }
    r->gw = cls;
    r->conn = conn;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->limits = ci ? ci->socket_context : NULL;
    gw_conn_request_line(r->limits);
    r->target_at = (uintptr_t)uri;
    r->target_len = strlen(uri);
    return r;
}

/* MHD splits the request line on its length, so a raw NUL byte inside the
 * target ends the C string it hands over while the rest of the line is
 * still there: "/v1/functions/zz\0junk" would read as zz. In MHD's line
 * buffer the version follows the target and one separator; when it starts
 * further on, the target was cut. A layout this check does not recognise
 * (version elsewhere) is left alone. */
static bool target_was_cut(const gw_request *r, const char *version)
{
    uintptr_t v = (uintptr_t)version, end = r->target_at + r->target_len + 1;
    return v > end && v - end < GW_LINE_MAX;
}

/* Completes `r` once the method and headers are known. */
static void request_start(gw_request *r, const char *method, const char *version)
{
    gateway *gw = r->gw;
    struct MHD_Connection *conn = r->conn;
    r->started = true;
    gw_conn_head_done(r->limits);
    r->target_cut = target_was_cut(r, version);
    snprintf(r->method, sizeof r->method, "%s", method);
    reqid_new(r->id);
    size_t limit = gw->opts.body_limit(r, gw->opts.ud);
    buf_init(&r->body, limit);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > limit)
        r->too_big = true;
}

struct header_scan {
    unsigned content_lengths;
    const char *content_length;  /* the first one's value */
    bool differ;                 /* a later Content-Length says otherwise */
    unsigned transfer_encodings; /* Transfer-Encoding headers */
    bool bad_byte;               /* a NUL in a name or a value, a blank in a name */
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    struct header_scan *hs = cls;
    if (!key || memchr(key, '\0', key_len) || strcspn(key, " \t") < key_len ||
        (value && memchr(value, '\0', value_len)))
        hs->bad_byte = true;
    if (key && strcasecmp(key, "Content-Length") == 0) {
        if (hs->content_lengths++ == 0)
            hs->content_length = value;
        else if (!value || !hs->content_length || strcmp(value, hs->content_length) != 0)
            hs->differ = true;
    }
    if (key && strcasecmp(key, "Transfer-Encoding") == 0)
        hs->transfer_encodings++;
    return MHD_YES;
}

/* What libmicrohttpd lets through and RFC 9112 says to refuse, because
 * two readers of the request (a proxy in front, and us) could disagree on
 * it: a NUL in a header (C strings would cut it), a blank in a header
 * name (§5.1), Content-Lengths that differ (it takes the first, and the
 * rest of the body would be read as the next request), a Transfer-Encoding
 * other than chunked (§6.1: the body's end cannot be known), more than one
 * Transfer-Encoding (it reads the first; a proxy may join them into
 * "chunked, gzip"), or one next to a Content-Length (§6.3: request
 * smuggling). NULL when fine, else why. */
static const char *bad_framing(gw_request *r)
{
    struct header_scan hs = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &hs);
    if (hs.bad_byte)
        return "a header name or value holds a NUL byte or a blank in its name";
    if (hs.differ)
        return "the request has Content-Length headers that differ";
    if (hs.transfer_encodings > 1)
        return "the request has more than one Transfer-Encoding header";
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    if (!te)
        return NULL;
    if (strcasecmp(te, "chunked") != 0)
        return "Transfer-Encoding other than chunked is not supported";
    if (hs.content_lengths)
        return "a request may not have both Transfer-Encoding and Content-Length";
    return NULL;
}

static void hand_to_handler(gw_request *r)
{
    gw_conn_body_done(r->limits);
    r->handled = true;
    r->gw->pending++;
    r->gw->opts.handler(r, r->gw->opts.ud);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **ctx)
{
    (void)cls, (void)url; /* url is decoded and cut at a NUL: r->path is not */
    gw_request *r = *ctx;
    if (!r)
        return MHD_NO; /* on_uri ran out of memory */
    if (!r->started) {
        request_start(r, method, version);
        const char *framing = bad_framing(r);
        if (r->target_cut)
            gw_respond_error(r, 400, "bad_request", "the request target holds a NUL byte");
        else if (framing)
            gw_respond_error(r, 400, "bad_request", "%s", framing);
        /* An announced oversized body is refused before a byte of it is read. */
        else if (!r->too_big)
            return MHD_YES;
    } else if (*upload_size) {
        if (!r->too_big && buf_append(&r->body, upload, *upload_size) != 0) {
            r->too_big = true;
            buf_release(&r->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->handled && !r->answered)
        hand_to_handler(r);
    if (r->resp) {
        /* Refused before the handler (framing, a cut target): the body's
         * clock must not run while MHD sends the answer, or the sweep
         * could write its 408 into it. */
        gw_conn_body_done(r->limits);
        enum MHD_Result rc = MHD_queue_response(conn, r->status, r->resp);
        MHD_destroy_response(r->resp);
        r->resp = NULL;
        return rc;
    }
    if (!r->suspended) {
        MHD_suspend_connection(conn);
        r->suspended = true;
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    gateway *gw = cls;
    gw_request *r = *ctx;
    if (!r)
        return;
    *ctx = NULL;
    if (r->handled && !r->answered)
        gw->pending--; /* cannot happen while suspended; kept for safety */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        gw_conn_answered(r->limits); /* kept alive: waits for the next head */
    if (r->streaming && r->closed) {
        gw_closed_fn closed = r->closed;
        r->closed = NULL;
        closed(r->stream_ud);
    }
    if (r->hup_init) {
        /* Close now, while MHD still holds the fd open: uv's epoll
         * deregistration must not hit a reused fd number later. */
        uv_close((uv_handle_t *)&r->hup, on_hup_closed);
        return;
    }
    request_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    dlog_debug("http: %s", msg);
}

/* Every connection: tracked for its limits (gateway_conn.c) and, over
 * HTTPS, counted against the certificate pair it may be handed, so that a
 * reload frees an old pair only when unused. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    gateway *gw = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        void *token = gw->opts.tls ? tls_conn_open(gw->opts.tls) : NULL;
        *socket_ctx =
            gw_conn_opened(gw->conns, conn, ci ? ci->connect_fd : -1, gw->opts.tls, token);
        if (!*socket_ctx && token)
            tls_conn_close(gw->opts.tls, token);
    } else {
        void *token = gw_conn_closed(*socket_ctx);
        *socket_ctx = NULL;
        if (gw->opts.tls)
            tls_conn_close(gw->opts.tls, token);
    }
}

/* --- the loop glue --- */

static void on_timer(uv_timer_t *t)
{
    gw_run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    gw_run(p->data);
}

/* MHD asks for another run at once (timeout 0) while it holds data it
 * can act on; a connection wedged in its read buffer (0.9.75: a chunk
 * line longer than the buffer) asks it forever. A 0 ms timer started in
 * its own callback runs again in the same pass of libuv's timer phase, so
 * the loop would never poll again: no other client, not even the sweep
 * that cuts the wedged one (gateway_conn.c), would run. After a streak of
 * immediate runs the next waits 1 ms, which lets the loop turn. */
#define GW_IMMEDIATE_RUNS 64

static void gw_run(gateway *gw)
{
    MHD_run(gw->mhd);
    MHD_UNSIGNED_LONG_LONG timeout;
    if (MHD_get_timeout(gw->mhd, &timeout) != MHD_YES) {
        gw->immediate_runs = 0;
        uv_timer_stop(&gw->timer);
        return;
    }
    if (timeout > 0)
        gw->immediate_runs = 0;
    else if (++gw->immediate_runs > GW_IMMEDIATE_RUNS)
        timeout = 1;
    uv_timer_start(&gw->timer, on_timer, timeout, 0);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(listen) >= sizeof host)
        return -EINVAL;
    size_t hl = (size_t)(colon - listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0')
        return -EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV},
                    *res;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%ld", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* Judges the address the gateway would bind: the first one the host part
 * resolves to, as gateway_start takes it. */
bool gateway_listen_is_loopback(const char *listen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_listen(listen, &ss, &len) < 0)
        return false;
    return is_loopback((const struct sockaddr *)&ss);
}

static void on_handle_closed(uv_handle_t *h)
{
    gateway *gw = h->data;
    if (--gw->handles_open == 0)
        free(gw);
}

/* MHD's own limit sits above ours: the connection past ours must be
 * accepted for gateway_conn.c to make room for it or answer it 503. */
static unsigned mhd_connection_limit(const gateway_opts *opts)
{
    return opts->max_connections ? opts->max_connections + 16 : 16384;
}

/* MHD counts whole seconds (0 = none). */
static unsigned idle_seconds(const gateway_opts *opts)
{
    uint64_t s = (opts->idle_timeout_ms + 999) / 1000;
    return s > 86400 ? 86400 : (unsigned)s;
}

int gateway_start(uv_loop_t *loop, const gateway_opts *opts, gateway **out)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(opts->listen, &ss, &sslen))
        return -EINVAL;
    gateway *gw = calloc(1, sizeof *gw);
    if (!gw)
        return -ENOMEM;
    gw->loop = loop;
    gw->opts = *opts;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_retrieve},
        {MHD_OPTION_END, 0, NULL},
    };
    if (opts->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
            free(gw);
            return -ENOTSUP;
        }
        flags |= MHD_USE_TLS;
    } else {
        tls_opts[0].option = MHD_OPTION_END;
    }
    gw_conn_limits lim = {
        .max_connections = opts->max_connections,
        .header_timeout_ms = opts->header_timeout_ms,
        .body_timeout_ms = opts->body_timeout_ms,
    };
    if (!(gw->conns = gw_conns_new(loop, &lim))) {
        free(gw);
        return -ENOMEM;
    }
    gw->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, gw, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, gw, MHD_OPTION_CONNECTION_LIMIT,
        mhd_connection_limit(opts), MHD_OPTION_CONNECTION_TIMEOUT, idle_seconds(opts),
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, gw, MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!gw->mhd) {
        int err = errno ? errno : EADDRINUSE;
        gw_conns_free(gw->conns);
        free(gw);
        return -err;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pinfo = MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = pinfo ? pinfo->port : 0;
    uv_poll_init(loop, &gw->poll, info->epoll_fd);
    uv_timer_init(loop, &gw->timer);
    gw->poll.data = gw->timer.data = gw;
    gw->handles_open = 2;
    uv_poll_start(&gw->poll, UV_READABLE, on_poll);
    gw_run(gw);
    *out = gw;
    return 0;
}

uint16_t gateway_port(const gateway *gw)
{
    return gw->port;
}

void gateway_quiesce(gateway *gw)
{
    MHD_socket fd = MHD_quiesce_daemon(gw->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

unsigned gateway_pending(const gateway *gw)
{
    return gw->pending;
}

/* MHD counts them; asking is safe because MHD_run() runs on this thread. */
unsigned gateway_connections(const gateway *gw)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void gateway_stop(gateway *gw)
{
    if (!gw)
        return;
    MHD_stop_daemon(gw->mhd);
    gw_conns_free(gw->conns);
    uv_close((uv_handle_t *)&gw->poll, on_handle_closed);
    uv_close((uv_handle_t *)&gw->timer, on_handle_closed);
}

/* --- request accessors --- */

const char *gw_method(const gw_request *r)
{
    return r->method;
}

const char *gw_path(const gw_request *r)
{
    return r->path;
}

const char *gw_request_id(const gw_request *r)
{
    return r->id;
}

const char *gw_header(gw_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *gw_query(gw_request *r, const char *name, size_t *len)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v, &n) !=
        MHD_YES)
        return NULL;
    *len = v ? n : 0;
    return v ? v : "";
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

ssize_t gw_unescape(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++, o++) {
        if (o == cap)
            return -1;
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = hex_digit(in[i + 1])) >= 0 &&
            (lo = hex_digit(in[i + 2])) >= 0) {
            out[o] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o] = in[i];
        }
    }
    return (ssize_t)o;
}

void gw_set_principal(gw_request *r, const char *name, const char *id)
{
    snprintf(r->principal, sizeof r->principal, "%s", name);
    snprintf(r->principal_id, sizeof r->principal_id, "%s", id);
}

const char *gw_principal(const gw_request *r)
{
    return r->principal;
}

const char *gw_principal_id(const gw_request *r)
{
    return r->principal_id;
}

const void *gw_body(const gw_request *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

bool gw_body_too_large(const gw_request *r)
{
    return r->too_big;
}

struct pair_ctx {
    gw_pair_fn fn;
    void *ud;
};

/* The _n iterator: MHD knows each decoded key's and value's true length. */
static enum MHD_Result pair_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_len, const char *value, size_t value_len)
{
    (void)kind;
    struct pair_ctx *pc = cls;
    gw_pair pair = {key ? key : "", key ? key_len : 0, value ? value : "", value ? value_len : 0};
    pc->fn(&pair, pc->ud);
    return MHD_YES;
}

void gw_each_header(gw_request *r, gw_pair_fn fn, void *ud)
{
    struct pair_ctx pc = {fn, ud};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, pair_visit, &pc);
}

void gw_each_query(gw_request *r, gw_pair_fn fn, void *ud)
{
    struct pair_ctx pc = {fn, ud};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, pair_visit, &pc);
}

/* --- answers --- */

void gw_add_header(gw_request *r, const char *name, const char *value)
{
    if (r->nheaders == GW_MAX_EXTRA_HEADERS)
        return;
    struct gw_header *h = &r->headers[r->nheaders];
    h->name = strdup(name);
    h->value = strdup(value);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return;
    }
    r->nheaders++;
}

/* Puts the common and queued headers on `resp` and hands it to MHD. */
static void answer_with(gw_request *r, unsigned status, const char *content_type,
                        struct MHD_Response *resp)
{
    if (!resp) {
        resp = MHD_create_response_from_buffer(sizeof GW_INTERNAL_ERROR - 1,
                                               (void *)GW_INTERNAL_ERROR, MHD_RESPMEM_PERSISTENT);
        status = 500;
        content_type = "application/json";
    }
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (unsigned i = 0; i < r->nheaders; i++)
        if (MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value) != MHD_YES)
            dlog_debug("dropped invalid response header %s", r->headers[i].name);
    r->resp = resp;
    r->status = status;
    r->answered = true;
    if (r->handled)
        r->gw->pending--;
    if (r->suspended)
        resume(r);
}

void gw_respond(gw_request *r, unsigned status, const char *content_type, char *body, size_t len)
{
    if (r->answered) {
        free(body);
        return;
    }
    struct MHD_Response *resp;
    if (body)
        resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(body);
    answer_with(r, status, content_type, resp);
}

void gw_respond_json(gw_request *r, unsigned status, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        /* Out of memory, or a string jansson refused: still the error shape. */
        if (!r->answered)
            answer_with(r, 500, NULL, NULL);
        return;
    }
    size_t n = strlen(text);
    char *body = realloc(text, n + 2);
    if (body) {
        body[n++] = '\n';
        body[n] = '\0';
        text = body;
    } else {
        n = strlen(text);
    }
    gw_respond(r, status, "application/json", text, n);
}

void gw_respond_error(gw_request *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[1024], safe[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote names and paths a client sent: printable UTF-8 only,
     * or jansson refuses the string and the answer loses its body. */
    safetext_copy(safe, sizeof safe, msg, strlen(msg));
    json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", safe);
    gw_respond_json(r, status, err);
}

/* --- streams --- */

static void on_hup(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    gw_request *r = p->data;
    r->client_gone = true;
    gw_stream_wake(r);
}

static void watch_for_hangup(gw_request *r)
{
    if (!r->hup_init) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || uv_poll_init(r->gw->loop, &r->hup, ci->connect_fd) != 0)
            return;
        r->hup.data = r;
        r->hup_init = true;
    }
    uv_poll_start(&r->hup, UV_READABLE | UV_DISCONNECT, on_hup);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    gw_request *r = cls;
    if (r->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    ssize_t n = r->pull(r->stream_ud, dst, max);
    if (n > 0)
        return n;
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send: park the connection instead of letting MHD spin. */
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    watch_for_hangup(r);
    return 0;
}

void gw_respond_stream(gw_request *r, unsigned status, const char *content_type, gw_pull_fn pull,
                       gw_closed_fn closed, void *ud)
{
    r->streaming = true;
    r->pull = pull;
    r->closed = closed;
    r->stream_ud = ud;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, r, NULL);
    answer_with(r, status, content_type, resp);
}

void gw_stream_wake(gw_request *r)
{
    if (!r->suspended || !r->streaming)
        return;
    if (r->hup_init)
        uv_poll_stop(&r->hup);
    resume(r);
}
