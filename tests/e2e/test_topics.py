"""Issue 11, topics: POST /v1/topics/{topic} fans out to every function
subscribed to it, each delivery a durable async invocation of its own with
its own retries and dead letters; a topic without subscribers is accepted
and says so; GET /v1/topics lists subscribers and backlogs."""

from conftest import assert_error, py, wait_until

ECHO = py("""
    def handler(event, context):
        return {"event": event}
""")

FAILS = py("""
    def handler(event, context):
        raise RuntimeError("no")
""")


def status(h, iid):
    return h.get("/v1/invocations/%s" % iid).json()


def test_fan_out_with_own_retries_and_dead_letters(hearth):
    hearth.deploy_ok("tp-a", ECHO, subscriptions=["orders"])
    hearth.deploy_ok("tp-b", FAILS, subscriptions=["orders", "audit.v1"], async_retries=1,
                     async_retry_base_ms=10)
    hearth.deploy_ok("tp-c", ECHO)  # not subscribed
    r = hearth.request("POST", "/v1/topics/orders", json={"order": 7})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["topic"] == "orders" and body["subscribers"] == 2
    by_fn = {d["function"]: d["id"] for d in body["deliveries"]}
    assert set(by_fn) == {"tp-a", "tp-b"}
    assert wait_until(lambda: status(hearth, by_fn["tp-a"])["status"] == "succeeded", 20)
    got = status(hearth, by_fn["tp-a"])
    assert got["result"]["event"] == {"order": 7} and got["source"] == "topic:orders"
    assert wait_until(lambda: status(hearth, by_fn["tp-b"])["status"] == "dead", 20)
    assert status(hearth, by_fn["tp-b"])["attempts"] == 2
    assert hearth.get("/v1/functions/tp-c/invocations").json()["invocations"] == []


def test_no_subscriber_is_accepted_and_said(hearth):
    r = hearth.request("POST", "/v1/topics/nobody-listens", json={})
    assert r.status_code == 202, r.text
    assert r.json()["subscribers"] == 0 and r.json()["deliveries"] == []
    assert "no function" in r.json()["message"]
    assert_error(hearth.request("POST", "/v1/topics/Bad_Name!", json={}), 400, "invalid_name")


def test_list_topics_and_subscriptions_follow_deploys(hearth):
    hearth.deploy_ok("tp-list", ECHO, subscriptions=["t1", "t2"], max_concurrency=1)
    topics = {t["topic"]: t for t in hearth.get("/v1/topics").json()["topics"]}
    assert [s["function"] for s in topics["t1"]["subscribers"]] == ["tp-list"]
    assert "backlog" in topics["t1"]
    hearth.deploy_ok("tp-list", ECHO, subscriptions=["t2"])
    topics = {t["topic"]: t for t in hearth.get("/v1/topics").json()["topics"]}
    assert "t1" not in topics and "t2" in topics
    hearth.delete("tp-list")
    topics = {t["topic"]: t for t in hearth.get("/v1/topics").json()["topics"]}
    assert "t2" not in topics
    r = hearth.deploy("tp-bad", files={"main.py": ECHO}, subscriptions=["Has Space"])
    assert_error(r, 400, "invalid_field")
    r = hearth.deploy("tp-bad", files={"main.py": ECHO}, subscriptions=["x", "x"])
    assert_error(r, 400, "invalid_field")


def test_subscriptions_survive_a_restart(fresh_hearth):
    h = fresh_hearth
    h.deploy_ok("tp-keep", ECHO, subscriptions=["kept"])
    h.restart()
    r = h.request("POST", "/v1/topics/kept", json={"x": 1})
    assert r.json()["subscribers"] == 1, r.text
