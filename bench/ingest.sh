#!/usr/bin/env bash
# Ingest benchmark: evrouter's webhook listener against an nginx that answers 200 to the same request.
#
#   bench/ingest.sh
#
# Everything runs on 127.0.0.1 and stops by itself (about 4 minutes with the defaults). Builds a Release
# evrouter and the constant-rate load generator in build-release/ when needed, then, REPEATS times:
#   - wrk against nginx (`return 200`), CONNECTIONS keep-alive connections, DURATION seconds each, then
#     CLOSE_CONNECTIONS connections that ask for `Connection: close` (a new connection per request);
#   - the same against evrouter with store.durability fsync, then os (a fresh state directory each);
# then, per durability mode, evrouter-loadgen at a constant half of that mode's peak req/s (open loop,
# latency from the scheduled send time) over RATE_CONNECTIONS connections, and nginx at the same rate.
# Prints one table of medians over the repeats. Docs and results: docs/benchmarks.md.
#
# Environment: DURATION (s, default 6), REPEATS (3), CONNECTIONS ("1 16 64 256"), CLOSE_CONNECTIONS ("64";
# empty skips the new-connection runs), MODES ("fsync os"), RATE_CONNECTIONS (256), IDS (seq: webhook ids
# in order; uuid: random UUIDs as Shopify sends them, for the wrk runs; the open loop keeps ids in order;
# see bench/ids.sh), BUILD_DIR
# (build-release), KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-6}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-"1 16 64 256"}
CLOSE_CONNECTIONS=${CLOSE_CONNECTIONS-"64"}
MODES=${MODES:-"fsync os"}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-256}
IDS=${IDS:-seq}
[[ $IDS == seq || $IDS == uuid ]] || { echo "$0: IDS is seq or uuid" >&2; exit 2; }
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
FIXTURE=$ROOT/tests/data/shopify/orders-create.json
LISTENER_ID=benchmark-listener-0000000001

for tool in wrk nginx openssl python3 curl cmake ninja; do
  command -v "$tool" >/dev/null || { echo "ingest.sh: $tool is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

# --- build -------------------------------------------------------------------------------------------
# EVROUTER and LOADGEN may name binaries built elsewhere (then nothing is built; bench/all.sh does that).
if [[ -z ${EVROUTER:-} || -z ${LOADGEN:-} ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEVROUTER_TESTS=OFF -DEVROUTER_BENCH=ON \
    >/dev/null
  cmake --build "$BUILD_DIR" --target evrouter evrouter-loadgen -j2 >/dev/null
  EVROUTER=$BUILD_DIR/evrouter
  LOADGEN=$BUILD_DIR/bench/evrouter-loadgen
fi

# --- work directory and cleanup ----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/evrouter-bench.XXXXXX")
NGINX_PID=
EVR_PID=
cleanup() {
  if [[ -n $EVR_PID ]]; then kill -TERM "$EVR_PID" 2>/dev/null || true; wait "$EVR_PID" 2>/dev/null || true; fi
  if [[ -n $NGINX_PID ]]; then kill -QUIT "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # URL EXPECTED_CODE: poll for up to 30 s
  local code
  for _ in $(seq 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [[ $code == "$2" ]] && return 0
    sleep 0.1
  done
  echo "ingest.sh: $1 did not answer $2 (last: $code)" >&2
  return 1
}

# --- the request ---------------------------------------------------------------------------------------
cp "$FIXTURE" "$WORK/order.json"
EVROUTER_BENCH_SECRET="bench-$(openssl rand -hex 16)"
export EVROUTER_BENCH_SECRET
HMAC=$(openssl dgst -sha256 -hmac "$EVROUTER_BENCH_SECRET" -binary "$WORK/order.json" | base64 -w0)

post() {  # PORT WEBHOOK_ID: one webhook with curl; prints the body
  curl -s --fail-with-body -X POST "http://127.0.0.1:$1/hooks/$LISTENER_ID" \
    -H 'Content-Type: application/json' -H 'X-Shopify-Topic: orders/create' \
    -H "X-Shopify-Hmac-Sha256: $HMAC" -H 'X-Shopify-Shop-Domain: bench-shop.myshopify.com' \
    -H "X-Shopify-Webhook-Id: $2" -H "X-Shopify-Event-Id: $2" --data-binary "@$WORK/order.json"
}

# --- nginx -----------------------------------------------------------------------------------------------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
user_line=
[[ $EUID == 0 ]] && user_line="user $(id -un) $(id -gn);"
cat >"$WORK/nginx/nginx.conf" <<CONF
$user_line
worker_processes auto;
error_log $WORK/nginx/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 60s;
  keepalive_requests 10000000;
  client_max_body_size 1m;
  client_body_buffer_size 16k;
  client_body_temp_path $WORK/nginx/body;
  default_type application/json;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    # Same answer size as evrouter's; nginx reads and discards the request body.
    location / { return 200 '{"status":"accepted","event_id":"01JQ0000000000000000000000"}'; }
  }
}
CONF
nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/" 200
post "$NGINX_PORT" check-nginx >/dev/null || { echo "ingest.sh: nginx refused the webhook" >&2; exit 1; }

# --- evrouter --------------------------------------------------------------------------------------------
EVR_PORT=$(free_port)
write_evrouter_config() {  # MODE
  local dir=$WORK/evrouter-$1
  rm -rf "$dir"
  mkdir -p "$dir/flows"
  cat >"$dir/evrouter.yaml" <<CONF
server:
  listen: 127.0.0.1
  port: $EVR_PORT
  workers: 0
  shutdown_grace: 3s
store:
  state_dir: $dir/state
  durability: $1
log:
  level: warn
flows:
  - $dir/flows
connections:
  # Deliveries go to the same nginx (/sink) at the sample config's rate limit: they cost what they cost in
  # production but stay a small fraction of the ingest rate.
  sink:
    base_uri: http://127.0.0.1:$NGINX_PORT/sink
    rate_limit: {per_second: 50, burst: 10}
    concurrency: 8
CONF
  # The sample flow (flows/shopify-orders.yaml) with a pinned listener id.
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

start_evrouter() {  # MODE
  write_evrouter_config "$1"
  "$EVROUTER" serve --config "$WORK/evrouter-$1/evrouter.yaml" >>"$WORK/evrouter-$1.log" 2>&1 &
  EVR_PID=$!
  wait_http "http://127.0.0.1:$EVR_PORT/readyz" 200
  post "$EVR_PORT" "check-$1" | grep -q '"accepted"' || { echo "ingest.sh: evrouter did not accept" >&2; exit 1; }
}

stop_evrouter() {  # MODE ANSWERED_2XX: stop, then check that every 2xx was stored (no duplicate answers)
  kill -TERM "$EVR_PID"
  wait "$EVR_PID" || true
  EVR_PID=
  if command -v sqlite3 >/dev/null; then
    local stored
    stored=$(sqlite3 "$WORK/evrouter-$1/state/evrouter.db" 'SELECT count(*) FROM events')
    # +1: the check request. wrk stops counting with requests in flight, so a few more may be stored.
    if ((stored < $2 + 1)); then
      echo "WARNING: evrouter $1 stored $stored events for $(($2 + 1)) 2xx answers" >&2
    fi
    echo "check  evrouter $1: $stored events stored for $(($2 + 1)) 2xx answers counted" >>"$WORK/checks"
  fi
  rm -rf "$WORK/evrouter-$1/state"
  sync # the deletion's discards before the next run, not during it (bench/neighbors.sh)
}

# --- measurements ----------------------------------------------------------------------------------------
RESULTS=$WORK/results
: >"$RESULTS"
# wrk_options [close]: bench/ingest.lua's options: close, and uuid when IDS=uuid.
wrk_options() {
  local o=${1:-}
  [[ $IDS == uuid ]] && o=${o:+$o,}uuid
  echo "$o"
}

run_wrk() {  # TARGET_NAME PORT CONNECTIONS REPEAT [close]; appends a result line, prints the 2xx count
  local threads=2 out target=$1${5:+-$5}
  (($3 < 2)) && threads=1
  out=$(wrk -t"$threads" -c"$3" -d"${DURATION}s" --timeout 10s -s "$ROOT/bench/ingest.lua" \
    "http://127.0.0.1:$2/hooks/$LISTENER_ID" -- "$WORK/order.json" "$HMAC" "$target-c$3-r$4" "$(wrk_options "${5:-}")" |
    grep '^WRK ')
  echo "closed target=$target connections=$3 repeat=$4 ${out#WRK }" >>"$RESULTS"
  local requests=${out#*requests=} non2xx=${out#*non2xx=}
  echo $((${requests%% *} - ${non2xx%% *}))
}

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
# What one durable write costs on this disk: 4 KiB overwrites of a preallocated file, each fdatasync'ed
# (the pattern of a SQLite WAL). In fsync mode an answer waits for at least one of these.
fsync_probe=$(python3 - "$WORK" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT)
os.write(fd, b"\0" * (1 << 20)); os.fsync(fd)
samples = []
for i in range(200):
    os.pwrite(fd, b"x" * 4096, (i * 4096) % (1 << 20))
    t = time.perf_counter(); os.fdatasync(fd); samples.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(path)
samples.sort()
print(f"p50 {samples[len(samples) // 2]:.2f} ms, p99 {samples[int(len(samples) * 0.99)]:.2f} ms, max {samples[-1]:.2f} ms")
PY
)
{
  echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine     $(nproc) CPUs, $cpu_model, $mem; $(uname -sr)"
  echo "disk        $(df -T "$WORK" | awk 'NR == 2 {print $2}') at $WORK, 4 KiB write + fdatasync: $fsync_probe"
  echo "tools       $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3)"
  echo "run         ${DURATION}s per measurement, $REPEATS repeats, connections: $CONNECTIONS;" \
    "new connection per request: ${CLOSE_CONNECTIONS:-none}; webhook ids: $IDS"
  echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$WORK/header"
cat "$WORK/header"

for rep in $(seq "$REPEATS"); do
  echo "repeat $rep/$REPEATS ..." >&2
  for c in $CONNECTIONS; do run_wrk nginx "$NGINX_PORT" "$c" "$rep" >/dev/null; done
  for c in $CLOSE_CONNECTIONS; do run_wrk nginx "$NGINX_PORT" "$c" "$rep" close >/dev/null; done
  for mode in $MODES; do
    start_evrouter "$mode"
    answered=0
    for c in $CONNECTIONS; do answered=$((answered + $(run_wrk "evrouter-$mode" "$EVR_PORT" "$c" "$rep"))); done
    for c in $CLOSE_CONNECTIONS; do
      answered=$((answered + $(run_wrk "evrouter-$mode" "$EVR_PORT" "$c" "$rep" close)))
    done
    stop_evrouter "$mode" "$answered"
  done
done

run_open() {  # TARGET_NAME PORT RATE REPEAT; appends a result line, prints the 2xx count
  local out ok
  out=$("$LOADGEN" --port "$2" --path "/hooks/$LISTENER_ID" --body-file "$WORK/order.json" \
    --rate "$3" --duration "$DURATION" --connections "$RATE_CONNECTIONS" \
    --header 'User-Agent: Shopify-Captain-Hook' --header 'Content-Type: application/json' \
    --header 'X-Shopify-Topic: orders/create' --header "X-Shopify-Hmac-Sha256: $HMAC" \
    --header 'X-Shopify-Shop-Domain: bench-shop.myshopify.com' --header 'X-Shopify-API-Version: 2025-01' \
    --id-header X-Shopify-Webhook-Id --id-header X-Shopify-Event-Id --id-prefix "open-$1-r$4" || true)
  echo "open target=$1 connections=$RATE_CONNECTIONS repeat=$4 ${out#LOADGEN }" >>"$RESULTS"
  ok=${out#*ok=}
  echo "${ok%% *}"
}

# Constant rate at half of each mode's keep-alive peak (the best median over connection counts); nginx at the fsync
# rate, as the floor this machine allows.
nginx_rate=0
for mode in $MODES; do
  peak=$(python3 "$ROOT/bench/ingest_table.py" --peak "evrouter-$mode" "$RESULTS")
  rate=$((peak / 2))
  ((rate > 0)) || continue
  ((nginx_rate > 0)) || nginx_rate=$rate
  echo "constant rate: evrouter $mode at $rate req/s ..." >&2
  start_evrouter "$mode"
  answered=0
  for rep in $(seq "$REPEATS"); do answered=$((answered + $(run_open "evrouter-$mode" "$EVR_PORT" "$rate" "$rep"))); done
  stop_evrouter "$mode" "$answered"
done
if ((nginx_rate > 0)); then
  echo "constant rate: nginx at $nginx_rate req/s ..." >&2
  for rep in $(seq "$REPEATS"); do run_open nginx "$NGINX_PORT" "$nginx_rate" "$rep" >/dev/null; done
fi

echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 "$ROOT/bench/ingest_table.py" "$RESULTS"
echo
[[ -f $WORK/checks ]] && cat "$WORK/checks"
if [[ -n ${RESULTS_OUT:-} ]]; then cp "$RESULTS" "$RESULTS_OUT"; fi
