/*
 * Hearth's dashboard: plain JavaScript, no framework, no build step.
 *
 * Everything it shows comes from hearthd's JSON API, called with the token
 * the user pasted (Authorization: Bearer). The token lives in
 * sessionStorage (this tab's session) and nowhere else; a /ui/#token=…
 * link stores it and wipes the fragment from the address bar and history.
 * The API decides what the token may see; the page only says so politely.
 *
 * Every value from the API is put into the page as text (textContent,
 * attributes through setAttribute): no HTML is ever built from a string
 * (the page's Content-Security-Policy enforces that with Trusted Types).
 */
"use strict";

const TOKEN_KEY = "hearth.token";
const LOG_MAX_LINES = 1000;

/* --- the token --- */

function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

/* A #token=… fragment signs in and is removed at once, before anything
 * else runs, so it stays neither in the address bar nor in the history. */
function takeTokenFromFragment() {
  const m = /^#token=([^&]*)/.exec(location.hash);
  if (!m) return;
  let t = "";
  try { t = decodeURIComponent(m[1]).trim(); } catch (e) { t = ""; }
  history.replaceState(null, "", location.pathname + location.search + "#/");
  if (t) setToken(t);
}

/* --- talking to the API --- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/* fetch with the token; answers the Response. A 401 signs out. */
async function apiFetch(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const t = getToken();
  if (t) headers.set("Authorization", "Bearer " + t);
  const r = await fetch(path, Object.assign({}, opts, {
    headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
  }));
  if (r.status === 401) {
    signOut("The token was refused (unknown, revoked or expired). Sign in again.");
    throw new ApiError(401, "unauthorized", "not signed in");
  }
  return r;
}

/* The error of a non-2xx answer as an ApiError. */
async function errorOf(r) {
  let code = "http_" + r.status, message = r.status + " " + r.statusText;
  try {
    const j = await r.json();
    if (j && j.error) { code = String(j.error.code); message = String(j.error.message); }
  } catch (e) { /* not JSON: keep the status line */ }
  return new ApiError(r.status, code, message);
}

/* GET a JSON document; throws ApiError when the answer is not 2xx. */
async function apiJson(path, opts) {
  const r = await apiFetch(path, opts);
  if (!r.ok) throw await errorOf(r);
  return r.json();
}

/* --- building the page (text only, never HTML) --- */

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return parent;
}

function clear(node) {
  node.replaceChildren();
  return node;
}

function table(headers, rows, opts = {}) {
  return el("table", {class: opts.class, "data-table": opts.name},
    el("thead", {}, el("tr", {}, headers.map((h) =>
      el("th", {class: /^(#|Invocations|Errors|Cold starts|Version)$/.test(h) ? "num" : null}, h)))),
    el("tbody", {}, rows));
}

function badge(text, kind) {
  return el("span", {class: "badge " + (kind || text)}, text);
}

/* What to show for an API error: a 403 says what the token lacks. */
function errorNote(err, what) {
  if (err instanceof ApiError && err.status === 403)
    return el("p", {class: "notice", "data-forbidden": ""},
      "This token may not see " + what + ": " + err.message + ".");
  if (err instanceof ApiError && err.status === 401) return el("p", {class: "muted"}, "Signed out.");
  return el("p", {class: "error"}, "Could not load " + what + ": " + (err.message || err));
}

function showValue(v) {
  if (v === null || v === undefined) return el("span", {class: "muted"}, "—");
  if (typeof v === "object") return el("code", {}, JSON.stringify(v));
  return String(v);
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString();
}

function shortId(id) {
  return id ? String(id).slice(0, 8) : "-";
}

/* --- metrics: Prometheus text, parsed here --- */

function unescapeLabel(s) {
  return s.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
}

/* [{name, labels: {...}, value}] of every sample line. */
function parseMetrics(text) {
  const out = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split("\n")) {
    if (!raw || raw[0] === "#") continue;
    const m = line.exec(raw);
    if (!m) continue;
    const labels = {};
    for (const lm of (m[2] || "").matchAll(label)) labels[lm[1]] = unescapeLabel(lm[2]);
    out.push({name: m[1], labels, value: Number(m[3])});
  }
  return out;
}

/* Per function: {invocations, errors, cold} since the daemon started.
 * An error is any status outside 1xx-3xx (a class such as "5xx" too). */
function perFunction(samples) {
  const fns = new Map();
  const of = (n) => {
    if (!fns.has(n)) fns.set(n, {invocations: 0, errors: 0, cold: 0});
    return fns.get(n);
  };
  for (const s of samples) {
    const f = s.labels.function;
    if (!f) continue;
    if (s.name === "hearth_invocations_total") {
      of(f).invocations += s.value;
      if (!/^[123]/.test(s.labels.code || "")) of(f).errors += s.value;
    } else if (s.name === "hearth_cold_starts_total") {
      of(f).cold += s.value;
    }
  }
  return fns;
}

/* The metrics, or null with the reason when the token may not read them. */
async function loadMetrics() {
  try {
    const r = await apiFetch("/metrics");
    if (!r.ok) return {error: await errorOf(r)};
    return {fns: perFunction(parseMetrics(await r.text()))};
  } catch (e) {
    return {error: e};
  }
}

function poolState(pool) {
  if (!pool) return "unknown";
  if (pool.busy > 0) return "busy";
  if (pool.idle > 0) return "warm";
  if (pool.starting > 0) return "starting";
  return "cold";
}

/* --- pages --- */

const view = () => document.getElementById("view");
let pageCleanup = [];   /* run when leaving a page: streams, timers */
let renderSeq = 0;      /* a page's async work stops once another page starts */

function leavePage() {
  for (const f of pageCleanup) {
    try { f(); } catch (e) { /* already stopped */ }
  }
  pageCleanup = [];
  renderSeq++;
}

async function pageFunctions() {
  const seq = renderSeq;
  const root = clear(view());
  const body = el("div", {id: "functions-body"}, el("p", {class: "muted"}, "Loading…"));
  append(root, [
    el("div", {class: "heading"}, el("h1", {}, "Functions"), el("span", {class: "spacer"}),
      el("button", {type: "button", id: "refresh", onclick: () => fill()}, "Refresh")),
    body,
  ]);
  async function fill() {
    let list;
    const metricsP = loadMetrics();
    try {
      list = (await apiJson("/v1/functions")).functions;
    } catch (e) {
      if (seq === renderSeq) clear(body).append(errorNote(e, "the functions (scope read)"));
      return;
    }
    const metrics = await metricsP;
    if (seq !== renderSeq) return;
    const rows = list.map((f) => {
      const m = metrics.fns ? metrics.fns.get(f.name) || {invocations: 0, errors: 0, cold: 0} : null;
      const pool = f.pool || {};
      const calls = m ? m.invocations : (pool.cold_starts || 0) + (pool.warm_starts || 0);
      const state = poolState(f.pool);
      return el("tr", {"data-function": f.name},
        el("td", {}, el("a", {href: "#/functions/" + encodeURIComponent(f.name)}, f.name)),
        el("td", {class: "num"}, String(f.version)),
        el("td", {}, f.runtime),
        el("td", {}, badge(state)),
        el("td", {class: "num", "data-col": "invocations"}, String(calls)),
        el("td", {class: "num", "data-col": "errors"}, m ? String(m.errors) : "—"),
        el("td", {class: "num", "data-col": "cold"}, String(m ? m.cold : pool.cold_starts || 0)),
        el("td", {}, fmtTime(f.updated_at)));
    });
    const out = [];
    if (metrics.error)
      out.push(el("p", {class: "notice", id: "metrics-note"},
        "Invocation counts come from the workers' pool (synchronous calls only) and errors are " +
        "not shown: " + (metrics.error.status === 403
          ? "this token lacks the 'metrics' scope." : "the metrics could not be read.")));
    if (!list.length)
      out.push(el("p", {class: "muted"}, "No functions yet (or none this token may see)."));
    else
      out.push(table(["Name", "Version", "Runtime", "State", "Invocations", "Errors",
        "Cold starts", "Updated"], rows, {name: "functions"}));
    out.push(el("p", {class: "muted"}, "Counts since the daemon started."));
    clear(body).append(...out);
  }
  await fill();
  const timer = setInterval(() => { if (!document.hidden) fill(); }, 10000);
  pageCleanup.push(() => clearInterval(timer));
}

/* A card with a title whose body is filled by `load` (a 403 or 404 shows
 * as a note inside the card; the rest of the page carries on). */
function card(id, title, extra) {
  const body = el("div", {class: "card-body"}, el("p", {class: "muted"}, "Loading…"));
  const c = el("section", {class: "card", id},
    el("div", {class: "heading"}, el("h2", {}, title), el("span", {class: "spacer"}), extra || []),
    body);
  c.body = body;
  return c;
}

function settingsRows(f) {
  const skip = new Set(["name", "pool", "async"]);
  return Object.keys(f).filter((k) => !skip.has(k)).map((k) =>
    el("tr", {"data-setting": k}, el("td", {}, k), el("td", {}, showValue(f[k]))));
}

async function loadSettings(c, name, seq) {
  try {
    const f = await apiJson("/v1/functions/" + encodeURIComponent(name));
    if (seq !== renderSeq) return null;
    const pool = f.pool || {};
    clear(c.body).append(
      el("p", {}, "Version ", el("strong", {id: "fn-version"}, String(f.version)), " · ",
        f.runtime, " · ", badge(poolState(f.pool))),
      el("p", {class: "muted"}, "Workers: " + (pool.busy || 0) + " busy, " + (pool.idle || 0) +
        " idle, " + (pool.starting || 0) + " starting, " + (pool.queued || 0) + " calls waiting. " +
        "Async: " + ((f.async || {}).waiting || 0) + " waiting, " + ((f.async || {}).running || 0) +
        " running. Since the start: " + (pool.cold_starts || 0) + " cold and " +
        (pool.warm_starts || 0) + " warm calls."),
      el("table", {class: "kv", "data-table": "settings"}, el("tbody", {}, settingsRows(f))));
    return f;
  } catch (e) {
    if (seq === renderSeq) clear(c.body).append(errorNote(e, "this function (scope read)"));
    return null;
  }
}

/* Versions and aliases come from endpoints a daemon may not have yet:
 * a 404 (or 405) there says "not available", not an error. */
function unavailable(e) {
  return e instanceof ApiError && (e.status === 405 || (e.status === 404 && e.code !== "function_not_found"));
}

async function loadVersions(c, name, seq) {
  try {
    const v = await apiJson("/v1/functions/" + encodeURIComponent(name) + "/versions");
    if (seq !== renderSeq) return;
    const rows = (v.versions || []).map((x) => el("tr", {"data-version": x.version},
      el("td", {class: "num"}, String(x.version)),
      el("td", {}, x.current ? badge("current", "ok") : ""),
      el("td", {class: "mono", title: x.digest || ""}, x.digest ? String(x.digest).slice(0, 19) + "…" : "—"),
      el("td", {}, fmtTime(x.created))));
    clear(c.body).append(rows.length ? table(["Version", "", "Digest", "Created"], rows, {name: "versions"})
      : el("p", {class: "muted"}, "No versions kept."));
  } catch (e) {
    if (seq !== renderSeq) return;
    clear(c.body).append(unavailable(e)
      ? el("p", {class: "muted", "data-unavailable": ""}, "Versions are not available on this daemon.")
      : errorNote(e, "the versions"));
  }
}

async function loadAliases(c, name, seq) {
  try {
    const v = await apiJson("/v1/functions/" + encodeURIComponent(name) + "/aliases");
    if (seq !== renderSeq) return;
    const rows = (v.aliases || []).map((a) => el("tr", {"data-alias": a.name},
      el("td", {}, a.name),
      el("td", {class: "num"}, String(a.version)),
      el("td", {}, a.weights && Object.keys(a.weights).length
        ? Object.entries(a.weights).map(([ver, w]) => "v" + ver + ": " + Math.round(w * 1000) / 10 + "%").join(", ")
        : "—"),
      el("td", {}, fmtTime(a.updated))));
    clear(c.body).append(rows.length ? table(["Alias", "Version", "Weights", "Updated"], rows, {name: "aliases"})
      : el("p", {class: "muted"}, "No aliases."));
  } catch (e) {
    if (seq !== renderSeq) return;
    clear(c.body).append(unavailable(e)
      ? el("p", {class: "muted", "data-unavailable": ""}, "Aliases are not available on this daemon.")
      : errorNote(e, "the aliases"));
  }
}

async function loadSchedules(c, name, seq) {
  try {
    const v = await apiJson("/v1/functions/" + encodeURIComponent(name) + "/schedules");
    if (seq !== renderSeq) return;
    const rows = (v.schedules || []).map((s) => el("tr", {"data-schedule": s.index},
      el("td", {class: "mono"}, s.cron + (s.qualifier ? " → :" + s.qualifier : "")),
      el("td", {}, s.timezone),
      el("td", {}, el("ul", {class: "plain", "data-next": ""},
        (s.next || []).slice(0, 3).map((t) => el("li", {title: t}, fmtTime(t))))),
      el("td", {}, s.last ? [fmtTime(s.last.fired_at), " ", badge(s.last.status)] : "never")));
    clear(c.body).append(rows.length
      ? table(["Schedule", "Time zone", "Next runs", "Last run"], rows, {name: "schedules"})
      : el("p", {class: "muted"}, "No schedules."));
  } catch (e) {
    if (seq === renderSeq) clear(c.body).append(errorNote(e, "the schedules (scope read)"));
  }
}

async function retry(id, c, reload) {
  const out = c.querySelector(".retry-result") || c.body.appendChild(el("p", {class: "retry-result"}));
  try {
    const r = await apiFetch("/v1/invocations/" + encodeURIComponent(id) + "/retry", {method: "POST"});
    if (!r.ok) throw await errorOf(r);
    const j = await r.json();
    out.textContent = "Invocation " + shortId(j.id) + " queued again.";
  } catch (e) {
    out.textContent = e.status === 403 ? "This token may not retry: " + e.message : "Retry failed: " + e.message;
  }
  reload();
}

function invocationRow(x, withRetry, c, reload) {
  return el("tr", {"data-invocation": x.id, "data-status": x.status},
    el("td", {class: "mono", title: x.id}, shortId(x.id)),
    el("td", {}, badge(x.status)),
    el("td", {class: "num"}, String(x.attempts)),
    el("td", {}, x.source),
    el("td", {}, fmtTime(x.created_at)),
    el("td", {}, x.error ? x.error.code + ": " + x.error.message : ""),
    withRetry ? el("td", {}, el("button", {type: "button", class: "retry",
      onclick: (ev) => { ev.target.disabled = true; retry(x.id, c, reload); }}, "Retry")) : null);
}

async function loadInvocations(c, name, seq, status) {
  const q = status ? "?status=" + status + "&limit=50" : "?limit=20";
  const reload = () => loadInvocations(c, name, renderSeq, status);
  try {
    const v = await apiJson("/v1/functions/" + encodeURIComponent(name) + "/invocations" + q);
    if (seq !== renderSeq) return;
    const dead = status === "dead";
    const rows = (v.invocations || []).map((x) => invocationRow(x, dead, c, reload));
    const headers = ["Id", "Status", "Attempts", "Source", "Created", "Last error"];
    if (dead) headers.push("");
    const keep = c.querySelector(".retry-result");
    clear(c.body).append(rows.length ? table(headers, rows, {name: dead ? "dead" : "invocations"})
      : el("p", {class: "muted"}, dead ? "No dead letters." : "No asynchronous invocations."));
    if (keep) c.body.append(keep);
  } catch (e) {
    if (seq === renderSeq) clear(c.body).append(errorNote(e, "the invocations (scope invoke)"));
  }
}

/* The invoke form: a JSON payload, sync or async; shows what came back. */
function invokeForm(c, name, onDone) {
  const payload = el("textarea", {id: "invoke-payload", spellcheck: "false", "aria-label": "payload (JSON)"});
  payload.value = "{}";
  const asyncBox = el("input", {type: "checkbox", id: "invoke-async"});
  /* name:QUALIFIER (a version, an alias or $LATEST) where the daemon has
   * versions; empty calls the current version. */
  const qualifier = el("input", {id: "invoke-qualifier", size: 12, spellcheck: "false",
    placeholder: "current", "aria-label": "version or alias"});
  const result = el("div", {class: "result", id: "invoke-result"});
  const send = el("button", {type: "submit", class: "primary", id: "invoke-send",
    title: "Ctrl+Enter in the payload too"}, "Invoke");
  const form = el("form", {id: "invoke-form"}, payload,
    el("div", {class: "row"}, send,
      el("label", {}, "version or alias ", qualifier),
      el("label", {}, asyncBox, " asynchronously (", el("code", {}, "Prefer: respond-async"), ")")),
    result);
  payload.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let body = payload.value;
    try { JSON.parse(body); } catch (e) {
      clear(result).append(el("p", {class: "error"}, "The payload is not valid JSON: " + e.message));
      return;
    }
    const headers = {"Content-Type": "application/json"};
    if (asyncBox.checked) headers.Prefer = "respond-async";
    send.disabled = true;
    clear(result).append(el("p", {class: "muted"}, "Invoking…"));
    const t0 = performance.now();
    try {
      const q = qualifier.value.trim();
      const target = encodeURIComponent(q ? name + ":" + q : name);
      const r = await apiFetch("/v1/functions/" + target + "/invoke",
        {method: "POST", headers, body});
      const ms = Math.round(performance.now() - t0);
      const text = await r.text();
      let shown = text;
      if ((r.headers.get("Content-Type") || "").startsWith("application/json")) {
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* as sent */ }
      }
      const version = r.headers.get("X-Hearth-Function-Version") || r.headers.get("X-Hearth-Version");
      const cold = r.headers.get("X-Hearth-Cold-Start") === "1";
      clear(result).append(
        el("p", {class: "row"},
          el("span", {id: "invoke-status", class: "badge " + (r.ok ? "ok" : "bad"), "data-status": r.status},
            r.status + " " + r.statusText),
          version ? el("span", {}, "version ", el("strong", {id: "invoke-version"}, version)) : null,
          r.status !== 202 ? el("span", {id: "invoke-start"}, cold ? "cold start" : "warm") : null,
          el("span", {class: "muted"}, ms + " ms"),
          el("span", {class: "muted mono", title: "X-Request-Id"}, r.headers.get("X-Request-Id") || "")),
        el("pre", {id: "invoke-body"}, shown));
      onDone();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401))
        clear(result).append(el("p", {class: "error"}, "The call failed: " + (e.message || e)));
    } finally {
      send.disabled = false;
    }
  });
  clear(c.body).append(form);
}

/* The live log: GET …/logs?follow=1&format=ndjson, read as a stream (the
 * token goes in a header, which EventSource cannot send). */
function liveLog(c, name) {
  const box = el("div", {class: "log", id: "log-lines", role: "log"});
  const state = el("span", {class: "muted", id: "log-state"}, "");
  const toggle = el("button", {type: "button", id: "log-toggle"}, "Stop");
  let ctl = null;
  let stopped = false;

  function addLine(rec) {
    const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(el("div", {class: "line " + rec.stream, "data-request": rec.request_id || "-"},
      el("span", {class: "t"}, (rec.time || "").replace("T", " ").replace("Z", "")), " ",
      el("span", {class: "r", title: rec.request_id || ""}, shortId(rec.request_id)), " ",
      el("span", {class: "v"}, "v" + rec.version), " ",
      el("span", {class: "s"}, rec.stream), " ",
      el("span", {class: "m"}, rec.message)));
    while (box.childElementCount > LOG_MAX_LINES) box.firstElementChild.remove();
    if (stick) box.scrollTop = box.scrollHeight;
  }

  async function start() {
    stopped = false;
    ctl = new AbortController();
    toggle.textContent = "Stop";
    state.textContent = "connecting…";
    try {
      const r = await apiFetch("/v1/functions/" + encodeURIComponent(name) +
        "/logs?follow=1&format=ndjson&tail=50", {signal: ctl.signal});
      if (!r.ok) {
        const e = await errorOf(r);
        clear(box).append(errorNote(e, "the logs (scope logs)"));
        state.textContent = "";
        toggle.hidden = true;
        return;
      }
      state.textContent = "live";
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        pending += value;
        let nl;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line.trim()) continue;
          try { addLine(JSON.parse(line)); } catch (e) { addLine({stream: "stderr", message: line}); }
        }
      }
      state.textContent = "the stream ended";
    } catch (e) {
      if (!stopped) state.textContent = "disconnected: " + (e.message || e);
    }
    toggle.textContent = "Reconnect";
  }

  function stop() {
    stopped = true;
    if (ctl) ctl.abort();
    state.textContent = "stopped";
    toggle.textContent = "Reconnect";
  }

  toggle.addEventListener("click", () => (toggle.textContent === "Stop" ? stop() : (clear(box), start())));
  c.querySelector(".heading").append(state, toggle);
  clear(c.body).append(box);
  pageCleanup.push(stop);
  start();
}

async function pageFunction(name) {
  const root = clear(view());
  const statusSel = el("select", {id: "inv-status", "aria-label": "status"},
    ["", "queued", "running", "retrying", "succeeded", "dead", "cancelled"].map((s) =>
      el("option", {value: s}, s || "all")));
  const settings = card("settings", "Settings");
  const versions = card("versions", "Versions");
  const aliases = card("aliases", "Aliases");
  const invoke = card("invoke", "Invoke");
  const logs = card("logs", "Live logs");
  const schedules = card("schedules", "Schedules");
  const invocations = card("invocations", "Async invocations", statusSel);
  const dead = card("dead-letters", "Dead letters");
  append(root, [
    el("div", {class: "heading"},
      el("h1", {id: "fn-name"}, name),
      el("a", {href: "#/"}, "← all functions"),
      el("span", {class: "spacer"}),
      el("button", {type: "button", id: "refresh", onclick: () => refresh()}, "Refresh")),
    el("div", {class: "grid"},
      el("div", {}, invoke, logs, invocations, dead),
      el("div", {}, schedules, versions, aliases, settings)),
  ]);
  function refresh() {
    const s = renderSeq;
    loadSettings(settings, name, s);
    loadVersions(versions, name, s);
    loadAliases(aliases, name, s);
    loadSchedules(schedules, name, s);
    loadInvocations(invocations, name, s, statusSel.value);
    loadInvocations(dead, name, s, "dead");
  }
  statusSel.addEventListener("change", () => loadInvocations(invocations, name, renderSeq, statusSel.value));
  invokeForm(invoke, name, () => setTimeout(refresh, 300));
  liveLog(logs, name);
  refresh();
}

/* --- routing: #/ and #/functions/NAME --- */

function route() {
  leavePage();
  if (!getToken()) {
    showSignIn();
    return;
  }
  document.getElementById("signin").hidden = true;
  document.getElementById("view").hidden = false;
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  const m = /^#\/functions\/([^/]+)$/.exec(location.hash);
  if (m) {
    let name;
    try { name = decodeURIComponent(m[1]); } catch (e) { name = ""; }
    document.title = name + " · Hearth";
    pageFunction(name);
  } else {
    document.title = "Functions · Hearth";
    pageFunctions();
  }
}

function showSignIn(message) {
  document.getElementById("view").hidden = true;
  clear(document.getElementById("view"));
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("signin").hidden = false;
  document.getElementById("signin-error").textContent = message || "";
  document.getElementById("token-input").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  leavePage();
  showSignIn(message);
}

function start() {
  takeTokenFromFragment();
  document.getElementById("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = document.getElementById("token-input");
    const t = input.value.trim();
    input.value = "";
    if (!t) return;
    setToken(t);
    if (location.hash !== "#/") location.hash = "#/";
    else route();
  });
  document.getElementById("signout").addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", () => {
    takeTokenFromFragment();
    route();
  });
  route();
}

start();
