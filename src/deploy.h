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

/* Removes a function's code in the background (DELETE). Returns 0 or a
 * negative errno if the code could not be moved aside. */
int deploy_remove_code(hearth *h, const char *name);

/* Removes the code of one version (pruned) in the background. */
int deploy_remove_version(hearth *h, const char *name, int64_t version);

/* After a deploy: versions past --keep-versions go, with their code
 * (never the current one nor one an alias names). */
void deploy_prune(hearth *h, const char *name);

/* Decodes standard base64 (whitespace ignored) into a malloc'd buffer.
 * Returns 0 or -EINVAL. */
int deploy_base64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen);

#endif
