#!/usr/bin/env bash
# HTTPS ingest: what server.tls costs. In one run, alternating, REPEATS times: wrk against nginx returning
# 200 over plain HTTP and over TLS (the same certificate), then against evrouter (the sample flow,
# store.durability fsync) over plain HTTP and over TLS; each with CONNECTIONS keep-alive connections and
# with CLOSE_CONNECTIONS connections that open a new connection (and so a new TLS handshake) per request.
# Prints one table of medians and the ratios. Everything on 127.0.0.1; about 2 minutes with the defaults.
#
#   EVROUTER=build/evrouter bench/tls.sh
#
# Environment: EVROUTER (default: build-release/evrouter, built when missing), DURATION (s, 5), REPEATS (3),
# CONNECTIONS (64), CLOSE_CONNECTIONS (16; empty skips), KEEP=1 keeps the work directory.
# Results: docs/benchmarks.md, "HTTPS ingest".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-5}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-64}
CLOSE_CONNECTIONS=${CLOSE_CONNECTIONS-16}
FIXTURE=$ROOT/tests/data/shopify/orders-create.json
LISTENER_ID=benchmark-listener-0000000001

for tool in wrk nginx openssl python3 curl; do
  command -v "$tool" >/dev/null || { echo "tls.sh: $tool is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
if [[ -z ${EVROUTER:-} ]]; then
  cmake -S "$ROOT" -B "$ROOT/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEVROUTER_TESTS=OFF >/dev/null
  cmake --build "$ROOT/build-release" --target evrouter -j2 >/dev/null
  EVROUTER=$ROOT/build-release/evrouter
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/evrouter-tls.XXXXXX")
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

wait_url() {  # URL EXPECTED_CODE: poll for up to 30 s
  local code=
  for _ in $(seq 300); do
    code=$(curl -sk -o /dev/null -w '%{http_code}' "$1" || true)
    [[ $code == "$2" ]] && return 0
    sleep 0.1
  done
  echo "tls.sh: $1 did not answer $2 (last: $code)" >&2
  return 1
}

# A self-signed P-256 certificate for 127.0.0.1 (wrk does not verify; the handshake costs the same).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cp "$FIXTURE" "$WORK/order.json"
EVROUTER_BENCH_SECRET="bench-$(openssl rand -hex 16)"
export EVROUTER_BENCH_SECRET
HMAC=$(openssl dgst -sha256 -hmac "$EVROUTER_BENCH_SECRET" -binary "$WORK/order.json" | base64 -w0)

NGINX_PLAIN=$(free_port)
NGINX_TLS=$(free_port)
EVR_PLAIN=$(free_port)
EVR_TLS=$(free_port)
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
  client_body_temp_path $WORK/nginx/body;
  default_type application/json;
  ssl_certificate $WORK/cert.pem;
  ssl_certificate_key $WORK/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:bench:10m;
  server {
    listen 127.0.0.1:$NGINX_PLAIN;
    listen 127.0.0.1:$NGINX_TLS ssl;
    location / { return 200 '{"status":"accepted","event_id":"01JQ0000000000000000000000"}'; }
  }
}
CONF
nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_url "http://127.0.0.1:$NGINX_PLAIN/" 200
wait_url "https://127.0.0.1:$NGINX_TLS/" 200

start_evrouter() {  # NAME PORT [tls]
  local dir=$WORK/evrouter-$1 tls=
  rm -rf "$dir"
  mkdir -p "$dir/flows"
  [[ ${3:-} == tls ]] && tls="  tls: {cert_file: $WORK/cert.pem, key_file: $WORK/key.pem}"
  cat >"$dir/evrouter.yaml" <<CONF
server:
  listen: 127.0.0.1
  port: $2
  shutdown_grace: 3s
$tls
store:
  state_dir: $dir/state
  durability: fsync
log:
  level: warn
flows:
  - $dir/flows
connections:
  sink:
    base_uri: http://127.0.0.1:$NGINX_PLAIN/sink
    rate_limit: {per_second: 50, burst: 10}
    concurrency: 8
CONF
  cat >"$dir/flows/shopify-orders.yaml" <<CONF
name: shopify-orders
source:
  type: shopify
  listener_id: $LISTENER_ID
  secret: {env: EVROUTER_BENCH_SECRET}
  topics: [orders/create]
branches:
  - name: priority
    match: {detail: {total_price: [{numeric-string: [">", 100]}]}}
    destinations: [{connection: sink, path: /orders/priority}]
  - name: standard
    destinations: [{connection: sink, path: /orders}]
CONF
  "$EVROUTER" serve --config "$dir/evrouter.yaml" >>"$WORK/evrouter-$1.log" 2>&1 &
  EVR_PID=$!
  local scheme=http
  [[ ${3:-} == tls ]] && scheme=https
  wait_url "$scheme://127.0.0.1:$2/readyz" 200
}

stop_evrouter() {
  kill -TERM "$EVR_PID"
  wait "$EVR_PID" || true
  EVR_PID=
}

RESULTS=$WORK/results
: >"$RESULTS"
run_wrk() {  # NAME URL_BASE CONNECTIONS [close]
  local out threads=2 target=$1${4:+-close}
  out=$(wrk -t"$threads" -c"$3" -d"${DURATION}s" --timeout 10s -s "$ROOT/bench/ingest.lua" \
    "$2/hooks/$LISTENER_ID" -- "$WORK/order.json" "$HMAC" "$target-$RANDOM$RANDOM" "${4:-}" | grep '^WRK ')
  echo "target=$target connections=$3 ${out#WRK }" >>"$RESULTS"
}

echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine     $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(uname -sr)"
echo "tools       $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3), $(openssl version | cut -d' ' -f1-2)"
echo "run         ${DURATION}s per measurement, $REPEATS repeats, $CONNECTIONS keep-alive connections," \
  "${CLOSE_CONNECTIONS:-no} connections with a new connection per request; evrouter durability fsync"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$REPEATS"); do
  echo "repeat $rep/$REPEATS ..." >&2
  for c in $CONNECTIONS; do
    run_wrk nginx-http "http://127.0.0.1:$NGINX_PLAIN" "$c"
    run_wrk nginx-https "https://127.0.0.1:$NGINX_TLS" "$c"
  done
  for c in $CLOSE_CONNECTIONS; do
    run_wrk nginx-http "http://127.0.0.1:$NGINX_PLAIN" "$c" close
    run_wrk nginx-https "https://127.0.0.1:$NGINX_TLS" "$c" close
  done
  start_evrouter plain "$EVR_PLAIN"
  for c in $CONNECTIONS; do run_wrk evrouter-http "http://127.0.0.1:$EVR_PLAIN" "$c"; done
  for c in $CLOSE_CONNECTIONS; do run_wrk evrouter-http "http://127.0.0.1:$EVR_PLAIN" "$c" close; done
  stop_evrouter
  start_evrouter tls "$EVR_TLS" tls
  for c in $CONNECTIONS; do run_wrk evrouter-https "https://127.0.0.1:$EVR_TLS" "$c"; done
  for c in $CLOSE_CONNECTIONS; do run_wrk evrouter-https "https://127.0.0.1:$EVR_TLS" "$c" close; done
  stop_evrouter
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    key = (kv["target"], int(kv["connections"]))
    runs.setdefault(key, []).append(kv)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print(f"\n{'target':<22}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non2xx':>8}{'errors':>8}   runs (req/s)")
rps = {}
for (t, c), rs in sorted(runs.items()):
    rps[(t, c)] = med(rs, "rps")
    print(f"{t:<22}{c:>6}{rps[(t, c)]:>10.0f}{med(rs, 'p50_us') / 1000:>9.2f}{med(rs, 'p99_us') / 1000:>9.2f}"
          f"{sum(int(r['non2xx']) for r in rs):>8}{sum(int(r['errors']) for r in rs):>8}   "
          + " ".join(f"{float(r['rps']):.0f}" for r in rs))
print()
for (t, c), v in sorted(rps.items()):
    if not t.startswith("evrouter-https"):
        continue
    suffix = t[len("evrouter-https"):]
    plain = rps.get(("evrouter-http" + suffix, c))
    nginx = rps.get(("nginx-https" + suffix, c))
    nginx_plain = rps.get(("nginx-http" + suffix, c))
    parts = []
    if plain: parts.append(f"evrouter https/http {v / plain:.2f}")
    if nginx_plain and nginx: parts.append(f"nginx https/http {nginx / nginx_plain:.2f}")
    if nginx: parts.append(f"evrouter/nginx over https {v / nginx:.2f}")
    print(f"{'new connection per request' if suffix else 'keep-alive'}, {c} connections: " + "; ".join(parts))
PY
