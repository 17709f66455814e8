#!/usr/bin/env bash
# Installs what Wick needs on a fresh Debian/Ubuntu machine, idempotently:
#   system packages (Tauri's WebKitGTK stack; with --test also Xvfb and WebKitWebDriver),
#   the UI's npm packages, and the starter/test models (scripts/fetch_models.py).
# Used by scripts/run.sh and scripts/test.sh; safe to run again (it skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# Tauri v2 on Linux: WebKitGTK 4.1 and friends.
packages=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
  libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev build-essential pkg-config libssl-dev
  xdg-utils file)
# End-to-end tests: a virtual display, the WebDriver for WebKitGTK, a session bus, fonts.
test_packages=(xvfb xauth webkit2gtk-driver dbus-x11 fonts-dejavu-core fonts-noto-color-emoji
  fonts-noto-cjk imagemagick)
((want_test)) && packages+=("${test_packages[@]}")

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "Missing system packages: ${missing[*]}" >&2
    echo "This script installs them with apt-get (Debian/Ubuntu); see README.md for macOS and Windows." >&2
    exit 1
  fi
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  step "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "Installing UI packages (npm ci)"
if [[ ! -d ui/node_modules ]] || [[ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]]; then
  (cd ui && npm ci --no-audit --no-fund)
else
  echo "ui/node_modules is up to date"
fi

step "Fetching starter and test models into ${WICK_MODELS_DIR:-~/.cache/wick/models}"
python3 scripts/fetch_models.py
