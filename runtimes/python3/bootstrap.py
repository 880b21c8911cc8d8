"""Hearth python3 runtime: loads one user handler and serves the worker protocol.

Owns: the frames on fd 3 (docs/protocol.md is normative), turning INVOKE
frames into (event, context), and handler return values into RESULT frames.
Must never: write anything but frames to fd 3, answer before the function's
output on fd 1/2 is flushed, import per invocation, or rely on __file__,
sys.argv or absolute paths (it runs as `python3 -I -B -c <this file>` from a
read-only code directory). Standard library only.

Pre-built mode (HEARTH_PREBUILT=1 at start; docs/runtimes.md): everything
above is loaded before there is a function, then specialize_if_prebuilt()
waits for the SPECIALIZE frame that names the function's environment, and
show_environment() points /proc/<pid>/environ at it. The exec and lambda
runtimes are this file plus theirs, so they share it.
"""

import binascii
import json
import os
import struct
import sys
import time

FD = 3
HEADER = struct.Struct(">BBHII")  # magic, type, flags, meta_len, body_len
MAGIC = 0x48
READY, INVOKE, RESULT, ERROR, INIT_ERROR, SPECIALIZE = 1, 2, 3, 4, 5, 6
MAX_META = 1 << 20
MAX_BODY = 64 << 20
MAX_MESSAGE = 64 * 1024  # characters of an error message; keeps meta far below MAX_META
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BINARY_TYPE = "application/octet-stream"
TASK_DIR = "/var/task"  # where the sandbox mounts the code; fixed
EX_SOFTWARE = 70  # a pre-built runtime's first frame was not a well-formed SPECIALIZE


class MarshalError(Exception):
    """The handler's return value cannot be turned into a RESULT frame."""


class Context:
    """What the handler gets as its second argument; one per invocation."""

    __slots__ = ("request_id", "aws_request_id", "function_name", "function_version",
                 "memory_limit_in_mb", "invoked_function_arn", "deadline_ms",
                 "invocation_id", "attempt")

    def __init__(self, meta):
        self.request_id = self.aws_request_id = str(meta.get("request_id", ""))
        self.function_name = str(meta.get("function", ""))
        self.function_version = str(meta.get("version", ""))
        self.memory_limit_in_mb = int(meta.get("memory_mb", 0))
        self.invoked_function_arn = None
        self.deadline_ms = int(meta.get("deadline_ms", 0))
        # Asynchronous invocations only (trigger "async"): the id is the same
        # for every attempt, and attempt counts from 1. Delivery is at least
        # once, so a handler keys its side effects on invocation_id.
        invocation_id = meta.get("invocation_id")
        self.invocation_id = str(invocation_id) if invocation_id is not None else None
        self.attempt = attempt_of(meta)

    def get_remaining_time_in_millis(self):
        return max(0, self.deadline_ms - int(time.time() * 1000))


def attempt_of(meta):
    """The INVOKE's attempt number: 1 for a synchronous call or a missing or bad value."""
    attempt = meta.get("attempt", 1)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        return 1
    return attempt


def _advance(views, n):
    """Drops the first n bytes from a list of memoryviews (after a partial read or write)."""
    while n:
        if n >= len(views[0]):
            n -= len(views.pop(0))
        else:
            views[0] = views[0][n:]
            n = 0


def die(code, why):
    """Reports a protocol failure on stderr and exits without unwinding user code."""
    sys.__stderr__.write("hearth-python3: %s\n" % why)
    flush_output()
    os._exit(code)


def flush_output():
    # The daemon stamps output with the request in flight until the answer
    # frame arrives, so everything buffered must reach fd 1/2 before it.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def read_exact(bufs, eof_status=2):
    """Fills every bytearray in `bufs` from fd 3; returns False on EOF before
    the first byte, exits with eof_status on EOF after it."""
    views = [memoryview(b) for b in bufs if len(b)]
    started = False
    while views:
        try:
            n = os.readv(FD, views)
        except (ConnectionResetError, BrokenPipeError):
            n = 0
        if n == 0:
            if started:
                die(eof_status, "protocol error: EOF inside a frame")
            return False
        started = True
        _advance(views, n)
    return True


def read_invoke():
    """Returns (meta, body) of the next INVOKE, or None when the daemon closed fd 3."""
    header = bytearray(HEADER.size)
    if not read_exact([header]):
        return None
    magic, ftype, flags, meta_len, body_len = HEADER.unpack(header)
    if magic != MAGIC or flags != 0:
        die(2, "protocol error: bad frame header %s" % bytes(header).hex())
    if ftype != INVOKE:
        die(2, "protocol error: unexpected frame type %d" % ftype)
    if meta_len > MAX_META or body_len > MAX_BODY:
        die(2, "protocol error: frame too large (meta %d, body %d)" % (meta_len, body_len))
    meta, body = bytearray(meta_len), bytearray(body_len)
    if not read_exact([meta, body]):
        die(2, "protocol error: EOF inside a frame")
    try:
        meta = json.loads(meta.decode("utf-8")) if meta_len else {}
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        die(2, "protocol error: INVOKE metadata is not a JSON object")
    return meta, bytes(body)


def env_item_ok(item):
    """A "KEY=VALUE" a process environment can hold: a non-empty key, no NUL,
    and text that encodes (a lone surrogate from JSON would not)."""
    if not isinstance(item, str) or item.find("=") < 1 or "\0" in item:
        return False
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_specialize():
    """The environment list of the SPECIALIZE frame, the only frame a
    pre-built runtime may get first. Exits 0 on EOF (the sandbox was never
    claimed) and EX_SOFTWARE on anything else."""
    header = bytearray(HEADER.size)
    if not read_exact([header], EX_SOFTWARE):
        flush_output()
        os._exit(0)
    magic, ftype, flags, meta_len, body_len = HEADER.unpack(header)
    if (magic != MAGIC or ftype != SPECIALIZE or flags != 0 or body_len != 0
            or meta_len > MAX_META):
        die(EX_SOFTWARE, "pre-built: first frame is not a SPECIALIZE: header %s"
            % bytes(header).hex())
    meta = bytearray(meta_len)
    if not read_exact([meta], EX_SOFTWARE):
        die(EX_SOFTWARE, "pre-built: EOF inside the SPECIALIZE frame")
    try:
        env = json.loads(meta.decode("utf-8"))["env"]
    except (ValueError, TypeError, KeyError):
        env = None
    if not isinstance(env, list):
        die(EX_SOFTWARE, "pre-built: SPECIALIZE metadata is not an object with an \"env\" list")
    for item in env:
        if not env_item_ok(item):
            die(EX_SOFTWARE, "pre-built: SPECIALIZE env item %s is not KEY=VALUE"
                % ascii(item)[:200])
    return env


# /proc/<pid>/environ shows the memory range the kernel was last told of
# (exec's, or the template's): a pre-built runtime points it at a copy of
# its new environment, kept here for the life of the process.
PR_SET_MM, PR_SET_MM_MAP = 35, 14
_SHOWN_ENVIRON = None


def prctl_mm_api():
    """ctypes, libc and struct prctl_mm_map (<linux/prctl.h>), made before
    the wait so that none of it costs the cold start. None if unavailable."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel
        libc = ctypes.CDLL(None)
    except (ImportError, OSError):
        return None
    u64 = ctypes.c_uint64

    class PrctlMmMap(ctypes.Structure):  # pylint: disable=too-few-public-methods
        # 11 u64s, the auxv pointer, two u32s: 104 bytes on 64-bit Linux.
        _fields_ = [(name, u64) for name in (
            "start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
            "start_stack", "arg_start", "arg_end", "env_start", "env_end")] + [
            ("auxv", ctypes.c_void_p), ("auxv_size", ctypes.c_uint32),
            ("exe_fd", ctypes.c_uint32)]

    libc.prctl.restype = ctypes.c_int
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_ssize_t]
    return ctypes, libc, PrctlMmMap


def show_environment(api):
    """Points /proc/<pid>/environ at the current environment: one block of
    NUL-terminated "K=V" strings that is never freed, the rest of the mm map as
    /proc/self/stat (proc(5) numbering) and brk have it. Silent when the
    kernel refuses (no CONFIG_CHECKPOINT_RESTORE): the function runs, and
    /proc keeps showing the pre-built environment."""
    global _SHOWN_ENVIRON  # pylint: disable=global-statement
    if api is None:
        return
    ctypes, libc, PrctlMmMap = api
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()  # the name may hold ")"

        def field(n):
            return int(fields[n - 3])  # fields[0] is field 3, the state

        block = b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items())
        buf = ctypes.create_string_buffer(block, len(block))
        start = ctypes.addressof(buf)
        mm = PrctlMmMap(start_code=field(26), end_code=field(27), start_stack=field(28),
                        start_data=field(45), end_data=field(46), start_brk=field(47),
                        brk=libc.sbrk(0) or 0, arg_start=field(48), arg_end=field(49),
                        env_start=start, env_end=start + len(block), auxv=None,
                        auxv_size=0, exe_fd=0xFFFFFFFF)
    except (OSError, ValueError, IndexError):
        return
    if libc.prctl(PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm), ctypes.sizeof(mm), 0) == 0:
        _SHOWN_ENVIRON = buf


def prime_for_claim(api):
    """Runs, once, what a claim will run, while nobody waits: a template's
    clone shares its memory copy-on-write, so the first touch of each page
    of the interpreter's heap faults and copies it. Touched here, those
    faults leave the cold start's path. What it touches: every tracked
    object (gc.collect walks them all), the JSON codec, the compiler, the
    environment, and the /proc/<pid>/environ call on the current one."""
    import gc  # pylint: disable=import-outside-toplevel
    gc.collect()
    json.loads(json.dumps({"env": ["A=b"], "prebuilt": True}))
    prime_import()
    os.environ["HEARTH_PRIME"] = "1"
    del os.environ["HEARTH_PRIME"]
    show_environment(api)


PRIME_SOURCE = "def handler(event, context):\n    return event\n"


def prime_import():
    """Imports a module from a fresh folder, as the function's will be: a new
    path entry's finder, a source file read and compiled. The folder (in the
    sandbox's own /tmp) and every trace of it go again before the claim."""
    folder = "/tmp/.hearth-prime-%d" % os.getpid()
    name = "hearth_prime_module"
    try:
        os.mkdir(folder, 0o700)
    except OSError:
        return
    try:
        with open(os.path.join(folder, name + ".py"), "w", encoding="utf-8") as f:
            f.write(PRIME_SOURCE)
        sys.path.insert(0, folder)
        __import__(name)
    except (OSError, ImportError):
        pass
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
        sys.path_importer_cache.pop(folder, None)
        sys.modules.pop(name, None)
        try:
            os.unlink(os.path.join(folder, name + ".py"))
        except OSError:
            pass
        os.rmdir(folder)


_ENVIRON_TO_SHOW = None  # a specialised runtime's prctl api, until READY is sent


def show_specialized_environment():
    """After READY: points /proc/<pid>/environ at the function's environment,
    off the cold start's path (the daemon's first INVOKE waits for READY,
    and is read only after this)."""
    global _ENVIRON_TO_SHOW  # pylint: disable=global-statement
    if _ENVIRON_TO_SHOW is not None:
        show_environment(_ENVIRON_TO_SHOW)
        _ENVIRON_TO_SHOW = None


def specialize_if_prebuilt():
    """In a pre-built runtime, waits for SPECIALIZE, then becomes the
    function's worker: exactly its environment (os.environ's changes go to
    the C environ too, so child processes agree; /proc/<pid>/environ is
    pointed at it once READY is sent) and the code folder, mounted over /var/task after this
    process first entered it. Nothing read from the environment may be kept
    from before this call."""
    if os.environ.get("HEARTH_PREBUILT") != "1":
        return
    api = prctl_mm_api()
    prime_for_claim(api)
    send(READY, b'{"prebuilt":true}')  # loaded: the daemon may hand it a function now
    env = read_specialize()
    os.environ.clear()
    for item in env:
        key, _, value = item.partition("=")
        os.environ[key] = value
    global _ENVIRON_TO_SHOW  # pylint: disable=global-statement
    _ENVIRON_TO_SHOW = api
    try:
        os.chdir(TASK_DIR)
    except OSError as exc:
        die(EX_SOFTWARE, "pre-built: cannot enter %s: %s" % (TASK_DIR, exc))


def encode_meta(meta):
    # "replace" turns lone surrogates (e.g. from surrogateescape) into "?":
    # the daemon only accepts valid UTF-8.
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def send(ftype, meta, body=b""):
    """Writes one frame (meta already encoded) with writev, looping only on partial writes."""
    views = [memoryview(HEADER.pack(MAGIC, ftype, 0, len(meta), len(body))),
             memoryview(meta), memoryview(body)]
    views = [v for v in views if len(v)]
    try:
        while views:
            _advance(views, os.writev(FD, views))
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)  # the daemon is gone: same as EOF


def exc_message(exc):
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable %s>" % type(exc).__name__
    return text[:MAX_MESSAGE]


def print_traceback(exc, skip_frames=0):
    """Prints exc to stderr without the runtime's own frames."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb
    try:
        # The interpreter's C printer, not the traceback module: importing that
        # costs several ms of every cold start.
        sys.__excepthook__(type(exc), exc.with_traceback(tb), tb)
    except Exception:
        pass


def init_error(error_type, message):
    flush_output()
    send(INIT_ERROR, encode_meta({"error_type": error_type, "message": message[:MAX_MESSAGE]}))
    os._exit(1)  # not sys.exit: threads the module may have started must not keep us alive


def load_handler(spec):
    """Imports the handler named by HEARTH_HANDLER once; answers INIT_ERROR and exits on failure."""
    module_name, _, func_name = spec.rpartition(".")
    module_name = module_name.replace("/", ".").strip(".")
    if not module_name or not func_name:
        init_error("HandlerNotFound", "handler %r is not of the form module.function" % spec)
    try:
        __import__(module_name)  # the C import path hides importlib's own frames
        module = sys.modules[module_name]
    except Exception as exc:
        print_traceback(exc, skip_frames=1)
        init_error("ImportModuleError", "%s: %s" % (type(exc).__name__, exc_message(exc)))
    func = getattr(module, func_name, None)
    if func is None:
        init_error("HandlerNotFound", "module %r has no attribute %r" % (module_name, func_name))
    if not callable(func):
        init_error("HandlerNotFound", "%s.%s is not callable" % (module_name, func_name))
    return func


def make_event(meta, body):
    http = meta.get("http") if meta.get("trigger") == "http" else None
    if isinstance(http, dict):
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = binascii.b2a_base64(body, newline=False).decode("ascii"), True
        event = {"method": http.get("method", ""), "path": http.get("path", "/"),
                 "query": http.get("query", {}), "headers": http.get("headers", {}),
                 "body": text, "isBase64Encoded": encoded}
        if "resource" in http:  # a call through one of the function's routes
            event["resource"] = http["resource"]
            event["pathParameters"] = http.get("pathParameters")
        return event
    if not body:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    try:
        return json.loads(text)
    except ValueError:
        return text


def to_json(value):
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise MarshalError("%s is not JSON serializable: %s" % (type(value).__name__, exc))


def encode_plain(result):
    """Returns (content_type, body) for a return value that is not an HTTP answer."""
    if isinstance(result, str):
        try:
            return TEXT_TYPE, result.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MarshalError("str result is not valid Unicode: %s" % exc)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return BINARY_TYPE, bytes(result)
    return JSON_TYPE, to_json(result)


def encode_http(result):
    """Returns the RESULT meta and body for a {"statusCode": ...} answer."""
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError) as exc:
        raise MarshalError("statusCode must be an integer: %s" % exc)
    if not 200 <= status <= 599:
        raise MarshalError("statusCode %d is outside 200-599" % status)
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise MarshalError("headers must be an object")
    headers, content_type = {}, None
    for name, value in raw_headers.items():
        if str(name).lower() == "content-type":
            content_type = str(value)
        else:
            headers[str(name)] = str(value)
    body = result.get("body")
    if body is None:
        default_type, data = TEXT_TYPE, b""
    elif isinstance(body, str) and result.get("isBase64Encoded"):
        try:
            default_type, data = BINARY_TYPE, binascii.a2b_base64(body, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise MarshalError("body is not valid base64: %s" % exc)
    elif isinstance(body, (str, bytes, bytearray, memoryview)):
        default_type, data = encode_plain(body)
    else:
        default_type, data = JSON_TYPE, to_json(body)
    meta = {"content_type": content_type or default_type, "status": status}
    if headers:
        meta["headers"] = headers
    return meta, data


def encode_result(meta, result):
    if meta.get("trigger") == "http" and isinstance(result, dict) and "statusCode" in result:
        return encode_http(result)
    content_type, data = encode_plain(result)
    return {"content_type": content_type}, data


def answer(meta, body, handler):
    """Runs the handler for one INVOKE; returns the frame (type, encoded meta, body) to send."""
    try:
        result = handler(make_event(meta, body), Context(meta))
    except Exception as exc:
        print_traceback(exc, skip_frames=1)
        return ERROR, encode_meta({"error_type": type(exc).__name__,
                                   "message": exc_message(exc)}), b""
    return result_frame(meta, result)


def result_frame(meta, result):
    """The RESULT frame for a handler's return value, or an ERROR frame when
    it cannot be one."""
    try:
        out_meta, data = encode_result(meta, result)
        out_meta = encode_meta(out_meta)
        if len(out_meta) > MAX_META:
            raise MarshalError("response headers exceed %d bytes" % MAX_META)
        if len(data) > 0xFFFFFFFF:
            raise MarshalError("response of %d bytes does not fit a frame" % len(data))
        return RESULT, out_meta, data
    except MarshalError as exc:
        sys.__stderr__.write("MarshalError: %s\n" % exc)
        return ERROR, encode_meta({"error_type": "MarshalError",
                                   "message": exc_message(exc)}), b""


def serve(runtime, load, respond):
    """The protocol loop, for this runtime and for those built on it (exec):
    load(HEARTH_HANDLER) once, READY, then respond(meta, body, loaded) ->
    (frame type, meta, body) per INVOKE, until fd 3 closes."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.reconfigure(line_buffering=True)
    try:
        os.fstat(FD)
    except OSError:
        die(2, "fd %d is not open: this program runs under hearthd (see docs/protocol.md)" % FD)
    specialize_if_prebuilt()
    # The import system makes every sys.path entry absolute, and the absolute
    # ancestors of the code folder may not be searchable by this uid. The
    # magic link /proc/self/cwd reaches the folder without walking them.
    sys.path.insert(0, "/proc/self/cwd" if os.path.isdir("/proc/self/cwd") else ".")
    loaded = load(os.environ.get("HEARTH_HANDLER", ""))
    version = "%d.%d.%d" % sys.version_info[:3]
    flush_output()
    send(READY, encode_meta({"runtime": runtime, "runtime_version": version}))
    show_specialized_environment()
    while True:
        frame = read_invoke()
        if frame is None:
            flush_output()
            os._exit(0)  # skip interpreter teardown: nothing left to do
        ftype, out_meta, data = respond(frame[0], frame[1], loaded)
        flush_output()
        send(ftype, out_meta, data)


def main():
    serve("python3", load_handler, answer)


# A runtime built on this one (runtimes.c puts its program after this one,
# and names it in HEARTH_RUNTIME) starts the loop itself.
if __name__ == "__main__" and globals().get("HEARTH_RUNTIME", "python3") == "python3":
    main()
