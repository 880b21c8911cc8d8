"""The exec runtime: any executable, one process per request, CGI-style.
The event arrives on stdin, stdout is the answer, stderr is the function's
log, and a non-zero exit is a 500 with the tail of stderr. The executable
runs even when it arrived without an execute bit."""

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import assert_error, targz

ECHO = "#!/bin/sh\necho \"to the log\" >&2\nprintf 'hello %s' \"$(cat)\"\n"


def deploy_exec(h, name, files, handler="run.sh", **settings):
    return h.deploy_ok(name, files=files, handler=handler, runtime="exec", **settings)


def test_runtimes_list_exec_as_usable(hearth):
    """GET /v1/runtimes lists exec beside python3, with a version."""
    rts = {r["name"]: r for r in hearth.get("/v1/runtimes").json()["runtimes"]}
    assert rts["exec"]["usable"] is True and rts["exec"]["version"], rts


def test_script_without_execute_bit_answers_from_stdout(hearth):
    """Files sent as JSON text carry no mode; the script still runs, gets
    the event on stdin, and its stdout is the answer (text: text/plain)."""
    deploy_exec(hearth, "ex-echo", {"run.sh": ECHO})
    r = hearth.invoke("ex-echo", data=b"world")
    assert r.status_code == 200, r.text
    assert r.text == "hello world"
    assert r.headers["Content-Type"].startswith("text/plain")
    rid = r.headers["X-Request-Id"]
    lines = [rec for rec in hearth.log_records("ex-echo") if rec["message"] == "to the log"]
    assert lines and lines[0]["request_id"] == rid and lines[0]["stream"] == "stderr", lines


def test_json_output_is_json(hearth):
    """An answer that parses as JSON is served as application/json."""
    deploy_exec(hearth, "ex-json", {"run.sh": "#!/bin/sh\necho '{\"ok\": true}'\n"})
    r = hearth.invoke_ok("ex-json", json={})
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"ok": True}


def test_nonzero_exit_is_500_with_stderr_tail(hearth):
    """exit 3 answers 500 function_error naming the status and the end of
    stderr; the next call runs a fresh process and works."""
    deploy_exec(hearth, "ex-fail", {"run.sh": "#!/bin/sh\nread x\n"
                                              "[ \"$x\" = ok ] && { echo fine; exit 0; }\n"
                                              "echo \"bad input: $x\" >&2\nexit 3\n"})
    err = assert_error(hearth.invoke("ex-fail", data=b"nope"), 500, "function_error")
    assert err["type"] == "ExitStatus" and "exit status 3" in err["message"], err
    assert "bad input: nope" in err["message"], err
    assert hearth.invoke_ok("ex-fail", data=b"ok\n").text.strip() == "fine"


def test_a_process_per_request(hearth):
    """Each request runs its own process, with its request id in the
    environment beside the function's own settings."""
    deploy_exec(hearth, "ex-proc", {"run.sh": "#!/bin/sh\necho \"$$ $HEARTH_REQUEST_ID $GREETING\"\n"},
                env={"GREETING": "hi"})
    answers = [hearth.invoke_ok("ex-proc", data=b"") for _ in range(3)]
    fields = [a.text.split() for a in answers]
    assert len({f[0] for f in fields}) == 3, fields  # three processes
    assert [f[1] for f in fields] == [a.headers["X-Request-Id"] for a in answers]
    assert all(f[2] == "hi" for f in fields)


def test_sandboxed_like_any_worker(hearth):
    """The executable runs inside the worker's sandbox: own uid, no
    capabilities, no_new_privs, seccomp, the private root."""
    deploy_exec(hearth, "ex-sb", {"run.sh": "#!/bin/sh\n"
                                            "grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status\n"
                                            "ls /\n"})
    out = hearth.invoke_ok("ex-sb", data=b"").text
    status = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert int(status["CapEff"].strip(), 16) == 0, out
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2", out
    if os.geteuid() == 0 and not os.environ.get("HEARTH_E2E_ROOTLESS"):
        assert int(status["Uid"].split()[0]) >= 400000, out
    assert "work" not in out.split() and "root" not in out.split(), out


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler to build the binary")
def test_compiled_binary_in_an_archive(hearth):
    """A compiled program (what a Go or C build gives) in a .tar.gz runs as
    the handler."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "hello.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\nint main(void){int c,n=0;while((c=getchar())!=EOF)n++;'
                    'printf("read %d bytes",n);return 0;}\n')
        exe = os.path.join(tmp, "hello")
        subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
        with open(exe, "rb") as f:
            binary = f.read()
    archive = targz({"bin/hello": binary})
    r = hearth.deploy_raw("ex-bin", archive, "application/gzip", runtime="exec",
                          handler="bin/hello")
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("ex-bin", data=b"12345").text == "read 5 bytes"


def test_http_trigger_gets_the_request_as_json(hearth):
    """Behind /fn/, stdin holds the HTTP event as JSON, and a JSON answer with
    statusCode/headers/body sets the HTTP answer."""
    deploy_exec(hearth, "ex-http", {"run.sh": "#!/bin/sh\nin=$(cat)\n"
                                              "case \"$in\" in *'\"method\": \"PUT\"'*) m=put;; *) m=other;; esac\n"
                                              "printf '{\"statusCode\": 201, \"body\": \"%s\"}' \"$m\"\n"})
    r = hearth.request("PUT", "/fn/ex-http/things", data=b"x")
    assert r.status_code == 201, r.text
    assert r.text == "put"


def test_bad_handlers(hearth):
    """A handler outside the package is refused at deploy; one that names no
    file fails the call with init_error."""
    r = hearth.deploy("ex-bad", files={"run.sh": ECHO}, handler="../etc/passwd", runtime="exec")
    assert_error(r, 400, "invalid_field")
    r = hearth.deploy("ex-bad", files={"run.sh": ECHO}, handler="/bin/sh", runtime="exec")
    err = assert_error(r, 400, "invalid_field")
    # Not "handler is required": it says what a handler is, and how to run /bin/sh.
    assert "relative path inside the package" in err["message"], err
    assert "#! line" in err["message"] and "required" not in err["message"], err
    r = hearth.deploy("ex-bad", files={"run.sh": ECHO}, handler="", runtime="exec")
    assert "e.g. run.sh" in assert_error(r, 400, "invalid_field")["message"]
    hearth.deploy_ok("ex-missing", files={"run.sh": ECHO}, handler="nope.sh", runtime="exec",
                     timeout_ms=5000)
    err = assert_error(hearth.invoke("ex-missing", data=b""), 500, "init_error")
    assert "nope.sh" in err["message"], err


def test_awk_script(hearth):
    """Debian's /usr/bin/awk is a link through /etc/alternatives, which the
    sandbox's /etc has (read-only)."""
    deploy_exec(hearth, "ex-awk", {"run.awk": "#!/usr/bin/awk -f\n{ print \"awk saw \" $2 }\n"},
                handler="run.awk")
    r = hearth.invoke("ex-awk", data=b"one two three")
    assert r.status_code == 200 and r.text == "awk saw two\n", r.text


def test_missing_interpreter_is_named(hearth):
    """execve's ENOENT for a script means its #! interpreter is missing:
    the error names that file, not the script."""
    deploy_exec(hearth, "ex-nointerp", {"run.sh": "#!/usr/bin/hearth-no-such-shell\necho hi\n"})
    err = assert_error(hearth.invoke("ex-nointerp", data=b""), 500, "function_error")
    assert err["type"] == "ExecError", err
    assert err["message"].startswith("interpreter /usr/bin/hearth-no-such-shell not found"), err
    assert "run.sh" in err["message"], err


def test_timeout_kills_the_process(hearth):
    """A program past timeout_ms answers 504 like any function."""
    deploy_exec(hearth, "ex-slow", {"run.sh": "#!/bin/sh\nsleep 30\n"}, timeout_ms=500)
    assert_error(hearth.invoke("ex-slow", data=b""), 504, "timeout")
