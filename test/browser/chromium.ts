// Finding and launching Debian's Chromium for the page tests (browser, web) and the browser bench.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The browser binary itself (not /usr/bin/chromium: that shell wrapper fails on /dev/shm in containers). */
export function findChromium(): string | null {
  if (process.env.ROSKD_CHROMIUM) return process.env.ROSKD_CHROMIUM;
  const listed = spawnSync('dpkg', ['-L', 'chromium'], { encoding: 'utf8' });
  const fromDpkg = listed.status === 0 ? listed.stdout.split('\n').find((l) => /\/lib\/chromium\/chromium$/.test(l)) : undefined;
  for (const p of [fromDpkg, '/usr/lib/chromium/chromium']) if (p && existsSync(p)) return p;
  return null;
}

/** Headless Chromium with WebGPU (SwiftShader without a GPU). */
export function launchChromium(executablePath: string, opts: { webgpu?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    chromiumSandbox: false,
    args: [...(opts.webgpu === false ? [] : ['--enable-unsafe-webgpu']), '--disable-dev-shm-usage', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
