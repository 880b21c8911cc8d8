"""The c runtime: a native shared object, loaded once per worker, called
through include/hearth/function.h."""

from c_build import c_package, deploy_c
from conftest import assert_error

ECHO = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hearth/function.h"

static int calls;
int hearth_init(void) { fprintf(stderr, "loaded\n"); return 0; }

int hearth_handler(const hearth_request *req, hearth_response *resp)
{
    static char out[4096];
    calls++;
    printf("in %s\n", req->request_id);
    if (req->body_len == 4 && memcmp(req->body, "fail", 4) == 0) {
        static const char msg[] = "asked to fail";
        resp->error_type = "Custom.Fail";
        resp->body = msg;
        resp->body_len = sizeof msg - 1;
        return 0;
    }
    if (req->body_len == 6 && memcmp(req->body, "return", 6) == 0)
        return 7;
    int n = snprintf(out, sizeof out, "{\"calls\": %d, \"trigger\": \"%s\", \"bytes\": %zu,"
                     " \"fn\": \"%s\", \"http\": %s}", calls, req->trigger, req->body_len,
                     req->function, req->http ? "true" : "false");
    resp->body = out;
    resp->body_len = (size_t)n;
    resp->content_type = "application/json";
    resp->status = req->http ? 201 : 0;
    return 0;
}
"""


def test_native_function_answers_and_keeps_state(hearth):
    """Loaded once: hearth_init runs once, state lives between warm calls,
    printf lines are the function's log under the request id."""
    deploy_c(hearth, "c-echo", ECHO)
    r1 = hearth.invoke_ok("c-echo", data=b"abc")
    r2 = hearth.invoke_ok("c-echo", data=b"abcdef")
    assert r1.json() == {"calls": 1, "trigger": "invoke", "bytes": 3, "fn": "c-echo", "http": False}
    assert r2.json()["calls"] == 2 and r2.json()["bytes"] == 6
    recs = hearth.log_records("c-echo")
    assert [x["message"] for x in recs].count("loaded") == 1
    rid = r2.headers["X-Request-Id"]
    assert any(x["message"] == "in " + rid and x["request_id"] == rid for x in recs), recs


def test_errors_the_handler_reports(hearth):
    """error_type set: 500 function_error of that type with the body as the
    message; a non-zero return: 500 HandlerError. The worker stays warm."""
    deploy_c(hearth, "c-err", ECHO)
    err = assert_error(hearth.invoke("c-err", data=b"fail"), 500, "function_error")
    assert err["type"] == "Custom.Fail" and "asked to fail" in err["message"], err
    err = assert_error(hearth.invoke("c-err", data=b"return"), 500, "function_error")
    assert err["type"] == "HandlerError" and "7" in err["message"], err
    r = hearth.invoke_ok("c-err", data=b"x")
    assert "X-Hearth-Cold-Start" not in r.headers


def test_http_trigger_sets_the_status(hearth):
    deploy_c(hearth, "c-http", ECHO)
    r = hearth.request("POST", "/fn/c-http/x", data=b"hi")
    assert r.status_code == 201 and r.json()["http"] is True, r.text


def test_load_failures_are_init_errors(hearth):
    """No hearth_handler, a failing hearth_init, or a file that is no shared
    object: 500 init_error naming the problem."""
    deploy_c(hearth, "c-nosym", "int other(void) { return 1; }\n", timeout_ms=5000)
    err = assert_error(hearth.invoke("c-nosym", data=b""), 500, "init_error")
    assert "hearth_handler" in err["message"], err
    deploy_c(hearth, "c-init", '#include "hearth/function.h"\nint hearth_init(void) { return 1; }\n'
             "int hearth_handler(const hearth_request *q, hearth_response *r)"
             " { (void)q; (void)r; return 0; }\n", timeout_ms=5000)
    err = assert_error(hearth.invoke("c-init", data=b""), 500, "init_error")
    assert "hearth_init" in err["message"], err
    hearth.deploy_ok("c-junk", files={"libfn.so": "not an ELF file"}, handler="libfn.so",
                     runtime="c", timeout_ms=5000)
    assert_error(hearth.invoke("c-junk", data=b""), 500, "init_error")


def test_handler_must_name_a_shared_object_in_the_package(hearth):
    for bad in ("libfn", "../libfn.so", "/lib/libc.so"):
        r = hearth.deploy_raw("c-bad", c_package(ECHO), "application/gzip", runtime="c",
                              handler=bad)
        assert_error(r, 400, "invalid_query")
