-- wrk script for the publish API (POST /v1/events, bench/growth.sh): one fixed event per request.
-- Arguments (after `--`): BODY_FILE PUBLISH_KEY. done() prints the same "WRK key=value ..." line as
-- bench/ingest.lua.

function setup(thread)
  -- The wall clock when the load starts (wrk's Lua has no sub-second clock), printed by done().
  if not start_s then
    local p = io.popen("date +%s.%N")
    start_s = p:read("*l")
    p:close()
  end
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d rps=%.0f non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "p999_us=%d max_us=%d start_s=%s\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, start_s or "0"))
end
