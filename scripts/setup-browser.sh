#!/usr/bin/env bash
# Chromium for the browser test (test/browser.test.ts runs the engine in a page, on WebGPU).
# Called by scripts/setup.sh; on its own: `bash scripts/setup-browser.sh`. Installs Debian's
# `chromium` package where no browser binary exists and apt can (root, Debian). Never fails the
# setup: without a browser the browser test is skipped with a printed reason (under CI it fails).
# ROSKD_SKIP_BROWSER=1 skips this step.
set -uo pipefail

say() { printf 'setup: %s\n' "$*"; }

# The browser binary itself: the /usr/bin/chromium shell wrapper fails on /dev/shm in containers.
chromium_binary() {
  local p
  p=$(dpkg -L chromium 2>/dev/null | grep -E '/lib/chromium/chromium$' | head -n1)
  [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
  [ -x /usr/lib/chromium/chromium ] && { echo /usr/lib/chromium/chromium; return 0; }
  return 1
}

if [ "${ROSKD_SKIP_BROWSER:-}" = 1 ]; then
  say "browser test: ROSKD_SKIP_BROWSER=1, not installing Chromium"
  exit 0
fi
if bin=$(chromium_binary); then
  say "browser test: Chromium found ($bin)"
  exit 0
fi
. /etc/os-release 2>/dev/null || true
why=""
if [ "${ID:-}" != debian ]; then why="Debian's chromium package is needed (Ubuntu's is a snap); set ROSKD_CHROMIUM to a Chromium binary instead"
elif [ "$(id -u)" != 0 ]; then why="not root; run: apt-get install -y chromium"
elif ! command -v apt-get >/dev/null; then why="apt-get not found"
fi
if [ -n "$why" ]; then
  say "browser test: no Chromium and cannot install it ($why); the browser test will be skipped"
  exit 0
fi
say "browser test: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium; }
if bin=$(chromium_binary); then
  say "browser test: Chromium installed ($bin)"
else
  say "browser test: installing chromium failed; the browser test will be skipped (CI: it fails)" >&2
fi
exit 0
