/*
 * aws_lambda.h — the part of the AWS Lambda API (/2015-03-31/…) that the
 * AWS CLI and SDKs use, signed with Signature Version 4. api.c hands every
 * request under AWS_LAMBDA_PREFIX here before its own table. docs/aws.md.
 */
#ifndef HEARTH_AWS_LAMBDA_H
#define HEARTH_AWS_LAMBDA_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway.h"
#include "hearth.h"

#define AWS_LAMBDA_SEGMENT "2015-03-31" /* a reserved top-level segment (events/routes.c) */
#define AWS_LAMBDA_PREFIX  "/" AWS_LAMBDA_SEGMENT "/"

/* True when `path` (as sent) belongs to the AWS API. */
bool aws_lambda_owns(const char *path);

/* Answers a request aws_lambda_owns. */
void aws_lambda_handle(hearth *h, gw_request *req);

/* How many body bytes the request may send: a code upload only for a
 * live key with the deploy scope (the signature itself is checked once
 * the body is in), an invoke what /invoke takes, else a little. */
size_t aws_lambda_body_limit(hearth *h, gw_request *req);

#endif
