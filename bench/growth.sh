#!/usr/bin/env bash
# Cost of growth: throughput, memory and startup time as the number of flows and the backlog grow.
#
#   bench/growth.sh
#
# One evrouter (Release build), events through the publish API (one small event per request, closed-loop
# wrk, CONNECTIONS connections, DURATION s), nginx as the sink (bench/delivery_lib.sh), store.durability
# fsync. All on 127.0.0.1.
#
# 1. Flows: FLOWS (1, 100, 1000) bus flows, all taking the published source, each with one branch matching
#    its own `detail.shop` value; the events carry flow 0's shop, so every event is matched against every
#    flow and delivered once (the worst case for routing: no flow is skipped by its source). Startup time
#    (exec -> GET /readyz answers 200, polled every 2 ms) cold (new state directory) and warm (restart),
#    median of STARTS starts each, with the CPU time evrouter had used when it became ready (on a loaded
#    machine the wall time is mostly waiting for a CPU), for that flow set and for as many Shopify flows (each with its own
#    listener, ids generated and stored on the cold start); then the throughput (acknowledged/s and
#    delivered at the sink during the load) and evrouter's RSS (peak, sampled every 0.5 s).
# 2. Backlog: BACKLOGS (0, 100000, 1000000) events published first (batches of 100, as bench/backlog.sh)
#    while the destination refuses connections, then the sink comes up and, while the backlog drains, the
#    same load runs: acknowledged/s, delivered/s at the sink, RSS; and, before the sink comes up, the median
#    time of 5 scrapes of GET /metrics (the store's totals and queue ages with the whole backlog pending).
# Prints one line per measurement and a summary. Docs and results: docs/benchmarks.md.
#
# Environment: FLOWS ("1 100 1000"), BACKLOGS ("0 100000 1000000"), DURATION (8), CONNECTIONS (32), STARTS (3),
# CONCURRENCY (32), BUILD_DIR, KEEP=1, RESULTS_OUT (file: a copy of the result lines).
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

FLOWS=${FLOWS:-"1 100 1000"}
BACKLOGS=${BACKLOGS:-"0 100000 1000000"}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-32}
STARTS=${STARTS:-3}
CONCURRENCY=${CONCURRENCY:-32}
command -v wrk >/dev/null || { echo "$0: wrk is required" >&2; exit 1; }

SINK_PORT=$(free_port)
EVR_PORT=$(free_port)
SINK_LOG=$WORK/sink/arrivals.log
make_event_body "$WORK/event.json"
sed -i 's/"shop":"bench-shop"/"shop":"shop-0"/' "$WORK/event.json"
: >"$WORK/results.txt"

result() { echo "$*" | tee -a "$WORK/results.txt"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# The process ready_ms started is not this shell's child: wait for it by polling.
stop_orphan() {
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}

# flow_set DIR N KIND(bus|shopify): an evrouter config with N flows.
flow_set() {
  local dir=$1 n=$2 kind=$3
  write_config "$dir" fsync \
    "  sink: {base_uri: http://127.0.0.1:$SINK_PORT/ok/growth-$kind-$n, concurrency: $CONCURRENCY}" \
    "    - {connection: sink, path: /default}"
  rm "$dir/flows/bench.yaml"
  python3 - "$dir/flows" "$n" "$kind" <<'PY'
import os, sys
d, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    if kind == "bus":
        source = "source: {type: bus, sources: [bench.load]}"
    else:
        source = "source:\n  type: shopify\n  secret: {env: EVROUTER_BENCH_PUBLISH_KEY}\n  topics: [orders/create]"
    with open(os.path.join(d, "f%04d.yaml" % i), "w") as f:
        f.write("""name: f%04d
%s
mode: first
branches:
  - name: mine
    match:
      detail:
        shop: [shop-%d]
    destinations:
      - {connection: sink, path: /f%d}
""" % (i, source, i, i))
PY
}

start_nginx sink "$SINK_PORT"
echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine     $(machine_line | cut -c13-)"
echo "settings    wrk $CONNECTIONS connections, ${DURATION} s per measurement, publish API one event per request, durability fsync, sink concurrency $CONCURRENCY"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. flows -------------------------------------------------------------------------------------------
for n in $FLOWS; do
  for kind in bus shopify; do
    [[ $kind == shopify && $n == 1 ]] && continue
    dir=$WORK/flows-$kind-$n
    cold=() warm=() cold_cpu=() warm_cpu=()
    for s in $(seq "$STARTS"); do
      flow_set "$dir" "$n" "$kind"
      read -r w c <<<"$(ready_ms "$dir/evrouter.yaml" "$EVR_PORT" "$dir/evrouter.log")"
      cold+=("$w") cold_cpu+=("$c")
      stop_orphan "$(cat "$WORK/ready.pid")"
      read -r w c <<<"$(ready_ms "$dir/evrouter.yaml" "$EVR_PORT" "$dir/evrouter.log")"
      warm+=("$w") warm_cpu+=("$c")
      stop_orphan "$(cat "$WORK/ready.pid")"
    done
    result "startup kind=$kind flows=$n cold_ms=$(median "${cold[@]}") warm_ms=$(median "${warm[@]}") cold_cpu_ms=$(median "${cold_cpu[@]}") warm_cpu_ms=$(median "${warm_cpu[@]}") cold_all=$(IFS=,; echo "${cold[*]}") warm_all=$(IFS=,; echo "${warm[*]}")"
  done

  dir=$WORK/flows-bus-$n
  flow_set "$dir" "$n" bus
  start_evrouter_ready "$dir" "$EVR_PORT"
  rss_idle=$(rss_kb "$EVR_PID")
  ( while kill -0 "$EVR_PID" 2>/dev/null; do rss_kb "$EVR_PID"; sleep 0.5; done ) >"$WORK/rss-flows-$n.txt" 2>/dev/null &
  sampler=$!
  out=$(wrk_publish "http://127.0.0.1:$EVR_PORT/v1/events" "$CONNECTIONS" "$DURATION" "$WORK/event.json")
  read -r t0 t1 <<<"$(wrk_window "$out")"
  sleep 1.2
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  delivered=$(sink_count "$SINK_LOG" "/ok/growth-bus-$n/" "$t0" "$t1")
  result "flows flows=$n $out sink_during=$delivered rss_idle_kb=$rss_idle rss_peak_kb=$(sort -n "$WORK/rss-flows-$n.txt" | tail -1)"
  stop_pid "$EVR_PID"
done

# --- 2. backlog -----------------------------------------------------------------------------------------
python3 - "$WORK/batch.json" <<'PY'
import json, sys
entry = {"source": "bench.load", "detail-type": "bench.tick",
         "detail": {"order": 123456, "shop": "bench-shop", "total": "42.50", "note": "a small event"}}
json.dump({"entries": [entry] * 100}, open(sys.argv[1], "w"), separators=(",", ":"))
PY
for backlog in $BACKLOGS; do
  port=$(free_port)  # refused until the sink starts
  dir=$WORK/backlog-$backlog
  write_config "$dir" fsync \
    "  down: {base_uri: http://127.0.0.1:$port/ok/backlog-$backlog, concurrency: $CONCURRENCY, breaker: {failures: 5, cooldown: 1s}, retry: {max_attempts: 1000000, backoff_base: 1s, backoff_cap: 2s}}" \
    "    - {connection: down, path: /e}"
  start_evrouter_ready "$dir" "$EVR_PORT"
  fill_s=0
  if ((backlog > 0)); then
    f0=$(date +%s.%N)
    "$LOADGEN" --port "$EVR_PORT" --path /v1/events --body-file "$WORK/batch.json" --rate 400 \
      --duration "$(echo "scale=3; $backlog / 100 / 400" | bc)" --connections 8 --drain 600 \
      --header 'Content-Type: application/json' --header "Authorization: Bearer $PUBLISH_KEY" >"$dir/fill.txt" || true
    fill_s=$(echo "$(date +%s.%N) - $f0" | bc)
  fi
  rss_before=$(rss_kb "$EVR_PID")
  scrape_ms=$(metrics_ms 5)  # the store totals and queue ages, read with the whole backlog pending
  start_nginx "sink-$backlog" "$port"
  # Wait for the first delivery (the breaker's cooldown, up to 10 s after a long outage; not nginx's own
  # readiness request, also logged), then 2 s more.
  for _ in $(seq 200); do
    grep -q "/ok/backlog-$backlog/" "$WORK/sink-$backlog/arrivals.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 2
  ( while kill -0 "$EVR_PID" 2>/dev/null; do rss_kb "$EVR_PID"; sleep 0.5; done ) >"$WORK/rss-backlog-$backlog.txt" 2>/dev/null &
  sampler=$!
  out=$(wrk_publish "http://127.0.0.1:$EVR_PORT/v1/events" "$CONNECTIONS" "$DURATION" "$WORK/event.json")
  read -r t0 t1 <<<"$(wrk_window "$out")"
  sleep 1.2
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  delivered=$(sink_count "$WORK/sink-$backlog/arrivals.log" "/ok/backlog-$backlog/" "$t0" "$t1")
  result "backlog backlog=$backlog fill_s=$fill_s $out sink_during=$delivered rss_before_kb=$rss_before metrics_ms=$scrape_ms rss_peak_kb=$(sort -n "$WORK/rss-backlog-$backlog.txt" | tail -1)"
  stop_pid "$EVR_PID"
  stop_pid "$NGINX_PID"
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n ${RESULTS_OUT:-} ]] && cp "$WORK/results.txt" "$RESULTS_OUT"

python3 - "$WORK/results.txt" <<'PY'
import re, sys
rows = [(l.split()[0], dict(re.findall(r"(\w+)=([0-9.,]+)", l))) for l in open(sys.argv[1])]
print("\nstartup (exec -> /readyz 200, median of starts)")
print("%-8s %6s %9s %9s %13s %13s" % ("kind", "flows", "cold ms", "warm ms", "cold cpu ms", "warm cpu ms"))
for line in open(sys.argv[1]):
    if line.startswith("startup"):
        kv = dict(re.findall(r"(\w+)=([\w.,]+)", line))
        print("%-8s %6s %9s %9s %13s %13s" % (kv["kind"], kv["flows"], kv["cold_ms"], kv["warm_ms"],
                                              kv.get("cold_cpu_ms", "-"), kv.get("warm_cpu_ms", "-")))
def rates(r):
    el = int(r["duration_us"]) / 1e6
    return int(r["ok"]) / el, int(r["sink_during"]) / el
print("\nflows (bus flows, every event matched against every flow)")
print("%6s %10s %12s %8s %8s %12s %12s" % ("flows", "acked/s", "delivered/s", "p50 ms", "p99 ms", "rss idle MB", "rss peak MB"))
base = None
for k, r in rows:
    if k == "flows":
        a, d = rates(r)
        base = base or a
        print("%6s %10.0f %12.0f %8.1f %8.1f %12.1f %12.1f   (acked vs 1 flow: %.2f)" % (
            r["flows"], a, d, int(r["p50_us"]) / 1000, int(r["p99_us"]) / 1000,
            int(r["rss_idle_kb"]) / 1024, int(r["rss_peak_kb"]) / 1024, a / base))
print("\nbacklog (load while the backlog drains)")
print("%8s %8s %10s %12s %8s %14s %12s %11s" % ("backlog", "fill s", "acked/s", "delivered/s", "p99 ms", "rss before MB",
                                              "rss peak MB", "/metrics ms"))
for k, r in rows:
    if k == "backlog":
        a, d = rates(r)
        print("%8s %8.1f %10.0f %12.0f %8.1f %14.1f %12.1f %11s" % (r["backlog"], float(r["fill_s"]), a, d,
              int(r["p99_us"]) / 1000, int(r["rss_before_kb"]) / 1024, int(r["rss_peak_kb"]) / 1024,
              r.get("metrics_ms", "-")))
PY
