#!/usr/bin/env bash
# Isolation benchmark: does a healthy destination keep its throughput and latency while three others fail?
#
#   bench/isolation.sh
#
# One evrouter (Release build), one bus flow whose default branch delivers every event to four destinations
# on four connections. Run A: all four are healthy (the same nginx, one path each). Run B: the first stays
# healthy, the others fail: a black hole (accepts TCP, never answers), a closed port (refused) and a
# server answering 500 forever. The same open-loop ingest (evrouter-loadgen, one small event per request
# to the publish API) at RATE events/s for DURATION s, REPEATS times A then B; the healthy destination's
# arrivals are measured at the sink (throughput over the run after WARMUP s, latency = arrival - the event
# id's ULID time). Prints medians and the ratio B/A. Docs and results: docs/benchmarks.md.
#
# Environment: RATE (events/s, default 300), DURATION (20), WARMUP (2), REPEATS (3), DURABILITY (fsync),
# CONNECTIONS (loadgen connections, 16), BUILD_DIR (build-release), KEEP=1 keeps the work directory.
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

RATE=${RATE:-300}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
REPEATS=${REPEATS:-3}
DURABILITY=${DURABILITY:-fsync}
CONNECTIONS=${CONNECTIONS:-16}

SINK_PORT=$(free_port)
HOLE_PORT=$(free_port)
REFUSED_PORT=$(free_port)  # nothing listens here
EVR_PORT=$(free_port)
start_nginx sink "$SINK_PORT"
start_black_hole "$HOLE_PORT"
make_event_body "$WORK/event.json"

echo "machine     $(machine_line | cut -c13-)"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings    rate $RATE/s, ${DURATION} s per run (first ${WARMUP} s not measured), durability $DURABILITY, $REPEATS repeats"

run() {  # NAME A|B
  local dir=$WORK/$1 conns dests b c d
  if [[ $2 == A ]]; then
    b=http://127.0.0.1:$SINK_PORT/ok/b c=http://127.0.0.1:$SINK_PORT/ok/c d=http://127.0.0.1:$SINK_PORT/ok/d
  else
    b=http://127.0.0.1:$HOLE_PORT/hole c=http://127.0.0.1:$REFUSED_PORT/refused d=http://127.0.0.1:$SINK_PORT/fail/d
  fi
  # Connection settings are the defaults (request_timeout 30s, concurrency 8, breaker 5 failures / 30 s
  # cooldown, retry backoff 1 s doubling) except that none has a rate limit.
  conns="  healthy: {base_uri: http://127.0.0.1:$SINK_PORT/ok/healthy}
  second: {base_uri: $b}
  third: {base_uri: $c}
  fourth: {base_uri: $d}"
  dests="    - {connection: healthy, path: /e}
    - {connection: second, path: /e}
    - {connection: third, path: /e}
    - {connection: fourth, path: /e}"
  write_config "$dir" "$DURABILITY" "$conns" "$dests"
  start_evrouter "$dir"
  local t0 t1 out
  t0=$(date +%s.%N)
  "$LOADGEN" --port "$EVR_PORT" --path /v1/events --body-file "$WORK/event.json" --rate "$RATE" \
    --duration "$DURATION" --connections "$CONNECTIONS" --header 'Content-Type: application/json' \
    --header "Authorization: Bearer $PUBLISH_KEY" >"$dir/loadgen.txt" || true
  t1=$(date +%s.%N)
  sleep 3  # deliveries of the last events; nginx flushes its log every second
  stop_pid "$EVR_PID"
  out=$(python3 "$ROOT/bench/delivery_stats.py" "$WORK/sink/arrivals.log" --prefix /ok/healthy/ \
    --from "$(echo "$t0 + $WARMUP" | bc)" --to "$t1")
  echo "$1 $(grep -o ' ok=[0-9]* non2xx=[0-9]* errors=[0-9]* unfinished=[0-9]*' "$dir/loadgen.txt") ingest_p99_us=$(grep -o ' p99_us=[0-9]*' "$dir/loadgen.txt" | cut -d= -f2) $out" \
    | tee -a "$WORK/results.txt" | cut -c1-220
}

for r in $(seq "$REPEATS"); do
  run "A$r" A
  run "B$r" B
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$WORK/results.txt" <<'PY'
import json, statistics, sys
rows = {"A": [], "B": []}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    rows[name[0]].append(json.loads(rest[rest.index("{"):]))
med = {k: {f: statistics.median(r[f] for r in v) for f in ("rate", "p50_ms", "p99_ms")} for k, v in rows.items()}
print("\nhealthy destination (medians of %d runs)" % len(rows["A"]))
print("run                         deliveries/s   p50 ms   p99 ms")
print("A: four healthy             %12.1f %8.1f %8.1f" % (med["A"]["rate"], med["A"]["p50_ms"], med["A"]["p99_ms"]))
print("B: three failing            %12.1f %8.1f %8.1f" % (med["B"]["rate"], med["B"]["p50_ms"], med["B"]["p99_ms"]))
# Whole milliseconds: a p50 of 0 ms is common here, and has no ratio.
ratios = ["%.3f" % (med["B"]["rate"] / med["A"]["rate"]) if med["A"]["rate"] else "-"]
ratios += ["%.2f" % (med["B"][f] / med["A"][f]) if med["A"][f] else "-" for f in ("p50_ms", "p99_ms")]
print("B / A                       %12s %8s %8s" % tuple(ratios))
PY
