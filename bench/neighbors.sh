#!/usr/bin/env bash
# A noisy neighbour on the same disk: what another process's writes or deletions do to durable answers.
#
# A durable answer waits for its commit's fdatasync, and the disk's flush includes whatever else was
# written to it; on ext4 a deletion's freed blocks are discarded at the next journal commit (mount option
# `discard`). For each NEIGHBOUR mode, alternated REPEATS times: a fresh evrouter (sample flow, durability
# fsync, destination a closed port), WARM s of wrk to bring the WAL to its size, then DURATION s of wrk
# measured while, from 0.5 s in, the neighbour acts on a file of SIZE_MB next to the state directory:
#   none     nothing
#   write    writes SIZE_MB and syncs it
#   delete   deletes SIZE_MB written and synced before the measured run
# Prints per run: req/s and wrk's p99, and from evrouter's own histograms (counted since it started, the
# warm-up included) how many WAL syncs and how many answers' waits for the store took over 25 ms and over
# 100 ms. In a closed loop only the requests in flight wait on a stall: CONNECTIONS at most per stall.
#
#   bench/neighbors.sh                     # about 2 minutes
#   SIZE_MB=1000 REPEATS=3 bench/neighbors.sh
#
# Environment: NEIGHBOURS ("none write delete"), SIZE_MB (400), WARM (s, 4), DURATION (s, 3), CONNECTIONS
# (64), REPEATS (2), EVROUTER (a binary; else a Release build in build-release/). Results: docs/operations.md
# ("The disk under the state directory").
if [[ -n ${EVROUTER:-} ]]; then LOADGEN=${LOADGEN:-unused}; fi
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

NEIGHBOURS=${NEIGHBOURS:-none write delete}
SIZE_MB=${SIZE_MB:-400}
WARM=${WARM:-4}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-64}
REPEATS=${REPEATS:-2}
command -v wrk >/dev/null || { echo "$0: wrk is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }

setup_shopify_request
EVR_PORT=$(free_port)
DEAD_PORT=$(free_port) # nothing listens there: deliveries retry in the background
BIG=$WORK/neighbour.bin

# slow METRIC: "<n over 25 ms>/<n over 100 ms>/<count>" of a histogram on /metrics (buckets 0.025, 0.1)
slow() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1_bucket" '
    index($0, m) == 1 && /le="0.025"/ {a = $2} index($0, m) == 1 && /le="0.1"/ {b = $2}
    index($0, m) == 1 && /le="\+Inf"/ {n = $2} END {printf "%d/%d/%d", n - a, n - b, n}'
}
field() { local v=${2#*" $1="}; echo "${v%% *}"; }

echo "machine     $(machine_line | cut -c13-)"
echo "disk        $(findmnt -no SOURCE,FSTYPE,OPTIONS --target "$WORK" 2>/dev/null | cut -c1-100)"
echo "run         warm ${WARM}s, measure ${DURATION}s, $CONNECTIONS connections, neighbour file ${SIZE_MB} MB"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %3s %8s %9s %22s %22s\n' neighbour run req/s "p99 ms" "WAL syncs >25/>100/n" "store waits >25/>100/n"
for rep in $(seq "$REPEATS"); do
  for mode in $NEIGHBOURS; do
    dir=$WORK/$mode-$rep
    write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$DEAD_PORT" "  state_dir: $dir/state
  durability: fsync"
    sync
    start_evrouter_ready "$dir" "$EVR_PORT"
    wrk_shopify "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$CONNECTIONS" "$WARM" "warm-$mode-$rep" >/dev/null
    if [[ $mode == delete ]]; then dd if=/dev/zero of="$BIG" bs=1M count="$SIZE_MB" status=none && sync; fi
    neighbour=
    case $mode in
      write) (sleep 0.5; dd if=/dev/zero of="$BIG" bs=1M count="$SIZE_MB" status=none; sync) & neighbour=$! ;;
      delete) (sleep 0.5; rm -f "$BIG") & neighbour=$! ;;
    esac
    out=$(wrk_shopify "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$CONNECTIONS" "$DURATION" "run-$mode-$rep")
    [[ -n $neighbour ]] && wait "$neighbour"
    printf '%-9s %3s %8s %9s %22s %22s\n' "$mode" "$rep" "$(field rps " $out")" \
      "$(awk -v u="$(field p99_us " $out")" 'BEGIN {printf "%.1f", u / 1000}')" \
      "$(slow evrouter_store_sync_seconds)" "$(slow evrouter_ingest_store_seconds)"
    stop_pid "$EVR_PID"
    rm -rf "$dir" "$BIG"
  done
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
