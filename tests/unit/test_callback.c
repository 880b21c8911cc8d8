/*
 * test_callback.c — result callbacks against a real loop and a fake HTTP
 * listener on 127.0.0.1: delivery with its headers and body, answers
 * scripted as data (retries on 5xx, 408 and 429, none on 4xx or a
 * redirect, giving up), a listener that never
 * answers, a refused connection, a long answer, the in-flight bound,
 * cancelling at close, and the URL and header checks.
 *
 * The listener (`fake`) is a test-only server on the same uv loop: it reads
 * one request per connection (headers, then Content-Length bytes), records
 * it, and answers the next status of its script with Connection: close —
 * or never answers. The client under test is libcurl's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "events/callback.h"
#include "events/retry.h"

/* --- the fake listener --- */

#define FAKE_MAX_REQ   16
#define FAKE_REQ_BYTES (256 * 1024)

typedef struct fake_req {
    char head[8192];
    char *body;
    size_t body_len;
    uint64_t at_ms; /* uv_now when it was complete */
} fake_req;

typedef struct fake {
    uv_loop_t *loop;
    uv_tcp_t server;
    int port;
    int script[FAKE_MAX_REQ]; /* statuses to answer, in order; 0 = never answer */
    int nscript;
    size_t big_answer; /* bytes of body in a 2xx answer (0 = "ok") */
    fake_req req[FAKE_MAX_REQ];
    int nreq;
    int open_conns;
} fake;

typedef struct conn {
    uv_tcp_t tcp;
    fake *f;
    char *in;
    size_t len;
    bool answered;
} conn;

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    c->f->open_conns--;
    free(c->in);
    free(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(hint);
    b->len = b->base ? hint : 0;
}

/* An answer; its bytes live with the write request until written, then
 * the connection closes (Connection: close). */
typedef struct wbuf {
    uv_write_t w;
    conn *c;
    char data[];
} wbuf;

static void on_wbuf_written(uv_write_t *w, int status)
{
    (void)status;
    wbuf *wb = (wbuf *)w;
    conn *c = wb->c;
    free(wb);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void answer(conn *c, int status)
{
    fake *f = c->f;
    size_t blen = status >= 200 && status < 300 && f->big_answer ? f->big_answer : 2;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n", status,
                      blen, status / 100 == 3 ? "Location: http://127.0.0.1:1/\r\n" : "");
    wbuf *wb = malloc(sizeof *wb + (size_t)hl + blen);
    assert_non_null(wb);
    wb->c = c;
    memcpy(wb->data, head, (size_t)hl);
    memset(wb->data + hl, 'k', blen);
    uv_buf_t b = uv_buf_init(wb->data, (unsigned)((size_t)hl + blen));
    assert_int_equal(uv_write(&wb->w, (uv_stream_t *)&c->tcp, &b, 1, on_wbuf_written), 0);
}

/* A whole request is in c->in: record it and answer per the script. */
static void request_complete(conn *c, size_t head_len, size_t body_len)
{
    fake *f = c->f;
    c->answered = true;
    assert_true(f->nreq < FAKE_MAX_REQ);
    fake_req *r = &f->req[f->nreq];
    int status = f->nreq < f->nscript ? f->script[f->nreq] : 200;
    f->nreq++;
    size_t hl = head_len < sizeof r->head ? head_len : sizeof r->head - 1;
    memcpy(r->head, c->in, hl);
    r->head[hl] = '\0';
    r->body = malloc(body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->in + head_len, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    r->at_ms = uv_now(f->loop);
    if (status)
        answer(c, status);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n < 0) {
        free(b->base);
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    if (n > 0 && !c->answered) {
        assert_true(c->len + (size_t)n <= FAKE_REQ_BYTES);
        memcpy(c->in + c->len, b->base, (size_t)n);
        c->len += (size_t)n;
        c->in[c->len] = '\0';
        char *end = strstr(c->in, "\r\n\r\n");
        if (end) {
            size_t head_len = (size_t)(end - c->in) + 4;
            size_t body_len = 0;
            char *cl = strcasestr(c->in, "\r\nContent-Length:");
            if (cl && cl < end)
                body_len = strtoul(cl + 17, NULL, 10);
            if (c->len >= head_len + body_len)
                request_complete(c, head_len, body_len);
        }
    }
    free(b->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    assert_int_equal(status, 0);
    fake *f = server->data;
    conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->f = f;
    c->in = malloc(FAKE_REQ_BYTES + 1);
    assert_non_null(c->in);
    uv_tcp_init(f->loop, &c->tcp);
    c->tcp.data = c;
    f->open_conns++;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void fake_start(fake *f, uv_loop_t *loop)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_init(loop, &f->server), 0);
    f->server.data = f;
    assert_int_equal(uv_tcp_bind(&f->server, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 64, on_connection), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&f->server, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
}

static void close_conn_walk(uv_handle_t *h, void *arg)
{
    fake *f = arg;
    if (h->type == UV_TCP && h != (uv_handle_t *)&f->server && h->data &&
        ((conn *)h->data)->f == f && !uv_is_closing(h))
        uv_close(h, conn_closed);
}

static void fake_stop(fake *f)
{
    uv_walk(f->loop, close_conn_walk, f);
    uv_close((uv_handle_t *)&f->server, NULL);
    for (int i = 0; i < f->nreq; i++)
        free(f->req[i].body);
}

/* --- the client's side --- */

typedef struct outcome {
    int calls;
    bool delivered;
    unsigned attempts;
    long status;
    char error[512];
    uint64_t at_ms;
    uv_loop_t *loop;
} outcome;

static void on_done(void *ud, const callback_result *r)
{
    outcome *o = ud;
    o->calls++;
    o->delivered = r->delivered;
    o->attempts = r->attempts;
    o->status = r->status;
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    o->at_ms = o->loop ? uv_now(o->loop) : 0;
    if (r->delivered)
        assert_null(r->error);
    else
        assert_non_null(r->error);
}

typedef struct world {
    uv_loop_t loop;
    fake f;
    callbacks *cb;
    char url[128];
} world;

static void world_open(world *w, const callbacks_opts *extra)
{
    assert_int_equal(uv_loop_init(&w->loop), 0);
    fake_start(&w->f, &w->loop);
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%d/hook?x=1", w->f.port);
    callbacks_opts o = {0};
    if (extra)
        o = *extra;
    o.loop = &w->loop;
    if (!o.base_delay_ms)
        o.base_delay_ms = 20;
    if (!o.timeout_ms)
        o.timeout_ms = 2000;
    o.seed = 12345;
    assert_int_equal(callbacks_open(&o, &w->cb), 0);
}

/* Runs the loop until *calls reaches n (or 10 s pass: a failure). */
static void run_until(world *w, const int *calls, int n)
{
    uint64_t start = uv_now(&w->loop);
    while (*calls < n) {
        uv_run(&w->loop, UV_RUN_ONCE);
        uv_update_time(&w->loop);
        assert_true(uv_now(&w->loop) - start < 10000);
    }
}

/* Closes everything and checks that no handle was left behind. */
static void world_close(world *w)
{
    callbacks_close(w->cb);
    fake_stop(&w->f);
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

static int post(world *w, outcome *o)
{
    static const char body[] = "{\"id\":\"inv-1\",\"status\":\"succeeded\"}";
    const char *headers[] = {"X-Hearth-Invocation-Id: inv-1", "X-Hearth-Status: succeeded", NULL};
    o->loop = &w->loop;
    return callbacks_post(w->cb, w->url, "application/json", headers, body, sizeof body - 1,
                          on_done, o);
}

/* --- tests --- */

static void test_delivers_with_headers_and_body(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.user_agent = "hearth/9.9"});
    outcome o = {0};
    assert_int_equal(post(&w, &o), 0);
    assert_int_equal(o.calls, 0); /* never from inside callbacks_post */
    assert_int_equal(callbacks_pending(w.cb), 1);
    run_until(&w, &o.calls, 1);
    assert_true(o.delivered);
    assert_int_equal(o.attempts, 1);
    assert_int_equal(o.status, 200);
    assert_int_equal(w.f.nreq, 1);
    const char *h = w.f.req[0].head;
    assert_true(strncmp(h, "POST /hook?x=1 HTTP/1.1\r\n", 25) == 0);
    assert_non_null(strcasestr(h, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(h, "\r\nX-Hearth-Invocation-Id: inv-1\r\n"));
    assert_non_null(strcasestr(h, "\r\nX-Hearth-Status: succeeded\r\n"));
    assert_non_null(strcasestr(h, "\r\nUser-Agent: hearth/9.9\r\n"));
    assert_null(strcasestr(h, "\r\nExpect:"));
    assert_string_equal(w.f.req[0].body, "{\"id\":\"inv-1\",\"status\":\"succeeded\"}");
    assert_int_equal(callbacks_pending(w.cb), 0);
    world_close(&w);
    assert_int_equal(o.calls, 1);
}

/* Answers scripted as data: the statuses the listener gives, in order,
 * and how the POST must end. */
static const struct scripted {
    const char *what;
    unsigned max_attempts; /* 0: the default, 5 */
    int script[6];
    int nscript;
    bool delivered;
    unsigned attempts;
    long status;
    const char *error; /* a part of it */
} scripted[] = {
    {"5xx and 429 are retried", 0, {500, 503, 429, 200}, 4, true, 4, 200, NULL},
    {"408 is retried", 0, {408, 204}, 2, true, 2, 204, NULL},
    {"400 is final", 0, {400}, 1, false, 1, 400, "HTTP 400"},
    {"404 is final", 0, {404}, 1, false, 1, 404, "HTTP 404"},
    {"a redirect is final, never followed",
     0,
     {302},
     1,
     false,
     1,
     302,
     "HTTP 302: redirects are not followed"},
    {"gives up after max_attempts", 3, {502, 502, 502, 502}, 4, false, 3, 502, "HTTP 502"},
};

static void test_scripted_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof scripted / sizeof *scripted; i++) {
        const struct scripted *t = &scripted[i];
        world w;
        world_open(&w, &(callbacks_opts){.max_attempts = t->max_attempts});
        memcpy(w.f.script, t->script, sizeof t->script);
        w.f.nscript = t->nscript;
        outcome o = {0};
        assert_int_equal(post(&w, &o), 0);
        run_until(&w, &o.calls, 1);
        if (o.delivered != t->delivered || o.attempts != t->attempts || o.status != t->status ||
            (t->error && !strstr(o.error, t->error)))
            fail_msg("%s: delivered %d, %u attempts, status %ld, \"%s\"", t->what, o.delivered,
                     o.attempts, o.status, o.error);
        assert_int_equal(w.f.nreq, (int)t->attempts); /* a Location is never visited */
        for (int r = 1; r < w.f.nreq; r++)            /* the same request each time */
            assert_string_equal(w.f.req[r].body, w.f.req[0].body);
        world_close(&w);
        assert_int_equal(o.calls, 1);
    }
}

static void test_times_out_a_listener_that_never_answers(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.max_attempts = 2, .timeout_ms = 300});
    w.f.nscript = 2; /* script[0] = script[1] = 0: never answer */
    outcome o = {0};
    uint64_t start = uv_now(&w.loop);
    assert_int_equal(post(&w, &o), 0);
    run_until(&w, &o.calls, 1);
    assert_false(o.delivered);
    assert_int_equal(o.attempts, 2);
    assert_int_equal(o.status, 0);
    assert_non_null(strcasestr(o.error, "timed out"));
    assert_int_equal(w.f.nreq, 2);
    assert_true(o.at_ms - start >= 2 * 300);
    world_close(&w);
}

static void test_refused_connection_is_retried_then_given_up(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.max_attempts = 3});
    /* A port nobody listens on: bind one, learn it, close it. */
    uv_tcp_t t;
    struct sockaddr_in a, got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&w.loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w.loop, UV_RUN_NOWAIT);
    snprintf(w.url, sizeof w.url, "http://127.0.0.1:%d/", ntohs(got.sin_port));
    outcome o = {0};
    assert_int_equal(post(&w, &o), 0);
    run_until(&w, &o.calls, 1);
    assert_false(o.delivered);
    assert_int_equal(o.attempts, 3);
    assert_int_equal(o.status, 0);
    assert_non_null(strcasestr(o.error, "connect"));
    world_close(&w);
}

static void test_a_long_answer_is_cut_and_its_status_stands(void **state)
{
    (void)state;
    world w;
    world_open(&w, NULL);
    w.f.big_answer = 4 * CALLBACK_MAX_RESPONSE;
    outcome o = {0};
    assert_int_equal(post(&w, &o), 0);
    run_until(&w, &o.calls, 1);
    assert_true(o.delivered);
    assert_int_equal(o.attempts, 1);
    world_close(&w);
}

static void test_in_flight_bound_and_a_large_body(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.max_in_flight = 1});
    size_t big = 200 * 1024; /* past libcurl's Expect: 100-continue threshold */
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'b', big);
    outcome o[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        o[i].loop = &w.loop;
        assert_int_equal(callbacks_post(w.cb, w.url, "application/octet-stream", NULL, body, big,
                                        on_done, &o[i]),
                         0);
    }
    free(body); /* copied */
    assert_int_equal(callbacks_pending(w.cb), 3);
    run_until(&w, &o[2].calls, 1); /* the last in line */
    for (int i = 0; i < 3; i++)
        assert_true(o[i].delivered);
    assert_int_equal(w.f.nreq, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w.f.req[i].body_len, big);
    assert_true(o[0].at_ms <= o[1].at_ms && o[1].at_ms <= o[2].at_ms); /* in order */
    world_close(&w);
}

/* A done callback that closes everything: the rest are cancelled. */
typedef struct closer {
    outcome o;
    callbacks *cb;
} closer;

static void close_from_done(void *ud, const callback_result *r)
{
    closer *c = ud;
    on_done(&c->o, r);
    callbacks_close(c->cb);
    assert_int_equal(
        callbacks_post(c->cb, "http://127.0.0.1:1/", NULL, NULL, "", 0, on_done, &c->o),
        -ESHUTDOWN);
}

static void on_run_for(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop for ms milliseconds. */
static void run_for(world *w, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&w->loop, &t);
    uv_timer_start(&t, on_run_for, ms, 0);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
}

static void test_close_cancels_every_post_once(void **state)
{
    (void)state;
    world w;
    /* One POST waits for its retry, one for an answer that never comes,
     * two for the one slot. */
    world_open(&w, &(callbacks_opts){.max_in_flight = 1, .base_delay_ms = 60000});
    w.f.script[0] = 503;
    w.f.script[1] = 0;
    w.f.nscript = 2;
    outcome retrying = {0}, hanging = {0}, queued = {0}, queued2 = {0};
    assert_int_equal(post(&w, &retrying), 0);
    run_for(&w, 300);
    assert_int_equal(w.f.nreq, 1);
    assert_int_equal(retrying.calls, 0); /* its retry is due later (seeded jitter) */
    assert_int_equal(post(&w, &hanging), 0);
    run_until(&w, &w.f.nreq, 2);
    assert_int_equal(post(&w, &queued), 0);
    assert_int_equal(post(&w, &queued2), 0);
    assert_int_equal(callbacks_pending(w.cb), 4);
    callbacks_close(w.cb);
    outcome *all[] = {&retrying, &hanging, &queued, &queued2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(all[i]->calls, 1);
        assert_false(all[i]->delivered);
        assert_non_null(strstr(all[i]->error, "cancelled"));
    }
    assert_non_null(strstr(retrying.error, "HTTP 503"));
    assert_int_equal(retrying.attempts, 1);
    assert_int_equal(hanging.attempts, 1);
    assert_int_equal(queued.attempts, 0);
    callbacks_close(NULL);
    fake_stop(&w.f);
    assert_int_equal(uv_run(&w.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&w.loop), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(all[i]->calls, 1);
}

static void test_close_from_inside_a_done_callback(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.max_in_flight = 1});
    w.f.script[0] = 400;
    w.f.nscript = 1;
    closer first = {.cb = w.cb};
    outcome second = {0};
    first.o.loop = &w.loop;
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, NULL, "a", 1, close_from_done, &first), 0);
    assert_int_equal(post(&w, &second), 0); /* waits for the slot */
    run_until(&w, &first.o.calls, 1);
    assert_int_equal(second.calls, 1); /* cancelled once the first's done returned */
    assert_non_null(strstr(second.error, "cancelled"));
    fake_stop(&w.f);
    assert_int_equal(uv_run(&w.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&w.loop), 0);
    assert_int_equal(first.o.calls, 1);
}

static void test_url_check(void **state)
{
    (void)state;
    char err[200];
    static const char *const good[] = {
        "http://127.0.0.1:8080/hook",
        "https://example.com/a/b?c=d&e=%20f",
        "HTTPS://Example.COM",
        "http://[::1]:9000/x",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(callback_url_check(good[i], err, sizeof err), 0);

    static const struct {
        const char *url;
        const char *says;
    } bad[] = {
        {"ftp://example.com/x", "http:// or https://"},
        {"file:///etc/passwd", "http:// or https://"},
        {"gopher://example.com/", "http:// or https://"},
        {"example.com/hook", "http:// or https://"},
        {"http://example.com/\r\nX-Evil: 1", "control byte"},
        {"http://example.com/\nx", "control byte"},
        {"http://example.com/a b", "space"},
        {"http://exa\x01mple.com/", "control byte"},
        {"http://ex\xc3\xa4mple.com/", "non-ASCII"},
        {"http://user:pw@example.com/", "user name or password"},
        {"http://user@example.com/", "user name or password"},
        {"http:///path", "no host"},
        {"http://", "no host"},
        {"http://?x", "no host"},
        {"http://:80/", "not a valid URL"},
        {"http://example.com\\@evil.test/", "backslash"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_int_equal(callback_url_check(bad[i].url, err, sizeof err), -1);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: said \"%s\"", bad[i].url, err);
    }
    char long_url[CALLBACK_URL_MAX + 2];
    memcpy(long_url, "http://example.com/", 19);
    memset(long_url + 19, 'a', sizeof long_url - 20);
    long_url[sizeof long_url - 1] = '\0';
    assert_int_equal(callback_url_check(long_url, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 2048"));
    long_url[CALLBACK_URL_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(callback_url_check(long_url, err, sizeof err), 0);
    assert_int_equal(callback_url_check(NULL, NULL, 0), -1);
}

static void test_bad_posts_are_refused_without_done(void **state)
{
    (void)state;
    world w;
    world_open(&w, &(callbacks_opts){.max_pending = 1});
    outcome o = {0};
    const char *crlf[] = {"X-A: b\r\nX-Evil: 1", NULL};
    const char *noname[] = {": x", NULL};
    const char *badname[] = {"X A: b", NULL};
    const char *framing[] = {"Content-Length: 1", NULL};
    const char *host[] = {"host: evil", NULL};
    const char *ok[] = {"X-Fine: tab\tok", NULL};
    assert_int_equal(callbacks_post(w.cb, "ftp://127.0.0.1/", NULL, NULL, "x", 1, on_done, &o),
                     -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, crlf, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, noname, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, badname, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, framing, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, host, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(
        callbacks_post(w.cb, w.url, "text/plain\r\nX-Evil: 1", NULL, "x", 1, on_done, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, NULL, "x", 1, NULL, &o), -EINVAL);
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, ok, "x", 1, on_done, &o), 0);
    outcome other = {0};
    assert_int_equal(callbacks_post(w.cb, w.url, NULL, NULL, "x", 1, on_done, &other), -ENOBUFS);
    run_until(&w, &o.calls, 1);
    assert_true(o.delivered);
    assert_non_null(strcasestr(w.f.req[0].head, "\r\nX-Fine: tab\tok\r\n"));
    assert_non_null(strcasestr(w.f.req[0].head, "\r\nContent-Type: application/octet-stream\r\n"));
    world_close(&w);
    assert_int_equal(o.calls, 1);
    assert_int_equal(other.calls, 0);
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        int curl_code;
        long status;
        callback_verdict v;
    } cases[] = {
        {0, 200, CALLBACK_DELIVERED},
        {0, 204, CALLBACK_DELIVERED},
        {0, 299, CALLBACK_DELIVERED},
        {0, 500, CALLBACK_RETRY},
        {0, 503, CALLBACK_RETRY},
        {0, 599, CALLBACK_RETRY},
        {0, 429, CALLBACK_RETRY},
        {0, 408, CALLBACK_RETRY},
        {0, 0, CALLBACK_RETRY},
        {0, 400, CALLBACK_REJECTED},
        {0, 404, CALLBACK_REJECTED},
        {0, 301, CALLBACK_REJECTED},
        {0, 100, CALLBACK_REJECTED},
        {0, 600, CALLBACK_REJECTED},
        {7 /* CURLE_COULDNT_CONNECT */, 0, CALLBACK_RETRY},
        {28 /* CURLE_OPERATION_TIMEDOUT */, 0, CALLBACK_RETRY},
        {6 /* CURLE_COULDNT_RESOLVE_HOST */, 0, CALLBACK_RETRY},
        {35 /* CURLE_SSL_CONNECT_ERROR */, 0, CALLBACK_RETRY},
        {1 /* CURLE_UNSUPPORTED_PROTOCOL */, 0, CALLBACK_REJECTED},
        {3 /* CURLE_URL_MALFORMAT */, 0, CALLBACK_REJECTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (callback_classify(cases[i].curl_code, cases[i].status) != cases[i].v)
            fail_msg("curl %d, status %ld: not %d", cases[i].curl_code, cases[i].status,
                     (int)cases[i].v);
}

/* The backoff callbacks use (events/retry.c): full jitter under an
 * exponential bound that the cap holds. */
static void test_backoff_bounds(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff_ms(1, 1000, 60000, UINT32_MAX), UINT32_MAX % 1001);
    for (uint32_t r = 0; r < 5000; r += 7) {
        assert_true(retry_backoff_ms(1, 1000, 60000, r) <= 1000);
        assert_true(retry_backoff_ms(3, 1000, 60000, r) <= 4000);
        assert_true(retry_backoff_ms(30, 1000, 60000, r * 100003u) <= 60000);
    }
    assert_int_equal(retry_backoff_ms(4, 1000, 60000, 8000), 8000);
    assert_int_equal(retry_backoff_ms(4, 1000, 60000, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivers_with_headers_and_body),
        cmocka_unit_test(test_scripted_answers),
        cmocka_unit_test(test_times_out_a_listener_that_never_answers),
        cmocka_unit_test(test_refused_connection_is_retried_then_given_up),
        cmocka_unit_test(test_a_long_answer_is_cut_and_its_status_stands),
        cmocka_unit_test(test_in_flight_bound_and_a_large_body),
        cmocka_unit_test(test_close_cancels_every_post_once),
        cmocka_unit_test(test_close_from_inside_a_done_callback),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_bad_posts_are_refused_without_done),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_backoff_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
