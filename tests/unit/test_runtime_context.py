"""What every runtime tells a handler about an asynchronous invocation:
its id and the attempt, from the INVOKE metadata keys `invocation_id` and
`attempt` (absent for a synchronous call). Each runtime's program runs
directly over a socketpair, as in test_python_runtime.py; no daemon.
The python3 runtime's own cases are in test_python_runtime.py.

Run: /usr/bin/python3 -m pytest -q tests/unit/test_runtime_context.py
"""

import json
import os
import shutil
import subprocess
import tempfile
import textwrap

import pytest

from test_python_runtime import PYTHON, READY, RESULT, Runtime, recv_frame

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
RUNTIMES = os.path.join(REPO, "runtimes")
NODE = "/usr/bin/node"
C_RUNNER = os.environ.get("HEARTH_C_RUNNER", os.path.join(REPO, "build", "hearth-c-runner"))
CC = shutil.which("cc") or shutil.which("gcc")

UUID = "0b6e1c2a-5f1d-4e8b-9c41-7a3e2d9f0c11"
ASYNC = {"trigger": "async", "invocation_id": UUID, "attempt": 3}


def program(name, *files):
    """The program text as src/runtimes.c builds it: a line naming the
    runtime, then its files joined in order."""
    text = 'HEARTH_RUNTIME = "%s"\n' % name
    for f in files:
        with open(os.path.join(RUNTIMES, f), encoding="utf-8") as src:
            text += src.read() + "\n"
    return text


@pytest.fixture
def start():
    """start(argv, files, handler, env=None) -> Runtime that has sent READY."""
    made = []

    def _start(argv, files, handler, env=None):
        code_dir = tempfile.mkdtemp(prefix="hearth-rtctx-")
        made.append(code_dir)
        for name, data in files.items():
            path = os.path.join(code_dir, name)
            mode = "wb" if isinstance(data, bytes) else "w"
            with open(path, mode) as f:
                f.write(data if isinstance(data, bytes) else textwrap.dedent(data))
        rt = Runtime(code_dir, handler, argv=argv, env=env)
        made.append(rt)
        ftype, meta, body = recv_frame(rt.sock)
        assert (ftype, body) == (READY, b""), (meta, rt.stderr())
        return rt

    yield _start
    for item in reversed(made):
        if isinstance(item, Runtime):
            item.close()
        else:
            shutil.rmtree(item)


def answers(rt):
    """The handler's JSON answers to a synchronous call and to an async attempt."""
    out = []
    for meta in ({}, ASYNC):
        ftype, _, body = rt.invoke(b"{}", **meta)
        assert ftype == RESULT, (body, rt.stderr())
        out.append(json.loads(body))
    return out


def test_node_context_invocation_id_and_attempt(start):
    if not os.access(NODE, os.X_OK):
        pytest.skip("no %s" % NODE)
    rt = start([NODE, "--preserve-symlinks", "-e", program("node", "node/bootstrap.js")],
               {"index.js": "exports.handler = async (e, c) =>"
                            " ({id: c.invocationId, attempt: c.attempt});\n"},
               "index.handler")
    sync, retry = answers(rt)
    assert sync == {"id": None, "attempt": 1}
    assert retry == {"id": UUID, "attempt": 3}


EXEC_ENV = """\
#!/bin/sh
printf '{"id": "%s", "set": "%s", "attempt": "%s", "trigger": "%s"}' \\
  "$HEARTH_INVOCATION_ID" "${HEARTH_INVOCATION_ID+yes}" \\
  "$HEARTH_ATTEMPT" "$HEARTH_TRIGGER"
"""


def test_exec_environment_invocation_id_and_attempt(start):
    argv = [PYTHON, "-I", "-B", "-c",
            program("exec", "python3/bootstrap.py", "exec/runner.py")]
    # Values from the function's own env must not show through.
    rt = start(argv, {"run.sh": EXEC_ENV}, "run.sh",
               env={"HEARTH_INVOCATION_ID": "stale", "HEARTH_ATTEMPT": "9"})
    sync, retry = answers(rt)
    assert sync == {"id": "", "set": "yes", "attempt": "1", "trigger": "invoke"}
    assert retry == {"id": UUID, "set": "yes", "attempt": "3", "trigger": "async"}


LAMBDA_BOOTSTRAP = """\
#!/usr/bin/python3
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
base = "/2018-06-01/runtime/invocation/"
while True:
    conn.request("GET", base + "next")
    r = conn.getresponse()
    r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    body = {"id": r.getheader("Lambda-Runtime-Hearth-Invocation-Id"),
            "attempt": r.getheader("Lambda-Runtime-Hearth-Attempt")}
    conn.request("POST", base + rid + "/response", body=json.dumps(body).encode())
    conn.getresponse().read()
"""


def test_lambda_next_headers_invocation_id_and_attempt(start):
    argv = [PYTHON, "-I", "-B", "-c",
            program("lambda", "python3/bootstrap.py", "exec/runner.py", "lambda/runner.py")]
    rt = start(argv, {"bootstrap": LAMBDA_BOOTSTRAP}, "whatever")
    sync, retry = answers(rt)
    assert sync == {"id": None, "attempt": "1"}
    assert retry == {"id": UUID, "attempt": "3"}


C_HANDLER = r"""
#include <stdio.h>
#include "hearth/function.h"

int hearth_handler(const hearth_request *req, hearth_response *resp)
{
    static char out[256];
    int n = snprintf(out, sizeof out, "{\"id\": \"%s\", \"attempt\": %u, \"trigger\": \"%s\"}",
                     req->invocation_id, req->attempt, req->trigger);
    resp->body = out;
    resp->body_len = (size_t)n;
    resp->content_type = "application/json";
    return 0;
}
"""


def test_c_request_invocation_id_and_attempt(start, tmp_path):
    if not os.access(C_RUNNER, os.X_OK):
        pytest.skip("%s is not built (cmake --build build)" % C_RUNNER)
    if not CC:
        pytest.skip("no C compiler to build the function")
    src, so = tmp_path / "fn.c", tmp_path / "libfn.so"
    src.write_text(C_HANDLER)
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-shared", "-fPIC",
                    "-I", os.path.join(REPO, "include"), "-o", str(so), str(src)], check=True)
    rt = start([C_RUNNER], {"libfn.so": so.read_bytes()}, "libfn.so")
    sync, retry = answers(rt)
    assert sync == {"id": "", "attempt": 1, "trigger": "invoke"}
    assert retry == {"id": UUID, "attempt": 3, "trigger": "async"}
