"""The lambda runtime: a function brings its own `bootstrap`, as on AWS's
provided runtimes, and Hearth serves it the AWS Lambda Runtime API inside
the sandbox. The bootstraps here are written against AWS's documentation
only: one in shell + curl, one in Python with one keep-alive connection."""

import json

from conftest import assert_error, py

SHELL_ECHO = """#!/bin/sh
# Answers each event with the headers and environment it was given.
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/next")
  hdr() { grep -i "^$1:" "$H" | tr -d '\\r' | cut -d' ' -f2-; }
  ID=$(hdr Lambda-Runtime-Aws-Request-Id)
  cat > /tmp/answer <<JSON
{"event": $EVENT, "id": "$ID", "deadline": "$(hdr Lambda-Runtime-Deadline-Ms)",
 "arn": "$(hdr Lambda-Runtime-Invoked-Function-Arn)", "trace": "$(hdr Lambda-Runtime-Trace-Id)",
 "env": {"name": "$AWS_LAMBDA_FUNCTION_NAME", "version": "$AWS_LAMBDA_FUNCTION_VERSION",
         "memory": "$AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "handler": "$_HANDLER",
         "root": "$LAMBDA_TASK_ROOT", "group": "$AWS_LAMBDA_LOG_GROUP_NAME",
         "stream": "$AWS_LAMBDA_LOG_STREAM_NAME", "region": "$AWS_REGION", "tz": "$TZ",
         "mine": "$MY_SETTING", "cwd": "$(pwd)"}}
JSON
  echo "answering $ID" >&2
  curl -sS -X POST "$API/$ID/response" --data-binary @/tmp/answer >/dev/null
  rm -f "$H"
done
"""

PY_KEEPALIVE = py("""
    #!/usr/bin/python3
    # A client as AWS's runtime interface clients are: one HTTP/1.1
    # connection, kept alive across next/response calls.
    import http.client, json, os
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    base = "/2018-06-01/runtime/invocation/"
    calls = 0
    while True:
        conn.request("GET", base + "next")
        r = conn.getresponse()
        event = json.loads(r.read())
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        calls += 1
        if event.get("wrong_id"):
            conn.request("POST", base + "not-" + rid + "/response", body=b"{}")
            bad = conn.getresponse()
            detail = json.loads(bad.read())
            body = {"status": bad.status, "detail": detail}
        else:
            body = {"calls": calls, "pid": os.getpid()}
        conn.request("POST", base + rid + "/response", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        ok = conn.getresponse()
        ok.read()
""")


def deploy_lambda(h, name, bootstrap, **settings):
    return h.deploy_ok(name, files={"bootstrap": bootstrap}, handler="function.handler",
                       runtime="lambda", **settings)


def test_runtime_api_headers_and_reserved_environment(hearth):
    """/next gives the event with the request id, deadline, function ARN and
    trace id headers, and the bootstrap runs in /var/task with the reserved
    variables AWS documents, beside the function's own env."""
    deploy_lambda(hearth, "lm-echo", SHELL_ECHO, env={"MY_SETTING": "x"}, memory_mb=256)
    r = hearth.invoke_ok("lm-echo", json={"a": 1})
    out = r.json()
    assert out["event"] == {"a": 1}
    assert out["id"] == r.headers["X-Request-Id"]
    assert int(out["deadline"]) > 0
    assert out["arn"].startswith("arn:aws:lambda:") and out["arn"].endswith(":function:lm-echo")
    assert out["trace"].startswith("Root=1-"), out["trace"]
    env = out["env"]
    assert (env["name"], env["version"], env["memory"], env["handler"]) == (
        "lm-echo", "1", "256", "function.handler")
    assert env["root"] == "/var/task" and env["group"] == "/aws/lambda/lm-echo"
    assert env["stream"] and env["region"] and env["tz"] == ":UTC" and env["mine"] == "x"
    assert env["cwd"].endswith("/var/task") or env["cwd"] == "/proc/self/cwd", env
    logs = [x for x in hearth.log_records("lm-echo") if x["message"] == "answering " + out["id"]]
    assert logs and logs[0]["request_id"] == out["id"]


def test_keep_alive_client_and_warm_reuse(hearth):
    """One persistent HTTP/1.1 connection serves many invocations, and the
    same bootstrap process answers them (warm)."""
    deploy_lambda(hearth, "lm-keep", PY_KEEPALIVE)
    answers = [hearth.invoke_ok("lm-keep", json={}).json() for _ in range(3)]
    assert [a["calls"] for a in answers] == [1, 2, 3]
    assert len({a["pid"] for a in answers}) == 1


def test_answer_for_another_invocation_is_refused(hearth):
    """A response for an id that is not in flight gets 400 InvalidRequestID
    in Lambda's error shape, and the real one still goes through."""
    deploy_lambda(hearth, "lm-wrong", PY_KEEPALIVE)
    out = hearth.invoke_ok("lm-wrong", json={"wrong_id": True}).json()
    assert out["status"] == 400 and out["detail"]["errorType"] == "InvalidRequestID", out


def test_invocation_error_and_init_error(hearth):
    """invocation/{id}/error answers 500 function_error with the error type
    of the header; init/error answers 500 init_error."""
    deploy_lambda(hearth, "lm-err", "#!/bin/sh\nAPI=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\n"
                  "while true; do H=$(mktemp); curl -sS -D $H $API/invocation/next >/dev/null\n"
                  "ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' $H | tr -d '\\r' | cut -d' ' -f2)\n"
                  "curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.Custom' "
                  "$API/invocation/$ID/error -d '{\"errorMessage\": \"it broke\", "
                  "\"errorType\": \"Ignored\"}' >/dev/null; done\n")
    err = assert_error(hearth.invoke("lm-err", json={}), 500, "function_error")
    assert err["type"] == "Runtime.Custom" and err["message"] == "it broke", err
    deploy_lambda(hearth, "lm-init", "#!/bin/sh\ncurl -sS -X POST "
                  "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error "
                  "-d '{\"errorMessage\": \"no config\", \"errorType\": \"Init.Config\"}'\n"
                  "sleep 5\n", timeout_ms=5000)
    err = assert_error(hearth.invoke("lm-init", json={}), 500, "init_error")
    assert err["type"] == "Init.Config" and err["message"] == "no config", err


def test_missing_or_quitting_bootstrap_is_an_init_error(hearth):
    """No bootstrap in the package, or one that exits before asking for an
    invocation: 500 init_error saying so."""
    hearth.deploy_ok("lm-none", files={"other": "x"}, handler="h", runtime="lambda",
                     timeout_ms=5000)
    err = assert_error(hearth.invoke("lm-none", json={}), 500, "init_error")
    assert "bootstrap" in err["message"], err
    deploy_lambda(hearth, "lm-quit", "#!/bin/sh\nexit 4\n", timeout_ms=5000)
    err = assert_error(hearth.invoke("lm-quit", json={}), 500, "init_error")
    assert "exited" in err["message"], err
    # A bootstrap whose #! interpreter is missing: the error names it.
    deploy_lambda(hearth, "lm-nointerp", "#!/usr/bin/hearth-no-such-shell\n", timeout_ms=5000)
    err = assert_error(hearth.invoke("lm-nointerp", json={}), 500, "init_error")
    assert err["type"] == "Runtime.InvalidEntrypoint", err
    assert err["message"].startswith("interpreter /usr/bin/hearth-no-such-shell not found"), err


def test_http_trigger_status_codes(hearth):
    """Behind /fn/, the bootstrap gets the HTTP event and its JSON answer's
    statusCode, headers and body make the HTTP answer."""
    deploy_lambda(hearth, "lm-http", "#!/bin/sh\nAPI=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\n"
                  "while true; do H=$(mktemp); E=$(curl -sS -D $H $API/invocation/next)\n"
                  "ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' $H | tr -d '\\r' | cut -d' ' -f2)\n"
                  "curl -sS -X POST $API/invocation/$ID/response "
                  "-d '{\"statusCode\": 202, \"headers\": {\"X-From\": \"lambda\"}, \"body\": \"queued\"}' "
                  ">/dev/null; done\n")
    r = hearth.request("POST", "/fn/lm-http/jobs", data=b"{}")
    assert r.status_code == 202 and r.headers["X-From"] == "lambda" and r.text == "queued", r.text
