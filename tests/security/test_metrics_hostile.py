"""Hostile functions against /metrics: growing the scrape without bound
with statuses of their choosing, and forging series through what they
control (issue 10, point 5).

Each test names the mechanism that stops the attack.
"""

import re

from conftest import py

STATUS_ECHO = py('''
    def handler(event, context):
        return {"statusCode": int(event["path"].strip("/")), "body": "x"}
''')


def invocation_series(hearth, name):
    text = hearth.get("/metrics").text
    return [line for line in text.splitlines()
            if line.startswith('hearth_invocations_total{function="%s"' % name)]


def test_many_statuses_cannot_grow_the_scrape(hearth):
    """Attack: an http function answers with 300 different statuses to make
    /metrics (and every Prometheus that scrapes it) hold a series for each.
    Stopped by: metrics.c counts the first 16 (status, trigger) pairs of a
    function exactly and the rest under their class (code="2xx" ... "5xx")."""
    hearth.deploy_ok("mh-statuses", STATUS_ECHO)
    for status in range(200, 500):
        r = hearth.request("GET", "/fn/mh-statuses/%d" % status)
        assert r.status_code == status, (status, r.status_code, r.text[:200])
    series = invocation_series(hearth, "mh-statuses")
    assert len(series) <= 16 + 5, series
    total = sum(int(line.rsplit(" ", 1)[1]) for line in series)
    assert total == 300, series
    assert any('code="4xx"' in line for line in series), series


def test_a_function_cannot_forge_series(hearth):
    """Attack: a function puts quotes, newlines and a fake sample line in
    what it controls (its answer's status text, headers, body, error type
    and message) to smuggle a series into the scrape. Stopped by: no label
    value comes from a function — labels are validated function names,
    numeric statuses and fixed words — and the renderer escapes every
    label value anyway (tests/unit/test_metrics.c)."""
    forged = 'x"} 1\\nhearth_build_info{version="forged'
    hearth.deploy_ok("mh-forge", py('''
        class Forged(Exception):
            pass
        Forged.__name__ = %r
        def handler(event, context):
            raise Forged(%r)
    ''' % (forged, forged)))
    r = hearth.invoke("mh-forge", json={})
    assert r.status_code == 500, r.text
    text = hearth.get("/metrics").text
    assert "forged" not in text
    assert len(re.findall(r"^hearth_build_info\{", text, re.M)) == 1
