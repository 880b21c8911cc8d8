-- post.lua — wrk script used for every HTTP case of bench/run.sh.
--
-- Sends POST with a small JSON body (the event a Python handler receives),
-- so the baseline and hearthd parse the same requests. When wrk finishes,
-- done() prints one machine-readable line that run.sh reads instead of
-- scraping wrk's human output (latencies are in microseconds, exact):
--
--   BENCH requests=N duration_us=N p50_us=N p99_us=N non2xx=N
--         connect=N read=N write=N timeout=N

wrk.method = "POST"
wrk.body = '{"name":"bench","n":1}'
wrk.headers["Content-Type"] = "application/json"
-- hearthd needs a token (run.sh and auth_cost.sh export it); the baseline
-- ignores the header.
local token = os.getenv("HEARTH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
-- BENCH_HEADERS: more headers, one "Name: value" per line (a request
-- signed ahead for the AWS API: bench/qualifiers.sh). They win over the
-- token's Authorization.
local extra = os.getenv("BENCH_HEADERS")
if extra then
  for name, value in extra:gmatch("([^:\n]+):%s*([^\n]*)") do
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d " ..
    "connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
