#!/usr/bin/env bash
# Store comparison (SQLite against NATS JetStream): ingest and end-to-end throughput of
#   - one evrouter on SQLite (store.durability fsync),
#   - one evrouter on JetStream (store.type jetstream, a nats-server with JetStream started here),
#   - two evrouter replicas on the same JetStream stream, the load split across both.
#
#   bench/stores.sh
#
# The sample Shopify flow (bench/delivery_lib.sh write_shopify_config), webhooks from wrk (bench/ingest.lua:
# the order fixture with its real HMAC, a unique webhook id per request), CONNECTIONS keep-alive
# connections for DURATION s in total (two replicas: two wrk, CONNECTIONS/2 each, at the same time), the
# deliveries to nginx (connection without a rate limit, concurrency 32). Measured: 2xx answers/s
# (ingest) and requests the sink received during the load (end to end). REPEATS runs in turn, medians.
# nats-server: `-js -a 127.0.0.1 -p <free port> -sd <work dir>` (file storage: JetStream syncs its files
# every 2 minutes by default, unlike SQLite's fsync per group commit). Docs and results: docs/benchmarks.md.
#
# Environment: DURATION (10), REPEATS (3), CONNECTIONS (64), SETTLE (3), STORES ("sqlite jetstream
# jetstream-2"), BUILD_DIR, KEEP=1, RESULTS_OUT (file: a copy of the result lines).
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
CONNECTIONS=${CONNECTIONS:-64}
SETTLE=${SETTLE:-3}
STORES=${STORES:-"sqlite jetstream jetstream-2"}
for tool in wrk nats-server openssl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

SINK_PORT=$(free_port)
SINK_LOG=$WORK/sink/arrivals.log
start_nginx sink "$SINK_PORT"
setup_shopify_request
: >"$WORK/results.txt"

run() {  # STORE REPEAT
  local name=$1-r$2 dir=$WORK/$1-r$2 replicas=1 nats_port store i out outs=() pids=() t0 t1 ok=0 non2xx=0 errors=0
  local prefix=/ok/$name/ evr_pids=() ports=()
  [[ $1 == jetstream-2 ]] && replicas=2
  if [[ $1 == sqlite ]]; then
    store="  state_dir: $dir/r0/state
  durability: fsync"
  else
    nats_port=$(free_port)
    start_nats "$dir/nats" "$nats_port"
    store="  type: jetstream
  servers: [nats://127.0.0.1:$nats_port]
  stream: evrbench"
  fi
  for i in $(seq 0 $((replicas - 1))); do
    ports+=("$(free_port)")
    ADMIN_PORT=$(free_port) # each replica's admin API on its own port (two replicas run at once)
    write_shopify_config "$dir/r$i" "${ports[$i]}" "http://127.0.0.1:$SINK_PORT/ok/$name" "$store" 32
    start_evrouter_ready "$dir/r$i" "${ports[$i]}"
    evr_pids+=("$EVR_PID")
  done
  for i in $(seq 0 $((replicas - 1))); do
    wrk_shopify "http://127.0.0.1:${ports[$i]}/hooks/$LISTENER_ID" $((CONNECTIONS / replicas)) "$DURATION" \
      "$name-$i" >"$dir/wrk-$i.txt" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}"; done
  t0= t1=
  for i in $(seq 0 $((replicas - 1))); do
    out=$(cat "$dir/wrk-$i.txt")
    read -r a b <<<"$(wrk_window "$out")"
    [[ -z $t0 ]] || (($(echo "$a < $t0" | bc))) && t0=$a
    [[ -z $t1 ]] || (($(echo "$b > $t1" | bc))) && t1=$b
    local v=${out#*ok=}; ok=$((ok + ${v%% *}))
    v=${out#*non2xx=}; non2xx=$((non2xx + ${v%% *}))
    v=${out#*errors=}; errors=$((errors + ${v%% *}))
    outs+=("p99_us_$i=$(grep -o ' p99_us=[0-9]*' <<<"$out" | cut -d= -f2)")
  done
  sleep "$SETTLE"
  sleep 1.2  # nginx flushes its log every second
  for p in "${evr_pids[@]}"; do stop_pid "$p"; done
  [[ -n ${NATS_PID:-} && $1 != sqlite ]] && stop_pid "$NATS_PID"
  echo "$name store=$1 replicas=$replicas ok=$ok non2xx=$non2xx errors=$errors window_s=$(echo "$t1 - $t0" | bc -l | cut -c1-6) sink_during=$(sink_count "$SINK_LOG" "$prefix" "$t0" "$t1") sink_settle=$(sink_count "$SINK_LOG" "$prefix" "$t0" "$(echo "$t1 + $SETTLE" | bc)") ${outs[*]}" \
    | tee -a "$WORK/results.txt"
}

echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine     $(machine_line | cut -c13-)"
echo "tools       $(nats-server --version 2>&1 | head -1), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "settings    wrk $CONNECTIONS connections in total, ${DURATION} s closed loop, $REPEATS repeats; stores: $STORES"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$REPEATS"); do
  for s in $STORES; do run "$s" "$r"; done
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n ${RESULTS_OUT:-} ]] && cp "$WORK/results.txt" "$RESULTS_OUT"

python3 - "$WORK/results.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    store = re.search(r"store=(\S+)", line).group(1)
    w = float(kv["window_s"])
    p99 = max(int(v) for k, v in kv.items() if k.startswith("p99_us_")) / 1000
    runs.setdefault(store, []).append({"ingest/s": int(kv["ok"]) / w, "delivered/s": int(kv["sink_during"]) / w,
                                       "p99 ms": p99, "errors": int(kv["errors"]) + int(kv["non2xx"])})
cols = ["ingest/s", "delivered/s", "p99 ms", "errors"]
med = {s: {c: statistics.median(r[c] for r in v) for c in cols} for s, v in runs.items()}
print("\nmedians of %d runs (delivered/s: received by the sink during the load)" % len(next(iter(runs.values()))))
print("%-14s" % "store" + "".join("%13s" % c for c in cols) + "   ingest vs sqlite   delivered vs sqlite")
base = med.get("sqlite")
for s, m in med.items():
    extra = ""
    if base:
        extra = "   %16.2f   %19.2f" % (m["ingest/s"] / base["ingest/s"], m["delivered/s"] / base["delivered/s"])
    print("%-14s" % s + "".join("%13.1f" % m[c] for c in cols) + extra)
PY
