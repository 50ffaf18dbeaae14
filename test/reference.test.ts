// Proves the float64 CPU references in test/reference/ right, so GPU kernels can be judged by
// them: every analytic gradient is checked against central differences of the reference
// forward, and a handful of values are checked against numbers worked out by hand.

import { test } from 'uvu';
import * as assert from 'uvu/assert';

import {
  bceWithLogits,
  broadcastBinary,
  broadcastShape,
  concat,
  crossEntropy,
  logSoftmax,
  matmul,
  permute,
  reduce,
  reduceSumToShape,
  slice,
  softmax,
} from './reference/core.ts';
import { conv2d, conv2dBackward, type Conv2dOptions } from './reference/conv.ts';
import { batchNorm2dBackward, batchNorm2dEval, batchNorm2dTrain, updateRunningStats } from './reference/norm.ts';
import {
  avgPool2d,
  avgPool2dBackward,
  globalAvgPool,
  globalAvgPoolBackward,
  maxPool2d,
  maxPool2dBackward,
  type AvgPool2dOptions,
  type Pool2dOptions,
} from './reference/pool.ts';
import { kdLoss, kdLossMultiLabel } from './reference/kd.ts';
import { maxAbsDiff, numericGrad, randint, randn, randu, relL2, seededRandom } from './reference/gradcheck.ts';

const TOL = 1e-6;

/** Scalar probe sum(r * y): its gradient w.r.t. y is r, so backward(gy = r) must match it. */
function dot(r: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += r[i] * y[i];
  return s;
}

function assertGrad(analytic: Float64Array, numeric: Float64Array, what: string, tol = TOL): void {
  const e = relL2(analytic, numeric);
  assert.ok(e < tol, `${what}: rel L2 ${e.toExponential(2)} >= ${tol}`);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 1e-12): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}\n  got      [${Array.from(actual)}]\n  expected [${Array.from(expected)}]`);
}

const f64 = (a: number[]) => Float64Array.from(a);
const iota = (n: number, start = 1) => Float64Array.from({ length: n }, (_, i) => i + start);

// ---------------------------------------------------------------------------------------- core

test('broadcastShape / broadcastBinary / reduceSumToShape', () => {
  assert.equal(broadcastShape([2, 1, 3], [4, 1]), [2, 4, 3]);
  assert.equal(broadcastShape([], [3]), [3]);
  assert.throws(() => broadcastShape([2, 3], [4, 3]));

  // [2,1] + [3] -> [2,3]
  const r = broadcastBinary(f64([10, 20]), [2, 1], f64([1, 2, 3]), [3], (x, y) => x + y);
  assert.equal(r.shape, [2, 3]);
  assertClose(r.data, [11, 12, 13, 21, 22, 23], 'broadcast add');

  assertClose(reduceSumToShape(f64([1, 2, 3, 4, 5, 6]), [2, 3], [3]), [5, 7, 9], 'sum to [3]');
  assertClose(reduceSumToShape(f64([1, 2, 3, 4, 5, 6]), [2, 3], [2, 1]), [6, 15], 'sum to [2,1]');
  assertClose(reduceSumToShape(f64([1, 2, 3, 4, 5, 6]), [2, 3], [1]), [21], 'sum to [1]');

  // reduceSumToShape is the adjoint of broadcasting: check it via numericGrad of a broadcast product.
  const rng = seededRandom(1);
  const aShape = [3, 1, 4];
  const bShape = [2, 1];
  const a = randn(12, rng);
  const b = randn(2, rng);
  const outShape = broadcastShape(aShape, bShape);
  const rr = randn(24, rng);
  const mul = (x: number, y: number) => x * y;
  const gOut = broadcastBinary(rr, outShape, b, bShape, mul).data; // d/da of sum(r * a * b), before summing
  const da = reduceSumToShape(gOut, outShape, aShape);
  const db = reduceSumToShape(broadcastBinary(rr, outShape, a, aShape, mul).data, outShape, bShape);
  assertGrad(da, numericGrad((v) => dot(rr, broadcastBinary(v, aShape, b, bShape, mul).data), a), 'broadcast mul da');
  assertGrad(db, numericGrad((v) => dot(rr, broadcastBinary(a, aShape, v, bShape, mul).data), b), 'broadcast mul db');
});

test('reduce: sum / mean / max / var', () => {
  const x = f64([1, 2, 3, 4, 5, 6]); // [2,3]
  let r = reduce(x, [2, 3], [1], false, 'sum');
  assert.equal(r.shape, [2]);
  assertClose(r.data, [6, 15], 'sum axis 1');
  r = reduce(x, [2, 3], [0], true, 'mean');
  assert.equal(r.shape, [1, 3]);
  assertClose(r.data, [2.5, 3.5, 4.5], 'mean axis 0');
  r = reduce(x, [2, 3], [-1], false, 'max');
  assertClose(r.data, [3, 6], 'max axis -1');
  r = reduce(x, [2, 3], [0, 1], false, 'sum');
  assert.equal(r.shape, []);
  assertClose(r.data, [21], 'sum all');
  r = reduce(x, [2, 3], [1], false, 'var');
  assertClose(r.data, [2 / 3, 2 / 3], 'biased var');
  r = reduce(x, [2, 3], [1], false, 'var', { unbiased: true });
  assertClose(r.data, [1, 1], 'unbiased var');
  // Middle axis of a rank-3 tensor.
  r = reduce(iota(24, 0), [2, 3, 4], [1], true, 'sum');
  assert.equal(r.shape, [2, 1, 4]);
  assertClose(r.data, [12, 15, 18, 21, 48, 51, 54, 57], 'sum middle axis');
});

test('matmul with batch broadcasting', () => {
  const r = matmul(f64([1, 2, 3, 4]), [2, 2], f64([5, 6, 7, 8]), [2, 2]);
  assertClose(r.data, [19, 22, 43, 50], '2x2 matmul');

  const rng = seededRandom(2);
  const a = randn(2 * 1 * 3 * 4, rng); // [2,1,3,4]
  const b = randn(5 * 4 * 2, rng); // [5,4,2]
  const out = matmul(a, [2, 1, 3, 4], b, [5, 4, 2]);
  assert.equal(out.shape, [2, 5, 3, 2]);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 5; j++) {
      const single = matmul(a.subarray(i * 12, (i + 1) * 12), [3, 4], b.subarray(j * 8, (j + 1) * 8), [4, 2]);
      const got = out.data.subarray((i * 5 + j) * 6, (i * 5 + j + 1) * 6);
      assertClose(got, single.data, `batch (${i},${j})`);
    }
  }
});

test('permute / concat / slice', () => {
  const x = iota(6, 0); // [2,3]
  const t = permute(x, [2, 3], [1, 0]);
  assert.equal(t.shape, [3, 2]);
  assertClose(t.data, [0, 3, 1, 4, 2, 5], 'transpose');

  const y = iota(24, 0);
  const p = permute(y, [2, 3, 4], [2, 0, 1]);
  assert.equal(p.shape, [4, 2, 3]);
  // p[k,i,j] = y[i,j,k]
  assert.is(p.data[(3 * 2 + 1) * 3 + 2], y[(1 * 3 + 2) * 4 + 3]);
  const back = permute(p.data, p.shape, [1, 2, 0]);
  assertClose(back.data, y, 'permute round trip');

  const c = concat([{ data: f64([1, 2, 3, 4]), shape: [2, 2] }, { data: f64([9, 8]), shape: [2, 1] }], 1);
  assert.equal(c.shape, [2, 3]);
  assertClose(c.data, [1, 2, 9, 3, 4, 8], 'concat axis 1');
  const c0 = concat([{ data: f64([1, 2]), shape: [1, 2] }, { data: f64([3, 4, 5, 6]), shape: [2, 2] }], 0);
  assertClose(c0.data, [1, 2, 3, 4, 5, 6], 'concat axis 0');

  const s = slice(y, [2, 3, 4], 1, 1, 3);
  assert.equal(s.shape, [2, 2, 4]);
  assertClose(s.data, [4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23], 'slice axis 1');
  assertClose(slice(y, [2, 3, 4], -1, -2, 4).data, slice(y, [2, 3, 4], 2, 2, 4).data, 'negative slice');
  // Slicing into pieces and concatenating restores the tensor.
  const parts = [slice(y, [2, 3, 4], 2, 0, 1), slice(y, [2, 3, 4], 2, 1, 4)];
  assertClose(concat(parts, 2).data, y, 'slice+concat');
});

test('softmax / logSoftmax', () => {
  const rng = seededRandom(3);
  const x = randn(12, rng, 3);
  const sm = softmax(x, [3, 4], 1);
  for (let i = 0; i < 3; i++) {
    const s = sm[i * 4] + sm[i * 4 + 1] + sm[i * 4 + 2] + sm[i * 4 + 3];
    assert.ok(Math.abs(s - 1) < 1e-14, `row ${i} sums to ${s}`);
  }
  const sm0 = softmax(x, [3, 4], 0);
  for (let j = 0; j < 4; j++) {
    const s = sm0[j] + sm0[4 + j] + sm0[8 + j];
    assert.ok(Math.abs(s - 1) < 1e-14, `column ${j} sums to ${s}`);
  }
  assertClose(softmax(f64([0, Math.log(3)]), [2], 0), [0.25, 0.75], 'softmax hand value');
  // Huge logits: stays finite, exact answer [0, -1e4].
  const ls = logSoftmax(f64([1e4, 0]), [1, 2], 1);
  assertClose(ls, [0, -1e4], 'logSoftmax at 1e4');
  assertClose(softmax(f64([1e4, 1e4]), [2], 0), [0.5, 0.5], 'softmax at 1e4');
});

test('crossEntropy: values and gradient', () => {
  const ce0 = crossEntropy(f64([0, 0, 5, 5]), Int32Array.from([0, 1]));
  assert.ok(Math.abs(ce0.loss - Math.LN2) < 1e-15, 'CE of uniform 2-class logits is ln 2');
  assertClose(ce0.dlogits, [-0.25, 0.25, 0.25, -0.25], 'CE dlogits hand value');
  // Weighted: sum(w l)/sum(w); sample 1 has loss ln(1 + e^-3) (z=[3,0], y=0).
  const cew = crossEntropy(f64([0, 0, 3, 0]), Int32Array.from([1, 0]), f64([1, 3]));
  const expected = (Math.LN2 + 3 * Math.log1p(Math.exp(-3))) / 4;
  assert.ok(Math.abs(cew.loss - expected) < 1e-15, 'weighted CE value');

  const rng = seededRandom(4);
  const N = 5;
  const C = 7;
  const z = randn(N * C, rng, 2);
  const y = randint(N, C, rng);
  const w = randu(N, rng, 0.1, 2);
  for (const weights of [undefined, w]) {
    const { dlogits } = crossEntropy(z, y, weights);
    assertGrad(dlogits, numericGrad((v) => crossEntropy(v, y, weights).loss, z), `CE grad weights=${!!weights}`);
  }
});

test('bceWithLogits: values and gradient', () => {
  const b = bceWithLogits(f64([0, 0]), f64([1, 0]), [1, 2]);
  assert.ok(Math.abs(b.loss - Math.LN2) < 1e-15, 'BCE at logit 0 is ln 2');
  assertClose(b.dlogits, [-0.25, 0.25], 'BCE grad hand value');
  // Stable at huge logits: right answer costs 0, wrong answer costs |x|.
  const big = bceWithLogits(f64([1e4, -1e4, 1e4]), f64([1, 0, 0]), [3]);
  assert.ok(Math.abs(big.loss - 1e4 / 3) < 1e-9, `BCE at 1e4: ${big.loss}`);
  assertClose(big.dlogits, [0, 0, 1 / 3], 'BCE grad at 1e4');

  const rng = seededRandom(5);
  const shape = [4, 3];
  const x = randn(12, rng, 2);
  const t = randu(12, rng); // soft targets are fine too
  for (const weights of [undefined, randu(4, rng, 0.1, 2), randu(12, rng, 0.1, 2)]) {
    const { dlogits } = bceWithLogits(x, t, shape, weights);
    const num = numericGrad((v) => bceWithLogits(v, t, shape, weights).loss, x);
    assertGrad(dlogits, num, `BCE grad weights=${weights?.length ?? 'none'}`);
  }
  // Per-sample weights mean sum(w_i * sum_c l_ic) / (C * sum w).
  const w = f64([1, 2, 0, 1]);
  const per = bceWithLogits(x, t, shape, w).loss;
  let manual = 0;
  for (let i = 0; i < 12; i++) manual += w[Math.floor(i / 3)] * bceWithLogits(x.subarray(i, i + 1), t.subarray(i, i + 1), [1]).loss;
  assert.ok(Math.abs(per - manual / (3 * 4)) < 1e-14, 'per-sample weighted BCE');
});

// ---------------------------------------------------------------------------------------- conv

const convOpts = (o: Partial<Conv2dOptions>): Conv2dOptions => ({
  stride: [1, 1],
  padding: [0, 0, 0, 0],
  dilation: [1, 1],
  groups: 1,
  ...o,
});

test('conv2d: hand values, delta kernel, output size', () => {
  // 2x2 box filter with stride 2 on 1..16 sums the 2x2 blocks; bias adds 1.
  const r = conv2d(iota(16), [1, 1, 4, 4], f64([1, 1, 1, 1]), [1, 1, 2, 2], f64([1]), convOpts({ stride: [2, 2] }));
  assert.equal(r.shape, [1, 1, 2, 2]);
  assertClose(r.y, [15, 23, 47, 55], 'box filter');

  // A centred delta kernel with 'same' padding returns the input (per channel, via an identity over channels).
  const rng = seededRandom(6);
  const x = randn(2 * 3 * 5 * 6, rng);
  const w = new Float64Array(3 * 3 * 3 * 3);
  for (let c = 0; c < 3; c++) w[((c * 3 + c) * 3 + 1) * 3 + 1] = 1;
  const id = conv2d(x, [2, 3, 5, 6], w, [3, 3, 3, 3], null, convOpts({ padding: [1, 1, 1, 1] }));
  assert.equal(id.shape, [2, 3, 5, 6]);
  assertClose(id.y, x, 'delta kernel');
  // Dilated delta: the kernel centre is still at offset dil*1, so padding 2 with dilation 2 is identity.
  const idd = conv2d(x, [2, 3, 5, 6], w, [3, 3, 3, 3], null, convOpts({ padding: [2, 2, 2, 2], dilation: [2, 2] }));
  assertClose(idd.y, x, 'dilated delta kernel');
  // Depthwise delta shifted by one column: y[h,w] = x[h,w+1] (zero past the edge).
  const wd = new Float64Array(3 * 1 * 1 * 2);
  for (let c = 0; c < 3; c++) wd[c * 2 + 1] = 1;
  const sh = conv2d(x, [2, 3, 5, 6], wd, [3, 1, 1, 2], null, convOpts({ groups: 3, padding: [0, 0, 0, 1] }));
  assert.equal(sh.shape, [2, 3, 5, 6]);
  for (let p = 0; p < 2 * 3 * 5; p++) {
    for (let q = 0; q < 6; q++) assert.is(sh.y[p * 6 + q], q < 5 ? x[p * 6 + q + 1] : 0);
  }

  // PyTorch output size: floor((H + top + bottom - dil*(k-1) - 1)/stride) + 1.
  const o = conv2d(randn(1 * 1 * 7 * 8, rng), [1, 1, 7, 8], randn(9, rng), [1, 1, 3, 3], null,
    convOpts({ stride: [2, 3], padding: [1, 0, 2, 1], dilation: [2, 1] }));
  assert.equal(o.shape, [1, 1, Math.floor((7 + 1 - 4 - 1) / 2) + 1, Math.floor((8 + 3 - 2 - 1) / 3) + 1]);
});

test('conv2d: 1x1 conv equals matmul; grouped conv equals per-group convs', () => {
  const rng = seededRandom(7);
  const [N, Cin, H, W, Cout] = [2, 4, 3, 5, 6];
  const x = randn(N * Cin * H * W, rng);
  const w = randn(Cout * Cin, rng);
  const y = conv2d(x, [N, Cin, H, W], w, [Cout, Cin, 1, 1], null, convOpts({})).y;
  for (let n = 0; n < N; n++) {
    const m = matmul(w, [Cout, Cin], x.subarray(n * Cin * H * W, (n + 1) * Cin * H * W), [Cin, H * W]);
    assertClose(y.subarray(n * Cout * H * W, (n + 1) * Cout * H * W), m.data, `1x1 conv batch ${n}`, 1e-13);
  }

  const G = 2;
  const wg = randn(Cout * (Cin / G) * 3 * 3, rng);
  const o = convOpts({ groups: G, padding: [1, 0, 1, 2], stride: [1, 2] });
  const yg = conv2d(x, [N, Cin, H, W], wg, [Cout, Cin / G, 3, 3], null, o);
  const pieces = [];
  for (let g = 0; g < G; g++) {
    const xg = slice(x, [N, Cin, H, W], 1, g * (Cin / G), (g + 1) * (Cin / G));
    const wgg = slice(wg, [Cout, Cin / G, 3, 3], 0, g * (Cout / G), (g + 1) * (Cout / G));
    const r = conv2d(xg.data, xg.shape, wgg.data, wgg.shape, null, { ...o, groups: 1 });
    pieces.push({ data: r.y, shape: r.shape });
  }
  assertClose(yg.y, concat(pieces, 1).data, 'grouped conv = per-group convs');
});

test('conv2dBackward matches numeric gradients (stride, asymmetric padding, dilation, groups)', () => {
  const cases: { name: string; x: number[]; w: number[]; o: Conv2dOptions }[] = [
    { name: 'plain 3x3 pad 1', x: [2, 3, 5, 6], w: [4, 3, 3, 3], o: convOpts({ padding: [1, 1, 1, 1] }) },
    { name: 'stride 2 asym pad', x: [2, 2, 7, 6], w: [3, 2, 3, 2], o: convOpts({ stride: [2, 2], padding: [1, 0, 2, 1] }) },
    { name: 'dilation', x: [1, 2, 7, 7], w: [2, 2, 3, 3], o: convOpts({ dilation: [2, 3], padding: [2, 1, 0, 3] }) },
    {
      name: 'groups 2 + stride + dilation',
      x: [2, 4, 6, 7],
      w: [6, 2, 2, 3],
      o: convOpts({ groups: 2, stride: [2, 1], padding: [0, 1, 1, 0], dilation: [1, 2] }),
    },
    { name: 'depthwise', x: [2, 3, 5, 5], w: [3, 1, 3, 3], o: convOpts({ groups: 3, padding: [2, 2, 2, 2], dilation: [2, 2] }) },
    { name: '1x1 stride 2 odd size', x: [2, 3, 7, 5], w: [4, 3, 1, 1], o: convOpts({ stride: [2, 2] }) },
    { name: 'depth multiplier 2, stride 3', x: [1, 2, 8, 8], w: [4, 1, 3, 3], o: convOpts({ groups: 2, stride: [3, 3], padding: [1, 1, 1, 1] }) },
  ];
  const rng = seededRandom(8);
  for (const c of cases) {
    const x = randn(c.x.reduce((a, b) => a * b), rng);
    const w = randn(c.w.reduce((a, b) => a * b), rng);
    const bias = randn(c.w[0], rng);
    const { y, shape } = conv2d(x, c.x, w, c.w, bias, c.o);
    assert.is(y.length, shape.reduce((a, b) => a * b));
    const r = randn(y.length, rng);
    const { dx, dw, db } = conv2dBackward(x, c.x, w, c.w, r, c.o);
    assertGrad(dx, numericGrad((v) => dot(r, conv2d(v, c.x, w, c.w, bias, c.o).y), x), `${c.name} dx`);
    assertGrad(dw, numericGrad((v) => dot(r, conv2d(x, c.x, v, c.w, bias, c.o).y), w), `${c.name} dw`);
    assertGrad(db, numericGrad((v) => dot(r, conv2d(x, c.x, w, c.w, v, c.o).y), bias), `${c.name} db`);
  }
});

test('conv2d reference is fast enough for [8,64,28,28] x [64,64,3,3]', () => {
  const rng = seededRandom(9);
  const xs = [8, 64, 28, 28];
  const ws = [64, 64, 3, 3];
  const x = randn(8 * 64 * 28 * 28, rng);
  const w = randn(64 * 64 * 9, rng);
  const o = convOpts({ padding: [1, 1, 1, 1] });
  const t0 = performance.now();
  const { y } = conv2d(x, xs, w, ws, null, o);
  const t1 = performance.now();
  conv2dBackward(x, xs, w, ws, y, o);
  const t2 = performance.now();
  assert.ok(t1 - t0 < 10_000 && t2 - t1 < 20_000, `too slow: forward ${t1 - t0} ms, backward ${t2 - t1} ms`);
});

// ---------------------------------------------------------------------------------------- norm

test('batchNorm2d: statistics, eval mode, running stats', () => {
  const rng = seededRandom(10);
  const shape = [3, 2, 2, 3]; // m = 18 per channel
  const x = randn(36, rng, 2);
  const gamma = f64([1.5, -0.5]);
  const beta = f64([0.25, 2]);
  const r = batchNorm2dTrain(x, shape, gamma, beta, 0);
  const mean = reduce(x, shape, [0, 2, 3], false, 'mean').data;
  const vb = reduce(x, shape, [0, 2, 3], false, 'var').data;
  const vu = reduce(x, shape, [0, 2, 3], false, 'var', { unbiased: true }).data;
  assertClose(r.mean, mean, 'mean');
  assertClose(r.varBiased, vb, 'biased var');
  assertClose(r.varUnbiased, vu, 'unbiased var');
  assertClose(r.invStd, vb.map((v) => 1 / Math.sqrt(v)), 'invStd');
  // With eps = 0 each output channel has mean beta and variance gamma^2.
  assertClose(reduce(r.y, shape, [0, 2, 3], false, 'mean').data, beta, 'output mean', 1e-14);
  assertClose(reduce(r.y, shape, [0, 2, 3], false, 'var').data, gamma.map((g) => g * g), 'output var', 1e-13);

  // Eval with running stats set to the batch's (mean, biased var) reproduces train mode.
  const tr = batchNorm2dTrain(x, shape, gamma, beta, 1e-5);
  assertClose(batchNorm2dEval(x, shape, tr.mean, tr.varBiased, gamma, beta, 1e-5), tr.y, 'eval = train', 1e-14);
  // Eval hand value: (x - 1) / sqrt(3 + 1) * 2 + 0.5.
  assertClose(batchNorm2dEval(f64([5, -1]), [2, 1, 1, 1], f64([1]), f64([3]), f64([2]), f64([0.5]), 1), [4.5, -1.5], 'eval hand');

  const up = updateRunningStats(f64([0, 1]), f64([1, 2]), f64([2, 3]), f64([3, 4]), 0.1);
  assertClose(up.runMean, [0.2, 1.2], 'running mean', 1e-15);
  assertClose(up.runVar, [1.2, 2.2], 'running var', 1e-15);
  const upd = updateRunningStats(f64([0]), f64([1]), f64([10]), f64([5]));
  assertClose(upd.runMean, [1], 'default momentum 0.1 mean', 1e-15);
  assertClose(upd.runVar, [1.4], 'default momentum 0.1 var', 1e-15);
});

test('batchNorm2dBackward matches numeric gradients', () => {
  const rng = seededRandom(11);
  for (const shape of [[3, 2, 2, 3], [4, 3, 1, 1], [1, 2, 3, 4]]) {
    const n = shape.reduce((a, b) => a * b);
    const C = shape[1];
    const x = randn(n, rng, 2);
    const gamma = randn(C, rng);
    const beta = randn(C, rng);
    const r = randn(n, rng);
    const eps = 1e-3;
    for (const g of [gamma, null]) {
      const { dx, dgamma, dbeta } = batchNorm2dBackward(x, shape, g, r, eps);
      const tag = `[${shape}] gamma=${g ? 'yes' : 'null'}`;
      assertGrad(dx, numericGrad((v) => dot(r, batchNorm2dTrain(v, shape, g, beta, eps).y), x), `${tag} dx`);
      assertGrad(dgamma, numericGrad((v) => dot(r, batchNorm2dTrain(x, shape, v, beta, eps).y), gamma), `${tag} dgamma`);
      assertGrad(dbeta, numericGrad((v) => dot(r, batchNorm2dTrain(x, shape, g, v, eps).y), beta), `${tag} dbeta`);
    }
  }
});

// ---------------------------------------------------------------------------------------- pool

test('maxPool2d / avgPool2d / globalAvgPool: hand values', () => {
  const x = iota(16); // 4x4 plane of 1..16
  let m = maxPool2d(x, [1, 1, 4, 4], { kernel: [2, 2] });
  assert.equal(m.shape, [1, 1, 2, 2]);
  assertClose(m.y, [6, 8, 14, 16], 'max 2x2');
  assert.equal(Array.from(m.argmax), [5, 7, 13, 15]);
  m = maxPool2d(x, [1, 1, 4, 4], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
  assert.equal(m.shape, [1, 1, 2, 2]);
  assertClose(m.y, [6, 8, 14, 16], 'max 3x3 s2 p1');
  assert.equal(Array.from(m.argmax), [5, 7, 13, 15]);
  // Padding is -inf, not 0: an all-negative plane never yields 0.
  const neg = maxPool2d(f64([-5, -7, -6, -5]), [1, 1, 2, 2], { kernel: [2, 2], stride: [1, 1], padding: [1, 1] });
  assertClose(neg.y, [-5, -5, -7, -5, -5, -5, -6, -5, -5], 'max with -inf padding');
  // Ties: the first maximum in row-major window order wins.
  const tie = maxPool2d(f64([1, 3, 3, 3]), [1, 1, 2, 2], { kernel: [2, 2] });
  assert.equal(Array.from(tie.argmax), [1]);

  const a = avgPool2d(x, [1, 1, 4, 4], { kernel: [2, 2] });
  assertClose(a.y, [3.5, 5.5, 11.5, 13.5], 'avg 2x2');
  const inc = avgPool2d(x, [1, 1, 4, 4], { kernel: [2, 2], stride: [2, 2], padding: [1, 1] });
  assert.equal(inc.shape, [1, 1, 3, 3]);
  assertClose(inc.y, [1 / 4, (2 + 3) / 4, 4 / 4, (5 + 9) / 4, (6 + 7 + 10 + 11) / 4, (8 + 12) / 4, 13 / 4, (14 + 15) / 4, 16 / 4], 'avg include pad');
  const exc = avgPool2d(x, [1, 1, 4, 4], { kernel: [2, 2], stride: [2, 2], padding: [1, 1], countIncludePad: false });
  assertClose(exc.y, [1, 2.5, 4, 7, 8.5, 10, 13, 14.5, 16], 'avg exclude pad');

  const g = globalAvgPool(iota(8), [1, 2, 2, 2]);
  assert.equal(g.shape, [1, 2, 1, 1]);
  assertClose(g.y, [2.5, 6.5], 'global avg');
});

test('pool backwards match numeric gradients', () => {
  const rng = seededRandom(12);
  const xShape = [2, 3, 7, 6];
  const x = randn(2 * 3 * 7 * 6, rng);

  const maxCases: Pool2dOptions[] = [
    { kernel: [2, 2] },
    { kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
    { kernel: [3, 2], stride: [1, 2], padding: [1, 0] },
  ];
  for (const o of maxCases) {
    const { y, shape, argmax } = maxPool2d(x, xShape, o);
    const r = randn(y.length, rng);
    const dx = maxPool2dBackward(r, argmax, xShape, shape);
    assertGrad(dx, numericGrad((v) => dot(r, maxPool2d(v, xShape, o).y), x), `maxPool ${JSON.stringify(o)}`);
  }

  const avgCases: AvgPool2dOptions[] = [
    { kernel: [2, 2] },
    { kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
    { kernel: [3, 3], stride: [2, 2], padding: [1, 1], countIncludePad: false },
    { kernel: [3, 2], stride: [1, 2], padding: [1, 1], countIncludePad: false },
  ];
  for (const o of avgCases) {
    const { y } = avgPool2d(x, xShape, o);
    const r = randn(y.length, rng);
    const dx = avgPool2dBackward(r, xShape, o);
    assertGrad(dx, numericGrad((v) => dot(r, avgPool2d(v, xShape, o).y), x), `avgPool ${JSON.stringify(o)}`);
  }

  const r = randn(6, rng);
  const dx = globalAvgPoolBackward(r, xShape);
  assertGrad(dx, numericGrad((v) => dot(r, globalAvgPool(v, xShape).y), x), 'globalAvgPool');
});

// ---------------------------------------------------------------------------------------- KD

test('kdLoss: analytic gradient matches numeric for T in {1,4,20}, alpha in {0,0.5,1}', () => {
  const rng = seededRandom(13);
  const N = 4;
  const C = 5;
  const zs = randn(N * C, rng, 2);
  const zt = randn(N * C, rng, 2);
  const y = randint(N, C, rng);
  const w = randu(N, rng, 0.1, 2);
  const pt = softmax(randn(N * C, rng, 2), [N, C], 1);
  for (const T of [1, 4, 20]) {
    for (const alpha of [0, 0.5, 1]) {
      for (const weights of [undefined, w]) {
        for (const prob of [false, true]) {
          const teacher = prob ? pt : zt;
          const tag = `T=${T} alpha=${alpha} weights=${!!weights} teacherIsProb=${prob}`;
          const { grad } = kdLoss(zs, teacher, y, T, alpha, weights, prob);
          assertGrad(grad, numericGrad((v) => kdLoss(v, teacher, y, T, alpha, weights, prob).loss, zs), tag);
        }
      }
    }
  }
});

test('kdLoss: sanity values', () => {
  const rng = seededRandom(14);
  const N = 3;
  const C = 4;
  const zs = randn(N * C, rng, 2);
  const zt = randn(N * C, rng, 2);
  const y = randint(N, C, rng);
  const w = randu(N, rng, 0.1, 2);

  // alpha = 0 is plain (weighted) cross-entropy.
  for (const weights of [undefined, w]) {
    const kd = kdLoss(zs, zt, y, 4, 0, weights);
    const ce = crossEntropy(zs, y, weights);
    assert.ok(Math.abs(kd.loss - ce.loss) < 1e-15, 'alpha=0 equals CE');
    assertClose(kd.grad, ce.dlogits, 'alpha=0 grad equals CE grad', 1e-16);
  }
  // Student == teacher: the KL part and its gradient vanish exactly.
  for (const T of [0.5, 1, 4, 20]) {
    const same = kdLoss(zs, zs, y, T, 1);
    assert.is(same.loss, 0, `zs==zt loss at T=${T}`);
    assertClose(same.grad, new Float64Array(N * C), 'zs==zt grad', 1e-16);
  }
  // Hand value: C=2, teacher probabilities [1, 0] at T=1, student logits [0,0]: KL = ln 2.
  const hand = kdLoss(f64([0, 0]), f64([1, 0]), Int32Array.from([0]), 1, 1, undefined, true);
  assert.ok(Math.abs(hand.loss - Math.LN2) < 1e-15, `KL([1,0] || [.5,.5]) = ln 2, got ${hand.loss}`);
  // T^2 scaling: teacher probs [1,0], student logits [0,0], T=2 -> pt = [1,0] still, ps=[.5,.5]: 4 ln 2.
  const hand2 = kdLoss(f64([0, 0]), f64([1, 0]), Int32Array.from([1]), 2, 1, undefined, true);
  assert.ok(Math.abs(hand2.loss - 4 * Math.LN2) < 1e-14, `T^2 * KL = 4 ln 2, got ${hand2.loss}`);
  // Teacher probabilities p behave exactly like teacher logits log(p).
  const p = softmax(zt, [N, C], 1);
  for (const T of [1, 3]) {
    const a = kdLoss(zs, p, y, T, 0.7, w, true);
    const b = kdLoss(zs, p.map(Math.log), y, T, 0.7, w, false);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-13, 'prob teacher = log-prob logits');
    assertClose(a.grad, b.grad, 'prob teacher grad', 1e-14);
  }
  // Huge logits stay finite for every temperature; here student and teacher disagree by 2e4.
  const zsBig = f64([1e4, -1e4, 0, 0, 1e4, 0]);
  const ztBig = f64([-1e4, 1e4, 0, 1e4, 0, 0]);
  for (const T of [0.5, 1, 4, 20]) {
    const r = kdLoss(zsBig, ztBig, Int32Array.from([1, 2]), T, 0.5);
    assert.ok(Number.isFinite(r.loss) && r.grad.every(Number.isFinite), `finite at 1e4, T=${T}: ${r.loss}`);
    assert.ok(r.loss > 0, 'positive loss');
  }
  // Row 0 at T=1, alpha=1: KL(onehot(1) || ps) = -log ps_1 = 2e4 (up to e^-2e4 terms).
  const big1 = kdLoss(zsBig.subarray(0, 3), ztBig.subarray(0, 3), Int32Array.from([0]), 1, 1);
  assert.ok(Math.abs(big1.loss - 2e4) < 1e-9, `KL at 1e4: ${big1.loss}`);
});

test('kdLossMultiLabel: gradient and sanity values', () => {
  const rng = seededRandom(15);
  const N = 3;
  const C = 4;
  const zs = randn(N * C, rng, 2);
  const zt = randn(N * C, rng, 2);
  const t = Float64Array.from(randint(N * C, 2, rng));
  const wS = randu(N, rng, 0.1, 2);
  const wE = randu(N * C, rng, 0.1, 2);
  for (const T of [1, 4, 20]) {
    for (const alpha of [0, 0.5, 1]) {
      for (const weights of [undefined, wS, wE]) {
        const tag = `T=${T} alpha=${alpha} weights=${weights?.length ?? 'none'}`;
        const { grad } = kdLossMultiLabel(zs, zt, t, T, alpha, weights);
        assertGrad(grad, numericGrad((v) => kdLossMultiLabel(v, zt, t, T, alpha, weights).loss, zs), tag);
      }
    }
  }

  // alpha = 0 is mean BCE-with-logits over all N*C elements (weights per sample or element).
  for (const weights of [undefined, wS, wE]) {
    const kd = kdLossMultiLabel(zs, zt, t, 4, 0, weights);
    const bce = bceWithLogits(zs, t, [N, C], weights);
    assert.ok(Math.abs(kd.loss - bce.loss) < 1e-15, 'alpha=0 equals BCE');
    assertClose(kd.grad, bce.dlogits, 'alpha=0 grad equals BCE grad', 1e-16);
  }
  // Student == teacher: no KL.
  const same = kdLossMultiLabel(zs, zs, t, 4, 1);
  assert.is(same.loss, 0, 'zs==zt KL is 0');
  assertClose(same.grad, new Float64Array(N * C), 'zs==zt grad', 1e-16);
  // Hand value: one element, teacher logit +inf-ish (p=1), student 0 (q=.5), T=1: KL = ln 2.
  const hand = kdLossMultiLabel(f64([0]), f64([1e4]), f64([1]), 1, 1);
  assert.ok(Math.abs(hand.loss - Math.LN2) < 1e-15, `binary KL hand value ${hand.loss}`);
  // Mean over classes and batch: two identical elements give the same loss as one.
  const one = kdLossMultiLabel(f64([0.3]), f64([-1.2]), f64([1]), 2, 0.5).loss;
  const two = kdLossMultiLabel(f64([0.3, 0.3]), f64([-1.2, -1.2]), f64([1, 1]), 2, 0.5).loss;
  assert.ok(Math.abs(one - two) < 1e-15, 'averaged over elements');
  // Finite at huge logits for every temperature.
  for (const T of [0.5, 1, 4, 20]) {
    const r = kdLossMultiLabel(f64([1e4, -1e4, 1e4, 0]), f64([-1e4, 1e4, 1e4, -1e4]), f64([0, 1, 1, 0]), T, 0.5);
    assert.ok(Number.isFinite(r.loss) && r.grad.every(Number.isFinite), `finite at 1e4, T=${T}: ${r.loss}`);
  }
});

// ---------------------------------------------------------------------------------------- gradcheck

test('gradcheck helpers', () => {
  // numericGrad of a known function and no mutation of its input.
  const x = f64([0.3, -1.2, 2]);
  const g = numericGrad((v) => v[0] * v[0] + Math.sin(v[1]) * v[2], x);
  assertGrad(g, f64([0.6, Math.cos(-1.2) * 2, Math.sin(-1.2)]), 'numericGrad of a known function', 1e-9);
  assertClose(x, [0.3, -1.2, 2], 'input untouched', 0);
  assert.ok(Math.abs(relL2(f64([3, 4]), f64([0, 0])) - 5e300) < 1e290, 'relL2 with zero reference uses tiny floor');
  assert.is(relL2(f64([1, 1]), f64([1, 1])), 0);
  assert.is(maxAbsDiff(f64([1, 2]), f64([1.5, 4])), 2);

  // Same seed, same stream; normals look standard.
  const a = seededRandom(42);
  const b = seededRandom(42);
  for (let i = 0; i < 5; i++) assert.is(a.uniform(), b.uniform());
  const z = randn(20000, seededRandom(43));
  const mean = z.reduce((s, v) => s + v, 0) / z.length;
  const variance = z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length;
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(variance - 1) < 0.05, `randn mean ${mean} var ${variance}`);
  const k = randint(1000, 7, seededRandom(44));
  assert.ok(k.every((v) => v >= 0 && v < 7) && new Set(k).size === 7, 'randint covers [0, 7)');
});

test.run();
