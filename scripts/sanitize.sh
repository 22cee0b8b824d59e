#!/usr/bin/env bash
# Builds with sanitizers (clang, -O1) and runs tests under them; any sanitizer report fails the run
# (halt_on_error; suppressions only in .ci/sanitizers/*.supp, each with its reason). CI runs both modes
# (scripts/test.sh; docs/testing.md).
#   scripts/sanitize.sh asan [ctest args...]   AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer):
#                                              the whole tree in build-asan/ and the whole suite; also the
#                                              library-linked fuzz targets (scripts/fuzz.sh runs them)
#   scripts/sanitize.sh tsan [ctest args...]   ThreadSanitizer: the library and only the concurrency-heavy
#                                              test executables (TSAN_TESTS) in build-tsan/, and their tests
#   ASAN_BUILD_ONLY=1 scripts/sanitize.sh asan  build without running the tests (ASAN_TARGETS: only these)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null
root=$PWD
mode=${1:-asan}
[[ $# -gt 0 ]] && shift
CXX=${SANITIZE_CXX:-clang++}
jobs=${JOBS:-$(nproc)}
linker=()
# lld links the large sanitized test executables several times faster than ld.bfd.
command -v ld.lld >/dev/null && linker=(-fuse-ld=lld)
# -O1 keeps the build and the tests fast enough for CI; line tables are enough for symbolized reports.
common="-O1 -gline-tables-only -fno-omit-frame-pointer"
supp=$root/.ci/sanitizers

case "$mode" in
  asan)
    BUILD_DIR=${BUILD_DIR:-build-asan}
    # fuzzer-no-link: coverage for the library-linked fuzz targets built here (tests/fuzz/CMakeLists.txt).
    flags="$common -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link"
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=None \
      -DEVROUTER_BENCH=OFF -DEVROUTER_JEMALLOC=OFF -DEVROUTER_FUZZ=ON -DEVROUTER_WERROR=ON -DCMAKE_CXX_FLAGS="$flags" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined ${linker[*]}" >/dev/null
    # shellcheck disable=SC2086
    cmake --build "$BUILD_DIR" -j"$jobs" ${ASAN_TARGETS:+--target $ASAN_TARGETS}
    [[ "${ASAN_BUILD_ONLY:-0}" == "1" ]] && exit 0
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:check_initialization_order=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp/lsan.supp:print_suppressions=0}
    cd "$BUILD_DIR"
    # The dashboard test drives Chromium against the daemon: a browser test, not a memory test.
    ctest --output-on-failure -j"$jobs" --timeout 600 -E '^dashboard\.' "$@"
    ;;
  tsan)
    BUILD_DIR=${BUILD_DIR:-build-tsan}
    # The executables whose tests run threads against each other: the whole pipeline in-process (listener
    # workers, store group commit, lanes, dispatcher, tail hub, reloads), connections and their guards,
    # the stores, fault injection.
    targets=(${TSAN_TESTS:-test_e2e test_connection test_store test_faults})
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=None \
      -DEVROUTER_BENCH=OFF -DEVROUTER_JEMALLOC=OFF -DEVROUTER_WERROR=ON -DCMAKE_CXX_FLAGS="$common -fsanitize=thread" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread ${linker[*]}" >/dev/null
    cmake --build "$BUILD_DIR" -j"$jobs" --target evrouter "${targets[@]}"
    [[ "${TSAN_BUILD_ONLY:-0}" == "1" ]] && exit 0
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp}
    cd "$BUILD_DIR"
    # Executables not built here leave a <name>_NOT_BUILT placeholder test.
    ctest --output-on-failure -j"$jobs" --timeout 600 -E '_NOT_BUILT$|^dashboard\.' "$@"
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan [ctest args...]" >&2
    exit 2
    ;;
esac
