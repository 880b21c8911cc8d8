"""Hearth lambda runtime: the AWS Lambda Runtime API, served to a function
that brings its own `bootstrap` (as on AWS's provided.* runtimes).

It is appended to the python3 runtime's bootstrap.py (the worker protocol)
and to exec/runner.py (finding and readying an executable). It starts the
package's `bootstrap` with AWS_LAMBDA_RUNTIME_API pointing at an HTTP/1.1
server on 127.0.0.1 (the worker's own loopback, or with "network": "host"
the host's, where every local user can connect: so a connection is served
only when a process of this sandbox made it, see peer_in_sandbox), and
turns the documented calls into frames on fd 3:
  GET  /2018-06-01/runtime/invocation/next           -> READY (first time), then waits for INVOKE;
                                                        AWS's headers plus Lambda-Runtime-Hearth-*
  POST /2018-06-01/runtime/invocation/{id}/response  -> RESULT
  POST /2018-06-01/runtime/invocation/{id}/error     -> ERROR
  POST /2018-06-01/runtime/init/error                -> INIT_ERROR, and the worker ends

Owns: that server, the bootstrap process, and the reserved environment
variables AWS documents for a function. Must never: listen anywhere but
127.0.0.1, read a request from a connection that no process of this
sandbox made, answer an invocation that is not the one in flight, or
outlive the bootstrap (when it exits, so does the worker). Standard
library only.
"""

import http.server
import socket
import threading
import time

API = "/2018-06-01/runtime"
MAX_RESPONSE = 6 << 20  # Lambda's synchronous payload limit
REGION = "us-east-1"


class RuntimeApi:
    """The one invocation in flight, shared by the HTTP handlers."""

    def __init__(self):
        self.lock = threading.Lock()  # one frame exchange at a time, whatever the connection
        self.ready_sent = False
        self.current = None  # request id of the invocation handed out, until answered
        self.meta = None


STATE = RuntimeApi()


def lambda_error(handler, status, error_type, message):
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def accepted(handler):
    body = b'{"status":"OK"}'
    handler.send_response(202)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def function_arn():
    return "arn:aws:lambda:%s:000000000000:function:%s" % (
        os.environ.get("AWS_REGION", REGION), os.environ.get("HEARTH_FUNCTION_NAME", ""))


def trace_id(request_id):
    digits = request_id.replace("-", "")
    return "Root=1-%08x-%s;Parent=%s;Sampled=0" % (int(time.time()), digits[:24], digits[-16:])


def error_frame(handler, body):
    """ERROR meta from an invocation/error or init/error call: the
    Lambda-Runtime-Function-Error-Type header, else errorType in the body."""
    try:
        doc = json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    error_type = (handler.headers.get("Lambda-Runtime-Function-Error-Type")
                  or doc.get("errorType") or "Unhandled")
    message = doc.get("errorMessage") or body.decode("utf-8", "replace")
    return encode_meta({"error_type": str(error_type)[:256], "message": str(message)[:MAX_MESSAGE]})


def tcp_hex(host, port):
    """An address as /proc/net/tcp{,6} prints it: the address's 32-bit words
    in host byte order, then the port."""
    try:
        raw = socket.inet_pton(socket.AF_INET, host)
    except OSError:
        raw = socket.inet_pton(socket.AF_INET6, host)
    words = struct.unpack("=%dI" % (len(raw) // 4), raw)
    return "".join("%08X" % w for w in words) + ":%04X" % port


def client_inode(peer, server):
    """The inode of the client's end of the connection peer -> server, from
    the kernel's socket tables, or None; None too when the socket's owner is
    not this process's uid. An IPv6 client reaches 127.0.0.1 as
    ::ffff:127.0.0.1 and is listed in tcp6."""
    for table, wrap in (("/proc/net/tcp", ""), ("/proc/net/tcp6", "::ffff:")):
        want = " %s %s " % (tcp_hex(wrap + peer[0], peer[1]), tcp_hex(wrap + server[0], server[1]))
        try:
            with open(table) as f:
                text = f.read()  # with the host's network, the host's table: search it whole
        except OSError:
            continue
        at = text.find(want)
        if at < 0:
            continue
        # local, remote, state, queues, timers, retransmits, uid, timeout, inode
        fields = text[at:text.find("\n", at)].split()
        # Socket inode numbers come from a 32-bit counter that wraps: a
        # user who churns sockets could land on the number of one the
        # bootstrap holds. Its socket shows another uid (an unmapped one
        # shows as the overflow uid), unless both are nobody.
        if len(fields) > 8 and fields[8] != "0" and fields[6] == str(os.getuid()):
            return fields[8]
        return None
    return None


def peer_in_sandbox(peer, server):
    """Whether a process of this sandbox holds the client end of the
    connection. /proc is this pid namespace's, so a host process, another
    worker or another user never shows up in it, whatever the network; the
    kernel names the socket's holders, so there is no secret to steal. A
    bootstrap process that made itself non-dumpable hides its fds and is
    refused too."""
    inode = client_inode(peer, server)
    if inode is None:
        return False
    target = "socket:[%s]" % inode
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    return True
            except OSError:
                pass
    return False


REFUSED_BODY = json.dumps({"errorMessage": "the Runtime API answers only the processes of "
                                           "this function's sandbox",
                           "errorType": "AccessDenied"}).encode()
REFUSED = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(REFUSED_BODY)) + REFUSED_BODY


class RuntimeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def verify_request(self, request, client_address):
        """Runs on accept, before a byte of the request is read."""
        if peer_in_sandbox(client_address, self.server_address):
            return True
        try:
            request.send(REFUSED, socket.MSG_DONTWAIT)  # a hint for a refused bootstrap; best effort
        except OSError:
            pass
        return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service

    def log_message(self, fmt, *args):  # the function's log is for the function
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        if self.path != API + "/invocation/next":
            return lambda_error(self, 404, "NotFound", "no such path: %s" % self.path)
        with STATE.lock:
            frame = self.next_invocation()
        if frame is None:
            flush_output()
            os._exit(0)
        meta, event = frame
        if meta.get("trigger") == "http":
            event = json.dumps(make_event(meta, event)).encode()
        STATE.current, STATE.meta = str(meta.get("request_id", "")), meta
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", STATE.current)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(meta.get("deadline_ms", 0)))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", function_arn())
        self.send_header("Lambda-Runtime-Trace-Id", trace_id(STATE.current))
        # Hearth's own: Lambda's context has no attempt, and its request id
        # is per attempt here. The id only for an asynchronous invocation.
        invocation_id = meta.get("invocation_id")
        if isinstance(invocation_id, str) and invocation_id.isprintable():  # no CR/LF in a header
            self.send_header("Lambda-Runtime-Hearth-Invocation-Id", invocation_id)
        self.send_header("Lambda-Runtime-Hearth-Attempt", str(attempt_of(meta)))
        self.end_headers()
        self.wfile.write(event)

    def next_invocation(self):
        if not STATE.ready_sent:
            flush_output()
            send(READY, encode_meta({"runtime": "lambda",
                                     "runtime_version": "%d.%d.%d" % sys.version_info[:3]}))
            STATE.ready_sent = True
            show_specialized_environment()  # bootstrap.py: off the cold start's path
        return read_invoke()  # the long poll: until the daemon sends a call

    def do_POST(self):
        with STATE.lock:
            self.post()

    def post(self):
        body = self.body()
        if self.path == API + "/init/error":
            flush_output()
            send(INIT_ERROR, error_frame(self, body))
            accepted(self)
            os._exit(1)
        parts = self.path[len(API):].split("/") if self.path.startswith(API) else []
        if len(parts) != 4 or parts[1] != "invocation" or parts[3] not in ("response", "error"):
            return lambda_error(self, 404, "NotFound", "no such path: %s" % self.path)
        if STATE.current is None or parts[2] != STATE.current:
            return lambda_error(self, 400, "InvalidRequestID",
                                "%s is not the invocation in flight" % parts[2])
        if parts[3] == "response" and len(body) > MAX_RESPONSE:
            return lambda_error(self, 413, "RequestEntityTooLarge",
                                "the response is %d bytes; at most %d" % (len(body), MAX_RESPONSE))
        meta, STATE.current = STATE.meta, None
        flush_output()
        if parts[3] == "error":
            send(ERROR, error_frame(self, body))
        elif meta.get("trigger") == "http":
            try:
                result = json.loads(body.decode("utf-8"))
            except ValueError:
                result = body
            send(*result_frame(meta, result))
        else:
            send(RESULT, encode_meta({"content_type": content_type_of(body)}), body)
        accepted(self)


def lambda_env(port):
    """The reserved variables AWS documents for a function's environment."""
    name = os.environ.get("HEARTH_FUNCTION_NAME", "")
    version = os.environ.get("HEARTH_FUNCTION_VERSION", "")
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % port,
        "_HANDLER": os.environ.get("HEARTH_HANDLER", ""),
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": os.environ.get("HEARTH_MEMORY_MB", ""),
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + name,
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/") + "[%s]%s" % (
            version, binascii.hexlify(os.urandom(16)).decode()),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": os.environ.get("AWS_REGION", REGION),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION",
                                             os.environ.get("AWS_REGION", REGION)),
        "TZ": ":UTC",
    })
    return env


def watch(proc):
    """The bootstrap is the function: when it ends, the worker ends with it."""
    code = proc.wait()
    flush_output()
    if not STATE.ready_sent:
        send(INIT_ERROR, encode_meta({"error_type": "Runtime.ExitError",
                                      "message": "bootstrap exited with %s before asking for "
                                                 "an invocation" % code}))
    os._exit(1)


def main_lambda():
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    specialize_if_prebuilt()  # bootstrap.py: a pre-built runtime waits for its function here
    path = load_executable("bootstrap")  # init_error when the package has none
    server = RuntimeServer(("127.0.0.1", 0), Handler)
    try:
        proc = subprocess.Popen([path], env=lambda_env(server.server_address[1]),
                                cwd="/proc/self/cwd", stdin=subprocess.DEVNULL)
    except OSError as exc:  # exec/runner.py names what is missing (a #! interpreter, say)
        init_error("Runtime.InvalidEntrypoint", exec_failure(path, "bootstrap", exc))
    threading.Thread(target=watch, args=(proc,), daemon=True).start()
    server.serve_forever()


main = main_lambda

if __name__ == "__main__" and globals().get("HEARTH_RUNTIME") == "lambda":
    main()
