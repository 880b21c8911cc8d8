"""Issue 11, schedules: a function's "schedules" fire as asynchronous
invocations with an EventBridge-shaped event; GET .../schedules shows the
next fire times with the zone's offset; bad expressions and zones are
refused; "overlap": "skip"; a run missed while hearthd was stopped fires
once at start. (Fire-time arithmetic and DST: tests/unit/test_cron.c and
test_cron_reference.py, against python3-croniter.)"""

import re
import time

from conftest import assert_error, py, wait_until

ECHO = py("""
    import time
    def handler(event, context):
        if isinstance(event, dict) and event.get("sleep"):
            time.sleep(event["sleep"])
        return {"event": event}
""")


def invocations(h, name):
    r = h.get("/v1/functions/%s/invocations" % name, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["invocations"]


def result_of(h, iid, timeout=20):
    def done():
        inv = h.get("/v1/invocations/%s" % iid).json()
        return inv if inv["status"] == "succeeded" else None

    inv = wait_until(done, timeout)
    assert inv, "invocation %s did not succeed" % iid
    return inv["result"]["event"]


def test_every_fires_with_an_eventbridge_event(hearth):
    hearth.deploy_ok("sc-every", ECHO, schedules=[
        {"cron": "@every 1s", "event": {"detail": {"job": "nightly"}, "region": "here"}}])
    assert wait_until(lambda: len(invocations(hearth, "sc-every")) >= 2, 10)
    inv = invocations(hearth, "sc-every")[-1]
    assert inv["source"] == "schedule:0"
    ev = result_of(hearth, inv["id"])
    assert ev["source"] == "hearth.schedule"
    assert ev["detail-type"] == "Scheduled Event"
    assert ev["resources"] == ["hearth:schedule:sc-every/0"]
    assert ev["detail"] == {"job": "nightly"} and ev["region"] == "here"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev["time"]), ev["time"]
    hearth.delete("sc-every")


def test_schedules_show_next_times_with_the_zone_offset(hearth):
    hearth.deploy_ok("sc-show", ECHO, schedules=[
        "0 3 * * *", {"cron": "30 2 * * *", "timezone": "Europe/Helsinki", "overlap": "allow"}])
    r = hearth.get("/v1/functions/sc-show/schedules")
    assert r.status_code == 200, r.text
    got = r.json()["schedules"]
    assert [s["cron"] for s in got] == ["0 3 * * *", "30 2 * * *"]
    assert got[0]["timezone"] == "UTC" and got[0]["overlap"] == "skip"
    assert got[1]["overlap"] == "allow"
    assert len(got[0]["next"]) == 5 and all(t.endswith("T03:00:00Z") or
                                            t.endswith("T03:00:00+00:00") for t in got[0]["next"])
    for t in got[1]["next"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT0[23]:30:00\+0[23]:00", t), t
    assert got[0]["last"] is None
    assert_error(hearth.get("/v1/functions/sc-none/schedules"), 404, "function_not_found")


def test_bad_expressions_and_zones_fail_the_deploy(hearth):
    for bad, word in ((["61 * * * *"], "minute"), (["@every 0s"], "every"),
                      ([{"cron": "0 3 * * *", "timezone": "Mars/Olympus"}], "zone"),
                      ([{"cron": "0 3 * * *", "timezone": "../../etc/passwd"}], "zone"),
                      ([{"cron": "0 3 * * *", "color": "red"}], "unknown"), ("@daily", "array")):
        r = hearth.deploy("sc-bad", files={"main.py": ECHO}, schedules=bad)
        assert_error(r, 400, "invalid_field")
        assert word in r.json()["error"]["message"].lower(), (bad, r.text)
    assert hearth.show("sc-bad").status_code == 404


def test_overlap_counts(hearth):
    slow = [{"cron": "@every 1s", "event": {"sleep": 2.5}}]
    hearth.deploy_ok("sc-skip2", ECHO, schedules=slow, max_concurrency=10)
    hearth.deploy_ok("sc-allow2", ECHO, schedules=[dict(slow[0], overlap="allow")],
                     max_concurrency=10)
    time.sleep(5.5)
    skipped = len(invocations(hearth, "sc-skip2"))
    allowed = len(invocations(hearth, "sc-allow2"))
    hearth.delete("sc-skip2")
    hearth.delete("sc-allow2")
    assert 1 <= skipped <= 3, "overlap skip fired %d times in 5.5 s of 2.5 s runs" % skipped
    assert allowed >= 4, "overlap allow fired only %d times" % allowed


def test_a_missed_run_fires_once_at_start(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("sc-missed", ECHO, schedules=["@every 3s"])
    assert wait_until(lambda: len(invocations(h, "sc-missed")) >= 1, 10)
    h.stop()
    time.sleep(10)  # three runs are missed
    h.start()
    t0 = time.time()
    assert wait_until(lambda: len(invocations(h, "sc-missed")) >= 2, 5)
    time.sleep(max(0, t0 + 2.9 - time.time()))
    since = [i for i in invocations(h, "sc-missed")
             if i["created_at"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 - 1))]
    # One catch-up firing (at start), and at most one regular one since.
    assert 1 <= len(since) <= 2, [i["created_at"] for i in since]
    times = [result_of(h, i["id"])["time"] for i in since]
    catch_up = [t for t in times if int(t[17:19]) % 3 != 0]
    assert len(catch_up) <= 1, times
