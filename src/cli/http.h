/*
 * http.h — the client's one way to talk to hearthd: a request with libcurl,
 * the answer gathered in memory (or streamed to stdout for `logs -f`), and
 * the API's error shape turned into the one line the CLI prints.
 *
 * Owns: the libcurl handle's options, the upload progress line.
 * Must never: follow redirects to another host with the token, or keep an
 * answer bigger than HTTP_ANSWER_MAX.
 */
#ifndef HEARTH_CLI_HTTP_H
#define HEARTH_CLI_HTTP_H

#include "cli.h"
#include "buf.h"

#include <jansson.h>

#define HTTP_ANSWER_MAX (256u << 20)

typedef struct http_resp {
    long status; /* 0 when no answer came */
    buf body;    /* the answer's bytes, NUL-terminated */
    char request_id[64];
} http_resp;

typedef struct http_req {
    const char *method;
    const char *path;  /* starts with '/', already escaped */
    const char *ctype; /* Content-Type of body, or NULL */
    const char *body;  /* NULL: no body */
    size_t len;
    const char *extra_header; /* one more "Name: value", or NULL */
    bool progress;            /* a progress line on a terminal's stderr for big bodies */
    bool stream;              /* 2xx body goes to stdout as it arrives */
} http_req;

/* Global set-up and tear-down (curl_global_*). */
int http_init(void);
void http_cleanup(void);

/* Sends the request. Returns 0 when an answer came (any status: look at
 * out->status), else prints the reason and returns CLI_FAIL. The caller
 * releases out with http_release. */
int http_do(const cli *c, const http_req *req, http_resp *out);

void http_release(http_resp *r);

/* For an answer that is not 2xx: prints the API's error message (or the
 * status) as one line on stderr and returns CLI_FAIL. */
int http_fail(const http_resp *r);

/* An API error object's text for a person: "Type: message" when the
 * function raised a typed error, else the message; NULL when it has none. */
const char *http_error_text(const json_t *err, char *out, size_t cap);

/* The answer's body parsed as JSON (NULL, with the reason printed, when it
 * is not). The caller owns the reference. */
json_t *http_json(const http_resp *r);

/* GET/POST/... with a JSON answer: does the request, fails on a non-2xx
 * answer, parses. *out gets the parsed answer (NULL for 204). Returns
 * CLI_OK or CLI_FAIL (reason printed). */
int http_json_call(const cli *c, const char *method, const char *path, json_t *body, json_t **out);

/* Sends `body` (not taken) as JSON, with the upload progress line: these
 * are the requests that carry archives (deploy, stack apply). Returns as
 * http_do does; *out is ready for http_release either way. */
int http_send_json(const cli *c, const char *method, const char *path, const json_t *body,
                   http_resp *out);

/* A path segment percent-escaped (the caller frees it). */
char *http_escape(const char *segment);

#endif
