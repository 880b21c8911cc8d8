/*
 * deploy.h — PUT /v1/functions/{name}: from request body to a durable new
 * version. Parsing, decoding and unpacking run on libuv's threadpool; the
 * registry write and the switch-over run on the loop.
 */
#ifndef HEARTH_DEPLOY_H
#define HEARTH_DEPLOY_H

#include "gateway.h"
#include "hearth.h"

/* Handles a deploy of `name` (already validated). Answers `req` later. */
void deploy_start(hearth *h, gw_request *req, const char *name);

/* How a deploy started by another API (the AWS Lambda API) ends: `cfg`
 * is the new version, or NULL when refused, with the status, code and
 * message a PUT would have answered. The callback answers `req`. */
typedef void (*deploy_done_fn)(hearth *h, gw_request *req, const fn_config *cfg, bool created,
                               unsigned status, const char *code, const char *message);

/* Deploys `name` from `doc`, a settings document in the PUT body's JSON
 * shape (taken: freed by the deploy), through the same checks and
 * commit. With code_from > 0 the package is a copy of that version's
 * code and `doc` holds neither files nor archive. Ends in `done`. */
void deploy_start_doc(hearth *h, gw_request *req, const char *name, json_t *doc, int64_t code_from,
                      deploy_done_fn done);

/* Removes a function's code in the background (DELETE). Returns 0 or a
 * negative errno if the code could not be moved aside. */
int deploy_remove_code(hearth *h, const char *name);

/* Decodes standard base64 (whitespace ignored) into a malloc'd buffer.
 * Returns 0 or -EINVAL. */
int deploy_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
