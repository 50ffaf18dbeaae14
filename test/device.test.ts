// Foundation: the device module, adapter selection errors, the GC crash class, first kernels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gpuInit, rk, read64, expectClose } from './helpers.ts';
import { getInstance } from '../engine/node/dawn.ts';
import { seededRandom, randn } from './reference/gradcheck.ts';

await gpuInit();

/** WebGPU's spec defaults (https://www.w3.org/TR/webgpu/#limit-default). */
const SPEC_DEFAULTS = {
  maxStorageBufferBindingSize: 134217728,
  maxBufferSize: 268435456,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
  maxUniformBufferBindingSize: 65536,
};

test('device reports the adapter limits, or exactly the spec defaults under ROSKD_LIMITS=default', () => {
  const g = rk.getGpu();
  assert.is(g.limitsMode, process.env.ROSKD_LIMITS === 'default' ? 'default' : 'adapter');
  const adapter = g.adapter.limits as unknown as Record<string, number>;
  for (const [name, def] of Object.entries(SPEC_DEFAULTS)) {
    const got = g.limits[name as keyof typeof g.limits];
    assert.is(got, g.limitsMode === 'default' ? def : adapter[name], name);
  }
  assert.ok(g.info.description.length > 0);
});

test('creating and dropping many devices and buffers under forced GC does not crash', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with node --expose-gc (npm test does)');
  const gpu = getInstance();
  for (let i = 0; i < 12; i++) {
    const adapter = await gpu.requestAdapter();
    const device = await adapter!.requestDevice();
    for (let j = 0; j < 20; j++) device.createBuffer({ size: 1024 * (j + 1), usage: GPUBufferUsage.STORAGE });
    await device.queue.onSubmittedWorkDone();
    device.destroy();
    gc!();
    await new Promise((r) => setTimeout(r, 5));
  }
  // the engine's own device still works afterwards
  const t = rk.tensor([1, 2, 3]);
  assert.equal([...(await t.toArray())], [1, 2, 3]);
});

test('a child process with an unknown ROSKD_ADAPTER exits 1 with a one-line message listing adapters', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gpu-info.ts'], { env: { ...process.env, ROSKD_ADAPTER: 'no-such-adapter-xyz' }, encoding: 'utf8' });
  assert.is(r.status, 1);
  const msg = r.stderr.split('\n').filter((l) => l.includes('no WebGPU adapter'));
  assert.is(msg.length, 1, r.stderr);
  assert.match(msg[0], /available adapters: .+/);
});

for (const n of [1, 7, 65537, 3_000_001]) {
  test(`elementwise add and full sum on ${n} elements match float64`, async () => {
    const rng = seededRandom(n);
    const a = randn(n, rng);
    const b = randn(n, rng);
    const ta = rk.tensor(Float32Array.from(a));
    const tb = rk.tensor(Float32Array.from(b));
    const c = rk.add(ta, tb);
    const s = rk.sum(c);
    const want = a.map((x, i) => Math.fround(x) + Math.fround(b[i]));
    expectClose(await read64(c), want, 1e-7, `add n=${n}`);
    const total = want.reduce((x, y) => x + y, 0);
    const got = await s.item();
    const scale = want.reduce((x, y) => x + Math.abs(y), 0);
    assert.ok(Math.abs(got - total) <= 1e-6 * scale + 1e-6, `sum n=${n}: ${got} vs ${total}`);
    for (const t of [ta, tb, c, s]) t.dispose();
  });
}

test('a tensor above maxStorageBufferBindingSize gets an error naming the kernel and binding, not a Dawn validation error', () => {
  const max = rk.getGpu().limits.maxStorageBufferBindingSize;
  const n = max / 4 + 1024; // 4 KiB over the limit
  if (n * 4 > rk.getGpu().limits.maxBufferSize) return; // cannot even allocate it here
  const re = new RegExp(`kernel fill \\(shaders/fill\\.wgsl\\): storage binding 1 is ${n * 4} bytes, above this device's maxStorageBufferBindingSize ${max}`);
  assert.throws(() => rk.tidy(() => rk.zeros([n])), re);
  rk.trimPool();
});

test('validation errors surface as JS errors naming the kernel', async () => {
  let message = '';
  try {
    await rk.withErrorScope('bad_kernel', () => rk.getGpu().device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE }));
  } catch (e) {
    message = (e as Error).message;
  }
  assert.match(message, /^bad_kernel: .*usage/i);
});


/** CPU seconds of this process's main thread (Linux: /proc), or null elsewhere. */
function mainThreadCpu(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return null;
  }
}

test('waiting for the GPU does not busy-spin the main thread; setImmediate still behaves', async () => {
  const a = rk.keep(rk.randn([1024, 1024]));
  await rk.sync();
  const cpu0 = mainThreadCpu();
  const t0 = performance.now();
  for (let i = 0; i < 6; i++) rk.tidy(() => rk.matmul(a, a));
  await rk.sync();
  const wall = (performance.now() - t0) / 1e3;
  const cpu1 = mainThreadCpu();
  a.dispose();
  if (cpu0 === null || cpu1 === null) console.log('device: no /proc/self/task here: main-thread CPU not measured');
  else if (wall < 0.15) console.log(`device: the GPU work took only ${(wall * 1e3).toFixed(0)} ms: too short to judge polling`);
  // Dawn's own polling loop (setImmediate) kept the main thread ~50% busy during a wait; now it sleeps 1 ms between polls
  else assert.ok(cpu1 - cpu0 < 0.25 * wall + 0.03, `main thread used ${(cpu1 - cpu0).toFixed(2)} s of CPU during a ${wall.toFixed(2)} s GPU wait`);
  assert.is(await promisify(setImmediate)('value'), 'value', 'util.promisify(setImmediate) still works');
  let ran = false;
  clearImmediate(setImmediate(() => (ran = true)));
  await new Promise((r) => setTimeout(r, 5));
  assert.is(ran, false, 'clearImmediate cancels');
});

test('long GPU waits poll less and less often (1/64 of the time waited, at most 8 ms between polls)', async () => {
  const a = rk.keep(rk.randn([1024, 1024]));
  await rk.sync();
  const delays: number[] = [];
  const orig = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: (...x: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
    delays.push(ms ?? 0);
    return orig(fn, ms, ...rest);
  }) as typeof setTimeout;
  const t0 = performance.now();
  try {
    for (let i = 0; i < 12; i++) rk.tidy(() => rk.matmul(a, a));
    await rk.sync();
  } finally {
    globalThis.setTimeout = orig;
  }
  const wall = performance.now() - t0;
  a.dispose();
  if (wall < 700) return console.log(`device: the GPU work took only ${wall.toFixed(0)} ms: too short to judge the poll ramp`);
  // a 1 ms poll throughout would be ~wall polls; the ramp reaches 8 ms after 512 ms of waiting
  assert.ok(Math.max(...delays) === 8 && Math.min(...delays) >= 1, `poll delays ${Math.min(...delays)}..${Math.max(...delays)} ms`);
  assert.ok(delays.length < wall / 3, `${delays.length} polls in a ${wall.toFixed(0)} ms wait`);
});

test.run();
