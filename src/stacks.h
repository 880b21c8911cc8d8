/*
 * stacks.h — POST /v1/stacks/{stack}: a whole application's functions
 * deployed all or nothing in one request, and GET /v1/stacks[/{stack}].
 * docs/api.md ("Stacks") is the contract.
 */
#ifndef HEARTH_STACKS_H
#define HEARTH_STACKS_H

#include "gateway.h"
#include "hearth.h"

/* Functions in one stack body: enough for an application, few enough that
 * a plan is read at a glance and one apply stays one short transaction. */
#define STACK_FUNCTIONS_MAX 64

/* File content unpacked for one apply, all functions together (each also
 * within package.h's own bound): the staging disk one request may take. */
#define STACK_MAX_UNPACKED (1024ull * 1024 * 1024)

/* The route handlers (api.c's table); `stack` is a valid name. */
void api_stack_apply(hearth *h, gw_request *req, const char *stack, const char *rest);
void api_stacks_list(hearth *h, gw_request *req, const char *name, const char *rest);
void api_stack_show(hearth *h, gw_request *req, const char *stack, const char *rest);

#endif
