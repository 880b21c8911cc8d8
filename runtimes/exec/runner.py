"""Hearth exec runtime: any executable, one process per request, CGI-style.

It is appended to the python3 runtime's bootstrap.py (which speaks the
worker protocol) and reuses its loop. Per request it runs the function's
executable with the event on stdin; stdout is the answer, stderr goes to
the function's log, and a non-zero exit answers 500 with the tail of
stderr.

Owns: finding the executable in the package (HEARTH_HANDLER, a path inside
it) and making it runnable, and turning one process run into one answer.
Must never: run anything outside the package, keep state between requests
(a process per request is the point), or block on a pipe it does not read.
Standard library only.
"""

import errno
import stat
import subprocess

EXEC_DIR = "/tmp/.hearth-exec"  # the writable copy of an executable that came without +x
STDERR_TAIL = 2048


def load_executable(handler):
    """The path to run for HEARTH_HANDLER: the package's file itself when it
    may be executed, else a copy in /tmp with the execute bit (files sent as
    JSON text carry no mode, and /var/task is read-only)."""
    if not handler or handler.startswith("/") or ".." in handler.split("/"):
        init_error("HandlerNotFound", "handler %r is not a path inside the package" % handler)
    path = os.path.join("/proc/self/cwd", handler)
    try:
        st = os.stat(path)
    except OSError as exc:
        init_error("HandlerNotFound", "%s: %s" % (handler, exc_message(exc)))
    if not stat.S_ISREG(st.st_mode):
        init_error("HandlerNotFound", "%s is not a regular file" % handler)
    if os.access(path, os.X_OK):
        return path
    try:
        os.makedirs(EXEC_DIR, mode=0o700, exist_ok=True)
        copy = os.path.join(EXEC_DIR, os.path.basename(handler))
        with open(path, "rb") as src, open(copy, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
        os.chmod(copy, 0o700)
    except OSError as exc:
        init_error("HandlerNotFound", "cannot make %s executable: %s" % (handler, exc_message(exc)))
    return copy


def exec_failure(path, handler, exc):
    """Why the kernel would not run `path` (the package's `handler`), naming
    the file that is really missing: ENOENT for a file that exists means its
    #! interpreter (or an ELF binary's loader) is not in the sandbox."""
    if isinstance(exc, FileNotFoundError) and os.path.exists(path):
        try:
            with open(path, "rb") as f:
                first = f.readline(256)
        except OSError:
            first = b""
        if first.startswith(b"#!"):
            words = first[2:].strip().split()
            interp = words[0].decode("utf-8", "replace") if words else ""
            if not interp:
                return "%s has an empty #! line" % handler
            return ("interpreter %s not found (the #! line of %s); the sandbox has the host's "
                    "/usr and /lib* only" % (interp, handler))
        return ("%s cannot run here: a program it needs to start (its ELF interpreter) is not "
                "in the sandbox" % handler)
    if isinstance(exc, OSError) and exc.errno == errno.ENOEXEC:
        return "%s is neither a binary this machine runs nor a script with a #! line" % handler
    return "cannot run %s: %s" % (handler, exc_message(exc))


def content_type_of(data):
    """JSON when it parses as JSON, text when it is UTF-8, else bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return BINARY_TYPE
    try:
        json.loads(text)
        return JSON_TYPE
    except ValueError:
        return TEXT_TYPE


def run_env(meta):
    env = dict(os.environ)
    env["HEARTH_REQUEST_ID"] = str(meta.get("request_id", ""))
    env["HEARTH_DEADLINE_MS"] = str(meta.get("deadline_ms", ""))
    env["HEARTH_TRIGGER"] = str(meta.get("trigger", ""))
    # Asynchronous invocations: the id every attempt shares ("" for a
    # synchronous call, so that no value from elsewhere shows through) and
    # the attempt, from 1.
    invocation_id = meta.get("invocation_id")
    env["HEARTH_INVOCATION_ID"] = str(invocation_id) if invocation_id is not None else ""
    env["HEARTH_ATTEMPT"] = str(attempt_of(meta))
    return env


def answer_exec(meta, body, path):
    """Runs the executable once: the event on stdin (for /fn/ the HTTP event
    as JSON), stdout back as the answer."""
    event = body
    if meta.get("trigger") == "http":
        event = json.dumps(make_event(meta, body)).encode()
    try:
        run = subprocess.run([path], input=event, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=run_env(meta), cwd="/proc/self/cwd")
    except OSError as exc:
        message = exec_failure(path, os.environ.get("HEARTH_HANDLER", path), exc)
        sys.stderr.write("hearth: %s\n" % message)
        return ERROR, encode_meta({"error_type": "ExecError", "message": message}), b""
    if run.stderr:
        sys.stderr.buffer.write(run.stderr)
        sys.stderr.flush()
    if run.returncode != 0:
        how = ("exit status %d" % run.returncode if run.returncode > 0
               else "killed by signal %d" % -run.returncode)
        tail = run.stderr[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        message = how + (": " + tail if tail else "")
        return ERROR, encode_meta({"error_type": "ExitStatus", "message": message}), b""
    if meta.get("trigger") == "http":
        try:
            result = json.loads(run.stdout.decode("utf-8"))
        except ValueError:
            result = run.stdout
        return result_frame(meta, result)
    return RESULT, encode_meta({"content_type": content_type_of(run.stdout)}), run.stdout


def main():
    serve("exec", load_executable, answer_exec)


if __name__ == "__main__" and globals().get("HEARTH_RUNTIME") == "exec":
    main()
