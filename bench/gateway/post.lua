-- wrk script for bench.gateway: POST a chat body, optionally paced, report as one JSON line.
--   BENCH_BODY  the JSON request body
--   BENCH_AUTH  the Authorization header value
--   BENCH_RATE  requests/s for this wrk thread (0 or unset: as fast as the connections go)
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

local rate = tonumber(os.getenv("BENCH_RATE") or "0") or 0

if rate > 0 then
  -- One schedule per wrk thread, shared by its connections: each request claims the next
  -- slot, so the thread sends `rate` requests/s as long as some connection is free.
  -- wrk starts its latency clock when the request is written, so waiting is not counted.
  local interval = 1000 / rate
  local next_slot = nil
  function delay()
    local t = now_ms()
    if next_slot == nil or next_slot < t - interval then
      next_slot = t -- fell behind (all connections busy): do not burst to catch up
    end
    local wait = next_slot - t
    next_slot = next_slot + interval
    return math.floor(wait + 0.5)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
