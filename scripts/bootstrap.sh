#!/usr/bin/env bash
# Installs every Debian package evrouter needs to build, test and benchmark.
# Used by README.md, .ci/run and docker/Dockerfile. Idempotent.
#   scripts/bootstrap.sh            build + test dependencies (the dashboard test's headless browser too)
#   scripts/bootstrap.sh --build    only what building needs (the Docker build stage)
#   scripts/bootstrap.sh --runtime  only what the built binary needs at run time
set -euo pipefail

# runtime: a package for every library the daemon links (tests/config/docker_test.cpp checks it).
runtime=(libssl3 libsqlite3-0 libspdlog1.10 libyaml-cpp0.7 libfmt9 libnats3.4 libjemalloc2 ca-certificates curl)
build=(build-essential cmake ninja-build pkg-config git ccache
  libboost-dev libboost-system-dev libssl-dev libsqlite3-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libjemalloc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libnats-dev nats-server
  python3 curl wrk nginx-light
  clang libclang-rt-14-dev lld)
test_only=(chromium python3-websocket)

want=("${build[@]}" "${test_only[@]}")
[[ "${1:-}" == "--build" ]] && want=("${build[@]}")
[[ "${1:-}" == "--runtime" ]] && want=("${runtime[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "bootstrap: dependencies present (${#missing[@]} installed now)"
