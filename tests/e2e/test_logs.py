"""Issue point 7 (Logs): capture with time/stream/version/request id, tail,
ndjson, filters, follow (chunked, until the client hangs up), restart,
retention, and a 100 MB flood that must not hurt the daemon or others."""

import datetime
import os
import re
import socket
import time
import uuid

import pytest

from conftest import Background, assert_error, dir_bytes, py, vmrss_kib, wait_until

PRINTER = py("""
    import sys
    print("import-line")

    def handler(event, context):
        tag = event.get("tag", "t") if isinstance(event, dict) else "t"
        for i in range(event.get("n", 1) if isinstance(event, dict) else 1):
            print("%s out %d" % (tag, i))
        sys.stderr.write("%s err\\n" % tag)
        if isinstance(event, dict) and event.get("long"):
            print("L" * event["long"])
        return "ok"
""")
TEXT_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) v(\d+) (stdout|stderr) (.*)$")


@pytest.fixture(scope="module")
def printer(hearth):
    return hearth.deploy_ok("lg-print", PRINTER)


def test_lines_are_captured_with_stream_version_and_request(hearth, printer):
    tag = uuid.uuid4().hex[:8]
    r = hearth.invoke_ok("lg-print", json={"tag": tag, "n": 2})
    rid = r.headers["X-Request-Id"]
    text = hearth.logs("lg-print", request_id=rid)
    assert text.status_code == 200, text.text
    assert text.headers["Content-Type"].startswith("text/plain")
    lines = text.text.splitlines()
    parsed = [TEXT_LINE.match(l) for l in lines]
    assert all(parsed), "lines not in 'TIME REQUEST_ID vVERSION STREAM MESSAGE' form: %s" % lines
    got = {(m.group(2), m.group(3), m.group(4), m.group(5)) for m in parsed}
    v = str(printer["version"])
    assert got == {(rid, v, "stdout", tag + " out 0"), (rid, v, "stdout", tag + " out 1"),
                   (rid, v, "stderr", tag + " err")}, lines
    outs = [m.group(5) for m in parsed if m.group(4) == "stdout"]
    assert outs == [tag + " out 0", tag + " out 1"], "stdout order lost: %s" % lines


def test_import_time_lines_have_no_request(hearth, printer):
    hearth.invoke_ok("lg-print", json={})
    lines = [l for l in hearth.logs("lg-print").text.splitlines() if l.endswith(" import-line")]
    assert lines, hearth.logs("lg-print").text[-2000:]
    m = TEXT_LINE.match(lines[0])
    assert m and m.group(2) == "-" and m.group(4) == "stdout", lines[0]


def test_ndjson_fields(hearth, printer):
    tag = uuid.uuid4().hex[:8]
    before = int(time.time() * 1000)
    r = hearth.invoke_ok("lg-print", json={"tag": tag})
    after = int(time.time() * 1000)
    resp = hearth.logs("lg-print", format="ndjson", request_id=r.headers["X-Request-Id"])
    assert resp.status_code == 200
    recs = hearth.log_records("lg-print", request_id=r.headers["X-Request-Id"])
    assert len(recs) == 2, recs
    for rec in recs:
        assert set(rec) >= {"time", "time_ms", "stream", "version", "request_id", "message"}, rec
        assert rec["request_id"] == r.headers["X-Request-Id"]
        assert rec["version"] == printer["version"]
        assert before - 1000 <= rec["time_ms"] <= after + 1000, (before, rec, after)
        assert rec["time"].startswith(datetime.datetime.fromtimestamp(
            rec["time_ms"] / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    assert {(rec["stream"], rec["message"]) for rec in recs} == {
        ("stdout", tag + " out 0"), ("stderr", tag + " err")}


def test_tail(hearth):
    hearth.deploy_ok("lg-tail", PRINTER)
    hearth.invoke_ok("lg-tail", json={"tag": "x", "n": 150})
    five = hearth.logs("lg-tail", tail=5).text.splitlines()
    assert len(five) == 5
    assert five[-1].endswith(" x err") or five[-1].endswith(" x out 149"), five
    assert any(l.endswith(" x out 146") or l.endswith(" x out 147") for l in five), five
    default = hearth.logs("lg-tail").text.splitlines()
    assert len(default) == 100, "default tail should be 100, got %d" % len(default)
    everything = hearth.logs("lg-tail", tail=10000).text.splitlines()
    assert len(everything) == 152, len(everything)  # import line, 150 out, 1 err


def test_request_id_filter(hearth, printer):
    a = hearth.invoke_ok("lg-print", json={"tag": "first"})
    b = hearth.invoke_ok("lg-print", json={"tag": "second"})
    lines_a = hearth.logs("lg-print", request_id=a.headers["X-Request-Id"]).text.splitlines()
    lines_b = hearth.logs("lg-print", request_id=b.headers["X-Request-Id"]).text.splitlines()
    assert len(lines_a) == 2 and all("first" in l for l in lines_a), lines_a
    assert len(lines_b) == 2 and all("second" in l for l in lines_b), lines_b
    unknown = hearth.logs("lg-print", request_id=str(uuid.uuid4()))
    assert unknown.status_code == 200 and unknown.text == "", unknown.text


def test_since(hearth):
    hearth.deploy_ok("lg-since", PRINTER)
    hearth.invoke_ok("lg-since", json={"tag": "early"})
    time.sleep(1.02 - time.time() % 1)  # next whole second
    boundary = int(time.time())
    hearth.invoke_ok("lg-since", json={"tag": "late"})
    rfc = datetime.datetime.fromtimestamp(boundary, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    for since in (rfc, str(boundary * 1000)):
        lines = hearth.logs("lg-since", since=since).text.splitlines()
        assert lines and all(" late " in l + " " for l in lines), (since, lines)


def test_long_lines_are_split_at_16_kib(hearth, printer):
    r = hearth.invoke_ok("lg-print", json={"tag": "long", "n": 0, "long": 40000})
    recs = [rec for rec in hearth.log_records("lg-print", request_id=r.headers["X-Request-Id"])
            if rec["stream"] == "stdout"]
    assert len(recs) >= 3, [len(rec["message"]) for rec in recs]
    assert all(len(rec["message"]) <= 16384 for rec in recs)
    assert "".join(rec["message"] for rec in recs) == "L" * 40000


@pytest.mark.parametrize("params", [{"tail": "0"}, {"tail": "abc"}, {"tail": "10001"},
                                    {"format": "xml"}, {"since": "yesterday"}])
def test_bad_log_query_is_400(hearth, printer, params):
    assert_error(hearth.logs("lg-print", **params), 400, "invalid_query")


def test_logs_of_unknown_function_is_404(hearth):
    assert_error(hearth.logs("lg-nope"), 404, "function_not_found")


# --- follow -------------------------------------------------------------------


class Follower:
    """A raw HTTP/1.1 client for ?follow=1: reads the chunked body as it comes,
    with timeouts, and can hang up at any moment."""

    def __init__(self, hearth, path):
        port = hearth.port
        auth = "".join("%s: %s\r\n" % kv for kv in hearth.auth_header().items())
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (
            path, port, auth)).encode())
        self.raw = b""
        self.body = b""
        self.ended = False
        self.chunked = None  # unknown until the head is read
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in self.raw:
            self._recv(deadline)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in
                        (l.split(":", 1) for l in lines[1:] if ":" in l)}
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self._decode()

    def _recv(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            self.ended = True
            raise EOFError("server closed the follow stream")
        self.raw += data
        if self.chunked is not None:
            self._decode()

    def _decode(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while True:
            eol = self.raw.find(b"\r\n")
            if eol < 0:
                return
            size = int(self.raw[:eol].split(b";")[0], 16)
            if len(self.raw) < eol + 2 + size + 2:
                return
            self.body += self.raw[eol + 2:eol + 2 + size]
            self.raw = self.raw[eol + 2 + size + 2:]
            if size == 0:
                self.ended = True
                return

    def wait_for(self, needle, timeout=5.0):
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.body:
            if time.monotonic() > deadline:
                raise AssertionError("follow stream did not show %r within %s s; got:\n%s" % (
                    needle, timeout, self.body[-2000:].decode(errors="replace")))
            try:
                self._recv(deadline)
            except socket.timeout:
                pass
        return [l for l in self.body.decode(errors="replace").splitlines() if needle in l]

    def close(self):
        self.sock.close()


def test_follow_streams_new_lines_until_client_hangs_up(hearth, printer):
    hearth.invoke_ok("lg-print", json={"tag": "before-follow"})
    f = Follower(hearth, "/v1/functions/lg-print/logs?follow=1")
    try:
        assert f.status == 200, f.body
        assert f.chunked, "follow must answer chunked: %s" % f.headers
        f.wait_for("before-follow out 0")  # the tail comes first
        for round_ in range(3):
            tag = "follow-%d-%s" % (round_, uuid.uuid4().hex[:6])
            call = Background(hearth.invoke, "lg-print", json={"tag": tag})
            lines = f.wait_for(tag + " out 0")
            assert TEXT_LINE.match(lines[0]), lines
            assert call.result().status_code == 200
            f.wait_for(tag + " err")
        assert not f.ended
    finally:
        f.close()
    assert hearth.healthy()
    hearth.invoke_ok("lg-print", json={"tag": "after-follow"})


def test_follow_ndjson_and_filter(hearth, printer):
    f = Follower(hearth, "/v1/functions/lg-print/logs?follow=1&format=ndjson&tail=1")
    try:
        assert f.status == 200
        tag = uuid.uuid4().hex[:8]
        hearth.invoke_ok("lg-print", json={"tag": tag})
        import json
        line = f.wait_for(tag + " out 0")[0]
        rec = json.loads(line)
        assert rec["message"] == tag + " out 0" and rec["stream"] == "stdout"
    finally:
        f.close()


def test_many_followers_hanging_up_do_not_wedge_the_daemon(hearth, printer):
    for i in range(40):
        f = Follower(hearth, "/v1/functions/lg-print/logs?follow=1&tail=1")
        assert f.status == 200
        f.close()
    # and some that hang up while lines are flowing
    followers = [Follower(hearth, "/v1/functions/lg-print/logs?follow=1&tail=1")
                 for _ in range(8)]
    for f in followers:
        f.close()
    t0 = time.monotonic()
    for _ in range(5):
        hearth.invoke_ok("lg-print", json={"tag": "after-hangups", "n": 50}, timeout=5)
    assert time.monotonic() - t0 < 5
    # a new follower still works
    f = Follower(hearth, "/v1/functions/lg-print/logs?follow=1&tail=1")
    try:
        tag = uuid.uuid4().hex[:8]
        hearth.invoke_ok("lg-print", json={"tag": tag})
        f.wait_for(tag + " err")
    finally:
        f.close()
    assert hearth.healthy()


def test_follow_of_unknown_function_is_404(hearth):
    f = Follower(hearth, "/v1/functions/lg-nope/logs?follow=1")
    try:
        assert f.status == 404
    finally:
        f.close()


# --- durability, retention, flood ----------------------------------------------


def test_logs_survive_restart(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("lg-keep", PRINTER)
    tag = uuid.uuid4().hex[:8]
    rid = h.invoke_ok("lg-keep", json={"tag": tag}).headers["X-Request-Id"]
    before = h.logs("lg-keep", request_id=rid).text
    h.restart()
    after = h.logs("lg-keep", request_id=rid).text
    assert tag + " out 0" in after and after == before, (before, after)


def test_retention_bounds_disk_use(hearth_factory):
    h = hearth_factory("--log-retention", "1048576")
    code = py("""
        def handler(event, context):
            for i in range(2000):
                print("%s %06d %s" % (event["tag"], i, "r" * 1000))
            return "ok"
    """)
    h.deploy_ok("lg-retain", code)
    for call in range(4):  # ~8 MB in all
        h.invoke_ok("lg-retain", json={"tag": "c%d" % call})
    used = dir_bytes(h.data_dir)
    assert used < 4 << 20, "data dir holds %.1f MiB with --log-retention 1 MiB" % (used / 2**20)
    recs = h.log_records("lg-retain")
    assert recs and recs[-1]["message"].startswith("c3 001999"), recs[-1:]
    assert not any(r["message"].startswith("c0 ") for r in recs), "oldest lines were kept"
    assert sum(len(r["message"]) for r in recs) > 256 << 10, "retention dropped far too much"
    h.restart()
    assert dir_bytes(h.data_dir) < 4 << 20


def test_flood_does_not_grow_daemon_or_slow_others(hearth_factory):
    # Under ASan, freed memory sits in a quarantine (256 MiB by default) that
    # would count as growth; a small one keeps VmRSS about the daemon itself.
    asan = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in asan:
        asan = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    h = hearth_factory(env={"ASAN_OPTIONS": asan})
    flood = py("""
        import sys
        BLOCK = ("f" * 99 + "\\n") * 10486  # ~1 MiB of 100-byte lines
        def handler(event, context):
            for i in range(100):
                sys.stdout.write(BLOCK)
            print("flood-done")
            return "flooded"
    """)
    h.deploy_ok("lg-flood", flood, timeout_ms=170000)
    h.deploy_ok("lg-ping", "def handler(e, c):\n    return 'pong'\n")
    h.invoke_ok("lg-ping")
    rss_start = vmrss_kib(h.pid)
    t0 = time.monotonic()
    call = Background(h.invoke, "lg-flood", timeout=180)
    pings, worst, peak = 0, 0.0, rss_start
    while not call.done():
        s = time.monotonic()
        r = h.invoke("lg-ping", timeout=10)
        took = time.monotonic() - s
        assert r.status_code == 200 and r.text == "pong", r.text
        worst = max(worst, took)
        pings += 1
        peak = max(peak, vmrss_kib(h.pid))
        assert took < 2.0, "a ping took %.2f s during the flood" % took
        assert peak < 200 * 1024, "daemon VmRSS reached %d MiB during the flood" % (peak // 1024)
        time.sleep(0.05)
    r = call.result(timeout=10)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and r.text == "flooded", r.text[:300]
    assert pings >= 3, "flood took only %.2f s; not a useful measurement" % elapsed
    peak = max(peak, vmrss_kib(h.pid))
    assert peak < 200 * 1024, "daemon VmRSS reached %d MiB" % (peak // 1024)
    last = h.logs("lg-flood", tail=1).text
    assert "flood-done" in last, last[-300:]
    assert dir_bytes(h.data_dir) < 64 << 20, "default retention (32 MiB) not applied"
    print("flood: %.1f s, %d pings, worst %.3f s, RSS %d -> %d KiB" % (
        elapsed, pings, worst, rss_start, peak))


def test_a_deleted_functions_output_never_reaches_its_successor(hearth):
    """Issue 9, point 5: a worker still printing when its function is
    deleted is drained at its exit; those lines must not recreate the log
    folder and show up under the next function of that name."""
    chatty = py("""
        import os, threading

        def chatter():
            line = b"OLD-FUNCTION-LINE\\n" * 2000
            while True:
                os.write(1, line)

        def handler(event, context):
            threading.Thread(target=chatter, daemon=True).start()
            return "chatting"
    """)
    hearth.deploy_ok("lg-reborn", chatty)
    assert hearth.invoke_ok("lg-reborn", json={}).text == "chatting"
    assert wait_until(lambda: "OLD-FUNCTION-LINE" in hearth.logs("lg-reborn", tail=5).text, 10.0)
    assert hearth.delete("lg-reborn").status_code == 204
    time.sleep(0.5)  # the old worker's exit, and its last output drained
    hearth.deploy_ok("lg-reborn", "def handler(e, c):\n    print('new-function')\n    return 1\n")
    hearth.invoke_ok("lg-reborn", json={})
    time.sleep(0.3)
    text = hearth.logs("lg-reborn").text
    assert "new-function" in text, text[-500:]
    assert "OLD-FUNCTION-LINE" not in text, "the deleted function's output came back:\n" + \
        text[:500]
