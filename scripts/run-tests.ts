// Runs every test/**/*.test.ts in its own Node process (a fresh device each, --expose-gc for the
// GC tests), then the kernel tests (KERNEL_TESTS) a second time on a device with only WebGPU's
// default limits (ROSKD_LIMITS=default: what a browser grants), sums uvu's per-file totals and
// ends with the line "N passed, N failed".
// First, a stale shaders/index.gen.ts (a .wgsl file edited since `npm run gen-shaders`) is
// regenerated, so the tests run the shaders on disk; under CI (CI set) it is left alone and
// test/shaders-gen.test.ts fails instead, since the committed module would be wrong.
// Usage: npm test [-- name-filter ...]. The second pass is skipped when ROSKD_LIMITS is already
// set (the whole run then uses it) or ROSKD_TEST_DEFAULT_LIMITS=0.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isFresh, writeShaderModule } from './gen-shaders.ts';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function find(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'fixtures' || f === 'reference' ? [] : find(p);
    return f.endsWith('.test.ts') ? [p] : [];
  });
}

if (!isFresh()) {
  if (process.env.CI) console.log('run-tests: shaders/index.gen.ts is stale (CI: not regenerating; test/shaders-gen.test.ts will fail)');
  else if (writeShaderModule()) console.log('run-tests: regenerated shaders/index.gen.ts from shaders/*.wgsl (commit it with the .wgsl change)');
}

/** Tests that launch every kernel family; they also run under WebGPU's default limits. */
const KERNEL_TESTS = ['conv', 'conv-winograd', 'conv-depthwise-data', 'matmul', 'batchnorm', 'pool', 'core-ops', 'losses', 'kd-loss', 'optim', 'device', 'uniforms'].map((n) => `test/${n}.test.ts`);

const files = find(join(root, 'test'))
  .sort()
  .filter((f) => filters.length === 0 || filters.some((q) => relative(root, f).includes(q))); // relative: a checkout named 'conv' must not match every file
let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];
const t0 = Date.now();
function runFile(file: string, env: Record<string, string>, tag: string): void {
  const name = relative(root, file) + tag;
  const start = Date.now();
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 20 * 60_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', FORCE_COLOR: '0', ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  // A crash or non-zero exit counts as a failure even if uvu printed no summary. (uvu's Total
  // leaves out skipped tests.)
  const bad = total - ok + (r.status !== 0 && total - ok === 0 ? 1 : 0);
  passed += ok;
  skipped += skip;
  failed += bad;
  runs++;
  const lines = out.split('\n').filter((l) => !/artificially reduced|XDG_RUNTIME_DIR/.test(l));
  if (bad > 0) {
    failures.push(name);
    console.log(lines.join('\n'));
    if (r.error) console.log(`  ${name}: ${r.error.message}`);
    if (r.signal) console.log(`  ${name}: killed by ${r.signal}`);
  } else {
    // echoed from passing files: skip reasons, and lines a test marks as its report ("report: ...")
    for (const l of lines) if ((/\bskipp(ed|ing)\b:?\s+(?!\d)/i.test(l) && !/^\s*Skipped:\s+\d/.test(l)) || /^\W*report: /.test(l)) console.log(`  ${l.trim().replace(/^(•\s*)+/, '')}`);
  }
  console.log(`${bad > 0 ? 'FAIL' : 'ok  '} ${name}  (${ok} passed${skip ? `, ${skip} skipped` : ''}${bad ? `, ${bad} failed` : ''}, ${secs}s)`);
}

let runs = 0;
for (const file of files) runFile(file, {}, '');
const secondPass = process.env.ROSKD_LIMITS === undefined && process.env.ROSKD_TEST_DEFAULT_LIMITS !== '0';
if (secondPass) for (const file of files) if (KERNEL_TESTS.includes(relative(root, file))) runFile(file, { ROSKD_LIMITS: 'default' }, ' [ROSKD_LIMITS=default]');
console.log(`\n${files.length} files (${runs} runs) in ${((Date.now() - t0) / 1000).toFixed(0)}s${failures.length ? `; failing: ${failures.join(', ')}` : ''}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
