-- wrk script for bench/ingest.sh: POSTs a fixed Shopify order with a precomputed HMAC over keep-alive,
-- each request with its own X-Shopify-Webhook-Id / X-Shopify-Event-Id so a deduplicating server stores
-- every one. Arguments (after `--`): BODY_FILE HMAC_BASE64 RUN_TAG [OPTIONS], OPTIONS a comma-separated
-- list. With `close`, each request asks for `Connection: close`: the server closes after answering and wrk
-- opens a new connection for the next request (a producer that does not keep connections alive). With
-- `uuid`, the ids are random version-4 UUIDs, as Shopify's are, instead of "<tag>-<thread>-<n>" (which a
-- store's indexes receive almost in order: see bench/ids.sh).
-- done() prints one "WRK key=value ..." line for the script to parse.

local threads = {}

function setup(thread)
  -- The wall clock when the load starts (wrk's Lua has no sub-second clock), printed by done().
  if not start_s then
    local p = io.popen("date +%s.%N")
    start_s = p:read("*l")
    p:close()
  end
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  options = args[4] or ""
  uuid = options:find("uuid") ~= nil
  math.randomseed(os.time() * 1000 + tid)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  local host = wrk.host .. ":" .. wrk.port
  head = "POST " .. wrk.path .. " HTTP/1.1\r\n" ..
         "Host: " .. host .. "\r\n" ..
         "User-Agent: Shopify-Captain-Hook\r\n" ..
         "Accept: */*\r\n" ..
         "Content-Type: application/json\r\n" ..
         "Content-Length: " .. #body .. "\r\n" ..
         "X-Shopify-Topic: orders/create\r\n" ..
         "X-Shopify-Hmac-Sha256: " .. args[2] .. "\r\n" ..
         "X-Shopify-Shop-Domain: bench-shop.myshopify.com\r\n" ..
         "X-Shopify-API-Version: 2025-01\r\n" ..
         "X-Shopify-Triggered-At: 2025-03-14T13:26:53.123456Z\r\n" ..
         (options:find("close") and "Connection: close\r\n" or "") ..
         "X-Shopify-Webhook-Id: "
  id_prefix = args[3] .. "-" .. tid .. "-"
  mid = "\r\nX-Shopify-Event-Id: "
  tail = "\r\n\r\n" .. body
  counter = 0
end

local function random_uuid()
  local r = math.random
  return string.format("%08x-%04x-4%03x-%04x-%04x%08x", r(0, 0xffffffff), r(0, 0xffff), r(0, 0xfff),
                       0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffffffff))
end

function request()
  counter = counter + 1
  local id = uuid and random_uuid() or id_prefix .. counter
  return head .. id .. mid .. id .. tail
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
