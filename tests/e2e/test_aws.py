"""The AWS tools against Hearth (issue 14 §5): Debian's python3-boto3 and
awscli, with --endpoint-url, signing with Signature Version 4 (a Hearth
token's id as the access key id, the token as the secret key), drive the
Lambda API: create from a zip, invoke sync and async (Event), the log
tail and its 4 KB cap, the function error header, update code and
configuration, publish and alias, list, delete, a provided.al2023 function
on Hearth's lambda runtime, and the error shapes of a bad signature, an
unknown key and a missing scope.

One daemon for the module (this file runs four times in CI); boto3 for
most steps, the aws CLI (slow to start) for a few. No network but
127.0.0.1: the AWS config files are empty temp files, IMDS is off.
"""

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile

import pytest

import boto3  # noqa: E402 (Debian python3-boto3: scripts/deps.sh --test)
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

from conftest import REPO, wait_until  # noqa: E402

AWS = shutil.which("aws", path="/usr/bin")  # Debian's awscli, not one on PATH

HANDLER = """
import os
def handler(event, context):
    print("log-line-" + str(event.get("n")))
    for i in range(event.get("lines", 0)):
        print("line-%03d " % i + "x" * 90)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"got": event, "v": VERSION, "env": os.environ.get("GREETING", "")}
"""


def zip_files(files, mode=0o644):
    """A zip of {name: text}, each a regular file with that mode."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, text)
    return b.getvalue()


def zip_of(version):
    return zip_files({"main.py": "VERSION = %d\n" % version + HANDLER})


@pytest.fixture(scope="module")
def aws_env():
    """Empty AWS config files and no instance metadata: nothing but the
    endpoint given is ever asked."""
    d = tempfile.mkdtemp(prefix="hearth-aws-")
    saved = dict(os.environ)
    for f in ("config", "credentials"):
        open(os.path.join(d, f), "w").close()
    os.environ.update(AWS_CONFIG_FILE=os.path.join(d, "config"),
                      AWS_SHARED_CREDENTIALS_FILE=os.path.join(d, "credentials"),
                      AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="us-east-1",
                      AWS_PAGER="")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(k, None)
    yield d
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(d, ignore_errors=True)


def make_token(h, name, scopes):
    r = h.request("POST", "/v1/tokens", json={"name": name, "scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()


def client(h, tok, secret=None):
    return boto3.client(
        "lambda", endpoint_url=h.url(""), region_name="us-east-1",
        aws_access_key_id=tok["id"], aws_secret_access_key=secret or tok["token"],
        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=60))


@pytest.fixture(scope="module")
def aws(hearth, aws_env):
    tok = make_token(hearth, "aws-all", ["deploy", "invoke", "read", "logs"])
    c = client(hearth, tok)
    c.create_function(FunctionName="aws-fn", Runtime="python3.11", Role="arn:aws:iam::1:role/x",
                      Handler="main.handler", Code={"ZipFile": zip_of(1)}, Timeout=10,
                      MemorySize=128)
    return hearth, tok, c


def invoke(c, payload, **kw):
    r = c.invoke(FunctionName=kw.pop("name", "aws-fn"), Payload=json.dumps(payload).encode(), **kw)
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


def error_of(excinfo):
    e = excinfo.value.response
    return e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Code"]


def test_create_and_get(aws):
    h, tok, c = aws
    conf = c.get_function_configuration(FunctionName="aws-fn")
    assert conf["FunctionName"] == "aws-fn"
    assert conf["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:aws-fn"
    assert conf["Runtime"].startswith("python3.") and conf["Handler"] == "main.handler"
    assert conf["Timeout"] == 10 and conf["MemorySize"] == 128 and conf["State"] == "Active"
    assert c.get_function(FunctionName="aws-fn")["Configuration"]["Version"] == "$LATEST"
    shown = h.show("aws-fn").json()
    assert shown["runtime"] == "python3" and shown["timeout_ms"] == 10000
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.create_function(FunctionName="aws-fn", Runtime="python3.11", Role="r",
                          Handler="main.handler", Code={"ZipFile": zip_of(1)})
    assert error_of(ei) == (409, "ResourceConflictException")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.create_function(FunctionName="aws-bad", Runtime="java21", Role="r",
                          Handler="x", Code={"ZipFile": zip_of(1)})
    assert error_of(ei) == (400, "InvalidParameterValueException")


def test_invoke_sync_with_log_tail(aws):
    h, tok, c = aws
    r, body = invoke(c, {"n": 7}, LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert body["got"] == {"n": 7} and body["v"] == 1
    assert r["ExecutedVersion"] == "1"
    assert "log-line-7" in base64.b64decode(r["LogResult"]).decode()


def test_log_tail_is_the_last_4k(aws):
    """A call that logs ~30 KB: LogResult is the end of that call's log
    (GET .../logs?request_id= in the same text format), at most 4096 bytes."""
    h, tok, c = aws
    r, _ = invoke(c, {"n": 8, "lines": 200}, LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    tail = base64.b64decode(r["LogResult"]).decode()
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    full = h.logs("aws-fn", request_id=rid, tail=1000)
    assert full.status_code == 200, full.text
    assert len(full.text) > 20000 and "log-line-8" in full.text
    assert 4096 - 256 < len(tail) <= 4096
    assert full.text.endswith(tail)
    assert tail.endswith("line-199 " + "x" * 90 + "\n")
    assert "log-line-8" not in tail and "line-000 " not in tail


def test_function_error_header(aws):
    h, tok, c = aws
    r, body = invoke(c, {"n": 1, "fail": True})
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert "asked to fail" in body["errorMessage"]


def test_invoke_event_and_dry_run(aws):
    h, tok, c = aws
    r = c.invoke(FunctionName="aws-fn", InvocationType="Event", Payload=b'{"n": 42}')
    assert r["StatusCode"] == 202
    inv = r["ResponseMetadata"]["HTTPHeaders"]["x-hearth-invocation-id"]
    wait_until(lambda: h.get("/v1/invocations/" + inv).json().get("status") == "succeeded", 30)
    r = c.invoke(FunctionName="aws-fn", InvocationType="DryRun")
    assert r["StatusCode"] == 204


def test_update_code_and_configuration(aws):
    h, tok, c = aws
    before = c.get_function_configuration(FunctionName="aws-fn")["CodeSha256"]
    conf = c.update_function_code(FunctionName="aws-fn", ZipFile=zip_of(2))
    assert conf["FunctionName"] == "aws-fn"
    assert len(base64.b64decode(conf["CodeSha256"])) == 32 and conf["CodeSha256"] != before
    assert invoke(c, {"n": 2})[1]["v"] == 2
    conf = c.update_function_configuration(FunctionName="aws-fn", Timeout=20, MemorySize=256,
                                           Environment={"Variables": {"GREETING": "hi"}})
    assert conf["Timeout"] == 20 and conf["MemorySize"] == 256
    assert conf["Environment"]["Variables"] == {"GREETING": "hi"}
    assert conf["CodeSha256"] == c.get_function(FunctionName="aws-fn")["Configuration"][
        "CodeSha256"]
    r, body = invoke(c, {"n": 3})
    assert body["v"] == 2 and body["env"] == "hi"  # the code was kept
    assert h.show("aws-fn").json()["version"] == 3


def test_publish_and_alias(aws):
    h, tok, c = aws
    v = c.publish_version(FunctionName="aws-fn")["Version"]
    assert v == str(h.show("aws-fn").json()["version"])
    a = c.create_alias(FunctionName="aws-fn", Name="prod", FunctionVersion=v)
    assert a["Name"] == "prod" and a["FunctionVersion"] == v
    assert a["AliasArn"].endswith(":function:aws-fn:prod")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.create_alias(FunctionName="aws-fn", Name="prod", FunctionVersion=v)
    assert error_of(ei) == (409, "ResourceConflictException")
    a = c.update_alias(FunctionName="aws-fn", Name="prod", FunctionVersion="2")
    assert a["FunctionVersion"] == "2"
    assert c.get_alias(FunctionName="aws-fn", Name="prod")["FunctionVersion"] == "2"


def test_invoke_with_qualifier(aws):
    h, tok, c = aws
    r, body = invoke(c, {"n": 5}, Qualifier="prod")
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "2" and body["env"] == ""


def test_error_shapes(aws):
    h, tok, c = aws
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client(h, tok, secret="hth_" + "x" * 43).list_functions()
    assert error_of(ei) == (403, "InvalidSignatureException")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client(h, {"id": "0123456789abcdef", "token": tok["token"]}).list_functions()
    assert error_of(ei) == (403, "UnrecognizedClientException")
    reader = client(h, make_token(h, "aws-reader", ["read"]))
    assert any(f["FunctionName"] == "aws-fn" for f in reader.list_functions()["Functions"])
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        reader.invoke(FunctionName="aws-fn", Payload=b"{}")
    assert error_of(ei) == (403, "AccessDeniedException")
    assert ei.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == \
        "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.get_function(FunctionName="aws-nope")
    assert error_of(ei) == (404, "ResourceNotFoundException")


def aws_cli(h, tok, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=tok["id"], AWS_SECRET_ACCESS_KEY=tok["token"])
    return subprocess.run([AWS, "--endpoint-url", h.url(""), "--region", "us-east-1",
                           "--output", "json", "lambda", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def aws_cli_ok(h, tok, *args):
    """`aws lambda ARGS` that must succeed: what it printed, parsed (None when nothing)."""
    r = aws_cli(h, tok, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


def cli_invoke(h, tok, tmp_path, payload, *args):
    """`aws lambda invoke` of aws-cli-fn: what it printed (StatusCode, ExecutedVersion)
    and the answer it wrote to its outfile (None when empty)."""
    out = tmp_path / "out.json"
    meta = aws_cli_ok(h, tok, "invoke", "--function-name", "aws-cli-fn", "--cli-binary-format",
                      "raw-in-base64-out", "--payload", json.dumps(payload), *args, str(out))
    text = out.read_text()
    return meta, json.loads(text) if text else None


def test_aws_cli_create_invoke_publish_alias_update_list_delete(aws, tmp_path):
    """Debian's aws CLI through the whole life of a function: create, invoke
    (sync, Event), publish and alias the first code, update the code, then
    $LATEST runs the new code and the alias the published one."""
    assert AWS, "the aws CLI (Debian's awscli, scripts/deps.sh --test) is not installed"
    h, tok, c = aws
    z = tmp_path / "fn.zip"
    z.write_bytes(zip_of(9))
    conf = aws_cli_ok(h, tok, "create-function", "--function-name", "aws-cli-fn", "--runtime",
                      "python3.12", "--handler", "main.handler", "--role",
                      "arn:aws:iam::1:role/x", "--zip-file", "fileb://" + str(z))
    assert conf["FunctionName"] == "aws-cli-fn"
    meta, answer = cli_invoke(h, tok, tmp_path, {"n": 1})
    assert meta["StatusCode"] == 200 and answer["v"] == 9

    meta, _ = cli_invoke(h, tok, tmp_path, {"n": 2}, "--invocation-type", "Event")
    assert meta["StatusCode"] == 202

    def succeeded():
        r = h.get("/v1/functions/aws-cli-fn/invocations", params={"status": "succeeded"})
        return r.json()["invocations"] if r.status_code == 200 else None
    done = wait_until(succeeded, 30)
    assert len(done) == 1, h.get("/v1/functions/aws-cli-fn/invocations").text
    assert h.get("/v1/invocations/" + done[0]["id"]).json()["result"]["got"] == {"n": 2}

    v = aws_cli_ok(h, tok, "publish-version", "--function-name", "aws-cli-fn")["Version"]
    assert v == str(h.show("aws-cli-fn").json()["version"])
    alias = aws_cli_ok(h, tok, "create-alias", "--function-name", "aws-cli-fn", "--name", "live",
                       "--function-version", v)
    assert alias["FunctionVersion"] == v and alias["AliasArn"].endswith(":aws-cli-fn:live")
    z.write_bytes(zip_of(10))
    conf = aws_cli_ok(h, tok, "update-function-code", "--function-name", "aws-cli-fn",
                      "--zip-file", "fileb://" + str(z))
    assert conf["FunctionName"] == "aws-cli-fn"
    meta, answer = cli_invoke(h, tok, tmp_path, {"n": 3})
    assert answer["v"] == 10 and meta["ExecutedVersion"] == str(int(v) + 1)
    meta, answer = cli_invoke(h, tok, tmp_path, {"n": 4}, "--qualifier", "live")
    assert answer["v"] == 9 and meta["ExecutedVersion"] == v

    names = {f["FunctionName"] for f in aws_cli_ok(h, tok, "list-functions")["Functions"]}
    assert {"aws-fn", "aws-cli-fn"} <= names
    aws_cli_ok(h, tok, "delete-function", "--function-name", "aws-cli-fn")
    assert h.show("aws-cli-fn").status_code == 404


def test_provided_runtime_is_lambda(aws):
    """Runtime provided.al2023 is Hearth's lambda runtime: the zip's
    bootstrap (the lambda-shell example, a Runtime API loop in shell) answers
    the call, and its stderr is the call's log."""
    h, tok, c = aws
    bootstrap = (REPO / "examples" / "lambda-shell" / "bootstrap").read_text()
    conf = c.create_function(FunctionName="aws-provided", Runtime="provided.al2023", Role="r",
                             Handler="function.handler",
                             Code={"ZipFile": zip_files({"bootstrap": bootstrap}, 0o755)})
    assert conf["Runtime"] == "provided.al2023"
    assert h.show("aws-provided").json()["runtime"] == "lambda"
    assert c.get_function(FunctionName="aws-provided")["Configuration"]["Runtime"] == \
        "provided.al2023"
    r, body = invoke(c, {"n": 6}, name="aws-provided", LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert body == {"you sent": {"n": 6}}
    rid = r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert "handling %s with function.handler" % rid in base64.b64decode(r["LogResult"]).decode()


def test_delete(aws):
    h, tok, c = aws
    c.create_function(FunctionName="aws-gone", Runtime="nodejs20.x", Role="r",
                      Handler="index.handler", Code={"ZipFile": zip_of(1)})
    assert h.show("aws-gone").json()["runtime"] == "node"
    c.delete_function(FunctionName="aws-gone")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.get_function(FunctionName="aws-gone")
    assert error_of(ei) == (404, "ResourceNotFoundException")
    assert h.show("aws-gone").status_code == 404
