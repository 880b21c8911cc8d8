"""The dashboard (issue 14.4): /ui/ serves its built-in files to anyone with
headers that confine the page, refuses every other name, and, driven in
headless Chromium (Debian's chromium + chromium-driver + python3-selenium)
against a real hearthd, signs in with a #token= link, lists the functions,
shows a function's settings, schedules, versions and aliases, invokes it
from the form, sees its log line arrive live, lists its async invocations,
redrives a dead letter, and shows a limited token what it may not see.

One daemon and one browser for the module. The files and the page do not
depend on the daemon's user, so the rootless run skips the module.
Set HEARTH_UI_SCREENSHOTS=DIR to keep screenshots of the pages (the one in
docs/img/ is made so).
"""

import functools
import http.client
import os
import shutil
import tempfile
import uuid

import pytest

from conftest import ROOTLESS, assert_error, py, wait_until

pytestmark = pytest.mark.skipif(ROOTLESS, reason="the dashboard does not depend on the daemon's user")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = os.environ.get("HEARTH_UI_SCREENSHOTS")
WAIT = 20

HELLO = py("""
    import json
    def handler(event, context):
        who = event.get("who", "world") if isinstance(event, dict) else "world"
        print("UI-LOG hello", who)
        return {"hello": who}
""")

FAIL = py("""
    def handler(event, context):
        raise RuntimeError("always fails")
""")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    HAVE_SELENIUM = True
except ImportError:  # the HTTP tests still run
    HAVE_SELENIUM = False

def needs_browser(test):
    """A browser test: a machine without the browser fails it, saying what
    to install (make test installs them: scripts/deps.sh --test), rather
    than passing it by skipping."""
    def run(*a, **kw):
        assert HAVE_SELENIUM and os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK), (
            "needs Debian's chromium, chromium-driver and python3-selenium (scripts/deps.sh --test)")
        return test(*a, **kw)
    return functools.wraps(test)(run)


@pytest.fixture(scope="module")
def fns(hearth):
    """ui-hello (a log line, a schedule) and ui-fail, with one dead letter."""
    hearth.deploy_ok("ui-hello", HELLO,
                     schedules=[{"cron": "0 9 * * *", "timezone": "UTC"}])
    hearth.deploy_ok("ui-fail", FAIL, async_retries=0)
    hearth.invoke_ok("ui-hello", json={"who": "curl"})
    r = hearth.invoke("ui-fail", json={}, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    dead_id = r.json()["id"]
    assert wait_until(lambda: hearth.get("/v1/invocations/" + dead_id).json()["status"] == "dead",
                      30), hearth.get("/v1/invocations/" + dead_id).text
    hearth.dead_id = dead_id
    hearth.dead_finished = hearth.get("/v1/invocations/" + dead_id).json()["finished_at"]
    return hearth


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="hearth-ui-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--window-size=1400,1000", "--user-data-dir=" + profile):
        opts.add_argument(a)
    if os.geteuid() == 0:
        opts.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --- helpers --------------------------------------------------------------------


def until(driver, pred, what):
    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: pred(d))
    except Exception:
        raise AssertionError("timed out waiting for %s; the page shows:\n%s" % (
            what, driver.find_element(By.TAG_NAME, "body").text[:3000]))


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def sign_in(driver, hearth, token=None):
    """A fresh tab state, then the #token= link, loaded as a new page (as
    when `hearth ui`'s link is opened)."""
    driver.get(hearth.url("/ui/"))
    driver.execute_script("sessionStorage.clear(); localStorage.clear();")
    driver.get("about:blank")
    driver.get(hearth.url("/ui/#token=" + (token or hearth.token)))


def go(driver, fragment):
    driver.execute_script("location.hash = arguments[0]", fragment)


def screenshot(driver, name):
    """The whole page as DIR/name, when HEARTH_UI_SCREENSHOTS=DIR."""
    if not SCREENSHOTS:
        return
    os.makedirs(SCREENSHOTS, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height + 20, 700), 2400))
    # Two animation frames: the page laid out and painted at the new size.
    driver.execute_async_script("requestAnimationFrame(() => requestAnimationFrame(arguments[0]))")
    driver.save_screenshot(os.path.join(SCREENSHOTS, name))
    driver.set_window_size(1400, 1000)


def page_errors(driver):
    """Console errors but the 403s a limited token meets: a CSP or Trusted
    Types violation shows here, and so does a 404 from an endpoint the page
    calls."""
    out = []
    for e in driver.get_log("browser"):
        if e["level"] != "SEVERE":
            continue
        if "status of 403" in e["message"]:
            continue
        out.append(e["message"])
    return out


def raw_get(hearth, path, method="GET"):
    """A request with the path exactly as given (no client normalises '..')."""
    c = http.client.HTTPConnection("127.0.0.1", hearth.port, timeout=10)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


# --- the files, over HTTP --------------------------------------------------------

FILES = {"/ui/": "text/html; charset=utf-8", "/ui/index.html": "text/html; charset=utf-8",
         "/ui/app.js": "text/javascript; charset=utf-8", "/ui/style.css": "text/css; charset=utf-8",
         "/ui/favicon.svg": "image/svg+xml"}


def test_files_are_served_without_a_token_with_security_headers(hearth):
    for path, ctype in FILES.items():
        r = hearth.get(path, token=None)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert r.headers["Content-Type"] == ctype, path
        csp = r.headers["Content-Security-Policy"]
        for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'",
                          "frame-ancestors 'none'", "base-uri 'none'",
                          "require-trusted-types-for 'script'"):
            assert directive in csp, (path, csp)
        assert "unsafe" not in csp and "*" not in csp, csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Cache-Control"] == "no-cache"
        etag = r.headers["ETag"]
        again = hearth.get(path, token=None, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", path
    page = hearth.get("/ui/", token=None).text
    # Nothing inline and nothing from elsewhere: every script is a file of ours.
    assert "<script>" not in page and "<script src=\"app.js\"" in page
    assert "http://" not in page and "https://" not in page and "style=" not in page


def test_ui_redirects_to_the_folder(hearth):
    status, headers, _ = raw_get(hearth, "/ui")
    assert status == 301 and headers["Location"] == "/ui/"


@pytest.mark.parametrize("path", [
    "/ui/nope.js", "/ui/../v1/functions", "/ui/%2e%2e/v1/functions", "/ui/..%2fdata/admin-token",
    "/ui/./index.html", "/ui//index.html", "/ui/index.html/", "/ui/x/../index.html",
    "/ui/INDEX.HTML", "/ui/index.html%00", "/ui/%69ndex.html", "/ui/.hidden", "/UI/",
])
def test_other_paths_are_refused(hearth, path):
    status, headers, body = raw_get(hearth, path)
    assert status == 404, (path, status, body[:200])
    assert b'"code":"not_found"' in body, body[:200]
    assert headers["Content-Type"] == "application/json"


def test_only_get(hearth):
    assert_error(hearth.request("POST", "/ui/", token=None), 405, "method_not_allowed")


def test_functions_cannot_take_ui_routes(hearth):
    r = hearth.deploy("ui-route", files={"main.py": HELLO},
                      routes=[{"method": "GET", "path": "/ui/app.js"}])
    err = assert_error(r, 400, "invalid_field")
    assert "/ui/" in err["message"]


# --- the pages, in Chromium ------------------------------------------------------


@needs_browser
def test_sign_in_by_link_lists_the_functions(fns, browser):
    sign_in(browser, fns)
    until(browser, lambda d: css(d, 'tr[data-function="ui-hello"]'), "the functions list")
    # The token left the address bar, and lives in this tab's session only.
    assert "token" not in browser.current_url and fns.token not in browser.current_url
    assert browser.current_url.endswith("/ui/#/")
    assert browser.execute_script("return sessionStorage.getItem('hearth.token')") == fns.token
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.execute_script("return document.cookie") == ""
    # Nor in the history: Back leads to the page before the link.
    browser.back()
    assert fns.token not in browser.current_url, browser.current_url
    browser.forward()
    until(browser, lambda d: css(d, 'tr[data-function="ui-hello"]'), "the list again")
    assert fns.token not in browser.current_url
    row = css(browser, 'tr[data-function="ui-hello"]')[0]
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "ui-hello" and cells[1] == "1" and cells[2] == "python3", cells
    assert cells[3] in ("warm", "cold", "busy", "starting"), cells
    # From the metrics: one call, no error, one cold start.
    assert row.find_element(By.CSS_SELECTOR, '[data-col="invocations"]').text == "1"
    assert row.find_element(By.CSS_SELECTOR, '[data-col="errors"]').text == "0"
    assert row.find_element(By.CSS_SELECTOR, '[data-col="cold"]').text == "1"
    fail = css(browser, 'tr[data-function="ui-fail"] [data-col="errors"]')[0]
    assert int(fail.text) >= 1  # its async attempt failed
    assert not css(browser, "#metrics-note")
    screenshot(browser, "dashboard-functions.png")
    assert page_errors(browser) == []


@needs_browser
def test_function_page_shows_settings_schedules_versions_and_aliases(fns, browser):
    r = fns.request("PUT", "/v1/functions/ui-hello/aliases/live", json={"version": 1})
    assert r.status_code == 201, r.text
    sign_in(browser, fns)
    go(browser, "#/functions/ui-hello")
    until(browser, lambda d: css(d, 'tr[data-setting="handler"]'), "the settings")
    handler = css(browser, 'tr[data-setting="handler"] td')[1].text
    assert handler == "main.handler"
    assert css(browser, "#fn-version")[0].text == "1"
    nxt = until(browser, lambda d: css(d, 'tr[data-schedule="0"] [data-next] li'), "the next runs")
    api = fns.get("/v1/functions/ui-hello/schedules").json()["schedules"][0]
    assert nxt[0].get_attribute("title") == api["next"][0]
    assert css(browser, 'tr[data-schedule="0"] td')[0].text == "0 9 * * *"
    # Versions and aliases (issue 14.3), as the API lists them.
    row = until(browser, lambda d: css(d, '#versions tr[data-version="1"]'), "the versions")
    assert "current" in row[0].text
    digest = fns.get("/v1/functions/ui-hello/versions").json()["versions"][0]["digest"]
    assert row[0].find_elements(By.TAG_NAME, "td")[2].get_attribute("title") == digest
    row = until(browser, lambda d: css(d, '#aliases tr[data-alias="live"]'), "the aliases")
    assert row[0].find_elements(By.TAG_NAME, "td")[1].text == "1"
    assert page_errors(browser) == []


def invoke_from_form(browser, who):
    box = css(browser, "#invoke-payload")[0]
    box.clear()
    box.send_keys('{"who": "%s"}' % who)
    css(browser, "#invoke-send")[0].click()
    until(browser, lambda d: css(d, "#invoke-body") and who in css(d, "#invoke-body")[0].text,
          "the invoke answer")


@needs_browser
def test_invoke_from_the_form_and_see_the_log_line(fns, browser):
    sign_in(browser, fns)
    go(browser, "#/functions/ui-hello")
    until(browser, lambda d: css(d, "#log-state") and css(d, "#log-state")[0].text == "live",
          "the live log")
    marker = "browser-" + uuid.uuid4().hex[:8]
    invoke_from_form(browser, marker)
    assert css(browser, "#invoke-status")[0].get_attribute("data-status") == "200"
    assert css(browser, "#invoke-version")[0].text == "1"
    assert css(browser, "#invoke-start")[0].text in ("warm", "cold start")
    assert '"hello": "%s"' % marker in css(browser, "#invoke-body")[0].text
    # The line the call printed arrives through the follow stream.
    until(browser, lambda d: any("UI-LOG hello " + marker in line.text
                                 for line in css(d, "#log-lines .line")), "the log line")
    screenshot(browser, "dashboard-function.png")
    # Markup in what the function prints and answers stays text.
    marker = "markup-%s-<b>bold</b><img src=x>" % uuid.uuid4().hex[:8]
    invoke_from_form(browser, marker)
    until(browser, lambda d: any(marker in line.text for line in css(d, "#log-lines .line")),
          "the markup's log line")
    assert not css(browser, "#view b, #view img")
    # A version by its qualifier (issue 14.3).
    css(browser, "#invoke-qualifier")[0].send_keys("1")
    invoke_from_form(browser, "qualified")
    assert css(browser, "#invoke-status")[0].get_attribute("data-status") == "200"
    assert css(browser, "#invoke-version")[0].text == "1"
    assert page_errors(browser) == []


@needs_browser
def test_dead_letter_redrive(fns, browser):
    sign_in(browser, fns)
    go(browser, "#/functions/ui-fail")
    # The async call is listed among the function's invocations, dead.
    listed = until(browser, lambda d: css(d, '#invocations tr[data-invocation="%s"]' % fns.dead_id),
                   "the async invocation")
    assert listed[0].get_attribute("data-status") == "dead"
    sel = '#dead-letters tr[data-invocation="%s"] button.retry' % fns.dead_id
    until(browser, lambda d: css(d, sel), "the dead letter")
    css(browser, sel)[0].click()
    until(browser, lambda d: css(d, ".retry-result") and
          "queued again" in css(d, ".retry-result")[0].text, "the redrive")
    # It ran again (and, failing again, is dead again with one new attempt).
    inv = wait_until(lambda: (lambda j: j if j["status"] == "dead" and j["attempts"] == 1 and
                              j["finished_at"] not in (None, fns.dead_finished) else None)(
        fns.get("/v1/invocations/" + fns.dead_id).json()), 30)
    assert inv, fns.get("/v1/invocations/" + fns.dead_id).text
    dead = fns.get("/v1/functions/ui-fail/invocations?status=dead").json()["invocations"]
    assert [i["id"] for i in dead] == [fns.dead_id]


@needs_browser
def test_a_limited_token_sees_only_what_it_may(fns, browser):
    r = fns.request("POST", "/v1/tokens", json={"name": "ui-reader", "scopes": ["read"],
                                                "functions": "ui-hello"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    # Signs in through the form this time.
    browser.get(fns.url("/ui/"))
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.get(fns.url("/ui/"))
    until(browser, lambda d: css(d, "#token-input") and css(d, "#token-input")[0].is_displayed(),
          "the sign-in form")
    css(browser, "#token-input")[0].send_keys(token)
    css(browser, "#signin-form button")[0].click()
    until(browser, lambda d: css(d, 'tr[data-function="ui-hello"]'), "the functions list")
    assert not css(browser, 'tr[data-function="ui-fail"]')  # outside its glob
    assert "metrics" in css(browser, "#metrics-note")[0].text  # no metrics scope: said so
    assert browser.execute_script("return localStorage.length") == 0
    go(browser, "#/functions/ui-hello")
    until(browser, lambda d: css(d, "#logs [data-forbidden]"), "the logs' 403 note")
    assert "'logs' scope" in css(browser, "#logs [data-forbidden]")[0].text
    until(browser, lambda d: css(d, "#invocations [data-forbidden]"), "the invocations' 403 note")
    until(browser, lambda d: css(d, 'tr[data-setting="handler"]'), "the settings")
    # Sign out: the token is gone from the tab.
    css(browser, "#signout")[0].click()
    until(browser, lambda d: css(d, "#token-input")[0].is_displayed(), "the sign-in form")
    assert browser.execute_script("return sessionStorage.getItem('hearth.token')") is None
    # A refused token signs out with a reason.
    fns.request("DELETE", "/v1/tokens/" + r.json()["id"])
    sign_in(browser, fns, token)
    until(browser, lambda d: "refused" in css(d, "#signin-error")[0].text, "the refusal")
    assert browser.execute_script("return sessionStorage.getItem('hearth.token')") is None
