"""A network of the tests' own for egress (tests/e2e/test_egress.py,
tests/security/test_egress_attacks.py): "outside" hosts that are network
namespaces this module makes, joined to the host by veth pairs, on
10.214.0.0/16 (the project's test range), plus the cloud metadata address
169.254.169.254 routed to one of them.

Every address a test probes is loopback, one of the host's own, or an
address given here to a namespace the test made: even a broken rule sends
nothing off the machine.

Owns: the namespaces, veth pairs and routes it makes (named hearth-out-*
and hto*), and the servers it starts in them; all removed by close().
Must never: touch an interface, route or namespace it did not make.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

METADATA = "169.254.169.254"
TEST_RANGE = "10.214.0.0/16"

# Serves GET /<anything> with {"outside": <name>, "peer": <client ip>} on
# every port given, on every address of its namespace; and records peers.
_SERVER = r'''
import http.server, json, socketserver, sys, threading
name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"outside": name, "peer": self.client_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("peer", self.client_address[0], flush=True)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
servers = [S(("0.0.0.0", p), H) for p in ports]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
servers[0].serve_forever()
'''


class TunForRootless:
    """Rootless egress needs /dev/net/tun open to the daemon's user, as
    Debian's udev leaves it (0666); a machine without udev may have 0600.
    For the rootless runs the tests open it for the while and put its mode
    back after (a context manager; nothing when it is open already)."""

    PATH = "/dev/net/tun"

    def __init__(self, rootless):
        self.rootless = rootless
        self.mode = None

    def __enter__(self):
        if self.rootless and os.path.exists(self.PATH):
            mode = os.stat(self.PATH).st_mode & 0o777
            if mode & 0o006 != 0o006:
                self.mode = mode
                os.chmod(self.PATH, mode | 0o666)
        return self

    def __exit__(self, *exc):
        if self.mode is not None:
            os.chmod(self.PATH, self.mode)
            self.mode = None


def run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def host_ipv4_addresses():
    """Every IPv4 address of the host's own interfaces, loopback included."""
    out = run("ip", "-4", "-o", "addr", "show").stdout
    return sorted({line.split()[3].split("/")[0] for line in out.splitlines()})


def host_ipv6_addresses():
    out = run("ip", "-6", "-o", "addr", "show").stdout
    return sorted({line.split()[3].split("/")[0] for line in out.splitlines()})


def hearth_links():
    """Names of the links hearthd makes (hth*), in the host's namespace."""
    out = run("ip", "-o", "link", "show").stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith("hth")]


def hearth_table_present():
    """Whether table inet hearth exists, read through the kernel's own
    listing (nft when installed, else /proc shows nothing: use the tool)."""
    try:
        r = run("nft", "list", "table", "inet", "hearth", check=False)
    except FileNotFoundError:
        return None
    return r.returncode == 0


def ip_forward():
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


class Outside:
    """One outside host: namespace hearth-out-<tag>, at 10.214.<n>.2/24 (the
    host's end of its veth is 10.214.<n>.1), an HTTP server on `ports`.
    metadata=True also gives it 169.254.169.254 and routes that address
    to it from the host."""

    def __init__(self, n, ports=(8080,), metadata=False):
        self.n = n
        self.tag = "%d-%d" % (os.getpid() % 100000, n)
        self.ns = "hearth-out-" + self.tag
        self.host_if, self.ns_if = "hto%da" % n, "hto%db" % n
        self.addr, self.host_addr = "10.214.%d.2" % n, "10.214.%d.1" % n
        self.subnet = "10.214.%d.0/24" % n
        self.ports = tuple(ports)
        self.metadata = metadata
        self.proc = None
        self.peers = []
        self._made = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.close_stale()
        run("ip", "netns", "add", self.ns)
        self._made = True
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        run("ip", "link", "set", self.ns_if, "netns", self.ns)
        run("ip", "addr", "add", self.host_addr + "/24", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        inside = ("ip", "netns", "exec", self.ns)
        run(*inside, "ip", "addr", "add", self.addr + "/24", "dev", self.ns_if)
        run(*inside, "ip", "link", "set", self.ns_if, "up")
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "route", "add", "default", "via", self.host_addr)
        if self.metadata:
            run(*inside, "ip", "addr", "add", METADATA + "/32", "dev", self.ns_if)
            run("ip", "route", "add", METADATA + "/32", "via", self.addr)
        self.proc = subprocess.Popen(
            list(inside) + [sys.executable, "-c", _SERVER, self.ns] + [str(p) for p in self.ports],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "outside server did not start"
        threading.Thread(target=self._read_peers, daemon=True).start()

    def _read_peers(self):
        for line in self.proc.stdout:
            if line.startswith("peer "):
                self.peers.append(line.split()[1])

    def close_stale(self):
        """A namespace of the same name from a run that was killed."""
        run("ip", "netns", "del", self.ns, check=False)
        run("ip", "link", "del", self.host_if, check=False)

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.metadata:
            run("ip", "route", "del", METADATA + "/32", check=False)
        if self._made:
            run("ip", "link", "del", self.host_if, check=False)
            run("ip", "netns", "del", self.ns, check=False)
            self._made = False


class HostService:
    """A TCP service on the host bound to 0.0.0.0:<port>: accepts and
    writes b"host-service" to whoever connects, and counts them."""

    def __init__(self, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append(peer[0])
            try:
                c.sendall(b"host-service")
            except OSError:
                pass
            c.close()

    def close(self):
        self._stop = True
        self.sock.close()


# The function every egress test deploys: tries each target and says what
# happened, how long it took, and (for HTTP) what answered.
PROBE = '''
import errno, json, socket, time, urllib.request

def tcp(addr, port, timeout):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        data = s.recv(100).decode("latin-1")
        return {"result": "ok", "data": data, "s": time.monotonic() - t0}
    except socket.timeout:
        return {"result": "timeout", "s": time.monotonic() - t0}
    except OSError as e:
        return {"result": errno.errorcode.get(e.errno, str(e.errno)), "s": time.monotonic() - t0}
    finally:
        s.close()

def http(url, timeout):
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return {"result": "ok", "body": json.loads(r.read()), "s": time.monotonic() - t0}
    except Exception as e:
        reason = getattr(e, "reason", e)
        code = getattr(reason, "errno", None)
        name = errno.errorcode.get(code, type(reason).__name__) if code else type(reason).__name__
        return {"result": name, "detail": str(e), "s": time.monotonic() - t0}

def handler(event, context):
    out = []
    for t in event.get("tcp", []):
        out.append(tcp(t[0], t[1], event.get("timeout", 3)))
    for u in event.get("http", []):
        out.append(http(u, event.get("timeout", 3)))
    return out
'''


def deploy_probe(h, name, network="egress", **kw):
    """Deploys PROBE as `name` on daemon h (egress unless told)."""
    h.deploy_ok(name, PROBE, network=network, **kw)


def probe(h, name, **event):
    """Runs the probe with {"tcp": [[addr, port]...], "http": [url...]}: one result each."""
    return h.invoke_ok(name, json=event, timeout=60).json()
