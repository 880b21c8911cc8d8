"""Hostile functions against the network: the daemon's own port, the
outside world, the host's abstract unix sockets, raw sockets and other
socket families.

The only addresses a function here is ever pointed at are 127.0.0.1 (its
own loopback) and 10.255.255.1, which no packet can reach: the worker's
network namespace has no route to it, so the connect fails in the kernel
before anything is sent.

Each test deploys a function that tries the attack and reports what
happened, asserts the attack failed, and ends with survived(): the daemon
answers and this module's neighbour still serves.
"""

import socket
import uuid

from conftest import attack_ok, survived


def test_connect_to_daemon_port(hearth, neighbour):
    """Attack: reach hearthd's HTTP API from inside a function (to deploy,
    delete or invoke other functions) at 127.0.0.1:<its port>, or [::1].
    Stopped by: the worker's own network namespace — its loopback is not
    the host's, nothing listens there (ECONNREFUSED)."""
    with socket.create_connection(("127.0.0.1", hearth.port), timeout=5):
        pass  # the port really is open on the host's loopback
    out = attack_ok(hearth, "net-daemon", '''
        import errno, socket
        def connect(family, addr):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(3)
            try:
                s.connect(addr)
                s.sendall(b"GET /v1/functions HTTP/1.0\\r\\n\\r\\n")
                return ["ok", s.recv(200).decode("latin-1")]
            except OSError as e:
                return [errno.errorcode.get(e.errno, str(e.errno)), str(e)]
            finally:
                s.close()
        def handler(event, context):
            port = event["port"]
            return {"v4": connect(socket.AF_INET, ("127.0.0.1", port)),
                    "v6": connect(socket.AF_INET6, ("::1", port)),
                    "localhost": connect(socket.AF_INET, ("localhost", port))}
    ''', {"port": hearth.port})
    for what, (result, detail) in out.items():
        assert result in ("ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"), (what, detail)
    survived(hearth, neighbour)


def test_connect_outside(hearth, neighbour):
    """Attack: open a connection to the outside (exfiltrate data, attack the
    local network, reach a cloud metadata service) — here 10.255.255.1:80,
    by TCP and UDP. Stopped by: the network namespace has only loopback and
    no route: the kernel answers ENETUNREACH at once, nothing leaves the
    machine."""
    out = attack_ok(hearth, "net-outside", '''
        import errno, os, socket, time
        def attempt(kind):
            s = socket.socket(socket.AF_INET, kind)
            s.settimeout(3)
            t0 = time.monotonic()
            try:
                if kind == socket.SOCK_STREAM:
                    s.connect(("10.255.255.1", 80))
                else:
                    s.sendto(b"x", ("10.255.255.1", 80))
                r = "ok"
            except OSError as e:
                r = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__
            finally:
                s.close()
            return [r, time.monotonic() - t0]
        def handler(event, context):
            with open("/proc/net/dev") as f:
                ifaces = [l.split(":")[0].strip() for l in f.readlines()[2:]]
            with open("/proc/net/route") as f:
                routes = f.readlines()[1:]
            return {"tcp": attempt(socket.SOCK_STREAM), "udp": attempt(socket.SOCK_DGRAM),
                    "ifaces": ifaces, "routes": routes}
    ''')
    for what in ("tcp", "udp"):
        result, seconds = out[what]
        assert result == "ENETUNREACH", out
        assert seconds < 1.0, "%s took %.2f s: it was not refused locally" % (what, seconds)
    assert out["ifaces"] == ["lo"] and out["routes"] == [], out
    survived(hearth, neighbour)


def test_connect_host_abstract_unix_socket(hearth, neighbour):
    """Attack: connect to a host service's abstract unix socket (these have
    no file, so no mount hides them; D-Bus, X11 and container runtimes have
    used them). Stopped by: abstract names belong to a network namespace;
    the worker's own has none of the host's (ECONNREFUSED)."""
    name = "hearth-security-" + uuid.uuid4().hex
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        host.bind("\0" + name)
        host.listen(1)
        out = attack_ok(hearth, "net-abstract", '''
            import errno, socket
            def handler(event, context):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect("\\0" + event["name"])
                    return {"result": "connected"}
                except OSError as e:
                    return {"result": errno.errorcode.get(e.errno)}
                finally:
                    s.close()
        ''', {"name": name})
    finally:
        host.close()
    assert out == {"result": "ECONNREFUSED"}, out
    survived(hearth, neighbour)


def test_raw_and_foreign_sockets(hearth, neighbour):
    """Attack: open raw or packet sockets (forge traffic, sniff), netlink
    (reconfigure interfaces and routes, a large kernel surface), vsock (talk
    to the hypervisor) and friends. Stopped by: seccomp allows only
    AF_UNIX, AF_INET and AF_INET6 (others: EAFNOSUPPORT), and raw INET
    sockets need CAP_NET_RAW, which the worker lacks (EPERM)."""
    out = attack_ok(hearth, "net-raw", '''
        import errno, socket
        def try_socket(family, kind, proto=0):
            try:
                socket.socket(family, kind, proto).close()
                return "ok"
            except OSError as e:
                return errno.errorcode.get(e.errno)
        def handler(event, context):
            return {
                "packet": try_socket(socket.AF_PACKET, socket.SOCK_RAW),
                "netlink route": try_socket(socket.AF_NETLINK, socket.SOCK_RAW, 0),
                "vsock": try_socket(socket.AF_VSOCK, socket.SOCK_STREAM),
                "inet raw": try_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
                "inet6 raw": try_socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
                "family 0x10000|AF_INET": try_socket(0x10000 | 2, socket.SOCK_STREAM),
                "inet tcp": try_socket(socket.AF_INET, socket.SOCK_STREAM),
            }
    ''')
    assert out.pop("inet tcp") == "ok"  # ordinary sockets still work
    assert out.pop("inet raw") == "EPERM" and out.pop("inet6 raw") == "EPERM", out
    for what, result in out.items():
        assert result == "EAFNOSUPPORT", (what, result)
    survived(hearth, neighbour)
