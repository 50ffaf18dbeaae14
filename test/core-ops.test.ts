// Core ops on the GPU against the float64 references of test/reference/core.ts: unary,
// binary (broadcasting both ways), reductions, shape ops, concat/slice/split, softmax,
// gather and where. Forward on fresh random awkward shapes; backward against central finite
// differences of the reference on small shapes and against analytic reference gradients on
// larger ones. Inputs are rounded to f32 before the reference sees them, so only kernel
// error is measured. Tolerances are relative L2 errors:
//   forward: 1e-6 exact ops (copies, max, compare, where), 2e-6 elementwise arithmetic,
//            1e-5 transcendental/reductions/softmax; gradients: 1e-4 (f32 vs float64 FD).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import * as ref from './reference/core.ts';
import { numericGrad, seededRandom } from './reference/gradcheck.ts';
import { recorder } from '../engine/program.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
console.log(`core-ops: seed ${SEED} (ROSKD_SEED=${SEED} replays this run)`);

interface T64 {
  data: Float64Array;
  shape: number[];
}
/** tolerance of exact ops (copies, selects): expectClose needs err < tol */
const EXACT = 1e-12;
const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));
const uni = (lo: number, hi: number): number => lo + (hi - lo) * rng.uniform();
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.uniform() * xs.length)];

/** Random f32-representable tensor, values uniform in [lo, hi) kept `gap` away from each kink. */
function randT(shape: number[], lo = -2, hi = 2, kinks: number[] = [], gap = 1e-3): T64 {
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    let v: number;
    do v = uni(lo, hi);
    while (kinks.some((k) => Math.abs(v - k) < gap));
    data[i] = v;
  }
  return { data: f32(data), shape };
}
const up = (t: T64): rk.Tensor => rk.tensor(Float32Array.from(t.data), t.shape);
const AWK = [1, 2, 3, 5, 7];
/** A random awkward shape of the given rank with at most `cap` elements. */
function randShape(rank: number, cap = 400): number[] {
  for (;;) {
    const s = Array.from({ length: rank }, () => pick(AWK));
    if (numel(s) <= cap) return s;
  }
}
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const randn = (n: number): Float64Array => f32(Float64Array.from({ length: n }, () => rng.normal()));

/** GPU gradients of sum(probe * f(xs)) w.r.t. the inputs listed in `wrt`, through the autograd. */
async function gpuGrads(f: (xs: rk.Tensor[]) => rk.Tensor, inputs: T64[], probe: Float64Array, wrt: number[]): Promise<Float64Array[]> {
  return rk.tidyAsync(async () => {
    const xs = inputs.map(up);
    for (const i of wrt) xs[i].requireGrad();
    const y = f(xs);
    rk.sum(rk.mul(y, rk.tensor(Float32Array.from(probe), y.shape))).backward();
    const out: Float64Array[] = [];
    for (const i of wrt) {
      const g = xs[i].grad;
      assert.ok(g, `no gradient reached input ${i}`);
      assert.equal([...g.shape], inputs[i].shape, `gradient shape of input ${i}`);
      out.push(await read64(g));
      g.dispose();
      xs[i].grad = null;
    }
    return out;
  });
}

/** For each input element i, sum_j |probe_j * dy_j/dx_i| (central differences of the reference). */
function absTermSums(f: (x: Float64Array) => ArrayLike<number>, x: Float64Array, probe: Float64Array, h = 1e-6): Float64Array {
  const xx = Float64Array.from(x);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const orig = xx[i];
    xx[i] = orig + h;
    const fp = Float64Array.from(f(xx));
    xx[i] = orig - h;
    const fm = f(xx);
    xx[i] = orig;
    for (let j = 0; j < fp.length; j++) out[i] += Math.abs(probe[j] * ((fp[j] - fm[j]) / (2 * h)));
  }
  return out;
}

/** Backward vs central differences of the float64 reference (small shapes). */
async function checkFD(name: string, f: (xs: rk.Tensor[]) => rk.Tensor, refF: (xs: Float64Array[]) => ArrayLike<number>, inputs: T64[], wrt = [0], tol = 1e-4, derivAtol = 0): Promise<void> {
  const probe = randn(refF(inputs.map((t) => t.data)).length);
  const got = await gpuGrads(f, inputs, probe, wrt);
  wrt.forEach((i, k) => {
    const fi = (xi: Float64Array): ArrayLike<number> => refF(inputs.map((t, j) => (j === i ? xi : t.data)));
    const want = numericGrad((xi) => dot(probe, fi(xi)), inputs[i].data);
    // A gradient element is a float32 sum of probe_j * dy_j/dx terms that may nearly cancel (e.g.
    // a broadcast scalar's gradient sums the whole probe): accept the rounding bound of that sum,
    // 4 * n * eps32 * sum_j |probe_j * dy_j/dx|, as an absolute floor beside the relative bound.
    // derivAtol: the absolute accuracy of one float32 derivative (e.g. sigmoid's s(1-s) in the tails)
    const atol = 4 * probe.length * 2 ** -24 * Math.max(...absTermSums(fi, inputs[i].data, probe)) + derivAtol * Math.max(...probe.map(Math.abs));
    expectClose(got[k], want, tol, `${name}: d/d(input ${i}) ${JSON.stringify(inputs.map((t) => t.shape))} vs finite differences (seed ${SEED})`, atol);
  });
}

/** Backward vs an analytic reference gradient (larger shapes). */
async function checkAnalytic(name: string, f: (xs: rk.Tensor[]) => rk.Tensor, refGrad: (xs: Float64Array[], probe: Float64Array) => Float64Array[], outSize: number, inputs: T64[], wrt = [0], tol = 1e-4): Promise<void> {
  const probe = randn(outSize);
  const got = await gpuGrads(f, inputs, probe, wrt);
  const want = refGrad(inputs.map((t) => t.data), probe);
  wrt.forEach((i, k) => expectClose(got[k], want[k], tol, `${name}: d/d(input ${i}) ${JSON.stringify(inputs.map((t) => t.shape))} vs analytic reference (seed ${SEED})`));
}

async function forward(name: string, y: rk.Tensor, want: ArrayLike<number>, wantShape: number[], tol: number, atol = 0): Promise<void> {
  assert.equal([...y.shape], wantShape, `${name}: output shape`);
  expectClose(await read64(y), want, tol, `${name} ${JSON.stringify(wantShape)} (seed ${SEED})`, atol);
  y.dispose();
}

test.before(gpuInit);

// ---- unary ---------------------------------------------------------------------------------

interface UnaryCase {
  name: string;
  gpu: (x: rk.Tensor) => rk.Tensor;
  f: (v: number) => number;
  df: (v: number) => number;
  lo?: number;
  hi?: number;
  kinks?: number[];
  tol?: number;
  /** absolute floor: functions computed through exp lose relative accuracy near 0 (tanh) or in the tails (sigmoid) */
  atol?: number;
}
const sig = ref.sigmoid;
const UNARY: UnaryCase[] = [
  { name: 'neg', gpu: rk.neg, f: (v) => -v, df: () => -1, tol: 1e-7 },
  { name: 'exp', gpu: rk.exp, f: Math.exp, df: Math.exp, tol: 1e-5 },
  { name: 'log', gpu: rk.log, f: Math.log, df: (v) => 1 / v, lo: 0.05, hi: 4, tol: 1e-5 },
  { name: 'sqrt', gpu: rk.sqrt, f: Math.sqrt, df: (v) => 0.5 / Math.sqrt(v), lo: 0.05, hi: 4, tol: 1e-5 },
  { name: 'relu', gpu: rk.relu, f: (v) => Math.max(v, 0), df: (v) => (v > 0 ? 1 : 0), kinks: [0], tol: 1e-7 },
  { name: 'relu6', gpu: rk.relu6, f: (v) => Math.min(Math.max(v, 0), 6), df: (v) => (v > 0 && v < 6 ? 1 : 0), lo: -3, hi: 9, kinks: [0, 6], tol: 1e-7 },
  { name: 'sigmoid', gpu: rk.sigmoid, f: sig, df: (v) => sig(v) * (1 - sig(v)), lo: -8, hi: 8, tol: 1e-5, atol: 1e-7 },
  { name: 'tanh', gpu: rk.tanh, f: Math.tanh, df: (v) => 1 - Math.tanh(v) ** 2, lo: -4, hi: 4, tol: 1e-5, atol: 1e-7 },
  { name: 'abs', gpu: rk.abs, f: Math.abs, df: Math.sign, kinks: [0], tol: 1e-7 },
  { name: 'clamp(-0.5, 0.7)', gpu: (x) => rk.clamp(x, -0.5, 0.7), f: (v) => Math.min(Math.max(v, -0.5), 0.7), df: (v) => (v >= -0.5 && v <= 0.7 ? 1 : 0), kinks: [-0.5, 0.7], tol: 1e-7 },
  { name: 'affine(1.5, -0.25)', gpu: (x) => rk.affine(x, 1.5, -0.25), f: (v) => 1.5 * v - 0.25, df: () => 1.5, tol: 2e-6 },
  { name: 'mulScalar(-3)', gpu: (x) => rk.mulScalar(x, -3), f: (v) => -3 * v, df: () => -3, tol: 1e-7 },
  { name: 'addScalar(0.5)', gpu: (x) => rk.addScalar(x, 0.5), f: (v) => v + 0.5, df: () => 1, tol: 2e-6 },
  { name: 'powScalar(2)', gpu: (x) => rk.powScalar(x, 2), f: (v) => v ** 2, df: (v) => 2 * v, tol: 1e-5 },
  { name: 'powScalar(3)', gpu: (x) => rk.powScalar(x, 3), f: (v) => v ** 3, df: (v) => 3 * v ** 2, tol: 1e-5 },
  { name: 'powScalar(-2)', gpu: (x) => rk.powScalar(x, -2), f: (v) => v ** -2, df: (v) => -2 * v ** -3, lo: 0.3, hi: 2, tol: 1e-5 },
  { name: 'powScalar(-3) on negatives', gpu: (x) => rk.powScalar(x, -3), f: (v) => v ** -3, df: (v) => -3 * v ** -4, lo: -2, hi: -0.3, tol: 1e-5 },
  { name: 'powScalar(1)', gpu: (x) => rk.powScalar(x, 1), f: (v) => v, df: () => 1, tol: 1e-7 },
  { name: 'powScalar(0)', gpu: (x) => rk.powScalar(x, 0), f: () => 1, df: () => 0, tol: 1e-7 },
  { name: 'powScalar(0.5)', gpu: (x) => rk.powScalar(x, 0.5), f: Math.sqrt, df: (v) => 0.5 / Math.sqrt(v), lo: 0.05, hi: 4, tol: 1e-5 },
  { name: 'powScalar(1.7)', gpu: (x) => rk.powScalar(x, 1.7), f: (v) => v ** 1.7, df: (v) => 1.7 * v ** 0.7, lo: 0.05, hi: 4, tol: 1e-5 },
];

test('unary ops: forward on awkward shapes (rank 0..5, sizes 1 and 65537)', async () => {
  for (const c of UNARY) {
    const shapes = [[], [1], randShape(2), randShape(3), randShape(5, 300), [65537]];
    for (const s of shapes) {
      const x = randT(s, c.lo, c.hi, c.kinks);
      await forward(c.name, c.gpu(up(x)), x.data.map(c.f), s, c.tol ?? 1e-5, c.atol);
    }
  }
});

test('unary ops: backward vs finite differences (small) and analytic (larger)', async () => {
  for (const c of UNARY) {
    const small = randT(randShape(2, 12), c.lo, c.hi, c.kinks, 1e-2);
    await checkFD(c.name, ([x]) => c.gpu(x), ([x]) => x.map(c.f), [small], [0], 1e-4, c.atol ?? 0);
    const big = randT(randShape(4, 2000), c.lo, c.hi, c.kinks);
    await checkAnalytic(c.name, ([x]) => c.gpu(x), ([x], r) => [x.map((v, i) => r[i] * c.df(v))], big.data.length, [big]);
  }
});

test('unary ops keep for the backward only what the derivative reads (relu: its output, not its input)', async () => {
  // relu after a residual add: the sum is freed as soon as the caller drops it, the gradient still right
  const a = rk.keep(rk.tensor(Float32Array.from(randT([1024]).data), [1024]).requireGrad());
  const s = rk.add(a, a);
  const y = rk.relu(s);
  const before = rk.memoryStats().liveBytes;
  s.dispose();
  assert.is(rk.memoryStats().liveBytes, before - 4096, 'relu still holds its input');
  const loss = rk.sum(rk.mul(y, y));
  loss.backward();
  const g = await read64(a.grad!);
  const x = await read64(a);
  g.forEach((v, i) => assert.ok(Math.abs(v - (x[i] > 0 ? 8 * x[i] : 0)) <= 1e-6 * Math.max(1, Math.abs(v)), `d/da of sum(relu(2a)^2) at ${i}: ${v}`));
  for (const t of [y, loss, a.grad!, a]) t.dispose();
});

test('powScalar: integer exponents of negative bases and zero', async () => {
  const x = up({ data: Float64Array.from([-2, -0.5, 0, 0.5, 2]), shape: [5] });
  await forward('x^3', rk.powScalar(x, 3), [-8, -0.125, 0, 0.125, 8], [5], 1e-6);
  await forward('x^2', rk.powScalar(x, 2), [4, 0.25, 0, 0.25, 4], [5], 1e-6);
  await forward('x^0', rk.powScalar(x, 0), [1, 1, 1, 1, 1], [5], 1e-7);
  const y = await read64(rk.powScalar(x, 0.5));
  assert.ok(Number.isNaN(y[0]) && y[2] === 0 && Math.abs(y[4] - Math.SQRT2) < 1e-6, `x^0.5: NaN for x < 0, 0 at 0: got ${[...y]}`);
});

// ---- binary --------------------------------------------------------------------------------

interface BinaryCase {
  name: string;
  gpu: (a: rk.Tensor, b: rk.Tensor) => rk.Tensor;
  f: (a: number, b: number) => number;
  da?: (a: number, b: number) => number;
  db?: (a: number, b: number) => number;
  a?: [number, number];
  b?: [number, number];
  tol?: number;
  ints?: boolean;
}
const b01 = (x: boolean): number => (x ? 1 : 0);
const BINARY: BinaryCase[] = [
  { name: 'add', gpu: rk.add, f: (a, b) => a + b, da: () => 1, db: () => 1, tol: 2e-6 },
  { name: 'sub', gpu: rk.sub, f: (a, b) => a - b, da: () => 1, db: () => -1, tol: 2e-6 },
  { name: 'mul', gpu: rk.mul, f: (a, b) => a * b, da: (_, b) => b, db: (a) => a, tol: 2e-6 },
  { name: 'div', gpu: rk.div, f: (a, b) => a / b, da: (_, b) => 1 / b, db: (a, b) => -a / (b * b), b: [0.5, 3], tol: 2e-6 },
  { name: 'pow', gpu: rk.pow, f: (a, b) => a ** b, da: (a, b) => b * a ** (b - 1), db: (a, b) => a ** b * Math.log(a), a: [0.2, 3], b: [-1.5, 2.5], tol: 1e-5 },
  { name: 'maximum', gpu: rk.maximum, f: Math.max, da: (a, b) => b01(a >= b), db: (a, b) => b01(a < b), tol: 1e-7 },
  { name: 'minimum', gpu: rk.minimum, f: Math.min, da: (a, b) => b01(a <= b), db: (a, b) => b01(a > b), tol: 1e-7 },
  { name: 'addRelu', gpu: rk.addRelu, f: (a, b) => Math.max(a + b, 0), da: (a, b) => b01(a + b > 0), db: (a, b) => b01(a + b > 0), tol: 2e-6 },
  { name: 'eq', gpu: rk.eq, f: (a, b) => b01(a === b), ints: true, tol: 1e-7 },
  { name: 'ne', gpu: rk.ne, f: (a, b) => b01(a !== b), ints: true, tol: 1e-7 },
  { name: 'lt', gpu: rk.lt, f: (a, b) => b01(a < b), ints: true, tol: 1e-7 },
  { name: 'le', gpu: rk.le, f: (a, b) => b01(a <= b), ints: true, tol: 1e-7 },
  { name: 'gt', gpu: rk.gt, f: (a, b) => b01(a > b), ints: true, tol: 1e-7 },
  { name: 'ge', gpu: rk.ge, f: (a, b) => b01(a >= b), ints: true, tol: 1e-7 },
];
/** Shape pairs broadcasting in both directions, up to rank 5, with scalars and size-1 dims. */
function broadcastPairs(): [number[], number[]][] {
  const s3 = randShape(3);
  const s5 = randShape(5, 300);
  return [
    [s3, s3],
    [[], s3],
    [s3, [1]],
    [[s3[0], 1, s3[2]], [s3[1], 1]],
    [[1, s3[1], 1], [s3[0], 1, s3[2]]],
    [s5, s5.map((d, i) => (i % 2 ? 1 : d))],
    [s5.slice(2).map(() => 1), s5],
    [[1, 1, 1, 1, 1], [1]],
  ];
}
function randArg(shape: number[], range: [number, number] | undefined, ints: boolean | undefined): T64 {
  if (ints) return { data: Float64Array.from({ length: numel(shape) }, () => Math.floor(uni(-2, 2))), shape };
  return randT(shape, range?.[0] ?? -2, range?.[1] ?? 2);
}

test('binary ops: forward with broadcasting both ways, rank 0..5', async () => {
  for (const c of BINARY)
    for (const [sa, sb] of broadcastPairs()) {
      const a = randArg(sa, c.a, c.ints);
      const b = randArg(sb, c.b, c.ints);
      const want = ref.broadcastBinary(a.data, sa, b.data, sb, c.f);
      await forward(`${c.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, c.gpu(up(a), up(b)), want.data, want.shape, c.tol ?? 1e-5);
    }
});

test('add: same-shape fast path on 1, 7, 65537 and 3_000_001 elements', async () => {
  for (const n of [1, 7, 65537, 3_000_001]) {
    const a = randT([n]);
    const b = randT([n]);
    await forward(`add of ${n}`, rk.add(up(a), up(b)), a.data.map((v, i) => v + b.data[i]), [n], 2e-7 * 10);
  }
  for (const n of [8, 65540]) {
    const a = randT([n]);
    const b = randT([n]);
    await forward(`addRelu of ${n} (vec4)`, rk.addRelu(up(a), up(b)), a.data.map((v, i) => Math.max(v + b.data[i], 0)), [n], 2e-6);
  }
});

test('binary ops: backward (sum-to-shape of broadcast inputs) vs finite differences and analytic', async () => {
  for (const c of BINARY) {
    if (!c.da) {
      // comparisons are not differentiable: no graph is recorded through them
      const a = up(randT([3])).requireGrad();
      const y = c.gpu(a, up(randT([3])));
      assert.is(y.node, null, `${c.name} must not record a graph node`);
      continue;
    }
    const pairs: [number[], number[]][] = [
      [[2, 3], [2, 3]],
      [[2, 1, 3], [4, 1]],
      [[], [3, 2]],
      [[1, 3], [2, 1, 1]],
    ];
    for (const [sa, sb] of pairs) {
      const a = randT(sa, c.a?.[0] ?? -2, c.a?.[1] ?? 2);
      let b = randT(sb, c.b?.[0] ?? -2, c.b?.[1] ?? 2);
      if (c.name === 'maximum' || c.name === 'minimum') b = { data: b.data.map((v) => (Math.abs(v) < 0.05 ? v + 0.2 : v)), shape: sb }; // keep ties away
      const refF = ([x, y]: Float64Array[]) => ref.broadcastBinary(x, sa, y, sb, c.f).data;
      if (c.name === 'maximum' || c.name === 'minimum') {
        // kinks at a == b: nudge a away from every b it meets
        const out = ref.broadcastBinary(a.data, sa, b.data, sb, (p, q) => Math.abs(p - q));
        if (Math.min(...out.data) < 1e-2) continue;
      }
      if (c.name === 'addRelu' && Math.min(...ref.broadcastBinary(a.data, sa, b.data, sb, (p, q) => Math.abs(p + q)).data) < 1e-2) continue; // kink at a + b == 0
      await checkFD(`${c.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, ([x, y]) => c.gpu(x, y), refF, [a, b], [0, 1]);
    }
    const sa = [5, 1, 7, 3];
    const sb = [6, 1, 3];
    const a = randT(sa, c.a?.[0] ?? -2, c.a?.[1] ?? 2);
    const b = randT(sb, c.b?.[0] ?? -2, c.b?.[1] ?? 2);
    const outShape = ref.broadcastShape(sa, sb);
    const refGrad = ([x, y]: Float64Array[], r: Float64Array) => {
      const pa = ref.broadcastBinary(x, sa, y, sb, c.da!).data.map((v, i) => v * r[i]);
      const pb = ref.broadcastBinary(x, sa, y, sb, c.db!).data.map((v, i) => v * r[i]);
      return [ref.reduceSumToShape(pa, outShape, sa), ref.reduceSumToShape(pb, outShape, sb)];
    };
    await checkAnalytic(`${c.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, ([x, y]) => c.gpu(x, y), refGrad, numel(outShape), [a, b], [0, 1]);
  }
});

test('pow: negative bases with integer exponents and 0^0 = 1 (like torch); gradient w.r.t. the base there', async () => {
  const a = { data: f32([-2, -1.5, -0.5, 0, 0, 0.5, 2, -2]), shape: [8] };
  const b = { data: f32([2, 3, -2, 0, 2, 0, 0.5, 0.5]), shape: [8] };
  const got = await read64(rk.pow(up(a), up(b)));
  const want = a.data.map((v, i) => v ** b.data[i]); // JS: (-2) ** 0.5 is NaN, 0 ** 0 is 1
  assert.ok(got.every((v, i) => (Number.isNaN(want[i]) ? Number.isNaN(v) : Math.abs(v - want[i]) < 1e-6)), `pow: got ${[...got]}, want ${[...want]}`);
  const base = { data: f32([-1.7, -0.6, 0.8, 1.3, -1.1, 0.4]), shape: [2, 3] };
  const ex = { data: f32([2, 3, -1]), shape: [3] };
  await checkFD('pow with negative bases', ([x, e]) => rk.pow(x, e), ([x]) => ref.broadcastBinary(x, [2, 3], ex.data, [3], (p, q) => p ** q).data, [base, ex], [0]);
});

// ---- reductions ----------------------------------------------------------------------------

type RKind = 'sum' | 'mean' | 'max' | 'var';
const REDUCE: Record<RKind, (x: rk.Tensor, axes: number[] | undefined, keepdim: boolean) => rk.Tensor> = {
  sum: (x, a, keepdim) => rk.sum(x, a, { keepdim }),
  mean: (x, a, keepdim) => rk.mean(x, a, { keepdim }),
  max: (x, a, keepdim) => rk.max(x, a, { keepdim }),
  var: (x, a, keepdim) => rk.variance(x, a, { keepdim }),
};
function reduceCases(): [number[], number[] | undefined][] {
  const s5 = randShape(5, 400);
  const s4 = randShape(4, 400);
  return [
    [[], undefined],
    [[7], [0]],
    [randShape(3), [1]],
    [s4, [0, 2]], // non-adjacent
    [s4, [-1, -3]], // non-adjacent, negative
    [s5, [1, 3, 4]],
    [s5, [0, 1, 2, 3, 4]],
    [s5, undefined], // all axes
    [[3, 1, 5], [1]], // a size-1 axis
    [randShape(2), []], // no axis: identity-like
  ];
}
const allAxes = (s: number[], axes: number[] | undefined): number[] => axes ?? s.map((_, i) => i);

test('reductions: sum/mean/max/var over single, non-adjacent, negative and all axes, keepdim both ways', async () => {
  for (const kind of ['sum', 'mean', 'max', 'var'] as RKind[])
    for (const [s, axes] of reduceCases())
      for (const keepdim of [false, true]) {
        const x = randT(s);
        const want = ref.reduce(x.data, s, allAxes(s, axes), keepdim, kind);
        // A sum of n float32 terms that nearly cancel has a small result but an absolute rounding
        // error of order n·eps·max|x|, so the relative check alone would flake: floor it there.
        const n = allAxes(s, axes).reduce((p, a) => p * s[a < 0 ? a + s.length : a], 1);
        const sumBound = 2 * n * 1.2e-7 * x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const atol = kind === 'sum' ? sumBound : kind === 'mean' ? sumBound / n : 0;
        await forward(`${kind} ${JSON.stringify(s)} axes ${JSON.stringify(axes)} keepdim ${keepdim}`, REDUCE[kind](up(x), axes, keepdim), want.data, want.shape, kind === 'max' ? 1e-7 : 1e-5, atol);
      }
  const x = randT([4, 5]);
  await forward('var unbiased', rk.variance(up(x), 1, { unbiased: true }), ref.reduce(x.data, [4, 5], [1], false, 'var', { unbiased: true }).data, [4], 1e-5);
});

test('reductions: large (3_000_001-element sum and mean, long middle axis, wide rows)', async () => {
  const n = 3_000_001;
  const x = randT([n], 0, 1);
  const total = x.data.reduce((a, b) => a + b, 0);
  await forward('sum of 3_000_001', rk.sum(up(x)), [total], [], 1e-5);
  await forward('mean of 3_000_001', rk.mean(up(x)), [total / n], [], 1e-5);
  await forward('max of 3_000_001', rk.max(up(x)), [x.data.reduce((a, b) => Math.max(a, b), -Infinity)], [], 1e-7);
  const y = randT([3, 5003, 2]);
  await forward('sum over a long middle axis', rk.sum(up(y), 1), ref.reduce(y.data, y.shape, [1], false, 'sum').data, [3, 2], 1e-5);
  const z = randT([5000, 37]);
  await forward('mean of many rows', rk.mean(up(z), 1, { keepdim: true }), ref.reduce(z.data, z.shape, [1], true, 'mean').data, [5000, 1], 1e-5);
});

/** Analytic reference gradient of a reduction: broadcast the probe back, times the local factor. */
function reduceGrad(kind: RKind, s: number[], axes: number[], x: Float64Array, r: Float64Array): Float64Array {
  const kept = s.map((d, i) => (axes.includes(i) ? 1 : d));
  const count = numel(s) / Math.max(1, numel(kept));
  const rb = ref.broadcastBinary(new Float64Array(x.length), s, r, kept, (_, q) => q).data;
  if (kind === 'sum') return rb;
  if (kind === 'mean') return rb.map((v) => v / count);
  const red = ref.reduce(x, s, axes, true, kind === 'max' ? 'max' : 'mean').data;
  const rd = ref.broadcastBinary(x, s, red, kept, (p, q) => p - q).data;
  if (kind === 'max') return rb.map((v, i) => (rd[i] === 0 ? v : 0));
  return rb.map((v, i) => (v * 2 * rd[i]) / count);
}

test('reductions: backward vs finite differences (small) and analytic (larger)', async () => {
  for (const kind of ['sum', 'mean', 'max', 'var'] as RKind[]) {
    for (const [s, axes] of [
      [[2, 3, 2], [0, 2]],
      [[3, 4], undefined],
      [[1, 3, 2], [-1]],
    ] as [number[], number[] | undefined][])
      for (const keepdim of [false, true]) {
        const x = randT(s);
        await checkFD(`${kind} ${JSON.stringify(s)} ${JSON.stringify(axes)} keepdim ${keepdim}`, ([t]) => REDUCE[kind](t, axes, keepdim), ([d]) => ref.reduce(d, s, allAxes(s, axes), keepdim, kind).data, [x]);
      }
    const s = [4, 3, 6, 5];
    const axes = [1, 3];
    const x = randT(s);
    const outSize = numel(s) / 15;
    await checkAnalytic(`${kind} ${JSON.stringify(s)} axes [1, 3]`, ([t]) => REDUCE[kind](t, axes, false), ([d], r) => [reduceGrad(kind, s, axes, d, r)], outSize, [x]);
  }
});

test('max: gradient is split evenly between tied maxima', async () => {
  const x = up({ data: Float64Array.from([1, 3, 3, 2]), shape: [4] }).requireGrad();
  rk.max(x).backward();
  expectClose(await read64(x.grad!), [0, 0.5, 0.5, 0], 1e-7, 'tied max gradient');
});

// ---- shape ops -----------------------------------------------------------------------------

function randPerm(n: number): number[] {
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

test('shape ops: reshape (with -1), flatten, permute (rank up to 5), transpose', async () => {
  const s = randShape(4);
  const x = randT(s);
  await forward('reshape -1', rk.reshape(up(x), [s[0], -1]), x.data, [s[0], numel(s) / s[0]], EXACT);
  await forward('flatten', rk.flatten(up(x)), x.data, [s[0], numel(s) / s[0]], EXACT);
  for (const rank of [1, 2, 3, 4, 5]) {
    const sh = randShape(rank, 500);
    const perm = randPerm(rank);
    const t = randT(sh);
    const want = ref.permute(t.data, sh, perm);
    await forward(`permute ${JSON.stringify(sh)} by ${JSON.stringify(perm)}`, rk.permute(up(t), perm), want.data, want.shape, EXACT);
  }
  const t = randT([2, 3, 4]);
  const want = ref.permute(t.data, [2, 3, 4], [2, 1, 0]);
  await forward('transpose(0, 2)', rk.transpose(up(t), 0, 2), want.data, want.shape, EXACT);
  assert.throws(() => rk.reshape(up(t), [5, 5]), /reshape: cannot reshape \[2, 3, 4\] \(24 elements\) to \[5, 5\]/);
  assert.throws(() => rk.permute(up(t), [0, 0, 1]), /not a permutation/);
});

test('shape ops: backward of reshape and permute', async () => {
  const sh = [2, 3, 1, 2];
  const perm = [3, 0, 2, 1];
  await checkFD('permute', ([x]) => rk.permute(x, perm), ([d]) => ref.permute(d, sh, perm).data, [randT(sh)]);
  await checkFD('reshape', ([x]) => rk.reshape(rk.mul(x, x), [3, -1]), ([d]) => d.map((v) => v * v), [randT(sh)]);
  const big = [5, 7, 3, 4, 2];
  const p5 = [4, 2, 0, 3, 1];
  const inv = p5.map((_, i) => p5.indexOf(i));
  await checkAnalytic('permute rank 5', ([x]) => rk.permute(x, p5), (_, r) => [ref.permute(r, p5.map((p) => big[p]), inv).data], numel(big), [randT(big)]);
});

// ---- concat / slice / split ----------------------------------------------------------------

test('concat along every axis (one launch per input), including size-1 and empty inputs', async () => {
  for (const rank of [1, 2, 3, 4]) {
    const base = randShape(rank, 200);
    for (let axis = 0; axis < rank; axis++) {
      const lens = [pick(AWK), 1, 0, pick(AWK)];
      const parts = lens.map((l) => randT(base.map((d, i) => (i === axis ? l : d))));
      const want = ref.concat(parts, axis);
      const xs = parts.map(up);
      rk.setPoison(false); // count only concat's own launches (no NaN fill of the output)
      const before = recorder.dispatchCount;
      const y = rk.concat(xs, axis - (axis % 2 ? rank : 0)); // negative axes too
      const launches = recorder.dispatchCount - before;
      rk.setPoison(true);
      assert.is(launches, parts.filter((p) => p.data.length > 0).length, `concat launches for ${parts.length} inputs (one is empty)`);
      await forward(`concat axis ${axis} of ${JSON.stringify(parts.map((p) => p.shape))}`, y, want.data, want.shape, EXACT);
    }
  }
  // DenseNet's channel concat: rows that are whole vec4s take the vec4 kernel (and the slices back)
  const planes = [randT([3, 5, 2, 6]), randT([3, 2, 2, 6]), randT([3, 1, 2, 6])];
  const cat = ref.concat(planes, 1);
  await forward('concat of vec4-aligned rows', rk.concat(planes.map(up), 1), cat.data, cat.shape, EXACT);
  const catT = up(cat);
  await forward('slice of vec4-aligned rows', rk.slice(catT, 1, 5, 7), ref.slice(cat.data, cat.shape, 1, 5, 7).data, [3, 2, 2, 6], EXACT);
  const a = up(randT([2, 3]));
  assert.throws(() => rk.concat([a, up(randT([3, 3]))], 1), /concat: input 1 \[3, 3\] does not match input 0 \[2, 3\] outside axis 1/);
  assert.throws(() => rk.concat([a, rk.tensor(new Int32Array(6), [2, 3], 'i32')], 0), TypeError);
});

test('slice along any axis: Python-style negative and clamped bounds, empty results; split', async () => {
  const s = [4, 5, 3, 2];
  const x = randT(s);
  const cases: [number, number, number | undefined][] = [
    [0, 1, 3],
    [1, -3, undefined],
    [2, 0, 1],
    [3, 1, 2],
    [-1, -5, 10],
    [1, 3, 2], // empty
    [1, 7, 9], // clamped to empty
  ];
  for (const [axis, start, end] of cases) {
    const want = ref.slice(x.data, s, axis, start, end ?? s[(axis + 4) % 4]);
    await forward(`slice axis ${axis} [${start}, ${end})`, rk.slice(up(x), axis, start, end), want.data, want.shape, EXACT);
  }
  const parts = rk.split(up(x), 2, 1);
  assert.equal(parts.map((p) => p.shape[1]), [2, 2, 1]);
  const sizes = rk.split(up(x), [1, 3], 0);
  await forward('split [1, 3] part 1', sizes[1], ref.slice(x.data, s, 0, 1, 4).data, [3, 5, 3, 2], EXACT);
  assert.throws(() => rk.split(up(x), [1, 2], 0), /split: sizes \[1, 2\] do not add up to 4/);
  const labels = rk.tensor(new Int32Array([5, 6, 7, 8]), [4], 'i32');
  assert.equal([...(await rk.slice(labels, 0, 1, 3).toArray())], [6, 7], 'slice of i32');
});

test('concat / slice / split: backward', async () => {
  const a = randT([2, 3, 2]);
  const b = randT([2, 1, 2]);
  await checkFD('concat axis 1', ([x, y]) => rk.concat([x, y, x], 1), ([p, q]) => ref.concat([{ data: p, shape: a.shape }, { data: q, shape: b.shape }, { data: p, shape: a.shape }], 1).data, [a, b], [0, 1]);
  await checkFD('slice axis 2', ([x]) => rk.slice(x, 2, 1), ([p]) => ref.slice(p, a.shape, 2, 1, 2).data, [a]);
  await checkFD('split axis 1 (sum of parts times 1, 2)', ([x]) => {
    const [p, q] = rk.split(x, [1, 2], 1);
    return rk.concat([rk.mulScalar(q, 2), p], 1);
  }, ([p]) => {
    const s0 = ref.slice(p, a.shape, 1, 0, 1);
    const s1 = ref.slice(p, a.shape, 1, 1, 3);
    return ref.concat([{ data: s1.data.map((v) => 2 * v), shape: s1.shape }, s0], 1).data;
  }, [a]);
  // concat of larger tensors along the middle axis: each input's gradient is its window of g
  const parts = [randT([9, 31, 11]), randT([9, 1, 11]), randT([9, 20, 11])];
  const cgrad = (_: Float64Array[], r: Float64Array) => {
    let at = 0;
    return parts.map((p) => {
      const w = ref.slice(r, [9, 52, 11], 1, at, at + p.shape[1]).data;
      at += p.shape[1];
      return w;
    });
  };
  await checkAnalytic('concat [9, 31|1|20, 11] axis 1', (xs) => rk.concat(xs, 1), cgrad, 9 * 52 * 11, parts, [0, 1, 2]);
  const big = randT([6, 40, 7]);
  const want = (r: Float64Array) => {
    const g = new Float64Array(big.data.length);
    const gs = ref.slice(Float64Array.from(g.keys()), big.shape, 1, 5, 33).data; // flat indices of the window
    gs.forEach((flat, i) => (g[flat] = r[i]));
    return g;
  };
  await checkAnalytic('slice [6, 40, 7] axis 1 [5, 33)', ([x]) => rk.slice(x, 1, 5, 33), (_, r) => [want(r)], 6 * 28 * 7, [big]);
});

// ---- softmax -------------------------------------------------------------------------------

test('softmax / logSoftmax: any axis, rank 1..4, stable for huge logits', async () => {
  for (const rank of [1, 2, 3, 4]) {
    const s = randShape(rank, 600);
    for (let axis = -rank; axis < rank; axis += rank > 2 ? 1 : rank) {
      const x = randT(s, -5, 5);
      await forward(`softmax ${JSON.stringify(s)} axis ${axis}`, rk.softmax(up(x), axis), ref.softmax(x.data, s, axis), s, 1e-5);
      await forward(`logSoftmax ${JSON.stringify(s)} axis ${axis}`, rk.logSoftmax(up(x), axis), ref.logSoftmax(x.data, s, axis), s, 1e-5);
    }
  }
  const huge = { data: f32([1000, 1001, 999, -1000, 80, 90]), shape: [2, 3] };
  await forward('softmax of huge logits', rk.softmax(up(huge), 1), ref.softmax(huge.data, [2, 3], 1), [2, 3], 1e-6);
  await forward('logSoftmax of huge logits', rk.logSoftmax(up(huge), 1), ref.logSoftmax(huge.data, [2, 3], 1), [2, 3], 1e-6);
  const wide = randT([3, 10007], -3, 3);
  await forward('softmax over 10007', rk.softmax(up(wide)), ref.softmax(wide.data, wide.shape, 1), wide.shape, 1e-5);
});

test('softmax / logSoftmax: backward', async () => {
  for (const [s, axis] of [
    [[3, 4], 1],
    [[2, 3, 2], 1],
    [[4, 2], 0],
  ] as [number[], number][]) {
    const x = randT(s);
    await checkFD(`softmax ${JSON.stringify(s)} axis ${axis}`, ([t]) => rk.softmax(t, axis), ([d]) => ref.softmax(d, s, axis), [x]);
    await checkFD(`logSoftmax ${JSON.stringify(s)} axis ${axis}`, ([t]) => rk.logSoftmax(t, axis), ([d]) => ref.logSoftmax(d, s, axis), [x]);
  }
  const s = [6, 33, 5];
  const x = randT(s, -4, 4);
  const smGrad = (d: Float64Array, r: Float64Array) => {
    // dx = y * (r - sum(r * y)) along axis 1
    const y = ref.softmax(d, s, 1);
    const ry = ref.reduce(r.map((v, i) => v * y[i]), s, [1], true, 'sum').data;
    return ref.broadcastBinary(r, s, ry, [6, 1, 5], (p, q) => p - q).data.map((v, i) => y[i] * v);
  };
  await checkAnalytic('softmax [6, 33, 5] axis 1', ([t]) => rk.softmax(t, 1), ([d], r) => [smGrad(d, r)], numel(s), [x]);
  const logGrad = (d: Float64Array, r: Float64Array) => {
    const y = ref.softmax(d, s, 1);
    const rs = ref.reduce(r, s, [1], true, 'sum').data;
    return ref.broadcastBinary(y, s, rs, [6, 1, 5], (p, q) => p * q).data.map((v, i) => r[i] - v);
  };
  await checkAnalytic('logSoftmax [6, 33, 5] axis 1', ([t]) => rk.logSoftmax(t, 1), ([d], r) => [logGrad(d, r)], numel(s), [x]);
});

// ---- gather / where ------------------------------------------------------------------------

/** torch.gather reference. */
function refGather(x: T64, index: Int32Array, ishape: number[], axis: number): Float64Array {
  const xs = ref.stridesOf(x.shape);
  return Float64Array.from(index, (t, i) => {
    const c = ref.unravel(i, ishape);
    c[axis] = t;
    return x.data[c.reduce((o, ci, d) => o + ci * xs[d], 0)];
  });
}
function randIndex(ishape: number[], hi: number): rk.Tensor & { host?: Int32Array } {
  const host = Int32Array.from({ length: numel(ishape) }, () => Math.floor(rng.uniform() * hi));
  return Object.assign(rk.tensor(host, ishape, 'i32'), { host });
}

test('gather: any axis, smaller index dims, repeated indices; out-of-range gives NaN', async () => {
  for (const [xs, is, axis] of [
    [[5, 4], [5, 1], 1], // the cross-entropy row pick
    [[5, 4], [3, 4], 0],
    [[3, 7, 2], [2, 9, 1], 1],
    [[3, 7, 2], [3, 7, 5], 2],
    [[2, 1, 3, 4, 2], [2, 1, 2, 4, 1], 3],
  ] as [number[], number[], number][]) {
    const x = randT(xs);
    const idx = randIndex(is, xs[axis]);
    await forward(`gather ${JSON.stringify(xs)} axis ${axis} index ${JSON.stringify(is)}`, rk.gather(up(x), idx, axis), refGather(x, idx.host!, is, axis), is, EXACT);
  }
  const y = await read64(rk.gather(up(randT([2, 3])), rk.tensor(new Int32Array([1, 3, -1, 0]), [2, 2], 'i32'), 1));
  assert.ok(Number.isFinite(y[0]) && Number.isNaN(y[1]) && Number.isNaN(y[2]) && Number.isFinite(y[3]), `out-of-range indices give NaN: ${[...y]}`);
  assert.throws(() => rk.gather(up(randT([2, 3])), up(randT([2, 1])), 1), /gather: index must be i32/);
  assert.throws(() => rk.gather(up(randT([2, 3])), rk.tensor(new Int32Array(3), [3, 1], 'i32'), 1), /gather: index \[3, 1\] must have the rank of input \[2, 3\]/);
});

test('gather: backward accumulates repeated indices (no atomics)', async () => {
  for (const [xs, is, axis] of [
    [[3, 4], [3, 6], 1],
    [[4, 3], [5, 2], 0],
    [[2, 3, 2], [2, 2, 2], 1],
  ] as [number[], number[], number][]) {
    const x = randT(xs);
    const host = Int32Array.from({ length: numel(is) }, () => Math.floor(rng.uniform() * xs[axis]));
    await checkFD(`gather ${JSON.stringify(xs)} axis ${axis}`, ([t]) => rk.gather(t, rk.tensor(host, is, 'i32'), axis), ([d]) => refGather({ data: d, shape: xs }, host, is, axis), [x]);
  }
  const xs = [50, 40];
  const is = [50, 30];
  const host = Int32Array.from({ length: numel(is) }, () => Math.floor(rng.uniform() * 40));
  const grad = (r: Float64Array) => {
    const g = new Float64Array(numel(xs));
    host.forEach((t, i) => (g[Math.floor(i / 30) * 40 + t] += r[i]));
    return g;
  };
  await checkAnalytic('gather [50, 40] axis 1', ([t]) => rk.gather(t, rk.tensor(host, is, 'i32'), 1), (_, r) => [grad(r)], numel(is), [randT(xs)]);
});

test('where: broadcasting mask, a and b; backward to a and b', async () => {
  for (const [sm, sa, sb] of [
    [[2, 3], [2, 3], [2, 3]],
    [[3], [2, 1], []],
    [[2, 1, 4], [3, 1], [1, 3, 4]],
    [[1, 2, 1, 3, 1], [2, 2, 1, 3, 2], [1]],
  ] as number[][][]) {
    const m = { data: Float64Array.from({ length: numel(sm) }, () => b01(rng.uniform() < 0.5)), shape: sm };
    const a = randT(sa);
    const b = randT(sb);
    const mb = ref.broadcastBinary(m.data, sm, a.data, sa, (p) => p);
    const want = ref.broadcastBinary(ref.broadcastBinary(mb.data, mb.shape, a.data, sa, (p, q) => (p ? q : NaN)).data, mb.shape, b.data, sb, (p, q) => (Number.isNaN(p) ? q : p));
    await forward(`where ${JSON.stringify([sm, sa, sb])}`, rk.where(up(m), up(a), up(b)), want.data, want.shape, EXACT);
    const f = ([x, y]: Float64Array[]) => {
      const mm = ref.broadcastBinary(m.data, sm, x, sa, (p) => p);
      const sel = ref.broadcastBinary(mm.data, mm.shape, x, sa, (p, q) => (p ? q : NaN));
      return ref.broadcastBinary(sel.data, sel.shape, y, sb, (p, q) => (Number.isNaN(p) ? q : p)).data;
    };
    await checkFD(`where backward ${JSON.stringify([sm, sa, sb])}`, ([x, y]) => rk.where(up(m), x, y), f, [a, b], [0, 1]);
  }
  // larger shapes vs the analytic gradient: g where the mask picks a (else b), summed to each shape
  const [sm, sa, sb] = [[40, 1, 30], [1, 25, 30], [40, 25, 1]];
  const m = { data: Float64Array.from({ length: numel(sm) }, () => b01(rng.uniform() < 0.3)), shape: sm };
  const out = [40, 25, 30];
  const mfull = ref.broadcastBinary(m.data, sm, new Float64Array(numel(out)), out, (p) => p).data;
  const grad = (_: Float64Array[], r: Float64Array) => [
    ref.reduceSumToShape(r.map((v, i) => (mfull[i] ? v : 0)), out, sa),
    ref.reduceSumToShape(r.map((v, i) => (mfull[i] ? 0 : v)), out, sb),
  ];
  await checkAnalytic('where [40, 1, 30] [1, 25, 30] [40, 25, 1]', ([x, y]) => rk.where(up(m), x, y), grad, numel(out), [randT(sa), randT(sb)], [0, 1]);
  assert.throws(() => rk.where(up(randT([2])), up(randT([3])), up(randT([1]))), /where: mask \[2\], a \[3\] and b \[1\] do not broadcast together/);
});

test.run();
