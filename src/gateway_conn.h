/*
 * gateway_conn.h — the gateway's client connections: how many may be open,
 * and how long each phase of a request may take (gateway_conn.c). Internal
 * to the gateway: gateway.c tells it when a connection opens and closes and
 * when a request reaches each phase.
 */
#ifndef HEARTH_GATEWAY_CONN_H
#define HEARTH_GATEWAY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct gw_conns gw_conns;
typedef struct gw_conn gw_conn;

typedef struct gw_conn_limits {
    unsigned max_connections;   /* --max-connections: at least 1 */
    uint64_t header_timeout_ms; /* --header-timeout: at least 1 s */
    uint64_t body_timeout_ms;   /* --body-timeout: at least 1 s */
} gw_conn_limits;

/* Starts the sweep timer on `loop`. Returns NULL when out of memory. */
gw_conns *gw_conns_new(uv_loop_t *loop, const gw_conn_limits *lim);

/* Closes the timer and frees the table once it has closed; every
 * connection must have been closed (gw_conn_closed) first. Accepts NULL. */
void gw_conns_free(gw_conns *cs);

/* A new connection `conn` on socket `fd`. At the limit, the connection idle the
 * longest is closed to make room; when none is idle, the new one is
 * answered 503 (plain HTTP) and closed. `tls`: no byte of ours may be
 * written to the socket. Returns NULL when out of memory (the connection
 * is then closed, untracked). `tls_token` is the caller's, kept. */
struct MHD_Connection;
gw_conn *gw_conn_opened(gw_conns *cs, struct MHD_Connection *conn, int fd, bool tls,
                        void *tls_token);

/* Its end: frees `c`. Returns the tls_token given to gw_conn_opened. */
void *gw_conn_closed(gw_conn *c);

/* The phases of one request. Each restarts the clock of the next limit. */
void gw_conn_request_line(gw_conn *c); /* the request line has arrived */
void gw_conn_head_done(gw_conn *c);    /* all headers: the body's clock */
void gw_conn_body_done(gw_conn *c);    /* handed to the handler: no limit */
void gw_conn_answered(gw_conn *c);     /* finished: idle, waiting for the next */

#endif
