-- async.lua — wrk script of bench/async.sh.
--
-- POSTs the small JSON body of post.lua to /v1/functions/NAME/invoke, one
-- function per wrk thread: the names come after wrk's `--` (thread i posts
-- to name i, round-robin), so each function's queue fills at 1/threads of
-- the rate and stays under its async_max_queue. With ASYNC=1 in the
-- environment every request carries `Prefer: respond-async` (answered 202
-- once durable); without it the same requests are synchronous invokes.
-- The request is formatted once per thread. With COUNT=N in the
-- environment each thread stops after N answers (requests in flight then
-- are still sent: the server's counters tell how many it took). done()
-- prints the BENCH line of post.lua:
--
--   BENCH requests=N duration_us=N p50_us=N p99_us=N non2xx=N
--         connect=N read=N write=N timeout=N

local n = 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
end

local req
function init(args)
  local name = args[((tid or 1) - 1) % math.max(#args, 1) + 1] or "hello"
  local headers = { ["Content-Type"] = "application/json" }
  if os.getenv("ASYNC") == "1" then
    headers["Prefer"] = "respond-async"
  end
  local token = os.getenv("HEARTH_TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  req = wrk.format("POST", "/v1/functions/" .. name .. "/invoke", headers,
                   '{"name":"bench","n":1}')
end

function request()
  return req
end

local limit = tonumber(os.getenv("COUNT") or "")
if limit then
  local answered = 0
  function response()
    answered = answered + 1
    if answered >= limit then
      wrk.thread:stop()
    end
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
