#!/usr/bin/env bash
# Builds Wick and opens its window, installing whatever is missing first.
#   scripts/run.sh            # set up, build, run
# Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

printf '\n\033[1m==> Building the UI and the app\033[0m\n'
(cd ui && npm run build)
# The dev profile optimises dependencies (candle, tokenizers) and keeps our own crates quick to
# rebuild; the app serves ui/dist through Tauri's custom protocol.
cargo build -p wick-app

printf '\n\033[1m==> Starting Wick\033[0m\n'
exec "${CARGO_TARGET_DIR:-target}/debug/wick-app" "$@"
