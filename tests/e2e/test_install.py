"""Issue 10 §2: `cmake --install` into a DESTDIR lays out hearthd, its
helpers, the runtimes, the headers, the docs, the systemd unit and the
config; the installed hearthd runs from there (its runtimes and helpers,
never the build or source tree's), deploys and invokes python3; the unit
carries what the service needs."""

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import HEARTHD, Hearth, _new_base, descendants, py

BUILD = Path(HEARTHD).resolve().parent
REPO = Path(__file__).resolve().parents[2]


def sbindir():
    return cache("CMAKE_INSTALL_PREFIX") + "/" + cache("CMAKE_INSTALL_SBINDIR")


def cache(name):
    text = (BUILD / "CMakeCache.txt").read_text()
    m = re.search(r"^%s:[A-Z]+=(.*)$" % re.escape(name), text, re.M)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def staged():
    """The build installed under a temporary DESTDIR: (destdir, prefix path)."""
    base = _new_base()
    base.chmod(0o755)  # rootless, the daemon's user runs the staged tree
    dest = base / "dest"
    p = subprocess.run(["cmake", "--install", str(BUILD)], env={"DESTDIR": str(dest),
                       "PATH": "/usr/bin:/bin"}, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    prefix = Path(str(dest) + cache("CMAKE_INSTALL_PREFIX"))
    yield base, dest, prefix
    shutil.rmtree(base, ignore_errors=True)


def test_everything_lands_in_the_usual_places(staged):
    _, dest, prefix = staged
    for rel in ["sbin/hearthd", "libexec/hearth/hearth-c-runner",
                "libexec/hearth/libhearth_zygote.so",
                "share/hearth/runtimes/python3/bootstrap.py",
                "share/hearth/runtimes/node/bootstrap.js", "include/hearth/protocol.h",
                "share/doc/hearth/README.md", "share/doc/hearth/operations.md",
                "share/doc/hearth/configuration.md", "lib/systemd/system/hearthd.service",
                "bin/hearth", "share/bash-completion/completions/hearth",
                "share/doc/hearth/cli.md"]:
        assert (prefix / rel).exists(), rel
    # the client runs from where it is installed
    p = subprocess.run([str(prefix / "bin" / "hearth"), "--help"], capture_output=True, timeout=30)
    assert p.returncode == 0 and b"hearth deploy" not in p.stderr and b"apply" in p.stdout
    sysconf = dest / "etc" / "hearth"
    assert (sysconf / "hearthd.conf").exists() and (sysconf / "hearthd.conf.default").exists(), \
        list(dest.rglob("*.conf*"))


def test_an_upgrade_keeps_the_operators_config(staged):
    _, dest, _ = staged
    conf = dest / "etc" / "hearth" / "hearthd.conf"
    conf.write_text("# mine\nlog-level = debug\n")
    p = subprocess.run(["cmake", "--install", str(BUILD)], env={"DESTDIR": str(dest),
                       "PATH": "/usr/bin:/bin"}, capture_output=True, timeout=120)
    assert p.returncode == 0
    assert conf.read_text() == "# mine\nlog-level = debug\n"


def test_the_installed_hearthd_runs_on_its_installed_files(staged, monkeypatch):
    base, dest, prefix = staged
    installed = prefix / "sbin" / "hearthd"
    monkeypatch.setattr(conftest.harness_config, "HEARTHD", str(installed))
    # The shipped config too (its data-dir is overridden by the helper's).
    h = Hearth(base / "run", ["--config", str(dest / "etc/hearth/hearthd.conf.default")])
    (base / "run").mkdir()
    try:
        h.start()
        log = h.stderr_text()
        runtimes = prefix / "share" / "hearth" / "runtimes"
        assert "runtimes from %s" % runtimes.resolve() in log, log
        assert "a build tree" not in log
        listed = {r["name"]: r for r in h.get("/v1/runtimes").json()["runtimes"]}
        assert listed["python3"]["usable"] and listed["c"]["usable"], listed
        h.deploy_ok("inst-hello", py("""
            def handler(event, context):
                return {"hello": event.get("name")}
        """))
        assert h.invoke_ok("inst-hello", json={"name": "x"}).json() == {"hello": "x"}
        assert Path("/proc/%d/exe" % h.pid).resolve() == installed.resolve()
        lib = str((prefix / "libexec/hearth/libhearth_zygote.so").resolve())
        maps = []
        for pid, _ in descendants(h.pid):
            try:
                maps.append(Path("/proc/%d/maps" % pid).read_text())
            except OSError:
                pass
        joined = "\n".join(maps)
        assert lib in joined, "no process maps the installed libhearth_zygote.so"
        assert str(BUILD) not in joined, "a process maps a file of the build tree"
    finally:
        h.close()


def test_the_systemd_unit_has_what_the_service_needs(staged):
    _, _, prefix = staged
    text = (prefix / "lib/systemd/system/hearthd.service").read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(text)
    svc = unit["Service"]
    assert svc["ExecStart"].split()[0] == sbindir() + "/hearthd"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["Delegate"] == "yes"
    assert svc["StateDirectory"] == "hearth"
    assert svc["KillMode"] == "mixed" and svc["KillSignal"] == "SIGTERM"
    assert int(svc["TimeoutStopSec"].rstrip("s")) > 10 + 3  # shutdown-grace + drain
    assert "User" not in svc, "hearthd starts as root (its spawner) and drops by itself"
    assert svc["ProtectSystem"] in ("full", "strict") and svc["PrivateTmp"] == "yes"
    for breaks_sandbox in ("ProtectKernelTunables", "ProtectControlGroups", "PrivateDevices",
                           "RestrictNamespaces", "MemoryDenyWriteExecute", "ProtectProc"):
        assert breaks_sandbox not in svc, breaks_sandbox
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    conf = (REPO / "dist/hearthd.conf.in").read_text()
    assert re.search(r"^data-dir = /var/lib/hearth$", conf, re.M)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_systemd_analyze_verifies_the_unit(staged, tmp_path):
    """systemd-analyze checks that ExecStart exists: the staged copy's path
    stands in for the installed one."""
    _, _, prefix = staged
    text = (prefix / "lib/systemd/system/hearthd.service").read_text()
    unit = tmp_path / "hearthd.service"
    unit.write_text(text.replace(sbindir() + "/hearthd", str(prefix / "sbin/hearthd")))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    problems = [l for l in out.splitlines() if "hearthd.service" in l]
    assert p.returncode == 0 and not problems, out
