"""Issue 15 §3: hostile and slow clients do not delay other clients' calls.

The p99 test measures a well-behaved client's calls twice on one daemon
with the built-in limits: first alone (the baseline), then while 1000
connections sit idle, slow uploads trickle bodies, slowloris clients
trickle headers and `follow` streams never read. Its p99 must stay within
max(5 x baseline p99, baseline p99 + 250 ms): a bound relative to the same
machine at the same moment, so a slow ASan run moves both sides.

The limit tests run a second daemon with small limits: --max-connections
(the longest-idle connection makes room; busy ones get a 503),
--header-timeout and --body-timeout (408 in the JSON error shape),
--idle-timeout (a follow stream that is never read is closed).

The hostile load is a set of sockets kept at its size by the test: a
connection the daemon cuts off is opened again (that is what an attacker
does), so the load lasts while the calls are measured.
"""

import json
import os
import re
import resource
import selectors
import socket
import threading
import time

import pytest
import requests

from conftest import py, wait_until

IDLE = 1000
SLOW_UPLOADS = 8
SLOWLORIS = 8
FOLLOWERS = 8
CALLS = 120

NOISY = py("""
    import sys
    LINES = ("n" * 199 + "\\n") * 40  # 8 KiB of log lines per call
    def handler(event, context):
        sys.stdout.write(LINES)
        return "ok"
""")


@pytest.fixture(scope="module", autouse=True)
def enough_fds():
    """1000+ sockets in this process: raise the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if want < IDLE + 200:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (hard, IDLE))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _auth(h):
    return "".join("%s: %s\r\n" % kv for kv in h.auth_header().items())


def _connect(h, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", h.port))
    return s


def _closed_by_peer(s):
    """True when the daemon has closed `s` (EOF or reset, after any answer)."""
    try:
        s.setblocking(False)
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


class Load:
    """The hostile clients, kept at their sizes by a thread until stop()."""

    def __init__(self, h, fn):
        self.h, self.fn = h, fn
        self.idle, self.uploads, self.loris, self.followers = [], [], [], []
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = None

    def _upload(self):
        s = _connect(self.h)
        s.sendall(("POST /v1/functions/%s/invoke HTTP/1.1\r\nHost: x\r\n%s"
                   "Content-Length: 1000000\r\n\r\n" % (self.fn, _auth(self.h))).encode())
        return s

    def _loris(self):
        s = _connect(self.h)
        s.sendall(("GET /v1/functions HTTP/1.1\r\nHost: x\r\n%s" % _auth(self.h)).encode())
        return s

    def _follower(self):
        s = _connect(self.h, rcvbuf=4096)
        s.sendall(("GET /v1/functions/%s/logs?follow=1 HTTP/1.1\r\nHost: x\r\n%s\r\n"
                   % (self.fn, _auth(self.h))).encode())
        return s

    def open(self):
        self.idle = [_connect(self.h) for _ in range(IDLE)]
        self.uploads = [self._upload() for _ in range(SLOW_UPLOADS)]
        self.loris = [self._loris() for _ in range(SLOWLORIS)]
        self.followers = [self._follower() for _ in range(FOLLOWERS)]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _refill(self, socks, make):
        for i, s in enumerate(socks):
            if _closed_by_peer(s):
                s.close()
                socks[i] = make()
                self.reopened += 1

    def _run(self):
        """Trickles a byte to each slow client every 100 ms and reopens the
        connections the daemon cut off."""
        tick = 0
        while not self.stopping.wait(0.1):
            tick += 1
            for s in self.uploads:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            for s in self.loris:
                try:
                    s.send(b"X-Slow-%d: 1\r\n" % tick if tick % 2 else b"")
                except OSError:
                    pass
            if tick % 5 == 0:  # every half second
                for socks, make in ((self.uploads, self._upload), (self.loris, self._loris),
                                    (self.idle, lambda: _connect(self.h))):
                    self._refill(socks, make)

    def close(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=10)
        for s in self.idle + self.uploads + self.loris + self.followers:
            s.close()


def _p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def _measure(h, fn, n):
    """n calls over one keep-alive session; their durations in seconds."""
    took = []
    with requests.Session() as sess:
        sess.headers.update(h.auth_header())
        for _ in range(n):
            t = time.monotonic()
            r = sess.post(h.url("/v1/functions/%s/invoke" % fn), data=b"{}", timeout=30)
            took.append(time.monotonic() - t)
            assert r.status_code == 200 and r.text == "ok", (r.status_code, r.text[:300])
    return took


def test_hostile_load_does_not_delay_a_good_clients_calls(hearth):
    """Default limits; the good client's p99 under load vs. alone."""
    hearth.deploy_ok("sc-noisy", NOISY)
    _measure(hearth, "sc-noisy", 10)  # warm: a worker is up
    base = _measure(hearth, "sc-noisy", CALLS)
    load = Load(hearth, "sc-noisy")
    try:
        load.open()
        time.sleep(0.5)  # every hostile connection accepted and in its phase
        loaded = _measure(hearth, "sc-noisy", CALLS)
        still_idle = sum(not _closed_by_peer(s) for s in load.idle)
    finally:
        load.close()
    b99, l99 = _p99(base), _p99(loaded)
    bound = max(5 * b99, b99 + 0.25)
    print("slow clients: baseline p99 %.1f ms, under load p99 %.1f ms (bound %.1f ms); "
          "%d idle connections open at the end, %d reopened" % (
              b99 * 1000, l99 * 1000, bound * 1000, still_idle, load.reopened))
    assert still_idle >= IDLE // 2, "the idle load was not in place (%d open)" % still_idle
    assert l99 <= bound, "p99 %.1f ms under load, baseline %.1f ms (bound %.1f ms)" % (
        l99 * 1000, b99 * 1000, bound * 1000)
    assert hearth.healthy()


@pytest.mark.parametrize("n", [128, 256])
def test_exactly_128_and_256_requests_ready_at_once_are_all_answered(hearth, n):
    """DESIGN.md §7: libmicrohttpd's own epoll thread stalls when exactly 128
    (or 256) connections are ready at once; hearthd's loop must not."""
    socks = [_connect(hearth) for _ in range(n)]
    try:
        for s in socks:  # every request written before any answer is read
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for s in socks:
            reply, _ = _read_answer(s, 20)
            assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    finally:
        for s in socks:
            s.close()


# --- the limits, on a daemon of their own ---

LIMITS = ("--max-connections", "20", "--header-timeout", "2", "--body-timeout", "2",
          "--idle-timeout", "2")


@pytest.fixture(scope="module")
def tight(hearth_factory_module):
    h = hearth_factory_module(*LIMITS)
    h.deploy_ok("sc-echo", "def handler(e, c):\n    return 'ok'\n")
    h.invoke_ok("sc-echo")
    return h


@pytest.fixture(scope="module")
def hearth_factory_module():
    """hearth_factory, module-scoped: one small-limits daemon for the tests below."""
    from conftest import Hearth
    import tempfile
    from pathlib import Path
    made = []

    def make(*args):
        h = Hearth(Path(tempfile.mkdtemp(prefix="hearth-e2e-")), args)
        made.append(h)
        return h.start()

    yield make
    for h in made:
        h.close()


def _read_answer(s, timeout):
    """Everything until the daemon closes `s`; (bytes, seconds taken)."""
    s.settimeout(timeout)
    t, chunks = time.monotonic(), []
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic() - t


def _assert_json_error(reply, status, code):
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), reply[:300]
    err = json.loads(body)["error"]
    assert err["code"] == code and err["message"], err


def test_a_slowloris_head_is_cut_with_408(tight):
    s = _connect(tight)
    t = time.monotonic()
    s.sendall(b"GET /v1/functions HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    done = False
    while not done and time.monotonic() - t < 30:  # a header byte every 200 ms
        try:
            s.send(b"X")
        except OSError:
            break
        time.sleep(0.2)
        done = _peek(s)
    reply, _ = _read_answer(s, 30)
    took = time.monotonic() - t
    s.close()
    assert took >= 1.5, "cut after %.2f s with --header-timeout 2" % took
    _assert_json_error(reply, 408, "request_timeout")
    assert tight.healthy()


def _peek(s):
    try:
        return bool(s.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def test_a_slow_body_is_cut_with_408(tight):
    s = _connect(tight)
    t = time.monotonic()
    s.sendall(("POST /v1/functions/sc-echo/invoke HTTP/1.1\r\nHost: x\r\n%s"
               "Content-Length: 100000\r\n\r\n" % _auth(tight)).encode())
    s.setblocking(False)
    while time.monotonic() - t < 30 and not _peek(s):  # 10 bytes every 100 ms
        try:
            s.send(b"0123456789")
        except OSError:
            break
        time.sleep(0.1)
    reply, _ = _read_answer(s, 30)
    took = time.monotonic() - t
    s.close()
    assert took >= 1.5, "cut after %.2f s with --body-timeout 2" % took
    _assert_json_error(reply, 408, "request_timeout")
    assert tight.healthy()


def test_a_silent_connection_is_closed_without_an_answer(tight):
    s = _connect(tight)
    reply, took = _read_answer(s, 30)
    s.close()
    assert reply == b"", reply[:200]
    assert 1.5 <= took < 30, took


def test_idle_connections_make_room_for_a_new_client(tight):
    idle = [_connect(tight) for _ in range(20)]
    try:
        time.sleep(0.2)
        r = tight.invoke("sc-echo", timeout=10)
        assert r.status_code == 200 and r.text == "ok", r.text
        assert wait_until(lambda: any(_closed_by_peer(s) for s in idle), 5), \
            "no idle connection was closed to make room"
    finally:
        for s in idle:
            s.close()


def open_connections(h):
    """The daemon's hearth_open_connections gauge (this request's included)."""
    text = h.get("/metrics", timeout=10).text
    return int(float(re.search(r"^hearth_open_connections (\S+)$", text, re.M).group(1)))


def test_max_connections_busy_gives_503(tight):
    """20 connections each in the middle of a body: the 21st is refused.
    Each asks for 100-continue, so its "100 Continue" shows the daemon has
    read its head (the connection is busy, not idle) before the 21st comes;
    a fixed sleep was too short once on a loaded ASan run."""
    # The last test's 20 sockets, closed on this side, may still count on
    # the daemon's; at the limit the new ones, idle until their heads are
    # read, would be the ones to make room.
    assert wait_until(lambda: open_connections(tight) <= 1, 10), open_connections(tight)
    busy = []
    try:
        for _ in range(20):
            s = _connect(tight)
            s.sendall(("POST /v1/functions/sc-echo/invoke HTTP/1.1\r\nHost: x\r\n%s"
                       "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"
                       % _auth(tight)).encode())
            busy.append(s)
        for s in busy:
            s.settimeout(5)
            assert s.recv(64).startswith(b"HTTP/1.1 100 "), "no 100 Continue"
            s.sendall(b"abc")
        extra = _connect(tight)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply, _ = _read_answer(extra, 10)
        extra.close()
        _assert_json_error(reply, 503, "too_many_connections")
    finally:
        for s in busy:
            s.close()
    assert wait_until(tight.healthy, 10)


LOUD = py("""
    import sys
    LINES = ("l" * 1023 + "\\n") * 1024  # 1 MiB of log lines per call
    def handler(event, context):
        sys.stdout.write(LINES)
        return "ok"
""")


def test_a_follow_stream_never_read_is_closed_after_idle_timeout(tight):
    """Lines pile up in the kernel's socket buffers (up to tcp_wmem's
    maximum, 4 MiB) and then in the follower's backlog (4 MiB, then lines
    are dropped: logs.c): memory stays bounded. Once the daemon cannot
    write for --idle-timeout, it closes the stream."""
    tight.deploy_ok("sc-loud", LOUD, timeout_ms=60000)
    s = _connect(tight, rcvbuf=4096)
    s.sendall(("GET /v1/functions/sc-loud/logs?follow=1 HTTP/1.1\r\nHost: x\r\n%s\r\n"
               % _auth(tight)).encode())
    for _ in range(6):  # 6 MiB: more than the socket buffers hold (tcp_wmem: 4 MiB at most)
        tight.invoke_ok("sc-loud", timeout=60)
    time.sleep(4)  # not read for longer than --idle-timeout 2
    reply, took = _read_answer(s, 30)
    s.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert took < 25, "the stream was still open %.1f s later" % took
    r = tight.invoke("sc-echo", timeout=10)
    assert r.status_code == 200
