// rk.init(options): a caller's GPU object and adapter options, limits 'adapter' | 'default',
// subgroups on/off, and the ROSKD_* variables that set them under Node (explicit options win).
// init() opens the device once per process, so each case runs in a child process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'roskd-init-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// WebGPU's default limits (the spec's table), which limits: 'default' must give.
const SPEC_DEFAULTS = { maxStorageBuffersPerShaderStage: 8, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384, maxBufferSize: 268435456 };

interface ChildReport {
  limitsMode: string;
  limits: Record<string, number>;
  adapterLimits: Record<string, number>;
  subgroupSize: number;
  requestAdapterCalls: { powerPreference?: string }[] | null;
  sum: number;
}

/** Runs rk.init(<initExpr>) in a child with `env`, then a small op; returns its report or its error text. */
function child(initExpr: string, env: Record<string, string> = {}): { report?: ChildReport; status: number | null; stderr: string } {
  const script = join(dir, `child-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(
    script,
    `import * as rk from ${JSON.stringify(join(REPO, 'engine/index.ts'))};
import { getInstance } from ${JSON.stringify(join(REPO, 'engine/node/dawn.ts'))};
// a caller's GPU object: Dawn's, wrapped to record what init() asks of it
const calls: unknown[] = [];
const dawn = getInstance();
const wrapped = { requestAdapter: (o: unknown) => (calls.push(o), dawn.requestAdapter(o as GPURequestAdapterOptions)), getPreferredCanvasFormat: () => dawn.getPreferredCanvasFormat(), wgslLanguageFeatures: dawn.wgslLanguageFeatures } as GPU;
void wrapped;
const g = await rk.init(${initExpr});
const s = await rk.sum(rk.tensor([1, 2, 3, 4.5])).item();
const pick = (l: object) => Object.fromEntries(Object.keys(g.limits).map((k) => [k, (l as Record<string, number>)[k]]));
console.log(JSON.stringify({ limitsMode: g.limitsMode, limits: g.limits, adapterLimits: pick(g.adapter.limits), subgroupSize: g.subgroupSize, requestAdapterCalls: calls.length ? calls : null, sum: s }));
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: REPO, env: { ...process.env, ROSKD_LIMITS: '', ROSKD_SUBGROUPS: '', ...env } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return { report: r.status === 0 ? (JSON.parse(last) as ChildReport) : undefined, status: r.status, stderr: r.stderr };
}

test("default: the adapter's maxima; ROSKD_LIMITS=default: WebGPU's defaults, reported as the device has them", () => {
  const a = child('');
  assert.ok(a.report, a.stderr);
  assert.is(a.report!.limitsMode, 'adapter');
  assert.equal(a.report!.limits, a.report!.adapterLimits, 'requested every adapter maximum');
  assert.is(a.report!.sum, 10.5);
  const d = child('', { ROSKD_LIMITS: 'default' });
  assert.ok(d.report, d.stderr);
  assert.is(d.report!.limitsMode, 'default');
  for (const [k, v] of Object.entries(SPEC_DEFAULTS)) assert.is(d.report!.limits[k], v, k);
  assert.ok(d.report!.adapterLimits.maxStorageBuffersPerShaderStage > 8, 'this adapter offers more than the defaults (else the test proves nothing)');
  assert.is(d.report!.sum, 10.5);
});

test('init({ gpu, adapter }) uses the given GPU object and adapter options; explicit options beat ROSKD_*', () => {
  const r = child("{ gpu: wrapped, adapter: { powerPreference: 'low-power' }, limits: 'default', subgroups: true }", { ROSKD_LIMITS: 'adapter', ROSKD_SUBGROUPS: '0' });
  assert.ok(r.report, r.stderr);
  assert.equal(r.report!.requestAdapterCalls, [{ powerPreference: 'low-power' }]);
  assert.is(r.report!.limitsMode, 'default');
  assert.is(r.report!.limits.maxComputeInvocationsPerWorkgroup, 256);
  const plain = child('');
  assert.is(r.report!.subgroupSize, plain.report!.subgroupSize, 'subgroups: true wins over ROSKD_SUBGROUPS=0');
  assert.is(r.report!.sum, 10.5);
});

test('ROSKD_SUBGROUPS=0 turns subgroup kernels off; a bad ROSKD_LIMITS is a clear error', () => {
  const off = child('', { ROSKD_SUBGROUPS: '0' });
  assert.ok(off.report, off.stderr);
  assert.is(off.report!.subgroupSize, 0);
  assert.is(off.report!.sum, 10.5);
  const bad = child('', { ROSKD_LIMITS: 'huge' });
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /limits \(ROSKD_LIMITS\) must be 'adapter' or 'default', got "huge"/);
});

test.run();
