"""One behaviour, every runtime: prints land in the log under the request's
id, a handler's error is 500 function_error, a worker that dies mid-call
is 502 function_crashed, a call past timeout_ms is 504 and the next one
works. Each runtime gets the same function, written in its language."""

import textwrap

import pytest

from c_build import c_package, deploy_c
from conftest import assert_error, py

# Each function reads {"do": ...}: "print" prints a marker (to stdout, or
# stderr for exec, whose stdout is the answer) and answers "ok"; "raise"
# fails; "crash" ends the worker's process; "sleep" outlasts the timeout;
# "context" answers "<invocation id>|<attempt>" as the runtime gives them.
FUNCTIONS = {
    "python3": ("main.handler", {"main.py": py("""
        import os, time
        def handler(event, context):
            do = event.get("do")
            if do == "print":
                print("marker-" + context.request_id)
            elif do == "raise":
                raise ValueError("asked to fail")
            elif do == "crash":
                os._exit(9)
            elif do == "sleep":
                time.sleep(30)
            elif do == "context":
                return "%s|%s" % (context.invocation_id, context.attempt)
            return "ok"
    """)}),
    "node": ("index.handler", {"index.js": (
        "exports.handler = async (event, context) => {\n"
        "  if (event.do === 'print') console.log('marker-' + context.awsRequestId);\n"
        "  else if (event.do === 'raise') throw new RangeError('asked to fail');\n"
        "  else if (event.do === 'crash') process.exit(9);\n"
        "  else if (event.do === 'sleep') await new Promise((r) => setTimeout(r, 30000));\n"
        "  else if (event.do === 'context') return `${context.invocationId}|${context.attempt}`;\n"
        "  return 'ok';\n"
        "};\n")}),
    "exec": ("run.sh", {"run.sh": (
        "#!/bin/sh\n"
        "case \"$(cat)\" in\n"
        "  *print*) echo \"marker-$HEARTH_REQUEST_ID\" >&2 ;;\n"
        "  *raise*) echo 'asked to fail' >&2; exit 1 ;;\n"
        "  *crash*) kill -9 $PPID ;;\n"  # the runner: the worker itself dies
        "  *sleep*) sleep 30 ;;\n"
        "  *context*) printf '%s|%s' \"$HEARTH_INVOCATION_ID\" \"$HEARTH_ATTEMPT\"; exit 0 ;;\n"
        "esac\n"
        "printf ok\n")}),
    "lambda": ("function.handler", {"bootstrap": (
        "#!/bin/sh\n"
        "API=\"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation\"\n"
        "while true; do\n"
        "  H=$(mktemp); E=$(curl -sS -D \"$H\" \"$API/next\")\n"
        "  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' \"$H\" | tr -d '\\r' | cut -d' ' -f2)\n"
        "  case \"$E\" in\n"
        "    *print*) echo \"marker-$ID\" >&2 ;;\n"
        "    *raise*) curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Custom.Fail'"
        " \"$API/$ID/error\" -d '{\"errorMessage\": \"asked to fail\"}' >/dev/null; continue ;;\n"
        "    *crash*) kill -9 $PPID ;;\n"  # the Runtime API's server: the worker itself dies
        "    *sleep*) sleep 30 ;;\n"
        "    *context*) hdr() { grep -i \"^$1:\" \"$H\" | tr -d '\\r' | cut -d' ' -f2; }\n"
        "      A=\"$(hdr Lambda-Runtime-Hearth-Invocation-Id)|$(hdr Lambda-Runtime-Hearth-Attempt)\"\n"
        "      curl -sS -X POST \"$API/$ID/response\" -H 'Content-Type: text/plain' -d \"$A\" >/dev/null\n"
        "      continue ;;\n"
        "  esac\n"
        "  curl -sS -X POST \"$API/$ID/response\" -H 'Content-Type: text/plain' -d ok >/dev/null\n"
        "done\n")}),
    # Built with the system's C compiler at deploy (tests/e2e/c_build.py).
    "c": ("libfn.so", r"""
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>
        #include "hearth/function.h"
        int hearth_handler(const hearth_request *req, hearth_response *resp)
        {
            const char *e = req->body_len ? (const char *)req->body : "";
            if (strstr(e, "print")) printf("marker-%s\n", req->request_id);
            if (strstr(e, "raise")) {
                resp->error_type = "Custom.Fail";
                resp->body = "asked to fail";
                resp->body_len = 13;
                return 0;
            }
            if (strstr(e, "crash")) _exit(9);
            if (strstr(e, "sleep")) sleep(30);
            if (strstr(e, "context")) {
                static char out[128];
                resp->body = out;
                resp->body_len = (size_t)snprintf(out, sizeof out, "%s|%u",
                                                  req->invocation_id, req->attempt);
                resp->content_type = "text/plain";
                return 0;
            }
            resp->body = "ok";
            resp->body_len = 2;
            resp->content_type = "text/plain";
            return 0;
        }
    """),
}

# What "context" answers for a synchronous call: no invocation id, attempt 1.
SYNC_CONTEXT = {"python3": "None|1", "node": "null|1", "exec": "|1", "lambda": "|1", "c": "|1"}

ERROR_TYPE = {"python3": "ValueError", "node": "RangeError", "exec": "ExitStatus",
              "lambda": "Custom.Fail", "c": "Custom.Fail"}


def usable(hearth, runtime):
    return any(r["name"] == runtime and r["usable"]
               for r in hearth.get("/v1/runtimes").json()["runtimes"])


@pytest.fixture(params=sorted(FUNCTIONS))
def fn(request, hearth):
    runtime = request.param
    if not usable(hearth, runtime):
        pytest.skip("runtime %s is not usable on this machine" % runtime)
    handler, files = FUNCTIONS[runtime]
    name = "sh-" + runtime.replace("3", "")
    if runtime == "c":
        deploy_c(hearth, name, textwrap.dedent(files), timeout_ms=1500)
    else:
        hearth.deploy_ok(name, files=files, handler=handler, runtime=runtime, timeout_ms=1500)
    return runtime, name


def test_prints_land_in_the_log_under_the_request_id(hearth, fn):
    runtime, name = fn
    r = hearth.invoke(name, json={"do": "print"})
    assert r.status_code == 200 and r.text == "ok", r.text
    rid = r.headers["X-Request-Id"]
    recs = [x for x in hearth.log_records(name) if x["message"] == "marker-" + rid]
    assert len(recs) == 1 and recs[0]["request_id"] == rid, hearth.log_records(name)


def test_a_handler_error_is_500_function_error(hearth, fn):
    runtime, name = fn
    err = assert_error(hearth.invoke(name, json={"do": "raise"}), 500, "function_error")
    assert err["type"] == ERROR_TYPE[runtime], err
    # One shape in every runtime: the type apart, the message the function's
    # own (exec's names the exit status first: it has no message of its own).
    want = "exit status 1: asked to fail" if runtime == "exec" else "asked to fail"
    assert err["message"] == want, err
    assert hearth.invoke(name, json={}).text == "ok"


# A handler that names nothing, per runtime: its init_error's type.
MISSING_HANDLER = {"python3": ("main.nope", "HandlerNotFound"),
                   "node": ("index.nope", "HandlerNotFound"),
                   "exec": ("nope.sh", "HandlerNotFound"),
                   "c": ("libnope.so", "ImportModuleError")}


@pytest.mark.parametrize("runtime", sorted(MISSING_HANDLER))
def test_an_init_error_has_the_function_errors_shape(hearth, runtime):
    """init_error, like function_error: `type` apart, a message that does
    not repeat it, in every runtime that reports one."""
    if not usable(hearth, runtime):
        pytest.skip("runtime %s is not usable on this machine" % runtime)
    handler, want = MISSING_HANDLER[runtime]
    name = "sh-init-" + runtime.replace("3", "")
    _, files = FUNCTIONS[runtime]
    if runtime == "c":
        r = hearth.deploy_raw(name, c_package(textwrap.dedent(files)), "application/gzip",
                              runtime="c", handler=handler, timeout_ms=5000)
        assert r.status_code == 201, r.text
    else:
        hearth.deploy_ok(name, files=files, handler=handler, runtime=runtime, timeout_ms=5000)
    err = assert_error(hearth.invoke(name, json={}), 500, "init_error")
    assert err.get("type") == want, err
    assert err["message"] and not err["message"].startswith(want), err


def test_a_dying_worker_is_502_function_crashed(hearth, fn):
    runtime, name = fn
    assert_error(hearth.invoke(name, json={"do": "crash"}), 502, "function_crashed")
    r = hearth.invoke(name, json={})
    assert r.status_code == 200 and r.headers.get("X-Hearth-Cold-Start") == "1", r.text


def test_past_the_timeout_is_504_and_the_next_call_works(hearth, fn):
    runtime, name = fn
    assert_error(hearth.invoke(name, json={"do": "sleep"}), 504, "timeout")
    assert hearth.invoke(name, json={}).text == "ok"


def test_a_sync_call_has_no_invocation_id_and_attempt_1(hearth, fn):
    runtime, name = fn
    assert hearth.invoke_ok(name, json={"do": "context"}).text == SYNC_CONTEXT[runtime]
