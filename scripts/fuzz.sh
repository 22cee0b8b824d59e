#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan), each for a bounded time,
# starting from its seed corpus in tests/fuzz/corpus/<target>/. A finding (crash, sanitizer report, or a
# disagreement the target checks) fails the run and leaves the input in build-fuzz/findings/.
# Two kinds of target:
#   direct   json_selection pattern mapping verifier: only the code under test is compiled, directly
#            (a target builds in seconds). These run in CI.
#   library  http_request config: they link the whole library of the clang sanitizer build (build-asan/,
#            compiled with fuzzer coverage by scripts/sanitize.sh asan), which costs a full build the first
#            time. Not in CI's default stages yet (docs/testing.md).
#   scripts/fuzz.sh                   the direct targets, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh all               every target (library: only the library-linked ones)
#   scripts/fuzz.sh pattern 600       one target for ten minutes
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FUZZ_DIR:-build-fuzz}
lib_build=${FUZZ_BUILD_DIR:-build-asan}
seconds=${2:-${FUZZ_SECONDS:-20}}
direct=(json_selection pattern mapping verifier)
library=(http_request config)
targets=("${direct[@]}")
if [[ $# -ge 1 ]]; then
  case "$1" in
    all) targets=("${direct[@]}" "${library[@]}") ;;
    library) targets=("${library[@]}") ;;
    *) targets=("$1") ;;
  esac
fi
CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz.sh: $CXX not found (scripts/bootstrap.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$out/findings"
pattern_srcs=(src/pattern/pattern.cpp src/pattern/selection.cpp src/pattern/wildcard.cpp src/pattern/cidr.cpp)
sources() {
  case "$1" in
    json_selection | pattern) echo "${pattern_srcs[@]}" ;;
    mapping) echo src/mapping/*.cpp src/event/event.cpp -lcrypto ;;
    verifier) echo src/source/*.cpp src/config/secret.cpp src/common/crypto.cpp src/event/event.cpp \
      src/config/diagnostic.cpp -lcrypto ;;
  esac
}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc
  -DBOOST_BEAST_USE_STD_STRING_VIEW)
is_library() { [[ " ${library[*]} " == *" $1 "* ]]; }
wanted_library=()
for t in "${targets[@]}"; do is_library "$t" && wanted_library+=("fuzz_$t"); done
if ((${#wanted_library[@]} > 0)); then
  echo "fuzz: building ${wanted_library[*]} in $lib_build"
  BUILD_DIR=$lib_build ASAN_BUILD_ONLY=1 ASAN_TARGETS="${wanted_library[*]}" scripts/sanitize.sh asan
fi
for t in "${targets[@]}"; do
  if is_library "$t"; then
    binary="$lib_build/tests/fuzz/fuzz_$t"
  else
    echo "fuzz: building $t"
    binary="$out/$t"
    # shellcheck disable=SC2046
    "$CXX" "${flags[@]}" -o "$binary" "tests/fuzz/${t}_fuzz.cpp" $(sources "$t")
  fi
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  echo "fuzz: running $t for ${seconds}s"
  # The working corpus grows in build-fuzz/; the seeds in the repository are only read. Standard input is
  # closed: a fuzzed config may name /dev/stdin as a file.
  status=0
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$PWD/$out/findings/$t-" -print_final_stats=1 "$PWD/$corpus" "$PWD/tests/fuzz/corpus/$t" \
    </dev/null >"$out/$t.log" 2>&1 || status=$?
  grep -E "^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)" "$out/$t.log" || true
  if [[ $status -ne 0 ]] || ls "$out/findings/$t-"* >/dev/null 2>&1; then
    grep -E "ERROR|SUMMARY|Test unit written|fuzz: " "$out/$t.log" >&2 || true
    echo "fuzz: $t FOUND A PROBLEM (exit $status); log: $out/$t.log" >&2
    exit 1
  fi
done
echo "fuzz: no finding"
