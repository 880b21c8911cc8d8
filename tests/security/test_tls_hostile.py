"""Hostile clients of the HTTPS listener (issue 10 §4). Each attack names
what stops it."""

import os
import signal
import socket
import ssl
import subprocess
import shutil
import time

import pytest
import requests

from conftest import Hearth, e2e_conftest, wait_until

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(not OPENSSL, reason="needs openssl")


def _cert(d, stem):
    cert, key = d / (stem + ".crt"), d / (stem + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    cert.chmod(0o644)
    key.chmod(0o644)
    return cert, key


class _Https(Hearth):
    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)


@pytest.fixture
def tls(monkeypatch):
    base = e2e_conftest._new_base()
    base.chmod(0o755)
    cert, key = _cert(base, "s")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    h = _Https(base, ["--tls-cert", str(cert), "--tls-key", str(key)])
    h.cert, h.key = cert, key
    try:
        yield h.start()
    finally:
        h.close()


def test_stalled_and_garbage_handshakes_do_not_block_others(tls):
    """MHD drives each TLS handshake non-blocking from the loop: a client
    that sends half a ClientHello, or HTTP in clear, holds only its own
    connection."""
    h = tls
    held = []
    for i in range(64):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        s.sendall(b"\x16\x03\x01\x02\x00\x01" if i % 2 else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        held.append(s)
    t0 = time.monotonic()
    assert h.get("/healthz", timeout=10).status_code == 200
    assert time.monotonic() - t0 < 5
    for s in held:
        s.close()
    assert h.get("/healthz").status_code == 200


def test_handshakes_torn_down_across_reloads_free_nothing_in_use(tls):
    """Certificate pairs are counted per connection (tls.c): clients that
    drop mid-handshake while reloads retire pairs must neither crash hearthd
    nor break a connection that holds an older pair."""
    h = tls
    keep = requests.Session()
    assert keep.get(h.url("/healthz")).status_code == 200
    ctx = ssl.create_default_context(cafile=str(h.cert))
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        if i % 2:
            try:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                    pass
            except (ssl.SSLError, OSError):
                pass
        else:
            s.sendall(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03")
            s.close()
        h.proc.send_signal(signal.SIGHUP)  # one at a time: pending signals coalesce
        assert wait_until(lambda: h.stderr_text().count("tls: serving sha256") >= i + 2, 10)
    assert keep.get(h.url("/healthz")).status_code == 200  # its pair was kept
    assert h.get("/healthz").status_code == 200
