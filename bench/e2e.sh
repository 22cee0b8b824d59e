#!/usr/bin/env bash
# End to end: Shopify webhooks in, fsynced, routed by the sample flow and delivered to a local sink; the
# sustained delivery rate, and the latency evrouter adds between its 2xx answer and the sink's arrival of
# the same event, at half of that rate.
#
#   bench/e2e.sh
#
# Builds a Release evrouter and evrouter-loadgen (unless EVROUTER and LOADGEN name binaries), then REPEATS
# times, each with a fresh state directory:
#   1. peak: wrk (bench/ingest.lua, CONNECTIONS keep-alive connections, DURATION s, closed loop) against the
#      sample flow (durability fsync, a connection without rate limit, concurrency EVR_CONCURRENCY) whose
#      sink is nginx logging each arrival; the peak is what the sink received during the load per second;
#   2. half of the median peak, open loop: evrouter-loadgen at that constant rate for DURATION s, sending
#      a unique X-Correlation-Id (which evrouter forwards on its deliveries) and serving the sink itself
#      (--sink-port, on a second thread), so each 2xx and each arrival are timed by one clock; "added" is
#      arrival minus the time the 2xx was read (0 when the delivery came first).
# Everything runs on 127.0.0.1 and stops by itself (about 2 minutes with the defaults). Prints one table of
# medians. Docs and results: docs/benchmarks.md ("End to end").
#
# Environment: DURATION (s, 8), REPEATS (3), CONNECTIONS (64), RATE_CONNECTIONS (64), EVR_CONCURRENCY (32),
# SETTLE (s, 3), BUILD_DIR, KEEP=1, RESULTS_OUT (file: a copy of the per-run lines), HALF_RATE (req/s: skip
# the peak runs and measure the added latency at this rate, e.g. to compare two builds at one rate),
# STORE (sqlite, the default, durability fsync; or jetstream: a nats-server started per run).
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

DURATION=${DURATION:-8}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-64}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-64}
EVR_CONCURRENCY=${EVR_CONCURRENCY:-32}
SETTLE=${SETTLE:-3}
STORE=${STORE:-sqlite}
command -v wrk >/dev/null || { echo "$0: wrk is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }

store_yaml() {  # DIR: sets STORE_YAML, the lines under `store:` for one run (jetstream: starts a nats-server)
  NATS_PID=
  if [[ $STORE == jetstream ]]; then
    local port
    port=$(free_port)
    start_nats "$1/nats" "$port"
    STORE_YAML="  type: jetstream
  servers: [nats://127.0.0.1:$port]
  stream: evrbench"
  else
    STORE_YAML="  state_dir: $1/state
  durability: fsync"
  fi
}

SINK_PORT=$(free_port)
EVR_PORT=$(free_port)
start_nginx sink "$SINK_PORT"
SINK_LOG=$WORK/sink/arrivals.log
setup_shopify_request
# delivery_lag: "lag_p50_ms=.. lag_p99_ms=.. attempt_p99_ms=..", evrouter's own view of the same runs, from
# its histograms (interpolated within buckets): evrouter_delivery_lag_seconds (receipt -> first attempt
# sent, whole ms) and evrouter_delivery_attempt_seconds (request sent -> answer read). A lag tail with short
# attempts was spent in evrouter; long attempts mean the sink was slow to read or answer (or, since a
# connection's concurrency is capped, both grow when the sink stalls).
delivery_lag() {
  { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" || true; } | python3 -c '
import collections, re, sys
series = {"lag": collections.defaultdict(float), "attempt": collections.defaultdict(float)}
names = {"evrouter_delivery_lag_seconds_bucket": "lag", "evrouter_delivery_attempt_seconds_bucket": "attempt"}
for line in sys.stdin:
    m = re.match(r"(\w+)\{(?:[^}]*,)?le=\"([^\"]+)\"\} (\S+)", line)
    if m and m.group(1) in names:  # summed over lanes
        series[names[m.group(1)]][float(m.group(2))] += float(m.group(3))
def q(kind, p):
    buckets = sorted(series[kind].items())
    total = buckets[-1][1] if buckets else 0
    if total == 0:
        return 0.0
    rank, lo, below = p * total, 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return lo * 1000
            return (lo + (le - lo) * (rank - below) / max(n - below, 1)) * 1000
        lo, below = le, n
    return lo * 1000
print("lag_p50_ms=%.2f lag_p99_ms=%.2f attempt_p99_ms=%.2f" % (q("lag", 0.5), q("lag", 0.99), q("attempt", 0.99)))'
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
field() { local v=${2#*"$1"=}; echo "${v%% *}"; }  # field NAME "k=v k=v ...": the value of NAME

echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine     $(machine_line | cut -c13-)"
echo "settings    peak: wrk $CONNECTIONS connections, ${DURATION} s; half peak: evrouter-loadgen $RATE_CONNECTIONS connections, ${DURATION} s; store $STORE, connection concurrency $EVR_CONCURRENCY; $REPEATS repeats"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/results.txt"

# 1. The sustained end-to-end peak.
peaks=()
for r in $(seq "$([[ -n ${HALF_RATE:-} ]] && echo 0 || echo "$REPEATS")"); do
  dir=$WORK/peak-$r
  store_yaml "$dir"
  write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$SINK_PORT/ok/peak-$r" "$STORE_YAML" "$EVR_CONCURRENCY"
  start_evrouter_ready "$dir" "$EVR_PORT"
  out=$(wrk_shopify "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$CONNECTIONS" "$DURATION" "peak-$r")
  read -r t0 t1 <<<"$(wrk_window "$out")"
  sleep "$SETTLE"
  sleep 1.2  # nginx flushes its log every second
  during=$(sink_count "$SINK_LOG" "/ok/peak-$r/" "$t0" "$t1")
  stop_pid "$EVR_PID"
  [[ -n $NATS_PID ]] && stop_pid "$NATS_PID"
  rate=$(echo "$during / ($t1 - $t0)" | bc)
  peaks+=("$rate")
  echo "peak repeat=$r $out sink_during=$during delivered_per_s=$rate" | tee -a "$WORK/results.txt"
done
if [[ -n ${HALF_RATE:-} ]]; then
  half=$HALF_RATE
else
  peak=$(median "${peaks[@]}")
  half=$((peak / 2))
fi

# 2. Half of it, open loop, with the load generator as the sink (on a thread of its own).
lines=()
for r in $(seq "$REPEATS"); do
  dir=$WORK/half-$r
  lg_sink=$(free_port)
  store_yaml "$dir"
  write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$lg_sink/ok" "$STORE_YAML" "$EVR_CONCURRENCY"
  start_evrouter_ready "$dir" "$EVR_PORT"
  out=$("$LOADGEN" --port "$EVR_PORT" --path "/hooks/$LISTENER_ID" --body-file "$WORK/order.json" \
    --rate "$half" --duration "$DURATION" --connections "$RATE_CONNECTIONS" --sink-port "$lg_sink" \
    --header 'User-Agent: Shopify-Captain-Hook' --header 'Content-Type: application/json' \
    --header 'X-Shopify-Topic: orders/create' --header "X-Shopify-Hmac-Sha256: $HMAC" \
    --header 'X-Shopify-Shop-Domain: bench-shop.myshopify.com' --header 'X-Shopify-API-Version: 2025-01' \
    --id-header X-Shopify-Webhook-Id --id-header X-Correlation-Id --id-prefix "half-$r" || true)
  lag=$(delivery_lag)
  stop_pid "$EVR_PID"
  [[ -n $NATS_PID ]] && stop_pid "$NATS_PID"
  line="half repeat=$r $(tr '\n' ' ' <<<"$out") $lag"
  lines+=("$line")
  echo "$line" | tee -a "$WORK/results.txt"
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n ${RESULTS_OUT:-} ]] && cp "$WORK/results.txt" "$RESULTS_OUT"

m() {  # m NAME: median of NAME over the half-peak runs
  local vals=() l
  for l in "${lines[@]}"; do vals+=("$(field "$1" "$l")"); done
  median "${vals[@]}"
}
ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
added_p99=$(m added_p99_us)
echo
echo "End to end (medians of $REPEATS)"
if [[ -n ${HALF_RATE:-} ]]; then
  echo "sustained delivery, closed loop     not measured (HALF_RATE=$HALF_RATE given)"
else
  echo "sustained delivery, closed loop     $peak events/s reached the sink during the load (runs: ${peaks[*]})"
fi
echo "open loop at half of it             $half req/s: $(m ok) answered 2xx, $(m matched) delivered (missing $(m missing), repeated $(m repeated))"
echo "answer latency (scheduled -> 2xx)   p50 $(ms "$(m p50_us)") ms, p99 $(ms "$(m p99_us)") ms"
echo "added latency (2xx -> sink)         p50 $(ms "$(m added_p50_us)") ms, p90 $(ms "$(m added_p90_us)") ms, p99 $(ms "$added_p99") ms, p99.9 $(ms "$(m added_p999_us)") ms, max $(ms "$(m added_max_us)") ms"
echo "delivery lag (evrouter's histogram) p50 $(m lag_p50_ms) ms, p99 $(m lag_p99_ms) ms (receipt -> first attempt sent, whole ms); attempt p99 $(m attempt_p99_ms) ms"
if ((added_p99 < 5000)); then verdict=met; else verdict=MISSED; fi
echo "target: added p99 at half of peak = $(ms "$added_p99") ms (< 5 ms): $verdict"
