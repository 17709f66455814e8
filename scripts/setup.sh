#!/usr/bin/env bash
# Installs what Wick needs on a fresh Debian/Ubuntu machine, idempotently:
#   system packages (Tauri's WebKitGTK stack; with --test also Xvfb and WebKitWebDriver),
#   the UI's npm packages, and the starter/test models (scripts/fetch_models.py).
# Used by scripts/run.sh and scripts/test.sh; safe to run again (it skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# Tauri v2 on Linux: WebKitGTK 4.1 and friends; python3-venv for the model converter's venv.
packages=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
  libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev build-essential pkg-config libssl-dev
  xdg-utils file ca-certificates git python3-venv)
# End-to-end tests: a virtual display, the WebDriver for WebKitGTK, a session bus, and fonts
# with emoji and CJK so screenshots show what a person would see.
test_packages=(xvfb xauth webkit2gtk-driver dbus-x11 fonts-dejavu-core fonts-noto-color-emoji
  fonts-noto-cjk)
((want_test)) && packages+=("${test_packages[@]}")

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The toolchains are not installed here: say clearly which one is missing or too old.
need() {  # need TOOL MIN_VERSION VERSION_COMMAND...
  local tool=$1 min=$2 have
  shift 2
  if ! command -v "$tool" >/dev/null; then
    echo "Wick needs $tool $min or newer, and it is not installed (see README.md)." >&2
    exit 1
  fi
  have=$("$@" 2>/dev/null | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n 1)
  if [[ "$(printf '%s\n%s\n' "$min" "$have" | sort -V | head -n 1)" != "$min" ]]; then
    echo "Wick needs $tool $min or newer; this machine has $have (see README.md)." >&2
    exit 1
  fi
}
need cargo 1.90 cargo --version
need node 20.19 node --version
need python3 3.11 python3 --version

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
