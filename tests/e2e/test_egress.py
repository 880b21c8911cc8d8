"""The egress network mode: "network": "egress" reaches the network outside
the host, never the host, another worker, link-local addresses or what
--egress-deny names; --egress-allow opens a hole; isolated functions still
reach nothing (test_egress_lifecycle.py has the tests that need a daemon of
their own).

The "outside" is the tests' own (netlab.py): namespaces on 10.214.0.0/16
and 169.254.169.254 routed to one of them. Every address probed is
loopback, the host's own, or one of those.
"""

import pytest

from conftest import ROOTLESS, daemon_knows, free_port
from netlab import (METADATA, HostService, Outside, TunForRootless, deploy_probe,
                    host_ipv4_addresses, probe)

if not daemon_knows("--egress-deny"):
    pytest.skip("no egress mode in this hearthd", allow_module_level=True)

DENIED = 2  # Outside number whose /24 the module's daemon denies
ALLOWED_PORT = free_port()  # free now; HostService binds it with SO_REUSEADDR
# The host's end of Outside 1's veth is a host address: only this port of it is allowed.
HEARTH_ARGS = ("--egress-deny", "10.214.%d.0/24" % DENIED,
               "--egress-allow", "10.214.1.1/32:%d" % ALLOWED_PORT)


@pytest.fixture(scope="module", autouse=True)
def tun():
    with TunForRootless(ROOTLESS):
        yield


@pytest.fixture(scope="module")
def outside():
    with Outside(1, ports=(8080, 80), metadata=True) as o:
        yield o


@pytest.fixture(scope="module")
def denied_outside():
    with Outside(DENIED, ports=(8080,)) as o:
        yield o


def refused(r, within=1.0):
    """A refusal the kernel says at once: no answer, and no long wait."""
    return r["result"] not in ("ok", "timeout") and r["s"] < within


def test_reaches_the_outside(hearth, outside):
    deploy_probe(hearth, "eg-out")
    r = probe(hearth, "eg-out", http=["http://%s:8080/x" % outside.addr])[0]
    assert r["result"] == "ok", r
    assert r["body"]["outside"] == outside.ns
    # NAT: the outside sees the host, not the worker's private address.
    assert not r["body"]["peer"].startswith("10.213."), r


def test_the_function_shows_egress(hearth):
    deploy_probe(hearth, "eg-show")
    assert hearth.show("eg-show").json()["network"] == "egress"


def test_host_is_refused_on_every_address(hearth, outside):
    svc = HostService()
    try:
        targets = [[a, svc.port] for a in host_ipv4_addresses()]
        targets += [[a, hearth.port] for a in host_ipv4_addresses()]
        deploy_probe(hearth, "eg-host")
        results = probe(hearth, "eg-host", tcp=targets)
        for t, r in zip(targets, results):
            assert r["result"] != "ok", (t, r)
            if not t[0].startswith("127."):  # the worker's own loopback answers at once anyway
                assert refused(r), (t, r)
        assert svc.accepted == []
    finally:
        svc.close()


def test_another_worker_is_refused(hearth):
    hearth.deploy_ok("eg-listener", '''
        import socket
        S = None
        def handler(event, context):
            global S
            if S is None:
                S = socket.socket()
                S.bind(("0.0.0.0", 7070))
                S.listen(8)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.connect(("10.214.1.2", 9))  # no packet: only picks the source address
            return u.getsockname()[0]
    ''', network="egress", keep_alive_s=300)
    their = hearth.invoke_ok("eg-listener", json={}).text
    deploy_probe(hearth, "eg-neighbour")
    r = probe(hearth, "eg-neighbour", tcp=[[their, 7070]])[0]
    assert refused(r), (their, r)


def test_metadata_address_is_refused_at_once(hearth, outside):
    deploy_probe(hearth, "eg-meta")
    for r in probe(hearth, "eg-meta", tcp=[[METADATA, 80]],
                   http=["http://%s/latest/meta-data/" % METADATA]):
        assert refused(r), r
    assert outside.peers == [] or all(p != METADATA for p in outside.peers)


def test_denied_cidr_is_refused(hearth, denied_outside):
    deploy_probe(hearth, "eg-deny")
    r = probe(hearth, "eg-deny", http=["http://%s:8080/" % denied_outside.addr])[0]
    assert refused(r), r
    assert denied_outside.peers == []


def test_allowed_host_port_is_reached(hearth, outside):
    svc = HostService(ALLOWED_PORT)
    other = HostService()
    try:
        deploy_probe(hearth, "eg-allow")
        ok, wrong_port = probe(hearth, "eg-allow", tcp=[[outside.host_addr, ALLOWED_PORT],
                                                        [outside.host_addr, other.port]])
        assert ok["result"] == "ok" and ok["data"] == "host-service", ok
        assert refused(wrong_port), wrong_port
    finally:
        svc.close()
        other.close()


def test_isolated_still_reaches_nothing(hearth, outside):
    deploy_probe(hearth, "eg-isolated", network="isolated")
    r = probe(hearth, "eg-isolated", http=["http://%s:8080/" % outside.addr])[0]
    assert r["result"] != "ok", r
    before = len(outside.peers)
    probe(hearth, "eg-isolated", tcp=[[outside.addr, 8080]])
    assert len(outside.peers) == before


def test_resolv_conf_names_the_resolver(hearth):
    hearth.deploy_ok("eg-resolv", '''
        def handler(event, context):
            with open("/etc/resolv.conf") as f:
                r = f.read()
            with open("/etc/nsswitch.conf") as f:
                n = f.read()
            return {"resolv": r, "nsswitch": n}
    ''', network="egress")
    out = hearth.invoke_ok("eg-resolv", json={}).json()
    assert out["resolv"].startswith("nameserver 10.0.2.3" if ROOTLESS else "nameserver 10.213.0.1")
    assert "hosts: files dns" in out["nsswitch"]


