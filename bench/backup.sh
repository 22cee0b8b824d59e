#!/usr/bin/env bash
# What `evrouter backup` costs a daemon under load, and how long it takes.
#
# A fresh evrouter (sample flow, durability fsync, destination a closed port: every delivery stays
# pending) is filled for FILL seconds by wrk (random webhook ids, as Shopify sends), then wrk runs
# DURATION seconds twice: once alone, once with `evrouter backup` started a second in. The backup is one
# long read of a snapshot while commits go on (its WAL grows meanwhile); printed: the backup's own line
# (events, size, time), and ingest req/s and p99 with and without it.
#
#   bench/backup.sh                       # about 1 minute
#   FILL=60 DURATION=20 bench/backup.sh
#
# Environment: FILL (s, 20), DURATION (s, 10), CONNECTIONS (64), BACKUP_PREFIX (a command the backup runs
# under, e.g. "nice -n 19 ionice -c3"), EVROUTER (a binary; else a Release build in
# build-release/). Results: docs/operations.md ("Backups").
if [[ -n ${EVROUTER:-} ]]; then LOADGEN=${LOADGEN:-unused}; fi
source "$(dirname "${BASH_SOURCE[0]}")/delivery_lib.sh"

FILL=${FILL:-20}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
command -v wrk >/dev/null || { echo "$0: wrk is required (scripts/bootstrap.sh installs it)" >&2; exit 1; }

setup_shopify_request
EVR_PORT=$(free_port)
DEAD_PORT=$(free_port)
dir=$WORK/backup
write_shopify_config "$dir" "$EVR_PORT" "http://127.0.0.1:$DEAD_PORT" "  state_dir: $dir/state
  durability: fsync"
start_evrouter_ready "$dir" "$EVR_PORT"
url="http://127.0.0.1:$EVR_PORT/hooks/$LISTENER_ID"
field() { local v=${2#*" $1="}; echo "${v%% *}"; }

echo "machine     $(machine_line | cut -c13-)"
echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
fill=$(wrk_shopify "$url" "$CONNECTIONS" "$FILL" fill uuid)
echo "filled      $(field ok " $fill") webhooks"
alone=$(wrk_shopify "$url" "$CONNECTIONS" "$DURATION" alone uuid)
# shellcheck disable=SC2086
(sleep 1 && ${BACKUP_PREFIX:-} "$EVROUTER" backup --config "$dir/evrouter.yaml" --output "$WORK/copy.db" >"$WORK/backup.out" 2>&1) &
backup_pid=$!
during=$(wrk_shopify "$url" "$CONNECTIONS" "$DURATION" during uuid)
wait "$backup_pid" || { cat "$WORK/backup.out" >&2; exit 1; }
writer=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^evrouter_store_checkpoints_total\{by="writer"\}/ {print $2}')
stop_pid "$EVR_PID"
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$WORK/backup.out"
printf '%-22s %8s %10s\n' "ingest" "req/s" "p99 ms"
for run in alone during; do
  out=${!run}
  printf '%-22s %8s %10.1f\n' "$run" "$(field rps " $out")" "$(awk -v u="$(field p99_us " $out")" 'BEGIN {print u / 1000}')"
done
echo "writer RESTART tries (evrouter_store_checkpoints_total{by=\"writer\"}): ${writer:-0}"
