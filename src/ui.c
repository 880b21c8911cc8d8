/*
 * ui.c — serves the dashboard's files, built into the binary.
 *
 * The files are a table made at build time (cmake/embed_ui.cmake), so no
 * request ever reaches the filesystem: a name is looked up by exact match,
 * and anything that is not one of the table's plain names (a folder, "..",
 * an encoded byte) is 404 like any unknown file. The files hold no data,
 * so they need no token; everything the dashboard shows comes from the
 * JSON API with the token the user pasted, which the browser keeps.
 *
 * Every answer carries headers that confine the page: a Content-Security-
 * Policy that lets it load only its own script and style and talk only to
 * this origin (no inline script, no eval, Trusted Types so no HTML is ever
 * parsed from a string), no framing, no MIME sniffing, no Referer. Files
 * are revalidated on every load (ETag, 304), so an upgraded hearthd never
 * serves a stale page.
 *
 * Owns: the /ui/ answers. Must never: read a file, or serve a name that
 * is not in the table.
 */
#include "ui.h"

#include <stdlib.h>
#include <string.h>

/* The page may load its own script, style and icon, and fetch from this
 * origin; nothing else, and nothing inline. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "            \
    "require-trusted-types-for 'script'; trusted-types 'none'"

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

const char *ui_content_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof content_types / sizeof *content_types; i++) {
        size_t e = strlen(content_types[i].ext);
        if (n > e && strcmp(name + n - e, content_types[i].ext) == 0)
            return content_types[i].type;
    }
    return NULL;
}

const ui_asset *ui_find(const char *name)
{
    for (size_t i = 0; i < ui_nassets; i++)
        if (strcmp(ui_assets[i].name, name) == 0)
            return &ui_assets[i];
    return NULL;
}

static void add_security_headers(gw_request *req)
{
    gw_add_header(req, "Content-Security-Policy", UI_CSP);
    gw_add_header(req, "X-Content-Type-Options", "nosniff");
    gw_add_header(req, "X-Frame-Options", "DENY");
    gw_add_header(req, "Referrer-Policy", "no-referrer");
    gw_add_header(req, "Cross-Origin-Opener-Policy", "same-origin");
    gw_add_header(req, "Cross-Origin-Resource-Policy", "same-origin");
}

/* True when the If-None-Match header names `etag` (or is "*"). */
static bool not_modified(gw_request *req, const char *etag)
{
    const char *inm = gw_header(req, "If-None-Match");
    return inm && (strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL);
}

void ui_serve(gw_request *req, const char *rest)
{
    add_security_headers(req);
    if (strcmp(gw_path(req), "/ui") == 0) {
        /* The page's relative links need the trailing slash. */
        gw_add_header(req, "Location", "/ui/");
        gw_respond(req, 301, NULL, NULL, 0);
        return;
    }
    const char *name = strcmp(rest, "/") == 0 ? "index.html" : rest + 1;
    const ui_asset *a = ui_find(name);
    const char *type = a ? ui_content_type(a->name) : NULL;
    if (!a || !type) {
        gw_respond_error(req, 404, "not_found", "the dashboard has no file %.200s", gw_path(req));
        return;
    }
    gw_add_header(req, "ETag", a->etag);
    gw_add_header(req, "Cache-Control", "no-cache");
    if (not_modified(req, a->etag)) {
        gw_respond(req, 304, NULL, NULL, 0);
        return;
    }
    char *body = malloc(a->len ? a->len : 1);
    if (!body) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    memcpy(body, a->data, a->len);
    gw_respond(req, 200, type, body, a->len);
}
