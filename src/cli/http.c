/*
 * http.c — requests to hearthd with libcurl (see http.h).
 *
 * The token travels as "Authorization: Bearer"; redirects are not followed
 * (the API never sends one, and following could hand the token on).
 */
#include "http.h"
#include "output.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROGRESS_MIN (1u << 20) /* uploads over 1 MB show a progress line */

typedef struct xfer {
    http_resp *resp;
    const http_req *req;
    const cli *c;
    bool shown; /* a progress line is on the terminal */
    bool too_big;
} xfer;

int http_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void http_cleanup(void)
{
    curl_global_cleanup();
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    /* A streamed 2xx answer (logs -f) goes straight out, flushed so that
     * a pipe reader sees each line as it comes. */
    if (x->req->stream && x->resp->status >= 200 && x->resp->status < 300) {
        if (out_write(x->c, p, len) != 0)
            return 0;
        fflush(stdout);
        return len;
    }
    if (buf_append(&x->resp->body, p, len) != 0) {
        x->too_big = true;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    static const char name[] = "x-request-id:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        const char *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl >= sizeof(x->resp->request_id))
            vl = sizeof(x->resp->request_id) - 1;
        memcpy(x->resp->request_id, v, vl);
        x->resp->request_id[vl] = '\0';
    }
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* the status line: known before the body, so on_body can stream */
        const char *sp = memchr(p, ' ', len);
        if (sp)
            x->resp->status = strtol(sp + 1, NULL, 10);
    }
    return len;
}

static void human(double bytes, char *out, size_t n)
{
    snprintf(out, n, "%.1f MB", bytes / 1e6);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = ud;
    (void)dltotal;
    (void)dlnow;
    if (ultotal <= 0)
        return 0;
    char now[32], total[32];
    human((double)ulnow, now, sizeof(now));
    human((double)ultotal, total, sizeof(total));
    fprintf(stderr, "\ruploading %s / %s (%3d%%)", now, total, (int)(ulnow * 100 / ultotal));
    fflush(stderr);
    x->shown = true;
    return 0;
}

int http_do(const cli *c, const http_req *req, http_resp *out)
{
    memset(out, 0, sizeof(*out));
    buf_init(&out->body, HTTP_ANSWER_MAX);
    CURL *h = curl_easy_init();
    if (!h)
        return cli_fail(CLI_FAIL, "cannot start libcurl");
    size_t ulen = strlen(c->url) + strlen(req->path) + 1;
    char *url = malloc(ulen);
    if (!url) {
        curl_easy_cleanup(h);
        return cli_fail(CLI_FAIL, "out of memory");
    }
    snprintf(url, ulen, "%s%s", c->url, req->path);

    struct curl_slist *hdrs = NULL;
    char line[CLI_TOKEN_MAX + 64];
    if (c->token[0]) {
        snprintf(line, sizeof(line), "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (req->ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", req->ctype);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (req->extra_header)
        hdrs = curl_slist_append(hdrs, req->extra_header);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */

    xfer x = {.resp = out, .req = req, .c = c};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hearth-cli");
    if (!req->stream)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    }
    if (req->progress && c->tty_err && req->body && req->len > PROGRESS_MIN) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    }
    CURLcode rc = curl_easy_perform(h);
    if (x.shown) {
        fputc('\n', stderr);
        fflush(stderr);
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
        /* the body's terminating NUL: buf keeps data NUL-terminated */
        if (!out->body.data && buf_append(&out->body, "", 0) != 0)
            rc = CURLE_OUT_OF_MEMORY;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(url);
    if (rc != CURLE_OK) {
        if (x.too_big)
            return cli_fail(CLI_FAIL, "the answer is over %u MiB", HTTP_ANSWER_MAX >> 20);
        return cli_fail(CLI_FAIL, "%s: %s", c->url, curl_easy_strerror(rc));
    }
    return 0;
}

void http_release(http_resp *r)
{
    buf_release(&r->body);
}

const char *http_error_text(const json_t *err, char *out, size_t cap)
{
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *type = json_string_value(json_object_get(err, "type"));
    if (!msg)
        return NULL;
    snprintf(out, cap, "%s%s%s", type ? type : "", type ? ": " : "", msg);
    return out;
}

int http_fail(const http_resp *r)
{
    json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    char text[1024];
    const char *msg = http_error_text(e, text, sizeof text);
    const char *code = json_string_value(json_object_get(e, "code"));
    int rc;
    if (msg && code)
        rc = cli_fail(CLI_FAIL, "%s (%ld %s)", msg, r->status, code);
    else if (msg)
        rc = cli_fail(CLI_FAIL, "%s (%ld)", msg, r->status);
    else
        rc = cli_fail(CLI_FAIL, "the daemon answered %ld", r->status);
    json_decref(j);
    return rc;
}

json_t *http_json(const http_resp *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &err);
    if (!j)
        cli_fail(CLI_FAIL, "the daemon's answer is not JSON: %s", err.text);
    return j;
}

int http_send_json(const cli *c, const char *method, const char *path, const json_t *body,
                   http_resp *out)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        memset(out, 0, sizeof(*out));
        buf_init(&out->body, HTTP_ANSWER_MAX);
        return cli_fail(CLI_FAIL, "out of memory");
    }
    http_req req = {.method = method,
                    .path = path,
                    .ctype = "application/json",
                    .body = text,
                    .len = strlen(text),
                    .progress = true};
    int rc = http_do(c, &req, out);
    free(text);
    return rc;
}

int http_json_call(const cli *c, const char *method, const char *path, json_t *body, json_t **out)
{
    *out = NULL;
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            return cli_fail(CLI_FAIL, "out of memory");
    }
    http_req req = {.method = method,
                    .path = path,
                    .ctype = text ? "application/json" : NULL,
                    .body = text,
                    .len = text ? strlen(text) : 0};
    http_resp r;
    int rc = http_do(c, &req, &r);
    free(text);
    if (rc != 0) {
        http_release(&r);
        return rc;
    }
    if (r.status < 200 || r.status >= 300) {
        rc = http_fail(&r);
    } else if (r.status != 204 && r.body.len) {
        *out = http_json(&r);
        rc = *out ? CLI_OK : CLI_FAIL;
    }
    http_release(&r);
    return rc;
}

char *http_escape(const char *segment)
{
    char *e = curl_easy_escape(NULL, segment, 0);
    if (!e)
        return NULL;
    char *copy = strdup(e);
    curl_free(e);
    return copy;
}
