#!/usr/bin/env bash
# Webhook ids in order against random ones: what real Shopify ids (random UUIDs) cost the store.
#
# bench/ingest.sh gives each request the id "<tag>-<thread>-<n>", which evrouter's dedup table and
# webhook-id index receive almost in key order: each group commit touches a few of their pages. Shopify's
# X-Shopify-Webhook-Id and X-Shopify-Event-Id are random UUIDs: every event lands on another page of both,
# and a group commit writes one page of each per event once the store holds more events than fit in a few
# pages. This script measures the difference on a store that already holds events: for each MODE (seq,
# uuid), a fresh evrouter (sample flow, durability fsync, destination a closed port), FILL seconds of wrk to
# fill the store, then DURATION seconds of wrk measured: req/s, p99, and bytes written to disk per webhook
# (/proc/PID/io write_bytes: the WAL and the checkpoints' copies into the database file). Modes alternate,
# REPEATS times; medians are printed.
#
#   bench/ids.sh                           # about 3 minutes
#   FILL=60 DURATION=10 REPEATS=3 bench/ids.sh
#
# Environment: FILL (s, 20), DURATION (s, 8), CONNECTIONS (256), REPEATS (2), EVROUTER (a binary; else a
# Release build in build-release/). Results: docs/benchmarks.md ("Webhook ids in order and at random").
if [[ -n ${EVROUTER:-} ]]; then LOADGEN=${LOADGEN:-unused}; fi
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

FILL=${FILL:-20}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-256}
REPEATS=${REPEATS:-2}
command -v wrk >/dev/null || { echo "$0: wrk is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }

setup_shopify_request
EVR_PORT=$(free_port)
DEAD_PORT=$(free_port) # nothing listens there: deliveries retry in the background

# run_wrk SECONDS TAG MODE: wrk_shopify's fields (random ids for MODE uuid)
run_wrk() {
  local options=
  [[ $3 == uuid ]] && options=uuid
  wrk_shopify "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$CONNECTIONS" "$1" "$2" "$options"
}
field() { local v=${2#*" $1="}; echo "${v%% *}"; }
written() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }

echo "machine     $(machine_line | cut -c13-)"
echo "run         fill ${FILL}s, measure ${DURATION}s, $CONNECTIONS connections, $REPEATS repeats"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$WORK/results
for rep in $(seq "$REPEATS"); do
  for mode in seq uuid; do
    dir=$WORK/$mode-$rep
    write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$DEAD_PORT" "  state_dir: $dir/state
  durability: fsync"
    start_evrouter_ready "$dir" "$EVR_PORT"
    fill=$(run_wrk "$FILL" "fill-$mode-$rep" "$mode")
    before=$(written "$EVR_PID")
    out=$(run_wrk "$DURATION" "measure-$mode-$rep" "$mode")
    after=$(written "$EVR_PID")
    stop_pid "$EVR_PID"
    ok=$(field ok " $out")
    echo "$mode stored=$(field ok " $fill") rps=$(field rps " $out") p99_us=$(field p99_us " $out") non2xx=$(field non2xx " $out") kb_per_webhook=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.1f", (a - b) / 1024 / (n > 0 ? n : 1)}')" |
      tee -a "$results"
  done
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, *kv = line.split()
    rows.setdefault(mode, []).append({k: float(v) for k, v in (x.split("=") for x in kv)})
print("\n%-6s %14s %10s %10s %16s" % ("ids", "store holds", "req/s", "p99 ms", "disk KiB/webhook"))
med = {}
for mode, rs in rows.items():
    m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    med[mode] = m
    print("%-6s %14.0f %10.0f %10.1f %16.1f" % (mode, m["stored"], m["rps"], m["p99_us"] / 1000, m["kb_per_webhook"]))
if "seq" in med and "uuid" in med and med["seq"]["rps"] > 0:
    print("\nuuid / seq: req/s %.2f, disk bytes per webhook %.2f" % (
        med["uuid"]["rps"] / med["seq"]["rps"],
        med["uuid"]["kb_per_webhook"] / max(med["seq"]["kb_per_webhook"], 1e-9)))
PY
