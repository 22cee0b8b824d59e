#!/usr/bin/env bash
# CPU per durable webhook, by evrouter thread: the sample Shopify flow (durability fsync, its destination a
# closed port, so deliveries only retry in the background), wrk with CONNECTIONS keep-alive connections for
# DURATION s, then each thread's CPU time (/proc/<pid>/task/*/stat, user + system) divided by the requests
# answered. Threads are named by role (evr-listen-N, evr-store-write, evr-store-sync, evr-store-ckpt, evr-dispatch, ...).
# SINK=1: the destination is a live nginx sink instead (end to end: each webhook is also delivered, and the
# delivery's outcome stored), and the line adds what the sink received during the run.
# With several binaries it alternates them ROUNDS times (A/B on this noisy machine: compare like with like).
#
#   bench/thread_cpu.sh [BINARY...]        # default: a Release build in build-release/
#
# Environment: DURATION (s, 10), CONNECTIONS (64), ROUNDS (2), SINK (0), EVR_WORKERS (server.workers, 0: one per
# CPU), BUILD_DIR, KEEP=1. Results: docs/benchmarks.md
# ("Round 4").
# Binaries given: nothing to build.
if (($#)); then
  EVROUTER=${EVROUTER:-$1}
  LOADGEN=${LOADGEN:-unused}
fi
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
command -v wrk >/dev/null || { echo "$0: wrk is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }
binaries=("$@")
((${#binaries[@]})) || binaries=("$EVROUTER")
CLK_TCK=$(getconf CLK_TCK)

setup_shopify_request
EVR_PORT=$(free_port)
DEAD_PORT=$(free_port)  # nothing listens there (SINK=1: the sink does)
DESTINATION=http://127.0.0.1:$DEAD_PORT
if [[ ${SINK:-0} == 1 ]]; then
  start_nginx sink "$DEAD_PORT"
  DESTINATION=http://127.0.0.1:$DEAD_PORT/ok
fi
ticks() { for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }

echo "machine     $(machine_line | cut -c13-)"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for bin in "${binaries[@]}"; do
    dir=$WORK/run-$round
    write_shopify_config "$dir" "$EVR_PORT" "$DESTINATION" "  state_dir: $dir/state
  durability: fsync"
    EVROUTER=$bin start_evrouter_ready "$dir" "$EVR_PORT"
    ticks "$EVR_PID" >"$WORK/before"
    out=$(wrk_shopify "http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID" "$CONNECTIONS" "$DURATION" "cpu-$round")
    sunk=
    if [[ ${SINK:-0} == 1 ]]; then  # let the last deliveries finish: their CPU belongs to these webhooks
      sleep 3
      kill -USR1 "$NGINX_PID"; sleep 0.5  # reopening its log flushes nginx's log buffer
      start_s=${out#*start_s=}; start_s=${start_s%% *}
      sunk=" sink_during=$(sink_count "$WORK/sink/arrivals.log" "/ok/" "$start_s" "$(awk -v s="$start_s" -v d="$DURATION" 'BEGIN {printf "%.3f", s + d}')")"
    fi
    ticks "$EVR_PID" >"$WORK/after"
    stop_pid "$EVR_PID"
    ok=${out#*ok=}; ok=${ok%% *}
    rps=${out#*rps=}; rps=${rps%% *}
    join "$WORK/before" "$WORK/after" | awk -v ok="$ok" -v hz="$CLK_TCK" -v bin="$bin" -v rps="$rps" -v sunk="$sunk" '
      { d = ($3 - $2) * 1e6 / hz / ok; total += d
        if ($1 ~ /^evr-listen/) listen += d; else if (d >= 0.05) other = other sprintf(" %s %.1f", $1, d) }
      END { printf "%s: %s req/s%s, us/webhook: total %.1f listeners %.1f%s\n", bin, rps, sunk, total, listen, other }'
  done
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
