/*
 * callback.h — result callbacks: the daemon's outbound HTTP POSTs of an
 * invocation's result to the URL a client named in X-Callback-Url.
 *
 * Owns: the check of a client-given callback URL, the POSTs in flight and
 * those waiting to be retried, and the libcurl multi handle that carries
 * them on the daemon's libuv loop. Must never: block the loop (libcurl's
 * multi interface is driven by uv_poll/uv_timer; DNS uses libcurl's
 * threaded resolver), follow a redirect, speak any protocol but http and
 * https, or run from inside a sandbox. It knows nothing of invocations or
 * of the gateway: the caller hands it a URL, headers and a body.
 *
 * Delivery is held in memory only: a POST that is still being retried when
 * the daemon stops is cancelled (its done callback says so).
 */
#ifndef HEARTH_CALLBACK_H
#define HEARTH_CALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CALLBACK_URL_MAX        2048        /* bytes of a callback URL */
#define CALLBACK_MAX_RESPONSE   (64 * 1024) /* response bytes read (and discarded) */
#define CALLBACK_CONNECT_MAX_MS 5000        /* connecting takes at most this (or timeout_ms) */

typedef struct callbacks callbacks;

/* Zero in any field means its default. */
typedef struct callbacks_opts {
    uv_loop_t *loop;        /* required */
    unsigned max_attempts;  /* attempts in all, the first included; default 5 */
    uint64_t base_delay_ms; /* backoff base; default 1000 */
    uint64_t max_delay_ms;  /* longest wait between two attempts; default RETRY_CAP_MS */
    uint64_t timeout_ms;    /* one attempt, connecting included; default 10000 */
    unsigned max_in_flight; /* attempts at once (others wait their turn); default 32 */
    unsigned max_pending;   /* POSTs held at once, waiting and retrying included; default 10000 */
    const char *user_agent; /* copied; default "hearth" (main passes "hearth/" HEARTH_VERSION) */
    const char *proxy;      /* copied; NULL or "" = connect directly. The environment's
                               http_proxy/https_proxy are never used. */
    uint32_t seed;          /* jitter's random source; 0 = seeded from the clock */
} callbacks_opts;

/* How a POST ended, handed to its done callback. `error` is NULL when
 * delivered, else a sentence (valid during the call only). */
typedef struct callback_result {
    bool delivered;    /* a 2xx answer came */
    unsigned attempts; /* attempts made (0 if cancelled before the first) */
    long status;       /* the last HTTP status, 0 if none came */
    const char *error;
} callback_result;

typedef void (*callback_done_fn)(void *ud, const callback_result *r);

/* Opens the POSTer on o->loop. 0, or -EINVAL (no loop), -ENOMEM, -EIO
 * (libcurl would not start). *out is the caller's, to callbacks_close. */
int callbacks_open(const callbacks_opts *o, callbacks **out);

/* Checks a client-given URL: http or https only, at most CALLBACK_URL_MAX
 * bytes, printable ASCII only (no CR/LF, control bytes, spaces, raw
 * UTF-8 or backslashes), a host present, no userinfo. 0, or -1 with a sentence in err
 * (which may be NULL) saying what is wrong. */
int callback_url_check(const char *url, char *err, size_t errlen);

/* POSTs `body` (len bytes, copied) to `url` (checked as above) with
 * `content_type` and the extra `headers` (each "Name: value", the array
 * NULL-terminated or itself NULL; a header with CR, LF or a control byte,
 * without a name, or one that frames the message — Host, Content-Length,
 * Transfer-Encoding, Connection, Expect — is refused).
 *
 * An attempt that fails to connect, times out, or is answered 408, 429 or
 * 5xx is retried after an exponential backoff with full jitter
 * (retry_backoff_ms, events/retry.h) until max_attempts; 2xx is delivered;
 * any other answer (3xx: redirects are not followed; 4xx) ends it.
 *
 * 0, and then `done` is called exactly once, later, on the loop (never
 * from within this call) — also when callbacks_close cancels it. Or a
 * negative errno, and `done` is never called: -EINVAL (a bad URL or
 * header), -ENOBUFS (max_pending POSTs already held), -ESHUTDOWN
 * (closing), -ENOMEM. */
int callbacks_post(callbacks *cb, const char *url, const char *content_type,
                   const char *const *headers, const void *body, size_t len, callback_done_fn done,
                   void *ud);

/* POSTs held now: attempts in flight, waiting for a slot or for a retry. */
unsigned callbacks_pending(const callbacks *cb);

/* Cancels every POST (each done is called, delivered=false, before this
 * returns — unless called from inside a done callback, where the
 * cancelling happens as soon as that callback returns), closes the
 * connections and the loop handles, and frees the rest once libuv has
 * closed them: run the loop after it. Accepts NULL; call it once. */
void callbacks_close(callbacks *cb);

/* What becomes of an attempt, by libcurl's result code (CURLcode) and the
 * HTTP status (0 if none). Pure, for tests. */
typedef enum callback_verdict {
    CALLBACK_DELIVERED, /* 2xx */
    CALLBACK_RETRY,     /* transport error, timeout, 408, 429, 5xx */
    CALLBACK_REJECTED,  /* any other status, or a request that can never work */
} callback_verdict;
callback_verdict callback_classify(int curl_code, long status);

#endif
