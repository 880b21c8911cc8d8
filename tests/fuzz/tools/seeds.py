#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ that are easier made than
typed: worker frames, packages (archives and files maps). Run from anywhere;
the spawn messages come from tools/seed_spawn_msg.c (see its header)."""
import io
import json
import os
import struct
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame(ftype, meta=b"", body=b""):
    return struct.pack(">BBHII", 0x48, ftype, 0, len(meta), len(body)) + meta + body


def frames():
    put("frame", "ready", frame(1))
    put("frame", "result_plain", frame(3, b'{"content_type":"text/plain"}', b"hello"))
    put("frame", "result_http", frame(3, json.dumps(
        {"status": 201, "content_type": "application/json",
         "headers": {"Location": "/x", "X-Hearth-Evil": "1", "Set-Cookie": "a=b"}}).encode(), b'{"ok":true}'))
    put("frame", "error", frame(4, b'{"error_type":"ValueError","message":"boom"}'))
    put("frame", "init_error", frame(5, b'{"error_type":"ImportError","message":"no module"}'))
    put("frame", "stream", frame(1) + frame(3, b"", b"x" * 64) + frame(4, b"{}"))
    put("frame", "meta_not_object", frame(3, b"[1,2]"))
    put("frame", "nul_in_meta", frame(3, b'{"message":"a\\u0000b"}'))


def tar_of(entries, mode="w:gz"):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if kind == "file":
                ti.size = len(extra)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(extra))
            elif kind == "exe":
                ti.size = len(extra)
                ti.mode = 0o755
                t.addfile(ti, io.BytesIO(extra))
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE
                ti.linkname = extra
                t.addfile(ti)
            elif kind == "hard":
                ti.type = tarfile.LNKTYPE
                ti.linkname = extra
                t.addfile(ti)
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
                t.addfile(ti)
    return b.getvalue()


def zip_of(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return b.getvalue()


def packages():
    handler = b"def handler(event, context):\n    return {'ok': True}\n"
    put("package", "python.tar.gz", tar_of([("handler.py", "file", handler),
                                            ("lib", "dir", None), ("lib/util.py", "file", b"X = 1\n"),
                                            ("run.sh", "exe", b"#!/bin/sh\necho hi\n"),
                                            ("link", "sym", "lib/util.py")]))
    put("package", "plain.tar", tar_of([("index.js", "file", b"exports.handler = async () => 1;\n")], "w"))
    put("package", "python.zip", zip_of([("handler.py", handler), ("pkg/__init__.py", b"")]))
    put("package", "dotdot.tar.gz", tar_of([("../escape", "file", b"x")]))
    put("package", "absolute.tar.gz", tar_of([("/tmp/escape", "file", b"x")]))
    put("package", "symlink_out.tar.gz", tar_of([("out", "sym", "../../etc"), ("out/passwd", "file", b"x")]))
    put("package", "hardlink.tar.gz", tar_of([("a", "file", b"x"), ("b", "hard", "a"), ("c", "hard", "/etc/passwd")]))
    put("package", "fifo.tar.gz", tar_of([("p", "fifo", None)]))
    put("package", "dup_dir.tar.gz", tar_of([("d", "dir", None), ("d", "file", b"x")]))
    put("package", "zip_dotdot.zip", zip_of([("../../evil", b"x")]))
    put("package", "files.json", json.dumps({"handler.py": handler.decode(), "lib/a.txt": "a",
                                             "../x": "no"}).encode())
    put("package", "files_ok.json", json.dumps({"index.js": "exports.handler=()=>1", "d/e/f.txt": "deep"}).encode())


if __name__ == "__main__":
    frames()
    packages()
