# shellcheck shell=bash
# Shared by the delivery benchmarks (bench/isolation.sh, bench/rate.sh, bench/backlog.sh); sourced, not run.
# Builds a Release evrouter and evrouter-loadgen, makes a work directory, starts nginx as the delivery sink
# (it logs every request's arrival time and X-Evrouter-Event-Id) and evrouter with a bus flow fed through
# the publish API. Docs and results: docs/benchmarks.md.
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
  mkdir -p "$dir/flows"
  cat >"$dir/evrouter.yaml" <<CONF
server:
  listen: 127.0.0.1
  port: $EVR_PORT
  workers: 0
  shutdown_grace: 3s
store:
  state_dir: $dir/state
  durability: $2
log:
  level: warn
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
