// BatchNorm2d (+ fused ReLU/ReLU6) vs the float64 reference (test/reference/norm.ts): training
// and eval forward, running statistics over several steps (PyTorch rule), backward through the
// batch statistics (and eval-mode backward) vs reference analytic gradients and central
// differences, precision on large channel sizes with a large offset, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { batchNorm2dTrain, batchNorm2dBackward, batchNorm2dEval, updateRunningStats } from './reference/norm.ts';
import { numericGrad, randn, randu, seededRandom } from './reference/gradcheck.ts';

type Act = 'relu' | 'relu6' | null;
const rng = seededRandom(Number(process.env.TEST_SEED ?? 11));
const numelOf = (s: number[]) => s.reduce((a, b) => a * b, 1);
const dot = (r: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += r[i] * y[i];
  return s;
};
const actF = (a: Act) => (z: number) => (a === 'relu' ? Math.max(z, 0) : a === 'relu6' ? Math.min(Math.max(z, 0), 6) : z);
const actD = (a: Act) => (z: number) => (a === 'relu' ? (z > 0 ? 1 : 0) : a === 'relu6' ? (z > 0 && z < 6 ? 1 : 0) : 1);

interface Case {
  x: Float64Array;
  shape: number[];
  w: Float64Array | null;
  b: Float64Array | null;
  rm: Float64Array;
  rv: Float64Array;
  act: Act;
  training: boolean;
  momentum?: number;
}

/** One GPU forward + backward(gy) through autograd; returns y, grads and the updated running stats. */
async function runGpu(c: Case, gy: Float64Array) {
  return rk.tidyAsync(async () => {
    const C = c.shape[1];
    const x = rk.tensor(c.x, c.shape).requireGrad();
    const w = c.w ? rk.tensor(c.w, [C]).requireGrad() : null;
    const b = c.b ? rk.tensor(c.b, [C]).requireGrad() : null;
    const rm = rk.tensor(c.rm, [C]);
    const rv = rk.tensor(c.rv, [C]);
    const y = rk.batchNorm2d(x, w, b, rm, rv, { training: c.training, momentum: c.momentum, activation: c.act });
    y.backward(rk.tensor(gy, c.shape));
    const out = {
      y: await read64(y),
      dx: await read64(x.grad!),
      dw: w ? await read64(w.grad!) : null,
      db: b ? await read64(b.grad!) : null,
      rm: await read64(rm),
      rv: await read64(rv),
    };
    for (const t of [x, w, b]) t?.grad?.dispose();
    return out;
  });
}

/**
 * Reference forward (with activation) and backward through it. The activation's kink decision
 * (z > 0, z < 6) is taken from the GPU's output `gpuY` when given: a z within rounding of a kink
 * may fall on either side, and the gradient must follow the forward that actually ran.
 */
function reference(c: Case, gy: Float64Array, gpuY?: Float64Array) {
  const mask = (z: Float64Array) => z.map((v, i) => (gpuY ? (c.act === null || (gpuY[i] > 0 && (c.act === 'relu' || gpuY[i] < 6)) ? 1 : 0) : actD(c.act)(v)));
  const eps = 1e-5;
  if (c.training) {
    const r = batchNorm2dTrain(c.x, c.shape, c.w, c.b, eps);
    const m = mask(r.y);
    const gz = gy.map((g, i) => g * m[i]);
    const bw = batchNorm2dBackward(c.x, c.shape, c.w, gz, eps);
    const run = updateRunningStats(c.rm, c.rv, r.mean, r.varUnbiased, c.momentum ?? 0.1);
    return { y: r.y.map(actF(c.act)), dx: bw.dx, dw: bw.dgamma, db: bw.dbeta, rm: run.runMean, rv: run.runVar };
  }
  const z = batchNorm2dEval(c.x, c.shape, c.rm, c.rv, c.w, c.b, eps);
  const m = mask(z);
  const gz = gy.map((g, i) => g * m[i]);
  const [N, C, H, W] = c.shape;
  const HW = H * W;
  const dx = new Float64Array(c.x.length);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let n = 0; n < N; n++)
    for (let ch = 0; ch < C; ch++) {
      const inv = 1 / Math.sqrt(c.rv[ch] + eps);
      for (let p = 0; p < HW; p++) {
        const i = (n * C + ch) * HW + p;
        dx[i] = gz[i] * (c.w ? c.w[ch] : 1) * inv;
        dw[ch] += gz[i] * (c.x[i] - c.rm[ch]) * inv;
        db[ch] += gz[i];
      }
    }
  return { y: z.map(actF(c.act)), dx, dw, db, rm: c.rm, rv: c.rv };
}

function makeCase(shape: number[], o: { affine?: boolean; act?: Act; training?: boolean; offset?: number; scale?: number }): Case {
  const C = shape[1];
  // rounded to f32 so the reference sees exactly what the GPU sees
  const x = Float64Array.from(Float32Array.from(randn(numelOf(shape), rng, o.scale ?? 1).map((v) => v + (o.offset ?? 0))));
  const affine = o.affine ?? true;
  return {
    x,
    shape,
    w: affine ? randu(C, rng, 0.5, 3).map((v, i) => (i % 3 === 2 ? -v : v)) : null,
    b: affine ? randn(C, rng) : null,
    rm: randn(C, rng, 0.5),
    rv: randu(C, rng, 0.5, 2),
    act: o.act ?? null,
    training: o.training ?? true,
  };
}

async function check(c: Case, tol: { y: number; g: number }, what: string) {
  const gy = randn(c.x.length, rng);
  const got = await runGpu(c, gy);
  const ref = reference(c, gy, got.y);
  expectClose(got.y, ref.y, tol.y, `${what}: y`);
  expectClose(got.dx, ref.dx, tol.g, `${what}: dx`);
  if (c.w) expectClose(got.dw!, ref.dw, tol.g, `${what}: dweight`);
  if (c.b) expectClose(got.db!, ref.db, tol.g, `${what}: dbias`);
  expectClose(got.rm, ref.rm, 1e-5, `${what}: runningMean`);
  expectClose(got.rv, ref.rv, 1e-5, `${what}: runningVar`);
}

test.before(gpuInit);

test('training forward/backward and running stats vs reference over shapes, affine and activations', async () => {
  for (const shape of [
    [8, 4, 7, 9],
    [1, 3, 28, 28],
    [8, 2, 57, 57],
    [16, 5, 1, 1],
    [1, 2, 7, 9],
  ])
    for (const act of [null, 'relu', 'relu6'] as Act[])
      for (const affine of [true, false]) await check(makeCase(shape, { act, affine, scale: act === 'relu6' ? 4 : 1 }), { y: 1e-5, g: 1e-4 }, `train ${shape} act=${act} affine=${affine}`);
});

test('eval forward/backward use the running statistics (which stay unchanged)', async () => {
  for (const shape of [
    [8, 4, 7, 9],
    [1, 3, 28, 28],
    [1, 2, 1, 1],
  ])
    for (const act of [null, 'relu', 'relu6'] as Act[])
      for (const affine of [true, false]) await check(makeCase(shape, { act, affine, training: false, scale: 3 }), { y: 1e-5, g: 1e-5 }, `eval ${shape} act=${act} affine=${affine}`);
});

test('backward vs central differences of the reference (training and eval, with activations)', async () => {
  const shape = [3, 2, 3, 4];
  const eps = 1e-5;
  for (const training of [true, false])
    for (const act of [null, 'relu', 'relu6'] as Act[]) {
      const c = makeCase(shape, { act, training, scale: act === 'relu6' ? 4 : 1 });
      const gy = randn(c.x.length, rng);
      const got = await runGpu(c, gy);
      const f = (x: Float64Array, w: Float64Array | null, b: Float64Array | null) => {
        const z = training ? batchNorm2dTrain(x, shape, w, b, eps).y : batchNorm2dEval(x, shape, c.rm, c.rv, w, b, eps);
        return dot(gy, z.map(actF(act)));
      };
      const what = `${training ? 'train' : 'eval'} act=${act}`;
      expectClose(got.dx, numericGrad((x) => f(x, c.w, c.b), c.x), 1e-4, `${what}: dx vs numeric`);
      expectClose(got.dw!, numericGrad((w) => f(c.x, w, c.b), c.w!), 1e-4, `${what}: dweight vs numeric`);
      expectClose(got.db!, numericGrad((b) => f(c.x, c.w, b), c.b!), 1e-4, `${what}: dbias vs numeric`);
    }
});

test('running statistics after several training steps follow the PyTorch rule; eval then uses them', async () => {
  const shape = [4, 3, 5, 6];
  const C = 3;
  for (const momentum of [0.1, 0.3]) {
    let refM: Float64Array = new Float64Array(C);
    let refV: Float64Array = new Float64Array(C).fill(1);
    const rm = rk.zeros([C]);
    const rv = rk.ones([C]);
    const w = rk.tensor([1, 2, -0.5], [C]);
    const b = rk.tensor([0, 0.5, 1], [C]);
    for (let step = 0; step < 5; step++) {
      const x = randn(numelOf(shape), rng, 1 + step).map((v) => v + step);
      rk.tidy(() => rk.batchNorm2d(rk.tensor(x, shape), w, b, rm, rv, { training: true, momentum }));
      const r = batchNorm2dTrain(x, shape, null, null);
      ({ runMean: refM, runVar: refV } = updateRunningStats(refM, refV, r.mean, r.varUnbiased, momentum));
    }
    expectClose(await read64(rm), refM, 1e-5, `runningMean after 5 steps, momentum ${momentum}`);
    expectClose(await read64(rv), refV, 1e-5, `runningVar after 5 steps, momentum ${momentum}`);
    const x = randn(numelOf(shape), rng);
    const rmBefore = await read64(rm);
    const y = await rk.tidyAsync(async () => read64(rk.batchNorm2d(rk.tensor(x, shape), w, b, rm, rv, { training: false, momentum })));
    expectClose(y, batchNorm2dEval(x, shape, refM, refV, Float64Array.from([1, 2, -0.5]), Float64Array.from([0, 0.5, 1])), 1e-5, 'eval with the accumulated stats');
    assert.equal(Array.from(await read64(rm)), Array.from(rmBefore), 'eval leaves runningMean unchanged');
    for (const t of [rm, rv, w, b]) t.dispose();
  }
});

test('statistics are precise for large channels with a large offset (two-level reduction)', async () => {
  // 8*57*57 = 25992 values per channel around 1000 with std 0.5: one-pass sum of squares in
  // f32 would lose the variance entirely.
  const c = makeCase([8, 3, 57, 57], { offset: 1000, scale: 0.5 });
  await check(c, { y: 2e-5, g: 1e-5 }, 'offset 1000');
  const c2 = makeCase([64, 2, 32, 32], { offset: -20, scale: 2 });
  await check(c2, { y: 1e-5, g: 1e-5 }, '65536 per channel');
});

test('planes whose size is not a multiple of 4 as flat vec4s (a vec4 across two planes, channel wrap, train and eval)', async () => {
  const { flatPlanes } = await import('../engine/ops/batchnorm.ts');
  const shapes = [
    [4, 3, 7, 7], // 49 per plane, 3 channels: runs cross several planes and wrap channels
    [2, 2, 3, 3],
    [4, 1, 5, 5], // one channel: every plane boundary wraps to channel 0
    [4, 3, 1, 5],
    [3, 4, 2, 3],
  ];
  for (const s of shapes) assert.ok(flatPlanes(s[0], s[1], s[2] * s[3], s[1]), `${s} takes the flat path`);
  assert.not.ok(flatPlanes(1, 2, 7 * 9, 2), '[1, 2, 7, 9] (126 values) stays element by element');
  for (const shape of shapes)
    for (const act of [null, 'relu', 'relu6'] as Act[]) {
      await check(makeCase(shape, { act, offset: 2, scale: act === 'relu6' ? 4 : 2 }), { y: 1e-5, g: 1e-4 }, `flat train ${shape} act=${act}`);
      await check(makeCase(shape, { act, training: false, scale: 3 }), { y: 1e-5, g: 1e-5 }, `flat eval ${shape} act=${act}`);
    }
});

test('every way the reduction splits a channel among lanes (segments, plane groups, a short last group, the partial-sum cap)', async () => {
  const { statsSplit, STATS_RUN_FLAT } = await import('../engine/ops/batchnorm.ts');
  // planes that split into vec4s are split in vec4 units, others (the masked flat kernel) in elements
  const split = (s: number[]) => (s[2] * s[3] % 4 === 0 ? statsSplit(s[0], (s[2] * s[3]) / 4) : statsSplit(s[0], s[2] * s[3], STATS_RUN_FLAT));
  const cases: [number[], string, (p: ReturnType<typeof statsSplit>, N: number) => boolean][] = [
    [[300, 2, 2, 2], 'whole small planes per lane, last group short', (p, N) => p.G > 1 && N % p.G !== 0],
    [[23, 2, 5, 5], 'whole odd planes per lane, last group short', (p, N) => p.G > 1 && N % p.G !== 0],
    [[5, 2, 1, 1], 'one value per plane', (p) => p.G === 5],
    [[3, 2, 20, 28], 'vec4 segments of a plane', (p) => p.segs > 1],
    [[3, 2, 17, 17], 'unaligned segments of an odd plane', (p) => p.segs > 1 && p.S % 4 !== 0],
    [[301, 2, 16, 64], 'plane groups and segments (partial cap)', (p) => p.G > 1 && p.segs > 1 && p.P <= 512],
  ];
  for (const [shape, what, exercised] of cases) {
    assert.ok(exercised(split(shape), shape[0]), `${what}: ${shape} gives ${JSON.stringify(split(shape))}`);
    for (const act of ['relu', null] as Act[]) await check(makeCase(shape, { act, offset: 3, scale: 2 }), { y: 1e-5, g: 1e-4 }, `${what} ${shape} act=${act}`);
  }
});

test('no-grad forward, memory released, gradients only where required', async () => {
  const c = makeCase([2, 3, 4, 5], { act: 'relu' });
  const before = rk.memoryStats().liveBytes;
  await runGpu(c, randn(c.x.length, rng));
  const y = await rk.tidyAsync(async () =>
    rk.noGrad(() => read64(rk.batchNorm2d(rk.tensor(c.x, c.shape), rk.tensor(c.w!, [3]), rk.tensor(c.b!, [3]), rk.tensor(c.rm, [3]), rk.tensor(c.rv, [3]), { training: true, activation: 'relu' }))),
  );
  expectClose(y, reference(c, new Float64Array(c.x.length)).y, 1e-5, 'no-grad y');
  // gradient w.r.t. weight only (x does not require grad)
  await rk.tidyAsync(async () => {
    const w = rk.tensor(c.w!, [3]).requireGrad();
    const out = rk.batchNorm2d(rk.tensor(c.x, c.shape), w, rk.tensor(c.b!, [3]), rk.tensor(c.rm, [3]), rk.tensor(c.rv, [3]), { training: true, activation: 'relu' });
    const gy = randn(c.x.length, rng);
    out.backward(rk.tensor(gy, c.shape));
    expectClose(await read64(w.grad!), reference(c, gy, await read64(out)).dw, 1e-4, 'dweight alone');
    w.grad!.dispose();
  });
  assert.is(rk.memoryStats().liveBytes, before, 'live bytes');
});

test('bad input gives clear errors', () => {
  rk.tidy(() => {
    const x = rk.zeros([2, 3, 4, 4]);
    const c3 = rk.ones([3]);
    assert.throws(() => rk.batchNorm2d(x, rk.ones([4]), c3, c3, c3, { training: true }), /batchNorm2d: weight must have shape \[3\] \(C of input \[2, 3, 4, 4\]\), got \[4\]/);
    assert.throws(() => rk.batchNorm2d(x, null, null, rk.ones([2]), c3, { training: true }), /runningMean must have shape \[3\].*got \[2\]/);
    assert.throws(() => rk.batchNorm2d(x, c3, rk.ones([3, 1]), c3, c3, { training: true }), /bias must have shape \[3\]/);
    assert.throws(() => rk.batchNorm2d(rk.zeros([3, 4]), null, null, c3, c3, { training: true }), /batchNorm2d: input must have rank 4, got \[3, 4\]/);
    assert.throws(() => rk.batchNorm2d(rk.zeros([1, 3, 1, 1]), null, null, c3, c3, { training: true }), /more than 1 value per channel/);
    assert.throws(() => rk.batchNorm2d(x, null, null, c3, c3, { training: true, momentum: 2 }), /momentum 2/);
  });
});

test.run();
