#!/usr/bin/env bash
# Builds Wick and opens its window, installing whatever is missing first.
#   scripts/run.sh            # set up, build, run
# Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

printf '\n\033[1m==> Building the UI and the app (release: the build BENCHMARKS.md measures)\033[0m\n'
(cd ui && npm run build)
# Release, as every speed figure in BENCHMARKS.md is measured: the engine's kernels run several
# times slower in the dev profile. The app serves ui/dist through Tauri's custom protocol.
cargo build --release -p wick-app

printf '\n\033[1m==> Starting Wick\033[0m\n'
exec "${CARGO_TARGET_DIR:-target}/release/wick-app" "$@"
