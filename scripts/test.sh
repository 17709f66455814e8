#!/usr/bin/env bash
# Runs every check Wick has, on a fresh machine too: it installs what is missing first.
#   formatting, UI type checks and unit tests, UI build, clippy (warnings denied), Rust unit and
#   integration tests (tokenizer parity on real models, CLI), generated TypeScript bindings up
#   to date, and end-to-end tests of the real window under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
started=$SECONDS

bash scripts/setup.sh --test

step "cargo fmt --check"
cargo fmt --all -- --check

step "UI: type check, unit tests, build"
(cd ui && npm run check && npm test && npm run build)

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit + integration)"
cargo test --workspace

step "TypeScript bindings match the Rust types"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "Not a git checkout (or git refuses it): cannot check ui/src/lib/bindings." >&2
  exit 1
fi
if ! git diff --exit-code --stat -- ui/src/lib/bindings; then
  echo "ui/src/lib/bindings changed: commit the regenerated bindings (cargo test writes them)." >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- ui/src/lib/bindings)
if [[ -n "$untracked" ]]; then
  echo "New bindings not committed: $untracked" >&2
  exit 1
fi

step "End-to-end: the real window under Xvfb, the release build users run"
# The app scripts/run.sh builds (release), so the window is tested as users get it.
cargo build --release -p wick-app
rm -rf tests/e2e-output
dbus-run-session -- xvfb-run -a -s "-screen 0 1400x900x24" \
  cargo test --workspace --test e2e
echo "screenshots: tests/e2e-output/"

step "All checks passed in $((SECONDS - started)) s"
