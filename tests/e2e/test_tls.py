"""Issue 10 §4: --tls-cert/--tls-key serve HTTPS (libmicrohttpd's GnuTLS);
curl --cacert reaches /healthz, deploy and invoke; plain HTTP is refused;
SIGHUP re-reads the certificate for new connections; a bad pair stops the
start, and at a reload leaves the served one in place."""

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess

import pytest
import requests

import conftest
from conftest import HEARTHD, Hearth, _new_base, py, wait_until

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(not OPENSSL or not CURL,
                                reason="needs openssl and curl (scripts/deps.sh --test)")

HELLO = py("""
    def handler(event, context):
        return {"hello": event.get("name")}
""")


def make_cert(dirpath, stem):
    """A self-signed P-256 certificate for 127.0.0.1: (cert, key) paths,
    readable by the daemon's user (a reload reads them as --user)."""
    cert, key = dirpath / (stem + ".crt"), dirpath / (stem + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    for p in (cert, key):
        p.chmod(0o644)
    return cert, key


def der_sha256(pem_path):
    pem = pem_path.read_text()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def served_sha256(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


class HttpsHearth(Hearth):
    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)


@pytest.fixture
def tls_hearth(monkeypatch):
    base = _new_base()
    base.chmod(0o755)  # as root the daemon re-reads the files as nobody
    certs = base / "tls"
    certs.mkdir()
    certs.chmod(0o755)
    cert, key = make_cert(certs, "server")
    # requests (the helper's calls) trusts exactly this certificate.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    h = HttpsHearth(base, ["--tls-cert", str(cert), "--tls-key", str(key)])
    h.cert, h.key = cert, key
    try:
        h.start()
        yield h
    finally:
        h.close()


def curl(h, *args):
    """curl trusting the test's certificate, with the admin token."""
    auth = [a for kv in h.auth_header().items() for a in ("-H", "%s: %s" % kv)]
    p = subprocess.run([CURL, "-sS", "--cacert", str(h.cert), *auth, *args], capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_curl_with_cacert_deploys_and_invokes(tls_hearth):
    h = tls_hearth
    rc, out, err = curl(h, h.url("/healthz"))
    assert rc == 0 and json.loads(out) == {"status": "ok"}, err
    body = json.dumps({"runtime": "python3", "handler": "main.handler",
                       "files": {"main.py": HELLO}})
    rc, out, err = curl(h, "-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                        body, h.url("/v1/functions/tls-hello"))
    assert rc == 0 and json.loads(out)["name"] == "tls-hello", out + err
    rc, out, err = curl(h, "-H", "Content-Type: application/json", "-d", '{"name":"tls"}',
                        h.url("/v1/functions/tls-hello/invoke"))
    assert rc == 0 and json.loads(out) == {"hello": "tls"}, out + err
    assert "listening on https://" in h.stderr_text()


def test_an_untrusted_client_and_plain_http_are_refused(tls_hearth):
    h = tls_hearth
    rc, out, err = subprocess.run([CURL, "-sS", h.url("/healthz")], capture_output=True,
                                  timeout=30).returncode, "", ""
    assert rc != 0, "curl without --cacert must not trust a self-signed certificate"
    with pytest.raises(requests.RequestException):
        requests.get("http://127.0.0.1:%d/healthz" % h.port, timeout=5)
    # The daemon still serves TLS after the garbage.
    assert h.get("/healthz").status_code == 200


def test_sighup_serves_a_renewed_certificate_to_new_connections(tls_hearth):
    h = tls_hearth
    first = der_sha256(h.cert)
    assert served_sha256(h.port) == first
    # A connection opened before the reload keeps working after it.
    s = requests.Session()
    assert s.get(h.url("/healthz")).status_code == 200
    new_cert, new_key = make_cert(h.cert.parent, "renewed")
    os.replace(new_key, h.key)
    os.replace(new_cert, h.cert)
    second = der_sha256(h.cert)
    assert second != first
    h.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: served_sha256(h.port) == second, 10), h.stderr_tail()
    assert "tls: serving sha256 " + second in h.stderr_text()
    s.verify = str(h.cert)
    assert requests.get(h.url("/healthz"), verify=str(h.cert)).status_code == 200


def test_a_bad_certificate_at_reload_keeps_the_served_one(tls_hearth, monkeypatch):
    h = tls_hearth
    before = served_sha256(h.port)
    kept = h.base / "trusted.crt"
    shutil.copy(h.cert, kept)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(kept))
    h.cert.write_text("not a certificate\n")
    h.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "tls: keeping the certificate served so far" in h.stderr_text(),
                      10), h.stderr_tail()
    assert served_sha256(h.port) == before
    assert h.get("/healthz").status_code == 200


@pytest.mark.parametrize("fault", ["garbage-cert", "other-key", "missing-key", "cert-only"])
def test_a_bad_pair_at_start_stops_it_with_a_clear_message(tmp_path, fault):
    cert, key = make_cert(tmp_path, "a")
    _, other = make_cert(tmp_path, "b")
    args = ["--tls-cert", str(cert), "--tls-key", str(key)]
    want = "tls: "
    if fault == "garbage-cert":
        cert.write_text("garbage\n")
        want = "%s: not a PEM certificate" % cert
    elif fault == "other-key":
        args[3] = str(other)
        want = "the key does not go with the certificate"
    elif fault == "missing-key":
        args[3] = str(tmp_path / "nope.key")
        want = "cannot read the key"
    else:
        args = args[:2]
        want = "--tls-cert needs --tls-key"
    p = subprocess.run([HEARTHD, "--listen", "127.0.0.1:%d" % conftest.free_port(),
                        "--data-dir", str(tmp_path / "d"), *args],
                       capture_output=True, timeout=30)
    out = p.stderr.decode(errors="replace")
    assert p.returncode != 0 and want in out, out
