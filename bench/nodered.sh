#!/usr/bin/env bash
# Peer benchmark: evrouter against Node-RED running the same webhook flow, end to end (ingest -> sink).
#
#   bench/nodered.sh
#
# Installs Node-RED (npm package node-red, NODE_RED_VERSION, default ~4.1) into bench/.node-red/ when it is
# not there (ignored by git), builds a Release evrouter, then REPEATS times, in this order:
#   - evrouter: the sample Shopify flow (HMAC check, topic filter, numeric-string pattern on total_price,
#     two branches), store.durability fsync, delivering to the sink over a connection without a rate limit;
#   - Node-RED "ack-after-verify": http in (raw body kept) -> function (HMAC-SHA256 of the raw body against
#     X-Shopify-Hmac-Sha256, constant-time compare, JSON parse) -> http response 200 at once, and the same
#     event -> switch on total_price (> 100: priority, else standard) -> http request to the sink;
#   - Node-RED "ack-after-delivery": the same, but the 200 is sent once the http request returned (502 if
#     the sink did not answer 2xx).
# Each: wrk (bench/ingest.lua: the order fixture with its real HMAC, a unique webhook id per request),
# CONNECTIONS keep-alive connections for DURATION s, closed loop. The sink is nginx (bench/delivery_lib.sh)
# logging every request: what counts is what the sink received *during* the load (and, separately, up to
# SETTLE s after it), not what was acknowledged; and the CPU time the server process used from the start
# of the load to the end of SETTLE (/proc/PID/stat), so "deliveries per CPU second" compares the work per
# event whatever share of the shared CPUs each got. Prints medians and evrouter / Node-RED ratios.
# Docs and results: docs/benchmarks.md.
#
# Environment: DURATION (s, 10), REPEATS (3), CONNECTIONS (64), SETTLE (5), WARMUP (s, 2), EVR_CONCURRENCY (32),
# NODE_RED_VERSION (~4.1), NODE_RED_DIR (bench/.node-red), BUILD_DIR, KEEP=1, RESULTS_OUT (file: a copy
# of the per-run lines).
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-64}
SETTLE=${SETTLE:-5}
WARMUP=${WARMUP:-2}
EVR_CONCURRENCY=${EVR_CONCURRENCY:-32}
NODE_RED_VERSION=${NODE_RED_VERSION:-~4.1}
NODE_RED_DIR=${NODE_RED_DIR:-$ROOT/bench/.node-red}

for tool in node npm wrk openssl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is required" >&2; exit 1; }
done

# --- Node-RED, installed once into bench/.node-red/ -------------------------------------------------------
RED_JS=$NODE_RED_DIR/node_modules/node-red/red.js
if [[ ! -f $RED_JS ]]; then
  echo "installing node-red@$NODE_RED_VERSION into $NODE_RED_DIR ..." >&2
  mkdir -p "$NODE_RED_DIR"
  npm install --prefix "$NODE_RED_DIR" --no-audit --no-fund --omit=dev "node-red@$NODE_RED_VERSION" >&2
fi
NODE_RED_INSTALLED=$(node -p "require('$NODE_RED_DIR/node_modules/node-red/package.json').version")

SINK_PORT=$(free_port)
EVR_PORT=$(free_port)
NR_PORT=$(free_port)
start_nginx sink "$SINK_PORT"
SINK_LOG=$WORK/sink/arrivals.log
setup_shopify_request

# write_nodered DIR VARIANT(verify|delivery): settings.js and the flow file (flows.json).
write_nodered() {
  mkdir -p "$1"
  cat >"$1/settings.js" <<JS
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: $NR_PORT,
  userDir: "$1",
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: "/admin",
  functionGlobalContext: { crypto: require("crypto") },
  externalModules: { autoInstall: false },
  diagnostics: { enabled: false },
  runtimeState: { enabled: false },
  telemetry: { enabled: false },
  logging: { console: { level: "warn", metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false } }
};
JS
  python3 - "$1/flows.json" "$2" "http://127.0.0.1:$SINK_PORT/ok/nr-$2" <<'PY'
import json, sys
path, variant, sink = sys.argv[1:4]
# The function node: HMAC-SHA256 of the raw body (a Buffer: http in with skipBodyParsing) compared in
# constant time with X-Shopify-Hmac-Sha256, then the JSON parsed for the switch on total_price.
verify = r"""
const crypto = global.get('crypto');
const sent = Buffer.from(String(msg.req.headers['x-shopify-hmac-sha256'] || ''), 'base64');
const mac = crypto.createHmac('sha256', env.get('EVROUTER_BENCH_SECRET')).update(msg.payload).digest();
if (sent.length !== mac.length || !crypto.timingSafeEqual(sent, mac)) {
    return [null, null, {res: msg.res, statusCode: 401, payload: {error: 'signature'}}];
}
let order;
try { order = JSON.parse(msg.payload.toString('utf8')); }
catch (e) { return [null, null, {res: msg.res, statusCode: 400, payload: {error: 'json'}}]; }
const delivery = {payload: msg.payload, total_price: Number(order.total_price),
                  headers: {'content-type': 'application/json',
                            'x-shopify-topic': String(msg.req.headers['x-shopify-topic'] || '')}};
if (VARIANT === 'verify') {
    return [{res: msg.res, statusCode: 200, payload: '{"status":"accepted"}'}, delivery, null];
}
delivery.res = msg.res;
return [null, delivery, null];
""".replace("VARIANT", json.dumps(variant))
answer = r"""
const ok = msg.statusCode >= 200 && msg.statusCode < 300;
return {res: msg.res, statusCode: ok ? 200 : 502, headers: {'content-type': 'application/json'},
        payload: ok ? '{"status":"delivered"}' : '{"error":"sink"}'};
"""
after_request = [["answer"]] if variant == "delivery" else [[]]
def request(node_id, uri, y):
    return {"id": node_id, "type": "http request", "z": "tab", "name": node_id, "method": "POST", "ret": "txt",
            "paytoqs": "ignore", "url": sink + uri, "tls": "", "persist": True, "proxy": "",
            "insecureHTTPParser": False, "authType": "", "senderr": False, "headers": [], "x": 700, "y": y,
            "wires": after_request}
flows = [
    {"id": "tab", "type": "tab", "label": "shopify-orders (" + variant + ")", "disabled": False, "info": ""},
    {"id": "in", "type": "http in", "z": "tab", "name": "shopify webhook", "url": "/hooks/shopify",
     "method": "post", "upload": False, "skipBodyParsing": True, "swaggerDoc": "", "x": 100, "y": 100,
     "wires": [["verify"]]},
    {"id": "verify", "type": "function", "z": "tab", "name": "verify HMAC", "func": verify, "outputs": 3,
     "timeout": 0, "noerr": 0, "initialize": "", "finalize": "", "libs": [], "x": 300, "y": 100,
     "wires": [["respond"], ["switch"], ["respond"]]},
    {"id": "switch", "type": "switch", "z": "tab", "name": "total_price > 100", "property": "total_price",
     "propertyType": "msg", "rules": [{"t": "gt", "v": "100", "vt": "num"}, {"t": "else"}],
     "checkall": "false", "repair": False, "outputs": 2, "x": 500, "y": 140,
     "wires": [["priority"], ["standard"]]},
    request("priority", "/orders/priority", 120),
    request("standard", "/orders", 160),
    {"id": "answer", "type": "function", "z": "tab", "name": "answer", "func": answer, "outputs": 1,
     "timeout": 0, "noerr": 0, "initialize": "", "finalize": "", "libs": [], "x": 900, "y": 140,
     "wires": [["respond"]]},
    {"id": "respond", "type": "http response", "z": "tab", "name": "", "statusCode": "", "headers": {},
     "x": 1100, "y": 100, "wires": []},
    {"id": "ready-in", "type": "http in", "z": "tab", "name": "ready", "url": "/ready", "method": "get",
     "upload": False, "swaggerDoc": "", "x": 100, "y": 300, "wires": [["respond"]]},
]
json.dump(flows, open(path, "w"), indent=1)
PY
}

# measure NAME URL PID PREFIX: a warm-up (wrk, 8 connections, WARMUP s, then SETTLE s for its deliveries),
# then wrk for DURATION s and SETTLE s more; appends one result line.
measure() {
  local out t0 t1 during after rss_peak=0 sampler cpu0 cpu1
  if ((WARMUP > 0)); then
    wrk_shopify "$2" 8 "$WARMUP" "warm-$1" >/dev/null
    sleep "$SETTLE"
  fi
  (
    while kill -0 "$3" 2>/dev/null; do rss_kb "$3"; sleep 0.5; done
  ) >"$WORK/rss-$1.txt" 2>/dev/null &
  sampler=$!
  cpu0=$(cpu_s "$3")
  out=$(wrk_shopify "$2" "$CONNECTIONS" "$DURATION" "$1")
  read -r t0 t1 <<<"$(wrk_window "$out")"
  sleep "$SETTLE"
  cpu1=$(cpu_s "$3")
  sleep 1.2  # nginx flushes its log every second
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  rss_peak=$(sort -n "$WORK/rss-$1.txt" | tail -1)
  during=$(sink_count "$SINK_LOG" "$4" "$t0" "$t1")
  after=$(sink_count "$SINK_LOG" "$4" "$t0" "$(echo "$t1 + $SETTLE" | bc)")
  echo "$1 $out sink_during=$during sink_settle=$after rss_peak_kb=${rss_peak:-0} cpu_s=$(echo "$cpu1 - $cpu0" | bc)" \
    | tee -a "$WORK/results.txt"
}

echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine     $(machine_line | cut -c13-)"
echo "tools       node $(node --version), node-red $NODE_RED_INSTALLED, $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "settings    wrk $CONNECTIONS connections, ${DURATION} s closed loop, $REPEATS repeats; evrouter fsync, connection concurrency $EVR_CONCURRENCY; settle ${SETTLE} s"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/results.txt"

for r in $(seq "$REPEATS"); do
  dir=$WORK/evrouter-$r
  write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$SINK_PORT/ok/evrouter-$r" \
    "  state_dir: $dir/state
  durability: fsync" "$EVR_CONCURRENCY"
  start_evrouter_ready "$dir" "$EVR_PORT"
  measure "evrouter-r$r" "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$EVR_PID" "/ok/evrouter-$r/"
  stop_pid "$EVR_PID"

  for variant in verify delivery; do
    nr=$WORK/nodered-$variant-$r
    write_nodered "$nr" "$variant"
    node "$RED_JS" --settings "$nr/settings.js" >"$nr/node-red.log" 2>&1 &
    nr_pid=$!
    PIDS+=("$nr_pid")
    wait_http "http://127.0.0.1:$NR_PORT/ready" 200 || { cat "$nr/node-red.log" >&2; exit 1; }
    # One signed request by hand: must be accepted (and a forged one refused) before measuring.
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$NR_PORT/hooks/shopify" \
      -H 'Content-Type: application/json' -H "X-Shopify-Hmac-Sha256: $HMAC" -H 'X-Shopify-Topic: orders/create' \
      --data-binary "@$WORK/order.json")
    bad=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$NR_PORT/hooks/shopify" \
      -H 'Content-Type: application/json' -H "X-Shopify-Hmac-Sha256: AAAA$HMAC" --data-binary "@$WORK/order.json")
    [[ $code == 200 && $bad == 401 ]] || { echo "$0: node-red answered $code (signed) / $bad (forged)" >&2; cat "$nr/node-red.log" >&2; exit 1; }
    measure "nodered-$variant-r$r" "http://127.0.0.1:$NR_PORT/hooks/shopify" "$nr_pid" "/ok/nr-$variant/"
    stop_pid "$nr_pid"
  done
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n ${RESULTS_OUT:-} ]] && cp "$WORK/results.txt" "$RESULTS_OUT"

python3 - "$WORK/results.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name = re.sub(r"-r\d+$", "", line.split()[0])
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    el = int(kv["duration_us"]) / 1e6
    runs.setdefault(name, []).append({
        "acked/s": int(kv["ok"]) / el, "sink/s": int(kv["sink_during"]) / el,
        "sink+settle/s": int(kv["sink_settle"]) / el, "p50 ms": int(kv["p50_us"]) / 1000,
        "p99 ms": int(kv["p99_us"]) / 1000, "non2xx": int(kv["non2xx"]), "errors": int(kv["errors"]),
        "rss MB": int(kv["rss_peak_kb"]) / 1024,
        # Deliveries (load + settle) per CPU second the server itself used meanwhile: how much work it
        # does per event, whatever share of the shared CPUs the scheduler gave it.
        "sink/cpu s": int(kv["sink_settle"]) / max(float(kv["cpu_s"]), 0.01)})
cols = ["acked/s", "sink/s", "sink+settle/s", "p50 ms", "p99 ms", "non2xx", "errors", "rss MB", "sink/cpu s"]
med = {n: {c: statistics.median(r[c] for r in v) for c in cols} for n, v in runs.items()}
print("\nmedians of %d runs (sink/s: received by the sink during the load / load time)" % len(runs["evrouter"]))
print("%-20s" % "target" + "".join("%14s" % c for c in cols))
for n, m in med.items():
    print("%-20s" % n + "".join("%14.1f" % m[c] for c in cols))
e = med["evrouter"]["sink/s"]
for n in ("nodered-verify", "nodered-delivery"):
    ratio = e / med[n]["sink/s"] if med[n]["sink/s"] else float("inf")
    print("RATIO evrouter/%s sink_per_s %.1f / %.1f = %.2f (target >= 20): %s"
          % (n, e, med[n]["sink/s"], ratio, "met" if ratio >= 20 else "MISSED"))
    c = med["evrouter"]["sink/cpu s"] / med[n]["sink/cpu s"] if med[n]["sink/cpu s"] else float("inf")
    print("RATIO evrouter/%s sink_per_cpu_s %.1f / %.1f = %.2f" % (n, med["evrouter"]["sink/cpu s"], med[n]["sink/cpu s"], c))
PY
