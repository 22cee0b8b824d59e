# shellcheck shell=bash
# Shared by the delivery benchmarks (bench/isolation.sh, bench/rate.sh, bench/backlog.sh); sourced, not run.
# Builds a Release evrouter and evrouter-loadgen, makes a work directory, starts nginx as the delivery sink
# (it logs every request's arrival time and X-Evrouter-Event-Id) and evrouter with a bus flow fed through
# the publish API. Docs and results: docs/benchmarks.md.
# EVR_WORKERS sets server.workers in the configs written here (default 0: one listener worker per CPU).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
PUBLISH_KEY="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export EVROUTER_BENCH_PUBLISH_KEY=$PUBLISH_KEY

for tool in nginx python3 curl cmake ninja; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

# EVROUTER and LOADGEN may name binaries built elsewhere (then nothing is built).
if [[ -z ${EVROUTER:-} || -z ${LOADGEN:-} ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEVROUTER_TESTS=OFF -DEVROUTER_BENCH=ON \
    >/dev/null
  cmake --build "$BUILD_DIR" --target evrouter evrouter-loadgen -j2 >/dev/null
  EVROUTER=$BUILD_DIR/evrouter
  LOADGEN=$BUILD_DIR/bench/evrouter-loadgen
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/evrouter-delivery.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The admin API of the evrouter that write_config describes (loopback, no token): /metrics for the benches.
ADMIN_PORT=$(free_port)

# metrics_ms N: the median time of N scrapes of GET /metrics, in ms.
metrics_ms() {
  local times=()
  for _ in $(seq "$1"); do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$ADMIN_PORT/metrics")")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$((($1 + 1) / 2))p" | awk '{printf "%.1f", $1 * 1000}'
}

wait_http() {  # URL EXPECTED_CODE: poll for up to 30 s
  local code=
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [[ $code == "$2" ]] && return 0
    sleep 0.1
  done
  echo "$0: $1 did not answer $2 (last: $code)" >&2
  return 1
}

# start_nginx NAME PORT: /ok/... answers 200, /fail/... 500; every request is logged to $WORK/NAME/arrivals.log
# as "<arrival epoch s.ms> <X-Evrouter-Event-Id> <uri> <status>". Sets NGINX_PID.
# start_nats DIR PORT: a nats-server with JetStream (file storage in DIR) on 127.0.0.1:PORT; sets NATS_PID
# once it accepts connections.
start_nats() {
  mkdir -p "$1"
  nats-server -js -a 127.0.0.1 -p "$2" -sd "$1" >"$1/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$0: nats-server did not start" >&2
  cat "$1/nats.log" >&2
  return 1
}

start_nginx() {
  local dir=$WORK/$1 user_line=
  mkdir -p "$dir"
  [[ $EUID == 0 ]] && user_line="user $(id -un) $(id -gn);"
  cat >"$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
error_log $dir/error.log warn;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
  log_format arrivals '\$msec \$http_x_evrouter_event_id \$uri \$status';
  access_log $dir/arrivals.log arrivals buffer=256k flush=1s;
  keepalive_timeout 60s;
  keepalive_requests 10000000;
  client_max_body_size 1m;
  client_body_temp_path $dir/body;
  default_type application/json;
  server {
    listen 127.0.0.1:$2;
    location /ok/ { return 200 '{}'; }
    location /fail/ { return 500 '{"error":"always"}'; }
    location / { return 200 'up'; }
  }
}
CONF
  nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$2/" 200
}

# start_black_hole PORT: accepts connections and reads them, never answers. Sets HOLE_PID.
start_black_hole() {
  python3 - "$1" <<'PY' &
import asyncio, sys
async def hold(reader, writer):
    while await reader.read(65536):
        pass
async def main():
    server = await asyncio.start_server(hold, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
PY
  HOLE_PID=$!
  PIDS+=("$HOLE_PID")
}

# write_config DIR DURABILITY CONNECTIONS_YAML DESTINATIONS_YAML: an evrouter config with a bus flow "bench"
# taking source bench.load, whose default branch delivers every event to DESTINATIONS_YAML.
write_config() {
  local dir=$1
  rm -rf "$dir"
  sync # an earlier run's deletion and writes reach the disk before this one is measured (bench/neighbors.sh)
  mkdir -p "$dir/flows"
  cat >"$dir/evrouter.yaml" <<CONF
server:
  listen: 127.0.0.1
  port: $EVR_PORT
  workers: ${EVR_WORKERS:-0}
  shutdown_grace: 3s
store:
  state_dir: $dir/state
  durability: $2
log:
  level: warn
admin:
  listen: 127.0.0.1
  port: $ADMIN_PORT
publish:
  max_entries: 1000
  keys:
    - {name: bench, key: {env: EVROUTER_BENCH_PUBLISH_KEY}, sources: [bench.load]}
flows:
  - $dir/flows
connections:
$3
CONF
  cat >"$dir/flows/bench.yaml" <<CONF
name: bench
source: {type: bus, sources: [bench.load]}
default:
  destinations:
$4
CONF
}

# start_evrouter DIR: sets EVR_PID once the listener answers.
start_evrouter() {
  "$EVROUTER" serve --config "$1/evrouter.yaml" >"$1/evrouter.log" 2>&1 &
  EVR_PID=$!
  PIDS+=("$EVR_PID")
  local code=
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EVR_PORT/v1/events" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.1
  done
  echo "$0: evrouter did not start; log:" >&2
  cat "$1/evrouter.log" >&2
  return 1
}

stop_pid() {  # PID: SIGTERM and wait
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# One small event per request (~120 bytes of detail).
make_event_body() {
  printf '{"source":"bench.load","detail-type":"bench.tick","detail":{"order":123456,"shop":"bench-shop","total":"42.50","note":"a small event"}}' >"$1"
}

machine_line() {
  echo "machine     $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -sr)"
}

# --- Shopify webhooks (bench/nodered.sh, bench/growth.sh, bench/stores.sh) --------------------------------
LISTENER_ID=benchmark-listener-0000000001

# setup_shopify_request: $WORK/order.json (the Shopify order fixture), a random secret exported as
# EVROUTER_BENCH_SECRET and the body's X-Shopify-Hmac-Sha256 in HMAC.
setup_shopify_request() {
  command -v openssl >/dev/null || { echo "$0: openssl is required" >&2; exit 1; }
  cp "$ROOT/tests/data/shopify/orders-create.json" "$WORK/order.json"
  EVROUTER_BENCH_SECRET="bench-$(openssl rand -hex 16)"
  export EVROUTER_BENCH_SECRET
  HMAC=$(openssl dgst -sha256 -hmac "$EVROUTER_BENCH_SECRET" -binary "$WORK/order.json" | base64 -w0)
}

# write_shopify_config DIR PORT SINK_BASE_URI STORE_YAML [CONCURRENCY]: an evrouter config with the sample
# flow (flows/shopify-orders.yaml: topic filter, numeric-string pattern on total_price, two branches) on
# the pinned listener LISTENER_ID, delivering to SINK_BASE_URI/orders[/priority] on a connection without a
# rate limit. STORE_YAML: the lines under `store:` (indented by two spaces).
write_shopify_config() {
  local dir=$1
  rm -rf "$dir"
  sync # an earlier run's deletion and writes reach the disk before this one is measured (bench/neighbors.sh)
  mkdir -p "$dir/flows"
  cat >"$dir/evrouter.yaml" <<CONF
server:
  listen: 127.0.0.1
  port: $2
  workers: ${EVR_WORKERS:-0}
  shutdown_grace: 3s
store:
$4
log:
  level: warn
admin:
  listen: 127.0.0.1
  port: $ADMIN_PORT
flows:
  - $dir/flows
connections:
  sink:
    base_uri: $3
    concurrency: ${5:-32}
CONF
  cat >"$dir/flows/shopify-orders.yaml" <<CONF
name: shopify-orders
source:
  type: shopify
  listener_id: $LISTENER_ID
  secret: {env: EVROUTER_BENCH_SECRET}
  topics: [orders/create, orders/updated]
mode: first
branches:
  - name: priority
    match:
      detail-type: [orders/create]
      detail:
        total_price: [{numeric-string: [">", 100]}]
    destinations:
      - {connection: sink, path: /orders/priority}
  - name: standard
    destinations:
      - {connection: sink, path: /orders}
CONF
}

# start_evrouter_ready DIR PORT: starts evrouter with DIR/evrouter.yaml, waits for /readyz 200; sets EVR_PID.
start_evrouter_ready() {
  "$EVROUTER" serve --config "$1/evrouter.yaml" >>"$1/evrouter.log" 2>&1 &
  EVR_PID=$!
  PIDS+=("$EVR_PID")
  wait_http "http://127.0.0.1:$2/readyz" 200 || { cat "$1/evrouter.log" >&2; return 1; }
}

# wrk_shopify URL CONNECTIONS DURATION TAG [OPTIONS]: closed-loop wrk (bench/ingest.lua: the order with its
# HMAC, a unique webhook id per request; OPTIONS as ingest.lua takes them, e.g. uuid) for DURATION s;
# prints "requests=N ok=N non2xx=N errors=N rps=N p50_us=N p99_us=N duration_us=N start_s=EPOCH" (start_s:
# when wrk started its threads; the load ran from there for duration_us).
wrk_shopify() {
  local threads=2 out requests non2xx
  (($2 < 2)) && threads=1
  out=$(wrk -t"$threads" -c"$2" -d"${3}s" --timeout 10s -s "$ROOT/bench/ingest.lua" "$1" -- \
    "$WORK/order.json" "$HMAC" "$4" "${5:-}" | grep '^WRK ')
  requests=${out#*requests=}; requests=${requests%% *}
  non2xx=${out#*non2xx=}; non2xx=${non2xx%% *}
  echo "requests=$requests ok=$((requests - non2xx)) non2xx=$non2xx $(grep -o 'errors=[0-9]*' <<<"$out") $(grep -o 'rps=[0-9]*' <<<"$out") $(grep -o 'duration_us=[0-9]*' <<<"$out") $(grep -o ' p50_us=[0-9]*' <<<"$out" | xargs) $(grep -o ' p99_us=[0-9]*' <<<"$out" | xargs) $(grep -o 'start_s=[0-9.]*' <<<"$out")"
}

# sink_count LOG PREFIX FROM TO: requests answered 200 by the sink (start_nginx's log) whose URI starts with
# PREFIX and that arrived between the epoch times FROM and TO.
sink_count() {
  [[ -f $1 ]] || { echo 0; return; }
  awk -v p="$2" -v a="$3" -v b="$4" 'index($3, p) == 1 && $4 == 200 && $1 >= a && $1 <= b {n++} END {print n + 0}' "$1"
}

# rss_kb PID: resident set size of PID (VmRSS), in KiB.
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# wrk_publish URL CONNECTIONS DURATION BODY_FILE: closed-loop wrk on the publish API (bench/publish.lua, one
# event per request); prints the same fields as wrk_shopify.
wrk_publish() {
  local threads=2 out requests non2xx
  (($2 < 2)) && threads=1
  out=$(wrk -t"$threads" -c"$2" -d"${3}s" --timeout 10s -s "$ROOT/bench/publish.lua" "$1" -- "$4" "$PUBLISH_KEY" \
    | grep '^WRK ')
  requests=${out#*requests=}; requests=${requests%% *}
  non2xx=${out#*non2xx=}; non2xx=${non2xx%% *}
  echo "requests=$requests ok=$((requests - non2xx)) non2xx=$non2xx $(grep -o 'errors=[0-9]*' <<<"$out") $(grep -o 'rps=[0-9]*' <<<"$out") $(grep -o 'duration_us=[0-9]*' <<<"$out") $(grep -o ' p50_us=[0-9]*' <<<"$out" | xargs) $(grep -o ' p99_us=[0-9]*' <<<"$out" | xargs) $(grep -o 'start_s=[0-9.]*' <<<"$out")"
}

# ready_ms CONFIG PORT LOG: starts evrouter and polls GET /readyz every 2 ms; prints "WALL_MS CPU_MS": the
# milliseconds from exec to the first 200, and the CPU time (user + system) evrouter had used by then (on a
# loaded machine the wall time mostly measures the wait for a CPU). Leaves the process running (its pid in
# $WORK/ready.pid).
ready_ms() {
  python3 - "$EVROUTER" "$1" "$2" "$3" "$WORK/ready.pid" <<'PY'
import http.client, os, subprocess, sys, time
exe, config, port, log, pidfile = sys.argv[1:6]
t0 = time.monotonic()
proc = subprocess.Popen([exe, "serve", "--config", config], stdout=open(log, "a"), stderr=subprocess.STDOUT)
open(pidfile, "w").write(str(proc.pid))
while True:
    if proc.poll() is not None:
        sys.exit("evrouter exited with %s" % proc.returncode)
    if time.monotonic() - t0 > 60:
        sys.exit("evrouter not ready after 60 s")
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=1)
        c.request("GET", "/readyz")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.002)
wall = (time.monotonic() - t0) * 1000
fields = open("/proc/%d/stat" % proc.pid).read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
print("%.1f %.0f" % (wall, cpu))
PY
}

# wrk_window WRK_FIELDS: "FROM TO", the epoch seconds during which wrk_shopify / wrk_publish loaded.
wrk_window() {
  local start=${1#*start_s=} dur=${1#*duration_us=}
  start=${start%% *}; dur=${dur%% *}
  echo "$start $(echo "$start + $dur / 1000000" | bc -l)"
}

# cpu_s PID: CPU time (user + system) PID has used so far, in seconds.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0
}
