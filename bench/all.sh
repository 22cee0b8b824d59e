#!/usr/bin/env bash
# The whole benchmark set, one summary table: metric, value, baseline, ratio, target, met/missed.
#
#   QUICK=1 bench/all.sh     # short runs, one repeat each: about 6-8 minutes
#   bench/all.sh             # the documented settings of every script: about 25-40 minutes
#
# Runs, in turn (each under `timeout`: STEP_TIMEOUT s, default 600 quick / 2400 full): bench/ingest.sh
# (against nginx), bench/isolation.sh, bench/rate.sh, bench/backlog.sh, bench/growth.sh,
# bench/e2e.sh (end to end: sustained delivery, added latency at half of it), bench/nodered.sh (Node-RED
# peer), bench/stores.sh (SQLite / JetStream). Every script's full output is
# kept in OUT_DIR (default: a new directory under $TMPDIR) and the table is built from those outputs.
# Everything runs on 127.0.0.1. Environment: QUICK, STEPS (subset, e.g. "ingest nodered"), OUT_DIR,
# STEP_TIMEOUT, BUILD_DIR, EVROUTER and LOADGEN (binaries built elsewhere). Docs and results: docs/benchmarks.md.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
QUICK=${QUICK:-0}
STEPS=${STEPS:-"ingest isolation rate backlog growth e2e nodered stores"}
OUT_DIR=${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/evrouter-bench-all.XXXXXX")}
if [[ $QUICK == 1 ]]; then STEP_TIMEOUT=${STEP_TIMEOUT:-600}; else STEP_TIMEOUT=${STEP_TIMEOUT:-2400}; fi
mkdir -p "$OUT_DIR"

# One Release build for every step (or the binaries named by EVROUTER and LOADGEN).
if [[ -z ${EVROUTER:-} || -z ${LOADGEN:-} ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEVROUTER_TESTS=OFF -DEVROUTER_BENCH=ON \
    >/dev/null || exit 1
  cmake --build "$BUILD_DIR" --target evrouter evrouter-loadgen -j2 >/dev/null || exit 1
  EVROUTER=$BUILD_DIR/evrouter
  LOADGEN=$BUILD_DIR/bench/evrouter-loadgen
fi
export EVROUTER LOADGEN BUILD_DIR

# Per step: the environment of the quick mode (the full mode uses each script's defaults).
declare -A QUICK_ENV=(
  [ingest]="DURATION=3 REPEATS=1 CONNECTIONS='64 256' CLOSE_CONNECTIONS=64 MODES=fsync"
  [isolation]="RATE=300 DURATION=8 REPEATS=1"
  [rate]="DURATION=10"
  [backlog]="EVENTS=100000 DRAIN=10"
  [growth]="FLOWS='1 1000' BACKLOGS='0 100000' DURATION=4 STARTS=3"
  [e2e]="DURATION=4 REPEATS=1"
  [nodered]="DURATION=5 REPEATS=1 SETTLE=3"
  [stores]="DURATION=4 REPEATS=1"
)

{
  echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine     $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr)"
  echo "mode        $([[ $QUICK == 1 ]] && echo quick || echo full); outputs in $OUT_DIR"
  echo "load avg    before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT_DIR/header.txt"

for step in $STEPS; do
  env_line=
  [[ $QUICK == 1 ]] && env_line=${QUICK_ENV[$step]:-}
  echo "== $step ${env_line:+($env_line)} $(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg)" >&2
  sync # the last step's deleted state reaches the disk now, not during this step (bench/neighbors.sh)
  start=$(date +%s)
  eval "env $env_line timeout --signal=INT --kill-after=30 $STEP_TIMEOUT \"$ROOT/bench/$step.sh\"" \
    >"$OUT_DIR/$step.txt" 2>"$OUT_DIR/$step.err"
  echo "$step rc=$? seconds=$(($(date +%s) - start))" >>"$OUT_DIR/steps.txt"
done
echo "load avg    after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT_DIR/header.txt"
echo
python3 "$ROOT/bench/all_table.py" "$OUT_DIR"
