/*
 * api.h — the REST API: routes a complete request to its handler and
 * renders answers as JSON. Everything a client sends is checked here or in
 * the module the route hands it to.
 */
#ifndef HEARTH_API_H
#define HEARTH_API_H

#include <stddef.h>
#include <jansson.h>

#include "gateway.h"
#include "hearth.h"

/* gw_handler_fn for the gateway; ud is the hearth. */
void api_handle(gw_request *req, void *ud);

/* gw_body_limit_fn for the gateway; ud is the hearth. */
size_t api_body_limit(gw_request *req, void *ud);

/* Records a management action (`action` on `target`) in the audit, in the
 * name of the token that made `req` (gw_principal). */
void api_audit(hearth *h, gw_request *req, const char *action, const char *target);

/* A path of the API's own table whose first segment is not in routes.c's
 * reserved list (a function's route could take it), or NULL: for a test. */
const char *api_route_outside_reserved(void);

/* The function object of docs/api.md, with live pool state. New reference. */
json_t *api_function_json(hearth *h, const fn_config *cfg);

/* An alias as the API shows it (api_versions.c). */
json_t *api_alias_json(const fn_alias *a);

/* An alias's weighted versions from a {"4": 0.1} object (NULL or null:
 * none) onto a, checked as every alias is: up to FN_ALIAS_EXTRA_MAX
 * version numbers other than a->version, each share in (0, 1), summed
 * under 1. Returns NULL, or why not (for the caller's error shape). */
const char *api_alias_weights(const json_t *w, fn_alias *a);

/* Stores alias a as of now (registry_alias_put's codes) and, when stored,
 * lets the scheduler stop idle workers of versions no longer addressed. */
int api_alias_store(hearth *h, fn_alias *a);

#endif
