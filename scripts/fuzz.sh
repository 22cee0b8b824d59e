#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in tests/fuzz/ (clang, ASan + UBSan), each for a bounded time,
# starting from its seed corpus in tests/fuzz/corpus/<target>/. A finding (crash, sanitizer report, or a
# disagreement the target checks) fails the run and leaves the input in build-fuzz/findings/.
# Two ways to build a target:
#   direct   json_selection pattern mapping verifier: only the code under test is compiled, directly into
#            build-fuzz/ (a target builds in seconds; no other build needed). `scripts/fuzz.sh` and
#            `scripts/fuzz.sh <one of these>`.
#   tree     every target (the four above and http_request, config) as fuzz_<name> in the clang sanitizer
#            build (build-asan/, compiled with fuzzer coverage by scripts/sanitize.sh asan): free once that
#            build exists, a full build otherwise. `scripts/fuzz.sh all`, `scripts/fuzz.sh library`; CI's
#            fuzz stage runs `all` right after the asan stage has built the tree.
# Targets run FUZZ_JOBS (default: the number of cores) at a time, each single-threaded.
#   scripts/fuzz.sh                   the direct targets, FUZZ_SECONDS (default 20) each
#   scripts/fuzz.sh all               every target, from the sanitizer build
#   scripts/fuzz.sh library           only http_request and config, from the sanitizer build
#   scripts/fuzz.sh pattern 600       one target for ten minutes
set -euo pipefail
cd "$(dirname "$0")/.."
out=${FUZZ_DIR:-build-fuzz}
lib_build=${FUZZ_BUILD_DIR:-build-asan}
seconds=${2:-${FUZZ_SECONDS:-20}}
jobs=${FUZZ_JOBS:-$(nproc)}
direct=(json_selection pattern mapping verifier)
library=(http_request config)
targets=("${direct[@]}")
from_tree=0
if [[ $# -ge 1 ]]; then
  case "$1" in
    all) targets=("${direct[@]}" "${library[@]}") from_tree=1 ;;
    library) targets=("${library[@]}") from_tree=1 ;;
    *) targets=("$1") ;;
  esac
fi
is_library() { [[ " ${library[*]} " == *" $1 "* ]]; }
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

# Build: the tree's targets in one ninja call (nothing to do when the asan stage has just built them).
declare -A binary
tree_targets=()
for t in "${targets[@]}"; do
  if ((from_tree)) || is_library "$t"; then
    tree_targets+=("fuzz_$t")
    binary[$t]="$lib_build/tests/fuzz/fuzz_$t"
  fi
done
if ((${#tree_targets[@]} > 0)); then
  echo "fuzz: building ${tree_targets[*]} in $lib_build"
  BUILD_DIR=$lib_build ASAN_BUILD_ONLY=1 ASAN_TARGETS="${tree_targets[*]}" scripts/sanitize.sh asan
fi
for t in "${targets[@]}"; do
  [[ -n "${binary[$t]:-}" ]] && continue
  echo "fuzz: building $t"
  binary[$t]="$out/$t"
  # shellcheck disable=SC2046
  "$CXX" "${flags[@]}" -o "${binary[$t]}" "tests/fuzz/${t}_fuzz.cpp" $(sources "$t")
done

# Run: FUZZ_JOBS at a time. The working corpus grows in build-fuzz/; the seeds in the repository are only
# read. Standard input is closed: a fuzzed config may name /dev/stdin as a file.
run() {
  local t=$1 corpus="$out/corpus-$1" status=0
  mkdir -p "$corpus"
  "${binary[$t]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$PWD/$out/findings/$t-" -print_final_stats=1 "$PWD/$corpus" "$PWD/tests/fuzz/corpus/$t" \
    </dev/null >"$out/$t.log" 2>&1 || status=$?
  echo "fuzz: $t: $(grep -E '^stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}') runs," \
    "peak RSS $(grep -E '^stat::peak_rss_mb' "$out/$t.log" | awk '{print $2}') MB"
  if [[ $status -ne 0 ]] || ls "$out/findings/$t-"* >/dev/null 2>&1; then
    grep -E "ERROR|SUMMARY|Test unit written" "$out/$t.log" >&2 || true
    echo "fuzz: $t FOUND A PROBLEM (exit $status); log: $out/$t.log" >&2
    return 1
  fi
}
echo "fuzz: running ${targets[*]} for ${seconds}s each, $jobs at a time"
failed=0
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run "$t" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done
if ((failed)); then
  exit 1
fi
echo "fuzz: no finding"
