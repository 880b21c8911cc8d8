#!/usr/bin/python3
"""bench/egress.py — what "network": "egress" costs a worker's start (issue 13).

A report, not a test. As root, on 127.0.0.1 only, in one run:

  1. without pre-built sandboxes (--prebuilt-max 0): a Python hello's
     cold call - warm call, isolated and egress in turn (EGRESS_N each, a
     fresh function per cold sample). An egress sandbox is never cloned
     from a template (it waits on an fd a template cannot pass), so this
     is the whole cost of an egress cold start without a pool;
  1b. the same with --no-templates, both modes exec'ing the interpreter:
     the difference is what making the veth pair (root) or starting
     slirp4netns (rootless) adds to building a sandbox;
  2. with the pools (--default-network egress, so the egress pool is kept
     from the start): the same, each cold call after both pools are back
     to their target: an egress cold start claims a sandbox whose link is
     already up, so it should cost no more than an isolated one (the
     issue's target).

Warm calls (EGRESS_WARM_N, one function per mode) are the baseline of
each. The daemon, the HTTP client and the pool reading are bench/cold.py's
(loaded as a module). Prints a plain-text table on stdout: what | isolated
| egress | difference. Exit 0 when the run completed, 1 when a case failed,
2 on a set-up failure.

Run:  bench/egress.sh   (EGRESS_N=40 EGRESS_WARM_N=300 by default; --quick: 5 / 50)
      EGRESS_ROOTLESS=nobody bench/egress.sh   (the daemons rootless, as that user:
      slirp4netns instead of veth pairs; /dev/net/tun is opened to it for the run)
"""

import os
import pwd
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # a benchmark run leaves nothing in the repo
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(1, str(REPO / "bench"))
import cold as C  # noqa: E402  (bench/cold.py: its daemon, pool and calls)
S, R = C.S, C.R
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from netlab import TunForRootless  # noqa: E402  (the rootless tests' own /dev/net/tun handling)

QUICK = os.environ.get("EGRESS_QUICK") == "1"
N = int(os.environ.get("EGRESS_N", "5" if QUICK else "40"))
WARM_N = int(os.environ.get("EGRESS_WARM_N", "50" if QUICK else "300"))
MODES = ("isolated", "egress")


def log(msg):
    print("egress: " + msg, file=sys.stderr, flush=True)


def p50_ms(ns):
    return statistics.median(ns) / 1e6


def warm_p50(api, d, network):
    name = "warm-" + network
    C.deploy(api, "python3", name, network=network)
    raw = C.build_request("POST", C.invoke_path(name), b"{}")
    conn = S.Conn(d.port)
    try:
        for _ in range(20):
            C.call(conn, raw, name)
        return p50_ms([C.call(conn, raw, name)[0] for _ in range(WARM_N)])
    finally:
        conn.close()


def cold_samples(api, d, pools, tag):
    """{network: [ns of each cold call]}, the modes in turn."""
    out = {m: [] for m in MODES}
    conn = S.Conn(d.port)
    try:
        for i in range(N + 1):
            for m in MODES:
                name = "%s-%s-%d" % (tag, m, i)
                C.deploy(api, "python3", name, network=m)
                for p in pools.values():
                    p.wait_refilled("python3")
                t, cold = C.call(conn, C.build_request("POST", C.invoke_path(name), b"{}"), name)
                if not cold:
                    raise S.BenchError("%s: the first call was not cold" % name)
                if i:  # the first of each is the unmeasured warm-up
                    out[m].append(t)
                api.delete(name)
    finally:
        conn.close()
    return out


def run_case(base, title, extra, rows):
    tag = title.split()[0]
    d = C.Daemon(os.environ["HEARTHD"], base, tag, 64, extra)
    d.start()
    pools = {m: C.Pool(d.port, 10.0, network=m) for m in MODES}
    try:
        api = S.Api(d.port)
        warm = {m: warm_p50(api, d, m) for m in MODES}
        cold = cold_samples(api, d, pools, tag)
        claims = {m: pools[m].counters("python3") for m in MODES}
        for m in MODES:
            log("%s, %s: cold p50 %.2f ms, warm p50 %.3f ms, pool %s" % (
                title, m, p50_ms(cold[m]), warm[m], claims[m]))
        iso = p50_ms(cold["isolated"]) - warm["isolated"]
        egr = p50_ms(cold["egress"]) - warm["egress"]
        rows.append((title + ": cold - warm, p50", "%.2f ms" % iso, "%.2f ms" % egr,
                     "%+.2f ms" % (egr - iso)))
        rows.append((title + ": pool claims (isolated, egress)",
                     "%s" % (claims["isolated"] and int(claims["isolated"][0])),
                     "%s" % (claims["egress"] and int(claims["egress"][0])), "-"))
    finally:
        for p in pools.values():
            p.close()
        d.stop()


def run_as(user, base):
    """Rootless: HEARTHD becomes a script that starts it as `user` (setpriv),
    whose the temp dir then is; the daemons' command lines stay cold.py's."""
    pw = pwd.getpwnam(user)
    wrapper = base / ("hearthd-as-" + user)
    wrapper.write_text("#!/bin/sh\nexec setpriv --reuid %d --regid %d --clear-groups %s \"$@\"\n"
                       % (pw.pw_uid, pw.pw_gid, os.environ["HEARTHD"]))
    wrapper.chmod(0o755)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    base.chmod(0o755)
    os.environ["HEARTHD"] = str(wrapper)


def main():
    if os.geteuid() != 0:
        print("egress: needs root (sandboxes and the egress table)", file=sys.stderr)
        return 2
    rows = []
    user = os.environ.get("EGRESS_ROOTLESS")
    with tempfile.TemporaryDirectory(prefix="hearth-egress-bench-") as tmp, \
            TunForRootless(bool(user)):
        base = Path(tmp)
        if user:
            run_as(user, base)
        try:
            run_case(base, "no-pool (--prebuilt-max 0)", ["--prebuilt-max", "0"], rows)
            # Egress never clones a template: without them too, the
            # difference is the link alone.
            run_case(base, "exec (--prebuilt-max 0 --no-templates)",
                     ["--prebuilt-max", "0", "--no-templates"], rows)
            run_case(base, "pools (--default-network egress)",
                     ["--default-network", "egress"], rows)
        except S.SetupError as e:
            print("egress: set-up failed: %s" % e, file=sys.stderr)
            return 2
        except S.BenchError as e:
            print("egress: FAILED: %s" % e, file=sys.stderr)
            return 1
    print("Egress network mode: what it adds to a worker's start (%d cold samples per mode, "
          "%d warm calls%s)" % (N, WARM_N, ", rootless as " + user if user else ", as root"))
    print("target: with the pools, an egress cold start costs no more than an isolated one\n")
    print("%-66s | %-10s | %-10s | %s" % ("what", "isolated", "egress", "egress - isolated"))
    for r in rows:
        print("%-66s | %-10s | %-10s | %s" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
