/* A native C function for Hearth's c runtime: answers "hello, <event>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/function.h"

static unsigned long calls; /* lives as long as the warm worker */

int hearth_init(void)
{
    fprintf(stderr, "c-hello loaded\n");
    return 0;
}

int hearth_handler(const hearth_request *req, hearth_response *resp)
{
    calls++;
    printf("call %lu, request %s\n", calls, req->request_id);
    char *out = malloc(req->body_len + 32);
    if (!out)
        return -1;
    int n = snprintf(out, req->body_len + 32, "hello, %.*s", (int)req->body_len,
                     (const char *)req->body);
    resp->body = out;
    resp->body_len = (size_t)n;
    resp->free_body = free;
    resp->content_type = "text/plain; charset=utf-8";
    return 0;
}
