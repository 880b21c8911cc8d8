/*
 * gateway_conn.c — the limits on client connections: how many may be open
 * (--max-connections) and how long a request's head (--header-timeout) and
 * body (--body-timeout) may take to arrive. libmicrohttpd's own timeout
 * (--idle-timeout, set in gateway.c) only closes a connection that moves
 * no byte at all; a client trickling one byte a second (slowloris) resets
 * it forever. These limits are deadlines instead, counted on the loop's
 * monotonic clock from the start of each phase, and checked by one sweep
 * timer over every connection (cheap: a thousand connections are a
 * thousand comparisons a quarter-second).
 *
 * Cutting a connection off: on plain HTTP, when the client has started a
 * request, a 408 (or, refused at the limit, a 503) in the JSON error shape
 * is written straight to the socket — MHD writes nothing while it is still
 * reading a request — and then the socket is shut down, so that MHD's next
 * read sees the end and MHD closes the connection itself (it owns the fd).
 * Over TLS nothing of ours may be written: the socket is only shut down.
 *
 * Idle connections are kept in the order they became idle; at the limit
 * the one idle longest gives its place to a new connection, the way
 * nginx reuses keep-alive connections, so idle ones never starve new
 * clients. Connections busy with a request are never taken.
 *
 * Owns: the connection table, the phase deadlines, the sweep. Must never:
 * read from a socket, or close one (MHD does).
 */
#include "gateway_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dlog.h"

#define SWEEP_MS      250
#define CUT_TIMEOUT_S 1

#define ANSWER_MAX 512

/* The answers of ours, in the JSON error shape, built once. */
struct answers {
    char head_timeout[ANSWER_MAX], body_timeout[ANSWER_MAX], full[ANSWER_MAX];
};

static void make_answer(char *out, const char *status, const char *code, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code,
                     msg);
    snprintf(out, ANSWER_MAX,
             "HTTP/1.1 %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n%s",
             status, n, body);
}

static void make_answers(struct answers *a)
{
    make_answer(a->head_timeout, "408 Request Timeout", "request_timeout",
                "the request head did not arrive within --header-timeout");
    make_answer(a->body_timeout, "408 Request Timeout", "request_timeout",
                "the request body did not arrive within --body-timeout");
    make_answer(a->full, "503 Service Unavailable", "too_many_connections",
                "every connection --max-connections allows is busy");
}

enum phase {
    P_IDLE, /* waiting for a request (fresh, or after an answer): header deadline */
    P_HEAD, /* request line in, headers not yet: header deadline, 408 */
    P_BODY, /* headers in, body not yet: body deadline, 408 */
    P_BUSY, /* with the handler, answering or streaming: no deadline of ours */
};

struct gw_conn {
    gw_conns *cs;
    gw_conn *prev, *next;
    int fd;
    struct MHD_Connection *mhd;
    bool tls;
    bool cut; /* shut down by us: MHD will close it */
    enum phase phase;
    uint64_t deadline; /* uv_now() ms; 0 = none */
    void *tls_token;
};

struct gw_conns {
    uv_loop_t *loop;
    uv_timer_t sweep;
    gw_conn_limits lim;
    /* Every connection, busy and cut ones too; idle ones reach the tail in
     * the order they became idle, so the first idle one from the head has
     * been idle the longest. */
    gw_conn *head, *tail;
    unsigned live; /* not cut */
    struct answers answers;
};

static void unlink_conn(gw_conn *c)
{
    gw_conns *cs = c->cs;
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        cs->tail = c->prev;
    c->prev = c->next = NULL;
}

static void append_conn(gw_conn *c)
{
    gw_conns *cs = c->cs;
    c->prev = cs->tail;
    c->next = NULL;
    if (cs->tail)
        cs->tail->next = c;
    else
        cs->head = c;
    cs->tail = c;
}

/* Writes `answer` (when allowed: one write() of a few hundred bytes to a
 * socket we have not written to, so no partial write to resume) and shuts
 * the socket down; MHD sees the end at its next read and closes it. */
static void cut(gw_conn *c, const char *answer)
{
    if (c->cut)
        return;
    if (answer && !c->tls) {
        ssize_t n = write(c->fd, answer, strlen(answer));
        (void)n; /* a client that cannot take it gets the close alone */
    }
    shutdown(c->fd, SHUT_RDWR);
    /* MHD notices the end only when it reads; one whose buffer is full of
     * an unfinished line (a 200 KiB chunk extension) no longer does. Its
     * own timeout, now short, closes such a connection too. */
    MHD_set_connection_option(c->mhd, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)CUT_TIMEOUT_S);
    c->cut = true;
    c->deadline = 0;
    c->cs->live--;
}

static void on_sweep(uv_timer_t *t)
{
    gw_conns *cs = t->data;
    uint64_t now = uv_now(cs->loop);
    for (gw_conn *c = cs->head; c; c = c->next) {
        if (c->cut || !c->deadline || now < c->deadline)
            continue;
        if (c->phase == P_IDLE) {
            cut(c, NULL); /* nothing asked: a silent close, as for keep-alive */
        } else if (c->phase == P_HEAD) {
            dlog_debug("http: a request head took longer than --header-timeout: 408");
            cut(c, cs->answers.head_timeout);
        } else if (c->phase == P_BODY) {
            dlog_debug("http: a request body took longer than --body-timeout: 408");
            cut(c, cs->answers.body_timeout);
        }
    }
}

gw_conns *gw_conns_new(uv_loop_t *loop, const gw_conn_limits *lim)
{
    gw_conns *cs = calloc(1, sizeof *cs);
    if (!cs)
        return NULL;
    cs->loop = loop;
    cs->lim = *lim;
    make_answers(&cs->answers);
    uv_timer_init(loop, &cs->sweep);
    cs->sweep.data = cs;
    uv_timer_start(&cs->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&cs->sweep); /* it alone keeps no loop alive */
    return cs;
}

static void on_sweep_closed(uv_handle_t *h)
{
    free(h->data);
}

void gw_conns_free(gw_conns *cs)
{
    if (!cs)
        return;
    uv_close((uv_handle_t *)&cs->sweep, on_sweep_closed);
}

static void set_phase(gw_conn *c, enum phase p, uint64_t limit_ms)
{
    c->phase = p;
    c->deadline = limit_ms && !c->cut ? uv_now(c->cs->loop) + limit_ms : 0;
}

/* The connection idle the longest, or NULL. */
static gw_conn *longest_idle(gw_conns *cs)
{
    for (gw_conn *c = cs->head; c; c = c->next)
        if (!c->cut && c->phase == P_IDLE)
            return c;
    return NULL;
}

gw_conn *gw_conn_opened(gw_conns *cs, struct MHD_Connection *conn, int fd, bool tls,
                        void *tls_token)
{
    gw_conn *c = calloc(1, sizeof *c);
    if (!c) {
        shutdown(fd, SHUT_RDWR);
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)CUT_TIMEOUT_S);
        return NULL;
    }
    *c = (gw_conn){.cs = cs, .fd = fd, .mhd = conn, .tls = tls, .tls_token = tls_token};
    /* uv_now is the time of this loop turn: a connection accepted after a
     * long turn must not be judged by it. */
    uv_update_time(cs->loop);
    append_conn(c);
    cs->live++;
    set_phase(c, P_IDLE, cs->lim.header_timeout_ms);
    if (cs->lim.max_connections && cs->live > cs->lim.max_connections) {
        gw_conn *idle = longest_idle(cs);
        if (idle && idle != c) {
            dlog_debug("http: --max-connections reached: closing the longest-idle connection");
            cut(idle, NULL);
        } else {
            dlog_debug("http: --max-connections reached and none idle: 503");
            cut(c, cs->answers.full);
        }
    }
    return c;
}

void *gw_conn_closed(gw_conn *c)
{
    if (!c)
        return NULL;
    void *token = c->tls_token;
    if (!c->cut)
        c->cs->live--;
    unlink_conn(c);
    free(c);
    return token;
}

void gw_conn_request_line(gw_conn *c)
{
    /* The header clock started when the connection became idle: a head
     * sent slowly since then gets no more time by reaching its headers. */
    if (c && c->phase == P_IDLE)
        c->phase = P_HEAD;
}

void gw_conn_head_done(gw_conn *c)
{
    if (c)
        set_phase(c, P_BODY, c->cs->lim.body_timeout_ms);
}

void gw_conn_body_done(gw_conn *c)
{
    if (c)
        set_phase(c, P_BUSY, 0);
}

void gw_conn_answered(gw_conn *c)
{
    if (!c || c->cut)
        return;
    unlink_conn(c);
    append_conn(c); /* the most recently idle */
    set_phase(c, P_IDLE, c->cs->lim.header_timeout_ms);
}
