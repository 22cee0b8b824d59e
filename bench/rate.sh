#!/usr/bin/env bash
# Rate limit accuracy and fairness: one connection with a rate limit shared by two lanes, one busy, one quiet.
#
#   bench/rate.sh
#
# One evrouter (Release build), a bus flow with two branches on the same connection: "quiet" (detail-type
# bench.quiet, QUIET_RATE events/s) and the default "busy" (BUSY_RATE events/s, far above the limit, so its
# lane always has a backlog). Both loads run open loop for DURATION s. At the sink (nginx, logging
# arrivals): the overall delivery rate over the steady part (after the first WARMUP s: the bucket starts
# full), the most requests seen in any one second (must be <= per_second + burst), and the quiet lane's
# latency (arrival - the event id's ULID time). Docs and results: docs/benchmarks.md.
#
# Environment: PER_SECOND (50), BURST (10), CONCURRENCY (8), DURATION (30), WARMUP (2), BUSY_RATE (200),
# QUIET_RATE (2), DURABILITY (fsync), BUILD_DIR (build-release), KEEP=1 keeps the work directory.
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

PER_SECOND=${PER_SECOND:-50}
BURST=${BURST:-10}
CONCURRENCY=${CONCURRENCY:-8}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-2}
BUSY_RATE=${BUSY_RATE:-200}
QUIET_RATE=${QUIET_RATE:-2}
DURABILITY=${DURABILITY:-fsync}

SINK_PORT=$(free_port)
EVR_PORT=$(free_port)
start_nginx sink "$SINK_PORT"
make_event_body "$WORK/busy.json"
sed 's/bench.tick/bench.quiet/' "$WORK/busy.json" >"$WORK/quiet.json"

echo "machine     $(machine_line | cut -c13-)"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings    rate_limit {per_second: $PER_SECOND, burst: $BURST}, concurrency $CONCURRENCY, busy $BUSY_RATE/s, quiet $QUIET_RATE/s, ${DURATION} s, durability $DURABILITY"

dir=$WORK/evrouter
write_config "$dir" "$DURABILITY" \
  "  limited: {base_uri: http://127.0.0.1:$SINK_PORT/ok, rate_limit: {per_second: $PER_SECOND, burst: $BURST}, concurrency: $CONCURRENCY}" \
  "    - {connection: limited, path: /busy}"
cat >>"$dir/flows/bench.yaml" <<CONF
branches:
  - name: quiet
    match: {detail-type: [bench.quiet]}
    destinations:
      - {connection: limited, path: /quiet}
CONF
start_evrouter "$dir"

load() {  # BODY RATE OUT
  "$LOADGEN" --port "$EVR_PORT" --path /v1/events --body-file "$1" --rate "$2" --duration "$DURATION" \
    --connections 8 --header 'Content-Type: application/json' --header "Authorization: Bearer $PUBLISH_KEY" >"$3" || true
}
t0=$(date +%s.%N)
load "$WORK/busy.json" "$BUSY_RATE" "$WORK/busy.txt" &
busy_pid=$!
load "$WORK/quiet.json" "$QUIET_RATE" "$WORK/quiet.txt"
wait "$busy_pid"
t1=$(date +%s.%N)
sleep 2
stop_pid "$EVR_PID"
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ingest      busy: $(grep -o 'ok=[0-9]*' "$WORK/busy.txt"), quiet: $(grep -o 'ok=[0-9]*' "$WORK/quiet.txt")"

from=$(echo "$t0 + $WARMUP" | bc)
all=$(python3 "$ROOT/bench/delivery_stats.py" "$WORK/sink/arrivals.log" --prefix /ok/ --from "$from" --to "$t1")
quiet=$(python3 "$ROOT/bench/delivery_stats.py" "$WORK/sink/arrivals.log" --prefix /ok/quiet --from "$t0" --to "$t1")
first=$(python3 "$ROOT/bench/delivery_stats.py" "$WORK/sink/arrivals.log" --prefix /ok/ --from "$t0" --to "$t1")
python3 - "$all" "$quiet" "$first" "$PER_SECOND" "$BURST" <<'PY'
import json, sys
all_, quiet, first = (json.loads(x) for x in sys.argv[1:4])
rate, burst = float(sys.argv[4]), float(sys.argv[5])
print("deliveries  %d in %.1f s after warm-up: %.2f/s against a limit of %.0f/s (%+.2f %%)"
      % (all_["count"], all_["span_s"], all_["rate"], rate, (all_["rate"] / rate - 1) * 100))
print("per second  %s" % " ".join(str(x) for x in first["per_second"]))
print("max in 1 s  %d over the whole run, burst included (per_second + burst = %.0f)" % (first["max_in_1s"], rate + burst))
print("quiet lane  %d events, latency p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (quiet["count"], quiet["p50_ms"], quiet["p99_ms"], quiet["max_ms"]))
PY
