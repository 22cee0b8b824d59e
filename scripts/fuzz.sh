#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan), each for a bounded time,
# starting from its seed corpus in tests/fuzz/corpus/<target>/. The targets link the library of the
# sanitizer build (build-asan/, compiled with fuzzer coverage by scripts/sanitize.sh asan): when CI has
# built it already, only the small target files are compiled here. A finding (crash, sanitizer report, or
# a disagreement the target checks) fails the run and leaves the input in build-fuzz/findings/.
#   scripts/fuzz.sh                   every target, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh pattern 600       one target for ten minutes
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FUZZ_DIR:-build-fuzz}
lib_build=${FUZZ_BUILD_DIR:-build-asan}
seconds=${2:-${FUZZ_SECONDS:-20}}
targets=(json_selection pattern mapping verifier http_request config)
[[ $# -ge 1 ]] && targets=("$1")
if ! command -v "${SANITIZE_CXX:-clang++}" >/dev/null; then
  echo "fuzz.sh: clang++ not found (scripts/bootstrap.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$out/findings"
echo "fuzz: building ${targets[*]} in $lib_build"
BUILD_DIR=$lib_build ASAN_BUILD_ONLY=1 ASAN_TARGETS="${targets[*]/#/fuzz_}" scripts/sanitize.sh asan
for t in "${targets[@]}"; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  echo "fuzz: running $t for ${seconds}s"
  # The working corpus grows in build-fuzz/; the seeds in the repository are only read. Standard input is
  # closed: a fuzzed config may name /dev/stdin as a file.
  status=0
  "$lib_build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
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
