// 2-D pooling vs the float64 reference (test/reference/pool.ts): forward over a grid of kernel,
// stride, padding and awkward sizes, backward through autograd vs central differences (small)
// and vs the reference analytic gradients (the whole grid), PyTorch tie/NaN rules, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, globalAvgPool, globalAvgPoolBackward } from './reference/pool.ts';
import { numericGrad, randn, seededRandom } from './reference/gradcheck.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 7));
const dot = (r: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += r[i] * y[i];
  return s;
};

/** Runs op on x (requiring grad), backpropagates gy; returns y, its shape and dx. */
async function runGpu(op: (x: rk.Tensor) => rk.Tensor, x: Float64Array, shape: number[], gy: (n: number) => Float64Array) {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, shape).requireGrad();
    const y = op(xt);
    const g = gy(y.size);
    y.backward(rk.tensor(g, y.shape));
    const out = { y: await read64(y), shape: [...y.shape], dx: await read64(xt.grad!), gy: g };
    xt.grad!.dispose();
    return out;
  });
}

const SHAPES = [
  [1, 3, 7, 9],
  [8, 2, 28, 28],
  [1, 2, 57, 57],
  [8, 1, 57, 57],
];
const GRID: { k: number; s: number; p: number }[] = [];
for (const k of [2, 3]) for (const s of [1, 2]) for (const p of [0, 1]) GRID.push({ k, s, p });

test.before(gpuInit);

test('maxPool2d forward and backward match the reference over the grid', async () => {
  for (const shape of SHAPES) {
    const x = randn(shape.reduce((a, b) => a * b), rng);
    for (const { k, s, p } of GRID) {
      const what = `maxPool2d ${shape} k${k} s${s} p${p}`;
      const ref = maxPool2d(x, shape, { kernel: [k, k], stride: [s, s], padding: [p, p] });
      const got = await runGpu((t) => rk.maxPool2d(t, { kernel: k, stride: s, padding: p }), x, shape, (n) => randn(n, rng));
      assert.equal(got.shape, ref.shape, `${what}: shape`);
      expectClose(got.y, ref.y, 1e-7, `${what}: y`);
      expectClose(got.dx, maxPool2dBackward(got.gy, ref.argmax, shape, ref.shape), 1e-6, `${what}: dx`);
    }
  }
});

test('avgPool2d forward and backward match the reference over the grid (countIncludePad both ways)', async () => {
  for (const shape of SHAPES) {
    const x = randn(shape.reduce((a, b) => a * b), rng);
    for (const { k, s, p } of GRID) {
      for (const countIncludePad of [true, false]) {
        const what = `avgPool2d ${shape} k${k} s${s} p${p} includePad=${countIncludePad}`;
        const o = { kernel: [k, k] as [number, number], stride: [s, s] as [number, number], padding: [p, p] as [number, number], countIncludePad };
        const ref = avgPool2d(x, shape, o);
        const got = await runGpu((t) => rk.avgPool2d(t, { kernel: k, stride: s, padding: p, countIncludePad }), x, shape, (n) => randn(n, rng));
        assert.equal(got.shape, ref.shape, `${what}: shape`);
        expectClose(got.y, ref.y, 1e-6, `${what}: y`);
        expectClose(got.dx, avgPool2dBackward(got.gy, shape, o), 1e-6, `${what}: dx`);
      }
    }
  }
});

test('pooling with rectangular kernels, strides and paddings', async () => {
  const shape = [2, 3, 11, 8];
  const x = randn(2 * 3 * 11 * 8, rng);
  const o = { kernel: [3, 2] as [number, number], stride: [2, 1] as [number, number], padding: [1, 0] as [number, number] };
  const rm = maxPool2d(x, shape, o);
  const gm = await runGpu((t) => rk.maxPool2d(t, o), x, shape, (n) => randn(n, rng));
  expectClose(gm.y, rm.y, 1e-7, 'max rect y');
  expectClose(gm.dx, maxPool2dBackward(gm.gy, rm.argmax, shape, rm.shape), 1e-6, 'max rect dx');
  const ra = avgPool2d(x, shape, { ...o, countIncludePad: false });
  const ga = await runGpu((t) => rk.avgPool2d(t, { ...o, countIncludePad: false }), x, shape, (n) => randn(n, rng));
  expectClose(ga.y, ra.y, 1e-6, 'avg rect y');
  expectClose(ga.dx, avgPool2dBackward(ga.gy, shape, { ...o, countIncludePad: false }), 1e-6, 'avg rect dx');
});

test('backward vs central differences of the reference (small shapes)', async () => {
  const shape = [2, 2, 5, 6];
  const n = 2 * 2 * 5 * 6;
  for (const { k, s, p } of [
    { k: 2, s: 1, p: 1 },
    { k: 3, s: 2, p: 1 },
    { k: 3, s: 1, p: 0 },
  ]) {
    const x = randn(n, rng);
    const o = { kernel: [k, k] as [number, number], stride: [s, s] as [number, number], padding: [p, p] as [number, number] };
    const gm = await runGpu((t) => rk.maxPool2d(t, { kernel: k, stride: s, padding: p }), x, shape, (m) => randn(m, rng));
    expectClose(gm.dx, numericGrad((xx) => dot(gm.gy, maxPool2d(xx, shape, o).y), x), 1e-5, `max k${k} s${s} p${p} dx vs numeric`);
    for (const countIncludePad of [true, false]) {
      const ga = await runGpu((t) => rk.avgPool2d(t, { kernel: k, stride: s, padding: p, countIncludePad }), x, shape, (m) => randn(m, rng));
      expectClose(ga.dx, numericGrad((xx) => dot(ga.gy, avgPool2d(xx, shape, { ...o, countIncludePad }).y), x), 1e-6, `avg k${k} s${s} p${p} pad=${countIncludePad} dx vs numeric`);
    }
    const gg = await runGpu((t) => rk.globalAvgPool2d(t), x, shape, (m) => randn(m, rng));
    expectClose(gg.dx, numericGrad((xx) => dot(gg.gy, globalAvgPool(xx, shape).y), x), 1e-6, 'global dx vs numeric');
  }
});

test('maxPool2d: ties give the gradient to the first maximum, NaN propagates', async () => {
  // A constant plane: every window ties; the first (row-major) element of each window wins.
  const shape = [1, 1, 4, 5];
  const x = new Float64Array(20).fill(2);
  const o = { kernel: [2, 2] as [number, number], stride: [1, 1] as [number, number], padding: [1, 1] as [number, number] };
  const ref = maxPool2d(x, shape, o);
  const got = await runGpu((t) => rk.maxPool2d(t, { kernel: 2, stride: 1, padding: 1 }), x, shape, (n) => Float64Array.from({ length: n }, (_, i) => i + 1));
  expectClose(got.y, ref.y, 1e-12, 'tie y');
  assert.equal(Array.from(got.dx), Array.from(maxPool2dBackward(got.gy, ref.argmax, shape, ref.shape)), 'tie dx');
  // NaN in a window wins that window.
  const xn = randn(20, rng);
  xn[7] = NaN;
  const yn = await rk.tidyAsync(async () => read64(rk.maxPool2d(rk.tensor(xn, shape), { kernel: 2 })));
  const rn = maxPool2d(xn, shape, { kernel: [2, 2] });
  assert.equal(Array.from(yn).map(Number.isNaN), Array.from(rn.y).map(Number.isNaN), 'NaN positions');
});

test('globalAvgPool2d and adaptiveAvgPool2d([1,1]) on large planes', async () => {
  for (const shape of [
    [8, 3, 57, 57],
    [1, 5, 7, 9],
    [4, 2, 1, 1],
  ]) {
    const x = randn(shape.reduce((a, b) => a * b), rng);
    const ref = globalAvgPool(x, shape);
    const got = await runGpu((t) => rk.globalAvgPool2d(t), x, shape, (n) => randn(n, rng));
    assert.equal(got.shape, ref.shape);
    expectClose(got.y, ref.y, 1e-6, `global ${shape} y`);
    expectClose(got.dx, globalAvgPoolBackward(got.gy, shape), 1e-6, `global ${shape} dx`);
    const ad = await runGpu((t) => rk.adaptiveAvgPool2d(t, [1, 1]), x, shape, () => got.gy);
    expectClose(ad.y, ref.y, 1e-6, `adaptive [1,1] ${shape} y`);
  }
});

/** Adaptive average pooling reference (PyTorch windows); not in test/reference/pool.ts. */
function adaptiveRef(x: Float64Array, shape: number[], oH: number, oW: number, gy?: Float64Array) {
  const [N, C, H, W] = shape;
  const y = new Float64Array(N * C * oH * oW);
  const dx = new Float64Array(x.length);
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < oH; i++)
      for (let j = 0; j < oW; j++) {
        const hs = Math.floor((i * H) / oH);
        const he = Math.ceil(((i + 1) * H) / oH);
        const ws = Math.floor((j * W) / oW);
        const we = Math.ceil(((j + 1) * W) / oW);
        const cnt = (he - hs) * (we - ws);
        const o = (nc * oH + i) * oW + j;
        let s = 0;
        for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) s += x[nc * H * W + h * W + w];
        y[o] = s / cnt;
        if (gy) for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) dx[nc * H * W + h * W + w] += gy[o] / cnt;
      }
  return { y, dx };
}

test('adaptiveAvgPool2d to other sizes (overlapping and uneven windows)', async () => {
  for (const [shape, oH, oW] of [
    [[2, 3, 7, 9], 3, 4],
    [[1, 2, 10, 10], 3, 3],
    [[2, 1, 5, 6], 7, 8], // output larger than input: windows repeat
    [[1, 1, 9, 9], 9, 9],
  ] as [number[], number, number][]) {
    const x = randn(shape.reduce((a, b) => a * b), rng);
    const got = await runGpu((t) => rk.adaptiveAvgPool2d(t, [oH, oW]), x, shape, (n) => randn(n, rng));
    const ref = adaptiveRef(x, shape, oH, oW, got.gy);
    assert.equal(got.shape, [shape[0], shape[1], oH, oW]);
    expectClose(got.y, ref.y, 1e-6, `adaptive ${shape}->${oH}x${oW} y`);
    expectClose(got.dx, ref.dx, 1e-6, `adaptive ${shape}->${oH}x${oW} dx`);
    const num = numericGrad((xx) => dot(got.gy, adaptiveRef(xx, shape, oH, oW).y), x);
    expectClose(ref.dx, num, 1e-7, 'adaptive reference dx vs numeric');
  }
});

test('no-grad forward (no argmax buffer) gives the same values; memory is released', async () => {
  const shape = [2, 3, 9, 7];
  const x = randn(2 * 3 * 9 * 7, rng);
  const before = rk.memoryStats().liveBytes;
  const y = await rk.tidyAsync(async () => rk.noGrad(() => read64(rk.maxPool2d(rk.tensor(x, shape), { kernel: 3, stride: 2, padding: 1 }))));
  expectClose(await y, maxPool2d(x, shape, { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }).y, 1e-7, 'no-grad max');
  await runGpu((t) => rk.avgPool2d(rk.maxPool2d(t, { kernel: 2 }), { kernel: 2 }), x, shape, (n) => randn(n, rng));
  assert.is(rk.memoryStats().liveBytes, before, 'live bytes after pooling with and without grad');
});

test('bad input gives clear errors', () => {
  const x = rk.zeros([1, 1, 4, 4]);
  assert.throws(() => rk.maxPool2d(x, { kernel: 5 }), /maxPool2d: kernel \[5, 5\] is larger than the padded input \[4, 4\]/);
  assert.throws(() => rk.maxPool2d(x, { kernel: 2, padding: 2 }), /maxPool2d: padding \[2, 2\] should be at most half of kernel size \[2, 2\]/);
  assert.throws(() => rk.avgPool2d(x, { kernel: 3, padding: 2 }), /avgPool2d: padding/);
  assert.throws(() => rk.maxPool2d(rk.zeros([4, 4]), { kernel: 2 }), /maxPool2d: input \(NCHW\) must have rank 4, got \[4, 4\]/);
  assert.throws(() => rk.avgPool2d(x, { kernel: 0 }), /avgPool2d: kernel \[0, 0\] must be integers >= 1/);
  assert.throws(() => rk.maxPool2d(x, { kernel: 2, stride: 0 }), /stride/);
  assert.throws(() => rk.adaptiveAvgPool2d(x, [0, 1]), /adaptiveAvgPool2d: output size \[0, 1\]/);
  x.dispose();
});

test.run();
