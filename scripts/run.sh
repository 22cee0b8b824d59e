#!/usr/bin/env bash
# Installs dependencies, builds a release binary at build/evrouter and runs the daemon with the sample
# config and flows. Set SHOPIFY_WEBHOOK_SECRET (required) and OUTSYSTEMS_BASE_URL first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --build  # no test-only packages (the headless browser) to run the daemon
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target evrouter
if [[ -z "${SHOPIFY_WEBHOOK_SECRET:-}" ]]; then
  echo "run.sh: SHOPIFY_WEBHOOK_SECRET is not set (the secret from your Shopify app's webhook settings)." >&2
  echo "        e.g. SHOPIFY_WEBHOOK_SECRET=... scripts/run.sh" >&2
  exit 1
fi
exec build/evrouter serve --config config/evrouter.yaml "$@"
