/*
 * openapi.c — serves docs/openapi.json, built into the binary.
 *
 * Public like /healthz: the description holds no data of this daemon, only
 * what the repository's docs already say, and a client (the dashboard, a
 * code generator) can read it before it has a token.
 *
 * Owns: the /v1/openapi.json answer. Must never: change the bytes (the
 * e2e test compares them with the file).
 */
#include "openapi.h"

#include <stdlib.h>
#include <string.h>

void openapi_serve(gw_request *req)
{
    /* gw_respond takes a malloc'd body and frees it: the table is const. */
    char *body = malloc(openapi_doc_len ? openapi_doc_len : 1);
    if (!body) {
        gw_respond_error(req, 500, "internal_error", "out of memory");
        return;
    }
    memcpy(body, openapi_doc, openapi_doc_len);
    gw_respond(req, 200, "application/json", body, openapi_doc_len);
}
