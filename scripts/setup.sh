#!/usr/bin/env bash
# roskd setup: npm dependencies + a WebGPU adapter. Idempotent; quick when all is in place.
#  1. `npm ci` (or `npm install` without a lock file) when node_modules is missing or stale;
#     then Chromium for the browser test where missing (scripts/setup-browser.sh; never fatal).
#  2. If Dawn already finds an adapter (a real GPU, or lavapipe), stop: nothing else changes.
#  3. Otherwise, on Debian/Ubuntu as root, install a Vulkan loader and Mesa's lavapipe CPU driver
#     (Debian 12: from bookworm-backports, since 12's own Mesa 22.3 is too old for Dawn;
#     newer releases: from main), then check again.
#  4. Without root or on another system: print what to install and exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

say() { printf 'setup: %s\n' "$*"; }

# -- 1. npm dependencies ---------------------------------------------------------------------
stamp=node_modules/.roskd-lock
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm dependencies (npm ci)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
  cp package-lock.json "$stamp" 2>/dev/null || true
else
  say "npm dependencies up to date"
fi

# -- 1b. Chromium for the browser test (self-contained: scripts/setup-browser.sh) -------------
bash scripts/setup-browser.sh

probe() { node scripts/probe-adapter.mjs 2>/dev/null; }

# -- 2. already have an adapter? -------------------------------------------------------------
if desc=$(probe); then
  say "WebGPU adapter found: $desc (nothing to install)"
  exit 0
fi
say "no WebGPU adapter found"

# -- 3. provision lavapipe -------------------------------------------------------------------
. /etc/os-release 2>/dev/null || true
manual() {
  cat >&2 <<TXT
setup: cannot install a WebGPU driver automatically ($1).
Install a Vulkan loader and Mesa >= 24 lavapipe (the CPU Vulkan driver), then rerun 'npm run setup':
  Debian 12 (as root):
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
    apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
  Debian 13 / Ubuntu 24.04 or newer (as root):
    apt-get update && apt-get install -y mesa-vulkan-drivers libvulkan1
  Other systems: install your distribution's Vulkan loader and Mesa Vulkan drivers (lavapipe), or a GPU driver with Vulkan.
TXT
  exit 1
}
case "${ID:-}" in debian|ubuntu) ;; *) manual "unsupported system '${PRETTY_NAME:-unknown}'" ;; esac
[ "$(id -u)" = 0 ] || manual "not running as root"
command -v apt-get >/dev/null || manual "apt-get not found"

export DEBIAN_FRONTEND=noninteractive
if [ "${ID}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  say "Debian 12: enabling bookworm-backports for Mesa 25 (Debian 12's Mesa 22.3 is too old for Dawn)"
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/roskd-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  say "installing mesa-vulkan-drivers and libvulkan1 from ${PRETTY_NAME:-the distribution}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends mesa-vulkan-drivers libvulkan1
fi

if desc=$(probe); then
  say "WebGPU adapter found: $desc"
  exit 0
fi
say "still no WebGPU adapter after installing lavapipe; 'npm run gpu-info' shows Dawn's message" >&2
exit 1
