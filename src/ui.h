/*
 * ui.h — the dashboard's static files (ui/ in the source tree), built into
 * hearthd and served at /ui/ (docs/dashboard.md).
 */
#ifndef HEARTH_UI_H
#define HEARTH_UI_H

#include <stddef.h>

#include "gateway.h"

/* One embedded file: cmake/embed_ui.cmake writes the table (ui_assets.c
 * in the build folder) from ui/ at build time. */
typedef struct ui_asset {
    const char *name;          /* "index.html": a plain file name, no folder */
    const unsigned char *data; /* len bytes, then a NUL not counted in len */
    size_t len;
    const char *etag; /* "\"<16 hex of its SHA-256>\"", quotes included */
} ui_asset;

extern const ui_asset ui_assets[];
extern const size_t ui_nassets;

/* The embedded file called exactly `name`, or NULL. */
const ui_asset *ui_find(const char *name);

/* The Content-Type for a file of that name (by its extension), or NULL
 * for a kind the dashboard does not serve. */
const char *ui_content_type(const char *name);

/* Answers GET /ui and GET /ui/<rest>: `rest` is what follows /ui, still
 * percent-encoded, "/" for /ui/ and for /ui itself (gw_path tells them
 * apart). No token: the files hold no data. */
void ui_serve(gw_request *req, const char *rest);

#endif
