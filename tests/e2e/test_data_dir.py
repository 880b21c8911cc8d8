"""Issue 9 point 4: the data dir and everything in it is closed to other
local users.

A data dir made beforehand as 0755, holding a hearth.db made 0644, let
another local user read a function's env values out of hearth.db-wal. Now
hearthd makes such a folder 0700 (and its database files 0600) as
docs/security.md promises, and refuses a folder other users may write to.
The "other user" here is uid 65533: neither root, nor the daemon's --user
(nobody), nor a worker uid.
"""

import os
import signal
import stat
import subprocess

from conftest import HEARTHD, ROOTLESS, ROOTLESS_USER, SETPRIV, _as_user, free_port, py

import pytest

OTHER_UID = 65533
SECRET = "hx-secret-value-7f3a9c"

CODE = py("""
    import os
    def handler(event, context):
        print("hello from the function")
        return "ok"
""")

# Run as OTHER_UID: prints every path under argv[1] it can read (files) or
# list (folders), and any file whose bytes hold the secret.
PROBE = r"""
import os, sys
root, secret = sys.argv[1], sys.argv[2].encode()
for path in sys.argv[3:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                data = f.read()
                if secret in data:
                    print("SECRET", path)
        print("READABLE", path)
    except OSError:
        pass
"""


def every_path(top):
    """Every file and folder under `top`, itself included (walked as root)."""
    out = [str(top)]
    for root, dirs, files in os.walk(top):
        out += [os.path.join(root, n) for n in dirs + files]
    return out


def readable_by_other_user(top):
    if not SETPRIV or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to act as another user")
    p = subprocess.run([SETPRIV, "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID),
                        "--clear-groups", "/usr/bin/python3", "-c", PROBE, str(top), SECRET]
                       + every_path(top), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode(errors="replace").splitlines()


def test_premade_open_data_dir_and_db_end_up_closed_to_other_users(hearth_factory):
    h = hearth_factory(start=False)
    os.chmod(h.base, 0o755)  # the parent lets anyone through: only our modes protect
    h.data_dir.mkdir()
    os.chmod(h.data_dir, 0o755)
    db = h.data_dir / "hearth.db"
    db.touch()
    os.chmod(db, 0o644)
    h.start()
    h.deploy_ok("dd-secret", CODE, env={"API_KEY": SECRET})
    h.invoke_ok("dd-secret")
    assert h.log_records("dd-secret"), "no log lines: the log files were not made"

    # the daemon is running: hearth.db-wal and -shm exist now
    paths = every_path(h.data_dir)
    assert any(p.endswith("hearth.db-wal") for p in paths), paths
    leaks = readable_by_other_user(h.data_dir)
    assert not leaks, "another local user can read:\n" + "\n".join(leaks)
    assert "made it 0700" in h.stderr_text(), h.stderr_tail()

    # and each file is closed in its own right, not only behind the folder:
    # everything but the code (which the sandbox's uids must read, and which
    # only the 0700 data dir guards) is owner-only
    assert stat.S_IMODE(os.stat(h.data_dir).st_mode) == 0o700
    code = str(h.data_dir / "code")
    for p in paths:
        if p == code or p.startswith(code + os.sep):
            continue
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        assert mode & 0o077 == 0, "%s is mode %04o" % (p, mode)


def test_data_dir_others_may_write_to_is_refused(hearth_factory):
    h = hearth_factory(start=False)
    h.data_dir.mkdir()
    os.chmod(h.data_dir, 0o777)
    cmd = [HEARTHD, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir", str(h.data_dir)]
    if ROOTLESS:
        cmd = _as_user(cmd, h.base, ROOTLESS_USER)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)  # it started and serves: stop it, then fail
        out, _ = p.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert p.returncode not in (0, -signal.SIGTERM), \
        "hearthd started on a world-writable data dir:\n" + text
    assert "writable by other users" in text and "0777" in text, text
    assert not (h.data_dir / "hearth.db").exists(), "it refused only after writing secrets there"
