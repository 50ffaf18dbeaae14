// The matmul kernel on SwiftShader, the page's adapter, from Node: runs test/swiftshader/matmul.sw.ts
// in a child process whose Vulkan loader sees only Chromium's SwiftShader ICD (VK_ICD_FILENAMES),
// so the SwiftShader tiles run with their 4-lane shared loads (on lavapipe they cannot). Skipped,
// with the reason printed, where Chromium's libvk_swiftshader.so is not installed
// (scripts/setup-browser.sh installs Debian's chromium).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ICD = process.env.ROSKD_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';
const child = fileURLToPath(new URL('./swiftshader/matmul.sw.ts', import.meta.url));

test('matmul on SwiftShader (Node + Dawn + Chromium\'s SwiftShader ICD): SwiftShader tiles against float64', () => {
  if (!existsSync(ICD)) {
    console.log(`skipped: no SwiftShader ICD at ${ICD} (install chromium, or set ROSKD_SWIFTSHADER_ICD)`);
    return;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', child], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
    env: { ...process.env, VK_ICD_FILENAMES: ICD, ROSKD_ADAPTER: '', ROSKD_BACKEND: 'vulkan', FORCE_COLOR: '0' },
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? -1);
  const passed = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? -2);
  if (r.status !== 0 || total !== passed || total < 5) console.log(out);
  assert.ok(/adapter: swiftshader, subgroups 4/.test(out), 'the child did not run on SwiftShader with 4-lane subgroups');
  assert.is(r.status, 0, 'SwiftShader matmul checks failed (output above)');
  assert.is(passed, total);
  assert.ok(total >= 5, `expected the 5 SwiftShader tests, got ${total}`);
});

test.run();
