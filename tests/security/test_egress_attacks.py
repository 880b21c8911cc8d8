"""Hostile egress functions ("network": "egress"): tricks to get past the
rules from inside the worker — ARP and IPv6 neighbour games, source
address spoofing, raw sockets, changing its own address or routes, and
reaching the host over IPv6.

Addresses probed: the tests' own outside namespace (tests/e2e/netlab.py,
10.214.0.0/16), the host's own addresses, and loopback. Nothing else.
Each test ends with survived().
"""

import sys
from pathlib import Path

import pytest

from conftest import attack_ok, e2e_conftest, survived

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from netlab import HostService, Outside, TunForRootless, host_ipv6_addresses  # noqa: E402

if not e2e_conftest.daemon_knows("--egress-deny"):
    pytest.skip("no egress mode in this hearthd", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def tun():
    with TunForRootless(e2e_conftest.ROOTLESS):
        yield


@pytest.fixture(scope="module")
def outside():
    with Outside(5, ports=(8080,)) as o:
        yield o


def test_raw_and_packet_sockets_are_refused(hearth, neighbour):
    """Attack: a raw IP socket (forge any header), an AF_PACKET socket (send
    ARP replies claiming the gateway's or another worker's address, or IPv6
    neighbour advertisements), a raw ICMPv6 socket. Stopped by: the worker
    holds no CAP_NET_RAW in the namespace's owner (EPERM), and the seccomp
    allowlist refuses packet sockets."""
    out = attack_ok(hearth, "eg-raw", '''
        import socket
        from hostile import err
        def handler(event, context):
            return {
                "raw_ip": err(socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW),
                "raw_tcp": err(socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
                "packet_arp": err(socket.socket, 17, socket.SOCK_RAW, 0x0608),
                "packet_all": err(socket.socket, 17, socket.SOCK_DGRAM, 0x0300),
                "icmpv6_raw": err(socket.socket, socket.AF_INET6, socket.SOCK_RAW, 58),
            }
    ''', network="egress")
    for what, (result, detail) in out.items():
        assert result in ("EPERM", "EACCES", "EAFNOSUPPORT"), (what, detail)
    survived(hearth, neighbour)


def test_own_address_and_routes_cannot_change(hearth, neighbour):
    """Attack: give eth0 another address (another worker's, the host's),
    add a route, turn the link down and up, set IP_TRANSPARENT to answer
    for any address. Stopped by: no CAP_NET_ADMIN (EPERM) — netlink
    requests (the allowlist does not even open a netlink socket:
    EAFNOSUPPORT) and ioctls alike."""
    out = attack_ok(hearth, "eg-addr", '''
        import fcntl, socket, struct
        from hostile import err
        SIOCSIFADDR, SIOCSIFFLAGS = 0x8916, 0x8914
        def ioctl_addr():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sin = struct.pack("HH4s8x", socket.AF_INET, 0, socket.inet_aton("10.213.0.6"))
            return fcntl.ioctl(s, SIOCSIFADDR, struct.pack("16s", b"eth0") + sin)
        def ioctl_down():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            return fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"eth0", 0) + b"\\0" * 22)
        def netlink_addr():
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            s.bind((0, 0))
            # RTM_NEWADDR for 10.213.0.6/30 on ifindex 2
            ifa = struct.pack("BBBBI", socket.AF_INET, 30, 0, 0, 2)
            rta = struct.pack("HH", 8, 2) + socket.inet_aton("10.213.0.6")
            body = ifa + rta
            hdr = struct.pack("IHHII", 16 + len(body), 20, 0x405, 1, 0)
            s.send(hdr + body)
            reply = s.recv(4096)
            code = struct.unpack("i", reply[16:20])[0]
            if code:
                raise OSError(-code, "netlink")
            return "added"
        def transparent():
            s = socket.socket()
            s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
            return "set"
        def handler(event, context):
            return {"ioctl_addr": err(ioctl_addr), "ioctl_down": err(ioctl_down),
                    "netlink_addr": err(netlink_addr), "transparent": err(transparent)}
    ''', network="egress")
    for what, (result, detail) in out.items():
        assert result in ("EPERM", "EACCES", "EAFNOSUPPORT"), (what, detail)
    survived(hearth, neighbour)


def test_spoofed_source_never_arrives(hearth, neighbour, outside):
    """Attack: bind to an address that is not the worker's own (another
    worker's, the outside's neighbour, the host's) with IP_FREEBIND, which
    needs no privilege, and connect out, hoping the reply goes to a victim
    or the rules trust the source. Stopped by: the host drops whatever
    comes from a worker's link with a source that does not route back
    through it (root: the table's fib check; rootless: slirp4netns speaks
    for the worker with its own sockets, whatever source it claims). The
    outside sees no connection from a spoofed address."""
    out = attack_ok(hearth, "eg-spoof", '''
        import errno, socket
        def attempt(src, dst):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
                s.bind((src, 0))
                s.connect(dst)
                return ["ok", s.getsockname()[0]]
            except socket.timeout:
                return ["timeout", src]
            except OSError as e:
                return [errno.errorcode.get(e.errno, str(e.errno)), str(e)]
            finally:
                s.close()
        def handler(event, context):
            dst = (event["outside"], 8080)
            return {src: attempt(src, dst) for src in event["sources"]}
    ''', {"outside": outside.addr, "sources": ["10.213.0.6", "10.214.5.77", outside.host_addr]},
        network="egress")
    for src, (result, detail) in out.items():
        if result == "ok":  # rootless: slirp4netns connected as itself, not as `src`
            assert src not in outside.peers, (src, outside.peers)
    assert not {"10.213.0.6", "10.214.5.77"} & set(outside.peers), outside.peers
    survived(hearth, neighbour)


def test_host_over_ipv6_is_unreachable(hearth, neighbour):
    """Attack: reach a host service over IPv6 — the host's global and
    link-local addresses. Stopped by: as root the worker has no IPv6
    address or route but loopback (ENETUNREACH, EADDRNOTAVAIL), and the
    host drops IPv6 from workers' links; rootless, the rules inside the
    worker's namespace refuse all IPv6 but ::1."""
    svc = HostService()
    try:
        targets = [a for a in host_ipv6_addresses() if a != "::1"]
        out = attack_ok(hearth, "eg-v6", '''
            import socket
            from hostile import err
            def connect(addr, port):
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s.settimeout(2)
                try:
                    s.connect((addr, port, 0, 2 if addr.startswith("fe80") else 0))
                    return "connected"
                finally:
                    s.close()
            def handler(event, context):
                with open("/proc/net/if_inet6") as f:
                    mine = [l.split()[-1] for l in f]
                return {"mine": mine,
                        "tries": {a: err(connect, a, event["port"]) for a in event["targets"]}}
        ''', {"port": svc.port, "targets": targets}, network="egress")
        # Rootless, slirp4netns' tap has a link-local address no route
        # leads from (slirp4netns runs without IPv6), and the rules inside
        # refuse all IPv6 but ::1.
        assert out["mine"] == ["lo"] or (e2e_conftest.ROOTLESS and "lo" in out["mine"]), out

        for addr, (result, detail) in out["tries"].items():
            assert result != "ok", (addr, detail)
        assert svc.accepted == []
    finally:
        svc.close()
    survived(hearth, neighbour)
