"""Pre-built mode of every runtime (docs/runtimes.md, "Pre-built mode"):
started with HEARTH_PREBUILT=1 and no function, a runtime loads itself,
waits for one SPECIALIZE frame on fd 3, takes the environment it names,
enters /var/task again and only then loads the user's code.

Each runtime's program runs directly over a socketpair with the daemon's
argv (src/runtimes.c), as in test_python_runtime.py; no daemon. /var/task
is a fixed path, and it must not be made on the host: the full lifecycle
runs the runtime in a mount namespace of its own (root only), with an
empty /var/task to start in and the code bind-mounted over it later, as
the sandbox's init does on a claim. The malformed-frame and EOF cases
exit before the chdir and need no namespace.

Run: /usr/bin/python3 -m pytest -q tests/unit/test_prebuilt_runtimes.py
"""

import json
import os
import shutil
import socket
import subprocess
import textwrap
import time

import pytest

from test_python_runtime import (HEADER, INVOKE, PYTHON, READY, RESULT, TIMEOUT_S, Runtime,
                                 encode_frame, recv_frame)
from test_runtime_context import C_RUNNER, CC, NODE, REPO, program

SPECIALIZE = 6
EX_SOFTWARE = 70

# What the spawner starts a pre-built runtime with (notes: the contract).
PREBUILT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
                "TZ": "UTC", "HEARTH_PREBUILT": "1"}


EPOLL_WAITS = {"232", "281", "441"}  # x86_64 epoll_wait, epoll_pwait, epoll_pwait2


def function_env(handler):
    """The function's whole environment, as the SPECIALIZE frame carries it."""
    return ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/home/fn", "TZ=UTC",
            "HEARTH_HANDLER=" + handler, "HEARTH_FUNCTION_NAME=fn-pre",
            "HEARTH_FUNCTION_VERSION=3", "HEARTH_MEMORY_MB=256",
            "GREETING=a=b", "EMPTY=", "WORDS=grüße"]


# The runtimes that point /proc/<pid>/environ at the function's environment
# once specialized; node has no way to call prctl without an addon.
SHOWS_ENVIRON = {"python3", "exec", "lambda", "c"}


def proc_environ(pid):
    """/proc/<pid>/environ as a list of "KEY=VALUE" items."""
    with open("/proc/%d/environ" % pid, "rb") as f:
        return [item.decode() for item in f.read().split(b"\0") if item]


def as_dict(items):
    return dict(item.split("=", 1) for item in items)


def raw_frame(ftype, meta=b"", body=b"", flags=0):
    return HEADER.pack(0x48, ftype, flags, len(meta), len(body)) + meta + body


def specialize_frame(env):
    return raw_frame(SPECIALIZE, json.dumps({"env": env}).encode())


# Starts the runtime in a mount namespace of its own: /var is a tmpfs
# there, with an empty /var/task to start in (the host's /var is left
# alone; no runtime needs it).
NAMESPACE = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             'mount -t tmpfs -o mode=755 hearth-prebuilt /var && mkdir /var/task'
             ' && cd /var/task && exec "$@"', "sh"]


class Prebuilt(Runtime):
    """A runtime started as the spawner starts a pre-built one: no function,
    HEARTH_PREBUILT=1. Runtime's frame helpers apply once it is specialized."""

    def __init__(self, argv, cwd, namespace=False):  # pylint: disable=super-init-not-called
        self.sock, child = socket.socketpair()
        self.sock.settimeout(TIMEOUT_S)
        child_fd = child.fileno()
        self.proc = subprocess.Popen(
            (NAMESPACE if namespace else []) + argv, cwd=cwd, env=PREBUILT_ENV,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=lambda: os.dup2(child_fd, 3))
        child.close()
        self.request_no = 0

    def wait_blocked_on_fd3(self):
        """Its READY {"prebuilt": true} (loaded), then until the runtime sits
        in a read of fd 3, waiting for SPECIALIZE."""
        ftype, meta, body = recv_frame(self.sock)
        assert (ftype, meta, body) == (READY, {"prebuilt": True}, b""), self.stderr()
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/syscall" % self.proc.pid) as f:
                    fields = f.read().split()
            except OSError:
                fields = []
            if len(fields) > 1 and fields[1] == "0x3":  # read/readv(3, ...)
                return
            if fields and fields[0] in EPOLL_WAITS:  # node: its event loop waits on fd 3
                return
            assert self.proc.poll() is None, self.stderr()
            time.sleep(0.01)
        pytest.fail("the runtime never blocked reading fd 3")

    def attach(self, code_dir):
        """What the sandbox's init does on a claim: the code, read-only, over /var/task."""
        subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "mount", "-o", "bind,ro",
                        code_dir, "/var/task"], check=True)


# --- the runtimes, each with a package whose import leaves a marker and
# whose handler answers the environment it sees ---

PY_MAIN = """\
import os, subprocess
open(%(marker)r, "w").close()

def handler(event, context):
    out = subprocess.run(["/usr/bin/env", "-0"], stdout=subprocess.PIPE).stdout
    return {"environ": dict(os.environ), "cwd": os.getcwd(),
            "c_environ": [x for x in out.decode().split("\\0") if x]}
"""

NODE_INDEX = """\
require('fs').writeFileSync(%(marker)s, '');
exports.handler = async () => {
  const out = require('child_process').execFileSync('/usr/bin/env', ['-0']).toString();
  return {environ: process.env, cwd: process.cwd(), c_environ: out.split('\\0').filter((x) => x)};
};
"""

C_FN = r"""
#include <stdio.h>
#include <string.h>
#include "hearth/function.h"

extern char **environ;

__attribute__((constructor)) static void loaded(void)
{
    FILE *f = fopen("%(marker)s", "w");
    if (f)
        fclose(f);
}

/* The C environ, NUL-separated. */
int hearth_handler(const hearth_request *req, hearth_response *resp)
{
    static char out[65536];
    size_t n = 0;
    (void)req;
    for (char **e = environ; *e; e++) {
        size_t len = strlen(*e) + 1;
        if (n + len > sizeof out)
            break;
        memcpy(out + n, *e, len);
        n += len;
    }
    resp->body = out;
    resp->body_len = n;
    resp->content_type = "application/octet-stream";
    return 0;
}
"""

EXEC_RUN = """\
#!/usr/bin/python3 -I
import json, os
open(%(marker)r, "w").close()
print(json.dumps(dict(os.environ)))
"""

LAMBDA_BOOTSTRAP = """\
#!/usr/bin/python3 -I
import http.client, json, os
open(%(marker)r, "w").close()
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
base = "/2018-06-01/runtime/invocation/"
while True:
    conn.request("GET", base + "next")
    r = conn.getresponse()
    r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    conn.request("POST", base + rid + "/response", body=json.dumps(dict(os.environ)).encode())
    conn.getresponse().read()
"""

# What the exec and lambda runtimes add to the function's environment for
# the process they start (exec/runner.py run_env, lambda/runner.py lambda_env).
EXEC_ADDS = {"HEARTH_REQUEST_ID", "HEARTH_DEADLINE_MS", "HEARTH_TRIGGER",
             "HEARTH_INVOCATION_ID", "HEARTH_ATTEMPT"}
LAMBDA_ADDS = {"AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
               "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME",
               "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_REGION",
               "AWS_DEFAULT_REGION", "TZ"}


def python_argv(name, *files):
    return [PYTHON, "-I", "-B", "-c", program(name, *files)]


def node_argv():
    if not os.access(NODE, os.X_OK):
        pytest.skip("no %s" % NODE)
    return [NODE, "--preserve-symlinks", "-e", program("node", "node/bootstrap.js")]


def c_argv():
    if not os.access(C_RUNNER, os.X_OK):
        pytest.skip("%s is not built (cmake --build build)" % C_RUNNER)
    return [C_RUNNER]


ARGV = {
    "python3": lambda: python_argv("python3", "python3/bootstrap.py"),
    "exec": lambda: python_argv("exec", "python3/bootstrap.py", "exec/runner.py"),
    "lambda": lambda: python_argv("lambda", "python3/bootstrap.py", "exec/runner.py",
                                  "lambda/runner.py"),
    "node": node_argv,
    "c": c_argv,
}
RUNTIMES = sorted(ARGV)


def write_package(runtime, code, marker):
    """The runtime's test package in `code`; returns its handler string."""
    code.mkdir()
    if runtime == "python3":
        (code / "main.py").write_text(PY_MAIN % {"marker": marker})
        return "main.handler"
    if runtime == "node":
        (code / "index.js").write_text(NODE_INDEX % {"marker": json.dumps(marker)})
        return "index.handler"
    if runtime == "c":
        if not CC:
            pytest.skip("no C compiler to build the function")
        src = code.parent / "fn.c"
        src.write_text(C_FN % {"marker": marker})
        subprocess.run([CC, "-O2", "-Wall", "-Werror", "-shared", "-fPIC",
                        "-I", os.path.join(REPO, "include"), "-o", str(code / "libfn.so"),
                        str(src)], check=True)
        return "libfn.so"
    name, text, handler = {"exec": ("run.py", EXEC_RUN, "run.py"),
                           "lambda": ("bootstrap", LAMBDA_BOOTSTRAP, "whatever")}[runtime]
    path = code / name
    path.write_text(text % {"marker": marker})
    path.chmod(0o755)  # else the runtime copies it to /tmp to add the bit
    return handler


def seen_environment(runtime, body):
    """(the environment the handler saw, the C environ where the runtime can show it)."""
    if runtime == "c":
        items = [x for x in body.decode().split("\0") if x]
        return as_dict(items), items
    doc = json.loads(body)
    if runtime in ("python3", "node"):
        assert doc["cwd"] == "/var/task"
        return doc["environ"], doc["c_environ"]
    return doc, None


@pytest.fixture
def started():
    """started(argv, cwd, namespace=False) -> Prebuilt; closed at the end."""
    made = []

    def _start(argv, cwd, namespace=False):
        rt = Prebuilt(argv, str(cwd), namespace)
        made.append(rt)
        return rt

    yield _start
    for rt in reversed(made):
        rt.close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_specialize_then_ready_with_exactly_the_functions_environment(runtime, started,
                                                                      tmp_path):
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("needs root, unshare and nsenter for a private /var/task")
    argv = ARGV[runtime]()
    marker = str(tmp_path / "imported")
    code = tmp_path / "code"
    handler = write_package(runtime, code, marker)
    env = function_env(handler)

    rt = started(argv, tmp_path, namespace=True)
    rt.wait_blocked_on_fd3()
    rt.attach(str(code))
    time.sleep(0.2)  # time enough to load the code, were it loading it
    assert not os.path.exists(marker), "user code ran before SPECIALIZE"
    assert rt.proc.poll() is None

    rt.sock.sendall(specialize_frame(env))
    ftype, meta, _ = recv_frame(rt.sock)
    assert ftype == READY, (meta, rt.stderr())
    ftype, _, body = rt.invoke(b"{}")
    assert ftype == RESULT, (body, rt.stderr())
    # Shown after READY, off the cold start's path: by the first answer.
    shown = proc_environ(rt.proc.pid)
    if runtime in SHOWS_ENVIRON:
        # What `ps e` and the e2e tests' procs_with_env read: the function's.
        assert not any(item.startswith("HEARTH_PREBUILT=") for item in shown), shown
        assert sorted(shown) == sorted(env)
    else:
        # node cannot call prctl(PR_SET_MM) (docs/runtimes.md).
        assert "HEARTH_PREBUILT=1" in shown
    assert os.path.exists(marker)

    want = as_dict(env)
    seen, c_environ = seen_environment(runtime, body)
    assert "HEARTH_PREBUILT" not in seen
    if runtime == "exec":
        assert EXEC_ADDS <= set(seen)
        seen = {k: v for k, v in seen.items() if k not in EXEC_ADDS}
    if runtime == "lambda":
        # Computed from the function's environment, not the pre-built one.
        assert seen["_HANDLER"] == handler
        assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "fn-pre"
        assert seen["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        seen = {k: v for k, v in seen.items() if k not in LAMBDA_ADDS}
        want = {k: v for k, v in want.items() if k not in LAMBDA_ADDS}
    assert seen == want
    if c_environ is not None:
        assert sorted(c_environ) == sorted("%s=%s" % kv for kv in as_dict(env).items())


MALFORMED = {
    "invoke first": encode_frame(INVOKE, {"request_id": "r", "trigger": "invoke"}, b"{}"),
    "bad json": raw_frame(SPECIALIZE, b'{"env": ['),
    "item without =": specialize_frame(["PATH=/bin", "NOVALUE"]),
    "empty key": specialize_frame(["=value"]),
    "NUL in item": specialize_frame(["A=b\0c"]),
    "env not a list": specialize_frame("PATH=/bin"),
    "no env": raw_frame(SPECIALIZE, b"{}"),
    "empty meta": raw_frame(SPECIALIZE),
    "a body": raw_frame(SPECIALIZE, json.dumps({"env": []}).encode(), b"x"),
    "flags": raw_frame(SPECIALIZE, json.dumps({"env": []}).encode(), flags=1),
    "truncated": specialize_frame(["A=b"])[:15],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_malformed_first_frame_exits_70(runtime, case, started, tmp_path):
    rt = started(ARGV[runtime](), tmp_path)
    rt.sock.sendall(MALFORMED[case])
    rt.sock.shutdown(socket.SHUT_WR)  # "truncated" ends in EOF inside the frame
    assert rt.wait() == EX_SOFTWARE, rt.stderr()
    err = rt.stderr()
    assert err.startswith("hearth-") and err.count("\n") == 1, err  # one line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_eof_while_waiting_exits_0(runtime, started, tmp_path):
    rt = started(ARGV[runtime](), tmp_path)
    rt.sock.shutdown(socket.SHUT_WR)
    assert rt.wait() == 0, rt.stderr()
    assert rt.stderr() == ""


def test_without_the_flag_nothing_waits(started, tmp_path):
    """Normal mode is unchanged: HEARTH_PREBUILT other than "1" loads at once."""
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        def handler(event, context):
            return "ok"
    """))
    rt = Runtime(str(tmp_path), "main.handler", env={"HEARTH_PREBUILT": "0"},
                 argv=ARGV["python3"]())
    try:
        assert recv_frame(rt.sock)[0] == READY, rt.stderr()
        assert rt.invoke(b"")[2] == b"ok"
    finally:
        rt.close()
