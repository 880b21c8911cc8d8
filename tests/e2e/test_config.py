"""Issue 10 §2: the config file (key = value, FILE:LINE errors, the command
line wins), --check-config, and SIGHUP: live keys apply, the others are
named as waiting for a restart."""

import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import HEARTHD, py, wait_until

REPO = Path(__file__).resolve().parents[2]
HELLO = py("""
    def handler(event, context):
        return {"ok": True}
""")


def _conf(h, text):
    """Writes <base>/hearthd.conf, readable by all like /etc/hearth's: a
    reload reads it as --user (rootless, base becomes that user's)."""
    h.base.chmod(0o755)
    path = h.base / "hearthd.conf"
    path.write_text(text)
    path.chmod(0o644)
    return path


def _check(*args):
    p = subprocess.run([HEARTHD, *args], capture_output=True, timeout=10)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


@pytest.mark.parametrize("text, line, what", [
    ("listen = 127.0.0.1:1\nbogus = 1\n", 2, "unknown key 'bogus'"),
    ("# a comment\n\nmax-workers = many\n", 3, "max-workers must be a whole number"),
    ("no-templates = perhaps\n", 1, "no-templates must be true or false"),
    ("log-level = debug\nlog-level = info\n", 2, "log-level is set twice (first on line 1)"),
    ("just words\n", 1, "expected 'key = value'"),
    ("config = /etc/other.conf\n", 1, "unknown key 'config'"),
    ("egress-deny = 10.0.0.0/8\negress-deny = 10.0.0.1/8\n", 2,
     "egress-deny: 10.0.0.1/8 has host bits set"),
    ("egress-allow = 10.0.0.5/32:99999\n", 1, "egress-allow: "),
    ("egress-deny = 10.0.0.5/32:80\n", 1, "egress-deny: "),
    ("egress-subnet = 10.0.0.0/30\n", 1, "egress-subnet must be from a /8 to a /26"),
    ("default-network = host\n", 1, "default-network must be isolated or egress"),
])
def test_a_bad_file_stops_the_start_with_file_and_line(tmp_path, text, line, what):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    rc, out = _check("--config", str(conf), "--data-dir", str(tmp_path / "d"))
    assert rc == 2, out
    assert "%s:%d: %s" % (conf, line, what) in out, out
    assert not (tmp_path / "d").exists(), "nothing may start before the config is valid"


def test_egress_lists_add_up_and_are_checked(tmp_path):
    """egress-deny and egress-allow may repeat (file lines and options add
    up); a 65th entry, or IPv6, is refused with the reason."""
    conf = tmp_path / "lists.conf"
    conf.write_text("egress-deny = 10.0.0.0/8\negress-deny = 192.168.0.0/16\n"
                    "egress-allow = 10.0.0.5/32:5432\negress-allow = 10.1.0.0/16\n")
    rc, out = _check("--config", str(conf), "--egress-deny", "172.16.0.0/12", "--check-config")
    assert rc == 0 and "ok" in out, out
    many = " ".join("--egress-deny 10.%d.0.0/16" % i for i in range(65)).split()
    rc, out = _check(*many, "--check-config")
    assert rc == 2 and "at most 64" in out, out
    rc, out = _check("--egress-deny", "fd00::/8", "--check-config")
    assert rc == 2 and "egress-deny" in out and "IPv6" in out, out


def test_a_missing_config_file_is_an_error(tmp_path):
    rc, out = _check("--config", str(tmp_path / "nope.conf"))
    assert rc == 2 and "nope.conf: cannot open" in out, out


def test_the_shipped_config_names_every_option_and_each_default_is_valid(tmp_path):
    """dist/hearthd.conf.in: every option of --help appears; uncommenting
    every line gives a file --check-config accepts."""
    rc, helptext = _check("--help")
    options = set(re.findall(r"^  --([a-z-]+)", helptext, re.M))
    options -= {"config", "check-config", "version", "help"}
    shipped = (REPO / "dist" / "hearthd.conf.in").read_text()
    keys = set(re.findall(r"^#?([a-z-]+) = ", shipped, re.M))
    assert options - keys == set(), "options missing from dist/hearthd.conf.in"
    assert keys - options == set(), "keys in dist/hearthd.conf.in that are no option"
    every = re.sub(r"^#([a-z-]+ = )", r"\1", shipped, flags=re.M)
    every = re.sub(r"@[A-Z_]+@", str(tmp_path), every)
    conf = tmp_path / "all.conf"
    conf.write_text(every)
    rc, out = _check("--config", str(conf), "--check-config")
    assert rc == 0 and "ok" in out, out


def test_file_values_apply_and_the_command_line_wins(hearth_factory):
    h = hearth_factory(start=False)
    conf = _conf(h, "max-queue = 7   # file\nkeep-alive = 5\n")
    h.args = ["--config", str(conf), "--keep-alive", "9"]
    h.start()
    h.deploy_ok("cf-wins", HELLO)
    s = h.show("cf-wins").json()
    text = repr(s)
    assert re.search(r"'max_queue': 7\b", text), text
    assert re.search(r"'keep_alive_s': 9\b", text), text


def _sighup_and_wait(h, needle):
    h.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: needle in h.stderr_text(), 10), h.stderr_tail()


def test_sighup_applies_live_keys_and_names_the_others(hearth_factory):
    h = hearth_factory(start=False)
    conf = _conf(h, "max-queue = 7\n")
    h.args = ["--config", str(conf)]
    h.start()
    h.deploy_ok("cf-hup", HELLO)
    conf.write_text("max-queue = 3\nno-templates = true\nuid-range = 500000:16\n")
    _sighup_and_wait(h, "config: 2 changed key(s) wait for a restart")
    log = h.stderr_text()
    assert "config: max-queue changed: applied" in log
    assert "config: no-templates changed but needs a restart: not applied" in log
    assert "config: uid-range changed but needs a restart: not applied" in log
    assert re.search(r"'max_queue': 3\b", repr(h.show("cf-hup").json()))
    assert h.invoke_ok("cf-hup").json() == {"ok": True}


def test_a_bad_file_at_reload_keeps_the_running_config(hearth_factory):
    h = hearth_factory(start=False)
    conf = _conf(h, "max-queue = 7\n")
    h.args = ["--config", str(conf)]
    h.start()
    h.deploy_ok("cf-bad", HELLO)
    conf.write_text("max-queue = 3\nmax-workers = -1\n")
    _sighup_and_wait(h, "keeping the running configuration")
    assert "%s:2: max-workers must be" % conf in h.stderr_text()
    assert re.search(r"'max_queue': 7\b", repr(h.show("cf-bad").json()))
    assert h.invoke_ok("cf-bad").json() == {"ok": True}
