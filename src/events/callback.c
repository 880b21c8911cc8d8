/*
 * callback.c — result callbacks: outbound POSTs with libcurl's multi
 * interface on the daemon's libuv loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one
 * uv_poll_t per socket, a `sock` below) and when to wake it
 * (CURLMOPT_TIMERFUNCTION: one uv_timer_t); both call back into
 * curl_multi_socket_action, and finished transfers are read with
 * curl_multi_info_read. Each POST (`post`) holds its URL, headers and body
 * for all its attempts, and a uv_timer_t for the wait before a retry; an
 * easy handle exists only while an attempt runs. At most max_in_flight
 * attempts run at once; the others wait, first come first served.
 *
 * Hardening, on every attempt: http and https only (CURLOPT_PROTOCOLS_STR),
 * no redirects, no proxy but the configured one (never the environment's),
 * TLS peer and host verified, no signals, no decompression, the response
 * body read up to CALLBACK_MAX_RESPONSE and discarded.
 *
 * Memory that holds a uv handle is freed in that handle's close callback;
 * the `callbacks` itself once its last handle closed.
 *
 * Owns: the multi handle, the sockets' poll handles, the POSTs. Must
 * never: block the loop, call a done callback twice, or call one from
 * within libcurl.
 */
#include "events/callback.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "events/retry.h"

#define DEFAULT_MAX_ATTEMPTS  5
#define DEFAULT_BASE_DELAY_MS 1000
#define DEFAULT_TIMEOUT_MS    10000
#define DEFAULT_MAX_IN_FLIGHT 32
#define DEFAULT_MAX_PENDING   10000
#define HEADER_MAX            1024 /* bytes of one extra header line */
#define HEADERS_MAX           32   /* extra headers on one POST */

/* A node of an intrusive list: the first member of a post and of a sock. */
typedef struct node {
    struct node *prev, *next;
} node;

static void node_push(node **head, node *n)
{
    n->prev = NULL;
    n->next = *head;
    if (*head)
        (*head)->prev = n;
    *head = n;
}

static void node_unlink(node **head, node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        *head = n->next;
    if (n->next)
        n->next->prev = n->prev;
}

typedef enum post_state {
    POST_WAITING, /* for a slot */
    POST_RUNNING, /* an attempt in libcurl */
    POST_BACKOFF, /* its timer runs */
} post_state;

typedef struct post {
    node link; /* in cb->posts; first */
    callbacks *cb;
    struct post *wait_next; /* cb->waiting, while POST_WAITING */
    post_state state;
    char *url;
    struct curl_slist *headers;
    char *body;
    size_t len;
    callback_done_fn done;
    void *ud;
    CURL *easy; /* while POST_RUNNING */
    uv_timer_t timer;
    unsigned attempts;
    long status;
    size_t response_bytes;
    bool response_capped;
    char curl_error[CURL_ERROR_SIZE]; /* libcurl's, during an attempt */
    char last[CURL_ERROR_SIZE + 64];  /* how the last attempt failed */
} post;

/* A socket libcurl asked us to watch. */
typedef struct sock {
    node link; /* in cb->socks; first */
    callbacks *cb;
    curl_socket_t fd;
    uv_poll_t poll;
} sock;

struct callbacks {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* libcurl's timeout */
    unsigned max_attempts;
    uint64_t base_delay_ms, max_delay_ms, timeout_ms;
    unsigned max_in_flight, max_pending;
    char *user_agent;
    char *proxy;
    uint32_t rng;
    node *posts;                  /* every live POST */
    post *waiting, *waiting_tail; /* FIFO of POST_WAITING */
    node *socks;                  /* every watched socket */
    unsigned pending, in_flight;
    unsigned handles; /* open uv handles: the timer, socks, posts' timers */
    unsigned depth;   /* > 0 while a loop callback of ours runs */
    bool closing;     /* callbacks_close was called */
    bool shut;        /* ...and everything is cancelled */
};

/* --- pure parts --- */

callback_verdict callback_classify(int curl_code, long status)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        return CALLBACK_REJECTED; /* the same request can never work */
    default:
        return CALLBACK_RETRY; /* DNS, connect, TLS, timeout, reset, … */
    }
    if (status >= 200 && status <= 299)
        return CALLBACK_DELIVERED;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return CALLBACK_RETRY;
    if (status < 100)
        return CALLBACK_RETRY; /* no status came: treat as a broken answer */
    return CALLBACK_REJECTED;
}

static int fail(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", what);
    return -1;
}

int callback_url_check(const char *url, char *err, size_t errlen)
{
    if (!url || !*url)
        return fail(err, errlen, "callback URL is empty");
    size_t n = strnlen(url, CALLBACK_URL_MAX + 1);
    if (n > CALLBACK_URL_MAX)
        return fail(err, errlen, "callback URL is longer than 2048 bytes");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail(err, errlen,
                        "callback URL has a space, a control byte (CR, LF, …) or a non-ASCII "
                        "byte: percent-encode it");
    }
    if (strchr(url, '\\'))
        return fail(err, errlen, "callback URL has a backslash: percent-encode it");
    size_t scheme = strncasecmp(url, "http://", 7) == 0    ? 7
                    : strncasecmp(url, "https://", 8) == 0 ? 8
                                                           : 0;
    if (!scheme)
        return fail(err, errlen, "callback URL must start with http:// or https://");
    /* libcurl would read "http:///x" as the host "x": not here. */
    if (!url[scheme] || strchr("/?#", url[scheme]))
        return fail(err, errlen, "callback URL has no host");

    CURLU *u = curl_url();
    if (!u)
        return fail(err, errlen, "out of memory");
    int rc = 0;
    char *host = NULL, *user = NULL, *password = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        rc = fail(err, errlen, "callback URL is not a valid URL");
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        rc = fail(err, errlen, "callback URL has no host");
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
             curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK)
        rc = fail(err, errlen, "callback URL must not carry a user name or password");
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    return rc;
}

/* An extra header: "Name: value", the name a token, no control bytes, and
 * none of the headers that frame the message (libcurl sets those). */
static bool header_ok(const char *h)
{
    static const char *const framing[] = {"host", "content-length", "transfer-encoding",
                                          "connection", "expect"};
    size_t n = strnlen(h, HEADER_MAX + 1);
    if (n > HEADER_MAX)
        return false;
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return false;
    for (const char *p = h; p < colon; p++)
        if (!strchr("!#$%&'*+-.^_`|~", *p) && !(*p >= '0' && *p <= '9') &&
            !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z'))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return false;
        else if (*p == 0x7f)
            return false;
    size_t name_len = (size_t)(colon - h);
    for (size_t i = 0; i < sizeof framing / sizeof *framing; i++)
        if (strlen(framing[i]) == name_len && strncasecmp(h, framing[i], name_len) == 0)
            return false;
    return true;
}

/* --- lifecycle of the callbacks --- */

static void on_handle_closed(uv_handle_t *h);

static uint32_t next_random(callbacks *cb)
{
    uint32_t x = cb->rng; /* xorshift32: jitter only, nothing secret */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return cb->rng = x;
}

static void maybe_free(callbacks *cb)
{
    if (!cb->shut || cb->handles > 0)
        return;
    free(cb->user_agent);
    free(cb->proxy);
    free(cb);
    curl_global_cleanup();
}

/* One of our handles closed (its memory freed already). */
static void handle_gone(callbacks *cb)
{
    cb->handles--;
    maybe_free(cb);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_gone(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock *s = h->data;
    callbacks *cb = s->cb;
    free(s);
    handle_gone(cb);
}

static void sock_close(sock *s)
{
    node_unlink(&s->cb->socks, &s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void post_free(post *p)
{
    free(p->url);
    free(p->body);
    curl_slist_free_all(p->headers);
    free(p);
}

static void on_post_closed(uv_handle_t *h)
{
    post *p = h->data;
    callbacks *cb = p->cb;
    post_free(p);
    handle_gone(cb);
}

static void post_unlink(post *p)
{
    node_unlink(&p->cb->posts, &p->link);
    p->cb->pending--;
}

/* Ends a POST: unlinks it, calls its done, and closes its timer (which
 * frees it). It is neither running nor waiting any more. */
static void post_finish(post *p, bool delivered, const char *error)
{
    post_unlink(p);
    uv_timer_stop(&p->timer);
    callback_result r = {delivered, p->attempts, p->status, delivered ? NULL : error};
    p->done(p->ud, &r);
    uv_close((uv_handle_t *)&p->timer, on_post_closed);
}

/* --- attempts --- */

static size_t on_response(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    post *p = ud;
    size_t n = size * nmemb;
    if (n > CALLBACK_MAX_RESPONSE - p->response_bytes) {
        p->response_capped = true;
        return 0; /* CURLE_WRITE_ERROR: the status decides */
    }
    p->response_bytes += n;
    return n;
}

static CURL *make_easy(callbacks *cb, post *p)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    long connect_ms =
        (long)(cb->timeout_ms < CALLBACK_CONNECT_MAX_MS ? cb->timeout_ms : CALLBACK_CONNECT_MAX_MS);
    p->curl_error[0] = '\0';
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, p->url);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, cb->proxy ? cb->proxy : "");
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cb->timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, cb->user_agent);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->headers);
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->len);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_response);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->curl_error);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, p);
    if (bad) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* Starts an attempt of p, which holds no slot yet. 0 or -ENOMEM. */
static int attempt_start(callbacks *cb, post *p)
{
    p->easy = make_easy(cb, p);
    if (!p->easy)
        return -ENOMEM;
    p->response_bytes = 0;
    p->response_capped = false;
    if (curl_multi_add_handle(cb->multi, p->easy) != CURLM_OK) {
        curl_easy_cleanup(p->easy);
        p->easy = NULL;
        return -ENOMEM;
    }
    p->state = POST_RUNNING;
    p->attempts++;
    cb->in_flight++;
    return 0;
}

/* Starts waiting POSTs while slots are free. */
static void pump(callbacks *cb)
{
    while (!cb->closing && cb->waiting && cb->in_flight < cb->max_in_flight) {
        post *p = cb->waiting;
        cb->waiting = p->wait_next;
        if (!cb->waiting)
            cb->waiting_tail = NULL;
        p->wait_next = NULL;
        if (attempt_start(cb, p) < 0)
            post_finish(p, false, "out of memory");
    }
}

static void enqueue(callbacks *cb, post *p)
{
    p->state = POST_WAITING;
    p->wait_next = NULL;
    if (cb->waiting_tail)
        cb->waiting_tail->wait_next = p;
    else
        cb->waiting = p;
    cb->waiting_tail = p;
}

static void on_retry_due(uv_timer_t *t);

/* The attempt of p ended with `result`: deliver, retry or give up. */
static void attempt_end(callbacks *cb, post *p, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(cb->multi, p->easy);
    curl_easy_cleanup(p->easy);
    p->easy = NULL;
    cb->in_flight--;
    if (result == CURLE_WRITE_ERROR && p->response_capped)
        result = CURLE_OK; /* we stopped reading a long answer: its status stands */
    p->status = status;

    if (result != CURLE_OK)
        snprintf(p->last, sizeof p->last, "%s",
                 p->curl_error[0] ? p->curl_error : curl_easy_strerror(result));
    else if (status >= 300 && status <= 399)
        snprintf(p->last, sizeof p->last, "HTTP %ld: redirects are not followed", status);
    else
        snprintf(p->last, sizeof p->last, "HTTP %ld", status);

    callback_verdict v = callback_classify(result, status);
    if (v == CALLBACK_DELIVERED) {
        post_finish(p, true, NULL);
    } else if (v == CALLBACK_REJECTED || p->attempts >= cb->max_attempts) {
        post_finish(p, false, p->last);
    } else {
        uint64_t delay =
            retry_backoff_ms(p->attempts, cb->base_delay_ms, cb->max_delay_ms, next_random(cb));
        p->state = POST_BACKOFF;
        uv_timer_start(&p->timer, on_retry_due, delay, 0);
    }
}

/* Reads the transfers libcurl finished. */
static void reap(callbacks *cb)
{
    CURLMsg *m;
    int left;
    while (!cb->closing && (m = curl_multi_info_read(cb->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        post *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
        attempt_end(cb, p, m->data.result);
    }
    pump(cb);
}

/* Every entry from the loop goes through enter/leave, so that a
 * callbacks_close from inside a done callback waits until libcurl and our
 * loops over its state are out of the way. */
static void shut_down(callbacks *cb);

static void enter(callbacks *cb)
{
    cb->depth++;
}

static void leave(callbacks *cb)
{
    if (--cb->depth == 0 && cb->closing && !cb->shut)
        shut_down(cb);
}

static void on_retry_due(uv_timer_t *t)
{
    post *p = t->data;
    callbacks *cb = p->cb;
    enter(cb);
    enqueue(cb, p);
    pump(cb);
    leave(cb);
}

/* --- libcurl's sockets and timer on the loop --- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock *s = h->data;
    callbacks *cb = s->cb;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    enter(cb);
    curl_multi_socket_action(cb->multi, s->fd, flags, &running);
    reap(cb);
    leave(cb);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)easy;
    callbacks *cb = ud;
    sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (!cb->shut) /* not from inside curl_multi_cleanup */
                curl_multi_assign(cb->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    /* A -1 would make libcurl give up on every transfer: on a failure
     * here this one transfer is left unwatched and its timeout ends it. */
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return 0;
        if (uv_poll_init_socket(cb->loop, &s->poll, fd) < 0) {
            free(s);
            return 0;
        }
        s->cb = cb;
        s->fd = fd;
        s->poll.data = s;
        node_push(&cb->socks, &s->link);
        cb->handles++;
        curl_multi_assign(cb->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    callbacks *cb = t->data;
    int running;
    enter(cb);
    curl_multi_socket_action(cb->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    reap(cb);
    leave(cb);
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    callbacks *cb = ud;
    if (timeout_ms < 0)
        uv_timer_stop(&cb->timer);
    else /* never run libcurl from inside libcurl: a 0 waits for the next turn */
        uv_timer_start(&cb->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* --- the API --- */

int callbacks_open(const callbacks_opts *o, callbacks **out)
{
    if (!o || !o->loop)
        return -EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -EIO;
    callbacks *cb = calloc(1, sizeof *cb);
    if (!cb) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    cb->loop = o->loop;
    cb->max_attempts = o->max_attempts ? o->max_attempts : DEFAULT_MAX_ATTEMPTS;
    cb->base_delay_ms = o->base_delay_ms ? o->base_delay_ms : DEFAULT_BASE_DELAY_MS;
    cb->max_delay_ms = o->max_delay_ms ? o->max_delay_ms : RETRY_CAP_MS;
    cb->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (cb->timeout_ms > 3600000)
        cb->timeout_ms = 3600000; /* fits a long */
    cb->max_in_flight = o->max_in_flight ? o->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    cb->max_pending = o->max_pending ? o->max_pending : DEFAULT_MAX_PENDING;
    cb->rng = o->seed ? o->seed : (uint32_t)(uv_hrtime() ^ (uint64_t)getpid() << 16);
    if (!cb->rng)
        cb->rng = 1;
    cb->user_agent = strdup(o->user_agent ? o->user_agent : "hearth");
    cb->proxy = o->proxy && *o->proxy ? strdup(o->proxy) : NULL;
    cb->multi = curl_multi_init();
    if (!cb->user_agent || (o->proxy && *o->proxy && !cb->proxy) || !cb->multi) {
        if (cb->multi)
            curl_multi_cleanup(cb->multi);
        free(cb->user_agent);
        free(cb->proxy);
        free(cb);
        curl_global_cleanup();
        return -ENOMEM;
    }
    curl_multi_setopt(cb->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(cb->multi, CURLMOPT_SOCKETDATA, cb);
    curl_multi_setopt(cb->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(cb->multi, CURLMOPT_TIMERDATA, cb);
    curl_multi_setopt(cb->multi, CURLMOPT_MAXCONNECTS, (long)cb->max_in_flight);
    uv_timer_init(cb->loop, &cb->timer);
    cb->timer.data = cb;
    cb->handles = 1;
    *out = cb;
    return 0;
}

/* Builds p's header list: its content type, "Expect:" (which turns off
 * libcurl's 100-continue wait on large bodies) and the extra headers,
 * all checked already. 0 or -ENOMEM. */
static int build_headers(post *p, const char *content_line, const char *const *headers)
{
    const char *fixed[] = {content_line, "Expect:"};
    for (size_t i = 0; i < 2 || (headers && headers[i - 2]); i++) {
        struct curl_slist *l = curl_slist_append(p->headers, i < 2 ? fixed[i] : headers[i - 2]);
        if (!l)
            return -ENOMEM;
        p->headers = l;
    }
    return 0;
}

int callbacks_post(callbacks *cb, const char *url, const char *content_type,
                   const char *const *headers, const void *body, size_t len, callback_done_fn done,
                   void *ud)
{
    if (cb->closing)
        return -ESHUTDOWN;
    if (!done || (!body && len) || callback_url_check(url, NULL, 0) < 0)
        return -EINVAL;
    char content_line[HEADER_MAX + 1];
    int n = snprintf(content_line, sizeof content_line, "Content-Type: %s",
                     content_type && *content_type ? content_type : "application/octet-stream");
    if (n < 0 || (size_t)n >= sizeof content_line || !header_ok(content_line))
        return -EINVAL;
    for (size_t i = 0; headers && headers[i]; i++)
        if (i >= HEADERS_MAX || !header_ok(headers[i]))
            return -EINVAL;
    if (cb->pending >= cb->max_pending)
        return -ENOBUFS;

    post *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cb = cb;
    p->done = done;
    p->ud = ud;
    p->len = len;
    p->url = strdup(url);
    p->body = malloc(len ? len : 1);
    if (!p->url || !p->body || build_headers(p, content_line, headers) < 0) {
        post_free(p);
        return -ENOMEM;
    }
    if (len)
        memcpy(p->body, body, len);

    uv_timer_init(cb->loop, &p->timer);
    p->timer.data = p;
    cb->handles++;
    node_push(&cb->posts, &p->link);
    cb->pending++;
    if (cb->in_flight >= cb->max_in_flight) {
        enqueue(cb, p); /* pump starts it when a slot frees */
        return 0;
    }
    if (attempt_start(cb, p) < 0) { /* the caller sees it: no done */
        post_unlink(p);
        uv_close((uv_handle_t *)&p->timer, on_post_closed);
        return -ENOMEM;
    }
    return 0;
}

unsigned callbacks_pending(const callbacks *cb)
{
    return cb ? cb->pending : 0;
}

static void shut_down(callbacks *cb)
{
    cb->shut = true;
    cb->waiting = cb->waiting_tail = NULL;
    while (cb->posts) {
        post *p = (post *)cb->posts;
        if (p->easy) {
            curl_multi_remove_handle(cb->multi, p->easy);
            curl_easy_cleanup(p->easy);
            p->easy = NULL;
            cb->in_flight--;
        }
        char why[sizeof p->last + 64];
        if (p->state == POST_BACKOFF)
            snprintf(why, sizeof why, "cancelled: shutting down (last attempt: %s)", p->last);
        else
            snprintf(why, sizeof why, "cancelled: shutting down");
        post_finish(p, false, why);
    }
    /* Stop watching every socket before libcurl closes them. */
    for (node *n = cb->socks; n; n = n->next)
        uv_poll_stop(&((sock *)n)->poll);
    curl_multi_cleanup(cb->multi); /* may close some socks through on_socket */
    cb->multi = NULL;
    while (cb->socks)
        sock_close((sock *)cb->socks);
    uv_close((uv_handle_t *)&cb->timer, on_handle_closed);
}

void callbacks_close(callbacks *cb)
{
    if (!cb || cb->closing)
        return;
    cb->closing = true;
    if (cb->depth == 0)
        shut_down(cb);
}
