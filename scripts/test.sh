#!/usr/bin/env bash
# What CI runs (docs/testing.md): installs dependencies, then
#   1. build    the release-ish build (gcc, RelWithDebInfo, warnings as errors) in build/
#   2. test     the whole test suite on it
#   3. asan     the whole tree with AddressSanitizer + UndefinedBehaviorSanitizer (clang -O1, -Werror, fuzzer
#               coverage) in build-asan/, and the whole suite under them (scripts/sanitize.sh asan)
#   4. fuzz     every libFuzzer target (JSON scanner, patterns, mappings, verifiers, HTTP request path, config
#               loader) for FUZZ_SECONDS (15) each, two at a time, as built by the asan stage
#               (scripts/fuzz.sh all); without the asan stage, the four directly compiled ones (scripts/fuzz.sh)
#   5. tsan     ThreadSanitizer: the concurrency-heavy test executables (scripts/sanitize.sh tsan)
# Any failure, sanitizer report or fuzz finding fails the run; the stages after a failed one still run
# (except after a failed build), so one run reports every problem. Stage times are printed at the end.
# CI's budget is 30 minutes: a stage that would not finish within BUDGET_MINUTES (default 28; 0 = no limit)
# by its expected duration is skipped, and the skip is printed. Expected durations scale with this machine's
# `build` stage (CPU cost of each build relative to it, measured: docs/testing.md).
#   scripts/test.sh                          what CI runs
#   STAGES="build test" scripts/test.sh      only some stages (FUZZ_SECONDS=0 also skips fuzzing)
#   BUILD_DIR=build-x scripts/test.sh        the release build elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
STAGES=${STAGES:-build test asan fuzz tsan}
[[ "${FUZZ_SECONDS:-15}" == "0" ]] && STAGES=${STAGES//fuzz/}
BUDGET_MINUTES=${BUDGET_MINUTES:-28}
times=()
failed=()
# Expected seconds of each stage; refined from the build stage's own time once it has run.
# Unity builds (docs/testing.md): about 950 CPU s for build, so 8-9 minutes on 2 idle cores.
# Measured on a clean clone (docs/testing.md, "Stage times"): build 379 s, then asan 446 s of build + 135 s of
# suite, tsan about 230 s of build + 105 s of suite; fuzz 6 x 15 s two at a time.
declare -A expected=([build]=540 [test]=120 [asan]=800 [fuzz]=180 [tsan]=540)
rescale() {
  local b=$1
  expected[asan]=$((b * 120 / 100 + 180)) # the same tree at about 1.15x the CPU, the suite under ASan (2-3 min)
  expected[tsan]=$((b * 60 / 100 + 150))  # the library and 4 test executables, and their tests (about 2 min)
}

stage() {
  local name=$1
  shift
  [[ " $STAGES " == *" $name "* ]] || return 0
  if ((BUDGET_MINUTES > 0 && SECONDS + expected[$name] > BUDGET_MINUTES * 60)); then
    echo "=== $name SKIPPED: ${SECONDS} s elapsed + ${expected[$name]} s expected > budget of $BUDGET_MINUTES min"
    times+=("$(printf '%-6s SKIPPED (time budget)' "$name")")
    return 0
  fi
  echo "=== $name ($(date -u +%H:%M:%S) UTC)"
  local start=$SECONDS status=0
  "$@" || status=$?
  local took=$((SECONDS - start))
  if ((status != 0)); then
    times+=("$(printf '%-6s %4d s  FAILED (exit %d)' "$name" "$took" "$status")")
    failed+=("$name")
    # Without a build there is nothing to test; a later stage still runs after a failed test stage, so
    # that one run reports every problem.
    [[ $name == build ]] && finish
    return 0
  fi
  [[ $name == build ]] && rescale "$took"
  [[ $name == asan ]] && expected[fuzz]=80 && fuzz_targets=all
  times+=("$(printf '%-6s %4d s' "$name" "$took")")
}

finish() {
  echo "=== stage times"
  printf '%s\n' "${times[@]}"
  if ((${#failed[@]} > 0)); then
    echo "=== FAILED: ${failed[*]}"
    exit 1
  fi
  exit 0
}

build() {
  # Test executables with line tables only (-g1: backtraces keep functions and lines, not locals): a third
  # less CPU for them (docs/testing.md, "Stage times"); the library and the daemon keep -g.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVROUTER_WERROR=${EVROUTER_WERROR:-ON} \
    -DEVROUTER_TEST_DEBUG_INFO=-g1 >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

suite() {
  (cd "$BUILD_DIR" && ctest --output-on-failure -j"$(nproc)" --timeout 300)
}

# Every fuzz target from the sanitizer tree once the asan stage has built it; otherwise the direct ones.
fuzz_targets=
stage build build
stage test suite
stage asan scripts/sanitize.sh asan
stage fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh $fuzz_targets
stage tsan scripts/sanitize.sh tsan
finish
