"""Hostile functions and requests against secrets: reading another
function's secret (by path, through /proc), reaching another worker's
/run/secrets, writing there, names that try to leave the secrets folder,
and the private key's file.

Each attack names what stops it; function attacks end with survived()."""

import base64
import os
import stat
import threading
import uuid

import requests

from conftest import ROOTLESS, assert_error, attack_ok, py, survived

DENIED = {"ENOENT", "EACCES", "EPERM", "EROFS"}


def put_secret(hearth, name, value):
    return hearth.request("PUT", "/v1/secrets/%s" % name, data=value,
                          headers={"Content-Type": "application/octet-stream"})


def make_secret(hearth, prefix):
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    value = ("value-of-%s-" % name + uuid.uuid4().hex).encode()
    r = put_secret(hearth, name, value)
    assert r.status_code == 201, r.text
    return name, value


def test_other_functions_secret_by_path_and_proc(hearth, neighbour):
    """Attack: a function that lists no secret reads another function's
    secret at /run/secrets/<name>, through /proc/*/root, and scans /proc
    for any process whose root has one. Stopped by: /run/secrets is a tmpfs
    mounted in the owner's own mount namespace only; the attacker's pid
    namespace holds only its own processes (hidepid=invisible hides even
    its init)."""
    name, value = make_secret(hearth, "victim")
    hearth.deploy_ok("sec-owner", files={"main.py": py('''
        def handler(event, context):
            return {"v": open("/run/secrets/%s", "rb").read().decode()}
    ''' % name)}, secrets=[name])
    assert hearth.invoke_ok("sec-owner", json={}).json() == {"v": value.decode()}
    out = attack_ok(hearth, "sec-thief", '''
        import os, hostile
        def handler(event, context):
            n = event["name"]
            paths = ["/run/secrets/" + n, "/proc/1/root/run/secrets/" + n,
                     "/proc/self/root/run/secrets/" + n]
            found = []
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    p = "/proc/%s/root/run/secrets" % pid
                    if os.path.isdir(p):
                        found.append(p)
            return {"tries": {p: hostile.err(hostile.read, p) for p in paths},
                    "found": found, "pids": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    ''', event={"name": name})
    for path, (result, detail) in out["tries"].items():
        assert result in DENIED, "%s was readable: %r" % (path, detail)
    assert out["found"] == []
    assert value.decode() not in str(out)
    survived(hearth, neighbour)


def test_another_workers_run_secrets(hearth, neighbour):
    """Attack: two workers of the same function, busy at once, each look
    for the other's /run/secrets. Stopped by: each worker gets a tmpfs of
    its own (different devices), made in its own mount namespace, owned by
    its own uid; neither sees the other's processes."""
    name, value = make_secret(hearth, "pair")
    hearth.deploy_ok("sec-pair", files={"main.py": py('''
        import os, time
        def handler(event, context):
            time.sleep(0.6)
            st = os.stat("/run/secrets")
            others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
            return {"dev": st.st_dev, "uid": os.getuid(), "dir_uid": st.st_uid,
                    "dir_mode": st.st_mode & 0o777, "pid": os.getpid(),
                    "others": [open("/proc/%s/cmdline" % p, "rb").read().decode("latin-1")
                               for p in others if os.path.exists("/proc/%s/cmdline" % p)]}
    ''')}, secrets=[name], max_concurrency=2)
    results = []

    def call():
        results.append(hearth.invoke_ok("sec-pair", json={}).json())

    ts = [threading.Thread(target=call) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(results) == 2
    a, b = results
    assert a["dir_mode"] == 0o500 and a["dir_uid"] == a["uid"]
    # Two calls at once, each sleeping: two workers (max_concurrency=2).
    assert a["dev"] != b["dev"], "two workers share one /run/secrets"
    assert a["others"] == [] and b["others"] == []
    if not ROOTLESS:
        assert a["uid"] != b["uid"]  # as root, each worker has a uid of its own
    survived(hearth, neighbour)


def test_write_to_run_secrets(hearth, neighbour):
    """Attack: overwrite, append to, create beside, chmod, unlink and
    remount the worker's own secrets. Stopped by: files 0400 in a 0500
    folder, and the tmpfs remounted read-only before the worker runs; no
    capabilities for mount."""
    name, value = make_secret(hearth, "ro")
    out = attack_ok(hearth, "sec-writer", '''
        import os, hostile
        def handler(event, context):
            p = "/run/secrets/" + event["name"]
            libc = hostile.libc
            return {
                "overwrite": hostile.err(lambda: open(p, "wb").write(b"x")),
                "append": hostile.err(lambda: open(p, "ab").write(b"x")),
                "create": hostile.err(lambda: open("/run/secrets/new", "wb").write(b"x")),
                "chmod": hostile.err(os.chmod, p, 0o666),
                "unlink": hostile.err(os.unlink, p),
                "mkdir": hostile.err(os.mkdir, "/run/secrets/d"),
                "remount": hostile.sys_call(165, b"none", b"/run/secrets", None, 0x21, None),
                "tmpfs_over": hostile.sys_call(165, b"tmpfs", b"/run/secrets", b"tmpfs", 0, None),
                "still": hostile.read(p),
            }
    ''', event={"name": name}, secrets=[name])
    for k in ("overwrite", "append", "create", "chmod", "unlink", "mkdir"):
        assert out[k][0] in DENIED, "%s succeeded: %r" % (k, out[k])
    assert out["remount"][0] == -1 and out["tmpfs_over"][0] == -1, out
    assert out["still"] == value.decode()
    survived(hearth, neighbour)


def test_names_that_leave_the_folder(hearth):
    """Attack: secret names with '..', '/', an encoded '/', NUL and more
    than 63 bytes, on PUT and DELETE, and in a function's "secrets" list.
    Stopped by: one name rule ([a-z0-9][a-z0-9-]{0,62}) checked before
    anything touches a file, by the API, the store, the registry and the
    spawner (which reads only through the folder's fd, O_NOFOLLOW)."""
    secrets_dir = hearth.data_dir / "secrets"
    before = sorted(os.listdir(secrets_dir))
    raw = [".%2e", "..%2fhearth.db", "a%2fb", "a%00b", "%00", "x" * 64, ".hidden", "%2e%2e"]
    for n in raw:
        # requests would normalise "..": send the path as written.
        s = requests.Session()
        req = requests.Request("PUT", hearth.url("/v1/secrets/") + n, data=b"v").prepare()
        req.url = hearth.url("/v1/secrets/") + n
        r = s.send(req, timeout=10)
        assert r.status_code in (400, 404), (n, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("invalid_name", "not_found"), (n, r.text)
        req = requests.Request("DELETE", hearth.url("/v1/secrets/") + n).prepare()
        req.url = hearth.url("/v1/secrets/") + n
        r = s.send(req, timeout=10)
        assert r.status_code in (400, 404), (n, r.status_code, r.text)
    for bad in (["../hearth.db"], ["a/b"], ["a\u0000b"], ["x" * 64], [".."]):
        r = hearth.deploy("sec-badlist", files={"main.py": "def handler(e, c): return 1\n"},
                          secrets=bad)
        assert r.status_code == 400, r.text  # the NUL one never parses: invalid_json
        assert r.json()["error"]["code"] in ("invalid_field", "invalid_json"), r.text
    assert sorted(os.listdir(secrets_dir)) == before
    assert (hearth.data_dir / "hearth.db").exists()


def test_key_file(hearth):
    """The private key: 0600, 32 bytes, in the data dir; as root it stays
    root's while the daemon runs as --user (only the spawner reads it), so
    a compromised daemon cannot open a sealed value itself."""
    key = hearth.data_dir / "secrets.key"
    st = os.stat(key, follow_symlinks=False)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    daemon_uid = os.stat("/proc/%d" % hearth.pid).st_uid
    if ROOTLESS:
        assert st.st_uid == daemon_uid
    else:
        assert st.st_uid == 0 and daemon_uid != 0
        assert os.stat(hearth.data_dir / "secrets.pub").st_uid == daemon_uid
    assert stat.S_IMODE(os.stat(hearth.data_dir / "secrets").st_mode) == 0o700


def test_a_planted_symlink_is_not_followed(hearth, neighbour):
    """Attack: someone with write access to the secrets folder (a daemon
    bug, a careless operator) replaces a sealed file with a symlink to a
    host file, or copies one secret's file over another's name. Stopped by:
    the spawner opens O_NOFOLLOW and the sealed value names its secret, so
    the worker does not start and nothing leaks."""
    a, _ = make_secret(hearth, "plant-a")
    b, bval = make_secret(hearth, "plant-b")
    hearth.deploy_ok("sec-planted", files={"main.py": py('''
        def handler(event, context):
            return {"v": open("/run/secrets/%s", "rb").read().decode()}
    ''' % a)}, secrets=[a])
    d = hearth.data_dir / "secrets"
    os.unlink(d / a)
    os.symlink("/etc/passwd", d / a)
    r = hearth.invoke("sec-planted", json={})
    assert r.status_code >= 500 and "root:" not in r.text
    os.unlink(d / a)
    with open(d / b, "rb") as src, open(d / a, "wb") as dst:
        dst.write(src.read())
    r = hearth.invoke("sec-planted", json={})
    assert r.status_code >= 500 and bval.decode() not in r.text
    put_secret(hearth, a, b"repaired")
    assert hearth.invoke_ok("sec-planted", json={}).json() == {"v": "repaired"}
    survived(hearth, neighbour)
