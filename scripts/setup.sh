#!/usr/bin/env bash
# roskd setup: npm dependencies + a WebGPU adapter. Idempotent; quick when all is in place.
#  1. `npm ci` (or `npm install` without a lock file) when node_modules is missing or stale;
#     then Chromium for the browser test where missing (scripts/setup-browser.sh; never fatal).
#  2. If Dawn already finds an adapter (a real GPU, or lavapipe), stop: nothing else changes.
#  3. Otherwise, on Debian/Ubuntu, install a Vulkan loader and Mesa's lavapipe CPU driver
#     (Debian 12: from bookworm-backports, since 12's own Mesa 22.3 is too old for Dawn;
#     newer releases: from main), then check again. Only this step needs root: as a normal
#     user it runs its apt commands through sudo when sudo works.
#  4. Without root or sudo, or on another system: print what to install and exit non-zero.
# Run it as yourself: under `sudo npm run setup`, npm still runs as the invoking user so that
# node_modules is never root-owned.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

say() { printf 'setup: %s\n' "$*"; }

# -- 0. Node.js >= 20 (Debian 12's own nodejs package is 18) -----------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  found=$(node --version 2>/dev/null || echo 'no node on PATH')
  cat >&2 <<TXT
setup: roskd needs Node.js >= 20; found: $found.
  Debian 12's apt package is Node 18, too old: install Node 20 or newer from nodejs.org,
  NodeSource (deb.nodesource.com) or nvm, make sure 'node' on PATH is that one, and rerun.
TXT
  exit 1
fi

# npm as the user who ran `sudo`, never as root, when setup was started with sudo
as_user() {
  if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "${SUDO_USER}" != root ]; then
    sudo -u "$SUDO_USER" env "PATH=$PATH" HOME="$(getent passwd "$SUDO_USER" | cut -d: -f6)" "$@"
  else
    "$@"
  fi
}

# -- 1. npm dependencies ---------------------------------------------------------------------
stamp=node_modules/.roskd-lock
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm dependencies (npm ci)"
  if [ -f package-lock.json ]; then as_user npm ci --no-audit --no-fund; else as_user npm install --no-audit --no-fund; fi
  as_user cp package-lock.json "$stamp" 2>/dev/null || true
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
. scripts/apt-backports.sh
bookworm=false
[ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ] && bookworm=true
manual() {
  {
    printf 'setup: cannot install a WebGPU driver automatically (%s).\n' "$1"
    echo "Install a Vulkan loader and Mesa >= 24 lavapipe (the CPU Vulkan driver), then rerun 'npm run setup':"
    echo '  Debian 12 (as root):'
    if $bookworm && apt_has_binary_suite bookworm-backports; then echo '    (bookworm-backports is already configured)'
    else echo "    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/roskd-backports.list"; fi
    echo '    apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1'
    echo '  Debian 13 / Ubuntu 24.04 or newer (as root):'
    echo '    apt-get update && apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1'
    echo '  Other systems: install your distribution'"'"'s Vulkan loader and Mesa Vulkan drivers (lavapipe), or a GPU driver with Vulkan.'
  } >&2
  exit 1
}
case "${ID:-}" in debian|ubuntu) ;; *) manual "unsupported system '${PRETTY_NAME:-unknown}'" ;; esac
command -v apt-get >/dev/null || manual "apt-get not found"

# Only this step needs root: as root directly, else through sudo when it works (no password
# needed, or a terminal to ask for one), else print the commands.
if [ "$(id -u)" = 0 ]; then
  asroot() { "$@"; }
elif command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
  say "the driver step needs root: running its apt commands with sudo"
  asroot() { sudo "$@"; }
else
  manual "not root, and sudo is not available"
fi

export DEBIAN_FRONTEND=noninteractive
if $bookworm; then
  say "Debian 12: enabling bookworm-backports for Mesa 25 (Debian 12's Mesa 22.3 is too old for Dawn)"
  # apt's own view of the sources (scripts/apt-backports.sh): a commented-out, deb-src-only or
  # disabled entry does not count
  if ! apt_has_binary_suite bookworm-backports; then
    say "adding /etc/apt/sources.list.d/roskd-backports.sources"
    asroot tee /etc/apt/sources.list.d/roskd-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  asroot env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
  if ! apt_suite_fetched bookworm-backports; then
    say "apt-get update did not fetch a bookworm-backports package index (network, proxy or mirror?); 'apt-cache policy' lists what apt has" >&2
    exit 1
  fi
  asroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  say "installing mesa-vulkan-drivers and libvulkan1 from ${PRETTY_NAME:-the distribution}"
  asroot env DEBIAN_FRONTEND=noninteractive apt-get update -q
  asroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mesa-vulkan-drivers libvulkan1
fi

if desc=$(probe); then
  say "WebGPU adapter found: $desc"
  exit 0
fi
say "still no WebGPU adapter after installing lavapipe; 'npm run gpu-info' shows Dawn's message" >&2
exit 1
