"""The egress network mode, each test with a daemon of its own: names
resolve through the host's resolver, egress sandboxes are pre-built
before the call, nothing is left after a stop or a kill -9 (root: the
table, the links, forwarding; rootless: slirp4netns), and a host where
egress cannot work says so at deploy.

Apart from test_egress.py because only one hearthd per host provides
egress (its lock in /run): these daemons must not overlap that module's.
"""

import os
import socket
import struct
import threading

import pytest

from conftest import ROOTLESS, assert_error, daemon_knows, prebuilt_metrics, py, wait_until
from netlab import (PROBE, Outside, TunForRootless, deploy_probe, hearth_links,
                    hearth_table_present, ip_forward, probe)

if not daemon_knows("--egress-deny"):
    pytest.skip("no egress mode in this hearthd", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def tun():
    with TunForRootless(ROOTLESS):
        yield


@pytest.fixture(scope="module")
def outside():
    with Outside(3, ports=(8080,)) as o:
        yield o


class FakeResolver:
    """A DNS server on 127.0.0.77:53 that answers every A question with
    `answer`, and records the names it was asked."""

    def __init__(self, answer):
        self.answer = socket.inet_aton(answer)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.77", 53))
        self.asked = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            end = 12
            labels = []
            while q[end]:
                labels.append(q[end + 1:end + 1 + q[end]].decode())
                end += 1 + q[end]
            question = q[12:end + 5]
            self.asked.append(".".join(labels))
            head = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + self.answer
            self.sock.sendto(head + question + rr, peer)

    def close(self):
        self.sock.close()


@pytest.mark.skipif(ROOTLESS, reason="rootless: DNS goes through slirp4netns to the host's real "
                    "resolvers, which a test may not query")
def test_names_resolve_through_the_hosts_resolver(hearth_factory, outside, tmp_path):
    resolver = FakeResolver(outside.addr)
    try:
        conf = tmp_path / "resolv.conf"
        conf.write_text("# the test's\nnameserver 127.0.0.77\n")
        conf.chmod(0o644)
        tmp_path.chmod(0o755)
        h = hearth_factory("--resolv-conf", str(conf))
        deploy_probe(h, "eg-dns")
        r = probe(h, "eg-dns", http=["http://outside.hearth-test:8080/"])[0]
        assert r["result"] == "ok", r
        assert r["body"]["outside"] == outside.ns
        assert "outside.hearth-test" in resolver.asked
    finally:
        resolver.close()


def test_egress_is_prebuilt_before_the_call(hearth_factory):
    h = hearth_factory("--default-network", "egress", "--prebuilt-min", "1")
    assert wait_until(lambda: (prebuilt_metrics(h, network="egress") or {}).get("ready", 0) >= 1,
                      30), prebuilt_metrics(h, network="egress")
    h.deploy_ok("eg-claim", PROBE)  # no "network": the default, egress
    assert h.show("eg-claim").json()["network"] == "egress"
    probe(h, "eg-claim")
    assert prebuilt_metrics(h, network="egress")["claims_total"] >= 1


def slirp_processes():
    """Every slirp4netns running on the host (only hearthd starts them here)."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/comm" % pid) as f:
                if f.read().strip() == "slirp4netns":
                    out.append(int(pid))
        except (OSError, ValueError):
            pass
    return out


def leftovers():
    """What a stopped hearthd may not leave: rootless its slirp4netns, as
    root its links and its table."""
    if ROOTLESS:
        return ["slirp4netns %d" % p for p in slirp_processes()]
    return hearth_links() + (["table inet hearth"] if hearth_table_present() else [])


def test_nothing_is_left_after_stop_or_kill9(hearth_factory, outside):
    forward_before = ip_forward()
    h = hearth_factory()
    deploy_probe(h, "eg-left")
    assert probe(h, "eg-left", http=["http://%s:8080/" % outside.addr])[0]["result"] == "ok"
    if ROOTLESS:
        assert slirp_processes(), "an egress worker runs, so does its slirp4netns"
    h.stop()
    assert wait_until(lambda: leftovers() == [], 5), leftovers()
    assert ip_forward() == forward_before
    h.start()
    assert probe(h, "eg-left", http=["http://%s:8080/" % outside.addr])[0]["result"] == "ok"
    h.kill9()
    h.start()  # sweeps what the killed one left
    assert probe(h, "eg-left", http=["http://%s:8080/" % outside.addr])[0]["result"] == "ok"
    h.stop()
    assert wait_until(lambda: leftovers() == [], 5), leftovers()
    assert ip_forward() == forward_before


def test_deploy_where_egress_cannot_work_is_400(hearth_factory):
    # Without a way out (rootless with no slirp4netns on PATH), deploys say why.
    if not ROOTLESS:
        pytest.skip("root always has egress here; the rootless run covers the refusal")
    h = hearth_factory(env={"PATH": "/nonexistent"})
    r = h.deploy("eg-no", files={"main.py": py(PROBE)}, network="egress")
    assert_error(r, 400, "invalid_field")
    assert "slirp4netns" in r.text
