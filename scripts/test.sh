#!/usr/bin/env bash
# What CI runs (docs/testing.md): installs dependencies, then
#   1. build    the release-ish build (gcc, RelWithDebInfo, warnings as errors) in build/
#   2. test     the whole test suite on it
#   3. asan     the whole tree with AddressSanitizer + UndefinedBehaviorSanitizer (clang -O1) in build-asan/,
#               and the whole suite under them (scripts/sanitize.sh asan)
#   4. fuzz     every libFuzzer target for FUZZ_SECONDS (15) each, on build-asan's library (scripts/fuzz.sh)
#   5. tsan     ThreadSanitizer: the concurrency-heavy test executables (scripts/sanitize.sh tsan)
# Any failure, sanitizer report or fuzz finding fails the run. Stage times are printed at the end.
#   scripts/test.sh                          everything
#   STAGES="build test" scripts/test.sh      only some stages (FUZZ_SECONDS=0 also skips fuzzing)
#   BUILD_DIR=build-x scripts/test.sh        the release build elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
STAGES=${STAGES:-build test asan fuzz tsan}
[[ "${FUZZ_SECONDS:-15}" == "0" ]] && STAGES=${STAGES//fuzz/}
times=()

stage() {
  local name=$1
  shift
  [[ " $STAGES " == *" $name "* ]] || return 0
  echo "=== $name"
  local start=$SECONDS
  "$@"
  times+=("$(printf '%-6s %4d s' "$name" $((SECONDS - start)))")
}

build() {
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVROUTER_WERROR=${EVROUTER_WERROR:-ON} \
    >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

suite() {
  (cd "$BUILD_DIR" && ctest --output-on-failure -j"$(nproc)" --timeout 300)
}

stage build build
stage test suite
stage asan scripts/sanitize.sh asan
stage fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
stage tsan scripts/sanitize.sh tsan
echo "=== stage times"
printf '%s\n' "${times[@]}"
