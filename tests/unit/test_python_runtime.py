"""Unit tests for runtimes/python3/bootstrap.py, driven directly over a socketpair.

Each test writes a temporary code directory, starts the runtime the way the
daemon does (fd 3 = one end of a socketpair, fd 1/2 = pipes, cwd = the code,
`/usr/bin/python3 -I -B -c <bootstrap source>`) and speaks the frames of
docs/protocol.md to it. No daemon is needed.

Run: /usr/bin/python3 -m pytest -q tests/unit/test_python_runtime.py
"""

import base64
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import textwrap
import time

import pytest

PYTHON = "/usr/bin/python3"
BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "..", "runtimes", "python3", "bootstrap.py")
HEADER = struct.Struct(">BBHII")
READY, INVOKE, RESULT, ERROR, INIT_ERROR = 1, 2, 3, 4, 5
TIMEOUT_S = 10


def encode_frame(ftype, meta=None, body=b""):
    meta_bytes = json.dumps(meta).encode() if meta else b""
    return HEADER.pack(0x48, ftype, 0, len(meta_bytes), len(body)) + meta_bytes + body


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("runtime closed fd 3 after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    """Returns (type, meta dict, body bytes) of the next frame the runtime sends."""
    magic, ftype, flags, meta_len, body_len = HEADER.unpack(recv_exact(sock, HEADER.size))
    assert magic == 0x48 and flags == 0
    meta = json.loads(recv_exact(sock, meta_len).decode("utf-8")) if meta_len else {}
    assert isinstance(meta, dict)
    return ftype, meta, recv_exact(sock, body_len)


def read_available(pipe):
    """Everything already written to `pipe`, without waiting for more."""
    os.set_blocking(pipe.fileno(), False)
    out = b""
    while True:
        try:
            chunk = os.read(pipe.fileno(), 65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


class Runtime:
    """One bootstrap.py process with the daemon's end of its fd 3 socket."""

    def __init__(self, code_dir, handler, env=None, as_script=False, argv=None):
        """argv: another runtime's command line (tests/unit/test_runtime_context.py)."""
        self.sock, child = socket.socketpair()
        self.sock.settimeout(TIMEOUT_S)
        child_fd = child.fileno()
        if argv is not None:
            pass
        elif as_script:
            argv = [PYTHON, "-I", "-B", os.path.abspath(BOOTSTRAP)]
        else:
            with open(BOOTSTRAP, encoding="utf-8") as f:
                argv = [PYTHON, "-I", "-B", "-c", f.read()]
        full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TZ": "UTC",
                    "HEARTH_HANDLER": handler, "HEARTH_FUNCTION_NAME": "fn",
                    "HEARTH_FUNCTION_VERSION": "7", "HEARTH_MEMORY_MB": "128"}
        full_env.update(env or {})
        # close_fds=False: Popen closes fds >= 3 *after* preexec_fn, which would
        # take the dup2'ed fd 3 with it. Every other fd here is close-on-exec.
        self.proc = subprocess.Popen(
            argv, cwd=code_dir, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False,
            preexec_fn=lambda: os.dup2(child_fd, 3))
        child.close()
        self.request_no = 0

    def invoke(self, body=b"", **meta):
        self.request_no += 1
        full = {"request_id": "req-%d" % self.request_no, "function": "fn", "version": 7,
                "deadline_ms": int(time.time() * 1000) + 5000, "memory_mb": 128,
                "trigger": "invoke"}
        full.update(meta)
        self.sock.sendall(encode_frame(INVOKE, full, body))
        return recv_frame(self.sock)

    def http(self, method="GET", path="/", query=None, headers=None, body=b""):
        return self.invoke(body, trigger="http", http={
            "method": method, "path": path, "query": query or {}, "headers": headers or {}})

    def stdout(self):
        return read_available(self.proc.stdout).decode()

    def stderr(self):
        return read_available(self.proc.stderr).decode()

    def wait(self):
        return self.proc.wait(timeout=TIMEOUT_S)

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def start():
    """start(files, handler="main.handler") -> Runtime; cleans up processes and dirs."""
    made = []

    def _start(files, handler="main.handler", **kwargs):
        code_dir = tempfile.mkdtemp(prefix="hearth-pyrt-")
        made.append(code_dir)
        for name, text in files.items():
            path = os.path.join(code_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        rt = Runtime(code_dir, handler, **kwargs)
        made.append(rt)
        return rt

    yield _start
    for item in reversed(made):
        if isinstance(item, Runtime):
            item.close()
        else:
            shutil.rmtree(item)


def start_ready(start, files, handler="main.handler", **kwargs):
    rt = start(files, handler, **kwargs)
    ftype, meta, body = recv_frame(rt.sock)
    assert (ftype, body) == (READY, b""), meta
    return rt


ECHO = {"main.py": """
    def handler(event, context):
        return event
"""}


@pytest.mark.parametrize("as_script", [False, True])
def test_ready_is_the_first_frame(start, as_script):
    rt = start(ECHO, as_script=as_script)
    ftype, meta, body = recv_frame(rt.sock)
    assert ftype == READY
    assert meta["runtime"] == "python3"
    out = subprocess.run([PYTHON, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert meta["runtime_version"] == out
    assert body == b""


def test_json_body_gives_parsed_event_and_json_answer(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {"got": event, "word": "héllo", "n": [1, 2.5, None, True]}
    """})
    ftype, meta, body = rt.invoke(b'{"a": 1}', content_type="application/json")
    assert ftype == RESULT
    assert meta == {"content_type": "application/json"}
    assert body == '{"got":{"a":1},"word":"héllo","n":[1,2.5,null,true]}'.encode()


def test_empty_body_is_empty_dict_and_plain_text_is_str(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return repr(event)
    """})
    assert rt.invoke(b"") == (RESULT, {"content_type": "text/plain; charset=utf-8"}, b"{}")
    assert rt.invoke(b"hello world")[2] == b"'hello world'"
    assert rt.invoke(b"42")[2] == b"42"
    assert rt.invoke(b"\xff\xfe raw")[2] == b"b'\\xff\\xfe raw'"


def test_str_answer_is_utf8_text(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return "grüße " + event["name"]
    """})
    assert rt.invoke(b'{"name": "bob"}') == (
        RESULT, {"content_type": "text/plain; charset=utf-8"}, "grüße bob".encode())


def test_bytes_answer_is_raw_octet_stream(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return bytes(range(256)) + (event if isinstance(event, bytes) else b"")
    """})
    ftype, meta, body = rt.invoke(b"\x80\x81")
    assert (ftype, meta) == (RESULT, {"content_type": "application/octet-stream"})
    assert body == bytes(range(256)) + b"\x80\x81"


def test_large_body_round_trips(start):
    rt = start_ready(start, ECHO)
    payload = os.urandom(3 << 20)  # far above the socket buffers: partial reads and writes
    ftype, meta, body = rt.invoke(payload)
    assert (ftype, meta["content_type"]) == (RESULT, "application/octet-stream")
    assert body == payload


def test_module_state_persists_and_module_is_imported_once(start):
    rt = start_ready(start, {"main.py": """
        print("importing main")
        calls = 0
        def handler(event, context):
            global calls
            calls += 1
            return calls
    """})
    assert rt.invoke()[2] == b"1"
    assert rt.invoke()[2] == b"2"
    assert rt.stdout().count("importing main") == 1


def test_context_fields(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {"request_id": context.request_id,
                    "aws_request_id": context.aws_request_id,
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "memory": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis()}
    """})
    ftype, _, body = rt.invoke(b"{}", request_id="abc-123", function="hello", version=3,
                               memory_mb=256, deadline_ms=int(time.time() * 1000) + 2000)
    got = json.loads(body)
    assert ftype == RESULT
    assert got["request_id"] == got["aws_request_id"] == "abc-123"
    assert (got["function_name"], got["function_version"], got["memory"]) == ("hello", "3", 256)
    assert 0 < got["remaining"] <= 2000
    past = rt.invoke(b"{}", deadline_ms=int(time.time() * 1000) - 5000)
    assert json.loads(past[2])["remaining"] == 0


def test_async_invocation_id_and_attempt(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {"invocation_id": context.invocation_id, "attempt": context.attempt}
    """})
    ftype, _, body = rt.invoke(b"{}")
    assert ftype == RESULT
    assert json.loads(body) == {"invocation_id": None, "attempt": 1}
    ftype, _, body = rt.invoke(b"{}", trigger="async", attempt=3,
                               invocation_id="0b6e1c2a-5f1d-4e8b-9c41-7a3e2d9f0c11")
    assert ftype == RESULT
    assert json.loads(body) == {"invocation_id": "0b6e1c2a-5f1d-4e8b-9c41-7a3e2d9f0c11",
                                "attempt": 3}
    # A bad attempt value is not the handler's problem: it reads as 1.
    ftype, _, body = rt.invoke(b"{}", trigger="async", invocation_id="x", attempt="2")
    assert json.loads(body) == {"invocation_id": "x", "attempt": 1}


def test_async_trigger_event_is_like_invoke(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {"statusCode": 201, "event": event}
    """})
    ftype, meta, body = rt.invoke(b'{"a":1}', trigger="async", invocation_id="i", attempt=1)
    assert ftype == RESULT and meta["content_type"] == "application/json"
    assert json.loads(body) == {"statusCode": 201, "event": {"a": 1}}


def test_environment_reaches_the_function(start):
    rt = start_ready(start, {"main.py": """
        import os
        def handler(event, context):
            return [os.environ.get("GREETING"), os.environ["HEARTH_FUNCTION_NAME"]]
    """}, env={"GREETING": "hi"})
    assert json.loads(rt.invoke()[2]) == ["hi", "fn"]


def test_exception_gives_error_frame_traceback_and_worker_survives(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            if event.get("fail"):
                raise ValueError("bad input: %s" % event["fail"])
            return "fine"
    """})
    ftype, meta, body = rt.invoke(b'{"fail": "x"}')
    assert (ftype, meta, body) == (ERROR, {"error_type": "ValueError",
                                           "message": "bad input: x"}, b"")
    err = rt.stderr()  # flushed before the ERROR frame was sent
    assert "Traceback (most recent call last)" in err
    assert 'main.py", line 4, in handler' in err
    assert "ValueError: bad input: x" in err
    assert "in answer" not in err  # the runtime's own frame is not the user's business
    assert rt.invoke(b"{}") == (RESULT, {"content_type": "text/plain; charset=utf-8"}, b"fine")


def test_custom_exception_type_name(start):
    rt = start_ready(start, {"main.py": """
        class OutOfStock(Exception):
            pass
        def handler(event, context):
            raise OutOfStock()
    """})
    assert rt.invoke()[:2] == (ERROR, {"error_type": "OutOfStock", "message": ""})


def test_import_error_sends_init_error_and_exits_1(start):
    rt = start({"main.py": """
        print("starting")
        x = 1 / 0
        def handler(event, context):
            return 1
    """})
    ftype, meta, body = recv_frame(rt.sock)
    assert ftype == INIT_ERROR
    assert meta == {"error_type": "ImportModuleError",
                    "message": "ZeroDivisionError: division by zero"}
    assert rt.wait() == 1
    assert "starting" in rt.stdout()
    err = rt.stderr()
    assert "ZeroDivisionError" in err and 'main.py", line 3' in err


def test_syntax_error_and_missing_module_are_import_errors(start):
    rt = start({"main.py": "def handler(:\n"})
    ftype, meta, _ = recv_frame(rt.sock)
    assert (ftype, meta["error_type"]) == (INIT_ERROR, "ImportModuleError")
    assert meta["message"].startswith("SyntaxError: ")
    assert rt.wait() == 1

    rt = start(ECHO, handler="nope.handler")
    ftype, meta, _ = recv_frame(rt.sock)
    assert (ftype, meta["error_type"]) == (INIT_ERROR, "ImportModuleError")
    assert meta["message"] == "ModuleNotFoundError: No module named 'nope'"
    assert rt.wait() == 1


@pytest.mark.parametrize("handler,files", [
    ("main.missing", ECHO),
    ("main.VALUE", {"main.py": "VALUE = 3\n"}),
    ("nodot", ECHO),
])
def test_bad_handler_attribute_is_handler_not_found(start, handler, files):
    rt = start(files, handler=handler)
    ftype, meta, _ = recv_frame(rt.sock)
    assert (ftype, meta["error_type"]) == (INIT_ERROR, "HandlerNotFound")
    assert meta["message"]
    assert rt.wait() == 1


@pytest.mark.parametrize("handler", ["lib/api/routes.handle", "lib.api.routes.handle"])
def test_handler_in_a_folder(start, handler):
    rt = start_ready(start, {"lib/api/routes.py": """
        from . import helper
        def handle(event, context):
            return helper.shout(event)
    """, "lib/api/helper.py": """
        def shout(s):
            return s.upper()
    """}, handler=handler)
    assert rt.invoke(b"hey")[2] == b"HEY"


def test_http_event_shape(start):
    rt = start_ready(start, ECHO)
    ftype, meta, body = rt.http("POST", "/items/1", {"a": "1,2"},
                                {"content-type": "text/plain", "x-k": "v"}, b"caf\xc3\xa9")
    assert (ftype, meta["content_type"]) == (RESULT, "application/json")
    assert json.loads(body) == {"method": "POST", "path": "/items/1", "query": {"a": "1,2"},
                                "headers": {"content-type": "text/plain", "x-k": "v"},
                                "body": "café", "isBase64Encoded": False}
    ftype, _, body = rt.http("PUT", "/", body=b"\x00\xff\xfe")
    event = json.loads(body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff\xfe"
    event = json.loads(rt.http()[2])
    assert (event["method"], event["body"], event["isBase64Encoded"]) == ("GET", "", False)


def test_http_status_code_answer(start):
    rt = start_ready(start, {"main.py": """
        import base64
        def handler(event, context):
            kind = event["path"]
            if kind == "/b64":
                return {"statusCode": 201, "headers": {"X-Id": 7, "Content-Type": "image/png"},
                        "body": base64.b64encode(b"\\x89PNG\\x00").decode(),
                        "isBase64Encoded": True}
            if kind == "/json":
                return {"statusCode": "404", "body": {"missing": True}}
            if kind == "/text":
                return {"statusCode": 302, "headers": {"Location": "/x"}, "body": "moved"}
            if kind == "/empty":
                return {"statusCode": 204}
            if kind == "/bad":
                return {"statusCode": 99}
            return {"plain": "dict"}
    """})
    assert rt.http(path="/b64") == (RESULT, {"content_type": "image/png", "status": 201,
                                             "headers": {"X-Id": "7"}}, b"\x89PNG\x00")
    assert rt.http(path="/json") == (RESULT, {"content_type": "application/json",
                                              "status": 404}, b'{"missing":true}')
    assert rt.http(path="/text") == (RESULT, {"content_type": "text/plain; charset=utf-8",
                                              "status": 302, "headers": {"Location": "/x"}},
                                     b"moved")
    assert rt.http(path="/empty")[:3:2] == (RESULT, b"")
    assert rt.http(path="/empty")[1]["status"] == 204
    assert rt.http(path="/bad")[:2] == (ERROR, {"error_type": "MarshalError",
                                                "message": "statusCode 99 is outside 200-599"})
    assert rt.http(path="/other") == (RESULT, {"content_type": "application/json"},
                                      b'{"plain":"dict"}')


def test_status_code_dict_is_plain_json_outside_http(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {"statusCode": 201, "body": "x"}
    """})
    assert rt.invoke() == (RESULT, {"content_type": "application/json"},
                           b'{"statusCode":201,"body":"x"}')


def test_output_is_flushed_before_the_answer(start):
    rt = start_ready(start, {"main.py": """
        import sys
        def handler(event, context):
            print("line one")
            print("partial without newline", end="")
            sys.stderr.write("to stderr")
            return "ok"
    """})
    assert rt.invoke()[0] == RESULT
    assert rt.stdout() == "line one\npartial without newline"
    assert rt.stderr() == "to stderr"


def test_printed_lines_reach_the_pipe_while_the_handler_runs(start):
    rt = start_ready(start, {"main.py": """
        import os, time
        def handler(event, context):
            print("waiting for", event)
            while not os.path.exists(event):
                time.sleep(0.01)
            return "done"
    """})
    go = os.path.join(tempfile.gettempdir(), "hearth-pyrt-go-%d" % os.getpid())
    rt.sock.sendall(encode_frame(INVOKE, {"request_id": "r", "trigger": "invoke"},
                                 json.dumps(go).encode()))
    try:
        ready, _, _ = select.select([rt.proc.stdout], [], [], TIMEOUT_S)
        assert ready, "a printed line stayed buffered while the handler was running"
        assert os.read(rt.proc.stdout.fileno(), 4096) == ("waiting for %s\n" % go).encode()
        open(go, "w").close()
        assert recv_frame(rt.sock)[:3:2] == (RESULT, b"done")
    finally:
        if os.path.exists(go):
            os.unlink(go)


def test_unencodable_result_is_marshal_error(start):
    rt = start_ready(start, {"main.py": """
        def handler(event, context):
            return {1, 2} if event == "set" else float("nan") if event == "nan" else "ok"
    """})
    ftype, meta, _ = rt.invoke(b"set")
    assert (ftype, meta["error_type"]) == (ERROR, "MarshalError")
    assert "set" in meta["message"]
    assert rt.invoke(b"nan")[1]["error_type"] == "MarshalError"
    assert rt.invoke(b"fine")[:3:2] == (RESULT, b"ok")


def test_eof_on_fd3_exits_0(start):
    rt = start_ready(start, ECHO)
    rt.sock.shutdown(socket.SHUT_WR)
    assert rt.wait() == 0


def test_system_exit_in_handler_ends_the_process(start):
    rt = start_ready(start, {"main.py": """
        import sys
        def handler(event, context):
            sys.exit(3)
    """})
    rt.sock.sendall(encode_frame(INVOKE, {"request_id": "r", "trigger": "invoke"}))
    with pytest.raises(EOFError):
        recv_frame(rt.sock)
    assert rt.wait() == 3


@pytest.mark.parametrize("frame", [
    b"X" + encode_frame(INVOKE)[1:],  # bad magic
    encode_frame(READY),              # a type the daemon never sends
    encode_frame(9),                  # unknown type
    HEADER.pack(0x48, INVOKE, 1, 0, 0),  # non-zero flags
])
def test_protocol_violation_exits_2(start, frame):
    rt = start_ready(start, ECHO)
    rt.sock.sendall(frame)
    assert rt.wait() == 2
    assert "protocol error" in rt.stderr()
