#!/usr/bin/env bash
# Installs dependencies, builds everything, fuzzes the input parsers briefly and runs the whole test suite
# (what CI runs).
#   scripts/test.sh                 release-ish build in build/
#   BUILD_DIR=build-x scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVROUTER_WERROR=${EVROUTER_WERROR:-ON} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# Fuzz the parsers that face untrusted input for a bounded time (scripts/fuzz.sh; FUZZ_SECONDS=0 skips).
if [[ "${FUZZ_SECONDS:-15}" != "0" ]]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-15} scripts/fuzz.sh
fi
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" --timeout 300
