/*
 * aws_internal.h — what the AWS Lambda API's files share (aws_lambda.c:
 * dispatch, signatures and errors; aws_lambda_fn.c: the function
 * operations; aws_invoke.c: Invoke). Only aws_*.c include this.
 */
#ifndef HEARTH_AWS_INTERNAL_H
#define HEARTH_AWS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway.h"
#include "hearth.h"
#include "registry.h"

#define AWS_ACCOUNT  "000000000000"
#define AWS_QUAL_MAX FN_ALIAS_MAX

/* Lambda's error shape: X-Amzn-ErrorType: <type>, {"Type": "User" (or
 * "Service" for 5xx), "message": …}. */
void aws_error(gw_request *req, unsigned status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A JSON answer with the x-amzn-RequestId header Lambda sends. */
void aws_respond(gw_request *req, unsigned status, json_t *body);

/* The region the request was signed for ("us-east-1" without auth). */
const char *aws_region(gw_request *req);

/* The ARN of function `name` (with ":qual" when qual is non-empty). */
void aws_function_arn(gw_request *req, const char *name, const char *qual, char *out, size_t cap);

/* Lambda's FunctionConfiguration of cfg; `version` NULL for "$LATEST". */
json_t *aws_function_config(hearth *h, gw_request *req, const fn_config *cfg, const char *version);

/* Whether the request's key may reach `name` (its functions glob). */
bool aws_may_reach(gw_request *req, const char *name);

/* The operations (aws_lambda_fn.c). `name` is valid; `qual` "" or valid. */
void aws_create_function(hearth *h, gw_request *req);
void aws_list_functions(hearth *h, gw_request *req);
void aws_get_function(hearth *h, gw_request *req, const char *name, const char *qual, bool whole);
void aws_delete_function(hearth *h, gw_request *req, const char *name, const char *qual);
void aws_update_code(hearth *h, gw_request *req, const char *name);
void aws_update_config(hearth *h, gw_request *req, const char *name);
void aws_publish_version(hearth *h, gw_request *req, const char *name);
void aws_alias_create(hearth *h, gw_request *req, const char *name);
void aws_alias_list(hearth *h, gw_request *req, const char *name);
void aws_alias_get(hearth *h, gw_request *req, const char *name, const char *alias);
void aws_alias_update(hearth *h, gw_request *req, const char *name, const char *alias);
void aws_alias_delete(hearth *h, gw_request *req, const char *name, const char *alias);

/* aws_invoke.c */
void aws_invoke(hearth *h, gw_request *req, const char *name, const char *qual);

/* A valid qualifier: "$LATEST", a version number, or an alias name. */
bool aws_qualifier_valid(const char *q);
/* A valid alias name: [a-z][a-z0-9_-]{0,62}, not all digits. */
bool aws_alias_name_valid(const char *s);

#endif
