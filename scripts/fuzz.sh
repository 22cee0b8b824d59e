#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan), each for a bounded time,
# starting from its seed corpus in tests/fuzz/corpus/<target>/. A finding (crash, sanitizer report, or a
# disagreement the target checks) fails the run and leaves the input in build-fuzz/findings/.
#   scripts/fuzz.sh                   every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh pattern 600       one target for ten minutes
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FUZZ_DIR:-build-fuzz}
seconds=${2:-${FUZZ_SECONDS:-20}}
targets=(json_selection pattern mapping verifier)
[[ $# -ge 1 ]] && targets=("$1")
CXX=${FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz.sh: $CXX not found (scripts/bootstrap.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$out/findings"
# Only the code under test is compiled, directly: a target builds in seconds.
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
for t in "${targets[@]}"; do
  echo "fuzz: building $t"
  # shellcheck disable=SC2046
  "$CXX" "${flags[@]}" -o "$out/$t" "tests/fuzz/${t}_fuzz.cpp" $(sources "$t")
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  echo "fuzz: running $t for ${seconds}s"
  # The working corpus grows in build-fuzz/; the seeds in the repository are only read.
  status=0
  "$out/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$out/findings/$t-" -print_final_stats=1 "$corpus" "tests/fuzz/corpus/$t" \
    >"$out/$t.log" 2>&1 || status=$?
  grep -E "^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)" "$out/$t.log" || true
  if [[ $status -ne 0 ]] || ls "$out/findings/$t-"* >/dev/null 2>&1; then
    grep -E "ERROR|SUMMARY|Test unit written" "$out/$t.log" >&2 || true
    echo "fuzz: $t FOUND A PROBLEM (exit $status); log: $out/$t.log" >&2
    exit 1
  fi
done
echo "fuzz: no finding"
