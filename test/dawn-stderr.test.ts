// Dawn's two "artificially reduced" start-up warnings stay out of every command's stderr (they are
// printed by native code, so the commands relaunch themselves with their native stderr filtered);
// ROSKD_VERBOSE=1 shows them. The filter drops exactly those lines and forwards partial lines
// (live progress) at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { filterDawnNoise, isDawnNoise } from '../engine/node/dawn-stderr.ts';
import { encodePng } from '../kd/data/image.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'roskd-dawn-stderr-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const W1 = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
const W2 = 'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
const NOISE = /artificially reduced/;

test('filter: exactly the two warnings are dropped, in any chunking; other text passes unchanged', async () => {
  assert.ok(isDawnNoise(W1) && isDawnNoise(W2));
  assert.not.ok(isDawnNoise('Warning: maxDynamicUniformBuffersPerPipelineLayout is 8'));
  assert.not.ok(isDawnNoise('Warning: something else artificially reduced from 3 to 2 to fit dynamic offset allocation limit.'));
  const text = `${W1}\n${W2}\nerror: a real problem\n\r\x1b[2K[teachers] epoch 1/3\r\x1b[2K[teachers] epoch 2/3\nWarning: other\nWar`;
  const want = 'error: a real problem\n\r\x1b[2K[teachers] epoch 1/3\r\x1b[2K[teachers] epoch 2/3\nWarning: other\nWar';
  for (const cut of [1, 3, 7, 19, 64, text.length]) {
    const src = new PassThrough();
    let out = '';
    const done = filterDawnNoise(src, { write: (s: string) => (out += s) });
    for (let i = 0; i < text.length; i += cut) src.write(text.slice(i, i + cut));
    src.end();
    await done;
    assert.is(out, want, `chunks of ${cut}`);
  }
  // a live progress line (no newline yet) is forwarded before its line ends
  const src = new PassThrough();
  let out = '';
  void filterDawnNoise(src, { write: (s: string) => (out += s) });
  src.write('\r[student] step 3/9');
  await new Promise((r) => setImmediate(r));
  assert.is(out, '\r[student] step 3/9');
  src.end();
});

const env = (extra: Record<string, string> = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.ROSKD_STDERR_FILTERED; // the test runner's own state must not leak in
  delete e.ROSKD_REAL_STDERR_FD;
  if (!('ROSKD_VERBOSE' in extra)) delete e.ROSKD_VERBOSE;
  return e;
};
const run = (file: string, args: string[], extra?: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', file, ...args], { cwd: repo, encoding: 'utf8', env: env(extra), timeout: 240_000 });

let lavapipe = false;

test('relaunch: the child filters fd 2 writes, keeps JS and other native lines, exit code passes; no marker leaks to grandchildren', () => {
  const r = run('test/fixtures/dawn-stderr-child.ts', ['7']);
  assert.is(r.status, 7, r.stderr);
  const seen = JSON.parse(r.stdout);
  assert.is.not(seen.ppid, process.pid, 'ran in a relaunched child');
  assert.is(seen.filteredEnv, null, 'ROSKD_STDERR_FILTERED removed from the environment commands started later inherit');
  assert.is(seen.fdEnv, null);
  assert.not.match(r.stderr, NOISE);
  assert.match(r.stderr, /native: kept\n/);
  assert.match(r.stderr, /js: kept\n/);
  const v = run('test/fixtures/dawn-stderr-child.ts', [], { ROSKD_VERBOSE: '1' });
  assert.is(v.status, 0);
  assert.is(JSON.parse(v.stdout).ppid, process.pid, 'ROSKD_VERBOSE=1: one process');
  assert.match(v.stderr, NOISE);
});

test('gpu-info: no warning by default; ROSKD_VERBOSE=1 shows them (on adapters that print them)', () => {
  const r = run('scripts/gpu-info.ts', []);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^backend:/m);
  assert.not.match(r.stderr, NOISE, r.stderr);
  lavapipe = /llvmpipe|lavapipe/i.test(r.stdout);
  const v = run('scripts/gpu-info.ts', [], { ROSKD_VERBOSE: '1' });
  assert.is(v.status, 0, v.stderr);
  if (lavapipe) assert.ok(v.stderr.includes(W1) && v.stderr.includes(W2), `verbose stderr: ${v.stderr}`);
});

test('train, predict and attack: stderr has no warning; exit codes pass through', () => {
  const out = join(tmp, 'run');
  const t = run('kd/train.ts', ['--out', out, '--synthetic-n', '24', '--size', '16', '--teachers', '1', '--teacher-archs', 'resnet18', '--teacher-width', '0.0625', '--student-width', '0.0625', '--epochs', '1', '--methods', 'ce', '--batch-size', '8', '--progress', 'none', '--noise-rate', '0']);
  assert.is(t.status, 0, t.stderr);
  assert.match(t.stdout, /image size: 16 px \(--size\)/);
  assert.not.match(t.stderr, NOISE, t.stderr);
  const model = join(out, 'student-ce.safetensors');
  const img = join(tmp, 'x.png');
  writeFileSync(img, encodePng(Uint8Array.from({ length: 16 * 16 }, (_, i) => (i * 13) % 256), 16, 16, 1));
  const p = run('kd/predict.ts', ['--model', model, img, '--json']);
  assert.is(p.status, 0, p.stderr);
  assert.is(JSON.parse(p.stdout).predictions.length, 1);
  assert.not.match(p.stderr, NOISE, p.stderr);
  const a = run('kd/attack.ts', ['--model', model, '--attack', 'fgsm', '--eps', '2/255', '--limit', '4', '--json']);
  assert.is(a.status, 0, a.stderr);
  assert.not.match(a.stderr, NOISE, a.stderr);
  // a failing command keeps its exit code and its message through the relaunch
  const bad = run('kd/predict.ts', ['--model', join(tmp, 'missing.safetensors'), img]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /missing\.safetensors/);
  if (lavapipe) assert.match(run('kd/predict.ts', ['--model', model, img], { ROSKD_VERBOSE: '1' }).stderr, NOISE);
});

test('every command entry relaunches itself through the filter (train and study via their supervisor; predict, attack, gpu-info, bench)', () => {
  // train and study relaunch through their Ctrl-C supervisor, which starts its worker with spawnFiltered
  for (const f of ['kd/train.ts', 'kd/study.ts']) {
    assert.match(readFileSync(join(repo, f), 'utf8'), /await supervise\(/, `${f} runs under the supervisor`);
  }
  assert.match(readFileSync(join(repo, 'kd/supervise.ts'), 'utf8'), /spawnFiltered\(process\.execPath/, 'the supervisor starts its worker through the filter');
  for (const f of ['kd/predict.ts', 'kd/attack.ts', 'scripts/gpu-info.ts', 'bench/run.ts']) {
    const src = readFileSync(join(repo, f), 'utf8');
    assert.match(src, /^import \{ quietDawnWarnings \} from '\.\.\/engine\/node\/dawn-stderr\.ts';/m, `${f} imports the filter`);
    assert.match(src, /await quietDawnWarnings\(\)/, `${f} calls it`);
  }
});

test.run();
