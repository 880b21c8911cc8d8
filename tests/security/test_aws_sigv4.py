"""Attacks on the AWS Lambda API's Signature Version 4 check (issue 14 §5).
Each test names what stops it. Requests are signed here with Python's
hmac/hashlib, byte by byte as the spec says, so each attack can change
exactly one thing after signing.
"""

import datetime
import hashlib
import hmac
import sqlite3
import time
import urllib.parse

import requests

from conftest import wait_until

REGION, SERVICE = "us-east-1", "lambda"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(h, akid, secret, method, path, body=b"", headers=None, when=None, signed=None,
         query=""):
    """Headers for a SigV4-signed request (path as sent, query already
    encoded); `signed` limits which of the headers are signed."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    host = urllib.parse.urlsplit(h.url("")).netloc
    hdrs = {"host": host, "x-amz-date": amz_date}
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    names = sorted(signed if signed is not None else hdrs)
    canon_q = "&".join(sorted(
        urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~")
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    creq = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), canon_q,
                      "".join("%s:%s\n" % (n, hdrs[n].strip()) for n in names),
                      ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], REGION, SERVICE)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (REGION, SERVICE, "aws4_request"):
        k = _hmac(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        akid, scope, ";".join(names), sig)
    del hdrs["host"]
    return hdrs


def send(h, method, path, hdrs, body=b"", query=""):
    return requests.request(method, h.url(path) + ("?" + query if query else ""), headers=hdrs,
                            data=body, timeout=60)


def new_token(h, name, scopes):
    r = h.request("POST", "/v1/tokens", json={"name": name, "scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()


def aws_error(r, status, kind):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["X-Amzn-ErrorType"] == kind, r.headers
    assert r.json()["Type"] == "User" and r.json()["message"]


LIST = "/2015-03-31/functions/"


def test_a_fresh_signature_passes(hearth):
    """The control: the signer here is right, so each refusal below is
    the one change it makes."""
    t = new_token(hearth, "sig-ok", ["read"])
    r = send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST))
    assert r.status_code == 200, r.text
    assert "Functions" in r.json()


def test_replayed_old_date(hearth):
    """Stopped by the 15-minute clock skew check on X-Amz-Date (the date is
    in the signature, so it cannot be refreshed without the secret)."""
    t = new_token(hearth, "sig-old", ["read"])
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    r = send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST, when=old))
    aws_error(r, 403, "InvalidSignatureException")
    assert "expired" in r.json()["message"]


def test_body_swapped_after_signing(hearth):
    """Stopped by the payload hash: the body's SHA-256 is part of the
    canonical request, recomputed from the body that arrived."""
    t = new_token(hearth, "sig-body", ["read", "deploy"])
    body = b'{"FunctionName": "sig-a", "Runtime": "python3.11", "Handler": "main.handler"}'
    hdrs = sign(hearth, t["id"], t["token"], "POST", "/2015-03-31/functions", body=body)
    evil = body.replace(b"sig-a", b"sig-b")
    aws_error(send(hearth, "POST", "/2015-03-31/functions", hdrs, evil), 403,
              "InvalidSignatureException")
    hdrs["x-amz-content-sha256"] = hashlib.sha256(evil).hexdigest()  # unsigned: refused too
    aws_error(send(hearth, "POST", "/2015-03-31/functions", hdrs, evil), 403,
              "InvalidSignatureException")


def test_header_not_signed(hearth):
    """Stopped by the rule that every x-amz-* header sent is signed: an
    unsigned X-Amz-Invocation-Type could be changed on the way."""
    t = new_token(hearth, "sig-hdr", ["invoke"])
    path = "/2015-03-31/functions/sig-nope/invocations"
    hdrs = sign(hearth, t["id"], t["token"], "POST", path,
                headers={"X-Amz-Invocation-Type": "Event"}, signed=["host", "x-amz-date"])
    r = send(hearth, "POST", path, hdrs)
    aws_error(r, 403, "InvalidSignatureException")
    assert "x-amz-invocation-type" in r.json()["message"].lower()
    # A signed header changed after signing: the signature no longer matches.
    hdrs = sign(hearth, t["id"], t["token"], "POST", path,
                headers={"X-Amz-Invocation-Type": "DryRun"})
    hdrs["x-amz-invocation-type"] = "Event"
    aws_error(send(hearth, "POST", path, hdrs), 403, "InvalidSignatureException")


def test_query_changed_after_signing(hearth):
    """Stopped by the canonical query: Qualifier is signed like the path."""
    t = new_token(hearth, "sig-q", ["read"])
    path = "/2015-03-31/functions/sig-x/configuration"
    hdrs = sign(hearth, t["id"], t["token"], "GET", path, query="Qualifier=1")
    aws_error(send(hearth, "GET", path, hdrs, query="Qualifier=2"), 403,
              "InvalidSignatureException")


def test_presigned_query_refused(hearth):
    """Stopped before any key lookup: the query form is not supported."""
    r = requests.get(hearth.url(LIST) + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
                     timeout=30)
    aws_error(r, 403, "InvalidSignatureException")


def test_revoked_token(hearth):
    """Stopped by auth_find_id: a revoked token's id is no live key, at the
    very next request."""
    t = new_token(hearth, "sig-rev", ["read"])
    assert send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST)).ok
    assert hearth.request("DELETE", "/v1/tokens/" + t["id"]).status_code == 204
    aws_error(send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST)), 403,
              "UnrecognizedClientException")


def test_bearer_token_is_no_signature(hearth):
    """Stopped by the AWS door itself: a bearer token does not open it."""
    t = new_token(hearth, "sig-bearer", ["read"])
    r = requests.get(hearth.url(LIST), headers={"Authorization": "Bearer " + t["token"]},
                     timeout=30)
    aws_error(r, 403, "InvalidSignatureException")


def test_token_without_sealed_secret(hearth):
    """A token made before Hearth sealed secrets (its sigv4 column NULL)
    answers a clear error naming what to do, never a bypass."""
    t = new_token(hearth, "sig-legacy", ["read"])
    db = sqlite3.connect(str(hearth.data_dir / "hearth.db"), timeout=10)
    with db:
        db.execute("UPDATE tokens SET sigv4 = NULL WHERE id = ?", (t["id"],))
    db.close()

    def refused():
        r = send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST))
        return r.status_code == 403
    wait_until(refused, 10)
    r = send(hearth, "GET", LIST, sign(hearth, t["id"], t["token"], "GET", LIST))
    aws_error(r, 403, "UnrecognizedClientException")
    assert "create a new token" in r.json()["message"]


def test_huge_zipfile(hearth):
    """Stopped by the body limit before buffering: a key without deploy
    gets 64 KiB, one with deploy the deploy ceiling (70 MiB); past it, 413
    without reading on."""
    t = new_token(hearth, "sig-huge", ["read"])
    body = b'{"Code": {"ZipFile": "' + b"A" * (1024 * 1024) + b'"}}'
    hdrs = sign(hearth, t["id"], t["token"], "POST", "/2015-03-31/functions", body=body)
    try:
        r = send(hearth, "POST", "/2015-03-31/functions", hdrs, body)
        assert r.status_code == 413, r.text
    except requests.ConnectionError:
        pass  # the daemon may close before the whole body is sent
    d = new_token(hearth, "sig-huge-deploy", ["deploy"])
    big = b"A" * (71 * 1024 * 1024)
    hdrs = sign(hearth, d["id"], d["token"], "POST", "/2015-03-31/functions", body=big)
    try:
        r = send(hearth, "POST", "/2015-03-31/functions", hdrs, big)
        assert r.status_code == 413, r.text
        assert r.headers["X-Amzn-ErrorType"] == "RequestTooLargeException"
    except requests.ConnectionError:
        pass
    assert hearth.healthy()
