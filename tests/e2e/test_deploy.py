"""Issue point 2 (Deploy): files, archives (JSON base64 and raw bodies), versions,
name and settings validation, hostile packages refused with nothing written."""

import gzip
import io
import json
import os
import re
import stat
import tarfile
import time
import uuid
import zipfile

import pytest

from conftest import assert_error, b64, py, targz, zipbytes

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
V1 = py("""
    def handler(event, context):
        return "v1"
""")
V2 = py("""
    def handler(event, context):
        return "v2"
""")


def assert_function(fn, name, version):
    assert fn["name"] == name
    assert isinstance(fn["version"], int) and not isinstance(fn["version"], bool)
    assert fn["version"] == version, fn
    for key in ("runtime", "handler", "env", "timeout_ms", "memory_mb", "created_at",
                "updated_at", "pool"):
        assert key in fn, "function object lacks %r: %s" % (key, fn)
    assert RFC3339.match(fn["created_at"]), fn["created_at"]
    assert RFC3339.match(fn["updated_at"]), fn["updated_at"]
    for key in ("starting", "idle", "busy", "queued"):
        assert isinstance(fn["pool"].get(key), int), fn["pool"]


def test_files_deploy_creates_with_defaults(hearth):
    r = hearth.deploy("dp-files", files={"main.py": V1})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Request-Id")
    fn = r.json()
    assert_function(fn, "dp-files", 1)
    assert fn["runtime"] == "python3" and fn["handler"] == "main.handler"
    assert fn["env"] == {} and fn["timeout_ms"] == 30000 and fn["memory_mb"] == 128
    assert hearth.invoke_ok("dp-files").text == "v1"


def test_update_answers_200_and_version_goes_up(hearth):
    first = hearth.deploy("dp-update", files={"main.py": V1})
    assert first.status_code == 201, first.text
    v = first.json()["version"]
    assert hearth.invoke_ok("dp-update").text == "v1"
    for code, expect in ((V2, "v2"), (V1, "v1"), (V2, "v2")):
        time.sleep(0.01)
        r = hearth.deploy("dp-update", files={"main.py": code}, env={"A": "b"})
        assert r.status_code == 200, r.text
        fn = r.json()
        assert fn["version"] > v, "version did not go up: %s after %s" % (fn["version"], v)
        v = fn["version"]
        assert fn["env"] == {"A": "b"}
        assert fn["created_at"] == first.json()["created_at"]
        inv = hearth.invoke_ok("dp-update")
        assert inv.text == expect
        assert inv.headers.get("X-Hearth-Function-Version") == str(v)
    assert hearth.show("dp-update").json()["version"] == v


def test_deploy_without_content_type_is_json(hearth):
    body = json.dumps({"runtime": "python3", "handler": "main.handler", "files": {"main.py": V1}})
    r = hearth.request("PUT", "/v1/functions/dp-noctype", data=body)
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("dp-noctype").text == "v1"


def test_settings_are_stored_and_applied(hearth):
    code = py("""
        import os
        def handler(event, context):
            return {"greeting": os.environ.get("GREETING"), "remaining": context.get_remaining_time_in_millis()}
    """)
    fn = hearth.deploy_ok("dp-settings", code, env={"GREETING": "hi"}, timeout_ms=4000, memory_mb=256)
    assert fn["env"] == {"GREETING": "hi"} and fn["timeout_ms"] == 4000 and fn["memory_mb"] == 256
    out = hearth.invoke_ok("dp-settings").json()
    assert out["greeting"] == "hi"
    assert 0 < out["remaining"] <= 4000


def test_nested_module_handler(hearth):
    files = {"pkg/mod.py": py("""
        from pkg import helper
        def fn(event, context):
            return helper.WORD
    """), "pkg/helper.py": "WORD = 'nested'\n"}
    hearth.deploy_ok("dp-nested", files=files, handler="pkg/mod.fn")
    assert hearth.invoke_ok("dp-nested").text == "nested"


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "tar"])
def test_archive_in_json(hearth, kind):
    name = "dp-archive-" + kind.replace(".", "")
    files = {"main.py": "from lib.util import word\ndef handler(e, c):\n    return word()\n",
             "lib/util.py": "def word():\n    return 'from-%s'\n" % kind}
    if kind == "zip":
        data = zipbytes(files)
    elif kind == "tar.gz":
        data = targz(files)
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for n, text in files.items():
                info = tarfile.TarInfo(n)
                info.size = len(text)
                tar.addfile(info, io.BytesIO(text.encode()))
        data = buf.getvalue()
    r = hearth.deploy(name, archive=b64(data))
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok(name).text == "from-" + kind


def test_archive_with_dot_entries_like_tar_dash_C(hearth):
    """`tar czf - -C dir .` yields './' and './main.py' entries: a normal package."""
    dot = tarfile.TarInfo("./")
    dot.type, dot.mode = tarfile.DIRTYPE, 0o755
    data = targz({"./": dot, "./main.py": V1})
    r = hearth.deploy_raw("dp-dot", data, "application/gzip", runtime="python3",
                          handler="main.handler")
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("dp-dot").text == "v1"


@pytest.mark.parametrize("ctype", ["application/gzip", "application/x-gzip", "application/zip",
                                   "application/x-tar"])
def test_raw_archive_body_with_query_settings(hearth, ctype):
    name = "dp-raw-" + ctype.split("/")[1].replace("x-", "x")
    files = {"main.py": V2}
    if ctype == "application/zip":
        data = zipbytes(files)
    elif ctype == "application/x-tar":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("main.py")
            info.size = len(V2)
            tar.addfile(info, io.BytesIO(V2.encode()))
        data = buf.getvalue()
    else:
        data = targz(files)
    r = hearth.deploy_raw(name, data, ctype, runtime="python3", handler="main.handler",
                          timeout_ms="5000", memory_mb="256")
    assert r.status_code == 201, r.text
    fn = r.json()
    assert fn["timeout_ms"] == 5000 and fn["memory_mb"] == 256 and fn["version"] == 1
    assert hearth.invoke_ok(name).text == "v2"
    r = hearth.deploy_raw(name, data, ctype, runtime="python3", handler="main.handler")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2


def test_raw_body_of_unsupported_type_is_415(hearth):
    r = hearth.deploy_raw("dp-415", b"hello", "text/plain", runtime="python3",
                          handler="main.handler")
    assert_error(r, 415, "unsupported_media_type")
    assert_error(hearth.show("dp-415"), 404, "function_not_found")


def test_raw_body_bad_query_setting(hearth):
    """A package's settings are query parameters: a wrong one, an unknown
    one, or one only the JSON form can carry is 400 invalid_query
    (docs/api.md), and nothing is stored."""
    data = targz({"main.py": V1})
    base = {"runtime": "python3", "handler": "main.handler"}
    for query, needle in [({"timeout_ms": "soon"}, "timeout_ms"),
                          ({"network": "moon"}, "network"),
                          ({"handler": "nodot"}, "module.function"),
                          ({"timeot_ms": "5"}, "unknown query parameter 'timeot_ms'"),
                          ({"env": "A=1"}, "JSON"),
                          ({"routes": "/x"}, "JSON")]:
        err = assert_error(hearth.deploy_raw("dp-rawq", data, "application/gzip",
                                             **dict(base, **query)), 400, "invalid_query")
        assert needle in err["message"], (query, err)
    assert_error(hearth.show("dp-rawq"), 404, "function_not_found")


@pytest.mark.parametrize("kind", ["gzip", "zip", "x-tar"])
def test_archive_without_its_content_type_gets_a_hint(hearth, kind):
    """curl --data-binary @pkg.tar.gz without -H sends a form type, read as
    JSON settings: the answer says which header to add."""
    files = {"main.py": V1}
    data = {"gzip": lambda: targz(files), "zip": lambda: zipbytes(files),
            "x-tar": lambda: gzip.decompress(targz(files))}[kind]()
    for ctype in (None, "application/x-www-form-urlencoded"):
        headers = {"Content-Type": ctype} if ctype else {}
        r = hearth.request("PUT", "/v1/functions/dp-noct", data=data, headers=headers,
                           params={"runtime": "python3", "handler": "main.handler"})
        err = assert_error(r, 400, "invalid_json")
        assert "-H 'Content-Type: application/%s'" % kind in err["message"], err


def test_json_deploy_with_query_parameters_is_refused(hearth):
    """?timeout_ms=5000 beside a JSON body would be dropped without a word."""
    r = hearth.request("PUT", "/v1/functions/dp-jsonq", params={"timeout_ms": "5000"},
                       json={"runtime": "python3", "handler": "main.handler",
                             "files": {"main.py": V1}})
    err = assert_error(r, 400, "invalid_query")
    assert "'timeout_ms'" in err["message"] and "JSON body" in err["message"], err
    assert_error(hearth.show("dp-jsonq"), 404, "function_not_found")


def test_package_of_48_mib_compressed_is_accepted(hearth):
    """Up to 50 MiB compressed is accepted, as on Lambda (random data does not compress)."""
    blob = os.urandom(48 << 20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name, data in (("main.py", V1.encode()), ("blob.bin", blob)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    assert 45 << 20 < len(data) < 50 << 20
    r = hearth.deploy_raw("dp-big", data, "application/gzip", runtime="python3",
                          handler="main.handler")
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("dp-big").text == "v1"
    r = hearth.deploy("dp-big", archive=b64(data))
    assert r.status_code == 200, r.text[:800]
    assert hearth.invoke_ok("dp-big").text == "v1"


def test_deploy_body_over_70_mib_is_413(hearth):
    r = hearth.deploy_raw("dp-huge", b"\0" * (71 << 20), "application/gzip",
                          runtime="python3", handler="main.handler")
    assert_error(r, 413, "payload_too_large")
    assert hearth.healthy()


@pytest.mark.parametrize("name", ["Hello", "-lead", "a_b", "a.b", "a" * 64, "UPPER", "a%20b"])
def test_invalid_names_are_refused(hearth, name):
    assert_error(hearth.deploy(name, files={"main.py": V1}), 400, "invalid_name")


@pytest.mark.parametrize("name", ["a", "0", "9-x-", "a" * 63])
def test_valid_names_are_accepted(hearth, name):
    r = hearth.deploy(name, files={"main.py": V1})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name
    assert hearth.invoke_ok(name).text == "v1"


# --- hostile packages ---------------------------------------------------------


def _info(name, **attrs):
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    for k, v in attrs.items():
        setattr(info, k, v)
    return info


def _zip_symlink(name, target):
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3
    zi.external_attr = (stat.S_IFLNK | 0o777) << 16
    return (zi, target)


MARK = "hearth-e2e-evil-" + uuid.uuid4().hex[:12]
ABS_TARGET = "/tmp/" + MARK

HOSTILE = {
    "tar-absolute-path": lambda: targz({"main.py": V2, ABS_TARGET: "owned"}),
    "tar-dotdot": lambda: targz({"main.py": V2, "../" + MARK: "owned"}),
    "tar-inner-dotdot": lambda: targz({"main.py": V2, "sub/../../" + MARK: "owned"}),
    "tar-symlink-absolute": lambda: targz({"main.py": V2, "etc": _info(
        "etc", type=tarfile.SYMTYPE, linkname="/etc")}),
    "tar-symlink-up": lambda: targz({"main.py": V2, "up": _info(
        "up", type=tarfile.SYMTYPE, linkname="../../..")}),
    "tar-symlink-then-write": lambda: targz({"main.py": V2, "d": _info(
        "d", type=tarfile.SYMTYPE, linkname="/tmp"), "d/" + MARK: "owned"}),
    "tar-hardlink-outside": lambda: targz({"main.py": V2, "pw": _info(
        "pw", type=tarfile.LNKTYPE, linkname="/etc/passwd")}),
    "tar-char-device": lambda: targz({"main.py": V2, "null": _info(
        "null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)}),
    "tar-block-device": lambda: targz({"main.py": V2, "sda": _info(
        "sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)}),
    "tar-fifo": lambda: targz({"main.py": V2, "fifo": _info("fifo", type=tarfile.FIFOTYPE)}),
    "zip-dotdot": lambda: zipbytes({"main.py": V2, "../" + MARK: "owned"}),
    "zip-absolute-path": lambda: zipbytes({"main.py": V2, ABS_TARGET: "owned"}),
    "zip-symlink-absolute": lambda: zipbytes({"main.py": V2, "etc": _zip_symlink("etc", "/etc")}),
    "corrupt": lambda: b"\x1f\x8b\x08\x00" + os.urandom(2000),
    "not-an-archive": lambda: b"just some text, not a package\n" * 10,
}


@pytest.fixture(scope="module")
def serving_v1(hearth):
    fn = hearth.deploy_ok("dp-hostile", V1)
    assert hearth.invoke_ok("dp-hostile").text == "v1"
    yield fn
    for path in (ABS_TARGET,):
        if os.path.lexists(path):
            os.unlink(path)


def _assert_still_v1(hearth, fn):
    shown = hearth.show("dp-hostile").json()
    assert shown["version"] == fn["version"], "a refused deploy changed the version: %s" % shown
    assert shown["updated_at"] == fn["updated_at"]
    assert hearth.invoke_ok("dp-hostile").text == "v1"


def _assert_nothing_written(hearth):
    assert not os.path.lexists(ABS_TARGET), "hostile archive wrote " + ABS_TARGET
    hits = [n for n in os.listdir("/tmp") if MARK in n]
    for root, dirs, files in os.walk(str(hearth.base)):
        hits += [os.path.join(root, n) for n in files + dirs if MARK in n]
    assert not hits, "hostile archive wrote %s" % hits


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_in_json_refused(hearth, serving_v1, case):
    r = hearth.deploy("dp-hostile", archive=b64(HOSTILE[case]()))
    assert_error(r, 400, "invalid_package")
    _assert_still_v1(hearth, serving_v1)
    _assert_nothing_written(hearth)


@pytest.mark.parametrize("case", ["tar-dotdot", "tar-symlink-then-write", "tar-char-device",
                                  "tar-absolute-path"])
def test_hostile_archive_raw_refused(hearth, serving_v1, case):
    r = hearth.deploy_raw("dp-hostile", HOSTILE[case](), "application/gzip", runtime="python3",
                          handler="main.handler")
    assert_error(r, 400, "invalid_package")
    _assert_still_v1(hearth, serving_v1)
    _assert_nothing_written(hearth)


@pytest.mark.parametrize("files", [
    {"main.py": V2, "../" + MARK: "owned"},
    {"main.py": V2, ABS_TARGET: "owned"},
    {"main.py": V2, "a/../../" + MARK: "owned"},
    {"main.py": 42},
    {},
], ids=["dotdot", "absolute", "inner-dotdot", "non-string", "empty"])
def test_hostile_or_bad_files_map_refused(hearth, serving_v1, files):
    r = hearth.deploy("dp-hostile", files=files)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("invalid_package", "invalid_field"), r.text
    if files and all(isinstance(v, str) for v in files.values()):
        assert r.json()["error"]["code"] == "invalid_package", r.text
    _assert_still_v1(hearth, serving_v1)
    _assert_nothing_written(hearth)


def test_too_many_entries_refused(hearth, serving_v1):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("main.py")
        info.size = len(V2)
        tar.addfile(info, io.BytesIO(V2.encode()))
        for i in range(10001):
            tar.addfile(tarfile.TarInfo("f/%05d" % i), io.BytesIO(b""))
    assert_error(hearth.deploy("dp-hostile", archive=b64(buf.getvalue())), 400, "invalid_package")
    _assert_still_v1(hearth, serving_v1)


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def test_unpacked_size_bomb_refused(hearth, serving_v1):
    """251 MiB of zeros is ~250 KiB compressed but over the 250 MiB unpacked limit."""
    size = 251 << 20
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("main.py")
        info.size = len(V2)
        tar.addfile(info, io.BytesIO(V2.encode()))
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size)))
    assert len(buf.getvalue()) < 4 << 20
    assert_error(hearth.deploy_raw("dp-hostile", buf.getvalue(), "application/gzip",
                                   runtime="python3", handler="main.handler"),
                 400, "invalid_package")
    _assert_still_v1(hearth, serving_v1)
    assert hearth.healthy()


# --- settings validation ------------------------------------------------------


def test_unknown_runtime_refused(hearth):
    r = hearth.deploy("dp-cobol", files={"main.py": V1}, runtime="cobol85")
    assert_error(r, 400, "unsupported_runtime")
    assert_error(hearth.show("dp-cobol"), 404, "function_not_found")


@pytest.mark.parametrize("body", [b"{", b"{\"runtime\": \"python3\",}", b"not json", b"\xff\xfe",
                                  b""], ids=["open-brace", "trailing-comma", "text", "binary",
                                             "empty"])
def test_malformed_json_refused(hearth, body):
    r = hearth.request("PUT", "/v1/functions/dp-badjson", data=body,
                       headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")
    assert_error(hearth.show("dp-badjson"), 404, "function_not_found")


def test_json_that_is_not_an_object_refused(hearth):
    r = hearth.request("PUT", "/v1/functions/dp-array", json=[1, 2])
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("invalid_json", "invalid_field"), r.text


def test_unknown_field_refused(hearth):
    r = hearth.deploy("dp-typo", files={"main.py": V1}, timeout=5000)
    err = assert_error(r, 400, "unknown_field")
    assert "timeout" in err["message"]
    assert_error(hearth.show("dp-typo"), 404, "function_not_found")


@pytest.mark.parametrize("field,value", [
    ("timeout_ms", "5000"), ("timeout_ms", 0), ("timeout_ms", 900001), ("timeout_ms", 1.5),
    ("timeout_ms", True), ("memory_mb", 63), ("memory_mb", 10241), ("memory_mb", "big"),
    ("env", {"A": 1}), ("env", ["A=b"]), ("env", {"HEARTH_X": "y"}), ("env", {"1A": "y"}),
    ("env", {"A": "x" * 5000}), ("handler", 5), ("runtime", None),
])
def test_bad_setting_refused(hearth, field, value):
    r = hearth.deploy("dp-badset", files={"main.py": V1}, **{field: value})
    err = assert_error(r, 400, "invalid_field")
    assert field in err["message"], "the message should name %s: %s" % (field, err["message"])
    assert_error(hearth.show("dp-badset"), 404, "function_not_found")


def test_missing_code_refused(hearth):
    r = hearth.deploy("dp-nocode")
    assert r.status_code == 400, r.text
    r = hearth.deploy("dp-nocode", files={"main.py": V1}, archive=b64(targz({"main.py": V1})))
    assert r.status_code == 400, r.text
    assert_error(hearth.show("dp-nocode"), 404, "function_not_found")


def test_bad_base64_archive_refused(hearth):
    r = hearth.deploy("dp-b64", archive="!!! not base64 !!!")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("invalid_package", "invalid_field"), r.text


def test_failed_update_keeps_previous_version(hearth):
    v1 = hearth.deploy_ok("dp-keep", V1)
    for bad in ({"runtime": "cobol85"}, {"timeout_ms": -1}, {"nope": 1}):
        r = hearth.deploy("dp-keep", files={"main.py": V2}, **bad)
        assert r.status_code == 400, r.text
        shown = hearth.show("dp-keep").json()
        assert shown["version"] == v1["version"] and shown["timeout_ms"] == 30000
        assert hearth.invoke_ok("dp-keep").text == "v1"


def test_inward_links_are_accepted(hearth):
    """Links that stay inside the package are fine (and common in real packages)."""
    data = targz({
        "main.py": V1,
        "alias.py": _info("alias.py", type=tarfile.SYMTYPE, linkname="main.py"),
        "lib/same.py": _info("lib/same.py", type=tarfile.SYMTYPE, linkname="../main.py"),
        "hard.py": _info("hard.py", type=tarfile.LNKTYPE, linkname="main.py"),
    })
    r = hearth.deploy("dp-links", archive=b64(data), handler="alias.handler")
    assert r.status_code == 201, r.text
    assert hearth.invoke_ok("dp-links").text == "v1"
    for handler in ("lib/same.handler", "hard.handler"):
        r = hearth.deploy("dp-links", archive=b64(data), handler=handler)
        assert r.status_code == 200, r.text
        assert hearth.invoke_ok("dp-links").text == "v1"
