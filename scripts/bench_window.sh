#!/usr/bin/env bash
# The window benchmark (BENCHMARKS.md, "The window against the command line"): builds the app and
# the CLI as users get them (release), then drives the real window under Xvfb beside `wick` doing
# the same work. Prints a table; tests/e2e-output/bench.json has the figures.
#   scripts/bench_window.sh            # RAYON_NUM_THREADS sets the threads of both sides
# For A/B runs: WICK_BENCH_ROUNDS=N (default 5), WICK_BENCH_NO_EMBEDDINGS=1 (generation only),
# WICK_BENCH_CSS='...' (a style sheet added to the window before the runs, no rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --test
(cd ui && npm run build)
cargo build --release -p wick-app -p wick-engine --bins
lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | sed 's/^Flags:.*\(avx512[a-z_]*\).*/AVX-512: yes/' || true
dbus-run-session -- xvfb-run -a -s "-screen 0 1400x900x24" \
  cargo test -p wick-tests --test e2e -- --bench
